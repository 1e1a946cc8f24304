/**
 * The kernel verifier's log format: its instruction printer (kernel/bpf/disasm.c print_bpf_insn,
 * which differs from LLVM's syntax: `(b7) r0 = 0`, `(07) r2 += -4`, `(61) r0 = *(u32 *)(r1 +0)`,
 * `(15) if r0 == 0x0 goto pc+1`, `(85) call bpf_map_lookup_elem#1`) and its number printing rules.
 */
import { helperById } from '../catalog/helpers.js';
import type { Insn } from '../isa/insn.js';
import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
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
  BPF_MOV,
  BPF_NEG,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_TO_BE,
  BPF_X,
  BPF_XCHG,
  cls,
  mode,
  OPCODE_LD_IMM64,
  op,
  SIZE_NAMES,
  size,
  srcBit,
} from '../isa/opcodes.js';

/** bpf_alu_string, indexed by op >> 4. */
export const ALU_STRING = [
  '+=',
  '-=',
  '*=',
  '/=',
  '|=',
  '&=',
  '<<=',
  '>>=',
  'neg',
  '%=',
  '^=',
  '=',
  's>>=',
  'endian',
];
const JMP_STRING = ['jmp', '==', '>', '>=', '&', '!=', 's>', 's>=', 'call', 'exit', '<', '<=', 's<', 's<='];
const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/** print_bpf_insn for one instruction, without the leading `N: `. */
export function kernelInsn(
  insn: Insn,
  mapAddr?: (imm: number) => bigint,
  kfuncName?: (imm: number) => string | undefined,
): string {
  const c = insn.code;
  const pre = `(${hex2(c)})`;
  const k = cls(c);
  if (k === BPF_ALU || k === BPF_ALU64) {
    const r = k === BPF_ALU64 ? 'r' : 'w';
    const o = op(c);
    if (o === BPF_END) {
      if (k === BPF_ALU64) return `${pre} r${insn.dst} = bswap${insn.imm} r${insn.dst}`;
      return `${pre} r${insn.dst} = ${srcBit(c) === BPF_TO_BE ? 'be' : 'le'}${insn.imm} r${insn.dst}`;
    }
    if (o === BPF_NEG) return `${pre} ${r}${insn.dst} = -${r}${insn.dst}`;
    if (srcBit(c) === BPF_X) {
      if (o === BPF_MOV && insn.off) {
        return `${pre} ${r}${insn.dst} = (s${insn.off})${r}${insn.src}`;
      }
      const opname =
        insn.off === 1 && (o === 0x30 || o === 0x90) ? `s${ALU_STRING[o >> 4]}` : ALU_STRING[o >> 4];
      return `${pre} ${r}${insn.dst} ${opname} ${r}${insn.src}`;
    }
    const opname =
      insn.off === 1 && (o === 0x30 || o === 0x90) ? `s${ALU_STRING[o >> 4]}` : ALU_STRING[o >> 4];
    return `${pre} ${r}${insn.dst} ${opname} ${insn.imm}`;
  }
  if (k === BPF_STX) {
    const sz = SIZE_NAMES[size(c)];
    const m = mode(c);
    if (m === BPF_MEM) return `${pre} *(${sz} *)(r${insn.dst} ${sgn(insn.off)}) = r${insn.src}`;
    if (m === BPF_ATOMIC) {
      const a = insn.imm;
      const dw = size(c) === 0x18;
      const names: Record<number, string> = { 0: 'add', 64: 'or', 80: 'and', 160: 'xor' };
      if (names[a] !== undefined)
        return `${pre} lock *(${sz} *)(r${insn.dst} ${sgn(insn.off)}) ${ALU_STRING[a >> 4]} r${insn.src}`;
      if (names[a & ~BPF_FETCH] !== undefined && a & BPF_FETCH)
        return `${pre} r${insn.src} = atomic${dw ? '64' : ''}_fetch_${names[a & ~BPF_FETCH]}((${sz} *)(r${insn.dst} ${sgn(insn.off)}), r${insn.src})`;
      if (a === BPF_CMPXCHG)
        return `${pre} r0 = atomic${dw ? '64' : ''}_cmpxchg((${sz} *)(r${insn.dst} ${sgn(insn.off)}), r0, r${insn.src})`;
      if (a === BPF_XCHG)
        return `${pre} r${insn.src} = atomic${dw ? '64' : ''}_xchg((${sz} *)(r${insn.dst} ${sgn(insn.off)}), r${insn.src})`;
      if (a === BPF_LOAD_ACQ)
        return `${pre} r${insn.dst} = load_acquire((${sz} *)(r${insn.src} ${sgn(insn.off)}))`;
      if (a === BPF_STORE_REL)
        return `${pre} store_release((${sz} *)(r${insn.dst} ${sgn(insn.off)}), r${insn.src})`;
    }
    return `${pre} BUG_${hex2(c)}`;
  }
  if (k === BPF_ST) {
    if (mode(c) === BPF_MEM)
      return `${pre} *(${SIZE_NAMES[size(c)]} *)(r${insn.dst} ${sgn(insn.off)}) = ${insn.imm}`;
    return `${pre} BUG_st_${hex2(c)}`;
  }
  if (k === BPF_LDX) {
    const m = mode(c);
    if (m === BPF_MEM || m === BPF_MEMSX) {
      const sz = m === BPF_MEMSX ? SIZE_NAMES[size(c)].replace('u', 's') : SIZE_NAMES[size(c)];
      return `${pre} r${insn.dst} = *(${sz} *)(r${insn.src} ${sgn(insn.off)})`;
    }
    return `${pre} BUG_ldx_${hex2(c)}`;
  }
  if (k === BPF_LD) {
    const m = mode(c);
    if (m === BPF_ABS) return `${pre} r0 = *(${SIZE_NAMES[size(c)]} *)skb[${insn.imm}]`;
    if (m === BPF_IND) return `${pre} r0 = *(${SIZE_NAMES[size(c)]} *)skb[r${insn.src} + ${insn.imm}]`;
    if (c === OPCODE_LD_IMM64) {
      let v = (BigInt(insn.imm2 ?? 0) << 32n) | BigInt(insn.imm >>> 0);
      if (insn.src === 1 || insn.src === 5) v = mapAddr ? mapAddr(insn.imm) : 0n;
      else if (insn.src === 2 || insn.src === 6)
        v = mapAddr ? mapAddr(insn.imm) + BigInt(insn.imm2 ?? 0) : 0n;
      return `${pre} r${insn.dst} = 0x${BigInt.asUintN(64, v).toString(16)}`;
    }
    return `${pre} BUG_ld_${hex2(c)}`;
  }
  if (k === BPF_JMP || k === BPF_JMP32) {
    const o = op(c);
    if (o === BPF_CALL && k === BPF_JMP) {
      if (srcBit(c) === BPF_X) return `${pre} callx r${insn.dst}`;
      if (insn.src === BPF_PSEUDO_CALL) return `${pre} call pc${sgn(insn.imm)}`;
      if (insn.src === BPF_PSEUDO_KFUNC_CALL) {
        const name = kfuncName?.(insn.imm);
        return name ? `${pre} call ${name}#${insn.imm}` : `${pre} call kernel-function`;
      }
      const h = helperById(insn.imm);
      return `${pre} call ${h && insn.imm > 0 ? `bpf_${h.name}` : 'unknown'}#${insn.imm}`;
    }
    if (o === BPF_EXIT && k === BPF_JMP) return `${pre} exit`;
    if (o === BPF_JA) {
      if (k === BPF_JMP32) return `${pre} gotol pc${sgn(insn.imm)}`;
      return `${pre} goto pc${sgn(insn.off)}`;
    }
    const r = k === BPF_JMP32 ? 'w' : 'r';
    const rhs = srcBit(c) === BPF_K ? `0x${(insn.imm >>> 0).toString(16)}` : `${r}${insn.src}`;
    return `${pre} if ${r}${insn.dst} ${JMP_STRING[o >> 4]} ${rhs} goto pc${sgn(insn.off)}`;
  }
  return `${pre} unknown`;
}

const sgn = (n: number) => (n >= 0 ? `+${n}` : `${n}`);

/** verbose_snum: decimal within the s16 range, hex otherwise. */
export function snum(v: bigint): string {
  const s = BigInt.asIntN(64, v);
  if (s >= -32768n && s <= 32767n) return s.toString();
  return `0x${BigInt.asUintN(64, v).toString(16)}`;
}
/** verbose_unum. */
export function unum(v: bigint): string {
  const u = BigInt.asUintN(64, v);
  if (u <= 32767n) return u.toString();
  return `0x${u.toString(16)}`;
}
/** The 32-bit variants: decimal within the s16 range, otherwise the u32 in hex. */
export function snum32(v: bigint): string {
  const s = BigInt.asIntN(32, v);
  if (s >= -32768n && s <= 32767n) return s.toString();
  return `0x${BigInt.asUintN(32, v).toString(16)}`;
}
export function unum32(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  if (u <= 32767n) return u.toString();
  return `0x${u.toString(16)}`;
}

/** vlog_alignment: the padding that puts `;` of an instruction's state annotation in column 40. */
export function alignPad(len: number): number {
  const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;
  return roundUp(Math.max(len + 4, 40), 8) - len - 1;
}
