/**
 * The tracing language's lexer. It works on demand for the parser, which also asks it for the raw text of
 * attach points (`uprobe:/bin/bash:readline`), preprocessor lines and C definitions: those follow their own
 * rules, as in bpftrace's flex lexer.
 */
import { type Loc, type Source, SyntaxStop } from './diagnostics.js';

export type TokenKind =
  | 'int'
  | 'string'
  | 'ident'
  | 'var' // $name
  | 'map' // @name or @
  | 'param' // $1
  | 'paramcount' // $#
  | 'op' // punctuation and operators
  | 'endpred' // a `/` that closes a predicate (followed by `{`)
  | 'eof';

export interface Token {
  kind: TokenKind;
  /** The source text of the token (for strings: the decoded bytes; for ints: the raw text). */
  text: string;
  int?: bigint;
  offset: number;
  end: number;
}

const OPERATORS = [
  '<<=',
  '>>=',
  '==',
  '!=',
  '<=',
  '>=',
  '<<',
  '>>',
  '&&',
  '||',
  '++',
  '--',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '->',
  '..',
  ':',
  ';',
  '{',
  '}',
  '[',
  ']',
  '(',
  ')',
  '?',
  ',',
  '=',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
  '!',
  '~',
  '.',
];

const DURATION: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  ms: 1000000n,
  s: 1000000000n,
  m: 60000000000n,
  h: 3600000000000n,
  d: 86400000000000n,
};

const U64_MAX = (1n << 64n) - 1n;

const isIdentStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isIdentChar = (c: number) => isIdentStart(c) || (c >= 48 && c <= 57);
const isDigit = (c: number) => c >= 48 && c <= 57;
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;

/** Encodes a JS string to UTF-8 and returns the bytes as a string of char codes 0..255. */
export function toByteString(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: checking for pure ASCII
  if (/^[\x00-\x7f]*$/.test(text)) return text;
  const bytes = new TextEncoder().encode(text);
  let out = '';
  for (const b of bytes) out += String.fromCharCode(b);
  return out;
}

export class Lexer {
  pos = 0;
  private readonly text: string;

  constructor(readonly source: Source) {
    this.text = source.text;
  }

  loc(offset: number, end: number): Loc {
    return this.source.loc(offset, end);
  }

  fail(message: string, offset: number, end: number): never {
    throw new SyntaxStop(message, this.loc(offset, end));
  }

  charAt(offset: number): string {
    return this.text[offset] ?? '';
  }

  get length(): number {
    return this.text.length;
  }

  /** Skips whitespace and comments. */
  skipTrivia(): void {
    const t = this.text;
    for (;;) {
      const c = t.charCodeAt(this.pos);
      if (isSpace(c)) {
        this.pos++;
      } else if (c === 47 && t.charCodeAt(this.pos + 1) === 47) {
        const nl = t.indexOf('\n', this.pos);
        this.pos = nl < 0 ? t.length : nl;
      } else if (c === 47 && t.charCodeAt(this.pos + 1) === 42) {
        const close = t.indexOf('*/', this.pos + 2);
        if (close < 0) this.fail('unterminated comment', this.pos, t.length);
        this.pos = close + 2;
      } else {
        return;
      }
    }
  }

  /** True when only whitespace precedes `offset` on its line. */
  atLineStart(offset: number): boolean {
    for (let i = offset - 1; i >= 0; i--) {
      const c = this.text.charCodeAt(i);
      if (c === 10) return true;
      if (c !== 32 && c !== 9 && c !== 13) return false;
    }
    return true;
  }

  /** Reads the rest of a preprocessor line (with backslash continuations) from the current position. */
  rawLine(): { text: string; offset: number; end: number } {
    const start = this.pos;
    let i = start;
    const t = this.text;
    while (i < t.length) {
      if (t[i] === '\n') {
        if (t[i - 1] === '\\' || (t[i - 1] === '\r' && t[i - 2] === '\\')) {
          i++;
          continue;
        }
        break;
      }
      i++;
    }
    this.pos = i;
    let end = i;
    if (t[end - 1] === '\r') end--;
    return { text: t.slice(start, end), offset: start, end };
  }

  /**
   * Reads a brace-balanced region starting at the `{` at the current position; returns the offset just past
   * the closing brace.
   */
  balancedBraces(): number {
    const t = this.text;
    const start = this.pos;
    let depth = 0;
    let i = this.pos;
    while (i < t.length) {
      const c = t[i];
      if (c === '/' && t[i + 1] === '/') {
        const nl = t.indexOf('\n', i);
        i = nl < 0 ? t.length : nl;
        continue;
      }
      if (c === '/' && t[i + 1] === '*') {
        const close = t.indexOf('*/', i + 2);
        i = close < 0 ? t.length : close + 2;
        continue;
      }
      if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (depth === 0) {
          this.pos = i + 1;
          return i + 1;
        }
      }
      i++;
    }
    this.fail('syntax error, unexpected end of file', start, t.length);
  }

  /**
   * Scans one attach point (`kprobe:vfs_read`, `uprobe:/bin/bash:"readline"+4`, `i:1s`, `name=begin`) as raw
   * text. Stops at whitespace, `,` or `{`, and at a `/` that starts a predicate. Returns undefined if there is
   * none at the current position.
   */
  attachPoint(): { text: string; offset: number; end: number } | undefined {
    const t = this.text;
    const start = this.pos;
    let i = start;
    let segStart = true;
    let inPath = false;
    while (i < t.length) {
      const c = t[i];
      const code = t.charCodeAt(i);
      if (isSpace(code) || c === ',' || c === '{' || c === '}' || c === ';' || c === ')' || c === '(') break;
      if (c === '"') {
        let j = i + 1;
        while (j < t.length && t[j] !== '"' && t[j] !== '\n') j += t[j] === '\\' ? 2 : 1;
        if (t[j] !== '"') this.fail('unterminated string', i, j);
        i = j + 1;
        segStart = false;
        continue;
      }
      if (segStart) {
        inPath = c === '/' || c === '.';
        if (!inPath && c !== ':') {
          // A relative path like `testprogs/uprobe_test:` is a path when the run of path characters ends in `:`.
          let j = i;
          let slash = false;
          while (j < t.length && /[\w\-./#+*$@\\]/.test(t[j])) {
            if (t[j] === '/') slash = true;
            j++;
          }
          if (slash && t[j] === ':') inPath = true;
        }
      }
      if (c === '/' && !inPath) break;
      if (c === '/' && t[i + 1] === '/' && !inPath) break;
      segStart = c === ':';
      if (c === ':') inPath = false;
      i++;
    }
    if (i === start) return undefined;
    this.pos = i;
    return { text: t.slice(start, i), offset: start, end: i };
  }

  /** The next token. */
  next(): Token {
    this.skipTrivia();
    const t = this.text;
    const start = this.pos;
    if (start >= t.length) return { kind: 'eof', text: '', offset: start, end: start };
    const c = t.charCodeAt(start);

    if (isIdentStart(c)) {
      let i = start + 1;
      while (i < t.length && isIdentChar(t.charCodeAt(i))) i++;
      this.pos = i;
      return { kind: 'ident', text: t.slice(start, i), offset: start, end: i };
    }
    if (isDigit(c)) return this.number(start);
    if (c === 34) return this.string(start);
    if (c === 36) {
      // $
      const n = t.charCodeAt(start + 1);
      if (n === 35) {
        this.pos = start + 2;
        return { kind: 'paramcount', text: '$#', offset: start, end: start + 2 };
      }
      if (isDigit(n)) {
        let i = start + 1;
        while (i < t.length && isDigit(t.charCodeAt(i))) i++;
        this.pos = i;
        return { kind: 'param', text: t.slice(start, i), offset: start, end: i };
      }
      if (isIdentStart(n)) {
        let i = start + 2;
        while (i < t.length && isIdentChar(t.charCodeAt(i))) i++;
        this.pos = i;
        return { kind: 'var', text: t.slice(start, i), offset: start, end: i };
      }
      this.fail("invalid character '$'", start, start + 1);
    }
    if (c === 64) {
      // @
      let i = start + 1;
      if (isIdentStart(t.charCodeAt(i))) {
        i++;
        while (i < t.length && isIdentChar(t.charCodeAt(i))) i++;
      }
      this.pos = i;
      return { kind: 'map', text: t.slice(start, i), offset: start, end: i };
    }
    if (c === 47) {
      // `/` closing a predicate: followed (after spaces) by `{` or a comment.
      if (t[start + 1] !== '=') {
        let j = start + 1;
        while (j < t.length && isSpace(t.charCodeAt(j))) j++;
        if (t[j] === '{' || (t[j] === '/' && (t[j + 1] === '/' || t[j + 1] === '*'))) {
          this.pos = start + 1;
          return { kind: 'endpred', text: '/', offset: start, end: start + 1 };
        }
      }
    }
    for (const op of OPERATORS) {
      if (t.startsWith(op, start)) {
        this.pos = start + op.length;
        return { kind: 'op', text: op, offset: start, end: start + op.length };
      }
    }
    const ch = String.fromCodePoint(t.codePointAt(start) ?? 0);
    this.fail(`invalid character '${ch}'`, start, start + ch.length);
  }

  private number(start: number): Token {
    const t = this.text;
    const re = /0[xX][0-9a-fA-F_]*[0-9a-fA-F]|0[bB][01_]*[01]|[0-9][0-9_]*(?:[eE][0-9]+)?/y;
    re.lastIndex = start;
    const m = re.exec(t);
    let i = start + (m ? m[0].length : 1);
    const body = m ? m[0] : t[start];
    let value: bigint;
    const digits = body.replace(/_/g, '');
    if (/^0[xXbB]/.test(digits)) {
      value = BigInt(digits);
    } else if (/[eE]/.test(digits)) {
      const [mant, exp] = digits.split(/[eE]/);
      value = BigInt(mant) * 10n ** BigInt(exp);
    } else if (digits.length > 1 && digits[0] === '0') {
      if (/[89]/.test(digits)) this.fail(`invalid octal literal: ${body}`, start, i);
      value = BigInt(`0o${digits.slice(1)}`);
    } else {
      value = BigInt(digits);
    }
    // Suffixes: C integer suffixes (ignored) or durations (scale to nanoseconds).
    const rest = /[A-Za-z_][A-Za-z0-9_]*/y;
    rest.lastIndex = i;
    const sm = rest.exec(t);
    if (sm) {
      const suffix = sm[0];
      if (/^[uU]?(?:ll|LL|l|L)?$/.test(suffix) || /^(?:ll|LL|l|L)[uU]$/.test(suffix)) {
        i += suffix.length;
      } else if (DURATION[suffix] !== undefined && !/^0[xXbB]/.test(digits)) {
        value *= DURATION[suffix];
        i += suffix.length;
      }
    }
    if (value > U64_MAX) this.fail(`integer literal out of range: ${t.slice(start, i)}`, start, i);
    this.pos = i;
    return { kind: 'int', text: t.slice(start, i), int: value, offset: start, end: i };
  }

  private string(start: number): Token {
    const t = this.text;
    let i = start + 1;
    let out = '';
    for (;;) {
      if (i >= t.length || t[i] === '\n') {
        let end = i;
        if (t[end - 1] === '\r') end--;
        this.fail('unterminated string', start, end);
      }
      const c = t[i];
      if (c === '"') {
        i++;
        break;
      }
      if (c !== '\\') {
        let j = i;
        while (j < t.length && t[j] !== '"' && t[j] !== '\\' && t[j] !== '\n') j++;
        out += toByteString(t.slice(i, j));
        i = j;
        continue;
      }
      const e = t[i + 1] ?? '';
      switch (e) {
        case 'n':
          out += '\n';
          i += 2;
          break;
        case 't':
          out += '\t';
          i += 2;
          break;
        case 'r':
          out += '\r';
          i += 2;
          break;
        case '\\':
          out += '\\';
          i += 2;
          break;
        case '"':
          out += '"';
          i += 2;
          break;
        case "'":
          out += "'";
          i += 2;
          break;
        case 'x': {
          const m = /^[0-9a-fA-F]{1,2}/.exec(t.slice(i + 2, i + 4));
          if (!m) this.fail(`invalid escape character '\\x'`, start, i + 2);
          out += String.fromCharCode(Number.parseInt(m[0], 16));
          i += 2 + m[0].length;
          break;
        }
        default: {
          const m = /^[0-7]{1,3}/.exec(t.slice(i + 1, i + 4));
          if (m) {
            const v = Number.parseInt(m[0], 8);
            if (v > 255) this.fail(`invalid escape character '\\${m[0]}'`, start, i + 1 + m[0].length);
            out += String.fromCharCode(v);
            i += 1 + m[0].length;
            break;
          }
          this.fail(`invalid escape character '\\${e}'`, start, i + 2);
        }
      }
    }
    this.pos = i;
    return { kind: 'string', text: out, offset: start, end: i };
  }
}

/** How bison names a token in "syntax error, unexpected X" messages. */
export function describeToken(tok: Token): string {
  switch (tok.kind) {
    case 'eof':
      return 'end of file';
    case 'int':
      return 'integer';
    case 'string':
      return 'string';
    case 'var':
      return 'variable';
    case 'map':
      return 'map';
    case 'param':
      return 'positional parameter';
    case 'paramcount':
      return '$#';
    case 'endpred':
      return 'end predicate';
    case 'ident':
      return KEYWORD_NAMES.has(tok.text) ? tok.text : 'identifier';
    default:
      return tok.text;
  }
}

const KEYWORD_NAMES = new Set([
  'if',
  'else',
  'while',
  'for',
  'unroll',
  'return',
  'break',
  'continue',
  'let',
  'config',
  'sizeof',
  'offsetof',
  'typeof',
  'struct',
  'union',
  'enum',
  'import',
  'macro',
]);
