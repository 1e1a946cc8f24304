/**
 * `tsbpf trace -l [PATTERN]`: the probes this machine has, one per line as bpftrace lists them
 * (`tracepoint:syscalls:sys_enter_openat`, `uprobe:/usr/bin/bash:readline`, `software:cpu-clock:`...).
 * Tracepoints come from tracefs's available_events, uprobes from a binary's ELF symbol tables
 * (.symtab and .dynsym functions), kprobes from available_filter_functions when the kernel has kprobes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { HARDWARE_EVENTS, type ProbeSpec, SOFTWARE_EVENTS } from '../probes.js';

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

function tracefs(): string | undefined {
  return TRACEFS.find((d) => existsSync(`${d}/available_events`));
}

/** A bpftrace glob (`*`, `?`, `[...]`) as a RegExp over the whole name. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Every tracepoint as `category:event`. */
export function tracepoints(): string[] {
  const dir = tracefs();
  if (!dir) return [];
  return readFileSync(`${dir}/available_events`, 'utf8')
    .split('\n')
    .filter((l) => l.includes(':'))
    .map((l) => l.trim());
}

/** Function symbols of an ELF binary (.symtab, then .dynsym), without version suffixes, sorted, unique. */
export function elfFunctions(path: string): string[] {
  const bytes = new Uint8Array(readFileSync(path));
  if (bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[4] !== 2) return [];
  const le = bytes[5] === 1;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(dv.getBigUint64(0x28, le));
  const shentsize = dv.getUint16(0x3a, le);
  const shnum = dv.getUint16(0x3c, le);
  const secs = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return {
      type: dv.getUint32(o + 4, le),
      offset: Number(dv.getBigUint64(o + 24, le)),
      size: Number(dv.getBigUint64(o + 32, le)),
      link: dv.getUint32(o + 40, le),
    };
  });
  const names = new Set<string>();
  const dec = new TextDecoder();
  for (const s of secs) {
    if (s.type !== 2 && s.type !== 11) continue;
    const str = secs[s.link];
    if (!str) continue;
    for (let off = s.offset + 24; off + 24 <= s.offset + s.size; off += 24) {
      const type = bytes[off + 4] & 0xf;
      const shndx = dv.getUint16(off + 6, le);
      if (type !== 2 || shndx === 0) continue;
      const nameOff = str.offset + dv.getUint32(off, le);
      let end = nameOff;
      while (end < bytes.length && bytes[end] !== 0) end++;
      let name = dec.decode(bytes.subarray(nameOff, end));
      const at = name.indexOf('@');
      if (at >= 0) name = name.slice(0, at);
      if (name) names.add(name);
    }
  }
  return [...names].sort();
}

/** The probe listing for a pattern (undefined: everything this kernel can attach to). */
export function listProbes(pattern?: string): string[] {
  const out: string[] = [];
  let pat = pattern?.trim();
  if (pat === '') pat = undefined;
  // uprobe:PATH[:FUNC_GLOB] lists a binary's functions.
  const up = pat && /^(uprobe|uretprobe|u|ur):([^:]+)(?::(.*))?$/.exec(pat);
  if (up) {
    const type = up[1] === 'u' ? 'uprobe' : up[1] === 'ur' ? 'uretprobe' : up[1];
    const re = globToRegExp(up[3] ?? '*');
    let fns: string[] = [];
    try {
      fns = elfFunctions(up[2]);
    } catch {
      fns = [];
    }
    for (const f of fns) if (re.test(f)) out.push(`${type}:${up[2]}:${f}`);
    return out;
  }
  const all: string[] = [];
  for (const tp of tracepoints()) all.push(`tracepoint:${tp}`);
  for (const name of Object.keys(SOFTWARE_EVENTS)) all.push(`software:${name}:`);
  for (const name of Object.keys(HARDWARE_EVENTS)) all.push(`hardware:${name}:`);
  for (const unit of ['hz', 'ms', 's', 'us']) all.push(`interval:${unit}:`);
  for (const unit of ['hz', 'ms', 's', 'us']) all.push(`profile:${unit}:`);
  if (!pat) return all;
  let full = pat;
  const aliases: Record<string, string> = {
    t: 'tracepoint',
    s: 'software',
    h: 'hardware',
    i: 'interval',
    p: 'profile',
  };
  const colon = full.indexOf(':');
  if (colon > 0 && aliases[full.slice(0, colon)]) full = aliases[full.slice(0, colon)] + full.slice(colon);
  // A bare pattern matches anywhere in the name, as bpftrace's `-l '*open*'`.
  const re = globToRegExp(full.includes(':') ? full : `*${full}*`);
  return all.filter((n) => re.test(n) || (n.endsWith(':') && re.test(n.slice(0, -1))));
}

/** Expands a wildcard probe spec into concrete ones (tracepoints from tracefs, uprobes from ELF symbols). */
export function expandProbeSpec(spec: ProbeSpec): ProbeSpec[] {
  if (spec.provider === 'tracepoint') {
    const catRe = globToRegExp(spec.target ?? '*');
    const evRe = globToRegExp(spec.func ?? '*');
    return tracepoints()
      .map((tp) => tp.split(':'))
      .filter(([c, e]) => catRe.test(c) && evRe.test(e))
      .map(([c, e]) => ({ ...spec, target: c, func: e, wildcard: false }));
  }
  if (
    (spec.provider === 'uprobe' || spec.provider === 'uretprobe') &&
    spec.target &&
    !/[*?[]/.test(spec.target)
  ) {
    const re = globToRegExp(spec.func ?? '*');
    let fns: string[] = [];
    try {
      fns = elfFunctions(spec.target);
    } catch {
      fns = [];
    }
    return fns.filter((f) => re.test(f)).map((f) => ({ ...spec, func: f, wildcard: false }));
  }
  return [spec];
}
