/**
 * The `tsbpf` command. Subcommands mirror the tools eBPF people know (bpftool's words, llvm-objdump's
 * layout); each lives in commands/ and is listed in COMMANDS.
 */
import { isTsbpfError } from '../errors.js';
import type { Command, CommandEntry, Io } from './command.js';

/**
 * Every command, cheaply: name and summary for the overview, and the module that implements it, imported only
 * when the command runs (so `tsbpf trace` does not compile the verifier, the VM and bpftool's commands).
 * test/cli.test.ts checks each entry against the module's own Command.
 */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'asm',
    summary: 'assemble eBPF assembly (LLVM or conformance syntax) into bytecode',
    load: async () => (await import('./commands/asm.js')).asmCommand,
  },
  {
    name: 'disasm',
    summary: 'disassemble raw bytecode or an ELF object in LLVM syntax, laid out like llvm-objdump -d',
    load: async () => (await import('./commands/disasm.js')).disasmCommand,
  },
  {
    name: 'object',
    summary: 'summarise an eBPF ELF object: programs, maps, global variables, externs (as libbpf opens it)',
    load: async () => (await import('./commands/object.js')).objectCommand,
  },
  {
    name: 'btf',
    summary: 'dump BTF like bpftool (raw, C, JSON); apply CO-RE relocations against a target BTF',
    load: async () => (await import('./commands/btf.js')).btfCommand,
  },
  {
    name: 'verify',
    summary: "check programs with tsbpf's verifier, the way the kernel's verifier would (no root needed)",
    load: async () => (await import('./commands/verify.js')).verifyCommand,
  },
  {
    name: 'run',
    summary: 'run a packet program of an object in the VM (BPF_PROG_TEST_RUN semantics)',
    load: async () => (await import('./commands/run.js')).runCommand,
  },
  {
    name: 'run-raw',
    summary: 'run raw eBPF bytecode on the embedded VM and print r0',
    load: async () => (await import('./commands/run-raw.js')).runRawCommand,
  },
  {
    name: 'trace',
    summary: "run a bpftrace program (bpftrace's language and output, compiled without LLVM)",
    ownHelp: true,
    load: async () => (await import('./commands/trace.js')).traceCommand,
  },
  {
    name: 'tool',
    summary: 'run a tracing tool (execsnoop, opensnoop, runqlat, syscount...)',
    ownHelp: true,
    load: async () => (await import('./commands/tool.js')).toolCommand,
  },
  {
    name: 'prog',
    summary: "inspect and manage programs in the kernel (bpftool's prog)",
    load: async () => (await import('./commands/prog.js')).progCommand,
  },
  {
    name: 'map',
    summary: "inspect and manage maps in the kernel (bpftool's map)",
    load: async () => (await import('./commands/map.js')).mapCommand,
  },
  {
    name: 'link',
    summary: "inspect and manage links in the kernel (bpftool's link)",
    load: async () => (await import('./commands/link.js')).linkCommand,
  },
  {
    name: 'feature',
    summary: "probe which program types, map types and helpers this kernel has (bpftool's feature probe)",
    load: async () => (await import('./commands/feature.js')).featureCommand,
  },
  {
    name: 'load',
    summary: 'load an object into the kernel, attach its programs by SEC() name and print its ring buffers',
    load: async () => (await import('./commands/load.js')).loadCommand,
  },
  {
    name: 'conformance',
    summary: "run bpf_conformance '.data' tests on the embedded VM",
    load: async () => (await import('./commands/conformance.js')).conformanceCommand,
  },
  {
    name: 'conformance-plugin',
    summary: "bpf_conformance's plugin protocol: program hex on stdin, r0 in hex on stdout",
    load: async () => (await import('./commands/conformance.js')).conformancePluginCommand,
  },
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
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    io.stderr(`tsbpf: unknown command '${name}'\n\n${overview()}`);
    return 2;
  }
  const command: Command = await entry.load();
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
