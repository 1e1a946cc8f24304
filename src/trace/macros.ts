/**
 * Hygienic macro expansion (`macro add_one(x) { x + 1 }`): every call of a macro (or bare use of a
 * 0-parameter macro) becomes a block expression holding a copy of the body, with
 *  - `x` (expression parameters) replaced by the argument expression,
 *  - `$x` parameters bound to the caller's variable (which the macro may mutate),
 *  - `@x` parameters renamed to the caller's map,
 *  - every other variable of the body renamed so it cannot clash with the caller's.
 * Runs before the semantic pass; the result has no macro calls left.
 */
import type { Block, Expr, Macro, Program, Stmt, TypeSpec } from './ast.js';
import type { Diagnostics, Loc } from './diagnostics.js';

const MAX_EXPANSION_DEPTH = 64;

interface Binding {
  idents: Map<string, Expr>;
  vars: Map<string, string>;
  maps: Map<string, string>;
  macro: Macro;
}

export function expandMacros(program: Program, diag: Diagnostics): void {
  if (program.macros.length === 0) return;
  const macros = new Map<string, Macro[]>();
  for (const m of program.macros) {
    const list = macros.get(m.name) ?? [];
    if (list.some((o) => o.params.length === m.params.length))
      diag.error(`Redefinition of macro: ${m.name}`, m.loc);
    list.push(m);
    macros.set(m.name, list);
  }
  let counter = 0;

  const find = (name: string, arity: number): Macro | undefined =>
    macros.get(name)?.find((m) => m.params.length === arity);

  const expandCall = (name: string, args: Expr[], loc: Loc, depth: number): Expr | undefined => {
    const macro = find(name, args.length);
    if (!macro) return undefined;
    if (depth > MAX_EXPANSION_DEPTH) {
      diag.error(`Macro recursion limit reached expanding ${name}`, loc);
      return undefined;
    }
    const binding: Binding = { idents: new Map(), vars: new Map(), maps: new Map(), macro };
    const id = ++counter;
    macro.params.forEach((p, i) => {
      const arg = args[i];
      if (p.kind === 'ident') {
        binding.idents.set(p.name, arg);
      } else if (p.kind === 'var') {
        if (arg.kind !== 'Variable') {
          diag.error(`Mismatched arg to macro call ${name}. Expected a variable for ${p.name}`, arg.loc);
          return;
        }
        binding.vars.set(p.name, arg.name);
      } else {
        if (arg.kind !== 'Map' || arg.keys !== undefined) {
          diag.error(`Mismatched arg to macro call ${name}. Expected a map for ${p.name}`, arg.loc);
          return;
        }
        binding.maps.set(p.name, arg.name);
      }
    });
    // Hygiene: rename the macro's own variables.
    const rename = (v: string) => binding.vars.get(v) ?? `${v}__${name}_${id}`;
    const body = cloneBlock(macro.body, binding, rename, diag);
    const expanded: Expr = { kind: 'BlockExpr', block: { ...body, loc }, loc };
    walkExprs(expanded, depth + 1);
    const mark = (x: Expr): Expr => {
      if (x.kind === 'Call') x.expandedFrom = [...(x.expandedFrom ?? []), loc];
      mapChildren(x, mark);
      return x;
    };
    mapChildren(expanded, mark);
    return expanded;
  };

  // Replace macro calls in place, innermost arguments first.
  const rewrite = (e: Expr, depth: number): Expr => {
    if (e.kind === 'Call') {
      e.args = e.args.map((a) => rewrite(a, depth));
      return expandCall(e.name, e.args, e.loc, depth) ?? e;
    }
    if (e.kind === 'Identifier') return expandCall(e.name, [], e.loc, depth) ?? e;
    mapChildren(e, (c) => rewrite(c, depth));
    return e;
  };

  const walkExprs = (e: Expr, depth: number): void => {
    mapChildren(e, (c) => rewrite(c, depth));
  };

  const walkBlock = (b: Block): void => {
    b.stmts = b.stmts.map((s) => rewriteStmt(s, (x) => rewrite(x, 0)));
    if (b.expr) b.expr = rewrite(b.expr, 0);
  };

  for (const p of program.probes) {
    if (p.predicate) p.predicate = rewrite(p.predicate, 0);
    walkBlock(p.block);
  }
  for (const f of program.subprogs) walkBlock(f.body);
}

/** Applies `f` to each direct child expression (and statement/blocks within) of `e`, replacing them. */
function mapChildren(e: Expr, f: (x: Expr) => Expr): void {
  const blk = (b: Block) => {
    b.stmts = b.stmts.map((s) => rewriteStmt(s, f));
    if (b.expr) b.expr = f(b.expr);
  };
  switch (e.kind) {
    case 'Map':
      if (e.keys) e.keys = e.keys.map(f);
      return;
    case 'AddrOf':
      e.target = f(e.target) as typeof e.target;
      return;
    case 'Unop':
      e.operand = f(e.operand);
      return;
    case 'Binop':
      e.left = f(e.left);
      e.right = f(e.right);
      return;
    case 'Ternary':
      e.cond = f(e.cond);
      if (e.consequent) e.consequent = f(e.consequent);
      e.alternative = f(e.alternative);
      return;
    case 'IfExpr':
      e.cond = f(e.cond);
      blk(e.consequent);
      if (e.alternative.kind === 'Block') blk(e.alternative);
      else e.alternative = f(e.alternative) as typeof e.alternative;
      return;
    case 'BlockExpr':
      blk(e.block);
      return;
    case 'Call':
      e.args = e.args.map(f);
      return;
    case 'Sizeof':
    case 'Typeof':
    case 'Typeinfo':
    case 'Offsetof':
      if (!e.arg.kind.endsWith('Type')) e.arg = f(e.arg as Expr);
      return;
    case 'Cast':
      e.expr = f(e.expr);
      return;
    case 'FieldAccess':
    case 'TupleAccess':
    case 'Comptime':
      e.expr = f(e.expr);
      return;
    case 'ArrayAccess':
      e.expr = f(e.expr);
      e.index = f(e.index);
      return;
    case 'Tuple':
      e.elems = e.elems.map(f);
      return;
    case 'Record':
      for (const fl of e.fields) fl.value = f(fl.value);
      return;
    default:
      return;
  }
}

function rewriteStmt(s: Stmt, f: (x: Expr) => Expr): Stmt {
  const blk = (b: Block) => {
    b.stmts = b.stmts.map((x) => rewriteStmt(x, f));
    if (b.expr) b.expr = f(b.expr);
  };
  switch (s.kind) {
    case 'ExprStmt':
      s.expr = f(s.expr);
      break;
    case 'AssignMap':
      if (s.map.keys) s.map.keys = s.map.keys.map(f);
      s.value = f(s.value);
      break;
    case 'AssignVar':
    case 'Discard':
      s.value = f(s.value);
      break;
    case 'If':
      s.cond = f(s.cond);
      blk(s.consequent);
      if (s.alternative?.kind === 'Block') blk(s.alternative);
      else if (s.alternative) rewriteStmt(s.alternative, f);
      break;
    case 'Unroll':
      s.count = f(s.count);
      blk(s.body);
      break;
    case 'While':
      s.cond = f(s.cond);
      blk(s.body);
      break;
    case 'For':
      if (s.iterable.kind === 'Range') {
        s.iterable.start = f(s.iterable.start);
        s.iterable.end = f(s.iterable.end);
      }
      blk(s.body);
      break;
    case 'Jump':
      if (s.value) s.value = f(s.value);
      break;
    case 'Block':
      blk(s);
      break;
    default:
      break;
  }
  return s;
}

// ------------------------------------------------------------------------------------------ cloning

function cloneBlock(b: Block, bind: Binding, rename: (v: string) => string, diag: Diagnostics): Block {
  return {
    kind: 'Block',
    stmts: b.stmts.map((s) => cloneStmt(s, bind, rename, diag)),
    expr: b.expr ? cloneExpr(b.expr, bind, rename, diag) : undefined,
    loc: b.loc,
  };
}

function cloneType(t: TypeSpec, bind: Binding, rename: (v: string) => string, diag: Diagnostics): TypeSpec {
  switch (t.kind) {
    case 'NamedType': {
      const arg = bind.idents.get(t.name);
      if (arg) return { kind: 'TypeofType', expr: structuredCloneExpr(arg), loc: t.loc };
      return { ...t };
    }
    case 'TaggedType':
      return { ...t };
    case 'PointerType':
      return { ...t, to: cloneType(t.to, bind, rename, diag) };
    case 'ArrayType':
      return { ...t, of: cloneType(t.of, bind, rename, diag) };
    case 'TypeofType':
      return { ...t, expr: cloneExpr(t.expr, bind, rename, diag) };
  }
}

function structuredCloneExpr(e: Expr): Expr {
  // Arguments may be substituted several times; each use gets its own nodes.
  return structuredClone(e);
}

function cloneStmt(s: Stmt, bind: Binding, rename: (v: string) => string, diag: Diagnostics): Stmt {
  const ce = (e: Expr) => cloneExpr(e, bind, rename, diag);
  const cb = (b: Block) => cloneBlock(b, bind, rename, diag);
  switch (s.kind) {
    case 'ExprStmt':
      return { ...s, expr: ce(s.expr) };
    case 'AssignMap':
      return { ...s, map: ce(s.map) as typeof s.map, value: ce(s.value) };
    case 'AssignVar': {
      const variable = ce(s.variable) as typeof s.variable;
      const decl = s.decl
        ? {
            ...s.decl,
            variable,
            typeSpec: s.decl.typeSpec ? cloneType(s.decl.typeSpec, bind, rename, diag) : undefined,
          }
        : undefined;
      return { ...s, variable, value: ce(s.value), decl };
    }
    case 'VarDecl':
      return {
        ...s,
        variable: ce(s.variable) as typeof s.variable,
        typeSpec: s.typeSpec ? cloneType(s.typeSpec, bind, rename, diag) : undefined,
      };
    case 'Discard':
      return { ...s, value: ce(s.value) };
    case 'If':
      return {
        ...s,
        cond: ce(s.cond),
        consequent: cb(s.consequent),
        alternative: s.alternative
          ? s.alternative.kind === 'Block'
            ? cb(s.alternative)
            : (cloneStmt(s.alternative, bind, rename, diag) as typeof s.alternative)
          : undefined,
      };
    case 'Unroll':
      return { ...s, count: ce(s.count), body: cb(s.body) };
    case 'While':
      return { ...s, cond: ce(s.cond), body: cb(s.body) };
    case 'For':
      return {
        ...s,
        variable: ce(s.variable) as typeof s.variable,
        iterable:
          s.iterable.kind === 'Range'
            ? { ...s.iterable, start: ce(s.iterable.start), end: ce(s.iterable.end) }
            : (ce(s.iterable) as typeof s.iterable),
        body: cb(s.body),
      };
    case 'Jump':
      return { ...s, value: s.value ? ce(s.value) : undefined };
    case 'Import':
      return { ...s };
    case 'Block':
      return cb(s);
  }
}

function cloneExpr(e: Expr, bind: Binding, rename: (v: string) => string, diag: Diagnostics): Expr {
  const ce = (x: Expr) => cloneExpr(x, bind, rename, diag);
  const cb = (b: Block) => cloneBlock(b, bind, rename, diag);
  const arg = (a: Expr | TypeSpec): Expr | TypeSpec =>
    a.kind.endsWith('Type') ? cloneType(a as TypeSpec, bind, rename, diag) : ce(a as Expr);
  switch (e.kind) {
    case 'Identifier': {
      const sub = bind.idents.get(e.name);
      return sub ? structuredCloneExpr(sub) : { ...e };
    }
    case 'Variable':
      return { ...e, name: rename(e.name) };
    case 'Map': {
      const name = bind.maps.get(e.name);
      if (name === undefined) {
        diag.error(
          `Unhygienic access to map: ${e.name}. Maps must be passed into the macro as arguments`,
          e.nameLoc,
        );
      }
      return { ...e, name: name ?? e.name, keys: e.keys?.map(ce) };
    }
    case 'AddrOf':
      return { ...e, target: ce(e.target) as typeof e.target };
    case 'Unop':
      return { ...e, operand: ce(e.operand) };
    case 'Binop':
      return { ...e, left: ce(e.left), right: ce(e.right) };
    case 'Ternary':
      return {
        ...e,
        cond: ce(e.cond),
        consequent: e.consequent ? ce(e.consequent) : undefined,
        alternative: ce(e.alternative),
      };
    case 'IfExpr':
      return {
        ...e,
        cond: ce(e.cond),
        consequent: cb(e.consequent),
        alternative:
          e.alternative.kind === 'Block' ? cb(e.alternative) : (ce(e.alternative) as typeof e.alternative),
      };
    case 'BlockExpr':
      return { ...e, block: cb(e.block) };
    case 'Call': {
      // A call of an ident parameter is not a thing; calls keep their name.
      return { ...e, args: e.args.map(ce) };
    }
    case 'Sizeof':
    case 'Typeof':
    case 'Typeinfo':
      return { ...e, arg: arg(e.arg) };
    case 'Offsetof':
      return { ...e, arg: arg(e.arg), fields: [...e.fields] };
    case 'Cast':
      return { ...e, to: cloneType(e.to, bind, rename, diag), expr: ce(e.expr) };
    case 'FieldAccess':
    case 'TupleAccess':
    case 'Comptime':
      return { ...e, expr: ce(e.expr) };
    case 'ArrayAccess':
      return { ...e, expr: ce(e.expr), index: ce(e.index) };
    case 'Tuple':
      return { ...e, elems: e.elems.map(ce) };
    case 'Record':
      return { ...e, fields: e.fields.map((f) => ({ ...f, value: ce(f.value) })) };
    case 'TypeExpr':
      return { ...e, spec: cloneType(e.spec, bind, rename, diag) };
    default:
      return { ...e };
  }
}
