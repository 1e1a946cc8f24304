/**
 * How the JIT may inline bpf_map_lookup_elem on a map (the map's identity address is a constant
 * in r1 at the call), as the kernel inlines array lookups:
 * - 'array': value i at base + i * stride for i < maxEntries, else NULL; per-CPU arrays add
 *   cpu * maxEntries * stride, cpu being the u32 at `cpuCell` (VM memory the runtime keeps current).
 * - 'lookup': a host function from the key's address to the value's address (0: no element),
 *   called with plain numbers instead of the generic helper's BigInts.
 * - 'hash': the map keeps an index in VM memory (maps/hash.ts): the lookup runs inside the module
 *   (a function of its own per map: hash the key, probe the table, compare the key copy) when the
 *   key lies in the current stack frame, and goes to `lookup` otherwise (the host checks the key).
 */
export type MapInline =
  | { kind: 'array'; base: number; stride: number; maxEntries: number; cpuCell?: number }
  | { kind: 'lookup'; keySize: number; lookup: (keyAddr: number) => number }
  | {
      kind: 'hash';
      keySize: number;
      /** Address of the index header [table u32, mask u32]. */
      header: number;
      /** Per-CPU maps: value += cpu * stride, cpu being the u32 at cpuCell. */
      stride: number;
      cpuCell?: number;
      lookup: (keyAddr: number) => number;
    };
