/**
 * The WebAssembly JIT: the conformance suite under the JIT (plain and blinded), the interpreter's
 * behaviours (results, errors with their pc, budget, call depth, helpers) compared engine against
 * engine, irreducible control flow, hardening (blinding, freezing), the text dump, compile cost.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isTsbpfError } from '../src/errors.js';
import { assembleConformance as asm } from '../src/isa/asm/conformance.js';
import { decode, type Insn } from '../src/isa/insn.js';
import { runConformanceDirectory } from '../src/testing/conformance.js';
import { engineOf, parseEngine, prepareProgram } from '../src/vm/engine.js';
import { type HelperFn, prepare, type RunInput } from '../src/vm/interpreter.js';
import { dumpWat, type JitOptions, JitProgram, prepareJit } from '../src/vm/jit/program.js';
import { AddressSpace } from '../src/vm/memory.js';
import { CORPORA } from './support/fixtures.js';
import { generateProgram } from './support/progen.js';

const TESTS = join(CORPORA, 'bpf_conformance', 'tests');

function outcome(run: () => { r0: bigint; insnCount: number; mem?: Uint8Array }): string {
  try {
    const r = run();
    return `r0=0x${r.r0.toString(16)} count=${r.insnCount}${r.mem ? ` mem=${Buffer.from(r.mem).toString('hex')}` : ''}`;
  } catch (e) {
    if (!isTsbpfError(e)) throw e;
    // where the allocator put a region is not part of the behaviour: the sentence, size, region and pc are
    return `${e.code}: ${e.message.replace(/(at |\[|, )0x[0-9a-f]+/g, '$10x…')} [pc ${e.details.pc}]`;
  }
}

/** Runs a program in both engines; asserts the same outcome (result or error); returns it. */
function both(insns: Insn[] | string, input: RunInput = {}, options: JitOptions = {}): string {
  const code = typeof insns === 'string' ? asm(insns) : insns;
  const want = outcome(() => {
    const p = prepare(code, options);
    try {
      return p.run(input);
    } finally {
      p.dispose?.();
    }
  });
  const got = outcome(() => {
    const p = prepareJit(code, options);
    try {
      return p.run(input);
    } finally {
      p.dispose();
    }
  });
  assert.equal(got, want, typeof insns === 'string' ? insns : 'program');
  const dispatched = outcome(() => prepareJit(code, { ...options, forceDispatch: true }).run(input));
  assert.equal(dispatched, want, 'dispatcher');
  return got;
}

describe('bpf_conformance under the JIT', () => {
  test('all 313 tests pass', () => {
    const s = runConformanceDirectory(TESTS, { engine: 'jit' });
    assert.deepEqual(
      s.results.filter((r) => !r.passed).map((r) => `${r.file}: ${r.message}`),
      [],
    );
    assert.equal(s.passed, 313);
  });
  test('all 313 tests pass with constant blinding', () => {
    const s = runConformanceDirectory(TESTS, { engine: 'jit', blind: true });
    assert.equal(s.passed, 313, s.results.filter((r) => !r.passed)[0]?.message);
  });
});

describe('the JIT behaves as the interpreter', () => {
  test('ALU edge cases', () => {
    for (const src of [
      'mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit',
      'mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit',
      'mov32 %r0, -7\nmov %r1, 0\nmod32 %r0, %r1\nexit',
      'lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1\nexit',
      'lddw %r0, 0x8000000000000000\nmov %r1, -1\nsmod %r0, %r1\nexit',
      'mov32 %r0, 0x80000000\nmov32 %r1, -1\nsdiv32 %r0, %r1\nexit',
      'mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit',
      'mov %r0, -9\nsmod32 %r0, 0\nexit',
      'mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit',
      'mov %r0, -1\nmov %r1, 33\nrsh32 %r0, %r1\nexit',
      'mov %r0, -16\narsh32 %r0, 2\nexit',
      'lddw %r0, 0x1122334455667788\nbe16 %r0\nexit',
      'lddw %r0, 0x1122334455667788\nbe32 %r0\nexit',
      'lddw %r0, 0x1122334455667788\nbe64 %r0\nexit',
      'lddw %r0, 0x1122334455667788\nle16 %r0\nexit',
      'lddw %r0, 0x1122334455667788\nneg32 %r0\nexit',
    ]) {
      both(src);
    }
  });

  test('memory: loads, stores, sign extension, atomics, mem in and out', () => {
    const mem = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xfe, 0xfd, 0xfc]);
    both('ldxw %r0, [%r1+4]\nexit', { mem });
    both('ldxdw %r0, [%r1+0]\nstxw [%r1+8], %r0\nexit', { mem });
    both('mov %r2, 5\nlock add [%r1+0], %r2\nmov %r0, 0\nexit', { mem });
    both('mov %r2, 5\nlock fetch add32 [%r1+4], %r2\nmov %r0, %r2\nexit', { mem });
    both('mov %r0, 0x04030201\nmov %r2, 9\nlock cmpxchg32 [%r1+0], %r2\nexit', { mem });
    both('stdw [%r10-8], -3\nldxdw %r0, [%r10-8]\nexit');
    both('mov %r2, %r10\nstw [%r2-4], 77\nldxw %r0, [%r10-4]\nexit');
  });

  test('out-of-bounds, NULL page, read-only: the same message and pc', () => {
    const mem = new Uint8Array(4);
    assert.match(
      both('mov %r0, 0\nldxw %r0, [%r1+2]\nexit', { mem }),
      /^runtime: pc 1: invalid read of 4 bytes/,
    );
    assert.match(both('stdw [%r10+0], 1\nmov %r0, 0\nexit'), /^runtime: pc 0: invalid write of 8 bytes/);
    assert.match(
      both('ldxdw %r0, [%r10-520]\nexit', {}, { memory: new AddressSpace() }),
      /^runtime: pc 0: invalid read/,
    );
    assert.match(both('lddw %r1, 0x123456789\nldxb %r0, [%r1]\nexit'), /outside the address space/);
    assert.match(both('mov %r1, 16\nldxb %r0, [%r1]\nexit'), /NULL page/);
    const space = new AddressSpace();
    const ro = space.allocate(16, 'ctx', { writable: false, init: new Uint8Array([7]) });
    const src = (o: string) => `lddw %r1, ${ro.base}\n${o}\nexit`;
    assert.match(both(src('ldxb %r0, [%r1]'), {}, { memory: space }), /^r0=0x7/);
    assert.match(both(src('stb [%r1+3], 1\nmov %r0, 0'), {}, { memory: space }), /read-only/);
    assert.match(
      both(src('mov %r2, 1\nlock add [%r1+0], %r2\nmov %r0, 0'), {}, { memory: space }),
      /read-only/,
    );
  });

  test('bad jumps, falling off the end, unresolved pseudo loads, kfuncs', () => {
    assert.match(both('mov %r0, 0\nja +5\nexit'), /^runtime: pc 1: jump out of range from insn 1 to 7/);
    assert.match(both('mov %r0, 0\nja +1\nlddw %r0, 5\nexit'), /jump into the middle of ldimm64 insn 2/);
    assert.match(both('mov %r0, 0\nmov %r1, 0'), /^runtime: pc 1: execution fell off the end/);
    assert.match(both('mov %r0, 3\njeq %r0, 4, +9\nexit'), /^r0=0x3/);
    const pseudo: Insn[] = [
      { code: 0x18, dst: 1, src: 1, off: 0, imm: 3, imm2: 0 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ];
    assert.match(
      both(pseudo, {}, { checkRegisters: false }),
      /pc 0: ld_imm64 with pseudo source 1 is not resolved/,
    );
    const kfunc: Insn[] = [
      { code: 0x85, dst: 0, src: 2, off: 0, imm: 5 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ];
    assert.match(both(kfunc, {}, { checkRegisters: false }), /kfunc 5/);
  });

  test('the budget: the same error at the same pc, and the same count', () => {
    const e = both('mov %r0, 0\nL: ja L\nexit', {}, { budget: 1000 });
    assert.equal(e, 'runtime: pc 1: instruction budget of 1000 exhausted [pc 1]');
    const loop = 'mov %r0, 0\nL: add %r0, 1\nmov %r1, %r0\nmul %r1, 3\njlt %r0, 1000, L\nexit';
    for (const budget of [1, 2, 3, 4, 5, 6, 7, 100, 3999, 4000, 4001, 4002, 10_000])
      both(loop, {}, { budget });
    assert.equal(both(loop), 'r0=0x3e8 count=4002');
  });

  test('bpf-to-bpf calls: frames, callee-saved registers, depth limit', () => {
    both(`
      mov %r6, 6
      stdw [%r10-8], 77
      mov %r1, 5
      call local f
      ldxdw %r3, [%r10-8]
      jne %r3, 77, bad
      jne %r6, 6, bad
      exit
    bad:
      mov %r0, -1
      exit
    f:
      mov %r6, 99
      stdw [%r10-8], 11
      mov %r0, %r1
      add %r0, 1
      exit`);
    const chain = (depth: number) => {
      let s = 'mov %r0, 0\ncall local f1\nexit\n';
      for (let i = 1; i < depth; i++) s += `f${i}:\ncall local f${i + 1}\nadd %r0, 1\nexit\n`;
      return `${s}f${depth}:\nmov %r0, 42\nexit\n`;
    };
    assert.match(both(chain(7)), /^r0=0x30 /);
    assert.match(both(chain(8)), /the call stack of 9 frames is too deep/);
    // recursion runs into the same limit
    assert.match(both('mov %r0, 0\ncall local f\nexit\nf:\ncall local f\nexit'), /too deep/);
  });

  test('helpers, stop(), callx to a helper id and to a function address', () => {
    const helpers = new Map<number, HelperFn>([
      [1, (a) => a[0] + a[1]],
      [
        2,
        (_a, vm) => {
          vm.stop(77n);
          return 0n;
        },
      ],
      [
        3,
        () => {
          throw new Error('boom');
        },
      ],
      [4, () => 1 as unknown as bigint],
      [6, (a, vm) => BigInt(vm.memory.readU32(a[0]))],
    ]);
    const o = { helpers };
    assert.match(both('mov %r1, 2\nmov %r2, 3\ncall 1\nexit', {}, o), /^r0=0x5 /);
    assert.match(both('mov %r1, -1\nmov %r2, 3\ncall 1\nexit', {}, o), /^r0=0x2 /);
    assert.equal(both('call 2\nmov %r0, 1\nexit', {}, o), 'r0=0x4d count=1');
    assert.match(both('mov %r1, 4\nmov %r2, 4\nmov %r5, 1\ncall %r5\nexit', {}, o), /^r0=0x8 /);
    assert.match(both('call 9\nexit', {}, o), /pc 0: invalid func unknown#9/);
    assert.match(both('mov %r0, 0\ncall 3\nexit', {}, o), /pc 1: helper 3 failed: boom/);
    assert.match(both('call 4\nexit', {}, o), /pc 0: helper 4 returned number/);
    assert.match(both('stw [%r10-4], 1234\nmov %r1, %r10\nadd %r1, -4\ncall 6\nexit', {}, o), /^r0=0x4d2 /);
    const insns: Insn[] = [
      { code: 0x18, dst: 2, src: 4, off: 0, imm: 4, imm2: 0 },
      { code: 0xb7, dst: 1, src: 0, off: 0, imm: 20 },
      { code: 0x8d, dst: 2, src: 0, off: 0, imm: 0 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
      { code: 0x05, dst: 0, src: 0, off: 0, imm: 0 },
      { code: 0xbf, dst: 0, src: 1, off: 0, imm: 0 },
      { code: 0x07, dst: 0, src: 0, off: 0, imm: 1 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ];
    assert.match(both(insns), /^r0=0x15 /);
    assert.match(both('mov %r5, 12345\ncall %r5\nexit'), /pc 1: callx to 0x3039, which is neither/);
  });

  test('legacy packet loads (LD_ABS / LD_IND)', () => {
    const pkt = new Uint8Array([0x12, 0x34, 0x56, 0x78, 0x9a]);
    const ldabs = (sz: number, imm: number): Insn => ({ code: 0x20 | sz, dst: 0, src: 0, off: 0, imm });
    const exit: Insn = { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 };
    const mov = (dst: number, imm: number): Insn => ({ code: 0xb7, dst, src: 0, off: 0, imm });
    assert.match(both([ldabs(0x00, 0), exit], { mem: pkt }), /^r0=0x12345678 /);
    assert.match(both([ldabs(0x08, 1), exit], { mem: pkt }), /^r0=0x3456 /);
    assert.match(both([ldabs(0x10, 4), exit], { mem: pkt }), /^r0=0x9a /);
    assert.match(
      both([mov(3, 2), { code: 0x48, dst: 0, src: 3, off: 0, imm: 1 }, exit], { mem: pkt }),
      /^r0=0x789a /,
    );
    assert.equal(both([mov(0, 7), ldabs(0x00, 2), mov(0, 9), exit], { mem: pkt }).split(' ')[0], 'r0=0x0');
    assert.equal(both([mov(0, 7), ldabs(0x10, 0), mov(0, 9), exit]), 'r0=0x0 count=2');
  });

  test('a context already in VM memory (input.r1) and a packet elsewhere (input.packet)', () => {
    const space = new AddressSpace();
    const ctx = space.allocate(8, 'ctx', { init: new Uint8Array([5, 0, 0, 0]) });
    const pkt = space.allocate(4, 'pkt', { init: new Uint8Array([0xaa, 0xbb, 0xcc, 0xdd]) });
    assert.match(
      both('ldxw %r0, [%r1]\nadd %r0, %r2\nexit', { r1: BigInt(ctx.base) }, { memory: space }),
      /^r0=0x5 /,
    );
    const ldh: Insn[] = [
      { code: 0x28, dst: 0, src: 0, off: 0, imm: 2 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ];
    const packet = { base: pkt.base, length: 4 };
    assert.match(both(ldh, { r1: BigInt(ctx.base), packet }, { memory: space }), /^r0=0xccdd /);
  });

  test('irreducible control flow uses the dispatcher and computes the same', () => {
    // two entries into the cycle A <-> B: from the top into A, or into B
    const src = `
      mov %r0, 0
      mov %r1, 10
      jgt %r1, 5, B
    A:
      add %r0, 3
      sub %r1, 1
      jeq %r1, 0, out
    B:
      add %r0, 5
      sub %r1, 1
      jne %r1, 0, A
    out:
      exit`;
    assert.match(both(src), /^r0=0x28 /);
    const p = prepareJit(asm(src));
    assert.equal(p.stats.dispatch, 1);
    const loop = prepareJit(asm('mov %r0, 0\nL: add %r0, 1\njlt %r0, 10, L\nexit'));
    assert.equal(loop.stats.dispatch, 0);
    assert.equal(loop.stats.loops, 1);
  });

  test('random bytes and plausible random instructions: identical outcomes', () => {
    let a = 0x5eed;
    const rnd = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const opcodes = [
      0x07, 0x0f, 0x14, 0x17, 0x1f, 0x27, 0x2f, 0x34, 0x37, 0x3c, 0x3f, 0x4f, 0x5f, 0x67, 0x6c, 0x77, 0x7c,
      0x84, 0x87, 0x94, 0x97, 0x9c, 0x9f, 0xa4, 0xb4, 0xb7, 0xbc, 0xbf, 0xc7, 0xcf, 0xd4, 0xdc, 0xd7, 0x05,
      0x06, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x45, 0x55, 0x65, 0xa5, 0xb5, 0xd5, 0x16, 0x26, 0x56, 0x66, 0x85,
      0x8d, 0x95, 0x18, 0x61, 0x69, 0x71, 0x79, 0x81, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x7b, 0xc3, 0xdb, 0x20,
      0x28, 0x30, 0x40, 0x48,
    ];
    for (let i = 0; i < 600; i++) {
      const n = 1 + Math.floor(rnd() * 10);
      const bytes = new Uint8Array(n * 8);
      for (let k = 0; k < n; k++) {
        const at = k * 8;
        bytes[at] = opcodes[Math.floor(rnd() * opcodes.length)];
        bytes[at + 1] = Math.floor(rnd() * 11) | (Math.floor(rnd() * 11) << 4);
        const off = rnd() < 0.5 ? Math.floor(rnd() * 7) - 3 : -8 * (1 + Math.floor(rnd() * 4));
        bytes[at + 2] = off & 0xff;
        bytes[at + 3] = (off >> 8) & 0xff;
        const imm = rnd() < 0.6 ? Math.floor(rnd() * 64) - 8 : Math.floor(rnd() * 2 ** 32);
        for (let j = 0; j < 4; j++) bytes[at + 4 + j] = (imm >>> (8 * j)) & 0xff;
        if (bytes[at] === 0xdb || bytes[at] === 0xc3) bytes[at + 4] = [0, 1, 0x40, 0x41, 0xe1, 0xf1][i % 6];
      }
      if (i % 2 === 0) bytes.set([0x95, 0, 0, 0, 0, 0, 0, 0], bytes.length - 8);
      const mem = new Uint8Array(Math.floor(rnd() * 32));
      const options = { budget: 500, checkRegisters: true, helpers: new Map([[1, () => 1n]]) };
      const insns = decode(bytes);
      const want = outcome(() => prepare(insns, options).run({ mem }));
      const got = outcome(() => {
        const p = prepareJit(insns, options);
        try {
          return p.run({ mem });
        } finally {
          p.dispose();
        }
      });
      assert.equal(got, want, Buffer.from(bytes).toString('hex'));
    }
  });
});

describe('engine switch, hardening, dump, cost', () => {
  test('prepareProgram picks the engine; the JIT is the default', () => {
    const insns = asm('mov %r0, 5\nexit');
    assert.equal(engineOf(prepareProgram(insns)), 'jit');
    assert.equal(engineOf(prepareProgram(insns, { engine: 'interpreter' })), 'interpreter');
    const j = prepareProgram(insns, { engine: 'jit' });
    assert.equal(engineOf(j), 'jit');
    assert.equal(j.run().r0, 5n);
    assert.equal(parseEngine('interp'), 'interpreter');
    assert.equal(parseEngine('JIT'), 'jit');
    assert.throws(() => parseEngine('llvm'), /unknown engine/);
    assert.throws(
      () => prepareProgram(asm('or %r0, %r10\nexit'), { engine: 'jit' }),
      (e: unknown) => isTsbpfError(e) && e.code === 'decode' && /pc 0: R0 !read_ok/.test(e.message),
    );
  });

  test('constant blinding: same results, the immediates are not in the code', () => {
    const src =
      'mov %r0, 0x5a5a1234\nlddw %r1, 0x7e7e7e7e3c3c3c3c\nadd %r0, %r1\nxor32 %r0, 0x13572468\nexit';
    const plain = prepareJit(asm(src));
    const blind = prepareJit(asm(src), { blind: true });
    assert.equal(blind.run().r0, plain.run().r0);
    const has = (bytes: Uint8Array, needle: number[]) => Buffer.from(bytes).includes(Buffer.from(needle));
    // signed LEB128 of 0x5a5a1234 (as i64.const)
    const leb = [0xb4, 0xa4, 0xe8, 0xd2, 0x05];
    assert.ok(has(plain.wasm(), leb));
    assert.ok(!has(blind.wasm(), leb));
    const other = prepareJit(asm(src), { blind: true });
    assert.notDeepEqual(Buffer.from(other.wasm()), Buffer.from(blind.wasm()), 'a fresh key per program');
  });

  test('the prepared program and its bytecode are frozen; the instance is private', () => {
    const insns = asm('mov %r0, 1\nexit');
    const p = prepareJit(insns);
    assert.ok(Object.isFrozen(p));
    assert.ok(Object.isFrozen(p.source));
    assert.ok(Object.isFrozen(p.source[0]));
    assert.throws(() => {
      (p.source[0] as { imm: number }).imm = 2;
    }, TypeError);
    assert.deepEqual(Object.keys(p).sort(), ['source', 'stats']);
    insns[0].imm = 9; // the caller's array is not the program's
    assert.equal(p.run().r0, 1n);
    const w = p.wasm();
    w.fill(0);
    assert.equal(p.run().r0, 1n);
  });

  test('dumpWat shows the functions and the eBPF instructions', () => {
    const p = prepareJit(
      asm('mov %r0, 0\nL: add %r0, 1\ncall local f\njlt %r0, 10, L\nexit\nf:\nmov %r0, 3\nexit'),
    );
    const wat = dumpWat(p);
    assert.match(wat, /\(func \$prog /);
    assert.match(wat, /\(func \$subprog_5 /);
    assert.match(wat, /;; +1: r0 \+= 0x1/);
    assert.match(wat, /\bloop\b/);
    assert.match(wat, /call \$subprog_5/);
    assert.throws(() => dumpWat(prepare(asm('mov %r0, 0\nexit'))), /JIT engine/);
  });

  test('stack frames are allocated once, reused, and freed by dispose()', () => {
    const space = new AddressSpace();
    const before = space.listRegions().length;
    const p = prepareJit(
      asm('ldxb %r6, [%r1]\ncall local f\nmov %r0, %r6\nexit\nf:\nstdw [%r10-8], 1\nmov %r0, 0\nexit'),
      { memory: space },
    );
    const during = space.listRegions().length;
    assert.equal(during, before + 9); // 8 stack frames and the access-site cache
    for (let i = 0; i < 300; i++)
      assert.equal(p.run({ mem: new Uint8Array([i & 0xff]) }).r0, BigInt(i & 0xff));
    assert.equal(space.listRegions().length, during);
    p.dispose();
    assert.equal(space.listRegions().length, before);
    assert.throws(() => p.run(), /disposed/);
  });

  test('stack contents do not leak from one run into the next', () => {
    const p = prepareJit(asm('ldxdw %r0, [%r10-8]\nstdw [%r10-8], 99\nexit'), { checkRegisters: false });
    assert.equal(p.run().r0, 0n);
    assert.equal(p.run().r0, 0n);
  });

  test('a program of ~13,000 instructions compiles well under a second', () => {
    const insns = generateProgram(42, { size: 10_000 }).insns;
    const t = performance.now();
    const p = prepareJit(insns);
    const ms = performance.now() - t;
    assert.ok(p instanceof JitProgram);
    assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
    assert.equal(p.run().r0, prepare(insns).run().r0);
    p.dispose();
  });
});
