/**
 * `tsbpf tool NAME [ARGS]`: the classic tracing tools (execsnoop, opensnoop, runqlat...), kept in the repo as
 * bpftrace-language scripts (tools/NAME.bt) and run by `tsbpf trace`. `tsbpf tool --list` lists them;
 * `tsbpf tool NAME -h` prints the tool's help (its header comment, like bpftrace's tools).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsbpfError } from '../../errors.js';
import type { Command } from '../command.js';
import { parseTraceArgs, runTrace, type TraceArgs, TraceUsageError, traceOptionTakesValue } from './trace.js';

/** The directory of the .bt tools: `tools/` at the package root (or $TSBPF_TOOLS). */
export function toolsDir(): string {
  if (process.env.TSBPF_TOOLS) return process.env.TSBPF_TOOLS;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'tools');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new TsbpfError('io', 'cannot find the tools/ directory of tsbpf');
}

export function toolNames(): string[] {
  return readdirSync(toolsDir())
    .filter((f) => f.endsWith('.bt'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** The header comment of a tool (its help text), without the comment markers. */
export function toolHelp(text: string): string {
  const start = text.indexOf('/*');
  const end = text.indexOf('*/', start + 2);
  if (start < 0 || end < 0) return '';
  return `${text
    .slice(start + 2, end)
    .split('\n')
    .map((l) => l.replace(/^\s?\*\s?/, '').replace(/\t/g, '        '))
    .join('\n')
    .trim()}\n`;
}

/** The first line of a tool's help after its name: `execsnoop\tTrace new processes...` → the summary. */
function toolSummary(text: string): string {
  const first = toolHelp(text).split('\n')[0] ?? '';
  return first.replace(/^\S+\s+/, '').trim();
}

const TOOL_USAGE = `Usage: tsbpf tool NAME [ARGS...]
       tsbpf tool --list
       tsbpf tool NAME -h

Runs one of tsbpf's tracing tools: bpftrace-language scripts shipped in tools/NAME.bt, compiled and run by
'tsbpf trace'. Options of 'tsbpf trace' (-f json, --backend vm, -p PID, -c CMD, -q...) go before NAME.
  --list    list the tools with a one-line summary
  -h        after NAME: the tool's help
`;

export const toolCommand: Command = {
  name: 'tool',
  ownHelp: true,
  summary: 'run a tracing tool (execsnoop, opensnoop, runqlat, syscount...)',
  usage: TOOL_USAGE,
  async run(argv, io) {
    if (argv.length === 0) throw new TsbpfError('usage', 'missing tool name');
    if (argv[0] === '--list' || argv[0] === '-l') {
      const names = toolNames();
      const width = Math.max(...names.map((n) => n.length));
      for (const n of names)
        io.stdout(`${n.padEnd(width)}  ${toolSummary(readFileSync(join(toolsDir(), `${n}.bt`), 'utf8'))}\n`);
      return 0;
    }
    // Trace options before NAME; NAME; the tool's arguments.
    let i = 0;
    const traceOpts: string[] = [];
    for (; i < argv.length; i++) {
      const a = argv[i];
      if (!a.startsWith('-')) break;
      if (a === '-h' || a === '--help') {
        io.stdout(TOOL_USAGE);
        return 0;
      }
      traceOpts.push(a);
      if (traceOptionTakesValue(a) && i + 1 < argv.length) traceOpts.push(argv[++i]);
    }
    const name = argv[i];
    if (name === undefined) throw new TsbpfError('usage', 'missing tool name');
    const rest = argv.slice(i + 1);
    const file = join(toolsDir(), `${name.replace(/\.bt$/, '')}.bt`);
    if (!/^[\w.-]+$/.test(name) || !existsSync(file)) {
      io.stderr(`tsbpf tool: no tool '${name}' (have: ${toolNames().join(', ')})\n`);
      return 1;
    }
    const text = readFileSync(file, 'utf8');
    if (rest.includes('-h') || rest.includes('--help')) {
      io.stdout(toolHelp(text));
      return 0;
    }
    // Missing positional parameters take the tool's declared defaults (`// tsbpf-tool-defaults: A B`).
    const defaults = /^\/\/ tsbpf-tool-defaults:(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
    const args = [...rest, ...defaults.slice(rest.length)];
    // After `--` the tool's arguments stay its own (a `-5` is $1, not an option); `--NAME=VALUE` ones are its
    // named parameters.
    let a: TraceArgs;
    try {
      a = parseTraceArgs([...traceOpts, file, '--', ...args]);
    } catch (e) {
      if (e instanceof TraceUsageError) {
        io.stderr(`ERROR: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    return runTrace(a, { text, filename: file }, io);
  },
};
