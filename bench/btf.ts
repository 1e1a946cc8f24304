/**
 * BTF speed and memory beside bpftool: `node dist/bench/btf.js` (after `npm run build`).
 *
 * In-process rows: time (median of --runs, default 5, after one warm-up) and memory to parse
 * /sys/kernel/btf/vmlinux, to dump it as C (vmlinux.h) and as raw text, and to encode it again.
 * Memory: "heap" is the retained JS heap growth after a forced GC (what the result keeps alive),
 * Peak memory is measured end to end (below), where a fresh process makes it meaningful.
 * End-to-end rows: a fresh process each, wall time and maximum RSS from /usr/bin/time -v:
 * `node dist/bench/btf.js --child c` (read + parse + C dump, written to /dev/null) beside
 * `bpftool btf dump file vmlinux format c`, and the same for the raw format, with ratios.
 * Then the same for the largest clang-built fixture (fixtures/obj/*.o): readObject (ELF, BTF, .BTF.ext,
 * maps, relocations, linking) in process, and end to end beside `bpftool btf dump file FIXTURE format c`.
 * Options: --file PATH (other BTF), --runs N, --json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { dumpBtfC, dumpBtfRaw, encodeBtf, parseBtf } from '../src/btf/index.js';
import { readObject } from '../src/object/spec.js';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const FILE = opt('--file') ?? '/sys/kernel/btf/vmlinux';
const RUNS = Number(opt('--runs') ?? 5);
const JSON_OUT = args.includes('--json');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MB = (b: number) => b / (1024 * 1024);

function child(mode: string): void {
  if (mode === 'object') {
    const spec = readObject(new Uint8Array(readFileSync(FILE)), { path: FILE });
    writeSync(1, spec.btf ? dumpBtfC(spec.btf) : '');
    return;
  }
  const bytes = readFileSync(FILE);
  const btf = parseBtf(bytes);
  const text = mode === 'c' ? dumpBtfC(btf) : dumpBtfRaw(btf);
  writeSync(1, text);
}

interface Row {
  what: string;
  ms: number;
  heapMB?: number;
}

function measure<T>(what: string, fn: () => T, keep: (v: T) => void = () => {}): { row: Row; value: T } {
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  let t = performance.now();
  let value = fn();
  const first = performance.now() - t;
  gc();
  const heap1 = process.memoryUsage().heapUsed;
  keep(value);
  const times = [first];
  for (let i = 0; i < RUNS; i++) {
    t = performance.now();
    value = fn();
    times.push(performance.now() - t);
  }
  times.shift(); // the first run is the warm-up (its memory numbers are kept)
  times.sort((a, b) => a - b);
  return {
    row: {
      what,
      ms: times[Math.floor(times.length / 2)] ?? first,
      heapMB: MB(heap1 - heap0),
    },
    value,
  };
}

interface Proc {
  ms: number;
  maxrssMB?: number;
  ok: boolean;
}

function timed(cmd: string, cmdArgs: string[]): Proc {
  const useTime = existsSync('/usr/bin/time');
  const t = performance.now();
  const r = useTime
    ? spawnSync('/usr/bin/time', ['-v', cmd, ...cmdArgs], {
        stdio: ['ignore', 'ignore', 'pipe'],
        encoding: 'utf8',
      })
    : spawnSync(cmd, cmdArgs, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t;
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
  return { ms, maxrssMB: m ? Number(m[1]) / 1024 : undefined, ok: r.status === 0 };
}

function bestOf(n: number, cmd: string, cmdArgs: string[]): Proc {
  let best: Proc | undefined;
  for (let i = 0; i < n; i++) {
    const p = timed(cmd, cmdArgs);
    if (!best || p.ms < best.ms) best = p;
  }
  return best as Proc;
}

const fmt = (v: number | undefined, d = 1) => (v === undefined ? 'n/a' : v.toFixed(d));

function main(): void {
  if (!existsSync(FILE)) {
    console.log(`bench/btf: ${FILE} not found; nothing to measure`);
    return;
  }
  const bytes = readFileSync(FILE);
  const rows: Row[] = [];
  const parsed = measure('parse', () => parseBtf(bytes));
  rows.push(parsed.row);
  const btf = parsed.value;
  rows.push(measure('C dump (vmlinux.h)', () => dumpBtfC(btf)).row);
  rows.push(measure('raw dump', () => dumpBtfRaw(btf)).row);
  rows.push(measure('encode', () => encodeBtf(btf)).row);

  const self = fileURLToPath(import.meta.url);
  const e2e: { what: string; ours: Proc; bpftool?: Proc }[] = [];
  const haveBpftool = spawnSync('bpftool', ['version'], { stdio: 'ignore' }).status === 0;
  const baseline = bestOf(3, process.execPath, ['-e', '0']);
  for (const mode of ['c', 'raw']) {
    const ours = bestOf(3, process.execPath, [self, '--child', mode, '--file', FILE]);
    const theirs = haveBpftool
      ? bestOf(3, 'bpftool', ['btf', 'dump', 'file', FILE, ...(mode === 'c' ? ['format', 'c'] : [])])
      : undefined;
    e2e.push({ what: `dump ${mode === 'c' ? 'format c' : 'raw'}`, ours, bpftool: theirs });
  }

  const objects = join(fileURLToPath(new URL('../../fixtures/obj', import.meta.url)));
  const largest = readdirSync(objects)
    .filter((f) => f.endsWith('.o'))
    .map((f) => join(objects, f))
    .sort((a, b) => statSync(b).size - statSync(a).size)[0];
  const objectBytes = new Uint8Array(readFileSync(largest));
  rows.push(
    measure(`readObject ${largest.replace(/.*\//, '')}`, () => readObject(objectBytes, { path: largest }))
      .row,
  );
  e2e.push({
    what: `object + format c`,
    ours: bestOf(3, process.execPath, [self, '--child', 'object', '--file', largest]),
    bpftool: haveBpftool ? bestOf(3, 'bpftool', ['btf', 'dump', 'file', largest, 'format', 'c']) : undefined,
  });

  if (JSON_OUT) {
    console.log(
      JSON.stringify(
        { file: FILE, bytes: bytes.length, types: btf.typeCount, largest, rows, e2e, baseline },
        null,
        2,
      ),
    );
    return;
  }
  console.log(
    `BTF: ${FILE} (${MB(bytes.length).toFixed(1)} MB, ${btf.typeCount} types), node ${process.version}`,
  );
  console.log(`largest fixture: ${largest} (${(objectBytes.length / 1024).toFixed(1)} KB)`);
  console.log('');
  console.log('in process (median of runs after a warm-up)   time ms   retained heap MB');
  for (const r of rows) {
    console.log(`  ${r.what.padEnd(44)} ${fmt(r.ms).padStart(7)}   ${fmt(r.heapMB).padStart(16)}`);
  }
  console.log('');
  console.log(
    `end to end, fresh process each (best of 3; node startup alone: ${fmt(baseline.ms, 0)} ms, ${fmt(baseline.maxrssMB)} MB)`,
  );
  console.log(
    '  task                 tsbpf ms  bpftool ms  ratio   tsbpf maxrss MB  bpftool maxrss MB  ratio',
  );
  for (const r of e2e) {
    const b = r.bpftool;
    const tr = b ? r.ours.ms / b.ms : undefined;
    const mr = b?.maxrssMB && r.ours.maxrssMB ? r.ours.maxrssMB / b.maxrssMB : undefined;
    console.log(
      `  ${r.what.padEnd(18)} ${fmt(r.ours.ms, 0).padStart(10)}  ${fmt(b?.ms, 0).padStart(10)}  ${fmt(tr, 2).padStart(5)}x` +
        `  ${fmt(r.ours.maxrssMB).padStart(15)}  ${fmt(b?.maxrssMB).padStart(17)}  ${fmt(mr, 2).padStart(5)}x` +
        (r.ours.ok && (b?.ok ?? true) ? '' : '  (a command failed)'),
    );
  }
}

const childMode = opt('--child');
if (childMode) child(childMode);
else main();
