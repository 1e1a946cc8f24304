/**
 * `tsbpf trace`: bpftrace's command line, on tsbpf's own compiler (no LLVM).
 *
 *   tsbpf trace -e 'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }'
 *   tsbpf trace script.bt ARGS...        ($1, $2... in the script; a `#!` first line is fine)
 *   tsbpf trace -l 'tracepoint:syscalls:*open*'
 *   tsbpf trace -e 'BEGIN { printf("%d\n", getopt("n", 1)); }' -- --n=5
 *
 * Output is bpftrace's, byte for byte; compile errors are bpftrace's diagnostics (with carets) on stderr
 * and exit status 1.
 */
import { closeSync, existsSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Backend } from '../../backend.js';
import { TsbpfError } from '../../errors.js';
import { programOptionsHelp } from '../../trace/analyse.js';
import { TraceError } from '../../trace/diagnostics.js';
import { parse } from '../../trace/parser.js';
import { type ProbeSpec, probeName } from '../../trace/probes.js';
import { compileScript, frontEnd } from '../../trace/runtime/compile.js';
import { HeaderNotFound, headerMacros } from '../../trace/runtime/include.js';
import { expandProbeSpec, listProbes, tracepointParams } from '../../trace/runtime/list.js';
import { runScript } from '../../trace/runtime/session.js';
import type { Command, Io } from '../command.js';

export const TRACE_USAGE = `USAGE:
    tsbpf trace [OPTIONS] FILE [ARGS...] [-- NAMED ARGS...]
    tsbpf trace [OPTIONS] -e 'PROGRAM' [ARGS...] [-- NAMED ARGS...]
    tsbpf trace -l [-v] [PATTERN|FILE]

Runs a bpftrace program, compiled to eBPF by tsbpf itself (no LLVM). Output is bpftrace's.
  -e PROGRAM         the program text (else FILE, '-' for standard input; a '#!' first line is allowed)
  -l, --list [PATTERN|FILE]
                     list probes (tracepoints, raw tracepoints, software/hardware events,
                     'uprobe:BINARY:GLOB', 'struct GLOB' kernel types), or the probes of a program
  -v, --verbose      with -l: each probe's arguments, types' C definitions
  --info             what this kernel supports (helpers, map and probe types)
  -p, --pid PID      uprobes and perf events of this process only; stop when it exits
  -c, --cmd 'CMD'    run CMD once the probes are attached (cpid is its pid); stop when it exits
  -o, --output FILE  write the program's output to FILE
  -f text|json       output format (default text; json prints bpftrace's JSON lines)
  -B line|full|none  output buffering (accepted; output is written as it comes)
  -q, --quiet        no 'Attached N probes'
  -k, --warnings     accepted (runtime warnings for failed helper calls are not reported yet)
  --no-warnings      no warnings (the compiler's and warnf()'s)
  -I DIR             add DIR to the header search path
  --include FILE     include FILE before the program (its integer #defines become usable names)
  --probe-filter REGEX
                     attach only the probes whose name matches REGEX (BEGIN and END always run)
  -d, --debug ast|bytecode|verifier|all
                     print the AST, the generated eBPF, or the kernel verifier's log, then stop
  --backend kernel|vm
                     where programs run (default kernel; vm runs BEGIN/END and test runs only)
  --unsafe           allow system() and other unsafe builtins
  --dry-run          compile and load, then stop without attaching
  -h, --help         this text
  -V, --version      the version
ARGS are the positional parameters $1, $2... ($# is their count). After '--', '--NAME=VALUE' and '--NAME'
are the program's named parameters, read with getopt("NAME", DEFAULT); '-- --help' lists them.
`;

export interface TraceArgs {
  program?: string;
  file?: string;
  /** Positional parameters: $1, $2... */
  args: string[];
  /** Named parameters after `--`: `--name=value` → value, `--name` → true. */
  namedArgs: Record<string, string | true>;
  list: boolean;
  listPattern?: string;
  verbose: boolean;
  info: boolean;
  pid?: number;
  command?: string;
  debug?: string;
  format: 'text' | 'json';
  output?: string;
  quiet: boolean;
  /** --no-warnings: none; -k: also runtime warnings (accepted, not implemented). */
  warnings: 'none' | 'default' | 'all';
  includeDirs: string[];
  includeFiles: string[];
  probeFilter?: string;
  backend: 'kernel' | 'vm';
  unsafe: boolean;
  dryRun: boolean;
  help: boolean;
  version: boolean;
}

/** bpftrace's options (getopt_long) by name: whether each takes a value. Short ones are one letter. */
const OPTIONS: Readonly<Record<string, { value: boolean; key: string }>> = {
  e: { value: true, key: 'program' },
  l: { value: false, key: 'list' },
  list: { value: false, key: 'list' },
  v: { value: false, key: 'verbose' },
  verbose: { value: false, key: 'verbose' },
  info: { value: false, key: 'info' },
  p: { value: true, key: 'pid' },
  pid: { value: true, key: 'pid' },
  c: { value: true, key: 'cmd' },
  cmd: { value: true, key: 'cmd' },
  o: { value: true, key: 'output' },
  output: { value: true, key: 'output' },
  f: { value: true, key: 'format' },
  B: { value: true, key: 'buffering' },
  q: { value: false, key: 'quiet' },
  quiet: { value: false, key: 'quiet' },
  k: { value: false, key: 'warnings' },
  warnings: { value: false, key: 'warnings' },
  'no-warnings': { value: false, key: 'no-warnings' },
  I: { value: true, key: 'include-dir' },
  include: { value: true, key: 'include' },
  'probe-filter': { value: true, key: 'probe-filter' },
  d: { value: true, key: 'debug' },
  debug: { value: true, key: 'debug' },
  backend: { value: true, key: 'backend' },
  unsafe: { value: false, key: 'unsafe' },
  'dry-run': { value: false, key: 'dry-run' },
  h: { value: false, key: 'help' },
  help: { value: false, key: 'help' },
  V: { value: false, key: 'version' },
  version: { value: false, key: 'version' },
  // bpftrace options with nothing to do here: BTF is always used, LLVM IR does not exist, debug info
  // comes from BTF, USDT is not supported.
  b: { value: false, key: 'ignore' },
  btf: { value: false, key: 'ignore' },
  'verify-llvm-ir': { value: false, key: 'ignore' },
  'usdt-file-activation': { value: false, key: 'ignore' },
  debuginfo: { value: true, key: 'ignore' },
  'dwarf-pid': { value: true, key: 'ignore' },
  'no-feature': { value: true, key: 'no-feature' },
  'traceable-functions': { value: true, key: 'ignore' },
  // bpftrace modes tsbpf does not have.
  aot: { value: true, key: 'unsupported' },
  'emit-elf': { value: true, key: 'unsupported' },
  'emit-llvm': { value: true, key: 'unsupported' },
  mode: { value: true, key: 'unsupported' },
  test: { value: false, key: 'unsupported' },
  bench: { value: false, key: 'unsupported' },
  fmt: { value: false, key: 'unsupported' },
};

/** Whether a trace option word (`-p`, `--output`) takes the next word as its value (for `tsbpf tool`). */
export function traceOptionTakesValue(word: string): boolean {
  if (word.startsWith('--')) return !word.includes('=') && OPTIONS[word.slice(2)]?.value === true;
  return word.length === 2 && OPTIONS[word[1]]?.value === true;
}

/** A long option by a unique prefix, as getopt_long accepts (`--verb` for `--verbose`). */
function longOption(name: string): string | undefined {
  if (OPTIONS[name] && name.length > 1) return name;
  const matches = Object.keys(OPTIONS).filter((k) => k.length > 1 && k.startsWith(name));
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * bpftrace's command line (getopt_long): options anywhere before `--` (`-lv`, `-p123`, `--output=F`,
 * `--output F`); the first other word is the script file unless -e gave the program, the rest are $1, $2...;
 * after `--`, `--NAME[=VALUE]` words are named parameters and other words positional ones.
 */
export function parseTraceArgs(argv: readonly string[]): TraceArgs {
  const a: TraceArgs = {
    args: [],
    namedArgs: {},
    list: false,
    verbose: false,
    info: false,
    format: 'text',
    quiet: false,
    warnings: 'default',
    includeDirs: [],
    includeFiles: [],
    backend: 'kernel',
    unsafe: false,
    dryRun: false,
    help: false,
    version: false,
  };
  let kCount = 0;
  const apply = (key: string, name: string, v: string | undefined): void => {
    const value = v as string;
    switch (key) {
      case 'program':
        a.program = value;
        break;
      case 'list':
        a.list = true;
        break;
      case 'verbose':
        a.verbose = true;
        break;
      case 'info':
        a.info = true;
        break;
      case 'pid':
        if (!/^\d/.test(value)) throw new TraceUsageError(`Failed to parse pid: invalid integer: ${value}`);
        if (!/^\d+$/.test(value))
          throw new TraceUsageError(`Failed to parse pid: invalid trailing bytes: ${value}`);
        a.pid = Number(value);
        break;
      case 'cmd':
        a.command = value;
        break;
      case 'output':
        a.output = value;
        break;
      case 'format':
        if (value !== 'text' && value !== 'json')
          throw new TraceUsageError(`Invalid output format "${value}"\nValid formats: 'text', 'json'`);
        a.format = value;
        break;
      case 'buffering':
        if (value !== 'line' && value !== 'full' && value !== 'none')
          throw new TraceUsageError("USAGE: -B must be either 'line', 'full', or 'none'.");
        break;
      case 'quiet':
        a.quiet = true;
        break;
      case 'warnings':
        if (a.warnings === 'none')
          throw new TraceUsageError('USAGE: -k, --warnings conflicts with --no-warnings');
        if (++kCount > 1)
          throw new TraceUsageError(
            'USAGE: -kk has been deprecated. Use a single -k for runtime warnings for errors in map lookups and probe reads.',
          );
        a.warnings = 'all';
        break;
      case 'no-warnings':
        if (a.warnings === 'all')
          throw new TraceUsageError('USAGE: -k, --warnings conflicts with --no-warnings');
        a.warnings = 'none';
        break;
      case 'include-dir':
        a.includeDirs.push(value);
        break;
      case 'include':
        a.includeFiles.push(value);
        break;
      case 'probe-filter':
        a.probeFilter = value;
        break;
      case 'debug':
        for (const stage of value.split(',').filter(Boolean)) {
          const known = stage === 'dis' ? 'bytecode' : stage;
          if (!['ast', 'bytecode', 'verifier', 'all'].includes(known))
            throw new TraceUsageError(`USAGE: invalid option for -d: ${stage}`);
          a.debug = a.debug === undefined || known === 'all' ? known : a.debug;
        }
        break;
      case 'backend':
        if (value !== 'kernel' && value !== 'vm')
          throw new TsbpfError('usage', `--backend must be kernel or vm, not '${value}'`);
        a.backend = value;
        break;
      case 'unsafe':
        a.unsafe = true;
        break;
      case 'dry-run':
        a.dryRun = true;
        break;
      case 'help':
        a.help = true;
        break;
      case 'version':
        a.version = true;
        break;
      case 'no-feature':
        for (const f of value.split(','))
          if (!['kprobe_multi', 'kprobe_session', 'uprobe_multi'].includes(f))
            throw new TraceUsageError(
              "USAGE: --no-feature can only have values 'kprobe_multi,kprobe_session,uprobe_multi'.",
            );
        break;
      case 'unsupported':
        throw new TraceUsageError(`${name} is not supported by tsbpf trace`);
    }
  };
  const words: string[] = [];
  let afterDashes: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      afterDashes = argv.slice(i + 1);
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const given = arg.slice(2, eq < 0 ? undefined : eq);
      const name = longOption(given);
      if (name === undefined) throw new TsbpfError('usage', `unrecognized option '${arg}'`);
      const o = OPTIONS[name];
      let v: string | undefined;
      if (o.value) {
        if (eq >= 0) v = arg.slice(eq + 1);
        else if (i + 1 < argv.length) v = argv[++i];
        else throw new TsbpfError('usage', `option '--${name}' requires an argument`);
      } else if (eq >= 0) throw new TsbpfError('usage', `option '--${name}' doesn't allow an argument`);
      apply(o.key, `--${name}`, v);
    } else if (arg.startsWith('-') && arg !== '-') {
      // A cluster of short options (`-lv`); one taking a value takes the rest of the word or the next one.
      for (let j = 1; j < arg.length; j++) {
        const o = arg[j] === '-' ? undefined : OPTIONS[arg[j]];
        if (o === undefined) throw new TsbpfError('usage', `invalid option -- '${arg[j]}'`);
        if (!o.value) {
          apply(o.key, `-${arg[j]}`, undefined);
          continue;
        }
        let v: string;
        if (j + 1 < arg.length) v = arg.slice(j + 1);
        else if (i + 1 < argv.length) v = argv[++i];
        else throw new TsbpfError('usage', `option requires an argument -- '${arg[j]}'`);
        apply(o.key, `-${arg[j]}`, v);
        break;
      }
    } else words.push(arg);
  }
  const positionals = [...words];
  for (const w of afterDashes ?? []) {
    if (!w.startsWith('--')) {
      positionals.push(w);
      continue;
    }
    const eq = w.indexOf('=');
    if (eq < 0) a.namedArgs[w.slice(2)] = true;
    else a.namedArgs[w.slice(2, eq)] = w.slice(eq + 1);
  }
  if (a.command !== undefined && a.pid !== undefined)
    throw new TsbpfError('usage', 'Cannot use both -c and -p.');
  if (a.list) {
    if (positionals.length > 1) throw new TsbpfError('usage', 'with -l, at most one pattern or file');
    if (positionals.length > 0) a.listPattern = positionals[0];
  } else if (a.program !== undefined) a.args = positionals;
  else if (positionals.length > 0) {
    a.file = positionals[0];
    a.args = positionals.slice(1);
  }
  return a;
}

/** A command-line error bpftrace reports as `ERROR: ...` with status 1. */
export class TraceUsageError extends Error {}

/** The kernel's largest pid (/proc/sys/kernel/pid_max). */
function pidMax(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) || 4194304;
  } catch {
    return 4194304;
  }
}

/** Turns a `#!` first line into an empty line (line numbers stay right). */
export function stripShebang(text: string): string {
  if (!text.startsWith('#!')) return text;
  const nl = text.indexOf('\n');
  return nl < 0 ? '' : text.slice(nl);
}

/**
 * The backend by name. The kernel backend is not probed up front (a test load and test run on every start):
 * when loading the script fails, runTrace asks bpfAvailable() why, so the message stays as helpful.
 */
async function loadBackend(name: 'kernel' | 'vm'): Promise<Backend> {
  if (name === 'vm') {
    const { vmBackend } = await import('../../vm/backend.js');
    return vmBackend({ cpus: 1 });
  }
  const { kernelBackend } = await import('../../kernel/collection.js');
  return kernelBackend;
}

/** When the kernel backend failed: the reason BPF cannot be used here at all, if that is why. */
async function bpfUnavailable(): Promise<TsbpfError | undefined> {
  const { bpfAvailable } = await import('../../kernel/program.js');
  const ok = bpfAvailable();
  return ok.ok ? undefined : new TsbpfError('kernel', `cannot use BPF here: ${ok.reason} (try --backend vm)`);
}

export interface ScriptSource {
  text: string;
  filename: string;
}

/** Runs tsbpf trace with parsed arguments; shared by `tsbpf tool`. */
export async function runTrace(a: TraceArgs, src: ScriptSource, io: Io): Promise<number> {
  let probeFilter: RegExp | undefined;
  if (a.probeFilter !== undefined) {
    try {
      probeFilter = new RegExp(a.probeFilter);
    } catch (e) {
      io.stderr(`ERROR: Invalid --probe-filter regex '${a.probeFilter}': ${(e as Error).message}\n`);
      return 1;
    }
  }
  let text = stripShebang(src.text);
  try {
    const macros = headerMacros(text, {
      dirs: a.includeDirs,
      files: a.includeFiles,
      ...(src.filename !== 'stdin' ? { scriptDir: dirname(src.filename) } : {}),
    });
    if (macros) text += `\n${macros}`;
  } catch (e) {
    if (!(e instanceof HeaderNotFound)) throw e;
    io.stderr(`${e.message}\n`);
    return 1;
  }
  const options = {
    filename: src.filename,
    positionalArgs: a.args,
    namedArgs: a.namedArgs,
    unsafe: a.unsafe,
    childCommand: a.command !== undefined,
    backend: a.backend,
  };
  let outFd: number | undefined;
  try {
    if (a.namedArgs.help === true) {
      // `-- --help`: the program's own options, from its getopt() calls.
      io.stderr(`${programOptionsHelp(await frontEnd(text, options))}\n`);
      return 1;
    }
    if (a.debug === 'ast') {
      const { printAst } = await import('../../trace/printer.js');
      io.stdout(printAst((await frontEnd(text, options)).program));
      return 0;
    }
    const { analysis, script } = await compileScript(text, options);
    if (a.warnings !== 'none') {
      const front = analysis.diagnostics.format('warning');
      if (front) io.stderr(`${front}\n`);
      for (const w of script.warnings) io.stderr(`WARNING: ${w}\n`);
    }
    if (a.debug === 'bytecode' || a.debug === 'all') {
      const { disassemble } = await import('../../isa/disasm.js');
      for (const p of script.spec.programs) {
        const probe = script.probes.find((x) => x.program === p.name);
        io.stdout(`${probe ? probe.name : p.name}:\n${disassemble(p.insns, { rawBytes: false })}\n`);
      }
      if (a.debug === 'bytecode') return 0;
    }
    if (a.debug === 'verifier' || a.debug === 'all') {
      const { kernelBackend } = await import('../../kernel/collection.js');
      const coll = kernelBackend.load(script.spec, { logLevel: 2 });
      try {
        for (const p of coll.programs.values()) {
          const probe = script.probes.find((x) => x.program === p.name);
          io.stdout(`${probe ? probe.name : p.name}:\n${p.log}\n`);
        }
      } finally {
        coll.close();
      }
      return 0;
    }
    const backend = await loadBackend(a.backend);
    if (a.dryRun) {
      backend.load(script.spec).close();
      return 0;
    }
    let write = io.stdout;
    if (a.output !== undefined) {
      try {
        outFd = openSync(a.output, 'w');
      } catch (e) {
        io.stderr(`ERROR: Failed to open output file: "${a.output}": ${errnoText(e)}\n`);
        return 1;
      }
      const fd = outFd;
      write = (t: string) => {
        writeSync(fd, t);
      };
    }
    // BEGIN and END run in this process: scripts (and bpftrace's tests) expect its comm to be bpftrace's.
    process.title = 'bpftrace';
    return await runScript(script, {
      backend,
      format: a.format,
      write,
      writeErr: io.stderr,
      writeNotice: io.stdout,
      quiet: a.quiet,
      ...(a.pid !== undefined ? { pid: a.pid } : {}),
      ...(a.command !== undefined ? { command: a.command } : {}),
      ...(probeFilter ? { probeFilter } : {}),
      noWarnings: a.warnings === 'none',
      unsafe: a.unsafe,
      notifyAttached: process.env.__BPFTRACE_NOTIFY_PROBES_ATTACHED !== undefined,
    });
  } catch (e) {
    if (e instanceof TraceError) {
      // Bad named parameters are bpftrace's command-line errors (`ERROR: ...`), not the script's.
      const commandLine = e.diagnostics.every(
        (d) => !d.loc && /^(unexpected )?program command line option/.test(d.message),
      );
      io.stderr(commandLine ? e.diagnostics.map((d) => `ERROR: ${d.message}\n`).join('') : `${e.message}\n`);
      return 1;
    }
    if (e instanceof TsbpfError && e.code !== 'usage') {
      // A kernel error because BPF cannot be used here at all (no root, no koffi): say that instead.
      const why = a.backend === 'kernel' && e.code === 'kernel' ? await bpfUnavailable() : undefined;
      if (why) {
        io.stderr(`ERROR: ${why.message}\n`);
        return 1;
      }
      const log = e.details.log;
      io.stderr(`ERROR: ${e.message}\n${log ? `${verifierTail(log)}\n` : ''}`);
      return 1;
    }
    throw e;
  } finally {
    if (outFd !== undefined) closeSync(outFd);
  }
}

/** strerror() of a failed fs call. */
function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'No such file or directory';
  if (code === 'EACCES') return 'Permission denied';
  if (code === 'EISDIR') return 'Is a directory';
  return (e as Error).message;
}

/** The verifier's verdict: the last lines of its log (the reason and the instruction before it). */
function verifierTail(log: string): string {
  const lines = log.trimEnd().split('\n');
  return lines.slice(Math.max(0, lines.length - 6)).join('\n');
}

/** The probes of a script (`-l FILE.bt`, `-l -e PROGRAM`) as bpftrace lists them, wildcards expanded. */
function scriptProbes(text: string, verbose: boolean): string[] {
  const out: string[] = [];
  let program: ReturnType<typeof parse>['program'];
  try {
    ({ program } = parse(stripShebang(text)));
  } catch {
    return out; // not parseable: nothing to list
  }
  const push = (s: ProbeSpec, raw: string): void => {
    let name: string;
    try {
      name = probeName(s);
    } catch {
      name = raw;
    }
    out.push(name);
    if (verbose && s.provider === 'tracepoint' && s.target && s.func)
      for (const param of tracepointParams(s.target, s.func)) out.push(`    ${param}`);
  };
  for (const p of program.probes)
    for (const ap of p.attachPoints) {
      const s = ap.spec;
      // BEGIN/END are not probes of the kernel; the others are listed without their rate or count.
      if (s.provider === 'begin' || s.provider === 'end') continue;
      if (s.provider === 'interval' || s.provider === 'profile') out.push(`${s.provider}:${s.unit ?? 'hz'}:`);
      else if (s.provider === 'software' || s.provider === 'hardware') out.push(`${s.provider}:${s.target}:`);
      else if (s.wildcard) for (const x of expandProbeSpec(s)) push(x, ap.raw);
      else push(s, ap.raw);
    }
  return out;
}

export const traceCommand: Command = {
  name: 'trace',
  ownHelp: true,
  summary: "run a bpftrace program (bpftrace's language and output, compiled without LLVM)",
  usage: TRACE_USAGE,
  async run(argv, io) {
    let a: TraceArgs;
    if (argv.length === 0) {
      io.stderr(TRACE_USAGE);
      return 1;
    }
    try {
      a = parseTraceArgs(argv);
    } catch (e) {
      if (e instanceof TraceUsageError) {
        io.stderr(`ERROR: ${e.message}\n`);
        return 1;
      }
      if (e instanceof TsbpfError && e.code === 'usage') {
        // bpftrace: the usage text and status 1.
        io.stderr(`${e.message}\n${TRACE_USAGE}`);
        return 1;
      }
      throw e;
    }
    if (a.help) {
      io.stdout(TRACE_USAGE);
      return 0;
    }
    if (a.version) {
      io.stdout('bpftrace v0.17.0 (tsbpf trace 0.1.0)\n');
      return 0;
    }
    if (a.info) {
      const { infoReport } = await import('../../trace/runtime/info.js');
      io.stdout(await infoReport());
      return 0;
    }
    if (a.pid !== undefined && a.pid > pidMax()) {
      io.stderr(`ERROR: Pid out of range: ${a.pid}\n`);
      return 1;
    }
    if (a.list) {
      const pattern = a.listPattern;
      if (pattern !== undefined && existsSync(pattern) && statSync(pattern).isFile()) {
        // The probes of a script file.
        for (const line of scriptProbes(readFileSync(pattern, 'utf8'), a.verbose)) io.stdout(`${line}\n`);
        return 0;
      }
      if (pattern?.includes('.') && !/[:*]/.test(pattern))
        io.stderr(
          `WARNING: It appears that '${pattern}' is a filename but the file does not exist. Treating '${pattern}' as a search pattern.\n`,
        );
      if (pattern === undefined && a.program !== undefined) {
        for (const line of scriptProbes(a.program, a.verbose)) io.stdout(`${line}\n`);
        return 0;
      }
      for (const line of listProbes(pattern, { verbose: a.verbose })) io.stdout(`${line}\n`);
      return 0;
    }
    let src: ScriptSource;
    if (a.program !== undefined) src = { text: a.program, filename: 'stdin' };
    else if (a.file === '-')
      src = { text: new TextDecoder().decode(await io.readStdin()), filename: 'stdin' };
    else if (a.file !== undefined) {
      try {
        src = { text: readFileSync(a.file, 'utf8'), filename: a.file };
      } catch (e) {
        io.stderr(`ERROR: failed to open file '${a.file}': ${errnoText(e)}\n`);
        return 1;
      }
    } else {
      io.stderr("ERROR: USAGE: filename or -e 'program' required.\n");
      return 1;
    }
    return runTrace(a, src, io);
  },
};
