/** The `tsbpf` command as a user runs it: a real process, its exit status, stdout and stderr. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { COMMANDS } from '../src/cli/main.js';
import { toHex } from '../src/hex.js';
import { assembleLlvm } from '../src/isa/asm/llvm.js';
import { encode } from '../src/isa/insn.js';
import { readObject } from '../src/object/spec.js';
import { CORPORA, fixturePath, hasTool, ROOT } from './support/fixtures.js';

const BIN = join(ROOT, 'dist', 'src', 'cli', 'bin.js');
const tmp = mkdtempSync(join(tmpdir(), 'tsbpf-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function tsbpf(args: string[], input?: string | Uint8Array) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), raw: r.stdout };
}

describe('tsbpf CLI', () => {
  test('no command prints the overview and exits 2; --help exits 0', () => {
    const none = tsbpf([]);
    assert.equal(none.status, 2);
    assert.match(none.stdout, /Commands:/);
    assert.equal(tsbpf(['--help']).status, 0);
    for (const cmd of ['asm', 'disasm', 'run-raw', 'conformance', 'conformance-plugin']) {
      const h = tsbpf([cmd, '--help']);
      assert.equal(h.status, 0, cmd);
      assert.match(h.stdout, new RegExp(`^Usage: tsbpf ${cmd}`), cmd);
    }
  });

  test("main's lazy command list matches each command module", async () => {
    for (const entry of COMMANDS) {
      const command = await entry.load();
      assert.equal(command.name, entry.name);
      assert.equal(command.summary, entry.summary, entry.name);
      assert.equal(command.ownHelp ?? false, entry.ownHelp ?? false, entry.name);
    }
  });

  test('wrong usage exits 2 with a message; unknown command too', () => {
    const unknown = tsbpf(['frobnicate']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const missing = tsbpf(['run-raw']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /missing argument/);
    const badOpt = tsbpf(['asm', 'x.s', '--syntax', 'intel']);
    assert.equal(badOpt.status, 2);
    assert.match(badOpt.stderr, /--syntax must be 'llvm' or 'conformance'/);
    const badMem = tsbpf(['run-raw', 'x', '--mem', 'zz']);
    assert.equal(badMem.status, 2);
  });

  test('a missing file and a bad program are refused with exit 1 and a reason', () => {
    const missing = tsbpf(['disasm', join(tmp, 'nope.o')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read .*nope\.o: ENOENT/);
    const src = join(tmp, 'bad.s');
    writeFileSync(src, 'r0 = 1\nr11 = 2\nexit\n');
    const bad = tsbpf(['asm', src]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /line 2, column 1/);
  });

  test('asm -o - | run-raw - runs the example on the VM', () => {
    const asm = tsbpf(['asm', join(ROOT, 'examples', 'fib.s'), '-o', '-']);
    assert.equal(asm.status, 0, asm.stderr);
    const run = tsbpf(['run-raw', '-', '--json'], asm.raw);
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout);
    assert.equal(BigInt(out.r0), 2880067194370816120n); // fib(90)
    const jit = tsbpf(['run-raw', '-', '--engine', 'jit', '--json'], asm.raw);
    assert.equal(jit.status, 0, jit.stderr);
    assert.deepEqual(JSON.parse(jit.stdout), out);
    assert.equal(tsbpf(['run-raw', '-', '--engine', 'fast'], asm.raw).status, 2);
  });

  test('disasm --prog prints the linked program, which assembles back to the same instructions', () => {
    const path = fixturePath('subprog');
    const spec = readObject(new Uint8Array(readFileSync(path)), { path });
    const prog = spec.programs[0];
    const r = tsbpf(['disasm', path, '--prog', prog.name, '--no-raw']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /call pc\+0x/);
    const text = r.stdout
      .split('\n')
      .filter((l) => /^\s+\d+:\t/.test(l))
      .map((l) => l.replace(/^\s+\d+:\t/, ''))
      .join('\n');
    assert.equal(toHex(encode(assembleLlvm(text))), toHex(encode(prog.insns)));
    assert.equal(tsbpf(['disasm', path, '--prog', 'no_such_prog']).status, 2);
  });

  test('run-raw reports runtime errors with the pc', () => {
    const src = join(tmp, 'oob.s');
    writeFileSync(src, 'r0 = *(u64 *)(r1 + 0x0)\nexit\n');
    const bin = join(tmp, 'oob.bin');
    assert.equal(tsbpf(['asm', src, '-o', bin]).status, 0);
    const run = tsbpf(['run-raw', bin, '--mem', '01 02']);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /pc 0: /);
    const loop = join(tmp, 'loop.s');
    writeFileSync(loop, 'r0 = 0\nl: r0 += 1\ngoto l\n');
    const loopBin = join(tmp, 'loop.bin');
    assert.equal(tsbpf(['asm', loop, '-o', loopBin]).status, 0);
    const budget = tsbpf(['run-raw', loopBin, '--budget', '1000']);
    assert.equal(budget.status, 1);
    assert.match(budget.stderr, /budget of 1000 exhausted/);
  });

  test('disasm of an object prints what llvm-objdump-19 -d prints', {
    skip: !hasTool('llvm-objdump-19') && 'llvm-objdump-19 is not installed',
  }, () => {
    const path = fixturePath('xdp_parser');
    const ours = tsbpf(['disasm', path]);
    assert.equal(ours.status, 0, ours.stderr);
    const theirs = spawnSync('llvm-objdump-19', ['-d', path], { encoding: 'utf8' }).stdout;
    assert.equal(ours.stdout, theirs.replace(path, 'xdp_parser.o'));
  });

  test('conformance DIR prints the closing count line and exits 0 when all pass', () => {
    const r = tsbpf(['conformance', join(CORPORA, 'bpf_conformance', 'tests')]);
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /^313 passed, 0 failed$/m);
    const neg = tsbpf(['conformance', join(CORPORA, 'bpf_conformance', 'negative'), '--json']);
    assert.equal(JSON.parse(neg.stdout).results.length, 60);
  });

  test('conformance-plugin speaks the plugin protocol as a process', () => {
    const data = readFileSync(join(CORPORA, 'bpf_conformance', 'tests', 'ldxdw.data'), 'utf8');
    assert.match(data, /0x8877665544332211/);
    const ok = tsbpf(
      ['conformance-plugin', 'aa bb 11 22 33 44 55 66 77 88 cc dd'],
      '79 10 02 00 00 00 00 00 95 00 00 00 00 00 00 00',
    );
    assert.deepEqual([ok.status, ok.stdout], [0, '8877665544332211\n']);
    const err = tsbpf(['conformance-plugin'], '07 10 00 00 01 00 00 00 95 00 00 00 00 00 00 00');
    assert.equal(err.status, 1);
    assert.match(err.stderr, /reserved fields/);
  });
});
