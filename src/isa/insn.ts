/**
 * Instructions as data: decode raw bytecode into instructions and encode them back.
 * Decoding never throws: an instruction the ISA does not define carries a `problem` that names it,
 * in the kernel verifier's words where the kernel has words for it.
 */
import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_B,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_H,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_NEG,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_TO_LE,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  cls,
  INSN_SIZE,
  MAX_BPF_REG,
  mode,
  OPCODE_LD_IMM64,
  op,
  size,
  srcBit,
} from './opcodes.js';

/** One eBPF instruction. LD_IMM64 is one instruction that occupies two 8-byte slots. */
export interface Insn {
  code: number; // opcode byte
  dst: number; // 0..15 as encoded; valid registers are 0..10
  src: number;
  off: number; // signed 16-bit
  imm: number; // signed 32-bit
  /** LD_IMM64 only: the second slot's imm, the upper half of the 64-bit constant. */
  imm2?: number;
}

export interface DecodedInsn extends Insn {
  /** Index of the instruction's first slot: the unit jump offsets count in. */
  pc: number;
  /** Set when the bytes are not a valid instruction; says why. */
  problem?: string;
}

export const isWide = (insn: Insn): boolean => insn.code === OPCODE_LD_IMM64;
export const slots = (insn: Insn): 1 | 2 => (insn.code === OPCODE_LD_IMM64 ? 2 : 1);

/** The 64-bit constant of an LD_IMM64, as an unsigned bigint. */
export function imm64(insn: Insn): bigint {
  return (BigInt(insn.imm2 ?? 0) << 32n) | BigInt(insn.imm >>> 0);
}

/** Splits a 64-bit constant into the (imm, imm2) pair of an LD_IMM64. */
export function splitImm64(value: bigint): { imm: number; imm2: number } {
  const v = BigInt.asUintN(64, value);
  return { imm: Number(BigInt.asIntN(32, v)), imm2: Number(BigInt.asIntN(32, v >> 32n)) };
}

function readSlot(view: DataView, at: number, bigEndian: boolean): Insn {
  const regs = view.getUint8(at + 1);
  return {
    code: view.getUint8(at),
    dst: bigEndian ? regs >> 4 : regs & 0x0f,
    src: bigEndian ? regs & 0x0f : regs >> 4,
    off: view.getInt16(at + 2, !bigEndian),
    imm: view.getInt32(at + 4, !bigEndian),
  };
}

/** Decodes bytecode. Never throws; invalid instructions and trailing bytes come back with a `problem`. */
export function decode(bytes: Uint8Array, options: { bigEndian?: boolean } = {}): DecodedInsn[] {
  const bigEndian = options.bigEndian ?? false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const total = Math.floor(bytes.byteLength / INSN_SIZE);
  const out: DecodedInsn[] = [];
  let pc = 0;
  while (pc < total) {
    const insn: DecodedInsn = { ...readSlot(view, pc * INSN_SIZE, bigEndian), pc };
    if (insn.code === OPCODE_LD_IMM64) {
      if (pc + 1 >= total) {
        insn.problem = 'invalid BPF_LD_IMM insn: the second half of the 16-byte instruction is missing';
        out.push(insn);
        break;
      }
      const second = readSlot(view, (pc + 1) * INSN_SIZE, bigEndian);
      insn.imm2 = second.imm;
      if (second.code !== 0 || second.dst !== 0 || second.src !== 0 || second.off !== 0) {
        insn.problem = 'invalid BPF_LD_IMM insn: the second slot has non-zero reserved fields';
      }
      pc += 2;
    } else {
      pc += 1;
    }
    insn.problem ??= validate(insn);
    out.push(insn);
  }
  if (bytes.byteLength % INSN_SIZE !== 0) {
    out.push({
      code: 0,
      dst: 0,
      src: 0,
      off: 0,
      imm: 0,
      pc: total,
      problem: `trailing ${bytes.byteLength % INSN_SIZE} bytes do not make a whole instruction`,
    });
  }
  return out;
}

function writeSlot(view: DataView, at: number, s: Insn, bigEndian: boolean): void {
  view.setUint8(at, s.code);
  view.setUint8(
    at + 1,
    bigEndian ? ((s.dst & 0xf) << 4) | (s.src & 0xf) : ((s.src & 0xf) << 4) | (s.dst & 0xf),
  );
  view.setInt16(at + 2, s.off, !bigEndian);
  view.setInt32(at + 4, s.imm, !bigEndian);
}

/** Encodes instructions to bytecode (little endian unless asked otherwise). */
export function encode(insns: readonly Insn[], options: { bigEndian?: boolean } = {}): Uint8Array {
  const bigEndian = options.bigEndian ?? false;
  const count = insns.reduce((n, i) => n + slots(i), 0);
  const bytes = new Uint8Array(count * INSN_SIZE);
  const view = new DataView(bytes.buffer);
  let pc = 0;
  for (const insn of insns) {
    writeSlot(view, pc * INSN_SIZE, insn, bigEndian);
    pc++;
    if (isWide(insn)) {
      writeSlot(view, pc * INSN_SIZE, { code: 0, dst: 0, src: 0, off: 0, imm: insn.imm2 ?? 0 }, bigEndian);
      pc++;
    }
  }
  return bytes;
}

/** Slot index of every instruction, plus the total slot count at the end. */
export function slotIndex(insns: readonly Insn[]): number[] {
  const pcs: number[] = [];
  let pc = 0;
  for (const insn of insns) {
    pcs.push(pc);
    pc += slots(insn);
  }
  pcs.push(pc);
  return pcs;
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/** Atomic operations of BPF_STX | BPF_ATOMIC for W and DW: add/or/and/xor with and without fetch, xchg, cmpxchg. */
const ATOMIC_OPS = new Set(
  [0x00, 0x40, 0x50, 0xa0].flatMap((o) => [o, o | BPF_FETCH]).concat([BPF_XCHG, BPF_CMPXCHG]),
);

/**
 * Why an instruction is not one the ISA defines, or undefined when it is valid.
 * The rules are the kernel's (kernel/bpf/verifier.c, check of reserved fields); the sentences too.
 */
export function validate(insn: Insn): string | undefined {
  const { code, dst, src, off, imm } = insn;
  if (dst >= MAX_BPF_REG) return `R${dst} is invalid`;
  if (src >= MAX_BPF_REG && !(cls(code) === BPF_LD && code === OPCODE_LD_IMM64)) return `R${src} is invalid`;
  const unknown = `unknown opcode ${hex2(code)}`;
  switch (cls(code)) {
    case BPF_ALU:
    case BPF_ALU64: {
      const is64 = cls(code) === BPF_ALU64;
      const o = op(code);
      const name = is64 ? 'BPF_ALU64' : 'BPF_ALU';
      if (o === BPF_END) {
        if (
          src !== 0 ||
          off !== 0 ||
          (imm !== 16 && imm !== 32 && imm !== 64) ||
          (is64 && srcBit(code) !== BPF_TO_LE)
        )
          return 'BPF_END uses reserved fields';
        return undefined;
      }
      if (o === BPF_NEG) {
        if (srcBit(code) !== BPF_K || src !== 0 || off !== 0 || imm !== 0)
          return 'BPF_NEG uses reserved fields';
        return undefined;
      }
      if (o > BPF_END) return unknown;
      if (o === BPF_MOV) {
        if (srcBit(code) === BPF_X) {
          const sx = is64 ? [0, 8, 16, 32] : [0, 8, 16];
          if (imm !== 0 || !sx.includes(off)) return 'BPF_MOV uses reserved fields';
        } else if (src !== 0 || off !== 0) return 'BPF_MOV uses reserved fields';
        return undefined;
      }
      const signedOk = o === BPF_DIV || o === BPF_MOD;
      if (off !== 0 && !(signedOk && off === 1)) return `${name} uses reserved fields`;
      if (srcBit(code) === BPF_X ? imm !== 0 : src !== 0) return `${name} uses reserved fields`;
      if (srcBit(code) === BPF_K && (o === BPF_DIV || o === BPF_MOD) && imm === 0) return 'div by zero';
      if (srcBit(code) === BPF_K && o >= 0x60 && (o <= 0x70 || o === BPF_ARSH)) {
        if (imm < 0 || imm >= (is64 ? 64 : 32)) return `invalid shift ${imm}`;
      }
      return undefined;
    }
    case BPF_JMP:
    case BPF_JMP32: {
      const is32 = cls(code) === BPF_JMP32;
      const o = op(code);
      if (o === BPF_JA) {
        if (srcBit(code) !== BPF_K || src !== 0 || dst !== 0) return 'BPF_JA uses reserved fields';
        if (is32 ? off !== 0 : imm !== 0) return 'BPF_JA uses reserved fields';
        return undefined;
      }
      if (o === BPF_CALL) {
        if (is32) return unknown;
        if (srcBit(code) === BPF_X) {
          if (src !== 0 || off !== 0 || imm !== 0) return 'BPF_CALL uses reserved fields';
          return undefined;
        }
        if (dst !== 0 || src > BPF_PSEUDO_KFUNC_CALL || (off !== 0 && src !== BPF_PSEUDO_KFUNC_CALL))
          return 'BPF_CALL uses reserved fields';
        return undefined;
      }
      if (o === BPF_EXIT) {
        if (is32 || srcBit(code) !== BPF_K || src !== 0 || dst !== 0 || off !== 0 || imm !== 0)
          return is32 ? unknown : 'BPF_EXIT uses reserved fields';
        return undefined;
      }
      if (o > 0xd0) return unknown;
      if (srcBit(code) === BPF_X ? imm !== 0 : src !== 0) return 'BPF_JMP/JMP32 uses reserved fields';
      return undefined;
    }
    case BPF_LD: {
      if (code === OPCODE_LD_IMM64) {
        if (off !== 0 || src > BPF_PSEUDO_MAP_IDX_VALUE) return 'invalid BPF_LD_IMM insn';
        return undefined;
      }
      const m = mode(code);
      if ((m === BPF_ABS || m === BPF_IND) && size(code) !== BPF_DW) {
        if (dst !== 0 || off !== 0 || (m === BPF_ABS && src !== 0))
          return 'BPF_LD_[ABS|IND] uses reserved fields';
        return undefined;
      }
      return m === BPF_IMM ? 'invalid BPF_LD_IMM insn' : unknown;
    }
    case BPF_LDX: {
      const m = mode(code);
      if (m === BPF_MEM || (m === BPF_MEMSX && size(code) !== BPF_DW)) {
        return imm !== 0 ? 'BPF_LDX uses reserved fields' : undefined;
      }
      return unknown;
    }
    case BPF_ST: {
      if (mode(code) !== BPF_MEM) return unknown;
      return src !== 0 ? 'BPF_ST uses reserved fields' : undefined;
    }
    case BPF_STX: {
      const m = mode(code);
      if (m === BPF_MEM) return imm !== 0 ? 'BPF_STX uses reserved fields' : undefined;
      if (m !== BPF_ATOMIC) return unknown;
      const sz = size(code);
      // load-acquire and store-release (kernel 6.15+) exist for every size; the rest for W and DW only.
      if (imm === BPF_LOAD_ACQ || imm === BPF_STORE_REL) return undefined;
      if (sz !== BPF_W && sz !== BPF_DW) return 'invalid atomic operand size';
      return ATOMIC_OPS.has(imm) ? undefined : `BPF_ATOMIC uses invalid atomic opcode ${hex2(imm)}`;
    }
  }
  return unknown;
}

/** Sizes (bytes) of a load/store, for callers that need the number. */
export function accessSize(code: number): 1 | 2 | 4 | 8 {
  switch (size(code)) {
    case BPF_B:
      return 1;
    case BPF_H:
      return 2;
    case BPF_W:
      return 4;
    default:
      return 8;
  }
}

export const isCall = (insn: Insn): boolean => cls(insn.code) === BPF_JMP && op(insn.code) === BPF_CALL;
export const isExit = (insn: Insn): boolean => insn.code === (BPF_JMP | BPF_EXIT);
export const isLdx = (insn: Insn): boolean => cls(insn.code) === BPF_LDX;
export const usesX = (insn: Insn): boolean => srcBit(insn.code) === BPF_X;
export const isAtomic = (insn: Insn): boolean => cls(insn.code) === BPF_STX && mode(insn.code) === BPF_ATOMIC;
