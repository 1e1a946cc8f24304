/**
 * Mutation fuzzing of the verifier against the live kernel (issue 5): programs the kernel accepts
 * (the suite's accepted cases) are mutated — a bound check's comparison flipped, a null check
 * dropped, a memory offset shifted, an access widened, a register swapped, an immediate nudged —
 * and each mutant goes to the kernel (BPF_PROG_LOAD) and to tsbpf's verifier.
 *
 * Reports verdict agreement; asserts that tsbpf never accepts a mutant the kernel rejects for
 * memory safety. Every disagreement is printed as a ready case-file entry; with
 * TSBPF_VERIFIER_MUTATIONS_APPEND=1 they are appended to test/data/verifier/mutations.txt (then run
 * scripts/record-verifier-cases.ts --missing to record the kernel's words).
 *
 * TSBPF_VERIFIER_MUTATIONS=N mutants (default 300; TSBPF_LONG=1: 3000), TSBPF_VERIFIER_SEED=S.
 * Skipped when BPF is unavailable or src/verifier has no verify().
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatInsn } from '../src/isa/disasm.js';
import { type Insn, isWide, slotIndex, validate } from '../src/isa/insn.js';
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_B,
  BPF_DW,
  BPF_H,
  BPF_JMP,
  BPF_JMP32,
  BPF_LDX,
  BPF_MEM,
  BPF_ST,
  BPF_STX,
  BPF_W,
  cls,
  mode,
  op,
} from '../src/isa/opcodes.js';
import { openBpfFds } from '../src/kernel/fds.js';
import { bpfAvailable } from '../src/kernel/program.js';
import {
  assembleCase,
  CASE_DIR,
  formatResult,
  isMemorySafetyRejection,
  type KernelResult,
  loadCases,
  loadVerifier,
  runKernel,
  type VerifierCase,
  type VerifyResult,
  verifierMaps,
  verifyOptions,
} from './support/verifier-cases.js';

const COUNT = Number(process.env.TSBPF_VERIFIER_MUTATIONS ?? (process.env.TSBPF_LONG === '1' ? 3000 : 300));
const SEED = Number(process.env.TSBPF_VERIFIER_SEED ?? 0x5eed_0005);

/** mulberry32: small, seeded, good enough to pick mutations. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Mutant {
  insns: Insn[];
  /** What was changed, e.g. `insn 7: flip if r1 > 40 -> if r1 <= 40`. */
  what: string;
}

const FLIP: Readonly<Record<number, number>> = {
  16: 0x50, // jeq <-> jne
  80: 0x10,
  32: 0xb0, // jgt <-> jle
  176: 0x20,
  48: 0xa0, // jge <-> jlt
  160: 0x30,
  96: 0xd0, // jsgt <-> jsle
  208: 0x60,
  112: 0xc0, // jsge <-> jslt
  192: 0x70,
};
const SIZES = [BPF_B, BPF_H, BPF_W, BPF_DW];

const isCondJump = (i: Insn) =>
  (cls(i.code) === BPF_JMP || cls(i.code) === BPF_JMP32) && FLIP[op(i.code)] !== undefined;
const isMem = (i: Insn) =>
  (cls(i.code) === BPF_LDX || cls(i.code) === BPF_STX || cls(i.code) === BPF_ST) && mode(i.code) === BPF_MEM;
const isAlu = (i: Insn) => cls(i.code) === BPF_ALU || cls(i.code) === BPF_ALU64;

/** One mutation of `insns` (same length, so jump offsets stay valid), or undefined if none applies. */
export function mutate(insns: readonly Insn[], rand: () => number): Mutant | undefined {
  const pcs = slotIndex(insns);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const candidates = (pred: (i: Insn) => boolean) =>
    insns.map((insn, k) => ({ insn, k })).filter(({ insn }) => !isWide(insn) && pred(insn));
  const kinds = ['flip', 'drop-check', 'shift-offset', 'widen', 'swap-reg', 'nudge-imm'] as const;
  for (let attempt = 0; attempt < 12; attempt++) {
    const kind = pick(kinds);
    const out = insns.map((i) => ({ ...i }));
    const describe = (k: number, after: Insn) =>
      `insn ${pcs[k]}: ${kind} ${formatInsn(insns[k], { lossless: true })} -> ${formatInsn(after, { lossless: true })}`;
    if (kind === 'flip' || kind === 'drop-check') {
      const c = candidates(isCondJump);
      if (c.length === 0) continue;
      const { insn, k } = pick(c);
      out[k] =
        kind === 'flip'
          ? { ...insn, code: (insn.code & ~0xf0) | FLIP[op(insn.code)] }
          : { code: 0x05, dst: 0, src: 0, off: 0, imm: 0 }; // goto +0: the check is gone, both paths continue
      return { insns: out, what: describe(k, out[k]) };
    }
    if (kind === 'shift-offset' || kind === 'widen') {
      const c = candidates(isMem);
      if (c.length === 0) continue;
      const { insn, k } = pick(c);
      if (kind === 'shift-offset') {
        out[k] = { ...insn, off: insn.off + pick([-8, -4, -1, 1, 4, 8]) };
      } else {
        const s = insn.code & 0x18;
        const wider = SIZES.filter((x) => SIZES.indexOf(x) > SIZES.indexOf(s));
        if (wider.length === 0) continue;
        out[k] = { ...insn, code: (insn.code & ~0x18) | pick(wider) };
      }
      return { insns: out, what: describe(k, out[k]) };
    }
    if (kind === 'swap-reg') {
      const c = candidates((i) => isMem(i) || isAlu(i) || isCondJump(i));
      if (c.length === 0) continue;
      const { insn, k } = pick(c);
      const field = rand() < 0.5 ? 'dst' : 'src';
      const r = Math.floor(rand() * 10);
      if (insn[field] === r) continue;
      out[k] = { ...insn, [field]: r };
      return { insns: out, what: describe(k, out[k]) };
    }
    const c = candidates((i) => isAlu(i) || isCondJump(i) || cls(i.code) === BPF_ST);
    if (c.length === 0) continue;
    const { insn, k } = pick(c);
    out[k] = { ...insn, imm: insn.imm + pick([-1, 1, 8, -8, 16]) };
    return { insns: out, what: describe(k, out[k]) };
  }
  return undefined;
}

/** FNV-1a of a string, 8 hex digits: names a mutant by its program, so re-finding it adds no duplicate. */
function fnv(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** Assembler text for a program: LLVM syntax where it round-trips, `.raw` otherwise. */
export function asmText(insns: readonly Insn[]): string {
  const pcs = slotIndex(insns);
  return insns
    .map((i, k) => {
      const text = validate(i) === undefined ? formatInsn(i, { lossless: true }) : undefined;
      const raw = `.raw ${i.code} ${i.dst} ${i.src} ${i.off} ${i.imm}`;
      return `${text ?? raw}  # ${pcs[k]}`;
    })
    .join('\n');
}

const avail = bpfAvailable();
const verifier = await loadVerifier();
const skip = !avail.ok ? avail.reason : verifier.verify ? false : verifier.reason;

describe('verifier mutations against the live kernel', { skip }, () => {
  let fdsBefore: number[] | undefined;
  before(() => {
    fdsBefore = openBpfFds('prog');
  });
  after(() => {
    assert.deepEqual(openBpfFds('prog'), fdsBefore, 'every program fd is closed');
  });

  it(`agrees with the kernel on ${COUNT} mutants and never accepts an unsafe one`, () => {
    const verify = verifier.verify!;
    const pool = loadCases().filter(
      (c) => c.kernel?.verdict === 'accept' && !c.unpriv && (c.kernel.processed ?? 0) < 5000,
    );
    assert.ok(pool.length > 100, `only ${pool.length} accepted cases to mutate`);
    const rand = rng(SEED);
    let agree = 0;
    let n = 0;
    const disagreements: { c: VerifierCase; m: Mutant; k: KernelResult; ours: VerifyResult | string }[] = [];
    const unsafe: string[] = [];
    const started = performance.now();
    while (n < COUNT) {
      const c = pool[Math.floor(rand() * pool.length)];
      const m = mutate(assembleCase(c), rand);
      if (!m) continue;
      n++;
      const o = verifyOptions(c, 0);
      const kopts: {
        progType: number;
        expectedAttachType?: number;
        attachBtfId?: number;
        maps: ReturnType<typeof verifierMaps>;
      } = {
        progType: o.progType,
        maps: verifierMaps(c),
      };
      if (o.expectedAttachType !== undefined) kopts.expectedAttachType = o.expectedAttachType;
      if (o.attachBtfId !== undefined) kopts.attachBtfId = o.attachBtfId;
      // verdict first at log level 0 (a mutant may spin to the 1M-insn limit); words only for rejections
      const quick = runKernel(m.insns, { ...kopts, logLevel: 0 }).result;
      const k =
        quick.verdict === 'reject' && quick.errno !== 'E2BIG' ? runKernel(m.insns, kopts).result : quick;
      let ours: VerifyResult | string;
      try {
        ours = verify(m.insns, o);
      } catch (e) {
        ours = `threw ${e instanceof Error ? e.message : String(e)}`;
      }
      const oursOk = typeof ours !== 'string' && ours.ok;
      if (typeof ours !== 'string' && oursOk === (k.verdict === 'accept')) agree++;
      else disagreements.push({ c, m, k, ours });
      if (oursOk && isMemorySafetyRejection(k))
        unsafe.push(`${c.name} / ${m.what}: kernel says ${k.errors[0]}`);
    }
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    const entries = disagreements.map(({ c, m, k, ours }) => {
      const theirs = k.verdict === 'accept' ? 'kernel accepts' : `kernel rejects: ${k.errors[0] ?? k.errno}`;
      const mine =
        typeof ours === 'string' ? ours : ours.ok ? 'tsbpf accepts' : `tsbpf rejects: ${ours.error?.message}`;
      const header = [`=== mutant ${fnv(asmText(m.insns))}: ${c.name}`, `type: ${c.type}`];
      if (c.attach) header.push(`attach: ${c.attach}`);
      for (const mp of c.maps)
        header.push(
          `map: ${mp.type} key=${mp.keySize} value=${mp.valueSize} entries=${mp.maxEntries} flags=${mp.flags}`,
        );
      header.push(
        `note: ${m.what}`,
        `note: found by test/verifier-mutations.test.ts: ${theirs}; ${mine}`,
        '---',
      );
      return `${[...header, asmText(m.insns), ...formatResult(k)].join('\n')}\n`;
    });
    console.log(
      `verifier mutations: ${n} mutants in ${secs}s (seed ${SEED}); verdict agreement ${agree}/${n} = ${((100 * agree) / n).toFixed(1)}%` +
        (entries.length ? `\ndisagreements, as case-file entries:\n\n${entries.join('\n')}` : ''),
    );
    const known = new Set(loadCases().map((c) => c.name));
    const fresh = entries.filter((e) => !known.has(e.slice(4, e.indexOf('\n'))));
    if (process.env.TSBPF_VERIFIER_MUTATIONS_APPEND === '1' && fresh.length > 0) {
      const path = join(CASE_DIR, 'mutations.txt');
      const head = existsSync(path)
        ? ''
        : '# Disagreements found by test/verifier-mutations.test.ts (mutants of accepted cases).\n';
      appendFileSync(path, `${head}\n${fresh.join('\n')}`);
    }
    assert.deepEqual(unsafe, [], 'tsbpf accepted mutants the kernel rejects for memory safety');
  });
});

describe('verifier mutation engine', () => {
  it('is deterministic and keeps the program length and jump targets', () => {
    const c = loadCases().find((x) => x.name === 'bounds: unsigned upper bound 40, u8 read')!;
    const insns = assembleCase(c);
    const a = rng(7);
    const b = rng(7);
    for (let i = 0; i < 50; i++) {
      const m1 = mutate(insns, a);
      const m2 = mutate(insns, b);
      assert.deepEqual(m1, m2);
      assert.ok(m1);
      assert.equal(m1.insns.length, insns.length);
      assert.deepEqual(slotIndex(m1.insns), slotIndex(insns));
    }
  });
});
