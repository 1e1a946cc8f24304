import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isTsbpfError, type TsbpfError } from '../src/errors.js';
import { assembleConformance as asm } from '../src/isa/asm/conformance.js';
import { decode, encode, type Insn } from '../src/isa/insn.js';
import { ENGINES, type EngineOptions, prepareProgram } from '../src/vm/engine.js';
import type { HelperFn, RunInput } from '../src/vm/interpreter.js';
import { AddressSpace } from '../src/vm/memory.js';

for (const engine of ENGINES) {
  // every test below runs under each engine (the interpreter is the reference; the JIT must agree)
  const prepare = (insns: readonly Insn[], options: EngineOptions = {}) =>
    prepareProgram(insns, { ...options, engine });
  const runProgram = (insns: readonly Insn[], input?: RunInput, options: EngineOptions = {}) =>
    prepare(insns, options).run(input);
  const run = (src: string, mem?: Uint8Array, options = {}) => runProgram(asm(src), { mem }, options).r0;
  const u64 = (v: bigint) => BigInt.asUintN(64, v);

  function runtimeError(fn: () => unknown, pattern: RegExp): TsbpfError {
    try {
      fn();
    } catch (e) {
      assert.ok(isTsbpfError(e), `expected a TsbpfError, got ${String(e)}`);
      assert.match(e.message, pattern);
      return e;
    }
    assert.fail(`expected an error matching ${pattern}`);
  }

  /** A deterministic PRNG (mulberry32). */
  function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  describe(`ALU semantics (RFC 9669 / Linux) [${engine}]`, () => {
    test('division and modulo by zero', () => {
      assert.equal(run('mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit'), 0n);
      assert.equal(run('mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit'), 7n);
      assert.equal(run('mov32 %r0, 7\nmov32 %r1, 0\ndiv32 %r0, %r1\nexit'), 0n);
      // 32-bit mod by zero keeps dst's low 32 bits, zero-extended (the kernel's behaviour)
      assert.equal(run('lddw %r0, 0x1234567800000005\nmov %r1, 0\nmod32 %r0, %r1\nexit'), 5n);
      assert.equal(run('lddw %r0, 0xffffffff00000005\nmod32 %r0, 0\nexit'), 5n);
      assert.equal(run('mov %r0, 9\ndiv %r0, 0\nexit'), 0n);
      assert.equal(run('mov %r0, -9\nsdiv %r0, 0\nexit'), 0n);
      assert.equal(run('mov %r0, -9\nsmod %r0, 0\nexit'), u64(-9n));
      assert.equal(run('mov32 %r0, -9\nsmod32 %r0, 0\nexit'), 0xfffffff7n);
    });

    test('signed division overflow', () => {
      assert.equal(run('lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit'), 0x8000000000000000n);
      assert.equal(run('lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit'), 0n);
      assert.equal(run('mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit'), 0x80000000n);
      assert.equal(run('mov32 %r0, 0x80000000\nsmod32 %r0, -1\nexit'), 0n);
      assert.equal(run('mov %r0, -7\nsdiv %r0, 2\nexit'), u64(-3n));
      assert.equal(run('mov %r0, -7\nsmod %r0, 2\nexit'), u64(-1n));
      assert.equal(run('mov %r0, 7\nsmod %r0, -2\nexit'), 1n);
    });

    test('shifts are masked', () => {
      assert.equal(run('mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit'), 2n);
      assert.equal(run('mov %r0, 1\nmov %r1, 33\nlsh32 %r0, %r1\nexit'), 2n);
      assert.equal(run('mov %r0, 1\nlsh %r0, 63\nexit'), 0x8000000000000000n);
      assert.equal(run('mov %r0, -1\nrsh %r0, 32\nexit'), 0xffffffffn);
      assert.equal(run('mov %r0, -16\narsh %r0, 2\nexit'), u64(-4n));
      assert.equal(run('mov %r0, -16\narsh32 %r0, 2\nexit'), 0xfffffffcn);
      assert.equal(run('lddw %r0, 0x8000000000000000\narsh %r0, 63\nexit'), u64(-1n));
    });

    test('32-bit results are zero-extended', () => {
      assert.equal(run('mov %r0, -1\nadd32 %r0, 1\nexit'), 0n);
      assert.equal(run('mov %r0, -1\nmov32 %r0, %r0\nexit'), 0xffffffffn);
      assert.equal(run('mov %r0, 0x80000000\nneg32 %r0\nexit'), 0x80000000n);
      assert.equal(run('mov %r0, 3\nneg %r0\nexit'), u64(-3n));
    });

    test('movsx', () => {
      assert.equal(run('mov %r1, 0x80\nmovsx864 %r0, %r1\nexit'), u64(-128n));
      assert.equal(run('mov %r1, 0x80\nmovsx832 %r0, %r1\nexit'), 0xffffff80n);
      assert.equal(run('mov %r1, 0x8000\nmovsx1664 %r0, %r1\nexit'), u64(-32768n));
      assert.equal(run('mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit'), 0xffff8000n);
      assert.equal(run('mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit'), 0xffffffff80000000n);
    });

    test('byte swaps', () => {
      const v = 'lddw %r0, 0x0102030405060708\n';
      assert.equal(run(`${v}be16 %r0\nexit`), 0x0807n);
      assert.equal(run(`${v}be32 %r0\nexit`), 0x08070605n);
      assert.equal(run(`${v}be64 %r0\nexit`), 0x0807060504030201n);
      assert.equal(run(`${v}le16 %r0\nexit`), 0x0708n);
      assert.equal(run(`${v}le32 %r0\nexit`), 0x05060708n);
      assert.equal(run(`${v}le64 %r0\nexit`), 0x0102030405060708n);
      assert.equal(run(`${v}bswap16 %r0\nexit`), 0x0807n);
      assert.equal(run(`${v}bswap64 %r0\nexit`), 0x0807060504030201n);
    });

    test('random operands agree with a BigInt model', () => {
      const rnd = prng(42);
      const edge = [
        0n,
        1n,
        2n,
        0x7fffffffn,
        0x80000000n,
        0xffffffffn,
        0x100000000n,
        0x7fffffffffffffffn,
        0x8000000000000000n,
        u64(-1n),
        u64(-2n),
      ];
      const r64 = () =>
        rnd() < 0.3
          ? edge[Math.floor(rnd() * edge.length)]
          : (BigInt(Math.floor(rnd() * 2 ** 32)) << 32n) | BigInt(Math.floor(rnd() * 2 ** 32));
      const s64 = (v: bigint) => BigInt.asIntN(64, v);
      const s32 = (v: bigint) => BigInt.asIntN(32, v);
      const u32 = (v: bigint) => BigInt.asUintN(32, v);
      const model64: Record<string, (a: bigint, b: bigint) => bigint> = {
        add: (a, b) => a + b,
        sub: (a, b) => a - b,
        mul: (a, b) => a * b,
        div: (a, b) => (b === 0n ? 0n : a / b),
        mod: (a, b) => (b === 0n ? a : a % b),
        sdiv: (a, b) => (b === 0n ? 0n : s64(a) / s64(b)),
        smod: (a, b) => (b === 0n ? a : s64(a) % s64(b)),
        or: (a, b) => a | b,
        and: (a, b) => a & b,
        xor: (a, b) => a ^ b,
        lsh: (a, b) => a << (b & 63n),
        rsh: (a, b) => a >> (b & 63n),
        arsh: (a, b) => s64(a) >> (b & 63n),
      };
      const model32: Record<string, (a: bigint, b: bigint) => bigint> = {
        add: (a, b) => a + b,
        sub: (a, b) => a - b,
        mul: (a, b) => a * b,
        div: (a, b) => (u32(b) === 0n ? 0n : u32(a) / u32(b)),
        mod: (a, b) => (u32(b) === 0n ? a : u32(a) % u32(b)),
        sdiv: (a, b) => (u32(b) === 0n ? 0n : s32(a) / s32(b)),
        smod: (a, b) => (u32(b) === 0n ? a : s32(a) % s32(b)),
        or: (a, b) => a | b,
        and: (a, b) => a & b,
        xor: (a, b) => a ^ b,
        lsh: (a, b) => u32(a) << (b & 31n),
        rsh: (a, b) => u32(a) >> (b & 31n),
        arsh: (a, b) => s32(a) >> (b & 31n),
      };
      for (let i = 0; i < 40; i++) {
        const a = r64();
        const b = r64();
        for (const [name, f] of Object.entries(model64)) {
          const got = run(
            `lddw %r0, 0x${a.toString(16)}\nlddw %r1, 0x${b.toString(16)}\n${name} %r0, %r1\nexit`,
          );
          assert.equal(got, u64(f(a, b)), `${name} 0x${a.toString(16)}, 0x${b.toString(16)}`);
        }
        for (const [name, f] of Object.entries(model32)) {
          const got = run(
            `lddw %r0, 0x${a.toString(16)}\nlddw %r1, 0x${b.toString(16)}\n${name}32 %r0, %r1\nexit`,
          );
          assert.equal(got, u32(f(a, b)), `${name}32 0x${a.toString(16)}, 0x${b.toString(16)}`);
        }
        const conds64: Record<string, (x: bigint, y: bigint) => boolean> = {
          jeq: (x, y) => x === y,
          jne: (x, y) => x !== y,
          jgt: (x, y) => x > y,
          jge: (x, y) => x >= y,
          jlt: (x, y) => x < y,
          jle: (x, y) => x <= y,
          jset: (x, y) => (x & y) !== 0n,
          jsgt: (x, y) => s64(x) > s64(y),
          jsge: (x, y) => s64(x) >= s64(y),
          jslt: (x, y) => s64(x) < s64(y),
          jsle: (x, y) => s64(x) <= s64(y),
        };
        const bb = rnd() < 0.3 ? a : b;
        for (const [name, f] of Object.entries(conds64)) {
          const prog = (j: string) =>
            `lddw %r2, 0x${a.toString(16)}\nlddw %r3, 0x${bb.toString(16)}\nmov %r0, 1\n${j} %r2, %r3, +1\nmov %r0, 0\nexit`;
          assert.equal(run(prog(name)), f(a, bb) ? 1n : 0n, `${name} ${a} ${bb}`);
          const f32 = name.startsWith('js') ? f(u64(s32(a)), u64(s32(bb))) : f(u32(a), u32(bb));
          assert.equal(run(prog(`${name}32`)), f32 ? 1n : 0n, `${name}32 ${a} ${bb}`);
        }
      }
    });
  });

  describe(`memory, atomics, calls [${engine}]`, () => {
    test('loads and stores of every size, sign-extending loads', () => {
      const mem = new Uint8Array([0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
      assert.equal(run('ldxb %r0, [%r1]\nexit', mem), 0x88n);
      assert.equal(run('ldxh %r0, [%r1]\nexit', mem), 0x9988n);
      assert.equal(run('ldxw %r0, [%r1]\nexit', mem), 0xbbaa9988n);
      assert.equal(run('ldxdw %r0, [%r1]\nexit', mem), 0xffeeddccbbaa9988n);
      assert.equal(run('ldxsb %r0, [%r1]\nexit', mem), u64(-0x78n));
      assert.equal(run('ldxsh %r0, [%r1]\nexit', mem), u64(-0x6678n));
      assert.equal(run('ldxsw %r0, [%r1]\nexit', mem), 0xffffffffbbaa9988n);
      assert.equal(run('stdw [%r10-8], -2\nldxdw %r0, [%r10-8]\nexit'), u64(-2n));
      const out = runProgram(asm('stw [%r1+4], 0x11223344\nmov %r0, 0\nexit'), { mem });
      assert.deepEqual([...(out.mem as Uint8Array)], [0x88, 0x99, 0xaa, 0xbb, 0x44, 0x33, 0x22, 0x11]);
      assert.equal(run('mov %r0, %r2\nexit', mem), 8n);
      assert.equal(run('mov %r0, %r1\nexit'), 0n);
    });

    test('atomics', () => {
      const pre = 'lddw %r1, 0x100000001\nstxdw [%r10-8], %r1\n';
      assert.equal(
        run(`${pre}mov %r2, 5\nlock fetch add [%r10-8], %r2\nldxdw %r0, [%r10-8]\nsub %r0, %r2\nexit`),
        5n,
      );
      assert.equal(
        run(`${pre}mov %r2, -1\nlock add32 [%r10-8], %r2\nldxdw %r0, [%r10-8]\nexit`),
        0x100000000n,
      );
      assert.equal(run(`${pre}mov %r2, 6\nlock fetch or32 [%r10-8], %r2\nmov %r0, %r2\nexit`), 1n);
      assert.equal(
        run(`${pre}mov %r2, 6\nlock xchg [%r10-8], %r2\nldxdw %r0, [%r10-8]\nadd %r0, %r2\nexit`),
        0x100000007n,
      );
      // cmpxchg: success writes src, r0 = old
      assert.equal(
        run(
          `${pre}lddw %r0, 0x100000001\nmov %r2, 9\nlock cmpxchg [%r10-8], %r2\nldxdw %r3, [%r10-8]\nadd %r0, %r3\nexit`,
        ),
        0x10000000an,
      );
      // failure leaves memory, r0 = old
      assert.equal(
        run(
          `${pre}mov %r0, 1\nmov %r2, 9\nlock cmpxchg [%r10-8], %r2\nldxdw %r3, [%r10-8]\nsub %r0, %r3\nexit`,
        ),
        0n,
      );
      // 32-bit cmpxchg compares the low 32 bits of r0
      assert.equal(
        run(
          `${pre}lddw %r0, 0xff00000001\nmov %r2, 9\nlock cmpxchg32 [%r10-8], %r2\nldxdw %r0, [%r10-8]\nexit`,
        ),
        0x100000009n,
      );
    });

    test('bpf-to-bpf calls: r6-r9 and frames are the caller’s', () => {
      const src = `
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
        exit`;
      assert.equal(run(src), 6n);
    });

    test('calls deeper than 8 frames are refused', () => {
      const chain = (depth: number) => {
        let s = 'mov %r0, 0\ncall local f1\nexit\n';
        for (let i = 1; i < depth; i++) s += `f${i}:\ncall local f${i + 1}\nadd %r0, 1\nexit\n`;
        s += `f${depth}:\nmov %r0, 42\nexit\n`;
        return s;
      };
      assert.equal(run(chain(7)), 48n); // 8 frames
      runtimeError(() => run(chain(8)), /pc \d+: the call stack of 9 frames is too deep/);
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
      ]);
      assert.equal(run('mov %r1, 2\nmov %r2, 3\ncall 1\nexit', undefined, { helpers }), 5n);
      assert.equal(run('call 2\nmov %r0, 1\nexit', undefined, { helpers }), 77n);
      assert.equal(run('mov %r1, 4\nmov %r2, 4\nmov %r5, 1\ncall %r5\nexit', undefined, { helpers }), 8n);
      runtimeError(() => run('call 9\nexit', undefined, { helpers }), /pc 0: invalid func unknown#9/);
      runtimeError(
        () => run('mov %r0, 0\ncall 3\nexit', undefined, { helpers }),
        /pc 1: helper 3 failed: boom/,
      );
      // LD_IMM64 src=PSEUDO_FUNC makes a function address; callx calls it.
      const insns: Insn[] = [
        { code: 0x18, dst: 2, src: 4, off: 0, imm: 4, imm2: 0 }, // r2 = &f (pc 0 + 1 + 4 = 5)
        { code: 0xb7, dst: 1, src: 0, off: 0, imm: 20 },
        { code: 0x8d, dst: 2, src: 0, off: 0, imm: 0 }, // callx r2
        { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
        { code: 0x05, dst: 0, src: 0, off: 0, imm: 0 }, // pad (pc 4)
        { code: 0xbf, dst: 0, src: 1, off: 0, imm: 0 }, // f: r0 = r1 (pc 5)
        { code: 0x07, dst: 0, src: 0, off: 0, imm: 1 },
        { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
      ];
      assert.equal(runProgram(insns).r0, 21n);
      runtimeError(() => run('mov %r5, 12345\ncall %r5\nexit'), /pc 1: callx to 0x3039, which is neither/);
    });

    test('legacy packet loads (LD_ABS / LD_IND)', () => {
      const pkt = new Uint8Array([0x12, 0x34, 0x56, 0x78, 0x9a]);
      const ldabs = (sz: number, imm: number): Insn => ({ code: 0x20 | sz, dst: 0, src: 0, off: 0, imm });
      const exit: Insn = { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 };
      const mov = (dst: number, imm: number): Insn => ({ code: 0xb7, dst, src: 0, off: 0, imm });
      assert.equal(runProgram([ldabs(0x00, 0), exit], { mem: pkt }).r0, 0x12345678n);
      assert.equal(runProgram([ldabs(0x08, 1), exit], { mem: pkt }).r0, 0x3456n);
      assert.equal(runProgram([ldabs(0x10, 4), exit], { mem: pkt }).r0, 0x9an);
      assert.equal(
        runProgram([mov(3, 2), { code: 0x48, dst: 0, src: 3, off: 0, imm: 1 }, exit], { mem: pkt }).r0,
        0x789an,
      );
      // out of range: the program ends with r0 = 0
      assert.equal(runProgram([mov(0, 7), ldabs(0x00, 2), mov(0, 9), exit], { mem: pkt }).r0, 0n);
      assert.equal(runProgram([mov(0, 7), ldabs(0x10, 0), mov(0, 9), exit]).r0, 0n);
    });
  });

  describe(`clean errors [${engine}]`, () => {
    test('out-of-bounds reads and writes name the pc, address, size and region', () => {
      const mem = new Uint8Array(4);
      const e = runtimeError(
        () => run('mov %r0, 0\nldxw %r0, [%r1+2]\nexit', mem),
        /^pc 1: invalid read of 4 bytes at 0x[0-9a-f]+ \(crosses the end of region 'mem'/,
      );
      assert.equal(e.code, 'runtime');
      assert.equal(e.details.pc, 1);
      runtimeError(
        () => run('stdw [%r10+0], 1\nmov %r0, 0\nexit'),
        /^pc 0: invalid write of 8 bytes at 0x[0-9a-f]+ \(/,
      );
      runtimeError(() => run('ldxdw %r0, [%r10-520]\nexit'), /^pc 0: invalid read of 8 bytes/);
      runtimeError(
        () => run('lddw %r1, 0x123456789\nldxb %r0, [%r1]\nexit'),
        /^pc 2: invalid read of 1 byte at 0x123456789 \(outside the address space\)/,
      );
    });

    test('NULL page', () => {
      runtimeError(
        () => run('mov %r1, 16\nldxb %r0, [%r1]\nexit'),
        /^pc 1: invalid read of 1 byte at 0x10 \(NULL page/,
      );
      runtimeError(
        () => run('mov %r1, 0\nstb [%r1+0], 1\nmov %r0, 0\nexit'),
        /^pc 1: invalid write of 1 byte at 0x0 \(NULL page/,
      );
    });

    test('write to a read-only region', () => {
      const space = new AddressSpace();
      const ro = space.allocate(16, 'ctx', { writable: false, init: new Uint8Array([7]) });
      const src = (op: string) => `lddw %r1, ${ro.base}\n${op}\nexit`;
      assert.equal(runProgram(asm(src('ldxb %r0, [%r1]')), {}, { memory: space }).r0, 7n);
      runtimeError(
        () => runProgram(asm(src('stb [%r1+3], 1\nmov %r0, 0')), {}, { memory: space }),
        /^pc 2: invalid write of 1 byte at 0x[0-9a-f]+ \(region 'ctx' is read-only\)/,
      );
      runtimeError(
        () => runProgram(asm(src('mov %r2, 1\nlock add [%r1+0], %r2\nmov %r0, 0')), {}, { memory: space }),
        /read-only/,
      );
    });

    test('bad jumps, falling off the end, budget', () => {
      runtimeError(
        () => runProgram(asm('mov %r0, 0\nja +5\nexit')),
        /^pc 1: jump out of range from insn 1 to 7/,
      );
      runtimeError(() => runProgram(asm('mov %r0, 0\nja -3\nexit')), /^pc 1: jump out of range/);
      runtimeError(
        () => runProgram(asm('mov %r0, 0\nja +1\nlddw %r0, 5\nexit')),
        /^pc 1: jump into the middle of ldimm64 insn 2/,
      );
      runtimeError(
        () => runProgram(asm('mov %r0, 0\nmov %r1, 0')),
        /^pc 1: execution fell off the end of the program/,
      );
      const e = runtimeError(
        () => runProgram(asm('mov %r0, 0\nL: ja L\nexit'), {}, { budget: 1000 }),
        /^pc 1: instruction budget of 1000 exhausted/,
      );
      assert.equal(e.details.pc, 1);
      // a bad jump that is never taken is harmless
      assert.equal(runProgram(asm('mov %r0, 3\njeq %r0, 4, +9\nexit')).r0, 3n);
    });

    test('invalid instructions are refused at prepare time with pc and reason', () => {
      const bytes = new Uint8Array([
        0xb7, 0, 0, 0, 0, 0, 0, 0, 0x07, 0x10, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0,
      ]);
      assert.throws(
        () => prepare(decode(bytes)),
        (e: unknown) =>
          isTsbpfError(e) && e.code === 'decode' && /^pc 1: BPF_ALU64 uses reserved fields/.test(e.message),
      );
      assert.throws(() => prepare([]), /no instructions/);
      assert.throws(() => prepare(asm('or %r0, %r10\nexit')), /pc 0: R0 !read_ok/);
      assert.throws(() => prepare(asm('mov %r10, 0\nexit')), /frame pointer is read only/);
      assert.throws(
        () => prepare(decode(new Uint8Array([0x18, 0, 0, 0, 0, 0, 0, 0]))),
        /pc 0: invalid BPF_LD_IMM insn/,
      );
      // unresolved pseudo sources stop at run time
      runtimeError(
        () =>
          runProgram(
            [
              { code: 0x18, dst: 1, src: 1, off: 0, imm: 3, imm2: 0 },
              { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
            ],
            {},
            { checkRegisters: false },
          ),
        /pc 0: ld_imm64 with pseudo source 1 is not resolved/,
      );
    });

    test('reusing a prepared program does not leak regions', () => {
      const space = new AddressSpace();
      const before = space.listRegions().length;
      const p = prepare(
        asm('ldxb %r6, [%r1]\ncall local f\nmov %r0, %r6\nexit\nf:\nstdw [%r10-8], 1\nmov %r0, 0\nexit'),
        { memory: space },
      );
      p.run({ mem: new Uint8Array(1) });
      const kept = space.listRegions().length; // the stack frames, kept from run to run
      for (let i = 0; i < 500; i++)
        assert.equal(p.run({ mem: new Uint8Array([i & 0xff]) }).r0, BigInt(i & 0xff));
      assert.equal(space.listRegions().length, kept);
      p.dispose?.();
      assert.equal(space.listRegions().length, before);
      assert.ok(space.byteLength <= 4 * 65536);
    });
  });

  describe(`fuzz: random programs only ever fail with TsbpfError [${engine}]`, () => {
    test('random bytes and random plausible instructions', () => {
      const rnd = prng(0xbeef);
      const byte = () => Math.floor(rnd() * 256);
      const opcodes = [
        0x04, 0x07, 0x0c, 0x0f, 0x14, 0x17, 0x1c, 0x1f, 0x24, 0x27, 0x2f, 0x34, 0x37, 0x3c, 0x3f, 0x44, 0x4f,
        0x54, 0x5f, 0x64, 0x67, 0x6c, 0x6f, 0x74, 0x77, 0x7c, 0x7f, 0x84, 0x87, 0x94, 0x97, 0x9c, 0x9f, 0xa4,
        0xaf, 0xb4, 0xb7, 0xbc, 0xbf, 0xc4, 0xc7, 0xcf, 0xd4, 0xdc, 0xd7, 0x05, 0x06, 0x15, 0x1d, 0x25, 0x2d,
        0x35, 0x45, 0x55, 0x5d, 0x65, 0x6d, 0x75, 0xa5, 0xad, 0xb5, 0xc5, 0xd5, 0x16, 0x1e, 0x26, 0x56, 0x66,
        0x85, 0x8d, 0x95, 0x18, 0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b,
        0x73, 0x7b, 0xc3, 0xdb, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50,
      ];
      let ran = 0;
      let refused = 0;
      for (let i = 0; i < 3000; i++) {
        const n = 1 + Math.floor(rnd() * 12);
        const bytes = new Uint8Array(n * 8);
        for (let k = 0; k < n; k++) {
          const at = k * 8;
          if (i % 3 === 0) {
            for (let j = 0; j < 8; j++) bytes[at + j] = byte();
            continue;
          }
          bytes[at] = opcodes[Math.floor(rnd() * opcodes.length)];
          bytes[at + 1] = Math.floor(rnd() * 11) | (Math.floor(rnd() * 11) << 4);
          const off =
            rnd() < 0.5
              ? Math.floor(rnd() * 7) - 3
              : rnd() < 0.5
                ? -8 * (1 + Math.floor(rnd() * 4))
                : Math.floor(rnd() * 65536) - 32768;
          bytes[at + 2] = off & 0xff;
          bytes[at + 3] = (off >> 8) & 0xff;
          const imm = rnd() < 0.6 ? Math.floor(rnd() * 64) - 8 : Math.floor(rnd() * 2 ** 32);
          for (let j = 0; j < 4; j++) bytes[at + 4 + j] = (imm >>> (8 * j)) & 0xff;
          if (bytes[at] === 0xdb || bytes[at] === 0xc3)
            bytes[at + 4] = [0, 1, 0x40, 0x41, 0xe1, 0xf1][Math.floor(rnd() * 6)];
        }
        if (i % 2 === 0) bytes.set([0x95, 0, 0, 0, 0, 0, 0, 0], bytes.length - 8);
        const mem = new Uint8Array(Math.floor(rnd() * 32));
        for (const checkRegisters of [true, false]) {
          try {
            const p = prepare(decode(bytes), {
              budget: 2000,
              checkRegisters,
              helpers: new Map([[1, () => 1n]]),
            });
            p.run({ mem });
            ran++;
          } catch (e) {
            if (!isTsbpfError(e)) {
              assert.fail(
                `non-TsbpfError for ${Buffer.from(bytes).toString('hex')}: ${(e as Error)?.stack ?? e}`,
              );
            }
            refused++;
          }
        }
      }
      assert.ok(ran > 50, `only ${ran} programs ran to completion`);
      assert.ok(refused > 50);
    });

    test('insnCount counts executed instructions', () => {
      assert.equal(runProgram(asm('mov %r0, 1\nexit')).insnCount, 2);
      assert.equal(runProgram(asm('mov %r0, 0\nL: add %r0, 1\njlt %r0, 10, L\nexit')).insnCount, 22);
    });

    test('encode/decode round trip of assembled programs keeps semantics', () => {
      const insns = asm('mov %r0, 5\nlddw %r1, 0x100000000\nadd %r0, %r1\nexit');
      assert.equal(runProgram(decode(encode(insns))).r0, 0x100000005n);
    });
  });
}
