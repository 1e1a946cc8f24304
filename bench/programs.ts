/**
 * What the engine benchmarks share: the programs they time, and the kernel side of the comparison
 * (BPF_PROG_TEST_RUN of the same program as a socket filter, best of several repeat-10000 runs).
 */
import { readFileSync } from 'node:fs';
import { type Insn, splitImm64 } from '../src/isa/insn.js';
import { closeFd, loadProgram, testRun } from '../src/kernel/program.js';

export const ins = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
export const ldImm64 = (dst: number, v: bigint): Insn => ({
  code: 0x18,
  dst,
  src: 0,
  off: 0,
  ...splitImm64(v),
});
export const EXIT = ins(0x95);

/** An ALU-only loop body (add, mul, xor, shifts, 32-bit ops), `iterations` times. */
export function aluLoop(iterations: number): Insn[] {
  return [
    ins(0xb7, 0, 0, 0, 0), // r0 = 0
    ins(0xb7, 1, 0, 0, iterations), // r1 = N
    ldImm64(2, 0x9e37_79b9_7f4a_7c15n), // r2 = golden ratio
    // loop:
    ins(0x0f, 0, 1), // r0 += r1
    ins(0x27, 2, 0, 0, 31), // r2 *= 31
    ins(0xaf, 2, 0), // r2 ^= r0
    ins(0xbf, 3, 2), // r3 = r2
    ins(0x77, 3, 0, 0, 7), // r3 >>= 7
    ins(0xaf, 0, 3), // r0 ^= r3
    ins(0x04, 3, 0, 0, 12345), // w3 += 12345
    ins(0xc7, 3, 0, 0, 3), // r3 s>>= 3
    ins(0x0f, 0, 3), // r0 += r3
    ins(0x17, 1, 0, 0, 1), // r1 -= 1
    ins(0x55, 1, 0, -11, 0), // if r1 != 0 goto loop
    EXIT,
  ];
}

/** A Fibonacci-like loop through stack slots (loads and stores of 8, 4 and 1 bytes). */
export function stackLoop(iterations: number): Insn[] {
  return [
    ins(0xb7, 1, 0, 0, iterations), // r1 = N
    ins(0x7a, 10, 0, -8, 0), // *(u64 *)(r10 - 8) = 0
    ins(0x7a, 10, 0, -16, 1), // *(u64 *)(r10 - 16) = 1
    ins(0x62, 10, 0, -20, 0), // *(u32 *)(r10 - 20) = 0
    ins(0x72, 10, 0, -21, 0), // *(u8 *)(r10 - 21) = 0
    // loop:
    ins(0x79, 3, 10, -8), // r3 = *(u64 *)(r10 - 8)
    ins(0x79, 4, 10, -16), // r4 = *(u64 *)(r10 - 16)
    ins(0x0f, 3, 4), // r3 += r4
    ins(0x7b, 10, 4, -8), // *(u64 *)(r10 - 8) = r4
    ins(0x7b, 10, 3, -16), // *(u64 *)(r10 - 16) = r3
    ins(0x61, 5, 10, -20), // r5 = *(u32 *)(r10 - 20)
    ins(0xac, 5, 3), // w5 ^= w3
    ins(0x63, 10, 5, -20), // *(u32 *)(r10 - 20) = r5
    ins(0x71, 6, 10, -21), // r6 = *(u8 *)(r10 - 21)
    ins(0x07, 6, 0, 0, 1), // r6 += 1
    ins(0x73, 10, 6, -21), // *(u8 *)(r10 - 21) = r6
    ins(0x17, 1, 0, 0, 1), // r1 -= 1
    ins(0x55, 1, 0, -13, 0), // if r1 != 0 goto loop
    ins(0x79, 0, 10, -8), // r0 = *(u64 *)(r10 - 8)
    ins(0x61, 5, 10, -20), // r5 = *(u32 *)(r10 - 20)
    ins(0xaf, 0, 5), // r0 ^= r5
    EXIT,
  ];
}

/** A loop calling a bpf-to-bpf function (with its own stack frame) `iterations` times. */
export function callLoop(iterations: number): Insn[] {
  return [
    ins(0xb7, 6, 0, 0, 0), // r6 = 0
    ins(0xb7, 7, 0, 0, iterations), // r7 = N
    // loop:
    ins(0xbf, 1, 7), // r1 = r7
    ins(0xbf, 2, 6), // r2 = r6
    ins(0x85, 0, 1, 0, 5), // call f
    ins(0x0f, 6, 0), // r6 += r0
    ins(0x17, 7, 0, 0, 1), // r7 -= 1
    ins(0x55, 7, 0, -6, 0), // if r7 != 0 goto loop
    ins(0xbf, 0, 6), // r0 = r6
    EXIT,
    // f:
    ins(0x7b, 10, 1, -8), // *(u64 *)(r10 - 8) = r1
    ins(0xbf, 0, 1), // r0 = r1
    ins(0x27, 0, 0, 0, 7), // r0 *= 7
    ins(0xaf, 0, 2), // r0 ^= r2
    ins(0x79, 3, 10, -8), // r3 = *(u64 *)(r10 - 8)
    ins(0x0f, 0, 3), // r0 += r3
    EXIT,
  ];
}

export const KERNEL_REPEAT = 10_000;
const PACKET = new Uint8Array(64);

/** The kernel's average ns per run of `insns` (best of `trials`), and its 32-bit return value. */
export function timeKernel(insns: Insn[], trials = 7): { nsPerRun: number; low32: number } {
  const { fd } = loadProgram({ type: 'socket_filter', insns, name: 'tsbpf_bench' });
  try {
    testRun(fd, { data: PACKET, repeat: 1000 }); // warm-up
    let best = Number.POSITIVE_INFINITY;
    let low32 = 0;
    for (let i = 0; i < trials; i++) {
      const r = testRun(fd, { data: PACKET, repeat: KERNEL_REPEAT });
      best = Math.min(best, r.durationNs);
      low32 = r.retval;
    }
    return { nsPerRun: best, low32 };
  } finally {
    closeFd(fd);
  }
}

export function jitState(): string {
  try {
    const v = readFileSync('/proc/sys/net/core/bpf_jit_enable', 'utf8').trim();
    return v === '0' ? 'kernel interp' : 'kernel JIT';
  } catch {
    return 'kernel';
  }
}
