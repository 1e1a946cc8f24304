/**
 * The contract between the tracing code generator (src/trace/codegen/) and the tracing runtime
 * (src/trace/runtime/): what a compiled script is, how every value, map and ring-buffer record is laid
 * out in bytes, and how to decode and merge them. Types and small pure functions only; no I/O.
 *
 * ## Records (BPF → userspace)
 *
 * Every asynchronous action a probe performs (printf, print, exit, clear, time, system, cat, join...) is
 * ONE record written with `bpf_ringbuf_output` to the ring buffer map named {@link RINGBUF_MAP}
 * (`ringbuf`). Every record starts with a 16-byte header, little-endian:
 *
 * ```
 *   u64 action   // an Action value (PRINTF, EXIT, ...)
 *   u64 id       // index into CompiledScript.actions (the ActionFormat), or a map index (see below)
 *   ...payload   // ActionFormat.args: each arg at args[i].offset from the START of the record
 * ```
 *
 * | action        | id                      | payload                                                     |
 * |---------------|-------------------------|-------------------------------------------------------------|
 * | PRINTF        | ActionFormat index      | args (format = ActionFormat.format, printf-style)           |
 * | ERRORF/WARNF  | ActionFormat index      | as PRINTF; the runtime prefixes like bpftrace               |
 * | SYSTEM        | ActionFormat index      | as PRINTF; the runtime formats then runs the command        |
 * | CAT           | ActionFormat index      | as PRINTF; the runtime formats the path then prints the file|
 * | PRINT_VALUE   | ActionFormat index      | one arg: the value of `print(expr)`                          |
 * | TIME          | ActionFormat index      | none (format = the strftime format, default "%H:%M:%S\n")   |
 * | JOIN          | ActionFormat index      | u64 count at 16, then count × JOIN_ARG_SIZE NUL-padded strings at 24 (format = delimiter) |
 * | EXIT          | 0                       | u64 exit code at 16 (the runtime stops, prints maps, exits) |
 * | PRINT_MAP     | MapLayout index         | u64 top at 16, u64 div at 24 (0 = not given)                 |
 * | CLEAR         | MapLayout index         | none: delete every key of the map                           |
 * | ZERO          | MapLayout index         | none: set every value of the map to zero (keep keys)         |
 *
 * Args are laid out like a C struct after the header: each at the next offset aligned to its layout's
 * `align`; integers are always widened to 8 bytes (sign- or zero-extended per `signed`).
 * The record's total size is ActionFormat.size (JOIN: 24 + JOIN_MAX_ARGS × JOIN_ARG_SIZE).
 *
 * If `bpf_ringbuf_output` fails (buffer full) the program adds 1 to key 0 of the array map
 * {@link LOSS_MAP} (u64); the runtime can report "Lost N events" like bpftrace.
 *
 * ## Maps
 *
 * Each `@map` is one BPF map described by a {@link MapLayout}. Scalar maps (`@x = 1`, no key) use the
 * 8-byte key 0 (u64). Keys are encoded with {@link ValueLayout}: integers as 8 bytes (bpftrace widens
 * integer keys to 64 bits), strings NUL-padded to their full size, tuples (several keys or a tuple
 * value) as C structs (each element aligned to its `align`, total size rounded to the largest align).
 *
 * Aggregations live in per-CPU maps (`percpu_hash`): a userspace lookup returns one value per possible
 * CPU, each `valueSize` rounded up to 8 bytes. Merge per {@link ValueKind}:
 *
 * | kind   | per-CPU value                         | merge                                             |
 * |--------|---------------------------------------|---------------------------------------------------|
 * | count  | u64 n                                 | sum                                               |
 * | sum    | i64/u64 total (`signed`)              | sum                                               |
 * | min    | i64/u64 value, u64 isSet (16 bytes)   | min over the CPUs with isSet != 0                 |
 * | max    | i64/u64 value, u64 isSet (16 bytes)   | max over the CPUs with isSet != 0                 |
 * | avg    | i64 total, u64 count (16 bytes)       | sum both; avg = total / count (truncating, signed per `signed`) |
 * | stats  | i64 total, u64 count (16 bytes)       | as avg; prints count, average, total              |
 * | hist   | u64 count; the map key is userKey ++ u64 bucket (see histBucket) | sum per bucket         |
 * | lhist  | u64 count; the map key is userKey ++ u64 bucket (see lhistBucket) | sum per bucket        |
 * | tseries| i64/u64 value, u64 meta, u64 epoch (24 bytes); the map key is userKey ++ u64 bucket (epoch % numIntervals) | see reduceTseries |
 * | plain  | one value of `value` layout; NOT per-CPU (plain `hash`) | none                            |
 *
 * ## Probes and programs
 *
 * One program per probe body and attach point group ({@link ProbeInfo}); its `attach` says what the
 * runtime attaches it to. BEGIN and END are `raw_tracepoint` programs that are never attached: the runtime
 * runs BEGIN once with BPF_PROG_TEST_RUN (ctx = 8 zero bytes) before attaching the other probes (as
 * bpftrace does), and END the same way before printing the maps at exit. Both backends support
 * raw_tracepoint test runs.
 *
 * tseries(v, interval, n[, agg]): epoch = now / interval, with `now` bpf_ktime_get_tai_ns() (bpftrace's
 * software TAI clock; the runtime prints epoch × interval as wall-clock time), or, when the script was
 * compiled with BPFTRACE_DUMMY_TS_MAP=@m, the u64 value of the scalar map @m (bpftrace's test hook). A bucket
 * whose stored epoch is not the current one is reset first (except with no agg, which overwrites). Per agg:
 * none: value = v, meta = now; avg: value += v, meta += 1; sum: value += v; min/max: value = v when meta is
 * 0 or v is better (signed per `signed`), meta = 1. A new bucket is inserted with epoch = the current epoch.
 *
 * exit() also sets the u64 at GLOBALS.exited, and every program but END returns at once when it is set: a
 * probe that fires again before the runtime has stopped (i:ms:1) changes nothing after exit().
 *
 * `elapsed` reads key 0 of the array map {@link GLOBALS_MAP} (u64 start time, CLOCK_BOOTTIME ns, offset
 * GLOBALS.startNs): the runtime test-runs the program named by CompiledScript.init (when defined) once,
 * before BEGIN; it stores bpf_ktime_get_boot_ns() there. `cpid` reads the u64 at GLOBALS.cpid, which the
 * runtime writes (map update of the whole value, before running init) when it starts a child (-c). `nsecs` is bpf_ktime_get_boot_ns() (bpftrace's
 * default clock), and strftime() timestamps are boot-clock nanoseconds.
 */
import type { ObjectSpec } from '../../object/spec.js';
import type { MapKind } from '../output/values.js';
import type { ProbeSpec, ProviderName } from '../probes.js';

/** The ring buffer every record goes to. */
export const RINGBUF_MAP = 'ringbuf';
/** Array map (1 × u64): events that could not be written to the ring buffer. */
export const LOSS_MAP = 'event_loss_counter';
/** Array map (1 entry): runtime globals. */
export const GLOBALS_MAP = 'bt_globals';
/** Byte offsets in the GLOBALS_MAP value. */
export const GLOBALS = { startNs: 0, cpid: 8, exited: 16, size: 24 } as const;
/** Per-CPU array map (1 entry): scratch memory for strings, keys and records (internal to the programs). */
export const SCRATCH_MAP = 'bt_scratch';
/** join(): slots and their size (bpftrace's join_argnum / join_argsize). */
export const JOIN_MAX_ARGS = 16;
export const JOIN_ARG_SIZE = 1024;
/** Record header size (action + id). */
export const HEADER_SIZE = 16;

/** Record kinds (the first u64 of a record). */
export const Action = {
  PRINTF: 1,
  ERRORF: 2,
  WARNF: 3,
  SYSTEM: 4,
  CAT: 5,
  PRINT_VALUE: 6,
  TIME: 7,
  JOIN: 8,
  EXIT: 9,
  PRINT_MAP: 10,
  CLEAR: 11,
  ZERO: 12,
  DEBUGF: 13,
  /** Not a record: the ActionFormat of a strftime() call (its index is the first u64 of a timestamp). */
  STRFTIME: 14,
} as const;
export type ActionKind = keyof typeof Action;

/**
 * How a value is stored (in a map key/value, a variable, a record arg). `size` and `align` in bytes.
 * Integers are little-endian.
 */
export type ValueLayout =
  /** `enumValues`: an enum's constants by value (decimal), printed in place of the number like bpftrace. */
  | {
      kind: 'int';
      size: 1 | 2 | 4 | 8;
      align: number;
      signed: boolean;
      enumName?: string;
      enumValues?: Record<string, string>;
    }
  /** 1 byte, 0 or 1. */
  | { kind: 'bool'; size: 1; align: 1 }
  /** NUL-terminated, NUL-padded to `size` (which includes the NUL). */
  | { kind: 'string'; size: number; align: 1 }
  /** buf(): u8 length, then `size - 1` bytes of data (printed with %r as bpftrace's hex escapes). */
  | { kind: 'buffer'; size: number; align: 1 }
  /** A pointer (8 bytes); `to` is the type name it points to (`struct task_struct`). */
  | { kind: 'pointer'; size: 8; align: 8; to: string }
  /** Fixed-length array of elements (C layout). */
  | { kind: 'array'; size: number; align: number; of: ValueLayout; length: number }
  /** A tuple `(a, b)` or record `(x=a, y=b)` (names set for records), or a struct value; C layout. */
  | {
      kind: 'tuple' | 'record' | 'struct';
      size: number;
      align: number;
      /** Struct name for 'struct'. */
      name?: string;
      /** Bitfields: `bitWidth` bits from bit `bitOffset` of the bytes at `offset`. */
      fields: { name?: string; offset: number; layout: ValueLayout; bitOffset?: number; bitWidth?: number }[];
    }
  /** ksym()/func: u64 kernel address, symbolized by the runtime. */
  | { kind: 'ksym'; size: 8; align: 8 }
  /** usym(): u64 address, u32 pid, u32 probe index (16 bytes). */
  | { kind: 'usym'; size: 16; align: 8 }
  /** kstack: i64 stack id in the stack map named `stackMap` (negative: error). */
  | { kind: 'kstack'; size: 8; align: 8; stackMap: string; mode: string; limit: number }
  /** ustack: i64 stack id, u32 pid, u32 probe index. */
  | { kind: 'ustack'; size: 16; align: 8; stackMap: string; mode: string; limit: number }
  /** ntop(): u64 address family (2 AF_INET, 10 AF_INET6), 16 address bytes (24 bytes). */
  | { kind: 'inet'; size: 24; align: 8 }
  /** strftime(): u64 ActionFormat index (format), u64 boot-clock ns (16 bytes). */
  | { kind: 'timestamp'; size: 16; align: 8 }
  /** username: u64 uid. */
  | { kind: 'username'; size: 8; align: 8 }
  /** probe builtin: u64 index into CompiledScript.probes. */
  | { kind: 'probe'; size: 8; align: 8 }
  /** strerror(): u64 errno. */
  | { kind: 'strerror'; size: 8; align: 8 }
  /** signal_name(): i64 signal number. */
  | { kind: 'signal_name'; size: 8; align: 8 }
  /** cgroup_path(): u64 cgroup id. */
  | { kind: 'cgroup_path'; size: 8; align: 8 }
  /** macaddr(): 6 bytes. */
  | { kind: 'mac_address'; size: 6; align: 1 }
  /** No value (void calls). */
  | { kind: 'none'; size: 0; align: 1 };

/** Aggregation or plain storage of a map's value: the kind the output prints and sorts by. */
export type ValueKind = MapKind;

/** tseries()'s optional fourth argument; 'none' (not given): the last value of each interval. */
export type TseriesAgg = 'none' | 'avg' | 'min' | 'max' | 'sum';

/** tseries(v, intervalNs, numIntervals, agg) parameters (literals, the same for every call on a map). */
export interface TseriesParams {
  intervalNs: bigint;
  numIntervals: bigint;
  agg: TseriesAgg;
}

/** Byte offsets in a tseries bucket value (one CPU's). */
export const TSERIES = { value: 0, meta: 8, epoch: 16, size: 24 } as const;

export interface MapLayout {
  /** Script name: `@x`, or `@` for the anonymous map. */
  name: string;
  /** Name of the BPF map in spec.maps (kernel names keep 15 characters). */
  mapName: string;
  /** Index in spec.maps (what BPF_PSEUDO_MAP_IDX immediates use). */
  mapIndex: number;
  /** BPF map type (catalog name): `hash`, `percpu_hash`, `lru_hash`, `percpu_array`... */
  mapType: string;
  maxEntries: number;
  /** False for a scalar map (key is u64 0). */
  keyed: boolean;
  /** Layout of the user key (a tuple layout for `@m[a, b]`); u64 for scalar maps. */
  key: ValueLayout;
  /** Total BPF key size (user key, plus the u64 bucket for hist/lhist). */
  keySize: number;
  /** For hist/lhist/tseries: offset of the u64 bucket in the BPF key (= key.size rounded up to 8). */
  bucketOffset?: number;
  kind: ValueKind;
  /** Signedness of sum/min/max/avg/stats values. */
  signed: boolean;
  /** Layout of one (per-CPU) value. For 'plain' this is the stored value; else ints as listed above. */
  value: ValueLayout;
  /** BPF value size (one CPU's). */
  valueSize: number;
  perCpu: boolean;
  /** hist(x, k): k (0..5). */
  histBits?: number;
  /** lhist(x, min, max, step). */
  lhist?: { min: bigint; max: bigint; step: bigint };
  tseries?: TseriesParams;
}

/** One format site: a printf/system/cat/errorf call, time(), strftime(), join(), print(value). */
export interface ActionFormat {
  index: number;
  action: ActionKind;
  /** printf-style format (printf, system, cat, errorf, warnf), strftime/time format, join delimiter. */
  format: string;
  /** Arguments after the header. */
  args: { offset: number; layout: ValueLayout }[];
  /** Total record size in bytes. */
  size: number;
  /**
   * errorf/warnf: where the call is, as bpftrace reports it (`stdin:1:9-62`, then the source line and a
   * `~` caret line), followed by the macro calls it was expanded from.
   */
  sites?: { where: string; context: string }[];
}

/** Where the runtime attaches a program. */
export type AttachSpec =
  | { kind: 'begin' }
  | { kind: 'end' }
  | { kind: 'tracepoint'; category: string; event: string }
  | { kind: 'raw_tracepoint'; event: string }
  | {
      kind: 'uprobe';
      path: string;
      /** Symbol (undefined with `address`). */
      func?: string;
      address?: bigint;
      offset: bigint;
      retprobe: boolean;
    }
  | { kind: 'kprobe'; func: string; offset: bigint; retprobe: boolean }
  | { kind: 'usdt'; path: string; provider: string; probe: string }
  /**
   * perf_event_open: `type` PERF_TYPE_* (0 hardware, 1 software), `config` the event, `period` or
   * `frequency` the sampling; `cpus: 'one'` = CPU 0 only (interval), 'all' = every online CPU.
   */
  | {
      kind: 'perf_event';
      type: number;
      config: number;
      period?: bigint;
      frequency?: number;
      cpus: 'one' | 'all';
    };

export interface ProbeInfo {
  /** Index: the value of the `probe` builtin in records. */
  index: number;
  /** Full probe name as bpftrace prints it (`tracepoint:syscalls:sys_enter_openat`, `BEGIN`). */
  name: string;
  provider: ProviderName;
  spec: ProbeSpec;
  /** Program (in spec.programs) to attach or test-run. */
  program: string;
  attach: AttachSpec;
}

export interface CompiledScript {
  /** Maps and programs, loadable by either backend (`backend.load(spec)`). */
  spec: ObjectSpec;
  maps: MapLayout[];
  actions: ActionFormat[];
  probes: ProbeInfo[];
  /** Program to test-run once before BEGIN (sets GLOBALS.startNs); undefined when unused. */
  init: string | undefined;
  /** Name of the ring buffer map. */
  ringbuf: string;
  /** Stack maps (`stack_trace`, key u32 stack id, value `limit` × u64 addresses). */
  stackMaps: { name: string; user: boolean; mode: string; limit: number }[];
  /** Script config (`config = { ... }`). */
  config: Map<string, bigint | string | boolean>;
  /** Warnings (features lowered approximately). */
  warnings: string[];
}

// ----------------------------------------------------------------------------------- bucket math

/**
 * hist() bucket index of `value` with `k` bits of sub-buckets (bpftrace's log2 function):
 * negative → 0; 0..(2^k - 1) → value + 1; otherwise, with l = floor(log2(value)) - k,
 * ((l + 1) << k) + ((value >> l) & (2^k - 1)) + 1. For k = 0: 0 → 1, [2^n, 2^(n+1)) → n + 2.
 */
export function histBucket(value: bigint, k = 0): bigint {
  const v = BigInt.asIntN(64, value);
  if (v < 0n) return 0n;
  const mask = (1n << BigInt(k)) - 1n;
  if (v <= mask) return v + 1n;
  const log2 = BigInt(v.toString(2).length - 1);
  const l = log2 - BigInt(k);
  return ((l + 1n) << BigInt(k)) + ((v >> l) & mask) + 1n;
}

/** Lower bound of hist bucket `index` (for printing); undefined for the negative bucket 0. */
export function histBucketLow(index: bigint, k = 0): bigint | undefined {
  if (index <= 0n) return undefined;
  const n = 1n << BigInt(k);
  if (index - 1n < n) return index - 1n;
  const i = index - 1n;
  const l = (i >> BigInt(k)) - 1n;
  const x = i & (n - 1n);
  return (n + x) << l;
}

/**
 * lhist() bucket index (bpftrace's linear function): value < min → 0; value > max →
 * 1 + (max - min) / step; else 1 + (value - min) / step. Comparisons signed, divisions unsigned.
 */
export function lhistBucket(value: bigint, min: bigint, max: bigint, step: bigint): bigint {
  const v = BigInt.asIntN(64, value);
  if (v < min) return 0n;
  if (v > max) return 1n + BigInt.asUintN(64, max - min) / step;
  return 1n + BigInt.asUintN(64, v - min) / step;
}

// ------------------------------------------------------------------------------------- decoding

/** A decoded value: bigint for integers and address-like kinds, string for strings, arrays for aggregates. */
export type DecodedValue =
  | bigint
  | boolean
  | string
  | Uint8Array
  | DecodedValue[]
  | { [field: string]: DecodedValue };

/** Reads a little-endian integer of `size` bytes. */
export function readInt(bytes: Uint8Array, offset: number, size: number, signed: boolean): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[offset + i] ?? 0);
  return signed ? BigInt.asIntN(size * 8, v) : v;
}

/** A bitfield: `width` bits from bit `bit` of the little-endian bytes at `offset`. */
export function readBitfield(
  bytes: Uint8Array,
  offset: number,
  bit: number,
  width: number,
  signed: boolean,
): bigint {
  const v =
    (readInt(bytes, offset, Math.ceil((bit + width) / 8), false) >> BigInt(bit)) &
    ((1n << BigInt(width)) - 1n);
  return signed ? BigInt.asIntN(width, v) : v;
}

/** Decodes a C string (up to the first NUL) as latin1-safe UTF-8. */
export function readString(bytes: Uint8Array, offset: number, size: number): string {
  const sub = bytes.subarray(offset, offset + size);
  const end = sub.indexOf(0);
  return new TextDecoder().decode(end < 0 ? sub : sub.subarray(0, end));
}

/**
 * Decodes one value. Special kinds come back raw: ksym/username/probe/strerror/cgroup_path/kstack →
 * bigint; usym/ustack → [bigint, pid, probe]; inet → [family, Uint8Array(16)]; timestamp → [formatIndex,
 * ns]; buffer → Uint8Array (length-limited); tuple → array; record/struct → object by field name.
 */
export function decodeValue(layout: ValueLayout, bytes: Uint8Array, offset = 0): DecodedValue {
  switch (layout.kind) {
    case 'int':
      return readInt(bytes, offset, layout.size, layout.signed);
    case 'bool':
      return bytes[offset] !== 0;
    case 'string':
      return readString(bytes, offset, layout.size);
    case 'buffer': {
      const n = Math.min(bytes[offset] ?? 0, layout.size - 1);
      return bytes.slice(offset + 1, offset + 1 + n);
    }
    case 'pointer':
    case 'ksym':
    case 'username':
    case 'probe':
    case 'strerror':
    case 'signal_name':
    case 'cgroup_path':
      return readInt(bytes, offset, 8, false);
    case 'kstack':
      return readInt(bytes, offset, 8, true);
    case 'usym':
    case 'ustack':
      return [
        readInt(bytes, offset, 8, layout.kind === 'ustack'),
        readInt(bytes, offset + 8, 4, false),
        readInt(bytes, offset + 12, 4, false),
      ];
    case 'inet':
      return [readInt(bytes, offset, 8, false), bytes.slice(offset + 8, offset + 24)];
    case 'timestamp':
      return [readInt(bytes, offset, 8, false), readInt(bytes, offset + 8, 8, false)];
    case 'mac_address':
      return bytes.slice(offset, offset + 6);
    case 'array': {
      const out: DecodedValue[] = [];
      const es = layout.of.size;
      for (let i = 0; i < layout.length; i++) out.push(decodeValue(layout.of, bytes, offset + i * es));
      return out;
    }
    case 'tuple':
      return layout.fields.map((f) => decodeValue(f.layout, bytes, offset + f.offset));
    case 'record':
    case 'struct': {
      const out: { [field: string]: DecodedValue } = {};
      for (const f of layout.fields)
        out[f.name ?? ''] =
          f.bitWidth !== undefined && f.layout.kind === 'int'
            ? readBitfield(bytes, offset + f.offset, f.bitOffset ?? 0, f.bitWidth, f.layout.signed)
            : decodeValue(f.layout, bytes, offset + f.offset);
      return out;
    }
    case 'none':
      return 0n;
  }
}

/** Rounds up to a multiple of `a`. */
export const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Per-CPU values as a userspace lookup returns them: `cpus` slices of alignUp(valueSize, 8) bytes. */
export function perCpuSlices(bytes: Uint8Array, valueSize: number, cpus: number): Uint8Array[] {
  const stride = alignUp(valueSize, 8);
  const out: Uint8Array[] = [];
  for (let c = 0; c < cpus; c++) out.push(bytes.subarray(c * stride, c * stride + valueSize));
  return out;
}

/**
 * One tseries bucket (its per-CPU values) reduced like bpftrace: CPUs whose epoch is 0 never wrote it; the
 * others are combined per epoch (none: the greatest meta, the latest write, wins; avg: values and counts
 * add up, then divide; sum: add; min/max) and the newest epoch's value is returned. A bucket no CPU wrote
 * gives epoch 0, value 0, which bpftrace then prints as a point at epoch 0.
 */
export function reduceTseries(
  slices: readonly Uint8Array[],
  agg: TseriesAgg,
  signed: boolean,
): { epoch: bigint; value: bigint } {
  const byEpoch = new Map<bigint, { value: bigint; meta: bigint }>();
  let latest = 0n;
  for (const s of slices) {
    const epoch = readInt(s, TSERIES.epoch, 8, false);
    if (epoch === 0n) continue;
    const value = readInt(s, TSERIES.value, 8, signed);
    const meta = readInt(s, TSERIES.meta, 8, false);
    if (epoch > latest) latest = epoch;
    const cur = byEpoch.get(epoch);
    if (!cur) {
      byEpoch.set(epoch, { value, meta });
      continue;
    }
    switch (agg) {
      case 'none':
        if (meta > cur.meta) {
          cur.value = value;
          cur.meta = meta;
        }
        break;
      case 'avg':
        cur.value += value;
        cur.meta += meta;
        break;
      case 'sum':
        cur.value += value;
        break;
      case 'min':
        if (value < cur.value) cur.value = value;
        break;
      case 'max':
        if (value > cur.value) cur.value = value;
        break;
    }
  }
  const last = byEpoch.get(latest);
  if (latest === 0n || !last) return { epoch: 0n, value: 0n };
  let value = last.value;
  if (agg === 'avg' && last.meta !== 0n) value = value / (signed ? BigInt.asIntN(64, last.meta) : last.meta);
  value = signed ? BigInt.asIntN(64, value) : BigInt.asUintN(64, value);
  return { epoch: latest, value };
}
