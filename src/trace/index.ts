/**
 * tsbpf trace: the bpftrace language. Front end: lexer, parser, AST, macro expansion, semantic analysis
 * and diagnostics in bpftrace's format.
 */

export { type AnalyseOptions, type Analysis, analyse, type MapInfo, parseFormat, unify } from './analyse.js';
export type * from './ast.js';
export {
  type Diagnostic,
  Diagnostics,
  formatDiagnostic,
  type Loc,
  Source,
  TraceError,
} from './diagnostics.js';
export { Lexer, type Token } from './lexer.js';
export { type ParseOptions, type ParseResult, parse } from './parser.js';
export { printAst } from './printer.js';
export {
  isProbeSpecError,
  type ProbeResolver,
  type ProbeSpec,
  type ProviderName,
  parseProbeSpec,
  probeName,
} from './probes.js';
export { type TraceType, type TypeProvider, typeName } from './types.js';

import { type AnalyseOptions, type Analysis, analyse } from './analyse.js';
import { type ParseOptions, parse } from './parser.js';

/** Parses and analyses a script: the whole front end. Throws TraceError (code 'trace') on any error. */
export function compileFrontEnd(text: string, options: ParseOptions & AnalyseOptions = {}): Analysis {
  return analyse(parse(text, options), options);
}
