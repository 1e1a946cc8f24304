/**
 * Tracked numbers (the kernel's kernel/bpf/tnum.c): 64-bit values whose bits are each known 0,
 * known 1 or unknown. `value` holds the known 1 bits, `mask` the unknown ones; both are unsigned
 * 64-bit bigints and `value & mask` is always 0.
 */
export interface Tnum {
  readonly value: bigint;
  readonly mask: bigint;
}

export const U64 = (1n << 64n) - 1n;
export const U32 = (1n << 32n) - 1n;
const u64 = (v: bigint): bigint => v & U64;

export const tnum = (value: bigint, mask: bigint): Tnum => ({ value: u64(value), mask: u64(mask) });
export const tnumUnknown: Tnum = { value: 0n, mask: U64 };
export const tnumConst = (v: bigint): Tnum => ({ value: u64(v), mask: 0n });

/** Bit length of v (the kernel's fls64): 0 for 0. */
function fls64(v: bigint): number {
  return v === 0n ? 0 : v.toString(2).length;
}

export function tnumRange(min: bigint, max: bigint): Tnum {
  const chi = u64(min) ^ u64(max);
  const bits = fls64(chi);
  if (bits > 63) return tnumUnknown;
  const delta = (1n << BigInt(bits)) - 1n;
  return tnum(min & ~delta, delta);
}

export const tnumLshift = (a: Tnum, s: number): Tnum => tnum(a.value << BigInt(s), a.mask << BigInt(s));
export const tnumRshift = (a: Tnum, s: number): Tnum => tnum(a.value >> BigInt(s), a.mask >> BigInt(s));

/** Arithmetic shift of a `bits`-wide tnum (64 or 32), the result zero-extended to 64 bits. */
export function tnumArshift(a: Tnum, s: number, bits: 32 | 64): Tnum {
  const b = BigInt(bits);
  const sx = (v: bigint) => BigInt.asUintN(bits, BigInt.asIntN(bits, v) >> BigInt(s));
  void b;
  return { value: sx(a.value), mask: sx(a.mask) };
}

export function tnumAdd(a: Tnum, b: Tnum): Tnum {
  const sm = u64(a.mask + b.mask);
  const sv = u64(a.value + b.value);
  const sigma = u64(sm + sv);
  const chi = sigma ^ sv;
  const mu = chi | a.mask | b.mask;
  return tnum(sv & ~mu, mu);
}

export function tnumSub(a: Tnum, b: Tnum): Tnum {
  const dv = u64(a.value - b.value);
  const alpha = u64(dv + a.mask);
  const beta = u64(dv - b.mask);
  const chi = alpha ^ beta;
  const mu = chi | a.mask | b.mask;
  return tnum(dv & ~mu, mu);
}

export const tnumNeg = (a: Tnum): Tnum => tnumSub(tnumConst(0n), a);

export function tnumAnd(a: Tnum, b: Tnum): Tnum {
  const alpha = a.value | a.mask;
  const beta = b.value | b.mask;
  const v = a.value & b.value;
  return tnum(v, alpha & beta & ~v);
}

export function tnumOr(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask | b.mask;
  return tnum(v, mu & ~v);
}

export function tnumXor(a: Tnum, b: Tnum): Tnum {
  const v = a.value ^ b.value;
  const mu = a.mask | b.mask;
  return tnum(v & ~mu, mu);
}

/** Multiplication (the kernel's shift-and-add form with per-bit uncertainty). */
export function tnumMul(a0: Tnum, b0: Tnum): Tnum {
  let a = a0;
  let b = b0;
  const accV = u64(a.value * b.value);
  let accM: Tnum = { value: 0n, mask: 0n };
  while (a.value || a.mask) {
    if (a.value & 1n) accM = tnumAdd(accM, tnum(0n, b.mask));
    else if (a.mask & 1n) accM = tnumAdd(accM, tnum(0n, b.value | b.mask));
    a = tnumRshift(a, 1);
    b = tnumLshift(b, 1);
  }
  return tnumAdd(tnumConst(accV), accM);
}

export function tnumIntersect(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask & b.mask;
  return tnum(v & ~mu, mu);
}

export function tnumCast(a: Tnum, size: number): Tnum {
  const m = (1n << BigInt(size * 8)) - 1n;
  return { value: a.value & m, mask: a.mask & m };
}

export const tnumIsConst = (a: Tnum): boolean => a.mask === 0n;
export const tnumIsUnknown = (a: Tnum): boolean => a.mask === U64;
export const tnumEquals = (a: Tnum, b: Tnum): boolean => a.value === b.value && a.mask === b.mask;

export function tnumIsAligned(a: Tnum, size: number): boolean {
  if (!size) return true;
  return ((a.value | a.mask) & BigInt(size - 1)) === 0n;
}

/** Whether every value of b is a value of a. */
export function tnumIn(a: Tnum, b: Tnum): boolean {
  if (b.mask & ~a.mask) return false;
  return a.value === (b.value & ~a.mask);
}

export const tnumSubreg = (a: Tnum): Tnum => tnumCast(a, 4);
export const tnumClearSubreg = (a: Tnum): Tnum => tnumLshift(tnumRshift(a, 32), 32);
export const tnumWithSubreg = (reg: Tnum, sub: Tnum): Tnum => tnumOr(tnumClearSubreg(reg), tnumSubreg(sub));
export const tnumConstSubreg = (a: Tnum, v: bigint): Tnum => tnumWithSubreg(a, tnumConst(v));
export const tnumSubregIsConst = (a: Tnum): boolean => (a.mask & U32) === 0n;

/** `(0x0; 0xffffffff)`, as the kernel's tnum_strn. */
export const tnumStr = (a: Tnum): string => `(0x${a.value.toString(16)}; 0x${a.mask.toString(16)})`;
