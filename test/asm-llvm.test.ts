/**
 * The LLVM-syntax assembler (src/isa/asm/llvm.ts):
 * (a) byte agreement with llvm-mc-19 over a corpus of every instruction form, and acceptance of
 *     everything llvm-objdump-19 prints (the corpus object and the committed fixtures);
 * (b) round trips through src/isa/disasm.ts's formatInsn: every form, and every fixture's code;
 * (c) errors name the right line and column;
 * (d) fuzz: mutated and random source only ever throws TsbpfError.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isTsbpfError, TsbpfError } from '../src/errors.js';
import { assembleLlvm } from '../src/isa/asm/llvm.js';
import { formatInsn } from '../src/isa/disasm.js';
import { type DecodedInsn, decode, encode, type Insn, slotIndex, validate } from '../src/isa/insn.js';
import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_B,
  BPF_CALL,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_H,
  BPF_IND,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOV,
  BPF_NEG,
  BPF_ST,
  BPF_STX,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_W,
  BPF_X,
  cls,
  mode,
  OPCODE_LD_IMM64,
  op,
} from '../src/isa/opcodes.js';
import { codeSections, readElf, sectionByName } from '../src/object/elf.js';
import {
  fixtureNames,
  hasTool,
  LLVM_MC,
  loadFixture,
  OBJDUMP,
  objdumpReference,
  prng,
} from './support/fixtures.js';

const HAVE_MC = hasTool(LLVM_MC);
const NO_MC = HAVE_MC
  ? false
  : `${LLVM_MC} is not installed (apt-get install llvm-19); agreement tests skipped`;

// ───────────────────────────── helpers ─────────────────────────────

const fields = (i: Insn) => ({
  code: i.code,
  dst: i.dst,
  src: i.src,
  off: i.off,
  imm: i.imm,
  ...(i.code === OPCODE_LD_IMM64 ? { imm2: i.imm2 ?? 0 } : {}),
});
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

/** Assembles with llvm-mc-19 into an object; returns the object's bytes. */
function llvmMcObject(source: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'tsbpf-asm-'));
  try {
    writeFileSync(join(dir, 'in.s'), source);
    execFileSync(LLVM_MC, ['-triple', 'bpfel', '-mcpu=v4', '-filetype=obj', 'in.s', '-o', 'out.o'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    return new Uint8Array(readFileSync(join(dir, 'out.o')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
function textOf(object: Uint8Array): Uint8Array {
  const text = sectionByName(readElf(object), '.text');
  assert.ok(text, 'llvm-mc object has a .text section');
  return text.data;
}

/** llvm-objdump-19 -d of an object (bytes), per section: slot index → instruction text. */
function objdumpLive(object: Uint8Array, args: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsbpf-asm-'));
  try {
    writeFileSync(join(dir, 'x.o'), object);
    return execFileSync(OBJDUMP, ['-d', ...args, 'x.o'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 26 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
function parseObjdump(text: string): Map<string, { slot: number; text: string }[]> {
  const sections = new Map<string, { slot: number; text: string }[]>();
  let current: { slot: number; text: string }[] = [];
  for (const line of text.split('\n')) {
    const sec = /^Disassembly of section (.*):$/.exec(line);
    if (sec) {
      current = [];
      sections.set(sec[1], current);
      continue;
    }
    const m = /^\s*(\d+):\t[0-9a-f ]+\t(.*)$/.exec(line);
    if (m) current.push({ slot: Number(m[1]), text: m[2] });
  }
  return sections;
}

// ───────────────────────────── the corpus: every form, llvm-mc's syntax ─────────────────────────────

const IMMS = [
  '0',
  '1',
  '-1',
  '0x7fffffff',
  '-2147483648',
  '0xffffffff',
  '4294967295',
  '-0x80000000',
  '077',
  '0b101',
  '+5',
];
const ALU = ['+=', '-=', '*=', '/=', 's/=', '%=', 's%=', '|=', '&=', '^=', '<<=', '>>=', 's>>='];
const SHIFTS = new Set(['<<=', '>>=', 's>>=']);
const CMP = ['==', '!=', '>', '>=', '<', '<=', 's>', 's>=', 's<', 's<=', '&'];
const SIZES = ['u8', 'u16', 'u32', 'u64'];
const OFFS = ['+ 0', '- 8', '+ 32767', '- 32768', '+ 0x10', '+ 4'];

/** One instruction per line, each in a form llvm-mc-19 accepts and means the same as we do. */
function corpus(): string[] {
  const c: string[] = [];
  for (const r of ['r', 'w']) {
    for (const o of ALU) {
      c.push(`${r}1 ${o} ${r}2`, `${r}10 ${o} ${r}0`, `${r}9 ${o}${r}8`);
      const imms = SHIFTS.has(o) ? ['0', '1', r === 'r' ? '63' : '31', '0x1f'] : IMMS;
      for (const imm of imms) c.push(`${r}3 ${o} ${imm}`);
    }
    c.push(
      `${r}1 = ${r}2`,
      `${r}0=${r}10`,
      `${r}1 = -${r}1`,
      `${r}7 = - ${r}7`,
      `${r}1 = (s8)${r}2`,
      `${r}1 = (s16)${r}2`,
    );
    for (const imm of IMMS) c.push(`${r}4 = ${imm}`);
    for (const o of CMP) {
      c.push(`if ${r}1 ${o} ${r}2 goto +3`, `if ${r}9 ${o} -7 goto -2`, `if ${r}0 ${o} 0xffffffff goto +0`);
      c.push(`if ${r}10 ${o} 0x7fffffff goto 32767`, `if ${r}1 ${o} ${r}1 goto -32768`);
    }
  }
  c.push('r1 = (s32)r2', 'r9 = (s8)r9');
  for (const k of ['be', 'le', 'bswap']) for (const b of [16, 32, 64]) c.push(`r3 = ${k}${b} r3`);
  c.push(
    'goto +0',
    'goto -1',
    'goto +32767',
    'goto -32768',
    'goto 5',
    'gotol +0',
    'gotol -5',
    'gotol 100',
    'gotol +32767',
  );
  c.push('r1 = 0 ll', 'r1 = 0x1122334455667788 ll', 'r1 = -1 ll', 'r2 = 0xffffffffffffffff ll');
  c.push('r0 = -9223372036854775808 ll', 'r9 = 4294967296 ll', 'r10 = 0x80000000 ll', 'r3 = -0x80000001 ll');
  c.push('ld_pseudo r1, 1, 3', 'ld_pseudo r2, 2, 0xffffffff', 'ld_pseudo r3, 4, -1', 'ld_pseudo r4, 15, 7');
  c.push('ld_pseudo r5, 0, 9', 'ld_pseudo r6, 5, 0', 'ld_pseudo r7, 6, 12', 'ld_pseudo r8, 3, 100');
  for (const sz of SIZES) {
    for (const off of OFFS) {
      c.push(`r0 = *(${sz} *)(r1 ${off})`, `*(${sz} *)(r10 ${off}) = r1`, `*(${sz} *)(r2 ${off}) = -5`);
      if (sz !== 'u64') c.push(`w0 = *(${sz} *)(r1 ${off})`, `*(${sz} *)(r10 ${off}) = w9`);
    }
    c.push(`*(${sz} *)(r3 + 1) = 0xffffffff`, `*(${sz} *)(r3 + 1) = 0x7fffffff`);
  }
  for (const sz of ['s8', 's16', 's32']) c.push(`r2 = *(${sz} *)(r10 - 4)`, `r0 = *(${sz} *)(r9 + 32767)`);
  for (const [sz, r] of [
    ['u32', 'w'],
    ['u64', 'r'],
  ]) {
    for (const o of ['+=', '&=', '|=', '^='])
      c.push(`lock *(${sz} *)(r1 + 0) ${o} ${r}2`, `lock *(${sz} *)(r10 - 8) ${o} ${r}0`);
    for (const f of ['add', 'and', 'or', 'xor'])
      c.push(`${r}2 = atomic_fetch_${f}((${sz} *)(r1 + 8), ${r}2)`);
  }
  c.push('lock *(u32 *)(r1 + 0) += r2', 'r2 = xchg_64(r1 + 0, r2)', 'w3 = xchg32_32(r10 - 4, w3)');
  c.push('r0 = cmpxchg_64(r1 + 0, r0, r2)', 'w0 = cmpxchg32_32(r1 - 16, w0, w2)');
  for (const sz of ['u8', 'u16', 'u32'])
    c.push(`r0 = *(${sz} *)skb[0]`, `r0 = *(${sz} *)skb[0x7fffffff]`, `r0 = *(${sz} *)skb[r1]`);
  c.push(
    'call 1',
    'call 0x1',
    'call -1',
    'call 0xffffffff',
    'call 212',
    'call +7',
    'callx r2',
    'callx r10',
    'exit',
  );
  return c;
}

/** A program with labels, comments, directives and separators, as people write it for llvm-mc. */
const LABELLED = `
  .text
  .globl prog                 # directives that do not emit anything are skipped
  .p2align 3
  .type prog,@function
prog:                          // a function label
  r0 = 0
  r6 = r1 ; r7 = 10            ; r8 = 0x10
LBB0_1: /* loop head */ if r7 == 0 goto LBB0_3
  r7 += -1
  if w7 s< w6 goto LBB0_1
  r1 = 0x1122334455667788 ll
  gotol LBB0_1
  goto LBB0_1
LBB0_3:
  call sub
  call 5
  if r0 & 1 goto end
  /* a comment
     over lines */ r0 = 2
end: exit
.Lfunc_end0:
  .size prog, .Lfunc_end0-prog
sub:
  r0 = 7 ll
  if r0 > 3 goto back
back:  exit
`;

// ───────────────────────────── (a) agreement with llvm-mc-19 ─────────────────────────────

test('every instruction form assembles to the bytes llvm-mc-19 produces', { skip: NO_MC }, () => {
  const lines = corpus();
  const theirs = textOf(llvmMcObject(`${lines.join('\n')}\n`));
  let slot = 0;
  const problems: string[] = [];
  for (const line of lines) {
    const insns = assembleLlvm(line);
    assert.equal(insns.length, 1, `${line}: one instruction`);
    const ours = encode(insns);
    const ref = theirs.subarray(slot * 8, slot * 8 + ours.length);
    if (hex(ours) !== hex(ref)) problems.push(`${line}\n  ours: ${hex(ours)}\n  llvm: ${hex(ref)}`);
    slot += ours.length / 8;
  }
  assert.equal(slot * 8, theirs.length, 'same total length');
  assert.deepEqual(problems, []);
  // The whole corpus as one source gives the same bytes too.
  assert.equal(hex(encode(assembleLlvm(lines.join('\n')))), hex(theirs));
});

test('labels, comments, directives and ; separators agree with llvm-mc-19', { skip: NO_MC }, () => {
  const ours = encode(assembleLlvm(LABELLED));
  const theirs = textOf(llvmMcObject(LABELLED));
  assert.equal(hex(ours), hex(theirs));
  // and the bpf-to-bpf call is the pseudo call llvm-mc makes
  const call = assembleLlvm(LABELLED).find((i) => i.code === (BPF_JMP | BPF_CALL) && i.src === 1);
  assert.ok(call, 'call sub is a BPF_PSEUDO_CALL');
});

/** Instructions llvm-objdump prints in a way that loses a field; what assembling its text gives back. */
function objdumpLossy(i: Insn, plain: boolean): Insn {
  const out = { ...fields(i) };
  if (i.code === (BPF_JMP | BPF_CALL)) {
    out.src = 0; // pseudo calls and kfunc calls print as `call IMM`
    out.off = 0;
  }
  if (i.code === OPCODE_LD_IMM64 && i.src !== 0) out.imm2 = 0; // ld_pseudo prints imm only
  if (cls(i.code) === BPF_LD && mode(i.code) === BPF_IND) out.imm = 0; // skb[rN] drops imm
  // Without --mcpu, a 32-bit atomic_fetch_add prints as `lock ... += r2`.
  if (plain && i.code === (BPF_STX | BPF_ATOMIC | BPF_W) && i.imm === 1) out.imm = 0;
  return out;
}

function checkObjdumpText(name: string, object: Uint8Array, text: string, plain: boolean): string[] {
  const elf = readElf(object);
  const dumped = parseObjdump(text);
  const problems: string[] = [];
  let count = 0;
  for (const sec of codeSections(elf)) {
    if (sec.data.length === 0) continue; // objdump skips empty sections
    const lines = dumped.get(sec.name);
    if (!lines) {
      problems.push(`${name}: objdump has no section ${sec.name}`);
      continue;
    }
    const insns = decode(sec.data, { bigEndian: elf.bigEndian });
    const bySlot = new Map(insns.map((i) => [i.pc, i]));
    for (const { slot, text: asm } of lines) {
      if (asm.startsWith('<unknown>')) continue;
      const orig = bySlot.get(slot);
      if (!orig) {
        problems.push(`${name} ${sec.name}:${slot}: no instruction starts here`);
        continue;
      }
      count++;
      let got: Insn[];
      try {
        got = assembleLlvm(asm);
      } catch (e) {
        problems.push(`${name} ${sec.name}:${slot}: ${asm}: ${(e as Error).message}`);
        continue;
      }
      if (got.length !== 1) problems.push(`${name} ${sec.name}:${slot}: ${asm}: ${got.length} instructions`);
      else {
        const want = objdumpLossy(orig, plain);
        const have = objdumpLossy(got[0], plain);
        if (JSON.stringify(want) !== JSON.stringify(have))
          problems.push(
            `${name} ${sec.name}:${slot}: ${asm}: got ${JSON.stringify(have)}, want ${JSON.stringify(want)}`,
          );
      }
    }
  }
  if (count === 0) problems.push(`${name}: no instructions checked`);
  return problems;
}

test('everything llvm-objdump-19 prints for the corpus assembles back', {
  skip: NO_MC || !hasTool(OBJDUMP),
}, () => {
  const object = llvmMcObject(`${[...corpus(), LABELLED].join('\n')}\n`);
  const problems = [
    ...checkObjdumpText('corpus --mcpu=v4', object, objdumpLive(object, ['--mcpu=v4']), false),
    ...checkObjdumpText('corpus', object, objdumpLive(object, []), true),
  ];
  assert.deepEqual(problems, []);
});

test('everything llvm-objdump-19 prints for the fixtures assembles back', (t) => {
  const problems: string[] = [];
  let checked = 0;
  for (const name of fixtureNames()) {
    const object = loadFixture(name);
    for (const v4 of [false, true]) {
      const ref = objdumpReference(name, v4);
      if (!ref) continue;
      checked++;
      problems.push(...checkObjdumpText(`${name}${v4 ? ' --mcpu=v4' : ''}`, object, ref.text, !v4));
    }
  }
  if (checked === 0)
    t.skip('no fixture objdump references (neither llvm-objdump-19 nor committed .objdump files)');
  assert.deepEqual(problems, []);
});

// ───────────────────────────── (b) round trip through formatInsn ─────────────────────────────

const I = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
const W = (dst: number, src: number, imm: number, imm2: number): Insn => ({
  code: OPCODE_LD_IMM64,
  dst,
  src,
  off: 0,
  imm,
  imm2,
});

/** Every valid instruction form, with edge values. */
function everyForm(): Insn[] {
  const out: Insn[] = [];
  const imms = [0, 1, -1, 0x7fffffff, -0x80000000, 255, -4096];
  for (const c of [BPF_ALU, BPF_ALU64]) {
    for (const o of [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xc0]) {
      const shift = o === 0x60 || o === 0x70 || o === 0xc0;
      const signedOk = o === 0x30 || o === 0x90;
      for (const off of signedOk ? [0, 1] : [0]) {
        out.push(I(c | o | BPF_X, 1, 2, off), I(c | o | BPF_X, 10, 0, off));
        for (const imm of shift ? [0, 1, c === BPF_ALU ? 31 : 63] : imms)
          if (!(signedOk && imm === 0)) out.push(I(c | o | BPF_K, 3, 0, off, imm));
      }
    }
    out.push(
      I(c | BPF_NEG, 4),
      I(c | BPF_MOV | BPF_X, 1, 2),
      I(c | BPF_MOV | BPF_X, 1, 2, 8),
      I(c | BPF_MOV | BPF_X, 1, 2, 16),
    );
    for (const imm of imms) out.push(I(c | BPF_MOV | BPF_K, 5, 0, 0, imm));
    for (const bits of [16, 32, 64])
      out.push(I(c | BPF_END | (c === BPF_ALU ? BPF_TO_BE : BPF_TO_LE), 6, 0, 0, bits));
  }
  out.push(I(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 32));
  for (const bits of [16, 32, 64]) out.push(I(BPF_ALU | BPF_END | BPF_TO_LE, 6, 0, 0, bits));
  for (const c of [BPF_JMP, BPF_JMP32]) {
    for (const o of [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0]) {
      for (const off of [0, 1, -1, 32767, -32768])
        out.push(I(c | o | BPF_X, 1, 9, off), I(c | o | BPF_K, 8, 0, off, imms[out.length % 7]));
    }
  }
  for (const off of [0, 5, -5, 32767, -32768]) out.push(I(BPF_JMP | BPF_JA, 0, 0, off));
  for (const imm of [0, 5, -5, 0x7fffffff, -0x80000000]) out.push(I(BPF_JMP32 | BPF_JA, 0, 0, 0, imm));
  for (const imm of [0, 1, 212, -1]) out.push(I(BPF_JMP | BPF_CALL, 0, 0, 0, imm));
  out.push(I(BPF_JMP | BPF_CALL | BPF_X, 3), I(BPF_JMP | BPF_EXIT));
  for (const [imm, imm2] of [
    [0, 0],
    [1, 0],
    [-1, -1],
    [0x55667788, 0x11223344],
    [0, -0x80000000],
  ])
    out.push(W(7, 0, imm, imm2));
  for (const size of [BPF_B, BPF_H, BPF_W, BPF_DW]) {
    for (const off of [0, 4, -8, 32767, -32768]) {
      out.push(I(BPF_LDX | BPF_MEM | size, 0, 1, off), I(BPF_STX | BPF_MEM | size, 10, 1, off));
      out.push(I(BPF_ST | BPF_MEM | size, 10, 0, off, imms[(off & 0xff) % 7]));
      if (size !== BPF_DW) out.push(I(BPF_LDX | BPF_MEMSX | size, 2, 10, off));
    }
    if (size !== BPF_DW)
      for (const imm of [0, 3, 0x7fffffff]) out.push(I(BPF_LD | BPF_ABS | size, 0, 0, 0, imm));
    if (size !== BPF_DW) out.push(I(BPF_LD | BPF_IND | size, 0, 1));
  }
  for (const size of [BPF_W, BPF_DW]) {
    for (const imm of [0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1]) {
      out.push(I(BPF_STX | BPF_ATOMIC | size, 1, 2, 0, imm), I(BPF_STX | BPF_ATOMIC | size, 10, 0, -8, imm));
    }
  }
  return out;
}

/** Valid forms that LLVM 19's syntax cannot express; disasm.ts prints tsbpf extensions (or LLVM 20's syntax). */
function extendedForms(): Insn[] {
  const out: Insn[] = [];
  for (const size of [BPF_B, BPF_H, BPF_W, BPF_DW]) {
    out.push(I(BPF_STX | BPF_ATOMIC | size, 0, 1, 4, 0x100), I(BPF_STX | BPF_ATOMIC | size, 1, 2, -4, 0x110));
    if (size !== BPF_DW)
      out.push(I(BPF_LD | BPF_IND | size, 0, 1, 0, 4), I(BPF_LD | BPF_IND | size, 0, 1, 0, -4));
  }
  for (const src of [1, 2, 3, 4, 5, 6]) out.push(W(1, src, 3, 0), W(2, src, -1, 0));
  out.push(W(1, 2, 3, 16), W(1, 6, 0, 8), W(1, 3, 100, 5), W(1, 1, 3, 1), W(1, 4, -3, 0));
  out.push(I(BPF_JMP | BPF_CALL, 0, 1, 0, -1), I(BPF_JMP | BPF_CALL, 0, 1, 0, 17));
  out.push(I(BPF_JMP | BPF_CALL, 0, 2, 0, 1234), I(BPF_JMP | BPF_CALL, 0, 2, 3, 1234));
  return out;
}

test('the form generator only makes valid instructions', () => {
  for (const i of [...everyForm(), ...extendedForms()])
    assert.equal(validate(i), undefined, JSON.stringify(i));
});

function roundTrip(forms: Insn[], lossless = false): string[] {
  const problems: string[] = [];
  for (const alu32 of [false, true]) {
    for (const insn of forms) {
      const text = formatInsn(insn, { alu32, lossless });
      try {
        const back = assembleLlvm(text);
        if (back.length !== 1 || JSON.stringify(fields(back[0])) !== JSON.stringify(fields(insn)))
          problems.push(
            `${text} (alu32=${alu32}): got ${JSON.stringify(back.map(fields))}, want ${JSON.stringify(fields(insn))}`,
          );
      } catch (e) {
        problems.push(`${text} (alu32=${alu32}): ${(e as Error).message}`);
      }
    }
  }
  return problems;
}

test('assemble(formatInsn(insn)) gives insn back for every instruction form', () => {
  assert.deepEqual(roundTrip(everyForm()), []);
});

test('formatInsn text of every form means the same to llvm-mc-19 and to us', { skip: NO_MC }, () => {
  // llvm-mc-19 parses gotol's target as 16 bits only (its encoder and objdump do 32).
  const forms = everyForm().filter((i) => i.code !== (BPF_JMP32 | BPF_JA) || Math.abs(i.imm) <= 32767);
  for (const alu32 of [false, true]) {
    const text = forms.map((i) => formatInsn(i, { alu32 }));
    const theirs = textOf(llvmMcObject(`${text.join('\n')}\n`));
    assert.equal(hex(encode(assembleLlvm(text.join('\n')))), hex(theirs), `alu32=${alu32}`);
    assert.equal(hex(encode(forms)), hex(theirs), `alu32=${alu32}`);
  }
});

/**
 * The forms llvm-objdump prints lossily (pseudo calls, kfunc calls, LD_IMM64 with a pseudo source and a
 * non-zero second imm) round-trip through the tsbpf extensions that `formatInsn(…, { lossless: true })` prints.
 */
test('assemble(formatInsn(insn, lossless)) gives insn back for the forms that need tsbpf syntax extensions', () => {
  assert.deepEqual(roundTrip(extendedForms(), true), []);
  assert.deepEqual(roundTrip(everyForm(), true), []);
});

test('every fixture disassembles with formatInsn and assembles back to the same bytes', () => {
  const problems: string[] = [];
  let count = 0;
  for (const name of fixtureNames()) {
    const elf = readElf(loadFixture(name));
    for (const sec of codeSections(elf)) {
      const insns: DecodedInsn[] = decode(sec.data, { bigEndian: elf.bigEndian });
      for (const alu32 of [false, true]) {
        const text = insns.map((i) => formatInsn(i, { alu32, lossless: true })).join('\n');
        const back = assembleLlvm(text);
        assert.equal(back.length, insns.length, `${name} ${sec.name}: instruction count`);
        back.forEach((b, k) => {
          count++;
          if (JSON.stringify(fields(insns[k])) !== JSON.stringify(fields(b)))
            problems.push(
              `${name} ${sec.name} #${k} ${formatInsn(insns[k], { alu32 })}: got ${JSON.stringify(fields(b))}`,
            );
        });
        if (!elf.bigEndian) assert.equal(hex(encode(back)), hex(sec.data), `${name} ${sec.name}: same bytes`);
      }
    }
  }
  assert.ok(count > 100, `checked ${count} instructions`);
  assert.deepEqual(problems, []);
});

// ───────────────────────────── the accepted syntax, by example ─────────────────────────────

test('tsbpf extensions and llvm-objdump forms assemble as documented', () => {
  const cases: [string, Insn][] = [
    ['r1 = map_fd(3) ll', W(1, 1, 3, 0)],
    ['r1 = map_fd(0x3, 0x1) ll', W(1, 1, 3, 1)],
    ['r2 = map_value(3, 16) ll', W(2, 2, 3, 16)],
    ['r3 = btf_id(0x7) ll', W(3, 3, 7, 0)],
    ['r4 = map_idx(0) ll', W(4, 5, 0, 0)],
    ['r5 = map_idx_value(1, 0x8) ll', W(5, 6, 1, 8)],
    ['r6 = func(+0x3) ll', W(6, 4, 3, 0)],
    ['r6 = func(-1) ll', W(6, 4, -1, 0)],
    ['ld_pseudo r1, 2, 3, 16', W(1, 2, 3, 16)],
    ['ld_pseudo\tr1, 0x2, 0x3', W(1, 2, 3, 0)],
    ['call pc+0x3', I(BPF_JMP | BPF_CALL, 0, 1, 0, 3)],
    ['call pc - 1', I(BPF_JMP | BPF_CALL, 0, 1, 0, -1)],
    ['call kfunc(1234)', I(BPF_JMP | BPF_CALL, 0, 2, 0, 1234)],
    ['call kfunc(0x4d2, 0x3)', I(BPF_JMP | BPF_CALL, 0, 2, 3, 1234)],
    ['r0 = *(u16 *)skb[r1 + 0x4]', I(BPF_LD | BPF_IND | BPF_H, 0, 1, 0, 4)],
    ['r0 = *(u16 *)skb[r1 - 4]', I(BPF_LD | BPF_IND | BPF_H, 0, 1, 0, -4)],
    ['r0 = *(u16 *)skb[r1 + 0]', I(BPF_LD | BPF_IND | BPF_H, 0, 1, 0, 0)],
    ['r0 = *(u8 *)skb[0x1]', I(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, 1)],
    ['w0 = load_acquire((u8 *)(r1 + 0x0))', I(BPF_STX | BPF_ATOMIC | BPF_B, 0, 1, 0, 0x100)],
    ['r0 = load_acquire((u64 *)(r1 - 0x8))', I(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 1, -8, 0x100)],
    ['store_release((u16 *)(r1 + 0x2), w2)', I(BPF_STX | BPF_ATOMIC | BPF_H, 1, 2, 2, 0x110)],
    ['store_release((u64 *)(r1 + 0x0), r2)', I(BPF_STX | BPF_ATOMIC | BPF_DW, 1, 2, 0, 0x110)],
    ['goto +0x3 <.text+0x140>', I(BPF_JMP | BPF_JA, 0, 0, 3)],
    ['if r1 > 0x5 goto -0x2 <LBB0_1>', I(BPF_JMP | 0x20 | BPF_K, 1, 0, -2, 5)],
    ['gotol +0x3 <v4_ops+0x48>', I(BPF_JMP32 | BPF_JA, 0, 0, 0, 3)],
    ['r1 = 0x1122 ll', W(1, 0, 0x1122, 0)],
    ['r1 = -0x1 ll', W(1, 0, -1, -1)],
    ['r1 += -0x1', I(BPF_ALU64 | BPF_K, 1, 0, 0, -1)],
    ['w1 = -0x5', I(BPF_ALU | BPF_MOV | BPF_K, 1, 0, 0, -5)],
    ['call 0x1', I(BPF_JMP | BPF_CALL, 0, 0, 0, 1)],
    ['call -0x1', I(BPF_JMP | BPF_CALL, 0, 0, 0, -1)],
    ['r0 = *(u32 *)(r1 + 0x4)', I(BPF_LDX | BPF_MEM | BPF_W, 0, 1, 4)],
    ['*(u32 *)(r10 - 0x8) = r1', I(BPF_STX | BPF_MEM | BPF_W, 10, 1, -8)],
    ['lock *(u32 *)(r1 + 0x0) += r2', I(BPF_STX | BPF_ATOMIC | BPF_W, 1, 2, 0, 0)],
    ['r1 = 010', I(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 8)],
    ['r1 = 0b11', I(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 3)],
    ['r1 = 0', I(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0)],
  ];
  for (const [text, want] of cases) assert.deepEqual(assembleLlvm(text).map(fields), [fields(want)], text);
});

test('labels: jumps, gotol, calls and func() count slots, LD_IMM64 takes two', () => {
  const insns = assembleLlvm(`
    start: r1 = func(f) ll
    r2 = 1 ll
    goto f
    gotol start
    call f
    if w1 != 3 goto start
    f: exit
  `);
  const pcs = slotIndex(insns);
  assert.deepEqual(pcs, [0, 2, 4, 5, 6, 7, 8, 9]);
  assert.equal(insns[0].imm, 8 - 0 - 1); // func(f): relative to the next slot
  assert.equal(insns[0].src, 4);
  assert.equal(insns[2].off, 8 - 4 - 1);
  assert.equal(insns[3].imm, 0 - 5 - 1);
  assert.deepEqual(fields(insns[4]), fields(I(BPF_JMP | BPF_CALL, 0, 1, 0, 8 - 6 - 1)));
  assert.equal(insns[5].off, 0 - 7 - 1);
  assert.equal(cls(insns[5].code), BPF_JMP32);
  // a label at the very end is the slot after the last instruction
  assert.equal(assembleLlvm('goto out\nexit\nout:')[0].off, 1);
  // comments and blank input
  assert.deepEqual(assembleLlvm(''), []);
  assert.deepEqual(assembleLlvm('# nothing\n// here\n/* at */ ;;\n\t.text\n'), []);
  assert.equal(op(assembleLlvm('exit')[0].code), BPF_EXIT);
});

test('assemble() dispatches on the syntax', async (t) => {
  let mod: typeof import('../src/isa/asm/index.js');
  try {
    mod = await import('../src/isa/asm/index.js');
  } catch (e) {
    t.skip(`src/isa/asm/index.js does not load yet (conformance.js missing?): ${(e as Error).message}`);
    return;
  }
  assert.deepEqual(mod.assemble('r0 = 1\nexit', { syntax: 'llvm' }), assembleLlvm('r0 = 1\nexit'));
});

// ───────────────────────────── (c) errors ─────────────────────────────

test('errors name the line and column of the problem', () => {
  const cases: [source: string, line: number, column: number, message: RegExp][] = [
    ['nop', 1, 1, /unknown instruction 'nop'/],
    ['r0 = 1\n  frob r1', 2, 3, /unknown instruction 'frob'/],
    ['r11 = 1', 1, 1, /unknown register 'r11'/],
    ['r1 = r12', 1, 6, /unknown register 'r12'/],
    ['r1 = R2', 1, 6, /unknown register 'R2'/],
    ['w1 = r2', 1, 6, /r2 does not match the width of w1/],
    ['r1 += w2', 1, 7, /w2 does not match/],
    ['if r1 == w2 goto +1', 1, 10, /does not match/],
    ['r1 = 0x100000000', 1, 6, /does not fit in 32 bits/],
    ['r1 = -0x80000001', 1, 6, /does not fit in 32 bits/],
    ['w1 += 4294967296', 1, 7, /does not fit in 32 bits/],
    ['r1 = 0x10000000000000000 ll', 1, 6, /does not fit in 64 bits/],
    ['r0 = *(u8 *)(r1 + 32768)', 1, 19, /offset 32768 does not fit in a signed 16-bit field/],
    ['r0 = *(u8 *)(r1 - 32769)', 1, 19, /offset -32769/],
    ['goto +32768', 1, 6, /jump offset 32768/],
    ['gotol +0x80000000', 1, 7, /jump offset 2147483648/],
    ['r1 <<= 64', 1, 8, /shift count 64 is out of range 0..63/],
    ['w1 s>>= 32', 1, 9, /shift count 32 is out of range 0..31/],
    ['r1 >>= -1', 1, 8, /shift count -1/],
    ['goto nowhere', 1, 6, /unknown label 'nowhere'/],
    ['exit\n\n  if r1 > 2 goto  missing', 3, 19, /unknown label 'missing'/],
    ['a: exit\na: exit', 2, 1, /label 'a' is defined twice/],
    ['r1: exit', 1, 1, /'r1' looks like a register/],
    ['goto r12', 1, 6, /jump target/],
    ['.data', 1, 1, /unknown or unsupported directive '.data'/],
    ['  .byte 1, 2', 1, 3, /directive '.byte'/],
    ['r1 = 12abc', 1, 6, /invalid number '12abc'/],
    ['r1 = 09', 1, 6, /invalid number '09'/],
    ['r1 = r2 ! r3', 1, 9, /unexpected character '!'/],
    ['r1 = 1 /* open', 1, 8, /unterminated \/\* comment/],
    ['.file "x.c', 1, 7, /unterminated string/],
    ['exit 1', 1, 6, /expected end of statement, found '1'/],
    ['r1 = r2 ll', 1, 9, /expected end of statement, found 'll'/],
    ['r0 = *(u8 *)(r1)', 1, 16, /expected '\+' or '-'/],
    ['r0 = *(u128 *)(r1 + 0)', 1, 8, /u8, u16, u32 or u64/],
    ['if r1 =< r2 goto +1', 1, 7, /expected a comparison, found '='/],
    ['if r1 == r2 goto', 1, 17, /jump target.*found end of line/],
    ['w1 = *(u64 *)(r2 + 0)', 1, 1, /u64 access needs an r register, not w1/],
    ['r1 = *(u32 *)(w2 + 0)', 1, 15, /address register must be an r register/],
    ['*(u64 *)(r1 + 0) = w1', 1, 20, /u64 access needs an r register/],
    ['w1 = *(s8 *)(r2 + 0)', 1, 1, /sign-extending load must be an r register/],
    ['lock *(u16 *)(r1 + 0) += w2', 1, 8, /atomic operations need u32 or u64/],
    ['r3 = atomic_fetch_add((u64 *)(r1 + 0), r2)', 1, 40, /expected r3, found r2/],
    ['r1 = cmpxchg_64(r2 + 0, r1, r3)', 1, 1, /into r0, not r1/],
    ['r0 = cmpxchg_64(r2 + 0, r4, r3)', 1, 25, /compares with r0/],
    ['r1 = -r2', 1, 7, /negation works in place/],
    ['r1 = be16 r2', 1, 11, /byte swaps work in place/],
    ['w1 = be16 w1', 1, 1, /byte swap operand must be an r register/],
    ['w1 = (s32)w2', 1, 7, /\(s32\) needs r registers/],
    ['r1 = *(u8 *)skb[0]', 1, 1, /always write r0/],
    ['r0 = *(u64 *)skb[0]', 1, 8, /u8, u16 or u32/],
    ['callx w1', 1, 7, /callx target must be an r register/],
    ['w1 = 5 ll', 1, 1, /64-bit load must be an r register/],
    ['r1 = map_fd(x) ll', 1, 13, /map_fd\(\) takes a number/],
    ['r1 = map_fd(1)', 1, 15, /expected 'll'/],
    ['r1 = foo ll', 1, 6, /'foo' would need a relocation/],
    ['ld_pseudo r1, 16, 3', 1, 15, /4-bit src field/],
    ['call kfunc(1, 40000)', 1, 15, /does not fit in a signed 16-bit field/],
    ['call pc+0x80000000', 1, 9, /call offset/],
    ['r1 = 1\nr2 = 2 ; r3 = 0x1ffffffff', 2, 15, /does not fit in 32 bits/],
    ['/* a\nb */ r1 = 1\n\tr1 = *q', 3, 8, /expected '\(', found 'q'/],
  ];
  const problems: string[] = [];
  for (const [source, line, column, message] of cases) {
    try {
      assembleLlvm(source);
      problems.push(`${JSON.stringify(source)}: no error`);
    } catch (e) {
      if (!(e instanceof TsbpfError) || e.code !== 'asm') {
        problems.push(`${JSON.stringify(source)}: not an asm TsbpfError: ${String(e)}`);
        continue;
      }
      const pos = e.details.position;
      const ok =
        pos?.line === line &&
        pos.column === column &&
        e.message.startsWith(`line ${line}, column ${column}: `) &&
        message.test(e.message);
      if (!ok)
        problems.push(`${JSON.stringify(source)}: want ${line}:${column} ${message}, got ${e.message}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('a jump to a label out of 16-bit range is an error', () => {
  const source = `goto far\n${'r0 = 0\n'.repeat(32768)}far: exit`;
  assert.throws(() => assembleLlvm(source), /line 1, column 6: jump offset to 'far' 32768 does not fit/);
  assert.equal(assembleLlvm(source.replace('goto', 'gotol'))[0].imm, 32768);
});

// ───────────────────────────── (d) fuzz ─────────────────────────────

test('fuzz: mutated and random source only ever throws TsbpfError', (t) => {
  const rand = prng(0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const lines = [...corpus(), ...LABELLED.split('\n'), ...extendedForms().map((i) => formatInsn(i))];
  const atoms = [
    ...'()[]*+-=<>&|^!%/,:;#@"\'{}\\~`$. \t\n0123456789'.split(''),
    'r1',
    'w2',
    'r10',
    'r11',
    'goto',
    'gotol',
    'if',
    'call',
    'exit',
    'll',
    'u8',
    'u64',
    's16',
    'skb',
    'lock',
    's>>=',
    's<',
    '0x',
    '0xffffffff',
    '4294967296',
    '-2147483649',
    '18446744073709551616',
    'map_value',
    'func',
    'pc',
    'kfunc',
    '/*',
    '*/',
    '//',
    '<x+0x1>',
    'label',
    'label:',
    '.text',
    '.byte',
    'ld_pseudo',
    '\u00e9',
    '\u{1f600}',
  ];
  const mutate = (s: string): string => {
    const n = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < n; k++) {
      const at = Math.floor(rand() * (s.length + 1));
      const r = rand();
      if (r < 0.3) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 3));
      else if (r < 0.6) s = s.slice(0, at) + pick(atoms) + s.slice(at);
      else if (r < 0.8) s = s.slice(0, at) + pick(atoms) + s.slice(at + 1);
      else s = s.slice(0, at) + pick(lines) + s.slice(at);
    }
    return s;
  };
  const deadline = Date.now() + (process.env.TSBPF_LONG ? 60_000 : 1_500);
  let runs = 0;
  let accepted = 0;
  while (runs < 200_000 && (runs < 2000 || Date.now() < deadline)) {
    runs++;
    const source =
      rand() < 0.7
        ? Array.from({ length: 1 + Math.floor(rand() * 4) }, () => mutate(pick(lines))).join('\n')
        : Array.from({ length: Math.floor(rand() * 12) }, () => pick(atoms)).join(rand() < 0.5 ? ' ' : '');
    let insns: Insn[];
    try {
      insns = assembleLlvm(source);
    } catch (e) {
      if (!isTsbpfError(e) || e.code !== 'asm') {
        assert.fail(
          `non-TsbpfError for ${JSON.stringify(source)}: ${e instanceof Error ? e.stack : String(e)}`,
        );
      }
      const pos = e.details.position;
      assert.ok(pos && pos.line >= 1 && pos.column >= 1, `position for ${JSON.stringify(source)}`);
      assert.ok(e.message.startsWith(`line ${pos.line}, column ${pos.column}: `));
      continue;
    }
    accepted++;
    for (const i of insns) {
      const ok =
        Number.isInteger(i.code) &&
        i.code >= 0 &&
        i.code <= 255 &&
        i.dst >= 0 &&
        i.dst <= 10 &&
        i.src >= 0 &&
        i.src <= 15 &&
        i.off >= -32768 &&
        i.off <= 32767 &&
        i.imm >= -(2 ** 31) &&
        i.imm < 2 ** 31 &&
        (i.code !== OPCODE_LD_IMM64 || (i.imm2 !== undefined && i.imm2 >= -(2 ** 31) && i.imm2 < 2 ** 31));
      assert.ok(ok, `fields in range for ${JSON.stringify(source)}: ${JSON.stringify(i)}`);
    }
    encode(insns);
  }
  t.diagnostic(`${runs} sources, ${accepted} assembled, the rest refused with TsbpfError`);
  assert.ok(runs >= 2000, `ran ${runs}`);
  assert.ok(accepted > 0 && accepted < runs, `accepted ${accepted} of ${runs}`);
});
