/**
 * The tracing language's types, as the semantic pass computes them, and the TypeProvider hook through which
 * the code generator plugs in kernel BTF (structs, typedefs, enums, probe arguments).
 */
import type { ProbeSpec } from './probes.js';

export interface StructField {
  name: string;
  type: TraceType;
  /** Byte offset within the struct (bit offset / 8 for bitfields), when known. */
  offset?: number;
  bitOffset?: number;
  bitWidth?: number;
}

export type AggregateKind = 'count' | 'sum' | 'avg' | 'min' | 'max' | 'stats' | 'hist' | 'lhist' | 'tseries';

export type TraceType =
  | { kind: 'none' }
  | { kind: 'void' }
  | { kind: 'bool' }
  | { kind: 'int'; bits: 8 | 16 | 32 | 64; signed: boolean; enumName?: string }
  | { kind: 'string'; size: number }
  | { kind: 'buffer'; size: number }
  /** `kernel`: the address of a program variable (`&$x`), read with probe_read_kernel whatever the probe. */
  | { kind: 'pointer'; to: TraceType; kernel?: boolean }
  | { kind: 'array'; of: TraceType; length: number }
  /** A C struct or union (user-defined or from BTF); `fields` undefined when only the name is known. */
  | { kind: 'struct'; tag: 'struct' | 'union'; name: string; size?: number; fields?: StructField[] }
  | { kind: 'tuple'; elems: TraceType[] }
  | { kind: 'record'; fields: { name: string; type: TraceType }[] }
  | { kind: 'stack'; user: boolean; mode: string; limit: number }
  | { kind: 'aggregate'; fn: AggregateKind; signed: boolean }
  /** Runtime-formatted scalars: ksym/usym results, ntop addresses, timestamps, usernames, ... */
  | { kind: 'special'; name: SpecialName }
  /** A type that cannot be known without BTF/DWARF; accepted anywhere, checked later by the code generator. */
  | { kind: 'unknown'; what: string };

export type SpecialName =
  | 'ksym'
  | 'usym'
  | 'inet'
  | 'username'
  | 'timestamp'
  | 'strerror'
  | 'signal_name'
  | 'cgroup_path'
  | 'mac_address'
  | 'probe'
  | 'kstack'
  | 'ustack';

export const NONE: TraceType = { kind: 'none' };
export const BOOL: TraceType = { kind: 'bool' };
export const U8: TraceType = { kind: 'int', bits: 8, signed: false };
export const U16: TraceType = { kind: 'int', bits: 16, signed: false };
export const U32: TraceType = { kind: 'int', bits: 32, signed: false };
export const U64: TraceType = { kind: 'int', bits: 64, signed: false };
export const I8: TraceType = { kind: 'int', bits: 8, signed: true };
export const I16: TraceType = { kind: 'int', bits: 16, signed: true };
export const I32: TraceType = { kind: 'int', bits: 32, signed: true };
export const I64: TraceType = { kind: 'int', bits: 64, signed: true };
export const intType = (bits: 8 | 16 | 32 | 64, signed: boolean): TraceType => ({
  kind: 'int',
  bits,
  signed,
});
export const stringType = (size: number): TraceType => ({ kind: 'string', size });
export const unknown = (what: string): TraceType => ({ kind: 'unknown', what });

/** Name of a type as bpftrace (v0.17) prints it in messages: `int64`, `unsigned int64`, `string[16]`, `count`. */
export function typeName(t: TraceType): string {
  switch (t.kind) {
    case 'none':
      return 'none';
    case 'void':
      return 'void';
    case 'bool':
      return 'bool';
    case 'int':
      if (t.enumName !== undefined) return `enum ${t.enumName}`;
      return `${t.signed ? '' : 'unsigned '}int${t.bits}`;
    case 'string':
      return `string[${t.size}]`;
    case 'buffer':
      return `buffer[${t.size}]`;
    case 'pointer':
      return `${typeName(t.to)} *`;
    case 'array':
      return `${typeName(t.of)}[${t.length}]`;
    case 'struct':
      return `${t.tag} ${t.name}`;
    case 'tuple':
      return `(${t.elems.map(typeName).join(',')})`;
    case 'record':
      return `(${t.fields.map((f) => `${f.name}=${typeName(f.type)}`).join(',')})`;
    case 'stack':
      return t.user ? `ustack` : `kstack`;
    case 'aggregate':
      return t.signed || t.fn === 'count' || t.fn === 'hist' || t.fn === 'lhist' || t.fn === 'tseries'
        ? t.fn
        : `u${t.fn}`;
    case 'special':
      return t.name;
    case 'unknown':
      return t.what;
  }
}

/** The coarse category bpftrace names in some messages ("integer", "string"). */
export function typeCategory(t: TraceType): string {
  switch (t.kind) {
    case 'int':
    case 'bool':
      return 'integer';
    case 'string':
      return 'string';
    case 'buffer':
      return 'buffer';
    case 'pointer':
      return 'pointer';
    case 'tuple':
    case 'record':
      return 'tuple';
    case 'struct':
      return 'record';
    case 'array':
      return 'array';
    case 'aggregate':
      return t.fn;
    case 'stack':
      return t.user ? 'ustack' : 'kstack';
    case 'special':
      return t.name;
    default:
      return t.kind;
  }
}

export const isInt = (t: TraceType): boolean => t.kind === 'int' || t.kind === 'bool';
export const isIntLike = (t: TraceType): boolean =>
  t.kind === 'int' ||
  t.kind === 'bool' ||
  t.kind === 'pointer' ||
  t.kind === 'unknown' ||
  (t.kind === 'aggregate' && ['count', 'sum', 'min', 'max', 'avg'].includes(t.fn));

/** Size in bytes of a value of this type (as stored in a map or on the stack), when fixed. */
export function sizeOf(t: TraceType): number | undefined {
  switch (t.kind) {
    case 'bool':
      return 1;
    case 'int':
      return t.bits / 8;
    case 'string':
    case 'buffer':
      return t.size;
    case 'pointer':
      return 8;
    case 'array': {
      const e = sizeOf(t.of);
      return e === undefined ? undefined : e * t.length;
    }
    case 'struct':
      return t.size;
    case 'tuple': {
      let total = 0;
      let align = 1;
      for (const e of t.elems) {
        const s = sizeOf(e);
        if (s === undefined) return undefined;
        const a = alignOf(e);
        total = Math.ceil(total / a) * a + s;
        align = Math.max(align, a);
      }
      return Math.ceil(total / align) * align;
    }
    case 'record':
      return sizeOf({ kind: 'tuple', elems: t.fields.map((f) => f.type) });
    case 'stack':
    case 'aggregate':
    case 'special':
      return 8;
    default:
      return undefined;
  }
}

export function alignOf(t: TraceType): number {
  switch (t.kind) {
    case 'int':
      return t.bits / 8;
    case 'pointer':
    case 'stack':
    case 'aggregate':
    case 'special':
      return 8;
    case 'array':
      return alignOf(t.of);
    case 'tuple':
      return Math.max(1, ...t.elems.map(alignOf));
    case 'record':
      return Math.max(1, ...t.fields.map((f) => alignOf(f.type)));
    case 'struct':
      return Math.max(1, ...(t.fields ?? []).map((f) => alignOf(f.type)));
    default:
      return 1;
  }
}

/** Structural equality. */
export function sameType(a: TraceType, b: TraceType): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'int': {
      const o = b as typeof a;
      return a.bits === o.bits && a.signed === o.signed;
    }
    case 'string':
    case 'buffer':
      return a.size === (b as typeof a).size;
    case 'pointer':
      return sameType(a.to, (b as typeof a).to);
    case 'array': {
      const o = b as typeof a;
      return a.length === o.length && sameType(a.of, o.of);
    }
    case 'struct':
      return a.name === (b as typeof a).name && a.tag === (b as typeof a).tag;
    case 'tuple': {
      const o = b as typeof a;
      return a.elems.length === o.elems.length && a.elems.every((e, i) => sameType(e, o.elems[i]));
    }
    case 'record': {
      const o = b as typeof a;
      return (
        a.fields.length === o.fields.length &&
        a.fields.every((f, i) => f.name === o.fields[i].name && sameType(f.type, o.fields[i].type))
      );
    }
    case 'aggregate':
      return a.fn === (b as typeof a).fn;
    case 'special':
      return a.name === (b as typeof a).name;
    case 'stack':
      return a.user === (b as typeof a).user;
    default:
      return true;
  }
}

/**
 * Where the semantic pass gets types it cannot see in the script: kernel structs and typedefs (vmlinux BTF),
 * enum constants, and the argument structures of probes (tracepoint format files, BTF function prototypes,
 * DWARF of a traced binary). The code generator supplies one backed by BTF; without one, such types are
 * `unknown` and accepted.
 */
export interface TypeProvider {
  /** A struct or union by name (without the tag). */
  struct?(tag: 'struct' | 'union', name: string): (TraceType & { kind: 'struct' }) | undefined;
  /** A typedef or base type name (`size_t`, `uint64_t`, `pid_t`). */
  typedef?(name: string): TraceType | undefined;
  /** An enum constant (`BTF_VAR_STATIC`). */
  enumValue?(name: string): { value: bigint; enumName: string } | undefined;
  /** The constants of an enum by its name (`skb_drop_reason`), for printing values of that type. */
  enumVariants?(enumName: string): { name: string; value: bigint }[] | undefined;
  /** The `args` structure of a probe (tracepoint fields, fentry/fexit/rawtracepoint/uprobe parameters). */
  probeArgs?(spec: ProbeSpec): (TraceType & { kind: 'struct' }) | undefined;
  /** The return type of the traced function (fexit, uretprobe with DWARF). */
  returnType?(spec: ProbeSpec): TraceType | undefined;
}
