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
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { Insn } from '../src/isa/insn.js';
import { bpfAvailable } from '../src/kernel/program.js';
import type { PreparedProgram } from '../src/vm/interpreter.js';
import { prepare } from '../src/vm/interpreter.js';
import { prepareJit } from '../src/vm/jit/program.js';
import { generateProgram } from '../test/support/progen.js';
import { aluLoop, callLoop, EXIT, ins, jitState, KERNEL_REPEAT, stackLoop, timeKernel } from './programs.js';

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
        const k = timeKernel(insns, quick ? 3 : 7);
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
