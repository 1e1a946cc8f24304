/** The VM's maps: every map type of the kernel that programs in the VM can use, in VM memory. */
export { ArrayMap, ArrayOfMapsMap, FdArrayMap, ProgArrayMap } from './array.js';
export { type MapHost, mapError, VmMap } from './base.js';
export { HashMap } from './hash.js';
export { LpmTrieMap } from './lpm.js';
export { PerfBuffer, PerfEventArrayMap, PerfReader, type PerfRecord } from './perf.js';
export { BloomFilterMap, QueueStackMap } from './queue.js';
export { RingbufMap } from './ringbuf.js';
export { MapRuntime, type MapRuntimeOptions, VM_MAP_TYPES, type VmMapTypeName } from './runtime.js';
export { StackTraceMap } from './stack-trace.js';
