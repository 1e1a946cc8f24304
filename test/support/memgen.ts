/**
 * A seeded generator of random XDP programs that do pointer arithmetic, for the verifier's
 * soundness test: variable offsets into the stack, a map value and the packet, derived from
 * unknown scalars (map and packet bytes) bounded by checks that are sometimes wrong (flipped
 * comparison, off by one, 32-bit compare, a missing lower bound, a missing null check, the packet
 * check against the wrong pointer), and linked scalars (`r2 = r1; r2 += 4; if r2 > N` bounding r1).
 *
 * Conventions of the generated programs (LLVM assembly, src/isa/asm/llvm.ts):
 *   r6 = ctx, r7 = packet data, r8 = packet end, r9 = the map value (maps[0]: array, key 4,
 *   value VALUE_SIZE, 1 entry) or NULL, r10 the frame; `out` returns XDP_PASS.
 */
import type { Rng } from './progen.js';

export const VALUE_SIZE = 32;

const SIZES = [1, 2, 4, 8] as const;
const SZ: Record<number, string> = { 1: 'u8', 2: 'u16', 4: 'u32', 8: 'u64' };

/** One generated program: its assembly text. */
export function generateMemProgram(rng: Rng): string {
  const out: string[] = [];
  const emit = (s: string) => out.push(s);
  let label = 0;
  const fresh = () => `l${label++}`;
  // prologue: ctx, packet pointers, zeroed stack, map lookup (null check usually)
  emit('r6 = r1');
  emit('r7 = *(u32 *)(r6 + 0)');
  emit('r8 = *(u32 *)(r6 + 4)');
  emit('r1 = 0');
  for (let i = 1; i <= 8; i++) emit(`*(u64 *)(r10 - ${8 * i}) = r1`);
  emit(`*(u32 *)(r10 - 68) = r1`);
  emit('r2 = r10');
  emit('r2 += -68');
  emit('r1 = map_fd(0) ll');
  emit('call 1');
  emit('r9 = r0');
  if (!rng.chance(0.05)) emit('if r9 == 0 goto out');

  const gadgets = rng.range(1, 4);
  for (let g = 0; g < gadgets; g++) {
    const x = rng.pick([1, 2, 3]);
    // an unknown scalar in rX: a byte/half/word of the map value or of the packet
    if (rng.chance(0.7)) {
      const sz = rng.pick([1, 2, 4]);
      emit(`r${x} = *(${SZ[sz]} *)(r9 + ${rng.int(VALUE_SIZE / sz) * sz})`);
    } else {
      const k = rng.int(8);
      emit('r4 = r7');
      emit(`r4 += ${k + 1}`);
      emit('if r4 > r8 goto out');
      emit(`r${x} = *(u8 *)(r7 + ${k})`);
    }
    if (rng.chance(0.2)) emit(`r${x} <<= ${rng.int(4)}`);
    if (rng.chance(0.15)) emit(`r${x} += ${rng.range(-8, 8)}`);
    const region = rng.pick(['stack', 'map', 'pkt', 'pkt', 'linked'] as const);
    const sz = rng.pick(SIZES);
    const write = rng.chance(0.4);
    const limit = region === 'stack' ? 64 : region === 'map' || region === 'linked' ? VALUE_SIZE : 48;
    // the bound: N so that [rX + off, rX + off + sz) fits the region when the check is right
    let off = rng.int(Math.max(1, limit - sz + 1 - 8));
    off -= off % (region === 'stack' ? sz : 1);
    let n = limit - sz - off;
    if (rng.chance(0.2)) n += rng.pick([1, 2, 8, -1]); // off by some
    n = Math.max(0, n);
    if (rng.chance(0.1)) off += rng.pick([1, -1, 4]);
    const bound = rng.pick(['and', 'jgt', 'jge', 'jsgt', 'j32', 'none', 'jgt', 'jgt'] as const);
    const l = fresh();
    if (region === 'linked') {
      // linked scalars: bound a copy plus a constant, access with the original
      const c = rng.range(0, 16);
      emit(`r4 = r${x}`);
      emit(`r4 += ${c}`);
      emit(`if r4 > ${n + c + (rng.chance(0.2) ? 1 : 0)} goto ${l}`);
    } else if (bound === 'and') {
      const mask = Math.max(0, n);
      const pow = mask === 0 ? 0 : 2 ** Math.floor(Math.log2(mask + 1)) - 1;
      emit(`r${x} &= ${rng.chance(0.85) ? pow : mask}`);
    } else if (bound === 'jgt') emit(`if r${x} > ${n} goto ${l}`);
    else if (bound === 'jge') emit(`if r${x} >= ${n + (rng.chance(0.7) ? 1 : 0)} goto ${l}`);
    else if (bound === 'jsgt') {
      emit(`if r${x} s> ${n} goto ${l}`);
      if (rng.chance(0.7)) emit(`if r${x} s< 0 goto ${l}`);
    } else if (bound === 'j32') emit(`if w${x} > ${n} goto ${l}`);
    const ptr = region === 'stack' ? 'r10' : region === 'pkt' ? 'r7' : 'r9';
    emit(`r5 = ${ptr}`);
    if (region === 'stack') emit(`r5 += ${-limit}`);
    emit(`r5 += r${x}`);
    if (region === 'pkt') {
      emit('r4 = r5');
      emit(`r4 += ${Math.max(0, off + sz + (rng.chance(0.1) ? -1 : 0))}`);
      emit(`if r4 > ${rng.chance(0.05) ? 'r7' : 'r8'} goto ${l}`);
    }
    const at = off < 0 ? `r5 - ${-off}` : `r5 + ${off}`;
    if (write) emit(`*(${SZ[sz]} *)(${at}) = r${x}`);
    else emit(`r0 = *(${SZ[sz]} *)(${at})`);
    emit(`${l}:`);
  }
  emit('out:');
  emit('r0 = 2');
  emit('exit');
  return out.join('\n');
}
