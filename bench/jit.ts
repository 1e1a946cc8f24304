/**
 * The JIT beside the interpreter and the kernel: `node dist/bench/jit.js` (after `npm run build`).
 *
 * One table, measured side by side in one run on one machine. Each program runs the way
 * BPF_PROG_TEST_RUN runs it, with repeat 10000:
 * - in the VM: `program.testRun({ data, repeat })` of a collection loaded with `vmBackend({ engine })`,
 *   once on the WebAssembly JIT and once on the interpreter (durationNs: the average per run, as the
 *   kernel reports it), every program through the verifier gate; the raw programs (ALU loop,
 *   trivial) verified as socket filters with src/verifier's verify() and prepared with
 *   `verified: true` (as the gate prepares them), then run through the engine's repeat loop;
 * - in the kernel: the same ObjectSpec loaded with `kernelBackend` and test-run with the same packet
 *   (the raw programs as socket filters), JIT-compiled when the kernel's JIT is on.
 * Every figure is the best of several trials after a warm-up (the machine is shared: the minimum is
 * the signal). Ratios: JIT/kernel (the targets: ALU loop <= 1.1x, XDP parse + hash lookup and
 * per-CPU counter <= 1.5x) and interp/JIT (target >= 10x). Then compile time per instruction for large
 * generated programs. Options: --quick, --json.
 */
import { cpus, release } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { Collection } from '../src/backend.js';
import type { Insn } from '../src/isa/insn.js';
import { kernelBackend } from '../src/kernel/collection.js';
import { bpfAvailable } from '../src/kernel/program.js';
import { readObject } from '../src/object/spec.js';
import { verify } from '../src/verifier/index.js';
import { vmBackend } from '../src/vm/backend.js';
import type { PreparedProgram } from '../src/vm/interpreter.js';
import { prepare } from '../src/vm/interpreter.js';
import { prepareJit } from '../src/vm/jit/program.js';
import { loadFixture } from '../test/support/fixtures.js';
import { ipv4Packet } from '../test/support/packets.js';
import { generateProgram } from '../test/support/progen.js';
import { aluLoop, EXIT, ins, jitState, KERNEL_REPEAT, timeKernel } from './programs.js';

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const TRIALS = quick ? 3 : 9;
const REPEAT = KERNEL_REPEAT;

interface Row {
  program: string;
  insns: number;
  interpNs: number;
  jitNs: number;
  kernelNs?: number;
  kernelNote?: string;
  target?: number;
  agree?: boolean;
}

/** Best average ns per run over TRIALS calls of `once` (each a repeat-REPEAT run), after a warm-up. */
function best(once: () => number, warm = 3): number {
  for (let i = 0; i < warm; i++) once();
  let b = Number.POSITIVE_INFINITY;
  for (let t = 0; t < TRIALS; t++) b = Math.min(b, once());
  return b;
}

/** ns per run of a prepared program through its repeat loop (what testRun does with repeat). */
function timeRaw(p: PreparedProgram, repeat = REPEAT): { ns: number; r0: bigint } {
  let r0 = 0n;
  const ns = best(() => {
    const t0 = process.hrtime.bigint();
    if (p.runRepeat) r0 = p.runRepeat({}, repeat).r0;
    else for (let i = 0; i < repeat; i++) r0 = p.run().r0;
    return Number(process.hrtime.bigint() - t0) / repeat;
  });
  return { ns, r0 };
}

interface ObjCase {
  name: string;
  object: string;
  program: string;
  /** Programs to load besides `program` (tail-call targets). */
  also?: string[];
  data: Uint8Array;
  setup?: (c: Collection) => void;
  target?: number;
  /** Fewer repeats for the interpreter (it is slow; the average is what counts). */
  interpRepeat?: number;
}

const flowKey = (): Uint8Array => {
  // struct flow_key for ipv4Packet's defaults: 192.168.1.10 -> 10.0.0.2, TCP 40000 -> 80
  const k = new Uint8Array(16);
  k.set([192, 168, 1, 10, 10, 0, 0, 2, 40000 >> 8, 40000 & 0xff, 0, 80, 6], 0);
  return k;
};

const CASES: ObjCase[] = [
  { name: 'XDP trivial (return XDP_PASS)', object: 'progtypes', program: 'p_xdp_a', data: ipv4Packet() },
  {
    name: 'XDP parse + hash lookup on a 5-tuple',
    object: 'xdp_5tuple',
    program: 'xdp_5tuple',
    data: ipv4Packet({ payload: 64 }),
    setup: (c) => {
      const v = new Uint8Array(16);
      v[8] = 2; // action XDP_PASS
      c.map('flows').update(flowKey(), v);
      for (let i = 1; i < 100; i++) {
        const k = flowKey();
        k[0] = i; // other flows
        c.map('flows').update(k, v);
      }
    },
    target: 1.5,
  },
  {
    name: 'XDP per-CPU array counter',
    object: 'xdp_proto_stats',
    program: 'xdp_proto_stats',
    data: ipv4Packet({ payload: 64 }),
    target: 1.5,
  },
  {
    name: 'bpf-to-bpf calls + a tail call',
    object: 'xdp_calls',
    program: 'xdp_calls',
    also: ['xdp_calls_tail'],
    data: ipv4Packet(),
  },
  {
    name: 'ring-buffer producer (reserve/submit)',
    object: 'xdp_ringbuf',
    program: 'xdp_ringbuf',
    data: ipv4Packet(),
  },
  {
    name: 'XDP parser (xdp_count_proto)',
    object: 'xdp_parser',
    program: 'xdp_count_proto',
    data: ipv4Packet(),
  },
];

function timeCollection(c: Collection, k: ObjCase, repeat: number): { ns: number; retval: number } {
  const p = c.program(k.program);
  let retval = 0;
  const ns = best(() => {
    const r = p.testRun({ data: k.data, repeat });
    retval = r.retval;
    return r.durationNs;
  });
  return { ns, retval };
}

function objectRows(avail: { ok: boolean; reason?: string }): Row[] {
  const rows: Row[] = [];
  for (const k of CASES) {
    const spec = () => readObject(loadFixture(k.object), { path: `${k.object}.o` });
    const programs = [k.program, ...(k.also ?? [])];
    const insns = spec().programs.find((p) => p.name === k.program)?.insns.length ?? 0;
    const vmRun = (engine: 'jit' | 'interp', repeat: number) => {
      const c = vmBackend({ engine }).load(spec(), { programs });
      try {
        k.setup?.(c);
        return timeCollection(c, k, repeat);
      } finally {
        c.close();
      }
    };
    const jit = vmRun('jit', REPEAT);
    const interp = vmRun('interp', k.interpRepeat ?? (quick ? 1000 : 2000));
    const row: Row = { program: k.name, insns, interpNs: interp.ns, jitNs: jit.ns, target: k.target };
    row.agree = jit.retval === interp.retval;
    if (avail.ok) {
      try {
        const c = kernelBackend.load(spec(), { programs });
        try {
          k.setup?.(c);
          const kr = timeCollection(c, k, REPEAT);
          row.kernelNs = kr.ns;
          row.agree = row.agree && kr.retval === jit.retval;
        } finally {
          c.close();
        }
      } catch (e) {
        row.kernelNote = `n/a: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
      }
    } else row.kernelNote = `n/a: ${avail.reason}`;
    rows.push(row);
  }
  return rows;
}

function rawRows(avail: { ok: boolean; reason?: string }): Row[] {
  const raw: [string, Insn[], number | undefined][] = [
    ['ALU loop x1000 (socket filter)', aluLoop(1000), 1.1],
    ['trivial (r0 = 0; exit) (socket filter)', [ins(0xb7, 0, 0, 0, 0), EXIT], undefined],
  ];
  const rows: Row[] = [];
  for (const [name, insns, target] of raw) {
    // the verifier's proof (socket_filter = 1), as vmBackend's gate gets it before preparing
    const v = verify(insns, { progType: 1 });
    if (!v.ok) throw new Error(`${name}: the verifier rejects it: ${v.error?.message}`);
    const jp = prepareJit(insns, { verified: true });
    const jit = timeRaw(jp);
    jp.dispose();
    const ip = prepare(insns);
    const interp = timeRaw(ip, quick ? 200 : 1000);
    ip.dispose?.();
    const row: Row = { program: name, insns: insns.length, interpNs: interp.ns, jitNs: jit.ns, target };
    row.agree = jit.r0 === interp.r0;
    if (avail.ok) {
      try {
        const k = timeKernel(insns, TRIALS);
        row.kernelNs = k.nsPerRun;
        row.agree = row.agree && BigInt(k.low32) === (jit.r0 & 0xffff_ffffn);
      } catch (e) {
        row.kernelNote = `n/a: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
      }
    } else row.kernelNote = `n/a: ${avail.reason}`;
    rows.push(row);
  }
  return rows;
}

interface CompileRow {
  insns: number;
  wasmBytes: number;
  translateMs: number;
  instantiateMs: number;
  totalMs: number;
  usPerInsn: number;
}

function compileRows(): CompileRow[] {
  const out: CompileRow[] = [];
  for (const size of quick ? [1000, 10000] : [1000, 10000, 50000]) {
    const insns = generateProgram(42, { size }).insns;
    prepareJit(insns).dispose(); // warm the compiler itself
    let bestTotal = Number.POSITIVE_INFINITY;
    let stats = prepareJit(insns).stats;
    for (let i = 0; i < (quick ? 1 : 3); i++) {
      const t = performance.now();
      const p = prepareJit(insns);
      const total = performance.now() - t;
      p.dispose();
      if (total < bestTotal) {
        bestTotal = total;
        stats = p.stats;
      }
    }
    out.push({
      insns: insns.length,
      wasmBytes: stats.wasmBytes,
      translateMs: stats.translateMs,
      instantiateMs: stats.instantiateMs,
      totalMs: bestTotal,
      usPerInsn: (bestTotal * 1000) / insns.length,
    });
  }
  return out;
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

export function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores; node ${process.version} (${process.arch}); Linux ${release()}`;
}

function main(): void {
  const avail = bpfAvailable();
  const rows = [...rawRows(avail), ...objectRows(avail)];
  const compile = compileRows();
  if (asJson) {
    console.log(JSON.stringify({ machine: machine(), repeat: REPEAT, rows, compile }, null, 2));
    return;
  }
  console.log(`tsbpf JIT benchmark: ${machine()}`);
  console.log(
    `time per run, BPF_PROG_TEST_RUN style with repeat ${REPEAT} (interpreter: fewer), best of ${TRIALS}; kernel: ${jitState()}`,
  );
  console.log(
    table(
      [
        'program',
        'insns',
        'interp ns',
        'JIT ns',
        'kernel ns',
        'JIT/kernel',
        'target',
        'interp/JIT',
        'same r0',
      ],
      rows.map((r) => [
        r.program,
        String(r.insns),
        fmt(r.interpNs, 0),
        fmt(r.jitNs, 1),
        r.kernelNote ? 'n/a' : fmt(r.kernelNs, 0),
        r.kernelNs ? `${fmt(r.jitNs / r.kernelNs, 2)}x` : '',
        r.target === undefined
          ? ''
          : r.kernelNs === undefined
            ? `<= ${r.target}x`
            : `<= ${r.target}x ${r.jitNs / r.kernelNs <= r.target ? 'met' : 'MISSED'}`,
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
      compile.map((c) => [
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

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
