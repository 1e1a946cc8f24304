/**
 * Startup of `tsbpf trace` next to Debian's bpftrace, on the same one-liners, in the same run.
 *
 * First, on one one-liner: time from the command to the attach line on stdout, to the first event (a
 * sched_switch tracepoint fires within microseconds of attaching, so this is "probes attached"), to exit; and
 * the peak RSS (GNU time's %M). `node -e 0` runs alongside as the floor of any Node program (Node's own start
 * and exit). The attach line is bpftrace 0.17's `Attaching N probes...`, printed before it attaches, or
 * `Attached N probes`, printed after (tsbpf, newer bpftrace): the one mark every version prints (0.17 has no
 * `__BPFTRACE_NOTIFY_PROBES_ATTACHED` line).
 *
 * Then a table of typical one-liners: the median time to the attach line of each tool, and the ratios. A
 * one-liner that does not end by itself gets SIGINT once that line is printed.
 *
 *   node dist/bench/trace-startup.js [RUNS] [--no-list] [-e PROGRAM]...
 *
 * RUNS: runs per tool and one-liner (default 5), alternating; medians and spreads printed. -e adds a one-liner
 * to the table; --no-list leaves out the built-in ones. With TSBPF_BUN=/path/to/bun, tsbpf also runs under
 * Bun (`$TSBPF_BUN dist/src/cli/bin.js trace ...`) as another row.
 *
 * Needs root and BPF; bpftrace is skipped when it is not installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROG = 'tracepoint:sched:sched_switch { printf("first event\\n"); exit(); }';

/** Typical one-liners for the table: the first ends by itself, the others are interrupted once attaching. */
const ONE_LINERS = [
  PROG,
  'tracepoint:syscalls:sys_enter_openat { printf("%s %s\\n", comm, str(args->filename)); }',
  'profile:hz:99 { @[kstack] = count(); }',
  'tracepoint:sched:sched_process_exec { printf("%d %d\\n", pid, curtask->real_parent->pid); }',
  'tracepoint:syscalls:sys_exit_read /args->ret > 0/ { @bytes = hist(args->ret); }',
];

/** `Attaching N probes...` (bpftrace 0.17, before attaching) or `Attached N probes` (after). */
const ATTACH_LINE = /Attaching \d+ probes?\.\.\.|Attached \d+ probes?/;

/** A run that has not ended this long after it started is killed (and counts as missing). */
const RUN_TIMEOUT_MS = 20_000;

function root(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** The argv that runs `tsbpf trace` under `runtime`: the CLI when main.ts has the command, else the corpus runner's shim. */
function tsbpfArgv(runtime: string): string[] {
  const bin = join(root(), 'dist', 'src', 'cli', 'bin.js');
  const probe = spawnSync(runtime, [bin, 'trace', '--help'], { encoding: 'utf8' });
  if (probe.status === 0 && /tsbpf trace/.test(probe.stdout)) return [runtime, bin, 'trace'];
  return [runtime, join(root(), 'dist', 'scripts', 'bpftrace-corpus.js'), '--as-trace'];
}

interface Sample {
  attachMs: number;
  firstEventMs: number;
  exitMs: number;
  rssKb: number;
}

const hasTime = existsSync('/usr/bin/time');

/**
 * One run. `interrupt`: SIGINT once the attach line is printed (the program would not end by itself); such runs
 * are not wrapped in GNU time, which would keep the signal from the tracer.
 */
function once(argv: string[], interrupt = false): Promise<Sample> {
  const rssFile = join(tmpdir(), `trace-startup-rss-${process.pid}`);
  const measureRss = hasTime && !interrupt;
  const cmd = measureRss ? ['/usr/bin/time', '-f', '%M', '-o', rssFile, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const p = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => p.kill('SIGKILL'), RUN_TIMEOUT_MS);
    let out = '';
    let attachMs = Number.NaN;
    let firstEventMs = Number.NaN;
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      // Only the start matters; an interrupted tracer may print a lot before it stops.
      if (out.length < 4096) out += d;
      if (Number.isNaN(attachMs) && ATTACH_LINE.test(out)) {
        attachMs = ms();
        if (interrupt) p.kill('SIGINT');
      }
      if (Number.isNaN(firstEventMs) && out.includes('first event')) firstEventMs = ms();
    });
    p.on('error', reject);
    p.on('close', () => {
      clearTimeout(timer);
      const exitMs = ms();
      let rssKb = Number.NaN;
      if (measureRss) {
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

const f = (n: number, digits = 0) => (Number.isNaN(n) ? '-' : n.toFixed(digits));
const ratio = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? '-' : `${(a / b).toFixed(2)}x`);

interface Tool {
  name: string;
  argv: string[];
}

interface Options {
  runs: number;
  list: boolean;
  extra: string[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 5, list: true, extra: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-e' && argv[i + 1] !== undefined) o.extra.push(argv[++i]);
    else if (a === '--no-list') o.list = false;
    else if (/^\d+$/.test(a)) o.runs = Number(a);
    else throw new Error(`usage: trace-startup.js [RUNS] [--no-list] [-e PROGRAM]...  (unexpected '${a}')`);
  }
  return o;
}

/** The tracers to compare: tsbpf under Node, under Bun when TSBPF_BUN is set, and bpftrace when installed. */
function tracers(): Tool[] {
  const tools: Tool[] = [{ name: 'tsbpf trace', argv: tsbpfArgv(process.execPath) }];
  const bun = process.env.TSBPF_BUN;
  if (bun) {
    if (spawnSync(bun, ['--version']).status === 0)
      tools.push({ name: 'tsbpf trace (bun)', argv: tsbpfArgv(bun) });
    else console.log(`TSBPF_BUN=${bun} does not run; no Bun row\n`);
  }
  if (spawnSync('bpftrace', ['--version']).status === 0) tools.push({ name: 'bpftrace', argv: ['bpftrace'] });
  return tools;
}

/** The detailed table of one one-liner that ends by itself at its first event. */
async function mainTable(tracerList: Tool[], runs: number): Promise<void> {
  const tools: Tool[] = tracerList.map((t) => ({ name: t.name, argv: [...t.argv, '-e', PROG] }));
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
  const cell = (x: Stat, digits = 0) =>
    Number.isNaN(x.med) ? '-' : `${f(x.med, digits)} [${f(x.q1, digits)}-${f(x.q3, digits)}]`;
  const nameWidth = Math.max(12, ...rows.map((r) => r.name.length));
  console.log(`one-liner: ${PROG}`);
  console.log(`${runs} runs each, alternating; median [interquartile range] (min-max under the table)\n`);
  const w = [nameWidth, 18, 18, 18, 20];
  const line = (cols: string[]) =>
    console.log(cols.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' '));
  line(['tool', 'attach line (ms)', 'first event (ms)', 'exit (ms)', 'peak RSS (MB)']);
  for (const r of rows) line([r.name, cell(r.attach), cell(r.first), cell(r.exit), cell(r.rss, 1)]);
  console.log('');
  const range = (x: Stat) => (Number.isNaN(x.med) ? '-' : `${f(x.min)}-${f(x.max)}`);
  for (const r of rows)
    console.log(
      `${r.name.padEnd(nameWidth)} min-max: attach ${range(r.attach)}, first event ${range(r.first)}, exit ${range(r.exit)}`,
    );
  const bt = rows.find((r) => r.name === 'bpftrace');
  const floor = rows.find((r) => r.name === 'node -e 0');
  for (const ts of rows.filter((r) => r.name.startsWith('tsbpf'))) {
    const who = ts.name === 'tsbpf trace' ? 'tsbpf' : ts.name.replace('tsbpf trace', 'tsbpf');
    console.log('');
    if (floor && ts.name === 'tsbpf trace')
      console.log(
        `${who} above the Node floor (median minus node -e 0's exit): attach ${f(ts.attach.med - floor.exit.med)} ms, first event ${f(ts.first.med - floor.exit.med)} ms, exit ${f(ts.exit.med - floor.exit.med)} ms`,
      );
    if (bt) {
      console.log(
        `${who}/bpftrace: attach ${(ts.attach.med / bt.attach.med).toFixed(2)}x, first event ${(ts.first.med / bt.first.med).toFixed(2)}x (target <= 0.33), exit ${(ts.exit.med / bt.exit.med).toFixed(2)}x, peak RSS ${(ts.rss.med / bt.rss.med).toFixed(2)}x (target < 1)`,
      );
      if (floor && ts.name === 'tsbpf trace')
        console.log(
          `${who}/bpftrace with the Node floor taken off tsbpf: attach ${((ts.attach.med - floor.exit.med) / bt.attach.med).toFixed(2)}x`,
        );
    }
  }
}

/** Median time to the attach line of each tool on each one-liner, and each tsbpf's ratio to bpftrace. */
async function oneLinerTable(tools: Tool[], progs: string[], runs: number): Promise<void> {
  const medians: number[][] = [];
  for (const prog of progs) {
    const interrupt = prog !== PROG;
    const argvs = tools.map((t) => [...t.argv, '-e', prog]);
    for (const argv of argvs) await once(argv, interrupt); // warm the page cache and the tracefs dentries
    const samples: number[][] = tools.map(() => []);
    for (let i = 0; i < runs; i++)
      for (const [k, argv] of argvs.entries()) samples[k].push((await once(argv, interrupt)).attachMs);
    medians.push(samples.map((s) => quantile(s, 0.5)));
  }
  const bt = tools.findIndex((t) => t.name === 'bpftrace');
  const cols = tools.map((t) => t.name);
  if (bt >= 0)
    for (const t of tools)
      if (t.name !== 'bpftrace') cols.push(`${t.name.replace('tsbpf trace', 'tsbpf')}/bpftrace`);
  const w = cols.map((c) => Math.max(c.length, 8));
  console.log(
    `\nTime to the attach line (ms), median of ${runs} runs; a one-liner that does not end gets SIGINT then\n`,
  );
  console.log(`${cols.map((c, i) => c.padStart(w[i])).join('  ')}  one-liner`);
  for (const [p, prog] of progs.entries()) {
    const m = medians[p];
    const cells = m.map((x) => f(x));
    if (bt >= 0)
      for (const [k, t] of tools.entries()) if (t.name !== 'bpftrace') cells.push(ratio(m[k], m[bt]));
    console.log(`${cells.map((c, i) => c.padStart(w[i])).join('  ')}  ${prog}`);
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const tools = tracers();
  await mainTable(tools, o.runs);
  const progs = [...(o.list ? ONE_LINERS : []), ...o.extra];
  if (progs.length > 0) await oneLinerTable(tools, progs, o.runs);
}

void main();
