/** The Linux kernel backend: programs loaded and run through bpf(2). */

export { errnoName } from '../errno.js';
export {
  type KernelBackend,
  KernelCollection,
  type KernelCollectionOptions,
  KernelProgram,
  kernelBackend,
} from './collection.js';
export { type BpfObjectKind, openBpfFds } from './fds.js';
export { type ObjectKind, objectIds, progInfoByFd } from './info.js';
export {
  type AttachOptions,
  attachCgroup,
  attachPerfEvent,
  attachProgram,
  attachRawTracepoint,
  attachSocketFilter,
  attachTcx,
  attachTracepoint,
  attachUprobe,
  attachXdp,
  type Link,
} from './link.js';
export { createMap, KernelMap, MAP_CMD, mapInfoByFd, type OpenOptions, possibleCpus } from './map.js';
export { type FeatureReport, probeFeatures, probeHelper, probeMapType, probeProgramType } from './probe.js';
export {
  bpfAvailable,
  closeFd,
  type LoadedProgram,
  type LoadOptions,
  loadAndRun,
  loadProgram,
  type ProgramInfo,
  programInfo,
  type TestRunOptions,
  type TestRunResult,
  testRun,
} from './program.js';
export { openRingBuffer, RingBuffer, type RingBufferStats } from './ringbuf.js';
export { BPF_CMD, explainErrno } from './syscall.js';
