/**
 * `tsbpf disasm -S OBJ` (source lines from .BTF.ext line info) against `llvm-objdump-19 -S OBJ` (source lines
 * from DWARF's line table and the source files on disk), on every fixture.
 *
 * What is equal, and asserted:
 * - every instruction line, symbol header and blank line (with --alu32 / --mcpu=v4, where LLVM 19 decodes
 *   every 32-bit atomic; the plain form differs only where llvm-objdump prints `<unknown>`, see disasm.ts);
 * - every source line tsbpf prints, llvm-objdump prints too, at the same place (before the same instruction);
 * - -S only adds `; ` lines to the plain disassembly.
 * The residual difference: llvm-objdump may print a source line again after the compiler marked some
 * instructions in between with line 0 (DWARF keeps those entries; BTF line info leaves them out, and the
 * instruction after them has the same location as before, so BTF has no record for it). Every line that
 * only llvm-objdump prints is asserted to be such a repeat: the same text as the source line in effect
 * for that instruction by BTF. The first line names the file as given on the command line in llvm-objdump
 * and by its base name in tsbpf.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { disassembleLines } from '../src/isa/disasm.js';
import { encode, type Insn } from '../src/isa/insn.js';
import { FIXTURES, fixtureNames, hasTool, OBJDUMP, ROOT } from './support/fixtures.js';

const BIN = join(ROOT, 'dist', 'src', 'cli', 'bin.js');

const movK = (dst: number, imm: number): Insn => ({ code: 0xb7, dst, src: 0, off: 0, imm });
const exit: Insn = { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 };

describe('disassembleLines with lineInfo', () => {
  test('prints a source line before the first instruction of each line, after the symbol header', () => {
    const code = encode([movK(0, 1), movK(1, 2), movK(2, 3), movK(3, 4), exit]);
    const li = (insn: number, lineNum: number, line: string, fileName = 'a.c') => ({
      insnOff: insn * 8,
      lineNum,
      line,
      fileName,
    });
    const lines = disassembleLines(code, {
      symbols: [{ name: 'f', value: 0, type: 2 }],
      rawBytes: false,
      lineInfo: [
        li(0, 3, '  int a = 1;'),
        li(1, 3, '  int a = 1;'), // same line, another column: not repeated
        li(2, 4, '  return a;'),
        li(3, 3, '  int a = 1;'), // back to line 3: printed again
        li(4, 3, '  int a = 1;', 'b.h'), // same number in another file: printed
      ],
    });
    assert.deepEqual(lines, [
      '0000000000000000 <f>:',
      ';   int a = 1;',
      '       0:\tr0 = 0x1',
      '       1:\tr1 = 0x2',
      ';   return a;',
      '       2:\tr2 = 0x3',
      ';   int a = 1;',
      '       3:\tr3 = 0x4',
      ';   int a = 1;',
      '       4:\texit',
    ]);
  });
});

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd: FIXTURES, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('tsbpf disasm -S against llvm-objdump -S', {
  skip: hasTool(OBJDUMP) ? false : `${OBJDUMP} is not installed`,
}, () => {
  for (const name of fixtureNames()) {
    test(name, () => {
      const obj = `obj/${name}.o`;
      // Run from fixtures/, where the objects' source paths (./c/NAME.c) resolve for llvm-objdump.
      const ours = run(process.execPath, [BIN, 'disasm', '-S', '--alu32', obj]).split('\n');
      const llvm = run(OBJDUMP, ['-S', '--mcpu=v4', obj]).split('\n');
      const plain = run(process.execPath, [BIN, 'disasm', '--alu32', obj]).split('\n');
      assert.equal(ours[1], `${name}.o:\tfile format elf64-bpf`);
      assert.equal(llvm[1], `${obj}:\tfile format elf64-bpf`);
      ours.splice(1, 1);
      llvm.splice(1, 1);
      plain.splice(1, 1);
      const isSource = (l: string) => l.startsWith('; ');
      // The same instruction lines, and -S adds only source lines.
      assert.deepEqual(
        ours.filter((l) => !isSource(l)),
        llvm.filter((l) => !isSource(l)),
      );
      assert.deepEqual(
        ours.filter((l) => !isSource(l)),
        plain,
      );
      // Source lines, keyed by the line that follows them (an instruction or a header).
      const sourcesBefore = (lines: string[]) => {
        const m = new Map<string, string[]>();
        let pending: string[] = [];
        for (const l of lines) {
          if (isSource(l)) pending.push(l);
          else {
            if (pending.length) m.set(l, pending);
            pending = [];
          }
        }
        return m;
      };
      const mine = sourcesBefore(ours);
      const theirs = sourcesBefore(llvm);
      for (const [at, src] of mine) assert.deepEqual(theirs.get(at), src, `before '${at}'`);
      // What only llvm-objdump prints repeats the line in effect there.
      let inEffect: string | undefined;
      let extra = 0;
      for (const l of ours) {
        if (isSource(l)) {
          inEffect = l;
          continue;
        }
        const t = theirs.get(l);
        if (t !== undefined && !mine.has(l)) {
          assert.deepEqual(t, [inEffect], `llvm-objdump's extra source line before '${l}'`);
          extra++;
        }
      }
      assert.ok(mine.size > 0, 'no source lines printed');
      assert.ok(extra <= theirs.size / 2, `${extra} of ${theirs.size} source lines are llvm-only repeats`);
    });
  }

  test('JSON carries the source of each line record', () => {
    const json = JSON.parse(run(process.execPath, [BIN, 'disasm', '-S', '--json', 'obj/core_read.o']));
    const first = json.find((s: { section: string }) => s.section === 'raw_tracepoint/sched_process_fork')
      .insns[0];
    assert.deepEqual(first.source, {
      file: './c/core_read.c',
      line: 24,
      text: '  struct task_struct *task = (struct task_struct *)bpf_get_current_task();',
    });
  });

  test('-S on raw bytecode is a usage error', () => {
    const r = spawnSync(process.execPath, [BIN, 'disasm', '-S', '-'], {
      input: new Uint8Array(8),
      encoding: 'utf8',
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--source needs an ELF object/);
  });
});
