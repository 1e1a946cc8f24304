/**
 * An ELF64 reader (little and big endian): the header, section headers with their names and bytes, the
 * symbol table and the relocation sections. It is the base of the objects layer and knows nothing of BPF
 * beyond a few constants. Every malformed input is refused with a TsbpfError('object') that says what is
 * wrong; nothing else escapes, and every loop is bounded by the file's size.
 */
import { TsbpfError } from '../errors.js';

// Section types.
export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHT_SYMTAB_SHNDX = 18;
// Section flags.
export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;
// Symbol types, bindings and visibilities.
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STT_FILE = 4;
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;
export const STV_DEFAULT = 0;
export const STV_INTERNAL = 1;
export const STV_HIDDEN = 2;
export const STV_PROTECTED = 3;
// Special section indexes.
export const SHN_UNDEF = 0;
export const SHN_LORESERVE = 0xff00;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
export const SHN_XINDEX = 0xffff;
// Header values.
export const ET_REL = 1;
export const EM_BPF = 247;

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const REL_SIZE = 16;
const RELA_SIZE = 24;

export interface ElfHeader {
  bigEndian: boolean;
  osabi: number;
  /** e_type: ET_REL (1) for a clang-built eBPF object. */
  type: number;
  /** e_machine: EM_BPF (247) for eBPF. */
  machine: number;
  version: number;
  entry: number;
  flags: number;
  /** Index of the section-name string table. */
  shstrndx: number;
}

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
  /** The section's bytes: a view into the file (empty for SHT_NOBITS). */
  data: Uint8Array;
}

export interface ElfSymbol {
  /** Index in .symtab (relocations refer to symbols by it). */
  index: number;
  name: string;
  value: number;
  size: number;
  /** STT_* */
  type: number;
  /** STB_* */
  bind: number;
  /** STV_* */
  visibility: number;
  /** Section index, or SHN_UNDEF / SHN_ABS / SHN_COMMON. */
  shndx: number;
  /** Name of the section the symbol is defined in, when it is defined in one. */
  sectionName?: string;
}

export interface ElfRelocation {
  offset: number;
  /** Relocation type (R_BPF_* for eBPF). */
  type: number;
  /** Index of the symbol in .symtab. */
  symbol: number;
  /** The symbol's name (for a section symbol: the section's name). */
  symbolName: string;
  /** Explicit addend of SHT_RELA entries; 0 for SHT_REL. */
  addend: number;
}

export interface ElfRelocationSection {
  /** The SHT_REL / SHT_RELA section itself. */
  section: ElfSection;
  /** Index of the section the relocations apply to (sh_info). */
  target: number;
  rela: boolean;
  entries: ElfRelocation[];
}

export interface ElfFile {
  bytes: Uint8Array;
  bigEndian: boolean;
  header: ElfHeader;
  /** Every section, index 0 (the null section) included. */
  sections: ElfSection[];
  /** The symbols of .symtab, index 0 (the null symbol) included; empty without a symbol table. */
  symbols: ElfSymbol[];
  relocations: ElfRelocationSection[];
}

function fail(message: string): never {
  throw new TsbpfError('object', message);
}

class Reader {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly le: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(at: number, len: number, what: string): void {
    if (at < 0 || len < 0 || at + len > this.bytes.length) {
      fail(
        `${what} (bytes ${at}..${at + len}) extends past the end of the file (${this.bytes.length} bytes)`,
      );
    }
  }
  u8(at: number): number {
    return this.view.getUint8(at);
  }
  u16(at: number): number {
    return this.view.getUint16(at, this.le);
  }
  u32(at: number): number {
    return this.view.getUint32(at, this.le);
  }
  /** An unsigned 64-bit field as a number; refuses values JavaScript numbers cannot hold exactly. */
  u64(at: number, what: string): number {
    const v = this.view.getBigUint64(at, this.le);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} is too large (0x${v.toString(16)})`);
    return Number(v);
  }
  i64(at: number, what: string): number {
    const v = this.view.getBigInt64(at, this.le);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      fail(`${what} is out of range (${v})`);
    }
    return Number(v);
  }
}

const utf8 = new TextDecoder('utf-8');

/** A NUL-terminated string at `offset` of a string table section. */
function stringAt(strtab: ElfSection, offset: number, what: string): string {
  const data = strtab.data;
  if (offset >= data.length) {
    if (offset === 0 && data.length === 0) return '';
    fail(
      `${what}: name offset ${offset} is outside the string table '${strtab.name}' (${data.length} bytes)`,
    );
  }
  const end = data.indexOf(0, offset);
  if (end < 0) fail(`${what}: name at offset ${offset} of '${strtab.name}' is not NUL-terminated`);
  return utf8.decode(data.subarray(offset, end));
}

function readHeader(bytes: Uint8Array): {
  header: ElfHeader;
  r: Reader;
  shoff: number;
  shnum: number;
  shentsize: number;
} {
  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    fail('not an ELF file (bad magic; expected 7f 45 4c 46)');
  }
  if (bytes.length < EHDR_SIZE) fail(`truncated ELF header: ${bytes.length} bytes, need ${EHDR_SIZE}`);
  if (bytes[4] !== 2) fail(`not an ELF64 file (EI_CLASS is ${bytes[4]}, expected 2)`);
  if (bytes[5] !== 1 && bytes[5] !== 2)
    fail(`bad ELF data encoding (EI_DATA is ${bytes[5]}, expected 1 or 2)`);
  if (bytes[6] !== 1) fail(`unsupported ELF version ${bytes[6]}`);
  const bigEndian = bytes[5] === 2;
  const r = new Reader(bytes, !bigEndian);
  const header: ElfHeader = {
    bigEndian,
    osabi: bytes[7],
    type: r.u16(16),
    machine: r.u16(18),
    version: r.u32(20),
    entry: r.u64(24, 'e_entry'),
    flags: r.u32(48),
    shstrndx: r.u16(62),
  };
  const phoff = r.u64(32, 'e_phoff');
  const ehsize = r.u16(52);
  const phentsize = r.u16(54);
  const phnum = r.u16(56);
  const shoff = r.u64(40, 'e_shoff');
  const shentsize = r.u16(58);
  let shnum = r.u16(60);
  if (ehsize !== 0 && ehsize < EHDR_SIZE)
    fail(`bad e_ehsize ${ehsize} (an ELF64 header is ${EHDR_SIZE} bytes)`);
  if (phnum > 0)
    r.need(phoff, phnum * phentsize, `program header table (${phnum} entries of ${phentsize} bytes)`);
  if (shoff === 0) {
    if (shnum !== 0) fail(`e_shnum is ${shnum} but there is no section header table (e_shoff is 0)`);
    return { header, r, shoff, shnum: 0, shentsize };
  }
  if (shentsize !== SHDR_SIZE)
    fail(`bad e_shentsize ${shentsize} (ELF64 section headers are ${SHDR_SIZE} bytes)`);
  r.need(shoff, SHDR_SIZE, 'section header table');
  if (shnum === 0) {
    // Extended numbering: the real count is in the null section's sh_size.
    shnum = r.u64(shoff + 32, 'extended section count');
    if (shnum === 0) fail('section header table has no entries');
  }
  if (header.shstrndx === SHN_XINDEX) header.shstrndx = r.u32(shoff + 40);
  if (shnum > Math.floor((bytes.length - shoff) / SHDR_SIZE)) {
    fail(
      `section header table (${shnum} entries at offset ${shoff}) extends past the end of the file (${bytes.length} bytes)`,
    );
  }
  return { header, r, shoff, shnum, shentsize };
}

function readSections(r: Reader, shoff: number, shnum: number, shstrndx: number): ElfSection[] {
  const sections: ElfSection[] = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * SHDR_SIZE;
    const what = `section ${i}`;
    const s: ElfSection = {
      index: i,
      name: '',
      type: r.u32(at + 4),
      flags: r.u64(at + 8, `${what} sh_flags`),
      addr: r.u64(at + 16, `${what} sh_addr`),
      offset: r.u64(at + 24, `${what} sh_offset`),
      size: r.u64(at + 32, `${what} sh_size`),
      link: r.u32(at + 40),
      info: r.u32(at + 44),
      addralign: r.u64(at + 48, `${what} sh_addralign`),
      entsize: r.u64(at + 56, `${what} sh_entsize`),
      data: new Uint8Array(0),
    };
    if (i === 0) s.size = 0; // with extended numbering the null section's size is the section count
    if (s.type !== SHT_NOBITS && s.type !== SHT_NULL) {
      r.need(s.offset, s.size, `${what} data`);
      s.data = r.bytes.subarray(s.offset, s.offset + s.size);
    }
    sections.push(s);
  }
  if (shnum === 0) return sections;
  if (shstrndx === SHN_UNDEF) return sections; // no section names
  if (shstrndx >= shnum) fail(`e_shstrndx ${shstrndx} is not a section (there are ${shnum})`);
  const shstrtab = sections[shstrndx];
  if (shstrtab.type !== SHT_STRTAB)
    fail(`e_shstrndx ${shstrndx} is not a string table (type ${shstrtab.type})`);
  for (const s of sections) {
    if (s.index === 0) continue;
    s.name = stringAt(shstrtab, r.u32(shoff + s.index * SHDR_SIZE), `section ${s.index}`);
  }
  return sections;
}

function sectionRef(sections: ElfSection[], index: number, what: string): ElfSection {
  if (index <= 0 || index >= sections.length)
    fail(`${what} refers to section ${index}, but there are ${sections.length}`);
  return sections[index];
}

function checkTable(s: ElfSection, entsize: number, kind: string): number {
  if (s.entsize !== entsize)
    fail(`${kind} section '${s.name}' has entry size ${s.entsize}, expected ${entsize}`);
  if (s.size % entsize !== 0)
    fail(`${kind} section '${s.name}' size ${s.size} is not a multiple of ${entsize}`);
  return s.size / entsize;
}

function readSymbols(r: Reader, sections: ElfSection[]): ElfSymbol[] {
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (symtab === undefined) return [];
  const count = checkTable(symtab, SYM_SIZE, 'symbol table');
  const strtab = sectionRef(sections, symtab.link, `symbol table '${symtab.name}' sh_link`);
  if (strtab.type !== SHT_STRTAB)
    fail(`symbol table '${symtab.name}' links to '${strtab.name}', which is not a string table`);
  const xindex = sections.find((s) => s.type === SHT_SYMTAB_SHNDX && s.link === symtab.index);
  const symbols: ElfSymbol[] = [];
  for (let i = 0; i < count; i++) {
    const at = symtab.offset + i * SYM_SIZE;
    const what = `symbol ${i}`;
    const info = r.u8(at + 4);
    const sym: ElfSymbol = {
      index: i,
      name: stringAt(strtab, r.u32(at), what),
      value: r.u64(at + 8, `${what} value`),
      size: r.u64(at + 16, `${what} size`),
      type: info & 0xf,
      bind: info >> 4,
      visibility: r.u8(at + 5) & 0x3,
      shndx: r.u16(at + 6),
    };
    if (sym.shndx === SHN_XINDEX) {
      if (xindex === undefined || (i + 1) * 4 > xindex.size)
        fail(`${what} uses SHN_XINDEX without an SHT_SYMTAB_SHNDX entry`);
      sym.shndx = r.u32(xindex.offset + i * 4);
    }
    if (sym.shndx !== SHN_UNDEF && (sym.shndx < SHN_LORESERVE || sym.shndx > SHN_XINDEX)) {
      sym.sectionName = sectionRef(sections, sym.shndx, `${what} ('${sym.name}')`).name;
      if (sym.type === STT_SECTION && sym.name === '') sym.name = sym.sectionName;
    }
    symbols.push(sym);
  }
  return symbols;
}

function readRelocations(r: Reader, sections: ElfSection[], symbols: ElfSymbol[]): ElfRelocationSection[] {
  const out: ElfRelocationSection[] = [];
  for (const s of sections) {
    if (s.type !== SHT_REL && s.type !== SHT_RELA) continue;
    const rela = s.type === SHT_RELA;
    const kind = rela ? 'SHT_RELA' : 'SHT_REL';
    const count = checkTable(s, rela ? RELA_SIZE : REL_SIZE, kind);
    const target = sectionRef(sections, s.info, `relocation section '${s.name}' sh_info`);
    if (s.link !== 0) {
      const linked = sectionRef(sections, s.link, `relocation section '${s.name}' sh_link`);
      if (linked.type !== SHT_SYMTAB)
        fail(`relocation section '${s.name}' links to '${linked.name}', which is not the symbol table`);
    }
    const entries: ElfRelocation[] = [];
    for (let i = 0; i < count; i++) {
      const at = s.offset + i * (rela ? RELA_SIZE : REL_SIZE);
      const what = `relocation ${i} of '${s.name}'`;
      const offset = r.u64(at, `${what} offset`);
      const infoLo = r.u32(at + (r.le ? 8 : 12));
      const infoHi = r.u32(at + (r.le ? 12 : 8));
      if (infoHi >= symbols.length && !(infoHi === 0 && symbols.length === 0)) {
        fail(`${what} refers to symbol ${infoHi}, but the symbol table has ${symbols.length}`);
      }
      entries.push({
        offset,
        type: infoLo,
        symbol: infoHi,
        symbolName: symbols[infoHi]?.name ?? '',
        addend: rela ? r.i64(at + 16, `${what} addend`) : 0,
      });
    }
    out.push({ section: s, target: target.index, rela, entries });
  }
  return out;
}

/** Reads an ELF64 file. Throws TsbpfError('object') naming the problem when the bytes are not a sound ELF64 file. */
export function readElf(bytes: Uint8Array): ElfFile {
  if (!(bytes instanceof Uint8Array)) throw new TsbpfError('usage', 'readElf expects a Uint8Array');
  const { header, r, shoff, shnum } = readHeader(bytes);
  const sections = readSections(r, shoff, shnum, header.shstrndx);
  const symbols = readSymbols(r, sections);
  const relocations = readRelocations(r, sections, symbols);
  return { bytes, bigEndian: header.bigEndian, header, sections, symbols, relocations };
}

/** The first section with this name, or undefined. */
export function sectionByName(elf: ElfFile, name: string): ElfSection | undefined {
  return elf.sections.find((s) => s.name === name && s.index !== 0);
}

function sectionIndex(elf: ElfFile, section: ElfSection | string | number): number | undefined {
  if (typeof section === 'number') return section;
  if (typeof section === 'string') return sectionByName(elf, section)?.index;
  return section.index;
}

/** Symbols defined in a section (by section, name or index), in table order; all symbols when none is given. */
export function symbolsOf(elf: ElfFile, section?: ElfSection | string | number): ElfSymbol[] {
  if (section === undefined) return elf.symbols.slice(1);
  const index = sectionIndex(elf, section);
  if (index === undefined) return [];
  return elf.symbols.filter((s) => s.index !== 0 && s.shndx === index);
}

/** The relocations that apply to a section (from every SHT_REL/SHT_RELA section targeting it). */
export function relocationsFor(elf: ElfFile, section: ElfSection | string | number): ElfRelocation[] {
  const index = sectionIndex(elf, section);
  if (index === undefined) return [];
  return elf.relocations.filter((r) => r.target === index).flatMap((r) => r.entries);
}

/** Executable (SHF_EXECINSTR) sections with the symbols defined in each: what a disassembler walks. */
export function codeSections(
  elf: ElfFile,
): { name: string; index: number; data: Uint8Array; symbols: ElfSymbol[] }[] {
  return elf.sections
    .filter((s) => s.index !== 0 && s.type === SHT_PROGBITS && (s.flags & SHF_EXECINSTR) !== 0)
    .map((s) => ({ name: s.name, index: s.index, data: s.data, symbols: symbolsOf(elf, s.index) }));
}

/** True when the bytes start with the ELF magic (a cheap test for "object file or raw bytecode?"). */
export function isElf(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46
  );
}
