/**
 * Abstract register and stack state (the kernel's bpf_reg_state, bpf_stack_state, bpf_func_state,
 * bpf_verifier_state), their printing in the kernel's log format, and state comparison for pruning.
 */
import { alignPad, snum, unum } from './log.js';
import {
  type Bounds,
  boundsEqual,
  boundsWithin,
  constBounds,
  isConst,
  S32_MAX,
  S32_MIN,
  S64_MAX,
  S64_MIN,
  unknownBounds,
} from './scalar.js';
import { tnumIsUnknown, tnumStr, U32, U64 } from './tnum.js';

export type RegType =
  | 'not_init'
  | 'scalar'
  | 'ctx'
  | 'stack'
  | 'map_ptr'
  | 'map_value'
  | 'map_key'
  | 'pkt'
  | 'pkt_meta'
  | 'pkt_end'
  | 'mem'
  | 'func'
  | 'flow_keys'
  | 'sock'
  | 'sock_common'
  | 'tcp_sock'
  | 'btf_id';

export interface Reg {
  t: RegType;
  /** PTR_MAYBE_NULL */
  maybeNull: boolean;
  /** Scalar value, or a pointer's variable offset. */
  b: Bounds;
  /** Fixed offset of a pointer. */
  off: number;
  id: number;
  refId: number;
  /** Packet pointers: bytes known to be in the packet from this pointer. */
  range: number;
  /** Map index (maps[]) for map_ptr, map_value, map_key. */
  map: number;
  memSize: number;
  /** mem: ringbuf record; rdonly. */
  ringbuf: boolean;
  rdonly: boolean;
  /** Stack pointers: the frame they point into. */
  frameno: number;
  /** func: the subprogram. */
  subprog: number;
  /**
   * Scalars: linked to the scalars sharing `id` with a constant delta `off` (the kernel's
   * BPF_ADD_CONST: `r1 = r0; r1 += 4` makes r1 id|ADD_CONST, off 4).
   */
  addConst: boolean;
  /** btf_id (PTR_TO_BTF_ID): the struct's type id in the kernel BTF and its name. */
  btfId: number;
  btfName: string;
  /** btf_id: PTR_TRUSTED. */
  trusted: boolean;
}

export enum Slot {
  INVALID = 0,
  SPILL = 1,
  MISC = 2,
  ZERO = 3,
}

export interface StackSlot {
  /** slot_type[8]: index j is the byte at offset -(8*spi) - 1 - j. */
  types: Slot[];
  spilled: Reg | undefined;
}

export interface Frame {
  regs: Reg[];
  stack: StackSlot[];
  frameno: number;
  subprog: number;
  /** The call instruction in the caller (-1 for the main frame). */
  callsite: number;
  /** Callback frame: the return range the callback's R0 must meet. */
  callbackRet?: [number, number];
  /** Helper id for callback frames. */
  callbackOf?: number;
}

export interface Ref {
  id: number;
  insn: number;
}

export interface VState {
  frames: Frame[];
  refs: Ref[];
}

export function notInit(): Reg {
  return {
    t: 'not_init',
    maybeNull: false,
    b: unknownBounds(),
    off: 0,
    id: 0,
    refId: 0,
    range: 0,
    map: -1,
    memSize: 0,
    ringbuf: false,
    rdonly: false,
    frameno: 0,
    subprog: 0,
    addConst: false,
    btfId: 0,
    btfName: '',
    trusted: false,
  };
}
export function scalarUnknown(): Reg {
  return { ...notInit(), t: 'scalar' };
}
export function scalarConst(v: bigint): Reg {
  return { ...notInit(), t: 'scalar', b: constBounds(v) };
}
/** A pointer of the given type with offset 0 (mark_reg_known_zero + type). */
export function pointer(t: RegType, extra: Partial<Reg> = {}): Reg {
  return { ...notInit(), t, b: constBounds(0n), ...extra };
}

export const cloneReg = (r: Reg): Reg => ({ ...r, b: { ...r.b } });
const cloneSlot = (s: StackSlot): StackSlot => ({
  types: [...s.types],
  spilled: s.spilled && cloneReg(s.spilled),
});
export const cloneFrame = (f: Frame): Frame => ({
  ...f,
  regs: f.regs.map(cloneReg),
  stack: f.stack.map(cloneSlot),
});
export const cloneState = (s: VState): VState => ({
  frames: s.frames.map(cloneFrame),
  refs: s.refs.map((r) => ({ ...r })),
});

export const isPointer = (r: Reg): boolean => r.t !== 'scalar' && r.t !== 'not_init';
export const isPkt = (r: Reg): boolean => r.t === 'pkt' || r.t === 'pkt_meta';

/** reg_type_str. */
export function typeStr(
  r: Pick<Reg, 't' | 'maybeNull' | 'ringbuf' | 'rdonly'> & { trusted?: boolean },
): string {
  const base: Record<RegType, string> = {
    not_init: '?',
    scalar: 'scalar',
    ctx: 'ctx',
    stack: 'fp',
    map_ptr: 'map_ptr',
    map_value: 'map_value',
    map_key: 'map_key',
    pkt: 'pkt',
    pkt_meta: 'pkt_meta',
    pkt_end: 'pkt_end',
    mem: 'mem',
    func: 'func',
    flow_keys: 'flow_keys',
    sock: 'sock',
    sock_common: 'sock_common',
    tcp_sock: 'tcp_sock',
    btf_id: 'ptr_',
  };
  let s = base[r.t];
  if (r.t === 'mem') s = `${r.rdonly ? 'rdonly_' : ''}${r.ringbuf ? 'ringbuf_' : ''}mem`;
  if (r.t === 'btf_id' && r.trusted) s = `trusted_${s}`;
  return r.maybeNull ? `${s}_or_null` : s;
}

export interface MapInfo {
  keySize: number;
  valueSize: number;
}

function scalarRanges(b: Bounds, parts: string[]): void {
  // kernel/bpf/log.c: values as u64; s32 bounds sign-extended only when printed in decimal
  const dec = (v: bigint) => v >= -32768n && v <= 32767n;
  const s32v = (v: bigint) => (dec(v) ? BigInt.asUintN(64, v) : BigInt.asUintN(32, v));
  const m = [
    { n: 'smin', val: BigInt.asUintN(64, b.smin), omit: b.smin === S64_MIN },
    { n: 'smax', val: BigInt.asUintN(64, b.smax), omit: b.smax === S64_MAX },
    { n: 'umin', val: b.umin, omit: b.umin === 0n },
    { n: 'umax', val: b.umax, omit: b.umax === U64 },
    { n: 'smin32', val: s32v(b.s32min), omit: b.s32min === S32_MIN },
    { n: 'smax32', val: s32v(b.s32max), omit: b.s32max === S32_MAX },
    { n: 'umin32', val: b.u32min, omit: b.u32min === 0n },
    { n: 'umax32', val: b.u32max, omit: b.u32max === U32 },
  ];
  const neg = (e: { n: string; val: bigint }) => e.n[0] === 's' && BigInt.asIntN(64, e.val) < 0n;
  for (let i = 0; i < m.length; i++) {
    if (m[i].omit) continue;
    let names = m[i].n;
    for (let j = i + 2; j < m.length; j += 2) {
      if (m[j].omit || m[j].val !== m[i].val || neg(m[j]) !== neg(m[i])) continue;
      m[j].omit = true;
      names += `=${m[j].n}`;
    }
    parts.push(`${names}=${m[i].n[0] === 's' ? snum(m[i].val) : unum(m[i].val)}`);
  }
}

/** print_reg_state. */
export function regStr(r: Reg, curFrame: number, maps: readonly MapInfo[]): string {
  if (r.t === 'scalar' && isConst(r.b)) return snum(r.b.var.value);
  let s = typeStr(r);
  // print_reg_state: a BTF pointer's type name follows its type
  if (r.t === 'btf_id') s += r.btfName;
  if (r.t === 'stack') {
    if (r.frameno !== curFrame) s += `[${r.frameno}]`;
    if (isConst(r.b)) return `${s}${snum(r.b.var.value + BigInt(r.off))}`;
  }
  const parts: string[] = [];
  if (r.id) parts.push(r.addConst ? `id=${r.id}${r.off < 0 ? '' : '+'}${r.off}` : `id=${r.id}`);
  if (r.refId) parts.push(`ref_obj_id=${r.refId}`);
  if ((r.t === 'map_ptr' || r.t === 'map_value' || r.t === 'map_key') && maps[r.map]) {
    parts.push(`ks=${maps[r.map].keySize},vs=${maps[r.map].valueSize}`);
  }
  if (r.t !== 'scalar' && r.off) parts.push(`off=${snum(BigInt(r.off))}`);
  if (r.t === 'pkt' || r.t === 'pkt_meta') parts.push(`r=${unum(BigInt(r.range))}`);
  if (r.t === 'mem') parts.push(`sz=${unum(BigInt(r.memSize))}`);
  if (isConst(r.b)) {
    if (r.b.var.value) parts.push(`imm=${snum(r.b.var.value)}`);
  } else {
    scalarRanges(r.b, parts);
    if (!tnumIsUnknown(r.b.var)) parts.push(`var_off=${tnumStr(r.b.var)}`);
  }
  return `${s}(${parts.join(',')})`;
}

const SLOT_CHAR = ['?', 'r', 'm', '0'];

/** print_verifier_state for one frame: ` R0=... fp-8=...` (only `regs`/`slots` unless all). */
export function frameStr(
  st: VState,
  frameIdx: number,
  maps: readonly MapInfo[],
  only?: { regs: Set<number>; slots: Set<number> },
): string {
  const f = st.frames[frameIdx];
  let out = '';
  if (f.frameno) out += ` frame${f.frameno}:`;
  for (let i = 0; i < f.regs.length; i++) {
    const r = f.regs[i];
    if (r.t === 'not_init') continue;
    if (only && !only.regs.has(i)) continue;
    out += ` R${i}=${regStr(r, f.frameno, maps)}`;
  }
  for (let spi = 0; spi < f.stack.length; spi++) {
    if (only && !only.slots.has(spi)) continue;
    const s = f.stack[spi];
    if (s.types.every((t) => t === Slot.INVALID)) continue;
    let types = s.types.map((t) => SLOT_CHAR[t]).join('');
    const name = ` fp${(-spi - 1) * 8}=`;
    if (s.types[7] === Slot.SPILL && s.spilled) {
      const j = s.types.indexOf(Slot.SPILL);
      types = types.slice(0, j);
      out += `${name}${types}${regStr(s.spilled, f.frameno, maps)}`;
    } else out += `${name}${types}`;
  }
  if (st.refs.length) out += ` refs=${st.refs.map((r) => r.id).join(',')}`;
  if (f.callbackRet) out += ' cb';
  return out;
}

export { alignPad };

// ---- state equivalence (pruning) ----

class IdMap {
  private readonly m = new Map<number, number>();
  private readonly rev = new Map<number, number>();
  /** check_scalar_ids: an unlinked scalar gets an id of its own for the comparison. */
  private tmp = 0;
  checkScalar(a: number, b: number): boolean {
    return this.check(a || --this.tmp, b || --this.tmp);
  }
  check(a: number, b: number): boolean {
    if (!a && !b) return true;
    if (!a || !b) return false;
    const x = this.m.get(a);
    const y = this.rev.get(b);
    if (x === undefined && y === undefined) {
      this.m.set(a, b);
      this.rev.set(b, a);
      return true;
    }
    return x === b && y === a;
  }
}

/**
 * regsafe: every behaviour the verifier accepted from `old` covers `cur`. Precision and liveness
 * are not tracked, so scalars need range inclusion (the kernel skips them when not precise).
 */
function regSafe(old: Reg, cur: Reg, ids: IdMap, exact: boolean): boolean {
  if (old.t === 'not_init') return exact ? cur.t === 'not_init' : true;
  if (cur.t === 'not_init') return false;
  if (exact) {
    return (
      old.t === cur.t &&
      old.maybeNull === cur.maybeNull &&
      boundsEqual(old.b, cur.b) &&
      old.off === cur.off &&
      old.range === cur.range &&
      old.map === cur.map &&
      old.memSize === cur.memSize &&
      old.frameno === cur.frameno &&
      old.subprog === cur.subprog &&
      old.btfId === cur.btfId &&
      old.trusted === cur.trusted &&
      ids.check(old.id, cur.id) &&
      ids.check(old.refId, cur.refId)
    );
  }
  if (old.t !== cur.t) return false;
  switch (old.t) {
    case 'scalar':
      // linked scalars are refined together: the links must be the same (check_scalar_ids)
      if (old.addConst !== cur.addConst || (old.addConst && old.off !== cur.off)) return false;
      return boundsWithin(old.b, cur.b) && ids.checkScalar(old.id, cur.id);
    case 'map_value':
    case 'mem':
    case 'map_key':
      if (old.maybeNull !== cur.maybeNull || old.map !== cur.map || old.memSize !== cur.memSize) return false;
      if (old.ringbuf !== cur.ringbuf || old.rdonly !== cur.rdonly) return false;
      if (old.off !== cur.off || !boundsWithin(old.b, cur.b)) return false;
      return ids.check(old.id, cur.id) && ids.check(old.refId, cur.refId);
    case 'pkt':
    case 'pkt_meta':
      if (old.off !== cur.off || old.range > cur.range) return false;
      if (!boundsWithin(old.b, cur.b)) return false;
      return ids.check(old.id, cur.id);
    case 'stack':
      return old.off === cur.off && old.frameno === cur.frameno && boundsEqual(old.b, cur.b);
    case 'func':
      return old.subprog === cur.subprog;
    default:
      return (
        old.off === cur.off &&
        old.map === cur.map &&
        old.btfId === cur.btfId &&
        old.trusted === cur.trusted &&
        boundsEqual(old.b, cur.b) &&
        old.maybeNull === cur.maybeNull &&
        ids.check(old.id, cur.id) &&
        ids.check(old.refId, cur.refId)
      );
  }
}

function stackSafe(old: Frame, cur: Frame, ids: IdMap, exact: boolean): boolean {
  const n = Math.max(old.stack.length, cur.stack.length);
  for (let spi = 0; spi < n; spi++) {
    const o = old.stack[spi];
    const c = cur.stack[spi];
    const ot = o?.types ?? [0, 0, 0, 0, 0, 0, 0, 0];
    const ct = c?.types ?? [0, 0, 0, 0, 0, 0, 0, 0];
    for (let j = 0; j < 8; j++) {
      if (exact) {
        if (ot[j] !== ct[j]) return false;
        continue;
      }
      if (ot[j] === Slot.INVALID) continue;
      if (ot[j] === Slot.MISC && (ct[j] === Slot.MISC || ct[j] === Slot.ZERO)) continue;
      if (ot[j] === Slot.MISC && ct[j] === Slot.SPILL && c?.spilled?.t === 'scalar') continue;
      if (ot[j] !== ct[j]) return false;
    }
    if (ot[7] === Slot.SPILL && o?.spilled) {
      if (!c?.spilled || !regSafe(o.spilled, c.spilled, ids, exact)) return false;
    }
  }
  return true;
}

/** states_equal: cur may be pruned against old (old fully explored), or (exact) is a loop repeat. */
export function statesEqual(old: VState, cur: VState, exact: boolean): boolean {
  if (old.frames.length !== cur.frames.length) return false;
  if (old.refs.length !== cur.refs.length) return false;
  const ids = new IdMap();
  for (let i = 0; i < old.refs.length; i++) if (!ids.check(old.refs[i].id, cur.refs[i].id)) return false;
  for (let f = 0; f < old.frames.length; f++) {
    const o = old.frames[f];
    const c = cur.frames[f];
    if (o.callsite !== c.callsite) return false;
    for (let r = 0; r < o.regs.length; r++) if (!regSafe(o.regs[r], c.regs[r], ids, exact)) return false;
    if (!stackSafe(o, c, ids, exact)) return false;
  }
  return true;
}
