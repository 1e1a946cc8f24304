/**
 * TraceType → ValueLayout: how the code generator stores values (see records.ts for the contract).
 * Top-level integers (map keys and values, variables, record arguments) are widened to 8 bytes;
 * inside tuples, records and structs integers keep their size.
 */
import type { TraceType } from '../types.js';
import { alignUp, type ValueLayout } from './records.js';

export interface LayoutOptions {
  /** Stack map name for a (user, mode, limit). */
  stackMap?: (user: boolean, mode: string, limit: number) => string;
  /** Resolves a struct known only by name. */
  struct?: (tag: 'struct' | 'union', name: string) => (TraceType & { kind: 'struct' }) | undefined;
  /** An enum's constants by value (decimal), for integers of an enum type. */
  enumValues?: (enumName: string) => Record<string, string> | undefined;
}

export function layoutOf(t: TraceType, top: boolean, o: LayoutOptions = {}): ValueLayout {
  switch (t.kind) {
    case 'int': {
      const size = top ? 8 : ((t.bits / 8) as 1 | 2 | 4 | 8);
      const enumValues = t.enumName ? o.enumValues?.(t.enumName) : undefined;
      return {
        kind: 'int',
        size,
        align: size,
        signed: t.signed,
        ...(t.enumName ? { enumName: t.enumName } : {}),
        ...(enumValues ? { enumValues } : {}),
      };
    }
    case 'bool':
      return { kind: 'bool', size: 1, align: 1 };
    case 'string':
      return { kind: 'string', size: Math.max(1, t.size), align: 1 };
    case 'buffer':
      return { kind: 'buffer', size: t.size + 1, align: 1 };
    case 'pointer':
      return { kind: 'pointer', size: 8, align: 8, to: describe(t.to) };
    case 'array': {
      const of = layoutOf(t.of, false, o);
      return { kind: 'array', size: of.size * t.length, align: of.align, of, length: t.length };
    }
    case 'tuple':
      return composite(
        'tuple',
        t.elems.map((e) => ({ layout: layoutOf(e, false, o) })),
      );
    case 'record':
      return composite(
        'record',
        t.fields.map((f) => ({ name: f.name, layout: layoutOf(f.type, false, o) })),
      );
    case 'struct': {
      const st = t.fields ? t : (o.struct?.(t.tag, t.name) ?? t);
      const fields = (st.fields ?? []).map((f) => ({
        name: f.name,
        offset: f.offset ?? 0,
        layout: layoutOf(f.type, false, o),
        ...(f.bitWidth ? { bitOffset: f.bitOffset ?? 0, bitWidth: f.bitWidth } : {}),
      }));
      const align = Math.max(1, ...fields.map((f) => Math.min(8, f.layout.align)));
      return { kind: 'struct', size: st.size ?? 0, align, name: `${st.tag} ${st.name}`, fields };
    }
    case 'stack': {
      const stackMap = o.stackMap?.(t.user, t.mode, t.limit) ?? '';
      return t.user
        ? { kind: 'ustack', size: 16, align: 8, stackMap, mode: t.mode, limit: t.limit }
        : { kind: 'kstack', size: 8, align: 8, stackMap, mode: t.mode, limit: t.limit };
    }
    case 'aggregate':
      return { kind: 'int', size: 8, align: 8, signed: t.signed || t.fn === 'avg' };
    case 'special':
      switch (t.name) {
        case 'ksym':
          return { kind: 'ksym', size: 8, align: 8 };
        case 'usym':
          return { kind: 'usym', size: 16, align: 8 };
        case 'inet':
          return { kind: 'inet', size: 24, align: 8 };
        case 'timestamp':
          return { kind: 'timestamp', size: 16, align: 8 };
        case 'username':
          return { kind: 'username', size: 8, align: 8 };
        case 'probe':
          return { kind: 'probe', size: 8, align: 8 };
        case 'strerror':
          return { kind: 'strerror', size: 8, align: 8 };
        case 'signal_name':
          return { kind: 'signal_name', size: 8, align: 8 };
        case 'cgroup_path':
          return { kind: 'cgroup_path', size: 8, align: 8 };
        case 'mac_address':
          return { kind: 'mac_address', size: 6, align: 1 };
        case 'kstack':
          return { kind: 'kstack', size: 8, align: 8, stackMap: '', mode: 'bpftrace', limit: 127 };
        case 'ustack':
          return { kind: 'ustack', size: 16, align: 8, stackMap: '', mode: 'bpftrace', limit: 127 };
      }
      return { kind: 'int', size: 8, align: 8, signed: false };
    case 'unknown':
      return { kind: 'int', size: 8, align: 8, signed: true };
    default:
      return { kind: 'none', size: 0, align: 1 };
  }
}

function composite(kind: 'tuple' | 'record', elems: { name?: string; layout: ValueLayout }[]): ValueLayout {
  let off = 0;
  let align = 1;
  const fields = elems.map((e) => {
    const a = Math.min(8, e.layout.align);
    off = alignUp(off, a);
    const f = { ...(e.name !== undefined ? { name: e.name } : {}), offset: off, layout: e.layout };
    off += e.layout.size;
    align = Math.max(align, a);
    return f;
  });
  return { kind, size: alignUp(off, align), align, fields };
}

function describe(t: TraceType): string {
  switch (t.kind) {
    case 'struct':
      return `${t.tag} ${t.name}`;
    case 'int':
      return `${t.signed ? '' : 'u'}int${t.bits}`;
    case 'pointer':
      return `${describe(t.to)} *`;
    default:
      return t.kind;
  }
}

/** Values held in a register (everything 8 bytes or less that is not memory-like). */
export function isScalarType(t: TraceType | undefined): boolean {
  if (!t) return true;
  switch (t.kind) {
    case 'int':
    case 'bool':
    case 'pointer':
    case 'unknown':
    case 'aggregate':
    case 'none':
    case 'void':
      return true;
    case 'special':
      return !['usym', 'inet', 'timestamp', 'mac_address', 'ustack'].includes(t.name);
    case 'stack':
      return !t.user;
    default:
      return false;
  }
}
