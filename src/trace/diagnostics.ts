/**
 * Source text, locations and diagnostics for the tracing language, printed the way bpftrace prints them:
 *
 *   stdin:1:9-12: ERROR: Unknown function: foo
 *   BEGIN { foo(); }
 *           ~~~
 *
 * The file name is `stdin` for `-e` programs and the script's path for files. Columns are 1-based and the
 * end column is exclusive, as in bpftrace. Errors are collected; `TraceError` (a TsbpfError with code
 * 'trace') carries all of them out.
 */
import { TsbpfError } from '../errors.js';

/** A span of source text. `endColumn` is exclusive; `end` is the exclusive end offset. */
export interface Loc {
  offset: number;
  end: number;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export class Source {
  readonly lineStarts: number[] = [0];
  constructor(
    readonly text: string,
    readonly name = 'stdin',
  ) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  /** 1-based line and column of an offset. */
  position(offset: number): { line: number; column: number } {
    const starts = this.lineStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo] + 1 };
  }

  loc(offset: number, end: number): Loc {
    const a = this.position(offset);
    const b = this.position(Math.max(offset, end));
    return {
      offset,
      end: Math.max(offset, end),
      line: a.line,
      column: a.column,
      endLine: b.line,
      endColumn: b.column,
    };
  }

  lineText(line: number): string {
    const start = this.lineStarts[line - 1] ?? this.text.length;
    const next = this.lineStarts[line];
    let text = this.text.slice(start, next === undefined ? undefined : next - 1);
    if (text.endsWith('\r')) text = text.slice(0, -1);
    return text;
  }
}

/** Joins two locations into the span that covers both. */
export function spanLoc(a: Loc, b: Loc): Loc {
  const first = a.offset <= b.offset ? a : b;
  const last = a.end >= b.end ? a : b;
  return {
    offset: first.offset,
    end: last.end,
    line: first.line,
    column: first.column,
    endLine: last.endLine,
    endColumn: last.endColumn,
  };
}

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  message: string;
  loc?: Loc;
}

/** Formats one diagnostic like bpftrace: header line, then the source line and a `~` caret line. */
export function formatDiagnostic(d: Diagnostic, source: Source): string {
  const tag = d.severity === 'error' ? 'ERROR' : 'WARNING';
  if (!d.loc) return `${source.name}: ${tag}: ${d.message}`;
  const { line, column, endLine, endColumn } = d.loc;
  if (endLine !== line) {
    const lines: string[] = [];
    for (let l = line; l <= endLine; l++) lines.push(source.lineText(l));
    return `${source.name}:${line}-${endLine}: ${tag}: ${d.message}\n${lines.join('\n')}`;
  }
  const text = source.lineText(line);
  const width = Math.max(0, endColumn - column);
  const caret = `${' '.repeat(column - 1)}${'~'.repeat(width)}`;
  return `${source.name}:${line}:${column}-${endColumn}: ${tag}: ${d.message}\n${text}\n${caret}`;
}

/** Collects diagnostics for one source. */
export class Diagnostics {
  readonly list: Diagnostic[] = [];
  constructor(readonly source: Source) {}

  error(message: string, loc?: Loc): void {
    this.list.push({ severity: 'error', message, loc });
  }

  warning(message: string, loc?: Loc): void {
    this.list.push({ severity: 'warning', message, loc });
  }

  get errors(): Diagnostic[] {
    return this.list.filter((d) => d.severity === 'error');
  }

  get warnings(): Diagnostic[] {
    return this.list.filter((d) => d.severity === 'warning');
  }

  hasErrors(): boolean {
    return this.list.some((d) => d.severity === 'error');
  }

  format(severity?: Severity): string {
    return this.list
      .filter((d) => severity === undefined || d.severity === severity)
      .map((d) => formatDiagnostic(d, this.source))
      .join('\n');
  }

  /** Throws a TraceError carrying every error so far, if there is one. */
  throwIfErrors(): void {
    if (this.hasErrors()) throw new TraceError(this.errors, this.source);
  }
}

/** The error a bad script raises: a TsbpfError('trace') whose message is bpftrace's formatted output. */
export class TraceError extends TsbpfError {
  constructor(
    readonly diagnostics: Diagnostic[],
    readonly source: Source,
  ) {
    const first = diagnostics[0];
    super('trace', diagnostics.map((d) => formatDiagnostic(d, source)).join('\n'), {
      position: first?.loc ? { line: first.loc.line, column: first.loc.column } : undefined,
    });
  }
}

/** Raised inside the parser to stop at the first syntax error; converted to a TraceError at the top. */
export class SyntaxStop extends Error {
  constructor(
    readonly messageText: string,
    readonly loc: Loc | undefined,
  ) {
    super(messageText);
  }
}
