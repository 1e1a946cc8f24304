/**
 * The one error type tsbpf lets escape. Every failure a caller can cause (bad input, bad program,
 * missing privileges) is a TsbpfError with a stable `code`, so callers and fuzzers can tell our
 * refusals from bugs.
 */
export type ErrorCode =
  | 'usage' // wrong arguments to an API or command
  | 'asm' // assembler: syntax or range error in source text
  | 'decode' // bytecode that is not a valid instruction stream
  | 'object' // an ELF object file that cannot be read
  | 'btf' // BTF type information that cannot be read
  | 'runtime' // the VM stopped the program: bad access, bad jump, budget exhausted...
  | 'verify' // the verifier rejected a program (details.log has the log, details.pc the instruction)
  | 'kernel' // a system call failed
  | 'trace' // tracing language (bpftrace): syntax, type or probe error in a script
  | 'io'; // a file could not be read or written

export interface SourcePosition {
  line: number; // 1-based
  column: number; // 1-based
}

export class TsbpfError extends Error {
  override readonly name = 'TsbpfError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: { pc?: number; position?: SourcePosition; errno?: number; log?: string } = {},
  ) {
    super(message);
  }
}

export function isTsbpfError(e: unknown): e is TsbpfError {
  return e instanceof TsbpfError;
}
