import { TsbpfError } from '../errors.js';
import type { BtfKindName, BtfType, Endianness } from './types.js';

export interface BtfInit {
  /** All types by id, index 0 being void; for split BTF the base's types come first. */
  types: BtfType[];
  endianness?: Endianness;
  /** Base BTF, for split BTF (module BTF on top of vmlinux). */
  base?: Btf;
  /** The raw string section these types were read from (the encoder reuses it). */
  strings?: Uint8Array;
}

const MAX_CHAIN = 4096;

function btfError(message: string): TsbpfError {
  return new TsbpfError('btf', message);
}

/**
 * A BTF type graph: plain type objects by id, plus look-ups. Build one with `parseBtf` (raw bytes)
 * or directly from a `types` array (then call `validateBtf` from validate.ts if the array is not
 * trusted).
 */
export class Btf {
  /** Types by id; `types[0]` is void. For split BTF, ids below `startId` belong to `base`. */
  readonly types: BtfType[];
  readonly endianness: Endianness;
  readonly base: Btf | undefined;
  /** First id owned by this BTF (1, or the base's type count for split BTF). */
  readonly startId: number;
  /** First string offset owned by this BTF (0, or the base's string section length). */
  readonly startStrOff: number;
  /** This BTF's own raw string section (may be empty for a graph built by hand). */
  readonly strings: Uint8Array;
  private byName: Map<string, number[]> | undefined;
  private strCache = new Map<number, string>();
  private ptrSize = 0;

  constructor(init: BtfInit) {
    this.types = init.types;
    this.base = init.base;
    this.endianness = init.endianness ?? init.base?.endianness ?? 'little';
    this.startId = init.base ? init.base.types.length : 1;
    this.startStrOff = init.base ? init.base.startStrOff + init.base.strings.length : 0;
    this.strings = init.strings ?? new Uint8Array([0]);
    if (this.types.length === 0 || this.types[0].kind !== 'UNKN') {
      throw btfError('type list must start with void (id 0)');
    }
    if (init.base) {
      for (let i = 0; i < this.startId; i++) {
        if (this.types[i] !== init.base.types[i]) throw btfError('split BTF must start with its base types');
      }
    }
  }

  /** Number of type ids, including void and, for split BTF, the base's types. */
  get typeCount(): number {
    return this.types.length;
  }

  /** The type with this id; TsbpfError('btf') if there is none. */
  type(id: number): BtfType {
    const t = Number.isInteger(id) && id >= 0 ? this.types[id] : undefined;
    if (t === undefined) throw btfError(`type id ${id} out of range (${this.types.length} types)`);
    return t;
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

  /** The first type with this name (and kind), or undefined. */
  findByName(name: string, kind?: BtfKindName): BtfType | undefined {
    const ids = this.findAllByName(name, kind);
    return ids.length ? this.types[ids[0]] : undefined;
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
    return this.types[this.resolve(id)];
  }

  /**
   * Pointer size in bytes: the size of the `long` INT type when there is one (as libbpf
   * guesses it), else 8.
   */
  get pointerSize(): number {
    if (this.ptrSize) return this.ptrSize;
    let size = 8;
    const longNames = new Set([
      'long int',
      'long unsigned int',
      'long',
      'unsigned long',
      'unsigned long int',
      'long unsigned',
    ]);
    for (let id = 1; id < this.types.length; id++) {
      const t = this.types[id];
      if (t.kind === 'INT' && longNames.has(t.name) && (t.size === 4 || t.size === 8)) {
        size = t.size;
        break;
      }
    }
    this.ptrSize = size;
    return size;
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
