/**
 * `-d ast`: prints the syntax tree in the shape of bpftrace's AST dump (one node per line, one space of
 * indent per level, `:: type[...]` once the semantic pass has run).
 */
import type { Block, CType, Expr, Program, Stmt, TypeSpec } from './ast.js';
import { typeName } from './types.js';

export function escapeString(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c < 32 || c >= 127) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

export function typeSpecText(t: TypeSpec): string {
  switch (t.kind) {
    case 'NamedType':
      return t.name;
    case 'TaggedType':
      return `${t.tag} ${t.name}`;
    case 'PointerType':
      return `${typeSpecText(t.to)} *`;
    case 'ArrayType':
      return `${typeSpecText(t.of)}[${t.length ?? ''}]`;
    case 'TypeofType':
      return 'typeof(...)';
  }
}

export function cTypeText(t: CType): string {
  switch (t.kind) {
    case 'base':
      return t.words.join(' ');
    case 'tagged':
      return `${t.tag} ${t.name ?? '(anonymous)'}`;
    case 'pointer':
      return `${cTypeText(t.to)} *`;
    case 'array':
      return `${cTypeText(t.of)}[${t.length}]`;
    case 'function':
      return 'function';
  }
}

export function printAst(program: Program): string {
  const out: string[] = ['Program'];
  const line = (depth: number, text: string) => out.push(`${' '.repeat(depth)}${text}`);
  const typed = (e: Expr, text: string) => (e.type ? `${text} :: type[${typeName(e.type)}]` : text);

  const expr = (e: Expr, d: number): void => {
    switch (e.kind) {
      case 'Integer':
        line(d, typed(e, `int: ${e.value}`));
        return;
      case 'Bool':
        line(d, typed(e, `bool: ${e.value}`));
        return;
      case 'String':
        line(d, typed(e, `string: ${escapeString(e.value)}`));
        return;
      case 'Identifier':
        line(d, typed(e, `builtin: ${e.name}`));
        return;
      case 'PositionalParam':
        line(d, typed(e, `param: $${e.index}`));
        return;
      case 'ParamCount':
        line(d, typed(e, 'param: $#'));
        return;
      case 'Variable':
        line(d, typed(e, `variable: ${e.name}`));
        return;
      case 'Map':
        line(d, typed(e, `map: ${e.name}`));
        for (const k of e.keys ?? []) expr(k, d + 1);
        return;
      case 'AddrOf':
        line(d, typed(e, '&'));
        expr(e.target, d + 1);
        return;
      case 'Unop':
        line(d, typed(e, e.op === '*' ? 'dereference' : e.prefix ? e.op : `${e.op} (post)`));
        expr(e.operand, d + 1);
        return;
      case 'Binop':
        line(d, typed(e, e.op));
        expr(e.left, d + 1);
        expr(e.right, d + 1);
        return;
      case 'Ternary':
        line(d, typed(e, '?:'));
        expr(e.cond, d + 1);
        if (e.consequent) expr(e.consequent, d + 1);
        expr(e.alternative, d + 1);
        return;
      case 'IfExpr':
        line(d, typed(e, 'if'));
        expr(e.cond, d + 1);
        line(d + 1, 'then');
        block(e.consequent, d + 2);
        line(d + 1, 'else');
        if (e.alternative.kind === 'Block') block(e.alternative, d + 2);
        else expr(e.alternative, d + 2);
        return;
      case 'BlockExpr':
        line(d, typed(e, 'block'));
        block(e.block, d + 1);
        return;
      case 'Call':
        line(d, typed(e, `call: ${e.name}`));
        for (const a of e.args) expr(a, d + 1);
        return;
      case 'Sizeof':
      case 'Typeof':
      case 'Typeinfo':
        line(d, typed(e, e.kind.toLowerCase()));
        if ('kind' in e.arg && e.arg.kind.endsWith('Type')) line(d + 1, typeSpecText(e.arg as TypeSpec));
        else expr(e.arg as Expr, d + 1);
        return;
      case 'Offsetof':
        line(d, typed(e, 'offsetof'));
        if (e.arg.kind.endsWith('Type')) line(d + 1, typeSpecText(e.arg as TypeSpec));
        else expr(e.arg as Expr, d + 1);
        line(d + 1, e.fields.join('.'));
        return;
      case 'Cast':
        line(d, typed(e, `(${typeSpecText(e.to)})`));
        expr(e.expr, d + 1);
        return;
      case 'FieldAccess':
        line(d, typed(e, e.arrow ? '->' : '.'));
        expr(e.expr, d + 1);
        line(d + 1, e.field);
        return;
      case 'TupleAccess':
        line(d, typed(e, '.'));
        expr(e.expr, d + 1);
        line(d + 1, String(e.index));
        return;
      case 'ArrayAccess':
        line(d, typed(e, '[]'));
        expr(e.expr, d + 1);
        expr(e.index, d + 1);
        return;
      case 'Tuple':
        line(d, typed(e, 'tuple:'));
        for (const x of e.elems) expr(x, d + 1);
        return;
      case 'Record':
        line(d, typed(e, 'record:'));
        for (const f of e.fields) {
          line(d + 1, `${f.name}=`);
          expr(f.value, d + 2);
        }
        return;
      case 'Comptime':
        line(d, typed(e, 'comptime'));
        expr(e.expr, d + 1);
        return;
      case 'TypeExpr':
        line(d, typed(e, `type: ${typeSpecText(e.spec)}`));
        return;
    }
  };

  const block = (b: Block, d: number): void => {
    for (const s of b.stmts) stmt(s, d);
    if (b.expr) expr(b.expr, d);
  };

  const stmt = (s: Stmt, d: number): void => {
    switch (s.kind) {
      case 'ExprStmt':
        expr(s.expr, d);
        return;
      case 'AssignMap':
        line(d, s.op);
        expr(s.map, d + 1);
        expr(s.value, d + 1);
        return;
      case 'AssignVar':
        line(d, s.op);
        if (s.decl)
          line(d + 1, `let ${s.variable.name}${s.decl.typeSpec ? `: ${typeSpecText(s.decl.typeSpec)}` : ''}`);
        expr(s.variable, d + 1);
        expr(s.value, d + 1);
        return;
      case 'VarDecl':
        line(d, `let ${s.variable.name}${s.typeSpec ? `: ${typeSpecText(s.typeSpec)}` : ''}`);
        return;
      case 'Discard':
        line(d, '_ =');
        expr(s.value, d + 1);
        return;
      case 'If':
        line(d, 'if');
        expr(s.cond, d + 1);
        line(d + 1, 'then');
        block(s.consequent, d + 2);
        if (s.alternative) {
          line(d + 1, 'else');
          if (s.alternative.kind === 'Block') block(s.alternative, d + 2);
          else stmt(s.alternative, d + 2);
        }
        return;
      case 'Unroll':
        line(d, 'unroll');
        expr(s.count, d + 1);
        line(d + 1, 'block');
        block(s.body, d + 2);
        return;
      case 'While':
        line(d, 'while(');
        expr(s.cond, d + 1);
        line(d + 1, ')');
        block(s.body, d + 2);
        return;
      case 'For':
        line(d, 'for');
        line(d + 1, 'decl');
        expr(s.variable, d + 2);
        line(d + 1, 'expr');
        if (s.iterable.kind === 'Range') {
          line(d + 2, 'range');
          expr(s.iterable.start, d + 3);
          expr(s.iterable.end, d + 3);
        } else {
          expr(s.iterable, d + 2);
        }
        line(d + 1, 'stmts');
        block(s.body, d + 2);
        return;
      case 'Jump':
        line(d, s.jump);
        if (s.value) expr(s.value, d + 1);
        return;
      case 'Import':
        line(d, `import ${s.path}`);
        return;
      case 'Block':
        line(d, 'block');
        block(s, d + 1);
        return;
    }
  };

  for (const c of program.cDefinitions) {
    if (c.kind === 'CStruct' || c.kind === 'CEnum') line(1, c.text);
    else if (c.kind === 'CDefine') line(1, `#define ${c.name} ${c.value}`);
    else line(1, c.text);
  }
  if (program.config) {
    line(1, 'config');
    for (const e of program.config.entries) line(2, `${e.name} = ${String(e.value)}`);
  }
  for (const i of program.imports) line(1, `import ${i.path}`);
  for (const m of program.mapDecls) line(1, `let ${m.name} = ${m.mapType}(${m.maxEntries})`);
  for (const m of program.macros) {
    line(1, `macro ${m.name}(${m.params.map((p) => p.name).join(', ')})`);
    block(m.body, 2);
  }
  for (const f of program.subprogs) {
    line(
      1,
      `fn ${f.name}(${f.params.map((p) => `${p.name}: ${typeSpecText(p.typeSpec)}`).join(', ')}): ${typeSpecText(f.returnType)}`,
    );
    block(f.body, 2);
  }
  for (const p of program.probes) {
    for (const ap of p.attachPoints) line(1, ap.raw);
    if (p.predicate) {
      line(2, 'pred');
      expr(p.predicate, 3);
    }
    block(p.block, 2);
  }
  return `${out.join('\n')}\n`;
}
