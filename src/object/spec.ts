/**
 * readObject: a clang-built eBPF ELF object → ObjectSpec, following libbpf's bpf_object__open (and the
 * relocation and subprogram linking it does before load): programs with their SEC()-derived types,
 * linked instructions and BTF func/line info; maps (BTF-defined, legacy, global data, .kconfig);
 * global variables; externs; license and kernel version. Backend-neutral: no fds, no system calls.
 * Every malformed input is refused with TsbpfError('object') saying what is wrong and where.
 */
import type { Btf } from '../btf/btf.js';
import { type BtfExt, parseBtfExt } from '../btf/ext.js';
import { parseBtf } from '../btf/parse.js';
import type { BtfType } from '../btf/types.js';
import { ATTACH_TYPES } from '../catalog/attach-types.js';
import { programTypeById } from '../catalog/program-types.js';
import { type AttachTarget, matchSection, type SectionFlag } from '../catalog/sections.js';
import { isTsbpfError, TsbpfError } from '../errors.js';
import { type DecodedInsn, decode } from '../isa/insn.js';
import { OPCODE_LD_IMM64 } from '../isa/opcodes.js';
import {
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
  EM_BPF,
  ET_REL,
  readElf,
  SHF_EXECINSTR,
  SHN_LORESERVE,
  SHN_UNDEF,
  SHT_NOBITS,
  SHT_PROGBITS,
  SHT_STRTAB,
  SHT_SYMTAB,
  STB_GLOBAL,
  STB_LOCAL,
  STB_WEAK,
  STT_FUNC,
  STT_NOTYPE,
  STT_SECTION,
} from './elf.js';
import { collectExterns, type ExternSpec } from './externs.js';
import {
  findFunction,
  type InsnReference,
  isCallInsn,
  linkProgram,
  type PlacedFunction,
  type RawFunction,
  type Reloc,
} from './link.js';
import {
  type BtfMapVar,
  internalMap,
  isMapInMap,
  isProgArray,
  type MapSpec,
  objectError,
  readBtfMaps,
  readLegacyMaps,
} from './maps.js';

export type { ExternSpec, KconfigType } from './externs.js';
export type { InsnReference, PlacedFunction } from './link.js';
export { internalMapName, type MapKind, type MapSlot, type MapSpec } from './maps.js';

/** R_BPF_* relocation types. */
export const R_BPF_NONE = 0;
export const R_BPF_64_64 = 1;
export const R_BPF_64_ABS64 = 2;
export const R_BPF_64_ABS32 = 3;
export const R_BPF_64_NODYLD32 = 4;
export const R_BPF_64_32 = 10;

/** A BTF func_info record of a linked program. */
export interface FuncInfo {
  /** Slot index in ProgramSpec.insns. */
  pc: number;
  /** BTF FUNC type id. */
  typeId: number;
  name: string;
}

/** A BTF line_info record of a linked program: the C source line an instruction came from. */
export interface LineInfo {
  pc: number;
  fileName: string;
  /** The source line's text. */
  line: string;
  lineNum: number;
  col: number;
}

/** A CO-RE relocation record of a linked program (not applied here: see the btf/ CO-RE code). */
export interface CoreRelo {
  pc: number;
  typeId: number;
  accessStr: string;
  kind: number;
  kindName: string;
}

export interface ProgramSpec {
  /** The function's symbol name (the kernel keeps its first 15 characters). */
  name: string;
  /** SEC() name, without a leading '?'. */
  section: string;
  /** False for `SEC("?...")`: libbpf opens but does not load it unless asked. */
  autoload: boolean;
  /** Program type from the catalog (`xdp`, `sched_cls`...); undefined when libbpf knows no such SEC(). */
  type: string | undefined;
  /** `enum bpf_prog_type` value (0 when unknown). */
  typeId: number;
  /** Expected attach type name, undefined when the section gives none. */
  attachType: string | undefined;
  attachTypeId: number;
  /** What the section name says to attach to (tracepoint, kprobe function, uprobe binary...). */
  attachTarget: AttachTarget | undefined;
  /** Set when the section spells a target libbpf's auto-attach would refuse. */
  attachTargetError?: string;
  /** The SEC() table entry that matched (`tracepoint+`, `xdp`...). */
  sectionDef: string | undefined;
  sectionFlags: readonly SectionFlag[];
  /** Linked instructions: the entry function, then the subprograms it reaches, as libbpf appends them. */
  insns: DecodedInsn[];
  /** Length in 8-byte slots (what the kernel counts; LD_IMM64 is two). */
  slotCount: number;
  /** The functions in insns, entry first. */
  functions: PlacedFunction[];
  references: InsnReference[];
  funcInfo: FuncInfo[];
  lineInfo: LineInfo[];
  coreRelos: CoreRelo[];
  /** Byte offset of the entry function in its section, and its symbol binding. */
  sectionOffset: number;
  global: boolean;
}

/** A global variable: a slice of a global-data map. */
export interface VariableSpec {
  name: string;
  section: string;
  /** Name of the map holding it (`<obj>.rodata`...). */
  map: string;
  offset: number;
  size: number;
  /** BTF VAR's type id (0 without BTF). */
  typeId: number;
  /** C spelling of the type when BTF is available (`const volatile __u32`). */
  type: string | undefined;
  linkage: 'static' | 'global';
  /** In a read-only section (`const volatile`): settable before load, fixed after. */
  readonly: boolean;
}

/** A `.text` function, callable from programs. */
export interface SubprogramSpec {
  name: string;
  sectionOffset: number;
  slotCount: number;
  global: boolean;
}

export interface ObjectSpec {
  /** Object name (file name up to its first '.'), the prefix of internal map names. */
  name: string;
  bigEndian: boolean;
  /** Contents of the `license` section ('' when absent). */
  license: string;
  /** The `version` section (0 when absent). */
  kernelVersion: number;
  programs: ProgramSpec[];
  subprograms: SubprogramSpec[];
  /** In libbpf's order (legacy, `.maps`, global data by section, `.kconfig`): indexes are what MAP_IDX insns use. */
  maps: MapSpec[];
  variables: VariableSpec[];
  externs: ExternSpec[];
  btf: Btf | undefined;
  btfExt: BtfExt | undefined;
  /** Things libbpf would log and carry on past (corrupted .BTF.ext, skipped sections...). */
  warnings: string[];
}

export interface ReadObjectOptions {
  /** Object name; default: derived from `path` like libbpf (basename up to the first '.'), else ''. */
  name?: string;
  /** File the bytes came from (for the default name). */
  path?: string;
  /** Page size for rounding ring buffer sizes (default 4096). */
  pageSize?: number;
}

/** libbpf's object name: the file's basename cut at its first '.'. */
export function objectNameFromPath(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.indexOf('.');
  return (dot < 0 ? base : base.slice(0, dot)).slice(0, 15);
}

type SecType = 'data' | 'rodata' | 'bss';

function dataSectionType(s: ElfSection): SecType | undefined {
  const n = s.name;
  if (s.type === SHT_PROGBITS && (s.flags & SHF_EXECINSTR) === 0) {
    if (n === '.data' || n.startsWith('.data.')) return 'data';
    if (n === '.rodata' || n.startsWith('.rodata.')) return 'rodata';
  }
  if (s.type === SHT_NOBITS && (n === '.bss' || n.startsWith('.bss.'))) return 'bss';
  return undefined;
}

const isCode = (s: ElfSection) => s.type === SHT_PROGBITS && (s.flags & SHF_EXECINSTR) !== 0 && s.size > 0;

function symbolName(sym: ElfSymbol): string {
  return sym.name !== '' ? sym.name : (sym.sectionName ?? '<?>');
}

/** A C spelling of a BTF type, enough to show a variable's declaration. */
export function cTypeName(btf: Btf, id: number, depth = 0): string {
  if (depth > 32) return '...';
  const t = btf.types[id];
  if (t === undefined) return `<bad type ${id}>`;
  switch (t.kind) {
    case 'UNKN':
      return 'void';
    case 'INT':
    case 'FLOAT':
    case 'TYPEDEF':
      return t.name;
    case 'STRUCT':
    case 'UNION':
    case 'ENUM':
    case 'ENUM64':
      return `${t.kind === 'UNION' ? 'union' : t.kind === 'STRUCT' ? 'struct' : 'enum'}${t.name ? ` ${t.name}` : ' {...}'}`;
    case 'FWD':
      return `${t.fwdKind} ${t.name}`;
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT':
      return `${t.kind.toLowerCase()} ${cTypeName(btf, t.type, depth + 1)}`;
    case 'TYPE_TAG':
      return cTypeName(btf, t.type, depth + 1);
    case 'PTR':
      return `${cTypeName(btf, t.type, depth + 1)} *`;
    case 'ARRAY':
      return `${cTypeName(btf, t.type, depth + 1)}[${t.nelems}]`;
    case 'FUNC_PROTO':
      return 'function';
    default:
      return t.kind.toLowerCase();
  }
}

/** Reads an eBPF ELF object as libbpf opens it. Throws TsbpfError('object') for anything it cannot read. */
export function readObject(bytes: Uint8Array, options: ReadObjectOptions = {}): ObjectSpec {
  try {
    return read(bytes, options);
  } catch (e) {
    if (isTsbpfError(e) && e.code !== 'object' && e.code !== 'usage') throw objectError(e.message);
    throw e;
  }
}

function read(bytes: Uint8Array, options: ReadObjectOptions): ObjectSpec {
  const elf = readElf(bytes);
  const pageSize = options.pageSize ?? 4096;
  const name = options.name ?? (options.path !== undefined ? objectNameFromPath(options.path) : '');
  const { header } = elf;
  if (header.type !== ET_REL || (header.machine !== 0 && header.machine !== EM_BPF))
    throw objectError(
      `not an eBPF object file (e_type ${header.type}, e_machine ${header.machine}; expected ET_REL and EM_BPF)`,
    );
  const symtabs = elf.sections.filter((s) => s.type === SHT_SYMTAB);
  if (symtabs.length === 0) throw objectError("couldn't find symbol table, stripped object file?");
  if (symtabs.length > 1) throw objectError('multiple symbol tables');
  const warnings: string[] = [];

  // Sections, as bpf_object__elf_collect sorts them.
  let license = '';
  let kernelVersion = 0;
  let mapsSec: ElfSection | undefined;
  let legacySec: ElfSection | undefined;
  let btfSec: ElfSection | undefined;
  let btfExtSec: ElfSection | undefined;
  let textSec: ElfSection | undefined;
  const codeSecs: ElfSection[] = [];
  const dataSecs: { s: ElfSection; type: SecType }[] = [];
  for (const s of elf.sections) {
    if (s.index === 0 || s.type === SHT_SYMTAB || s.type === SHT_STRTAB) continue;
    const n = s.name;
    if (n.startsWith('.debug_') || n.startsWith('.rel.debug_')) continue;
    if (n === 'license') {
      const end = s.data.indexOf(0);
      license = new TextDecoder().decode(end < 0 ? s.data : s.data.subarray(0, end));
    } else if (n === 'version') {
      if (s.size !== 4) throw objectError(`invalid 'version' section: ${s.size} bytes, expected 4`);
      kernelVersion = new DataView(s.data.buffer, s.data.byteOffset, 4).getUint32(0, !elf.bigEndian);
    } else if (n === 'maps') {
      legacySec = s;
    } else if (n === '.maps') {
      mapsSec = s;
    } else if (n === '.BTF') {
      if (s.type !== SHT_PROGBITS)
        throw objectError(`.BTF section has type ${s.type}, expected SHT_PROGBITS`);
      btfSec = s;
    } else if (n === '.BTF.ext') {
      btfExtSec = s;
    } else if (isCode(s)) {
      if (n === '.text') textSec = s;
      codeSecs.push(s);
    } else if (s.size > 0 && dataSectionType(s)) {
      dataSecs.push({ s, type: dataSectionType(s) as SecType });
    } else if (
      s.type === SHT_PROGBITS &&
      s.size > 0 &&
      (n.startsWith('.struct_ops') || n.startsWith('?.struct_ops'))
    ) {
      warnings.push(`section '${n}': struct_ops maps are not read yet`);
    }
  }

  // BTF: optional unless maps or externs need it (libbpf ignores a corrupted .BTF otherwise).
  let btf: Btf | undefined;
  let btfExt: BtfExt | undefined;
  let btfError: string | undefined;
  if (btfSec) {
    try {
      btf = parseBtf(btfSec.data);
    } catch (e) {
      if (!isTsbpfError(e)) throw e;
      btfError = e.message;
      warnings.push(`.BTF: ${e.message} (ignored)`);
    }
  }
  if (btf) fixupDatasecs(btf, elf);
  if (btf && btfExtSec) {
    try {
      btfExt = parseBtfExt(btfExtSec.data, btf);
    } catch (e) {
      if (!isTsbpfError(e)) throw e;
      warnings.push(`.BTF.ext: ${e.message} (ignored)`);
    }
  }
  const needBtf = (why: string): Btf => {
    if (btf) return btf;
    throw objectError(`${why} needs BTF, but it is ${btfError ? `corrupted: ${btfError}` : 'missing'}`);
  };

  // Functions of every code section (bpf_object__add_programs).
  const funcsBySec = new Map<number, RawFunction[]>();
  for (const s of codeSecs) {
    const list: RawFunction[] = [];
    for (const sym of elf.symbols) {
      if (sym.index === 0 || sym.shndx !== s.index || sym.type !== STT_FUNC) continue;
      const off = sym.value;
      const size = sym.size;
      if (off + size > s.size)
        throw objectError(
          `section '${s.name}': program '${sym.name}' at offset ${off} crosses section boundary`,
        );
      if (off % 8 !== 0 || size % 8 !== 0)
        throw objectError(
          `section '${s.name}': program '${sym.name}' (offset ${off}, ${size} bytes) is not made of whole instructions`,
        );
      if (s !== textSec && sym.bind === STB_LOCAL)
        throw objectError(`section '${s.name}': program '${sym.name}' is static and not supported`);
      if (sym.name === '') throw objectError(`section '${s.name}': program at offset ${off} has no name`);
      const insns = decode(s.data.subarray(off, off + size), { bigEndian: elf.bigEndian });
      list.push({
        name: sym.name,
        section: s.name,
        sectionIndex: s.index,
        secInsnOff: off / 8,
        slotCount: size / 8,
        insns,
        byPc: new Map(insns.map((i) => [i.pc, i])),
        relocs: new Map(),
        global: sym.bind !== STB_LOCAL,
      });
    }
    list.sort((a, b) => a.secInsnOff - b.secInsnOff);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1];
      if (list[i].secInsnOff < prev.secInsnOff + prev.slotCount)
        throw objectError(`section '${s.name}': functions '${prev.name}' and '${list[i].name}' overlap`);
    }
    funcsBySec.set(s.index, list);
  }
  const textFuncs = textSec ? (funcsBySec.get(textSec.index) ?? []) : [];

  // Maps, in libbpf's order: legacy `maps`, `.maps`, global data by section, `.kconfig`.
  const maps: MapSpec[] = [];
  if (legacySec) {
    const syms = elf.symbols.filter(
      (s) => s.index !== 0 && s.shndx === legacySec.index && s.type !== STT_SECTION,
    );
    maps.push(
      ...readLegacyMaps(
        legacySec.data,
        syms.map((s) => ({ name: symbolName(s), value: s.value })),
        elf.bigEndian,
        pageSize,
      ),
    );
  }
  let btfMaps: BtfMapVar[] = [];
  if (mapsSec) {
    btfMaps = readBtfMaps(needBtf("section '.maps'"), { name: '.maps', size: mapsSec.size }, pageSize);
    maps.push(...btfMaps.map((m) => m.map));
  }
  const dataMapIndex = new Map<number, number>();
  for (const { s, type } of dataSecs) {
    dataMapIndex.set(s.index, maps.length);
    maps.push(internalMap(name, type, s.name, s.size, s.type === SHT_NOBITS ? undefined : s.data, btf));
  }
  const seen = new Set<string>();
  for (const m of maps) {
    if (seen.has(m.name)) throw objectError(`duplicate map name '${m.name}'`);
    seen.add(m.name);
  }

  // Externs.
  const externSyms = elf.symbols.filter(
    (s) =>
      s.index !== 0 &&
      s.shndx === SHN_UNDEF &&
      (s.bind === STB_GLOBAL || s.bind === STB_WEAK) &&
      s.type === STT_NOTYPE,
  );
  const { externs, kconfigSize } = collectExterns(
    externSyms.map((s) => ({ index: s.index, name: s.name, weak: s.bind === STB_WEAK })),
    externSyms.some((s) => s.name !== '')
      ? needBtf(`extern '${externSyms.find((s) => s.name !== '')?.name}'`)
      : btf,
  );
  let kconfigMapIndex = -1;
  if (kconfigSize > 0) {
    kconfigMapIndex = maps.length;
    maps.push(internalMap(name, 'kconfig', '.kconfig', kconfigSize, undefined, btf));
  }
  const externBySym = new Map(externs.map((e) => [e.symbol, e]));

  // Program relocations (bpf_object__collect_prog_relos + bpf_program__record_reloc).
  for (const rs of elf.relocations) {
    const target = elf.sections[rs.target];
    if (target.name === '.maps' || !isCode(target)) continue;
    const relName = rs.section.name;
    const funcs = funcsBySec.get(target.index) ?? [];
    rs.entries.forEach((rel, i) => {
      const sym = elf.symbols[rel.symbol];
      const sname = symbolName(sym);
      const where = `section '${target.name}' (${relName} #${i}) offset ${rel.offset} against '${sname}'`;
      if (rel.offset % 8 !== 0 || rel.offset >= target.size)
        throw objectError(`${where}: invalid relocation offset`);
      if (rel.type !== R_BPF_64_64 && rel.type !== R_BPF_64_32)
        throw objectError(`${where}: unsupported relocation type ${rel.type} in a code section`);
      const idx = rel.offset / 8;
      const f = findFunction(funcs, idx);
      if (!f) return; // libbpf: no program covers it (an overridden weak function); skipped
      const pc = idx - f.secInsnOff;
      const insn = f.byPc.get(pc);
      if (!insn || (!isCallInsn(insn) && insn.code !== OPCODE_LD_IMM64))
        throw objectError(
          `${where}: relocation of insn #${pc} of '${f.name}' (code 0x${(insn?.code ?? 0).toString(16)}), which is neither a call nor an LD_IMM64`,
        );
      const reloc = recordReloc(elf, sym, sname, insn, where);
      f.relocs.set(pc, reloc);
    });
  }

  function recordReloc(e: ElfFile, sym: ElfSymbol, sname: string, insn: DecodedInsn, where: string): Reloc {
    const isExtern =
      sym.shndx === SHN_UNDEF &&
      (sym.bind === STB_GLOBAL || sym.bind === STB_WEAK) &&
      sym.type === STT_NOTYPE;
    if (isExtern) {
      const ext = externBySym.get(sym.index);
      if (!ext) throw objectError(`${where}: extern relocation failed to find the extern`);
      if (ext.ksym?.func && !isCallInsn(insn))
        throw objectError(`${where}: kfunc '${ext.name}' is not called`);
      if (ext.kind === 'kconfig' && isCallInsn(insn))
        throw objectError(`${where}: kconfig extern '${ext.name}' is called`);
      return isCallInsn(insn) ? { type: 'extern_call', ext } : { type: 'extern_ld', ext };
    }
    if (isCallInsn(insn)) {
      if (insn.src !== 1) throw objectError(`${where}: incorrect bpf_call opcode (src_reg ${insn.src})`);
      if (!textSec || sym.shndx !== textSec.index)
        throw objectError(`${where}: bad call relocation: '${sname}' is not in '.text'`);
      if (sym.value % 8 !== 0)
        throw objectError(`${where}: bad call relocation at symbol offset ${sym.value}`);
      return { type: 'call', symOff: sym.value, symbol: sname };
    }
    if (sym.shndx === SHN_UNDEF || sym.shndx >= SHN_LORESERVE)
      throw objectError(
        `${where}: relocation against a symbol in special section 0x${sym.shndx.toString(16)}; forgot to initialize a global variable?`,
      );
    const isSubprog =
      textSec !== undefined &&
      sym.shndx === textSec.index &&
      ((sym.bind === STB_LOCAL && sym.type === STT_SECTION) ||
        (sym.bind === STB_GLOBAL && sym.type === STT_FUNC));
    if (isSubprog) {
      if (sym.value % 8 !== 0 || insn.imm % 8 !== 0)
        throw objectError(`${where}: bad subprogram address relocation at offset ${sym.value}+${insn.imm}`);
      insn.src = 4; // BPF_PSEUDO_FUNC: libbpf marks the instruction so it is recognised as a callback address
      return { type: 'subprog_addr', symOff: sym.value, symbol: sname };
    }
    const sec = e.sections[sym.shndx];
    if (sec === mapsSec || sec === legacySec) {
      const kind = sec === mapsSec ? 'btf' : 'legacy';
      const mapIndex = maps.findIndex((m) => m.kind === kind && m.sectionOffset === sym.value);
      if (mapIndex < 0)
        throw objectError(
          `${where}: map relocation failed to find a map at offset ${sym.value} of '${sec.name}'`,
        );
      return { type: 'map', mapIndex, symbol: sname };
    }
    const mapIndex = dataMapIndex.get(sym.shndx);
    if (mapIndex === undefined)
      throw objectError(`${where}: bad data relocation against section '${sec.name}'`);
    return { type: 'data', mapIndex, symOff: sym.value, symbol: sname };
  }

  // `.maps` relocations: initial values of prog arrays and map-in-maps (bpf_object__collect_map_relos).
  const entryFuncs = codeSecs.filter((s) => s !== textSec).flatMap((s) => funcsBySec.get(s.index) ?? []);
  if (mapsSec) {
    for (const rs of elf.relocations) {
      if (rs.target !== mapsSec.index) continue;
      rs.entries.forEach((rel, i) => {
        const sym = elf.symbols[rel.symbol];
        const sname = symbolName(sym);
        const where = `.maps relocation #${i} (offset ${rel.offset}, symbol '${sname}')`;
        if (rel.type !== R_BPF_64_ABS64 && rel.type !== R_BPF_64_64)
          throw objectError(`${where}: unsupported relocation type ${rel.type}`);
        const owner = btfMaps.find((m) => m.offset <= rel.offset && rel.offset + 8 <= m.offset + m.size);
        if (!owner) throw objectError(`${where}: cannot find the map it belongs to`);
        const map = owner.map;
        let slot: { kind: 'map' | 'program'; name: string };
        if (isMapInMap(map.typeId)) {
          if (sym.shndx !== mapsSec.index) throw objectError(`${where}: '${sname}' isn't a BTF-defined map`);
          if (map.typeId === 13 && map.keySize !== 4)
            throw objectError(`${where}: hash-of-maps '${map.name}' should have key size 4`);
          const targ = btfMaps.find((m) => m.map.name === sname);
          if (!targ) throw objectError(`${where}: '${sname}' isn't a valid map reference`);
          slot = { kind: 'map', name: sname };
        } else if (isProgArray(map.typeId)) {
          const prog = entryFuncs.find((f) => f.name === sname);
          if (!prog) throw objectError(`${where}: '${sname}' isn't a valid program reference`);
          if (prog.sectionIndex !== sym.shndx || prog.secInsnOff * 8 !== sym.value)
            throw objectError(`${where}: '${sname}' isn't an entry-point program`);
          slot = { kind: 'program', name: sname };
        } else {
          throw objectError(`${where}: map '${map.name}' (${map.type}) cannot have initial values`);
        }
        const def = owner.def;
        const last = def.kind === 'STRUCT' ? def.members[def.members.length - 1] : undefined;
        if (last?.name !== 'values' || !last)
          throw objectError(`${where}: map '${map.name}' has no 'values' member`);
        const moff = last.bitOffset / 8;
        const rel0 = rel.offset - owner.offset;
        if (rel0 < moff || (rel0 - moff) % 8 !== 0)
          throw objectError(`${where}: offset is not a slot of map '${map.name}' values`);
        const index = (rel0 - moff) / 8;
        map.initialSlots ??= [];
        const slots = map.initialSlots;
        while (slots.length <= index) slots.push(null);
        slots[index] = slot;
      });
    }
  }

  // Programs: every non-.text function, sorted by section and offset, linked with its subprograms.
  const ctx = { text: textFuncs, maps, kconfigMapIndex };
  const programs: ProgramSpec[] = entryFuncs
    .sort((a, b) => a.sectionIndex - b.sectionIndex || a.secInsnOff - b.secInsnOff)
    .map((f) => buildProgram(f, ctx, btf, btfExt));

  return {
    name,
    bigEndian: elf.bigEndian,
    license,
    kernelVersion,
    programs,
    subprograms: textFuncs.map((f) => ({
      name: f.name,
      sectionOffset: f.secInsnOff * 8,
      slotCount: f.slotCount,
      global: f.global,
    })),
    maps,
    variables: readVariables(elf, maps, dataSecs, btf),
    externs,
    btf,
    btfExt,
    warnings,
  };
}

/**
 * libbpf's btf_fixup_datasec: clang leaves DATASEC sizes and variable offsets 0 in objects; the
 * section's size and each global variable's ELF symbol value are the truth.
 */
function fixupDatasecs(btf: Btf, elf: ElfFile): void {
  for (const t of btf.types) {
    if (t.kind !== 'DATASEC') continue;
    if (t.name === '.kconfig' || t.name === '.ksyms') continue;
    const sec = elf.sections.find((s) => s.index !== 0 && s.name === t.name);
    if (!sec) continue;
    if (t.size === 0) t.size = sec.size;
    for (const vi of t.vars) {
      const v = btf.types[vi.type];
      if (v?.kind !== 'VAR' || v.linkage !== 1) continue;
      const sym = elf.symbols.find(
        (s) =>
          s.index !== 0 &&
          s.type === 1 /* STT_OBJECT */ &&
          (s.bind === STB_GLOBAL || s.bind === STB_WEAK) &&
          s.name === v.name,
      );
      if (!sym) throw objectError(`failed to find symbol for variable '${v.name}' in section '${t.name}'`);
      vi.offset = sym.value;
    }
  }
}

function buildProgram(
  f: RawFunction,
  ctx: Parameters<typeof linkProgram>[1],
  btf: Btf | undefined,
  btfExt: BtfExt | undefined,
): ProgramSpec {
  const autoload = !f.section.startsWith('?');
  const section = autoload ? f.section : f.section.slice(1);
  const match = matchSection(section);
  const linked = linkProgram(f, ctx);
  const funcInfo: FuncInfo[] = [];
  const lineInfo: LineInfo[] = [];
  const coreRelos: CoreRelo[] = [];
  if (btfExt) {
    for (const pf of linked.functions) {
      const map = <R extends { insnOff: number }, O>(
        parts: { section: string; records: R[] }[],
        into: O[],
        make: (pc: number, r: R) => O,
      ) => {
        for (const part of parts) {
          if (part.section !== pf.section) continue;
          for (const r of part.records) {
            const idx = r.insnOff / 8;
            if (idx >= pf.secInsnOff && idx < pf.secInsnOff + pf.slotCount)
              into.push(make(idx - pf.secInsnOff + pf.start, r));
          }
        }
      };
      map(btfExt.funcInfo, funcInfo, (pc, r) => ({
        pc,
        typeId: r.typeId,
        name: btf?.types[r.typeId]?.name ?? '',
      }));
      map(btfExt.lineInfo, lineInfo, (pc, r) => ({
        pc,
        fileName: r.fileName,
        line: r.line,
        lineNum: r.lineNum,
        col: r.col,
      }));
      map(btfExt.coreRelos, coreRelos, (pc, r) => ({
        pc,
        typeId: r.typeId,
        accessStr: r.accessStr,
        kind: r.kind,
        kindName: r.kindName,
      }));
    }
    const byPc = <T extends { pc: number }>(a: T, b: T) => a.pc - b.pc;
    funcInfo.sort(byPc);
    lineInfo.sort(byPc);
    coreRelos.sort(byPc);
  }
  const typeId = match?.progTypeId ?? 0;
  const spec: ProgramSpec = {
    name: f.name,
    section,
    autoload,
    type: match ? programTypeById(typeId)?.name : undefined,
    typeId,
    attachType: match && match.def.attachType !== null ? ATTACH_TYPES[match.attachTypeId] : undefined,
    attachTypeId: match?.attachTypeId ?? 0,
    attachTarget: match?.target,
    sectionDef: match?.def.sec,
    sectionFlags: match?.def.flags ?? [],
    insns: linked.insns,
    slotCount: linked.functions.reduce((n, p) => n + p.slotCount, 0),
    functions: linked.functions,
    references: linked.references,
    funcInfo,
    lineInfo,
    coreRelos,
    sectionOffset: f.secInsnOff * 8,
    global: f.global,
  };
  if (match?.targetError !== undefined) spec.attachTargetError = match.targetError;
  return spec;
}

function readVariables(
  elf: ElfFile,
  maps: readonly MapSpec[],
  dataSecs: readonly { s: ElfSection; type: SecType }[],
  btf: Btf | undefined,
): VariableSpec[] {
  const out: VariableSpec[] = [];
  for (const { s, type } of dataSecs) {
    const map = maps.find((m) => m.kind === type && m.section === s.name);
    if (!map) continue;
    const readonly = type === 'rodata';
    const datasecId = btf?.findAllByName(s.name, 'DATASEC')[0];
    const datasec = datasecId === undefined ? undefined : btf?.types[datasecId];
    if (btf && datasec?.kind === 'DATASEC') {
      for (const vi of datasec.vars) {
        const v: BtfType | undefined = btf.types[vi.type];
        if (v?.kind !== 'VAR') continue;
        if (vi.offset + vi.size > s.size)
          throw objectError(`variable '${v.name}' lies outside section '${s.name}'`);
        out.push({
          name: v.name,
          section: s.name,
          map: map.name,
          offset: vi.offset,
          size: vi.size,
          typeId: v.type,
          type: cTypeName(btf, v.type),
          linkage: v.linkage === 0 ? 'static' : 'global',
          readonly,
        });
      }
    } else {
      for (const sym of elf.symbols) {
        if (sym.index === 0 || sym.shndx !== s.index || sym.type !== 1 /* STT_OBJECT */) continue;
        if (sym.value + sym.size > s.size)
          throw objectError(`variable '${sym.name}' lies outside section '${s.name}'`);
        out.push({
          name: sym.name,
          section: s.name,
          map: map.name,
          offset: sym.value,
          size: sym.size,
          typeId: 0,
          type: undefined,
          linkage: sym.bind === STB_LOCAL ? 'static' : 'global',
          readonly,
        });
      }
    }
  }
  return out;
}

/** The program with this name (TsbpfError('usage') when there is none). */
export function programByName(spec: ObjectSpec, name: string): ProgramSpec {
  const p = spec.programs.find((x) => x.name === name);
  if (!p)
    throw new TsbpfError(
      'usage',
      `no program '${name}' (have: ${spec.programs.map((x) => x.name).join(', ')})`,
    );
  return p;
}

/** The map with this name (TsbpfError('usage') when there is none). */
export function mapByName(spec: ObjectSpec, name: string): MapSpec {
  const m = spec.maps.find((x) => x.name === name);
  if (!m)
    throw new TsbpfError('usage', `no map '${name}' (have: ${spec.maps.map((x) => x.name).join(', ')})`);
  return m;
}

export type VariableValue = number | bigint | boolean | Uint8Array;

/**
 * Sets the initial value of a global variable (in its map's `data`) before the object is loaded.
 * Numbers and bigints are written in the object's byte order over the variable's size (1, 2, 4 or 8
 * bytes); a Uint8Array is copied and zero-padded to the size. Throws TsbpfError('usage') for an
 * unknown variable or a value that does not fit.
 */
export function setVariable(spec: ObjectSpec, name: string, value: VariableValue): void {
  const matches = spec.variables.filter((v) => v.name === name);
  if (matches.length === 0) throw new TsbpfError('usage', `no global variable '${name}'`);
  if (matches.length > 1)
    throw new TsbpfError(
      'usage',
      `variable '${name}' is ambiguous (in ${matches.map((v) => v.section).join(', ')})`,
    );
  const v = matches[0];
  const map = spec.maps.find((m) => m.name === v.map);
  if (!map?.data) throw new TsbpfError('usage', `variable '${name}' has no initial data to set`);
  const dst = map.data.subarray(v.offset, v.offset + v.size);
  if (value instanceof Uint8Array) {
    if (value.length > v.size)
      throw new TsbpfError(
        'usage',
        `value for '${name}' is ${value.length} bytes; the variable has ${v.size}`,
      );
    dst.fill(0);
    dst.set(value);
    return;
  }
  const n =
    typeof value === 'boolean' ? (value ? 1n : 0n) : typeof value === 'bigint' ? value : BigInt(value);
  if (typeof value === 'number' && !Number.isInteger(value))
    throw new TsbpfError('usage', `value for '${name}' must be an integer`);
  if (v.size !== 1 && v.size !== 2 && v.size !== 4 && v.size !== 8)
    throw new TsbpfError('usage', `variable '${name}' is ${v.size} bytes: set it with a Uint8Array`);
  const bits = BigInt(v.size * 8);
  if (n < -(1n << (bits - 1n)) || n >= 1n << bits)
    throw new TsbpfError('usage', `value ${n} does not fit variable '${name}' (${v.size} bytes)`);
  let u = BigInt.asUintN(Number(bits), n);
  for (let i = 0; i < v.size; i++) {
    dst[spec.bigEndian ? v.size - 1 - i : i] = Number(u & 0xffn);
    u >>= 8n;
  }
}

/** Sets a `const volatile` variable (one in `.rodata*`) before load, like a skeleton's `rodata->x = ...`. */
export function setConstant(spec: ObjectSpec, name: string, value: VariableValue): void {
  const v = spec.variables.find((x) => x.name === name && x.readonly);
  if (!v) {
    const other = spec.variables.find((x) => x.name === name);
    throw new TsbpfError(
      'usage',
      other
        ? `'${name}' is not a constant (it is in ${other.section}); use setVariable`
        : `no constant '${name}'`,
    );
  }
  setVariable(spec, name, value);
}

/** Reads a variable's current initial value (the bytes setVariable writes). */
export function variableBytes(spec: ObjectSpec, name: string): Uint8Array {
  const v = spec.variables.find((x) => x.name === name);
  const map = v && spec.maps.find((m) => m.name === v.map);
  if (!v || !map?.data) throw new TsbpfError('usage', `no global variable '${name}'`);
  return map.data.slice(v.offset, v.offset + v.size);
}
