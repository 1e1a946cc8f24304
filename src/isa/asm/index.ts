/**
 * The assemblers: LLVM's BPF syntax (what llvm-objdump prints and llvm-mc reads) and the syntax of
 * the eBPF conformance suite's test files.
 */
import type { Insn } from '../insn.js';
import { assembleConformance } from './conformance.js';
import { assembleLlvm } from './llvm.js';

export { assembleConformance, assembleLlvm };

export type AsmSyntax = 'llvm' | 'conformance';

export interface AssembleOptions {
  syntax: AsmSyntax;
}

/** Assembles source text into instructions. Bad input throws TsbpfError with code 'asm'. */
export function assemble(source: string, options: AssembleOptions): Insn[] {
  switch (options.syntax) {
    case 'llvm':
      return assembleLlvm(source);
    case 'conformance':
      return assembleConformance(source);
  }
}
