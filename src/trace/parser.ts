/**
 * Recursive-descent parser for the tracing language (bpftrace's grammar: preamble of C definitions, config
 * block, imports and map declarations; macros, subprograms and probes with predicates and blocks). It stops
 * at the first syntax error, as bpftrace does, with bison's wording ("syntax error, unexpected ;").
 * Attach point errors are collected and reported together.
 */
import type {
  AssignOp,
  AttachPoint,
  BinaryOp,
  Block,
  CDefinition,
  CField,
  Config,
  ConfigEntry,
  CStructDef,
  CType,
  Expr,
  For,
  If,
  IfExpr,
  ImportStmt,
  Macro,
  MapDecl,
  MapRef,
  Probe,
  Program,
  Stmt,
  Subprog,
  TypeSpec,
  Variable,
} from './ast.js';
import { Diagnostics, type Loc, Source, SyntaxStop, spanLoc, TraceError } from './diagnostics.js';
import { describeToken, Lexer, type Token } from './lexer.js';
import { isProbeSpecError, type ProbeSpec, parseProbeSpec } from './probes.js';

const ASSIGN_OPS = new Set<string>(['=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '<<=', '>>=']);

const BINARY_PREC: Record<string, number> = {
  '||': 1,
  '&&': 2,
  '|': 3,
  '^': 4,
  '&': 5,
  '==': 6,
  '!=': 6,
  '<': 7,
  '<=': 7,
  '>': 7,
  '>=': 7,
  '<<': 8,
  '>>': 8,
  '+': 9,
  '-': 9,
  '*': 10,
  '/': 10,
  '%': 10,
};

/** Words that make up C base types (`unsigned long long`). */
const C_TYPE_WORDS = new Set([
  'unsigned',
  'signed',
  'long',
  'short',
  'int',
  'char',
  'float',
  'double',
  '_Bool',
]);
const C_QUALIFIERS = new Set(['const', 'volatile', 'restrict']);

/** Names the parser may treat as types in a cast without other evidence. */
export function isKnownTypeName(name: string): boolean {
  return (
    /^u?int(8|16|32|64)$/.test(name) ||
    name === 'bool' ||
    name === 'string' ||
    name === 'inet' ||
    name === 'buffer' ||
    name === 'void' ||
    C_TYPE_WORDS.has(name) ||
    /^_*[a-z0-9]+_t$/.test(name) ||
    /^(__)?[us](8|16|32|64)$/.test(name) ||
    /^(__)?(le|be)(16|32|64)$/.test(name)
  );
}

export interface ParseOptions {
  /** File name for messages: `stdin` for -e programs, else the script's path. */
  filename?: string;
  /**
   * Positional parameters. When given, `$N` becomes the literal it names (an integer when numeric, else a
   * string; missing ones are `""`/0 as in bpftrace), in attach points too.
   */
  positionalArgs?: string[];
}

export interface ParseResult {
  program: Program;
  source: Source;
  diagnostics: Diagnostics;
}

/** Parses a script; throws TraceError (a TsbpfError with code 'trace') on any error. */
export function parse(text: string, options: ParseOptions = {}): ParseResult {
  const source = new Source(text, options.filename ?? 'stdin');
  const diagnostics = new Diagnostics(source);
  const parser = new Parser(source, diagnostics, options.positionalArgs);
  let program: Program;
  try {
    program = parser.program();
  } catch (e) {
    if (e instanceof SyntaxStop) {
      diagnostics.error(e.messageText, e.loc);
      throw new TraceError(diagnostics.errors, source);
    }
    if (e instanceof RangeError) {
      // Stack overflow on absurdly deep nesting.
      diagnostics.error('syntax error, nesting too deep', source.loc(0, 0));
      throw new TraceError(diagnostics.errors, source);
    }
    throw e;
  }
  diagnostics.throwIfErrors();
  return { program, source, diagnostics };
}

const MAX_DEPTH = 500;

export class Parser {
  private readonly lx: Lexer;
  private buf: Token[] = [];
  private lastEnd = 0;
  private depth = 0;
  private inPredicate = false;

  constructor(
    readonly source: Source,
    readonly diag: Diagnostics,
    readonly positionalArgs?: string[],
  ) {
    this.lx = new Lexer(source);
  }

  // ------------------------------------------------------------------------------------------ tokens

  private peek(n = 0): Token {
    while (this.buf.length <= n) this.buf.push(this.lx.next());
    return this.buf[n];
  }

  private advance(): Token {
    const t = this.peek();
    this.buf.shift();
    this.lastEnd = t.end;
    return t;
  }

  /** Drops lookahead and continues lexing at `offset` (used to switch to raw scanning modes). */
  private rewind(offset: number): void {
    this.buf = [];
    this.lx.pos = offset;
  }

  private isOp(text: string, n = 0): boolean {
    const t = this.peek(n);
    return t.kind === 'op' && t.text === text;
  }

  private isIdent(text: string, n = 0): boolean {
    const t = this.peek(n);
    return t.kind === 'ident' && t.text === text;
  }

  private loc(start: number, end = this.lastEnd): Loc {
    return this.source.loc(start, end);
  }

  private tokLoc(t: Token): Loc {
    return this.source.loc(t.offset, t.end);
  }

  private unexpected(t: Token, expecting?: string): never {
    const what = describeToken(t);
    throw new SyntaxStop(
      `syntax error, unexpected ${what}${expecting ? `, expecting ${expecting}` : ''}`,
      this.tokLoc(t),
    );
  }

  private expectOp(text: string): Token {
    const t = this.peek();
    if (t.kind !== 'op' || t.text !== text) this.unexpected(t, text);
    return this.advance();
  }

  private expectIdent(): Token {
    const t = this.peek();
    if (t.kind !== 'ident') this.unexpected(t, 'identifier');
    return this.advance();
  }

  private enter(t: Token): void {
    if (++this.depth > MAX_DEPTH) throw new SyntaxStop('syntax error, nesting too deep', this.tokLoc(t));
  }

  // ------------------------------------------------------------------------------------- top level

  program(): Program {
    const text = this.source.text;
    let shebang: string | undefined;
    if (text.startsWith('#!')) {
      shebang = this.lx.rawLine().text;
    }
    const prog: Program = {
      kind: 'Program',
      shebang,
      cDefinitions: [],
      config: undefined,
      imports: [],
      mapDecls: [],
      macros: [],
      subprogs: [],
      probes: [],
      loc: this.source.loc(0, text.length),
    };
    for (;;) {
      this.rewind(this.buf.length > 0 ? this.buf[0].offset : this.lx.pos);
      this.lx.skipTrivia();
      const pos = this.lx.pos;
      if (pos >= text.length) break;
      if (text[pos] === '#') {
        prog.cDefinitions.push(this.preprocessorLine());
        continue;
      }
      const t = this.peek();
      if (t.kind === 'ident') {
        if ((t.text === 'struct' || t.text === 'union' || t.text === 'enum') && this.isCDefinition()) {
          prog.cDefinitions.push(this.cDefinition());
          continue;
        }
        if (t.text === 'config' && this.isOp('=', 1)) {
          if (prog.config) this.unexpected(t);
          prog.config = this.config();
          continue;
        }
        if (t.text === 'import' && this.peek(1).kind === 'string') {
          prog.imports.push(this.importStmt());
          continue;
        }
        if (t.text === 'let' && this.peek(1).kind === 'map') {
          prog.mapDecls.push(this.mapDecl());
          continue;
        }
        if (t.text === 'macro' && this.peek(1).kind === 'ident' && this.isOp('(', 2)) {
          prog.macros.push(this.macro());
          continue;
        }
        if (t.text === 'fn' && this.peek(1).kind === 'ident' && this.isOp('(', 2)) {
          prog.subprogs.push(this.subprog());
          continue;
        }
      }
      this.rewind(pos);
      prog.probes.push(this.probe());
    }
    return prog;
  }

  private preprocessorLine(): CDefinition {
    const line = this.lx.rawLine();
    const loc = this.source.loc(line.offset, line.end);
    const m = /^#\s*(\w+)\s*(.*)$/s.exec(line.text);
    if (m?.[1] === 'include') return { kind: 'CInclude', text: line.text, loc };
    if (m?.[1] === 'define') {
      const d = /^([A-Za-z_]\w*(?:\([^)]*\))?)\s*(.*)$/s.exec(m[2]);
      return { kind: 'CDefine', name: d?.[1] ?? m[2], value: d?.[2] ?? '', loc };
    }
    return { kind: 'CDirective', text: line.text, loc };
  }

  /** `struct NAME {`, `union NAME {`, `enum [NAME] {` at top level. */
  private isCDefinition(): boolean {
    if (this.isOp('{', 1)) return this.peek().text === 'enum' || this.peek().text === 'struct';
    return this.peek(1).kind === 'ident' && this.isOp('{', 2);
  }

  private cDefinition(): CDefinition {
    const kw = this.advance();
    const tag = kw.text as 'struct' | 'union' | 'enum';
    let name: string | undefined;
    if (this.peek().kind === 'ident') name = this.advance().text;
    const brace = this.peek();
    if (brace.kind !== 'op' || brace.text !== '{') this.unexpected(brace, '{');
    if (tag === 'enum') {
      const values = this.enumBody();
      let end = this.lastEnd;
      if (this.isOp(';')) end = this.advance().end;
      return {
        kind: 'CEnum',
        text: this.source.text.slice(kw.offset, end),
        name,
        values,
        loc: this.loc(kw.offset, end),
      };
    }
    const def = this.cStructBody(tag, name);
    const textEnd = this.lastEnd;
    if (this.skipAttributes()) def.packed = true;
    let end = this.lastEnd;
    if (this.isOp(';')) end = this.advance().end;
    return {
      kind: 'CStruct',
      text: this.source.text.slice(kw.offset, textEnd),
      def,
      loc: this.loc(kw.offset, end),
    };
  }

  private enumBody(): { name: string; value: bigint }[] {
    this.expectOp('{');
    const values: { name: string; value: bigint }[] = [];
    let next = 0n;
    while (!this.isOp('}')) {
      const name = this.expectIdent().text;
      let value = next;
      if (this.isOp('=')) {
        this.advance();
        let neg = false;
        if (this.isOp('-')) {
          this.advance();
          neg = true;
        }
        const t = this.peek();
        if (t.kind === 'int') {
          this.advance();
          value = neg ? -(t.int ?? 0n) : (t.int ?? 0n);
        } else if (t.kind === 'ident') {
          this.advance();
          const prev = values.find((v) => v.name === t.text);
          if (!prev) throw new SyntaxStop(`Unknown enum value: ${t.text}`, this.tokLoc(t));
          value = neg ? -prev.value : prev.value;
        } else {
          this.unexpected(t);
        }
      }
      values.push({ name, value });
      next = value + 1n;
      if (this.isOp(',')) this.advance();
      else if (!this.isOp('}')) this.unexpected(this.peek(), '}');
    }
    this.advance();
    return values;
  }

  /** Parses `{ fields }` of a C struct or union. */
  private cStructBody(tag: 'struct' | 'union', name: string | undefined): CStructDef {
    this.expectOp('{');
    const fields: CField[] = [];
    while (!this.isOp('}')) {
      if (this.isOp(';')) {
        this.advance();
        continue;
      }
      const base = this.cBaseType();
      // Declarators: `*name[4]:3, name2`
      for (;;) {
        if (this.isOp(';') || this.isOp('}')) {
          // Anonymous struct/union member.
          if (base.kind === 'tagged' && base.body) fields.push({ name: '', type: base, bits: undefined });
          break;
        }
        let type: CType = base;
        while (this.isOp('*')) {
          this.advance();
          type = { kind: 'pointer', to: type };
          while (this.peek().kind === 'ident' && C_QUALIFIERS.has(this.peek().text)) this.advance();
        }
        let fieldName: string;
        if (this.isOp('(')) {
          // Function pointer `(*name)(args)`.
          this.advance();
          while (this.isOp('*')) this.advance();
          fieldName = this.expectIdent().text;
          this.expectOp(')');
          this.skipBalanced('(', ')');
          type = { kind: 'pointer', to: { kind: 'function' } };
        } else {
          fieldName = this.expectIdent().text;
        }
        const dims: number[] = [];
        while (this.isOp('[')) {
          this.advance();
          let n = 0;
          if (this.peek().kind === 'int') n = Number(this.advance().int ?? 0n);
          this.expectOp(']');
          dims.push(n);
        }
        for (let i = dims.length - 1; i >= 0; i--) type = { kind: 'array', of: type, length: dims[i] };
        let bits: number | undefined;
        if (this.isOp(':')) {
          this.advance();
          const t = this.peek();
          if (t.kind !== 'int') this.unexpected(t, 'integer');
          bits = Number(this.advance().int ?? 0n);
        }
        this.skipAttributes();
        fields.push({ name: fieldName, type, bits });
        if (this.isOp(',')) {
          this.advance();
          continue;
        }
        break;
      }
      if (this.isOp(';')) this.advance();
      else if (!this.isOp('}')) this.unexpected(this.peek(), ';');
    }
    this.advance();
    return { tag, name, fields };
  }

  private skipBalanced(open: string, close: string): void {
    this.expectOp(open);
    let depth = 1;
    while (depth > 0) {
      const t = this.advance();
      if (t.kind === 'eof') this.unexpected(t, close);
      if (t.kind === 'op' && t.text === open) depth++;
      if (t.kind === 'op' && t.text === close) depth--;
    }
  }

  /** Skips `__attribute__((...))` lists; true when one says `packed`. */
  private skipAttributes(): boolean {
    let packed = false;
    while (this.isIdent('__attribute__')) {
      this.advance();
      this.expectOp('(');
      let depth = 1;
      while (depth > 0) {
        const t = this.advance();
        if (t.kind === 'eof') this.unexpected(t, ')');
        if (t.kind === 'op' && t.text === '(') depth++;
        if (t.kind === 'op' && t.text === ')') depth--;
        if (t.kind === 'ident' && (t.text === 'packed' || t.text === '__packed__')) packed = true;
      }
    }
    return packed;
  }

  private cBaseType(): CType {
    while (this.peek().kind === 'ident' && C_QUALIFIERS.has(this.peek().text)) this.advance();
    const t = this.peek();
    if (t.kind === 'ident' && (t.text === 'struct' || t.text === 'union' || t.text === 'enum')) {
      this.advance();
      let name: string | undefined;
      if (this.peek().kind === 'ident') name = this.advance().text;
      let body: CStructDef | undefined;
      if (this.isOp('{')) {
        if (t.text === 'enum') {
          this.enumBody();
        } else {
          body = this.cStructBody(t.text as 'struct' | 'union', name);
        }
      }
      return { kind: 'tagged', tag: t.text as 'struct' | 'union' | 'enum', name, body };
    }
    const words: string[] = [];
    while (this.peek().kind === 'ident' && C_TYPE_WORDS.has(this.peek().text)) {
      words.push(this.advance().text);
      while (this.peek().kind === 'ident' && C_QUALIFIERS.has(this.peek().text)) this.advance();
    }
    if (words.length === 0) words.push(this.expectIdent().text);
    while (this.peek().kind === 'ident' && C_QUALIFIERS.has(this.peek().text)) this.advance();
    return { kind: 'base', words };
  }

  private config(): Config {
    const start = this.advance().offset; // config
    this.expectOp('=');
    this.expectOp('{');
    const entries: ConfigEntry[] = [];
    while (!this.isOp('}')) {
      const name = this.expectIdent();
      this.expectOp('=');
      const v = this.peek();
      let value: bigint | string | boolean;
      let ident = false;
      if (v.kind === 'int') value = v.int ?? 0n;
      else if (v.kind === 'string') value = v.text;
      else if (v.kind === 'ident' && (v.text === 'true' || v.text === 'false')) value = v.text === 'true';
      else if (v.kind === 'ident') {
        value = v.text;
        ident = true;
      } else this.unexpected(v);
      this.advance();
      entries.push({ name: name.text, value, ident, loc: this.loc(name.offset) });
      if (this.isOp(';')) this.advance();
      else if (!this.isOp('}')) this.unexpected(this.peek(), '}');
    }
    this.advance();
    return { kind: 'Config', entries, loc: this.loc(start) };
  }

  private importStmt(): ImportStmt {
    const start = this.advance().offset;
    const path = this.advance().text;
    this.expectOp(';');
    return { kind: 'Import', path, loc: this.loc(start) };
  }

  private mapDecl(): MapDecl {
    const start = this.advance().offset; // let
    const map = this.advance();
    this.expectOp('=');
    const type = this.expectIdent().text;
    this.expectOp('(');
    const n = this.peek();
    if (n.kind !== 'int') this.unexpected(n, 'integer');
    this.advance();
    this.expectOp(')');
    this.expectOp(';');
    return { kind: 'MapDecl', name: map.text, mapType: type, maxEntries: n.int ?? 0n, loc: this.loc(start) };
  }

  private macro(): Macro {
    const start = this.advance().offset; // macro
    const name = this.advance().text;
    this.expectOp('(');
    const params: Macro['params'] = [];
    while (!this.isOp(')')) {
      const t = this.advance();
      const loc = this.tokLoc(t);
      if (t.kind === 'ident') params.push({ kind: 'ident', name: t.text, loc });
      else if (t.kind === 'var') params.push({ kind: 'var', name: t.text, loc });
      else if (t.kind === 'map') params.push({ kind: 'map', name: t.text, loc });
      else this.unexpected(t);
      if (this.isOp(',')) this.advance();
      else if (!this.isOp(')')) this.unexpected(this.peek(), ')');
    }
    this.advance();
    const nameEnd = this.lastEnd;
    const body = this.block(true);
    return { kind: 'Macro', name, params, body, loc: this.loc(start, nameEnd) };
  }

  private subprog(): Subprog {
    const start = this.advance().offset; // fn
    const name = this.advance().text;
    this.expectOp('(');
    const params: Subprog['params'] = [];
    while (!this.isOp(')')) {
      const v = this.peek();
      if (v.kind !== 'var') this.unexpected(v, 'variable');
      this.advance();
      this.expectOp(':');
      const typeSpec = this.typeSpec();
      params.push({ name: v.text, typeSpec, loc: this.loc(v.offset) });
      if (this.isOp(',')) this.advance();
      else if (!this.isOp(')')) this.unexpected(this.peek(), ')');
    }
    this.advance();
    this.expectOp(':');
    const returnType = this.typeSpec();
    const body = this.block(false);
    return { kind: 'Subprog', name, params, returnType, body, loc: this.loc(start) };
  }

  // ----------------------------------------------------------------------------------------- probes

  private probe(): Probe {
    const attachPoints: AttachPoint[] = [];
    const start = this.lx.pos;
    for (;;) {
      this.rewind(this.lx.pos);
      this.lx.skipTrivia();
      const raw = this.lx.attachPoint();
      if (!raw) {
        const t = this.peek();
        this.unexpected(t, attachPoints.length > 0 ? undefined : undefined);
      }
      const loc = this.source.loc(raw.offset, raw.end);
      const args = this.positionalArgs;
      const text = args ? raw.text.replace(/\$([0-9]+)/g, (_, n) => args[Number(n) - 1] ?? '') : raw.text;
      const parsed = parseProbeSpec(text);
      let spec: ProbeSpec;
      if (isProbeSpecError(parsed)) {
        this.diag.error(parsed.message, loc);
        spec = { provider: 'begin', written: raw.text, wildcard: false, positional: false };
      } else {
        spec = parsed;
      }
      attachPoints.push({ kind: 'AttachPoint', raw: text, spec, loc });
      this.lx.skipTrivia();
      if (this.lx.charAt(this.lx.pos) === ',') {
        this.lx.pos++;
        this.lx.skipTrivia();
        const c = this.lx.charAt(this.lx.pos);
        if (c === '{' || c === '/') break; // trailing comma
        continue;
      }
      break;
    }
    this.rewind(this.lx.pos);
    let predicate: Expr | undefined;
    if (this.lx.charAt(this.lx.pos) === '/') {
      this.lx.pos++;
      this.inPredicate = true;
      const first = this.peek();
      if (first.kind === 'endpred') this.unexpected(first);
      predicate = this.expr();
      this.inPredicate = false;
      const t = this.peek();
      if (t.kind !== 'endpred') this.unexpected(t);
      this.advance();
    }
    const t = this.peek();
    if (!(t.kind === 'op' && t.text === '{')) this.unexpected(t, '{');
    const block = this.block(false);
    return {
      kind: 'Probe',
      attachPoints,
      predicate,
      block,
      loc: this.loc(start, attachPoints[attachPoints.length - 1].loc.end),
    };
  }

  // ------------------------------------------------------------------------------------ statements

  /** `{ stmts [expr] }`; with `value` false a trailing expression becomes a statement. */
  private block(value: boolean): Block {
    const open = this.expectOp('{');
    this.enter(open);
    const stmts: Stmt[] = [];
    let trailing: Expr | undefined;
    for (;;) {
      const t = this.peek();
      if (t.kind === 'op' && t.text === '}') {
        this.advance();
        break;
      }
      if (t.kind === 'eof') this.unexpected(t, '}');
      if (t.kind === 'op' && t.text === ';') {
        // bpftrace has no empty statement.
        this.unexpected(t);
      }
      const s = this.statement();
      if (value && s.kind === 'If' && this.isOp('}') && isValueIf(s)) {
        // `{ ...; if (c) { a } else { b } }`: the if is the block's value.
        this.advance();
        trailing = toIfExpr(s);
        break;
      }
      if (isBlockStatement(s)) {
        stmts.push(s);
        if (this.isOp(';')) this.advance();
        continue;
      }
      if (this.isOp(';')) {
        this.advance();
        stmts.push(s);
        continue;
      }
      const n = this.peek();
      if (n.kind === 'op' && n.text === '}') {
        this.advance();
        if (s.kind === 'ExprStmt' && value) trailing = s.expr;
        else stmts.push(s);
        break;
      }
      this.unexpected(n, '}');
    }
    this.depth--;
    return { kind: 'Block', stmts, expr: trailing, loc: this.loc(open.offset) };
  }

  private statement(): Stmt {
    const t = this.peek();
    if (t.kind === 'ident') {
      switch (t.text) {
        case 'if':
          return this.ifStmt();
        case 'while': {
          this.advance();
          const cond = this.unary();
          const body = this.block(false);
          return { kind: 'While', cond, body, loc: this.loc(t.offset, t.end) };
        }
        case 'unroll': {
          this.advance();
          const count = this.unary();
          const headEnd = this.lastEnd;
          const body = this.block(false);
          return { kind: 'Unroll', count, body, loc: this.loc(t.offset, headEnd) };
        }
        case 'for':
          return this.forStmt();
        case 'let':
          return this.letStmt();
        case 'return': {
          this.advance();
          let value: Expr | undefined;
          if (!this.isOp(';') && !this.isOp('}')) value = this.expr();
          return { kind: 'Jump', jump: 'return', value, loc: this.loc(t.offset) };
        }
        case 'break':
        case 'continue':
          this.advance();
          return { kind: 'Jump', jump: t.text, value: undefined, loc: this.tokLoc(t) };
        case 'import':
          if (this.peek(1).kind === 'string') {
            this.advance();
            const path = this.advance().text;
            return { kind: 'Import', path, loc: this.loc(t.offset) };
          }
          break;
        case '_':
          if (this.isOp('=', 1)) {
            this.advance();
            this.advance();
            const value = this.expr();
            return { kind: 'Discard', value, loc: this.loc(t.offset) };
          }
          break;
      }
    }
    if (t.kind === 'op' && t.text === '{') {
      return this.block(true);
    }
    const e = this.expr();
    const op = this.peek();
    if (op.kind === 'op' && ASSIGN_OPS.has(op.text)) {
      if (e.kind === 'TupleAccess') {
        this.advance();
        const value = this.expr();
        throw new SyntaxStop(
          'Tuples are immutable once created. Consider creating a new tuple and assigning it instead.',
          spanLoc(e.loc, value.loc),
        );
      }
      if (e.kind === 'Map') {
        this.advance();
        const value = this.expr();
        return {
          kind: 'AssignMap',
          map: e,
          op: op.text as AssignOp,
          value,
          loc: this.loc(t.offset),
          opLoc: this.tokLoc(op),
        };
      }
      if (e.kind === 'Variable') {
        this.advance();
        const value = this.expr();
        return {
          kind: 'AssignVar',
          variable: e,
          op: op.text as AssignOp,
          value,
          decl: undefined,
          loc: this.loc(t.offset),
          opLoc: this.tokLoc(op),
        };
      }
      this.unexpected(op, '}');
    }
    return { kind: 'ExprStmt', expr: e, loc: e.loc };
  }

  private letStmt(): Stmt {
    const t = this.advance(); // let
    const v = this.peek();
    if (v.kind !== 'var') this.unexpected(v, 'variable');
    this.advance();
    const variable: Variable = { kind: 'Variable', name: v.text, loc: this.tokLoc(v) };
    let typeSpec: TypeSpec | undefined;
    if (this.isOp(':')) {
      this.advance();
      typeSpec = this.typeSpec();
    }
    const decl = { kind: 'VarDecl' as const, variable, typeSpec, loc: this.loc(t.offset) };
    if (this.isOp('=')) {
      const op = this.advance();
      const value = this.expr();
      return {
        kind: 'AssignVar',
        variable,
        op: '=',
        value,
        decl,
        loc: this.loc(t.offset),
        opLoc: this.tokLoc(op),
      };
    }
    return decl;
  }

  private ifStmt(): If {
    const t = this.advance(); // if
    this.enter(t);
    const cond = this.unary();
    const then = this.block(true);
    let otherwise: Block | If | undefined;
    if (this.isIdent('else')) {
      this.advance();
      if (this.isIdent('if')) otherwise = this.ifStmt();
      else otherwise = this.block(true);
    }
    this.depth--;
    return { kind: 'If', cond, consequent: then, alternative: otherwise, loc: this.loc(t.offset) };
  }

  private ifExpr(): IfExpr {
    const t = this.advance(); // if
    this.enter(t);
    const cond = this.unary();
    const then = this.block(true);
    if (!this.isIdent('else')) this.unexpected(this.peek(), 'else');
    this.advance();
    const otherwise = this.isIdent('if') ? this.ifExpr() : this.block(true);
    this.depth--;
    return { kind: 'IfExpr', cond, consequent: then, alternative: otherwise, loc: this.loc(t.offset) };
  }

  private forStmt(): For {
    const t = this.advance(); // for
    const paren = this.isOp('(');
    if (paren) this.advance();
    const v = this.peek();
    if (v.kind !== 'var') this.unexpected(v, 'variable');
    this.advance();
    const variable: Variable = { kind: 'Variable', name: v.text, loc: this.tokLoc(v) };
    this.expectOp(':');
    let iterable: MapRef | For['iterable'];
    const m = this.peek();
    if (m.kind === 'map' && !this.isOp('[', 1) && !this.isOp('..', 1)) {
      this.advance();
      iterable = { kind: 'Map', name: m.text, keys: undefined, loc: this.tokLoc(m), nameLoc: this.tokLoc(m) };
    } else {
      const start = this.unary();
      this.expectOp('..');
      const end = this.unary();
      iterable = { kind: 'Range', start, end, loc: spanLoc(start.loc, end.loc) };
    }
    if (paren) this.expectOp(')');
    const body = this.block(false);
    return { kind: 'For', variable, iterable, body, loc: this.tokLoc(t) };
  }

  // ----------------------------------------------------------------------------------- expressions

  expr(): Expr {
    const first = this.peek();
    this.enter(first);
    const e = this.ternary();
    this.depth--;
    return e;
  }

  private ternary(): Expr {
    const cond = this.binary(1);
    if (!this.isOp('?')) return cond;
    this.advance();
    let consequent: Expr | undefined;
    if (this.isOp(':')) {
      this.advance();
    } else {
      consequent = this.expr();
      this.expectOp(':');
    }
    const otherwise = this.expr();
    return {
      kind: 'Ternary',
      cond,
      consequent,
      alternative: otherwise,
      loc: spanLoc(cond.loc, otherwise.loc),
    };
  }

  private binaryOp(): { op: BinaryOp; tok: Token } | undefined {
    const t = this.peek();
    if (t.kind === 'op' && BINARY_PREC[t.text] !== undefined) return { op: t.text as BinaryOp, tok: t };
    if (t.kind === 'endpred' && !this.inPredicate) return { op: '/', tok: t };
    return undefined;
  }

  private binary(minPrec: number): Expr {
    let left = this.unary();
    for (;;) {
      const op = this.binaryOp();
      if (!op) return left;
      const prec = BINARY_PREC[op.op];
      if (prec < minPrec) return left;
      this.advance();
      const right = this.binary(prec + 1);
      left = {
        kind: 'Binop',
        op: op.op,
        left,
        right,
        loc: spanLoc(left.loc, right.loc),
        opLoc: this.tokLoc(op.tok),
      };
    }
  }

  unary(): Expr {
    const t = this.peek();
    this.enter(t);
    try {
      if (t.kind === 'op') {
        switch (t.text) {
          case '!':
          case '~':
          case '-':
          case '+':
          case '*': {
            this.advance();
            const operand = this.unary();
            return { kind: 'Unop', op: t.text, operand, prefix: true, loc: this.loc(t.offset) };
          }
          case '&': {
            this.advance();
            const target = this.peek();
            if (target.kind === 'var') {
              this.advance();
              return {
                kind: 'AddrOf',
                target: { kind: 'Variable', name: target.text, loc: this.tokLoc(target) },
                loc: this.loc(t.offset),
              };
            }
            if (target.kind === 'map') {
              const map = this.primary() as MapRef;
              return { kind: 'AddrOf', target: map, loc: this.loc(t.offset) };
            }
            this.unexpected(target);
            break;
          }
          case '++':
          case '--': {
            this.advance();
            const target = this.peek();
            if (target.kind === 'ident') {
              throw new SyntaxStop(
                `The ${t.text} operator must be applied to a map or variable`,
                this.tokLoc(t),
              );
            }
            const operand = this.postfix(this.primary());
            return { kind: 'Unop', op: t.text, operand, prefix: true, loc: this.loc(t.offset) };
          }
          case '(':
            if (this.castAhead()) return this.cast();
            break;
        }
      } else if (t.kind === 'ident' && t.text === 'comptime') {
        this.advance();
        const expr = this.unary();
        return { kind: 'Comptime', expr, loc: this.loc(t.offset) };
      }
      return this.postfix(this.primary());
    } finally {
      this.depth--;
    }
  }

  /** Token-level scan of a type starting at lookahead index `n`; returns the index after it, or -1. */
  private scanType(n: number): { next: number; derived: boolean; known: boolean } | undefined {
    let i = n;
    let known = false;
    while (this.peek(i).kind === 'ident' && C_QUALIFIERS.has(this.peek(i).text)) {
      i++;
      known = true;
    }
    const t = this.peek(i);
    if (t.kind !== 'ident') return undefined;
    if (t.text === 'struct' || t.text === 'union' || t.text === 'enum') {
      if (this.peek(i + 1).kind !== 'ident') return undefined;
      i += 2;
      known = true;
    } else if (t.text === 'typeof') {
      if (!(this.peek(i + 1).kind === 'op' && this.peek(i + 1).text === '(')) return undefined;
      let depth = 0;
      let j = i + 1;
      for (;;) {
        const u = this.peek(j);
        if (u.kind === 'eof') return undefined;
        if (u.kind === 'op' && u.text === '(') depth++;
        if (u.kind === 'op' && u.text === ')' && --depth === 0) break;
        j++;
        if (j - i > 200) return undefined;
      }
      i = j + 1;
      known = true;
    } else if (C_TYPE_WORDS.has(t.text)) {
      while (this.peek(i).kind === 'ident' && C_TYPE_WORDS.has(this.peek(i).text)) i++;
      known = true;
    } else {
      if (isKnownTypeName(t.text)) known = true;
      i++;
    }
    let derived = false;
    for (;;) {
      const u = this.peek(i);
      if (u.kind === 'op' && u.text === '*') {
        i++;
        derived = true;
      } else if (u.kind === 'op' && u.text === '[') {
        const v = this.peek(i + 1);
        if (v.kind === 'op' && v.text === ']') i += 2;
        else if (v.kind === 'int' && this.peek(i + 2).kind === 'op' && this.peek(i + 2).text === ']') i += 3;
        else return undefined;
        derived = true;
      } else if (u.kind === 'ident' && C_QUALIFIERS.has(u.text)) {
        i++;
      } else {
        break;
      }
    }
    return { next: i, derived, known };
  }

  /** At `(`: is this a cast `(type) expr`? */
  private castAhead(): boolean {
    const s = this.scanType(1);
    if (!s) return false;
    const close = this.peek(s.next);
    if (!(close.kind === 'op' && close.text === ')')) return false;
    const after = this.peek(s.next + 1);
    const startsUnary =
      after.kind === 'int' ||
      after.kind === 'string' ||
      after.kind === 'ident' ||
      after.kind === 'var' ||
      after.kind === 'map' ||
      after.kind === 'param' ||
      after.kind === 'paramcount' ||
      (after.kind === 'op' && ['(', '!', '~', '-', '*', '&', '+', '++', '--'].includes(after.text));
    if (!startsUnary) return false;
    if (s.derived || s.known) return true;
    // `(ident) x` with an unknown identifier: a cast unless the next token could be a binary operator.
    return !(after.kind === 'op' && ['-', '*', '&', '+'].includes(after.text));
  }

  private cast(): Expr {
    const open = this.advance(); // (
    const to = this.typeSpec();
    this.expectOp(')');
    const typeLoc = this.loc(open.offset);
    const expr = this.unary();
    return { kind: 'Cast', to, expr, typeLoc, loc: this.loc(open.offset) };
  }

  typeSpec(): TypeSpec {
    const start = this.peek().offset;
    while (this.peek().kind === 'ident' && C_QUALIFIERS.has(this.peek().text)) this.advance();
    const t = this.peek();
    let spec: TypeSpec;
    if (t.kind === 'ident' && (t.text === 'struct' || t.text === 'union' || t.text === 'enum')) {
      this.advance();
      const name = this.expectIdent();
      spec = {
        kind: 'TaggedType',
        tag: t.text as 'struct' | 'union' | 'enum',
        name: name.text,
        loc: this.loc(start),
      };
    } else if (t.kind === 'ident' && t.text === 'typeof') {
      this.advance();
      this.expectOp('(');
      const arg = this.typeOrExpr();
      this.expectOp(')');
      const expr: Expr = arg.kind.endsWith('Type')
        ? { kind: 'TypeExpr', spec: arg as TypeSpec, loc: arg.loc }
        : (arg as Expr);
      spec = { kind: 'TypeofType', expr, loc: this.loc(start) };
    } else if (t.kind === 'ident' && C_TYPE_WORDS.has(t.text)) {
      const words: string[] = [];
      while (this.peek().kind === 'ident' && C_TYPE_WORDS.has(this.peek().text))
        words.push(this.advance().text);
      spec = { kind: 'NamedType', name: words.join(' '), loc: this.loc(start) };
    } else if (t.kind === 'ident') {
      this.advance();
      spec = { kind: 'NamedType', name: t.text, loc: this.loc(start) };
    } else {
      this.unexpected(t);
    }
    for (;;) {
      if (this.isOp('*')) {
        this.advance();
        spec = { kind: 'PointerType', to: spec, loc: this.loc(start) };
      } else if (this.isOp('[')) {
        this.advance();
        let length: number | undefined;
        if (this.peek().kind === 'int') length = Number(this.advance().int ?? 0n);
        this.expectOp(']');
        spec = { kind: 'ArrayType', of: spec, length, loc: this.loc(start) };
      } else if (this.peek().kind === 'ident' && C_QUALIFIERS.has(this.peek().text)) {
        this.advance();
      } else {
        return spec;
      }
    }
  }

  /** The argument of sizeof/offsetof/typeof: a type when it can only be one, else an expression. */
  private typeOrExpr(): Expr | TypeSpec {
    const s = this.scanType(0);
    if (s) {
      const next = this.peek(s.next);
      const ends = next.kind === 'op' && (next.text === ')' || next.text === ',');
      if (ends && (s.derived || s.known)) return this.typeSpec();
    }
    return this.expr();
  }

  private exprList(close: string): Expr[] {
    const args: Expr[] = [];
    while (!this.isOp(close)) {
      args.push(this.expr());
      if (this.isOp(',')) {
        this.advance();
        if (this.isOp(close)) this.unexpected(this.peek());
      } else if (!this.isOp(close)) {
        this.unexpected(this.peek(), close);
      }
    }
    this.advance();
    return args;
  }

  private primary(): Expr {
    const t = this.peek();
    switch (t.kind) {
      case 'int':
        this.advance();
        return { kind: 'Integer', value: t.int ?? 0n, raw: t.text, loc: this.tokLoc(t) };
      case 'string':
        this.advance();
        return { kind: 'String', value: t.text, loc: this.tokLoc(t) };
      case 'param':
        this.advance();
        if (Number(t.text.slice(1)) === 0 || !Number.isSafeInteger(Number(t.text.slice(1))))
          throw new SyntaxStop(
            `param ${t.text} is out of integer range [1, ${Number.MAX_SAFE_INTEGER}]`,
            this.tokLoc(t),
          );
        if (this.positionalArgs) {
          const n = Number(t.text.slice(1));
          const v = this.positionalArgs[n - 1];
          // bpftrace: a missing parameter is 0 where an integer is expected, "" in str().
          if (v === undefined)
            return { kind: 'Integer', value: 0n, raw: t.text, positional: n, loc: this.tokLoc(t) };
          if (/^([0-9]+|0[xX][0-9a-fA-F]+)$/.test(v)) {
            const value = /^0[0-7]+$/.test(v) ? BigInt(`0o${v.slice(1)}`) : BigInt(v);
            return { kind: 'Integer', value, raw: t.text, positional: n, loc: this.tokLoc(t) };
          }
          return { kind: 'String', value: v, positional: n, loc: this.tokLoc(t) };
        }
        return { kind: 'PositionalParam', index: Number(t.text.slice(1)), loc: this.tokLoc(t) };
      case 'paramcount':
        this.advance();
        return { kind: 'ParamCount', loc: this.tokLoc(t) };
      case 'var':
        this.advance();
        return { kind: 'Variable', name: t.text, loc: this.tokLoc(t) };
      case 'map': {
        this.advance();
        const nameLoc = this.tokLoc(t);
        if (this.isOp('[')) {
          this.advance();
          if (this.isOp(']')) this.unexpected(this.peek());
          const keys = this.exprList(']');
          return { kind: 'Map', name: t.text, keys, nameLoc, loc: this.loc(t.offset) };
        }
        return { kind: 'Map', name: t.text, keys: undefined, nameLoc, loc: nameLoc };
      }
      case 'op':
        if (t.text === '(') return this.parenthesized();
        if (t.text === '{') {
          const block = this.block(true);
          return { kind: 'BlockExpr', block, loc: block.loc };
        }
        break;
      case 'ident':
        return this.identExpr();
    }
    this.unexpected(t);
  }

  private parenthesized(): Expr {
    const open = this.advance();
    if (this.isOp(')')) {
      this.advance();
      return { kind: 'Tuple', elems: [], loc: this.loc(open.offset) };
    }
    if (this.peek().kind === 'ident' && this.isOp('=', 1)) {
      const fields: { name: string; value: Expr; loc: Loc }[] = [];
      while (!this.isOp(')')) {
        const name = this.expectIdent();
        this.expectOp('=');
        const value = this.expr();
        fields.push({ name: name.text, value, loc: this.loc(name.offset) });
        if (this.isOp(',')) this.advance();
        else if (!this.isOp(')')) this.unexpected(this.peek(), ')');
      }
      this.advance();
      return { kind: 'Record', fields, loc: this.loc(open.offset) };
    }
    const first = this.expr();
    if (this.isOp(',')) {
      const elems = [first];
      while (this.isOp(',')) {
        this.advance();
        if (this.isOp(')')) break;
        elems.push(this.expr());
      }
      this.expectOp(')');
      return { kind: 'Tuple', elems, loc: this.loc(open.offset) };
    }
    const close = this.peek();
    if (!(close.kind === 'op' && close.text === ')')) this.unexpected(close, ')');
    this.advance();
    return first;
  }

  private identExpr(): Expr {
    const t = this.peek();
    switch (t.text) {
      case 'true':
      case 'false':
        this.advance();
        return { kind: 'Bool', value: t.text === 'true', loc: this.tokLoc(t) };
      case 'if':
        return this.ifExpr();
      case 'sizeof':
      case 'typeof':
      case 'typeinfo':
        if (this.isOp('(', 1)) {
          this.advance();
          this.advance();
          const arg = this.typeOrExpr();
          this.expectOp(')');
          const kind = t.text === 'sizeof' ? 'Sizeof' : t.text === 'typeof' ? 'Typeof' : 'Typeinfo';
          return { kind, arg, loc: this.loc(t.offset) };
        }
        break;
      case 'offsetof':
        if (this.isOp('(', 1)) {
          this.advance();
          this.advance();
          const arg = this.typeOrExpr();
          this.expectOp(',');
          const fields = [this.expectIdent().text];
          while (this.isOp('.')) {
            this.advance();
            fields.push(this.expectIdent().text);
          }
          this.expectOp(')');
          return { kind: 'Offsetof', arg, fields, loc: this.loc(t.offset) };
        }
        break;
      case 'struct':
      case 'union':
      case 'enum': {
        const spec = this.typeSpec();
        return { kind: 'TypeExpr', spec, loc: spec.loc };
      }
    }
    this.advance();
    if (this.isOp('(')) {
      this.advance();
      const args = this.exprList(')');
      // `str($1)` of a numeric (or missing) positional parameter is its text.
      const a0 = args[0];
      if (t.text === 'str' && a0?.kind === 'Integer' && a0.positional !== undefined)
        args[0] = {
          kind: 'String',
          value: this.positionalArgs?.[a0.positional - 1] ?? '',
          positional: a0.positional,
          loc: a0.loc,
        };
      return { kind: 'Call', name: t.text, args, nameLoc: this.tokLoc(t), loc: this.loc(t.offset) };
    }
    return { kind: 'Identifier', name: t.text, loc: this.tokLoc(t) };
  }

  private postfix(base: Expr): Expr {
    let e = base;
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op') return e;
      if (t.text === '.' || t.text === '->') {
        this.advance();
        const f = this.peek();
        if (f.kind === 'int' && t.text === '.') {
          this.advance();
          if (!/^[0-9]+$/.test(f.text)) this.unexpected(f);
          e = {
            kind: 'TupleAccess',
            expr: e,
            index: Number(f.int ?? 0n),
            loc: spanLoc(e.loc, this.tokLoc(f)),
          };
          continue;
        }
        if (f.kind !== 'ident') this.unexpected(f, 'identifier');
        this.advance();
        e = {
          kind: 'FieldAccess',
          expr: e,
          field: f.text,
          arrow: t.text === '->',
          loc: spanLoc(e.loc, this.tokLoc(f)),
        };
        continue;
      }
      if (t.text === '[') {
        this.advance();
        const index = this.expr();
        const close = this.expectOp(']');
        e = { kind: 'ArrayAccess', expr: e, index, loc: spanLoc(e.loc, this.tokLoc(close)) };
        continue;
      }
      if (t.text === '++' || t.text === '--') {
        if (e.kind === 'Identifier') {
          throw new SyntaxStop(`The ${t.text} operator must be applied to a map or variable`, e.loc);
        }
        if (e.kind !== 'Variable' && e.kind !== 'Map') return e;
        this.advance();
        e = { kind: 'Unop', op: t.text, operand: e, prefix: false, loc: spanLoc(e.loc, this.tokLoc(t)) };
        continue;
      }
      return e;
    }
  }
}

/** An if statement whose branches all end in a value (so it can be a block's value). */
function isValueIf(s: If): boolean {
  if (s.consequent.expr === undefined || s.alternative === undefined) return false;
  return s.alternative.kind === 'Block' ? s.alternative.expr !== undefined : isValueIf(s.alternative);
}

function toIfExpr(s: If): IfExpr {
  const otherwise = s.alternative as Block | If;
  return {
    kind: 'IfExpr',
    cond: s.cond,
    consequent: s.consequent,
    alternative: otherwise.kind === 'Block' ? otherwise : toIfExpr(otherwise),
    loc: s.loc,
  };
}

function isBlockStatement(s: Stmt): boolean {
  return (
    s.kind === 'If' || s.kind === 'While' || s.kind === 'For' || s.kind === 'Unroll' || s.kind === 'Block'
  );
}
