/**
 * The BTF type graph as plain data: one object per type id, fields named after the kernel's
 * `struct btf_type` and its trailing records (Documentation/bpf/btf.rst).
 */

/** BTF kind numbers, as in `include/uapi/linux/btf.h`. */
export const BTF_KIND = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export type BtfKindName = keyof typeof BTF_KIND;

/** Kind names indexed by kind number. */
export const BTF_KIND_NAMES: readonly BtfKindName[] = Object.keys(BTF_KIND) as BtfKindName[];

/** INT encoding bits. */
export const BTF_INT_SIGNED = 1;
export const BTF_INT_CHAR = 2;
export const BTF_INT_BOOL = 4;

/** FUNC linkage (stored in vlen). */
export const BTF_FUNC_STATIC = 0;
export const BTF_FUNC_GLOBAL = 1;
export const BTF_FUNC_EXTERN = 2;

/** VAR linkage. */
export const BTF_VAR_STATIC = 0;
export const BTF_VAR_GLOBAL_ALLOCATED = 1;
export const BTF_VAR_GLOBAL_EXTERN = 2;

export const BTF_MAGIC = 0xeb9f;

interface Common {
  /** Type id (0 is void). */
  id: number;
  /** Name, '' when anonymous. */
  name: string;
  /**
   * Offset of the name in the string section it was read from; the encoder reuses it when the
   * string there still equals `name` (this keeps encode(parse(x)) byte-identical). Optional.
   */
  nameOff?: number;
}

export interface BtfVoid extends Common {
  kind: 'UNKN';
}

export interface BtfInt extends Common {
  kind: 'INT';
  size: number;
  /** Bit set of BTF_INT_SIGNED | BTF_INT_CHAR | BTF_INT_BOOL. */
  encoding: number;
  bitsOffset: number;
  bits: number;
}

/** PTR, TYPEDEF and the modifiers: a name (maybe) and one referenced type. */
export interface BtfRef extends Common {
  kind: 'PTR' | 'TYPEDEF' | 'VOLATILE' | 'CONST' | 'RESTRICT';
  type: number;
}

export interface BtfTypeTag extends Common {
  kind: 'TYPE_TAG';
  type: number;
  /** kind_flag: 1 means the tag is an `__attribute__` rather than a `btf_type_tag`. */
  kindFlag: boolean;
}

export interface BtfArray extends Common {
  kind: 'ARRAY';
  type: number;
  indexType: number;
  nelems: number;
}

export interface BtfMember {
  name: string;
  nameOff?: number;
  type: number;
  /** Offset of the member in bits from the start of the struct. */
  bitOffset: number;
  /** Bitfield width (0: not a bitfield, or not encoded because kindFlag is false). */
  bitfieldSize: number;
}

export interface BtfComposite extends Common {
  kind: 'STRUCT' | 'UNION';
  size: number;
  /** kind_flag: member offsets carry bitfield sizes. */
  kindFlag: boolean;
  members: BtfMember[];
}

export interface BtfEnumValue {
  name: string;
  nameOff?: number;
  value: number;
}

export interface BtfEnum extends Common {
  kind: 'ENUM';
  size: number;
  signed: boolean;
  values: BtfEnumValue[];
}

export interface BtfEnum64Value {
  name: string;
  nameOff?: number;
  /** The 64-bit value (as written: reinterpret as signed when `signed`). */
  value: bigint;
}

export interface BtfEnum64 extends Common {
  kind: 'ENUM64';
  size: number;
  signed: boolean;
  values: BtfEnum64Value[];
}

export interface BtfFwd extends Common {
  kind: 'FWD';
  fwdKind: 'struct' | 'union';
}

export interface BtfFunc extends Common {
  kind: 'FUNC';
  /** A FUNC_PROTO id. */
  type: number;
  /** BTF_FUNC_STATIC | BTF_FUNC_GLOBAL | BTF_FUNC_EXTERN. */
  linkage: number;
}

export interface BtfParam {
  name: string;
  nameOff?: number;
  /** 0 in the last parameter means `...`. */
  type: number;
}

export interface BtfFuncProto extends Common {
  kind: 'FUNC_PROTO';
  returnType: number;
  params: BtfParam[];
}

export interface BtfVar extends Common {
  kind: 'VAR';
  type: number;
  /** BTF_VAR_STATIC | BTF_VAR_GLOBAL_ALLOCATED | BTF_VAR_GLOBAL_EXTERN. */
  linkage: number;
}

export interface BtfVarSecinfo {
  type: number;
  offset: number;
  size: number;
}

export interface BtfDatasec extends Common {
  kind: 'DATASEC';
  size: number;
  vars: BtfVarSecinfo[];
}

export interface BtfFloat extends Common {
  kind: 'FLOAT';
  size: number;
}

export interface BtfDeclTag extends Common {
  kind: 'DECL_TAG';
  type: number;
  /** -1: the tag applies to the type itself; otherwise a member or parameter index. */
  componentIdx: number;
  /** kind_flag: 1 means the tag is an `__attribute__` rather than a `btf_decl_tag`. */
  kindFlag: boolean;
}

export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfRef
  | BtfTypeTag
  | BtfArray
  | BtfComposite
  | BtfEnum
  | BtfEnum64
  | BtfFwd
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag;

export type Endianness = 'little' | 'big';

/** The ids a type refers to (in declaration order), e.g. for graph walks. */
export function typeRefs(t: BtfType): number[] {
  switch (t.kind) {
    case 'PTR':
    case 'TYPEDEF':
    case 'VOLATILE':
    case 'CONST':
    case 'RESTRICT':
    case 'TYPE_TAG':
    case 'FUNC':
    case 'VAR':
    case 'DECL_TAG':
      return [t.type];
    case 'ARRAY':
      return [t.type, t.indexType];
    case 'STRUCT':
    case 'UNION':
      return t.members.map((m) => m.type);
    case 'FUNC_PROTO':
      return [t.returnType, ...t.params.map((p) => p.type)];
    case 'DATASEC':
      return t.vars.map((v) => v.type);
    default:
      return [];
  }
}
