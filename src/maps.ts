/**
 * The map interface both backends implement, beside backend.ts: the VM's maps (src/vm/maps/) and the
 * kernel's maps (src/kernel/map.ts). Plain types plus the wording of map errors, nothing backend-specific.
 *
 * Conventions (the kernel's `bpf(2)` map commands, seen from TypeScript):
 * - Keys and values are raw bytes in the machine's (little-endian) layout. A wrong key or value size
 *   is TsbpfError('usage') naming the expected and the given size; nothing is stored.
 * - Per-CPU maps: `lookup` returns, and `update` takes, one value per possible CPU, each rounded up
 *   to 8 bytes and concatenated (the kernel's buffer); `lookupPerCpu`/`updatePerCpu` split/join it.
 * - A missing key is not an error where TypeScript has a natural "nothing": `lookup` → undefined,
 *   `delete` → false, `nextKey` → undefined at the end, `pop`/`peek` → undefined when empty.
 *   Every other refusal throws TsbpfError with `details.errno` set to the kernel's errno
 *   (EEXIST, ENOENT, E2BIG, EINVAL, EPERM, EBUSY, ENOSPC, ENOTSUPP, EOPNOTSUPP).
 */
import {
  E2BIG,
  EBADF,
  EBUSY,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOSPC,
  ENOTSUPP,
  EOPNOTSUPP,
  EPERM,
  errnoName,
} from './errno.js';
import { TsbpfError } from './errors.js';

/** What a map is made of: the `BPF_MAP_CREATE` attributes (the ObjectSpec's map shape). */
export interface MapSpec {
  /** Object name (the kernel keeps 15 characters). */
  name?: string;
  /** `enum bpf_map_type` id, or its name (`hash`, `BPF_MAP_TYPE_HASH`). */
  type: number | string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** `map_flags` (MAP_FLAGS bits of src/catalog/map-types.ts). */
  flags?: number;
  /** Template of the inner maps of array_of_maps / hash_of_maps. */
  innerMap?: MapSpec;
  /** `map_extra`: bloom filter hash count (low 4 bits), arena start address. */
  mapExtra?: bigint;
  /** NUMA node (used with BPF_F_NUMA_NODE). */
  numaNode?: number;
  /** Kernel only: BTF object fd and type ids of key and value. */
  btfFd?: number;
  btfKeyTypeId?: number;
  btfValueTypeId?: number;
  btfVmlinuxValueTypeId?: number;
  /** Initial contents, applied with BPF_ANY after creation. */
  contents?: readonly (readonly [Uint8Array, Uint8Array])[];
  /** Freeze after the initial contents (BPF_MAP_FREEZE), as libbpf does for .rodata. */
  freeze?: boolean;
}

/** One page of `lookupBatch`: the keys and values, and where to resume (undefined: no more). */
export interface BatchPage {
  keys: Uint8Array[];
  values: Uint8Array[];
  /** Opaque cursor for the next call; undefined when the map has been walked to the end. */
  next: Uint8Array | undefined;
}

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  mapExtra: bigint;
}

/** A map of either backend, used from TypeScript. */
export interface BpfMap {
  readonly type: number;
  /** Catalog name of the type (`hash`, `percpu_array`...). */
  readonly typeName: string;
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  /** One value per possible CPU. */
  readonly perCpu: boolean;
  /** Number of possible CPUs (the VM's virtual CPUs, or the kernel's possible CPUs). */
  readonly cpus: number;
  /** Bytes of a value as `lookup` returns and `update` takes it (cpus × round8(valueSize) when per-CPU). */
  readonly valueBufferSize: number;

  /** BPF_MAP_LOOKUP_ELEM: the value, or undefined when there is no such key. */
  lookup(key: Uint8Array): Uint8Array | undefined;
  /** Per-CPU maps: the value on each CPU. */
  lookupPerCpu(key: Uint8Array): Uint8Array[] | undefined;
  /** BPF_MAP_UPDATE_ELEM with BPF_ANY (default), BPF_NOEXIST or BPF_EXIST. */
  update(key: Uint8Array, value: Uint8Array, flags?: number): void;
  updatePerCpu(key: Uint8Array, values: readonly Uint8Array[], flags?: number): void;
  /** BPF_MAP_DELETE_ELEM: true when deleted, false when there was no such key. */
  delete(key: Uint8Array): boolean;
  /** BPF_MAP_LOOKUP_AND_DELETE_ELEM with a key (hash maps). */
  lookupAndDelete(key: Uint8Array): Uint8Array | undefined;
  /** BPF_MAP_GET_NEXT_KEY: the first key without an argument or for a missing key; undefined after the last. */
  nextKey(key?: Uint8Array): Uint8Array | undefined;
  /** Every key, walking with nextKey (a key deleted meanwhile restarts the walk, as in the kernel). */
  keys(): IterableIterator<Uint8Array>;
  entries(): IterableIterator<[Uint8Array, Uint8Array]>;

  /** Queue/stack/bloom filter: BPF_MAP_UPDATE_ELEM with no key (BPF_EXIST overwrites the oldest when full). */
  push(value: Uint8Array, flags?: number): void;
  /** Queue/stack: BPF_MAP_LOOKUP_AND_DELETE_ELEM with no key. */
  pop(): Uint8Array | undefined;
  /** Queue/stack: BPF_MAP_LOOKUP_ELEM with no key. */
  peek(): Uint8Array | undefined;
  /** Bloom filter: whether the value may have been pushed (false means certainly not). */
  mayContain(value: Uint8Array): boolean;

  /** BPF_MAP_LOOKUP_BATCH: up to `count` elements from `cursor` (undefined: the beginning). */
  lookupBatch(count: number, cursor?: Uint8Array): BatchPage;
  /** BPF_MAP_LOOKUP_AND_DELETE_BATCH. */
  lookupAndDeleteBatch(count: number, cursor?: Uint8Array): BatchPage;
  /** BPF_MAP_UPDATE_BATCH: stops at the first refusal (throws; earlier elements stay updated). Returns the count. */
  updateBatch(keys: readonly Uint8Array[], values: readonly Uint8Array[], flags?: number): number;
  /** BPF_MAP_DELETE_BATCH: stops at the first missing key (throws ENOENT; earlier keys stay deleted). */
  deleteBatch(keys: readonly Uint8Array[]): number;

  /** BPF_MAP_FREEZE: no more writes from user space. */
  freeze(): void;
  readonly frozen: boolean;
  info(): MapInfo;
  /** Releases the map (its fd / its VM memory). Idempotent. */
  close(): void;
}

/** Map operations, named as in the kernel. */
export type MapOp =
  | 'BPF_MAP_CREATE'
  | 'BPF_MAP_LOOKUP_ELEM'
  | 'BPF_MAP_UPDATE_ELEM'
  | 'BPF_MAP_DELETE_ELEM'
  | 'BPF_MAP_GET_NEXT_KEY'
  | 'BPF_MAP_LOOKUP_AND_DELETE_ELEM'
  | 'BPF_MAP_FREEZE'
  | 'BPF_MAP_LOOKUP_BATCH'
  | 'BPF_MAP_LOOKUP_AND_DELETE_BATCH'
  | 'BPF_MAP_UPDATE_BATCH'
  | 'BPF_MAP_DELETE_BATCH'
  | 'BPF_OBJ_PIN'
  | 'BPF_OBJ_GET'
  | 'BPF_OBJ_GET_INFO_BY_FD';

/** What an errno means for a map command: "ENOENT (no such key)". */
export function describeMapErrno(op: MapOp, errno: number): string {
  const name = errnoName(errno);
  let why: string;
  switch (errno) {
    case ENOENT:
      why =
        op === 'BPF_OBJ_GET'
          ? 'no such pinned object'
          : op === 'BPF_MAP_GET_NEXT_KEY'
            ? 'no next key'
            : 'no such key (or the queue/stack is empty)';
      break;
    case EEXIST:
      why = 'key already exists (BPF_NOEXIST)';
      break;
    case E2BIG:
      why =
        op === 'BPF_MAP_CREATE'
          ? 'a size or max_entries is too big'
          : 'map is full (or the array index is out of range)';
      break;
    case EINVAL:
      why =
        op === 'BPF_MAP_CREATE'
          ? 'invalid map attributes (key/value size, max_entries, flags or map_extra for this type)'
          : 'invalid argument (flags, or an operation this map type refuses)';
      break;
    case EPERM:
      why =
        op === 'BPF_MAP_CREATE'
          ? 'operation not permitted: needs CAP_BPF or root'
          : 'not permitted: the map is frozen or read-only/write-only from user space';
      break;
    case EBUSY:
      why = op === 'BPF_MAP_FREEZE' ? 'the map is already frozen' : 'busy';
      break;
    case ENOSPC:
      why = op === 'BPF_MAP_UPDATE_ELEM' ? 'map is full' : 'no space: the batch count is too small';
      break;
    case EBADF:
      why = 'bad file descriptor (not a map, or closed)';
      break;
    case ENOTSUPP:
    case EOPNOTSUPP:
      why = 'operation not supported by this map type';
      break;
    case ENOMEM:
      why = 'out of memory';
      break;
    default:
      why = 'failed';
  }
  return `${name} (${why})`;
}

/** The value of every CPU, split out of a per-CPU buffer. */
export function splitPerCpu(buf: Uint8Array, cpus: number, valueSize: number): Uint8Array[] {
  const stride = roundUp8(valueSize);
  const out: Uint8Array[] = [];
  for (let c = 0; c < cpus; c++) out.push(buf.slice(c * stride, c * stride + valueSize));
  return out;
}

/**
 * The kernel's per-CPU value buffer from one value per CPU, each padded to 8 bytes (the reverse of
 * splitPerCpu); `checkValue` refuses a value of the wrong size in the map's own words.
 */
export function joinPerCpu(
  map: BpfMap,
  values: readonly Uint8Array[],
  checkValue: (value: Uint8Array) => void,
): Uint8Array {
  if (!map.perCpu)
    throw new TsbpfError('usage', `updatePerCpu: ${map.typeName} map '${map.name}' is not per-CPU`);
  if (values.length !== map.cpus) {
    throw new TsbpfError(
      'usage',
      `updatePerCpu on map '${map.name}': ${values.length} values given, expected one per CPU (${map.cpus})`,
    );
  }
  const stride = roundUp8(map.valueSize);
  const buf = new Uint8Array(map.valueBufferSize);
  values.forEach((v, c) => {
    checkValue(v);
    buf.set(v, c * stride);
  });
  return buf;
}

export function roundUp8(n: number): number {
  return (n + 7) & ~7;
}
