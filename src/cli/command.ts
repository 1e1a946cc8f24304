/**
 * The shape every `tsbpf` subcommand has, and the argument parsing they share.
 * Wrong usage is a TsbpfError('usage'), which main turns into exit status 2 and the command's usage text.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { TsbpfError } from '../errors.js';

export interface Io {
  stdout: (text: string) => void;
  stdoutBytes: (bytes: Uint8Array) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<Uint8Array>;
}

export interface Command {
  name: string;
  summary: string;
  /** Full help text: synopsis line first, then options. */
  usage: string;
  /** The command reads -h/--help itself (its arguments pass through to a script or tool). */
  ownHelp?: boolean;
  /** Returns the process exit status. */
  run(argv: string[], io: Io): Promise<number>;
}

/** A command as main lists it: what the overview prints, and the module to import when the command runs. */
export interface CommandEntry {
  name: string;
  summary: string;
  /** As Command.ownHelp (known before the module loads). */
  ownHelp?: boolean;
  load(): Promise<Command>;
}

export type Options = NonNullable<ParseArgsConfig['options']>;
export type ParsedArgs<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

/** parseArgs with `--help` added and parse failures turned into usage errors. */
export function parseCommandArgs<O extends Options>(
  argv: string[],
  options: O,
  positionals: { min: number; max: number },
): ParsedArgs<O> {
  let parsed: ParsedArgs<O>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new TsbpfError('usage', (e as Error).message);
  }
  const count = parsed.positionals.length;
  if (count < positionals.min) throw new TsbpfError('usage', 'missing argument');
  if (count > positionals.max)
    throw new TsbpfError('usage', `unexpected argument '${parsed.positionals[positionals.max]}'`);
  return parsed;
}

export const helpOption = { help: { type: 'boolean', short: 'h' } } as const;
