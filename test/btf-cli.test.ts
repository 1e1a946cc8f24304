/**
 * `tsbpf btf dump file PATH [format raw|c]` against `bpftool btf dump file PATH ...`, and `tsbpf btf core`.
 * Runs the built CLI (dist/src/cli/bin.js). Until `btf` is listed in main.ts's COMMANDS, the command module
 * is run in a child process directly (same code, without main's dispatch).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fixturePath, ROOT } from './support/fixtures.js';

const BIN = join(ROOT, 'dist', 'src', 'cli', 'bin.js');
const COMMAND = join(ROOT, 'dist', 'src', 'cli', 'commands', 'btf.js');
const VMLINUX = '/sys/kernel/btf/vmlinux';
const HAVE_BPFTOOL = spawnSync('bpftool', ['version'], { stdio: 'ignore' }).status === 0;

const registered = (() => {
  const r = spawnSync(process.execPath, [BIN, 'btf', '--help'], { encoding: 'utf8' });
  return r.status === 0;
})();

function tsbpf(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const opts = { encoding: 'utf8' as const, maxBuffer: 256 << 20 };
  if (registered) return spawnSync(process.execPath, [BIN, 'btf', ...args], opts);
  const script = `
    const { btfCommand } = await import(${JSON.stringify(COMMAND)});
    const io = { stdout: (t) => process.stdout.write(t), stdoutBytes: (b) => process.stdout.write(b),
      stderr: (t) => process.stderr.write(t), readStdin: async () => new Uint8Array() };
    try {
      process.exitCode = await btfCommand.run(process.argv.slice(1), io);
    } catch (e) {
      if (e?.name !== 'TsbpfError') throw e;
      // main.ts's handling: usage errors exit 2 with the usage text, others 1.
      io.stderr(e.code === 'usage' ? \`tsbpf btf: \${e.message}\n\n\${btfCommand.usage}\` : \`tsbpf btf: \${e.message}\n\`);
      process.exitCode = e.code === 'usage' ? 2 : 1;
    }`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script, ...args], opts);
}

function bpftool(args: string[]): string {
  const r = spawnSync('bpftool', args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('tsbpf btf dump file', { skip: HAVE_BPFTOOL ? false : 'bpftool is not installed' }, () => {
  test('runs through the CLI', (t) => {
    if (!registered) t.diagnostic("'btf' is not in main.ts's COMMANDS yet: running commands/btf.js directly");
  });

  for (const name of ['core_kinds', 'maps_all', 'xdp_parser.bpfeb']) {
    test(`${name}.o: raw, C and JSON equal bpftool's`, () => {
      const file = fixturePath(name);
      for (const [ours, theirs] of [
        [
          ['dump', 'file', file],
          ['btf', 'dump', 'file', file],
        ],
        [
          ['dump', 'file', file, 'format', 'raw'],
          ['btf', 'dump', 'file', file, 'format', 'raw'],
        ],
        [
          ['dump', 'file', file, 'format', 'c'],
          ['btf', 'dump', 'file', file, 'format', 'c'],
        ],
        [
          ['dump', 'file', file, '--json'],
          ['-j', 'btf', 'dump', 'file', file],
        ],
      ]) {
        const r = tsbpf(ours);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, bpftool(theirs), `tsbpf btf ${ours.join(' ')}`);
      }
    });
  }

  test('vmlinux: format c equals bpftool', { skip: existsSync(VMLINUX) ? false : `no ${VMLINUX}` }, () => {
    const r = tsbpf(['dump', 'file', VMLINUX, 'format', 'c']);
    assert.equal(r.status, 0, r.stderr);
    const want = bpftool(['btf', 'dump', 'file', VMLINUX, 'format', 'c']);
    // Compare without building a giant diff on failure: find the first differing line.
    if (r.stdout !== want) {
      const a = r.stdout.split('\n');
      const b = want.split('\n');
      const i = a.findIndex((l, k) => l !== b[k]);
      assert.fail(`line ${i + 1}: ours ${JSON.stringify(a[i])}, bpftool ${JSON.stringify(b[i])}`);
    }
  });

  test('usage errors exit 2 with a message', () => {
    for (const args of [
      ['dump'],
      ['dump', 'id', '3'],
      ['dump', 'file'],
      ['dump', 'file', fixturePath('core_read'), 'format', 'json'],
      ['frobnicate'],
    ]) {
      const r = tsbpf(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /expected|unsupported|unknown|missing/);
    }
    const missing = tsbpf(['dump', 'file', '/nonexistent/file']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read \/nonexistent\/file: ENOENT/);
    const noBtf = tsbpf(['dump', 'file', join(ROOT, 'package.json')]);
    assert.equal(noBtf.status, 1);
    assert.match(noBtf.stderr, /bad BTF magic/);
  });
});

describe('tsbpf btf core', { skip: existsSync(VMLINUX) ? false : `no ${VMLINUX}` }, () => {
  test('reports every relocation of core_kinds.o against the running kernel', () => {
    const r = tsbpf(['core', fixturePath('core_kinds')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^section raw_tp\/sched_process_fork: 44 CO-RE relocations$/m);
    assert.match(
      r.stdout,
      /relo #7: core_kinds insn #28: BPF_CORE_FIELD_BYTE_OFFSET struct task_struct___old access 0:1\n.*\n.*\n {2}poisoned/,
    );
    const json = JSON.parse(tsbpf(['core', fixturePath('core_kinds'), '--json']).stdout);
    assert.equal(json.length, 2);
    const tp = json.find((s: { section: string }) => s.section === 'tp_btf/sched_process_fork');
    assert.equal(tp.relocations[2].before, 'r2 = *(u64 *)(r1 + 0x0)');
    assert.deepEqual(tp.relocations[2].after, ['r2 = *(u32 *)(r1 + 0x2c)']);
    const log = tsbpf(['core', fixturePath('core_read'), '--log']).stdout;
    assert.match(
      log,
      /^prog 'core_fork': relo #0: <byte_off> \[15\] struct task_struct\.pid \(0:0 @ offset 0\)$/m,
    );
  });
});
