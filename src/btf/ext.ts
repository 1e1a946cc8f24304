import { TsbpfError } from '../errors.js';
import type { Btf } from './btf.js';
import { BTF_MAGIC, type Endianness } from './types.js';

/**
 * `.BTF.ext`: per-ELF-section function info, line info and CO-RE relocation records. String
 * offsets in it point into the `.BTF` string section, so parsing needs the parsed `.BTF`.
 */

export interface BtfExtFuncInfo {
  /** Byte offset of the function's first instruction in its ELF section (as in the file). */
  insnOff: number;
  /** FUNC type id. */
  typeId: number;
}

export interface BtfExtLineInfo {
  /** Byte offset of the instruction in its ELF section. */
  insnOff: number;
  fileNameOff: number;
  fileName: string;
  lineOff: number;
  /** The source line's text, as the compiler recorded it. */
  line: string;
  lineNum: number;
  col: number;
}

export interface BtfExtCoreRelo {
  /** Byte offset of the instruction to patch in its ELF section. */
  insnOff: number;
  /** Root type id in the object's BTF. */
  typeId: number;
  accessStrOff: number;
  /** Access spec like "0:1:2" (field indexes) or an enum value index. */
  accessStr: string;
  /** enum bpf_core_relo_kind. */
  kind: number;
  kindName: string;
}

export interface BtfExtSection<R> {
  /** ELF section name ("xdp", ".text", ...). */
  section: string;
  records: R[];
}

export interface BtfExt {
  endianness: Endianness;
  hdrLen: number;
  /** Record sizes as declared in the file (0 when the part is absent). */
  funcInfoRecSize: number;
  lineInfoRecSize: number;
  coreReloRecSize: number;
  funcInfo: BtfExtSection<BtfExtFuncInfo>[];
  lineInfo: BtfExtSection<BtfExtLineInfo>[];
  coreRelos: BtfExtSection<BtfExtCoreRelo>[];
}

/** enum bpf_core_relo_kind, by value. */
export const CORE_RELO_KINDS = [
  'BPF_CORE_FIELD_BYTE_OFFSET',
  'BPF_CORE_FIELD_BYTE_SIZE',
  'BPF_CORE_FIELD_EXISTS',
  'BPF_CORE_FIELD_SIGNED',
  'BPF_CORE_FIELD_LSHIFT_U64',
  'BPF_CORE_FIELD_RSHIFT_U64',
  'BPF_CORE_TYPE_ID_LOCAL',
  'BPF_CORE_TYPE_ID_TARGET',
  'BPF_CORE_TYPE_EXISTS',
  'BPF_CORE_TYPE_SIZE',
  'BPF_CORE_ENUMVAL_EXISTS',
  'BPF_CORE_ENUMVAL_VALUE',
  'BPF_CORE_TYPE_MATCHES',
] as const;

function fail(message: string): never {
  throw new TsbpfError('btf', `.BTF.ext: ${message}`);
}

export function parseBtfExt(bytes: Uint8Array, btf: Btf): BtfExt {
  if (bytes.length < 24) fail(`truncated header (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const m = dv.getUint16(0, true);
  let le: boolean;
  if (m === BTF_MAGIC) le = true;
  else if (m === 0x9feb) le = false;
  else fail(`bad magic 0x${m.toString(16).padStart(4, '0')}`);
  if (bytes[2] !== 1) fail(`unsupported version ${bytes[2]}`);
  const hdrLen = dv.getUint32(4, le);
  if (hdrLen < 24 || hdrLen > bytes.length) fail(`bad header length ${hdrLen}`);
  const u32 = (off: number) => dv.getUint32(off, le);
  const part = (offField: number, what: string): { start: number; len: number } => {
    if (offField + 8 > hdrLen) return { start: 0, len: 0 };
    const off = u32(offField);
    const len = u32(offField + 4);
    const start = hdrLen + off;
    if (len === 0) return { start, len: 0 };
    if (start + len > bytes.length)
      fail(`${what} (offset ${off}, length ${len}) runs past the end (${bytes.length} bytes)`);
    if (off % 4 !== 0) fail(`${what} offset ${off} is not 4-byte aligned`);
    return { start, len };
  };

  const str = (off: number, what: string): string => {
    try {
      return btf.str(off);
    } catch {
      return fail(`${what}: string offset ${off} out of range`);
    }
  };
  const typeId = (id: number, what: string): number => {
    if (id >= btf.typeCount) fail(`${what}: type id ${id} out of range (${btf.typeCount} types)`);
    return id;
  };

  function readPart<R>(
    p: { start: number; len: number },
    what: string,
    minRec: number,
    read: (off: number) => R,
  ): { recSize: number; sections: BtfExtSection<R>[] } {
    if (p.len === 0) return { recSize: 0, sections: [] };
    if (p.len < 4) fail(`${what} truncated`);
    const recSize = u32(p.start);
    if (recSize < minRec || recSize % 4 !== 0)
      fail(`${what} record size ${recSize} is invalid (minimum ${minRec})`);
    const end = p.start + p.len;
    let pos = p.start + 4;
    const sections: BtfExtSection<R>[] = [];
    while (pos < end) {
      if (pos + 8 > end) fail(`${what} truncated in a section header`);
      const section = str(u32(pos), `${what} section name`);
      const n = u32(pos + 4);
      pos += 8;
      if (n * recSize > end - pos)
        fail(`${what} for section ${section}: ${n} records of ${recSize} bytes run past the end`);
      const records = new Array<R>(n);
      for (let i = 0; i < n; i++) {
        records[i] = read(pos);
        pos += recSize;
      }
      sections.push({ section, records });
    }
    return { recSize, sections };
  }

  const fi = readPart(part(8, 'func_info'), 'func_info', 8, (o) => ({
    insnOff: u32(o),
    typeId: typeId(u32(o + 4), 'func_info'),
  }));
  const li = readPart(part(16, 'line_info'), 'line_info', 16, (o) => {
    const fileNameOff = u32(o + 4);
    const lineOff = u32(o + 8);
    const lc = u32(o + 12);
    return {
      insnOff: u32(o),
      fileNameOff,
      fileName: str(fileNameOff, 'line_info file name'),
      lineOff,
      line: str(lineOff, 'line_info line'),
      lineNum: lc >>> 10,
      col: lc & 0x3ff,
    };
  });
  const cr =
    hdrLen >= 32
      ? readPart(part(24, 'core_relo'), 'core_relo', 16, (o) => {
          const accessStrOff = u32(o + 8);
          const kind = u32(o + 12);
          return {
            insnOff: u32(o),
            typeId: typeId(u32(o + 4), 'core_relo'),
            accessStrOff,
            accessStr: str(accessStrOff, 'core_relo access string'),
            kind,
            kindName: CORE_RELO_KINDS[kind] ?? `unknown(${kind})`,
          };
        })
      : { recSize: 0, sections: [] };

  return {
    endianness: le ? 'little' : 'big',
    hdrLen,
    funcInfoRecSize: fi.recSize,
    lineInfoRecSize: li.recSize,
    coreReloRecSize: cr.recSize,
    funcInfo: fi.sections,
    lineInfo: li.sections,
    coreRelos: cr.sections,
  };
}
