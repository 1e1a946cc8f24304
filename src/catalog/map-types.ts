/**
 * Every `enum bpf_map_type` of the reference kernel (Linux 6.18) and the rules `BPF_MAP_CREATE`
 * and the verifier apply to it, plus the update/creation flag constants of include/uapi/linux/bpf.h.
 *
 * Ids and flag values are checked against the running kernel's BTF by test/catalog.test.ts. The
 * rules (key/value size, max_entries, allowed map_flags, per-CPU, program/user access) are written
 * from the kernel's `*_map_alloc_check` functions and `check_map_func_compatibility`; the test
 * checks the key-size rules live with BPF_MAP_CREATE. Fields marked `undefined` are not verified.
 */

/** BPF_MAP_UPDATE_ELEM flags (`enum { BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK }`). */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_LOCK = 4;

/** BPF_MAP_CREATE `map_flags` bits. */
export const MAP_FLAGS = {
  BPF_F_NO_PREALLOC: 1 << 0,
  BPF_F_NO_COMMON_LRU: 1 << 1,
  BPF_F_NUMA_NODE: 1 << 2,
  BPF_F_RDONLY: 1 << 3,
  BPF_F_WRONLY: 1 << 4,
  BPF_F_STACK_BUILD_ID: 1 << 5,
  BPF_F_ZERO_SEED: 1 << 6,
  BPF_F_RDONLY_PROG: 1 << 7,
  BPF_F_WRONLY_PROG: 1 << 8,
  BPF_F_CLONE: 1 << 9,
  BPF_F_MMAPABLE: 1 << 10,
  BPF_F_PRESERVE_ELEMS: 1 << 11,
  BPF_F_INNER_MAP: 1 << 12,
  BPF_F_LINK: 1 << 13,
  BPF_F_PATH_FD: 1 << 14,
  BPF_F_VTYPE_BTF_OBJ_FD: 1 << 15,
  BPF_F_TOKEN_FD: 1 << 16,
  BPF_F_SEGV_ON_FAULT: 1 << 17,
  BPF_F_NO_USER_CONV: 1 << 18,
} as const;
export type MapFlag = keyof typeof MAP_FLAGS;

/** Flags every map type accepts in addition to its own (access and NUMA placement). */
export const COMMON_MAP_FLAGS: readonly MapFlag[] = [
  'BPF_F_NUMA_NODE',
  'BPF_F_RDONLY',
  'BPF_F_WRONLY',
  'BPF_F_RDONLY_PROG',
  'BPF_F_WRONLY_PROG',
];

export interface MapType {
  readonly id: number;
  /** `enum bpf_map_type` name without `BPF_MAP_TYPE_`, lowercased. */
  readonly name: string;
  /** Required key size: a number, 'any' (> 0), 'none' (must be 0), or a rule in words. */
  readonly keySize: number | 'any' | 'none' | string | undefined;
  /** Value size rule in words (the kernel's check), or a required number. */
  readonly valueSize: number | string | undefined;
  readonly maxEntries: string | undefined;
  /** Type-specific map_flags accepted beyond COMMON_MAP_FLAGS (not all of those apply to every type). */
  readonly flags: readonly MapFlag[] | undefined;
  /** COMMON_MAP_FLAGS this type refuses with EINVAL (measured with BPF_MAP_CREATE on 6.18). */
  readonly refusedCommonFlags?: readonly MapFlag[];
  readonly perCpu: boolean;
  /** bpf_map_lookup_elem from a program returns a value pointer. */
  readonly progLookup: boolean | undefined;
  /** BPF_MAP_LOOKUP_ELEM from user space. */
  readonly userLookup: boolean | undefined;
  /** BPF_MAP_GET_NEXT_KEY supported. */
  readonly getNextKey: boolean | undefined;
  readonly notes?: string;
}

const HASH_FLAGS: readonly MapFlag[] = ['BPF_F_NO_PREALLOC', 'BPF_F_ZERO_SEED'];
/** fd arrays, stack_trace: "Program read-only/write-only not supported for special maps yet". */
const NO_PROG_ACCESS_FLAGS: readonly MapFlag[] = ['BPF_F_RDONLY_PROG', 'BPF_F_WRONLY_PROG'];
/** Per-CPU maps refuse a NUMA node. */
const NO_NUMA: readonly MapFlag[] = ['BPF_F_NUMA_NODE'];
const STORAGE: Omit<MapType, 'id' | 'name'> = {
  keySize: 4,
  valueSize: '> 0, <= BPF_LOCAL_STORAGE_MAX_VALUE_SIZE',
  maxEntries: 'must be 0',
  flags: ['BPF_F_NO_PREALLOC', 'BPF_F_CLONE'],
  perCpu: false,
  progLookup: false,
  userLookup: true,
  getNextKey: false,
  notes: 'BPF_F_NO_PREALLOC is required; key is an fd (socket, inode, task pidfd, cgroup fd) from user space',
};

// biome-ignore format: one map type per entry
export const MAP_TYPES: readonly MapType[] = [
  { id: 0, name: 'unspec', keySize: undefined, valueSize: undefined, maxEntries: undefined, flags: undefined, perCpu: false, progLookup: undefined, userLookup: undefined, getNextKey: undefined },
  { id: 1, name: 'hash', keySize: 'any', valueSize: '> 0', maxEntries: '> 0', flags: HASH_FLAGS, perCpu: false, progLookup: true, userLookup: true, getNextKey: true },
  { id: 2, name: 'array', keySize: 4, valueSize: '> 0', maxEntries: '> 0', flags: ['BPF_F_MMAPABLE', 'BPF_F_INNER_MAP'], perCpu: false, progLookup: true, userLookup: true, getNextKey: true, notes: 'elements are preallocated and zeroed; delete is refused (EINVAL)' },
  { id: 3, name: 'prog_array', keySize: 4, valueSize: 4, maxEntries: '> 0', flags: [], refusedCommonFlags: NO_PROG_ACCESS_FLAGS, perCpu: false, progLookup: false, userLookup: true, getNextKey: true, notes: 'values are program fds; used by bpf_tail_call' },
  { id: 4, name: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: '> 0 (usually the CPU count)', flags: ['BPF_F_PRESERVE_ELEMS'], refusedCommonFlags: NO_PROG_ACCESS_FLAGS, perCpu: false, progLookup: false, userLookup: false, getNextKey: true, notes: 'values are perf event fds; written by bpf_perf_event_output' },
  { id: 5, name: 'percpu_hash', keySize: 'any', valueSize: '> 0', maxEntries: '> 0', flags: HASH_FLAGS, refusedCommonFlags: NO_NUMA, perCpu: true, progLookup: true, userLookup: true, getNextKey: true },
  { id: 6, name: 'percpu_array', keySize: 4, valueSize: '> 0', maxEntries: '> 0', flags: [], refusedCommonFlags: NO_NUMA, perCpu: true, progLookup: true, userLookup: true, getNextKey: true },
  { id: 7, name: 'stack_trace', keySize: 4, valueSize: 'multiple of 8 (or of sizeof(struct bpf_stack_build_id) with BPF_F_STACK_BUILD_ID)', maxEntries: '> 0', flags: ['BPF_F_STACK_BUILD_ID'], refusedCommonFlags: NO_PROG_ACCESS_FLAGS, perCpu: false, progLookup: false, userLookup: true, getNextKey: true },
  { id: 8, name: 'cgroup_array', keySize: 4, valueSize: 4, maxEntries: '> 0', flags: [], perCpu: false, progLookup: false, userLookup: false, getNextKey: true },
  { id: 9, name: 'lru_hash', keySize: 'any', valueSize: '> 0', maxEntries: '> 0', flags: ['BPF_F_NO_COMMON_LRU', 'BPF_F_ZERO_SEED'], perCpu: false, progLookup: true, userLookup: true, getNextKey: true, notes: 'BPF_F_NO_PREALLOC is refused with ENOTSUPP (524), not EINVAL' },
  { id: 10, name: 'lru_percpu_hash', keySize: 'any', valueSize: '> 0', maxEntries: '> 0', flags: ['BPF_F_NO_COMMON_LRU', 'BPF_F_ZERO_SEED'], refusedCommonFlags: NO_NUMA, perCpu: true, progLookup: true, userLookup: true, getNextKey: true, notes: 'BPF_F_NO_PREALLOC is refused with ENOTSUPP (524), not EINVAL' },
  { id: 11, name: 'lpm_trie', keySize: '4 (u32 prefixlen) + 1..256 data bytes: 5..260 (struct bpf_lpm_trie_key_u8)', valueSize: '> 0', maxEntries: '> 0', flags: ['BPF_F_NO_PREALLOC'], perCpu: false, progLookup: true, userLookup: true, getNextKey: true, notes: 'BPF_F_NO_PREALLOC is required' },
  { id: 12, name: 'array_of_maps', keySize: 4, valueSize: 4, maxEntries: '> 0', flags: [], refusedCommonFlags: NO_PROG_ACCESS_FLAGS, perCpu: false, progLookup: true, userLookup: true, getNextKey: true, notes: 'values are map fds from user space, inner map pointers in programs; needs an inner map template' },
  { id: 13, name: 'hash_of_maps', keySize: 'any', valueSize: 4, maxEntries: '> 0', flags: HASH_FLAGS, perCpu: false, progLookup: true, userLookup: true, getNextKey: true },
  { id: 14, name: 'devmap', keySize: 4, valueSize: '4 or 8 (struct bpf_devmap_val)', maxEntries: '> 0', flags: [], perCpu: false, progLookup: true, userLookup: true, getNextKey: true, notes: 'used by bpf_redirect_map from XDP' },
  { id: 15, name: 'sockmap', keySize: 4, valueSize: '4 or 8', maxEntries: '> 0', flags: [], perCpu: false, progLookup: true, userLookup: true, getNextKey: true },
  { id: 16, name: 'cpumap', keySize: 4, valueSize: '4 or 8 (struct bpf_cpumap_val)', maxEntries: '> 0, <= NR_CPUS', flags: [], perCpu: false, progLookup: false, userLookup: true, getNextKey: true },
  { id: 17, name: 'xskmap', keySize: 4, valueSize: 4, maxEntries: '> 0', flags: [], perCpu: false, progLookup: true, userLookup: false, getNextKey: true },
  { id: 18, name: 'sockhash', keySize: 'any', valueSize: '4 or 8', maxEntries: '> 0', flags: [], perCpu: false, progLookup: true, userLookup: true, getNextKey: true },
  { id: 19, name: 'cgroup_storage', keySize: 'struct bpf_cgroup_storage_key (12) or 8 (cgroup inode id)', valueSize: '> 0, <= PAGE_SIZE', maxEntries: 'must be 0', flags: [], perCpu: false, progLookup: false, userLookup: true, getNextKey: true, notes: 'accessed with bpf_get_local_storage' },
  { id: 20, name: 'reuseport_sockarray', keySize: 4, valueSize: '4 or 8', maxEntries: '> 0', flags: [], perCpu: false, progLookup: false, userLookup: true, getNextKey: true },
  { id: 21, name: 'percpu_cgroup_storage', keySize: 'struct bpf_cgroup_storage_key (12) or 8', valueSize: '> 0, <= PAGE_SIZE', maxEntries: 'must be 0', flags: [], perCpu: true, progLookup: false, userLookup: true, getNextKey: true },
  { id: 22, name: 'queue', keySize: 'none', valueSize: '> 0', maxEntries: '> 0', flags: [], perCpu: false, progLookup: false, userLookup: true, getNextKey: false, notes: 'bpf_map_push_elem/pop/peek; user lookup = peek, lookup_and_delete = pop' },
  { id: 23, name: 'stack', keySize: 'none', valueSize: '> 0', maxEntries: '> 0', flags: [], perCpu: false, progLookup: false, userLookup: true, getNextKey: false },
  { id: 24, name: 'sk_storage', ...STORAGE },
  { id: 25, name: 'devmap_hash', keySize: 4, valueSize: '4 or 8', maxEntries: '> 0', flags: [], perCpu: false, progLookup: true, userLookup: true, getNextKey: true },
  { id: 26, name: 'struct_ops', keySize: 4, valueSize: 'size of the struct_ops value type (from BTF)', maxEntries: 'must be 1', flags: ['BPF_F_LINK'], perCpu: false, progLookup: false, userLookup: true, getNextKey: false },
  { id: 27, name: 'ringbuf', keySize: 'none', valueSize: 0, maxEntries: 'data size in bytes: a power of 2 and a multiple of the page size', flags: [], refusedCommonFlags: ['BPF_F_RDONLY', 'BPF_F_WRONLY', 'BPF_F_RDONLY_PROG', 'BPF_F_WRONLY_PROG'], perCpu: false, progLookup: false, userLookup: false, getNextKey: false, notes: 'bpf_ringbuf_output/reserve/submit; user space reads by mmap' },
  { id: 28, name: 'inode_storage', ...STORAGE },
  { id: 29, name: 'task_storage', ...STORAGE },
  { id: 30, name: 'bloom_filter', keySize: 'none', valueSize: '> 0', maxEntries: '> 0', flags: ['BPF_F_ZERO_SEED'], perCpu: false, progLookup: false, userLookup: true, getNextKey: false, notes: 'map_extra low 4 bits = number of hash functions (default 5); bpf_map_push_elem adds, bpf_map_peek_elem tests' },
  { id: 31, name: 'user_ringbuf', keySize: 'none', valueSize: 0, maxEntries: 'a power of 2 and a multiple of the page size', flags: [], perCpu: false, progLookup: false, userLookup: false, getNextKey: false, notes: 'drained by programs with bpf_user_ringbuf_drain' },
  { id: 32, name: 'cgrp_storage', ...STORAGE },
  { id: 33, name: 'arena', keySize: 'none', valueSize: 0, maxEntries: 'number of pages', flags: ['BPF_F_MMAPABLE', 'BPF_F_SEGV_ON_FAULT', 'BPF_F_NO_USER_CONV'], perCpu: false, progLookup: false, userLookup: false, getNextKey: false, notes: 'BPF_F_MMAPABLE is required' },
];

const BY_NAME = new Map(MAP_TYPES.map((m) => [m.name, m]));

export function mapTypeById(id: number): MapType | undefined {
  return MAP_TYPES[id];
}

/** By name: `hash`, `percpu_array`, or `BPF_MAP_TYPE_HASH`. */
export function mapTypeByName(name: string): MapType | undefined {
  return BY_NAME.get(name.replace(/^BPF_MAP_TYPE_/i, '').toLowerCase());
}
