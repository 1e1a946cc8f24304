/** The Linux kernel backend: programs loaded and run through bpf(2). */

export { type BpfObjectKind, openBpfFds } from './fds.js';
export { createMap, KernelMap, MAP_CMD, mapInfoByFd, type OpenOptions, possibleCpus } from './map.js';
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
export { BPF_CMD, errnoName, explainErrno } from './syscall.js';
