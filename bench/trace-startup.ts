/**
 * Startup of `tsbpf trace` next to Debian's bpftrace, on the same one-liner, in the same run: time from the
 * command to `Attaching N probes...` on stdout, to the first event (a sched_switch tracepoint fires within
 * microseconds of attaching, so this is "probes attached"), to exit; and the peak RSS (GNU time's %M).
 *
 *   node dist/bench/trace-startup.js [RUNS]      (default 7 runs each, alternating; medians printed)
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

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? '7');
  const tools: { name: string; argv: string[] }[] = [
    { name: 'tsbpf trace', argv: [...tsbpfArgv(), '-e', PROG] },
  ];
  if (spawnSync('bpftrace', ['--version']).status === 0)
    tools.push({ name: 'bpftrace', argv: ['bpftrace', '-e', PROG] });
  const samples = new Map<string, Sample[]>(tools.map((t) => [t.name, []]));
  for (const t of tools) await once(t.argv); // warm the page cache
  for (let i = 0; i < runs; i++) for (const t of tools) samples.get(t.name)?.push(await once(t.argv));
  const rows = tools.map((t) => {
    const s = samples.get(t.name) ?? [];
    return {
      name: t.name,
      attach: median(s.map((x) => x.attachMs)),
      first: median(s.map((x) => x.firstEventMs)),
      exit: median(s.map((x) => x.exitMs)),
      rss: median(s.map((x) => x.rssKb)),
    };
  });
  const f = (n: number) => (Number.isNaN(n) ? '-' : n.toFixed(0));
  console.log(`one-liner: ${PROG}`);
  console.log(`medians of ${runs} runs each\n`);
  console.log(
    `${'tool'.padEnd(12)} ${'Attaching (ms)'.padStart(15)} ${'first event (ms)'.padStart(17)} ${'exit (ms)'.padStart(10)} ${'peak RSS (MB)'.padStart(14)}`,
  );
  for (const r of rows)
    console.log(
      `${r.name.padEnd(12)} ${f(r.attach).padStart(15)} ${f(r.first).padStart(17)} ${f(r.exit).padStart(10)} ${(Number.isNaN(r.rss) ? '-' : (r.rss / 1024).toFixed(1)).padStart(14)}`,
    );
  if (rows.length === 2) {
    const [a, b] = rows;
    console.log(
      `\ntsbpf/bpftrace: first event ${(a.first / b.first).toFixed(2)}x (target <= 0.33), peak RSS ${(a.rss / b.rss).toFixed(2)}x (target < 1)`,
    );
  }
}

void main();
