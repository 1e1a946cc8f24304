/**
 * `tsbpf trace` and `tsbpf tool` end to end, in child processes as a user runs them: what they print on
 * stdout and stderr and their exit status, next to Debian's bpftrace when it is installed. Kernel runs skip
 * (with the reason) where BPF cannot be used; --backend vm runs everywhere.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { corpusDir, loadCorpus, runTest, skipReason, tsbpfTraceBin } from '../scripts/bpftrace-corpus.js';
import { parseTraceArgs, TraceUsageError } from '../src/cli/commands/trace.js';
import { TsbpfError } from '../src/errors.js';
import { bpfAvailable } from '../src/kernel/program.js';
import { headerMacros } from '../src/trace/runtime/include.js';
import { Symbols } from '../src/trace/runtime/resolve.js';
import { ROOT } from './support/fixtures.js';

const exec = promisify(execFile);

/** Runs `tsbpf COMMAND ARGS` (trace or tool) in a child; never throws on a non-zero exit. */
async function tsbpf(
  command: 'trace' | 'tool',
  args: string[],
): Promise<{ stdout: string; stderr: string; code: number }> {
  const script = `
    const { ${command}Command } = await import(${JSON.stringify(join(ROOT, 'dist/src/cli/commands', `${command}.js`))});
    const io = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t),
      stdoutBytes: (b) => process.stdout.write(b), readStdin: async () => new Uint8Array() };
    let code;
    try { code = await ${command}Command.run(JSON.parse(process.argv[1]), io); }
    catch (e) { process.stderr.write(String(e && e.message) + '\\n'); code = e && e.code === 'usage' ? 2 : 1; }
    // Writes to a pipe may still be queued: exit once they are out.
    for (const stream of [process.stdout, process.stderr]) await new Promise((r) => stream.write('', r));
    process.exit(code);`;
  try {
    const r = await exec(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(args)], {
      encoding: 'utf8',
      timeout: 20000,
    });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number };
    return { stdout: x.stdout ?? '', stderr: x.stderr ?? '', code: typeof x.code === 'number' ? x.code : 1 };
  }
}

const bpf = bpfAvailable();
const kernelSkip = bpf.ok ? false : `BPF unavailable: ${bpf.reason}`;
const hasBpftrace = bpf.ok && existsSync('/usr/bin/bpftrace') && !process.env.TSBPF_NO_BPFTRACE;

async function bpftrace(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await exec('bpftrace', args, { encoding: 'utf8', timeout: 20000 });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number };
    return { stdout: x.stdout ?? '', stderr: x.stderr ?? '', code: typeof x.code === 'number' ? x.code : 1 };
  }
}

/**
 * Debian's bpftrace v0.17 stdout with its attach line as the newer bpftrace of the runtime corpus prints it,
 * which tsbpf follows: `Attaching N probes...` → `Attached N probes`, and in JSON the `count` field. Both are
 * printed before the script's first output, so nothing else moves.
 */
const asNewerBpftrace = (s: string) =>
  s
    .replace(/^Attaching (\d+) (probes?)\.\.\.$/m, 'Attached $1 $2')
    .replace(
      /^\{"type": "attached_probes", "data": \{"probes": (\d+)\}\}$/m,
      '{"type": "attached_probes", "count": $1, "data": {"probes": $1}}',
    );

/** bpftrace's stderr without the container's RLIMIT_MEMLOCK complaint. */
const cleanStderr = (s: string) =>
  s
    .split('\n')
    .filter((l) => !l.includes('RLIMIT_MEMLOCK') && !l.includes('available_filter_functions'))
    .join('\n');

describe('tsbpf trace: compile errors and usage (no BPF needed)', () => {
  it('a compile error prints bpftrace diagnostics with carets and exits 1', async () => {
    const r = await tsbpf('trace', ['-e', 'BEGIN { foo(); }']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'stdin:1:9-12: ERROR: Unknown function: foo\nBEGIN { foo(); }\n        ~~~\n');
    assert.equal(r.stdout, '');
    if (hasBpftrace) {
      const b = await bpftrace(['-e', 'BEGIN { foo(); }']);
      assert.equal(r.stderr, cleanStderr(b.stderr));
      assert.equal(b.code, 1);
    }
  });

  it('a missing script file, a bad option, a bad pid', async () => {
    const missing = await tsbpf('trace', ['no_such_script.bt']);
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      "ERROR: failed to open file 'no_such_script.bt': No such file or directory\n",
    );
    const bad = await tsbpf('trace', ['--no-such-option']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /USAGE:/);
    const pid = await tsbpf('trace', ['-p', 'a1', '-e', 'BEGIN {}']);
    assert.equal(pid.code, 1);
    assert.equal(pid.stderr, 'ERROR: Failed to parse pid: invalid integer: a1\n');
  });

  it('-d ast prints the front end AST without running', async () => {
    const r = await tsbpf('trace', ['-d', 'ast', '-e', 'BEGIN { @x = 1; }']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Program\n BEGIN\n/);
  });

  it('a #! script with positional parameters, on the VM backend', async () => {
    const file = join(tmpdir(), `tsbpf-trace-${process.pid}.bt`);
    const fd = openSync(file, 'w');
    writeSync(
      fd,
      '#!/usr/bin/env -S tsbpf trace\nBEGIN { printf("%s %d\\n", str($1), $2); @x = $2; exit(); }\n',
    );
    closeSync(fd);
    const r = await tsbpf('trace', ['--backend', 'vm', file, 'hello', '42']);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'Attached 1 probe\nhello 42\n\n\n@x: 42\n');
    assert.equal(r.code, 0);
  });

  it('tool --list and a tool help', async () => {
    const list = await tsbpf('tool', ['--list']);
    assert.equal(list.code, 0);
    for (const name of ['execsnoop', 'opensnoop', 'runqlat', 'syscount', 'biolatency', 'funccount'])
      assert.match(list.stdout, new RegExp(`^${name} `, 'm'));
    const help = await tsbpf('tool', ['execsnoop', '-h']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^execsnoop\s+Trace new processes/);
    assert.match(help.stdout, /USAGE: tsbpf tool execsnoop/);
  });
});

describe('tsbpf trace: the command line (bpftrace getopt_long rules)', () => {
  it('options anywhere before --, clusters and attached values; after --, named parameters', () => {
    const a = parseTraceArgs([
      '-e',
      'BEGIN {}',
      'pos1',
      '-qv',
      '-p123',
      '--output=out.txt',
      '--',
      '--aa=20',
      'pos2',
      '--dd',
    ]);
    assert.equal(a.program, 'BEGIN {}');
    assert.deepEqual(a.args, ['pos1', 'pos2']);
    assert.deepEqual(a.namedArgs, { aa: '20', dd: true });
    assert.equal(a.quiet, true);
    assert.equal(a.verbose, true);
    assert.equal(a.pid, 123);
    assert.equal(a.output, 'out.txt');
    // The script file is the first word; options after it are still options, as with getopt's permutation.
    const f = parseTraceArgs(['script.bt', '-c', 'ls', 'x', '--', '--n=1']);
    assert.equal(f.file, 'script.bt');
    assert.equal(f.command, 'ls');
    assert.deepEqual(f.args, ['x']);
    assert.deepEqual(f.namedArgs, { n: '1' });
    const l = parseTraceArgs(['-lv', 'rawtracepoint:*']);
    assert.equal(l.list, true);
    assert.equal(l.verbose, true);
    assert.equal(l.listPattern, 'rawtracepoint:*');
    // getopt_long takes unique prefixes of long options.
    assert.equal(parseTraceArgs(['--no-warn', '-e', 'BEGIN {}']).warnings, 'none');
    assert.deepEqual(parseTraceArgs(['-I', '/d', '--include', 'errno.h', '-e', 'x']).includeFiles, [
      'errno.h',
    ]);
  });

  it('bad command lines are refused with the reason', () => {
    const usage = (argv: string[]) => assert.throws(() => parseTraceArgs(argv), TsbpfError);
    const error = (argv: string[], re: RegExp) =>
      assert.throws(
        () => parseTraceArgs(argv),
        (e: unknown) => e instanceof TraceUsageError && re.test(e.message),
      );
    usage(['-e', 'BEGIN {}', '--aa=20']); // named parameters only after --
    usage(['--no-such-option']);
    usage(['-c', 'ls', '-p', '1', '-e', 'BEGIN {}']);
    usage(['-e']);
    error(['-kk', '-e', 'BEGIN {}'], /-kk has been deprecated/);
    error(['-k', '--no-warnings', '-e', 'BEGIN {}'], /conflicts with --no-warnings/);
    error(['-B', 'sometimes', '-e', 'BEGIN {}'], /-B must be/);
    error(['-d', 'codegen', '-e', 'BEGIN {}'], /invalid option for -d: codegen/);
    error(['--aot', 'x', '-e', 'BEGIN {}'], /--aot is not supported/);
  });

  it('named program parameters reach getopt(), on the VM backend', async () => {
    const prog =
      'BEGIN { print(($1, getopt("aa", 10), getopt("bb", -1), $2, getopt("cc", "hello"), getopt("dd"))); exit(); }';
    const r = await tsbpf('trace', [
      '--backend',
      'vm',
      '-e',
      prog,
      'pos1',
      '--',
      '--aa=20',
      '--bb=5',
      '--cc=bye',
      'pos2',
      '--dd',
    ]);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'Attached 1 probe\n(pos1, 20, 5, pos2, bye, true)\n\n\n');
    assert.equal(r.code, 0);
  });

  it('-- --help lists the program options; unknown and ill-typed named parameters are errors', async () => {
    const help = await tsbpf('trace', [
      '--backend',
      'vm',
      '-e',
      'BEGIN { print((getopt("aa", 10, "Description of aa"), getopt("bb", 1), getopt("cc"))); }',
      '--',
      '--help',
    ]);
    assert.equal(help.code, 1);
    assert.equal(help.stderr, 'HINT: expected program options:\n--cc\n--bb\n--aa: Description of aa\n');
    assert.equal(help.stdout, '');
    const unexpected = await tsbpf('trace', [
      '--backend',
      'vm',
      '-e',
      'BEGIN { print(getopt("aa", 10)); }',
      '--',
      '--bb',
    ]);
    assert.equal(unexpected.code, 1);
    assert.equal(
      unexpected.stderr,
      'ERROR: unexpected program command line options: --bb\nHINT: expected program options: --aa\n',
    );
    const wrong = await tsbpf('trace', [
      '--backend',
      'vm',
      '-e',
      'BEGIN { print(getopt("aa", 10)); }',
      '--',
      '--aa=False',
    ]);
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr, 'ERROR: program command line option --aa invalid integer (value: False)\n');
  });

  it('a script with only BEGIN/END ends by itself, END and maps included', async () => {
    const r = await tsbpf('trace', ['--backend', 'vm', '-e', 'BEGIN { @x = 1; } END { printf("end\\n"); }']);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'Attached 2 probes\nend\n\n\n@x: 1\n');
    assert.equal(r.code, 0);
  });

  it("--include and #include make a header's integer macros usable (-I for the search path)", async () => {
    const r = await tsbpf('trace', [
      '--backend',
      'vm',
      '--include',
      'errno.h',
      '-e',
      'BEGIN { print(strerror(EPERM)); print(ENOENT); }',
    ]);
    if (!existsSync('/usr/include/errno.h')) return;
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'Attached 1 probe\nOperation not permitted\n2\n\n\n');
    const dir = mkdtempSync(join(tmpdir(), 'tsbpf-include-'));
    try {
      writeFileSync(
        join(dir, 'mine.h'),
        '#include "more.h"\n#define ANSWER (BASE << 1) /* a comment */\n#define NAME "str"\n',
      );
      writeFileSync(join(dir, 'more.h'), '#define BASE 0x15UL\n');
      const i = await tsbpf('trace', [
        '--backend',
        'vm',
        '-I',
        dir,
        '-e',
        '#include <mine.h>\nBEGIN { print(ANSWER); }',
      ]);
      assert.equal(i.stderr, '');
      assert.equal(i.stdout, 'Attached 1 probe\n42\n\n\n');
      // Without the directory the header is not found, as clang would say it in bpftrace.
      const missing = await tsbpf('trace', [
        '--backend',
        'vm',
        '-e',
        '#include <mine.h>\nBEGIN { print(ANSWER); }',
      ]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, "definitions.h:2:10: fatal error: 'mine.h' file not found\n");
      const flag = await tsbpf('trace', ['--backend', 'vm', '--include', 'no/such.h', '-e', 'BEGIN {}']);
      assert.equal(flag.code, 1);
      assert.equal(flag.stderr, "--include no/such.h: fatal error: 'no/such.h' file not found\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("headerMacros: integer constants only; the script's #defines and macros win", () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsbpf-macros-'));
    try {
      writeFileSync(
        join(dir, 'h.h'),
        '#define A (-1)\n#define B (0x10UL | 1 << 1)\n#define C A\n#define FN(x) x\n#define S "s"\n#define MINE 3\n#define lower 1\n',
      );
      const text =
        '#define LOCAL (A + 8)\nBEGIN { print((A, B, C, FN(1), S, MINE, lower, LOCAL)); }\nmacro MINE() { 4 }';
      assert.equal(
        headerMacros(text, { files: [join(dir, 'h.h')] }),
        'macro A() { (-1) }\nmacro B() { 18 }\nmacro C() { (-1) }\nmacro LOCAL() { 7 }\n',
      );
      assert.equal(headerMacros('BEGIN {}'), '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('-o FILE: the program output goes to FILE; --no-warnings silences warnf()', async () => {
    const out = join(tmpdir(), `tsbpf-trace-out-${process.pid}.txt`);
    try {
      const r = await tsbpf('trace', [
        '--backend',
        'vm',
        '-o',
        out,
        '--no-warnings',
        '-e',
        'BEGIN { printf("SUCCESS %d\\n", 1); warnf("no warn"); @m = 5; }',
      ]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, '');
      assert.equal(readFileSync(out, 'utf8'), 'Attached 1 probe\nSUCCESS 1\n\n\n@m: 5\n');
      const warn = await tsbpf('trace', ['--backend', 'vm', '-e', 'BEGIN { warnf("a warning"); }']);
      assert.match(warn.stderr, /WARNING: a warning/);
      const bad = await tsbpf('trace', [
        '--backend',
        'vm',
        '-o',
        join(tmpdir(), 'no-such-dir-tsbpf', 'x'),
        '-e',
        'BEGIN {}',
      ]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^ERROR: Failed to open output file: ".*x": No such file or directory\n$/);
    } finally {
      rmSync(out, { force: true });
    }
  });

  it('-l -e lists the probes of a program as bpftrace does (no counts, no BEGIN)', async () => {
    const r = await tsbpf('trace', [
      '-l',
      '-e',
      'BEGIN {} hardware:cache-misses:10 { exit(); } interval:ms:5 {} tracepoint:xdp:mem_connect { exit(); }',
    ]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'hardware:cache-misses:\ninterval:ms:\ntracepoint:xdp:mem_connect\n');
  });

  it('-l with a kernel BTF: raw tracepoints with -v arguments, struct definitions', async (t) => {
    if (!existsSync('/sys/kernel/btf/vmlinux')) {
      t.skip('no kernel BTF');
      return;
    }
    const rt = await tsbpf('trace', ['-lv', 'rawtracepoint:consume_skb']);
    assert.equal(rt.code, 0);
    const lines = rt.stdout.split('\n');
    assert.equal(lines[0], 'rawtracepoint:vmlinux:consume_skb');
    assert.equal(lines[1], '    struct sk_buff * skb');
    assert.doesNotMatch(rt.stdout, /__data|retval/);
    const all = await tsbpf('trace', ['-l']);
    assert.match(all.stdout, /^rawtracepoint:vmlinux:sched_switch$/m);
    assert.match(all.stdout, /^tracepoint:sched:sched_switch$/m);
    const st = await tsbpf('trace', ['-lv', 'struct fd,struct file']);
    assert.equal(st.code, 0);
    assert.match(st.stdout, /^vmlinux: struct fd \{\n\t[^\n]+;\n\};$/m);
    assert.match(st.stdout, /^vmlinux: struct file \{$/m);
    const names = await tsbpf('trace', ['-l', 'struct task_struct']);
    assert.equal(names.stdout, 'struct task_struct\n');
  });

  it("cgroup_path(): a cgroup id is its directory's inode, printed per hierarchy", (t) => {
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '));
    const v2 = mounts.find((f) => f[2] === 'cgroup2')?.[1];
    if (!v2) {
      t.skip('no cgroup2 mount');
      return;
    }
    const sub = join(v2, `tsbpf-test-${process.pid}`);
    try {
      mkdirSync(sub);
    } catch (e) {
      t.skip(`cannot make a cgroup: ${(e as Error).message}`);
      return;
    }
    try {
      const symbols = new Symbols();
      assert.equal(
        symbols.cgroupPath(statSync(sub, { bigint: true }).ino),
        `unified:/tsbpf-test-${process.pid}`,
      );
      assert.match(symbols.cgroupPath(statSync(v2, { bigint: true }).ino), /^unified:\/(,[a-z_=]+:\/)*$/);
      assert.equal(symbols.cgroupPath(0xfffffffffn), '');
    } finally {
      rmdirSync(sub);
    }
  });
});

describe('tsbpf trace on the kernel', { skip: kernelSkip }, () => {
  it('BEGIN printf and exit prints what bpftrace prints', async () => {
    const prog = 'BEGIN { printf("hi\\n"); exit(); }';
    const r = await tsbpf('trace', ['-e', prog]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Attached 1 probe\nhi\n\n\n');
    if (hasBpftrace) assert.equal(r.stdout, asNewerBpftrace((await bpftrace(['-e', prog])).stdout));
  });

  it('maps at exit, -f json', async () => {
    const prog = 'BEGIN { @c[1, "a"] = count(); @h = hist(5); @s = stats(7); printf("x\\n"); exit(); }';
    const r = await tsbpf('trace', ['-f', 'json', '-e', prog]);
    assert.equal(r.code, 0, r.stderr);
    const expected = `{"type": "attached_probes", "count": 1, "data": {"probes": 1}}
{"type": "printf", "data": "x\\n"}


{"type": "map", "data": {"@c": {"1,a": 1}}}
{"type": "hist", "data": {"@h": [{"min": 4, "max": 7, "count": 1}]}}
{"type": "stats", "data": {"@s": {"count": 1, "average": 7, "total": 7}}}
`;
    assert.equal(r.stdout, expected);
    if (hasBpftrace)
      assert.equal(asNewerBpftrace((await bpftrace(['-f', 'json', '-e', prog])).stdout), expected);
  });

  it("a tracepoint one-liner counts this test's own write() calls", async () => {
    const file = join(tmpdir(), `tsbpf-trace-writes-${process.pid}`);
    const fd = openSync(file, 'w');
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { traceCommand } = await import(${JSON.stringify(join(ROOT, 'dist/src/cli/commands/trace.js'))});
         const io = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };
         process.exit(await traceCommand.run(JSON.parse(process.argv[1]), io));`,
        JSON.stringify([
          '-e',
          'tracepoint:syscalls:sys_enter_write /pid == $1/ { @writes = count(); if (@writes >= 5) { exit(); } }',
          String(process.pid),
        ]),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const done = new Promise<number>((r) => child.on('close', (c) => r(c ?? 1)));
    // Write until the tracer has counted enough and exited.
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    const deadline = Date.now() + 15000;
    while (!finished && Date.now() < deadline) {
      if (out.includes('Attached')) writeSync(fd, 'x');
      await new Promise((r) => setTimeout(r, 20));
    }
    closeSync(fd);
    if (!finished) child.kill('SIGINT');
    const code = await done;
    assert.equal(code, 0, err);
    assert.match(out, /^Attached 1 probe\n\n\n@writes: (\d+)\n$/);
    assert.ok(Number(/@writes: (\d+)/.exec(out)?.[1]) >= 5);
  });

  it('-c: cpid is the child as the probes see it, and the child starts only once they are attached', async () => {
    const prog =
      'tracepoint:syscalls:sys_enter_clock_nanosleep /pid == cpid/ { printf("child %d\\n", pid == cpid); exit(); }';
    const r = await tsbpf('trace', ['-e', prog, '-c', '/bin/sleep 0.2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Attached 1 probe\nchild 1\n\n\n');
    // interval probes are timers: -c does not tie them to the (sleeping) child.
    const i = await tsbpf('trace', [
      '-e',
      'interval:ms:50 { printf("%d\\n", cpid > 0); exit(); }',
      '-c',
      '/bin/sleep 2',
    ]);
    assert.equal(i.code, 0, i.stderr);
    assert.equal(i.stdout, 'Attached 1 probe\n1\n\n\n');
  });

  it('cgroup_path(cgroup) in BEGIN names the cgroup tsbpf runs in', async () => {
    const r = await tsbpf('trace', ['-e', 'BEGIN { print(cgroup_path(cgroup)); }']);
    assert.equal(r.code, 0, r.stderr);
    const own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
    if (own !== undefined)
      assert.match(
        r.stdout,
        new RegExp(`^unified:${own.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(,|\\n)`, 'm'),
      );
  });

  it('--probe-filter attaches only the matching probes; BEGIN and END still run', async () => {
    const prog =
      'BEGIN { printf("begin\\n"); } interval:ms:10 { printf("bad\\n"); exit(); } interval:ms:20 { printf("hit\\n"); exit(); } END { printf("end\\n"); }';
    const r = await tsbpf('trace', ['--probe-filter', ':20$', '-e', prog]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Attached 3 probes\nbegin\nhit\nend\n\n\n');
    const none = await tsbpf('trace', ['--probe-filter', 'nothing', '-e', 'interval:ms:10 { exit(); }']);
    assert.equal(none.code, 1);
    assert.equal(none.stderr, 'ERROR: No probes to attach\n');
    const bad = await tsbpf('trace', ['--probe-filter', '[x', '-e', 'interval:ms:10 { exit(); }']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^ERROR: Invalid --probe-filter regex/);
  });

  it('--info reports what this kernel supports', async () => {
    const r = await tsbpf('trace', ['--info']);
    assert.equal(r.code, 0, r.stderr);
    for (const section of [
      'System',
      'Build',
      'Kernel helpers',
      'Kernel features',
      'Map types',
      'Probe types',
    ])
      assert.match(r.stdout, new RegExp(`^${section}$`, 'm'));
    assert.match(r.stdout, /^ {2}tracepoint: yes$/m);
    assert.match(r.stdout, /^ {2}ringbuf: yes$/m);
    assert.match(r.stdout, /^ {2}kprobe_session: (yes|no)$/m);
    assert.match(r.stdout, /^ {2}probe_read_kernel: yes$/m);
  });

  it('a smoke subset of bpftrace runtime tests passes', async (t) => {
    let tests: ReturnType<typeof loadCorpus>;
    try {
      tests = loadCorpus();
    } catch {
      t.skip('bpftrace corpus not found');
      return;
    }
    const wanted = [
      'basic.it shows version',
      'basic.errors on non existent file',
      'basic.it lists tracepoints',
      'other.named command line params',
      'other.unexpected named command line params',
      'call.strerror',
      'call.cgroup_path',
      'file-output.printf to file',
      'basic.disable warnings',
      'basic.it lists struct definitions',
    ];
    const picked = tests.filter((x) => wanted.includes(`${x.suite}.${x.name}`));
    const dir = corpusDir();
    for (const test of picked) {
      if (skipReason(test, dir)) continue;
      const v = await runTest(test, { name: 'tsbpf', bin: tsbpfTraceBin() }, dir);
      assert.equal(v.status, 'pass', `${test.suite}.${test.name}: ${v.status !== 'pass' ? v.reason : ''}`);
    }
  });
});

describe('tsbpf trace: missing probes, uprobe bounds, cat (corpus texts)', { skip: kernelSkip }, () => {
  it('a tracepoint that does not exist: "No matches for tracepoint" at the attach point', async () => {
    const r = await tsbpf('trace', ['-e', 't:syscalls:nonsense { print("hit"); exit(); }']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^stdin:1:1-20: ERROR: No matches for tracepoint syscalls:nonsense\.$/m);
    const m = await tsbpf('trace', [
      '-e',
      't:syscalls:sys_exit_nanosleep,t:syscalls:nonsense { print("hit"); exit(); }',
    ]);
    assert.equal(m.code, 1);
    assert.match(m.stderr, /^stdin:1:31-50: ERROR: No matches for tracepoint syscalls:nonsense\.$/m);
  });

  it('missing_probes=warn: a missing attach point is skipped with a warning, the rest attach', async () => {
    const r = await tsbpf('trace', [
      '-e',
      'config = { missing_probes=warn } tracepoint:syscalls:sys_enter_read,tracepoint:nonsense:nonsense { $cnt = args.count; exit(); }',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, / WARNING: No matches for tracepoint nonsense:nonsense\. Skipping\./);
    assert.match(r.stdout, /^Attached 1 probe$/m);
    const w = await tsbpf('trace', [
      '-e',
      'config = { missing_probes=warn } t:syscalls:nonsense { exit(); } i:ms:1 { exit(); }',
    ]);
    assert.equal(w.code, 0, w.stderr);
    assert.match(
      w.stderr,
      / WARNING: Probe has no valid attach points\. It is being removed which may cause issues with program behavior\./,
    );
    const i = await tsbpf('trace', [
      '-e',
      'config = { missing_probes=ignore } t:syscalls:nonsense { exit(); } i:ms:1 { exit(); }',
    ]);
    assert.equal(i.code, 0, i.stderr);
    assert.doesNotMatch(i.stderr, /nonsense/);
  });

  it('raw tracepoints: an unknown event, an unknown module', async () => {
    const r = await tsbpf('trace', ['-e', 'rawtracepoint:nonsense { print("hit"); exit(); }']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERROR: Probe has no valid attach points\./);
    const m = await tsbpf('trace', [
      '-e',
      'rawtracepoint:nonsense:sys_exit { printf("SUCCESS %d\\n", gid); exit(); }',
    ]);
    assert.equal(m.code, 1);
    assert.match(m.stderr, / ERROR: No matches for rawtracepoint nonsense:sys_exit\./);
    const ok = await tsbpf('trace', [
      '-e',
      'rawtracepoint:vmlinux:sys_exit { printf("SUCCESS %d\\n", gid); exit(); }',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /SUCCESS \d+/);
    const w = await tsbpf('trace', ['-e', 'rawtracepoint:sys_* { printf("SUCCESS %d\\n", gid); exit(); }']);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /^Attached 2 probes\nSUCCESS \d+/);
  });

  it('uprobes: an offset past the function, an address in no function', async () => {
    const r = await tsbpf('trace', [
      '-e',
      'uprobe:/bin/bash:echo_builtin+1000000 { printf("arg0: %d\\n", arg0); exit();}',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Offset outside the function bounds \('echo_builtin' size is \d+\)/);
    const a = await tsbpf('trace', ['-e', 'uprobe:/bin/bash:10 { printf("arg0: %d\\n", arg0); exit();}']);
    assert.equal(a.code, 1);
    assert.match(a.stderr, /Could not resolve address: \/bin\/bash:0xa$/m);
  });

  it('a struct redefining a kernel one must define the structs it embeds', async () => {
    const r = await tsbpf('trace', [
      '-e',
      'struct task_struct { struct thread_info x; } begin { printf("%d\\n", curtask.x.status); }',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error:.*'struct thread_info'/);
    const ok = await tsbpf('trace', [
      '-e',
      'struct thread_info { int status; } struct task_struct { struct thread_info x; } begin { exit(); }',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('the probe builtin shows a software event as written', async () => {
    const r = await tsbpf('trace', ['-e', 'software:cpu:100000 { print(probe); exit();}']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^software:cpu:100000$/m);
  });

  it('cat(): a missing file, and BPFTRACE_MAX_CAT_BYTES', async () => {
    const r = await tsbpf('trace', ['-e', 'i:ms:1 { cat("/does/not/exist/file"); exit(); }']);
    assert.match(
      r.stderr,
      /^ERROR: failed to open file '\/does\/not\/exist\/file' \(No such file or directory\)$/m,
    );
    process.env.BPFTRACE_MAX_CAT_BYTES = '1';
    try {
      const c = await tsbpf('trace', ['-e', 'i:ms:1 { cat("/proc/loadavg"); exit(); }']);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /^Attached 1 probe\n[0-9]\n/);
    } finally {
      delete process.env.BPFTRACE_MAX_CAT_BYTES;
    }
    const s = await tsbpf('trace', [
      '-e',
      'config = { max_cat_bytes=2 } i:ms:1 { cat("/proc/loadavg"); exit(); }',
    ]);
    assert.match(s.stdout, /^Attached 1 probe\n[0-9]\.\n/);
  });
});
