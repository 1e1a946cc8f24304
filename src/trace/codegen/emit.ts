/**
 * A small eBPF instruction builder with labels: jumps, bpf-to-bpf calls and callback addresses
 * (BPF_PSEUDO_FUNC) are resolved to slot offsets by finish().
 */
import { type Insn, splitImm64 } from '../../isa/insn.js';
import {
  BPF_ALU64,
  BPF_B,
  BPF_CALL,
  BPF_DW,
  BPF_EXIT,
  BPF_H,
  BPF_JA,
  BPF_JMP,
  BPF_K,
  BPF_LDX,
  BPF_MEM,
  BPF_MOV,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_IDX,
  BPF_ST,
  BPF_STX,
  BPF_W,
  BPF_X,
  OPCODE_LD_IMM64,
} from '../../isa/opcodes.js';

export const SIZE_CODE: Record<number, number> = { 1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW };

interface Item {
  insn: Insn;
  /** Label a jump/call/func-address refers to. */
  target?: number;
  kind?: 'jmp' | 'call' | 'func';
}

export class Asm {
  private readonly items: Item[] = [];
  private readonly labels: number[] = [];

  get length(): number {
    return this.items.length;
  }

  newLabel(): number {
    this.labels.push(-1);
    return this.labels.length - 1;
  }

  bind(label: number): void {
    this.labels[label] = this.items.length;
  }

  raw(insn: Insn): void {
    this.items.push({ insn });
  }

  movImm(dst: number, imm: number | bigint): void {
    const v = BigInt(imm);
    if (v >= -(1n << 31n) && v < 1n << 31n) {
      this.raw({ code: BPF_ALU64 | BPF_MOV | BPF_K, dst, src: 0, off: 0, imm: Number(v) });
    } else {
      this.ldImm64(dst, v);
    }
  }

  mov(dst: number, src: number): void {
    if (dst !== src) this.raw({ code: BPF_ALU64 | BPF_MOV | BPF_X, dst, src, off: 0, imm: 0 });
  }

  ldImm64(dst: number, v: bigint): void {
    const { imm, imm2 } = splitImm64(v);
    this.raw({ code: OPCODE_LD_IMM64, dst, src: 0, off: 0, imm, imm2 });
  }

  ldMap(dst: number, mapIndex: number): void {
    this.raw({ code: OPCODE_LD_IMM64, dst, src: BPF_PSEUDO_MAP_IDX, off: 0, imm: mapIndex, imm2: 0 });
  }

  /** ALU64 op with an immediate (must fit in s32). `off` 1 selects sdiv/smod. */
  aluImm(op: number, dst: number, imm: number, off = 0): void {
    this.raw({ code: BPF_ALU64 | op | BPF_K, dst, src: 0, off, imm });
  }

  alu(op: number, dst: number, src: number, off = 0): void {
    this.raw({ code: BPF_ALU64 | op | BPF_X, dst, src, off, imm: 0 });
  }

  ldx(size: number, dst: number, src: number, off: number): void {
    this.raw({ code: BPF_LDX | BPF_MEM | (SIZE_CODE[size] as number), dst, src, off, imm: 0 });
  }

  stx(size: number, dst: number, off: number, src: number): void {
    this.raw({ code: BPF_STX | BPF_MEM | (SIZE_CODE[size] as number), dst, src, off, imm: 0 });
  }

  st(size: number, dst: number, off: number, imm: number): void {
    this.raw({ code: BPF_ST | BPF_MEM | (SIZE_CODE[size] as number), dst, src: 0, off, imm });
  }

  jmp(label: number): void {
    this.items.push({
      insn: { code: BPF_JMP | BPF_JA, dst: 0, src: 0, off: 0, imm: 0 },
      target: label,
      kind: 'jmp',
    });
  }

  /** `if dst OP imm goto label` */
  jImm(op: number, dst: number, imm: number, label: number): void {
    this.items.push({
      insn: { code: BPF_JMP | op | BPF_K, dst, src: 0, off: 0, imm },
      target: label,
      kind: 'jmp',
    });
  }

  /** `if dst OP src goto label` */
  jReg(op: number, dst: number, src: number, label: number): void {
    this.items.push({
      insn: { code: BPF_JMP | op | BPF_X, dst, src, off: 0, imm: 0 },
      target: label,
      kind: 'jmp',
    });
  }

  call(helper: number): void {
    this.raw({ code: BPF_JMP | BPF_CALL, dst: 0, src: 0, off: 0, imm: helper });
  }

  callLocal(label: number): void {
    this.items.push({
      insn: { code: BPF_JMP | BPF_CALL, dst: 0, src: BPF_PSEUDO_CALL, off: 0, imm: 0 },
      target: label,
      kind: 'call',
    });
  }

  /** dst = address of the function at `label` (a callback). */
  ldFunc(dst: number, label: number): void {
    this.items.push({
      insn: { code: OPCODE_LD_IMM64, dst, src: BPF_PSEUDO_FUNC, off: 0, imm: 0, imm2: 0 },
      target: label,
      kind: 'func',
    });
  }

  exit(): void {
    this.raw({ code: BPF_JMP | BPF_EXIT, dst: 0, src: 0, off: 0, imm: 0 });
  }

  private slotOf: number[] = [];

  /** Slot index of a label (after finish()). */
  labelSlot(label: number): number {
    return this.slotOf[this.labels[label] as number] as number;
  }

  /** Resolves labels; returns the instructions. */
  finish(): Insn[] {
    const slotOf: number[] = [];
    this.slotOf = slotOf;
    let slot = 0;
    for (const it of this.items) {
      slotOf.push(slot);
      slot += it.insn.code === OPCODE_LD_IMM64 ? 2 : 1;
    }
    slotOf.push(slot);
    return this.items.map((it, i) => {
      if (it.target === undefined) return it.insn;
      const at = this.labels[it.target];
      if (at === undefined || at < 0) throw new Error(`unbound label ${it.target}`);
      const rel = (slotOf[at] as number) - (slotOf[i] as number) - 1;
      if (it.kind === 'jmp') {
        if (rel < -32768 || rel > 32767) throw new Error('jump out of range');
        return { ...it.insn, off: rel };
      }
      return { ...it.insn, imm: rel };
    });
  }
}
