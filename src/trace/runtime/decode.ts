/**
 * From bytes to printable values: record args and map keys/values decoded per the code generator's
 * layouts (codegen/records.ts), special kinds resolved (symbols, stacks, user names, timestamps...), and
 * whole maps read from a backend's BpfMap into PrintableMaps (per-CPU values merged, hist buckets grouped
 * by key).
 */
import type { BpfMap } from '../../backend.js';
import {
  type CompiledScript,
  type MapLayout,
  perCpuSlices,
  readBitfield,
  readInt,
  readString,
  reduceTseries,
  type ValueLayout,
} from '../codegen/records.js';
import { strftime } from '../output/printf.js';
import type { MapEntry, MapValue, PrintableMap, Value } from '../output/values.js';
import { inetNtop, type Symbols, strerror } from './resolve.js';

export interface DecodeContext {
  script: CompiledScript;
  symbols: Symbols;
  /** Stack maps by name, for kstack/ustack. */
  stackMap(name: string): BpfMap | undefined;
}

/** glibc's strsignal() descriptions (x86-64 numbering). */
const SIGNAL_TEXT = [
  'Hangup',
  'Interrupt',
  'Quit',
  'Illegal instruction',
  'Trace/breakpoint trap',
  'Aborted',
  'Bus error',
  'Floating point exception',
  'Killed',
  'User defined signal 1',
  'Segmentation fault',
  'User defined signal 2',
  'Broken pipe',
  'Alarm clock',
  'Terminated',
  'Stack fault',
  'Child exited',
  'Continued',
  'Stopped (signal)',
  'Stopped',
  'Stopped (tty input)',
  'Stopped (tty output)',
  'Urgent I/O condition',
  'CPU time limit exceeded',
  'File size limit exceeded',
  'Virtual timer expired',
  'Profiling timer expired',
  'Window changed',
  'I/O possible',
  'Power failure',
  'Bad system call',
];

/** signal_name(): strsignal()'s text; `N/A` beyond the kernel's 64 signals (bpftrace's answer). */
function signalName(n: bigint): string {
  if (n < 0n || n > 64n) return 'N/A';
  const i = Number(n);
  if (i >= 1 && i <= SIGNAL_TEXT.length) return SIGNAL_TEXT[i - 1] as string;
  // glibc keeps 32 and 33 for threads: SIGRTMIN is 34.
  if (i >= 34) return `Real-time signal ${i - 34}`;
  return `Unknown signal ${i}`;
}

function intBits(size: number): 8 | 16 | 32 | 64 {
  return size === 1 ? 8 : size === 2 ? 16 : size === 4 ? 32 : 64;
}

function formatStack(
  ctx: DecodeContext,
  layout: ValueLayout & { kind: 'kstack' | 'ustack' },
  id: bigint,
  pid: number,
): string {
  if (id < 0n) return '';
  const map = ctx.stackMap(layout.stackMap);
  if (!map) return '';
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, Number(id & 0xffffffffn), true);
  let raw: Uint8Array | undefined;
  try {
    raw = map.lookup(key);
  } catch {
    raw = undefined;
  }
  if (!raw) return '';
  let out = '\n';
  for (let i = 0; i + 8 <= raw.length && i / 8 < layout.limit; i += 8) {
    const addr = readInt(raw, i, 8, false);
    if (addr === 0n) break;
    const sym = layout.kind === 'kstack' ? ctx.symbols.ksym(addr, true) : ctx.symbols.usym(addr, pid);
    if (layout.mode === 'perf') out += `\t${addr.toString(16)} ${sym}\n`;
    else if (layout.mode === 'raw') out += `${addr.toString(16)}\n`;
    else out += `        ${sym}\n`;
  }
  return out;
}

/** Decodes the value at `offset` of `bytes` laid out as `layout` into a printable Value. */
export function decodeToValue(ctx: DecodeContext, layout: ValueLayout, bytes: Uint8Array, offset = 0): Value {
  switch (layout.kind) {
    case 'int': {
      const value = readInt(bytes, offset, layout.size, layout.signed);
      const symbol =
        layout.enumValues &&
        (layout.enumValues[value.toString()] ??
          layout.enumValues[BigInt.asIntN(layout.size * 8, value).toString()]);
      return {
        kind: 'int',
        value,
        bits: intBits(layout.size),
        signed: layout.signed,
        ...(symbol !== undefined ? { symbol } : {}),
      };
    }
    case 'bool':
      return { kind: 'bool', value: bytes[offset] !== 0 };
    case 'string':
      return { kind: 'string', value: readString(bytes, offset, layout.size) };
    case 'buffer': {
      const n = Math.min(bytes[offset] ?? 0, layout.size - 1);
      return { kind: 'buffer', bytes: bytes.slice(offset + 1, offset + 1 + n) };
    }
    case 'pointer':
      return { kind: 'pointer', value: readInt(bytes, offset, 8, false) };
    case 'ksym':
      return { kind: 'text', text: ctx.symbols.ksym(readInt(bytes, offset, 8, false)), quoted: true };
    case 'usym': {
      const addr = readInt(bytes, offset, 8, false);
      const pid = Number(readInt(bytes, offset + 8, 4, false));
      return { kind: 'text', text: ctx.symbols.usym(addr, pid), quoted: true };
    }
    case 'kstack':
      return {
        kind: 'text',
        text: formatStack(ctx, layout, readInt(bytes, offset, 8, true), 0),
        quoted: true,
      };
    case 'ustack':
      return {
        kind: 'text',
        text: formatStack(
          ctx,
          layout,
          readInt(bytes, offset, 8, true),
          Number(readInt(bytes, offset + 8, 4, false)),
        ),
        quoted: true,
      };
    case 'inet':
      return {
        kind: 'text',
        text: inetNtop(readInt(bytes, offset, 8, false), bytes.subarray(offset + 8, offset + 24)),
        quoted: true,
      };
    case 'timestamp': {
      const idx = Number(readInt(bytes, offset, 8, false));
      const ns = readInt(bytes, offset + 8, 8, false);
      const wall = ctx.symbols.bootTimeNs() + ns;
      const fmt = ctx.script.actions[idx]?.format ?? '%H:%M:%S';
      return {
        kind: 'text',
        text: strftime(fmt, new Date(Number(wall / 1_000_000n)), Number(wall % 1_000_000_000n)),
        quoted: true,
      };
    }
    case 'username':
      return { kind: 'text', text: ctx.symbols.username(readInt(bytes, offset, 8, false)), quoted: true };
    case 'probe': {
      const i = Number(readInt(bytes, offset, 8, false));
      return { kind: 'text', text: ctx.script.probes[i]?.name ?? '', quoted: true };
    }
    case 'strerror':
      return { kind: 'text', text: strerror(readInt(bytes, offset, 8, false)), quoted: true };
    case 'signal_name':
      return { kind: 'text', text: signalName(readInt(bytes, offset, 8, true)), quoted: true };
    case 'cgroup_path':
      return { kind: 'text', text: ctx.symbols.cgroupPath(readInt(bytes, offset, 8, false)), quoted: true };
    case 'mac_address':
      return {
        kind: 'text',
        text: Array.from(bytes.subarray(offset, offset + 6), (b) =>
          b.toString(16).padStart(2, '0').toUpperCase(),
        ).join(':'),
        quoted: true,
      };
    case 'array': {
      const elems: Value[] = [];
      for (let i = 0; i < layout.length; i++)
        elems.push(decodeToValue(ctx, layout.of, bytes, offset + i * layout.of.size));
      return { kind: 'array', elems };
    }
    case 'tuple':
      return {
        kind: 'tuple',
        elems: layout.fields.map((f) => decodeToValue(ctx, f.layout, bytes, offset + f.offset)),
      };
    case 'record':
    case 'struct':
      return {
        kind: 'record',
        fields: layout.fields.map((f) => ({
          name: f.name ?? '',
          value:
            f.bitWidth !== undefined && f.layout.kind === 'int'
              ? {
                  kind: 'int',
                  value: readBitfield(
                    bytes,
                    offset + f.offset,
                    f.bitOffset ?? 0,
                    f.bitWidth,
                    f.layout.signed,
                  ),
                  signed: f.layout.signed,
                }
              : decodeToValue(ctx, f.layout, bytes, offset + f.offset),
        })),
      };
    case 'none':
      return { kind: 'int', value: 0n };
  }
}

/** The elements of a user key (a tuple layout for `@m[a, b]` gives one Value per element). */
export function decodeKey(ctx: DecodeContext, layout: MapLayout, key: Uint8Array): Value[] {
  if (!layout.keyed) return [];
  const k = layout.key;
  if (k.kind === 'tuple' && k.fields.length > 1 && !k.fields.some((f) => f.name))
    return k.fields.map((f) => decodeToValue(ctx, f.layout, key, f.offset));
  return [decodeToValue(ctx, k, key, 0)];
}

function mergeScalar(layout: MapLayout, raw: Uint8Array, cpus: number): bigint | undefined {
  const slices = layout.perCpu ? perCpuSlices(raw, layout.valueSize, cpus) : [raw];
  const signed = layout.kind === 'count' ? false : layout.signed;
  switch (layout.kind) {
    case 'count':
    case 'sum':
    case 'hist':
    case 'lhist': {
      let total = 0n;
      for (const s of slices) total += readInt(s, 0, 8, signed);
      return signed ? BigInt.asIntN(64, total) : BigInt.asUintN(64, total);
    }
    case 'min':
    case 'max': {
      let best: bigint | undefined;
      for (const s of slices) {
        if (readInt(s, 8, 8, false) === 0n) continue;
        const v = readInt(s, 0, 8, signed);
        if (best === undefined || (layout.kind === 'min' ? v < best : v > best)) best = v;
      }
      return best;
    }
    default:
      return undefined;
  }
}

/**
 * Entries of a map whose key is the script's key followed by a hidden part (a hist bucket, a tseries slot),
 * each with the group of its script key, made by `init` on first sight; groups in first-seen order.
 */
function groupByUserKey<G>(
  map: BpfMap,
  userKeySize: number,
  init: () => G,
): { entries: { key: Uint8Array; value: Uint8Array; group: G }[]; byKey: Map<string, [Uint8Array, G]> } {
  const byKey = new Map<string, [Uint8Array, G]>();
  const entries: { key: Uint8Array; value: Uint8Array; group: G }[] = [];
  for (const [key, value] of map.entries()) {
    const user = key.slice(0, userKeySize);
    const id = Buffer.from(user).toString('hex');
    let g = byKey.get(id);
    if (!g) {
      g = [user, init()];
      byKey.set(id, g);
    }
    entries.push({ key, value, group: g[1] });
  }
  return { entries, byKey };
}

/**
 * Reads a map into the shape the formatters print. Entries keep the map's iteration order. `zeroIfEmpty`:
 * a scalar map without its value reads as the zero value (print(@) before any assignment prints `@: 0`, as
 * bpftrace's always-present scalar maps do).
 */
export function readMap(
  ctx: DecodeContext,
  layout: MapLayout,
  map: BpfMap,
  options: { zeroIfEmpty?: boolean } = {},
): PrintableMap {
  const out = readEntries(ctx, layout, map);
  if (options.zeroIfEmpty && !layout.keyed && out.entries.length === 0) {
    const zero = new Uint8Array(Math.max(layout.valueSize, 16));
    let value: MapValue;
    if (layout.kind === 'avg' || layout.kind === 'stats') value = { kind: 'stats', count: 0n, total: 0n };
    else if (layout.kind === 'hist' || layout.kind === 'lhist') value = { kind: 'buckets', buckets: [] };
    else if (layout.kind === 'plain')
      value = { kind: 'scalar', value: decodeToValue(ctx, layout.value, zero, 0) };
    else value = { kind: 'scalar', value: { kind: 'int', value: 0n, bits: 64, signed: layout.signed } };
    out.entries.push({ key: [], value });
  }
  return out;
}

function readEntries(ctx: DecodeContext, layout: MapLayout, map: BpfMap): PrintableMap {
  const cpus = map.cpus;
  const out: PrintableMap = {
    name: layout.name,
    kind: layout.kind,
    keyed: layout.keyed,
    signed: layout.signed,
    entries: [],
  };
  if (layout.histBits) out.histBits = layout.histBits;
  if (layout.lhist)
    out.lhist = {
      min: Number(layout.lhist.min),
      max: Number(layout.lhist.max),
      step: Number(layout.lhist.step),
    };
  const userKeySize =
    layout.kind === 'hist' || layout.kind === 'lhist' || layout.kind === 'tseries'
      ? (layout.bucketOffset ?? 0)
      : layout.keySize;

  if (layout.kind === 'tseries') {
    const params = layout.tseries;
    if (params) out.tseries = { intervalNs: params.intervalNs, numIntervals: params.numIntervals };
    const groups = groupByUserKey(map, userKeySize, (): { epoch: bigint; value: bigint }[] => []);
    for (const { value, group } of groups.entries) {
      const slices = layout.perCpu ? perCpuSlices(value, layout.valueSize, cpus) : [value];
      group.push(reduceTseries(slices, params?.agg ?? 'none', layout.signed));
    }
    for (const [user, points] of groups.byKey.values())
      out.entries.push({
        key: decodeKey(ctx, layout, user),
        keyBytes: user,
        value: { kind: 'tseries', points },
      });
    return out;
  }

  if (layout.kind === 'hist' || layout.kind === 'lhist') {
    const nBuckets =
      layout.kind === 'lhist' && layout.lhist
        ? Number((layout.lhist.max - layout.lhist.min) / layout.lhist.step) + 2
        : 65 << (layout.histBits ?? 0);
    const groups = groupByUserKey(map, userKeySize, () => new Array<bigint>(nBuckets).fill(0n));
    for (const { key, value, group: buckets } of groups.entries) {
      const bucket = Number(readInt(key, layout.bucketOffset ?? userKeySize, 8, false));
      while (buckets.length <= bucket) buckets.push(0n);
      buckets[bucket] = mergeScalar(layout, value, cpus) ?? 0n;
    }
    for (const [user, buckets] of groups.byKey.values())
      out.entries.push({
        key: decodeKey(ctx, layout, user),
        keyBytes: user,
        value: { kind: 'buckets', buckets },
      });
    return out;
  }

  for (const [key, value] of map.entries()) {
    let mv: MapValue;
    switch (layout.kind) {
      case 'count':
      case 'sum':
      case 'min':
      case 'max': {
        const v = mergeScalar(layout, value, cpus);
        if (v === undefined) continue;
        mv = {
          kind: 'scalar',
          value: { kind: 'int', value: v, bits: 64, signed: layout.kind === 'count' ? false : layout.signed },
        };
        break;
      }
      case 'avg':
      case 'stats': {
        const slices = layout.perCpu ? perCpuSlices(value, layout.valueSize, cpus) : [value];
        let total = 0n;
        let count = 0n;
        for (const s of slices) {
          total += readInt(s, 0, 8, true);
          count += readInt(s, 8, 8, false);
        }
        mv = {
          kind: 'stats',
          count,
          total: layout.signed ? BigInt.asIntN(64, total) : BigInt.asUintN(64, total),
        };
        break;
      }
      default:
        mv = { kind: 'scalar', value: decodeToValue(ctx, layout.value, value, 0) };
    }
    const entry: MapEntry = { key: decodeKey(ctx, layout, key), keyBytes: key, value: mv };
    out.entries.push(entry);
  }
  return out;
}

/** clear(@m): deletes every key. */
export function clearMap(map: BpfMap): void {
  for (const k of [...map.keys()]) map.delete(k);
}

/** zero(@m): every value set to zero, keys kept. */
export function zeroMap(map: BpfMap): void {
  const zero = new Uint8Array(map.valueBufferSize);
  for (const k of [...map.keys()]) {
    try {
      map.update(k, zero);
    } catch {
      // deleted meanwhile
    }
  }
}
