/**
 * The disassembler: instructions as LLVM prints them (`llvm-objdump -d`, LLVM 19 syntax).
 *
 * Conventions, all checked against llvm-objdump-19 (see test/disasm.test.ts):
 * - every immediate and offset is hexadecimal and signed: `r1 += -0x1`, `*(u32 *)(r10 - 0x8) = 0x5`;
 * - jump offsets always carry a sign: `goto +0x0`, `if w1 s< w2 goto -0x3`;
 * - LD_IMM64 prints its 64-bit constant signed, with ` ll`; with a pseudo source (map fd, map value, BTF id,
 *   func...) LLVM prints `ld_pseudo\tr1, 0x1, 0x7` (source, then the first imm only);
 * - plain `llvm-objdump -d` (no --mcpu) names 32-bit loads/stores with r registers (`r0 = *(u32 *)(r1 + 0x0)`);
 *   with `--mcpu=v3`/`v4` (our `alu32: true`) they use w registers (`w0 = *(u32 *)(r1 + 0x0)`,
 *   `*(u8 *)(r1 + 0x0) = w2`, `lock *(u32 *)(r1 + 0x0) += w2`). Without --mcpu, LLVM 19 cannot decode the
 *   32-bit atomics other than `lock ... +=` and prints `<unknown>`; we print the alu32 form for them instead.
 * - where LLVM 19 has no syntax for a valid instruction we use the syntax of later LLVM releases:
 *   `r0 = load_acquire((u64 *)(r1 + 0x0))`, `store_release((u64 *)(r1 + 0x0), r2)`, and for LD_IND with a
 *   non-zero imm (which LLVM drops), `r0 = *(u16 *)skb[r1 + 0x4]`.
 * - invalid instructions print as `<unknown opcode 0xNN>` or `<invalid: reason>` (LLVM prints `<unknown>`).
 */
import type { DecodedInsn, Insn } from './insn.js';
import { decode, imm64, validate } from './insn.js';
import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_IND,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_LSH,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_SUB,
  BPF_TO_BE,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  cls,
  INSN_SIZE,
  mode,
  OPCODE_LD_IMM64,
  op,
  SIZE_NAMES,
  size,
  srcBit,
} from './opcodes.js';

export interface FormatOptions {
  /**
   * Print 32-bit and narrower loads, stores and atomics with w registers, as `llvm-objdump --mcpu=v3` (or v4)
   * does. Default false: what plain `llvm-objdump -d` prints.
   */
  alu32?: boolean;
  /**
   * Print the fields llvm-objdump leaves out, in the forms the LLVM-syntax assembler reads back:
   * `r1 = map_fd(0x3) ll` and the other LD_IMM64 pseudo sources, `call pc+0x3` (bpf-to-bpf),
   * `call kfunc(0x4d2, 0x1)`. Default false: exactly llvm-objdump's text.
   */
  lossless?: boolean;
}

const PSEUDO_LD_NAMES: Readonly<Record<number, string>> = {
  1: 'map_fd',
  2: 'map_value',
  3: 'btf_id',
  5: 'map_idx',
  6: 'map_idx_value',
};

/** The lossless text of an LD_IMM64 with a pseudo source (see FormatOptions.lossless). */
function pseudoLoad(insn: Insn): string {
  const second = insn.imm2 ?? 0;
  const withSecond = (first: string) => (second === 0 ? first : `${first}, ${hexSigned(second)}`);
  if (insn.src === 4) return `r${insn.dst} = func(${withSecond(hexOffset(insn.imm))}) ll`;
  const name = PSEUDO_LD_NAMES[insn.src];
  const args =
    insn.src === 2 || insn.src === 6
      ? `${hexSigned(insn.imm)}, ${hexSigned(second)}`
      : withSecond(hexSigned(insn.imm));
  return name === undefined
    ? `ld_pseudo\tr${insn.dst}, ${hexSigned(insn.src)}, ${withSecond(hexSigned(insn.imm))}`
    : `r${insn.dst} = ${name}(${args}) ll`;
}

function callText(insn: Insn, lossless: boolean): string {
  if (lossless && insn.src === 1) return `call pc${hexOffset(insn.imm)}`;
  if (lossless && insn.src === 2) {
    return `call kfunc(${hexSigned(insn.imm)}${insn.off === 0 ? '' : `, ${hexSigned(insn.off)}`})`;
  }
  return `call ${hexSigned(insn.imm)}`;
}

/** A signed number in LLVM's style: `0x1f`, `-0x1f`. Accepts numbers and bigints. */
export function hexSigned(n: number | bigint): string {
  const v = BigInt(n);
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

/** A jump offset in LLVM's style: always signed, `+0x2`, `-0x3`, `+0x0`. */
export function hexOffset(n: number): string {
  return n < 0 ? `-0x${(-n).toString(16)}` : `+0x${n.toString(16)}`;
}

const ALU_OPS: Readonly<Record<number, string>> = {
  [BPF_ADD]: '+=',
  [BPF_SUB]: '-=',
  [BPF_MUL]: '*=',
  [BPF_DIV]: '/=',
  [BPF_OR]: '|=',
  [BPF_AND]: '&=',
  [BPF_LSH]: '<<=',
  [BPF_RSH]: '>>=',
  [BPF_MOD]: '%=',
  [BPF_XOR]: '^=',
  [BPF_ARSH]: 's>>=',
};

const JMP_OPS: Readonly<Record<number, string>> = {
  16: '==',
  32: '>',
  48: '>=',
  64: '&',
  80: '!=',
  96: 's>',
  112: 's>=',
  160: '<',
  176: '<=',
  192: 's<',
  208: 's<=',
};

const ATOMIC_NAMES: Readonly<Record<number, string>> = {
  [BPF_ADD]: 'add',
  [BPF_OR]: 'or',
  [BPF_AND]: 'and',
  [BPF_XOR]: 'xor',
};

/** `(r1 + 0x4)` / `(r1 - 0x4)`: a register plus a signed offset as LLVM prints memory operands. */
function memOperand(reg: number, off: number): string {
  return off < 0 ? `r${reg} - 0x${(-off).toString(16)}` : `r${reg} + 0x${off.toString(16)}`;
}

/** Why the instruction is invalid, or undefined: the decoder's `problem` when present, else `validate`. */
function problemOf(insn: Insn | DecodedInsn): string | undefined {
  if ('problem' in insn && insn.problem !== undefined) return insn.problem;
  return validate(insn);
}

function invalidText(problem: string, code: number): string {
  if (problem.startsWith('unknown opcode')) return `<unknown opcode 0x${code.toString(16).padStart(2, '0')}>`;
  return `<invalid: ${problem}>`;
}

/**
 * One instruction's text exactly as llvm-objdump-19 prints it (without the address, bytes and the
 * `<label+0x..>` annotation of branch targets).
 */
export function formatInsn(insn: Insn | DecodedInsn, options: FormatOptions = {}): string {
  const problem = problemOf(insn);
  if (problem !== undefined) return invalidText(problem, insn.code);
  const { code, dst, src, off, imm } = insn;
  const alu32 = options.alu32 ?? false;
  const lossless = options.lossless ?? false;
  switch (cls(code)) {
    case BPF_ALU:
    case BPF_ALU64: {
      const r = cls(code) === BPF_ALU64 ? 'r' : 'w';
      const o = op(code);
      const x = srcBit(code) === BPF_X;
      if (o === BPF_END) {
        const kind = cls(code) === BPF_ALU64 ? 'bswap' : srcBit(code) === BPF_TO_BE ? 'be' : 'le';
        return `r${dst} = ${kind}${imm} r${dst}`;
      }
      if (o === BPF_NEG) return `${r}${dst} = -${r}${dst}`;
      if (o === BPF_MOV) {
        if (!x) return `${r}${dst} = ${hexSigned(imm)}`;
        return off === 0 ? `${r}${dst} = ${r}${src}` : `${r}${dst} = (s${off})${r}${src}`;
      }
      const sym = (off === 1 ? 's' : '') + ALU_OPS[o];
      return `${r}${dst} ${sym} ${x ? `${r}${src}` : hexSigned(imm)}`;
    }
    case BPF_JMP:
    case BPF_JMP32: {
      const o = op(code);
      if (o === BPF_JA) return cls(code) === BPF_JMP32 ? `gotol ${hexOffset(imm)}` : `goto ${hexOffset(off)}`;
      if (o === BPF_CALL) return srcBit(code) === BPF_X ? `callx r${dst}` : callText(insn, lossless);
      if (o === BPF_EXIT) return 'exit';
      const r = cls(code) === BPF_JMP32 ? 'w' : 'r';
      const rhs = srcBit(code) === BPF_X ? `${r}${src}` : hexSigned(imm);
      return `if ${r}${dst} ${JMP_OPS[o]} ${rhs} goto ${hexOffset(off)}`;
    }
    case BPF_LD: {
      if (code === OPCODE_LD_IMM64) {
        if (src !== 0 && lossless) return pseudoLoad(insn);
        if (src !== 0) return `ld_pseudo\tr${dst}, ${hexSigned(src)}, ${hexSigned(imm)}`;
        return `r${dst} = ${hexSigned(BigInt.asIntN(64, imm64(insn)))} ll`;
      }
      const sz = SIZE_NAMES[size(code)];
      if (mode(code) === BPF_ABS) return `r0 = *(${sz} *)skb[${hexSigned(imm)}]`;
      if (mode(code) === BPF_IND) {
        // LLVM ignores imm of LD_IND; the kernel adds it to the register.
        const extra = imm === 0 ? '' : imm < 0 ? ` - 0x${(-imm).toString(16)}` : ` + 0x${imm.toString(16)}`;
        return `r0 = *(${sz} *)skb[r${src}${extra}]`;
      }
      break;
    }
    case BPF_LDX: {
      const signed = mode(code) === BPF_MEMSX;
      const sz = SIZE_NAMES[size(code)];
      const type = signed ? sz.replace('u', 's') : sz;
      const r = alu32 && !signed && size(code) !== BPF_DW ? 'w' : 'r';
      return `${r}${dst} = *(${type} *)(${memOperand(src, off)})`;
    }
    case BPF_ST:
      return `*(${SIZE_NAMES[size(code)]} *)(${memOperand(dst, off)}) = ${hexSigned(imm)}`;
    case BPF_STX: {
      const sz = SIZE_NAMES[size(code)];
      const is64 = size(code) === BPF_DW;
      if (mode(code) !== BPF_ATOMIC) {
        const r = alu32 && !is64 ? 'w' : 'r';
        return `*(${sz} *)(${memOperand(dst, off)}) = ${r}${src}`;
      }
      const mem = memOperand(dst, off);
      const r = is64 ? 'r' : 'w';
      const plain = alu32 && !is64 ? 'w' : 'r';
      if (imm === BPF_LOAD_ACQ) return `${plain}${dst} = load_acquire((${sz} *)(${memOperand(src, off)}))`;
      if (imm === BPF_STORE_REL) return `store_release((${sz} *)(${mem}), ${plain}${src})`;
      if (imm === BPF_XCHG) return `${r}${src} = ${is64 ? 'xchg_64' : 'xchg32_32'}(${mem}, ${r}${src})`;
      if (imm === BPF_CMPXCHG)
        return `${r}0 = ${is64 ? 'cmpxchg_64' : 'cmpxchg32_32'}(${mem}, ${r}0, ${r}${src})`;
      const name = ATOMIC_NAMES[imm & ~BPF_FETCH];
      if (imm & BPF_FETCH) return `${r}${src} = atomic_fetch_${name}((${sz} *)(${mem}), ${r}${src})`;
      // Plain `llvm-objdump -d` prints the 32-bit lock add (its only 32-bit atomic) with an r register.
      const lockReg = is64 || (!alu32 && imm === BPF_ADD) ? 'r' : 'w';
      return `lock *(${sz} *)(${mem}) ${ALU_OPS[imm]} ${lockReg}${src}`;
    }
  }
  return invalidText(`unknown opcode ${code.toString(16)}`, code);
}

// ---------------------------------------------------------------------------------------------------------
// Layout: lines as llvm-objdump -d lays them out.

/** A symbol that names a position in a code section: byte offset `value`, ELF `type` (STT_*) when known. */
export interface DisasmSymbol {
  name: string;
  value: number;
  type?: number;
}

export interface DisassembleOptions extends FormatOptions {
  /** The bytecode is big endian (objects built with -target bpfeb). */
  bigEndian?: boolean;
  /** Show the raw instruction bytes between address and text (default true, like llvm-objdump). */
  rawBytes?: boolean;
  /**
   * Symbols of the code: a `0000000000000038 <name>:` header is printed before the first instruction of each
   * one, and branch targets are annotated `<name+0x10>` as llvm-objdump does. Without symbols, a header with
   * `sectionName` is printed only when `sectionName` is given.
   */
  symbols?: readonly DisasmSymbol[];
  /** Name used for the dummy symbol at offset 0 when no symbol starts there (llvm-objdump uses the section name). */
  sectionName?: string;
  /**
   * Source line records (`.BTF.ext` line_info of this code, byte offsets in it): the source line is printed as
   * `; <line>` before the first instruction of each line, as `llvm-objdump -S` does.
   */
  lineInfo?: readonly DisasmLineInfo[];
}

/** A source line record: the instruction at byte offset `insnOff` comes from line `lineNum` of `fileName`. */
export interface DisasmLineInfo {
  insnOff: number;
  /** The source line's text. */
  line: string;
  fileName: string;
  lineNum: number;
}

const STT_SECTION = 3;
const STT_FILE = 4;

interface Label {
  name: string;
  addr: bigint;
}

/** The symbols llvm-objdump shows for a section: sorted by (address, type, name), one per address (the last). */
function labelsFor(symbols: readonly DisasmSymbol[] | undefined, sectionName: string | undefined): Label[] {
  const list = (symbols ?? [])
    .filter((s) => s.type !== STT_SECTION && s.type !== STT_FILE)
    .map((s, i) => ({ ...s, i }))
    .sort((a, b) =>
      a.value !== b.value
        ? a.value - b.value
        : (a.type ?? 0) !== (b.type ?? 0)
          ? (a.type ?? 0) - (b.type ?? 0)
          : a.name < b.name
            ? -1
            : a.name > b.name
              ? 1
              : a.i - b.i,
    );
  const out: Label[] = [];
  for (const s of list) {
    const addr = BigInt(s.value);
    if (out.length > 0 && out[out.length - 1].addr === addr) out[out.length - 1] = { name: s.name, addr };
    else out.push({ name: s.name, addr });
  }
  if ((out.length === 0 || out[0].addr !== 0n) && sectionName !== undefined) {
    out.unshift({ name: sectionName, addr: 0n });
  }
  return out;
}

const hexBytes = (bytes: Uint8Array, from: number, to: number): string => {
  const parts: string[] = [];
  for (let i = from; i < Math.min(to, bytes.length); i++) parts.push(bytes[i].toString(16).padStart(2, '0'));
  return parts.join(' ');
};

/** Byte address a branch at `pc` jumps to, as llvm computes it (unsigned 64-bit), or undefined. */
function branchTarget(insn: DecodedInsn): bigint | undefined {
  if (insn.problem !== undefined) return undefined;
  const c = cls(insn.code);
  if (c !== BPF_JMP && c !== BPF_JMP32) return undefined;
  const o = op(insn.code);
  if (o === BPF_CALL || o === BPF_EXIT) return undefined;
  const delta = c === BPF_JMP32 && o === BPF_JA ? insn.imm : insn.off;
  return BigInt.asUintN(64, BigInt(insn.pc + 1 + delta) * BigInt(INSN_SIZE));
}

function annotate(target: bigint, labels: readonly Label[]): string {
  let best: Label | undefined;
  for (const l of labels) if (l.addr <= target) best = l;
  if (best === undefined) return '';
  const delta = BigInt.asUintN(64, target - best.addr);
  return delta === 0n ? ` <${best.name}>` : ` <${best.name}+0x${delta.toString(16)}>`;
}

/**
 * Disassembles bytecode (or already decoded instructions) into llvm-objdump's line layout:
 * `      12:\t<bytes>\t<text>`, the slot index right-aligned in 8 columns, LD_IMM64 with its 16 bytes on one line.
 * Returns the lines (without trailing newlines).
 */
export function disassembleLines(
  code: Uint8Array | readonly Insn[],
  options: DisassembleOptions = {},
): string[] {
  const bigEndian = options.bigEndian ?? false;
  const raw = code instanceof Uint8Array ? code : undefined;
  let insns: DecodedInsn[];
  if (raw !== undefined) insns = decode(raw, { bigEndian });
  else {
    insns = [];
    let pc = 0;
    for (const i of code as readonly Insn[]) {
      const d: DecodedInsn = { ...i, pc };
      const problem = 'problem' in i ? (i as DecodedInsn).problem : validate(i);
      if (problem !== undefined) d.problem = problem;
      else delete d.problem;
      insns.push(d);
      pc += i.code === OPCODE_LD_IMM64 ? 2 : 1;
    }
  }
  const bytes = raw ?? encodeForDisplay(insns, bigEndian);
  const labels = labelsFor(options.symbols, options.sectionName);
  const showBytes = options.rawBytes ?? true;
  const lines: string[] = [];
  // Source lines: llvm-objdump -S prints a line when the instruction's (file, line) differs from the one
  // printed last. Its line table is DWARF's; ours is BTF's, which leaves out the compiler's line-0 entries
  // (after which llvm-objdump prints the same line again), so llvm-objdump may repeat a line we print once.
  const sourceAt = new Map<number, DisasmLineInfo>();
  for (const r of options.lineInfo ?? []) if (!sourceAt.has(r.insnOff)) sourceAt.set(r.insnOff, r);
  let lastSource: DisasmLineInfo | undefined;
  let nextLabel = 0;
  for (let k = 0; k < insns.length; k++) {
    const insn = insns[k];
    const at = BigInt(insn.pc * INSN_SIZE);
    while (nextLabel < labels.length && labels[nextLabel].addr <= at) {
      const l = labels[nextLabel++];
      if (l.addr !== at) continue; // a symbol inside an instruction: llvm-objdump would split; we do not
      if (lines.length > 0) lines.push('');
      lines.push(`${l.addr.toString(16).padStart(16, '0')} <${l.name}>:`);
    }
    const src = sourceAt.get(insn.pc * INSN_SIZE);
    if (
      src !== undefined &&
      src.lineNum !== 0 &&
      (lastSource === undefined || src.lineNum !== lastSource.lineNum || src.fileName !== lastSource.fileName)
    ) {
      lines.push(`; ${src.line}`);
      lastSource = src;
    }
    const width = insn.code === OPCODE_LD_IMM64 && insn.imm2 !== undefined ? 16 : 8;
    const end =
      k + 1 < insns.length ? insns[k + 1].pc * INSN_SIZE : Math.min(bytes.length, insn.pc * 8 + width);
    const hex = hexBytes(bytes, insn.pc * INSN_SIZE, end);
    let text = formatInsn(insn, options);
    const target = labels.length > 0 ? branchTarget(insn) : undefined;
    if (target !== undefined) text += annotate(target, labels);
    const addr = String(insn.pc).padStart(8, ' ');
    lines.push(showBytes ? `${addr}:\t${hex}\t${text}` : `${addr}:\t${text}`);
  }
  return lines;
}

function encodeForDisplay(insns: readonly DecodedInsn[], bigEndian: boolean): Uint8Array {
  const total =
    insns.length === 0
      ? 0
      : insns[insns.length - 1].pc + (insns[insns.length - 1].code === OPCODE_LD_IMM64 ? 2 : 1);
  const out = new Uint8Array(total * INSN_SIZE);
  const view = new DataView(out.buffer);
  const put = (at: number, c: number, d: number, s: number, o: number, i: number) => {
    view.setUint8(at, c & 0xff);
    view.setUint8(at + 1, bigEndian ? ((d & 0xf) << 4) | (s & 0xf) : ((s & 0xf) << 4) | (d & 0xf));
    view.setInt16(at + 2, o, !bigEndian);
    view.setInt32(at + 4, i, !bigEndian);
  };
  for (const i of insns) {
    put(i.pc * INSN_SIZE, i.code, i.dst, i.src, i.off, i.imm);
    if (i.code === OPCODE_LD_IMM64) put((i.pc + 1) * INSN_SIZE, 0, 0, 0, 0, i.imm2 ?? 0);
  }
  return out;
}

/** Disassembles bytecode into one string, one line per instruction (see `disassembleLines`). */
export function disassemble(code: Uint8Array | readonly Insn[], options: DisassembleOptions = {}): string {
  const lines = disassembleLines(code, options);
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** One code section of an object file, as `disassembleObject` needs it (an ELF section and its symbols fit). */
export interface DisasmSection {
  name: string;
  data: Uint8Array;
  /** Symbols defined in this section (byte offsets); section and file symbols are ignored. */
  symbols: readonly DisasmSymbol[];
  /** Source line records of this section (see DisassembleOptions.lineInfo). */
  lineInfo?: readonly DisasmLineInfo[];
}

export interface DisassembleObjectOptions extends FormatOptions {
  /** The file name llvm-objdump prints in its first line. */
  fileName?: string;
  bigEndian?: boolean;
  rawBytes?: boolean;
}

/**
 * The whole `llvm-objdump -d FILE` output for the code sections of an object: the `file format` line, then
 * `Disassembly of section NAME:` and every function of each non-empty section.
 */
export function disassembleObject(
  sections: readonly DisasmSection[],
  options: DisassembleObjectOptions = {},
): string {
  let out = `\n${options.fileName ?? 'a.o'}:\tfile format elf64-bpf\n`;
  for (const s of sections) {
    if (s.data.length === 0) continue;
    out += `\nDisassembly of section ${s.name}:\n\n`;
    const lines = disassembleLines(s.data, {
      alu32: options.alu32,
      bigEndian: options.bigEndian,
      rawBytes: options.rawBytes,
      symbols: s.symbols,
      sectionName: s.name,
      lineInfo: s.lineInfo,
    });
    out += lines.map((l) => `${l}\n`).join('');
  }
  return out;
}
