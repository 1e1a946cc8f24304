/**
 * A TypeProvider over the running kernel: struct/union layouts, typedefs and enum constants from vmlinux
 * BTF (/sys/kernel/btf/vmlinux), and the `args` of tracepoints from their format files
 * (/sys/kernel/tracing/events/CATEGORY/EVENT/format). Everything is read lazily and cached; a missing
 * file makes the matching lookups answer `undefined` (the front end then treats the type as unknown).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Btf } from '../btf/btf.js';
import { parseBtf } from '../btf/parse.js';
import { VMLINUX_BTF_PATH, vmlinuxBtf } from '../btf/vmlinux.js';
import type { ProbeSpec } from './probes.js';
import { intType, type StructField, stringType, type TraceType, type TypeProvider } from './types.js';

/** A struct field read from a tracepoint format file: `__data_loc` fields carry the flag. */
export interface TracepointField extends StructField {
  /** `__data_loc char[] name`: a u32 at `offset` whose low 16 bits are the data's offset in the record. */
  dataLoc?: boolean;
  /** Size of the field in the record (bytes). */
  size: number;
}

export interface KernelTypesOptions {
  /** vmlinux BTF file (default /sys/kernel/btf/vmlinux). */
  btfPath?: string;
  /** Already-parsed BTF (wins over btfPath). */
  btf?: Btf;
  /** tracefs root (default /sys/kernel/tracing, then /sys/kernel/debug/tracing). */
  tracefs?: string;
  /** Size of strings read from __data_loc fields (bpftrace's max_strlen). */
  maxStrlen?: number;
}

type StructType = TraceType & { kind: 'struct' };

const TRACEFS_ROOTS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

const requireModule = createRequire(import.meta.url);

/**
 * kernel/perf.ts's mapFile, for vmlinux BTF: mapping it beats reading it 4 KiB per system call (~8 ms). It
 * loads koffi, so it is required (not imported) the first time a script needs kernel types; where require()
 * cannot load ES modules, the file is read.
 */
const mapFile = process.features.require_module
  ? (path: string) => (requireModule('../kernel/perf.js') as typeof import('../kernel/perf.js')).mapFile(path)
  : undefined;

/** The TypeProvider of the running kernel. */
export class KernelTypes implements TypeProvider {
  private btfCache: Btf | null | undefined;
  private readonly structs = new Map<string, StructType | undefined>();
  private readonly tracepoints = new Map<string, StructType | undefined>();
  private readonly enums = new Map<string, { value: bigint; enumName: string } | undefined>();
  private readonly maxStrlen: number;

  constructor(private readonly options: KernelTypesOptions = {}) {
    this.maxStrlen = options.maxStrlen ?? 64;
    if (options.btf) this.btfCache = options.btf;
  }

  /**
   * The vmlinux BTF, or undefined when the kernel has none. The running kernel's is the process-wide lazy
   * one (a one-liner's few structs cost a few ms, not a parse of every type); another file is parsed
   * in full, and so checked.
   */
  get btf(): Btf | undefined {
    if (this.btfCache === undefined) {
      const path = this.options.btfPath;
      if (path === undefined || path === VMLINUX_BTF_PATH) this.btfCache = vmlinuxBtf(mapFile) ?? null;
      else {
        try {
          this.btfCache = parseBtf(new Uint8Array(readFileSync(path)));
        } catch {
          this.btfCache = null;
        }
      }
    }
    return this.btfCache ?? undefined;
  }

  /** The tracefs root in use, or undefined. */
  tracefs(): string | undefined {
    if (this.options.tracefs) return this.options.tracefs;
    return TRACEFS_ROOTS.find((r) => existsSync(`${r}/events`));
  }

  struct(tag: 'struct' | 'union', name: string): StructType | undefined {
    const key = `${tag} ${name}`;
    if (this.structs.has(key)) return this.structs.get(key);
    const btf = this.btf;
    let result: StructType | undefined;
    if (btf) {
      const id = btf.findAllByName(name, tag === 'struct' ? 'STRUCT' : 'UNION')[0];
      if (id !== undefined) result = this.composite(btf, id);
    }
    this.structs.set(key, result);
    return result;
  }

  typedef(name: string): TraceType | undefined {
    const btf = this.btf;
    if (!btf) return undefined;
    const id = btf.findAllByName(name, 'TYPEDEF')[0];
    if (id === undefined) return undefined;
    return this.convert(btf, id, 0);
  }

  enumValue(name: string): { value: bigint; enumName: string } | undefined {
    if (this.enums.has(name)) return this.enums.get(name);
    let result: { value: bigint; enumName: string } | undefined;
    const btf = this.btf;
    // The first enum (by id) with this value name, as bpftrace finds it.
    const id = btf?.findEnumsWithValue(name)[0];
    if (btf && id !== undefined) {
      const t = btf.type(id);
      const v = t.kind === 'ENUM' || t.kind === 'ENUM64' ? t.values.find((x) => x.name === name) : undefined;
      if (v) result = { value: BigInt(v.value), enumName: t.name };
    }
    this.enums.set(name, result);
    return result;
  }

  enumVariants(enumName: string): { name: string; value: bigint }[] | undefined {
    const btf = this.btf;
    // By name, not over btf.types: reading those decodes every type of the lazy vmlinux BTF (~200 ms).
    for (const id of btf?.findAllByName(enumName) ?? []) {
      const t = (btf as Btf).type(id);
      if ((t.kind === 'ENUM' || t.kind === 'ENUM64') && t.values.length > 0)
        return t.values.map((v) => ({ name: v.name, value: BigInt(v.value) }));
    }
    return undefined;
  }

  probeArgs(spec: ProbeSpec): StructType | undefined {
    if (spec.provider === 'tracepoint' && spec.target && spec.func && !spec.wildcard)
      return this.tracepointArgs(spec.target, spec.func);
    if (spec.provider === 'rawtracepoint' && spec.func && !spec.wildcard)
      return this.rawTracepointArgs(spec.func);
    return undefined;
  }

  /**
   * The `args` of a raw tracepoint: the parameters of the kernel's `__bpf_trace_EVENT` (after its `__data`),
   * each one u64 of the context. Integers are read whole, the only access the kernel allows there.
   */
  rawTracepointArgs(event: string): StructType | undefined {
    const btf = this.btf;
    const fn = btf?.findByName(`__bpf_trace_${event}`, 'FUNC');
    if (!btf || !fn || fn.kind !== 'FUNC') return undefined;
    const proto = btf.type(fn.type);
    if (proto.kind !== 'FUNC_PROTO') return undefined;
    const fields: StructField[] = proto.params.slice(1).map((p, i) => {
      let type = this.convert(btf, p.type, 1);
      if (type.kind === 'int' || type.kind === 'bool') type = intType(64, type.kind === 'int' && type.signed);
      return { name: p.name, type, offset: i * 8 };
    });
    return {
      kind: 'struct',
      tag: 'struct',
      name: `_rawtracepoint_${event}`,
      size: fields.length * 8,
      fields,
    };
  }

  /** The `args` struct of a tracepoint, from its format file. */
  tracepointArgs(category: string, event: string): StructType | undefined {
    const key = `${category}:${event}`;
    if (this.tracepoints.has(key)) return this.tracepoints.get(key);
    let result: StructType | undefined;
    const root = this.tracefs();
    if (root) {
      try {
        const text = readFileSync(`${root}/events/${category}/${event}/format`, 'utf8');
        result = this.parseFormat(text, `${category}_${event}`);
      } catch {
        result = undefined;
      }
    }
    this.tracepoints.set(key, result);
    return result;
  }

  /** Parses a tracepoint format file into the args struct (common_* fields left out, like bpftrace). */
  parseFormat(text: string, name: string): StructType {
    const fields: TracepointField[] = [];
    let size = 0;
    for (const line of text.split('\n')) {
      const m = /^\s*field:(.*);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/.exec(line);
      if (!m) continue;
      const decl = m[1].trim();
      const offset = Number(m[2]);
      const fsize = Number(m[3]);
      const signed = m[4] === '1';
      size = Math.max(size, offset + fsize);
      const f = this.formatField(decl, offset, fsize, signed);
      if (f && !f.name.startsWith('common_')) fields.push(f);
    }
    return { kind: 'struct', tag: 'struct', name: `_tracepoint_${name}`, size, fields };
  }

  private formatField(
    decl: string,
    offset: number,
    size: number,
    signed: boolean,
  ): TracepointField | undefined {
    let d = decl;
    let dataLoc = false;
    if (d.startsWith('__data_loc ')) {
      dataLoc = true;
      d = d.slice('__data_loc '.length);
    } else if (d.startsWith('__rel_loc ')) {
      return undefined;
    }
    const m = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(\[[^\]]*\])?$/.exec(d);
    if (!m) return undefined;
    const base = m[1].trim();
    const name = m[2];
    const dims = m[3];
    if (dataLoc) return { name, type: stringType(this.maxStrlen), offset, size, dataLoc: true };
    if (dims !== undefined) {
      const elem = this.cTypeName(base.replace(/\s*\*$/, ''), 1, signed) ?? intType(8, true);
      const n = Number(dims.slice(1, -1));
      const es = elem.kind === 'int' ? elem.bits / 8 : 8;
      const length = Number.isFinite(n) && n > 0 ? n : Math.floor(size / es);
      return { name, type: { kind: 'array', of: elem, length }, offset, size };
    }
    if (base.endsWith('*')) {
      const to = base.replace(/\*\s*$/, '').trim();
      const target = this.cTypeName(to, 1, true) ?? { kind: 'void' };
      return { name, type: { kind: 'pointer', to: target }, offset, size };
    }
    // Scalars: the format's size and signedness say it all (typedefs included).
    if (size === 1 || size === 2 || size === 4 || size === 8) {
      const named = /^(?:const\s+)?(?:struct|union)\s+(\w+)$/.exec(base);
      if (named) return { name, type: this.struct('struct', named[1]) ?? intType(64, false), offset, size };
      const t = intType((size * 8) as 8 | 16 | 32 | 64, signed);
      if (base === 'bool' || base === '_Bool') return { name, type: { kind: 'bool' }, offset, size };
      const en = /^(?:const\s+)?enum\s+(\w+)$/.exec(base);
      if (en && t.kind === 'int') return { name, type: { ...t, enumName: en[1] }, offset, size };
      return { name, type: t, offset, size };
    }
    const named = /^(?:const\s+)?(struct|union)\s+(\w+)$/.exec(base);
    if (named) {
      const st = this.struct(named[1] as 'struct' | 'union', named[2]);
      if (st) return { name, type: st, offset, size };
    }
    return { name, type: { kind: 'array', of: intType(8, false), length: size }, offset, size };
  }

  /** A C type name (`char`, `unsigned int`, `struct file`, `pid_t`) as a TraceType. */
  private cTypeName(name: string, size: number, signed: boolean): TraceType | undefined {
    const n = name
      .replace(/\bconst\b|\bvolatile\b/g, '')
      .replace(/\s+/g, ' ')
      .trim();
    const tagged = /^(struct|union)\s+(\w+)$/.exec(n);
    if (tagged)
      return (
        this.struct(tagged[1] as 'struct' | 'union', tagged[2]) ?? {
          kind: 'struct',
          tag: tagged[1] as 'struct',
          name: tagged[2],
        }
      );
    const ints: Record<string, TraceType> = {
      char: intType(8, true),
      'signed char': intType(8, true),
      'unsigned char': intType(8, false),
      u8: intType(8, false),
      s8: intType(8, true),
      __u8: intType(8, false),
      short: intType(16, true),
      'unsigned short': intType(16, false),
      u16: intType(16, false),
      int: intType(32, true),
      'unsigned int': intType(32, false),
      unsigned: intType(32, false),
      u32: intType(32, false),
      s32: intType(32, true),
      long: intType(64, true),
      'unsigned long': intType(64, false),
      u64: intType(64, false),
      s64: intType(64, true),
      void: { kind: 'void' },
    };
    if (ints[n]) return ints[n];
    const t = this.typedef(n);
    if (t) return t;
    void size;
    void signed;
    return undefined;
  }

  /** Converts a BTF type to a TraceType; structs below the top level keep only their name. */
  private convert(btf: Btf, id: number, depth: number): TraceType {
    const t = btf.type(btf.skipModifiers(id));
    switch (t.kind) {
      case 'UNKN':
        return { kind: 'void' };
      case 'INT':
        if (t.encoding & 4) return { kind: 'bool' };
        if (t.size === 1 || t.size === 2 || t.size === 4 || t.size === 8)
          return intType((t.size * 8) as 8 | 16 | 32 | 64, (t.encoding & 1) !== 0);
        return { kind: 'array', of: intType(8, false), length: t.size };
      case 'ENUM':
      case 'ENUM64':
        return {
          kind: 'int',
          bits: (Math.min(8, Math.max(1, t.size)) * 8) as 8 | 16 | 32 | 64,
          signed: t.signed,
          ...(t.name ? { enumName: t.name } : {}),
        };
      case 'TYPEDEF':
        return this.convert(btf, t.type, depth);
      case 'PTR': {
        const to = btf.type(btf.resolve(t.type));
        if (to.kind === 'FUNC_PROTO') return { kind: 'pointer', to: { kind: 'void' } };
        return { kind: 'pointer', to: this.convert(btf, t.type, depth + 1) };
      }
      case 'ARRAY': {
        // char arrays are strings, as in bpftrace: `curtask->comm == "bash"`, print(curtask->comm).
        const elem = btf.type(btf.resolve(t.type));
        if (elem.kind === 'INT' && elem.size === 1 && /\bchar\b/.test(elem.name) && t.nelems > 0)
          return stringType(t.nelems);
        return { kind: 'array', of: this.convert(btf, t.type, depth + 1), length: t.nelems };
      }
      case 'STRUCT':
      case 'UNION':
        if (depth > 0 && t.name !== '')
          return {
            kind: 'struct',
            tag: t.kind === 'STRUCT' ? 'struct' : 'union',
            name: t.name,
            size: t.size,
          };
        if (depth > 6)
          return {
            kind: 'struct',
            tag: t.kind === 'STRUCT' ? 'struct' : 'union',
            name: t.name || '(anonymous)',
            size: t.size,
          };
        return this.composite(btf, t.id, depth);
      case 'FWD':
        return { kind: 'struct', tag: t.fwdKind, name: t.name };
      case 'FLOAT':
        return intType((Math.min(8, t.size) * 8) as 8 | 16 | 32 | 64, true);
      default:
        return { kind: 'void' };
    }
  }

  private composite(btf: Btf, id: number, depth = 0): StructType {
    const t = btf.type(id);
    if (t.kind !== 'STRUCT' && t.kind !== 'UNION') throw new Error('not a composite');
    const fields: StructField[] = t.members.map((m) => {
      const type = this.convert(btf, m.type, m.name === '' ? depth + 1 : depth + 1);
      const f: StructField = { name: m.name, type, offset: Math.floor(m.bitOffset / 8) };
      if (m.bitfieldSize > 0) {
        f.bitOffset = m.bitOffset % 8;
        f.bitWidth = m.bitfieldSize;
      }
      return f;
    });
    // Anonymous struct/union members are expanded so `anonymousField` can find their fields.
    for (const f of fields) {
      if (f.name === '' && f.type.kind === 'struct' && !f.type.fields) {
        const mt = t.members.find((m) => m.name === '' && Math.floor(m.bitOffset / 8) === f.offset);
        if (mt) {
          const inner = btf.type(btf.resolve(mt.type));
          if (inner.kind === 'STRUCT' || inner.kind === 'UNION')
            f.type = this.composite(btf, inner.id, depth + 1);
        }
      }
    }
    return {
      kind: 'struct',
      tag: t.kind === 'STRUCT' ? 'struct' : 'union',
      name: t.name || '(anonymous)',
      size: t.size,
      fields,
    };
  }
}

let shared: KernelTypes | undefined;

/** The process-wide TypeProvider of the running kernel (lazily reads BTF and tracefs). */
export function kernelTypes(): KernelTypes {
  shared ??= new KernelTypes();
  return shared;
}
