/**
 * `tsbpf verify`: objects and raw bytecode, exit statuses (0 accepted, 1 rejected, 2 unusable input),
 * the kernel's sentence with the C source line beneath it, --json, --log-level.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { verifyCommand } from '../src/cli/commands/verify.js';
import { assembleLlvm } from '../src/isa/asm/llvm.js';
import { encode } from '../src/isa/insn.js';

const OBJ = join(import.meta.dirname, '..', '..', 'fixtures', 'obj');
const dir = mkdtempSync(join(tmpdir(), 'tsbpf-verify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(...argv: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await verifyCommand.run(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stdoutBytes: () => {},
    stderr: (t) => {
      stderr += t;
    },
    readStdin: async () => new Uint8Array(),
  });
  return { status, stdout, stderr };
}

function rawFile(name: string, asm: string): string {
  const path = join(dir, name);
  writeFileSync(path, encode(assembleLlvm(asm)));
  return path;
}

describe('tsbpf verify', () => {
  it('accepts every program of an object: exit 0, one line per program', async () => {
    const r = await run(join(OBJ, 'callbacks.o'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^xdp_loop_cb \(xdp\): accepted \(processed \d+ insns, \d+ states\)$/m);
    assert.match(r.stdout, /^xdp_each_cb \(xdp\): accepted/m);
    assert.match(r.stdout, /^tc_plain \(sched_cls\): accepted/m);
  });

  it('a rejection: exit 1, the kernel sentence and the C source line beneath it', async () => {
    const r = await run(join(OBJ, 'loop.o'), '--unpriv');
    assert.equal(r.status, 1);
    const lines = r.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith('xdp_hash_loop (xdp): rejected at insn'));
    assert.ok(at >= 0, r.stdout);
    assert.match(lines[at + 1], /^ {2}back-edge from insn \d+ to \d+$/);
    assert.match(lines[at + 2], /^ {2}; for \(int i = 0; i < 64; i\+\+\) \{ @ loop\.c:\d+$/);
  });

  it('--prog selects programs; --json prints [{ program, ok, error: { insn, message, sourceLine }, stats }]', async () => {
    const r = await run(join(OBJ, 'globals.o'), '--prog', 'xdp_globals', '--unpriv', '--json');
    assert.equal(r.status, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.length, 1);
    assert.equal(out[0].program, 'xdp_globals');
    assert.equal(out[0].ok, false);
    assert.equal(out[0].error.message, 'R1 pointer -= pointer prohibited');
    assert.equal(typeof out[0].error.insn, 'number');
    assert.deepEqual(Object.keys(out[0].error.sourceLine).sort(), ['file', 'line', 'text']);
    assert.match(out[0].error.sourceLine.file, /globals\.c$/);
    assert.equal(typeof out[0].stats.processed, 'number');
    const ok = JSON.parse((await run(join(OBJ, 'globals.o'), '--json')).stdout);
    assert.deepEqual(
      ok.map((p: { program: string; ok: boolean }) => [p.program, p.ok]),
      [['xdp_globals', true]],
    );
  });

  it('--log-level 1 and 2 print the log in the kernel format', async () => {
    const r1 = await run(join(OBJ, 'loop.o'), '--unpriv', '--log-level', '1');
    assert.match(r1.stdout, /back-edge from insn/);
    const r2 = await run(join(OBJ, 'xdp_parser.o'), '--log-level', '2');
    assert.equal(r2.status, 0);
    assert.match(r2.stdout, /^0: R1=ctx\(\) R10=fp0$/m);
    assert.match(r2.stdout, /^processed \d+ insns \(limit 1000000\)/m);
  });

  it('--raw FILE --type TYPE verifies bytecode', async () => {
    const good = rawFile('good.bin', 'r0 = 2\nexit');
    assert.equal((await run('--raw', good, '--type', 'xdp')).status, 0);
    const bad = rawFile('bad.bin', 'r0 = *(u32 *)(r1 + 1000)\nr0 = 2\nexit');
    const r = await run('--raw', bad, '--type', 'xdp');
    assert.equal(r.status, 1);
    assert.match(r.stdout, /invalid bpf_context access off=1000 size=4/);
    const j = JSON.parse((await run('--raw', bad, '--type', '6', '--json')).stdout);
    assert.deepEqual(j[0].error, { insn: 0, message: 'invalid bpf_context access off=1000 size=4' });
  });

  it('exit 2 for unusable input', async () => {
    const raw = rawFile('r.bin', 'r0 = 0\nexit');
    const cases: string[][] = [
      [join(dir, 'missing.o')],
      ['--raw', raw],
      ['--raw', raw, '--type', 'no_such_type'],
      [raw],
      [join(OBJ, 'callbacks.o'), '--prog', 'nope'],
      [join(OBJ, 'callbacks.o'), '--log-level', '3'],
      [join(OBJ, 'callbacks.o'), '--type', 'xdp'],
      ['--raw', rawFile('odd.bin', 'r0 = 0\nexit').replace('odd', 'odd'), '--type', 'xdp', join(OBJ, 'x.o')],
      [],
    ];
    writeFileSync(join(dir, 'short.bin'), new Uint8Array(5));
    cases.push(['--raw', join(dir, 'short.bin'), '--type', 'xdp']);
    for (const argv of cases) {
      const r = await run(...argv);
      assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^tsbpf verify: /);
    }
  });
});
