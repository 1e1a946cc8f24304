/**
 * Assembler for the dialect of the eBPF conformance suite (bpf_conformance, uBPF):
 *
 *   mov32 %r0, 0          add %r0, %r1            ldxb %r0, [%r1+2]       stxdw [%r10-8], %r1
 *   lddw %r0, 0x1122334455667788                  ja L1 / ja +2           jeq %r1, 5, L1
 *   call 5 / call helper 5 / call local func1 / call %r2                  exit
 *   lock add [%r1+0], %r2 / lock fetch add32 ... / lock xchg ... / lock cmpxchg ...
 *   be16 %r0 / le32 %r0 / swap64 %r0 / bswap64 %r0 / neg %r0 / sdiv / smod / movsx832 / ldxsw
 *
 * Labels are `name:`; `exit` names the first exit instruction unless a label of that name exists.
 * `#` starts a comment. Errors are TsbpfError('asm', 'line L, column C: ...').
 */
import { TsbpfError } from '../../errors.js';
import type { Insn } from '../insn.js';
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_B,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_H,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LDX,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOV,
  BPF_NEG,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_ST,
  BPF_STX,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  OPCODE_LD_IMM64,
} from '../opcodes.js';

interface Token {
  text: string;
  column: number; // 1-based
}

const ALU_OPS: Record<string, number> = {
  add: 0x00,
  sub: 0x10,
  mul: 0x20,
  div: 0x30,
  sdiv: 0x30,
  or: 0x40,
  and: 0x50,
  lsh: 0x60,
  rsh: 0x70,
  mod: 0x90,
  smod: 0x90,
  xor: 0xa0,
  mov: 0xb0,
  arsh: 0xc0,
};
const JMP_OPS: Record<string, number> = {
  jeq: 0x10,
  jgt: 0x20,
  jge: 0x30,
  jset: 0x40,
  jne: 0x50,
  jsgt: 0x60,
  jsge: 0x70,
  jlt: 0xa0,
  jle: 0xb0,
  jslt: 0xc0,
  jsle: 0xd0,
};
const SIZES: Record<string, number> = { b: BPF_B, h: BPF_H, w: BPF_W, dw: BPF_DW };
const ATOMIC_OPS: Record<string, number> = {
  add: 0x00,
  or: 0x40,
  and: 0x50,
  xor: 0xa0,
  xchg: BPF_XCHG,
  cmpxchg: BPF_CMPXCHG,
};

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
const UINT32_MAX = 2n ** 32n - 1n;

interface Pending {
  index: number; // index into out
  pc: number;
  label: string;
  where: { line: number; column: number };
  field: 'off' | 'imm';
}

class Asm {
  private line = 0;
  readonly out: Insn[] = [];
  private pc = 0;
  private readonly labels = new Map<string, number>();
  private firstExit = -1;
  private readonly pending: Pending[] = [];

  fail(column: number, message: string): never {
    throw new TsbpfError('asm', `line ${this.line}, column ${column}: ${message}`, {
      position: { line: this.line, column },
    });
  }

  assemble(source: string): Insn[] {
    const lines = source.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      this.line = i + 1;
      this.assembleLine(lines[i]);
    }
    for (const p of this.pending) {
      let target = this.labels.get(p.label);
      if (target === undefined && p.label === 'exit' && this.firstExit >= 0) target = this.firstExit;
      if (target === undefined) {
        this.line = p.where.line;
        this.fail(p.where.column, `unknown label '${p.label}'`);
      }
      const rel = target - (p.pc + 1);
      const insn = this.out[p.index];
      if (p.field === 'off') {
        if (rel < -32768 || rel > 32767) {
          this.line = p.where.line;
          this.fail(
            p.where.column,
            `jump to '${p.label}' is ${rel} instructions away, beyond a 16-bit offset`,
          );
        }
        insn.off = rel;
      } else {
        insn.imm = rel;
      }
    }
    return this.out;
  }

  private tokenize(text: string): Token[] {
    const tokens: Token[] = [];
    let i = 0;
    while (i < text.length) {
      const ch = text[i];
      if (ch === ' ' || ch === '\t' || ch === ',') {
        i++;
        continue;
      }
      const start = i;
      if (ch === '[') {
        const close = text.indexOf(']', i);
        if (close < 0) this.fail(i + 1, `missing ']' in memory operand`);
        i = close + 1;
      } else {
        while (i < text.length && !' \t,['.includes(text[i])) i++;
      }
      tokens.push({ text: text.slice(start, i), column: start + 1 });
    }
    return tokens;
  }

  private assembleLine(raw: string): void {
    const hash = raw.indexOf('#');
    let text = hash >= 0 ? raw.slice(0, hash) : raw;
    // Labels: `name:` at the start of the line (an instruction may follow).
    for (;;) {
      const m = /^(\s*)([A-Za-z_.$][\w.$]*)\s*:/.exec(text);
      if (!m) break;
      const name = m[2];
      const column = m[1].length + 1;
      if (this.labels.has(name)) this.fail(column, `label '${name}' is already defined`);
      this.labels.set(name, this.pc);
      text = ' '.repeat(m[0].length) + text.slice(m[0].length);
    }
    const trimmed = text.trim();
    if (trimmed === '') return;
    const lead = text.length - text.trimStart().length;
    if (trimmed.startsWith('.') || trimmed.startsWith('--')) {
      this.fail(lead + 1, `unknown directive '${trimmed.split(/\s+/)[0]}'`);
    }
    const tokens = this.tokenize(text);
    const [mn, ...ops] = tokens;
    this.instruction(mn, ops);
  }

  private emit(insn: Insn): number {
    this.out.push(insn);
    const index = this.out.length - 1;
    this.pc += insn.code === OPCODE_LD_IMM64 ? 2 : 1;
    return index;
  }

  private count(mn: Token, ops: Token[], n: number, what = mn.text): void {
    if (ops.length !== n) {
      const last = ops.length > 0 ? ops[ops.length - 1] : mn;
      const col = ops.length > n ? ops[n].column : last.column + last.text.length;
      this.fail(col, `'${what}' takes ${n} operand${n === 1 ? '' : 's'}, not ${ops.length}`);
    }
  }

  private reg(t: Token): number {
    const m = /^%r(\d+)$/.exec(t.text);
    if (!m) this.fail(t.column, `expected a register like %r1, not '${t.text}'`);
    const r = Number(m[1]);
    if (r > 10 || m[1].length > 2)
      this.fail(t.column, `invalid register '${t.text}' (registers are %r0 to %r10)`);
    return r;
  }

  private isReg(t: Token): boolean {
    return t.text.startsWith('%');
  }

  private number(t: Token, text = t.text, column = t.column): { value: bigint; hex: boolean } {
    const m = /^([+-]?)(0x[0-9a-fA-F]+|[0-9]+)$/.exec(text);
    if (!m) this.fail(column, `expected a number, not '${text}'`);
    let value = BigInt(m[2]);
    if (m[1] === '-') value = -value;
    return { value, hex: m[2].toLowerCase().startsWith('0x') && m[1] !== '-' };
  }

  /** A 32-bit immediate: a signed 32-bit number, or up to 0xffffffff when written in hex. */
  private imm32(t: Token): number {
    const { value, hex } = this.number(t);
    if (value >= INT32_MIN && value <= INT32_MAX) return Number(value);
    if (hex && value <= UINT32_MAX) return Number(BigInt.asIntN(32, value));
    this.fail(t.column, `immediate ${t.text} does not fit in 32 bits`);
  }

  private imm64(t: Token): { imm: number; imm2: number } {
    const { value } = this.number(t);
    if (value < -(2n ** 63n) || value > 2n ** 64n - 1n)
      this.fail(t.column, `immediate ${t.text} does not fit in 64 bits`);
    const v = BigInt.asUintN(64, value);
    return { imm: Number(BigInt.asIntN(32, v)), imm2: Number(BigInt.asIntN(32, v >> 32n)) };
  }

  private offset16(text: string, column: number): number {
    const t = { text, column };
    const { value } = this.number(t);
    if (value < -32768n || value > 32767n) this.fail(column, `offset ${text} does not fit in 16 bits`);
    return Number(value);
  }

  private mem(t: Token): { reg: number; off: number } {
    const m = /^\[\s*([^\s+\-\]]+)\s*(?:([+-])\s*([^\s\]]+))?\s*\]$/.exec(t.text);
    if (!m) this.fail(t.column, `expected a memory operand like [%r1+8], not '${t.text}'`);
    const reg = this.reg({ text: m[1], column: t.column + t.text.indexOf(m[1]) });
    let off = 0;
    if (m[2] !== undefined) off = this.offset16(`${m[2]}${m[3]}`, t.column + t.text.indexOf(m[3]));
    return { reg, off };
  }

  /** A jump target: a label, or +N / -N instructions. Returns the offset (0 for a label, fixed up later). */
  private target(t: Token, field: 'off' | 'imm'): number {
    if (/^[+-]/.test(t.text)) {
      if (field === 'off') return this.offset16(t.text, t.column);
      return this.imm32(t);
    }
    if (!/^[A-Za-z_.$][\w.$]*$/.test(t.text))
      this.fail(t.column, `expected a label or +/-offset, not '${t.text}'`);
    this.pending.push({
      index: this.out.length,
      pc: this.pc,
      label: t.text,
      where: { line: this.line, column: t.column },
      field,
    });
    return 0;
  }

  private instruction(mn: Token, ops: Token[]): void {
    const name = mn.text.toLowerCase();
    let m: RegExpExecArray | null;

    if (name === 'exit') {
      this.count(mn, ops, 0);
      if (this.firstExit < 0) this.firstExit = this.pc;
      this.emit({ code: BPF_JMP | BPF_EXIT, dst: 0, src: 0, off: 0, imm: 0 });
      return;
    }
    if (name === 'lddw') {
      this.count(mn, ops, 2);
      const dst = this.reg(ops[0]);
      const { imm, imm2 } = this.imm64(ops[1]);
      this.emit({ code: OPCODE_LD_IMM64, dst, src: 0, off: 0, imm, imm2 });
      return;
    }
    if (name === 'ja' || name === 'ja32') {
      this.count(mn, ops, 1);
      if (name === 'ja') {
        const off = this.target(ops[0], 'off');
        this.emit({ code: BPF_JMP | BPF_JA, dst: 0, src: 0, off, imm: 0 });
      } else {
        const imm = this.target(ops[0], 'imm');
        this.emit({ code: BPF_JMP32 | BPF_JA, dst: 0, src: 0, off: 0, imm });
      }
      return;
    }
    if (name === 'call') {
      if (ops.length === 1 && this.isReg(ops[0])) {
        const dst = this.reg(ops[0]);
        this.emit({ code: BPF_JMP | BPF_CALL | BPF_X, dst, src: 0, off: 0, imm: 0 });
        return;
      }
      const args = ops.length === 1 ? [{ text: 'helper', column: ops[0].column }, ops[0]] : ops;
      this.count(mn, args, 2);
      const kind = args[0].text;
      if (kind === 'helper') {
        this.emit({ code: BPF_JMP | BPF_CALL, dst: 0, src: 0, off: 0, imm: this.imm32(args[1]) });
      } else if (kind === 'local') {
        const imm = this.target(args[1], 'imm');
        this.emit({ code: BPF_JMP | BPF_CALL, dst: 0, src: BPF_PSEUDO_CALL, off: 0, imm });
      } else if (kind === 'runtime') {
        this.emit({
          code: BPF_JMP | BPF_CALL,
          dst: 0,
          src: BPF_PSEUDO_KFUNC_CALL,
          off: 0,
          imm: this.imm32(args[1]),
        });
      } else {
        this.fail(args[0].column, `unknown call kind '${kind}' (expected helper, local or runtime)`);
      }
      return;
    }
    if (name === 'lock') {
      let rest = ops;
      let fetch = false;
      if (rest.length > 0 && rest[0].text === 'fetch') {
        fetch = true;
        rest = rest.slice(1);
      }
      if (rest.length === 0)
        this.fail(mn.column + mn.text.length, `'lock' needs an operation, e.g. lock add [%r1+0], %r2`);
      const opTok = rest[0];
      const om = /^(add|or|and|xor|xchg|cmpxchg)(32)?$/.exec(opTok.text);
      if (!om) this.fail(opTok.column, `unknown atomic operation '${opTok.text}'`);
      const what = `lock ${fetch ? 'fetch ' : ''}${opTok.text}`;
      this.count(opTok, rest.slice(1), 2, what);
      const { reg: dst, off } = this.mem(rest[1]);
      const src = this.reg(rest[2]);
      let imm = ATOMIC_OPS[om[1]];
      if (fetch) imm |= BPF_FETCH;
      const sz = om[2] ? BPF_W : BPF_DW;
      this.emit({ code: BPF_STX | BPF_ATOMIC | sz, dst, src, off, imm });
      return;
    }
    // byte swaps
    m = /^(be|le|swap|bswap)(16|32|64)$/.exec(name);
    if (m) {
      this.count(mn, ops, 1);
      const dst = this.reg(ops[0]);
      const imm = Number(m[2]);
      const code =
        m[1] === 'be'
          ? BPF_ALU | BPF_END | BPF_TO_BE
          : m[1] === 'le'
            ? BPF_ALU | BPF_END | BPF_TO_LE
            : BPF_ALU64 | BPF_END | BPF_TO_LE;
      this.emit({ code, dst, src: 0, off: 0, imm });
      return;
    }
    m = /^neg(32)?$/.exec(name);
    if (m) {
      this.count(mn, ops, 1);
      const dst = this.reg(ops[0]);
      this.emit({ code: (m[1] ? BPF_ALU : BPF_ALU64) | BPF_NEG | BPF_K, dst, src: 0, off: 0, imm: 0 });
      return;
    }
    m = /^movsx(8|16|32)(32|64)$/.exec(name);
    if (m) {
      const from = Number(m[1]);
      const to = Number(m[2]);
      if (from >= to) this.fail(mn.column, `unknown mnemonic '${mn.text}'`);
      this.count(mn, ops, 2);
      const dst = this.reg(ops[0]);
      const src = this.reg(ops[1]);
      this.emit({ code: (to === 32 ? BPF_ALU : BPF_ALU64) | BPF_MOV | BPF_X, dst, src, off: from, imm: 0 });
      return;
    }
    m = /^([a-z]+?)(32)?$/.exec(name);
    if (m && ALU_OPS[m[1]] !== undefined) {
      this.count(mn, ops, 2);
      const dst = this.reg(ops[0]);
      const cls = m[2] ? BPF_ALU : BPF_ALU64;
      const off = m[1] === 'sdiv' || m[1] === 'smod' ? 1 : 0;
      if (this.isReg(ops[1])) {
        this.emit({ code: cls | ALU_OPS[m[1]] | BPF_X, dst, src: this.reg(ops[1]), off, imm: 0 });
      } else {
        this.emit({ code: cls | ALU_OPS[m[1]] | BPF_K, dst, src: 0, off, imm: this.imm32(ops[1]) });
      }
      return;
    }
    m = /^([a-z]+?)(32)?$/.exec(name);
    if (m && JMP_OPS[m[1]] !== undefined) {
      this.count(mn, ops, 3);
      const dst = this.reg(ops[0]);
      const cls = m[2] ? BPF_JMP32 : BPF_JMP;
      let insn: Insn;
      if (this.isReg(ops[1])) {
        insn = { code: cls | JMP_OPS[m[1]] | BPF_X, dst, src: this.reg(ops[1]), off: 0, imm: 0 };
      } else {
        insn = { code: cls | JMP_OPS[m[1]] | BPF_K, dst, src: 0, off: 0, imm: this.imm32(ops[1]) };
      }
      insn.off = this.target(ops[2], 'off');
      this.emit(insn);
      return;
    }
    m = /^ldx(s?)(b|h|w|dw)$/.exec(name);
    if (m) {
      if (m[1] && m[2] === 'dw') this.fail(mn.column, `unknown mnemonic '${mn.text}'`);
      this.count(mn, ops, 2);
      const dst = this.reg(ops[0]);
      const { reg: src, off } = this.mem(ops[1]);
      this.emit({ code: BPF_LDX | (m[1] ? BPF_MEMSX : BPF_MEM) | SIZES[m[2]], dst, src, off, imm: 0 });
      return;
    }
    m = /^st(x?)(b|h|w|dw)$/.exec(name);
    if (m) {
      this.count(mn, ops, 2);
      const { reg: dst, off } = this.mem(ops[0]);
      if (m[1]) {
        this.emit({ code: BPF_STX | BPF_MEM | SIZES[m[2]], dst, src: this.reg(ops[1]), off, imm: 0 });
      } else {
        this.emit({ code: BPF_ST | BPF_MEM | SIZES[m[2]], dst, src: 0, off, imm: this.imm32(ops[1]) });
      }
      return;
    }
    this.fail(mn.column, `unknown mnemonic '${mn.text}'`);
  }
}

/** Assembles conformance-suite assembly into instructions. */
export function assembleConformance(source: string): Insn[] {
  return new Asm().assemble(source);
}
