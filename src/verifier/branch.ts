/**
 * Conditional jumps: whether a branch is decided (is_branch_taken) and what each side learns about
 * its scalars (reg_set_min_max / regs_refine_cond_op of kernel/bpf/verifier.c).
 */
import { type Bounds, boundsInvalid, constBounds, s32, syncBounds, u32 } from './scalar.js';
import type { Reg } from './state.js';
import {
  tnumAnd,
  tnumConst,
  tnumIntersect,
  tnumIsConst,
  tnumOr,
  tnumSubreg,
  tnumWithSubreg,
  U32,
  U64,
} from './tnum.js';

const JEQ = 0x10;
const JGT = 0x20;
const JGE = 0x30;
const JSET = 0x40;
const JNE = 0x50;
const JSGT = 0x60;
const JSGE = 0x70;
const JLT = 0xa0;
const JLE = 0xb0;
const JSLT = 0xc0;
const JSLE = 0xd0;
const NOT_JSET = 0x48; // JSET | BPF_X: the kernel's marker for "jset is false"

const max = (a: bigint, b: bigint) => (a > b ? a : b);
const min = (a: bigint, b: bigint) => (a < b ? a : b);

function flip(o: number): number {
  switch (o) {
    case JGT:
      return JLT;
    case JLT:
      return JGT;
    case JGE:
      return JLE;
    case JLE:
      return JGE;
    case JSGT:
      return JSLT;
    case JSLT:
      return JSGT;
    case JSGE:
      return JSLE;
    case JSLE:
      return JSGE;
    default:
      return o;
  }
}
function rev(o: number): number {
  switch (o) {
    case JEQ:
      return JNE;
    case JNE:
      return JEQ;
    case JGT:
      return JLE;
    case JLE:
      return JGT;
    case JGE:
      return JLT;
    case JLT:
      return JGE;
    case JSGT:
      return JSLE;
    case JSLE:
      return JSGT;
    case JSGE:
      return JSLT;
    case JSLT:
      return JSGE;
    case JSET:
      return NOT_JSET;
    default:
      return o;
  }
}

const isConstW = (b: Bounds, is32: boolean) => (is32 ? (b.var.mask & U32) === 0n : tnumIsConst(b.var));
const constVal = (b: Bounds, is32: boolean) => (is32 ? b.var.value & U32 : b.var.value);

function view(b: Bounds, is32: boolean) {
  return is32
    ? { t: tnumSubreg(b.var), umin: b.u32min, umax: b.u32max, smin: b.s32min, smax: b.s32max }
    : { t: b.var, umin: b.umin, umax: b.umax, smin: b.smin, smax: b.smax };
}

/** is_scalar_branch_taken: 1 taken, 0 not taken, -1 unknown. */
export function scalarBranchTaken(b1: Bounds, b2: Bounds, o: number, is32: boolean): number {
  let r1 = view(b1, is32);
  let r2 = view(b2, is32);
  switch (o) {
    case JEQ:
    case JNE: {
      const eq = o === JEQ;
      if (tnumIsConst(r1.t) && tnumIsConst(r2.t)) return (r1.t.value === r2.t.value) === eq ? 1 : 0;
      const ne = eq ? 0 : 1;
      if (r1.umin > r2.umax || r1.umax < r2.umin) return ne;
      if (r1.smin > r2.smax || r1.smax < r2.smin) return ne;
      if (!is32) {
        if (b1.u32min > b2.u32max || b1.u32max < b2.u32min) return ne;
        if (b1.s32min > b2.s32max || b1.s32max < b2.s32min) return ne;
      }
      return -1;
    }
    case JSET: {
      if (!isConstW(b2, is32)) [r1, r2] = [r2, r1];
      if (!tnumIsConst(r2.t)) return -1;
      if (~r1.t.mask & r1.t.value & r2.t.value) return 1;
      if (!((r1.t.mask | r1.t.value) & r2.t.value)) return 0;
      return -1;
    }
    case JGT:
      if (r1.umin > r2.umax) return 1;
      if (r1.umax <= r2.umin) return 0;
      return -1;
    case JSGT:
      if (r1.smin > r2.smax) return 1;
      if (r1.smax <= r2.smin) return 0;
      return -1;
    case JLT:
      if (r1.umax < r2.umin) return 1;
      if (r1.umin >= r2.umax) return 0;
      return -1;
    case JSLT:
      if (r1.smax < r2.smin) return 1;
      if (r1.smin >= r2.smax) return 0;
      return -1;
    case JGE:
      if (r1.umin >= r2.umax) return 1;
      if (r1.umax < r2.umin) return 0;
      return -1;
    case JSGE:
      if (r1.smin >= r2.smax) return 1;
      if (r1.smax < r2.smin) return 0;
      return -1;
    case JLE:
      if (r1.umax <= r2.umin) return 1;
      if (r1.umin > r2.umax) return 0;
      return -1;
    case JSLE:
      if (r1.smax <= r2.smin) return 1;
      if (r1.smin > r2.smax) return 0;
      return -1;
  }
  return -1;
}

/** reg_not_null. */
const notNull = (r: Reg) =>
  !r.maybeNull &&
  (r.t === 'map_value' ||
    r.t === 'map_key' ||
    r.t === 'mem' ||
    r.t === 'map_ptr' ||
    r.t === 'sock' ||
    r.t === 'sock_common' ||
    r.t === 'tcp_sock' ||
    (r.t === 'btf_id' && r.trusted));

/** is_branch_taken. */
export function branchTaken(dst: Reg, src: Reg, o0: number, is32: boolean): number {
  let o = o0;
  const ptr = (r: Reg) => r.t !== 'scalar' && r.t !== 'not_init';
  const pktAny = (r: Reg) => r.t === 'pkt' || r.t === 'pkt_meta' || r.t === 'pkt_end';
  if (pktAny(dst) && pktAny(src) && !is32) return -1;
  if (ptr(dst) || ptr(src)) {
    let r1 = dst;
    let r2 = src;
    if (!(r2.t === 'scalar' && isConstW(r2.b, is32))) {
      o = flip(o);
      [r1, r2] = [r2, r1];
    }
    if (!(r2.t === 'scalar' && isConstW(r2.b, is32))) return -1;
    if (!notNull(r1)) return -1;
    if (constVal(r2.b, is32) !== 0n) return -1;
    if (o === JEQ) return 0;
    if (o === JNE) return 1;
    return -1;
  }
  return scalarBranchTaken(dst.b, src.b, o, is32);
}

/** regs_refine_cond_op: refine b1 (and b2) given that `b1 OP b2` holds. */
function refineOp(b1: Bounds, b2: Bounds, o: number, is32: boolean): void {
  switch (o) {
    case JEQ:
      if (is32) {
        b1.u32min = max(b1.u32min, b2.u32min);
        b1.u32max = min(b1.u32max, b2.u32max);
        b1.s32min = max(b1.s32min, b2.s32min);
        b1.s32max = min(b1.s32max, b2.s32max);
        b2.u32min = b1.u32min;
        b2.u32max = b1.u32max;
        b2.s32min = b1.s32min;
        b2.s32max = b1.s32max;
        const t = tnumIntersect(tnumSubreg(b1.var), tnumSubreg(b2.var));
        b1.var = tnumWithSubreg(b1.var, t);
        b2.var = tnumWithSubreg(b2.var, t);
      } else {
        b1.umin = max(b1.umin, b2.umin);
        b1.umax = min(b1.umax, b2.umax);
        b1.smin = max(b1.smin, b2.smin);
        b1.smax = min(b1.smax, b2.smax);
        b2.umin = b1.umin;
        b2.umax = b1.umax;
        b2.smin = b1.smin;
        b2.smax = b1.smax;
        b1.var = tnumIntersect(b1.var, b2.var);
        b2.var = b1.var;
      }
      break;
    case JNE: {
      let a = b1;
      let c = b2;
      if (!isConstW(c.var === undefined ? c : c, is32)) [a, c] = [c, a];
      if (!isConstW(c, is32)) break;
      const v = constVal(c, is32);
      if (is32) {
        if (a.u32min === u32(v)) a.u32min++;
        if (a.u32max === u32(v)) a.u32max--;
        if (a.s32min === s32(v)) a.s32min++;
        if (a.s32max === s32(v)) a.s32max--;
      } else {
        if (a.umin === v) a.umin++;
        if (a.umax === v) a.umax--;
        if (a.smin === BigInt.asIntN(64, v)) a.smin++;
        if (a.smax === BigInt.asIntN(64, v)) a.smax--;
      }
      break;
    }
    case JSET:
    case NOT_JSET: {
      let a = b1;
      let c = b2;
      if (!isConstW(c, is32)) [a, c] = [c, a];
      if (!isConstW(c, is32)) break;
      const v = constVal(c, is32);
      if (o === JSET) {
        if (v === 0n || (v & (v - 1n)) !== 0n) break;
        if (is32) a.var = tnumWithSubreg(a.var, tnumOr(tnumSubreg(a.var), tnumConst(v)));
        else a.var = tnumOr(a.var, tnumConst(v));
      } else if (is32) a.var = tnumWithSubreg(a.var, tnumAnd(tnumSubreg(a.var), tnumConst(~v & U32)));
      else a.var = tnumAnd(a.var, tnumConst(~v & U64));
      break;
    }
    case JLE:
      if (is32) {
        b1.u32max = min(b1.u32max, b2.u32max);
        b2.u32min = max(b1.u32min, b2.u32min);
      } else {
        b1.umax = min(b1.umax, b2.umax);
        b2.umin = max(b1.umin, b2.umin);
      }
      break;
    case JLT:
      if (is32) {
        b1.u32max = min(b1.u32max, u32(b2.u32max - 1n));
        b2.u32min = max(u32(b1.u32min + 1n), b2.u32min);
      } else {
        b1.umax = min(b1.umax, BigInt.asUintN(64, b2.umax - 1n));
        b2.umin = max(BigInt.asUintN(64, b1.umin + 1n), b2.umin);
      }
      break;
    case JSLE:
      if (is32) {
        b1.s32max = min(b1.s32max, b2.s32max);
        b2.s32min = max(b1.s32min, b2.s32min);
      } else {
        b1.smax = min(b1.smax, b2.smax);
        b2.smin = max(b1.smin, b2.smin);
      }
      break;
    case JSLT:
      if (is32) {
        b1.s32max = min(b1.s32max, s32(b2.s32max - 1n));
        b2.s32min = max(s32(b1.s32min + 1n), b2.s32min);
      } else {
        b1.smax = min(b1.smax, BigInt.asIntN(64, b2.smax - 1n));
        b2.smin = max(BigInt.asIntN(64, b1.smin + 1n), b2.smin);
      }
      break;
    case JGE:
    case JGT:
    case JSGE:
    case JSGT:
      refineOp(b2, b1, flip(o), is32);
      break;
  }
}

/**
 * Refines dst (and src) in `regs` for one side of a conditional jump (taken: the condition holds).
 * Returns false when the side is impossible (its bounds became contradictory).
 */
export function refineBranch(
  regs: Reg[],
  dstno: number,
  srcno: number,
  imm: bigint | undefined,
  o: number,
  is32: boolean,
  taken: boolean,
  link: (reg: Reg) => void,
): boolean {
  const dst = regs[dstno];
  const src = srcno >= 0 ? regs[srcno] : undefined;
  if (dst.t !== 'scalar' || (src && src.t !== 'scalar')) return true;
  const b1 = { ...dst.b };
  const b2 = src ? { ...src.b } : constBounds(imm ?? 0n);
  const same = srcno === dstno;
  refineOp(b1, same ? b1 : b2, taken ? o : rev(o), is32);
  syncBounds(b1);
  if (!same) syncBounds(b2);
  if (boundsInvalid(b1) || (!same && boundsInvalid(b2))) return false;
  dst.b = b1;
  if (dst.id) link(dst);
  if (src && !same) {
    src.b = b2;
    if (src.id) link(src);
  }
  return true;
}
