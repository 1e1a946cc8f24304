import { TsbpfError } from '../errors.js';
import { Btf, decodeCString, type LazyTypeSource } from './btf.js';
import { BTF_KIND, BTF_KIND_NAMES, BTF_MAGIC, type BtfType, type Endianness, typeRefs } from './types.js';
import { validateTypes } from './validate.js';

export const BTF_HEADER_LEN = 24;

const latin1 = new TextDecoder('latin1');

export interface BtfHeader {
  magic: number;
  version: number;
  flags: number;
  hdrLen: number;
  typeOff: number;
  typeLen: number;
  strOff: number;
  strLen: number;
}

export interface ParseBtfOptions {
  /** Base BTF when `bytes` is split BTF (e.g. a module's BTF on top of vmlinux). */
  base?: Btf;
  /**
   * Decode each type on first use instead of all of them now (from `bytes`, which must not change).
   * Record headers are still read (a truncated or unknown record is refused here), and each decoded type's
   * references are checked, but the graph-wide checks (no loops) wait until `types` is first read: for BTF
   * that is already trusted, like the running kernel's, which the kernel checked when it booted. Name
   * look-ups then cost a search of the string section, not the decoding of every type: /sys/kernel/btf/vmlinux
   * takes ~200 ms to decode in full.
   */
  lazy?: boolean;
}

function fail(message: string): never {
  throw new TsbpfError('btf', message);
}

/** Reads the BTF header and tells the byte order. */
export function readBtfHeader(bytes: Uint8Array): { header: BtfHeader; endianness: Endianness } {
  if (bytes.length < BTF_HEADER_LEN)
    fail(`BTF truncated: ${bytes.length} bytes, the header needs ${BTF_HEADER_LEN}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const m = dv.getUint16(0, true);
  let le: boolean;
  if (m === BTF_MAGIC) le = true;
  else if (m === 0x9feb) le = false;
  else fail(`bad BTF magic 0x${m.toString(16).padStart(4, '0')} (want 0xeb9f)`);
  const header: BtfHeader = {
    magic: BTF_MAGIC,
    version: bytes[2],
    flags: bytes[3],
    hdrLen: dv.getUint32(4, le),
    typeOff: dv.getUint32(8, le),
    typeLen: dv.getUint32(12, le),
    strOff: dv.getUint32(16, le),
    strLen: dv.getUint32(20, le),
  };
  if (header.version !== 1) fail(`unsupported BTF version ${header.version}`);
  if (header.hdrLen < BTF_HEADER_LEN || header.hdrLen > bytes.length) {
    fail(`bad BTF header length ${header.hdrLen} (file is ${bytes.length} bytes)`);
  }
  const dataLen = bytes.length - header.hdrLen;
  if (header.typeOff + header.typeLen > dataLen) {
    fail(
      `BTF type section (offset ${header.typeOff}, length ${header.typeLen}) runs past the end of the data (${dataLen} bytes)`,
    );
  }
  if (header.strOff + header.strLen > dataLen) {
    fail(
      `BTF string section (offset ${header.strOff}, length ${header.strLen}) runs past the end of the data (${dataLen} bytes)`,
    );
  }
  if (header.typeOff % 4 !== 0) fail(`BTF type section offset ${header.typeOff} is not 4-byte aligned`);
  return { header, endianness: le ? 'little' : 'big' };
}

type StrFn = (off: number, what: () => string) => string;

/** Bytes of a record after its 12-byte header, by kind number: fixed data, then so many per vlen entry. */
const TAIL_FIXED = new Uint8Array(BTF_KIND_NAMES.length);
const TAIL_PER_ENTRY = new Uint8Array(BTF_KIND_NAMES.length);
for (const k of [BTF_KIND.INT, BTF_KIND.VAR, BTF_KIND.DECL_TAG]) TAIL_FIXED[k] = 4;
TAIL_FIXED[BTF_KIND.ARRAY] = 12;
for (const k of [BTF_KIND.STRUCT, BTF_KIND.UNION, BTF_KIND.ENUM64, BTF_KIND.DATASEC]) TAIL_PER_ENTRY[k] = 12;
for (const k of [BTF_KIND.ENUM, BTF_KIND.FUNC_PROTO]) TAIL_PER_ENTRY[k] = 8;

/** What the tail of a record holds, for the truncation message (readType's words). */
function tailWhat(kind: BtfType['kind'], vlen: number): string {
  switch (kind) {
    case 'STRUCT':
    case 'UNION':
      return `${vlen} members`;
    case 'ENUM':
    case 'ENUM64':
      return `${vlen} values`;
    case 'FUNC_PROTO':
      return `${vlen} parameters`;
    case 'DATASEC':
      return `${vlen} variables`;
    default:
      return `${kind} data`;
  }
}

/** Where the record readType() last decoded ends (a variable, not a tuple: it runs once per type). */
let readEnd = 0;

/**
 * Decodes the type record at `pos` as type `id` (and sets readEnd). Both the eager parse and the lazy one
 * go through here, so they build identical objects.
 */
function readType(dv: DataView, le: boolean, pos: number, end: number, id: number, str: StrFn): BtfType {
  const need = (n: number, what: string) => {
    if (pos + n > end) fail(`BTF type section truncated in type [${id}] (${what})`);
  };
  need(12, 'header');
  const nameOff = dv.getUint32(pos, le);
  const info = dv.getUint32(pos + 4, le);
  const sizeOrType = dv.getUint32(pos + 8, le);
  pos += 12;
  const kindNum = (info >>> 24) & 0x1f;
  const vlen = info & 0xffff;
  const kflag = info >>> 31 === 1;
  const kind = BTF_KIND_NAMES[kindNum];
  if (kind === undefined || kindNum === 0) fail(`type [${id}] has unknown kind ${kindNum}`);
  const what = () => `type [${id}] ${kind}`;
  const name = nameOff === 0 ? '' : str(nameOff, what);
  let t: BtfType;
  switch (kind) {
    case 'INT': {
      need(4, 'INT data');
      const v = dv.getUint32(pos, le);
      pos += 4;
      t = {
        kind,
        id,
        name,
        nameOff,
        size: sizeOrType,
        encoding: (v >>> 24) & 0x0f,
        bitsOffset: (v >>> 16) & 0xff,
        bits: v & 0xff,
      };
      break;
    }
    case 'PTR':
    case 'TYPEDEF':
    case 'VOLATILE':
    case 'CONST':
    case 'RESTRICT':
      t = { kind, id, name, nameOff, type: sizeOrType };
      break;
    case 'TYPE_TAG':
      t = { kind, id, name, nameOff, type: sizeOrType, kindFlag: kflag };
      break;
    case 'ARRAY':
      need(12, 'ARRAY data');
      t = {
        kind,
        id,
        name,
        nameOff,
        type: dv.getUint32(pos, le),
        indexType: dv.getUint32(pos + 4, le),
        nelems: dv.getUint32(pos + 8, le),
      };
      pos += 12;
      break;
    case 'STRUCT':
    case 'UNION': {
      need(12 * vlen, `${vlen} members`);
      const members = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        const mNameOff = dv.getUint32(pos, le);
        const off = dv.getUint32(pos + 8, le);
        members[i] = {
          name: mNameOff === 0 ? '' : str(mNameOff, what),
          nameOff: mNameOff,
          type: dv.getUint32(pos + 4, le),
          bitOffset: kflag ? off & 0xffffff : off,
          bitfieldSize: kflag ? off >>> 24 : 0,
        };
        pos += 12;
      }
      t = { kind, id, name, nameOff, size: sizeOrType, kindFlag: kflag, members };
      break;
    }
    case 'ENUM': {
      need(8 * vlen, `${vlen} values`);
      const values = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        const vNameOff = dv.getUint32(pos, le);
        values[i] = {
          name: vNameOff === 0 ? '' : str(vNameOff, what),
          nameOff: vNameOff,
          value: kflag ? dv.getInt32(pos + 4, le) : dv.getUint32(pos + 4, le),
        };
        pos += 8;
      }
      t = { kind, id, name, nameOff, size: sizeOrType, signed: kflag, values };
      break;
    }
    case 'ENUM64': {
      need(12 * vlen, `${vlen} values`);
      const values = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        const vNameOff = dv.getUint32(pos, le);
        const lo = BigInt(dv.getUint32(pos + 4, le));
        const hi = BigInt(dv.getUint32(pos + 8, le));
        const raw = (hi << 32n) | lo;
        values[i] = {
          name: vNameOff === 0 ? '' : str(vNameOff, what),
          nameOff: vNameOff,
          value: kflag ? BigInt.asIntN(64, raw) : raw,
        };
        pos += 12;
      }
      t = { kind, id, name, nameOff, size: sizeOrType, signed: kflag, values };
      break;
    }
    case 'FWD':
      t = { kind, id, name, nameOff, fwdKind: kflag ? 'union' : 'struct' };
      break;
    case 'FUNC':
      t = { kind, id, name, nameOff, type: sizeOrType, linkage: vlen };
      break;
    case 'FUNC_PROTO': {
      need(8 * vlen, `${vlen} parameters`);
      const params = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        const pNameOff = dv.getUint32(pos, le);
        params[i] = {
          name: pNameOff === 0 ? '' : str(pNameOff, what),
          nameOff: pNameOff,
          type: dv.getUint32(pos + 4, le),
        };
        pos += 8;
      }
      t = { kind, id, name, nameOff, returnType: sizeOrType, params };
      break;
    }
    case 'VAR':
      need(4, 'VAR data');
      t = { kind, id, name, nameOff, type: sizeOrType, linkage: dv.getUint32(pos, le) };
      pos += 4;
      break;
    case 'DATASEC': {
      need(12 * vlen, `${vlen} variables`);
      const vars = new Array(vlen);
      for (let i = 0; i < vlen; i++) {
        vars[i] = {
          type: dv.getUint32(pos, le),
          offset: dv.getUint32(pos + 4, le),
          size: dv.getUint32(pos + 8, le),
        };
        pos += 12;
      }
      t = { kind, id, name, nameOff, size: sizeOrType, vars };
      break;
    }
    case 'FLOAT':
      t = { kind, id, name, nameOff, size: sizeOrType };
      break;
    case 'DECL_TAG':
      need(4, 'DECL_TAG data');
      t = {
        kind,
        id,
        name,
        nameOff,
        type: sizeOrType,
        componentIdx: dv.getInt32(pos, le),
        kindFlag: kflag,
      };
      pos += 4;
      break;
    default:
      fail(`type [${id}] has unknown kind ${kindNum}`);
  }
  readEnd = pos;
  return t;
}

/**
 * Parses raw BTF (the `.BTF` ELF section, or /sys/kernel/btf/*) into a type graph. Throws
 * TsbpfError('btf') on malformed input.
 */
export function parseBtf(bytes: Uint8Array, options: ParseBtfOptions = {}): Btf {
  const { header, endianness } = readBtfHeader(bytes);
  const le = endianness === 'little';
  const base = options.base;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const strStart = header.hdrLen + header.strOff;
  // A copy, lazy or not: `strings` is public, and `bytes` may be a read-only mapping (vmlinux.ts).
  const strings = bytes.slice(strStart, strStart + header.strLen);
  if (!base && (strings.length === 0 || strings[0] !== 0))
    fail('BTF string section must start with a NUL byte');
  if (strings.length > 0 && strings[strings.length - 1] !== 0)
    fail('BTF string section is not NUL-terminated');
  const startStrOff = base ? base.startStrOff + base.strings.length : 0;
  const start = header.hdrLen + header.typeOff;
  const end = start + header.typeLen;
  if (options.lazy) return lazyBtf(dv, le, start, end, strings, startStrOff, endianness, base);

  // An ASCII string section (the usual case) is decoded once; names are slices of it.
  let ascii = true;
  for (let i = 0; i < strings.length; i++) {
    if (strings[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  const whole = ascii ? latin1.decode(strings) : '';
  const cache = new Map<number, string>();
  const str: StrFn = (off, what) => {
    if (off < startStrOff && base) return base.str(off);
    const rel = off - startStrOff;
    if (rel >= strings.length) {
      fail(
        `${what()}: string offset ${off} out of range (string section ends at ${startStrOff + strings.length})`,
      );
    }
    if (ascii) return whole.slice(rel, whole.indexOf('\0', rel));
    let s = cache.get(off);
    if (s === undefined) {
      s = decodeCString(strings, rel) ?? '';
      cache.set(off, s);
    }
    return s;
  };

  const types: BtfType[] = base ? base.types.slice() : [{ kind: 'UNKN', id: 0, name: '' }];
  let pos = start;
  while (pos < end) {
    types.push(readType(dv, le, pos, end, types.length, str));
    pos = readEnd;
  }

  validateTypes(types, base ? base.types.length : 1);
  return new Btf({ types, endianness, base, strings });
}

/** parseBtf's lazy mode: one pass over the record headers now, each record decoded when asked for. */
function lazyBtf(
  dv: DataView,
  le: boolean,
  start: number,
  end: number,
  strings: Uint8Array,
  startStrOff: number,
  endianness: Endianness,
  base: Btf | undefined,
): Btf {
  const startId = base ? base.typeCount : 1;
  // This loop runs once per type (~130k for vmlinux), mostly before V8 has optimized it: it is kept to a few
  // array reads, with the record sizes from tables and 32-bit words read through a Uint32Array when the
  // byte order and alignment allow.
  const cap = Math.floor((end - start) / 12);
  const offsets = new Uint32Array(cap);
  const kinds = new Uint8Array(cap);
  const nameOffs = new Uint32Array(cap);
  const hostLe = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const aligned = le === hostLe && (dv.byteOffset + start) % 4 === 0;
  const words = aligned ? new Uint32Array(dv.buffer, dv.byteOffset + start, (end - start) >>> 2) : undefined;
  let n = 0;
  for (let pos = start; pos < end; n++) {
    let info: number;
    let nameOff: number;
    if (words && pos + 12 <= end) {
      const w = (pos - start) >>> 2;
      nameOff = words[w];
      info = words[w + 1];
    } else {
      if (pos + 12 > end) fail(`BTF type section truncated in type [${startId + n}] (header)`);
      nameOff = dv.getUint32(pos, le);
      info = dv.getUint32(pos + 4, le);
    }
    const kindNum = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    if (kindNum === 0 || kindNum >= BTF_KIND_NAMES.length)
      fail(`type [${startId + n}] has unknown kind ${kindNum}`);
    const next = pos + 12 + TAIL_FIXED[kindNum] + TAIL_PER_ENTRY[kindNum] * vlen;
    if (next > end)
      fail(
        `BTF type section truncated in type [${startId + n}] (${tailWhat(BTF_KIND_NAMES[kindNum], vlen)})`,
      );
    offsets[n] = pos;
    kinds[n] = kindNum;
    nameOffs[n] = nameOff;
    pos = next;
  }
  const total = startId + n;
  const str: StrFn = (off, what) => {
    if (off < startStrOff && base) return base.str(off);
    const rel = off - startStrOff;
    if (rel >= strings.length) {
      fail(
        `${what()}: string offset ${off} out of range (string section ends at ${startStrOff + strings.length})`,
      );
    }
    return decodeCString(strings, rel) ?? '';
  };
  const source: LazyTypeSource = {
    count: n,
    kinds: kinds.subarray(0, n),
    nameOffs: nameOffs.subarray(0, n),
    decode(i) {
      const id = startId + i;
      const t = readType(dv, le, offsets[i], end, id, str);
      for (const r of typeRefs(t)) {
        if (r >= total) fail(`type [${id}] ${t.kind} refers to type id ${r}, out of range (${total} types)`);
      }
      return t;
    },
    enumsWithValueName(offs) {
      const found: number[] = [];
      // Enums found with the native indexOf: a loop over every kind would run unoptimized the first time.
      const own = kinds.subarray(0, n);
      for (const k of [BTF_KIND.ENUM, BTF_KIND.ENUM64]) {
        const step = k === BTF_KIND.ENUM ? 8 : 12;
        for (let i = own.indexOf(k); i >= 0; i = own.indexOf(k, i + 1)) {
          const pos = offsets[i];
          const vlen = dv.getUint32(pos + 4, le) & 0xffff;
          for (let v = 0, p = pos + 12; v < vlen; v++, p += step) {
            if (offs.has(dv.getUint32(p, le))) {
              found.push(i);
              break;
            }
          }
        }
      }
      return found.sort((a, b) => a - b);
    },
  };
  return new Btf({ source, endianness, base, strings });
}
