/**
 * The eBPF instruction encoding: RFC 9669 plus the Linux kernel's extensions.
 * Field and constant names follow include/uapi/linux/bpf.h so they can be grepped against it.
 */

// Instruction classes (low 3 bits of the opcode).
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_JMP32 = 0x06;
export const BPF_ALU64 = 0x07;

// Source operand (bit 3) for ALU and JMP classes.
export const BPF_K = 0x00;
export const BPF_X = 0x08;

// ALU operations (high 4 bits).
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;
export const BPF_MOV = 0xb0;
export const BPF_ARSH = 0xc0;
export const BPF_END = 0xd0;

// BPF_END direction (in the source bit): to little or big endian; with ALU64 it is an unconditional bswap.
export const BPF_TO_LE = 0x00;
export const BPF_TO_BE = 0x08;

// Jump operations (high 4 bits).
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
export const BPF_JNE = 0x50;
export const BPF_JSGT = 0x60;
export const BPF_JSGE = 0x70;
export const BPF_CALL = 0x80;
export const BPF_EXIT = 0x90;
export const BPF_JLT = 0xa0;
export const BPF_JLE = 0xb0;
export const BPF_JSLT = 0xc0;
export const BPF_JSLE = 0xd0;

// Load/store size (bits 3-4).
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_DW = 0x18;

// Load/store mode (bits 5-7).
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_MEMSX = 0x80;
export const BPF_ATOMIC = 0xc0;

// Atomic operations (in imm).
export const BPF_FETCH = 0x01;
export const BPF_XCHG = 0xe0 | BPF_FETCH;
export const BPF_CMPXCHG = 0xf0 | BPF_FETCH;
export const BPF_LOAD_ACQ = 0x100;
export const BPF_STORE_REL = 0x110;

// LD_IMM64 source pseudo values.
export const BPF_PSEUDO_MAP_FD = 1;
export const BPF_PSEUDO_MAP_VALUE = 2;
export const BPF_PSEUDO_BTF_ID = 3;
export const BPF_PSEUDO_FUNC = 4;
export const BPF_PSEUDO_MAP_IDX = 5;
export const BPF_PSEUDO_MAP_IDX_VALUE = 6;

// CALL source pseudo values.
export const BPF_PSEUDO_CALL = 1;
export const BPF_PSEUDO_KFUNC_CALL = 2;

export const MAX_BPF_REG = 11;
export const BPF_REG_FP = 10;
export const INSN_SIZE = 8;
/** Stack bytes per bpf-to-bpf frame and the deepest call chain the kernel allows. */
export const MAX_BPF_STACK = 512;
export const MAX_CALL_FRAMES = 8;

export const OPCODE_LD_IMM64 = BPF_LD | BPF_IMM | BPF_DW; // 0x18

export const cls = (code: number): number => code & 0x07;
export const op = (code: number): number => code & 0xf0;
export const srcBit = (code: number): number => code & 0x08;
export const size = (code: number): number => code & 0x18;
export const mode = (code: number): number => code & 0xe0;

export function isAluClass(c: number): boolean {
  return c === BPF_ALU || c === BPF_ALU64;
}
export function isJmpClass(c: number): boolean {
  return c === BPF_JMP || c === BPF_JMP32;
}

export const SIZE_BYTES: Readonly<Record<number, 1 | 2 | 4 | 8>> = {
  [BPF_B]: 1,
  [BPF_H]: 2,
  [BPF_W]: 4,
  [BPF_DW]: 8,
};
export const SIZE_NAMES: Readonly<Record<number, 'u8' | 'u16' | 'u32' | 'u64'>> = {
  [BPF_B]: 'u8',
  [BPF_H]: 'u16',
  [BPF_W]: 'u32',
  [BPF_DW]: 'u64',
};
