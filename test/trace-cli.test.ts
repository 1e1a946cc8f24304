/**
 * `tsbpf trace` and `tsbpf tool` end to end, in child processes as a user runs them: what they print on
 * stdout and stderr and their exit status, next to Debian's bpftrace when it is installed. Kernel runs skip
 * (with the reason) where BPF cannot be used; --backend vm runs everywhere.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { corpusDir, loadCorpus, runTest, skipReason, tsbpfTraceBin } from '../scripts/bpftrace-corpus.js';
import { bpfAvailable } from '../src/kernel/program.js';
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
    assert.equal(r.stdout, 'Attaching 1 probe...\nhello 42\n\n\n@x: 42\n');
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

describe('tsbpf trace on the kernel', { skip: kernelSkip }, () => {
  it('BEGIN printf and exit prints what bpftrace prints', async () => {
    const prog = 'BEGIN { printf("hi\\n"); exit(); }';
    const r = await tsbpf('trace', ['-e', prog]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Attaching 1 probe...\nhi\n\n\n');
    if (hasBpftrace) assert.equal(r.stdout, (await bpftrace(['-e', prog])).stdout);
  });

  it('maps at exit, -f json', async () => {
    const prog = 'BEGIN { @c[1, "a"] = count(); @h = hist(5); @s = stats(7); printf("x\\n"); exit(); }';
    const r = await tsbpf('trace', ['-f', 'json', '-e', prog]);
    assert.equal(r.code, 0, r.stderr);
    const expected = `{"type": "attached_probes", "data": {"probes": 1}}
{"type": "printf", "data": "x\\n"}


{"type": "map", "data": {"@c": {"1,a": 1}}}
{"type": "hist", "data": {"@h": [{"min": 4, "max": 7, "count": 1}]}}
{"type": "stats", "data": {"@s": {"count": 1, "average": 7, "total": 7}}}
`;
    assert.equal(r.stdout, expected);
    if (hasBpftrace) assert.equal((await bpftrace(['-f', 'json', '-e', prog])).stdout, expected);
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
      if (out.includes('Attaching')) writeSync(fd, 'x');
      await new Promise((r) => setTimeout(r, 20));
    }
    closeSync(fd);
    if (!finished) child.kill('SIGINT');
    const code = await done;
    assert.equal(code, 0, err);
    assert.match(out, /^Attaching 1 probe\.\.\.\n\n\n@writes: (\d+)\n$/);
    assert.ok(Number(/@writes: (\d+)/.exec(out)?.[1]) >= 5);
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
