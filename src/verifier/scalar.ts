/**
 * Scalar bounds: a tnum plus signed/unsigned 64- and 32-bit ranges, refined against each other the
 * way the kernel's reg_bounds_sync() does, and the kernel's ALU transfer functions
 * (adjust_scalar_min_max_vals and the scalar{32,}_min_max_* helpers of kernel/bpf/verifier.c).
 * Unsigned values are bigints in [0, 2^64) / [0, 2^32); signed ones in the signed ranges.
 */
import {
  type Tnum,
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumClearSubreg,
  tnumConst,
  tnumIn,
  tnumIntersect,
  tnumIsConst,
  tnumLshift,
  tnumMul,
  tnumNeg,
  tnumOr,
  tnumRange,
  tnumRshift,
  tnumSub,
  tnumSubreg,
  tnumSubregIsConst,
  tnumUnknown,
  tnumXor,
  U32,
  U64,
} from './tnum.js';

export const S64_MIN = -(1n << 63n);
export const S64_MAX = (1n << 63n) - 1n;
export const S32_MIN = -(1n << 31n);
export const S32_MAX = (1n << 31n) - 1n;

export interface Bounds {
  var: Tnum;
  smin: bigint;
  smax: bigint;
  umin: bigint;
  umax: bigint;
  s32min: bigint;
  s32max: bigint;
  u32min: bigint;
  u32max: bigint;
}

export const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
export const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
export const s32 = (v: bigint): bigint => BigInt.asIntN(32, v);
export const u32 = (v: bigint): bigint => BigInt.asUintN(32, v);
const max = (a: bigint, b: bigint) => (a > b ? a : b);
const min = (a: bigint, b: bigint) => (a < b ? a : b);

export function unknownBounds(): Bounds {
  return {
    var: tnumUnknown,
    smin: S64_MIN,
    smax: S64_MAX,
    umin: 0n,
    umax: U64,
    s32min: S32_MIN,
    s32max: S32_MAX,
    u32min: 0n,
    u32max: U32,
  };
}

export function constBounds(v: bigint): Bounds {
  const b = unknownBounds();
  markKnown(b, v);
  return b;
}

export function markKnown(b: Bounds, v0: bigint): void {
  const v = u64(v0);
  b.var = tnumConst(v);
  b.smin = b.smax = s64(v);
  b.umin = b.umax = v;
  b.s32min = b.s32max = s32(v);
  b.u32min = b.u32max = u32(v);
}

function markKnown32(b: Bounds, v0: bigint): void {
  const v = u32(v0);
  b.var = tnumOr(tnumClearSubreg(b.var), tnumConst(v));
  b.s32min = b.s32max = s32(v);
  b.u32min = b.u32max = v;
}

export const cloneBounds = (b: Bounds): Bounds => ({ ...b });

export function mark64Unbounded(b: Bounds): void {
  b.smin = S64_MIN;
  b.smax = S64_MAX;
  b.umin = 0n;
  b.umax = U64;
}
export function mark32Unbounded(b: Bounds): void {
  b.s32min = S32_MIN;
  b.s32max = S32_MAX;
  b.u32min = 0n;
  b.u32max = U32;
}

export const isConst = (b: Bounds): boolean => tnumIsConst(b.var);

function update32(b: Bounds): void {
  const v = tnumSubreg(b.var);
  b.s32min = max(b.s32min, s32(v.value | (v.mask & 0x80000000n)));
  b.s32max = min(b.s32max, s32(v.value | (v.mask & 0x7fffffffn)));
  b.u32min = max(b.u32min, v.value);
  b.u32max = min(b.u32max, v.value | v.mask);
}
function update64(b: Bounds): void {
  const v = b.var;
  b.smin = max(b.smin, s64(v.value | (v.mask & (1n << 63n))));
  b.smax = min(b.smax, s64(v.value | (v.mask & S64_MAX)));
  b.umin = max(b.umin, v.value);
  b.umax = min(b.umax, v.value | v.mask);
}
export function updateBounds(b: Bounds): void {
  update32(b);
  update64(b);
}

function deduce32(b: Bounds): void {
  if (b.umin >> 32n === b.umax >> 32n) {
    b.u32min = max(b.u32min, u32(b.umin));
    b.u32max = min(b.u32max, u32(b.umax));
    if (s32(b.umin) <= s32(b.umax)) {
      b.s32min = max(b.s32min, s32(b.umin));
      b.s32max = min(b.s32max, s32(b.umax));
    }
  }
  if (b.smin >> 32n === b.smax >> 32n) {
    if (u32(b.smin) <= u32(b.smax)) {
      b.u32min = max(b.u32min, u32(b.smin));
      b.u32max = min(b.u32max, u32(b.smax));
    }
    if (s32(b.smin) <= s32(b.smax)) {
      b.s32min = max(b.s32min, s32(b.smin));
      b.s32max = min(b.s32max, s32(b.smax));
    }
  }
  if (u32((b.umin >> 32n) + 1n) === u32(b.umax >> 32n) && s32(b.umin) < 0n && s32(b.umax) >= 0n) {
    b.s32min = max(b.s32min, s32(b.umin));
    b.s32max = min(b.s32max, s32(b.umax));
  }
  if (u32(u64(b.smin) >> 32n) + 1n === u32(u64(b.smax) >> 32n) && s32(b.smin) < 0n && s32(b.smax) >= 0n) {
    b.s32min = max(b.s32min, s32(b.smin));
    b.s32max = min(b.s32max, s32(b.smax));
  }
  if (s32(b.u32min) <= s32(b.u32max)) {
    b.s32min = max(b.s32min, s32(b.u32min));
    b.s32max = min(b.s32max, s32(b.u32max));
  }
  if (u32(b.s32min) <= u32(b.s32max)) {
    b.u32min = max(u32(b.s32min), b.u32min);
    b.u32max = min(u32(b.s32max), b.u32max);
  }
}

function deduce64(b: Bounds): void {
  if (s64(b.umin) <= s64(b.umax)) {
    b.smin = max(b.smin, s64(b.umin));
    b.smax = min(b.smax, s64(b.umax));
  }
  if (u64(b.smin) <= u64(b.smax)) {
    b.umin = max(u64(b.smin), b.umin);
    b.umax = min(u64(b.smax), b.umax);
  }
}

function deduceMixed(b: Bounds): void {
  const HI = ~0xffffffffn;
  let nu = u64(b.umin & HI) | b.u32min;
  let xu = u64(b.umax & HI) | b.u32max;
  b.umin = max(b.umin, nu);
  b.umax = min(b.umax, xu);
  let ns = s64((b.smin & HI) | b.u32min);
  let xs = s64((b.smax & HI) | b.u32max);
  b.smin = max(b.smin, ns);
  b.smax = min(b.smax, xs);
  if (u32(b.s32min) <= u32(b.s32max)) {
    nu = u64(b.umin & HI) | u32(b.s32min);
    xu = u64(b.umax & HI) | u32(b.s32max);
    b.umin = max(b.umin, nu);
    b.umax = min(b.umax, xu);
    ns = s64((b.smin & HI) | u32(b.s32min));
    xs = s64((b.smax & HI) | u32(b.s32max));
    b.smin = max(b.smin, ns);
    b.smax = min(b.smax, xs);
  }
  if (b.s32min >= 0n && b.smin >= S32_MIN && b.smax <= S32_MAX) {
    b.smin = b.s32min;
    b.smax = b.s32max;
    b.umin = b.s32min;
    b.umax = b.s32max;
    b.var = tnumIntersect(b.var, tnumRange(b.smin, b.smax));
  }
}

export function deduceBounds(b: Bounds): void {
  deduce32(b);
  deduce64(b);
  deduceMixed(b);
}

function boundOffset(b: Bounds): void {
  const v64 = tnumIntersect(b.var, tnumRange(b.umin, b.umax));
  const v32 = tnumIntersect(tnumSubreg(v64), tnumRange(b.u32min, b.u32max));
  b.var = tnumOr(tnumClearSubreg(v64), v32);
}

/** The kernel's reg_bounds_sync. */
export function syncBounds(b: Bounds): void {
  updateBounds(b);
  deduceBounds(b);
  deduceBounds(b);
  boundOffset(b);
  updateBounds(b);
}

/** Whether the bounds are contradictory (an impossible path). */
export function boundsInvalid(b: Bounds): boolean {
  return b.umin > b.umax || b.smin > b.smax || b.u32min > b.u32max || b.s32min > b.s32max;
}

/** zext_32_to_64: the result of a 32-bit ALU op. */
export function zext32(b: Bounds): void {
  b.var = tnumSubreg(b.var);
  b.umin = b.u32min;
  b.umax = b.u32max;
  if (b.s32min >= 0n && b.s32max >= 0n) {
    b.smin = b.s32min;
    b.smax = b.s32max;
  } else {
    b.smin = 0n;
    b.smax = U32;
  }
}

/** coerce_reg_to_size: truncation to 1, 2 or 4 bytes (loads, 32-bit moves). */
export function coerceToSize(b: Bounds, size: number): void {
  b.var = tnumCast(b.var, size);
  const mask = (1n << BigInt(size * 8)) - 1n;
  if ((b.umin & ~mask) === (b.umax & ~mask)) {
    b.umin &= mask;
    b.umax &= mask;
  } else {
    b.umin = 0n;
    b.umax = mask;
  }
  b.smin = b.umin;
  b.smax = b.umax;
  if (size < 4) mark32Unbounded(b);
  syncBounds(b);
}
function tnumCast(a: Tnum, size: number): Tnum {
  const m = (1n << BigInt(size * 8)) - 1n;
  return { value: a.value & m, mask: a.mask & m };
}

/** Sign extension of the low `size` bytes (movsx, ldsx): the result bounds. */
export function coerceToSizeSx(b: Bounds, size: number, is32: boolean): void {
  const bits = BigInt(size * 8);
  const lo = -(1n << (bits - 1n));
  const hi = (1n << (bits - 1n)) - 1n;
  if (tnumIsConst(b.var)) {
    const v = BigInt.asIntN(size * 8, b.var.value);
    markKnown(b, is32 ? u32(v) : v);
    return;
  }
  // Keep the range when the low part provably does not change sign; otherwise the full sign-extended range.
  const top = b.var.value | b.var.mask;
  const signKnown0 = ((b.var.mask >> (bits - 1n)) & 1n) === 0n && ((b.var.value >> (bits - 1n)) & 1n) === 0n;
  const fits = b.umax <= hi && !(b.umin & ~((1n << bits) - 1n));
  const nb = unknownBounds();
  if (fits || (signKnown0 && (top & ~((1n << bits) - 1n)) === 0n)) {
    nb.smin = b.umin;
    nb.smax = min(b.umax, hi);
    nb.var = tnumCast(b.var, size);
  } else {
    nb.smin = lo;
    nb.smax = hi;
  }
  if (is32) {
    nb.s32min = nb.smin;
    nb.s32max = nb.smax;
    mark64Unbounded(nb);
    nb.var = tnumUnknown;
    updateBounds(nb);
    deduceBounds(nb);
    Object.assign(b, nb);
    zext32(b);
    syncBounds(b);
    return;
  }
  nb.s32min = nb.smin;
  nb.s32max = nb.smax;
  Object.assign(b, nb);
  syncBounds(b);
}

// ---- ALU transfer functions ----

const addOv = (a: bigint, b: bigint, lo: bigint, hi: bigint) => {
  const r = a + b;
  return r < lo || r > hi;
};

function add32(d: Bounds, s: Bounds): void {
  const smin = d.s32min + s.s32min;
  const smax = d.s32max + s.s32max;
  if (addOv(d.s32min, s.s32min, S32_MIN, S32_MAX) || addOv(d.s32max, s.s32max, S32_MIN, S32_MAX)) {
    d.s32min = S32_MIN;
    d.s32max = S32_MAX;
  } else {
    d.s32min = smin;
    d.s32max = smax;
  }
  const umin = d.u32min + s.u32min;
  const umax = d.u32max + s.u32max;
  const minOv = umin > U32;
  const maxOv = umax > U32;
  d.u32min = u32(umin);
  d.u32max = u32(umax);
  if (!minOv && maxOv) {
    d.u32min = 0n;
    d.u32max = U32;
  }
}
function add64(d: Bounds, s: Bounds): void {
  if (addOv(d.smin, s.smin, S64_MIN, S64_MAX) || addOv(d.smax, s.smax, S64_MIN, S64_MAX)) {
    d.smin = S64_MIN;
    d.smax = S64_MAX;
  } else {
    d.smin += s.smin;
    d.smax += s.smax;
  }
  const umin = d.umin + s.umin;
  const umax = d.umax + s.umax;
  const minOv = umin > U64;
  const maxOv = umax > U64;
  d.umin = u64(umin);
  d.umax = u64(umax);
  if (!minOv && maxOv) {
    d.umin = 0n;
    d.umax = U64;
  }
}
function sub32(d: Bounds, s: Bounds): void {
  if (addOv(d.s32min, -s.s32max, S32_MIN, S32_MAX) || addOv(d.s32max, -s.s32min, S32_MIN, S32_MAX)) {
    d.s32min = S32_MIN;
    d.s32max = S32_MAX;
  } else {
    d.s32min -= s.s32max;
    d.s32max -= s.s32min;
  }
  const umin = d.u32min - s.u32max;
  const umax = d.u32max - s.u32min;
  d.u32min = u32(umin);
  d.u32max = u32(umax);
  if (umin < 0n && umax >= 0n) {
    d.u32min = 0n;
    d.u32max = U32;
  }
}
function sub64(d: Bounds, s: Bounds): void {
  if (addOv(d.smin, -s.smax, S64_MIN, S64_MAX) || addOv(d.smax, -s.smin, S64_MIN, S64_MAX)) {
    d.smin = S64_MIN;
    d.smax = S64_MAX;
  } else {
    d.smin -= s.smax;
    d.smax -= s.smin;
  }
  const umin = d.umin - s.umax;
  const umax = d.umax - s.umin;
  d.umin = u64(umin);
  d.umax = u64(umax);
  if (umin < 0n && umax >= 0n) {
    d.umin = 0n;
    d.umax = U64;
  }
}
function mul32(d: Bounds, s: Bounds): void {
  const umax = d.u32max * s.u32max;
  const umin = d.u32min * s.u32min;
  if (umax > U32 || umin > U32) {
    d.u32min = 0n;
    d.u32max = U32;
  } else {
    d.u32min = umin;
    d.u32max = umax;
  }
  const p = [d.s32min * s.s32min, d.s32min * s.s32max, d.s32max * s.s32min, d.s32max * s.s32max];
  if (p.some((x) => x < S32_MIN || x > S32_MAX)) {
    d.s32min = S32_MIN;
    d.s32max = S32_MAX;
  } else {
    d.s32min = p.reduce(min);
    d.s32max = p.reduce(max);
  }
}
function mul64(d: Bounds, s: Bounds): void {
  const umax = d.umax * s.umax;
  const umin = d.umin * s.umin;
  if (umax > U64 || umin > U64) {
    d.umin = 0n;
    d.umax = U64;
  } else {
    d.umin = umin;
    d.umax = umax;
  }
  const p = [d.smin * s.smin, d.smin * s.smax, d.smax * s.smin, d.smax * s.smax];
  if (p.some((x) => x < S64_MIN || x > S64_MAX)) {
    d.smin = S64_MIN;
    d.smax = S64_MAX;
  } else {
    d.smin = p.reduce(min);
    d.smax = p.reduce(max);
  }
}
function s32FromU32(d: Bounds): void {
  if (s32(d.u32min) <= s32(d.u32max)) {
    d.s32min = s32(d.u32min);
    d.s32max = s32(d.u32max);
  } else {
    d.s32min = S32_MIN;
    d.s32max = S32_MAX;
  }
}
function s64FromU64(d: Bounds): void {
  if (s64(d.umin) <= s64(d.umax)) {
    d.smin = s64(d.umin);
    d.smax = s64(d.umax);
  } else {
    d.smin = S64_MIN;
    d.smax = S64_MAX;
  }
}
type BitOp = 'and' | 'or' | 'xor';
function bit32(op: BitOp, d: Bounds, s: Bounds): void {
  const srcKnown = tnumSubregIsConst(s.var);
  const dstKnown = tnumSubregIsConst(d.var);
  const v = tnumSubreg(d.var);
  if (srcKnown && dstKnown) {
    markKnown32(d, v.value);
    return;
  }
  if (op === 'and') {
    d.u32min = v.value;
    d.u32max = min(d.u32max, s.u32max);
  } else if (op === 'or') {
    d.u32min = max(d.u32min, s.u32min);
    d.u32max = v.value | v.mask;
  } else {
    d.u32min = v.value;
    d.u32max = v.value | v.mask;
  }
  s32FromU32(d);
}
function bit64(op: BitOp, d: Bounds, s: Bounds): void {
  const srcKnown = tnumIsConst(s.var);
  const dstKnown = tnumIsConst(d.var);
  if (srcKnown && dstKnown) {
    markKnown(d, d.var.value);
    return;
  }
  const v = d.var;
  if (op === 'and') {
    d.umin = v.value;
    d.umax = min(d.umax, s.umax);
  } else if (op === 'or') {
    d.umin = max(d.umin, s.umin);
    d.umax = v.value | v.mask;
  } else {
    d.umin = v.value;
    d.umax = v.value | v.mask;
  }
  s64FromU64(d);
  updateBounds(d);
}

function lsh32Bounds(d: Bounds, umin: bigint, umax: bigint): void {
  d.s32min = S32_MIN;
  d.s32max = S32_MAX;
  if (umax > 31n || d.u32max > 1n << (31n - umax)) {
    d.u32min = 0n;
    d.u32max = U32;
  } else {
    d.u32min = u32(d.u32min << umin);
    d.u32max = u32(d.u32max << umax);
  }
}
function lsh64Bounds(d: Bounds, umin: bigint, umax: bigint): void {
  d.smax = umin === 32n && umax === 32n && d.s32max >= 0n ? d.s32max << 32n : S64_MAX;
  d.smin = umin === 32n && umax === 32n && d.s32min >= 0n ? d.s32min << 32n : S64_MIN;
  if (umax > 63n || d.umax > 1n << (63n - umax)) {
    d.umin = 0n;
    d.umax = U64;
  } else {
    d.umin = u64(d.umin << umin);
    d.umax = u64(d.umax << umax);
  }
}

export type AluOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'or'
  | 'and'
  | 'lsh'
  | 'rsh'
  | 'neg'
  | 'mod'
  | 'xor'
  | 'arsh';

/** is_safe_to_compute_dst_reg_range. */
function safeToCompute(op: AluOp, s: Bounds, is64: boolean): boolean {
  const srcConst = is64
    ? tnumIsConst(s.var) && s.smin === s.smax && s.umin === s.umax
    : tnumSubregIsConst(s.var) && s.s32min === s.s32max && s.u32min === s.u32max;
  switch (op) {
    case 'add':
    case 'sub':
    case 'neg':
    case 'and':
    case 'xor':
    case 'or':
    case 'mul':
      return true;
    case 'lsh':
    case 'rsh':
    case 'arsh':
      return srcConst && s.umax < (is64 ? 64n : 32n);
    default:
      return false;
  }
}

/** adjust_scalar_min_max_vals: dst = dst OP src on scalars; mutates d. */
export function aluScalar(op: AluOp, d: Bounds, s: Bounds, is64: boolean): void {
  if (!safeToCompute(op, s, is64)) {
    Object.assign(d, unknownBounds());
    return;
  }
  switch (op) {
    case 'add':
      add32(d, s);
      add64(d, s);
      d.var = tnumAdd(d.var, s.var);
      break;
    case 'sub':
      sub32(d, s);
      sub64(d, s);
      d.var = tnumSub(d.var, s.var);
      break;
    case 'neg': {
      const old = cloneBounds(d);
      markKnown(d, 0n);
      sub32(d, old);
      sub64(d, old);
      d.var = tnumNeg(old.var);
      break;
    }
    case 'mul':
      d.var = tnumMul(d.var, s.var);
      mul32(d, s);
      mul64(d, s);
      break;
    case 'and':
      d.var = tnumAnd(d.var, s.var);
      bit32('and', d, s);
      bit64('and', d, s);
      break;
    case 'or':
      d.var = tnumOr(d.var, s.var);
      bit32('or', d, s);
      bit64('or', d, s);
      break;
    case 'xor':
      d.var = tnumXor(d.var, s.var);
      bit32('xor', d, s);
      bit64('xor', d, s);
      break;
    case 'lsh':
      if (!is64) {
        const sub = tnumSubreg(d.var);
        lsh32Bounds(d, s.u32min, s.u32max);
        d.var = tnumSubreg(tnumLshift(sub, Number(s.u32min)));
        mark64Unbounded(d);
        update32(d);
      } else {
        lsh64Bounds(d, s.umin, s.umax);
        lsh32Bounds(d, s.umin, s.umax);
        d.var = tnumLshift(d.var, Number(s.umin));
        updateBounds(d);
      }
      break;
    case 'rsh':
      if (!is64) {
        const sub = tnumSubreg(d.var);
        d.s32min = S32_MIN;
        d.s32max = S32_MAX;
        d.var = tnumRshift(sub, Number(s.u32min));
        d.u32min >>= s.u32max;
        d.u32max >>= s.u32min;
        mark64Unbounded(d);
        update32(d);
      } else {
        d.smin = S64_MIN;
        d.smax = S64_MAX;
        d.var = tnumRshift(d.var, Number(s.umin));
        d.umin >>= s.umax;
        d.umax >>= s.umin;
        mark32Unbounded(d);
        updateBounds(d);
      }
      break;
    case 'arsh':
      if (!is64) {
        const sh = s.u32min;
        d.s32min >>= sh;
        d.s32max >>= sh;
        d.var = tnumArshift(tnumSubreg(d.var), Number(sh), 32);
        d.u32min = 0n;
        d.u32max = U32;
        mark64Unbounded(d);
        update32(d);
      } else {
        const sh = s.umin;
        d.smin >>= sh;
        d.smax >>= sh;
        d.var = tnumArshift(d.var, Number(sh), 64);
        d.umin = 0n;
        d.umax = U64;
        mark32Unbounded(d);
        updateBounds(d);
      }
      break;
    default:
      break;
  }
  if (!is64) zext32(d);
  syncBounds(d);
}

/** Pointer + scalar variable offsets (adjust_ptr_min_max_vals, the ADD and SUB cases). */
export function addVarOffset(ptr: Bounds, off: Bounds, sub: boolean): Bounds {
  const d = unknownBounds();
  if (!sub) {
    if (addOv(ptr.smin, off.smin, S64_MIN, S64_MAX) || addOv(ptr.smax, off.smax, S64_MIN, S64_MAX)) {
      d.smin = S64_MIN;
      d.smax = S64_MAX;
    } else {
      d.smin = ptr.smin + off.smin;
      d.smax = ptr.smax + off.smax;
    }
    if (ptr.umin + off.umin > U64 || ptr.umax + off.umax > U64) {
      d.umin = 0n;
      d.umax = U64;
    } else {
      d.umin = ptr.umin + off.umin;
      d.umax = ptr.umax + off.umax;
    }
    d.var = tnumAdd(ptr.var, off.var);
  } else {
    if (addOv(ptr.smin, -off.smax, S64_MIN, S64_MAX) || addOv(ptr.smax, -off.smin, S64_MIN, S64_MAX)) {
      d.smin = S64_MIN;
      d.smax = S64_MAX;
    } else {
      d.smin = ptr.smin - off.smax;
      d.smax = ptr.smax - off.smin;
    }
    if (ptr.umin < off.umax) {
      d.umin = 0n;
      d.umax = U64;
    } else {
      d.umin = ptr.umin - off.umax;
      d.umax = ptr.umax - off.umin;
    }
    d.var = tnumSub(ptr.var, off.var);
  }
  mark32Unbounded(d);
  syncBounds(d);
  return d;
}

export function boundsEqual(a: Bounds, b: Bounds): boolean {
  return (
    a.var.value === b.var.value &&
    a.var.mask === b.var.mask &&
    a.smin === b.smin &&
    a.smax === b.smax &&
    a.umin === b.umin &&
    a.umax === b.umax &&
    a.s32min === b.s32min &&
    a.s32max === b.s32max &&
    a.u32min === b.u32min &&
    a.u32max === b.u32max
  );
}

/** range_within: every value `cur` may hold is one `old` may hold (plus tnum_in). */
export function boundsWithin(old: Bounds, cur: Bounds): boolean {
  return (
    old.umin <= cur.umin &&
    old.umax >= cur.umax &&
    old.smin <= cur.smin &&
    old.smax >= cur.smax &&
    old.u32min <= cur.u32min &&
    old.u32max >= cur.u32max &&
    old.s32min <= cur.s32min &&
    old.s32max >= cur.s32max &&
    tnumIn(old.var, cur.var)
  );
}
