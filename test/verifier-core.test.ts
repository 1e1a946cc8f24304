/**
 * The verifier's core: tnum and bound arithmetic (against values the 6.18 kernel printed), a set of
 * accept/reject programs checked against the live kernel (verdict, error sentence, and for some the
 * whole level-1 log), and a fuzz run (random and mutated programs: a result or a TsbpfError, never
 * a crash or a hang).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { programTypeByName } from '../src/catalog/program-types.js';
import { isTsbpfError } from '../src/errors.js';
import { assembleLlvm } from '../src/isa/asm/llvm.js';
import { decode, type Insn } from '../src/isa/insn.js';
import { bpfAvailable, closeFd, loadProgram } from '../src/kernel/program.js';
import { bpf, kernelBuffer } from '../src/kernel/syscall.js';
import { type VerifierMap, verify } from '../src/verifier/index.js';
import { kernelInsn } from '../src/verifier/log.js';
import {
  aluScalar,
  type Bounds,
  coerceToSize,
  constBounds,
  syncBounds,
  unknownBounds,
} from '../src/verifier/scalar.js';
import { regStr, scalarUnknown } from '../src/verifier/state.js';
import {
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumConst,
  tnumIn,
  tnumMul,
  tnumOr,
  tnumRange,
  tnumStr,
  tnumSub,
  tnumUnknown,
  U64,
} from '../src/verifier/tnum.js';

const typeId = (name: string): number => {
  const t = programTypeByName(name);
  if (!t) throw new Error(`no program type ${name}`);
  return t.id;
};
const asm = (src: string): Insn[] => assembleLlvm(src.replace(/;/g, '\n'));
const scalar = (b: Bounds) => regStr({ ...scalarUnknown(), b }, 0, []);

describe('tnum', () => {
  it('ranges, constants and membership', () => {
    assert.equal(tnumStr(tnumRange(0n, 5n)), '(0x0; 0x7)');
    assert.equal(tnumStr(tnumRange(16n, 16n)), '(0x10; 0x0)');
    assert.equal(tnumStr(tnumRange(0n, U64)), tnumStr(tnumUnknown));
    assert.ok(tnumIn(tnumRange(0n, 7n), tnumConst(5n)));
    assert.ok(!tnumIn(tnumRange(0n, 7n), tnumConst(8n)));
  });
  it('arithmetic (the kernel tnum.c algorithms)', () => {
    const x = { value: 0x10n, mask: 0x3n }; // 16..19
    assert.equal(tnumStr(tnumAdd(x, tnumConst(1n))), '(0x10; 0x7)');
    assert.equal(tnumStr(tnumSub(x, tnumConst(16n))), '(0x0; 0x3)');
    assert.equal(tnumStr(tnumAnd(tnumUnknown, tnumConst(0xff0n))), '(0x0; 0xff0)');
    assert.equal(tnumStr(tnumOr(tnumConst(1n), { value: 0n, mask: 4n })), '(0x1; 0x4)');
    assert.equal(tnumStr(tnumMul(tnumConst(3n), tnumConst(7n))), '(0x15; 0x0)');
    assert.equal(tnumStr(tnumMul({ value: 0n, mask: 1n }, tnumConst(4n))), '(0x0; 0x4)');
    // 32-bit arithmetic shift sign-extends bit 31 and stays within 32 bits
    assert.equal(tnumStr(tnumArshift(tnumConst(0x80000000n), 4, 32)), '(0xf8000000; 0x0)');
    assert.equal(tnumStr(tnumArshift(tnumConst(1n << 63n), 63, 64)), '(0xffffffffffffffff; 0x0)');
  });
});

describe('scalar bounds (compared with what the 6.18 kernel printed for the same instructions)', () => {
  it('a u32 load, then &= 4080, s>>= 2, -= 1000, w += -1000', () => {
    const load = unknownBounds();
    coerceToSize(load, 4);
    assert.equal(scalar(load), 'scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))');
    const r0 = unknownBounds();
    aluScalar('and', r0, constBounds(4080n), true);
    assert.equal(scalar(r0), 'scalar(smin=smin32=0,smax=umax=smax32=umax32=4080,var_off=(0x0; 0xff0))');
    const r5 = { ...r0 };
    aluScalar('arsh', r5, constBounds(2n), true);
    assert.equal(scalar(r5), 'scalar(smin=smin32=0,smax=umax=smax32=umax32=1020,var_off=(0x0; 0x3fc))');
    const r6 = { ...r0 };
    aluScalar('sub', r6, constBounds(1000n), true);
    assert.equal(
      scalar(r6),
      'scalar(smin=smin32=-1000,smax=smax32=3080,umin=umin32=8,umax=0xfffffffffffffff8,umax32=0xfffffff8,var_off=(0x8; 0xfffffffffffffff0))',
    );
    const r7 = { ...r0 };
    aluScalar('add', r7, constBounds(-1000n), false);
    assert.equal(
      scalar(r7),
      'scalar(smin=umin=umin32=8,smax=umax=umax32=0xfffffff8,smin32=-1000,smax32=3080,var_off=(0x8; 0xfffffff0))',
    );
  });
  it('or with a negative constant, then a 32-bit move', () => {
    const r1 = unknownBounds();
    aluScalar('or', r1, constBounds(-0x7fff0000n), true);
    assert.equal(
      scalar(r1),
      'scalar(smin=0xffffffff80010000,smax=smax32=-1,umin=0xffffffff80010000,smin32=umin32=0x80010000,var_off=(0xffffffff80010000; 0x7ffeffff))',
    );
  });
  it('printing: decimal within s16, hex beyond', () => {
    assert.equal(scalar(constBounds(32767n)), '32767');
    assert.equal(scalar(constBounds(32768n)), '0x8000');
    assert.equal(scalar(constBounds(-32768n)), '-32768');
    assert.equal(scalar(constBounds(-32769n)), '0xffffffffffff7fff');
  });
  it('reg_bounds_sync learns the sign from the unsigned range', () => {
    const b = unknownBounds();
    b.umax = 100n;
    syncBounds(b);
    assert.equal(b.smin, 0n);
    assert.equal(b.smax, 100n);
    assert.equal(tnumStr(b.var), '(0x0; 0x7f)');
  });
});

describe('kernel instruction printer', () => {
  it('prints the kernel syntax', () => {
    const p = asm(
      'r0 = 0; r2 = r10; r2 += -4; r0 = *(u32 *)(r1 + 0); if r0 == 0 goto +1; call 1; *(u32 *)(r10 - 4) = r1; w0 = -1; exit',
    );
    assert.deepEqual(
      p.map((i) => kernelInsn(i)),
      [
        '(b7) r0 = 0',
        '(bf) r2 = r10',
        '(07) r2 += -4',
        '(61) r0 = *(u32 *)(r1 +0)',
        '(15) if r0 == 0x0 goto pc+1',
        '(85) call bpf_map_lookup_elem#1',
        '(63) *(u32 *)(r10 -4) = r1',
        '(b4) w0 = -1',
        '(95) exit',
      ],
    );
  });
});

// ───────────────────────────── programs, checked against the kernel ─────────────────────────────

interface Case {
  name: string;
  type: string;
  asm: string;
  maps?: Omit<VerifierMap, 'flags'>[];
  /** The verdict and first error line the 6.18 kernel gave (re-checked live when BPF is available). */
  expect: true | string;
  /** The whole level-1 log must match the kernel's (map addresses masked). */
  log?: boolean;
}

const HASH = { type: 1, keySize: 4, valueSize: 8, maxEntries: 1 };
const HASH64 = { type: 1, keySize: 4, valueSize: 64, maxEntries: 1 };
const ARRAY = { type: 2, keySize: 4, valueSize: 8, maxEntries: 1 };
const RINGBUF = { type: 27, keySize: 0, valueSize: 0, maxEntries: 4096 };
const KEY = 'r1 = 0; *(u32 *)(r10 - 4) = r1; r2 = r10; r2 += -4; r1 = map_fd(0) ll; call 1;';

const CASES: Case[] = [
  { name: 'return 0', type: 'socket_filter', asm: 'r0 = 0; exit', expect: true },
  { name: 'R0 uninitialised at exit', type: 'socket_filter', asm: 'exit', expect: 'R0 !read_ok', log: true },
  { name: 'uninitialised source', type: 'socket_filter', asm: 'r0 = r2; exit', expect: 'R2 !read_ok' },
  {
    name: 'scalar deref',
    type: 'socket_filter',
    asm: 'r1 = 0; r0 = *(u64 *)(r1 + 0); exit',
    expect: "R1 invalid mem access 'scalar'",
    log: true,
  },
  {
    name: 'frame pointer write',
    type: 'socket_filter',
    asm: 'r10 = 0; r0 = 0; exit',
    expect: 'frame pointer is read only',
  },
  {
    name: 'spill and fill',
    type: 'socket_filter',
    asm: 'r1 = 5; *(u64 *)(r10 - 8) = r1; r0 = *(u64 *)(r10 - 8); exit',
    expect: true,
  },
  {
    name: 'stack below 512',
    type: 'socket_filter',
    asm: 'r0 = 0; *(u64 *)(r10 - 520) = r0; exit',
    expect: 'invalid write to stack R10 off=-520 size=8',
  },
  {
    name: 'stack misaligned',
    type: 'socket_filter',
    asm: 'r0 = 0; *(u32 *)(r10 - 3) = r0; exit',
    expect: 'misaligned stack access off 0+0+-3 size 4',
  },
  {
    name: 'uninitialised stack read (root)',
    type: 'socket_filter',
    asm: 'r0 = *(u64 *)(r10 - 8); r0 = 0; exit',
    expect: true,
  },
  {
    name: 'lookup without null check',
    type: 'socket_filter',
    maps: [HASH],
    asm: `${KEY} r0 = *(u32 *)(r0 + 0); r0 = 0; exit`,
    expect: "R0 invalid mem access 'map_value_or_null'",
    log: true,
  },
  {
    name: 'lookup with null check',
    type: 'socket_filter',
    maps: [HASH],
    asm: `${KEY} if r0 == 0 goto +1; r0 = *(u32 *)(r0 + 0); r0 = 0; exit`,
    expect: true,
  },
  {
    name: 'array lookup with a constant key is not null',
    type: 'socket_filter',
    maps: [ARRAY],
    asm: `${KEY} r0 = *(u32 *)(r0 + 0); r0 = 0; exit`,
    expect: true,
  },
  {
    name: 'map value past the end',
    type: 'socket_filter',
    maps: [HASH],
    asm: `${KEY} if r0 == 0 goto +1; r0 = *(u32 *)(r0 + 8); r0 = 0; exit`,
    expect: 'R0 min value is outside of the allowed memory range',
  },
  {
    name: 'variable index masked in bounds',
    type: 'socket_filter',
    maps: [HASH64],
    asm: `${KEY} if r0 == 0 goto +5; r1 = *(u32 *)(r0 + 0); r1 &= 31; r0 += r1; r0 = *(u32 *)(r0 + 0); r0 = 0; exit`,
    expect: true,
  },
  {
    name: 'variable index one too wide',
    type: 'socket_filter',
    maps: [HASH64],
    asm: `${KEY} if r0 == 0 goto +5; r1 = *(u32 *)(r0 + 0); r1 &= 63; r0 += r1; r0 = *(u32 *)(r0 + 0); r0 = 0; exit`,
    expect: 'R0 max value is outside of the allowed memory range',
  },
  {
    name: 'signed index may be negative',
    type: 'socket_filter',
    maps: [HASH64],
    asm: `${KEY} if r0 == 0 goto +6; r1 = *(u32 *)(r0 + 0); if r1 s> 10 goto +4; r0 += r1; r0 = *(u32 *)(r0 + 0); r0 = 0; exit; r0 = 0; exit`,
    expect: true,
  },
  {
    name: 'unbounded index',
    type: 'socket_filter',
    maps: [HASH64],
    asm: `${KEY} if r0 == 0 goto +4; r1 = *(u64 *)(r0 + 0); r0 += r1; r0 = *(u32 *)(r0 + 0); r0 = 0; exit`,
    expect: 'math between map_value pointer and register with unbounded min value is not allowed',
  },
  {
    name: 'jmp32 bound',
    type: 'socket_filter',
    maps: [{ type: 1, keySize: 4, valueSize: 16, maxEntries: 1 }],
    asm: `${KEY} if r0 == 0 goto +6; r1 = *(u32 *)(r0 + 0); if w1 > 12 goto +4; r0 += r1; r0 = *(u32 *)(r0 + 0); r0 = 0; exit; r0 = 0; exit`,
    expect: true,
  },
  {
    name: 'key is a scalar',
    type: 'socket_filter',
    maps: [{ type: 1, keySize: 8, valueSize: 8, maxEntries: 1 }],
    asm: 'r2 = 5; r1 = map_fd(0) ll; call 1; r0 = 0; exit',
    expect:
      'R2 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_',
  },
  {
    name: 'key past the stack top',
    type: 'socket_filter',
    maps: [{ type: 1, keySize: 8, valueSize: 8, maxEntries: 1 }],
    asm: 'r2 = r10; r2 += -4; r1 = map_fd(0) ll; call 1; r0 = 0; exit',
    expect: 'invalid read from stack R2 off=-4 size=8',
  },
  {
    name: 'helper not allowed for the type',
    type: 'socket_filter',
    asm: 'r1 = 0; r2 = 0; call 23; r0 = 0; exit',
    expect: 'program of this type cannot use helper bpf_redirect#23',
  },
  {
    name: 'unknown helper id',
    type: 'socket_filter',
    asm: 'call 999; r0 = 0; exit',
    expect: 'invalid func unknown#999',
  },
  {
    name: 'caller-saved registers are clobbered',
    type: 'socket_filter',
    asm: 'r1 = 1; call 7; r0 = r1; exit',
    expect: 'R1 !read_ok',
  },
  {
    name: 'jump out of range',
    type: 'socket_filter',
    asm: 'r0 = 0; if r0 > 1 goto +5; exit',
    expect: 'jump out of range from insn 1 to 7',
  },
  {
    name: 'unreachable',
    type: 'socket_filter',
    asm: 'r0 = 0; exit; r0 = 1; exit',
    expect: 'unreachable insn 2',
  },
  {
    name: 'falls off the end',
    type: 'socket_filter',
    asm: 'r0 = 0',
    expect: 'last insn is not an exit or jmp',
  },
  {
    name: 'bounded loop',
    type: 'socket_filter',
    asm: 'r0 = 0; r0 += 1; if r0 < 10 goto -2; exit',
    expect: true,
  },
  {
    name: 'stack pointer subtraction',
    type: 'socket_filter',
    asm: 'r2 = r10; r2 -= 8; r0 = 0; exit',
    expect: 'R2 subtraction from stack pointer prohibited',
  },
  {
    name: 'bitwise op on a pointer',
    type: 'socket_filter',
    asm: 'r2 = r10; r2 &= 8; r0 = 0; exit',
    expect: 'R2 bitwise operator &= on pointer prohibited',
  },
  {
    name: '32-bit pointer arithmetic',
    type: 'socket_filter',
    asm: 'r2 = r10; w2 += 8; r0 = 0; exit',
    expect: 'R2 32-bit pointer arithmetic prohibited',
  },
  {
    name: 'pointer + pointer',
    type: 'socket_filter',
    asm: 'r2 = r10; r2 += r1; r0 = 0; exit',
    expect: 'R2 pointer += pointer prohibited',
  },
  { name: 'ctx read', type: 'socket_filter', asm: 'r0 = *(u32 *)(r1 + 0); exit', expect: true },
  {
    name: 'ctx data in a socket filter',
    type: 'socket_filter',
    asm: 'r0 = *(u32 *)(r1 + 76); exit',
    expect: 'invalid bpf_context access off=76 size=4',
  },
  {
    name: 'ctx modified pointer',
    type: 'socket_filter',
    asm: 'r1 += 4; r0 = *(u32 *)(r1 + 0); exit',
    expect: 'dereference of modified ctx ptr R1 off=4 disallowed',
  },
  {
    name: 'packet read unchecked',
    type: 'xdp',
    asm: 'r2 = *(u32 *)(r1 + 0); r0 = *(u8 *)(r2 + 0); r0 = 0; exit',
    expect: 'R2 offset is outside of the packet',
    log: true,
  },
  {
    name: 'packet read checked',
    type: 'xdp',
    asm: 'r2 = *(u32 *)(r1 + 0); r3 = *(u32 *)(r1 + 4); r4 = r2; r4 += 14; if r4 > r3 goto +1; r0 = *(u8 *)(r2 + 13); r0 = 0; exit',
    expect: true,
  },
  {
    name: 'packet read one past the check',
    type: 'xdp',
    asm: 'r2 = *(u32 *)(r1 + 0); r3 = *(u32 *)(r1 + 4); r4 = r2; r4 += 14; if r4 > r3 goto +1; r0 = *(u8 *)(r2 + 14); r0 = 0; exit',
    expect: 'R2 offset is outside of the packet',
  },
  {
    name: 'packet check, end on the left',
    type: 'xdp',
    asm: 'r2 = *(u32 *)(r1 + 0); r3 = *(u32 *)(r1 + 4); r4 = r2; r4 += 14; if r3 < r4 goto +1; r0 = *(u16 *)(r2 + 12); r0 = 0; exit',
    expect: true,
  },
  {
    name: 'packet read on the wrong side',
    type: 'xdp',
    asm: 'r2 = *(u32 *)(r1 + 0); r3 = *(u32 *)(r1 + 4); r4 = r2; r4 += 14; if r4 <= r3 goto +2; r0 = *(u8 *)(r2 + 0); exit; r0 = 0; exit',
    expect: 'R2 offset is outside of the packet',
  },
  {
    name: 'return value out of range',
    type: 'cgroup_skb',
    asm: 'r0 = 7; exit',
    expect: 'At program exit the register R0 has smin=7 smax=7 should have been in [0, 1]',
    log: true,
  },
  {
    name: 'return value unknown',
    type: 'cgroup_skb',
    asm: 'r0 = *(u32 *)(r1 + 0); exit',
    expect: 'At program exit the register R0 has smin=0 smax=4294967295 should have been in [0, 1]',
  },
  {
    name: 'bpf-to-bpf call',
    type: 'socket_filter',
    asm: 'r1 = 1; call pc+2; r0 = 0; exit; r0 = r1; exit',
    expect: true,
  },
  {
    name: 'returning a stack pointer',
    type: 'socket_filter',
    asm: 'call pc+2; r0 = 0; exit; r0 = r10; exit',
    expect: 'cannot return stack pointer to the caller',
  },
  {
    name: 'ringbuf reserve leaked',
    type: 'socket_filter',
    maps: [RINGBUF],
    asm: 'r1 = map_fd(0) ll; r2 = 8; r3 = 0; call 131; r0 = 0; exit',
    expect: 'BPF_EXIT instruction in main prog would lead to reference leak',
  },
  {
    name: 'ringbuf reserve submitted',
    type: 'socket_filter',
    maps: [RINGBUF],
    asm: 'r1 = map_fd(0) ll; r2 = 8; r3 = 0; call 131; if r0 == 0 goto +5; r1 = 5; *(u64 *)(r0 + 0) = r1; r1 = r0; r2 = 0; call 132; r0 = 0; exit',
    expect: true,
  },
  {
    name: 'ringbuf record past its size',
    type: 'socket_filter',
    maps: [RINGBUF],
    asm: 'r1 = map_fd(0) ll; r2 = 8; r3 = 0; call 131; if r0 == 0 goto +5; r1 = 5; *(u64 *)(r0 + 4) = r1; r1 = r0; r2 = 0; call 132; r0 = 0; exit',
    expect: 'R0 min value is outside of the allowed memory range',
  },
  {
    name: 'probe_read into the stack',
    type: 'kprobe',
    asm: 'r1 = r10; r1 += -16; r2 = 16; r3 = 0; call 4; r0 = 0; exit',
    expect: true,
  },
  {
    name: 'probe_read one byte too many',
    type: 'kprobe',
    asm: 'r1 = r10; r1 += -16; r2 = 17; r3 = 0; call 4; r0 = 0; exit',
    expect: 'invalid write to stack R1 off=-16 size=17',
  },
  {
    name: 'probe_read with an unbounded size',
    type: 'kprobe',
    asm: 'call 7; r2 = r0; r1 = r10; r1 += -16; r3 = 0; call 4; r0 = 0; exit',
    expect: "R2 min value is negative, either use unsigned or 'var &= const'",
  },
  {
    name: 'probe_read with a checked size',
    type: 'kprobe',
    asm: 'call 7; r2 = r0; if r2 > 16 goto +4; r1 = r10; r1 += -16; r3 = 0; call 4; r0 = 0; exit',
    expect: true,
  },
  {
    name: 'spilled pointer keeps its type',
    type: 'socket_filter',
    asm: '*(u64 *)(r10 - 8) = r1; r2 = *(u64 *)(r10 - 8); r0 = *(u32 *)(r2 + 0); exit',
    expect: true,
  },
  {
    name: 'partial fill of a spilled pointer',
    type: 'socket_filter',
    asm: '*(u64 *)(r10 - 8) = r1; r2 = *(u32 *)(r10 - 8); r0 = 0; exit',
    expect: 'invalid size of register fill',
  },
  {
    name: 'call chain too deep',
    type: 'socket_filter',
    asm: `${'call pc+2; r0 = 0; exit; '.repeat(8)}r0 = 0; exit`,
    expect: 'the call stack of 9 frames is too deep',
  },
  {
    name: 'combined stack too large',
    type: 'socket_filter',
    asm: 'r1 = 0; *(u64 *)(r10 - 400) = r1; call pc+2; r0 = 0; exit; r1 = 0; *(u64 *)(r10 - 200) = r1; r0 = 0; exit',
    expect: 'combined stack size of 2 calls is 608. Too large',
  },
];

function lastErrorLine(log: string): string {
  const lines = log
    .split('\n')
    .filter((l) => l && !l.startsWith('processed ') && !l.startsWith('verification time'));
  return lines[lines.length - 1] ?? '';
}

function createMap(m: Omit<VerifierMap, 'flags'>): number {
  const a = kernelBuffer(72);
  const v = new DataView(a.buffer);
  v.setUint32(0, m.type, true);
  v.setUint32(4, m.keySize, true);
  v.setUint32(8, m.valueSize, true);
  v.setUint32(12, m.maxEntries, true);
  return bpf(0, a);
}

/** The kernel's verdict and log at a level: maps created for the run, their fds patched in. */
function kernelVerify(c: Case, insns: Insn[], logLevel: number): { ok: boolean; log: string } {
  const fds = (c.maps ?? []).map(createMap);
  try {
    const patched = insns.map((i) =>
      i.code === 0x18 && (i.src === 1 || i.src === 2) ? { ...i, imm: fds[i.imm] } : i,
    );
    try {
      const r = loadProgram({ type: typeId(c.type), insns: patched, logLevel });
      closeFd(r.fd);
      return { ok: true, log: r.log };
    } catch (e) {
      if (isTsbpfError(e) && e.details.log !== undefined) return { ok: false, log: e.details.log };
      throw e;
    }
  } finally {
    for (const fd of fds) closeFd(fd);
  }
}

const ours = (c: Case, insns: Insn[], logLevel: 0 | 1 | 2 = 1) =>
  verify(insns, {
    progType: typeId(c.type),
    maps: (c.maps ?? []).map((m) => ({ ...m, flags: 0 })),
    logLevel,
  });

describe('verifier programs', () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.expect === true ? 'accepted' : c.expect}`, () => {
      const r = ours(c, asm(c.asm));
      assert.equal(r.ok, c.expect === true, r.log);
      if (c.expect !== true) assert.equal(r.error?.message, c.expect, r.log);
      assert.ok(r.log.endsWith(`mark_read 0\n`), r.log);
    });
  }
});

const bpfState = bpfAvailable();
describe('verifier programs against the live kernel (BPF_PROG_LOAD, log level 2)', () => {
  if (!bpfState.ok) {
    it.skip(`BPF is not available: ${bpfState.reason}`, () => {});
    return;
  }
  let agreeVerdict = 0;
  let agreeSentence = 0;
  for (const c of CASES) {
    it(`${c.name}`, () => {
      const insns = asm(c.asm);
      const k = kernelVerify(c, insns, 2);
      const r = ours(c, insns, 2);
      assert.equal(r.ok, k.ok, `kernel ${k.ok ? 'accepts' : `rejects: ${lastErrorLine(k.log)}`}\n${r.log}`);
      agreeVerdict++;
      if (!k.ok) assert.equal(r.error?.message, lastErrorLine(k.log));
      assert.equal(c.expect === true, k.ok, 'the recorded expectation is the kernel verdict');
      agreeSentence++;
      if (c.log) {
        // level 1: the path to the error, instruction by instruction, as the kernel prints it
        const mask = (s: string) => s.replace(/= 0x[0-9a-f]{16}( +;)/g, '= ADDR$1');
        const k1 = kernelVerify(c, insns, 1);
        assert.equal(mask(ours(c, insns, 1).log), mask(k1.log));
      }
    });
  }
  it('agreement figures', (t) => {
    t.diagnostic(`verdict ${agreeVerdict}/${CASES.length}, sentence ${agreeSentence}/${CASES.length}`);
  });
});

// ───────────────────────────── fuzz ─────────────────────────────

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('verifier fuzz: random and mutated programs', () => {
  const COUNT = Number(process.env.TSBPF_VERIFIER_FUZZ ?? 1500);
  it(`${COUNT} programs: a result or a TsbpfError, never a crash or a hang`, () => {
    const rand = rng(0x5eed);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
    const seeds = CASES.map((c) => ({ c, insns: asm(c.asm) }));
    const started = Date.now();
    for (let n = 0; n < COUNT; n++) {
      let insns: Insn[];
      let c: Case;
      if (n % 3 === 0) {
        // raw random bytes, decoded (invalid instructions included)
        const bytes = new Uint8Array(8 * (1 + Math.floor(rand() * 12)));
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
        if (rand() < 0.5) bytes.set([0x95, 0, 0, 0, 0, 0, 0, 0], bytes.length - 8);
        insns = decode(bytes).map(({ pc: _pc, problem: _p, ...i }) => i);
        c = pick(CASES);
      } else {
        const s = pick(seeds);
        c = s.c;
        insns = s.insns.map((i) => ({ ...i }));
        const muts = 1 + Math.floor(rand() * 3);
        for (let m = 0; m < muts && insns.length; m++) {
          const i = insns[Math.floor(rand() * insns.length)];
          switch (Math.floor(rand() * 6)) {
            case 0:
              i.off += pick([-8, -4, -1, 1, 4, 8]);
              break;
            case 1:
              i.imm += pick([-1, 1, 8, -8, 1 << 20]);
              break;
            case 2:
              i.dst = Math.floor(rand() * 11);
              break;
            case 3:
              i.src = Math.floor(rand() * 11);
              break;
            case 4:
              insns.splice(insns.indexOf(i), 1);
              break;
            default:
              i.code ^= 1 << Math.floor(rand() * 8);
          }
        }
        if (insns.length === 0) insns.push({ code: 0x95, dst: 0, src: 0, off: 0, imm: 0 });
      }
      try {
        const r = verify(insns, {
          progType: typeId(c.type),
          maps: (c.maps ?? []).map((m) => ({ ...m, flags: 0 })),
          logLevel: (n % 3) as 0 | 1 | 2,
          insnLimit: 20_000,
          unprivileged: n % 7 === 0,
        });
        assert.equal(typeof r.ok, 'boolean');
        if (!r.ok) assert.ok(r.error && typeof r.error.message === 'string' && r.error.message.length > 0);
      } catch (e) {
        if (!isTsbpfError(e)) {
          throw new Error(
            `program ${n} crashed the verifier: ${e instanceof Error ? e.stack : e}\n${JSON.stringify(insns)}`,
          );
        }
      }
    }
    assert.ok(Date.now() - started < 120_000, 'the fuzz run took too long');
  });
});
