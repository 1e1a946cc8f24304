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

/** Parses space-separated or contiguous hex bytes ("aa bb", "aabb", "0xaa 0xbb"). */
export function parseHexBytes(text: string, what: string): Uint8Array {
  const cleaned = text
    .trim()
    .split(/[\s,]+/)
    .filter((t) => t.length > 0)
    .map((t) => t.replace(/^0x/i, ''));
  const joined = cleaned.every((t) => t.length <= 2)
    ? cleaned.map((t) => t.padStart(2, '0')).join('')
    : cleaned.join('');
  if (joined.length % 2 !== 0 || /[^0-9a-f]/i.test(joined)) {
    throw new TsbpfError(
      'usage',
      `${what} is not hexadecimal bytes: '${text.length > 40 ? `${text.slice(0, 40)}...` : text}'`,
    );
  }
  const out = new Uint8Array(joined.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(joined.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array, sep = ' '): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(sep);
}
