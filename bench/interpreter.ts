/**
 * Interpreter speed beside the kernel's: `node dist/bench/interpreter.js` (after `npm run build`).
 *
 * For each program: the interpreter's time per run and per executed instruction (after a warm-up,
 * over enough runs to last ~0.5 s), and the kernel's BPF_PROG_TEST_RUN average duration for the same
 * program (repeat 10000; JIT-compiled when the kernel JIT is on). Without BPF the kernel columns say
 * "n/a: reason". Options: --quick (shorter timing), --json.
 */
import { readFileSync } from 'node:fs';
import { type Insn, splitImm64 } from '../src/isa/insn.js';
import { bpfAvailable, closeFd, loadProgram, testRun } from '../src/kernel/program.js';
import { prepare } from '../src/vm/interpreter.js';
import { generateProgram } from '../test/support/progen.js';

const ins = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
const ldImm64 = (dst: number, v: bigint): Insn => ({ code: 0x18, dst, src: 0, off: 0, ...splitImm64(v) });
const EXIT = ins(0x95);

/** 1000 iterations of an ALU-only loop body (add, mul, xor, shifts, 32-bit ops). */
function aluLoop(iterations: number): Insn[] {
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

/** 1000 iterations of a Fibonacci-like loop through stack slots (loads and stores of 8, 4 and 1 bytes). */
function stackLoop(iterations: number): Insn[] {
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

interface Row {
  program: string;
  insns: number;
  executed: number;
  interpNsPerRun: number;
  interpNsPerInsn: number;
  kernelNsPerRun?: number;
  kernelNsPerInsn?: number;
  ratio?: number;
  kernelNote?: string;
  agree?: boolean;
}

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const KERNEL_REPEAT = 10_000;
const PACKET = new Uint8Array(64);

function timeInterpreter(insns: Insn[]): { nsPerRun: number; executed: number; r0: bigint } {
  const prog = prepare(insns);
  let last = prog.run();
  // Warm-up: let the JIT compile the dispatch loop.
  const warmEnd = performance.now() + (quick ? 50 : 300);
  while (performance.now() < warmEnd) last = prog.run();
  // Measure: batches until the time budget is used.
  const budgetNs = BigInt((quick ? 150 : 800) * 1e6);
  let runs = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < budgetNs) {
    for (let i = 0; i < 16; i++) last = prog.run();
    runs += 16;
    elapsed = process.hrtime.bigint() - t0;
  }
  return { nsPerRun: Number(elapsed) / runs, executed: last.insnCount, r0: last.r0 };
}

function timeKernel(insns: Insn[]): { nsPerRun: number; low32: number } {
  const { fd } = loadProgram({ type: 'socket_filter', insns, name: 'tsbpf_bench' });
  try {
    testRun(fd, { data: PACKET, repeat: 100 }); // warm-up
    const r = testRun(fd, { data: PACKET, repeat: KERNEL_REPEAT });
    return { nsPerRun: r.durationNs, low32: r.retval };
  } finally {
    closeFd(fd);
  }
}

function jitState(): string {
  try {
    const v = readFileSync('/proc/sys/net/core/bpf_jit_enable', 'utf8').trim();
    return v === '0' ? 'kernel interpreter (JIT off)' : 'kernel JIT';
  } catch {
    return 'kernel';
  }
}

const programs: [string, Insn[]][] = [
  ['trivial (r0 = 0; exit): per-run overhead', [ins(0xb7, 0, 0, 0, 0), EXIT]],
  ['ALU loop x1000', aluLoop(1000)],
  ['stack loop x1000', stackLoop(1000)],
  ['random progen seed 7 (branches, atomics)', generateProgram(7, { size: 400 }).insns],
];

const avail = bpfAvailable();
const rows: Row[] = [];
for (const [program, insns] of programs) {
  const interp = timeInterpreter(insns);
  const row: Row = {
    program,
    insns: insns.length,
    executed: interp.executed,
    interpNsPerRun: interp.nsPerRun,
    interpNsPerInsn: interp.nsPerRun / interp.executed,
  };
  if (avail.ok) {
    try {
      const k = timeKernel(insns);
      row.kernelNsPerRun = k.nsPerRun;
      row.kernelNsPerInsn = k.nsPerRun / interp.executed;
      row.ratio = k.nsPerRun > 0 ? interp.nsPerRun / k.nsPerRun : undefined;
      row.agree = BigInt(k.low32) === (interp.r0 & 0xffff_ffffn);
    } catch (e) {
      row.kernelNote = `n/a: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    }
  } else {
    row.kernelNote = `n/a: ${avail.reason}`;
  }
  rows.push(row);
}

if (asJson) {
  console.log(JSON.stringify(rows, null, 2));
} else {
  const fmt = (n: number | undefined, digits = 1) =>
    n === undefined
      ? ''
      : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const header = [
    'program',
    'insns',
    'executed',
    'interp ns/run',
    'interp ns/insn',
    `${jitState()} ns/run`,
    'kernel ns/insn',
    'interp/kernel',
    'r0 agrees (low 32)',
  ];
  const table = rows.map((r) => [
    r.program,
    String(r.insns),
    String(r.executed),
    fmt(r.interpNsPerRun, 0),
    fmt(r.interpNsPerInsn, 2),
    r.kernelNote ? 'n/a' : fmt(r.kernelNsPerRun, 0),
    r.kernelNote ? '' : fmt(r.kernelNsPerInsn, 2),
    r.ratio === undefined ? '' : `${fmt(r.ratio, 1)}x`,
    r.agree === undefined ? '' : r.agree ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        i === 0 || (i === 5 && c.startsWith('n/a')) ? c.padEnd(widths[i]) : c.padStart(widths[i]),
      )
      .join('  ');
  console.log(
    `tsbpf interpreter benchmark (node ${process.version}, ${process.arch}; kernel repeat ${KERNEL_REPEAT})`,
  );
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of table) console.log(line(r));
  for (const note of new Set(rows.map((r) => r.kernelNote).filter((n) => n !== undefined))) {
    console.log(`kernel ${note}`);
  }
}
