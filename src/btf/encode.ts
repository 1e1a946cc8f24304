import { TsbpfError } from '../errors.js';
import type { Btf } from './btf.js';
import { BTF_KIND, BTF_MAGIC, type BtfType, type Endianness } from './types.js';

export interface EncodeBtfOptions {
  /** Byte order of the output (default: the graph's own). */
  endianness?: Endianness;
}

const utf8 = new TextEncoder();

/** Builds the string section: the original bytes first (so offsets survive), new strings appended. */
class StringTable {
  private chunks: Uint8Array[] = [];
  private len = 0;
  private index: Map<string, number> | undefined;
  private readonly orig: Uint8Array;

  constructor(
    private readonly btf: Btf,
    private readonly base: number,
  ) {
    const orig = btf.strings;
    const usable = orig.length > 0 && orig[orig.length - 1] === 0 && (btf.base || orig[0] === 0);
    this.orig = usable ? orig : btf.base ? new Uint8Array(0) : new Uint8Array([0]);
    this.chunks.push(this.orig);
    this.len = this.orig.length;
  }

  /** True when the original string section holds `s` at relative offset `rel`. */
  private holds(rel: number, s: string): boolean {
    const b = this.orig;
    if (rel < 0 || rel + s.length >= b.length) return false;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80 || b[rel + i] !== c) return false;
    }
    return b[rel + s.length] === 0;
  }

  private buildIndex(): Map<string, number> {
    const m = new Map<string, number>();
    const b = this.orig;
    const dec = new TextDecoder();
    let start = 0;
    for (let i = 0; i < b.length; i++) {
      if (b[i] === 0) {
        const s = dec.decode(b.subarray(start, i));
        if (!m.has(s)) m.set(s, this.base + start);
        start = i + 1;
      }
    }
    if (!m.has('') && this.btf.base) m.set('', 0);
    return m;
  }

  add(s: string, hint: number | undefined): number {
    if (s === '' && !hint) return 0;
    if (hint !== undefined) {
      if (hint >= this.base) {
        if (this.holds(hint - this.base, s)) return hint;
      } else if (this.btf.base) {
        try {
          if (this.btf.base.str(hint) === s) return hint;
        } catch {
          // fall through to a fresh string
        }
      }
    }
    if (s === '') return 0;
    if (!this.index) this.index = this.buildIndex();
    const found = this.index.get(s);
    if (found !== undefined) return found;
    const bytes = utf8.encode(s);
    if (bytes.includes(0)) throw new TsbpfError('btf', `name ${JSON.stringify(s)} contains a NUL byte`);
    const off = this.base + this.len;
    this.chunks.push(bytes, new Uint8Array([0]));
    this.len += bytes.length + 1;
    this.index.set(s, off);
    return off;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.len);
    let p = 0;
    for (const c of this.chunks) {
      out.set(c, p);
      p += c.length;
    }
    return out;
  }
}

function recordSize(t: BtfType): number {
  switch (t.kind) {
    case 'INT':
    case 'VAR':
    case 'DECL_TAG':
      return 16;
    case 'ARRAY':
      return 24;
    case 'STRUCT':
    case 'UNION':
      return 12 + 12 * t.members.length;
    case 'ENUM':
      return 12 + 8 * t.values.length;
    case 'ENUM64':
      return 12 + 12 * t.values.length;
    case 'FUNC_PROTO':
      return 12 + 8 * t.params.length;
    case 'DATASEC':
      return 12 + 12 * t.vars.length;
    default:
      return 12;
  }
}

function checkVlen(t: BtfType, n: number) {
  if (n > 0xffff) throw new TsbpfError('btf', `type [${t.id}] ${t.kind} has ${n} entries (at most 65535)`);
}

/**
 * Encodes a type graph as raw BTF (header, type section, string section), the bytes the kernel's
 * BPF_BTF_LOAD takes. For split BTF only the split types are written. A graph parsed from
 * clang's or the kernel's BTF encodes back to the same bytes.
 */
export function encodeBtf(btf: Btf, options: EncodeBtfOptions = {}): Uint8Array {
  const le = (options.endianness ?? btf.endianness) === 'little';
  const strs = new StringTable(btf, btf.startStrOff);
  let typeLen = 0;
  for (let id = btf.startId; id < btf.types.length; id++) typeLen += recordSize(btf.types[id]);
  const typeBytes = new Uint8Array(typeLen);
  const dv = new DataView(typeBytes.buffer);
  let pos = 0;
  const u32 = (v: number) => {
    dv.setUint32(pos, v >>> 0, le);
    pos += 4;
  };
  const head = (t: BtfType, vlen: number, kflag: boolean, sizeOrType: number) => {
    checkVlen(t, vlen);
    u32(strs.add(t.name, t.nameOff));
    u32(((kflag ? 0x80000000 : 0) | (BTF_KIND[t.kind] << 24) | vlen) >>> 0);
    u32(sizeOrType);
  };
  for (let id = btf.startId; id < btf.types.length; id++) {
    const t = btf.types[id];
    switch (t.kind) {
      case 'INT':
        head(t, 0, false, t.size);
        u32(((t.encoding & 0x0f) << 24) | ((t.bitsOffset & 0xff) << 16) | (t.bits & 0xff));
        break;
      case 'PTR':
      case 'TYPEDEF':
      case 'VOLATILE':
      case 'CONST':
      case 'RESTRICT':
        head(t, 0, false, t.type);
        break;
      case 'TYPE_TAG':
        head(t, 0, t.kindFlag, t.type);
        break;
      case 'ARRAY':
        head(t, 0, false, 0);
        u32(t.type);
        u32(t.indexType);
        u32(t.nelems);
        break;
      case 'STRUCT':
      case 'UNION':
        head(t, t.members.length, t.kindFlag, t.size);
        for (const m of t.members) {
          u32(strs.add(m.name, m.nameOff));
          u32(m.type);
          if (t.kindFlag) {
            if (m.bitfieldSize > 0xff || m.bitOffset > 0xffffff) {
              throw new TsbpfError(
                'btf',
                `member ${m.name} of [${t.id}] does not fit the kind_flag encoding`,
              );
            }
            u32((m.bitfieldSize << 24) | m.bitOffset);
          } else {
            if (m.bitfieldSize) {
              throw new TsbpfError(
                'btf',
                `member ${m.name} of [${t.id}] is a bitfield but kindFlag is false`,
              );
            }
            u32(m.bitOffset);
          }
        }
        break;
      case 'ENUM':
        head(t, t.values.length, t.signed, t.size);
        for (const v of t.values) {
          u32(strs.add(v.name, v.nameOff));
          u32(v.value);
        }
        break;
      case 'ENUM64':
        head(t, t.values.length, t.signed, t.size);
        for (const v of t.values) {
          const raw = BigInt.asUintN(64, v.value);
          u32(strs.add(v.name, v.nameOff));
          u32(Number(raw & 0xffffffffn));
          u32(Number(raw >> 32n));
        }
        break;
      case 'FWD':
        head(t, 0, t.fwdKind === 'union', 0);
        break;
      case 'FUNC':
        head(t, t.linkage, false, t.type);
        break;
      case 'FUNC_PROTO':
        head(t, t.params.length, false, t.returnType);
        for (const p of t.params) {
          u32(strs.add(p.name, p.nameOff));
          u32(p.type);
        }
        break;
      case 'VAR':
        head(t, 0, false, t.type);
        u32(t.linkage);
        break;
      case 'DATASEC':
        head(t, t.vars.length, false, t.size);
        for (const v of t.vars) {
          u32(v.type);
          u32(v.offset);
          u32(v.size);
        }
        break;
      case 'FLOAT':
        head(t, 0, false, t.size);
        break;
      case 'DECL_TAG':
        head(t, 0, t.kindFlag, t.type);
        u32(t.componentIdx);
        break;
      default:
        throw new TsbpfError('btf', `cannot encode type [${id}] of kind ${t.kind}`);
    }
  }
  const strBytes = strs.bytes();
  const out = new Uint8Array(24 + typeLen + strBytes.length);
  const h = new DataView(out.buffer);
  h.setUint16(0, BTF_MAGIC, le);
  out[2] = 1;
  out[3] = 0;
  h.setUint32(4, 24, le);
  h.setUint32(8, 0, le);
  h.setUint32(12, typeLen, le);
  h.setUint32(16, typeLen, le);
  h.setUint32(20, strBytes.length, le);
  out.set(typeBytes, 24);
  out.set(strBytes, 24 + typeLen);
  return out;
}
