/**
 * Differential test of the JIT: random valid programs (test/support/progen.ts) run in the
 * interpreter (the reference), in the JIT (blocks and loops), and in the JIT forced onto its
 * irreducible-graph dispatcher; r0 and the instruction count must agree. Progen programs are
 * straight-line with forward branches, so two wrappers add what they lack: a counted loop around a
 * program (its exits become jumps to the loop footer) and bpf-to-bpf calls of two programs.
 * A subset also runs in the kernel (BPF_PROG_TEST_RUN) when BPF is available.
 *
 * TSBPF_JIT_DIFF_COUNT=N runs N plain programs (default 500); TSBPF_JIT_DIFF_SEED=S changes the seed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTsbpfError } from '../src/errors.js';
import { type Insn, slotIndex } from '../src/isa/insn.js';
import { openBpfFds } from '../src/kernel/fds.js';
import { bpfAvailable, closeFd, loadProgram, testRun } from '../src/kernel/program.js';
import { prepare } from '../src/vm/interpreter.js';
import { type JitOptions, prepareJit } from '../src/vm/jit/program.js';
import { generateProgram, listing, upperHalfVariant } from './support/progen.js';

const COUNT = Number(process.env.TSBPF_JIT_DIFF_COUNT ?? 500);
const BASE_SEED = Number(process.env.TSBPF_JIT_DIFF_SEED ?? 0x1717_0000);
const WRAPPED = Math.max(10, Math.floor(COUNT / 5));
const PACKET = new Uint8Array(64);

const ins = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });

/** `*(u64*)(r10-512) = iterations; acc = 0; loop { body (exit → footer) } acc ^= r0 ...; r0 = acc`. */
export function loopWrapped(body: readonly Insn[], iterations: number): Insn[] {
  const head = [ins(0x7a, 10, 0, -512, iterations), ins(0x7a, 10, 0, -504, 0)];
  const bodySlots = slotIndex(body);
  const footer = 2 + bodySlots[body.length];
  const out = [...head];
  body.forEach((insn, i) => {
    const pc = 2 + bodySlots[i];
    out.push(insn.code === 0x95 ? ins(0x05, 0, 0, footer - (pc + 1)) : { ...insn });
  });
  const f7 = footer + 7;
  out.push(
    ins(0x79, 1, 10, -504), // r1 = acc
    ins(0xaf, 1, 0), // r1 ^= r0
    ins(0x27, 1, 0, 0, 31), // r1 *= 31
    ins(0x7b, 10, 1, -504), // acc = r1
    ins(0x79, 1, 10, -512), // r1 = counter
    ins(0x17, 1, 0, 0, 1), // r1 -= 1
    ins(0x7b, 10, 1, -512), // counter = r1
    ins(0x55, 1, 0, 2 - (f7 + 1)), // if r1 != 0 goto top
    ins(0x79, 0, 10, -504), // r0 = acc
    ins(0x95),
  );
  return out;
}

/** main: call a; r6 = r0; call b; r0 ^= r6; r0 += r6; exit — then a and b as subprograms. */
export function callWrapped(a: readonly Insn[], b: readonly Insn[]): Insn[] {
  const aSlots = slotIndex(a)[a.length];
  const main = [
    ins(0x85, 0, 1, 0, 6 - 1), // call a (pc 6)
    ins(0xbf, 6, 0), // r6 = r0
    ins(0x85, 0, 1, 0, 6 + aSlots - 3), // call b
    ins(0xaf, 0, 6), // r0 ^= r6
    ins(0x0f, 0, 6), // r0 += r6
    ins(0x95),
  ];
  return [...main, ...a.map((i) => ({ ...i })), ...b.map((i) => ({ ...i }))];
}

type Outcome = string;
function outcome(run: () => { r0: bigint; insnCount: number }): Outcome {
  try {
    const r = run();
    return `r0=0x${r.r0.toString(16)} count=${r.insnCount}`;
  } catch (e) {
    return `threw ${isTsbpfError(e) ? `${e.code}: ` : ''}${e instanceof Error ? e.message : String(e)}`;
  }
}
const interp = (insns: Insn[]) => outcome(() => prepare(insns).run());
const jit = (insns: Insn[], options: JitOptions = {}) =>
  outcome(() => {
    const p = prepareJit(insns, options);
    try {
      return p.run();
    } finally {
      p.dispose();
    }
  });

function compareAll(name: string, programs: { seed: number; insns: Insn[] }[]): void {
  const bad: string[] = [];
  for (const p of programs) {
    const want = interp(p.insns);
    assert.ok(want.startsWith('r0='), `${name} seed ${p.seed}: the interpreter failed: ${want}`);
    const structured = jit(p.insns);
    const dispatched = jit(p.insns, { forceDispatch: true });
    if (structured !== want || dispatched !== want) {
      bad.push(`${name} seed ${p.seed}: interpreter ${want}, jit ${structured}, dispatcher ${dispatched}`);
      if (bad.length === 1) console.log(listing(p.insns));
    }
  }
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} of ${programs.length} disagree`);
}

const plain = () => Array.from({ length: COUNT }, (_, i) => generateProgram(BASE_SEED + i));
const looped = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const seed = BASE_SEED + 100_000 + i;
    return { seed, insns: loopWrapped(generateProgram(seed, { stackBytes: 256 }).insns, 1 + (i % 4)) };
  });
const called = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const seed = BASE_SEED + 200_000 + i;
    const a = generateProgram(seed, { stackBytes: 256 }).insns;
    const b = generateProgram(seed + 7_777_777, { stackBytes: 256 }).insns;
    return { seed, insns: callWrapped(a, b) };
  });

describe('JIT vs interpreter on random programs', () => {
  it(`${COUNT} generated programs agree (r0 and instruction count), structured and dispatched`, () => {
    compareAll('plain', plain());
  });
  it(`${WRAPPED} programs inside counted loops agree`, () => {
    compareAll('loop', looped(WRAPPED));
  });
  it(`${WRAPPED} pairs of programs called as bpf-to-bpf subprograms agree`, () => {
    compareAll('calls', called(WRAPPED));
  });
});

const avail = bpfAvailable();

describe('JIT vs kernel on random programs', { skip: avail.ok ? false : avail.reason }, () => {
  const kernelRetval = (insns: Insn[]): number => {
    const { fd } = loadProgram({ type: 'socket_filter', insns });
    try {
      return testRun(fd, { data: PACKET }).retval;
    } finally {
      closeFd(fd);
    }
  };
  const jitR0 = (insns: Insn[]) => {
    const p = prepareJit(insns);
    try {
      return p.run().r0;
    } finally {
      p.dispose();
    }
  };

  it('plain and looped programs: all 64 bits of r0 agree', () => {
    const fds = openBpfFds();
    const bad: string[] = [];
    const programs = [...plain().slice(0, 60), ...looped(20)];
    let rejected = 0;
    for (const p of programs) {
      let kernel: bigint;
      try {
        kernel = (BigInt(kernelRetval(upperHalfVariant(p.insns))) << 32n) | BigInt(kernelRetval(p.insns));
      } catch {
        rejected++; // the verifier's complexity limits on looped programs: not the JIT's business
        continue;
      }
      const got = jitR0(p.insns);
      if (got !== kernel)
        bad.push(`seed ${p.seed}: kernel 0x${kernel.toString(16)}, jit 0x${got.toString(16)}`);
    }
    assert.deepEqual(openBpfFds(), fds, 'every program fd was closed');
    assert.ok(rejected <= programs.length / 4, `the kernel rejected ${rejected} programs`);
    assert.deepEqual(bad, []);
  });

  it('bpf-to-bpf call programs: the low 32 bits of r0 agree', () => {
    const bad: string[] = [];
    for (const p of called(20)) {
      const kernel = kernelRetval(p.insns);
      const got = jitR0(p.insns) & 0xffff_ffffn;
      if (got !== BigInt(kernel))
        bad.push(`seed ${p.seed}: kernel 0x${kernel.toString(16)}, jit 0x${got.toString(16)}`);
    }
    assert.deepEqual(bad, []);
  });
});
