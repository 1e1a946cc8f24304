import { TsbpfError } from '../errors.js';
import {
  BTF_KIND,
  BTF_KIND_NAMES,
  type BtfInt,
  type BtfKindName,
  type BtfType,
  type Endianness,
} from './types.js';
import { validateTypes } from './validate.js';

export interface BtfInit {
  /** All types by id, index 0 being void; for split BTF the base's types come first. */
  types: BtfType[];
  endianness?: Endianness;
  /** Base BTF, for split BTF (module BTF on top of vmlinux). */
  base?: Btf;
  /** The raw string section these types were read from (the encoder reuses it). */
  strings?: Uint8Array;
}

/**
 * This BTF's own types, decoded one at a time on demand (parseBtf's `lazy` option): index i is type id
 * startId + i. What look-ups need without decoding comes from the record headers.
 */
export interface LazyTypeSource {
  readonly count: number;
  /** Kind number (BTF_KIND) of each own type. */
  readonly kinds: Uint8Array;
  /** Name offset of each own type. */
  readonly nameOffs: Uint32Array;
  decode(i: number): BtfType;
  /** Indexes of own ENUM/ENUM64 types with a value whose name offset is in `offs`, in order. */
  enumsWithValueName(offs: ReadonlySet<number>): number[];
}

export interface LazyBtfInit {
  source: LazyTypeSource;
  endianness: Endianness;
  base?: Btf;
  strings: Uint8Array;
}

const MAX_CHAIN = 4096;

const LONG_NAMES = new Set([
  'long int',
  'long unsigned int',
  'long',
  'unsigned long',
  'unsigned long int',
  'long unsigned',
]);

const utf8Encoder = new TextEncoder();

function btfError(message: string): TsbpfError {
  return new TsbpfError('btf', message);
}

/** Every position in `hay` where the bytes of `needle` start. */
function occurrences(hay: Uint8Array, needle: Uint8Array): number[] {
  const out: number[] = [];
  if (typeof Buffer !== 'undefined') {
    const b = Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength);
    for (let p = b.indexOf(needle); p >= 0; p = b.indexOf(needle, p + 1)) out.push(p);
    return out;
  }
  const first = needle[0];
  for (let p = hay.indexOf(first); p >= 0 && p + needle.length <= hay.length; p = hay.indexOf(first, p + 1)) {
    let i = 1;
    while (i < needle.length && hay[p + i] === needle[i]) i++;
    if (i === needle.length) out.push(p);
  }
  return out;
}

/**
 * A BTF type graph: plain type objects by id, plus look-ups. Build one with `parseBtf` (raw bytes)
 * or directly from a `types` array (then call `validateBtf` from validate.ts if the array is not
 * trusted).
 *
 * A lazily parsed Btf (parseBtf's `lazy` option) decodes a type the first time type(id) or a look-up
 * reaches it, and finds names by searching the string section; reading `types` decodes (and checks)
 * all of them. The objects are the same either way.
 */
export class Btf {
  readonly endianness: Endianness;
  readonly base: Btf | undefined;
  /** First id owned by this BTF (1, or the base's type count for split BTF). */
  readonly startId: number;
  /** First string offset owned by this BTF (0, or the base's string section length). */
  readonly startStrOff: number;
  /** This BTF's own raw string section (may be empty for a graph built by hand). */
  readonly strings: Uint8Array;
  /** Every type by id, once known: from the start, or once a lazy Btf has decoded them all. */
  private all: BtfType[] | undefined;
  private readonly source: LazyTypeSource | undefined;
  /** A lazy Btf's own types decoded so far, by id - startId. */
  private readonly own: (BtfType | undefined)[] = [];
  private readonly void0: BtfType = { kind: 'UNKN', id: 0, name: '' };
  private byName: Map<string, number[]> | undefined;
  private strCache = new Map<number, string>();
  private ptrSize = 0;

  constructor(init: BtfInit | LazyBtfInit) {
    this.base = init.base;
    this.endianness = init.endianness ?? init.base?.endianness ?? 'little';
    this.startId = init.base ? init.base.typeCount : 1;
    this.startStrOff = init.base ? init.base.startStrOff + init.base.strings.length : 0;
    this.strings = init.strings ?? new Uint8Array([0]);
    if ('source' in init) {
      this.source = init.source;
      this.own = new Array(init.source.count);
      return;
    }
    this.all = init.types;
    if (this.all.length === 0 || this.all[0].kind !== 'UNKN') {
      throw btfError('type list must start with void (id 0)');
    }
    if (init.base) {
      for (let i = 0; i < this.startId; i++) {
        if (this.all[i] !== init.base.types[i]) throw btfError('split BTF must start with its base types');
      }
    }
  }

  /** Types by id; `types[0]` is void. For split BTF, ids below `startId` belong to `base`. */
  get types(): BtfType[] {
    if (!this.all) {
      const all = this.base ? this.base.types.slice() : [this.void0];
      for (let i = 0; i < this.own.length; i++) all.push(this.ownType(i));
      validateTypes(all, this.startId);
      this.all = all;
    }
    return this.all;
  }

  /** Number of type ids, including void and, for split BTF, the base's types. */
  get typeCount(): number {
    return this.all ? this.all.length : this.startId + this.own.length;
  }

  /** The type with this id; TsbpfError('btf') if there is none. */
  type(id: number): BtfType {
    const all = this.all;
    if (all) {
      const t = Number.isInteger(id) && id >= 0 ? all[id] : undefined;
      if (t === undefined) throw btfError(`type id ${id} out of range (${all.length} types)`);
      return t;
    }
    if (!Number.isInteger(id) || id < 0 || id >= this.typeCount)
      throw btfError(`type id ${id} out of range (${this.typeCount} types)`);
    if (id >= this.startId) return this.ownType(id - this.startId);
    return this.base ? this.base.type(id) : this.void0;
  }

  private ownType(i: number): BtfType {
    let t = this.own[i];
    if (t === undefined) {
      t = (this.source as LazyTypeSource).decode(i);
      this.own[i] = t;
    }
    return t;
  }

  /** The kind of a type, without decoding it when it is a lazy Btf's own. */
  private kindOf(id: number): BtfKindName {
    if (this.source && !this.all && id >= this.startId)
      return BTF_KIND_NAMES[this.source.kinds[id - this.startId]];
    return this.type(id).kind;
  }

  /** The offsets at which the string section holds `name` (NUL-terminated), the base's included. */
  private nameOffsets(name: string): number[] {
    return this.prefixOffsets(`${name}\0`);
  }

  /** Ids of this lazy Btf's own types whose name is at one of these offsets, in id order. */
  private ownIdsNamedAt(offs: readonly number[]): number[] {
    const nameOffs = (this.source as LazyTypeSource).nameOffs;
    const ids: number[] = [];
    if (offs.length <= 16) {
      // TypedArray indexOf is native: far faster than a loop the first time round, before V8 optimizes it.
      for (const off of offs)
        for (let i = nameOffs.indexOf(off); i >= 0; i = nameOffs.indexOf(off, i + 1))
          ids.push(this.startId + i);
      return ids.sort((a, b) => a - b);
    }
    const at = new Set(offs);
    for (let i = 0; i < nameOffs.length; i++) if (at.has(nameOffs[i])) ids.push(this.startId + i);
    return ids;
  }

  /** The string at `off` in the string section (for split BTF, offsets below startStrOff are the base's). */
  str(off: number): string {
    if (off < this.startStrOff && this.base) return this.base.str(off);
    const cached = this.strCache.get(off);
    if (cached !== undefined) return cached;
    const rel = off - this.startStrOff;
    if (!Number.isInteger(rel) || rel < 0 || rel >= this.strings.length) {
      throw btfError(`string offset ${off} out of range (string section is ${this.strings.length} bytes)`);
    }
    const s = decodeCString(this.strings, rel);
    if (s === undefined) throw btfError(`string at offset ${off} is not NUL-terminated`);
    this.strCache.set(off, s);
    return s;
  }

  /** All ids of types with this name (optionally of this kind), in id order. */
  findAllByName(name: string, kind?: BtfKindName): number[] {
    if (this.source) return this.lazyFindAllByName(name, kind);
    if (!this.byName) {
      const m = new Map<string, number[]>();
      for (let id = 1; id < this.types.length; id++) {
        const n = this.types[id].name;
        if (n === '') continue;
        const list = m.get(n);
        if (list) list.push(id);
        else m.set(n, [id]);
      }
      this.byName = m;
    }
    const ids = this.byName.get(name) ?? [];
    return kind === undefined ? ids.slice() : ids.filter((id) => this.types[id].kind === kind);
  }

  private lazyFindAllByName(name: string, kind?: BtfKindName): number[] {
    this.byName ??= new Map();
    let ids = this.byName.get(name);
    if (ids === undefined) {
      ids = name === '' || !this.base ? [] : this.base.findAllByName(name);
      const offs = name === '' ? [] : this.nameOffsets(name);
      if (offs.length > 0) ids.push(...this.ownIdsNamedAt(offs));
      this.byName.set(name, ids);
    }
    return kind === undefined ? ids.slice() : ids.filter((id) => this.kindOf(id) === kind);
  }

  /** All ids of types whose name starts with `prefix` (not empty), in id order. */
  findAllByNamePrefix(prefix: string): number[] {
    if (prefix === '') throw btfError('findAllByNamePrefix needs a prefix');
    const source = this.source;
    if (!source) {
      const ids: number[] = [];
      for (let id = 1; id < this.types.length; id++) if (this.types[id].name.startsWith(prefix)) ids.push(id);
      return ids;
    }
    const ids = this.base ? this.base.findAllByNamePrefix(prefix) : [];
    // A name starts with the prefix exactly when its offset is one where the prefix's bytes are.
    const offs = this.prefixOffsets(prefix);
    if (offs.length > 0) ids.push(...this.ownIdsNamedAt(offs));
    return ids;
  }

  /** The offsets in the string section (the base's included) where `prefix`'s bytes are. */
  private prefixOffsets(prefix: string): number[] {
    const found = occurrences(this.strings, utf8Encoder.encode(prefix)).map((p) => p + this.startStrOff);
    return this.base ? [...this.base.prefixOffsets(prefix), ...found] : found;
  }

  /** The first type with this name (and kind), or undefined. */
  findByName(name: string, kind?: BtfKindName): BtfType | undefined {
    const ids = this.findAllByName(name, kind);
    return ids.length ? this.type(ids[0]) : undefined;
  }

  /** Ids of the ENUM and ENUM64 types that have a value with this name, in id order. */
  findEnumsWithValue(name: string): number[] {
    const source = this.source;
    if (!source) {
      const ids: number[] = [];
      for (const t of this.types)
        if ((t.kind === 'ENUM' || t.kind === 'ENUM64') && t.values.some((v) => v.name === name))
          ids.push(t.id);
      return ids;
    }
    const ids = this.base ? this.base.findEnumsWithValue(name) : [];
    const offs = name === '' ? [] : this.nameOffsets(name);
    if (offs.length > 0) for (const i of source.enumsWithValueName(new Set(offs))) ids.push(this.startId + i);
    return ids;
  }

  /** Follows CONST, VOLATILE, RESTRICT and TYPE_TAG; returns the first id that is none of them. */
  skipModifiers(id: number): number {
    for (let n = 0; n < MAX_CHAIN; n++) {
      const t = this.type(id);
      if (t.kind !== 'CONST' && t.kind !== 'VOLATILE' && t.kind !== 'RESTRICT' && t.kind !== 'TYPE_TAG')
        return id;
      id = t.type;
    }
    throw btfError(`modifier chain too long or looping at type id ${id}`);
  }

  /** Follows typedefs and modifiers; returns the id of the underlying type. */
  resolve(id: number): number {
    for (let n = 0; n < MAX_CHAIN; n++) {
      const t = this.type(id);
      if (
        t.kind !== 'CONST' &&
        t.kind !== 'VOLATILE' &&
        t.kind !== 'RESTRICT' &&
        t.kind !== 'TYPE_TAG' &&
        t.kind !== 'TYPEDEF'
      )
        return id;
      id = t.type;
    }
    throw btfError(`typedef/modifier chain too long or looping at type id ${id}`);
  }

  /** The underlying type object (typedefs and modifiers skipped). */
  resolveType(id: number): BtfType {
    return this.type(this.resolve(id));
  }

  /**
   * Pointer size in bytes: the size of the `long` INT type when there is one (as libbpf
   * guesses it), else 8.
   */
  get pointerSize(): number {
    if (this.ptrSize) return this.ptrSize;
    this.ptrSize = this.firstLong()?.size ?? 8;
    return this.ptrSize;
  }

  /** The first INT named like `long` of size 4 or 8, in id order. */
  private firstLong(): BtfInt | undefined {
    const isLong = (t: BtfType): t is BtfInt =>
      t.kind === 'INT' && LONG_NAMES.has(t.name) && (t.size === 4 || t.size === 8);
    const source = this.source;
    if (!source || this.all) {
      for (let id = 1; id < this.types.length; id++) {
        const t = this.types[id];
        if (isLong(t)) return t;
      }
      return undefined;
    }
    const fromBase = this.base?.firstLong();
    if (fromBase) return fromBase;
    for (let i = 0; i < source.count; i++) {
      if (source.kinds[i] !== BTF_KIND.INT) continue;
      const t = this.ownType(i);
      if (isLong(t)) return t;
    }
    return undefined;
  }

  /** sizeof() of a type in bytes, as libbpf's btf__resolve_size. */
  sizeof(id: number): number {
    let nelems = 1;
    for (let n = 0; n < MAX_CHAIN; n++) {
      const t = this.type(id);
      switch (t.kind) {
        case 'INT':
        case 'STRUCT':
        case 'UNION':
        case 'ENUM':
        case 'ENUM64':
        case 'DATASEC':
        case 'FLOAT':
          return nelems * t.size;
        case 'PTR':
          return nelems * this.pointerSize;
        case 'TYPEDEF':
        case 'VOLATILE':
        case 'CONST':
        case 'RESTRICT':
        case 'TYPE_TAG':
        case 'VAR':
          id = t.type;
          break;
        case 'ARRAY':
          nelems *= t.nelems;
          id = t.type;
          break;
        default:
          throw btfError(`type [${id}] ${t.kind} has no size`);
      }
    }
    throw btfError(`type chain too long or looping at type id ${id}`);
  }

  /** Alignment in bytes, as libbpf's btf__align_of (1 for packed structs). */
  alignof(id: number, depth = 0): number {
    if (depth > MAX_CHAIN) throw btfError(`type chain too long or looping at type id ${id}`);
    const t = this.type(id);
    switch (t.kind) {
      case 'INT':
      case 'ENUM':
      case 'ENUM64':
      case 'FLOAT':
        return Math.min(this.pointerSize, t.size);
      case 'PTR':
        return this.pointerSize;
      case 'TYPEDEF':
      case 'VOLATILE':
      case 'CONST':
      case 'RESTRICT':
      case 'TYPE_TAG':
      case 'ARRAY':
        return this.alignof(t.type, depth + 1);
      case 'STRUCT':
      case 'UNION': {
        let max = 1;
        for (const m of t.members) {
          const a = this.alignof(m.type, depth + 1);
          if (a <= 0) return a;
          if (a > max) max = a;
          if (m.bitfieldSize === 0 && m.bitOffset % (8 * a) !== 0) return 1;
        }
        if (t.size % max !== 0) return 1;
        return max;
      }
      default:
        return 0;
    }
  }
}

/** Decodes the NUL-terminated string at `off`; undefined when no NUL follows. */
export function decodeCString(bytes: Uint8Array, off: number): string | undefined {
  let end = off;
  let ascii = true;
  while (end < bytes.length && bytes[end] !== 0) {
    if (bytes[end] >= 0x80) ascii = false;
    end++;
  }
  if (end >= bytes.length) return undefined;
  if (end === off) return '';
  if (ascii) {
    if (end - off < 64) {
      let s = '';
      for (let i = off; i < end; i++) s += String.fromCharCode(bytes[i]);
      return s;
    }
    return String.fromCharCode.apply(null, Array.from(bytes.subarray(off, end)));
  }
  return utf8.decode(bytes.subarray(off, end));
}

const utf8 = new TextDecoder('utf-8');
