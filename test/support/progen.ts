/**
 * A seeded generator of random, valid eBPF programs for differential testing against the kernel.
 *
 * Every program the generator makes is meant to be accepted by the kernel verifier in privileged
 * mode for any program type whose context is in r1 (socket_filter is what the tests use):
 * - r0..r9 are set to constants first (small, negative, INT32/INT64 edges, LD_IMM64 values),
 *   so r1's context pointer is gone and every register is a scalar;
 * - code is straight-line plus forward branches only (if-skip and if-else shapes built so that
 *   every instruction is reachable in the CFG), no loops, no calls;
 * - every ALU/ALU64 operation in K and X form (with sdiv/smod, movsx, bswap, le/be), every JMP and
 *   JMP32 condition in K and X form, ja and gotol;
 * - stack stores/loads of every size (st, stx, ldx, ldsx) at aligned r10-relative offsets, reading
 *   only bytes that every path to the read has written; atomics (add/or/and/xor with and without
 *   fetch, xchg, cmpxchg; 32 and 64 bit) on initialised, aligned stack slots;
 * - K-form division never by zero, K-form shifts in range, r10 never written nor used as a value;
 * - before each exit r0 is (usually) mixed with every register and some stack slots, so a wrong
 *   result anywhere shows up in r0.
 */

import { type Insn, isWide, slotIndex, slots, splitImm64 } from '../../src/isa/insn.js';
import {
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_B,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_H,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_K,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_PSEUDO_CALL,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  cls,
  OPCODE_LD_IMM64,
  op,
  SIZE_BYTES,
  srcBit,
} from '../../src/isa/opcodes.js';

// ---------------------------------------------------------------------------------------------
// PRNG: sfc32 seeded through splitmix32, so nearby seeds give unrelated streams.

export interface Rng {
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

export function makeRng(seed: number): Rng {
  let s = seed >>> 0;
  const splitmix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const u32 = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) u32();
  const int = (n: number) => Math.floor((u32() / 0x1_0000_0000) * n);
  return {
    u32,
    int,
    range: (lo, hi) => lo + int(hi - lo + 1),
    pick: (items) => items[int(items.length)],
    chance: (p) => u32() / 0x1_0000_0000 < p,
  };
}

// ---------------------------------------------------------------------------------------------
// Instruction builders.

const ins = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
const exit = (): Insn => ins(BPF_JMP | BPF_EXIT);
const ldImm64 = (dst: number, value: bigint): Insn => ({
  code: OPCODE_LD_IMM64,
  dst,
  src: 0,
  off: 0,
  ...splitImm64(value),
});

const ALU_OPS = [
  BPF_ADD,
  BPF_SUB,
  BPF_MUL,
  BPF_DIV,
  BPF_OR,
  BPF_AND,
  BPF_LSH,
  BPF_RSH,
  BPF_MOD,
  BPF_XOR,
  BPF_MOV,
  BPF_ARSH,
];
const JMP_CONDS = [
  BPF_JEQ,
  BPF_JGT,
  BPF_JGE,
  BPF_JSET,
  BPF_JNE,
  BPF_JSGT,
  BPF_JSGE,
  BPF_JLT,
  BPF_JLE,
  BPF_JSLT,
  BPF_JSLE,
];
const ATOMIC_OPS = [BPF_ADD, BPF_OR, BPF_AND, BPF_XOR]
  .flatMap((o) => [o, o | BPF_FETCH])
  .concat([BPF_XCHG, BPF_CMPXCHG]);

const ALU_NAMES: Record<number, string> = {
  [BPF_ADD]: 'add',
  [BPF_SUB]: 'sub',
  [BPF_MUL]: 'mul',
  [BPF_DIV]: 'div',
  [BPF_OR]: 'or',
  [BPF_AND]: 'and',
  [BPF_LSH]: 'lsh',
  [BPF_RSH]: 'rsh',
  [BPF_NEG]: 'neg',
  [BPF_MOD]: 'mod',
  [BPF_XOR]: 'xor',
  [BPF_MOV]: 'mov',
  [BPF_ARSH]: 'arsh',
  [BPF_END]: 'end',
};
const JMP_NAMES: Record<number, string> = {
  [BPF_JA]: 'ja',
  [BPF_JEQ]: 'jeq',
  [BPF_JGT]: 'jgt',
  [BPF_JGE]: 'jge',
  [BPF_JSET]: 'jset',
  [BPF_JNE]: 'jne',
  [BPF_JSGT]: 'jsgt',
  [BPF_JSGE]: 'jsge',
  [BPF_JLT]: 'jlt',
  [BPF_JLE]: 'jle',
  [BPF_JSLT]: 'jslt',
  [BPF_JSLE]: 'jsle',
};
const SIZE_SUFFIX: Record<number, string> = { [BPF_B]: 'b', [BPF_H]: 'h', [BPF_W]: 'w', [BPF_DW]: 'dw' };
const ATOMIC_NAMES: Record<number, string> = {
  [BPF_ADD]: 'add',
  [BPF_OR]: 'or',
  [BPF_AND]: 'and',
  [BPF_XOR]: 'xor',
  [BPF_XCHG]: 'xchg',
  [BPF_CMPXCHG]: 'cmpxchg',
};

/** A short, stable name of what an instruction exercises, e.g. `alu64.sdiv.x`, `jmp32.jsle.k`, `ldsx.h`. */
export function featureOf(insn: Insn): string {
  const c = cls(insn.code);
  if (insn.code === OPCODE_LD_IMM64) return 'ld_imm64';
  if (c === BPF_ALU || c === BPF_ALU64) {
    const w = c === BPF_ALU64 ? 'alu64' : 'alu';
    const o = op(insn.code);
    const x = srcBit(insn.code) === BPF_X ? 'x' : 'k';
    if (o === BPF_END) {
      if (c === BPF_ALU64) return `alu64.bswap${insn.imm}`;
      return `alu.${srcBit(insn.code) === BPF_TO_BE ? 'be' : 'le'}${insn.imm}`;
    }
    if (o === BPF_NEG) return `${w}.neg`;
    if (o === BPF_MOV && insn.off !== 0) return `${w}.movsx${insn.off}`;
    if ((o === BPF_DIV || o === BPF_MOD) && insn.off === 1) return `${w}.s${ALU_NAMES[o]}.${x}`;
    return `${w}.${ALU_NAMES[o]}.${x}`;
  }
  if (c === BPF_JMP || c === BPF_JMP32) {
    const o = op(insn.code);
    if (o === BPF_EXIT) return 'exit';
    if (o === BPF_JA) return c === BPF_JMP32 ? 'gotol' : 'ja';
    return `${c === BPF_JMP32 ? 'jmp32' : 'jmp'}.${JMP_NAMES[o]}.${srcBit(insn.code) === BPF_X ? 'x' : 'k'}`;
  }
  const sz = SIZE_SUFFIX[insn.code & 0x18];
  if (c === BPF_LDX) return `${(insn.code & 0xe0) === BPF_MEMSX ? 'ldsx' : 'ldx'}.${sz}`;
  if (c === BPF_ST) return `st.${sz}`;
  if (c === BPF_STX && (insn.code & 0xe0) === BPF_ATOMIC) {
    const base = insn.imm & ~BPF_FETCH;
    const name =
      insn.imm === BPF_XCHG || insn.imm === BPF_CMPXCHG ? ATOMIC_NAMES[insn.imm] : ATOMIC_NAMES[base];
    const fetch = insn.imm !== BPF_XCHG && insn.imm !== BPF_CMPXCHG && insn.imm & BPF_FETCH ? '_fetch' : '';
    return `atomic.${sz}.${name}${fetch}`;
  }
  if (c === BPF_STX) return `stx.${sz}`;
  return `op_${insn.code.toString(16)}`;
}

/** Every feature the generator promises to cover (over a few hundred seeds). */
export const REQUIRED_FEATURES: readonly string[] = (() => {
  const f: string[] = ['ld_imm64', 'exit', 'ja', 'gotol'];
  for (const w of ['alu', 'alu64']) {
    for (const o of ALU_OPS) for (const x of ['k', 'x']) f.push(`${w}.${ALU_NAMES[o]}.${x}`);
    for (const x of ['k', 'x']) f.push(`${w}.sdiv.${x}`, `${w}.smod.${x}`);
    f.push(`${w}.neg`, `${w}.movsx8`, `${w}.movsx16`);
  }
  f.push('alu64.movsx32');
  for (const n of [16, 32, 64]) f.push(`alu.le${n}`, `alu.be${n}`, `alu64.bswap${n}`);
  for (const w of ['jmp', 'jmp32'])
    for (const o of JMP_CONDS) for (const x of ['k', 'x']) f.push(`${w}.${JMP_NAMES[o]}.${x}`);
  for (const s of ['b', 'h', 'w', 'dw']) f.push(`ldx.${s}`, `st.${s}`, `stx.${s}`);
  for (const s of ['b', 'h', 'w']) f.push(`ldsx.${s}`);
  for (const s of ['w', 'dw']) {
    for (const a of ['add', 'or', 'and', 'xor']) f.push(`atomic.${s}.${a}`, `atomic.${s}.${a}_fetch`);
    f.push(`atomic.${s}.xchg`, `atomic.${s}.cmpxchg`);
  }
  return f;
})();

// ---------------------------------------------------------------------------------------------
// Values.

const EDGES32 = [
  0, 1, -1, 2, -2, 7, 31, 32, 33, 63, 64, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
  0x7fffffff, -0x80000000, -0x7fffffff, -0x8000, -0x80, 0x55555555, -0x55555556, 0x12345678,
];
const EDGES64 = [
  0n,
  1n,
  0x7fff_ffff_ffff_ffffn,
  0x8000_0000_0000_0000n,
  0xffff_ffff_ffff_ffffn,
  0xffff_ffffn,
  0x1_0000_0000n,
  0x8000_0000n,
  0x7fff_ffffn,
  0xffff_ffff_8000_0000n,
  0xffff_ffff_7fff_ffffn,
  0x0123_4567_89ab_cdefn,
  0xfedc_ba98_7654_3210n,
  0x8000_0000_0000_0001n,
  0x0000_8000_0000_0000n,
];

function imm32(rng: Rng): number {
  switch (rng.int(4)) {
    case 0:
      return rng.range(-16, 16);
    case 1:
      return rng.pick(EDGES32);
    case 2:
      return rng.u32() | 0;
    default:
      return rng.range(-1000, 1000);
  }
}

function imm64(rng: Rng): bigint {
  switch (rng.int(3)) {
    case 0:
      return rng.pick(EDGES64);
    case 1:
      return (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
    default:
      return BigInt.asUintN(64, BigInt(imm32(rng)) << BigInt(rng.int(40)));
  }
}

// ---------------------------------------------------------------------------------------------
// The generator.

export interface GenOptions {
  /** Rough number of instructions in the body (default: 20..120 chosen by the seed). */
  size?: number;
  /**
   * Bytes of working stack below r10 (multiple of 8, at most 504; default chosen by the seed from
   * 32..504). One more slot below it accumulates results, so 512 bytes (the whole frame) at most.
   */
  stackBytes?: number;
}

export interface GeneratedProgram {
  seed: number;
  insns: Insn[];
  /** One line: seed, size and what the program exercises. */
  description: string;
  /** Feature names (see featureOf) of the instructions in the program. */
  features: Set<string>;
}

/** Which stack bytes (index i = byte at r10 - stackBytes + i) every path has written. */
type StackInit = Uint8Array;

class Gen {
  readonly rng: Rng;
  readonly stackBytes: number;
  constructor(seed: number, stackBytes: number) {
    this.rng = makeRng(seed);
    this.stackBytes = stackBytes;
  }

  /** The accumulator slot, just below the working stack. */
  get accOff(): number {
    return -(this.stackBytes + 8);
  }

  reg(): number {
    return this.rng.int(10);
  }

  /** A random ALU/ALU64 instruction (every op, K and X, signed div/mod, movsx, neg, end/bswap). */
  alu(): Insn[] {
    const { rng } = this;
    const is64 = rng.chance(0.55);
    const c = is64 ? BPF_ALU64 : BPF_ALU;
    const dst = this.reg();
    const kind = rng.int(20);
    if (kind === 0) return [ins(c | BPF_NEG | BPF_K, dst)];
    if (kind === 1) {
      const width = rng.pick([16, 32, 64]);
      if (is64) return [ins(BPF_ALU64 | BPF_END | BPF_TO_LE, dst, 0, 0, width)];
      return [ins(BPF_ALU | BPF_END | rng.pick([BPF_TO_LE, BPF_TO_BE]), dst, 0, 0, width)];
    }
    if (kind === 2)
      return [ins(c | BPF_MOV | BPF_X, dst, this.reg(), rng.pick(is64 ? [8, 16, 32] : [8, 16]))];
    const o = rng.pick(ALU_OPS);
    const divLike = o === BPF_DIV || o === BPF_MOD;
    const shift = o === BPF_LSH || o === BPF_RSH || o === BPF_ARSH;
    const signed = divLike && rng.chance(0.4) ? 1 : 0;
    const out: Insn[] = [];
    // Steer towards the edges: INT_MIN dividends, zero and -1 divisors, shift counts at and past the width.
    if (divLike && rng.chance(0.25)) {
      out.push(
        is64 ? ldImm64(dst, 0x8000_0000_0000_0000n) : ins(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, -0x80000000),
      );
    }
    if (rng.chance(0.5)) {
      const src = this.reg();
      if ((divLike || shift) && rng.chance(0.3)) {
        const edge = rng.pick(
          divLike ? [0, -1, 1, -0x80000000] : [0, 31, 32, 33, 63, 64, 65, -1, 0x7fffffff],
        );
        out.push(ins(rng.pick([BPF_ALU, BPF_ALU64]) | BPF_MOV | BPF_K, src, 0, 0, edge));
      }
      out.push(ins(c | o | BPF_X, dst, src, signed));
      return out;
    }
    let imm = imm32(rng);
    if (shift) imm = rng.int(is64 ? 64 : 32);
    if (divLike && (imm === 0 || rng.chance(0.2))) imm = rng.pick([1, -1, 3, -7, 0x7fffffff, -0x80000000]);
    out.push(ins(c | o | BPF_K, dst, 0, signed, imm));
    return out;
  }

  /** r0..r9 = constants. */
  prologue(): Insn[] {
    const out: Insn[] = [];
    for (let r = 0; r <= 9; r++) {
      const k = this.rng.int(3);
      if (k === 0) out.push(ldImm64(r, imm64(this.rng)));
      else out.push(ins((k === 1 ? BPF_ALU64 : BPF_ALU) | BPF_MOV | BPF_K, r, 0, 0, imm32(this.rng)));
    }
    return out;
  }

  /** An aligned offset below r10 for an access of `size` bytes. */
  offset(size: number): number {
    return -size * (1 + this.rng.int(this.stackBytes / size));
  }

  index(off: number): number {
    return this.stackBytes + off;
  }

  isInit(init: StackInit, off: number, size: number): boolean {
    const i = this.index(off);
    for (let k = 0; k < size; k++) if (!init[i + k]) return false;
    return true;
  }

  markInit(init: StackInit, off: number, size: number): void {
    init.fill(1, this.index(off), this.index(off) + size);
  }

  /** An initialised aligned slot of one of `sizes`, or undefined. */
  initSlot(init: StackInit, sizes: readonly number[]): { off: number; size: number } | undefined {
    for (let tries = 0; tries < 12; tries++) {
      const size = this.rng.pick(sizes);
      const off = this.offset(size);
      if (this.isInit(init, off, size)) return { off, size };
    }
    return undefined;
  }

  store(init: StackInit): Insn {
    const sz = this.rng.pick([BPF_B, BPF_H, BPF_W, BPF_DW]);
    const size = SIZE_BYTES[sz];
    const off = this.offset(size);
    this.markInit(init, off, size);
    if (this.rng.chance(0.4)) return ins(BPF_ST | BPF_MEM | sz, 10, 0, off, imm32(this.rng));
    return ins(BPF_STX | BPF_MEM | sz, 10, this.reg(), off);
  }

  load(init: StackInit): Insn {
    const slot = this.initSlot(init, [1, 2, 4, 8]);
    if (!slot) return this.store(init);
    const sz = sizeCode(slot.size);
    const sx = slot.size !== 8 && this.rng.chance(0.4);
    return ins(BPF_LDX | (sx ? BPF_MEMSX : BPF_MEM) | sz, this.reg(), 10, slot.off);
  }

  atomic(init: StackInit): Insn {
    const slot = this.initSlot(init, [4, 8]);
    if (!slot) return this.store(init);
    return ins(
      BPF_STX | BPF_ATOMIC | sizeCode(slot.size),
      10,
      this.reg(),
      slot.off,
      this.rng.pick(ATOMIC_OPS),
    );
  }

  /** A conditional jump over `skip` slots. */
  cond(skip: number): Insn {
    const { rng } = this;
    const c = rng.chance(0.5) ? BPF_JMP32 : BPF_JMP;
    const o = rng.pick(JMP_CONDS);
    if (rng.chance(0.5)) return ins(c | o | BPF_X, this.reg(), this.reg(), skip);
    return ins(c | o | BPF_K, this.reg(), 0, skip, imm32(rng));
  }

  /** An unconditional jump over `skip` slots: ja, or gotol (JMP32 JA, offset in imm). */
  goto(skip: number): Insn {
    return this.rng.chance(0.5) ? ins(BPF_JMP | BPF_JA, 0, 0, skip) : ins(BPF_JMP32 | BPF_JA, 0, 0, 0, skip);
  }

  /** r0 mixed with every register and a few stack slots, then exit. */
  exitSequence(init: StackInit): Insn[] {
    const out: Insn[] = [];
    if (this.rng.chance(0.85)) {
      out.push(ins(BPF_LDX | BPF_MEM | BPF_DW, 1, 10, this.accOff));
      out.push(ins(BPF_ALU64 | BPF_XOR | BPF_X, 0, 1));
      for (let r = 1; r <= 9; r++) {
        out.push(ins(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, 31));
        out.push(ins(BPF_ALU64 | (r % 2 ? BPF_ADD : BPF_XOR) | BPF_X, 0, r));
      }
      for (let k = 0; k < 3; k++) {
        const slot = this.initSlot(init, [8]);
        if (!slot) break;
        out.push(ins(BPF_LDX | BPF_MEM | BPF_DW, 1, 10, slot.off));
        out.push(ins(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, 0x01000193));
        out.push(ins(BPF_ALU64 | BPF_XOR | BPF_X, 0, 1));
      }
    }
    out.push(exit());
    return out;
  }

  /**
   * Appends `insns` and, most of the time, adds the register they computed into the accumulator slot
   * (an atomic add below the working stack), so a wrong intermediate value reaches r0 even when the
   * register is overwritten later.
   */
  observed(out: Insn[], insns: Insn[]): void {
    out.push(...insns);
    const last = insns[insns.length - 1];
    if (!this.rng.chance(0.7)) return;
    let reg: number | undefined;
    const c = cls(last.code);
    if (c === BPF_ALU || c === BPF_ALU64 || c === BPF_LDX) reg = last.dst;
    else if (c === BPF_STX && last.imm === BPF_CMPXCHG) reg = 0;
    else if (c === BPF_STX && last.imm & BPF_FETCH) reg = last.src;
    else if (c === BPF_STX) return;
    if (reg !== undefined) out.push(ins(BPF_STX | BPF_ATOMIC | BPF_DW, 10, reg, this.accOff, BPF_ADD));
  }

  /** A block of about `budget` instructions; every instruction in it is reachable by fall-through or a jump. */
  block(budget: number, init: StackInit, depth: number): Insn[] {
    const out: Insn[] = [];
    const { rng } = this;
    while (out.length < budget) {
      const k = rng.int(100);
      if (k < 40) this.observed(out, this.alu());
      else if (k < 45) out.push(ldImm64(this.reg(), imm64(rng)));
      else if (k < 55) out.push(this.store(init));
      else if (k < 65) this.observed(out, [this.load(init)]);
      else if (k < 72) this.observed(out, [this.atomic(init)]);
      else if (k < 74) out.push(this.goto(0));
      else if (depth < 4 && k < 86) {
        // if (cond) skip the inner block. Stack writes in it may not have happened afterwards.
        const inner = this.block(rng.range(1, Math.max(1, budget >> 2)), init.slice(), depth + 1);
        out.push(this.cond(slotCount(inner)), ...inner);
      } else if (depth < 4 && k < 98) {
        // if (cond) goto ELSE; THEN; goto END; ELSE: ...; END:
        const initThen = init.slice();
        const initElse = init.slice();
        const thenPart = this.block(rng.range(1, Math.max(1, budget >> 2)), initThen, depth + 1);
        const elsePart = this.block(rng.range(1, Math.max(1, budget >> 2)), initElse, depth + 1);
        const goEnd = this.goto(slotCount(elsePart));
        out.push(this.cond(slotCount(thenPart) + 1), ...thenPart, goEnd, ...elsePart);
        for (let i = 0; i < init.length; i++) init[i] = initThen[i] & initElse[i];
      } else if (k >= 98) {
        // An early exit on some path.
        const tail = this.exitSequence(init);
        out.push(this.cond(slotCount(tail)), ...tail);
      } else out.push(...this.alu());
    }
    return out;
  }
}

function sizeCode(size: number): number {
  return size === 1 ? BPF_B : size === 2 ? BPF_H : size === 4 ? BPF_W : BPF_DW;
}

function slotCount(insns: readonly Insn[]): number {
  let n = 0;
  for (const i of insns) n += slots(i);
  return n;
}

/** The program for `seed`. Same seed, same program, on every machine. */
export function generateProgram(seed: number, options: GenOptions = {}): GeneratedProgram {
  const stackBytes = options.stackBytes ?? makeRng(seed ^ 0x5bd1e995).pick([32, 128, 128, 256, 504]);
  const g = new Gen(seed, stackBytes);
  const size = options.size ?? g.rng.range(20, 120);
  const init: StackInit = new Uint8Array(stackBytes);
  const insns = [...g.prologue(), ins(BPF_ST | BPF_MEM | BPF_DW, 10, 0, g.accOff, 0)];
  // A few stores first so loads and atomics have something to work on.
  for (let i = g.rng.range(1, 4); i > 0; i--) insns.push(g.store(init));
  insns.push(...g.block(size, init, 0));
  insns.push(...g.exitSequence(init));
  const features = new Set(insns.map(featureOf));
  const slotsUsed = slotCount(insns);
  const description = `seed ${seed}: ${insns.length} insns (${slotsUsed} slots), ${features.size} distinct kinds`;
  return { seed, insns, description, features };
}

// ---------------------------------------------------------------------------------------------
// Rewriting with jump fix-ups.

const isJumpWithTarget = (i: Insn): boolean => {
  const c = cls(i.code);
  if (c !== BPF_JMP && c !== BPF_JMP32) return false;
  const o = op(i.code);
  if (o === BPF_EXIT) return false;
  if (o === 0x80) return i.src === BPF_PSEUDO_CALL; // bpf-to-bpf call: imm is relative
  return true;
};
const usesImmOffset = (i: Insn): boolean =>
  (cls(i.code) === BPF_JMP32 && op(i.code) === BPF_JA) || (op(i.code) === 0x80 && i.src === BPF_PSEUDO_CALL);

/**
 * Rebuilds a program with instruction i replaced by `replace(insn, i)` (undefined: keep it), fixing
 * every jump. A jump to old instruction i lands on the first instruction of its replacement (or on
 * what follows when the replacement is empty). If a replacement contains the original instruction
 * object and it is a jump, its target is kept; other jumps in replacements are taken as written.
 */
export function rewrite(
  insns: readonly Insn[],
  replace: (insn: Insn, i: number) => Insn[] | undefined,
): Insn[] {
  const oldPc = slotIndex(insns);
  const pieces = insns.map((insn, i) => replace(insn, i) ?? [insn]);
  const newStart: number[] = [];
  let pc = 0;
  for (const piece of pieces) {
    newStart.push(pc);
    pc += slotCount(piece);
  }
  newStart.push(pc);
  const oldIndexAtSlot = new Map<number, number>();
  oldPc.forEach((p, i) => {
    oldIndexAtSlot.set(p, i);
  });
  const out: Insn[] = [];
  pieces.forEach((piece, i) => {
    let p = newStart[i];
    for (const insn of piece) {
      if (insn === insns[i] && isJumpWithTarget(insn)) {
        const rel = usesImmOffset(insn) ? insn.imm : insn.off;
        const target = oldIndexAtSlot.get(oldPc[i] + 1 + rel);
        if (target === undefined) throw new Error(`instruction ${i} jumps into the middle of an instruction`);
        const newRel = newStart[target] - (p + 1);
        out.push(usesImmOffset(insn) ? { ...insn, imm: newRel } : { ...insn, off: newRel });
      } else out.push(insn);
      p += slots(insn);
    }
  });
  return out;
}

/** The program with `extra` inserted before every exit (jumps to an exit run `extra` first). */
export function spliceBeforeExits(insns: readonly Insn[], extra: readonly Insn[]): Insn[] {
  return rewrite(insns, (insn) =>
    insn.code === (BPF_JMP | BPF_EXIT) ? [...extra.map((e) => ({ ...e })), insn] : undefined,
  );
}

/** `r0 >>= 32` before every exit: the kernel's 32-bit retval then shows r0's upper half. */
export function upperHalfVariant(insns: readonly Insn[]): Insn[] {
  return spliceBeforeExits(insns, [ins(BPF_ALU64 | BPF_RSH | BPF_K, 0, 0, 0, 32)]);
}

/**
 * Shrinks a failing program: tries to drop instructions (never exits) while `stillFails` holds,
 * then returns the smallest program found. `stillFails` should check that the kernel still accepts
 * the program and that the disagreement remains.
 */
export function reduceProgram(
  insns: readonly Insn[],
  stillFails: (insns: Insn[]) => boolean,
  maxTries = 2000,
): Insn[] {
  let current = [...insns];
  let tries = 0;
  let progress = true;
  while (progress && tries < maxTries) {
    progress = false;
    for (let chunk = Math.max(1, current.length >> 1); chunk >= 1; chunk >>= 1) {
      for (let start = current.length - 1; start >= 0 && tries < maxTries; start -= chunk) {
        const from = Math.max(0, start - chunk + 1);
        const drop = new Set<number>();
        for (let i = from; i <= start; i++) if (!isExitInsn(current[i])) drop.add(i);
        if (drop.size === 0) continue;
        let candidate: Insn[];
        try {
          candidate = rewrite(current, (_insn, i) => (drop.has(i) ? [] : undefined));
        } catch {
          continue;
        }
        if (!validTargets(candidate)) continue;
        tries++;
        if (stillFails(candidate)) {
          current = candidate;
          progress = true;
          start = Math.min(start, current.length);
        }
      }
    }
  }
  return current;
}

const isExitInsn = (i: Insn): boolean => i.code === (BPF_JMP | BPF_EXIT);

/** Every jump lands inside the program (a dropped tail can leave jumps pointing past the end). */
function validTargets(insns: readonly Insn[]): boolean {
  const pcs = slotIndex(insns);
  const total = pcs[pcs.length - 1];
  return insns.every((insn, i) => {
    if (!isJumpWithTarget(insn)) return true;
    const t = pcs[i] + 1 + (usesImmOffset(insn) ? insn.imm : insn.off);
    return t >= 0 && t < total;
  });
}

// ---------------------------------------------------------------------------------------------
// A compact listing for failure reports (LLVM-like; the real disassembler lives in src/isa/).

export function formatInsn(insn: Insn): string {
  const c = cls(insn.code);
  const o = op(insn.code);
  const r = (n: number) => `r${n}`;
  const w = (n: number) => `w${n}`;
  if (isWide(insn)) {
    const v = (BigInt(insn.imm2 ?? 0) << 32n) | BigInt(insn.imm >>> 0);
    return `r${insn.dst} = 0x${v.toString(16)} ll`;
  }
  if (c === BPF_ALU || c === BPF_ALU64) {
    const R = c === BPF_ALU64 ? r : w;
    const srcText = srcBit(insn.code) === BPF_X ? R(insn.src) : String(insn.imm);
    if (o === BPF_NEG) return `${R(insn.dst)} = -${R(insn.dst)}`;
    if (o === BPF_END) {
      if (c === BPF_ALU64) return `${r(insn.dst)} = bswap${insn.imm} ${r(insn.dst)}`;
      return `${r(insn.dst)} = ${srcBit(insn.code) === BPF_TO_BE ? 'be' : 'le'}${insn.imm} ${r(insn.dst)}`;
    }
    if (o === BPF_MOV && insn.off) return `${R(insn.dst)} = (s${insn.off})${R(insn.src)}`;
    const sym: Record<number, string> = {
      [BPF_ADD]: '+=',
      [BPF_SUB]: '-=',
      [BPF_MUL]: '*=',
      [BPF_DIV]: insn.off ? 's/=' : '/=',
      [BPF_OR]: '|=',
      [BPF_AND]: '&=',
      [BPF_LSH]: '<<=',
      [BPF_RSH]: '>>=',
      [BPF_MOD]: insn.off ? 's%=' : '%=',
      [BPF_XOR]: '^=',
      [BPF_MOV]: '=',
      [BPF_ARSH]: 's>>=',
    };
    return `${R(insn.dst)} ${sym[o]} ${srcText}`;
  }
  if (c === BPF_JMP || c === BPF_JMP32) {
    if (o === BPF_EXIT) return 'exit';
    if (o === BPF_JA) return c === BPF_JMP32 ? `gotol ${fmtRel(insn.imm)}` : `goto ${fmtRel(insn.off)}`;
    const R = c === BPF_JMP32 ? w : r;
    const sym: Record<number, string> = {
      [BPF_JEQ]: '==',
      [BPF_JGT]: '>',
      [BPF_JGE]: '>=',
      [BPF_JSET]: '&',
      [BPF_JNE]: '!=',
      [BPF_JSGT]: 's>',
      [BPF_JSGE]: 's>=',
      [BPF_JLT]: '<',
      [BPF_JLE]: '<=',
      [BPF_JSLT]: 's<',
      [BPF_JSLE]: 's<=',
    };
    const rhs = srcBit(insn.code) === BPF_X ? R(insn.src) : String(insn.imm);
    return `if ${R(insn.dst)} ${sym[o]} ${rhs} goto ${fmtRel(insn.off)}`;
  }
  const sz = `u${SIZE_BYTES[insn.code & 0x18] * 8}`;
  const mem = (reg: number) => `*(${sz} *)(r${reg} ${insn.off < 0 ? '-' : '+'} ${Math.abs(insn.off)})`;
  if (c === BPF_LDX) {
    const sx = (insn.code & 0xe0) === BPF_MEMSX;
    return `r${insn.dst} = *(${sx ? 's' : 'u'}${SIZE_BYTES[insn.code & 0x18] * 8} *)(r${insn.src} ${insn.off < 0 ? '-' : '+'} ${Math.abs(insn.off)})`;
  }
  if (c === BPF_ST) return `${mem(insn.dst)} = ${insn.imm}`;
  if (c === BPF_STX && (insn.code & 0xe0) === BPF_ATOMIC)
    return `lock ${featureOf(insn)} ${mem(insn.dst)}, r${insn.src}`;
  if (c === BPF_STX) return `${mem(insn.dst)} = r${insn.src}`;
  return `.insn 0x${insn.code.toString(16)}`;
}

const fmtRel = (n: number) => (n < 0 ? `${n}` : `+${n}`);

/** A numbered listing, one instruction per line, slot numbers on the left. */
export function listing(insns: readonly Insn[]): string {
  const pcs = slotIndex(insns);
  return insns.map((insn, i) => `${String(pcs[i]).padStart(4)}: ${formatInsn(insn)}`).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Edge matrices: every ALU operation and jump condition over every pair of edge values.

const EDGE_VALUES: readonly bigint[] = [
  0n,
  1n,
  2n,
  31n,
  32n,
  63n,
  64n,
  0x7fff_ffffn,
  0x8000_0000n,
  0xffff_ffffn,
  0x1_0000_0000n,
  0x7fff_ffff_ffff_ffffn,
  0x8000_0000_0000_0000n,
  0x8000_0000_0000_0001n,
  0xffff_ffff_8000_0000n,
  0xffff_ffff_ffff_fffen,
  0xffff_ffff_ffff_ffffn,
];
const EDGE_IMMS: readonly number[] = [0, 1, 2, 31, 32, 63, 64, 0x7fffffff, -0x80000000, -2, -1];

export interface EdgeProgram {
  name: string;
  insns: Insn[];
}

/** r0 = r0 * 31 ^ r (keeps every intermediate result in r0). */
const fold = (r: number): Insn[] => [
  ins(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, 31),
  ins(BPF_ALU64 | BPF_XOR | BPF_X, 0, r),
];

/**
 * One program per ALU operation / width / operand form (and per jump condition), each running the
 * operation over every pair of edge values (INT_MIN, INT_MAX, 0, -1, 32-bit boundaries, shift widths)
 * and folding every result into r0. The kernel accepts all of them.
 */
export function edgePrograms(): EdgeProgram[] {
  const progs: EdgeProgram[] = [];
  const aluVariants: { name: string; make: (is64: boolean) => ((b: bigint) => Insn[]) | undefined }[] = [];
  for (const o of ALU_OPS) {
    for (const signed of o === BPF_DIV || o === BPF_MOD ? [0, 1] : [0]) {
      const base = `${signed ? 's' : ''}${ALU_NAMES[o]}`;
      aluVariants.push({
        name: `${base}.x`,
        make: (is64) => () => [ins((is64 ? BPF_ALU64 : BPF_ALU) | o | BPF_X, 1, 2, signed)],
      });
      aluVariants.push({
        name: `${base}.k`,
        make: (is64) => (b) => {
          const imm = Number(BigInt.asIntN(32, b));
          const shift = o === BPF_LSH || o === BPF_RSH || o === BPF_ARSH;
          if (shift && (imm < 0 || imm >= (is64 ? 64 : 32))) return [];
          if ((o === BPF_DIV || o === BPF_MOD) && imm === 0) return [];
          return [ins((is64 ? BPF_ALU64 : BPF_ALU) | o | BPF_K, 1, 0, signed, imm)];
        },
      });
    }
  }
  for (const is64 of [false, true]) {
    const w = is64 ? 'alu64' : 'alu';
    for (const v of aluVariants) {
      const op1 = v.make(is64);
      if (!op1) continue;
      const kForm = v.name.endsWith('.k');
      const insns: Insn[] = [ins(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0)];
      for (const a of EDGE_VALUES) {
        for (const b of kForm ? EDGE_IMMS.map((i) => BigInt.asUintN(64, BigInt(i))) : EDGE_VALUES) {
          const body = op1(b);
          if (body.length === 0) continue;
          insns.push(ldImm64(1, a), ldImm64(2, b), ...body, ...fold(1));
        }
      }
      insns.push(exit());
      progs.push({ name: `${w}.${v.name}`, insns });
    }
  }
  // One-operand operations: neg, movsx, le/be, bswap.
  const unary: [string, Insn][] = [
    ['alu.neg', ins(BPF_ALU | BPF_NEG, 1)],
    ['alu64.neg', ins(BPF_ALU64 | BPF_NEG, 1)],
    ['alu.movsx8', ins(BPF_ALU | BPF_MOV | BPF_X, 1, 2, 8)],
    ['alu.movsx16', ins(BPF_ALU | BPF_MOV | BPF_X, 1, 2, 16)],
    ['alu64.movsx8', ins(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 8)],
    ['alu64.movsx16', ins(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 16)],
    ['alu64.movsx32', ins(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 32)],
    ...[16, 32, 64].flatMap((n): [string, Insn][] => [
      [`alu.le${n}`, ins(BPF_ALU | BPF_END | BPF_TO_LE, 1, 0, 0, n)],
      [`alu.be${n}`, ins(BPF_ALU | BPF_END | BPF_TO_BE, 1, 0, 0, n)],
      [`alu64.bswap${n}`, ins(BPF_ALU64 | BPF_END | BPF_TO_LE, 1, 0, 0, n)],
    ]),
  ];
  for (const [name, insn] of unary) {
    const insns: Insn[] = [ins(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0)];
    for (const a of [...EDGE_VALUES, 0x0123_4567_89ab_cdefn, 0x80n, 0xff80n, 0x8000n, 0xffff_8000n]) {
      insns.push(ldImm64(1, a ^ 0x5a5a_0000_0000n), ldImm64(2, a), insn, ...fold(1));
    }
    insns.push(exit());
    progs.push({ name, insns });
  }
  // Jumps: r0 collects one bit per (pair, condition) outcome.
  for (const c of [BPF_JMP, BPF_JMP32]) {
    for (const o of JMP_CONDS) {
      for (const kForm of [false, true]) {
        const insns: Insn[] = [ins(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0)];
        for (const a of EDGE_VALUES) {
          for (const b of kForm ? EDGE_IMMS.map((i) => BigInt.asUintN(64, BigInt(i))) : EDGE_VALUES) {
            const jump = kForm
              ? ins(c | o | BPF_K, 1, 0, 1, Number(BigInt.asIntN(32, b)))
              : ins(c | o | BPF_X, 1, 2, 1);
            insns.push(
              ldImm64(1, a),
              ldImm64(2, b),
              ins(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 1),
              jump,
              ins(BPF_ALU64 | BPF_OR | BPF_K, 0, 0, 0, 1), // not taken: bit = 1
              ins(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, 3), // (both paths) keep older bits alive
            );
          }
        }
        insns.push(exit());
        progs.push({
          name: `${c === BPF_JMP32 ? 'jmp32' : 'jmp'}.${JMP_NAMES[o]}.${kForm ? 'k' : 'x'}`,
          insns,
        });
      }
    }
  }
  return progs;
}
