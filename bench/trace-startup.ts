/**
 * Startup of `tsbpf trace` next to Debian's bpftrace, on the same one-liner, in the same run: time from the
 * command to `Attaching N probes...` on stdout, to the first event (a sched_switch tracepoint fires within
 * microseconds of attaching, so this is "probes attached"), to exit; and the peak RSS (GNU time's %M).
 * `node -e 0` runs alongside as the floor of any Node program (Node's own start and exit).
 *
 *   node dist/bench/trace-startup.js [RUNS]      (default 7 runs each, alternating; medians and spreads printed)
 *
 * Needs root and BPF; bpftrace is skipped when it is not installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROG = 'tracepoint:sched:sched_switch { printf("first event\\n"); exit(); }';

function root(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** The argv that runs `tsbpf trace`: the CLI when main.ts has the command, else the corpus runner's shim. */
function tsbpfArgv(): string[] {
  const bin = join(root(), 'dist', 'src', 'cli', 'bin.js');
  const probe = spawnSync(process.execPath, [bin, 'trace', '--help'], { encoding: 'utf8' });
  if (probe.status === 0 && /tsbpf trace/.test(probe.stdout)) return [process.execPath, bin, 'trace'];
  return [process.execPath, join(root(), 'dist', 'scripts', 'bpftrace-corpus.js'), '--as-trace'];
}

interface Sample {
  attachMs: number;
  firstEventMs: number;
  exitMs: number;
  rssKb: number;
}

const hasTime = existsSync('/usr/bin/time');

function once(argv: string[]): Promise<Sample> {
  const rssFile = join(tmpdir(), `trace-startup-rss-${process.pid}`);
  const cmd = hasTime ? ['/usr/bin/time', '-f', '%M', '-o', rssFile, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const p = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let attachMs = Number.NaN;
    let firstEventMs = Number.NaN;
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      out += d;
      if (Number.isNaN(attachMs) && /Attaching \d+ probes?\.\.\./.test(out)) attachMs = ms();
      if (Number.isNaN(firstEventMs) && out.includes('first event')) firstEventMs = ms();
    });
    p.on('error', reject);
    p.on('close', () => {
      const exitMs = ms();
      let rssKb = Number.NaN;
      if (hasTime) {
        try {
          rssKb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
          rmSync(rssFile, { force: true });
        } catch {
          // none
        }
      }
      resolve({ attachMs, firstEventMs, exitMs, rssKb });
    });
  });
}

function quantile(xs: number[], q: number): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
}

/** Median, and the spread as the interquartile range and the extremes. */
interface Stat {
  med: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
}

function stat(xs: number[]): Stat {
  return {
    med: quantile(xs, 0.5),
    q1: quantile(xs, 0.25),
    q3: quantile(xs, 0.75),
    min: quantile(xs, 0),
    max: quantile(xs, 1),
  };
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? '7');
  const tools: { name: string; argv: string[] }[] = [
    { name: 'tsbpf trace', argv: [...tsbpfArgv(), '-e', PROG] },
  ];
  if (spawnSync('bpftrace', ['--version']).status === 0)
    tools.push({ name: 'bpftrace', argv: ['bpftrace', '-e', PROG] });
  // The floor of any Node program here: Node starting and exiting with nothing to do.
  tools.push({ name: 'node -e 0', argv: [process.execPath, '-e', '0'] });
  const samples = new Map<string, Sample[]>(tools.map((t) => [t.name, []]));
  for (const t of tools) await once(t.argv); // warm the page cache
  for (let i = 0; i < runs; i++) for (const t of tools) samples.get(t.name)?.push(await once(t.argv));
  const rows = tools.map((t) => {
    const s = samples.get(t.name) ?? [];
    return {
      name: t.name,
      attach: stat(s.map((x) => x.attachMs)),
      first: stat(s.map((x) => x.firstEventMs)),
      exit: stat(s.map((x) => x.exitMs)),
      rss: stat(s.map((x) => x.rssKb / 1024)),
    };
  });
  const f = (n: number, digits = 0) => (Number.isNaN(n) ? '-' : n.toFixed(digits));
  const cell = (x: Stat, digits = 0) =>
    Number.isNaN(x.med) ? '-' : `${f(x.med, digits)} [${f(x.q1, digits)}-${f(x.q3, digits)}]`;
  console.log(`one-liner: ${PROG}`);
  console.log(`${runs} runs each, alternating; median [interquartile range] (min-max under the table)\n`);
  const w = [12, 18, 18, 18, 20];
  const line = (cols: string[]) =>
    console.log(cols.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' '));
  line(['tool', 'Attaching (ms)', 'first event (ms)', 'exit (ms)', 'peak RSS (MB)']);
  for (const r of rows) line([r.name, cell(r.attach), cell(r.first), cell(r.exit), cell(r.rss, 1)]);
  console.log('');
  const range = (x: Stat) => (Number.isNaN(x.med) ? '-' : `${f(x.min)}-${f(x.max)}`);
  for (const r of rows)
    console.log(
      `${r.name.padEnd(12)} min-max: attach ${range(r.attach)}, first event ${range(r.first)}, exit ${range(r.exit)}`,
    );
  const ts = rows.find((r) => r.name === 'tsbpf trace');
  const bt = rows.find((r) => r.name === 'bpftrace');
  const floor = rows.find((r) => r.name === 'node -e 0');
  if (ts && floor)
    console.log(
      `\ntsbpf above the Node floor (median minus node -e 0's exit): attach ${f(ts.attach.med - floor.exit.med)} ms, first event ${f(ts.first.med - floor.exit.med)} ms, exit ${f(ts.exit.med - floor.exit.med)} ms`,
    );
  if (ts && bt) {
    console.log(
      `tsbpf/bpftrace: attach ${(ts.attach.med / bt.attach.med).toFixed(2)}x, first event ${(ts.first.med / bt.first.med).toFixed(2)}x (target <= 0.33), exit ${(ts.exit.med / bt.exit.med).toFixed(2)}x, peak RSS ${(ts.rss.med / bt.rss.med).toFixed(2)}x (target < 1)`,
    );
    if (floor)
      console.log(
        `tsbpf/bpftrace with the Node floor taken off tsbpf: attach ${((ts.attach.med - floor.exit.med) / bt.attach.med).toFixed(2)}x`,
      );
  }
}

void main();
