/**
 * tsbpf's public API. Layers, bottom up (see ARCHITECTURE.md): isa (instructions, assemblers,
 * disassembler) and catalog (facts about eBPF); object and btf (what an ELF file says); vm and kernel
 * (the two places programs run).
 */

export type {
  Backend,
  BpfMap,
  Collection,
  CollectionOptions,
  Program,
  TestRunOptions,
  TestRunResult,
} from './backend.js';
export * as catalog from './catalog/index.js';
export { type ErrorCode, isTsbpfError, TsbpfError } from './errors.js';
export { assemble, assembleConformance, assembleLlvm } from './isa/asm/index.js';
export { disassemble, disassembleObject, formatInsn } from './isa/disasm.js';
export { type DecodedInsn, decode, encode, type Insn, imm64, splitImm64, validate } from './isa/insn.js';
export * as opcodes from './isa/opcodes.js';
export { kernelBackend } from './kernel/collection.js';
export * as kernel from './kernel/index.js';
export { type ElfFile, readElf } from './object/elf.js';
export {
  type MapSpec,
  type ObjectSpec,
  type ProgramSpec,
  programByName,
  readObject,
  setConstant,
  setVariable,
} from './object/spec.js';
export { type VerifyOptions, type VerifyResult, verify } from './verifier/index.js';
export { vmBackend } from './vm/backend.js';
export {
  type HelperFn,
  type HelperTable,
  type InterpreterOptions,
  type PreparedProgram,
  prepare,
  type RunInput,
  type RunResult,
  runProgram,
} from './vm/interpreter.js';
