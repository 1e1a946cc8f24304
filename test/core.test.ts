/**
 * CO-RE relocations (src/btf/core.ts).
 *
 * 1. Unit tests over hand-built local and target BTF: every relocation kind, flavors, anonymous members,
 *    arrays, ambiguity, candidate pruning, size adjustment, validation and poisoning.
 * 2. The fixtures against libbpf on this kernel: `bpftool -d prog loadall OBJ` (libbpf 1.1 inside bpftool)
 *    loads core_read.o and core_kinds.o with CO-RE against /sys/kernel/btf/vmlinux, and
 *    - its debug log (every candidate, spec, and `patched insn #N ... -> V` / `substituting insn #N` line)
 *      must equal the log our engine writes, line for line;
 *    - the kernel's `bpftool prog dump xlated ... opcodes` of each loaded program must hold, at every
 *      relocated instruction that survived verification, exactly the instruction we produced. The
 *      verifier rewrites programs (helper call immediates, map addresses, dead-code removal of the
 *      branches guarded by bpf_core_field_exists...), so instructions are matched by aligning the two
 *      sequences (longest common subsequence; keys ignore the fields the kernel rewrites), and only the
 *      CO-RE instructions are compared byte for byte. Relocated instructions missing from the xlated
 *      program must be dead code (the poisoned ones always are, or the load would have failed).
 * 3. A reachable poisoned instruction loaded into the kernel gets `invalid func unknown#195896080`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Btf } from '../src/btf/btf.js';
import {
  applyCoreRelocations,
  CORE,
  CORE_POISON_IMM,
  type CoreReloRecord,
  coreTypesMatch,
  essentialName,
  formatCoreReport,
} from '../src/btf/core.js';
import { parseBtf } from '../src/btf/parse.js';
import type { BtfMember, BtfType } from '../src/btf/types.js';
import { objectCoreSections, relocateObjectFile } from '../src/cli/commands/btf.js';
import { isTsbpfError } from '../src/errors.js';
import { formatInsn } from '../src/isa/disasm.js';
import { type Insn, slotIndex, splitImm64 } from '../src/isa/insn.js';
import { bpfAvailable, loadProgram } from '../src/kernel/program.js';
import { readElf } from '../src/object/elf.js';
import { readObject } from '../src/object/spec.js';
import { fixturePath, loadFixture } from './support/fixtures.js';

// ---------------------------------------------------------------------------------------------------------
// A tiny BTF builder

type NewType = BtfType extends infer T ? (T extends unknown ? Omit<T, 'id'> : never) : never;

class B {
  types: BtfType[] = [{ kind: 'UNKN', id: 0, name: '' }];
  private add(t: NewType): number {
    const id = this.types.length;
    this.types.push({ ...t, id } as BtfType);
    return id;
  }
  int(name: string, size: number, signed = false): number {
    return this.add({ kind: 'INT', name, size, encoding: signed ? 1 : 0, bitsOffset: 0, bits: size * 8 });
  }
  ptr(type: number): number {
    return this.add({ kind: 'PTR', name: '', type });
  }
  typedef(name: string, type: number): number {
    return this.add({ kind: 'TYPEDEF', name, type });
  }
  array(type: number, nelems: number, index: number): number {
    return this.add({ kind: 'ARRAY', name: '', type, indexType: index, nelems });
  }
  /** members: [name, type, bitOffset, bitfieldSize?] */
  struct(
    name: string,
    size: number,
    members: [string, number, number, number?][],
    kind: 'STRUCT' | 'UNION' = 'STRUCT',
  ) {
    const ms: BtfMember[] = members.map(([n, type, bitOffset, bitfieldSize]) => ({
      name: n,
      type,
      bitOffset,
      bitfieldSize: bitfieldSize ?? 0,
    }));
    return this.add({ kind, name, size, kindFlag: ms.some((m) => m.bitfieldSize > 0), members: ms });
  }
  /** Reserves an id, to be filled by `set` (for self-referencing structs). */
  set(id: number, t: NewType) {
    this.types[id] = { ...t, id } as BtfType;
  }
  enum(name: string, values: [string, number][], size = 4, signed = false): number {
    return this.add({
      kind: 'ENUM',
      name,
      size,
      signed,
      values: values.map(([n, value]) => ({ name: n, value })),
    });
  }
  enum64(name: string, values: [string, bigint][]): number {
    return this.add({
      kind: 'ENUM64',
      name,
      size: 8,
      signed: false,
      values: values.map(([n, value]) => ({ name: n, value })),
    });
  }
  fwd(name: string, union = false): number {
    return this.add({ kind: 'FWD', name, fwdKind: union ? 'union' : 'struct' });
  }
  build(): Btf {
    return new Btf({ types: this.types });
  }
}

const movK = (dst: number, imm: number): Insn => ({ code: 0xb7, dst, src: 0, off: 0, imm });
const ldxW = (dst: number, src: number, off: number): Insn => ({ code: 0x61, dst, src, off, imm: 0 });
const ldxDW = (dst: number, src: number, off: number): Insn => ({ code: 0x79, dst, src, off, imm: 0 });
const ldImm64 = (dst: number, v: bigint): Insn => ({ code: 0x18, dst, src: 0, off: 0, ...splitImm64(v) });
const exit: Insn = { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 };
const rec = (slot: number, typeId: number, accessStr: string, kind: number): CoreReloRecord => ({
  insnOff: slot * 8,
  typeId,
  accessStr,
  kind,
});

/** Applies one relocation to one instruction and returns the patched instruction(s) and the report. */
function one(insn: Insn, r: CoreReloRecord, local: Btf, target: Btf) {
  const out = applyCoreRelocations([insn, exit], [{ ...r, insnOff: 0 }], local, target);
  return { insns: out.insns.slice(0, -1), report: out.relocations[0], log: out.log };
}

// Local: struct task { int pid; unsigned int flags; char comm[16]; unsigned int a:3, b:5; int c:4; struct task *parent; }
function localTask() {
  const b = new B();
  const int = b.int('int', 4, true);
  const uint = b.int('unsigned int', 4);
  const char = b.int('char', 1, true);
  const idx = b.int('__ARRAY_SIZE_TYPE__', 4);
  const comm = b.array(char, 16, idx);
  const task = b.struct('task', 0, []); // filled below
  const ptask = b.ptr(task);
  b.set(task, {
    kind: 'STRUCT',
    name: 'task',
    size: 40,
    kindFlag: true,
    members: [
      { name: 'pid', type: int, bitOffset: 0, bitfieldSize: 0 },
      { name: 'flags', type: uint, bitOffset: 32, bitfieldSize: 0 },
      { name: 'comm', type: comm, bitOffset: 64, bitfieldSize: 0 },
      { name: 'a', type: uint, bitOffset: 192, bitfieldSize: 3 },
      { name: 'b', type: uint, bitOffset: 195, bitfieldSize: 5 },
      { name: 'c', type: int, bitOffset: 200, bitfieldSize: 4 },
      { name: 'parent', type: ptask, bitOffset: 256, bitfieldSize: 0 },
    ],
  });
  return { btf: b.build(), task, int, uint };
}

// Target: the same fields moved around, some inside an anonymous union, comm longer, 'b' gone.
function targetTask() {
  const b = new B();
  const long = b.int('long', 8, true);
  const int = b.int('int', 4, true);
  const uint = b.int('unsigned int', 4);
  const char = b.int('char', 1, true);
  const idx = b.int('__ARRAY_SIZE_TYPE__', 4);
  const comm = b.array(char, 32, idx);
  const task = b.struct('task', 0, []);
  const ptask = b.ptr(task);
  const inner = b.struct('', 8, [
    ['pid', int, 0],
    ['flags', uint, 32],
  ]);
  const anon = b.struct(
    '',
    8,
    [
      ['', inner, 0],
      ['raw', long, 0],
    ],
    'UNION',
  );
  b.set(task, {
    kind: 'STRUCT',
    name: 'task',
    size: 128,
    kindFlag: true,
    members: [
      { name: 'state', type: long, bitOffset: 0, bitfieldSize: 0 },
      { name: '', type: anon, bitOffset: 64, bitfieldSize: 0 },
      { name: 'parent', type: ptask, bitOffset: 128, bitfieldSize: 0 },
      { name: 'comm', type: comm, bitOffset: 192, bitfieldSize: 0 },
      { name: 'c', type: int, bitOffset: 450, bitfieldSize: 6 },
      { name: 'a', type: uint, bitOffset: 461, bitfieldSize: 7 },
    ],
  });
  return { btf: b.build(), task };
}

describe('CO-RE: field relocations', () => {
  const L = localTask();
  const T = targetTask();

  test('FIELD_BYTE_OFFSET through an anonymous union and struct, patching ALU imm and LDX off', () => {
    const alu = one(movK(1, 4), rec(0, L.task, '0:1', CORE.FIELD_BYTE_OFFSET), L.btf, T.btf);
    assert.deepEqual(alu.insns, [movK(1, 12)]);
    assert.equal(alu.report.localSpec, '<byte_off> [6] struct task.flags (0:1 @ offset 4)');
    assert.equal(alu.report.targetSpec, '<byte_off> [7] struct task.flags (0:1:0:1 @ offset 12)');
    assert.equal(alu.report.targetValue, 12n);
    const ldx = one(ldxW(0, 1, 0), rec(0, L.task, '0:0', CORE.FIELD_BYTE_OFFSET), L.btf, T.btf);
    assert.deepEqual(ldx.insns, [ldxW(0, 1, 8)]);
    assert.match(ldx.log.join('\n'), /patched insn #0 \(LDX\/ST\/STX\) off 0 -> 8/);
  });

  test('arrays: element offsets, bounds against the target array', () => {
    const r = one(movK(1, 8 + 5), rec(0, L.task, '0:2:5', CORE.FIELD_BYTE_OFFSET), L.btf, T.btf);
    assert.deepEqual(r.insns, [movK(1, 24 + 5)]);
    assert.equal(r.report.targetSpec, '<byte_off> [7] struct task.comm[5] (0:3:5 @ offset 29)');
    // comm[20] is out of bounds locally (16 elements): the local spec itself is invalid.
    assert.throws(
      () => one(movK(1, 28), rec(0, L.task, '0:2:20', CORE.FIELD_BYTE_OFFSET), L.btf, T.btf),
      /relo #0/,
    );
    // task[1].pid: the root index scales by the struct size.
    const r2 = one(movK(1, 40), rec(0, L.task, '1:0', CORE.FIELD_BYTE_OFFSET), L.btf, T.btf);
    assert.deepEqual(r2.insns, [movK(1, 128 + 8)]);
  });

  test('FIELD_BYTE_SIZE, FIELD_EXISTS, FIELD_SIGNED', () => {
    assert.deepEqual(one(movK(1, 16), rec(0, L.task, '0:2', CORE.FIELD_BYTE_SIZE), L.btf, T.btf).insns, [
      movK(1, 32),
    ]);
    assert.deepEqual(one(movK(1, 1), rec(0, L.task, '0:0', CORE.FIELD_EXISTS), L.btf, T.btf).insns, [
      movK(1, 1),
    ]);
    // 'b' does not exist in the target: exists = 0, no poisoning.
    const gone = one(movK(1, 1), rec(0, L.task, '0:4', CORE.FIELD_EXISTS), L.btf, T.btf);
    assert.deepEqual(gone.insns, [movK(1, 0)]);
    assert.equal(gone.report.poisoned, false);
    assert.deepEqual(one(movK(1, 1), rec(0, L.task, '0:0', CORE.FIELD_SIGNED), L.btf, T.btf).insns, [
      movK(1, 1),
    ]);
    assert.deepEqual(one(movK(1, 0), rec(0, L.task, '0:1', CORE.FIELD_SIGNED), L.btf, T.btf).insns, [
      movK(1, 0),
    ]);
  });

  test('bitfields: byte offset and size of the smallest load, LSHIFT_U64 and RSHIFT_U64 (little endian)', () => {
    // Local 'a': bits 192..194 of a u32 -> load 4 bytes at 24, lshift 64-(192+3-192)=61, rshift 61.
    // Target 'a': bits 461..467 (7 bits) -> u32 at 56 (bits 448..479): lshift 64-(461+7-448)=44, rshift 57.
    const k = (access: string, kind: number, local: number) =>
      one(movK(1, local), rec(0, L.task, access, kind), L.btf, T.btf).insns[0].imm;
    assert.equal(k('0:3', CORE.FIELD_BYTE_OFFSET, 24), 56);
    assert.equal(k('0:3', CORE.FIELD_BYTE_SIZE, 4), 4);
    assert.equal(k('0:3', CORE.FIELD_LSHIFT_U64, 61), 44);
    assert.equal(k('0:3', CORE.FIELD_RSHIFT_U64, 61), 57);
    assert.equal(k('0:3', CORE.FIELD_SIGNED, 0), 0);
    // Signed 'c': local bits 200..203, target 450..455.
    assert.equal(k('0:5', CORE.FIELD_LSHIFT_U64, 64 - (200 + 4 - 192)), 64 - (450 + 6 - 448));
    assert.equal(k('0:5', CORE.FIELD_RSHIFT_U64, 60), 58);
    assert.equal(k('0:5', CORE.FIELD_SIGNED, 1), 1);
    // Bitfield offsets and shifts are not validated against the instruction (libbpf: ambiguous).
    assert.equal(k('0:3', CORE.FIELD_LSHIFT_U64, 12345), 44);
  });

  test('a missing field poisons the instruction; the original value is still checked first', () => {
    const r = one(ldxW(0, 1, 24), rec(0, L.task, '0:4', CORE.FIELD_BYTE_OFFSET), L.btf, T.btf);
    assert.deepEqual(r.insns, [{ code: 0x85, dst: 0, src: 0, off: 0, imm: CORE_POISON_IMM }]);
    assert.equal(formatInsn(r.insns[0]), 'call 0xbad2310');
    assert.equal(r.report.poisoned, true);
    assert.match(r.log.join('\n'), /no matching targets found\n.*substituting insn #0 w\/ invalid insn/);
  });

  test('the instruction must hold the local value', () => {
    assert.throws(
      () => one(movK(1, 5), rec(0, L.task, '0:1', CORE.FIELD_BYTE_OFFSET), L.btf, T.btf),
      (e: unknown) =>
        isTsbpfError(e) && /unexpected insn #0 \(ALU\/ALU64\) value: got 5, exp 4 -> 12/.test(e.message),
    );
    assert.throws(
      () => one(ldxW(0, 1, 2), rec(0, L.task, '0:1', CORE.FIELD_BYTE_OFFSET), L.btf, T.btf),
      /unexpected insn #0 \(LDX\/ST\/STX\) value: got 2, exp 4 -> 12/,
    );
    // Register-source ALU and jumps cannot carry a relocation.
    assert.throws(
      () =>
        one(
          { code: 0x05, dst: 0, src: 0, off: 4, imm: 0 },
          rec(0, L.task, '0:1', CORE.FIELD_BYTE_OFFSET),
          L.btf,
          T.btf,
        ),
      /unrecognized insn/,
    );
    // strict: false records the failure and leaves the instruction alone.
    const soft = applyCoreRelocations(
      [movK(1, 5), exit],
      [rec(0, L.task, '0:1', CORE.FIELD_BYTE_OFFSET)],
      L.btf,
      T.btf,
      {
        strict: false,
      },
    );
    assert.deepEqual(soft.insns[0], movK(1, 5));
    assert.match(soft.relocations[0].error ?? '', /unexpected insn/);
  });

  test('load size follows the field size for pointers and unsigned integers, else poisons', () => {
    // local: struct s { unsigned long u; long i; void *p; }, target: struct s { unsigned int u; int i; u32 ptr? }
    const l = new B();
    const ul = l.int('unsigned long', 8);
    const sl = l.int('long', 8, true);
    const v = l.ptr(0);
    const ls = l.struct('s', 24, [
      ['u', ul, 0],
      ['i', sl, 64],
      ['p', v, 128],
    ]);
    const t = new B();
    const ui = t.int('unsigned int', 4);
    const si = t.int('int', 4, true);
    t.struct('s', 12, [
      ['p', t.ptr(0), 0],
      ['u', ui, 64],
      ['i', si, 32],
    ]);
    const lb = l.build();
    const tb = t.build();
    const u = one(ldxDW(0, 1, 0), rec(0, ls, '0:0', CORE.FIELD_BYTE_OFFSET), lb, tb);
    assert.deepEqual(u.insns, [ldxW(0, 1, 8)]);
    assert.match(u.log.join('\n'), /mem_sz 8 -> 4/);
    const i = one(ldxDW(0, 1, 8), rec(0, ls, '0:1', CORE.FIELD_BYTE_OFFSET), lb, tb);
    assert.equal(i.insns[0].imm, CORE_POISON_IMM);
    assert.equal(i.report.poisoned, true);
    assert.match(i.log.join('\n'), /accesses field incorrectly/);
    // ALU relocations of the same field are fine: the size check only concerns loads and stores.
    assert.deepEqual(one(movK(2, 8), rec(0, ls, '0:1', CORE.FIELD_BYTE_OFFSET), lb, tb).insns, [movK(2, 4)]);
  });

  test('flexible array members accept any index; fields must be of compatible kinds', () => {
    const l = new B();
    const int = l.int('int', 4, true);
    const idx = l.int('__ARRAY_SIZE_TYPE__', 4);
    const flex = l.array(int, 0, idx);
    const ls = l.struct('v', 4, [
      ['n', int, 0],
      ['data', flex, 32],
    ]);
    const t = new B();
    const tint = t.int('int', 4, true);
    const tidx = t.int('__ARRAY_SIZE_TYPE__', 4);
    t.struct('v', 8, [
      ['pad', tint, 0],
      ['n', t.ptr(0), 32], // a pointer where the local has an int: not compatible
      ['data', t.array(tint, 0, tidx), 64],
    ]);
    const r = one(movK(1, 4 + 7 * 4), rec(0, ls, '0:1:7', CORE.FIELD_BYTE_OFFSET), l.build(), t.build());
    assert.deepEqual(r.insns, [movK(1, 8 + 7 * 4)]);
    const n = one(movK(1, 1), rec(0, ls, '0:0', CORE.FIELD_EXISTS), l.build(), t.build());
    assert.deepEqual(n.insns, [movK(1, 0)]);
  });
});

describe('CO-RE: candidates', () => {
  test('flavors: ___suffix is ignored on both sides; essential names', () => {
    assert.equal(essentialName('task_struct___old'), 'task_struct');
    assert.equal(essentialName('task_struct___2'), 'task_struct');
    assert.equal(essentialName('a____b'), 'a____b'); // the separator must be X___Y with X, Y not '_'
    assert.equal(essentialName('___x'), '___x');
    const l = new B();
    const int = l.int('int', 4, true);
    const ls = l.struct('foo___mine', 8, [['y', int, 32]]);
    const t = new B();
    const tint = t.int('int', 4, true);
    t.struct('foo___v1', 12, [['y', tint, 64]]);
    t.struct('foo_bar', 12, [['y', tint, 0]]); // a different essential name
    const r = one(movK(1, 4), rec(0, ls, '0:0', CORE.FIELD_BYTE_OFFSET), l.build(), t.build());
    assert.deepEqual(r.insns, [movK(1, 8)]);
    assert.deepEqual(
      r.log.filter((x) => x.startsWith('CO-RE')),
      ['CO-RE relocating [2] struct foo___mine: found target candidate [2] struct foo___v1 in [vmlinux]'],
    );
  });

  test('several candidates must agree; offset or value ambiguity fails like libbpf', () => {
    const l = new B();
    const int = l.int('int', 4, true);
    const ls = l.struct('foo', 8, [
      ['x', int, 0],
      ['y', int, 32],
    ]);
    const lb = l.build();
    const t = new B();
    const tint = t.int('int', 4, true);
    const tlong = t.int('long', 8, true);
    t.struct('foo', 16, [
      ['x', tint, 0],
      ['y', tint, 64],
    ]);
    t.struct('foo___other', 16, [
      ['x', tlong, 0],
      ['y', tint, 96],
    ]);
    const tb = t.build();
    // x: same offset in both, same value: fine.
    assert.deepEqual(one(movK(1, 0), rec(0, ls, '0:0', CORE.FIELD_BYTE_OFFSET), lb, tb).insns, [movK(1, 0)]);
    // x's size differs between the candidates: decision ambiguity.
    assert.throws(
      () => one(movK(1, 4), rec(0, ls, '0:0', CORE.FIELD_BYTE_SIZE), lb, tb),
      /relocation decision ambiguity: success 8 != success 4/,
    );
    // y: different offsets.
    assert.throws(
      () => one(movK(1, 4), rec(0, ls, '0:1', CORE.FIELD_BYTE_OFFSET), lb, tb),
      /field offset ambiguity: 96 != 64/,
    );
  });

  test('the candidate list is pruned by earlier relocations of the same type, as libbpf caches it', () => {
    const l = new B();
    const int = l.int('int', 4, true);
    const ls = l.struct('foo', 8, [
      ['only_in_a', int, 0],
      ['y', int, 32],
    ]);
    const t = new B();
    const tint = t.int('int', 4, true);
    t.struct('foo___a', 16, [
      ['only_in_a', tint, 0],
      ['y', tint, 64],
    ]);
    t.struct('foo___b', 16, [['y', tint, 96]]);
    const lb = l.build();
    const tb = t.build();
    // y alone is ambiguous...
    assert.throws(() => one(movK(1, 4), rec(0, ls, '0:1', CORE.FIELD_BYTE_OFFSET), lb, tb), /ambiguity/);
    // ...but after only_in_a has matched foo___a alone, y resolves against foo___a only.
    const r = applyCoreRelocations(
      [movK(1, 1), movK(2, 4), exit],
      [rec(0, ls, '0:0', CORE.FIELD_EXISTS), rec(1, ls, '0:1', CORE.FIELD_BYTE_OFFSET)],
      lb,
      tb,
    );
    assert.deepEqual(r.insns.slice(0, 2), [movK(1, 1), movK(2, 8)]);
  });
});

describe('CO-RE: type and enum relocations', () => {
  const l = new B();
  const lint = l.int('int', 4, true);
  const lu32 = l.typedef('u32', l.int('unsigned int', 4));
  const lfoo = l.struct('foo', 8, [
    ['a', lint, 0],
    ['p', 0, 0],
  ]);
  l.set(lfoo, {
    kind: 'STRUCT',
    name: 'foo',
    size: 8,
    kindFlag: false,
    members: [
      { name: 'a', type: lint, bitOffset: 0, bitfieldSize: 0 },
      { name: 'p', type: l.ptr(l.fwd('bar')), bitOffset: 64, bitfieldSize: 0 },
    ],
  });
  const lmissing = l.struct('missing', 4, [['a', lint, 0]]);
  const lcolor = l.enum('color', [
    ['RED', 0],
    ['GREEN', 1],
    ['PURPLE', 7],
  ]);
  const lbig = l.enum('big', [['HUGE', 1]]);
  const lb = l.build();

  const t = new B();
  t.int('char', 1, true);
  const tint = t.int('int', 4, true);
  const tu32 = t.typedef('u32', t.int('unsigned int', 4));
  const tbar = t.struct('bar', 4, [['z', tint, 0]]);
  const tfoo = t.struct('foo', 24, [
    ['b', tint, 0],
    ['a', tint, 32],
    ['p', t.ptr(tbar), 64],
  ]);
  const tcolor = t.enum('color', [
    ['GREEN', 5],
    ['RED', 6],
    ['BLUE', -1 >>> 0],
  ]);
  t.enum64('big', [['HUGE', 0xfedcba9876543210n]]);
  const tb = t.build();

  const v = (insn: Insn, typeId: number, kind: number, access = '0') =>
    one(insn, rec(0, typeId, access, kind), lb, tb);

  test('TYPE_ID_LOCAL, TYPE_ID_TARGET (LD_IMM64)', () => {
    assert.deepEqual(v(ldImm64(1, 99n), lfoo, CORE.TYPE_ID_LOCAL).insns, [ldImm64(1, BigInt(lfoo))]);
    assert.deepEqual(v(ldImm64(1, BigInt(lfoo)), lfoo, CORE.TYPE_ID_TARGET).insns, [
      ldImm64(1, BigInt(tfoo)),
    ]);
    assert.deepEqual(v(ldImm64(1, 1n), lmissing, CORE.TYPE_ID_TARGET).insns, [ldImm64(1, 0n)]);
    assert.deepEqual(v(ldImm64(1, 1n), lu32, CORE.TYPE_ID_TARGET).insns, [ldImm64(1, BigInt(tu32))]);
  });

  test('TYPE_EXISTS, TYPE_SIZE, TYPE_MATCHES', () => {
    assert.deepEqual(v(movK(1, 1), lfoo, CORE.TYPE_EXISTS).insns, [movK(1, 1)]);
    assert.deepEqual(v(movK(1, 1), lmissing, CORE.TYPE_EXISTS).insns, [movK(1, 0)]);
    assert.deepEqual(v(movK(1, 8), lfoo, CORE.TYPE_SIZE).insns, [movK(1, 24)]);
    assert.deepEqual(v(movK(1, 4), lmissing, CORE.TYPE_SIZE).insns, [movK(1, 0)]);
    // foo matches: 'a' and 'p' are found by name; p points to a forward declaration of the target's struct bar.
    assert.deepEqual(v(movK(1, 1), lfoo, CORE.TYPE_MATCHES).insns, [movK(1, 1)]);
    assert.deepEqual(v(movK(1, 1), lu32, CORE.TYPE_MATCHES).insns, [movK(1, 1)]);
    // enums match by names (values ignored), sizes must agree: big (4 bytes) vs big (enum64, 8 bytes).
    assert.deepEqual(v(movK(1, 1), lcolor, CORE.TYPE_MATCHES).insns, [movK(1, 0)]); // PURPLE is missing
    assert.deepEqual(v(movK(1, 1), lbig, CORE.TYPE_MATCHES).insns, [movK(1, 0)]);
    assert.deepEqual(v(movK(1, 1), lbig, CORE.TYPE_EXISTS).insns, [movK(1, 1)]);
  });

  test('coreTypesMatch details: int size and sign, array length, struct vs fwd behind pointers', () => {
    const a = new B();
    const i4 = a.int('int', 4, true);
    const u4 = a.int('unsigned int', 4);
    const idx = a.int('__ARRAY_SIZE_TYPE__', 4);
    const arr3 = a.array(i4, 3, idx);
    const arr4 = a.array(i4, 4, idx);
    const s = a.struct('s', 4, [['x', i4, 0]]);
    const fwdS = a.fwd('s');
    const fwdU = a.fwd('s', true);
    const ps = a.ptr(s);
    const pfwdS = a.ptr(fwdS);
    const pfwdU = a.ptr(fwdU);
    const ab = a.build();
    assert.equal(coreTypesMatch(ab, i4, ab, u4), 0);
    assert.equal(coreTypesMatch(ab, i4, ab, i4), 1);
    assert.equal(coreTypesMatch(ab, arr3, ab, arr4), 0);
    assert.equal(coreTypesMatch(ab, ps, ab, pfwdS), 1);
    assert.equal(coreTypesMatch(ab, ps, ab, pfwdU), 0);
    assert.equal(coreTypesMatch(ab, s, ab, fwdS), 0); // not behind a pointer
  });

  test('ENUMVAL_EXISTS and ENUMVAL_VALUE, enum to enum64, 32-bit values sign-extended', () => {
    assert.deepEqual(v(ldImm64(1, 1n), lcolor, CORE.ENUMVAL_EXISTS, '1').insns, [ldImm64(1, 1n)]);
    assert.deepEqual(v(ldImm64(1, 1n), lcolor, CORE.ENUMVAL_EXISTS, '2').insns, [ldImm64(1, 0n)]);
    assert.deepEqual(v(ldImm64(1, 1n), lcolor, CORE.ENUMVAL_VALUE, '1').insns, [ldImm64(1, 5n)]);
    assert.deepEqual(v(movK(1, 0), lcolor, CORE.ENUMVAL_VALUE, '0').insns, [movK(1, 6)]);
    assert.deepEqual(v(ldImm64(1, 1n), lbig, CORE.ENUMVAL_VALUE, '0').insns, [
      ldImm64(1, 0xfedcba9876543210n),
    ]);
    const r = v(ldImm64(1, 1n), lcolor, CORE.ENUMVAL_VALUE, '1');
    assert.equal(r.report.localSpec, `<enumval_value> [${lcolor}] enum color::GREEN = 1`);
    assert.equal(r.report.targetSpec, `<enumval_value> [${tcolor}] enum color::GREEN = 5`);
  });

  test('a missing enumerator poisons both slots of an LD_IMM64', () => {
    const insns = [movK(0, 0), ldImm64(1, 7n), exit];
    const r = applyCoreRelocations(insns, [rec(1, lcolor, '2', CORE.ENUMVAL_VALUE)], lb, tb);
    const poison = { code: 0x85, dst: 0, src: 0, off: 0, imm: CORE_POISON_IMM };
    assert.deepEqual(r.insns, [movK(0, 0), poison, poison, exit]);
    assert.equal(slotIndex(r.insns).at(-1), slotIndex(insns).at(-1)); // same slots: jumps stay valid
    assert.equal(r.relocations[0].poisoned, true);
    assert.match(formatCoreReport(r.relocations), /poisoned: no matching target found/);
  });

  test('malformed records fail with a named relocation', () => {
    assert.throws(() => v(movK(1, 1), lfoo, CORE.TYPE_EXISTS, '0:1'), /relo #0/);
    assert.throws(() => v(movK(1, 1), lcolor, CORE.ENUMVAL_VALUE, '9'), /relo #0/);
    assert.throws(() => v(movK(1, 1), lfoo, 42), /relo #0/);
    assert.throws(
      () => applyCoreRelocations([ldImm64(1, 0n), exit], [rec(1, lfoo, '0', CORE.TYPE_SIZE)], lb, tb),
      /not the start of an instruction/,
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// The fixtures against libbpf and the kernel

const VMLINUX = '/sys/kernel/btf/vmlinux';

function libbpfAvailable(): string | undefined {
  if (!existsSync(VMLINUX)) return `${VMLINUX} is missing`;
  if (process.getuid?.() !== 0) return 'needs root (bpftool prog loadall)';
  if (spawnSync('bpftool', ['version'], { stdio: 'ignore' }).status !== 0) return 'bpftool is not installed';
  const fs = spawnSync('stat', ['-f', '-c', '%T', '/sys/fs/bpf'], { encoding: 'utf8' });
  if (fs.stdout.trim() !== 'bpf_fs') return '/sys/fs/bpf is not a mounted bpf filesystem';
  return undefined;
}

interface XlatedInsn extends Insn {
  text: string;
}

/** `bpftool -j prog dump xlated pinned PATH opcodes` as instructions. */
function xlated(pin: string): XlatedInsn[] {
  const r = spawnSync('bpftool', ['-j', 'prog', 'dump', 'xlated', 'pinned', pin, 'opcodes'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.equal(r.status, 0, r.stderr);
  const list = JSON.parse(r.stdout) as {
    disasm: string;
    opcodes: { code: string; src_reg: string; dst_reg: string; off: string[]; imm: string[] };
  }[];
  return list.map((e) => {
    const b = (xs: string[]) => xs.map((x) => Number.parseInt(x, 16));
    const off = b(e.opcodes.off);
    const imm = b(e.opcodes.imm);
    const i32 = (k: number) => imm[k] | (imm[k + 1] << 8) | (imm[k + 2] << 16) | (imm[k + 3] << 24) | 0;
    const insn: XlatedInsn = {
      code: Number.parseInt(e.opcodes.code, 16),
      dst: Number.parseInt(e.opcodes.dst_reg, 16),
      src: Number.parseInt(e.opcodes.src_reg, 16),
      off: ((off[0] | (off[1] << 8)) << 16) >> 16,
      imm: i32(0),
      text: e.disasm,
    };
    if (imm.length === 12) insn.imm2 = i32(8);
    return insn;
  });
}

/**
 * Aligns our instructions with the kernel's xlated ones (longest common subsequence). Keys ignore what the
 * verifier rewrites: helper call immediates and LD_IMM64 map references compare by opcode and register
 * only, and so do the relocated instructions themselves (so that a wrong value shows as a mismatch, not
 * as a missing instruction). Returns, for each of ours, the xlated index or -1.
 */
function align(ours: readonly Insn[], theirs: readonly Insn[], relocated: ReadonlySet<number>): number[] {
  const key = (i: Insn, loose: boolean) =>
    i.code === 0x85 || i.code === 0x18 || loose
      ? `${i.code}/${i.dst}`
      : `${i.code}/${i.dst}/${i.src}/${i.off}/${i.imm}`;
  const a = ours.map((i, k) => key(i, relocated.has(k)));
  const b = theirs.map((i) => key(i, i.code === 0x85 || i.code === 0x18));
  const eq = (x: number, y: number) =>
    a[x] === b[y] || (relocated.has(x) && a[x] === `${theirs[y].code}/${theirs[y].dst}`);
  const n = a.length;
  const m = b.length;
  const dp = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let x = n - 1; x >= 0; x--)
    for (let y = m - 1; y >= 0; y--)
      dp[x][y] = eq(x, y) ? dp[x + 1][y + 1] + 1 : Math.max(dp[x + 1][y], dp[x][y + 1]);
  const out = new Array<number>(n).fill(-1);
  let x = 0;
  let y = 0;
  while (x < n && y < m) {
    if (eq(x, y) && dp[x][y] === dp[x + 1][y + 1] + 1) out[x++] = y++;
    else if (dp[x + 1][y] >= dp[x][y + 1]) x++;
    else y++;
  }
  return out;
}

const LIBBPF_SKIP = libbpfAvailable();

describe('CO-RE: the fixtures agree with libbpf on this kernel', { skip: LIBBPF_SKIP ?? false }, () => {
  const target = LIBBPF_SKIP ? undefined : parseBtf(new Uint8Array(readFileSync(VMLINUX)));

  for (const name of ['core_read', 'core_kinds']) {
    test(`${name}.o: libbpf's log and the kernel's xlated instructions`, (t) => {
      const pinDir = `/sys/fs/bpf/tsbpf-core-test-${process.pid}-${name}`;
      rmSync(pinDir, { recursive: true, force: true });
      try {
        const load = spawnSync('bpftool', ['-d', 'prog', 'loadall', fixturePath(name), pinDir], {
          encoding: 'utf8',
          maxBuffer: 64 << 20,
        });
        assert.equal(load.status, 0, `bpftool prog loadall failed:\n${load.stderr.slice(-4000)}`);
        const ours = relocateObjectFile(loadFixture(name), target as Btf, name, true);
        const programs = new Map(
          objectCoreSections(readElf(loadFixture(name))).flatMap((sec) =>
            (sec.programs ?? []).map((p) => [`${sec.name}/${p.name}`, p] as const),
          ),
        );

        // 1. libbpf's debug lines about CO-RE, word for word.
        const theirs = load.stderr
          .split('\n')
          .filter((l) => l.startsWith('libbpf: '))
          .map((l) => l.slice('libbpf: '.length))
          .filter((l) => /CO-RE|^prog '[^']*': relo #/.test(l));
        assert.ok(theirs.length > 0, 'bpftool -d printed no CO-RE lines');
        assert.deepEqual(ours.log, theirs);

        // 2. The relocated instructions in the kernel's xlated programs.
        let compared = 0;
        let dead = 0;
        for (const sec of ours.sections) {
          const byProgram = new Map<string, typeof sec.relocations>();
          for (const r of sec.relocations) byProgram.set(r.program, [...(byProgram.get(r.program) ?? []), r]);
          for (const [program, relos] of byProgram) {
            const got = xlated(`${pinDir}/${program}`);
            // Our program: the patched section instructions within the program's symbol.
            const p = programs.get(`${sec.section}/${program}`);
            assert.ok(p, `no symbol for ${program}`);
            const slots = slotIndex(sec.insns);
            const mine = sec.insns.filter((_, k) => slots[k] >= p.slot && slots[k] < p.slot + p.slots);
            const mySlots = slotIndex(mine);
            const relocatedAt = new Map<number, (typeof relos)[number]>();
            for (const r of relos) relocatedAt.set(mySlots.indexOf(r.insnIndex), r);
            const map = align(mine, got, new Set(relocatedAt.keys()));
            for (const [k, r] of relocatedAt) {
              const y = map[k];
              const what = `${name} ${program} relo #${r.index} (${r.kindName} ${r.accessStr}) at insn #${r.insnIndex}`;
              if (y < 0) {
                dead++;
                continue;
              }
              const x = got[y];
              const want = mine[k];
              assert.deepEqual(
                { code: x.code, dst: x.dst, src: x.src, off: x.off, imm: x.imm, imm2: x.imm2 },
                {
                  code: want.code,
                  dst: want.dst,
                  src: want.src,
                  off: want.off,
                  imm: want.imm,
                  imm2: want.imm2,
                },
                `${what}: xlated '${x.text}' vs ours '${formatInsn(want)}'`,
              );
              assert.equal(r.poisoned, false, `${what}: a poisoned instruction survived verification`);
              compared++;
            }
          }
        }
        const total = ours.sections.reduce((n, s) => n + s.relocations.length, 0);
        const poisoned = ours.sections.flatMap((s) => s.relocations).filter((r) => r.poisoned).length;
        t.diagnostic(
          `${name}: ${total} relocations, log equal (${theirs.length} lines); ${compared} instructions equal in xlated, ${dead} removed as dead code (${poisoned} poisoned)`,
        );
        // Every relocated instruction was found in the kernel's program except dead code, which includes
        // every poisoned one (the kernel would have rejected a reachable one).
        assert.ok(
          dead >= poisoned,
          `${name}: ${dead} relocated instructions not in xlated, ${poisoned} poisoned`,
        );
        assert.equal(compared + dead, total);
        assert.ok(
          compared >= total - (name === 'core_kinds' ? 8 : 0),
          `${name}: compared ${compared} of ${total}`,
        );
      } finally {
        rmSync(pinDir, { recursive: true, force: true });
      }
    });
  }
});

describe('CO-RE: ObjectSpec programs', { skip: existsSync(VMLINUX) ? false : `no ${VMLINUX}` }, () => {
  test('pc-based records of linked programs relocate like the ELF sections', () => {
    const target = parseBtf(new Uint8Array(readFileSync(VMLINUX)));
    const bytes = loadFixture('core_kinds');
    const spec = readObject(bytes);
    const bySection = relocateObjectFile(bytes, target, 'core_kinds', true);
    const strip = (i: Insn) => ({
      code: i.code,
      dst: i.dst,
      src: i.src,
      off: i.off,
      imm: i.imm,
      imm2: i.imm2,
    });
    assert.equal(spec.programs.length, 2);
    for (const p of spec.programs) {
      const r = applyCoreRelocations(p.insns, p.coreRelos, spec.btf as Btf, target);
      const s = bySection.sections.find((x) => x.section === p.section);
      assert.ok(s);
      assert.deepEqual(
        r.relocations.map((x) => x.after.map(strip)),
        s.relocations.map((x) => x.after.map(strip)),
      );
      assert.equal(slotIndex(r.insns).at(-1), p.slotCount);
    }
  });
});

describe('CO-RE: the kernel rejects a reachable poisoned instruction', {
  skip: bpfAvailable().ok ? false : 'no bpf()',
}, () => {
  test('invalid func unknown#195896080 at the poisoned instruction', () => {
    const l = new B();
    const s = l.struct('gone_struct_tsbpf', 4, [['x', l.int('int', 4, true), 0]]);
    const t = new B();
    t.int('int', 4, true);
    for (const [insn, at] of [
      [movK(0, 0), 1],
      [ldImm64(0, 0n), 1],
    ] as const) {
      const prog = [movK(0, 0), insn, exit];
      const r = applyCoreRelocations(prog, [rec(1, s, '0:0', CORE.FIELD_BYTE_OFFSET)], l.build(), t.build());
      assert.equal(r.relocations[0].poisoned, true);
      assert.throws(
        () => loadProgram({ type: 'socket_filter', insns: r.insns }),
        (e: unknown) =>
          isTsbpfError(e) &&
          new RegExp(`^${at}: \\(85\\) call unknown#195896080\\ninvalid func unknown#195896080`, 'm').test(
            e.details.log ?? '',
          ),
      );
    }
  });
});
