/**
 * An assembler for LLVM's BPF assembly syntax: what `llvm-objdump -d` prints and what `llvm-mc`
 * accepts, plus a few tsbpf extensions for instructions that LLVM's syntax cannot say.
 *
 * Source is a sequence of statements separated by newlines or `;` (as in llvm-mc, where `;` is a
 * statement separator, not a comment). Comments: `#` and `//` to the end of the line, `/* ... *\/`.
 * A statement may start with labels (`LBB0_2:`, `foo:`); directives (`.text`, `.globl x`, ...)
 * that do not change the instruction stream are skipped, others are an error.
 *
 * Numbers: decimal, `0x` hex, `0b` binary, and (as in llvm-mc) a leading `0` means octal.
 * 32-bit immediates accept -2^31 .. 2^32-1 (0xffffffff is -1); `ll` constants -2^63 .. 2^64-1.
 * Jump targets are `+N`, `-N`, `N` (slots, relative to the next instruction) or a label, optionally
 * followed by llvm-objdump's `<sym+0x10>` annotation, which is ignored.
 *
 * The instruction forms are the table SHAPES below. tsbpf extensions (LLVM has no syntax for them;
 * src/isa/disasm.ts prints the same forms):
 *   r1 = map_fd(3) ll            LD_IMM64 src=1 (BPF_PSEUDO_MAP_FD), imm=3
 *   r1 = map_value(3, 16) ll     LD_IMM64 src=2 (BPF_PSEUDO_MAP_VALUE), imm=3, imm2=16
 *   r1 = btf_id(7) ll            LD_IMM64 src=3 (BPF_PSEUDO_BTF_ID), imm=7  (btf_id(7, fd): imm2=fd)
 *   r1 = func(+3) ll, func(foo)  LD_IMM64 src=4 (BPF_PSEUDO_FUNC), imm = target - pc - 1
 *   r1 = map_idx(0) ll           LD_IMM64 src=5 (BPF_PSEUDO_MAP_IDX)
 *   r1 = map_idx_value(0, 8) ll  LD_IMM64 src=6 (BPF_PSEUDO_MAP_IDX_VALUE), imm2=8
 *   (each single-argument form takes an optional second argument, imm2, for lossless printing;
 *    llvm's own `ld_pseudo r1, SRC, IMM` works too, and tsbpf adds `ld_pseudo r1, SRC, IMM, IMM2`)
 *   call pc+3, call pc-1         bpf-to-bpf call (src=1), imm relative like `call label`
 *   call kfunc(5), kfunc(5, 1)   kfunc call (src=2), imm=btf id, off=module fd index
 *   r0 = *(u8 *)skb[r1 + 4]      BPF_IND with a non-zero imm (llvm knows only skb[r1])
 *   w0 = load_acquire((u32 *)(r1 + 0)), store_release((u64 *)(r1 + 0), r2): LLVM 20's syntax.
 */
import { TsbpfError } from '../../errors.js';
import type { Insn } from '../insn.js';
import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
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
  BPF_IND,
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
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  BPF_RSH,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_SUB,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  OPCODE_LD_IMM64,
} from '../opcodes.js';

// ───────────────────────────── lexer ─────────────────────────────

type TokenKind = 'ident' | 'number' | 'punct' | 'string' | 'annotation' | 'eos';

interface Token {
  kind: TokenKind;
  text: string;
  value: bigint; // numbers only
  line: number;
  column: number;
}

function fail(at: { line: number; column: number }, message: string): never {
  throw new TsbpfError('asm', `line ${at.line}, column ${at.column}: ${message}`, {
    position: { line: at.line, column: at.column },
  });
}

/** Operators, longest first. The `s`-prefixed (signed) ones only start a token. */
const PUNCTUATION = [
  's>>=',
  '<<=',
  '>>=',
  's>=',
  's<=',
  's/=',
  's%=',
  '==',
  '!=',
  '>=',
  '<=',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '|=',
  '&=',
  '^=',
  's>',
  's<',
  '>',
  '<',
  '=',
  '+',
  '-',
  '*',
  '&',
  '(',
  ')',
  '[',
  ']',
  ',',
  ':',
  '@',
];

const isIdentStart = (c: string) => /[A-Za-z_.$]/.test(c);
const isIdentChar = (c: string) => /[A-Za-z0-9_.$]/.test(c);
const isDigit = (c: string) => c >= '0' && c <= '9';

function parseNumber(text: string): bigint | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) return BigInt(text);
  if (/^0[bB][01]+$/.test(text)) return BigInt(text);
  if (/^0[0-7]*$/.test(text)) return text.length === 1 ? 0n : BigInt(`0o${text.slice(1)}`);
  if (/^[1-9][0-9]*$/.test(text)) return BigInt(text);
  return undefined;
}

function lex(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const push = (kind: TokenKind, text: string, start: number, value = 0n) =>
    tokens.push({ kind, text, value, line, column: start - lineStart + 1 });
  const restOfLineIsBlank = (from: number): boolean => {
    let j = from;
    while (source[j] === ' ' || source[j] === '\t' || source[j] === '\r') j++;
    const c = source[j];
    return (
      c === undefined ||
      c === '\n' ||
      c === ';' ||
      c === '#' ||
      source.startsWith('//', j) ||
      source.startsWith('/*', j)
    );
  };
  const isAnnotation = (at: number): boolean => {
    const end = annotationEnd(source, at);
    return end !== undefined && restOfLineIsBlank(end);
  };
  while (i < source.length) {
    const c = source[i];
    if (c === '\n') {
      push('eos', '\n', i);
      i++;
      line++;
      lineStart = i;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++;
    } else if (c === ';') {
      push('eos', ';', i);
      i++;
    } else if (c === '#' || source.startsWith('//', i)) {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (source.startsWith('/*', i)) {
      const start = { line, column: i - lineStart + 1 };
      const end = source.indexOf('*/', i + 2);
      if (end < 0) fail(start, 'unterminated /* comment');
      for (let j = i; j < end; j++) {
        if (source[j] === '\n') {
          line++;
          lineStart = j + 1;
        }
      }
      i = end + 2;
    } else if (c === '"') {
      const start = i;
      i++;
      while (i < source.length && source[i] !== '"' && source[i] !== '\n') i += source[i] === '\\' ? 2 : 1;
      if (source[i] !== '"') fail({ line, column: start - lineStart + 1 }, 'unterminated string');
      i++;
      push('string', source.slice(start, i), start);
    } else if (isDigit(c)) {
      const start = i;
      while (i < source.length && isIdentChar(source[i]) && source[i] !== '.' && source[i] !== '$') i++;
      const text = source.slice(start, i);
      const value = parseNumber(text);
      if (value === undefined) fail({ line, column: start - lineStart + 1 }, `invalid number '${text}'`);
      push('number', text, start, value);
    } else if (c === '<' && isAnnotation(i)) {
      const end = annotationEnd(source, i) ?? i + 1;
      push('annotation', source.slice(i, end), i);
      i = end;
    } else {
      const signed = c === 's' ? PUNCTUATION.find((p) => p[0] === 's' && source.startsWith(p, i)) : undefined;
      if (signed) {
        push('punct', signed, i);
        i += signed.length;
      } else if (isIdentStart(c)) {
        const start = i;
        while (i < source.length && isIdentChar(source[i])) i++;
        push('ident', source.slice(start, i), start);
      } else {
        const p = PUNCTUATION.find((q) => q[0] !== 's' && source.startsWith(q, i));
        if (!p) fail({ line, column: i - lineStart + 1 }, `unexpected character '${c}'`);
        push('punct', p, i);
        i += p.length;
      }
    }
  }
  push('eos', '', i);
  return tokens;
}

/** llvm-objdump's `<sym+0x10>` after a jump: `<`, no blanks, `>`. Returns the index after `>`. */
function annotationEnd(source: string, at: number): number | undefined {
  let j = at + 1;
  while (j < source.length && !/[\s<>;#]/.test(source[j])) j++;
  return source[j] === '>' && j > at + 1 ? j + 1 : undefined;
}

// ───────────────────────────── operands ─────────────────────────────

/** What one pattern element captured. */
interface Capture {
  tok: Token; // first token of the operand, for error positions
  reg: number; // registers
  w: boolean; // registers: the 32-bit (wN) name
  value: bigint; // numbers, offsets, and the numeric part of table lookups
  label?: string; // jump targets and func() arguments that name a label
}

const ALU_OPS: Record<string, { op: number; signed?: boolean }> = {
  '+=': { op: BPF_ADD },
  '-=': { op: BPF_SUB },
  '*=': { op: BPF_MUL },
  '/=': { op: BPF_DIV },
  's/=': { op: BPF_DIV, signed: true },
  '%=': { op: BPF_MOD },
  's%=': { op: BPF_MOD, signed: true },
  '|=': { op: BPF_OR },
  '&=': { op: BPF_AND },
  '^=': { op: BPF_XOR },
  '<<=': { op: BPF_LSH },
  '>>=': { op: BPF_RSH },
  's>>=': { op: BPF_ARSH },
};
const JMP_OPS: Record<string, number> = {
  '==': BPF_JEQ,
  '!=': BPF_JNE,
  '>': BPF_JGT,
  '>=': BPF_JGE,
  '<': BPF_JLT,
  '<=': BPF_JLE,
  's>': BPF_JSGT,
  's>=': BPF_JSGE,
  's<': BPF_JSLT,
  's<=': BPF_JSLE,
  '&': BPF_JSET,
};
const LOCK_OPS: Record<string, number> = { '+=': BPF_ADD, '&=': BPF_AND, '|=': BPF_OR, '^=': BPF_XOR };
const FETCH_OPS: Record<string, number> = {
  atomic_fetch_add: BPF_ADD | BPF_FETCH,
  atomic_fetch_and: BPF_AND | BPF_FETCH,
  atomic_fetch_or: BPF_OR | BPF_FETCH,
  atomic_fetch_xor: BPF_XOR | BPF_FETCH,
};
const SIZES: Record<string, number> = { u8: BPF_B, u16: BPF_H, u32: BPF_W, u64: BPF_DW };
const SIGNED_SIZES: Record<string, number> = { s8: BPF_B, s16: BPF_H, s32: BPF_W };
const CAST_BITS: Record<string, number> = { s8: 8, s16: 16, s32: 32 };
/** Byte swaps: the opcode (class | BPF_END | direction) and the width in bits. */
const ENDIAN: Record<string, { code: number; bits: number }> = {};
for (const bits of [16, 32, 64]) {
  ENDIAN[`be${bits}`] = { code: BPF_ALU | BPF_END | BPF_TO_BE, bits };
  ENDIAN[`le${bits}`] = { code: BPF_ALU | BPF_END | BPF_TO_LE, bits };
  ENDIAN[`bswap${bits}`] = { code: BPF_ALU64 | BPF_END | BPF_TO_LE, bits };
}
const XCHG: Record<string, number> = { xchg_64: BPF_DW, xchg32_32: BPF_W };
const CMPXCHG: Record<string, number> = { cmpxchg_64: BPF_DW, cmpxchg32_32: BPF_W };
const PSEUDO: Record<string, number> = {
  map_fd: BPF_PSEUDO_MAP_FD,
  map_value: BPF_PSEUDO_MAP_VALUE,
  btf_id: BPF_PSEUDO_BTF_ID,
  func: BPF_PSEUDO_FUNC,
  map_idx: BPF_PSEUDO_MAP_IDX,
  map_idx_value: BPF_PSEUDO_MAP_IDX_VALUE,
};

function registerOf(tok: Token): { reg: number; w: boolean } | undefined {
  if (tok.kind !== 'ident') return undefined;
  const m = /^([rw])(10|[0-9])$/.exec(tok.text);
  return m ? { reg: Number(m[2]), w: m[1] === 'w' } : undefined;
}

/** Result of matching one element at token index i. */
type Step = { ok: true; next: number; cap?: Capture } | { ok: false; at: number; expected: string };

const capture = (tok: Token, extra: Partial<Capture> = {}): Capture => ({
  tok,
  reg: 0,
  w: false,
  value: 0n,
  ...extra,
});
const miss = (at: number, expected: string): Step => ({ ok: false, at, expected });

/** A number with an optional sign: `5`, `-0x1`, `+3`. */
function matchNumber(t: Token[], i: number): Step {
  const sign = t[i].kind === 'punct' && (t[i].text === '-' || t[i].text === '+') ? t[i].text : undefined;
  const n = sign ? i + 1 : i;
  if (t[n].kind !== 'number') return miss(n, 'a number');
  return { ok: true, next: n + 1, cap: capture(t[i], { value: sign === '-' ? -t[n].value : t[n].value }) };
}

/** An identifier from a table; the capture's value is the table entry. */
function matchWord(table: Record<string, number>, what: string) {
  return (t: Token[], i: number): Step =>
    t[i].kind === 'ident' && Object.hasOwn(table, t[i].text)
      ? { ok: true, next: i + 1, cap: capture(t[i], { value: BigInt(table[t[i].text]) }) }
      : miss(i, what);
}

/** An operator from a table; the capture's token names the operator. */
function matchOperator(table: Record<string, unknown>, what: string) {
  return (t: Token[], i: number): Step =>
    t[i].kind === 'punct' && Object.hasOwn(table, t[i].text)
      ? { ok: true, next: i + 1, cap: capture(t[i]) }
      : miss(i, what);
}

/** Names like r11 or W3 are never labels: they are misspelt registers. */
const looksLikeRegister = (tok: Token) => tok.kind === 'ident' && /^[rwRW][0-9]+$/.test(tok.text);
const isLabelToken = (tok: Token) => tok.kind === 'ident' && !looksLikeRegister(tok);

/** Pattern element classes. Lower-case words and punctuation in a pattern match themselves. */
const CLASSES: Record<string, (t: Token[], i: number) => Step> = {
  R: (t, i) => {
    const r = registerOf(t[i]);
    return r ? { ok: true, next: i + 1, cap: capture(t[i], r) } : miss(i, 'a register');
  },
  N: matchNumber,
  /** `+ N` or `- N` after a base register. */
  OFF: (t, i) => {
    if (t[i].kind !== 'punct' || (t[i].text !== '+' && t[i].text !== '-')) return miss(i, "'+' or '-'");
    if (t[i + 1].kind !== 'number') return miss(i + 1, 'a number');
    const v = t[i + 1].value;
    return { ok: true, next: i + 2, cap: capture(t[i + 1], { value: t[i].text === '-' ? -v : v }) };
  },
  /** A jump target: a slot offset or a label, then perhaps objdump's `<sym+0x..>`. */
  T: (t, i) => {
    let step: Step;
    if (isLabelToken(t[i])) step = { ok: true, next: i + 1, cap: capture(t[i], { label: t[i].text }) };
    else step = matchNumber(t, i);
    if (!step.ok) return miss(i, 'a jump target (+N, -N or a label)');
    return t[step.next].kind === 'annotation' ? { ...step, next: step.next + 1 } : step;
  },
  /** A number or a label (the argument of func()). */
  NL: (t, i) =>
    isLabelToken(t[i])
      ? { ok: true, next: i + 1, cap: capture(t[i], { label: t[i].text }) }
      : matchNumber(t, i),
  L: (t, i) =>
    isLabelToken(t[i])
      ? { ok: true, next: i + 1, cap: capture(t[i], { label: t[i].text }) }
      : miss(i, 'a label'),
  /** A symbol before `ll` (llvm-mc makes a relocation of it; we cannot). */
  SYM: (t, i) =>
    isLabelToken(t[i]) && t[i + 1].kind === 'ident' && t[i + 1].text === 'll'
      ? { ok: true, next: i + 1, cap: capture(t[i]) }
      : miss(i, 'a number'),
  SZ: matchWord(SIZES, 'u8, u16, u32 or u64'),
  SSZ: matchWord(SIGNED_SIZES, 's8, s16 or s32'),
  CAST: matchWord(CAST_BITS, 's8, s16 or s32'),
  END: (t, i) =>
    t[i].kind === 'ident' && Object.hasOwn(ENDIAN, t[i].text)
      ? { ok: true, next: i + 1, cap: capture(t[i]) }
      : miss(i, 'be16/be32/be64, le16/le32/le64 or bswap16/bswap32/bswap64'),
  FETCH: matchWord(FETCH_OPS, 'atomic_fetch_add/and/or/xor'),
  XCHG: matchWord(XCHG, 'xchg_64 or xchg32_32'),
  CMPXCHG: matchWord(CMPXCHG, 'cmpxchg_64 or cmpxchg32_32'),
  PSEUDO: matchWord(PSEUDO, 'map_fd, map_value, btf_id, func, map_idx or map_idx_value'),
  ALU: matchOperator(ALU_OPS, 'an ALU operator'),
  CMP: matchOperator(JMP_OPS, 'a comparison'),
  LOCK: matchOperator(LOCK_OPS, "'+=', '&=', '|=' or '^='"),
};

// ───────────────────────────── statement shapes ─────────────────────────────

/** What a statement assembles to: an instruction, and maybe a label to resolve into one field. */
interface Emit {
  insn: Insn;
  fixup?: { label: Token; field: 'off' | 'imm' };
}

const I32_MIN = -(2n ** 31n);
const I32_MAX = 2n ** 31n - 1n;

/** A 32-bit immediate: signed, or unsigned up to 0xffffffff (which wraps, as in llvm-mc). */
function imm32(c: Capture, what = 'immediate'): number {
  if (c.value < I32_MIN || c.value > 2n ** 32n - 1n)
    fail(c.tok, `${what} ${c.value} does not fit in 32 bits`);
  return Number(BigInt.asIntN(32, c.value));
}
function signed32(c: Capture, what: string): number {
  if (c.value < I32_MIN || c.value > I32_MAX)
    fail(c.tok, `${what} ${c.value} does not fit in a signed 32-bit field`);
  return Number(c.value);
}
function signed16(c: Capture, what: string): number {
  if (c.value < -32768n || c.value > 32767n)
    fail(c.tok, `${what} ${c.value} does not fit in a signed 16-bit field`);
  return Number(c.value);
}
const memOffset = (c: Capture) => signed16(c, 'offset');

function insn(code: number, dst = 0, src = 0, off = 0, imm = 0): Insn {
  return { code, dst, src, off, imm };
}
function wide(dst: number, src: number, value: bigint, imm2?: bigint): Insn {
  const v = BigInt.asUintN(64, value);
  return {
    code: OPCODE_LD_IMM64,
    dst,
    src,
    off: 0,
    imm: Number(BigInt.asIntN(32, v)),
    imm2: Number(BigInt.asIntN(32, imm2 ?? v >> 32n)),
  };
}

function want64(r: Capture, what: string): void {
  if (r.w) fail(r.tok, `${what} must be an r register, not ${r.tok.text}`);
}
function sameWidth(a: Capture, b: Capture): void {
  if (a.w !== b.w) fail(b.tok, `${b.tok.text} does not match the width of ${a.tok.text}`);
}
function sameRegister(a: Capture, b: Capture, what: string): void {
  if (a.reg !== b.reg || a.w !== b.w) fail(b.tok, `${what}: expected ${a.tok.text}, found ${b.tok.text}`);
}
/** A value register of a memory access: wN or rN for sizes up to u32, rN for u64. */
function valueRegister(r: Capture, size: number): void {
  if (r.w && size === BPF_DW) fail(r.tok, `a u64 access needs an r register, not ${r.tok.text}`);
}
function atomicSize(sz: Capture): number {
  const size = Number(sz.value);
  if (size !== BPF_W && size !== BPF_DW)
    fail(sz.tok, `atomic operations need u32 or u64, not ${sz.tok.text}`);
  return size;
}
const aluClass = (r: Capture) => (r.w ? BPF_ALU : BPF_ALU64);
const jmpClass = (r: Capture) => (r.w ? BPF_JMP32 : BPF_JMP);

function ldPseudo(dst: Capture, src: number, arg: Capture, imm2: Capture | undefined, srcTok: Token): Emit {
  want64(dst, 'the destination of a 64-bit load');
  const hi = imm2 ? BigInt(imm32(imm2)) : 0n;
  if (arg.label !== undefined) {
    if (src !== BPF_PSEUDO_FUNC) fail(arg.tok, `${srcTok.text}() takes a number, not a label`);
    return { insn: wide(dst.reg, src, 0n, hi), fixup: { label: arg.tok, field: 'imm' } };
  }
  const lo = src === BPF_PSEUDO_FUNC ? signed32(arg, 'function offset') : imm32(arg);
  return { insn: wide(dst.reg, src, BigInt(lo), hi) };
}

type Shape = [pattern: string, build: (c: Capture[]) => Emit];

/**
 * Every statement the assembler knows, one line each. The first pattern that matches the whole
 * statement builds the instruction; the builder checks what the pattern cannot (widths, ranges).
 */
const SHAPES: Shape[] = [
  ['exit', () => ({ insn: insn(BPF_JMP | BPF_EXIT) })],
  ['call N', ([n]) => ({ insn: insn(BPF_JMP | BPF_CALL, 0, 0, 0, imm32(n, 'helper id')) })],
  [
    'call pc OFF',
    ([o]) => ({ insn: insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, signed32(o, 'call offset')) }),
  ],
  [
    'call kfunc ( N )',
    ([id]) => ({ insn: insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, imm32(id, 'kfunc id')) }),
  ],
  [
    'call kfunc ( N , N )',
    ([id, o]) => ({
      insn: insn(
        BPF_JMP | BPF_CALL,
        0,
        BPF_PSEUDO_KFUNC_CALL,
        signed16(o, 'kfunc module index'),
        imm32(id, 'kfunc id'),
      ),
    }),
  ],
  [
    'call L',
    ([l]) => ({ insn: insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL), fixup: { label: l.tok, field: 'imm' } }),
  ],
  [
    'callx R',
    ([r]) => {
      want64(r, 'the callx target');
      return { insn: insn(BPF_JMP | BPF_CALL | BPF_X, r.reg) };
    },
  ],
  ['goto T', ([t]) => jump(insn(BPF_JMP | BPF_JA), t, 'off')],
  ['gotol T', ([t]) => jump(insn(BPF_JMP32 | BPF_JA), t, 'imm')],
  [
    'if R CMP R goto T',
    ([a, cmp, b, t]) => {
      sameWidth(a, b);
      return jump(insn(jmpClass(a) | JMP_OPS[cmp.tok.text] | BPF_X, a.reg, b.reg), t, 'off');
    },
  ],
  [
    'if R CMP N goto T',
    ([a, cmp, n, t]) =>
      jump(insn(jmpClass(a) | JMP_OPS[cmp.tok.text] | BPF_K, a.reg, 0, 0, imm32(n)), t, 'off'),
  ],
  [
    'R ALU R',
    ([d, o, s]) => {
      sameWidth(d, s);
      const { op, signed } = ALU_OPS[o.tok.text];
      return { insn: insn(aluClass(d) | op | BPF_X, d.reg, s.reg, signed ? 1 : 0) };
    },
  ],
  [
    'R ALU N',
    ([d, o, n]) => {
      const { op, signed } = ALU_OPS[o.tok.text];
      if (op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) {
        const limit = d.w ? 32n : 64n;
        if (n.value < 0n || n.value >= limit)
          fail(n.tok, `shift count ${n.value} is out of range 0..${limit - 1n}`);
      }
      return { insn: insn(aluClass(d) | op | BPF_K, d.reg, 0, signed ? 1 : 0, imm32(n)) };
    },
  ],
  [
    'R = R',
    ([d, s]) => {
      sameWidth(d, s);
      return { insn: insn(aluClass(d) | BPF_MOV | BPF_X, d.reg, s.reg) };
    },
  ],
  ['R = N', ([d, n]) => ({ insn: insn(aluClass(d) | BPF_MOV | BPF_K, d.reg, 0, 0, imm32(n)) })],
  [
    'R = N ll',
    ([d, n]) => {
      want64(d, 'the destination of a 64-bit load');
      if (n.value < -(2n ** 63n) || n.value > 2n ** 64n - 1n)
        fail(n.tok, `constant ${n.value} does not fit in 64 bits`);
      return { insn: wide(d.reg, 0, n.value) };
    },
  ],
  ['R = PSEUDO ( NL ) ll', ([d, p, a]) => ldPseudo(d, Number(p.value), a, undefined, p.tok)],
  ['R = PSEUDO ( NL , N ) ll', ([d, p, a, hi]) => ldPseudo(d, Number(p.value), a, hi, p.tok)],
  [
    'R = SYM ll',
    ([, l]) =>
      fail(
        l.tok,
        `'${l.tok.text}' would need a relocation; write func(${l.tok.text}) for a function's address`,
      ),
  ],
  ['ld_pseudo R , N , N', ([d, s, n]) => ldPseudoRaw(d, s, n, undefined)],
  ['ld_pseudo R , N , N , N', ([d, s, n, hi]) => ldPseudoRaw(d, s, n, hi)],
  [
    'R = - R',
    ([d, s]) => {
      sameRegister(d, s, 'negation works in place');
      return { insn: insn(aluClass(d) | BPF_NEG, d.reg) };
    },
  ],
  [
    'R = ( CAST ) R',
    ([d, c, s]) => {
      sameWidth(d, s);
      const bits = Number(c.value);
      if (d.w && bits === 32) fail(c.tok, '(s32) needs r registers');
      return { insn: insn(aluClass(d) | BPF_MOV | BPF_X, d.reg, s.reg, bits) };
    },
  ],
  [
    'R = END R',
    ([d, e, s]) => {
      want64(d, 'a byte swap operand');
      sameRegister(d, s, 'byte swaps work in place');
      const { code, bits } = ENDIAN[e.tok.text];
      return { insn: insn(code, d.reg, 0, 0, bits) };
    },
  ],
  [
    'R = * ( SZ * ) ( R OFF )',
    ([d, sz, b, o]) => {
      valueRegister(d, Number(sz.value));
      want64(b, 'an address register');
      return { insn: insn(BPF_LDX | BPF_MEM | Number(sz.value), d.reg, b.reg, memOffset(o)) };
    },
  ],
  [
    'R = * ( SSZ * ) ( R OFF )',
    ([d, sz, b, o]) => {
      want64(d, 'the destination of a sign-extending load');
      want64(b, 'an address register');
      return { insn: insn(BPF_LDX | BPF_MEMSX | Number(sz.value), d.reg, b.reg, memOffset(o)) };
    },
  ],
  [
    'R = * ( SZ * ) skb [ N ]',
    ([d, sz, n]) => packetLoad(d, sz, BPF_ABS, undefined, imm32(n, 'packet offset')),
  ],
  ['R = * ( SZ * ) skb [ R ]', ([d, sz, r]) => packetLoad(d, sz, BPF_IND, r, 0)],
  [
    'R = * ( SZ * ) skb [ R OFF ]',
    ([d, sz, r, o]) => packetLoad(d, sz, BPF_IND, r, signed32(o, 'packet offset')),
  ],
  [
    '* ( SZ * ) ( R OFF ) = R',
    ([sz, b, o, s]) => {
      want64(b, 'an address register');
      valueRegister(s, Number(sz.value));
      return { insn: insn(BPF_STX | BPF_MEM | Number(sz.value), b.reg, s.reg, memOffset(o)) };
    },
  ],
  [
    '* ( SZ * ) ( R OFF ) = N',
    ([sz, b, o, n]) => {
      want64(b, 'an address register');
      return { insn: insn(BPF_ST | BPF_MEM | Number(sz.value), b.reg, 0, memOffset(o), imm32(n)) };
    },
  ],
  [
    'lock * ( SZ * ) ( R OFF ) LOCK R',
    ([sz, b, o, l, s]) => {
      const size = atomicSize(sz);
      want64(b, 'an address register');
      valueRegister(s, size);
      return { insn: insn(BPF_STX | BPF_ATOMIC | size, b.reg, s.reg, memOffset(o), LOCK_OPS[l.tok.text]) };
    },
  ],
  [
    'R = FETCH ( ( SZ * ) ( R OFF ) , R )',
    ([d, f, sz, b, o, s]) => {
      const size = atomicSize(sz);
      want64(b, 'an address register');
      valueRegister(s, size);
      sameRegister(d, s, `${f.tok.text} returns the old value in its operand register`);
      return { insn: insn(BPF_STX | BPF_ATOMIC | size, b.reg, s.reg, memOffset(o), Number(f.value)) };
    },
  ],
  [
    'R = XCHG ( R OFF , R )',
    ([d, x, b, o, s]) => {
      const size = Number(x.value);
      want64(b, 'an address register');
      valueRegister(s, size);
      sameRegister(d, s, `${x.tok.text} returns the old value in its operand register`);
      return { insn: insn(BPF_STX | BPF_ATOMIC | size, b.reg, s.reg, memOffset(o), BPF_XCHG) };
    },
  ],
  [
    'R = CMPXCHG ( R OFF , R , R )',
    ([d, x, b, o, old, s]) => {
      const size = Number(x.value);
      want64(b, 'an address register');
      if (d.reg !== 0) fail(d.tok, `${x.tok.text} compares with and returns into r0, not ${d.tok.text}`);
      valueRegister(d, size);
      sameRegister(d, old, `${x.tok.text} compares with r0`);
      valueRegister(s, size);
      sameWidth(d, s);
      return { insn: insn(BPF_STX | BPF_ATOMIC | size, b.reg, s.reg, memOffset(o), BPF_CMPXCHG) };
    },
  ],
  [
    'R = load_acquire ( ( SZ * ) ( R OFF ) )',
    ([d, sz, b, o]) => {
      valueRegister(d, Number(sz.value));
      want64(b, 'an address register');
      return {
        insn: insn(BPF_STX | BPF_ATOMIC | Number(sz.value), d.reg, b.reg, memOffset(o), BPF_LOAD_ACQ),
      };
    },
  ],
  [
    'store_release ( ( SZ * ) ( R OFF ) , R )',
    ([sz, b, o, s]) => {
      want64(b, 'an address register');
      valueRegister(s, Number(sz.value));
      return {
        insn: insn(BPF_STX | BPF_ATOMIC | Number(sz.value), b.reg, s.reg, memOffset(o), BPF_STORE_REL),
      };
    },
  ],
];

function jump(base: Insn, target: Capture, field: 'off' | 'imm'): Emit {
  if (target.label !== undefined) return { insn: base, fixup: { label: target.tok, field } };
  if (field === 'off') base.off = signed16(target, 'jump offset');
  else base.imm = signed32(target, 'jump offset');
  return { insn: base };
}

function ldPseudoRaw(d: Capture, s: Capture, n: Capture, hi: Capture | undefined): Emit {
  want64(d, 'the destination of a 64-bit load');
  if (s.value < 0n || s.value > 15n) fail(s.tok, `source ${s.value} does not fit in the 4-bit src field`);
  return { insn: wide(d.reg, Number(s.value), BigInt(imm32(n)), hi ? BigInt(imm32(hi)) : 0n) };
}

function packetLoad(d: Capture, sz: Capture, m: number, index: Capture | undefined, imm: number): Emit {
  const size = Number(sz.value);
  if (size === BPF_DW) fail(sz.tok, 'legacy packet loads are u8, u16 or u32');
  if (d.reg !== 0 || d.w) fail(d.tok, `legacy packet loads always write r0, not ${d.tok.text}`);
  if (index) want64(index, 'a packet index register');
  return { insn: insn(BPF_LD | m | size, 0, index?.reg ?? 0, 0, imm) };
}

type Element = (t: Token[], i: number) => Step;

function compile(pattern: string): Element[] {
  return pattern.split(' ').map((word): Element => {
    const cls = CLASSES[word];
    if (cls) return cls;
    return (t, i) =>
      t[i].kind !== 'eos' && t[i].text === word ? { ok: true, next: i + 1 } : miss(i, `'${word}'`);
  });
}

const COMPILED = SHAPES.map(([pattern, build]) => ({ elements: compile(pattern), build }));

/** Directives that do not change the instruction stream; the rest of their statement is ignored. */
const SKIPPED_DIRECTIVES = new Set([
  '.text',
  '.section',
  '.previous',
  '.globl',
  '.global',
  '.local',
  '.weak',
  '.hidden',
  '.protected',
  '.internal',
  '.type',
  '.size',
  '.p2align',
  '.align',
  '.balign',
  '.file',
  '.loc',
  '.ident',
  '.addrsig',
  '.addrsig_sym',
]);

function describe(tok: Token): string {
  if (tok.kind === 'eos') return 'end of line';
  return `'${tok.text}'`;
}

function listOf(items: string[]): string {
  return items.length === 1 ? items[0] : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** Assembles one statement (labels and directives already removed). */
function assembleStatement(t: Token[], start: number): Emit {
  let furthest = -1;
  let expected: string[] = [];
  for (const shape of COMPILED) {
    let i = start;
    const caps: Capture[] = [];
    let failure: { at: number; expected: string } | undefined;
    for (const element of shape.elements) {
      const step = element(t, i);
      if (!step.ok) {
        failure = step;
        break;
      }
      if (step.cap) caps.push(step.cap);
      i = step.next;
    }
    if (!failure && t[i].kind !== 'eos') failure = { at: i, expected: 'end of statement' };
    if (!failure) return shape.build(caps);
    if (failure.at > furthest) {
      furthest = failure.at;
      expected = [];
    }
    if (failure.at === furthest && !expected.includes(failure.expected)) expected.push(failure.expected);
  }
  const tok = t[furthest];
  if (expected.includes('a register') && looksLikeRegister(tok)) fail(tok, `unknown register '${tok.text}'`);
  if (furthest === start) fail(tok, `unknown instruction ${describe(tok)}`);
  if (expected.length > 6) fail(tok, `unexpected ${describe(tok)}`);
  return fail(tok, `expected ${listOf(expected)}, found ${describe(tok)}`);
}

/** Assembles LLVM-syntax BPF assembly into instructions. Throws TsbpfError('asm') on bad input. */
export function assembleLlvm(source: string): Insn[] {
  const tokens = lex(source);
  const labels = new Map<string, number>();
  const emitted: (Emit & { pc: number })[] = [];
  let pc = 0;
  let i = 0;
  while (i < tokens.length) {
    // Labels at the start of a statement.
    while (tokens[i].kind === 'ident' && tokens[i + 1]?.kind === 'punct' && tokens[i + 1].text === ':') {
      const name = tokens[i];
      if (looksLikeRegister(name)) fail(name, `'${name.text}' looks like a register and cannot be a label`);
      if (labels.has(name.text)) fail(name, `label '${name.text}' is defined twice`);
      labels.set(name.text, pc);
      i += 2;
    }
    const first = tokens[i];
    if (first.kind === 'eos') {
      i++;
      continue;
    }
    let end = i;
    while (tokens[end].kind !== 'eos') end++;
    if (first.kind === 'ident' && first.text.startsWith('.')) {
      if (!SKIPPED_DIRECTIVES.has(first.text))
        fail(first, `unknown or unsupported directive '${first.text}'`);
    } else {
      const emit = assembleStatement(tokens, i);
      emitted.push({ ...emit, pc });
      pc += emit.insn.code === OPCODE_LD_IMM64 ? 2 : 1;
    }
    i = end + 1;
  }
  return emitted.map(({ insn: out, fixup, pc: at }) => {
    if (!fixup) return out;
    const target = labels.get(fixup.label.text);
    if (target === undefined) fail(fixup.label, `unknown label '${fixup.label.text}'`);
    const delta = BigInt(target - at - 1);
    const cap = capture(fixup.label, { value: delta });
    if (fixup.field === 'off') out.off = signed16(cap, `jump offset to '${fixup.label.text}'`);
    else out.imm = signed32(cap, `offset to '${fixup.label.text}'`);
    return out;
  });
}
