/**
 * The tracing language front end against bpftrace's runtime test corpus (every PROG, every `-e` program
 * of a RUN line, every script), against bpftrace v0.17's own diagnostics, and under fuzzing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isTsbpfError } from '../src/errors.js';
import { compileFrontEnd, parse, parseProbeSpec, printAst, TraceError } from '../src/trace/index.js';
import { CORPORA, prng } from './support/fixtures.js';

const RUNTIME = join(CORPORA, 'bpftrace', 'tests', 'runtime');
const haveCorpus = existsSync(RUNTIME);

interface CorpusTest {
  suite: string;
  name: string;
  prog: string;
  willFail: boolean;
  kind: 'PROG' | 'RUN -e' | 'script';
  /** Positional parameters given on the RUN line. */
  args?: string[];
}

/** Splits a shell command line into words (quotes concatenate, as in sh). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let w = '';
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
      const c = line[i];
      if (c === "'") {
        const j = line.indexOf("'", i + 1);
        w += line.slice(i + 1, j < 0 ? undefined : j);
        i = j < 0 ? line.length : j + 1;
      } else if (c === '"') {
        let j = i + 1;
        while (j < line.length && line[j] !== '"') {
          if (line[j] === '\\' && j + 1 < line.length) {
            w += line[j + 1];
            j += 2;
          } else w += line[j++];
        }
        i = j + 1;
      } else {
        w += c;
        i++;
      }
    }
    words.push(w);
  }
  return words;
}

/** The `-e 'PROG' ARGS...` of a RUN line (undefined for listings, pipes and templated programs). */
function runProgram(run: string): { prog: string; args: string[] } | undefined {
  if (/[|<>;]/.test(run.replace(/'[^']*'/g, ''))) return undefined;
  const words = shellWords(run);
  const e = words.indexOf('-e');
  if (e < 0 || e + 1 >= words.length) return undefined;
  if (words.some((w) => /^-(l|lv|d|dd)$/.test(w) || w === '--list')) return undefined;
  const prog = words[e + 1];
  if (prog.includes('{{')) return undefined;
  const args: string[] = [];
  for (let i = e + 2; i < words.length; i++) {
    const w = words[i];
    if (w === '--') continue;
    if (w === '-c' || w === '-p' || w === '-o' || w === '-f' || w === '-B') {
      i++;
      continue;
    }
    if (w.startsWith('-') || w.includes('{{')) continue;
    args.push(w);
  }
  return { prog, args };
}

/** Reads the runtime tests the way bpftrace's runner (engine/parser.py) does. */
function readCorpus(): CorpusTest[] {
  const out: CorpusTest[] = [];
  for (const suite of readdirSync(RUNTIME).sort()) {
    if (['engine', 'scripts', 'outputs'].includes(suite) || suite.startsWith('.')) continue;
    const lines = readFileSync(join(RUNTIME, suite), 'utf8').split('\n');
    let block: string[] = [];
    const flush = () => {
      let name = '';
      let prog: string | undefined;
      let run = '';
      let willFail = false;
      let prev = '';
      for (const item of block) {
        if (prev && /^\s+$/.test(item.slice(0, prev.length + 1)) && item.length > prev.length) {
          if (prev === 'PROG' && prog !== undefined) prog += `\n${item.slice(prev.length + 1)}`;
          continue;
        }
        const m = /^(\S+)\s*(.*)$/.exec(item.trim());
        if (!m) continue;
        prev = m[1];
        if (m[1] === 'NAME') name = m[2];
        else if (m[1] === 'PROG') prog = m[2];
        else if (m[1] === 'RUN') run = m[2];
        else if (m[1] === 'WILL_FAIL') willFail = true;
      }
      if (prog !== undefined) out.push({ suite, name, prog, willFail, kind: 'PROG' });
      const e = runProgram(run);
      if (e) out.push({ suite, name, prog: e.prog, willFail, kind: 'RUN -e', args: e.args });
      block = [];
    };
    for (const line of lines) {
      if (line.startsWith('#')) continue;
      if (line.trim() === '') flush();
      else block.push(line);
    }
    flush();
  }
  const scripts = join(RUNTIME, 'scripts');
  for (const f of readdirSync(scripts).sort()) {
    if (!f.endsWith('.bt')) continue;
    out.push({
      suite: 'scripts',
      name: f,
      prog: readFileSync(join(scripts, f), 'utf8'),
      willFail: false,
      kind: 'script',
    });
  }
  return out;
}

describe('trace parser: bpftrace runtime corpus', {
  skip: haveCorpus ? false : `no corpus at ${RUNTIME}`,
}, () => {
  const tests = haveCorpus ? readCorpus() : [];

  it('parses every program of the corpus', () => {
    const failures: string[] = [];
    for (const t of tests) {
      try {
        parse(t.prog, { positionalArgs: t.args });
      } catch (e) {
        assert.ok(isTsbpfError(e), `${t.suite}/${t.name}: non-TsbpfError ${String(e)}`);
        failures.push(`${t.suite}/${t.name} [${t.kind}]: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    const progs = tests.filter((t) => t.kind === 'PROG').length;
    console.log(
      `parsed ${tests.length - failures.length}/${tests.length} programs (${progs} PROG, ${tests.length - progs} RUN -e and scripts)`,
    );
    if (failures.length > 0) console.log(failures.join('\n'));
    // Ratchet: every program parses.
    assert.ok(tests.length >= 940, `corpus too small: ${tests.length}`);
    assert.deepEqual(failures, []);
  });

  it('runs the whole front end: accepts what bpftrace accepts, rejects what it can', () => {
    const causes = new Map<string, string[]>();
    let accepted = 0;
    let expectedOk = 0;
    const wrongRejects: string[] = [];
    let rejectedFails = 0;
    let willFail = 0;
    for (const t of tests) {
      if (!t.willFail) expectedOk++;
      else willFail++;
      try {
        compileFrontEnd(t.prog, { unsafe: t.kind !== 'PROG', childCommand: true, positionalArgs: t.args });
        accepted++;
        if (t.willFail) {
          const list = causes.get('accepted: needs the kernel (probe resolution/attach/BTF)') ?? [];
          list.push(`${t.suite}/${t.name}`);
          causes.set('accepted: needs the kernel (probe resolution/attach/BTF)', list);
        }
      } catch (e) {
        assert.ok(e instanceof TraceError, `${t.suite}/${t.name}: ${String(e)}`);
        const msg = e.diagnostics[0]?.message ?? e.message;
        if (t.willFail) rejectedFails++;
        else wrongRejects.push(`${t.suite}/${t.name} [${t.kind}]: ${msg}`);
        const cause = msg.replace(/[@$]\w+|'[^']*'|\d+/g, '_').slice(0, 60);
        const list = causes.get(cause) ?? [];
        list.push(`${t.suite}/${t.name}`);
        causes.set(cause, list);
      }
    }
    console.log(
      `front end: ${accepted}/${tests.length} accepted; ${expectedOk - wrongRejects.length}/${expectedOk} of the programs bpftrace runs; ${rejectedFails}/${willFail} of the WILL_FAIL programs rejected at compile time`,
    );
    for (const [cause, names] of causes)
      console.log(`  ${names.length} x ${cause}: ${names.slice(0, 4).join(', ')}`);
    if (wrongRejects.length > 0) console.log(wrongRejects.join('\n'));
    // Ratchets, measured: no program bpftrace accepts is rejected; 10 WILL_FAIL programs fail in the front end.
    assert.deepEqual(wrongRejects, []);
    assert.ok(rejectedFails >= 10, `only ${rejectedFails} WILL_FAIL programs rejected`);
  });

  it('fuzz: mutated corpus programs only ever raise TsbpfError, and never hang', () => {
    const rand = prng(0x7ace);
    const progs = tests.map((t) => t.prog);
    const pieces = [
      '{',
      '}',
      '(',
      ')',
      '/',
      '"',
      '$',
      '@',
      ',',
      ';',
      ':',
      '[',
      ']',
      '*',
      '->',
      '.',
      '..',
      '?',
      '=',
      'if',
      'let',
      'macro',
      '#',
      '\\',
      '\n',
      '0x',
      '1e',
      '$1',
      'struct',
      'config',
      '{{{{',
      '((((',
      '"\\x',
    ];
    const budgetMs = process.env.TSBPF_LONG ? 120_000 : 12_000;
    const started = Date.now();
    let runs = 0;
    let errors = 0;
    while (Date.now() - started < budgetMs && runs < (process.env.TSBPF_LONG ? 200_000 : 6000)) {
      let s = progs[Math.floor(rand() * progs.length)];
      const edits = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(rand() * (s.length + 1));
        const op = rand();
        if (op < 0.3) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 3));
        else if (op < 0.6) s = s.slice(0, at) + pieces[Math.floor(rand() * pieces.length)] + s.slice(at);
        else if (op < 0.8) {
          const from = Math.floor(rand() * s.length);
          s = s.slice(0, at) + s.slice(from, from + 1 + Math.floor(rand() * 10)) + s.slice(at);
        } else {
          const other = progs[Math.floor(rand() * progs.length)];
          s = s.slice(0, at) + other.slice(Math.floor(rand() * other.length));
        }
      }
      const t0 = Date.now();
      try {
        const r = compileFrontEnd(s, { unsafe: true });
        printAst(r.program);
      } catch (e) {
        if (!isTsbpfError(e))
          assert.fail(`non-TsbpfError for ${JSON.stringify(s)}: ${(e as Error)?.stack ?? e}`);
        errors++;
      }
      const dt = Date.now() - t0;
      assert.ok(dt < 2000, `took ${dt} ms: ${JSON.stringify(s)}`);
      runs++;
    }
    // Pathological nesting must not overflow the stack.
    for (const deep of [
      '('.repeat(5000),
      `begin { ${'{'.repeat(3000)} }`,
      `begin { $x = ${'-'.repeat(20000)}1; }`,
    ]) {
      assert.throws(
        () => compileFrontEnd(deep),
        (e: unknown) => isTsbpfError(e),
      );
    }
    console.log(`fuzz: ${runs} mutated programs, ${errors} rejected, all errors TsbpfError`);
    assert.ok(runs >= 1000);
  });
});

/**
 * Bad scripts and the first error bpftrace v0.17 prints for them (captured with `bpftrace -d -e`; checked
 * live when bpftrace is installed). Scripts whose feature differs in v0.17 (has_key, exit codes, the FATAL
 * on unknown probe types) are left out.
 */
const V017_ERRORS: [string, string][] = [
  ['BEGIN { foo(); }', 'stdin:1:9-12: ERROR: Unknown function: foo'],
  ['BEGIN { foo(1, 2); }', 'stdin:1:9-12: ERROR: Unknown function: foo'],
  [
    'BEGIN { printf("%d %d\\n", 1, 2, 3); }',
    'stdin:1:9-35: ERROR: printf: Too many arguments for format string (3 supplied, 2 expected)',
  ],
  [
    'BEGIN { printf("%d\\n", "str"); }',
    'stdin:1:9-30: ERROR: printf: %d specifier expects a value of type integer (string supplied)',
  ],
  [
    'BEGIN { printf("%s\\n", 1); }',
    'stdin:1:9-26: ERROR: printf: %s specifier expects a value of type string (integer supplied)',
  ],
  [
    'BEGIN { printf("%d\\n"); }',
    'stdin:1:9-23: ERROR: printf: Not enough arguments for format string (0 supplied, 1 expected)',
  ],
  ['BEGIN { printf(); }', 'stdin:1:9-17: ERROR: printf() requires at least one argument (0 provided)'],
  ['BEGIN { printf(1); }', 'stdin:1:9-18: ERROR: printf() expects a string literal (integer provided)'],
  [
    'BEGIN { @x = 1; @x = "a"; }',
    "stdin:1:17-19: ERROR: Type mismatch for @x: trying to assign value of type 'string[2]' when map already contains a value of type 'int64'",
  ],
  [
    'BEGIN { @x = "a"; @x = 1; }',
    "stdin:1:19-21: ERROR: Type mismatch for @x: trying to assign value of type 'int64' when map already contains a value of type 'string[2]'",
  ],
  [
    'BEGIN { @x[1] = 1; @x[1, 2] = 1; }',
    'stdin:1:20-28: ERROR: Argument mismatch for @x: trying to access with arguments: [unsigned int64, unsigned int64] when map expects arguments: [unsigned int64]',
  ],
  [
    'BEGIN { @x[1] = 1; @x["a"] = 2; }',
    'stdin:1:20-27: ERROR: Argument mismatch for @x: trying to access with arguments: [string[2]] when map expects arguments: [unsigned int64]',
  ],
  [
    'BEGIN { @x = count(); @x = 1; }',
    "stdin:1:23-25: ERROR: Type mismatch for @x: trying to assign value of type 'int64' when map already contains a value of type 'count'",
  ],
  [
    'BEGIN { $x = 1; $x = "s"; }',
    "stdin:1:20-21: ERROR: Type mismatch for $x: trying to assign value of type 'string[2]' when variable already contains a value of type 'int64'",
  ],
  ['BEGIN { $x = count(); }', 'stdin:1:14-21: ERROR: count() should be directly assigned to a map'],
  ['BEGIN { count(); }', 'stdin:1:9-16: ERROR: count() should be directly assigned to a map'],
  ['BEGIN { @x = hist(); }', 'stdin:1:14-20: ERROR: hist() requires one argument (0 provided)'],
  ['BEGIN { @x = lhist(1, 0, 10); }', 'stdin:1:14-29: ERROR: lhist() requires 4 arguments (3 provided)'],
  ['BEGIN { print(); }', 'stdin:1:9-16: ERROR: print() requires at least one argument (0 provided)'],
  [
    'BEGIN { $x = 1 + "a"; }',
    "stdin:1:14-21: ERROR: Type mismatch for '+': comparing 'int64' with 'string[2]'",
  ],
  [
    'BEGIN { $x = 1 ? "a" : 2; }',
    "stdin:1:14-25: ERROR: Ternary operator must return the same type: have 'string' and 'integer'",
  ],
  [
    'BEGIN { retval }',
    "stdin:1:9-15: ERROR: The retval builtin can only be used with 'kretprobe' and 'uretprobe' and 'kfunc' probes",
  ],
  [
    'BEGIN { args }',
    'stdin:1:9-13: ERROR: The args builtin can only be used with tracepoint/kfunc/uprobeprobes (special used here)',
  ],
  [
    'BEGIN { arg0 }',
    "stdin:1:9-13: ERROR: The arg0 builtin can only be used with 'kprobes', 'uprobes' and 'usdt' probes",
  ],
  [
    'tracepoint:syscalls:sys_enter_read { arg0 }',
    "stdin:1:38-42: ERROR: The arg0 builtin can only be used with 'kprobes', 'uprobes' and 'usdt' probes",
  ],
  [
    'kprobe:f { args }',
    'stdin:1:12-16: ERROR: The args builtin can only be used with tracepoint/kfunc/uprobeprobes (kprobe used here)',
  ],
  ['BEGIN { $x = foo; }', "stdin:1:14-17: ERROR: Unknown identifier: 'foo'"],
  ['BEGIN { unroll(101) { } }', 'stdin:1:9-20: ERROR: unroll maximum value is 100'],
  ['BEGIN { unroll(0) { } }', 'stdin:1:9-18: ERROR: unroll minimum value is 1'],
  ['BEGIN { @x = 1; delete(@x); }', '(accepted)'],
  [
    'BEGIN { @x[1] = 1; delete(@x); }',
    'stdin:1:20-29: ERROR: Argument mismatch for @x: trying to access with arguments: [] when map expects arguments: [unsigned int64]',
  ],
  ['BEGIN { str(); }', 'stdin:1:9-14: ERROR: str() requires at least one argument (0 provided)'],
  ['BEGIN { str(1, 2, 3); }', 'stdin:1:9-21: ERROR: str() takes up to 2 arguments (3 provided)'],
  ['BEGIN { clear(1); }', 'stdin:1:9-17: ERROR: clear() expects a map to be provided'],
  ['BEGIN { clear(@x); }', 'stdin:1:9-17: ERROR: Undefined map: @x'],
  ['BEGIN { @x = 1; clear(@x, 1); }', 'stdin:1:17-29: ERROR: clear() requires one argument (2 provided)'],
  [
    'BEGIN { signal("SIGFOO"); }',
    'stdin:1:9-25: ERROR: signal() is an unsafe function being used in safe mode',
  ],
  ['BEGIN { system("ls"); }', 'stdin:1:9-21: ERROR: system() is an unsafe function being used in safe mode'],
  ['BEGIN { $x = $y; }', 'stdin:1:14-16: ERROR: Undefined or undeclared variable: $y'],
  ['BEGIN { @y = @x; }', 'stdin:1:14-16: ERROR: Undefined map: @x'],
  ['BEGIN { strncmp("a", "b"); }', 'stdin:1:9-26: ERROR: strncmp() requires 3 arguments (2 provided)'],
  [
    'BEGIN { strncmp("a", 1, 1); }',
    'stdin:1:9-27: ERROR: strncmp() only supports string arguments (integer provided)',
  ],
  ['BEGIN { sizeof(struct Foo); }', "stdin:1:9-27: ERROR: Unknown identifier: 'struct Foo'"],
  ['BEGIN { $x = (struct foo *)0; $x->a }', "stdin:1:14-28: ERROR: Unknown struct/union: 'struct foo'"],
  ['interval:xx:1 { }', 'stdin:1:1-14: ERROR: xx is not an accepted unit of time'],
  ['interval:s { }', 'stdin:1:1-11: ERROR: interval probe type requires 2 arguments'],
  ['kprobe { }', 'stdin:1:1-7: ERROR: kprobe probe type requires 1 argument'],
  ['tracepoint:foo { }', 'stdin:1:1-15: ERROR: tracepoint probe type requires 2 arguments'],
  [
    'BEGIN { @x = 1 }  END { @x[1] = 2 }',
    'stdin:1:25-30: ERROR: Argument mismatch for @x: trying to access with arguments: [unsigned int64] when map expects arguments: []',
  ],
  ['BEGIN { $x = (1, 2); $x.5 }', 'stdin:1:22-26: ERROR: Invalid tuple index: 5. Found 2 elements in tuple.'],
  [
    'BEGIN { $x = (1, 2); $x.0 = 3; }',
    'stdin:1:22-30: ERROR: Tuples are immutable once created. Consider creating a new tuple and assigning it instead.',
  ],
  ['BEGIN { 1 = 2; }', 'stdin:1:11-12: ERROR: syntax error, unexpected =, expecting }'],
  ['BEGIN { @x++ ; $y++; }', 'stdin:1:16-18: ERROR: Undefined or undeclared variable: $y'],
  ['BEGIN { break; }', 'stdin:1:9-14: ERROR: break used outside of a loop'],
  ['BEGIN { while (1) { break; } continue; }', 'stdin:1:30-38: ERROR: continue used outside of a loop'],
  [
    'BEGIN { @ = 1; @[1] = 2; }',
    'stdin:1:16-20: ERROR: Argument mismatch for @: trying to access with arguments: [unsigned int64] when map expects arguments: []',
  ],
  ['BEGIN { $x = "abc; }', 'stdin:1:14-21: ERROR: unterminated string'],
  ['BEGIN { $x = "a\\qb"; }', "stdin:1:14-18: ERROR: invalid escape character '\\q'"],
  ['BEGIN { $x = 1 $y = 2; }', 'stdin:1:16-18: ERROR: syntax error, unexpected variable, expecting }'],
  ['BEGIN { $x = 1 + ; }', 'stdin:1:18-19: ERROR: syntax error, unexpected ;'],
  ['BEGIN { ', 'stdin:1:9-9: ERROR: syntax error, unexpected end of file, expecting }'],
  [
    'kprobe:f { retval }',
    "stdin:1:12-18: ERROR: The retval builtin can only be used with 'kretprobe' and 'uretprobe' and 'kfunc' probes",
  ],
];

/** A type provider that knows nothing: like bpftrace with BTF, unknown structs and typedefs are errors. */
const EMPTY_BTF = { struct: () => undefined, typedef: () => undefined, enumValue: () => undefined };

function firstError(prog: string): string {
  try {
    compileFrontEnd(prog, { types: EMPTY_BTF });
    return '(accepted)';
  } catch (e) {
    assert.ok(e instanceof TraceError);
    return e.message.split('\n')[0];
  }
}

/** bpftrace v0.17 prints map type mismatches without the closing quote. */
const norm = (s: string) => s.replace(/'$/, '');

describe('trace diagnostics: agreement with bpftrace v0.17', () => {
  it('reports the same first error at the same line:column', () => {
    const diffs: string[] = [];
    for (const [prog, want] of V017_ERRORS) {
      const got = firstError(prog);
      if (norm(got) !== norm(want)) diffs.push(`${prog}\n  want: ${want}\n  got:  ${got}`);
    }
    console.log(
      `diagnostics: ${V017_ERRORS.length - diffs.length}/${V017_ERRORS.length} agree with bpftrace v0.17`,
    );
    assert.deepEqual(diffs, []);
  });

  it('prints the source line and a caret line under the span', () => {
    assert.throws(
      () => compileFrontEnd('BEGIN { foo(1); }'),
      (e: unknown) =>
        e instanceof TraceError &&
        e.code === 'trace' &&
        e.message === 'stdin:1:9-12: ERROR: Unknown function: foo\nBEGIN { foo(1); }\n        ~~~',
    );
    assert.throws(
      () => compileFrontEnd('BEGIN {\n  $x = $y;\n}', { filename: 'script.bt' }),
      (e: unknown) =>
        e instanceof TraceError &&
        e.message ===
          'script.bt:2:8-10: ERROR: Undefined or undeclared variable: $y\n  $x = $y;\n       ~~' &&
        e.details.position?.line === 2,
    );
  });

  const live = spawnSync('bpftrace', ['--version'], { encoding: 'utf8' });
  const haveBpftrace = live.status === 0 && /v0\.17/.test(live.stdout);
  it('the captured messages are what the installed bpftrace prints', {
    skip: haveBpftrace ? false : 'bpftrace v0.17 not installed',
  }, () => {
    const diffs: string[] = [];
    for (const [prog, want] of V017_ERRORS) {
      const r = spawnSync('bpftrace', ['-d', '-e', prog], { encoding: 'utf8', timeout: 30_000 });
      const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
      const m = /^(stdin:.*ERROR.*)$/m.exec(text);
      const theirs = m ? m[1] : '(accepted)';
      if (norm(theirs) !== norm(want)) diffs.push(`${prog}\n  captured: ${want}\n  live:     ${theirs}`);
    }
    assert.deepEqual(diffs, []);
  });
});

describe('trace parser: language', () => {
  it('parses the preamble, probes, predicates and statements', () => {
    const { program } = parse(`#!/usr/bin/env bpftrace
#include <linux/sched.h>
#define RED "\\033[31m"
struct S { int x; char name[16]; unsigned int a:4, b:4; struct { int y; } inner; };
enum E { A = 1, B, C = 10 };
config = { max_strlen = 128; stack_mode = perf }
let @h = lruhash(100);
macro add_one(x) { x + 1 }
BEGIN, end { printf("hi\\n"); }
t:syscalls:sys_enter_openat /pid == 1 && comm != "x"/ {
  @[comm, pid] = count();
  $s = str(args.filename);
  if ($s == "/etc/passwd") { @hits++; } else if (1) { $y = 2 } else { exit(); }
  unroll (3) { @u += 1; }
  for ($kv : @h) { print($kv.0); }
  for ($i : 0..10) { continue; }
  let $t: uint64 = (uint64)1_000 + 1e3 + 0x10 + 010 + 1ms;
  $p = (struct S *)arg0;
  $q = $p->name[0] + $p.inner.y;
  $r = (a=1, b="x");
  $z = $r.a ? -1 : ~2;
}
i:s:1 { exit() }`);
    assert.equal(program.shebang, '#!/usr/bin/env bpftrace');
    assert.deepEqual(
      program.cDefinitions.map((c) => c.kind),
      ['CInclude', 'CDefine', 'CStruct', 'CEnum'],
    );
    const s = program.cDefinitions[2];
    assert.ok(s.kind === 'CStruct');
    assert.deepEqual(
      s.def.fields.map((f) => [f.name, f.bits]),
      [
        ['x', undefined],
        ['name', undefined],
        ['a', 4],
        ['b', 4],
        ['inner', undefined],
      ],
    );
    assert.deepEqual(
      program.config?.entries.map((e) => [e.name, e.value]),
      [
        ['max_strlen', 128n],
        ['stack_mode', 'perf'],
      ],
    );
    assert.equal(program.mapDecls[0].mapType, 'lruhash');
    assert.equal(program.macros[0].name, 'add_one');
    assert.equal(program.probes.length, 3);
    assert.deepEqual(
      program.probes[0].attachPoints.map((a) => a.spec.provider),
      ['begin', 'end'],
    );
    const tp = program.probes[1];
    assert.equal(tp.attachPoints[0].spec.provider, 'tracepoint');
    assert.equal(tp.predicate?.kind, 'Binop');
    const letStmt = tp.block.stmts.find((x) => x.kind === 'AssignVar' && x.decl);
    assert.ok(letStmt && letStmt.kind === 'AssignVar' && letStmt.decl?.typeSpec?.kind === 'NamedType');
    const sum = letStmt.value;
    // 1_000 + 1e3 + 0x10 + 010 + 1ms, left-associative
    const ints: bigint[] = [];
    const walk = (e: typeof sum): void => {
      if (e.kind === 'Binop') {
        walk(e.left);
        walk(e.right);
      } else if (e.kind === 'Integer') ints.push(e.value);
      else if (e.kind === 'Cast') walk(e.expr);
    };
    walk(sum);
    assert.deepEqual(ints, [1000n, 1000n, 16n, 8n, 1000000n]);
  });

  it('knows precedence, casts and tuples', () => {
    const e = (src: string) => {
      const { program } = parse(`BEGIN { $x = ${src}; }`);
      const st = program.probes[0].block.stmts[0];
      assert.ok(st.kind === 'AssignVar');
      return st.value;
    };
    const shape = (x: ReturnType<typeof e>): string => {
      switch (x.kind) {
        case 'Binop':
          return `(${shape(x.left)} ${x.op} ${shape(x.right)})`;
        case 'Unop':
          return `${x.op}${shape(x.operand)}`;
        case 'Integer':
          return String(x.value);
        case 'Variable':
          return x.name;
        case 'Cast':
          return `cast(${shape(x.expr)})`;
        case 'Ternary':
          return `(${shape(x.cond)} ? ${x.consequent ? shape(x.consequent) : ''} : ${shape(x.alternative)})`;
        case 'Tuple':
          return `tuple[${x.elems.map(shape).join(',')}]`;
        default:
          return x.kind;
      }
    };
    assert.equal(shape(e('1 + 2 * 3')), '(1 + (2 * 3))');
    assert.equal(shape(e('1 << 2 + 3')), '(1 << (2 + 3))');
    assert.equal(shape(e('1 | 2 ^ 3 & 4')), '(1 | (2 ^ (3 & 4)))');
    assert.equal(shape(e('1 == 2 < 3')), '(1 == (2 < 3))');
    assert.equal(shape(e('$a && $b || $c')), '(($a && $b) || $c)');
    assert.equal(shape(e('$a ? 1 : $b ? 2 : 3')), '($a ? 1 : ($b ? 2 : 3))');
    assert.equal(shape(e('$a ?: 3')), '($a ?  : 3)');
    assert.equal(shape(e('(uint8)-1')), 'cast(-1)');
    assert.equal(shape(e('($a) - 1')), '($a - 1)');
    assert.equal(shape(e('(int64 *)$a + 1')), '(cast($a) + 1)');
    assert.equal(shape(e('-$a * 2')), '(-$a * 2)');
    assert.equal(shape(e('(1, 2)')), 'tuple[1,2]');
    assert.equal(shape(e('(1,)')), 'tuple[1]');
    assert.equal(shape(e('()')), 'tuple[]');
    assert.equal(shape(e('(1)')), '1');
    assert.equal(shape(e('10 / 2 / 5')), '((10 / 2) / 5)');
  });

  it('parses attach points with aliases, paths, wildcards and offsets', () => {
    const spec = (raw: string) => {
      const s = parseProbeSpec(raw);
      assert.ok(!('message' in s), `${raw}: ${'message' in s ? s.message : ''}`);
      return s;
    };
    assert.deepEqual(
      { ...spec('t:syscalls:sys_enter_*') },
      {
        provider: 'tracepoint',
        written: 't',
        target: 'syscalls',
        func: 'sys_enter_*',
        wildcard: true,
        positional: false,
      },
    );
    assert.equal(spec('uprobe:/bin/bash:"readline"+4').offset, 4n);
    assert.equal(spec('uprobe:/bin/bash:readline').target, '/bin/bash');
    assert.equal(spec('kprobe:vmlinux:vfs_read').module, 'vmlinux');
    assert.equal(spec('kr:vfs_read').provider, 'kretprobe');
    assert.equal(spec('i:1s').count, 1000000000n);
    assert.deepEqual([spec('interval:ms:100').unit, spec('interval:ms:100').count], ['ms', 100n]);
    assert.equal(spec('p:hz:99').provider, 'profile');
    assert.equal(spec('s:faults:100').target, 'page-faults');
    assert.equal(spec('h:cycles').target, 'cpu-cycles');
    assert.equal(spec('U:/bin/x:ns:probe').ns, 'ns');
    assert.equal(spec('watchpoint:0x1000:8:rw').address, 0x1000n);
    assert.equal(spec('fentry:bpf:123:prog').module, 'bpf');
    assert.equal(spec('kfunc:vfs_read').provider, 'fentry');
    assert.equal(spec('iter:task:/sys/fs/bpf/p').pin, '/sys/fs/bpf/p');
    assert.equal(spec('name=kprobe:f').name, 'name');
    const { program } = parse('uprobe:./testprogs/a:f, uprobe:testprogs/b:g /pid/ { } kprobe:f/pid/{ }');
    assert.deepEqual(
      program.probes.map((p) => p.attachPoints.map((a) => a.raw)),
      [['uprobe:./testprogs/a:f', 'uprobe:testprogs/b:g'], ['kprobe:f']],
    );
    assert.ok(program.probes.every((p) => p.predicate?.kind === 'Identifier'));
  });

  it('prints the AST like bpftrace -d', () => {
    const r = compileFrontEnd(
      'BEGIN { @x[1,"a"] = count(); $y = (uint8)2 + 3 * 4; if ($y > 1) { printf("%d\\n", $y); } else { exit(); } }',
    );
    assert.equal(
      printAst(r.program),
      `Program
 BEGIN
  =
   map: @x :: type[count]
    int: 1 :: type[int64]
    string: a :: type[string[2]]
   call: count :: type[count]
  =
   variable: $y :: type[unsigned int64]
   + :: type[unsigned int64]
    (uint8) :: type[unsigned int8]
     int: 2 :: type[int64]
    * :: type[int64]
     int: 3 :: type[int64]
     int: 4 :: type[int64]
  if
   > :: type[bool]
    variable: $y :: type[unsigned int64]
    int: 1 :: type[int64]
   then
    call: printf :: type[none]
     string: %d\\n :: type[string[4]]
     variable: $y :: type[unsigned int64]
   else
    call: exit :: type[none]
`,
    );
  });

  it('reports lexical errors', () => {
    assert.match(firstError('BEGIN { $x = 1 ` 2; }'), /invalid character '`'/);
    assert.match(firstError('BEGIN { /* x'), /unterminated comment/);
    assert.match(firstError('BEGIN { $x = 099; }'), /invalid octal/);
    assert.match(firstError('BEGIN { $x = 99999999999999999999999; }'), /out of range/);
    assert.match(firstError('BEGIN { $0 }'), /param \$0 is out of integer range/);
  });
});
