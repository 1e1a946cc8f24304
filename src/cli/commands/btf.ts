/**
 * `tsbpf btf`: bpftool's `btf dump file PATH [format raw|c]` (same words, same output), plus `btf core OBJ`,
 * which applies an object's CO-RE relocations against a target BTF and reports them as libbpf would.
 */
import type { Btf } from '../../btf/btf.js';
import {
  applyObjectCoreRelocations,
  type CoreSection,
  coreReportJson,
  formatCoreReport,
} from '../../btf/core.js';
import { dumpBtfC } from '../../btf/dump-c.js';
import { dumpBtfJson, dumpBtfRaw } from '../../btf/dump-raw.js';
import { parseBtfExt } from '../../btf/ext.js';
import { parseBtf } from '../../btf/parse.js';
import { TsbpfError } from '../../errors.js';
import { formatInsn } from '../../isa/disasm.js';
import { decode } from '../../isa/insn.js';
import { codeSections, type ElfFile, isElf, readElf, STT_FUNC, sectionByName } from '../../object/elf.js';
import { type Command, helpOption, parseCommandArgs } from '../command.js';
import { readInput } from '../files.js';

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

/** The `.BTF` section of an ELF object. */
function elfBtf(elf: ElfFile, path: string): { btf: Btf; ext: Uint8Array | undefined } {
  const sec = sectionByName(elf, '.BTF');
  if (sec === undefined) throw new TsbpfError('btf', `${path} has no .BTF section`);
  return { btf: parseBtf(sec.data), ext: sectionByName(elf, '.BTF.ext')?.data };
}

/**
 * Reads BTF from PATH: a raw BTF file (like /sys/kernel/btf/vmlinux) or an ELF object's .BTF section.
 * Module BTF under /sys/kernel/btf/ is split BTF on top of vmlinux, which is then read as its base, as
 * bpftool does; `base` names the base explicitly (bpftool's `--base-btf`).
 */
export function readBtfFile(path: string, base?: string): Btf {
  const bytes = readInput(path);
  let baseBtf: Btf | undefined;
  if (base !== undefined) baseBtf = readBtfFile(base);
  else if (path.startsWith('/sys/kernel/btf/') && path !== VMLINUX_BTF) baseBtf = readBtfFile(VMLINUX_BTF);
  if (isElf(bytes)) {
    const elf = readElf(bytes);
    const sec = sectionByName(elf, '.BTF');
    if (sec === undefined) throw new TsbpfError('btf', `${path} has no .BTF section`);
    return parseBtf(sec.data, { base: baseBtf });
  }
  return parseBtf(bytes, { base: baseBtf });
}

/** The code sections of an object with their functions, decoded, for applyObjectCoreRelocations. */
export function objectCoreSections(elf: ElfFile): CoreSection[] {
  return codeSections(elf).map((s) => ({
    name: s.name,
    insns: decode(s.data, { bigEndian: elf.bigEndian }),
    programs: s.symbols
      .filter((y) => y.type === STT_FUNC)
      .map((y) => ({ name: y.name, slot: Number(y.value) / 8, slots: Number(y.size) / 8 })),
  }));
}

/** Applies an ELF object's CO-RE relocations against `target` (see btf/core.ts). */
export function relocateObjectFile(bytes: Uint8Array, target: Btf, path = 'object', strict = false) {
  const elf = readElf(bytes);
  const { btf, ext } = elfBtf(elf, path);
  const coreRelos = ext === undefined ? [] : parseBtfExt(ext, btf).coreRelos;
  return applyObjectCoreRelocations(objectCoreSections(elf), coreRelos, btf, target, {
    strict,
    targetName: 'vmlinux',
  });
}

const USAGE = `Usage: tsbpf btf dump file PATH [format raw|c] [--base-btf FILE] [--json]
       tsbpf btf core OBJ [--target FILE] [--log] [--json]

btf dump file: print the BTF of PATH as 'bpftool btf dump file PATH' does. PATH is raw BTF (such as
${VMLINUX_BTF}) or an ELF object, whose .BTF section is read.
  format raw      one type a line, with ids (the default)
  format c        C declarations: a vmlinux.h
  --base-btf FILE base BTF of split BTF (module BTF under /sys/kernel/btf/ gets vmlinux by default)
  --json, -j      bpftool's JSON ({"types": [...]}); raw format only

btf core: apply the CO-RE relocations of OBJ (its .BTF.ext core_relo records) against a target BTF, the
way libbpf does when it loads the object, and report each one: the local and target access specs, the
candidates, the value before and after, and poisoned instructions.
  --target FILE   target BTF (default ${VMLINUX_BTF}, the running kernel's)
  --log           print libbpf's debug lines instead (what 'bpftool -d prog load' shows)
  --json          [{ "section", "relocations": [...] }]
`;

export const btfCommand: Command = {
  name: 'btf',
  summary: 'dump BTF like bpftool (raw, C, JSON); apply CO-RE relocations against a target BTF',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...helpOption,
        json: { type: 'boolean', short: 'j' },
        'base-btf': { type: 'string', short: 'B' },
        target: { type: 'string' },
        log: { type: 'boolean' },
      },
      { min: 1, max: 5 },
    );
    const [verb, ...rest] = positionals;
    if (verb === 'dump') {
      if (rest[0] !== 'file') {
        throw new TsbpfError(
          'usage',
          rest[0] === undefined
            ? "expected 'file PATH'"
            : `unsupported source '${rest[0]}' (only 'file PATH')`,
        );
      }
      const path = rest[1];
      if (path === undefined) throw new TsbpfError('usage', "expected a path after 'file'");
      let format = 'raw';
      if (rest.length > 2) {
        if (rest[2] !== 'format' || rest.length !== 4)
          throw new TsbpfError('usage', `unexpected '${rest.slice(2).join(' ')}' (expected 'format raw|c')`);
        format = rest[3];
        if (format !== 'raw' && format !== 'c')
          throw new TsbpfError('usage', `unknown format '${format}' (expected raw or c)`);
      }
      const btf = readBtfFile(path, values['base-btf']);
      if (format === 'c') io.stdout(dumpBtfC(btf));
      else if (values.json) io.stdout(dumpBtfJson(btf));
      else io.stdout(dumpBtfRaw(btf));
      return 0;
    }
    if (verb === 'core') {
      if (rest.length !== 1) throw new TsbpfError('usage', 'expected one object file');
      const path = rest[0];
      const target = readBtfFile(values.target ?? VMLINUX_BTF);
      const result = relocateObjectFile(readInput(path), target, path, false);
      if (values.log) {
        io.stdout(result.log.map((l) => `${l}\n`).join(''));
      } else if (values.json) {
        const out = result.sections.map((s) => ({
          section: s.section,
          relocations: s.relocations.map((r) => ({
            ...coreReportJson(r),
            before: formatInsn(r.before),
            after: r.after.map((i) => formatInsn(i)),
          })),
        }));
        io.stdout(`${JSON.stringify(out, null, 2)}\n`);
      } else {
        for (const s of result.sections) {
          io.stdout(`section ${s.section}: ${s.relocations.length} CO-RE relocations\n`);
          io.stdout(formatCoreReport(s.relocations));
        }
      }
      const failed = result.sections.flatMap((s) => s.relocations).filter((r) => r.error !== undefined);
      if (failed.length > 0) {
        io.stderr(`tsbpf btf: ${failed.length} relocation(s) failed; libbpf would refuse to load ${path}\n`);
        return 1;
      }
      return 0;
    }
    throw new TsbpfError('usage', `unknown subcommand '${verb}' (expected 'dump' or 'core')`);
  },
};
