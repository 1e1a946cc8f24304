/**
 * `tsbpf trace -l [PATTERN]`: the probes this machine has, one per line as bpftrace lists them
 * (`tracepoint:syscalls:sys_enter_openat`, `rawtracepoint:vmlinux:sched_switch`,
 * `uprobe:/usr/bin/bash:readline`, `software:cpu-clock:`...). Tracepoints come from tracefs's
 * available_events, raw tracepoints from the kernel's BTF (`btf_trace_NAME` typedefs), uprobes from a
 * binary's ELF symbol tables (.symtab and .dynsym functions). With -v each probe is followed by its
 * arguments, and `struct NAME` patterns list the kernel's types (their C definitions with -v).
 * kprobes and fentry are not listed: tsbpf cannot attach them (and this kind of kernel has neither).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { Btf } from '../../btf/btf.js';
import { dumpBtfC } from '../../btf/dump-c.js';
import { parseBtf } from '../../btf/parse.js';
import { vmlinuxBtf } from '../../btf/vmlinux.js';
import { readFunctionSymbols, STT_FUNC } from '../../kernel/elf-symbols.js';
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
  return [...new Set(elfFunctionSymbols(path).map((f) => f.name))].sort();
}

/** A function symbol of an ELF binary: its name (no version suffix), address and size. */
export interface ElfFunction {
  name: string;
  addr: bigint;
  size: bigint;
}

/** The defined function symbols of a 64-bit ELF binary (.symtab, then .dynsym); empty when not one. */
export function elfFunctionSymbols(path: string): ElfFunction[] {
  const symbols = readFunctionSymbols(new Uint8Array(readFileSync(path))) ?? [];
  return symbols.filter((s) => s.type === STT_FUNC).map(({ name, addr, size }) => ({ name, addr, size }));
}

/** The kernel's BTF objects: vmlinux, then each loaded module's (split on vmlinux), by name. */
function btfObjects(): { name: string; btf: Btf }[] {
  const base = vmlinuxBtf();
  if (!base) return [];
  const out = [{ name: 'vmlinux', btf: base }];
  let modules: string[] = [];
  try {
    modules = readdirSync('/sys/kernel/btf').filter((m) => m !== 'vmlinux');
  } catch {
    modules = [];
  }
  for (const m of modules.sort()) {
    try {
      out.push({
        name: m,
        btf: parseBtf(new Uint8Array(readFileSync(`/sys/kernel/btf/${m}`)), { base, lazy: true }),
      });
    } catch {
      // unreadable module BTF: its raw tracepoints are not listed
    }
  }
  return out;
}

/** A type as a C declaration without a name (`struct sk_buff *`, `const char *`), as libbpf prints one. */
export function cTypeName(btf: Btf, id: number, depth = 0): string {
  if (depth > 32) return '?';
  const t = btf.type(id);
  const star = (inner: string) => (inner.endsWith('*') ? `${inner}*` : `${inner} *`);
  switch (t.kind) {
    case 'UNKN':
      return 'void';
    case 'INT':
    case 'FLOAT':
    case 'TYPEDEF':
      return t.name;
    case 'STRUCT':
    case 'UNION':
      return `${t.kind === 'STRUCT' ? 'struct' : 'union'} ${t.name || '(anon)'}`;
    case 'ENUM':
    case 'ENUM64':
      return `enum ${t.name || '(anon)'}`;
    case 'FWD':
      return `${t.fwdKind} ${t.name}`;
    case 'CONST':
    case 'VOLATILE':
      return `${t.kind === 'CONST' ? 'const' : 'volatile'} ${cTypeName(btf, t.type, depth + 1)}`;
    case 'RESTRICT':
    case 'TYPE_TAG':
      return cTypeName(btf, t.type, depth + 1);
    case 'PTR': {
      const to = btf.type(t.type);
      if (to.kind === 'FUNC_PROTO') {
        const params = to.params.map((p) => (p.type === 0 ? '...' : cTypeName(btf, p.type, depth + 1)));
        return `${cTypeName(btf, to.returnType, depth + 1)} (*)(${params.join(', ') || 'void'})`;
      }
      return star(cTypeName(btf, t.type, depth + 1));
    }
    case 'ARRAY':
      return `${cTypeName(btf, t.type, depth + 1)}[${t.nelems}]`;
    default:
      return t.name || t.kind.toLowerCase();
  }
}

interface RawTracepoint {
  module: string;
  event: string;
  /** Its arguments, `TYPE NAME` (without the leading `void *__data` every one has). */
  params(): string[];
}

let rawTpCache: RawTracepoint[] | undefined;
/** Raw tracepoints, from the `btf_trace_EVENT` typedefs (pointers to the probe's prototype) in BTF. */
export function rawTracepoints(): RawTracepoint[] {
  if (rawTpCache) return rawTpCache;
  const out: RawTracepoint[] = [];
  for (const { name, btf } of btfObjects()) {
    // By name prefix: walking `btf.types` would decode all of a lazily parsed vmlinux.
    for (const id of btf.findAllByNamePrefix('btf_trace_')) {
      if (id < btf.startId) continue;
      const t = btf.type(id);
      if (t.kind !== 'TYPEDEF' || !t.name.startsWith('btf_trace_')) continue;
      const typedefId = id;
      out.push({
        module: name,
        event: t.name.slice('btf_trace_'.length),
        params: () => {
          // The typedef's prototype has no parameter names; the probe function's (`__bpf_trace_EVENT`,
          // same prototype) does.
          const event = t.name.slice('btf_trace_'.length);
          const fn = [`__bpf_trace_${event}`, `__probestub_${event}`]
            .map((n) => btf.findByName(n, 'FUNC'))
            .find((f) => f !== undefined);
          let proto = fn?.kind === 'FUNC' ? btf.type(fn.type) : undefined;
          if (proto?.kind !== 'FUNC_PROTO') {
            const ptr = btf.type(btf.resolve(typedefId));
            proto = ptr.kind === 'PTR' ? btf.type(ptr.type) : undefined;
          }
          if (proto?.kind !== 'FUNC_PROTO') return [];
          return proto.params.slice(1).map((p) => `${cTypeName(btf, p.type)} ${p.name}`.trimEnd());
        },
      });
    }
  }
  out.sort((a, b) =>
    a.module !== b.module
      ? a.module < b.module
        ? -1
        : 1
      : a.event < b.event
        ? -1
        : a.event > b.event
          ? 1
          : 0,
  );
  rawTpCache = out;
  return out;
}

/** A tracepoint's fields after the common ones, `TYPE NAME` as its tracefs format file declares them. */
export function tracepointParams(category: string, event: string): string[] {
  const dir = tracefs();
  if (!dir) return [];
  let text: string;
  try {
    text = readFileSync(`${dir}/events/${category}/${event}/format`, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  // The common_* fields come first, ended by an empty line.
  const start = lines.findIndex((l) => l.trim() === '');
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    const m = /^\tfield:([^;]*);/.exec(l);
    if (m) out.push(m[1]);
  }
  return out;
}

/** `struct NAME` / `union NAME` / `enum NAME` patterns list types. */
export function isTypePattern(pattern: string): boolean {
  return /^(struct|union|enum)\s/.test(pattern.trim());
}

/**
 * Kernel types matching a `struct GLOB` pattern: their names, or with `verbose` their C definitions
 * prefixed by the BTF object they come from (`vmlinux: struct task_struct {`...).
 */
export function listTypes(pattern: string, verbose: boolean): string[] {
  const re = globToRegExp(pattern.trim().replace(/\s+/g, ' '));
  const names = new Set<string>();
  const defs: string[] = [];
  for (const { name: module, btf } of btfObjects()) {
    const ids: number[] = [];
    const wanted = new Set<string>();
    for (let id = btf.startId; id < btf.types.length; id++) {
      const t = btf.types[id];
      if (!t.name) continue;
      const tag =
        t.kind === 'STRUCT'
          ? 'struct'
          : t.kind === 'UNION'
            ? 'union'
            : t.kind === 'ENUM' || t.kind === 'ENUM64'
              ? 'enum'
              : '';
      if (!tag || !re.test(`${tag} ${t.name}`)) continue;
      if (!verbose) names.add(`${tag} ${t.name}`);
      else if (!wanted.has(`${tag} ${t.name}`)) {
        wanted.add(`${tag} ${t.name}`);
        ids.push(id);
      }
    }
    if (!verbose || ids.length === 0) continue;
    // The dump holds what the wanted types need too; only the wanted definitions are listed.
    let block: string[] | undefined;
    for (const line of dumpBtfC(btf, { ids, bare: true }).split('\n')) {
      if (block) {
        block.push(line);
        if (line === '};') {
          defs.push(`${module}: ${block.join('\n')}`);
          block = undefined;
        }
      } else if (line.endsWith(' {') && wanted.has(line.slice(0, -2))) {
        wanted.delete(line.slice(0, -2));
        block = [line];
      }
    }
  }
  return verbose ? defs : [...names].sort();
}

export interface ListOptions {
  /** -v: each probe's arguments under it, types' definitions. */
  verbose?: boolean;
}

/**
 * The probe listing for a pattern (undefined: everything this kernel can attach to); a comma-separated
 * pattern lists each part in turn.
 */
export function listProbes(pattern?: string, options: ListOptions = {}): string[] {
  const parts = pattern?.split(',').map((p) => p.trim().replace(/\s+/g, ' ')) ?? [undefined];
  const out: string[] = [];
  for (const part of parts) {
    if (part !== undefined && isTypePattern(part)) out.push(...listTypes(part, options.verbose ?? false));
    else out.push(...listOne(part, options.verbose ?? false));
  }
  return out;
}

function listOne(pattern: string | undefined, verbose: boolean): string[] {
  const out: string[] = [];
  let pat = pattern?.trim();
  if (pat === '' || pat === '*' || pat === '*:*') pat = undefined;
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
  // Each probe with the other names it is matched under and (with -v) its arguments.
  const all: { name: string; alt?: string; params?: () => string[] }[] = [];
  let full = pat ?? '*';
  const aliases: Record<string, string> = {
    t: 'tracepoint',
    rt: 'rawtracepoint',
    s: 'software',
    h: 'hardware',
    i: 'interval',
    p: 'profile',
  };
  const colon = full.indexOf(':');
  if (colon > 0 && aliases[full.slice(0, colon)]) full = aliases[full.slice(0, colon)] + full.slice(colon);
  const type = full.includes(':') ? full.slice(0, full.indexOf(':')) : '*';
  const typeRe = globToRegExp(type);
  for (const tp of typeRe.test('tracepoint') ? tracepoints() : []) {
    const [category, event] = tp.split(':');
    all.push({ name: `tracepoint:${tp}`, params: () => tracepointParams(category, event) });
  }
  for (const rt of typeRe.test('rawtracepoint') ? rawTracepoints() : [])
    all.push({
      name: `rawtracepoint:${rt.module}:${rt.event}`,
      alt: `rawtracepoint:${rt.event}`,
      params: rt.params,
    });
  for (const name of Object.keys(SOFTWARE_EVENTS)) all.push({ name: `software:${name}:` });
  for (const name of Object.keys(HARDWARE_EVENTS)) all.push({ name: `hardware:${name}:` });
  for (const unit of ['hz', 'ms', 's', 'us']) all.push({ name: `interval:${unit}:` });
  for (const unit of ['hz', 'ms', 's', 'us']) all.push({ name: `profile:${unit}:` });
  // A bare pattern matches anywhere in the name, as bpftrace's `-l '*open*'`.
  const re = globToRegExp(full.includes(':') ? full : `*${full}*`);
  const matches = (n: string) => re.test(n) || (n.endsWith(':') && re.test(n.slice(0, -1)));
  for (const p of all) {
    if (pat !== undefined && !matches(p.name) && !(p.alt !== undefined && matches(p.alt))) continue;
    out.push(p.name);
    if (verbose && p.params) for (const param of p.params()) out.push(`    ${param}`);
  }
  return out;
}

/**
 * Whether raw tracepoint EVENT exists: a `btf_trace_EVENT` typedef in MODULE's BTF (`vmlinux` or a loaded
 * module), or in any of them when no module is given. True when the kernel has no BTF (the attach decides).
 */
export function rawTracepointExists(module: string | undefined, event: string): boolean {
  const name = `btf_trace_${event}`;
  const base = vmlinuxBtf();
  if (!base) return true;
  if (module === undefined || module === 'vmlinux') {
    if (base.findByName(name, 'TYPEDEF')) return true;
    if (module === 'vmlinux') return false;
  }
  let modules: string[] = [];
  try {
    modules = readdirSync('/sys/kernel/btf').filter(
      (m) => m !== 'vmlinux' && (module === undefined || m === module),
    );
  } catch {
    modules = [];
  }
  for (const m of modules) {
    try {
      const btf = parseBtf(new Uint8Array(readFileSync(`/sys/kernel/btf/${m}`)), { base, lazy: true });
      if (btf.findByName(name, 'TYPEDEF')) return true;
    } catch {
      // unreadable module BTF: not found there
    }
  }
  return false;
}

/**
 * Expands a probe spec into concrete ones (tracepoints from tracefs, uprobes from ELF symbols); empty when
 * nothing matches. A spec without wildcards expands to itself when it exists (tracepoints, raw tracepoints).
 */
export function expandProbeSpec(spec: ProbeSpec): ProbeSpec[] {
  if (spec.provider === 'rawtracepoint' && !spec.wildcard && spec.func !== undefined)
    return rawTracepointExists(spec.module, spec.func) ? [spec] : [];
  if (spec.provider === 'rawtracepoint' && spec.wildcard) {
    const modRe = globToRegExp(spec.module ?? '*');
    const evRe = globToRegExp(spec.func ?? '*');
    return rawTracepoints()
      .filter((rt) => modRe.test(rt.module) && evRe.test(rt.event))
      .map((rt) => ({ ...spec, module: rt.module, func: rt.event, wildcard: false }));
  }
  if (spec.provider === 'tracepoint' && !spec.wildcard) {
    // Without tracefs nothing can be told: the attach reports it.
    const dir = tracefs();
    return !dir || existsSync(`${dir}/events/${spec.target}/${spec.func}`) ? [spec] : [];
  }
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
