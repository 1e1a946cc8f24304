/**
 * Interpreter speed beside the kernel's: `node dist/bench/interpreter.js` (after `npm run build`).
 *
 * For each program: the interpreter's time per run and per executed instruction (after a warm-up,
 * over enough runs to last ~0.5 s), and the kernel's BPF_PROG_TEST_RUN average duration for the same
 * program (repeat 10000; JIT-compiled when the kernel JIT is on). Without BPF the kernel columns say
 * "n/a: reason". Options: --quick (shorter timing), --json.
 */
import type { Insn } from '../src/isa/insn.js';
import { bpfAvailable } from '../src/kernel/program.js';
import { prepare } from '../src/vm/interpreter.js';
import { generateProgram } from '../test/support/progen.js';
import { aluLoop, EXIT, ins, jitState, KERNEL_REPEAT, stackLoop, timeKernel } from './programs.js';

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
      const k = timeKernel(insns, 1);
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
