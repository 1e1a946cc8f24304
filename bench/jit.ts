/**
 * The JIT beside the interpreter and the kernel: `node dist/bench/jit.js` (after `npm run build`).
 *
 * For each program: time per run in the interpreter and in the WebAssembly JIT (after a warm-up,
 * over enough runs to last ~0.5 s; `run()` as a caller calls it, so the JS→wasm call, the BigInt
 * result and the count are included), and the kernel's BPF_PROG_TEST_RUN average duration (repeat
 * 10000; JIT-compiled when the kernel JIT is on) for the same program, loaded as a socket filter.
 * Then compile time per instruction for large generated programs. Options: --quick, --json.
 *
 * The programs that need maps and XDP contexts (XDP parse + hash lookup, per-CPU counter, tail
 * call, ring buffer) join this table when the VM runtime lands.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import { type Insn, splitImm64 } from '../src/isa/insn.js';
import { bpfAvailable, closeFd, loadProgram, testRun } from '../src/kernel/program.js';
import type { PreparedProgram } from '../src/vm/interpreter.js';
import { prepare } from '../src/vm/interpreter.js';
import { prepareJit } from '../src/vm/jit/program.js';
import { generateProgram } from '../test/support/progen.js';

const ins = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
const ldImm64 = (dst: number, v: bigint): Insn => ({ code: 0x18, dst, src: 0, off: 0, ...splitImm64(v) });
const EXIT = ins(0x95);

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

interface Row {
  program: string;
  insns: number;
  executed: number;
  interpNs: number;
  jitNs: number;
  kernelNs?: number;
  kernelNote?: string;
  agree?: boolean;
}

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const KERNEL_REPEAT = 10_000;
const PACKET = new Uint8Array(64);

/** Best of several timed trials after a warm-up (the machine is shared: the minimum is the signal). */
function time(prog: PreparedProgram): { nsPerRun: number; executed: number; r0: bigint } {
  let last = prog.run();
  const warmEnd = performance.now() + (quick ? 50 : 300);
  while (performance.now() < warmEnd) last = prog.run();
  const trialNs = BigInt((quick ? 40 : 120) * 1e6);
  let best = Number.POSITIVE_INFINITY;
  for (let trial = 0; trial < (quick ? 3 : 7); trial++) {
    let runs = 0;
    const t0 = process.hrtime.bigint();
    let elapsed = 0n;
    while (elapsed < trialNs) {
      for (let i = 0; i < 64; i++) last = prog.run();
      runs += 64;
      elapsed = process.hrtime.bigint() - t0;
    }
    best = Math.min(best, Number(elapsed) / runs);
  }
  return { nsPerRun: best, executed: last.insnCount, r0: last.r0 };
}

function timeKernel(insns: Insn[]): { nsPerRun: number; low32: number } {
  const { fd } = loadProgram({ type: 'socket_filter', insns, name: 'tsbpf_bench' });
  try {
    testRun(fd, { data: PACKET, repeat: 1000 }); // warm-up
    let best = Number.POSITIVE_INFINITY;
    let low32 = 0;
    for (let i = 0; i < (quick ? 3 : 7); i++) {
      const r = testRun(fd, { data: PACKET, repeat: KERNEL_REPEAT });
      best = Math.min(best, r.durationNs);
      low32 = r.retval;
    }
    return { nsPerRun: best, low32 };
  } finally {
    closeFd(fd);
  }
}

function jitState(): string {
  try {
    const v = readFileSync('/proc/sys/net/core/bpf_jit_enable', 'utf8').trim();
    return v === '0' ? 'kernel interp' : 'kernel JIT';
  } catch {
    return 'kernel';
  }
}

export const programs: [string, Insn[]][] = [
  ['trivial (r0 = 0; exit): per-run overhead', [ins(0xb7, 0, 0, 0, 0), EXIT]],
  ['ALU loop x1000', aluLoop(1000)],
  ['stack load/store loop x1000', stackLoop(1000)],
  ['bpf-to-bpf call loop x200', callLoop(200)],
  ['random progen seed 7 (branches, atomics)', generateProgram(7, { size: 400 }).insns],
];

function main(): void {
  const avail = bpfAvailable();
  const rows: Row[] = [];
  for (const [program, insns] of programs) {
    const interp = time(prepare(insns));
    const jitProg = prepareJit(insns);
    const jit = time(jitProg);
    jitProg.dispose();
    const row: Row = {
      program,
      insns: insns.length,
      executed: interp.executed,
      interpNs: interp.nsPerRun,
      jitNs: jit.nsPerRun,
    };
    if (jit.r0 !== interp.r0) row.agree = false;
    if (avail.ok) {
      try {
        const k = timeKernel(insns);
        row.kernelNs = k.nsPerRun;
        row.agree = (row.agree ?? true) && BigInt(k.low32) === (jit.r0 & 0xffff_ffffn);
      } catch (e) {
        row.kernelNote = `n/a: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
      }
    } else {
      row.kernelNote = `n/a: ${avail.reason}`;
    }
    rows.push(row);
  }

  interface CompileRow {
    insns: number;
    wasmBytes: number;
    translateMs: number;
    instantiateMs: number;
    totalMs: number;
    usPerInsn: number;
  }
  const compileRows: CompileRow[] = [];
  for (const size of quick ? [1000, 10000] : [1000, 10000, 50000]) {
    const insns = generateProgram(42, { size }).insns;
    prepareJit(insns).dispose(); // warm the compiler itself
    const t = performance.now();
    const p = prepareJit(insns);
    const total = performance.now() - t;
    p.dispose();
    compileRows.push({
      insns: insns.length,
      wasmBytes: p.stats.wasmBytes,
      translateMs: p.stats.translateMs,
      instantiateMs: p.stats.instantiateMs,
      totalMs: total,
      usPerInsn: (total * 1000) / insns.length,
    });
  }

  const fmt = (n: number | undefined, digits = 1) =>
    n === undefined
      ? ''
      : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

  function table(header: string[], body: string[][]): string {
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
    const line = (cells: string[]) =>
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
  }

  if (asJson) {
    console.log(JSON.stringify({ rows, compile: compileRows }, null, 2));
  } else {
    console.log(
      `tsbpf JIT benchmark (node ${process.version}, ${process.arch}, ${cpus()[0]?.model ?? 'unknown CPU'}; kernel repeat ${KERNEL_REPEAT})`,
    );
    console.log(
      table(
        [
          'program',
          'insns',
          'executed',
          'interp ns/run',
          'JIT ns/run',
          `${jitState()} ns/run`,
          'JIT/kernel',
          'interp/JIT',
          'r0 agrees',
        ],
        rows.map((r) => [
          r.program,
          String(r.insns),
          String(r.executed),
          fmt(r.interpNs, 0),
          fmt(r.jitNs, 0),
          r.kernelNote ? 'n/a' : fmt(r.kernelNs, 0),
          r.kernelNs ? `${fmt(r.jitNs / r.kernelNs, 2)}x` : '',
          `${fmt(r.interpNs / r.jitNs, 1)}x`,
          r.agree === undefined ? '' : r.agree ? 'yes' : 'NO',
        ]),
      ),
    );
    for (const note of new Set(rows.map((r) => r.kernelNote).filter((n) => n !== undefined)))
      console.log(`kernel ${note}`);
    console.log(
      '\nJIT compile time (progen programs; translate = eBPF -> wasm bytes, instantiate = WebAssembly.Module + Instance)',
    );
    console.log(
      table(
        ['insns', 'wasm bytes', 'translate ms', 'instantiate ms', 'total ms', 'us/insn'],
        compileRows.map((c) => [
          String(c.insns),
          String(c.wasmBytes),
          fmt(c.translateMs, 1),
          fmt(c.instantiateMs, 1),
          fmt(c.totalMs, 1),
          fmt(c.usPerInsn, 2),
        ]),
      ),
    );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
