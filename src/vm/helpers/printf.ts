/**
 * The kernel's printf for BPF (kernel/bpf/helpers.c bpf_bprintf_prepare + lib/vsprintf.c
 * bstr_printf): what bpf_trace_printk, bpf_trace_vprintk and bpf_snprintf accept and print.
 *
 * Accepted: printable ASCII and whitespace only; `%%`; flags `0 + - space` and a width (no
 * precision, no `#`); `%d %i %u %x %X` with `l`/`ll`; `%c`; `%s`; `%p`, `%pK %px %ps %pS %pB`,
 * `%pi4 %pI4 %pi6 %pI6`, `%pks %pus`. Anything else, or more specifiers than arguments, is -EINVAL.
 * Strings are read from VM memory; a string that cannot be read prints as empty, as in the kernel.
 */
import { EINVAL } from '../context.js';

export interface PrintfMemory {
  /** NUL-terminated string at `addr`, at most `max` bytes; undefined when it cannot be read. */
  readString(addr: bigint, max: number): Uint8Array | undefined;
  /** `len` bytes at `addr`; undefined when they cannot be read. */
  readBytes(addr: bigint, len: number): Uint8Array | undefined;
}

/** Largest output of one trace_printk (MAX_BPRINTF_BUF). */
export const MAX_BPRINTF_BUF = 1024;
export const MAX_BPRINTF_VARARGS = 12;

const isPrint = (c: number) => c >= 0x20 && c < 0x7f;
const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isPunct = (c: number) => isPrint(c) && !isSpace(c) && !/[A-Za-z0-9]/.test(String.fromCharCode(c));

interface Spec {
  flags: string;
  width: number;
}

function pad(s: string, spec: Spec, numeric: boolean): string {
  if (s.length >= spec.width) return s;
  if (spec.flags.includes('-')) return s.padEnd(spec.width);
  if (numeric && spec.flags.includes('0')) {
    const sign = /^[-+ ]/.test(s) ? s[0] : '';
    return sign + s.slice(sign.length).padStart(spec.width - sign.length, '0');
  }
  return s.padStart(spec.width);
}

function ip4(b: Uint8Array, leading: boolean): string {
  return Array.from(b, (x) => (leading ? x.toString().padStart(3, '0') : x.toString())).join('.');
}

function ip6(b: Uint8Array, colons: boolean): string {
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0'));
  if (!colons) return hex.join('');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(hex[i] + hex[i + 1]);
  return groups.join(':');
}

/**
 * Formats `fmt` (bytes up to its NUL) with 64-bit `args`: the string, or a negative errno when the
 * kernel would refuse the format.
 */
export function bpfFormat(fmt: Uint8Array, args: readonly bigint[], mem: PrintfMemory): string | number {
  let out = '';
  let n = 0;
  const len = fmt.indexOf(0) < 0 ? fmt.length : fmt.indexOf(0);
  const at = (i: number) => (i < len ? fmt[i] : 0);
  for (let i = 0; i < len; i++) {
    const c = fmt[i];
    if ((!isPrint(c) && !isSpace(c)) || c > 0x7f) return -EINVAL;
    if (c !== 0x25) {
      out += String.fromCharCode(c);
      continue;
    }
    if (at(i + 1) === 0x25) {
      out += '%';
      i++;
      continue;
    }
    if (n >= args.length) return -EINVAL;
    i++;
    let flags = '';
    while (at(i) === 0x30 || at(i) === 0x2b || at(i) === 0x2d || at(i) === 0x20)
      flags += String.fromCharCode(fmt[i++]);
    let width = 0;
    if (at(i) >= 0x31 && at(i) <= 0x39) {
      while (at(i) >= 0x30 && at(i) <= 0x39) width = width * 10 + (fmt[i++] - 0x30);
    }
    const spec: Spec = { flags, width };
    const arg = args[n++];
    const ch = String.fromCharCode(at(i));
    if (ch === 'p') {
      const next = at(i + 1);
      if (next === 0 || isSpace(next) || isPunct(next)) {
        out += pad(`0x${arg.toString(16)}`, spec, false);
        continue;
      }
      const k = String.fromCharCode(next);
      if ((k === 'k' || k === 'u') && at(i + 2) === 0x73) {
        i += 2;
        if (at(i + 1) !== 0 && !isSpace(at(i + 1)) && !isPunct(at(i + 1))) return -EINVAL;
        out += pad(str(mem, arg), spec, false);
        continue;
      }
      if (k === 'K' || k === 'x' || k === 's' || k === 'S' || k === 'B') {
        i++;
        out += pad(
          k === 'x' || k === 'K' ? arg.toString(16).padStart(16, '0') : `0x${arg.toString(16)}`,
          spec,
          false,
        );
        continue;
      }
      if ((k !== 'i' && k !== 'I') || (at(i + 2) !== 0x34 && at(i + 2) !== 0x36)) return -EINVAL;
      const v6 = at(i + 2) === 0x36;
      i += 2;
      const b = mem.readBytes(arg, v6 ? 16 : 4);
      const text = b === undefined ? '' : v6 ? ip6(b, k === 'I') : ip4(b, k === 'i');
      out += pad(text, spec, false);
      continue;
    }
    if (ch === 's') {
      if (at(i + 1) !== 0 && !isSpace(at(i + 1)) && !isPunct(at(i + 1))) return -EINVAL;
      out += pad(str(mem, arg), spec, false);
      continue;
    }
    if (ch === 'c') {
      out += pad(String.fromCharCode(Number(arg & 0xffn)), spec, false);
      continue;
    }
    let bits = 32;
    if (at(i) === 0x6c) {
      bits = 64;
      i++;
      if (at(i) === 0x6c) i++;
    }
    const conv = String.fromCharCode(at(i));
    let text: string;
    switch (conv) {
      case 'd':
      case 'i': {
        const v = BigInt.asIntN(bits, arg);
        text =
          v < 0n
            ? `-${(-v).toString()}`
            : `${flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : ''}${v}`;
        break;
      }
      case 'u':
        text = BigInt.asUintN(bits, arg).toString();
        break;
      case 'x':
        text = BigInt.asUintN(bits, arg).toString(16);
        break;
      case 'X':
        text = BigInt.asUintN(bits, arg).toString(16).toUpperCase();
        break;
      default:
        return -EINVAL;
    }
    out += pad(text, spec, true);
  }
  return out;
}

function str(mem: PrintfMemory, addr: bigint): string {
  const b = mem.readString(addr, MAX_BPRINTF_BUF);
  if (b === undefined) return '';
  const end = b.indexOf(0);
  return new TextDecoder('latin1').decode(end < 0 ? b : b.subarray(0, end));
}
