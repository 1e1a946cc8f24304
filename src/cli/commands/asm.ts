import { TsbpfError } from '../../errors.js';
import { toHex } from '../../hex.js';
import { assemble } from '../../isa/asm/index.js';
import { encode } from '../../isa/insn.js';
import { type Command, helpOption, parseCommandArgs } from '../command.js';
import { readText, writeOutput } from '../files.js';

export const asmCommand: Command = {
  name: 'asm',
  summary: 'assemble eBPF assembly (LLVM or conformance syntax) into bytecode',
  usage: `Usage: tsbpf asm FILE [--syntax llvm|conformance] [-o FILE] [--json]

Assembles FILE ('-' for standard input) into little-endian eBPF bytecode.
  --syntax S   llvm (default): LLVM's BPF syntax, as llvm-objdump prints it ('r0 = 1', 'if r1 > 5 goto +2')
               conformance: the uBPF/bpf_conformance dialect ('mov32 %r0, 0', 'ldxb %r0, [%r1+2]')
  -o FILE      write the bytecode to FILE ('-' for standard output); without -o, print it as hex,
               one 8-byte slot a line
  --json       print { "insns": [...], "bytes": "hex" }
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...helpOption,
        syntax: { type: 'string', default: 'llvm' },
        output: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
      },
      { min: 1, max: 1 },
    );
    const syntax = values.syntax;
    if (syntax !== 'llvm' && syntax !== 'conformance') {
      throw new TsbpfError('usage', `--syntax must be 'llvm' or 'conformance', not '${syntax}'`);
    }
    const path = positionals[0]!;
    const source = path === '-' ? new TextDecoder().decode(await io.readStdin()) : readText(path);
    const insns = assemble(source, { syntax });
    const bytes = encode(insns);
    if (values.output === '-') {
      io.stdoutBytes(bytes);
    } else if (values.output !== undefined) {
      writeOutput(values.output, bytes);
    } else if (values.json) {
      io.stdout(`${JSON.stringify({ insns, bytes: toHex(bytes, '') }, null, 2)}\n`);
    } else {
      for (let i = 0; i < bytes.length; i += 8) io.stdout(`${toHex(bytes.subarray(i, i + 8))}\n`);
    }
    return 0;
  },
};
