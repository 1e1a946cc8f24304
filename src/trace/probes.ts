/**
 * Attach point ("probe spec") parsing: `provider:target:func` with bpftrace's aliases (t:, k:, u:, i:...),
 * wildcards, offsets and units. The result is a ProbeSpec; expanding wildcards against the kernel or a binary
 * is the job of a ProbeResolver, which the runtime supplies.
 */
import {
  HARDWARE_EVENTS as CATALOG_HARDWARE_EVENTS,
  SOFTWARE_EVENTS as CATALOG_SOFTWARE_EVENTS,
  type PerfEvent,
} from '../catalog/perf-events.js';
export type ProviderName =
  | 'begin'
  | 'end'
  | 'self'
  | 'test'
  | 'bench'
  | 'kprobe'
  | 'kretprobe'
  | 'uprobe'
  | 'uretprobe'
  | 'usdt'
  | 'tracepoint'
  | 'rawtracepoint'
  | 'fentry'
  | 'fexit'
  | 'software'
  | 'hardware'
  | 'interval'
  | 'profile'
  | 'watchpoint'
  | 'asyncwatchpoint'
  | 'iter';

export const PROVIDER_ALIASES: Record<string, ProviderName> = {
  BEGIN: 'begin',
  begin: 'begin',
  END: 'end',
  end: 'end',
  self: 'self',
  test: 'test',
  bench: 'bench',
  kprobe: 'kprobe',
  k: 'kprobe',
  kretprobe: 'kretprobe',
  kr: 'kretprobe',
  uprobe: 'uprobe',
  u: 'uprobe',
  uretprobe: 'uretprobe',
  ur: 'uretprobe',
  usdt: 'usdt',
  U: 'usdt',
  tracepoint: 'tracepoint',
  t: 'tracepoint',
  rawtracepoint: 'rawtracepoint',
  rt: 'rawtracepoint',
  fentry: 'fentry',
  f: 'fentry',
  kfunc: 'fentry',
  fexit: 'fexit',
  fr: 'fexit',
  kretfunc: 'fexit',
  software: 'software',
  s: 'software',
  hardware: 'hardware',
  h: 'hardware',
  interval: 'interval',
  i: 'interval',
  profile: 'profile',
  p: 'profile',
  watchpoint: 'watchpoint',
  w: 'watchpoint',
  asyncwatchpoint: 'asyncwatchpoint',
  aw: 'asyncwatchpoint',
  iter: 'iter',
  it: 'iter',
};

/** Event name or alias → perf's name, for `software:` and `hardware:` probes. */
function byNameOrAlias(events: readonly PerfEvent[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events) {
    out[e.name] = e.name;
    for (const a of e.aliases) out[a] = e.name;
  }
  return out;
}

export const SOFTWARE_EVENTS = byNameOrAlias(CATALOG_SOFTWARE_EVENTS);
export const HARDWARE_EVENTS = byNameOrAlias(CATALOG_HARDWARE_EVENTS);

export type TimeUnit = 'ns' | 'us' | 'ms' | 's' | 'hz';

export interface ProbeSpec {
  provider: ProviderName;
  /** The provider as written (`t`, `kfunc`, `BEGIN`). */
  written: string;
  /** The optional `name=` prefix. */
  name?: string;
  /** uprobe/uretprobe/usdt binary, tracepoint category, software/hardware event, iter object. */
  target?: string;
  /** Kernel module (kprobe, fentry, rawtracepoint) or `bpf` for fentry:bpf. */
  module?: string;
  /** Function, tracepoint event, usdt probe, test/bench name, self event. */
  func?: string;
  /** usdt namespace. */
  ns?: string;
  /** uprobe language prefix (`cpp`). */
  lang?: string;
  /** `func+offset` */
  offset?: bigint;
  /** Absolute address (uprobe:bin:ADDR, watchpoint:ADDR). */
  address?: bigint;
  /** software/hardware event as written (`cpu` for target `cpu-clock`): what the `probe` builtin shows. */
  event?: string;
  /** interval/profile unit and count; software/hardware sample count. */
  unit?: TimeUnit;
  count?: bigint;
  /** watchpoint length and mode (`rw`, `x`...), or `func+argN`. */
  length?: bigint;
  mode?: string;
  watchArg?: number;
  /** iter pin path. */
  pin?: string;
  /** True when target, func or module holds a wildcard (`*`, `?`, `[...]`). */
  wildcard: boolean;
  /** True when the text uses a positional parameter (`$1`), resolved at run time. */
  positional: boolean;
}

export interface ProbeSpecError {
  message: string;
}

/** Splits on `:` outside double quotes, removing the quotes. */
export function splitAttachPoint(raw: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '"') {
      quoted = !quoted;
      continue;
    }
    if (c === '\\' && quoted && i + 1 < raw.length) {
      cur += raw[++i];
      continue;
    }
    if (c === ':' && !quoted) {
      // `::` outside quotes inside C++ names is not supported unquoted; treat as separator like bpftrace.
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  parts.push(cur);
  return parts;
}

const hasWildcard = (s: string | undefined) => s !== undefined && /[*?[\]]/.test(s);

function parseUint(text: string): bigint | undefined {
  const t = text.replace(/_/g, '');
  if (/^0[xX][0-9a-fA-F]+$/.test(t) || /^[0-9]+$/.test(t)) return BigInt(t);
  const m = /^([0-9]+)[eE]([0-9]+)$/.exec(t);
  if (m) return BigInt(m[1]) * 10n ** BigInt(m[2]);
  return undefined;
}

const DURATION_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  ms: 1000000n,
  s: 1000000000n,
  m: 60000000000n,
  h: 3600000000000n,
  d: 86400000000000n,
};

/** `1s`, `100ms`, `5` -> nanoseconds. */
function parseDuration(text: string): bigint | undefined {
  const m = /^([0-9][0-9_]*|[0-9]+[eE][0-9]+)(ns|us|ms|s|m|h|d)?$/.exec(text);
  if (!m) return undefined;
  const n = parseUint(m[1]);
  if (n === undefined) return undefined;
  return n * DURATION_NS[m[2] ?? 'ns'];
}

/** Splits `func+offset`. */
function splitOffset(func: string): { func: string; offset?: bigint } | undefined {
  const plus = func.lastIndexOf('+');
  if (plus <= 0) return { func };
  const off = parseUint(func.slice(plus + 1));
  if (off === undefined) return undefined;
  return { func: func.slice(0, plus), offset: off };
}

/**
 * Parses one attach point. Returns the spec, or an error whose message is bpftrace's (the caller reports
 * it at the attach point's location).
 */
export function parseProbeSpec(raw: string): ProbeSpec | ProbeSpecError {
  let text = raw;
  let name: string | undefined;
  const eq = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(text);
  if (eq) {
    name = eq[1];
    text = text.slice(eq[0].length);
  }
  const parts = splitAttachPoint(text);
  const written = parts[0];
  const provider = PROVIDER_ALIASES[written];
  if (provider === undefined) return { message: `Invalid probe type: ${written}` };
  const args = parts.slice(1);
  const positional = /\$\d/.test(text);
  const spec: ProbeSpec = { provider, written, wildcard: false, positional };
  if (name !== undefined) spec.name = name;
  const need = (n: number, max = n): ProbeSpecError | undefined => {
    if (args.length < n || args.length > max || args.some((a, i) => a === '' && i < n && !positional))
      return { message: `${provider} probe type requires ${n} argument${n === 1 ? '' : 's'}` };
    return undefined;
  };

  switch (provider) {
    case 'begin':
    case 'end':
      if (args.length > 0) return { message: `${written} probe type requires 0 arguments` };
      break;
    case 'self':
      if (args.length !== 2) return { message: 'self probe type requires 2 arguments' };
      spec.target = args[0];
      spec.func = args[1];
      break;
    case 'test':
    case 'bench': {
      const e = need(1);
      if (e) return e;
      spec.func = args[0];
      break;
    }
    case 'kprobe':
    case 'kretprobe':
    case 'fentry':
    case 'fexit':
    case 'rawtracepoint': {
      if (provider === 'fentry' || provider === 'fexit') {
        if (args[0] === 'bpf' && args.length >= 2) {
          spec.module = 'bpf';
          spec.func = args[args.length - 1];
          if (args.length === 3) spec.target = args[1]; // program id
          spec.wildcard = hasWildcard(spec.func);
          break;
        }
      }
      if (args.length === 0 || args.length > 2 || args[args.length - 1] === '') {
        return { message: `${provider} probe type requires 1 argument` };
      }
      let func = args[args.length - 1];
      if (args.length === 2) spec.module = args[0];
      if (provider === 'kprobe' || provider === 'kretprobe') {
        if (/^0[xX][0-9a-fA-F]+$|^[0-9]+$/.test(func) && args.length === 1) {
          spec.address = BigInt(func);
          break;
        }
        const split = splitOffset(func);
        if (!split) return { message: `Invalid offset in ${raw}` };
        if (split.offset !== undefined) {
          if (provider === 'kretprobe') return { message: 'Offset not allowed for kretprobe' };
          spec.offset = split.offset;
        }
        func = split.func;
      }
      spec.func = func;
      spec.wildcard = hasWildcard(spec.func) || hasWildcard(spec.module);
      break;
    }
    case 'uprobe':
    case 'uretprobe': {
      if (args.length < 1 || args.length > 3)
        return { message: `${provider} probe type requires 2 arguments` };
      if (args.length === 1) {
        // uprobe:func (with -p or -c): binary given on the command line.
        spec.func = args[0];
      } else {
        spec.target = args[0];
        let func = args[args.length - 1];
        if (args.length === 3) spec.lang = args[1];
        if (func === '') return { message: `${provider} probe type requires 2 arguments` };
        if (/^0[xX][0-9a-fA-F]+$|^[0-9]+$/.test(func)) {
          spec.address = BigInt(func);
          func = '';
        } else {
          const split = splitOffset(func);
          if (!split) return { message: `Invalid offset in ${raw}` };
          if (split.offset !== undefined) {
            if (provider === 'uretprobe') return { message: 'Offset not allowed for uretprobe' };
            spec.offset = split.offset;
          }
          func = split.func;
        }
        if (func !== '') spec.func = func;
      }
      spec.wildcard = hasWildcard(spec.func) || hasWildcard(spec.target);
      break;
    }
    case 'usdt': {
      if (args.length < 1 || args.length > 3) return { message: 'usdt probe type requires 2 or 3 arguments' };
      if (args.length === 1) {
        spec.func = args[0];
      } else {
        spec.target = args[0];
        if (args.length === 3) spec.ns = args[1];
        spec.func = args[args.length - 1];
      }
      spec.wildcard = hasWildcard(spec.func) || hasWildcard(spec.ns) || hasWildcard(spec.target);
      break;
    }
    case 'tracepoint': {
      const e = need(2);
      if (e) return e;
      spec.target = args[0];
      spec.func = args[1];
      spec.wildcard = hasWildcard(spec.target) || hasWildcard(spec.func);
      break;
    }
    case 'software':
    case 'hardware': {
      if (args.length < 1 || args.length > 2 || args[0] === '')
        return { message: `${provider} probe type requires 1 or 2 arguments` };
      const table = provider === 'software' ? SOFTWARE_EVENTS : HARDWARE_EVENTS;
      const event = table[args[0]];
      if (event === undefined && !positional) return { message: `Invalid ${provider} event: ${args[0]}` };
      spec.target = event ?? args[0];
      spec.event = args[0];
      if (args.length === 2 && args[1] !== '') {
        const n = parseUint(args[1]);
        if (n === undefined && !positional)
          return { message: `Invalid count for ${provider} probe: ${args[1]}` };
        if (n !== undefined) spec.count = n;
      }
      break;
    }
    case 'interval':
    case 'profile': {
      if (args.length === 1) {
        const ns = parseDuration(args[0]);
        if (ns === undefined && !positional)
          return { message: `${provider} probe type requires 2 arguments` };
        spec.unit = 'ns';
        if (ns !== undefined) spec.count = ns;
        break;
      }
      if (args.length !== 2) return { message: `${provider} probe type requires 2 arguments` };
      const unit = args[0];
      if (!['ns', 'us', 'ms', 's', 'hz'].includes(unit) && !positional)
        return { message: `${unit} is not an accepted unit of time` };
      spec.unit = unit as TimeUnit;
      const n = parseUint(args[1]);
      if (n === undefined && !positional)
        return { message: `${provider} rate/period must be an integer: ${args[1]}` };
      if (n !== undefined) {
        if (n === 0n) return { message: `${provider} period/frequency must be greater than 0` };
        spec.count = n;
      }
      break;
    }
    case 'watchpoint':
    case 'asyncwatchpoint': {
      if (args.length !== 3) return { message: `${provider} probe type requires 3 arguments` };
      const addr = parseUint(args[0]);
      if (addr !== undefined) spec.address = addr;
      else {
        const m = /^(.+)\+arg([0-9]+)$/.exec(args[0]);
        if (!m) return { message: `Invalid ${provider} address: ${args[0]}` };
        spec.func = m[1];
        spec.watchArg = Number(m[2]);
      }
      const len = parseUint(args[1]);
      if (len === undefined || ![1n, 2n, 4n, 8n].includes(len))
        return { message: `${provider} length must be one of (1,2,4,8)` };
      spec.length = len;
      if (!/^(r|w|x|rw|wr)$/.test(args[2]))
        return { message: `${provider} mode must be combination of (r,w,x)` };
      spec.mode = args[2];
      break;
    }
    case 'iter': {
      if (args.length < 1 || args.length > 2 || args[0] === '')
        return { message: 'iter probe type requires 1 argument' };
      spec.target = args[0];
      if (args.length === 2) spec.pin = args[1];
      spec.wildcard = hasWildcard(spec.target);
      break;
    }
  }
  return spec;
}

export function isProbeSpecError(x: ProbeSpec | ProbeSpecError): x is ProbeSpecError {
  return (x as ProbeSpecError).message !== undefined;
}

/** The canonical name of a probe (what the `probe` builtin holds for a non-wildcard probe). */
export function probeName(spec: ProbeSpec): string {
  const p = spec.provider;
  switch (p) {
    case 'begin':
    case 'end':
      return spec.written === 'BEGIN' || spec.written === 'END' ? spec.written : p;
    case 'interval':
    case 'profile':
      return spec.unit === 'ns' && spec.count !== undefined
        ? `${p}:${spec.count}`
        : `${p}:${spec.unit}:${spec.count ?? ''}`;
    case 'software':
    case 'hardware':
      return `${p}:${spec.event ?? spec.target}:${spec.count ?? ''}`;
    case 'tracepoint':
      return `${p}:${spec.target}:${spec.func}`;
    case 'uprobe':
    case 'uretprobe': {
      const func =
        spec.func !== undefined
          ? `${spec.func}${spec.offset !== undefined ? `+${spec.offset}` : ''}`
          : `0x${(spec.address ?? 0n).toString(16)}`;
      return [p, spec.target, spec.lang, func].filter((x) => x !== undefined).join(':');
    }
    case 'usdt':
      return [p, spec.target, spec.ns, spec.func].filter((x) => x !== undefined).join(':');
    case 'watchpoint':
    case 'asyncwatchpoint':
      return `${p}:${spec.func !== undefined ? `${spec.func}+arg${spec.watchArg}` : `0x${(spec.address ?? 0n).toString(16)}`}:${spec.length}:${spec.mode}`;
    case 'iter':
      return spec.pin !== undefined ? `${p}:${spec.target}:${spec.pin}` : `${p}:${spec.target}`;
    case 'self':
      return `${p}:${spec.target}:${spec.func}`;
    default: {
      const func = `${spec.func ?? `0x${(spec.address ?? 0n).toString(16)}`}${spec.offset !== undefined ? `+${spec.offset}` : ''}`;
      return spec.module !== undefined ? `${p}:${spec.module}:${func}` : `${p}:${func}`;
    }
  }
}

/**
 * Expands wildcard attach points into concrete probes (kernel functions from available_filter_functions,
 * tracepoints from tracefs, symbols of a binary). Supplied by the runtime; the front end only declares it.
 */
export interface ProbeResolver {
  /** Concrete specs for one (possibly wildcarded) spec; empty when nothing matches. */
  expand(spec: ProbeSpec): ProbeSpec[];
}

/** Probe types whose programs see function arguments as registers (`arg0`...). */
export function hasRegisterArgs(p: ProviderName): boolean {
  return p === 'kprobe' || p === 'uprobe' || p === 'usdt' || p === 'rawtracepoint';
}

/** Probe types with an `args` structure. */
export function hasArgsStruct(p: ProviderName): boolean {
  return p === 'tracepoint' || p === 'rawtracepoint' || p === 'fentry' || p === 'fexit' || p === 'uprobe';
}

/** Probe types with a return value. */
export function hasRetval(p: ProviderName): boolean {
  return p === 'kretprobe' || p === 'uretprobe' || p === 'fexit';
}
