/** Semantic analysis of the tracing language: types, maps, builtins per probe type, calls, macros. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Expr, Stmt } from '../src/trace/ast.js';
import {
  compileFrontEnd,
  TraceError,
  type TraceType,
  type TypeProvider,
  typeName,
} from '../src/trace/index.js';

function errors(prog: string, opts: Parameters<typeof compileFrontEnd>[1] = {}): string[] {
  try {
    compileFrontEnd(prog, opts);
    return [];
  } catch (e) {
    assert.ok(e instanceof TraceError, String(e));
    return e.diagnostics.map((d) => d.message);
  }
}

const ok = (prog: string, opts: Parameters<typeof compileFrontEnd>[1] = {}) =>
  assert.deepEqual(errors(prog, opts), [], prog);
const bad = (prog: string, re: RegExp, opts: Parameters<typeof compileFrontEnd>[1] = {}) => {
  const errs = errors(prog, opts);
  assert.ok(
    errs.some((m) => re.test(m)),
    `${prog}: expected ${re}, got ${JSON.stringify(errs)}`,
  );
};

/** The type of `$x` after `prog` assigns it (first AssignVar to $x in the first probe). */
function varType(prog: string, name = '$x'): string {
  const r = compileFrontEnd(prog, { unsafe: true });
  let found: TraceType | undefined;
  const visit = (s: Stmt): void => {
    if (s.kind === 'AssignVar' && s.variable.name === name && !found) found = s.variable.type;
    if (s.kind === 'If') {
      for (const t of s.consequent.stmts) visit(t);
    }
  };
  for (const s of r.program.probes[0].block.stmts) visit(s);
  assert.ok(found, `no ${name}`);
  return typeName(found);
}

describe('trace analysis: types', () => {
  it('infers the types of literals, builtins and operators', () => {
    assert.equal(varType('BEGIN { $x = 1; }'), 'int64');
    assert.equal(varType('BEGIN { $x = "abc"; }'), 'string[4]');
    assert.equal(varType('BEGIN { $x = comm; }'), 'string[16]');
    assert.equal(varType('BEGIN { $x = pid; }'), 'unsigned int32');
    assert.equal(varType('BEGIN { $x = nsecs; }'), 'unsigned int64');
    assert.equal(varType('BEGIN { $x = (uint8)1; }'), 'unsigned int8');
    assert.equal(varType('BEGIN { $x = (int16 *)0; }'), 'int16 *');
    // Integer literals in tuples take the smallest signed type that holds them (bpftrace's corpus:
    // sizeof of a tuple with a literal 3 counts one byte for it).
    assert.equal(varType('BEGIN { $x = (1, "a", (2, 3)); }'), '(int8,string[2],(int8,int8))');
    assert.equal(varType('BEGIN { $x = (-129, 70000, 1 << 40); }'), '(int16,int32,int64)');
    assert.equal(varType('BEGIN { $x = (a=1, b="x"); }'), '(a=int8,b=string[2])');
    assert.equal(varType('BEGIN { $x = 1 == 2; }'), 'bool');
    assert.equal(varType('BEGIN { $x = kstack; }'), 'kstack');
    assert.equal(varType('BEGIN { $x = ustack(raw, 5); }'), 'ustack');
    assert.equal(varType('BEGIN { $x = (int8[8])12345; }'), 'int8[8]');
    assert.equal(varType('BEGIN { $x = (int8[])12345; }'), 'int8[8]');
    assert.equal(varType('BEGIN { $x = pton("127.0.0.1"); }'), 'unsigned int8[4]');
    assert.equal(varType('BEGIN { $x = pton("::1"); }'), 'unsigned int8[16]');
    assert.equal(varType('BEGIN { $x = ksym(1); }'), 'ksym');
    assert.equal(varType('BEGIN { $x = buf("abc", 3); }'), 'buffer[3]');
    assert.equal(varType('BEGIN { $x = str(1, 5); }'), 'string[6]');
    assert.equal(varType('BEGIN { $x = { let $a = 2; $a + 1 }; }'), 'int64');
    assert.equal(varType('BEGIN { $x = if (1) { "a" } else { "bb" }; }'), 'string[3]');
    assert.equal(varType('BEGIN { $x = sizeof(uint32); }'), 'unsigned int64');
  });

  it('resolves user-defined structs with their layout', () => {
    const r = compileFrontEnd(
      'struct Foo { int a; char c; long b; unsigned int x:3, y:5; struct { int z; } in; } BEGIN { $p = (struct Foo *)0; $v = $p->b; $w = $p.in.z; }',
    );
    const foo = r.structs.get('struct Foo');
    assert.ok(foo && foo.kind === 'struct' && foo.fields);
    assert.deepEqual(
      foo.fields.map((f) => [f.name, f.offset, f.bitOffset ?? 0, f.bitWidth ?? 0]),
      [
        ['a', 0, 0, 0],
        ['c', 4, 0, 0],
        ['b', 8, 0, 0],
        ['x', 16, 0, 3],
        ['y', 16, 3, 5],
        ['in', 20, 0, 0],
      ],
    );
    assert.equal(foo.size, 24);
    bad(
      'struct Foo { int a; } BEGIN { $p = (struct Foo *)0; $p->nope }',
      /does not contain a field named 'nope'/,
    );
    ok('struct Foo { int a; struct Bar { int x; } bar; } BEGIN { print(offsetof(struct Foo, bar.x)); }');
    bad('struct Foo { int a; } BEGIN { print(offsetof(struct Foo, b)); }', /has no field named 'b'/);
  });

  it('asks the type provider for kernel types, probe args and enum values', () => {
    const task: TraceType & { kind: 'struct' } = {
      kind: 'struct',
      tag: 'struct',
      name: 'task_struct',
      size: 16,
      fields: [
        { name: 'pid', type: { kind: 'int', bits: 32, signed: true }, offset: 0 },
        {
          name: 'comm',
          type: { kind: 'array', of: { kind: 'int', bits: 8, signed: true }, length: 16 },
          offset: 4,
        },
      ],
    };
    const provider: TypeProvider = {
      struct: (_tag, name) => (name === 'task_struct' ? task : undefined),
      typedef: (name) => (name === 'pid_t' ? { kind: 'int', bits: 32, signed: true } : undefined),
      enumValue: (name) => (name === 'BPF_ANY' ? { value: 0n, enumName: 'bpf_flags' } : undefined),
      probeArgs: (spec) =>
        spec.provider === 'tracepoint'
          ? {
              kind: 'struct',
              tag: 'struct',
              name: 'args',
              fields: [{ name: 'fd', type: { kind: 'int', bits: 64, signed: true } }],
            }
          : undefined,
    };
    // Without a provider the field of a kernel struct is left for the code generator.
    assert.equal(varType('BEGIN { $x = curtask->pid; }'), 'struct task_struct.pid');
    const r = compileFrontEnd(
      't:syscalls:sys_enter_read { $x = curtask->pid; $y = curtask.comm; $z = args.fd; $e = BPF_ANY; $t = (pid_t)1; }',
      {
        types: provider,
      },
    );
    const types = r.program.probes[0].block.stmts.map((s) =>
      s.kind === 'AssignVar' ? typeName(s.variable.type ?? { kind: 'none' }) : '',
    );
    assert.deepEqual(types, ['int32', 'string[16]', 'int64', 'enum bpf_flags', 'int32']);
    bad('t:syscalls:sys_enter_read { args.nope }', /does not contain a field named 'nope'/, {
      types: provider,
    });
    bad('BEGIN { $x = (struct nope *)0; }', /Unknown struct\/union: 'struct nope'/, { types: provider });
    bad('BEGIN { $x = NOPE; }', /Unknown identifier: 'NOPE'/, { types: provider });
    // Without a provider, kernel names are accepted and left to the code generator.
    ok('BEGIN { $x = (struct nope *)0; $y = $x->a->b; $z = NOPE; }');
  });
});

describe('trace analysis: maps and variables', () => {
  it('keeps map key and value types consistent', () => {
    ok('BEGIN { @x = 1; @x = (uint8)2; @y["a"] = "b"; @y["cc"] = "dddd"; @z[1, "a"] = count(); }');
    bad(
      'BEGIN { @x = 1; @x = "a"; }',
      /Type mismatch for @x: trying to assign value of type 'string\[2\]' when map already contains a value of type 'int64'/,
    );
    bad('BEGIN { @x[1] = 1; @x["a"] = 1; }', /Argument mismatch for @x/);
    bad('BEGIN { @x = 1; } END { @x[1] = 1; }', /Argument mismatch for @x: .* map expects arguments: \[\]/);
    bad('BEGIN { @x = count(); @x = sum(1); }', /Type mismatch for @x/);
    bad('BEGIN { print(@nope); }', /Undefined map: @nope/);
    // A map assigned in a later probe may be read earlier.
    ok('BEGIN { print(@); } END { @ = 1 }');
    ok('BEGIN { @x++; @y[1]--; @z += 5; }');
    ok('let @h = lruhash(10); BEGIN { @h[1] = 2; }');
    bad('let @h = bogus(10); BEGIN { @h[1] = 2; }', /Invalid bpf map type: bogus/);
    const r = compileFrontEnd('BEGIN { @a[1, "x"] = hist(5); @b = (1, "s"); }');
    assert.equal(typeName(r.maps.get('@a')?.key ?? { kind: 'none' }), '(unsigned int64,string[2])');
    assert.equal(typeName(r.maps.get('@a')?.value ?? { kind: 'none' }), 'hist');
    assert.equal(typeName(r.maps.get('@b')?.value ?? { kind: 'none' }), '(int8,string[2])');
  });

  it('checks variables', () => {
    bad('BEGIN { $x = $y; }', /Undefined or undeclared variable: \$y/);
    bad('BEGIN { $x = 1; $x = "a"; }', /Type mismatch for \$x/);
    ok('BEGIN { $x = 1; $x = (uint8)3; let $y; $y = 5; let $z: uint64 = 5; }');
    bad('BEGIN { $x = count(); }', /count\(\) should be directly assigned to a map/);
    ok('BEGIN { @ = { let $a = 100; avg($a) }; }');
    ok('BEGIN { @m[1] = 2; for ($kv : @m) { $k = $kv.0 + $kv.1; } for ($i : 0..5) { $j = $i * 2; } }');
    bad('BEGIN { @m = 2; for ($kv : @m) { } }', /must have keys/);
    bad('BEGIN { $t = (1, 2); $t.2 }', /Invalid tuple index: 2/);
    bad('BEGIN { $r = (a=1); $r.b }', /Record does not contain a field named 'b'/);
  });
});

describe('trace analysis: builtins and probes', () => {
  it('allows builtins only where the probe type provides them', () => {
    ok('kprobe:f { $a = arg0; } uprobe:/bin/sh:f { $a = arg1; } usdt:/bin/sh:p { $a = arg2; }');
    ok(
      'kretprobe:f { $r = retval; } uretprobe:/bin/sh:f { $r = retval; } fexit:f { $r = retval; $a = args; }',
    );
    ok('tracepoint:a:b { $a = args; } rawtracepoint:x { $a = args; $b = arg0; } fentry:f { $a = args; }');
    bad('kprobe:f { retval }', /The retval builtin can only be used with/);
    bad('tracepoint:a:b { arg0 }', /The arg0 builtin can only be used with/);
    bad('kprobe:f { args }', /The args builtin can only be used with .*\(kprobe used here\)/);
    bad('BEGIN { args }', /\(special used here\)/);
    bad('kprobe:f, tracepoint:a:b { arg0 }', /The arg0 builtin can only be used with/);
    bad('BEGIN { cpid }', /cpid cannot be used without child command/);
    ok('BEGIN { cpid }', { childCommand: true });
    bad('BEGIN { signal("KILL"); }', /signal can not be used with "BEGIN" probes/, { unsafe: true });
    ok('kprobe:f { signal("KILL"); signal("SIGUSR1"); }', { unsafe: true });
    bad('kprobe:f { signal("SIGNOPE"); }', /SIGNOPE is not a valid signal/, { unsafe: true });
    ok('BEGIN { $a = __builtin_pid; $b = comm(); $c = nsecs(boot); $d = cpu(); }');
  });

  it('validates probe specs', () => {
    bad('interval:xx:1 { }', /xx is not an accepted unit of time/);
    bad('tracepoint:foo { }', /tracepoint probe type requires 2 arguments/);
    bad('bogus:foo { }', /Invalid probe type: bogus/);
    bad('software:nope:1 { }', /Invalid software event: nope/);
    bad('watchpoint:0x10:3:rw { }', /length must be one of/);
    bad('iter:task, iter:task_file { }', /iter probe type does not support multiple attach points/);
    ok('i:s:1, interval:100ms, profile:hz:99, p:1s, s:faults:1, h:cycles { } BEGIN, END, begin, end { }');
  });
});

describe('trace analysis: calls', () => {
  it('checks arity, argument types and printf formats', () => {
    bad('BEGIN { foo(); }', /Unknown function: foo/);
    bad(
      'BEGIN { printf("%d %s\\n", 1); }',
      /Not enough arguments for format string \(1 supplied, 2 expected\)/,
    );
    bad('BEGIN { printf("%d\\n", 1, 2); }', /Too many arguments/);
    bad(
      'BEGIN { printf("%d\\n", "s"); }',
      /%d specifier expects a value of type integer \(string supplied\)/,
    );
    bad('BEGIN { printf("%s\\n", 1); }', /%s specifier expects a value of type string \(integer supplied\)/);
    ok(
      'BEGIN { printf("%-10s %5d %llu %lx %hhx %p %c %% %s %s\\n", "a", 1, 2, 3, 4, 5, 65, kstack, ksym(1)); }',
    );
    ok('enum E { A = 1 }; BEGIN { printf("%s %d\\n", A, A); }');
    bad('BEGIN { @x = lhist(1, 0, 10); }', /lhist\(\) requires 4 arguments \(3 provided\)/);
    bad('BEGIN { @x = lhist(1, 10, 0, 1); }', /lhist\(\) min must be less than max/);
    bad(
      'BEGIN { @x = lhist(1, 0, 10, $y); }',
      /lhist\(\) step must be a literal integer|Undefined or undeclared variable/,
    );
    bad('BEGIN { @x = hist("a"); }', /hist\(\) only supports integer arguments/);
    bad('BEGIN { system("ls"); }', /system\(\) is an unsafe function being used in safe mode/);
    ok('BEGIN { system("ls %d", 1); cat("/proc/%s", "x"); }', { unsafe: true });
    bad('BEGIN { strncmp("a", 1, 1); }', /strncmp\(\) only supports string arguments \(integer provided\)/);
    bad('BEGIN { @x = 1; has_key(@x, 1) }', /has_key\(\) expects a map with explicit keys/);
    bad('BEGIN { @x[1, "a"] = 1; has_key(@x, (1, 2)) }', /Argument mismatch for @x/);
    ok(
      'BEGIN { @x[1] = 1; $h = has_key(@x, 2); delete(@x, 1); delete(@x[1]); clear(@x); zero(@x); print(@x, 2, 10); $n = len(@x); }',
    );
    bad('BEGIN { @ = 0; len(@) }', /len\(\) expects a map with explicit keys/);
    bad('BEGIN { clear(1); }', /clear\(\) expects a map to be provided/);
    bad('BEGIN { unroll(101) { } }', /unroll maximum value is 100/);
    bad('BEGIN { break; }', /break used outside of a loop/);
    ok('BEGIN { $i = 0; while ($i < 3) { $i++; if ($i == 2) { continue; } break; } unroll(3) { $i++; } }');
    bad('config = { nope = 1 } BEGIN { }', /nope: not a known configuration option/);
    bad('config = { license = "Potato" } BEGIN { }', /Invalid value for license/);
    ok('config = { max_strlen = 128; stack_mode = perf; BPFTRACE_MAX_MAP_KEYS = 10 } BEGIN { }');
  });

  it('checks operators and casts', () => {
    bad('BEGIN { $x = 1 + "a"; }', /Type mismatch for '\+': comparing 'int64' with 'string\[2\]'/);
    bad('BEGIN { if ("a" > 1) { } }', /Type mismatch for '>'/);
    ok('BEGIN { if ("a" == "b" || comm != "x") { } $p = (int32 *)0; $q = $p + 1; $r = *$q; }');
    bad(
      'BEGIN { $x = 1 ? "a" : 2; }',
      /Ternary operator must return the same type: have 'string' and 'integer'/,
    );
    ok('BEGIN { $x = nsecs ? (uint8)1 : (int32)-1; $y = $x ?: 3; }');
    bad('BEGIN { $x = (int8[4])12345; }', /Cannot cast from 'int64' to 'int8\[4\]'/);
    bad('BEGIN { $x = (uint64)"abc"; }', /Cannot cast from 'string\[4\]' to 'unsigned int64'/);
  });
});

describe('trace analysis: macros', () => {
  it('expands macros hygienically', () => {
    const r = compileFrontEnd(
      'macro add_one(x) { let $y = 1; x + $y } macro inc($v) { $v += 1; } macro set(@m) { @m[1] = 2; } BEGIN { $y = "s"; $a = add_one(2); inc($a); set(@z); print(add_one(add_one(1))); }',
    );
    const stmts = r.program.probes[0].block.stmts;
    const a = stmts[1];
    assert.ok(a.kind === 'AssignVar' && a.value.kind === 'BlockExpr');
    assert.equal(typeName(a.variable.type ?? { kind: 'none' }), 'int64');
    // $y inside the macro is renamed, so the caller's string $y is untouched.
    const inner = a.value.block.stmts[0];
    assert.ok(
      inner.kind === 'AssignVar' && inner.variable.name !== '$y' && inner.variable.name.startsWith('$y'),
    );
    assert.ok(r.maps.has('@z'));
    const calls: string[] = [];
    const walk = (e: Expr | undefined): void => {
      if (!e) return;
      if (e.kind === 'Call') calls.push(e.name);
    };
    for (const s of stmts) if (s.kind === 'ExprStmt') walk(s.expr);
    assert.deepEqual(calls, ['print']);
    bad('macro bad() { @x++ } BEGIN { bad(); }', /Unhygienic access to map: @x/);
    bad('macro needs_var($x) { $x++ } BEGIN { needs_var(1); }', /Expected a variable/);
    ok('macro one() { 1 } BEGIN { $a = one; $b = one(); }');
    ok('macro cst(a) { (a*)-1 } BEGIN { print(cst(typeof(uint8))); }');
  });
});
