/**
 * The verifier's view of the kernel's BTF (vmlinux): struct walks for loads through BTF-typed
 * kernel pointers (kernel/bpf/btf.c btf_struct_walk / btf_struct_access), the typed arguments of
 * tp_btf / fentry programs (btf_ctx_access), and kfunc prototypes.
 */
import type { Btf } from '../btf/btf.js';
import type { BtfType } from '../btf/types.js';

const isModifier = (t: BtfType): boolean =>
  t.kind === 'CONST' ||
  t.kind === 'VOLATILE' ||
  t.kind === 'RESTRICT' ||
  t.kind === 'TYPEDEF' ||
  t.kind === 'TYPE_TAG';

/** btf_type_skip_modifiers: the id after typedefs and modifiers. */
export function skipModifiers(btf: Btf, id: number): number {
  for (let n = 0; n < 64; n++) {
    const t = btf.type(id);
    if (!isModifier(t)) return id;
    id = (t as { type: number }).type;
  }
  return id;
}

const isStruct = (t: BtfType): t is Extract<BtfType, { kind: 'STRUCT' | 'UNION' }> =>
  t.kind === 'STRUCT' || t.kind === 'UNION';

/** btf_type_str. */
export function btfKindStr(t: BtfType): string {
  return t.kind === 'UNKN' ? 'UNKNOWN' : t.kind;
}

/** __btf_resolve_size: the member's size, with arrays flattened to their innermost element. */
function resolveSize(
  btf: Btf,
  id: number,
): { t: BtfType; size: number; elem?: BtfType; elemId?: number; nelems: number } | undefined {
  let nelems = 1;
  let arr: BtfType | undefined;
  for (let n = 0; n < 64; n++) {
    const t = btf.type(id);
    if (isModifier(t)) {
      id = (t as { type: number }).type;
      continue;
    }
    if (t.kind === 'ARRAY') {
      arr ??= t;
      nelems *= t.nelems;
      id = t.type;
      continue;
    }
    let size: number;
    if (t.kind === 'PTR') size = 8;
    else if ('size' in t && t.kind !== 'DATASEC') size = t.size;
    else return undefined;
    if (arr) return { t: arr, size: size * nelems, elem: t, elemId: id, nelems };
    return { t, size, nelems: 1 };
  }
  return undefined;
}

export type StructAccess =
  | { kind: 'scalar' }
  | { kind: 'ptr'; id: number; name: string; field: string }
  | { kind: 'error'; message: string };

/** btf_struct_access for a read of `size` bytes at `off` in the struct `id`. */
export function structAccess(btf: Btf, id: number, off0: number, size: number): StructAccess {
  let t = btf.type(skipModifiers(btf, id));
  let off = off0;
  for (let depth = 0; depth < 64; depth++) {
    const tname = t.name;
    if (!isStruct(t)) return { kind: 'error', message: `Type '${tname}' is not a struct` };
    if (off + size > t.size) {
      // a flexible array of structs at the end may be walked past the struct's size
      const last = t.members[t.members.length - 1];
      const lt = last && btf.type(skipModifiers(btf, last.type));
      const moff = last ? Math.floor(last.bitOffset / 8) : 0;
      if (lt?.kind === 'ARRAY' && lt.nelems === 0 && off >= moff) {
        const et = btf.type(skipModifiers(btf, lt.type));
        if (isStruct(et) && et.size > 0) {
          off = (off - moff) % et.size;
          t = et;
          continue;
        }
      }
      return { kind: 'error', message: `access beyond struct ${tname} at off ${off} size ${size}` };
    }
    let next: { t: BtfType; off: number } | undefined;
    for (const m of t.members) {
      const moff = Math.floor(m.bitOffset / 8);
      if (off + size <= moff) break;
      if (m.bitfieldSize) {
        const endBit = m.bitOffset + m.bitfieldSize;
        if (off <= moff && Math.ceil(endBit / 8) <= off + size) return { kind: 'scalar' };
        continue;
      }
      if (off < moff) break;
      const r = resolveSize(btf, m.type);
      if (!r) return { kind: 'error', message: `field ${m.name} doesn't have size` };
      let mtype = r.t;
      let msize = r.size;
      let mid = skipModifiers(btf, m.type);
      let mstart = moff;
      const mend = moff + msize;
      if (off >= mend) continue;
      if (mtype.kind === 'ARRAY' && r.elem && r.elemId !== undefined) {
        msize = Math.floor(msize / r.nelems);
        const idx = msize ? Math.floor((off - moff) / msize) : 0;
        mstart = moff + idx * msize;
        mtype = r.elem;
        mid = r.elemId;
      }
      if (isStruct(mtype)) {
        next = { t: mtype, off: off - mstart };
        break;
      }
      if (mtype.kind === 'PTR') {
        if (msize !== size || off !== mstart) {
          return {
            kind: 'error',
            message: `cannot access ptr member ${m.name} with moff ${mstart} in struct ${tname} with off ${off} size ${size}`,
          };
        }
        const sid = skipModifiers(btf, mtype.type);
        const st = btf.type(sid);
        if (isStruct(st)) return { kind: 'ptr', id: sid, name: st.name, field: m.name };
      }
      if (off + size > mstart + msize) {
        return {
          kind: 'error',
          message: `access beyond the end of member ${m.name} (mend:${mstart + msize}) in struct ${tname} with off ${off} size ${size}`,
        };
      }
      void mid;
      return { kind: 'scalar' };
    }
    if (!next) return { kind: 'error', message: `struct ${tname} doesn't have field at offset ${off}` };
    t = next.t;
    off = next.off;
  }
  return { kind: 'error', message: `struct walk too deep at off ${off0}` };
}

/**
 * btf_struct_ids_match (strict = false): `id` is `target` or has it as its first member, however
 * deep (struct tcp_sock starts with an inet_connection_sock ... starts with a sock_common).
 */
export function structIdsMatch(btf: Btf, id: number, targetName: string): boolean {
  let t = btf.type(skipModifiers(btf, id));
  for (let n = 0; n < 16; n++) {
    if (!isStruct(t)) return false;
    if (t.name === targetName) return true;
    const first = t.members[0];
    if (first?.bitOffset !== 0) return false;
    t = btf.type(skipModifiers(btf, first.type));
  }
  return false;
}

export type CtxArg =
  | { kind: 'scalar' }
  | { kind: 'ptr'; id: number; name: string; log: string }
  | { kind: 'error'; message?: string };

/**
 * btf_ctx_access for a program attached to the BTF function (or `btf_trace_*` typedef) `attachId`:
 * reading argument `off / 8` of the traced function.
 */
export function ctxArgAccess(btf: Btf, attachId: number, off: number, size: number, fexit: boolean): CtxArg {
  const at = btf.type(attachId);
  let tpBtf = false;
  let proto: BtfType | undefined;
  if (at.kind === 'TYPEDEF') {
    // btf_trace_<tp>: a typedef of a pointer to the FUNC_PROTO, whose first argument is `void *__data`
    tpBtf = true;
    const p = btf.type(skipModifiers(btf, at.type));
    if (p.kind === 'PTR') proto = btf.type(skipModifiers(btf, p.type));
  } else if (at.kind === 'FUNC') proto = btf.type(at.type);
  if (proto?.kind !== 'FUNC_PROTO') return { kind: 'error' };
  const fname = tpBtf ? at.name.replace(/^btf_trace_/, '') : at.name;
  if (off % 8) return { kind: 'error', message: `func '${fname}' offset ${off} is not multiple of 8` };
  const params = tpBtf ? proto.params.slice(1) : proto.params;
  const arg = off / 8;
  let tid: number;
  if (arg > params.length || (arg === params.length && !fexit)) {
    return { kind: 'error', message: `func '${fname}' doesn't have ${arg + 1}-th argument` };
  }
  if (arg === params.length) tid = proto.returnType;
  else tid = params[arg].type;
  if (tid === 0) return { kind: 'scalar' };
  const t = btf.type(skipModifiers(btf, tid));
  if (t.kind === 'INT' || t.kind === 'ENUM' || t.kind === 'ENUM64' || isStruct(t)) return { kind: 'scalar' };
  if (t.kind !== 'PTR') {
    return {
      kind: 'error',
      message: `func '${fname}' arg${arg} '${params[arg]?.name ?? ''}' has type ${btfKindStr(t)}. Only pointer access is allowed`,
    };
  }
  if (size !== 8) return { kind: 'error', message: `func '${fname}' size ${size} must be 8` };
  if (t.type === 0) return { kind: 'scalar' }; // void *: a scalar as far as safety goes
  const pid = skipModifiers(btf, t.type);
  const pt = btf.type(pid);
  if (pt.kind === 'INT' || pt.kind === 'ENUM' || pt.kind === 'ENUM64') return { kind: 'scalar' }; // char *, int *
  if (!isStruct(pt)) {
    return { kind: 'error', message: `func '${fname}' arg${arg} type ${btfKindStr(pt)} is not a struct` };
  }
  return {
    kind: 'ptr',
    id: pid,
    name: pt.name,
    log: `func '${fname}' arg${arg} has btf_id ${pid} type ${btfKindStr(pt)} '${pt.name}'`,
  };
}
