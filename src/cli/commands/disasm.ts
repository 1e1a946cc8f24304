import { basename } from 'node:path';
import { TsbpfError } from '../../errors.js';
import { disassemble, disassembleObject, formatInsn } from '../../isa/disasm.js';
import { decode } from '../../isa/insn.js';
import { codeSections, isElf, readElf } from '../../object/elf.js';
import { type Command, helpOption, parseCommandArgs, toHex } from '../command.js';
import { readInput } from '../files.js';

export const disasmCommand: Command = {
  name: 'disasm',
  summary: 'disassemble raw bytecode or an ELF object in LLVM syntax, laid out like llvm-objdump -d',
  usage: `Usage: tsbpf disasm FILE [--section NAME] [--alu32] [--no-raw] [--json]

FILE is an eBPF ELF object (every executable section, each function under its symbol, as
'llvm-objdump -d' prints it) or raw little-endian bytecode ('-' for standard input).
  --section NAME  only this section of an object
  --alu32         print 32-bit loads and stores with w registers (llvm-objdump --mcpu=v3 and later)
  --no-raw        leave out the raw instruction bytes
  --json          print [{ "section", "insns": [{ "pc", "bytes", "text" }] }]
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...helpOption,
        section: { type: 'string' },
        alu32: { type: 'boolean' },
        'no-raw': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      { min: 1, max: 1 },
    );
    const path = positionals[0]!;
    const bytes = path === '-' ? await io.readStdin() : readInput(path);
    const format = { alu32: values.alu32 ?? false, rawBytes: !values['no-raw'] };

    let sections: { name: string; data: Uint8Array; symbols: { name: string; value: number }[] }[];
    let bigEndian = false;
    if (isElf(bytes)) {
      const elf = readElf(bytes);
      bigEndian = elf.bigEndian;
      sections = codeSections(elf);
      if (values.section !== undefined) {
        sections = sections.filter((s) => s.name === values.section);
        if (sections.length === 0)
          throw new TsbpfError('usage', `${path} has no code section '${values.section}'`);
      }
    } else {
      if (values.section !== undefined) throw new TsbpfError('usage', '--section needs an ELF object');
      sections = [{ name: '', data: bytes, symbols: [] }];
    }

    if (values.json) {
      const out = sections.map((s) => ({
        section: s.name,
        insns: decode(s.data, { bigEndian }).map((insn) => ({
          pc: insn.pc,
          bytes: toHex(s.data.subarray(insn.pc * 8, insn.pc * 8 + (insn.imm2 === undefined ? 8 : 16)), ''),
          text: formatInsn(insn, format),
          ...(insn.problem ? { problem: insn.problem } : {}),
        })),
      }));
      io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    } else if (isElf(bytes)) {
      io.stdout(disassembleObject(sections, { ...format, bigEndian, fileName: basename(path) }));
    } else {
      io.stdout(disassemble(bytes, format));
    }
    return 0;
  },
};
