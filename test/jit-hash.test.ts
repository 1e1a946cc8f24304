/**
 * Hash lookups inside WebAssembly: hash and percpu_hash maps keep an index in VM memory that the
 * JIT walks without calling the host. Checked against the map's own answers (and the interpreter)
 * through inserts, updates, deletes (backward-shift deletion of probe runs), growth of the table,
 * odd key sizes, per-CPU values, and keys outside the stack frame (the host path).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Insn, splitImm64 } from '../src/isa/insn.js';
import { mapHelpers } from '../src/vm/helpers/maps.js';
import { prepare } from '../src/vm/interpreter.js';
import { type JitProgram, prepareJit } from '../src/vm/jit/program.js';
import type { HashMap } from '../src/vm/maps/hash.js';
import { MapRuntime } from '../src/vm/maps/runtime.js';
import { AddressSpace } from '../src/vm/memory.js';

const ins = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
const ld64 = (dst: number, v: number): Insn => ({
  code: 0x18,
  dst,
  src: 0,
  off: 0,
  ...splitImm64(BigInt(v)),
});

/**
 * r1 = mem (the key's bytes): copies the key into the stack frame (or leaves it in mem when
 * `onStack` is false), looks it up, returns the value's first u32 + 1, or 0 when absent.
 */
function lookupProgram(map: number, keySize: number, onStack: boolean): Insn[] {
  const code: Insn[] = [];
  const slot = -(Math.ceil(keySize / 8) * 8);
  if (onStack) {
    for (let o = 0; o < keySize; o++) {
      code.push(ins(0x71, 3, 1, o)); // r3 = *(u8 *)(r1 + o)
      code.push(ins(0x73, 10, 3, slot + o)); // *(u8 *)(r10 + slot + o) = r3
    }
    code.push(ins(0xbf, 2, 10), ins(0x07, 2, 0, 0, slot)); // r2 = r10 + slot
  } else code.push(ins(0xbf, 2, 1)); // r2 = r1
  code.push(
    ld64(1, map),
    ins(0x85, 0, 0, 0, 1), // call bpf_map_lookup_elem
    ins(0x15, 0, 0, 3, 0), // if r0 == 0 goto out
    ins(0x61, 0, 0, 0), // r0 = *(u32 *)(r0 + 0)
    ins(0x07, 0, 0, 0, 1), // r0 += 1
    ins(0x95), // exit
    ins(0x95), // out: exit
  );
  return code;
}

/** A deterministic xorshift generator. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

for (const [type, cpus] of [
  ['hash', 1],
  ['percpu_hash', 3],
] as const) {
  describe(`JIT hash lookups inside the module [${type}]`, () => {
    for (const keySize of [4, 13, 16]) {
      test(`${keySize}-byte keys: inserts, updates, deletes and growth agree with the map`, () => {
        const space = new AddressSpace();
        const rt = new MapRuntime({ memory: space, cpus });
        const map = rt.create({ type, keySize, valueSize: 8, maxEntries: 600 }) as HashMap;
        const helpers = new Map(mapHelpers(rt));
        const options = { helpers, memory: space, inlineMap: (a: number) => rt.inlineLookup(a) };
        const jit = prepareJit(lookupProgram(map.address, keySize, true), options);
        const far = prepareJit(lookupProgram(map.address, keySize, false), options);
        const interp = prepare(lookupProgram(map.address, keySize, true), options);
        assert.match(jit.wat(), /call \$hash_lookup_[0-9a-f]+\n/); // the module's own lookup function, not the host import
        const next = rng(keySize * 7919 + cpus);
        // few distinct key bytes: long probe runs and many collisions of the table's low bits
        const randomKey = () => {
          const k = new Uint8Array(keySize);
          for (let i = 0; i < keySize; i++) k[i] = next() % 4;
          k[0] = next() % 251;
          return k;
        };
        const present: Uint8Array[] = [];
        const value = (k: Uint8Array, c: number) => (k[0] * 1000 + k[keySize - 1] * 10 + c) >>> 0;
        const expect = (k: Uint8Array, cpu: number): bigint => {
          const v = map.lookup(k);
          if (v === undefined) return 0n;
          const dv = new DataView(v.buffer, v.byteOffset);
          return BigInt(dv.getUint32(type === 'percpu_hash' ? cpu * 8 : 0, true) + 1);
        };
        const check = (k: Uint8Array) => {
          rt.setCpu(next() % cpus);
          const want = expect(k, rt.cpu);
          for (const p of [jit, far, interp] as (JitProgram | ReturnType<typeof prepare>)[])
            assert.equal(p.run({ mem: k }).r0, want, `key ${Buffer.from(k).toString('hex')} cpu ${rt.cpu}`);
        };
        for (let step = 0; step < 3000; step++) {
          const r = next() % 10;
          if (r < 5 && present.length < 600) {
            const k = randomKey();
            const v = new Uint8Array(map.valueBufferSize);
            for (let c = 0; c < cpus; c++) new DataView(v.buffer).setUint32(c * 8, value(k, c + step), true);
            map.update(k, v);
            if (!present.some((p) => Buffer.compare(p, k) === 0)) present.push(k);
          } else if (r < 8 && present.length > 0) {
            const [k] = present.splice(next() % present.length, 1);
            map.delete(k);
            check(k);
          }
          check(present.length > 0 && next() % 2 ? present[next() % present.length] : randomKey());
        }
        for (const k of present) check(k);
        jit.dispose();
        far.dispose();
        rt.close();
      });
    }
  });
}
