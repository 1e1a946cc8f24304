/**
 * The tracing language's syntax tree: plain data (JSON-friendly apart from bigint integer values), every
 * node with a `kind` and a source `loc`. The semantic pass (analyse.ts) annotates expressions with `type`.
 */
import type { Loc } from './diagnostics.js';
import type { ProbeSpec } from './probes.js';
import type { TraceType } from './types.js';

// ---------------------------------------------------------------------------------------------- types

/** A type written in the source: `uint8`, `struct task_struct *`, `int8[8]`, `typeof(x)`. */
export type TypeSpec =
  | { kind: 'NamedType'; name: string; loc: Loc } // uint8, bool, string, size_t, unsigned long, a macro param
  | { kind: 'TaggedType'; tag: 'struct' | 'union' | 'enum'; name: string; loc: Loc }
  | { kind: 'PointerType'; to: TypeSpec; loc: Loc }
  | { kind: 'ArrayType'; of: TypeSpec; length: number | undefined; loc: Loc }
  | { kind: 'TypeofType'; expr: Expr; loc: Loc };

// ---------------------------------------------------------------------------------------- expressions

export type BinaryOp =
  | '||'
  | '&&'
  | '|'
  | '^'
  | '&'
  | '=='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | '<<'
  | '>>'
  | '+'
  | '-'
  | '*'
  | '/'
  | '%';

export type UnaryOp = '!' | '~' | '-' | '+' | '*' | '++' | '--';

export type AssignOp = '=' | '+=' | '-=' | '*=' | '/=' | '%=' | '&=' | '|=' | '^=' | '<<=' | '>>=';

interface ExprBase {
  loc: Loc;
  /** Filled in by the semantic pass. */
  type?: TraceType;
}

export interface IntegerLit extends ExprBase {
  kind: 'Integer';
  value: bigint;
  raw: string;
  /** Set when the literal came from a positional parameter (`$2`): `str($2)` is its text. */
  positional?: number;
}
export interface BoolLit extends ExprBase {
  kind: 'Bool';
  value: boolean;
}
/** A string literal; `value` holds bytes as char codes 0..255 (UTF-8 encoded from the source). */
export interface StringLit extends ExprBase {
  kind: 'String';
  value: string;
  /** Set when the literal came from a positional parameter (`$2`), which allows `str($1 + 1)`. */
  positional?: number;
}
/** A bare identifier: a builtin (pid, comm, args...), an enum value, a 0-argument macro or a type name. */
export interface Identifier extends ExprBase {
  kind: 'Identifier';
  name: string;
}
export interface PositionalParam extends ExprBase {
  kind: 'PositionalParam';
  index: number;
}
export interface ParamCount extends ExprBase {
  kind: 'ParamCount';
}
export interface Variable extends ExprBase {
  kind: 'Variable';
  name: string; // with the `$`
}
/** `@name` or `@name[k1, k2]`; `keys` is undefined for a scalar reference. `name` is '@' for the anonymous map. */
export interface MapRef extends ExprBase {
  kind: 'Map';
  name: string;
  keys: Expr[] | undefined;
  /** Location of the `@name` alone (bpftrace reports some errors there). */
  nameLoc: Loc;
}
export interface AddrOf extends ExprBase {
  kind: 'AddrOf';
  target: Variable | MapRef;
}
export interface Unop extends ExprBase {
  kind: 'Unop';
  op: UnaryOp;
  operand: Expr;
  /** For ++/--: true when written before the operand. */
  prefix: boolean;
}
export interface Binop extends ExprBase {
  kind: 'Binop';
  op: BinaryOp;
  left: Expr;
  right: Expr;
  opLoc: Loc;
}
/** `c ? a : b`, and the elvis form `c ?: b` (then === undefined). */
export interface Ternary extends ExprBase {
  kind: 'Ternary';
  cond: Expr;
  consequent: Expr | undefined;
  alternative: Expr;
}
export interface IfExpr extends ExprBase {
  kind: 'IfExpr';
  cond: Expr;
  consequent: Block;
  alternative: Block | IfExpr;
}
export interface BlockExpr extends ExprBase {
  kind: 'BlockExpr';
  block: Block;
}
export interface Call extends ExprBase {
  kind: 'Call';
  name: string;
  args: Expr[];
  nameLoc: Loc;
  /** Macro calls this call was expanded from, innermost first (errorf/warnf report them). */
  expandedFrom?: Loc[];
}
export interface Sizeof extends ExprBase {
  kind: 'Sizeof';
  arg: Expr | TypeSpec;
}
export interface Offsetof extends ExprBase {
  kind: 'Offsetof';
  arg: Expr | TypeSpec;
  fields: string[];
}
export interface Typeof extends ExprBase {
  kind: 'Typeof';
  arg: Expr | TypeSpec;
}
export interface Typeinfo extends ExprBase {
  kind: 'Typeinfo';
  arg: Expr | TypeSpec;
}
export interface Cast extends ExprBase {
  kind: 'Cast';
  to: TypeSpec;
  expr: Expr;
  /** The `(type)` part, where bpftrace reports cast errors. */
  typeLoc: Loc;
}
export interface FieldAccess extends ExprBase {
  kind: 'FieldAccess';
  expr: Expr;
  field: string;
  arrow: boolean;
}
export interface TupleAccess extends ExprBase {
  kind: 'TupleAccess';
  expr: Expr;
  index: number;
}
export interface ArrayAccess extends ExprBase {
  kind: 'ArrayAccess';
  expr: Expr;
  index: Expr;
}
export interface TupleLit extends ExprBase {
  kind: 'Tuple';
  elems: Expr[];
}
/** A named tuple `(a=1, b="x")`. */
export interface RecordLit extends ExprBase {
  kind: 'Record';
  fields: { name: string; value: Expr; loc: Loc }[];
}
export interface Comptime extends ExprBase {
  kind: 'Comptime';
  expr: Expr;
}
/** A type used where an expression is expected (macro arguments `typeof(uint64*)`, `sizeof(uint8)`). */
export interface TypeExpr extends ExprBase {
  kind: 'TypeExpr';
  spec: TypeSpec;
}

export type Expr =
  | IntegerLit
  | BoolLit
  | StringLit
  | Identifier
  | PositionalParam
  | ParamCount
  | Variable
  | MapRef
  | AddrOf
  | Unop
  | Binop
  | Ternary
  | IfExpr
  | BlockExpr
  | Call
  | Sizeof
  | Offsetof
  | Typeof
  | Typeinfo
  | Cast
  | FieldAccess
  | TupleAccess
  | ArrayAccess
  | TupleLit
  | RecordLit
  | Comptime
  | TypeExpr;

// ----------------------------------------------------------------------------------------- statements

export interface Block {
  kind: 'Block';
  stmts: Stmt[];
  /** The trailing expression of a block used as a value (`{ let $a = 1; $a }`). */
  expr: Expr | undefined;
  loc: Loc;
}
export interface ExprStmt {
  kind: 'ExprStmt';
  expr: Expr;
  loc: Loc;
}
export interface AssignMap {
  kind: 'AssignMap';
  map: MapRef;
  op: AssignOp;
  value: Expr;
  loc: Loc;
  opLoc: Loc;
}
export interface AssignVar {
  kind: 'AssignVar';
  variable: Variable;
  op: AssignOp;
  value: Expr;
  /** Present for `let $x[: type] = value`. */
  decl: VarDecl | undefined;
  loc: Loc;
  opLoc: Loc;
}
export interface VarDecl {
  kind: 'VarDecl';
  variable: Variable;
  typeSpec: TypeSpec | undefined;
  loc: Loc;
}
/** `_ = expr` */
export interface Discard {
  kind: 'Discard';
  value: Expr;
  loc: Loc;
}
export interface If {
  kind: 'If';
  cond: Expr;
  consequent: Block;
  alternative: Block | If | undefined;
  loc: Loc;
}
export interface Unroll {
  kind: 'Unroll';
  count: Expr;
  body: Block;
  loc: Loc;
}
export interface While {
  kind: 'While';
  cond: Expr;
  body: Block;
  loc: Loc;
}
export interface Range {
  kind: 'Range';
  start: Expr;
  end: Expr;
  loc: Loc;
}
export interface For {
  kind: 'For';
  variable: Variable;
  iterable: MapRef | Range;
  body: Block;
  loc: Loc;
}
export interface Jump {
  kind: 'Jump';
  jump: 'break' | 'continue' | 'return';
  value: Expr | undefined;
  loc: Loc;
}
export interface ImportStmt {
  kind: 'Import';
  path: string;
  loc: Loc;
}

export type Stmt =
  | ExprStmt
  | AssignMap
  | AssignVar
  | VarDecl
  | Discard
  | If
  | Unroll
  | While
  | For
  | Jump
  | ImportStmt
  | Block;

// --------------------------------------------------------------------------------------- top level

export interface AttachPoint {
  kind: 'AttachPoint';
  /** The text as written, e.g. `t:syscalls:sys_enter_openat`, `uprobe:/bin/bash:"readline"+4`. */
  raw: string;
  spec: ProbeSpec;
  loc: Loc;
}

export interface Probe {
  kind: 'Probe';
  attachPoints: AttachPoint[];
  predicate: Expr | undefined;
  block: Block;
  loc: Loc;
}

/** A C type as written in a struct definition. */
export type CType =
  | { kind: 'base'; words: string[] } // `unsigned long`, `int32_t`, `char`
  | {
      kind: 'tagged';
      tag: 'struct' | 'union' | 'enum';
      name: string | undefined;
      body: CStructDef | undefined;
    }
  | { kind: 'pointer'; to: CType }
  | { kind: 'array'; of: CType; length: number }
  | { kind: 'function' }; // function pointer members (opaque)

export interface CField {
  name: string;
  type: CType;
  bits: number | undefined;
}

export interface CStructDef {
  tag: 'struct' | 'union';
  name: string | undefined;
  fields: CField[];
  /** `__attribute__((packed))`: no padding. */
  packed?: boolean;
}

export type CDefinition =
  | { kind: 'CInclude'; text: string; loc: Loc }
  | { kind: 'CDefine'; name: string; value: string; loc: Loc }
  | { kind: 'CDirective'; text: string; loc: Loc }
  | { kind: 'CStruct'; text: string; def: CStructDef; loc: Loc }
  | {
      kind: 'CEnum';
      text: string;
      name: string | undefined;
      values: { name: string; value: bigint }[];
      loc: Loc;
    };

export interface ConfigEntry {
  name: string;
  value: bigint | string | boolean;
  /** True when the value was written as a bare identifier (`stack_mode=perf`). */
  ident: boolean;
  loc: Loc;
}

export interface Config {
  kind: 'Config';
  entries: ConfigEntry[];
  loc: Loc;
}

export interface MapDecl {
  kind: 'MapDecl';
  name: string;
  mapType: string; // hash, lruhash, percpuhash, percpulruhash, ...
  maxEntries: bigint;
  loc: Loc;
}

/** `macro name(a, $b, @c) { ... }` */
export interface Macro {
  kind: 'Macro';
  name: string;
  params: { kind: 'ident' | 'var' | 'map'; name: string; loc: Loc }[];
  body: Block;
  loc: Loc;
}

/** `fn name($a: type, ...): type { ... }` */
export interface Subprog {
  kind: 'Subprog';
  name: string;
  params: { name: string; typeSpec: TypeSpec; loc: Loc }[];
  returnType: TypeSpec;
  body: Block;
  loc: Loc;
}

export interface Program {
  kind: 'Program';
  /** The `#!` line, if any. */
  shebang: string | undefined;
  cDefinitions: CDefinition[];
  config: Config | undefined;
  imports: ImportStmt[];
  mapDecls: MapDecl[];
  macros: Macro[];
  subprogs: Subprog[];
  probes: Probe[];
  loc: Loc;
}

export type Node = Program | Probe | AttachPoint | Stmt | Expr | Block | Range | TypeSpec;
