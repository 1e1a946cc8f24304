/**
 * The engine switch: one way to prepare a program for the VM, whichever engine runs it.
 *
 *   prepareProgram(insns, { engine: 'jit', helpers, budget, memory }).run({ mem })
 *
 * Both engines take the same options, refuse the same programs with the same errors, and return
 * the same PreparedProgram ({ run(input) → { r0, insnCount, mem } }). The JIT is the default: every
 * suite that runs programs runs under both engines (ENGINES) with the same results.
 *
 * This is the ISA-level API, and it does NOT verify: prepareProgram/runWith run raw instructions
 * with only the VM's run-time checks (every memory access checked against the address space's
 * regions, the instruction budget, the interpreter's decode and register checks). The conformance
 * suite and `tsbpf run-raw` use it to run programs no verifier would accept. Programs from objects
 * go through vmBackend().load(), which runs tsbpf's verifier first (src/verifier) and refuses what
 * it rejects unless the caller opts out with `unverified: true`. A caller that verified raw
 * instructions itself (src/verifier/index.ts verify() accepted exactly these insns) may pass
 * `verified: true`, which lets the JIT drop the instruction budget counter; never pass it otherwise,
 * or an endless loop runs forever.
 */
import { TsbpfError } from '../errors.js';
import type { Insn } from '../isa/insn.js';
import {
  type InterpreterOptions,
  type PreparedProgram,
  prepare,
  type RunInput,
  type RunResult,
} from './interpreter.js';
import { dumpWat, type JitOptions, JitProgram, prepareJit } from './jit/program.js';

export type Engine = 'jit' | 'interpreter';
export const ENGINES: readonly Engine[] = ['interpreter', 'jit'];
export const DEFAULT_ENGINE: Engine = 'jit';

export interface EngineOptions extends InterpreterOptions {
  /** Which engine runs the program (default DEFAULT_ENGINE). */
  engine?: Engine;
  /** JIT only: constant blinding (bpf_jit_harden). Ignored by the interpreter. */
  blind?: boolean;
  /** JIT only: map lookups it may inline (see JitOptions.inlineMap). Ignored by the interpreter. */
  inlineMap?: JitOptions['inlineMap'];
}

/** Parses an engine name as a user types it: 'jit', 'interpreter' or 'interp'. */
export function parseEngine(name: string): Engine {
  const n = name.trim().toLowerCase();
  if (n === 'jit') return 'jit';
  if (n === 'interp' || n === 'interpreter') return 'interpreter';
  throw new TsbpfError('usage', `unknown engine '${name}' (expected jit or interp)`);
}

/**
 * Checks and prepares a program for the chosen engine. TsbpfError('decode') for invalid programs.
 * Unverified (see above): the verifier gate is vmBackend's, not this function's.
 */
export function prepareProgram(insns: readonly Insn[], options: EngineOptions = {}): PreparedProgram {
  const engine = options.engine ?? DEFAULT_ENGINE;
  if (engine === 'jit') {
    const jit: JitOptions = { ...options };
    return prepareJit(insns, jit);
  }
  if (engine !== 'interpreter') {
    throw new TsbpfError('usage', `unknown engine '${String(engine)}' (expected 'jit' or 'interpreter')`);
  }
  return prepare(insns, options);
}

/** prepareProgram(insns, options).run(input). */
export function runWith(insns: readonly Insn[], input?: RunInput, options?: EngineOptions): RunResult {
  return prepareProgram(insns, options).run(input);
}

/** Which engine prepared a program. */
export function engineOf(program: PreparedProgram): Engine {
  return program instanceof JitProgram ? 'jit' : 'interpreter';
}

export { dumpWat, JitProgram };
