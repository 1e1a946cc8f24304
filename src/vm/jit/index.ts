/** The WebAssembly JIT: eBPF compiled to a wasm module over the VM's one memory. */
export { type CompiledProgram, compileProgram } from './compile.js';
export { dumpWat, type JitOptions, JitProgram, type JitStats, prepareJit } from './program.js';
