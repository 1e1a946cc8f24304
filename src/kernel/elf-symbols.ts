/**
 * The function symbols of a native ELF64 binary, an executable or shared library that uprobes attach to:
 * .symtab first, then .dynsym, in table order, with version suffixes (`srand@@GLIBC_2.2.5`) cut off. One
 * reader for uprobe attachment (file offsets, as libbpf's elf_sym_offset computes them) and for tsbpf
 * trace's probe listing and uprobe checks (names, addresses, sizes). eBPF objects go through object/elf.ts.
 */

const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const SHT_NOBITS = 8;
const SHF_ALLOC = 2;
export const STT_FUNC = 2;
export const STT_GNU_IFUNC = 10;

export interface ElfFunctionSymbol {
  name: string;
  /** STT_FUNC or STT_GNU_IFUNC. */
  type: number;
  addr: bigint;
  size: bigint;
  /** Where the function's code is in the file: its address within its section, plus the section's offset. */
  fileOffset: number;
}

/** The defined, named function symbols; undefined when the bytes are not a 64-bit ELF file. */
export function readFunctionSymbols(bytes: Uint8Array): ElfFunctionSymbol[] | undefined {
  if (bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[4] !== 2) return undefined;
  const le = bytes[5] === 1;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(dv.getBigUint64(0x28, le));
  const shentsize = dv.getUint16(0x3a, le);
  const shnum = dv.getUint16(0x3c, le);
  if (shoff + shnum * shentsize > bytes.length) return undefined;
  const secs = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return {
      type: dv.getUint32(o + 4, le),
      flags: Number(dv.getBigUint64(o + 8, le)),
      addr: Number(dv.getBigUint64(o + 16, le)),
      offset: Number(dv.getBigUint64(o + 24, le)),
      size: Number(dv.getBigUint64(o + 32, le)),
      link: dv.getUint32(o + 40, le),
    };
  });
  const out: ElfFunctionSymbol[] = [];
  const dec = new TextDecoder();
  for (const want of [SHT_SYMTAB, SHT_DYNSYM]) {
    for (const s of secs) {
      if (s.type !== want) continue;
      const str = secs[s.link];
      if (!str) continue;
      const end = Math.min(s.offset + s.size, bytes.length);
      for (let off = s.offset + 24; off + 24 <= end; off += 24) {
        const type = bytes[off + 4] & 0xf;
        const shndx = dv.getUint16(off + 6, le);
        if (shndx === 0 || (type !== STT_FUNC && type !== STT_GNU_IFUNC)) continue;
        const nameOff = str.offset + dv.getUint32(off, le);
        let nameEnd = nameOff;
        while (nameEnd < bytes.length && bytes[nameEnd] !== 0) nameEnd++;
        let name = dec.decode(bytes.subarray(nameOff, nameEnd));
        const at = name.indexOf('@');
        if (at >= 0) name = name.slice(0, at);
        if (!name) continue;
        const addr = dv.getBigUint64(off + 8, le);
        const value = Number(addr);
        const sec = secs.find(
          (x) =>
            (x.flags & SHF_ALLOC) !== 0 &&
            x.type !== SHT_NOBITS &&
            value >= x.addr &&
            value < x.addr + x.size,
        );
        out.push({
          name,
          type,
          addr,
          size: dv.getBigUint64(off + 16, le),
          fileOffset: sec ? value - sec.addr + sec.offset : value,
        });
      }
    }
  }
  return out;
}
