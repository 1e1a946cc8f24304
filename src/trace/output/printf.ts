/**
 * printf as bpftrace prints it: bpftrace hands the format and the decoded arguments to the C library's
 * printf, so the conversions follow C: `%d`/`%u`/`%x` read an `int` (32 bits: `%d` of 12345678901 prints
 * -539222987), `%hd` 16, `%hhd` 8, `%ld`/`%lld`/`%zd` 64; `%p` prints `(nil)` for 0; `%c` one byte; `%s` a
 * string, `%r` a buffer (`\xNN` for unprintable bytes). Flags `-0+ #`, width and precision as in C.
 */
import type { Value } from './values.js';

export interface FormatSpec {
  /** Literal text before this conversion. */
  text: string;
  flags: string;
  width: number | undefined;
  precision: number | undefined;
  length: string;
  conv: string;
}

const SPEC_RE = /%([-+ #0]*)(\d+)?(?:\.(\d*))?(hh|h|ll|l|j|z|t|L)?(r[xh]|gr|[a-zA-Z%])/g;

/** Splits a format into conversions (with the literal text before each) and the trailing text. */
export function splitFormat(fmt: string): { specs: FormatSpec[]; tail: string } {
  const specs: FormatSpec[] = [];
  let last = 0;
  let pending = '';
  for (const m of fmt.matchAll(SPEC_RE)) {
    const text = pending + fmt.slice(last, m.index);
    last = (m.index ?? 0) + m[0].length;
    if (m[5] === '%') {
      pending = `${text}%`;
      continue;
    }
    pending = '';
    specs.push({
      text,
      flags: m[1],
      width: m[2] === undefined ? undefined : Number(m[2]),
      precision: m[3] === undefined ? undefined : Number(m[3] || '0'),
      length: m[4] ?? '',
      conv: m[5],
    });
  }
  return { specs, tail: pending + fmt.slice(last) };
}

const formatCache = new Map<string, { specs: FormatSpec[]; tail: string }>();

/** What some conversions need from the running system. */
export interface PrintfHooks {
  /** `%gr`: GFP flags by name. */
  gfpFlags?: (flags: bigint) => string;
}

/** Formats `fmt` with `args` the way bpftrace's printf()/system()/cat() do. */
export function formatPrintf(fmt: string, args: readonly Value[], hooks: PrintfHooks = {}): string {
  let parsed = formatCache.get(fmt);
  if (!parsed) {
    parsed = splitFormat(fmt);
    formatCache.set(fmt, parsed);
  }
  let out = '';
  parsed.specs.forEach((spec, i) => {
    out += spec.text;
    out += formatOne(spec, args[i], hooks);
  });
  return out + parsed.tail;
}

function intOf(v: Value | undefined): bigint {
  if (!v) return 0n;
  switch (v.kind) {
    case 'int':
    case 'pointer':
      return v.value;
    case 'bool':
      return v.value ? 1n : 0n;
    case 'string':
      return BigInt(v.value.length > 0 ? v.value.charCodeAt(0) : 0);
    default:
      return 0n;
  }
}

function bitsOf(length: string): number {
  switch (length) {
    case 'hh':
      return 8;
    case 'h':
      return 16;
    case 'l':
    case 'll':
    case 'j':
    case 'z':
    case 't':
    case 'L':
      return 64;
    default:
      return 32;
  }
}

function pad(body: string, spec: FormatSpec, numeric: boolean, sign = ''): string {
  const width = spec.width ?? 0;
  const left = spec.flags.includes('-');
  const total = sign.length + body.length;
  if (total >= width) return sign + body;
  if (left) return (sign + body).padEnd(width, ' ');
  if (numeric && spec.flags.includes('0') && spec.precision === undefined)
    return sign + body.padStart(width - sign.length, '0');
  return (sign + body).padStart(width, ' ');
}

/** A Value as %s prints it. */
export function valueToPrintfString(v: Value | undefined): string {
  if (!v) return '';
  switch (v.kind) {
    case 'string':
      return v.value;
    case 'text':
      return v.text;
    case 'buffer':
      return hexFormatBuffer(v.bytes);
    default:
      return valueText(v);
  }
}

function valueText(v: Value): string {
  switch (v.kind) {
    case 'int':
      return v.symbol ?? v.value.toString();
    case 'bool':
      return v.value ? 'true' : 'false';
    case 'pointer':
      return `0x${v.value.toString(16)}`;
    case 'tuple':
      return `(${v.elems.map(valueText).join(', ')})`;
    case 'array':
      return `[${v.elems.map(valueText).join(',')}]`;
    case 'record':
      return `{ ${v.fields.map((f) => `.${f.name} = ${valueText(f.value)}`).join(', ')} }`;
    default:
      return valueToPrintfString(v);
  }
}

function formatOne(spec: FormatSpec, arg: Value | undefined, hooks: PrintfHooks = {}): string {
  switch (spec.conv) {
    case 'gr': {
      const n = BigInt.asUintN(64, intOf(arg));
      return pad(hooks.gfpFlags?.(n) ?? `0x${n.toString(16)}`, spec, false);
    }
    case 'd':
    case 'i': {
      const bits = bitsOf(spec.length);
      const n = BigInt.asIntN(bits, intOf(arg));
      const neg = n < 0n;
      let digits = (neg ? -n : n).toString();
      if (spec.precision !== undefined)
        digits = spec.precision === 0 && n === 0n ? '' : digits.padStart(spec.precision, '0');
      const sign = neg ? '-' : spec.flags.includes('+') ? '+' : spec.flags.includes(' ') ? ' ' : '';
      return pad(digits, spec, true, sign);
    }
    case 'u':
    case 'x':
    case 'X':
    case 'o': {
      const bits = bitsOf(spec.length);
      const n = BigInt.asUintN(bits, intOf(arg));
      const radix = spec.conv === 'u' ? 10 : spec.conv === 'o' ? 8 : 16;
      let digits = n.toString(radix);
      if (spec.conv === 'X') digits = digits.toUpperCase();
      if (spec.precision !== undefined)
        digits = spec.precision === 0 && n === 0n ? '' : digits.padStart(spec.precision, '0');
      let prefix = '';
      if (spec.flags.includes('#') && n !== 0n) {
        if (spec.conv === 'x') prefix = '0x';
        else if (spec.conv === 'X') prefix = '0X';
        else if (spec.conv === 'o' && !digits.startsWith('0')) prefix = '0';
      }
      return pad(digits, spec, true, prefix);
    }
    case 'p': {
      const n = BigInt.asUintN(64, intOf(arg));
      if (n === 0n) return pad('(nil)', spec, false);
      return pad(n.toString(16), spec, true, '0x');
    }
    case 'c': {
      const n = Number(BigInt.asUintN(8, intOf(arg)));
      return pad(String.fromCharCode(n), spec, false);
    }
    case 'rx':
    case 'rh': {
      // bpftrace's buffer conversions: %rx escapes every byte (`\x48\x65`), %rh prints bare hex (`48 65`).
      const bytes = arg?.kind === 'buffer' ? arg.bytes : Buffer.from(valueToPrintfString(arg));
      const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0'));
      return pad(spec.conv === 'rx' ? hex.map((h) => `\\x${h}`).join('') : hex.join(' '), spec, false);
    }
    case 's':
    case 'r': {
      let s =
        spec.conv === 'r' && arg?.kind === 'string'
          ? hexFormatBuffer(Buffer.from(arg.value))
          : valueToPrintfString(arg);
      if (spec.precision !== undefined) s = s.slice(0, spec.precision);
      return pad(s, spec, false);
    }
    default:
      // Conversions bpftrace accepts but the C library would print verbatim.
      return `%${spec.flags}${spec.width ?? ''}${spec.precision !== undefined ? `.${spec.precision}` : ''}${spec.length}${spec.conv}`;
  }
}

/** bpftrace's hex_format_buffer: printable ASCII as-is, other bytes as `\xNN`. */
export function hexFormatBuffer(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (b >= 0x20 && b <= 0x7e) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

const two = (n: number): string => String(n).padStart(2, '0');

/**
 * C's strftime over local time (the conversions glibc prints in the C locale), plus bpftrace's `%f`
 * (microseconds). `nsecs` is the fraction of the second, for `%f`.
 */
export function strftime(fmt: string, date: Date, nsecs = 0): string {
  return fmt.replace(/%([EO]?)([a-zA-Z%+])/g, (whole, _mod: string, c: string) => {
    const y = date.getFullYear();
    const mo = date.getMonth();
    const d = date.getDate();
    const h = date.getHours();
    const mi = date.getMinutes();
    const s = date.getSeconds();
    const wd = date.getDay();
    switch (c) {
      case '%':
        return '%';
      case 'a':
        return DAYS[wd].slice(0, 3);
      case 'A':
        return DAYS[wd];
      case 'b':
      case 'h':
        return MONTHS[mo].slice(0, 3);
      case 'B':
        return MONTHS[mo];
      case 'c':
        return `${DAYS[wd].slice(0, 3)} ${MONTHS[mo].slice(0, 3)} ${String(d).padStart(2, ' ')} ${two(h)}:${two(mi)}:${two(s)} ${y}`;
      case 'C':
        return two(Math.floor(y / 100));
      case 'd':
        return two(d);
      case 'D':
        return `${two(mo + 1)}/${two(d)}/${two(y % 100)}`;
      case 'e':
        return String(d).padStart(2, ' ');
      case 'f':
        return String(Math.floor(nsecs / 1000)).padStart(6, '0');
      case 'F':
        return `${y}-${two(mo + 1)}-${two(d)}`;
      case 'H':
        return two(h);
      case 'I':
        return two(h % 12 === 0 ? 12 : h % 12);
      case 'j': {
        const start = new Date(y, 0, 1);
        const day = Math.round((new Date(y, mo, d).getTime() - start.getTime()) / 86400000) + 1;
        return String(day).padStart(3, '0');
      }
      case 'k':
        return String(h).padStart(2, ' ');
      case 'l':
        return String(h % 12 === 0 ? 12 : h % 12).padStart(2, ' ');
      case 'm':
        return two(mo + 1);
      case 'M':
        return two(mi);
      case 'n':
        return '\n';
      case 'p':
        return h < 12 ? 'AM' : 'PM';
      case 'P':
        return h < 12 ? 'am' : 'pm';
      case 'r':
        return `${two(h % 12 === 0 ? 12 : h % 12)}:${two(mi)}:${two(s)} ${h < 12 ? 'AM' : 'PM'}`;
      case 'R':
        return `${two(h)}:${two(mi)}`;
      case 's':
        return String(Math.floor(date.getTime() / 1000));
      case 'S':
        return two(s);
      case 't':
        return '\t';
      case 'T':
        return `${two(h)}:${two(mi)}:${two(s)}`;
      case 'u':
        return String(wd === 0 ? 7 : wd);
      case 'w':
        return String(wd);
      case 'x':
        return `${two(mo + 1)}/${two(d)}/${two(y % 100)}`;
      case 'X':
        return `${two(h)}:${two(mi)}:${two(s)}`;
      case 'y':
        return two(y % 100);
      case 'Y':
        return String(y);
      case 'z': {
        const off = -date.getTimezoneOffset();
        const sign = off < 0 ? '-' : '+';
        const a = Math.abs(off);
        return `${sign}${two(Math.floor(a / 60))}${two(a % 60)}`;
      }
      case 'Z': {
        const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' })
          .formatToParts(date)
          .find((p) => p.type === 'timeZoneName');
        const name = part?.value ?? 'UTC';
        return name === 'GMT' && date.getTimezoneOffset() === 0 ? 'UTC' : name;
      }
      default:
        return whole;
    }
  });
}
