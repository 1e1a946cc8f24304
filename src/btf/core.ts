/**
 * CO-RE ("compile once, run everywhere"): apply the `.BTF.ext` core_relo records of an object to its
 * instructions against a target BTF (the kernel's /sys/kernel/btf/vmlinux, or any BTF), the way libbpf's
 * relo_core.c and libbpf.c do it, step for step:
 *
 * - candidates: every target type whose kind is CO-RE compatible with the local root type (same kind, or
 *   both any kind of enum) and whose "essential" name (the name without a `___flavor` suffix) equals the
 *   local one (bpf_core_find_cands); the list is cached per local type id for the whole object and pruned
 *   to the candidates that matched, as libbpf does;
 * - the local access string (`0:1:2`) is parsed into a low-level spec (every index) and a high-level one
 *   (named fields and array indexes) (bpf_core_parse_spec), and matched against every candidate by field
 *   name through anonymous members and array bounds (bpf_core_spec_match), with bpf_core_fields_are_compat,
 *   bpf_core_types_are_compat (type-based kinds) and bpf_core_types_match (TYPE_MATCHES);
 * - every matching candidate must give the same bit offset and the same value, else the relocation is
 *   ambiguous and fails (libbpf refuses to load);
 * - no candidate: FIELD_EXISTS, TYPE_EXISTS, TYPE_MATCHES, TYPE_SIZE, TYPE_ID_TARGET and ENUMVAL_EXISTS
 *   become 0; the other kinds poison the instruction;
 * - the instruction is patched like bpf_core_patch_insn: ALU/ALU64 imm, LDX/ST/STX off (and the memory
 *   size when the field's size changed and the change is safe: pointers, unsigned integers), LD_IMM64's
 *   64-bit immediate, after checking that the instruction holds the value the local BTF predicts;
 * - poisoning turns the instruction into `call 0xbad2310` (dst=src=off=0, imm 195896080), both slots of an
 *   LD_IMM64, so that the verifier reports `invalid func unknown#195896080` if it is reachable.
 *
 * Everything here is pure: instructions and BTF in, patched instructions and a report out. The report's
 * `log` lines are libbpf's debug messages, word for word (libbpf 1.1, as `bpftool -d prog load` prints
 * them without the `libbpf: ` prefix).
 */
import { TsbpfError } from '../errors.js';
import type { Insn } from '../isa/insn.js';
import { slotIndex } from '../isa/insn.js';
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_B,
  BPF_CALL,
  BPF_DW,
  BPF_H,
  BPF_JMP,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_ST,
  BPF_STX,
  BPF_W,
  cls,
  mode,
  OPCODE_LD_IMM64,
  size,
  srcBit,
} from '../isa/opcodes.js';
import type { Btf } from './btf.js';
import { CORE_RELO_KINDS } from './ext.js';
import { BTF_INT_SIGNED, type BtfType } from './types.js';

// ---------------------------------------------------------------------------------------------------------
// Relocation kinds

/** enum bpf_core_relo_kind. */
export const CORE = {
  FIELD_BYTE_OFFSET: 0,
  FIELD_BYTE_SIZE: 1,
  FIELD_EXISTS: 2,
  FIELD_SIGNED: 3,
  FIELD_LSHIFT_U64: 4,
  FIELD_RSHIFT_U64: 5,
  TYPE_ID_LOCAL: 6,
  TYPE_ID_TARGET: 7,
  TYPE_EXISTS: 8,
  TYPE_SIZE: 9,
  ENUMVAL_EXISTS: 10,
  ENUMVAL_VALUE: 11,
  TYPE_MATCHES: 12,
} as const;

/** The helper id a poisoned instruction calls: 0xbad2310, "bad relo". */
export const CORE_POISON_IMM = 195896080;

/** libbpf's short names (core_relo_kind_str), as its log prints them: `byte_off`, `field_exists`... */
export function coreReloKindStr(kind: number): string {
  return (
    [
      'byte_off',
      'byte_sz',
      'field_exists',
      'signed',
      'lshift_u64',
      'rshift_u64',
      'local_type_id',
      'target_type_id',
      'type_exists',
      'type_size',
      'enumval_exists',
      'enumval_value',
      'type_matches',
    ][kind] ?? 'unknown'
  );
}

const isFieldBased = (k: number) => k >= CORE.FIELD_BYTE_OFFSET && k <= CORE.FIELD_RSHIFT_U64;
const isTypeBased = (k: number) =>
  k === CORE.TYPE_ID_LOCAL ||
  k === CORE.TYPE_ID_TARGET ||
  k === CORE.TYPE_EXISTS ||
  k === CORE.TYPE_MATCHES ||
  k === CORE.TYPE_SIZE;
const isEnumvalBased = (k: number) => k === CORE.ENUMVAL_EXISTS || k === CORE.ENUMVAL_VALUE;

// ---------------------------------------------------------------------------------------------------------
// Errors: libbpf's negative errno values, carried with the message libbpf would warn with.

const EINVAL = 22;
const E2BIG = 7;
const ERANGE = 34;
const EOPNOTSUPP = 95;
const EUCLEAN = 117;
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  [EINVAL]: 'EINVAL',
  [E2BIG]: 'E2BIG',
  [ERANGE]: 'ERANGE',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
  [EUCLEAN]: 'EUCLEAN',
};

class CoreFail extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

const fail = (errno: number, message: string): never => {
  throw new CoreFail(errno, message);
};

const BPF_CORE_SPEC_MAX_LEN = 64;

// ---------------------------------------------------------------------------------------------------------
// BTF helpers in libbpf's terms

/** libbpf's btf_kind_str. */
export function btfKindStr(t: BtfType): string {
  return t.kind === 'UNKN' ? 'void' : t.kind.toLowerCase();
}

/** Length of a name without its `___flavor` suffix (bpf_core_essential_name_len). */
export function essentialNameLength(name: string): number {
  const n = name.length;
  for (let i = n - 5; i >= 0; i--) {
    if (
      name[i] !== '_' &&
      name[i + 1] === '_' &&
      name[i + 2] === '_' &&
      name[i + 3] === '_' &&
      name[i + 4] !== '_'
    )
      return i + 1;
  }
  return n;
}

/** A name without its `___flavor` suffix: `task_struct___old` -> `task_struct`. */
export const essentialName = (name: string): string => name.slice(0, essentialNameLength(name));

const isAnyEnum = (t: BtfType) => t.kind === 'ENUM' || t.kind === 'ENUM64';
const isComposite = (t: BtfType) => t.kind === 'STRUCT' || t.kind === 'UNION';

/** btf_kind_core_compat: the same kind, or both an ENUM/ENUM64. */
function kindCoreCompat(a: BtfType, b: BtfType): boolean {
  return a.kind === b.kind || (isAnyEnum(a) && isAnyEnum(b));
}

function vlen(t: BtfType): number {
  switch (t.kind) {
    case 'STRUCT':
    case 'UNION':
      return t.members.length;
    case 'ENUM':
    case 'ENUM64':
      return t.values.length;
    case 'FUNC_PROTO':
      return t.params.length;
    case 'DATASEC':
      return t.vars.length;
    default:
      return 0;
  }
}

/** skip_mods_and_typedefs: the id and type under typedefs and modifiers. */
function skip(btf: Btf, id: number): { id: number; t: BtfType } {
  try {
    const r = btf.resolve(id);
    return { id: r, t: btf.type(r) };
  } catch {
    return fail(EINVAL, `bad type id ${id}`);
  }
}

/**
 * The type with this id, or undefined. Through type(), not `types[id]`: the target is often the running kernel's
 * BTF, read lazily, and reading `types` would decode all of it.
 */
function typeAt(btf: Btf, id: number): BtfType | undefined {
  return Number.isInteger(id) && id >= 0 && id < btf.typeCount ? btf.type(id) : undefined;
}

function typeById(btf: Btf, id: number): BtfType {
  const t = typeAt(btf, id);
  if (t === undefined) fail(EINVAL, `type id ${id} out of range`);
  return t as BtfType;
}

function resolveSize(btf: Btf, id: number): number {
  try {
    return btf.sizeof(id);
  } catch {
    return fail(EINVAL, `cannot resolve the size of type [${id}]`);
  }
}

/** The u64 value libbpf reads for an enumerator (32-bit values are sign-extended, as C does with s32). */
function enumValue(t: BtfType, idx: number): bigint {
  if (t.kind === 'ENUM') return BigInt.asUintN(64, BigInt(t.values[idx].value | 0));
  if (t.kind === 'ENUM64') return BigInt.asUintN(64, t.values[idx].value);
  return 0n;
}

function enumName(t: BtfType, idx: number): string {
  return t.kind === 'ENUM' || t.kind === 'ENUM64' ? t.values[idx].name : '';
}

function intEncoding(t: BtfType): number {
  return t.kind === 'INT' ? t.encoding : 0;
}

// ---------------------------------------------------------------------------------------------------------
// Type compatibility and matching (relo_core.c)

/**
 * __bpf_core_types_are_compat: may a local type be relocated against a target type (TYPE_EXISTS, TYPE_SIZE,
 * TYPE_ID_TARGET)? 1 compatible, 0 not, -EINVAL on a broken graph. Names are assumed to match already.
 */
export function coreTypesAreCompat(
  localBtf: Btf,
  localId: number,
  targBtf: Btf,
  targId: number,
  level = 32,
): number {
  try {
    return typesAreCompat(localBtf, localId, targBtf, targId, level);
  } catch (e) {
    if (e instanceof CoreFail) return -e.errno;
    throw e;
  }
}

function typesAreCompat(localBtf: Btf, localId: number, targBtf: Btf, targId: number, level: number): number {
  let depth = 32;
  if (!kindCoreCompat(typeById(localBtf, localId), typeById(targBtf, targId))) return 0;
  for (;;) {
    if (--depth < 0) return -EINVAL;
    const l = skip(localBtf, localId);
    const r = skip(targBtf, targId);
    localId = l.id;
    targId = r.id;
    const lt = l.t;
    const tt = r.t;
    if (!kindCoreCompat(lt, tt)) return 0;
    switch (lt.kind) {
      case 'UNKN':
      case 'STRUCT':
      case 'UNION':
      case 'ENUM':
      case 'FWD':
      case 'ENUM64':
        return 1;
      case 'INT':
        return lt.bitsOffset === 0 && (tt as typeof lt).bitsOffset === 0 ? 1 : 0;
      case 'PTR':
        localId = lt.type;
        targId = (tt as typeof lt).type;
        continue;
      case 'ARRAY':
        localId = lt.type;
        targId = (tt as typeof lt).type;
        continue;
      case 'FUNC_PROTO': {
        const tp = tt as typeof lt;
        if (lt.params.length !== tp.params.length) return 0;
        for (let i = 0; i < lt.params.length; i++) {
          if (level <= 0) return -EINVAL;
          const err = typesAreCompat(
            localBtf,
            skip(localBtf, lt.params[i].type).id,
            targBtf,
            skip(targBtf, tp.params[i].type).id,
            level - 1,
          );
          if (err <= 0) return err;
        }
        localId = skip(localBtf, lt.returnType).id;
        targId = skip(targBtf, tp.returnType).id;
        continue;
      }
      default:
        return 0;
    }
  }
}

/** bpf_core_names_match: essential names equal; an anonymous target matches only an anonymous local. */
function namesMatch(localName: string, targName: string): boolean {
  if (targName === '') return localName === '';
  const tl = essentialNameLength(targName);
  const ll = essentialNameLength(localName);
  return tl === ll && localName.slice(0, ll) === targName.slice(0, tl);
}

function enumsMatch(lt: BtfType, tt: BtfType): number {
  if (!isAnyEnum(lt) || !isAnyEnum(tt)) return 0;
  const l = lt as Extract<BtfType, { kind: 'ENUM' | 'ENUM64' }>;
  const t = tt as Extract<BtfType, { kind: 'ENUM' | 'ENUM64' }>;
  if (l.size !== t.size) return 0;
  if (l.values.length > t.values.length) return 0;
  for (const v of l.values) {
    if (!t.values.some((w) => namesMatch(v.name, w.name))) return 0;
  }
  return 1;
}

/**
 * __bpf_core_types_match, the TYPE_MATCHES relation: modifiers and typedefs stripped, same kinds (a struct
 * or union behind a pointer may match a forward declaration, an enum an enum64), integers of the same size
 * and signedness, arrays of the same length, struct members found by name in the target and matching
 * recursively, enum variants found by name, function prototypes argument by argument.
 */
export function coreTypesMatch(
  localBtf: Btf,
  localId: number,
  targBtf: Btf,
  targId: number,
  behindPtr = false,
  level = 32,
): number {
  try {
    return typesMatch(localBtf, localId, targBtf, targId, behindPtr, level);
  } catch (e) {
    if (e instanceof CoreFail) return -e.errno;
    throw e;
  }
}

function typesMatch(
  localBtf: Btf,
  localId: number,
  targBtf: Btf,
  targId: number,
  behindPtr: boolean,
  level: number,
): number {
  let depth = 32;
  if (level <= 0) return -EINVAL;
  for (;;) {
    if (--depth < 0) return -EINVAL;
    const l = skip(localBtf, localId);
    const r = skip(targBtf, targId);
    localId = l.id;
    targId = r.id;
    const lt = l.t;
    const tt = r.t;
    if (!namesMatch(lt.name, tt.name)) return 0;
    switch (lt.kind) {
      case 'UNKN':
        return tt.kind === 'UNKN' ? 1 : 0;
      case 'FWD': {
        const lf = lt.fwdKind === 'union';
        if (behindPtr) {
          if (tt.kind === 'FWD') return lf === (tt.fwdKind === 'union') ? 1 : 0;
          return (tt.kind === 'STRUCT' && !lf) || (tt.kind === 'UNION' && lf) ? 1 : 0;
        }
        if (tt.kind !== 'FWD') return 0;
        return lf === (tt.fwdKind === 'union') ? 1 : 0;
      }
      case 'ENUM':
      case 'ENUM64':
        return enumsMatch(lt, tt);
      case 'STRUCT':
      case 'UNION': {
        if (behindPtr) {
          if (lt.kind === tt.kind) return 1;
          if (tt.kind !== 'FWD') return 0;
          return (lt.kind === 'UNION') === (tt.fwdKind === 'union') ? 1 : 0;
        }
        if (lt.kind !== tt.kind) return 0;
        const tm = (tt as typeof lt).members;
        if (lt.members.length > tm.length) return 0;
        for (const lm of lt.members) {
          let matched = false;
          for (const m of tm) {
            if (!namesMatch(lm.name, m.name)) continue;
            const err = typesMatch(localBtf, lm.type, targBtf, m.type, behindPtr, level - 1);
            if (err < 0) return err;
            if (err > 0) {
              matched = true;
              break;
            }
          }
          if (!matched) return 0;
        }
        return 1;
      }
      case 'INT': {
        if (tt.kind !== 'INT') return 0;
        return lt.size === tt.size && (lt.encoding & BTF_INT_SIGNED) === (tt.encoding & BTF_INT_SIGNED)
          ? 1
          : 0;
      }
      case 'PTR':
        if (tt.kind !== 'PTR') return 0;
        behindPtr = true;
        localId = lt.type;
        targId = tt.type;
        continue;
      case 'ARRAY':
        if (tt.kind !== 'ARRAY') return 0;
        if (lt.nelems !== tt.nelems) return 0;
        localId = lt.type;
        targId = tt.type;
        continue;
      case 'FUNC_PROTO': {
        if (tt.kind !== 'FUNC_PROTO') return 0;
        if (lt.params.length !== tt.params.length) return 0;
        for (let i = 0; i < lt.params.length; i++) {
          const err = typesMatch(
            localBtf,
            lt.params[i].type,
            targBtf,
            tt.params[i].type,
            behindPtr,
            level - 1,
          );
          if (err <= 0) return err;
        }
        localId = lt.returnType;
        targId = tt.returnType;
        continue;
      }
      default:
        return 0;
    }
  }
}

/** bpf_core_fields_are_compat: may a local field be relocated to a target field of this type? */
function fieldsAreCompat(localBtf: Btf, localId: number, targBtf: Btf, targId: number): number {
  for (;;) {
    const l = skip(localBtf, localId);
    const r = skip(targBtf, targId);
    const lt = l.t;
    const tt = r.t;
    if (isComposite(lt) && isComposite(tt)) return 1;
    if (!kindCoreCompat(lt, tt)) return 0;
    switch (lt.kind) {
      case 'PTR':
      case 'FLOAT':
        return 1;
      case 'FWD':
      case 'ENUM64':
      case 'ENUM': {
        const ll = essentialNameLength(lt.name);
        const tl = essentialNameLength(tt.name);
        return ll === 0 || tl === 0 || (ll === tl && lt.name.slice(0, ll) === tt.name.slice(0, tl)) ? 1 : 0;
      }
      case 'INT':
        return lt.bitsOffset === 0 && (tt as typeof lt).bitsOffset === 0 ? 1 : 0;
      case 'ARRAY':
        localId = lt.type;
        targId = (tt as typeof lt).type;
        continue;
      default:
        return 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Specs

interface Accessor {
  typeId: number;
  idx: number;
  /** Field or enumerator name; undefined for array (and the root) accessors. */
  name?: string;
}

/** A parsed access specification (struct bpf_core_spec). */
export interface CoreSpec {
  btf: Btf;
  rootTypeId: number;
  kind: number;
  /** High-level accessors: named fields and array indexes. */
  spec: Accessor[];
  /** Low-level spec: every index of the access string. */
  raw: number[];
  bitOffset: number;
}

function isFlexArr(btf: Btf, acc: Accessor | undefined, nelems: number): boolean {
  if (acc === undefined || acc.name === undefined || nelems > 0) return false;
  const t = typeAt(btf, acc.typeId);
  return t !== undefined && acc.idx === vlen(t) - 1;
}

/** bpf_core_parse_spec: an access string against the local BTF. */
function parseSpec(
  btf: Btf,
  rootTypeId: number,
  accessStr: string,
  kind: number,
  progName: string,
): CoreSpec {
  if (accessStr === '' || accessStr.startsWith(':')) fail(EINVAL, 'empty access string');
  const spec: CoreSpec = { btf, rootTypeId, kind, spec: [], raw: [], bitOffset: 0 };
  if (isTypeBased(kind)) {
    if (accessStr !== '0') fail(EINVAL, `type-based relocation with access string '${accessStr}'`);
    return spec;
  }
  // sscanf("%d") over the ':'-separated parts, as libbpf parses them.
  let s = accessStr;
  while (s.length > 0) {
    if (s[0] === ':') s = s.slice(1);
    const m = /^\s*([+-]?\d+)/.exec(s);
    if (!m) fail(EINVAL, `bad access string '${accessStr}'`);
    if (spec.raw.length === BPF_CORE_SPEC_MAX_LEN) fail(E2BIG, 'access string too long');
    s = s.slice((m as RegExpExecArray)[0].length);
    spec.raw.push(Number((m as RegExpExecArray)[1]) | 0);
  }
  if (spec.raw.length === 0) fail(EINVAL, 'empty access string');

  let { id, t } = skip(btf, rootTypeId);
  let accessIdx = spec.raw[0];
  spec.spec.push({ typeId: id, idx: accessIdx });

  if (isEnumvalBased(kind)) {
    if (!isAnyEnum(t) || spec.raw.length > 1 || accessIdx < 0 || accessIdx >= vlen(t))
      fail(EINVAL, 'enum value relocation needs an enum type and one value index');
    spec.spec[0].name = enumName(t, accessIdx);
    return spec;
  }
  if (!isFieldBased(kind)) fail(EINVAL, `unknown relocation kind ${kind}`);

  let sz = resolveSize(btf, id);
  spec.bitOffset = accessIdx * sz * 8;
  for (let i = 1; i < spec.raw.length; i++) {
    ({ id, t } = skip(btf, id));
    accessIdx = spec.raw[i];
    if (isComposite(t)) {
      const members = (t as Extract<BtfType, { kind: 'STRUCT' | 'UNION' }>).members;
      if (accessIdx < 0 || accessIdx >= members.length)
        fail(EINVAL, `member index ${accessIdx} out of range`);
      const m = members[accessIdx];
      spec.bitOffset += m.bitOffset;
      if (m.name !== '') spec.spec.push({ typeId: id, idx: accessIdx, name: m.name });
      id = m.type;
    } else if (t.kind === 'ARRAY') {
      const nelems = t.nelems;
      const flex = isFlexArr(btf, spec.spec[spec.spec.length - 1], nelems);
      ({ id, t } = skip(btf, t.type));
      if (!flex && accessIdx >= nelems) fail(EINVAL, `array index ${accessIdx} out of bounds`);
      spec.spec.push({ typeId: id, idx: accessIdx });
      sz = resolveSize(btf, id);
      spec.bitOffset += accessIdx * sz * 8;
    } else {
      fail(
        EINVAL,
        `prog '${progName}': relo for [${rootTypeId}] ${accessStr} (at idx ${i}) captures type [${id}] of unexpected kind ${btfKindStr(t)}`,
      );
    }
  }
  return spec;
}

/** bpf_core_match_member: find the local named field in a target composite, through anonymous members. */
function matchMember(
  localBtf: Btf,
  localAcc: Accessor,
  targBtf: Btf,
  targIdIn: number,
  spec: CoreSpec,
  next: { id: number },
): number {
  const { id: targId, t: tt } = skip(targBtf, targIdIn);
  if (!isComposite(tt)) return 0;
  const lt = typeById(localBtf, localAcc.typeId) as Extract<BtfType, { kind: 'STRUCT' | 'UNION' }>;
  const localMember = lt.members[localAcc.idx];
  const localName = localMember.name;
  const members = (tt as Extract<BtfType, { kind: 'STRUCT' | 'UNION' }>).members;
  for (let i = 0; i < members.length; i++) {
    const m = members[i];
    if (spec.raw.length === BPF_CORE_SPEC_MAX_LEN) fail(E2BIG, 'struct/union/array nesting too deep');
    spec.bitOffset += m.bitOffset;
    spec.raw.push(i);
    if (m.name === '') {
      const found = matchMember(localBtf, localAcc, targBtf, m.type, spec, next);
      if (found) return found;
    } else if (m.name === localName) {
      spec.spec.push({ typeId: targId, idx: i, name: m.name });
      next.id = m.type;
      const found = fieldsAreCompat(localBtf, localMember.type, targBtf, m.type);
      if (!found) spec.spec.pop();
      return found;
    }
    spec.bitOffset -= m.bitOffset;
    spec.raw.pop();
  }
  return 0;
}

/** bpf_core_spec_match: 1 and the target spec when the local spec matches candidate `targId`, else 0. */
function specMatch(local: CoreSpec, targBtf: Btf, targIdIn: number): { found: number; spec: CoreSpec } {
  const targ: CoreSpec = {
    btf: targBtf,
    rootTypeId: targIdIn,
    kind: local.kind,
    spec: [],
    raw: [],
    bitOffset: 0,
  };
  if (isTypeBased(local.kind)) {
    const found =
      local.kind === CORE.TYPE_MATCHES
        ? typesMatch(local.btf, local.rootTypeId, targBtf, targIdIn, false, 32)
        : typesAreCompat(local.btf, local.rootTypeId, targBtf, targIdIn, 32);
    return { found, spec: targ };
  }
  let targId = targIdIn;
  if (isEnumvalBased(local.kind)) {
    const r = skip(targBtf, targId);
    targId = r.id;
    if (!isAnyEnum(r.t)) return { found: 0, spec: targ };
    const localName = local.spec[0].name ?? '';
    const ll = essentialNameLength(localName);
    const n = vlen(r.t);
    for (let i = 0; i < n; i++) {
      const name = enumName(r.t, i);
      if (essentialNameLength(name) !== ll) continue;
      if (localName.slice(0, ll) === name.slice(0, ll)) {
        targ.spec.push({ typeId: targId, idx: i, name });
        targ.raw.push(i);
        return { found: 1, spec: targ };
      }
    }
    return { found: 0, spec: targ };
  }
  if (!isFieldBased(local.kind)) fail(EINVAL, `unknown relocation kind ${local.kind}`);

  for (let i = 0; i < local.spec.length; i++) {
    const localAcc = local.spec[i];
    const r = skip(targBtf, targId);
    targId = r.id;
    if (localAcc.name !== undefined) {
      const next = { id: targId };
      const matched = matchMember(local.btf, localAcc, targBtf, targId, targ, next);
      if (matched <= 0) return { found: matched, spec: targ };
      targId = next.id;
    } else {
      if (i > 0) {
        if (r.t.kind !== 'ARRAY') return { found: 0, spec: targ };
        const flex = isFlexArr(targBtf, targ.spec[targ.spec.length - 1], r.t.nelems);
        if (!flex && localAcc.idx >= r.t.nelems) return { found: 0, spec: targ };
        targId = skip(targBtf, r.t.type).id;
      }
      if (targ.raw.length === BPF_CORE_SPEC_MAX_LEN) fail(E2BIG, 'struct/union/array nesting too deep');
      targ.spec.push({ typeId: targId, idx: localAcc.idx });
      targ.raw.push(localAcc.idx);
      const sz = resolveSize(targBtf, targId);
      targ.bitOffset += localAcc.idx * sz * 8;
    }
  }
  return { found: 1, spec: targ };
}

/** bpf_core_format_spec: `<byte_off> [15] struct task_struct.pid (0:0 @ offset 0)`. */
export function formatCoreSpec(spec: CoreSpec): string {
  const root = typeAt(spec.btf, spec.rootTypeId);
  let out = `<${coreReloKindStr(spec.kind)}> [${spec.rootTypeId}] ${root ? btfKindStr(root) : '?'} ${root?.name || '<anon>'}`;
  if (isTypeBased(spec.kind)) return out;
  if (isEnumvalBased(spec.kind)) {
    const t = skip(spec.btf, spec.rootTypeId).t;
    // A candidate that did not match has an empty raw spec; libbpf's zeroed memory then names value 0.
    const idx = spec.raw[0] ?? 0;
    if (t.kind === 'ENUM' && idx < t.values.length) {
      const v = t.values[idx];
      out += `::${v.name} = ${t.signed ? v.value | 0 : v.value >>> 0}`;
    } else if (t.kind === 'ENUM64' && idx < t.values.length) {
      const v = t.values[idx];
      out += `::${v.name} = ${t.signed ? BigInt.asIntN(64, v.value) : BigInt.asUintN(64, v.value)}`;
    }
    return out;
  }
  if (isFieldBased(spec.kind)) {
    spec.spec.forEach((a, i) => {
      if (a.name !== undefined) out += `.${a.name}`;
      else if (i > 0 || a.idx > 0) out += `[${a.idx >>> 0}]`;
    });
    out += ` (${(spec.raw.length ? spec.raw : [0]).join(':')}`;
    const b = spec.bitOffset >>> 0;
    out += b % 8 ? ` @ offset ${Math.floor(b / 8)}.${b % 8})` : ` @ offset ${b / 8})`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Values

/** struct bpf_core_relo_res. */
interface ReloRes {
  origVal: bigint;
  newVal: bigint;
  poison: boolean;
  validate: boolean;
  failMemszAdjust: boolean;
  origSz: number;
  newSz: number;
  origTypeId: number;
  newTypeId: number;
  /** Why the instruction is poisoned (our words; libbpf only logs it). */
  reason?: string;
}

interface FieldVal {
  val: bigint;
  fieldSz: number;
  typeId: number;
  validate: boolean;
}

function calcFieldRelo(
  kind: number,
  spec: CoreSpec | undefined,
  insnIdx: number,
  progName: string,
  littleEndian: boolean,
): FieldVal {
  const out: FieldVal = { val: 0n, fieldSz: 0, typeId: 0, validate: true };
  if (kind === CORE.FIELD_EXISTS) {
    out.val = spec ? 1n : 0n;
    return out;
  }
  if (!spec) fail(EUCLEAN, 'no target field');
  const s = spec as CoreSpec;
  const acc = s.spec[s.spec.length - 1];
  const t = typeById(s.btf, acc.typeId);
  if (acc.name === undefined) {
    if (kind === CORE.FIELD_BYTE_OFFSET) {
      out.val = BigInt(s.bitOffset >>> 3);
      out.fieldSz = resolveSize(s.btf, acc.typeId);
      out.typeId = acc.typeId;
    } else if (kind === CORE.FIELD_BYTE_SIZE) {
      out.val = BigInt(resolveSize(s.btf, acc.typeId));
    } else {
      fail(EINVAL, `prog '${progName}': relo ${kind} at insn #${insnIdx} can't be applied to array access`);
    }
    out.validate = true;
    return out;
  }
  const members = (t as Extract<BtfType, { kind: 'STRUCT' | 'UNION' }>).members;
  const m = members[acc.idx];
  const { id: fieldTypeId, t: mt } = skip(s.btf, m.type);
  const bitOff = s.bitOffset;
  let bitSz = m.bitfieldSize;
  const bitfield = bitSz > 0;
  let byteSz: number;
  let byteOff: number;
  if (bitfield) {
    byteSz = 'size' in mt ? (mt.size as number) : 0;
    if (byteSz <= 0) fail(EINVAL, 'bitfield of a type without size');
    byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    while (bitOff + bitSz - byteOff * 8 > byteSz * 8) {
      if (byteSz >= 8)
        fail(E2BIG, `prog '${progName}': relo ${kind} at insn #${insnIdx} can't be satisfied for bitfield`);
      byteSz *= 2;
      byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    }
  } else {
    byteSz = resolveSize(s.btf, fieldTypeId);
    byteOff = Math.floor(s.bitOffset / 8);
    bitSz = byteSz * 8;
  }
  out.validate = !bitfield;
  switch (kind) {
    case CORE.FIELD_BYTE_OFFSET:
      out.val = BigInt(byteOff);
      if (!bitfield) {
        out.fieldSz = byteSz;
        out.typeId = fieldTypeId;
      }
      break;
    case CORE.FIELD_BYTE_SIZE:
      out.val = BigInt(byteSz);
      break;
    case CORE.FIELD_SIGNED:
      out.val =
        (isAnyEnum(mt) && (mt as { signed: boolean }).signed) ||
        (mt.kind === 'INT' && mt.encoding & BTF_INT_SIGNED)
          ? 1n
          : 0n;
      out.validate = true;
      break;
    case CORE.FIELD_LSHIFT_U64:
      out.val = BigInt.asUintN(
        64,
        littleEndian
          ? BigInt(64 - (bitOff + bitSz - byteOff * 8))
          : BigInt((8 - byteSz) * 8 + (bitOff - byteOff * 8)),
      );
      break;
    case CORE.FIELD_RSHIFT_U64:
      out.val = BigInt.asUintN(64, BigInt(64 - bitSz));
      out.validate = true;
      break;
    default:
      fail(EOPNOTSUPP, 'unsupported');
  }
  return out;
}

function calcTypeRelo(kind: number, spec: CoreSpec | undefined): { val: bigint; validate: boolean } {
  if (!spec) return { val: 0n, validate: true };
  switch (kind) {
    case CORE.TYPE_ID_TARGET:
      return { val: BigInt(spec.rootTypeId), validate: false };
    case CORE.TYPE_EXISTS:
    case CORE.TYPE_MATCHES:
      return { val: 1n, validate: true };
    case CORE.TYPE_SIZE:
      return { val: BigInt(resolveSize(spec.btf, spec.rootTypeId)), validate: true };
    default:
      return fail(EOPNOTSUPP, 'unsupported');
  }
}

function calcEnumvalRelo(kind: number, spec: CoreSpec | undefined): bigint {
  switch (kind) {
    case CORE.ENUMVAL_EXISTS:
      return spec ? 1n : 0n;
    case CORE.ENUMVAL_VALUE: {
      if (!spec) fail(EUCLEAN, 'no target enumerator');
      const s = spec as CoreSpec;
      return enumValue(typeById(s.btf, s.spec[0].typeId), s.spec[0].idx);
    }
    default:
      return fail(EOPNOTSUPP, 'unsupported');
  }
}

/** bpf_core_calc_relo: original and new values for one candidate (or none). */
function calcRelo(
  kind: number,
  local: CoreSpec,
  targ: CoreSpec | undefined,
  ctx: { insnIdx: number; progName: string; reloIdx: number; littleEndian: boolean },
): ReloRes {
  const res: ReloRes = {
    origVal: 0n,
    newVal: 0n,
    poison: false,
    validate: true,
    failMemszAdjust: false,
    origSz: 0,
    newSz: 0,
    origTypeId: 0,
    newTypeId: 0,
  };
  try {
    if (isFieldBased(kind)) {
      const o = calcFieldRelo(kind, local, ctx.insnIdx, ctx.progName, ctx.littleEndian);
      res.origVal = o.val;
      res.origSz = o.fieldSz;
      res.origTypeId = o.typeId;
      res.validate = o.validate;
      const n = calcFieldRelo(kind, targ, ctx.insnIdx, ctx.progName, ctx.littleEndian);
      res.newVal = n.val;
      res.newSz = n.fieldSz;
      res.newTypeId = n.typeId;
      if (res.origSz !== res.newSz && targ) {
        const ot = typeById(local.btf, res.origTypeId);
        const nt = typeById(targ.btf, res.newTypeId);
        const safe =
          (ot.kind === 'PTR' && nt.kind === 'PTR') ||
          (ot.kind === 'INT' &&
            nt.kind === 'INT' &&
            intEncoding(ot) !== BTF_INT_SIGNED &&
            intEncoding(nt) !== BTF_INT_SIGNED);
        if (!safe) res.failMemszAdjust = true;
      }
    } else if (isTypeBased(kind)) {
      const o = calcTypeRelo(kind, local);
      res.origVal = o.val;
      res.validate = o.validate;
      res.newVal = calcTypeRelo(kind, targ).val;
    } else if (isEnumvalBased(kind)) {
      res.origVal = calcEnumvalRelo(kind, local);
      res.newVal = calcEnumvalRelo(kind, targ);
    } else {
      fail(EOPNOTSUPP, 'unsupported');
    }
  } catch (e) {
    if (e instanceof CoreFail && e.errno === EUCLEAN) {
      res.poison = true;
      res.reason = targ === undefined ? 'no matching target found' : e.message;
      return res;
    }
    if (e instanceof CoreFail && e.errno === EOPNOTSUPP) {
      fail(
        EOPNOTSUPP,
        `prog '${ctx.progName}': relo #${ctx.reloIdx}: unrecognized CO-RE relocation ${coreReloKindStr(kind)} (${kind}) at insn #${ctx.insnIdx}`,
      );
    }
    throw e;
  }
  return res;
}

// ---------------------------------------------------------------------------------------------------------
// Candidates

/**
 * Candidate cache, shared by all relocations of one object as libbpf shares it: local type id -> the target
 * type ids still in the running (pruned to those that matched a relocation).
 */
export type CoreCandidateCache = Map<number, number[]>;

/** bpf_core_add_cands over one target BTF: kind-compatible types with the same essential name. */
export function findCoreCandidates(localBtf: Btf, localTypeId: number, targetBtf: Btf): number[] {
  const lt = typeById(localBtf, localTypeId);
  const localName = lt.name;
  if (localName === '') return [];
  const ll = essentialNameLength(localName);
  const ess = localName.slice(0, ll);
  const out: number[] = [];
  // By name (the essential name, or it with a ___flavor): a lazy target decodes only these.
  const named = [...targetBtf.findAllByName(ess), ...targetBtf.findAllByNamePrefix(`${ess}___`)];
  for (const id of named.sort((a, b) => a - b)) {
    const t = targetBtf.type(id);
    if (!kindCoreCompat(t, lt)) continue;
    const n = t.name;
    if (n === '' || !n.startsWith(ess)) continue;
    if (essentialNameLength(n) !== ll) continue;
    out.push(id);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Patching

function poisonInsn(): Insn {
  return { code: BPF_JMP | BPF_CALL, dst: 0, src: 0, off: 0, imm: CORE_POISON_IMM };
}

const sizeBytes = (code: number): number =>
  ({ [BPF_DW]: 8, [BPF_W]: 4, [BPF_H]: 2, [BPF_B]: 1 })[size(code)] ?? -1;
const bytesToSize = (n: number): number => ({ 8: BPF_DW, 4: BPF_W, 2: BPF_H, 1: BPF_B })[n] ?? -1;

/** bpf_core_patch_insn. Returns the replacement instructions (two for a poisoned LD_IMM64). */
function patchInsn(
  insn: Insn,
  res: ReloRes,
  log: string[],
  ctx: { progName: string; reloIdx: number; insnIdx: number },
): Insn[] {
  const { progName, reloIdx, insnIdx } = ctx;
  const p = `prog '${progName}': relo #${reloIdx}:`;
  const poison = (): Insn[] => {
    if (insn.code === OPCODE_LD_IMM64) {
      // libbpf 1.1 (bpftool 7.1) logs the first slot first.
      log.push(`${p} substituting insn #${insnIdx} w/ invalid insn`);
      log.push(`${p} substituting insn #${insnIdx + 1} w/ invalid insn`);
      return [poisonInsn(), poisonInsn()];
    }
    log.push(`${p} substituting insn #${insnIdx} w/ invalid insn`);
    return [poisonInsn()];
  };
  if (res.poison) return poison();
  const orig = res.origVal;
  const nv = res.newVal;
  const c = cls(insn.code);
  switch (c) {
    case BPF_ALU:
    case BPF_ALU64: {
      if (srcBit(insn.code) !== BPF_K)
        fail(EINVAL, `${p} insn #${insnIdx} (ALU/ALU64) has a register source`);
      if (res.validate && BigInt.asUintN(64, BigInt(insn.imm)) !== orig)
        fail(
          EINVAL,
          `${p} unexpected insn #${insnIdx} (ALU/ALU64) value: got ${insn.imm >>> 0}, exp ${orig} -> ${nv}`,
        );
      const imm = Number(BigInt.asIntN(32, nv));
      log.push(
        `${p} patched insn #${insnIdx} (ALU/ALU64) imm ${BigInt.asUintN(64, BigInt(insn.imm))} -> ${nv}`,
      );
      return [{ ...insn, imm }];
    }
    case BPF_LDX:
    case BPF_ST:
    case BPF_STX: {
      if (res.validate && BigInt.asUintN(64, BigInt(insn.off)) !== orig)
        fail(
          EINVAL,
          `${p} unexpected insn #${insnIdx} (LDX/ST/STX) value: got ${insn.off >>> 0}, exp ${orig} -> ${nv}`,
        );
      if (nv > 0x7fffn) fail(ERANGE, `${p} insn #${insnIdx} (LDX/ST/STX) value too big: ${nv}`);
      if (res.failMemszAdjust) {
        log.push(
          `${p} insn #${insnIdx} (LDX/ST/STX) accesses field incorrectly. Make sure you are accessing pointers, unsigned integers, or fields of matching type and size.`,
        );
        res.reason = 'the field changed size and is neither a pointer nor an unsigned integer';
        res.poison = true;
        return poison();
      }
      const out: Insn = { ...insn, off: Number(nv) };
      log.push(
        `${p} patched insn #${insnIdx} (LDX/ST/STX) off ${BigInt.asUintN(64, BigInt(insn.off))} -> ${nv}`,
      );
      if (res.newSz !== res.origSz) {
        const have = sizeBytes(insn.code);
        if (have !== res.origSz)
          fail(
            EINVAL,
            `${p} insn #${insnIdx} (LDX/ST/STX) unexpected mem size: got ${have}, exp ${res.origSz}`,
          );
        const sz = bytesToSize(res.newSz);
        if (sz < 0) fail(EINVAL, `${p} insn #${insnIdx} (LDX/ST/STX) invalid new mem size: ${res.newSz}`);
        out.code = mode(insn.code) | sz | cls(insn.code);
        log.push(`${p} patched insn #${insnIdx} (LDX/ST/STX) mem_sz ${res.origSz} -> ${res.newSz}`);
      }
      return [out];
    }
    case BPF_LD: {
      if (insn.code !== OPCODE_LD_IMM64 || insn.src !== 0 || insn.off !== 0 || insn.imm2 === undefined)
        fail(EINVAL, `${p} insn #${insnIdx} (LDIMM64) has unexpected form`);
      const imm = BigInt(insn.imm >>> 0) | (BigInt((insn.imm2 ?? 0) >>> 0) << 32n);
      if (res.validate && imm !== orig)
        fail(EINVAL, `${p} unexpected insn #${insnIdx} (LDIMM64) value: got ${imm}, exp ${orig} -> ${nv}`);
      log.push(`${p} patched insn #${insnIdx} (LDIMM64) imm64 ${imm} -> ${nv}`);
      return [
        {
          ...insn,
          imm: Number(BigInt.asIntN(32, nv)),
          imm2: Number(BigInt.asIntN(32, nv >> 32n)),
        },
      ];
    }
    default:
      return fail(
        EINVAL,
        `${p} trying to relocate unrecognized insn #${insnIdx}, code:0x${insn.code.toString(16)}, src:0x${insn.src.toString(16)}, dst:0x${insn.dst.toString(16)}, off:0x${(insn.off & 0xffff).toString(16)}, imm:0x${(insn.imm >>> 0).toString(16)}`,
      );
  }
}

// ---------------------------------------------------------------------------------------------------------
// The engine

/**
 * One core_relo record: BtfExtCoreRelo fits (`insnOff`: byte offset in the ELF section), and so does
 * ObjectSpec's per-program CoreRelo (`pc`: slot in the program's instructions).
 */
export interface CoreReloRecord {
  /** Byte offset of the instruction (used when `pc` is absent). */
  insnOff?: number;
  /** Slot index of the instruction. */
  pc?: number;
  typeId: number;
  accessStr: string;
  kind: number;
}

/** What happened to one relocation. */
export interface CoreRelocationReport {
  /** Index of the record in its section (libbpf's `relo #N`). */
  index: number;
  /** Slot of the instruction in the section. */
  slot: number;
  /** Slot of the instruction in its program (libbpf's `insn #N`). */
  insnIndex: number;
  program: string;
  kind: number;
  /** `BPF_CORE_FIELD_BYTE_OFFSET`... */
  kindName: string;
  accessStr: string;
  localTypeId: number;
  /** `struct task_struct` */
  localType: string;
  /** libbpf's formatted local spec: `<byte_off> [15] struct task_struct.pid (0:0 @ offset 0)`. */
  localSpec: string;
  /** Every candidate tried, with its formatted spec and whether it matched. */
  candidates: { id: number; type: string; matched: boolean; spec: string }[];
  /** The matching target type, when one matched. */
  targetTypeId?: number;
  targetSpec?: string;
  /** Value the local BTF gives (what the compiler put in the instruction). */
  localValue: bigint;
  /** Relocated value (for a poisoned instruction: 0). */
  targetValue: bigint;
  /** The instruction (and the second slot of an LD_IMM64) now calls helper 0xbad2310. */
  poisoned: boolean;
  poisonReason?: string;
  /** Why the relocation failed (libbpf refuses to load the object then); only with `strict: false`. */
  error?: string;
  /** Original and patched instruction. */
  before: Insn;
  after: Insn[];
}

export interface CoreRelocateOptions {
  /** Programs in the instruction array, for libbpf's program names and program-relative `insn #N`. */
  programs?: readonly { name: string; slot: number; slots: number }[];
  /** Name of the target BTF in messages (libbpf: `vmlinux`). */
  targetName?: string;
  /** Candidate cache to share between the sections of one object (libbpf shares one per object). */
  cache?: CoreCandidateCache;
  /**
   * Throw on the first relocation that fails (as libbpf fails the load). Default true; with false the
   * failure is recorded in the report's `error` and the instruction is left as it was.
   */
  strict?: boolean;
  /** libbpf's debug lines are appended here. */
  log?: string[];
}

export interface CoreRelocateResult {
  /** The instructions with every relocation applied (a poisoned LD_IMM64 becomes two call instructions). */
  insns: Insn[];
  relocations: CoreRelocationReport[];
  /** libbpf's debug log for these relocations. */
  log: string[];
}

function typeLabel(btf: Btf, id: number): string {
  const t = typeAt(btf, id);
  return t ? `${btfKindStr(t)} ${t.name}` : `[${id}]`;
}

/**
 * Applies the CO-RE relocations of one code section to its instructions.
 *
 * `insns` are the section's instructions (an LD_IMM64 is one element with `imm2`); record `insnOff`s are byte
 * offsets in that section. Returns new instructions (the input is not changed) and one report per record.
 * Throws TsbpfError('btf') naming the relocation when one cannot be applied (ambiguous candidates, an
 * instruction that does not hold the expected value, a malformed access string...), unless `strict: false`.
 */
export function applyCoreRelocations(
  insns: readonly Insn[],
  records: readonly CoreReloRecord[],
  localBtf: Btf,
  targetBtf: Btf,
  options: CoreRelocateOptions = {},
): CoreRelocateResult {
  const out = insns.map((i) => ({ ...i }));
  const slots = slotIndex(insns);
  const bySlot = new Map<number, number>();
  slots.forEach((s, i) => {
    if (i < insns.length) bySlot.set(s, i);
  });
  // Poisoning an LD_IMM64 splits it; keep element positions stable by collecting replacements.
  const replacement = new Map<number, Insn[]>();
  const cache = options.cache ?? new Map<number, number[]>();
  const log = options.log ?? [];
  const strict = options.strict ?? true;
  const targetName = options.targetName ?? 'vmlinux';
  const littleEndian = localBtf.endianness === 'little';
  const relocations: CoreRelocationReport[] = [];

  records.forEach((rec, reloIdx) => {
    const slot = rec.pc ?? (rec.insnOff ?? Number.NaN) / 8;
    const prog = options.programs?.find((p) => slot >= p.slot && slot < p.slot + p.slots);
    const progName = prog?.name ?? '';
    const insnIdx = prog ? slot - prog.slot : slot;
    const at = bySlot.get(slot);
    const localT = typeAt(localBtf, rec.typeId);
    const report: CoreRelocationReport = {
      index: reloIdx,
      slot,
      insnIndex: insnIdx,
      program: progName,
      kind: rec.kind,
      kindName: CORE_RELO_KINDS[rec.kind] ?? `unknown(${rec.kind})`,
      accessStr: rec.accessStr,
      localTypeId: rec.typeId,
      localType: localT ? `${btfKindStr(localT)} ${localT.name || '<anon>'}` : `[${rec.typeId}]`,
      localSpec: '',
      candidates: [],
      localValue: 0n,
      targetValue: 0n,
      poisoned: false,
      before: at === undefined ? { code: 0, dst: 0, src: 0, off: 0, imm: 0 } : { ...insns[at] },
      after: [],
    };
    relocations.push(report);
    try {
      if (!Number.isInteger(slot) || at === undefined)
        fail(EINVAL, `relo #${reloIdx}: insn #${slot} is not the start of an instruction here`);
      if (localT === undefined) fail(EINVAL, `relo #${reloIdx}: type id ${rec.typeId} out of range`);
      const res = resolveRelo(
        rec,
        reloIdx,
        progName,
        insnIdx,
        localBtf,
        targetBtf,
        targetName,
        cache,
        log,
        report,
        littleEndian,
      );
      const patched = patchInsn(insns[at as number], res, log, { progName, reloIdx, insnIdx });
      report.localValue = res.origVal;
      report.targetValue = res.newVal;
      report.poisoned = res.poison;
      if (res.poison) report.poisonReason = res.reason;
      report.after = patched;
      replacement.set(at as number, patched);
    } catch (e) {
      if (!(e instanceof CoreFail)) throw e;
      const errname = ERRNO_NAMES[e.errno] ?? String(e.errno);
      const msg = `${e.message} (${errname})`;
      log.push(`prog '${progName}': relo #${reloIdx}: failed to relocate: -${errname}`);
      report.error = msg;
      report.after = [{ ...report.before }];
      if (strict)
        throw new TsbpfError(
          'btf',
          `CO-RE: prog '${progName}': relo #${reloIdx} (${report.kindName} ${report.localType} ${rec.accessStr}, insn #${insnIdx}): ${msg}`,
        );
    }
  });

  const result: Insn[] = [];
  out.forEach((insn, i) => {
    const r = replacement.get(i);
    if (r) result.push(...r);
    else result.push(insn);
  });
  return { insns: result, relocations, log };
}

/** bpf_core_resolve_relo + bpf_core_calc_relo_insn. */
function resolveRelo(
  rec: CoreReloRecord,
  reloIdx: number,
  progName: string,
  insnIdx: number,
  localBtf: Btf,
  targetBtf: Btf,
  targetName: string,
  cache: CoreCandidateCache,
  log: string[],
  report: CoreRelocationReport,
  littleEndian: boolean,
): ReloRes {
  const localId = rec.typeId;
  const localT = typeById(localBtf, localId);
  const localName = localT.name;
  const p = `prog '${progName}': relo #${reloIdx}:`;

  let cands: number[] | undefined;
  if (rec.kind !== CORE.TYPE_ID_LOCAL) {
    cands = cache.get(localId);
    if (cands === undefined) {
      if (localName === '')
        fail(
          EINVAL,
          `${p} target candidate search failed for [${localId}] ${btfKindStr(localT)} ${localName}: anonymous type`,
        );
      cands = findCoreCandidates(localBtf, localId, targetBtf);
      for (const id of cands) {
        log.push(
          `CO-RE relocating [${localId}] ${btfKindStr(localT)} ${localName}: found target candidate [${id}] ${typeLabel(targetBtf, id)} in [${targetName}]`,
        );
      }
      cache.set(localId, cands);
    }
  }

  let localSpec: CoreSpec;
  try {
    localSpec = parseSpec(localBtf, localId, rec.accessStr, rec.kind, progName);
  } catch (e) {
    if (!(e instanceof CoreFail)) throw e;
    log.push(
      `${p} parsing [${localId}] ${btfKindStr(localT)} ${localName || '<anon>'} + ${rec.accessStr} failed: -${e.errno}`,
    );
    return fail(EINVAL, `${e.message}`);
  }
  report.localSpec = formatCoreSpec(localSpec);
  log.push(`${p} ${report.localSpec}`);

  if (rec.kind === CORE.TYPE_ID_LOCAL) {
    const v = BigInt(localSpec.rootTypeId);
    return {
      origVal: v,
      newVal: v,
      poison: false,
      validate: false,
      failMemszAdjust: false,
      origSz: 0,
      newSz: 0,
      origTypeId: 0,
      newTypeId: 0,
    };
  }
  if (localName === '')
    fail(
      EOPNOTSUPP,
      `${p} <${coreReloKindStr(rec.kind)}> (${rec.kind}) relocation doesn't support anonymous types`,
    );

  const list = cands as number[];
  const ctx = { insnIdx, progName, reloIdx, littleEndian };
  let targRes: ReloRes | undefined;
  let targSpec: CoreSpec | undefined;
  const kept: number[] = [];
  for (let i = 0; i < list.length; i++) {
    const { found, spec } = specMatch(localSpec, targetBtf, list[i]);
    const formatted = formatCoreSpec(spec);
    if (found < 0) {
      log.push(`${p} error matching candidate #${i} ${formatted}: ${found}`);
      fail(-found, `${p} error matching candidate #${i} ${formatted}`);
    }
    log.push(`${p} ${found === 0 ? 'non-matching' : 'matching'} candidate #${i} ${formatted}`);
    report.candidates.push({
      id: list[i],
      type: typeLabel(targetBtf, list[i]),
      matched: found > 0,
      spec: formatted,
    });
    if (found === 0) continue;
    const candRes = calcRelo(rec.kind, localSpec, spec, ctx);
    if (kept.length === 0) {
      targRes = candRes;
      targSpec = spec;
    } else if (spec.bitOffset !== (targSpec as CoreSpec).bitOffset) {
      fail(
        EINVAL,
        `${p} field offset ambiguity: ${spec.bitOffset >>> 0} != ${(targSpec as CoreSpec).bitOffset >>> 0}`,
      );
    } else if (
      candRes.poison !== (targRes as ReloRes).poison ||
      candRes.newVal !== (targRes as ReloRes).newVal
    ) {
      const t = targRes as ReloRes;
      fail(
        EINVAL,
        `${p} relocation decision ambiguity: ${candRes.poison ? 'failure' : 'success'} ${candRes.newVal} != ${t.poison ? 'failure' : 'success'} ${t.newVal}`,
      );
    }
    kept.push(list[i]);
  }
  if (kept.length > 0) {
    cache.set(localId, kept);
    report.targetTypeId = (targSpec as CoreSpec).rootTypeId;
    report.targetSpec = formatCoreSpec(targSpec as CoreSpec);
    return targRes as ReloRes;
  }
  log.push(`${p} no matching targets found`);
  return calcRelo(rec.kind, localSpec, undefined, ctx);
}

// ---------------------------------------------------------------------------------------------------------
// Reports

/** A readable report, one block per relocation (the substance of libbpf's debug output). */
export function formatCoreReport(relocations: readonly CoreRelocationReport[]): string {
  const lines: string[] = [];
  for (const r of relocations) {
    const where = r.program ? `${r.program} insn #${r.insnIndex}` : `insn #${r.insnIndex}`;
    lines.push(`relo #${r.index}: ${where}: ${r.kindName} ${r.localType} access ${r.accessStr}`);
    if (r.localSpec) lines.push(`  local   ${r.localSpec}`);
    for (const c of r.candidates) lines.push(`  ${c.matched ? 'match   ' : 'no match'} ${c.spec}`);
    if (r.error !== undefined) lines.push(`  error: ${r.error}`);
    else if (r.poisoned) lines.push(`  poisoned: ${r.poisonReason ?? 'unresolved'} (call 0xbad2310)`);
    else lines.push(`  value ${r.localValue} -> ${r.targetValue}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** The report as JSON-ready data (bigints as decimal strings when they do not fit a double exactly). */
export function coreReportJson(r: CoreRelocationReport): Record<string, unknown> {
  const num = (v: bigint) => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());
  return {
    index: r.index,
    program: r.program,
    insn: r.insnIndex,
    kind: r.kindName,
    access: r.accessStr,
    localTypeId: r.localTypeId,
    localType: r.localType,
    localSpec: r.localSpec,
    candidates: r.candidates,
    ...(r.targetTypeId !== undefined ? { targetTypeId: r.targetTypeId, targetSpec: r.targetSpec } : {}),
    localValue: num(r.localValue),
    targetValue: num(r.targetValue),
    poisoned: r.poisoned,
    ...(r.poisonReason !== undefined ? { poisonReason: r.poisonReason } : {}),
    ...(r.error !== undefined ? { error: r.error } : {}),
  };
}

/** One code section of an object, as `applyObjectCoreRelocations` needs it. */
export interface CoreSection {
  /** ELF section name, as `.BTF.ext` names it. */
  name: string;
  insns: readonly Insn[];
  /** Functions in the section (for libbpf's program names and program-relative instruction numbers). */
  programs?: readonly { name: string; slot: number; slots: number }[];
}

export interface CoreSectionResult extends CoreRelocateResult {
  section: string;
}

/**
 * Applies every CO-RE relocation of an object, section by section in `.BTF.ext` order with one candidate
 * cache, as libbpf's bpf_object__relocate_core does. `coreRelos` is `parseBtfExt(...).coreRelos`.
 * Sections with relocations but no code are an error (libbpf: "no such section").
 */
export function applyObjectCoreRelocations(
  sections: readonly CoreSection[],
  coreRelos: readonly { section: string; records: readonly CoreReloRecord[] }[],
  localBtf: Btf,
  targetBtf: Btf,
  options: Omit<CoreRelocateOptions, 'programs' | 'cache'> = {},
): { sections: CoreSectionResult[]; log: string[] } {
  const cache: CoreCandidateCache = new Map();
  const log = options.log ?? [];
  const out: CoreSectionResult[] = [];
  for (const part of coreRelos) {
    const sec = sections.find((s) => s.name === part.section);
    if (sec === undefined)
      throw new TsbpfError('btf', `CO-RE: relocations for section '${part.section}', which has no code`);
    log.push(`sec '${part.section}': found ${part.records.length} CO-RE relocations`);
    const r = applyCoreRelocations(sec.insns, part.records, localBtf, targetBtf, {
      ...options,
      programs: sec.programs,
      cache,
      log,
    });
    out.push({ section: part.section, ...r });
  }
  return { sections: out, log };
}
