/**
 * The `tsbpf` command. Subcommands mirror the tools eBPF people know (bpftool's words, llvm-objdump's
 * layout); each lives in commands/ and is listed in COMMANDS.
 */
import { isTsbpfError } from '../errors.js';
import type { Command, Io } from './command.js';
import { asmCommand } from './commands/asm.js';
import { btfCommand } from './commands/btf.js';
import { conformanceCommand, conformancePluginCommand } from './commands/conformance.js';
import { disasmCommand } from './commands/disasm.js';
import { featureCommand } from './commands/feature.js';
import { linkCommand } from './commands/link.js';
import { loadCommand } from './commands/load.js';
import { mapCommand } from './commands/map.js';
import { objectCommand } from './commands/object.js';
import { progCommand } from './commands/prog.js';
import { runCommand } from './commands/run.js';
import { runRawCommand } from './commands/run-raw.js';
import { toolCommand } from './commands/tool.js';
import { traceCommand } from './commands/trace.js';
import { verifyCommand } from './commands/verify.js';

const COMMANDS: readonly Command[] = [
  asmCommand,
  disasmCommand,
  objectCommand,
  btfCommand,
  verifyCommand,
  runCommand,
  runRawCommand,
  traceCommand,
  toolCommand,
  progCommand,
  mapCommand,
  linkCommand,
  featureCommand,
  loadCommand,
  conformanceCommand,
  conformancePluginCommand,
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: tsbpf COMMAND [ARGS...]',
    '',
    'eBPF for TypeScript: assemble, disassemble, verify, run, load and trace eBPF programs.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'tsbpf COMMAND --help' for a command's options.",
    '',
  ].join('\n');
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.stdout('tsbpf 0.1.0\n');
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr(`tsbpf: unknown command '${name}'\n\n${overview()}`);
    return 2;
  }
  if (!command.ownHelp && (rest.includes('--help') || rest.includes('-h'))) {
    io.stdout(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    if (isTsbpfError(e)) {
      if (e.code === 'usage') {
        io.stderr(`tsbpf ${command.name}: ${e.message}\n\n${command.usage}`);
        return 2;
      }
      io.stderr(`tsbpf ${command.name}: ${e.message}\n`);
      return 1;
    }
    io.stderr(`tsbpf ${command.name}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 70;
  }
}
