import { basename } from 'node:path';
import { parseBtfExt } from '../../btf/ext.js';
import { parseBtf } from '../../btf/parse.js';
import { TsbpfError } from '../../errors.js';
import { toHex } from '../../hex.js';
import {
  type DisasmLineInfo,
  disassemble,
  disassembleLines,
  disassembleObject,
  formatInsn,
} from '../../isa/disasm.js';
import { decode } from '../../isa/insn.js';
import { codeSections, type ElfFile, isElf, readElf, STT_FUNC, sectionByName } from '../../object/elf.js';
import { programByName, readObject } from '../../object/spec.js';
import { type Command, helpOption, parseCommandArgs } from '../command.js';
import { readInput } from '../files.js';

export const disasmCommand: Command = {
  name: 'disasm',
  summary: 'disassemble raw bytecode or an ELF object in LLVM syntax, laid out like llvm-objdump -d',
  usage: `Usage: tsbpf disasm FILE [--section NAME | --prog NAME] [--alu32] [--no-raw] [-S] [--json]

FILE is an eBPF ELF object (every executable section, each function under its symbol, as
'llvm-objdump -d' prints it) or raw little-endian bytecode ('-' for standard input).
  --section NAME  only this section of an object
  --prog NAME     the program NAME of an object as the loader links it: its subprograms appended,
                  calls and map references shown with tsbpf's lossless forms ('call pc+0x5',
                  'r1 = map_idx(0x0) ll')
  --alu32         print 32-bit loads and stores with w registers (llvm-objdump --mcpu=v3 and later)
  --no-raw        leave out the raw instruction bytes
  -S, --source    interleave the C source lines recorded in the object's .BTF.ext line info, as
                  'llvm-objdump -S' does (which reads them from the source files through DWARF)
  --json          print [{ "section", "insns": [{ "pc", "bytes", "text" }] }]
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...helpOption,
        section: { type: 'string' },
        prog: { type: 'string' },
        alu32: { type: 'boolean' },
        'no-raw': { type: 'boolean' },
        source: { type: 'boolean', short: 'S' },
        json: { type: 'boolean' },
      },
      { min: 1, max: 1 },
    );
    const path = positionals[0]!;
    const bytes = path === '-' ? await io.readStdin() : readInput(path);
    const format = { alu32: values.alu32 ?? false, rawBytes: !values['no-raw'] };

    if (values.prog !== undefined) {
      if (!isElf(bytes)) throw new TsbpfError('usage', '--prog needs an ELF object');
      if (values.section !== undefined)
        throw new TsbpfError('usage', '--prog and --section exclude each other');
      io.stdout(linkedProgramText(bytes, path, values.prog, { ...format, source: values.source ?? false }));
      return 0;
    }

    let sections: {
      name: string;
      data: Uint8Array;
      symbols: { name: string; value: number }[];
      lineInfo?: DisasmLineInfo[];
    }[];
    let bigEndian = false;
    if (isElf(bytes)) {
      const elf = readElf(bytes);
      bigEndian = elf.bigEndian;
      sections = codeSections(elf);
      if (values.source) {
        const lines = sourceLines(elf);
        sections = sections.map((s) => ({ ...s, lineInfo: lines.get(s.name) ?? [] }));
      }
      if (values.section !== undefined) {
        sections = sections.filter((s) => s.name === values.section);
        if (sections.length === 0)
          throw new TsbpfError('usage', `${path} has no code section '${values.section}'`);
      }
    } else {
      if (values.section !== undefined) throw new TsbpfError('usage', '--section needs an ELF object');
      if (values.source)
        throw new TsbpfError('usage', '--source needs an ELF object with .BTF.ext line info');
      sections = [{ name: '', data: bytes, symbols: [] }];
    }

    if (values.json) {
      const out = sections.map((s) => {
        const source = new Map((s.lineInfo ?? []).map((r) => [r.insnOff / 8, r]));
        return {
          section: s.name,
          insns: decode(s.data, { bigEndian }).map((insn) => {
            const src = source.get(insn.pc);
            return {
              pc: insn.pc,
              bytes: toHex(
                s.data.subarray(insn.pc * 8, insn.pc * 8 + (insn.imm2 === undefined ? 8 : 16)),
                '',
              ),
              text: formatInsn(insn, format),
              ...(insn.problem ? { problem: insn.problem } : {}),
              ...(src ? { source: { file: src.fileName, line: src.lineNum, text: src.line } } : {}),
            };
          }),
        };
      });
      io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    } else if (isElf(bytes)) {
      io.stdout(disassembleObject(sections, { ...format, bigEndian, fileName: basename(path) }));
    } else {
      io.stdout(disassemble(bytes, format));
    }
    return 0;
  },
};

/** One program of an object as the loader links it, laid out like llvm-objdump with a header per function. */
function linkedProgramText(
  bytes: Uint8Array,
  path: string,
  name: string,
  options: { alu32: boolean; rawBytes: boolean; source: boolean },
): string {
  const spec = readObject(bytes, { path });
  const prog = programByName(spec, name);
  const lines = disassembleLines(prog.insns, {
    alu32: options.alu32,
    rawBytes: options.rawBytes,
    lossless: true,
    bigEndian: spec.bigEndian,
    symbols: prog.functions.map((f) => ({ name: f.name, value: f.start * 8, type: STT_FUNC })),
    lineInfo: options.source
      ? prog.lineInfo.map((l) => ({
          insnOff: l.pc * 8,
          line: l.line,
          fileName: l.fileName,
          lineNum: l.lineNum,
        }))
      : undefined,
  });
  return `${basename(path)}: program ${prog.name} (${prog.type ?? 'unknown type'}, SEC("${prog.section}"))\n\n${lines.join('\n')}\n`;
}

/** The .BTF.ext line info of an object, by code section (empty when the object has none). */
function sourceLines(elf: ElfFile): Map<string, DisasmLineInfo[]> {
  const out = new Map<string, DisasmLineInfo[]>();
  const btfSec = sectionByName(elf, '.BTF');
  const extSec = sectionByName(elf, '.BTF.ext');
  if (btfSec === undefined || extSec === undefined) return out;
  const ext = parseBtfExt(extSec.data, parseBtf(btfSec.data));
  for (const part of ext.lineInfo) {
    out.set(part.section, [...(out.get(part.section) ?? []), ...part.records]);
  }
  return out;
}
