import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isTsbpfError } from '../src/errors.js';
import { assembleConformance } from '../src/isa/asm/conformance.js';
import { encode } from '../src/isa/insn.js';
import { parseConformanceData } from '../src/testing/conformance.js';
import { ENGINES, prepareProgram } from '../src/vm/engine.js';
import { CORPORA } from './support/fixtures.js';

const TESTS = join(CORPORA, 'bpf_conformance', 'tests');
const sources = readdirSync(TESTS)
  .filter((n) => n.endsWith('.data'))
  .sort()
  .map((n) => ({ name: n, test: parseConformanceData(readFileSync(join(TESTS, n), 'utf8')) }));

const bytes = (src: string) => Buffer.from(encode(assembleConformance(src))).toString('hex');

function asmError(src: string, line: number, column: number, pattern: RegExp): void {
  assert.throws(
    () => assembleConformance(src),
    (e: unknown) => {
      assert.ok(isTsbpfError(e), String(e));
      assert.equal(e.code, 'asm');
      assert.deepEqual(e.details.position, { line, column }, e.message);
      assert.match(e.message, new RegExp(`^line ${line}, column ${column}: `));
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('conformance assembler: encodings', () => {
  test('every asm section of the suite assembles', () => {
    for (const { name, test: t } of sources) {
      assert.ok(t.asm !== undefined, name);
      assert.doesNotThrow(() => assembleConformance(t.asm as string), name);
    }
  });

  test('asm and raw agree where a file has both', () => {
    const both = sources.filter((s) => s.test.raw && s.test.asm);
    assert.ok(both.length >= 1);
    for (const { test: t } of both) {
      assert.equal(bytes(t.asm as string), Buffer.from(t.raw as Uint8Array).toString('hex'));
    }
  });

  test('instruction encodings', () => {
    assert.equal(bytes('mov32 %r0, 0'), 'b400000000000000');
    assert.equal(bytes('add %r0, %r1'), '0f10000000000000');
    assert.equal(bytes('ldxb %r0, [%r1+2]'), '7110020000000000');
    assert.equal(bytes('stxdw [%r10-8], %r1'), '7b1af8ff00000000');
    assert.equal(bytes('lddw %r0, 0x1122334455667788'), '18000000887766550000000044332211');
    assert.equal(bytes('mov32 %r0, 0xffffffff'), 'b4000000ffffffff');
    assert.equal(bytes('mov %r0, -1'), 'b7000000ffffffff');
    assert.equal(bytes('sdiv32 %r0, 3'), '3400010003000000');
    assert.equal(bytes('smod %r0, %r1'), '9f10010000000000');
    assert.equal(bytes('movsx1664 %r0, %r1'), 'bf10100000000000');
    assert.equal(bytes('ldxsw %r0, [%r1]'), '8110000000000000');
    assert.equal(bytes('be16 %r0'), 'dc00000010000000');
    assert.equal(bytes('le32 %r0'), 'd400000020000000');
    assert.equal(bytes('bswap64 %r0'), 'd700000040000000');
    assert.equal(bytes('swap16 %r0'), 'd700000010000000');
    assert.equal(bytes('neg32 %r3'), '8403000000000000');
    assert.equal(bytes('call 5'), '8500000005000000');
    assert.equal(bytes('call %r2'), '8d02000000000000');
    assert.equal(bytes('lock add [%r1+0], %r2'), 'db21000000000000');
    assert.equal(bytes('lock fetch add32 [%r1+4], %r2'), 'c321040001000000');
    assert.equal(bytes('lock xchg [%r10-8], %r1'), 'db1af8ffe1000000');
    assert.equal(bytes('lock cmpxchg32 [%r10-8], %r1'), 'c31af8fff1000000');
    assert.equal(bytes('exit'), '9500000000000000');
  });

  test('labels, relative offsets, exit label, local calls, ja32', () => {
    assert.equal(
      bytes('ja L\nmov %r0, 1\nL:\nexit'),
      '05000100000000009400000001000000'.replace('9400000001000000', 'b7000000010000009500000000000000'),
    );
    assert.equal(bytes('jeq %r1, 5, +2'), '1501020005000000');
    assert.equal(bytes('jne %r1, %r2, -1'), '5d21ffff00000000');
    assert.equal(
      bytes('jne %r0, 0, exit\nmov %r0, 1\nexit'),
      '5500010000000000b7000000010000009500000000000000',
    );
    assert.equal(
      bytes('call local f\nexit\nf:\nexit'),
      '85100000010000009500000000000000' + '9500000000000000',
    );
    assert.equal(bytes('ja32 L\nL: exit'), '06000000000000009500000000000000');
    // an LD_IMM64 between a jump and its label counts two slots
    assert.equal(bytes('ja L\nlddw %r0, 1\nL: exit').slice(0, 16), '0500020000000000');
  });
});

describe('conformance assembler: errors carry line and column', () => {
  test('unknown mnemonic', () => asmError('exit\n  ldxq %r0, %r1', 2, 3, /unknown mnemonic 'ldxq'/));
  test('bad register', () => asmError('or %r0, %r50', 1, 9, /invalid register '%r50'/));
  test('not a register', () => asmError('mov r0, 1', 1, 5, /expected a register/));
  test('immediate out of range (decimal)', () =>
    asmError('mov32 %r0, 2147483648', 1, 12, /does not fit in 32 bits/));
  test('immediate out of range (hex)', () =>
    asmError('mov32 %r0, 0x100000000', 1, 12, /does not fit in 32 bits/));
  test('uint32 only in hex', () => asmError('mov32 %r0, 4294967295', 1, 12, /does not fit in 32 bits/));
  test('offset out of range', () =>
    asmError('ldxb %r0, [%r1+0x10000]', 1, 16, /offset \+0x10000 does not fit in 16 bits/));
  test('jump offset out of range', () => asmError('ja +40000', 1, 4, /does not fit in 16 bits/));
  test('memory operand expected', () => asmError('ldxb %r0, %r1', 1, 11, /expected a memory operand/));
  test('operand count', () => asmError('lddw %r0', 1, 9, /'lddw' takes 2 operands, not 1/));
  test('too many operands', () => asmError('exit %r0', 1, 6, /'exit' takes 0 operands, not 1/));
  test('unknown label', () =>
    asmError('mov %r0, 0\n\nja NOT_A_LABEL\nexit', 3, 4, /unknown label 'NOT_A_LABEL'/));
  test('duplicate label', () => asmError('L:\nexit\nL:\nexit', 3, 1, /label 'L' is already defined/));
  test('lock with no operation', () => asmError('lock', 1, 5, /'lock' needs an operation/));
  test('lock with too few operands', () =>
    asmError('lock or [%r10-8]', 1, 17, /'lock or' takes 2 operands, not 1/));
  test('unknown atomic op', () => asmError('lock sub [%r1+0], %r2', 1, 6, /unknown atomic operation 'sub'/));
  test('unknown directive', () => asmError('.section foo', 1, 1, /unknown directive '.section'/));
  test('unknown directive (--)', () => asmError('  -- Unknown directive', 1, 3, /unknown directive '--'/));
  test('bad call kind', () => asmError('call far 3', 1, 6, /unknown call kind 'far'/));
  test('bad number', () => asmError('mov %r0, 12abc', 1, 10, /expected a number/));
  test('comments are ignored', () => assert.equal(bytes('# hello\nexit # bye'), '9500000000000000'));
});

describe('fuzz: mutated conformance sources only ever fail with TsbpfError', () => {
  test('mutations', () => {
    let a = 12345;
    const rnd = () => {
      a = (Math.imul(a, 1103515245) + 12345) >>> 0;
      return a / 4294967296;
    };
    const alphabet = '%r0123456789abcdefx[]+-,: #\nLlockfetchmovexitja.';
    let assembled = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const base = sources[Math.floor(rnd() * sources.length)].test.asm as string;
      let s = base;
      const edits = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(rnd() * (s.length + 1));
        const kind = rnd();
        if (kind < 0.35) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rnd() * 3));
        else if (kind < 0.7) s = s.slice(0, at) + alphabet[Math.floor(rnd() * alphabet.length)] + s.slice(at);
        else if (kind < 0.85) {
          const lines = s.split('\n');
          const x = Math.floor(rnd() * lines.length);
          const y = Math.floor(rnd() * lines.length);
          [lines[x], lines[y]] = [lines[y], lines[x]];
          s = lines.join('\n');
        } else s = s.slice(0, at) + String(Math.floor(rnd() * 2 ** 40) - 2 ** 39) + s.slice(at);
      }
      try {
        const insns = assembleConformance(s);
        assembled++;
        for (const engine of ENGINES)
          prepareProgram(insns, { budget: 5000, engine }).run({ mem: new Uint8Array(16) });
      } catch (e) {
        if (!isTsbpfError(e)) assert.fail(`non-TsbpfError for:\n${s}\n${(e as Error)?.stack ?? e}`);
        refused++;
      }
    }
    assert.ok(assembled > 100 && refused > 100, `${assembled} assembled, ${refused} refused`);
  });
});
