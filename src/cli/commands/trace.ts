/**
 * `tsbpf trace`: bpftrace's command line, on tsbpf's own compiler (no LLVM).
 *
 *   tsbpf trace -e 'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }'
 *   tsbpf trace script.bt ARGS...        ($1, $2... in the script; a `#!` first line is fine)
 *   tsbpf trace -l 'tracepoint:syscalls:*open*'
 *
 * Output is bpftrace's, byte for byte; compile errors are bpftrace's diagnostics (with carets) on stderr
 * and exit status 1.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Backend } from '../../backend.js';
import { TsbpfError } from '../../errors.js';
import { TraceError } from '../../trace/diagnostics.js';
import { parse } from '../../trace/parser.js';
import { compileScript, frontEnd } from '../../trace/runtime/compile.js';
import { listProbes } from '../../trace/runtime/list.js';
import { runScript } from '../../trace/runtime/session.js';
import type { Command, Io } from '../command.js';

export const TRACE_USAGE = `USAGE:
    tsbpf trace [OPTIONS] FILE [ARGS...]
    tsbpf trace [OPTIONS] -e 'PROGRAM' [ARGS...]
    tsbpf trace -l [PATTERN]

Runs a bpftrace program, compiled to eBPF by tsbpf itself (no LLVM). Output is bpftrace's.
  -e PROGRAM         the program text (else FILE, '-' for standard input; a '#!' first line is allowed)
  -l [PATTERN]       list probes (tracepoints, software/hardware events; 'uprobe:BINARY:GLOB' for a binary)
  -p PID             uprobes and perf events of this process only; stop when it exits
  -c 'CMD'           run CMD once the probes are attached; stop when it exits
  -d ast|bytecode|verifier
                     print the AST, the generated eBPF, or the kernel verifier's log, then stop
  -f text|json       output format (default text; json prints bpftrace's JSON lines)
  -q                 quiet: no 'Attaching N probes...'
  --backend kernel|vm
                     where programs run (default kernel; vm runs BEGIN/END and test runs only)
  --unsafe           allow system() and other unsafe builtins
  --dry-run          compile and load, then stop without attaching
  -h, --help         this text
ARGS are the positional parameters $1, $2... ($# is their count).
`;

export interface TraceArgs {
  program?: string;
  file?: string;
  args: string[];
  list: boolean;
  listPattern?: string;
  pid?: number;
  command?: string;
  debug?: string;
  format: 'text' | 'json';
  quiet: boolean;
  backend: 'kernel' | 'vm';
  unsafe: boolean;
  dryRun: boolean;
  help: boolean;
  version: boolean;
}

/** bpftrace-style argument parsing: options up to the script file; everything after it is $1, $2... */
export function parseTraceArgs(argv: readonly string[]): TraceArgs {
  const a: TraceArgs = {
    args: [],
    list: false,
    format: 'text',
    quiet: false,
    backend: 'kernel',
    unsafe: false,
    dryRun: false,
    help: false,
    version: false,
  };
  const value = (i: number, name: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new TsbpfError('usage', `option '${name}' needs a value`);
    return v;
  };
  let i = 0;
  const positionals: string[] = [];
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (positionals.length > 0 && a.program === undefined && !a.list) {
      // After the script file: the script's own arguments.
      positionals.push(arg);
      continue;
    }
    const debugFlag = /^-d(ast|bytecode|verifier|all)$/.exec(arg);
    const backendFlag = /^--backend=(.*)$/.exec(arg);
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    } else if (arg === '-e') {
      a.program = value(i, '-e');
      i++;
    } else if (arg === '-l' || arg === '--list') a.list = true;
    else if (arg === '-p') {
      const v = value(i, '-p');
      if (!/^\d/.test(v)) throw new TraceUsageError(`Failed to parse pid: invalid integer: ${v}`);
      if (!/^\d+$/.test(v)) throw new TraceUsageError(`Failed to parse pid: invalid trailing bytes: ${v}`);
      a.pid = Number(v);
      i++;
    } else if (arg === '-c') {
      a.command = value(i, '-c');
      i++;
    } else if (arg === '-d' || arg === '--debug') {
      a.debug = value(i, arg);
      i++;
    } else if (debugFlag) a.debug = debugFlag[1];
    else if (arg === '-f') {
      const v = value(i, '-f');
      if (v !== 'text' && v !== 'json')
        throw new TraceUsageError(`Invalid output format "${v}"\nValid formats: 'text', 'json'`);
      a.format = v;
      i++;
    } else if (arg === '-fjson' || arg === '-ftext') a.format = arg.slice(2) as 'text' | 'json';
    else if (arg === '-q') a.quiet = true;
    else if (arg === '--backend') {
      const v = value(i, '--backend');
      if (v !== 'kernel' && v !== 'vm')
        throw new TsbpfError('usage', `--backend must be kernel or vm, not '${v}'`);
      a.backend = v;
      i++;
    } else if (backendFlag) {
      if (backendFlag[1] !== 'kernel' && backendFlag[1] !== 'vm')
        throw new TsbpfError('usage', '--backend must be kernel or vm');
      a.backend = backendFlag[1];
    } else if (arg === '--unsafe') a.unsafe = true;
    else if (arg === '--dry-run') a.dryRun = true;
    else if (arg === '-h' || arg === '--help') a.help = true;
    else if (arg === '-V' || arg === '--version') a.version = true;
    else if (arg === '--verify-llvm-ir' || arg === '--no-warnings' || arg === '-k' || arg === '-kk') {
      // bpftrace options with no meaning here (its runtime tests pass --verify-llvm-ir).
    } else if (arg.startsWith('-') && arg !== '-') throw new TsbpfError('usage', `unknown option '${arg}'`);
    else positionals.push(arg);
  }
  if (a.list) {
    if (positionals.length > 0) a.listPattern = positionals[0];
    if (a.program !== undefined && a.listPattern === undefined) {
      // bpftrace -l -e 'PROGRAM' lists the program's probes; treat like a pattern of each probe.
    }
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
  const options = {
    filename: src.filename,
    positionalArgs: a.args,
    unsafe: a.unsafe,
    childCommand: a.command !== undefined,
    backend: a.backend,
  };
  const text = stripShebang(src.text);
  try {
    if (a.debug === 'ast') {
      const { printAst } = await import('../../trace/printer.js');
      io.stdout(printAst((await frontEnd(text, options)).program));
      return 0;
    }
    const { script } = await compileScript(text, options);
    for (const w of script.warnings) io.stderr(`WARNING: ${w}\n`);
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
    if (a.debug !== undefined) throw new TsbpfError('usage', `-d: unknown debug output '${a.debug}'`);
    const backend = await loadBackend(a.backend);
    if (a.dryRun) {
      backend.load(script.spec).close();
      return 0;
    }
    return await runScript(script, {
      backend,
      format: a.format,
      write: io.stdout,
      writeErr: io.stderr,
      quiet: a.quiet,
      ...(a.pid !== undefined ? { pid: a.pid } : {}),
      ...(a.command !== undefined ? { command: a.command } : {}),
      unsafe: a.unsafe,
      notifyAttached: process.env.__BPFTRACE_NOTIFY_PROBES_ATTACHED !== undefined,
    });
  } catch (e) {
    if (e instanceof TraceError) {
      io.stderr(`${e.message}\n`);
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
  }
}

/** The verifier's verdict: the last lines of its log (the reason and the instruction before it). */
function verifierTail(log: string): string {
  const lines = log.trimEnd().split('\n');
  return lines.slice(Math.max(0, lines.length - 6)).join('\n');
}

/** The attach points of a script (`-l FILE.bt`, `-l -e PROGRAM`), as written, without running it. */
function scriptProbes(text: string): string[] {
  const out: string[] = [];
  try {
    const { program } = parse(stripShebang(text));
    for (const p of program.probes)
      for (const ap of p.attachPoints) {
        const s = ap.spec;
        out.push(
          s.provider === 'interval' || s.provider === 'profile' ? `${s.provider}:${s.unit ?? 'hz'}:` : ap.raw,
        );
      }
  } catch {
    // not parseable: nothing to list
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
    if (a.pid !== undefined && a.pid > pidMax()) {
      io.stderr(`ERROR: Pid out of range: ${a.pid}\n`);
      return 1;
    }
    if (a.list) {
      let pattern = a.listPattern;
      if (pattern !== undefined && /\.bt$/.test(pattern)) {
        if (existsSync(pattern)) {
          // The probes of a script file.
          for (const line of scriptProbes(readFileSync(pattern, 'utf8'))) io.stdout(`${line}\n`);
          return 0;
        }
        io.stderr(
          `WARNING: It appears that '${pattern}' is a filename but the file does not exist. Treating '${pattern}' as a search pattern.\n`,
        );
      }
      if (pattern === undefined && a.program !== undefined) {
        for (const line of scriptProbes(a.program)) io.stdout(`${line}\n`);
        return 0;
      }
      pattern = pattern ?? undefined;
      for (const line of listProbes(pattern)) io.stdout(`${line}\n`);
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
        const code = (e as NodeJS.ErrnoException).code;
        io.stderr(
          `ERROR: failed to open file '${a.file}': ${code === 'ENOENT' ? 'No such file or directory' : (e as Error).message}\n`,
        );
        return 1;
      }
    } else throw new TsbpfError('usage', 'no program given (-e PROGRAM or FILE)');
    return runTrace(a, src, io);
  },
};
