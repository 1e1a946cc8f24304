/**
 * Verifier benchmark (issue 5): verification time and peak memory of tsbpf's verifier on the
 * largest suite cases (by the kernel's processed-insns count) and on every program of the
 * clang-built fixtures (fixtures/obj/*.o through src/object/spec.ts), beside the kernel's own
 * `verification time N usec` for the same program (BPF_PROG_LOAD with log level BPF_LOG_STATS).
 *
 *   npm run build && node --expose-gc dist/bench/verifier.js [--top N] [--runs N] [--json]
 *
 * Fixture programs: maps are created for real (global data included: its DATASEC-sized array);
 * programs needing what the harness does not load (BTF func_info for callbacks and global
 * functions, CO-RE, kfuncs, map-in-map) are reported with the kernel's refusal, not skipped
 * silently. Without BPF (not root, not Linux) the kernel columns are empty.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Insn } from '../src/isa/insn.js';
import {
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  OPCODE_LD_IMM64,
} from '../src/isa/opcodes.js';
import { bpfAvailable } from '../src/kernel/program.js';
import { readObject } from '../src/object/spec.js';
import { fixtureNames, OBJ_DIR } from '../test/support/fixtures.js';
import {
  assembleCase,
  loadCases,
  loadVerifier,
  parseVerificationTime,
  runKernel,
  type VerifierMap,
  type VerifyFn,
  verifyOptions,
} from '../test/support/verifier-cases.js';

const BPF_LOG_STATS = 4;

interface Subject {
  name: string;
  insns: Insn[];
  progType: number;
  expectedAttachType: number;
  maps: VerifierMap[];
}

interface Row {
  name: string;
  slots: number;
  kernel: string;
  kernelUs?: number;
  kernelProcessed?: number;
  ours: string;
  oursMs?: number;
  oursProcessed?: number;
  heapMb?: number;
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

/** MAP_IDX / MAP_IDX_VALUE (what readObject emits) -> MAP_FD / MAP_VALUE by index, as the harness expects. */
function byIndex(insns: readonly Insn[]): Insn[] {
  return insns.map((i) => {
    if (i.code !== OPCODE_LD_IMM64) return i;
    if (i.src === BPF_PSEUDO_MAP_IDX) return { ...i, src: BPF_PSEUDO_MAP_FD };
    if (i.src === BPF_PSEUDO_MAP_IDX_VALUE) return { ...i, src: BPF_PSEUDO_MAP_VALUE };
    return i;
  });
}

function fixtureSubjects(): { subjects: Subject[]; skipped: string[] } {
  const subjects: Subject[] = [];
  const skipped: string[] = [];
  for (const name of fixtureNames()) {
    if (name.includes('bpfeb')) continue; // big-endian: the kernel here is little-endian
    let spec: ReturnType<typeof readObject>;
    try {
      spec = readObject(new Uint8Array(readFileSync(join(OBJ_DIR, `${name}.o`))));
    } catch (e) {
      skipped.push(`${name}.o: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    const maps: VerifierMap[] = spec.maps.map((m) => ({
      type: m.typeId,
      keySize: m.keySize,
      valueSize: m.valueSize,
      maxEntries: m.maxEntries,
      flags: m.flags,
    }));
    if (spec.maps.some((m) => m.inner)) {
      skipped.push(`${name}.o: map-in-map (the harness creates no inner maps)`);
      continue;
    }
    for (const p of spec.programs) {
      if (!p.typeId) {
        skipped.push(`${name}.o/${p.name}: unknown program type for SEC("${p.section}")`);
        continue;
      }
      subjects.push({
        name: `${name}.o/${p.name}`,
        insns: byIndex(p.insns),
        progType: p.typeId,
        expectedAttachType: p.attachTypeId,
        maps,
      });
    }
  }
  return { subjects, skipped };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const gc = (globalThis as { gc?: () => void }).gc;

function measureOurs(verify: VerifyFn, s: Subject, runs: number): Partial<Row> & { ours: string } {
  const opts = {
    progType: s.progType,
    expectedAttachType: s.expectedAttachType,
    maps: s.maps,
    logLevel: 0 as const,
  };
  const times: number[] = [];
  let verdict = '';
  let processed: number | undefined;
  let heapMb: number | undefined;
  for (let r = 0; r < runs; r++) {
    gc?.();
    const before = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    try {
      const res = verify(s.insns, opts);
      times.push(performance.now() - t0);
      const after = process.memoryUsage().heapUsed;
      heapMb = Math.max(heapMb ?? 0, (after - before) / (1 << 20));
      verdict = res.ok ? 'accept' : `reject: ${res.error?.message ?? ''}`;
      processed = res.stats.processed;
    } catch (e) {
      return { ours: `threw ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  return { ours: verdict, oursMs: median(times), oursProcessed: processed, heapMb };
}

function measureKernel(s: Subject): Partial<Row> & { kernel: string } {
  try {
    const run = runKernel(s.insns, {
      progType: s.progType,
      expectedAttachType: s.expectedAttachType,
      maps: s.maps,
      logLevel: BPF_LOG_STATS,
    });
    const r = run.result;
    const out: Partial<Row> & { kernel: string } = {
      kernel: r.verdict === 'accept' ? 'accept' : `reject ${r.errno}: ${r.errors[0] ?? ''}`,
    };
    const us = parseVerificationTime(run.log);
    if (us !== undefined) out.kernelUs = us;
    if (r.processed !== undefined) out.kernelProcessed = r.processed;
    return out;
  } catch (e) {
    return { kernel: `error: ${e instanceof Error ? e.message : String(e)}` };
  }
}

async function main(): Promise<void> {
  const top = arg('--top', 12);
  const runs = arg('--runs', 5);
  const json = process.argv.includes('--json');
  const v = await loadVerifier();
  const kernelOk = bpfAvailable();

  const cases = loadCases()
    .filter((c) => c.kernel?.processed !== undefined && !c.unpriv)
    .sort((a, b) => (b.kernel!.processed ?? 0) - (a.kernel!.processed ?? 0))
    .slice(0, top);
  const subjects: Subject[] = cases.map((c) => {
    const o = verifyOptions(c, 0);
    return {
      name: `case: ${c.name}`,
      insns: assembleCase(c),
      progType: o.progType,
      expectedAttachType: o.expectedAttachType ?? 0,
      maps: [...(o.maps ?? [])],
    };
  });
  const fx = fixtureSubjects();
  subjects.push(...fx.subjects);

  const rows: Row[] = [];
  for (const s of subjects) {
    const slots = s.insns.reduce((n, i) => n + (i.code === OPCODE_LD_IMM64 ? 2 : 1), 0);
    const k = kernelOk.ok ? measureKernel(s) : { kernel: `unavailable: ${kernelOk.reason}` };
    const o = v.verify ? measureOurs(v.verify, s, runs) : { ours: `unavailable: ${v.reason}` };
    rows.push({ name: s.name, slots, ...k, ...o });
  }
  if (json) {
    console.log(JSON.stringify({ rows, skipped: fx.skipped }, null, 2));
    return;
  }
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const fmt = (x: number | undefined, d = 0) => (x === undefined ? '-' : x.toFixed(d));
  console.log(
    `${'program'.padEnd(52)} ${'slots'.padStart(5)} ${'kernel us'.padStart(9)} ${'k.proc'.padStart(7)} ${'tsbpf ms'.padStart(9)} ${'t.proc'.padStart(7)} ${'heap MB'.padStart(7)}  verdicts (kernel | tsbpf)`,
  );
  for (const r of rows) {
    const same = r.kernel.split(':')[0].split(' ')[0] === r.ours.split(':')[0] ? '' : '  ≠';
    console.log(
      `${cut(r.name, 52).padEnd(52)} ${String(r.slots).padStart(5)} ${fmt(r.kernelUs).padStart(9)} ${fmt(r.kernelProcessed).padStart(7)} ${fmt(r.oursMs, 2).padStart(9)} ${fmt(r.oursProcessed).padStart(7)} ${fmt(r.heapMb, 1).padStart(7)}  ${cut(r.kernel, 40)} | ${cut(r.ours, 40)}${same}`,
    );
  }
  if (fx.skipped.length) console.log(`\nnot benchmarked:\n  ${fx.skipped.join('\n  ')}`);
  console.log(
    `\nrss peak ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB${gc ? '' : ' (run with --expose-gc for heap figures per program)'}`,
  );
}

await main();
