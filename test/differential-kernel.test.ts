/**
 * Differential test: random valid programs (test/support/progen.ts) run in tsbpf's interpreter and in
 * the kernel (BPF_PROG_TEST_RUN on a socket filter); r0 must agree in all 64 bits.
 *
 * The kernel reports only the low 32 bits of r0, so each program is loaded twice: as generated (low
 * half) and with `r0 >>= 32` spliced before every exit (high half).
 *
 * TSBPF_DIFF_COUNT=N runs N programs (default 300); TSBPF_DIFF_SEED=S changes the base seed;
 * TSBPF_DIFF_REDUCE=1 shrinks the first disagreement to a small program.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isTsbpfError } from '../src/errors.js';
import type { Insn } from '../src/isa/insn.js';
import { openBpfFds } from '../src/kernel/fds.js';
import { bpfAvailable, closeFd, loadProgram, testRun } from '../src/kernel/program.js';
import { runProgram } from '../src/vm/interpreter.js';
import {
  edgePrograms,
  featureOf,
  generateProgram,
  listing,
  REQUIRED_FEATURES,
  reduceProgram,
  upperHalfVariant,
} from './support/progen.js';

const COUNT = Number(process.env.TSBPF_DIFF_COUNT ?? 300);
const BASE_SEED = Number(process.env.TSBPF_DIFF_SEED ?? 0x7cb0_0000);
const PACKET = new Uint8Array(64); // socket_filter test runs need at least an Ethernet header (14 bytes)

const hex = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;

/** The kernel's low 32 bits of r0, or throws (with the verifier log) when the kernel rejects it. */
function kernelRetval(insns: Insn[]): number {
  const { fd } = loadProgram({ type: 'socket_filter', insns });
  try {
    return testRun(fd, { data: PACKET }).retval;
  } finally {
    closeFd(fd);
  }
}

/** r0 as the kernel computes it, all 64 bits. */
function kernelR0(insns: Insn[]): bigint {
  const lo = kernelRetval(insns);
  const hi = kernelRetval(upperHalfVariant(insns));
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function interpreterR0(insns: Insn[]): bigint | string {
  try {
    return runProgram(insns).r0;
  } catch (e) {
    return `threw ${isTsbpfError(e) ? `TsbpfError(${e.code}) ` : ''}${e instanceof Error ? e.message : String(e)}`;
  }
}

describe('program generator', () => {
  it('covers every ALU/JMP/memory/atomic feature over the default run', () => {
    const seen = new Set<string>();
    for (let i = 0; i < Math.min(COUNT, 300); i++)
      for (const f of generateProgram(BASE_SEED + i).features) seen.add(f);
    const missing = REQUIRED_FEATURES.filter((f) => !seen.has(f));
    assert.deepEqual(missing, [], `features never generated: ${missing.join(', ')}`);
  });

  it('is deterministic', () => {
    assert.deepEqual(generateProgram(12345).insns, generateProgram(12345).insns);
    assert.notDeepEqual(generateProgram(12345).insns, generateProgram(12346).insns);
  });

  it('reduceProgram shrinks a program while the predicate holds', () => {
    const hasArsh = (insns: Insn[]) => insns.some((i) => featureOf(i).startsWith('alu64.arsh'));
    let seed = BASE_SEED;
    while (!hasArsh(generateProgram(seed).insns)) seed++;
    const p = generateProgram(seed);
    const small = reduceProgram(p.insns, hasArsh);
    assert.ok(hasArsh(small));
    assert.ok(small.length <= 3, listing(small));
    assert.equal(featureOf(small[small.length - 1]), 'exit');
  });

  it('upperHalfVariant runs the shift before every exit and keeps jumps on target', () => {
    const p = generateProgram(BASE_SEED + 7);
    const v = upperHalfVariant(p.insns);
    const exits = p.insns.filter((i) => featureOf(i) === 'exit').length;
    assert.equal(v.length, p.insns.length + exits);
  });
});

const avail = bpfAvailable();

describe('interpreter vs kernel on random programs', { skip: avail.ok ? false : avail.reason }, () => {
  interface Outcome {
    seed: number;
    description: string;
    insns: Insn[];
    kernel?: bigint;
    rejected?: string;
    interpreter?: bigint | string;
  }
  const outcomes: Outcome[] = [];
  let fdsBefore: number[] | undefined;

  before(() => {
    fdsBefore = openBpfFds();
    for (let i = 0; i < COUNT; i++) {
      const seed = BASE_SEED + i;
      const p = generateProgram(seed);
      const o: Outcome = { seed, description: p.description, insns: p.insns };
      try {
        o.kernel = kernelR0(p.insns);
      } catch (e) {
        const log = isTsbpfError(e) ? (e.details.log ?? '') : '';
        o.rejected = `${e instanceof Error ? e.message : String(e)}\n${log.split('\n').slice(-12).join('\n')}`;
      }
      if (o.kernel !== undefined) o.interpreter = interpreterR0(p.insns);
      outcomes.push(o);
    }
  });

  after(() => {
    assert.deepEqual(openBpfFds(), fdsBefore, 'every program fd was closed');
  });

  it(`the kernel accepts all ${COUNT} generated programs`, () => {
    const rejected = outcomes.filter((o) => o.rejected !== undefined);
    for (const o of rejected.slice(0, 3)) {
      console.log(`generator bug: kernel rejected ${o.description}\n${o.rejected}\n${listing(o.insns)}\n`);
    }
    assert.deepEqual(
      rejected.map((o) => o.seed),
      [],
      `${rejected.length} generated programs were rejected (seeds above)`,
    );
  });

  it('the interpreter agrees with the kernel on r0 (64 bits)', () => {
    const bad = outcomes.filter((o) => o.kernel !== undefined && o.interpreter !== o.kernel);
    const agreed = outcomes.filter((o) => o.kernel !== undefined && o.interpreter === o.kernel).length;
    console.log(
      `differential: ${agreed}/${outcomes.length} programs agree (base seed ${hex(BigInt(BASE_SEED))})`,
    );
    for (const o of bad.slice(0, 5)) {
      const got = typeof o.interpreter === 'bigint' ? hex(o.interpreter) : o.interpreter;
      console.log(`DISAGREE ${o.description}: kernel r0=${hex(o.kernel ?? 0n)}, interpreter ${got}`);
    }
    if (bad.length > 0 && process.env.TSBPF_DIFF_REDUCE) {
      const first = bad[0];
      const stillFails = (insns: Insn[]) => {
        try {
          return interpreterR0(insns) !== kernelR0(insns);
        } catch {
          return false;
        }
      };
      const small = reduceProgram(first.insns, stillFails);
      console.log(
        `reduced seed ${first.seed} to ${small.length} insns: kernel ${hex(kernelR0(small))}, interpreter ${String(
          interpreterR0(small),
        )}\n${listing(small)}`,
      );
    }
    assert.deepEqual(
      bad.map((o) => o.seed),
      [],
      `${bad.length} programs disagree; rerun one with TSBPF_DIFF_SEED=<seed> TSBPF_DIFF_COUNT=1 TSBPF_DIFF_REDUCE=1`,
    );
  });
});

describe('interpreter vs kernel on edge-value matrices', { skip: avail.ok ? false : avail.reason }, () => {
  it('every ALU operation and jump condition agrees over all pairs of edge values', () => {
    const fdsBefore = openBpfFds();
    const bad: string[] = [];
    const programs = edgePrograms();
    for (const p of programs) {
      let kernel: bigint;
      try {
        kernel = kernelR0(p.insns);
      } catch (e) {
        bad.push(`${p.name}: kernel rejected it: ${e instanceof Error ? e.message : String(e)}`);
        continue;
      }
      const got = interpreterR0(p.insns);
      if (got !== kernel) {
        bad.push(`${p.name}: kernel ${hex(kernel)}, interpreter ${typeof got === 'bigint' ? hex(got) : got}`);
      }
    }
    assert.deepEqual(openBpfFds(), fdsBefore, 'every program fd was closed');
    console.log(`edge matrices: ${programs.length - bad.length}/${programs.length} programs agree`);
    assert.deepEqual(bad, []);
  });
});
