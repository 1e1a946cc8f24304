/**
 * bpftrace's runtime test corpus (../shared/corpora/bpftrace/tests/runtime, 1039 tests), run with
 * `tsbpf trace` in place of bpftrace AND with Debian's bpftrace, in one run, following bpftrace's own runner
 * (tests/runtime/engine): the same directives (NAME, RUN/PROG, EXPECT, EXPECT_NONE, EXPECT_REGEX(_NONE),
 * EXPECT_FILE, EXPECT_JSON, TIMEOUT, BEFORE, AFTER, SETUP, CLEANUP, REQUIRES, REQUIRES_FEATURE, ENV, ARCH,
 * MIN/MAX_KERNEL, WILL_FAIL, RETURN_CODE, SKIP_IF_ENV_HAS, LOCALIZE_TIMESTAMPS), the same matching, the
 * same timeouts (10 s to attach, then TIMEOUT; SIGTERM, then SIGKILL).
 *
 * Tests whose features this machine lacks are skipped for both, with the reason: kprobes/fentry (this
 * kernel has none), bpftrace features missing here (`bpftrace --info`), test programs not in the corpus
 * (testprogs/, testlibs/), unmet REQUIRES, NEW_PIDNS. Debian's bpftrace v0.17 prints no
 * `__BPFTRACE_NOTIFY_PROBES_ATTACHED` line; on the bpftrace side its `Attaching N probes...` line stands for
 * it. tsbpf prints the notify line (after `Attached N probes`, as the newer bpftrace the corpus is written for),
 * so on its side only that line counts, as in bpftrace's runner. v0.17's output is not rewritten: where a test
 * expects the newer `Attached N probes`, v0.17 fails it.
 *
 *   node dist/scripts/bpftrace-corpus.js [--filter REGEX] [--tool both|tsbpf|bpftrace] [--jobs N]
 *                                        [--json REPORT.json] [--verbose] [--list-failures]
 *
 * Prints passed/failed/skipped for each tool, the reasons, and the ratio the issue asks for: of the tests
 * bpftrace passes here, how many tsbpf passes.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { arch, endianness, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// ------------------------------------------------------------------------------------------ the format

export interface Expect {
  mode: 'text' | 'text_none' | 'regex' | 'regex_none' | 'file' | 'json';
  expect: string;
}

export interface CorpusTest {
  suite: string;
  name: string;
  run: string;
  prog: string;
  expects: Expect[];
  hasExactExpect: boolean;
  timeout: number;
  befores: string[];
  after: string;
  setup: string;
  cleanup: string;
  kernelMin: string;
  kernelMax: string;
  requirements: string[];
  env: Record<string, string>;
  arch: string[];
  features: string[];
  negFeatures: string[];
  willFail: boolean;
  newPidns: boolean;
  skipIfEnvHas: [string, string] | undefined;
  returnCode: number;
  localizeTs: number;
}

function parseTest(lines: string[], suite: string): CorpusTest {
  const t: CorpusTest = {
    suite,
    name: '',
    run: '',
    prog: '',
    expects: [],
    hasExactExpect: false,
    timeout: 5,
    befores: [],
    after: '',
    setup: '',
    cleanup: '',
    kernelMin: '',
    kernelMax: '',
    requirements: [],
    env: {},
    arch: [],
    features: [],
    negFeatures: [],
    willFail: false,
    newPidns: false,
    skipIfEnvHas: undefined,
    returnCode: 0,
    localizeTs: -1,
  };
  let prev = '';
  for (const item of lines) {
    const lead = item.slice(0, prev.length + 1);
    if (prev && lead.length === prev.length + 1 && /^\s+$/.test(lead)) {
      const line = item.slice(prev.length + 1).replace(/\n$/, '');
      if (prev === 'PROG') {
        t.prog += `\n${line}`;
        continue;
      }
      if (prev === 'EXPECT' || prev === 'EXPECT_REGEX') {
        t.expects[t.expects.length - 1].expect += `\n${line}`;
        continue;
      }
    }
    const trimmed = item.trim();
    const sp = trimmed.search(/\s/);
    const key = sp < 0 ? trimmed : trimmed.slice(0, sp);
    const value = sp < 0 ? '' : trimmed.slice(sp).trim();
    prev = key;
    switch (key) {
      case 'NAME':
        t.name = value;
        break;
      case 'RUN':
        t.run = value;
        break;
      case 'PROG':
        t.prog = value;
        break;
      case 'EXPECT':
        t.expects.push({ mode: 'text', expect: value });
        break;
      case 'EXPECT_NONE':
        t.expects.push({ mode: 'text_none', expect: value });
        break;
      case 'EXPECT_REGEX':
        t.expects.push({ mode: 'regex', expect: value });
        break;
      case 'EXPECT_REGEX_NONE':
        t.expects.push({ mode: 'regex_none', expect: value });
        break;
      case 'EXPECT_FILE':
        t.hasExactExpect = true;
        t.expects.push({ mode: 'file', expect: value });
        break;
      case 'EXPECT_JSON':
        t.hasExactExpect = true;
        t.expects.push({ mode: 'json', expect: value });
        break;
      case 'TIMEOUT':
        t.timeout = Number(value);
        break;
      case 'BEFORE':
        t.befores.push(value);
        break;
      case 'AFTER':
        t.after = value;
        break;
      case 'SETUP':
        t.setup = value;
        break;
      case 'CLEANUP':
        t.cleanup = value;
        break;
      case 'MIN_KERNEL':
        t.kernelMin = value;
        break;
      case 'MAX_KERNEL':
        t.kernelMax = value;
        break;
      case 'REQUIRES':
        t.requirements.push(value);
        break;
      case 'ENV':
        for (const e of value.split(/\s+/)) {
          const eq = e.indexOf('=');
          if (eq > 0) t.env[e.slice(0, eq)] = e.slice(eq + 1);
        }
        break;
      case 'ARCH':
        t.arch = value.split('|').map((x) => x.trim());
        break;
      case 'REQUIRES_FEATURE':
        for (const f of value
          .split(' ')
          .map((x) => x.trim())
          .filter(Boolean)) {
          if (f.startsWith('!')) t.negFeatures.push(f.slice(1));
          else t.features.push(f);
        }
        break;
      case 'WILL_FAIL':
        t.willFail = true;
        break;
      case 'NEW_PIDNS':
        t.newPidns = true;
        break;
      case 'SKIP_IF_ENV_HAS': {
        const [k, v] = value.split('=');
        t.skipIfEnvHas = [k, v ?? ''];
        break;
      }
      case 'RETURN_CODE':
        t.returnCode = Number(value);
        break;
      case 'LOCALIZE_TIMESTAMPS':
        t.localizeTs = Number(value);
        break;
      default:
        throw new Error(`${suite}: unknown directive ${key}`);
    }
  }
  return t;
}

/** Every test of one suite file, as bpftrace's parser.py reads them (blank lines separate tests). */
export function parseSuite(path: string): CorpusTest[] {
  const suite = path.slice(path.lastIndexOf('/') + 1);
  const lines = readFileSync(path, 'utf8').split(/(?<=\n)/);
  const tests: CorpusTest[] = [];
  let cur: string[] = [];
  lines.forEach((line, i) => {
    if (line.startsWith('#')) return;
    if (line !== '\n') cur.push(line);
    if (line === '\n' || i === lines.length - 1) {
      if (cur.length > 0) {
        const t = parseTest(cur, suite);
        if (archMatches(t)) tests.push(t);
      }
      cur = [];
    }
  });
  return tests;
}

function archMatches(t: CorpusTest): boolean {
  if (t.arch.length === 0) return true;
  const host = new Set([
    arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : arch(),
    endianness() === 'LE' ? 'le' : 'be',
  ]);
  const pos = t.arch.filter((a) => !a.startsWith('!'));
  const neg = t.arch.filter((a) => a.startsWith('!')).map((a) => a.slice(1));
  let ok = pos.length === 0 || pos.some((a) => host.has(a));
  if (ok && neg.length > 0) ok = !neg.some((a) => host.has(a));
  return ok;
}

/** The corpus's runtime directory (tests/runtime) and the tests directory its paths are relative to. */
export function corpusDir(): string {
  const root = findRoot();
  return resolve(process.env.TSBPF_CORPORA ?? join(root, '..', 'shared', 'corpora'), 'bpftrace', 'tests');
}

export function loadCorpus(dir = corpusDir()): CorpusTest[] {
  const runtime = join(dir, 'runtime');
  const out: CorpusTest[] = [];
  for (const f of readdirSync(runtime).sort()) {
    if (f.startsWith('.') || ['engine', 'scripts', 'outputs'].includes(f)) continue;
    const p = join(runtime, f);
    if (!statSync(p).isFile()) continue;
    out.push(...parseSuite(p));
  }
  return out;
}

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

// ------------------------------------------------------------------------------------------ skipping

function versionCmp(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

let featureCache: Record<string, boolean> | undefined;
/** bpftrace's feature probe (`bpftrace --info`), as the runner reads it. */
function features(): Record<string, boolean> {
  if (featureCache) return featureCache;
  let info = '';
  try {
    info =
      spawnSync('bpftrace', ['--info'], { encoding: 'utf8' }).stdout +
      spawnSync('bpftrace', ['--info'], { encoding: 'utf8' }).stderr;
  } catch {
    info = '';
  }
  const has = (s: string) => info.includes(s);
  featureCache = {
    loop: has('Loop support: yes'),
    probe_read_kernel: has('probe_read_kernel: yes'),
    btf: has('btf: yes'),
    fentry: has('fentry: yes'),
    dpath: has('dpath: yes'),
    signal: has('send_signal: yes'),
    iter: has('iter: yes'),
    libpath_resolv: has('bcc library path resolution: yes'),
    dwarf: has('libdw (DWARF support): yes'),
    kprobe_multi: has('kprobe_multi: yes'),
    kprobe_session: has('kprobe_session: yes'),
    uprobe_multi: has('uprobe_multi: yes'),
    aot: false,
    skboutput: has('skboutput: yes'),
    get_tai_ns: has('get_ktime_ns: yes'),
    get_func_ip: has('get_func_ip: yes'),
    jiffies64: has('jiffies64: yes'),
    lookup_percpu_elem: has('lookup_percpu_elem: yes'),
    dwunwind: has('dwunwind (DWARF stack unwinding): yes'),
    blazesym: has('blazesym (advanced symbolization): yes'),
  };
  return featureCache;
}

const KPROBE_RE = /(^|[\s{},;'"])(kprobe|kretprobe|k|kr|kfunc|kretfunc|fentry|fexit|f|fr):/;

/** Why this machine cannot run the test (undefined: it can). Same decision for both tools. */
export function skipReason(t: CorpusTest, testsDir: string): string | undefined {
  const kernel = release();
  if (t.kernelMin && versionCmp(t.kernelMin, kernel) > 0) return `min kernel ${t.kernelMin}`;
  if (t.kernelMax && versionCmp(t.kernelMax, kernel) < 0) return `max kernel ${t.kernelMax}`;
  if (t.skipIfEnvHas && (process.env[t.skipIfEnvHas[0]] ?? '') === t.skipIfEnvHas[1])
    return 'disabled by environment';
  if (t.newPidns) return 'NEW_PIDNS (pid namespaces) not emulated by this runner';
  const text = [t.run, t.prog, ...t.befores, t.after, ...t.requirements, t.setup].join('\n');
  const progs = text.match(/\b(testprogs|testlibs)\/[\w.-]+/g) ?? [];
  for (const p of progs)
    if (!existsSync(join(testsDir, p))) return `needs ${p.split('/')[0]} (not in the corpus)`;
  if (KPROBE_RE.test(`${t.prog}\n${t.run}`)) return 'kprobe/fentry probes (this kernel has no kprobes)';
  if (/\busdt:|\bwatchpoint:|\basyncwatchpoint:/.test(`${t.prog}\n${t.run}`))
    return 'usdt/watchpoint probes need test programs';
  const f = features();
  for (const x of t.features) if (!f[x]) return `missing feature: ${x}`;
  for (const x of t.negFeatures) if (f[x]) return `feature present: ${x}`;
  for (const req of t.requirements) {
    const r = spawnSync('/bin/sh', ['-c', req], { cwd: testsDir, stdio: 'ignore', timeout: 10000 });
    if (r.status !== 0) return `unmet REQUIRES: ${req}`;
  }
  return undefined;
}

// ------------------------------------------------------------------------------------------ running

export type Verdict = { status: 'pass' } | { status: 'fail' | 'timeout'; reason: string; output: string };

export interface Tool {
  name: 'tsbpf' | 'bpftrace';
  /** Shell words for {{BPFTRACE}}. */
  bin: string;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

function command(t: CorpusTest, tool: Tool): string {
  if (t.run) return t.run.replace(/\{\{BPFTRACE\}\}/g, tool.bin);
  const json = t.expects.length > 0 && t.expects[0].mode === 'json' ? '-q -f json ' : '';
  return `${tool.bin} ${json}-e ${shellQuote(t.prog)}`;
}

/** Python's `re` syntax → JavaScript's (named groups; the rest is shared). */
function pyRegex(src: string): RegExp {
  return new RegExp(
    src
      .replace(/\(\?P</g, '(?<')
      .replace(/\(\?P=(\w+)\)/g, '\\k<$1>')
      .replace(/\\Z/g, '$'),
    'm',
  );
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every(
      (k) =>
        k in (b as object) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    );
  }
  return a === b;
}

function pyStrip(s: string): string {
  return s.replace(/^[\s]+|[\s]+$/g, '');
}

function localize(fmt: string, ts: number): string {
  if (ts < 0) return fmt;
  const d = new Date(ts * 1000);
  return fmt.replace(/%H/g, String(d.getHours()).padStart(2, '0'));
}

function checkExpect(e: Expect, output: string, testsDir: string, t: CorpusTest): boolean {
  try {
    switch (e.mode) {
      case 'text':
        return new RegExp(`^\\s*${escapeRe(e.expect)}\\s*$`, 'm').test(output);
      case 'text_none':
        return !new RegExp(`^\\s*${escapeRe(e.expect)}\\s*$`, 'm').test(output);
      case 'regex':
        return pyRegex(e.expect).test(output);
      case 'regex_none':
        return !pyRegex(e.expect).test(output);
      case 'file':
        return (
          pyStrip(output) === localize(pyStrip(readFileSync(join(testsDir, e.expect), 'utf8')), t.localizeTs)
        );
      case 'json': {
        const file = readFileSync(join(testsDir, e.expect), 'utf8');
        const outLines = pyStrip(output).split(/\r?\n/);
        if (e.expect.endsWith('.ndjson')) {
          const fileLines = pyStrip(file).split(/\r?\n/);
          if (fileLines.length !== outLines.length) return false;
          return fileLines.every((l, i) => jsonEqual(JSON.parse(outLines[i]), JSON.parse(l)));
        }
        if (outLines.length !== 1) return false;
        return jsonEqual(JSON.parse(pyStrip(output)), JSON.parse(file));
      }
    }
  } catch {
    return false;
  }
}

function killGroup(p: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (p.pid !== undefined) process.kill(-p.pid, sig);
  } catch {
    // gone
  }
}

function sh(cmd: string, cwd: string, env?: NodeJS.ProcessEnv): ChildProcess {
  return spawn('/bin/sh', ['-c', `exec 2>&1; ${cmd}`], {
    cwd,
    env: env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

function collect(p: ChildProcess): { text: () => string } {
  let buf = '';
  p.stdout?.setEncoding('utf8');
  p.stdout?.on('data', (d: string) => {
    buf += d;
  });
  return { text: () => buf };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ATTACH_TIMEOUT = 10;

async function waitForComm(pid: number, name: string, timeoutS: number): Promise<boolean> {
  const deadline = Date.now() + timeoutS * 1000;
  const want = name.slice(0, 15);
  while (Date.now() < deadline) {
    const pids = [pid];
    try {
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean);
      pids.push(...kids.map(Number));
    } catch {
      // not yet
    }
    for (const p of pids) {
      try {
        if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === want) return true;
      } catch {
        // gone
      }
    }
    await sleep(100);
  }
  return false;
}

/** Runs one test with one tool, as bpftrace's runner does. */
export async function runTest(t: CorpusTest, tool: Tool, testsDir: string): Promise<Verdict> {
  const befores: ChildProcess[] = [];
  let after: ChildProcess | undefined;
  let p: ChildProcess | undefined;
  const fail = (reason: string, output = ''): Verdict => ({ status: 'fail', reason, output });
  try {
    if (t.setup) {
      const r = spawnSync('/bin/sh', ['-c', t.setup], { cwd: testsDir, stdio: 'ignore' });
      if (r.status !== 0) return fail('SETUP failed');
    }
    for (const b of t.befores) {
      const words = b.trim().split(/\s+/);
      const child = spawn(words[0], words.slice(1), { cwd: testsDir, detached: true, stdio: 'ignore' });
      child.on('error', () => {});
      befores.push(child);
      const last = words[words.length - 1];
      if (
        child.pid === undefined ||
        !(await waitForComm(child.pid, last.slice(last.lastIndexOf('/') + 1), t.timeout))
      )
        return fail(`timed out waiting for BEFORE ${b}`);
    }
    let cmd = command(t, tool);
    if (befores.length > 0 && cmd.includes('{{BEFORE_PID}}')) {
      const words = t.befores[0].trim().split(/\s+/);
      const base = words[words.length - 1].slice(words[words.length - 1].lastIndexOf('/') + 1);
      const pid = execFileSync('pidof', [base], { encoding: 'utf8' }).trim().split(/\s+/)[0];
      cmd = cmd.replace(/\{\{BEFORE_PID\}\}/g, pid);
    }
    const env: NodeJS.ProcessEnv = {
      test: t.name,
      __BPFTRACE_NOTIFY_PROBES_ATTACHED: '1',
      __BPFTRACE_NOTIFY_AOT_PORTABILITY_DISABLED: '1',
      PATH: process.env.PATH ?? '',
      ...t.env,
    };
    const proc = sh(cmd, testsDir, env);
    p = proc;
    const stream = collect(proc);
    let output = '';
    let consumed = 0;
    let attached = false;
    let notified = false;
    let timedOut = false;
    const exited = new Promise<number | null>((r) =>
      proc.on('close', (code, signal) => r(code ?? (signal ? 128 : null))),
    );
    let deadline = Date.now() + ATTACH_TIMEOUT * 1000;
    let code: number | null | undefined;
    // Process complete lines (attach detection is line based, as the runner's readline loop).
    const consumeLines = (): void => {
      const raw = stream.text();
      while (!notified) {
        const nl = raw.indexOf('\n', consumed);
        if (nl < 0) break;
        const line = raw.slice(consumed, nl + 1);
        consumed = nl + 1;
        output += line;
        const isNotify = line === '__BPFTRACE_NOTIFY_PROBES_ATTACHED\n';
        // v0.17's attach line (text or JSON), which it prints in place of the notify line: bpftrace side only.
        const isAttaching =
          tool.name === 'bpftrace' &&
          (/^Attaching \d+ probes?\.\.\.\n$/.test(line) || /^\{"type": "attached_probes"/.test(line));
        if (isNotify || (isAttaching && !attached)) {
          if (t.hasExactExpect) output = '';
          if (!attached) {
            deadline = Date.now() + t.timeout * 1000;
            if (t.after) after = sh(t.after, testsDir);
          }
          attached = true;
          if (isNotify) notified = true;
        }
      }
      if (notified) {
        output += raw.slice(consumed);
        consumed = raw.length;
      }
    };
    for (;;) {
      consumeLines();
      const r = await Promise.race([exited, sleep(25).then(() => undefined)]);
      if (r !== undefined) {
        code = r;
        // A run that ends within one poll still has its attach line (and what follows) to go through.
        consumeLines();
        break;
      }
      if (Date.now() > deadline) {
        timedOut = true;
        killGroup(proc, 'SIGTERM');
        const r2 = await Promise.race([exited, sleep(1000).then(() => undefined)]);
        if (r2 === undefined) {
          killGroup(proc, 'SIGKILL');
          await exited;
        }
        break;
      }
    }
    await sleep(5);
    output += stream.text().slice(consumed);
    const failed = t.expects.filter((e) => !checkExpect(e, output, testsDir, t));
    if (t.cleanup) {
      const r = spawnSync('/bin/sh', ['-c', t.cleanup], { cwd: testsDir, stdio: 'ignore' });
      if (r.status !== 0) return fail('CLEANUP failed', output);
    }
    if (timedOut) {
      if (failed.length === 0) return { status: 'pass' };
      return { status: 'timeout', reason: `timeout (${t.timeout} s) without the expected output`, output };
    }
    if (code !== t.returnCode && !t.willFail)
      return fail(`exit code ${code} (expected ${t.returnCode})`, output);
    if (code === 0 && t.willFail) return fail('exit code 0, expected a failure', output);
    if (failed.length > 0)
      return fail(`expected ${failed[0].mode}: ${failed[0].expect.split('\n')[0].slice(0, 100)}`, output);
    return { status: 'pass' };
  } finally {
    if (p && p.exitCode === null) killGroup(p, 'SIGKILL');
    for (const b of befores) killGroup(b, 'SIGKILL');
    if (after) killGroup(after, 'SIGKILL');
  }
}

// ------------------------------------------------------------------------------------------ main

export interface CorpusResult {
  test: string;
  skip?: string;
  tsbpf?: Verdict;
  bpftrace?: Verdict;
}

/** The shell words that run `tsbpf trace` (this script in trace mode, so it works before main.ts wires it). */
export function tsbpfTraceBin(): string {
  return `${shellQuote(process.execPath)} ${shellQuote(fileURLToPath(import.meta.url))} --as-trace`;
}

async function asTrace(argv: string[]): Promise<number> {
  const { traceCommand } = await import('../src/cli/commands/trace.js');
  const { isTsbpfError } = await import('../src/errors.js');
  const io = {
    stdout: (t: string) => {
      process.stdout.write(t);
    },
    stdoutBytes: (b: Uint8Array) => {
      process.stdout.write(b);
    },
    stderr: (t: string) => {
      process.stderr.write(t);
    },
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return new Uint8Array(Buffer.concat(chunks));
    },
  };
  try {
    return await traceCommand.run(argv, io);
  } catch (e) {
    if (isTsbpfError(e)) {
      process.stderr.write(
        e.code === 'usage' ? `USAGE: ${e.message}\n${traceCommand.usage}` : `ERROR: ${e.message}\n`,
      );
      return 1;
    }
    process.stderr.write(`ERROR: internal: ${(e as Error).stack}\n`);
    return 70;
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--as-trace') return asTrace(argv.slice(1));
  const opt = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const filter = opt('--filter');
  const which = opt('--tool') ?? 'both';
  const jobs = Number(opt('--jobs') ?? '2');
  const jsonOut = opt('--json');
  const verbose = argv.includes('--verbose');
  const listFailures = argv.includes('--list-failures');
  const testsDir = corpusDir();
  let tests = loadCorpus(testsDir);
  if (filter) {
    const re = new RegExp(filter);
    tests = tests.filter((t) => re.test(`${t.suite}.${t.name}`));
  }
  const tools: Tool[] = [];
  if (which === 'both' || which === 'tsbpf') tools.push({ name: 'tsbpf', bin: tsbpfTraceBin() });
  if (which === 'both' || which === 'bpftrace') tools.push({ name: 'bpftrace', bin: 'bpftrace' });
  const results: CorpusResult[] = new Array(tests.length);
  let next = 0;
  const t0 = Date.now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= tests.length) return;
      const t = tests[i];
      const id = `${t.suite}.${t.name}`;
      const skip = skipReason(t, testsDir);
      const r: CorpusResult = { test: id };
      if (skip) r.skip = skip;
      else {
        // Both tools at once unless the test drives other processes.
        const isolated = t.befores.length > 0 || t.after || t.setup;
        if (isolated) for (const tool of tools) r[tool.name] = await runTest(t, tool, testsDir);
        else {
          const vs = await Promise.all(tools.map((tool) => runTest(t, tool, testsDir)));
          tools.forEach((tool, k) => {
            r[tool.name] = vs[k];
          });
        }
      }
      results[i] = r;
      if (verbose) {
        const s = (v?: Verdict) => (v ? (v.status === 'pass' ? 'PASS' : v.status.toUpperCase()) : '-');
        process.stdout.write(
          `${r.skip ? `SKIP ${id}: ${r.skip}` : `${s(r.tsbpf).padEnd(7)} ${s(r.bpftrace).padEnd(7)} ${id}`}\n`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
  const secs = ((Date.now() - t0) / 1000).toFixed(0);

  const skipped = results.filter((r) => r.skip);
  const ran = results.filter((r) => !r.skip);
  const lines: string[] = [];
  lines.push(`bpftrace runtime corpus: ${results.length} tests (${secs} s); kernel ${release()}`);
  lines.push(`skipped for both: ${skipped.length}`);
  const reasons = new Map<string, number>();
  for (const r of skipped) {
    const k = (r.skip ?? '')
      .replace(/unmet REQUIRES: .*/, 'unmet REQUIRES')
      .replace(/needs (testprogs|testlibs).*/, 'needs $1');
    reasons.set(k, (reasons.get(k) ?? 0) + 1);
  }
  for (const [k, n] of [...reasons].sort((a, b) => b[1] - a[1]))
    lines.push(`  ${String(n).padStart(4)}  ${k}`);
  for (const tool of tools) {
    const v = ran.map((r) => r[tool.name]);
    const pass = v.filter((x) => x?.status === 'pass').length;
    const timeout = v.filter((x) => x?.status === 'timeout').length;
    const failn = v.filter((x) => x?.status === 'fail').length;
    lines.push(`${tool.name}: ${pass} passed, ${failn} failed, ${timeout} timed out (of ${ran.length} run)`);
  }
  if (tools.length === 2) {
    const btPass = ran.filter((r) => r.bpftrace?.status === 'pass');
    const both = btPass.filter((r) => r.tsbpf?.status === 'pass');
    const onlyTs = ran.filter((r) => r.tsbpf?.status === 'pass' && r.bpftrace?.status !== 'pass').length;
    const pct = btPass.length === 0 ? 0 : (100 * both.length) / btPass.length;
    lines.push(
      `tsbpf passes ${both.length} of the ${btPass.length} tests bpftrace passes here: ${pct.toFixed(1)}% (target 80%); tsbpf also passes ${onlyTs} that bpftrace fails`,
    );
  }
  if (listFailures) {
    for (const tool of tools) {
      lines.push(`\n${tool.name} failures:`);
      for (const r of ran) {
        const v = r[tool.name];
        if (v && v.status !== 'pass') lines.push(`  ${r.test}: ${v.reason}`);
      }
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(results, null, 1)}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      // Trace mode: nothing may keep the process alive past the script's end. Writes to a pipe can still be
      // queued (a slow reader such as `| grep`), so exit once they are out.
      if (process.argv[2] === '--as-trace') {
        let pending = 2;
        const done = () => {
          if (--pending === 0) process.exit(code);
        };
        process.stdout.write('', done);
        process.stderr.write('', done);
        return;
      }
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`${(e as Error).stack}\n`);
      process.exitCode = 1;
    },
  );
}
