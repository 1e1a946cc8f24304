/**
 * Helpers with a numeric twin (HelperFn.fast): the JIT calls the twin when every argument is below
 * 2^53 and the BigInt form otherwise; both engines must give the same results either way
 * (arguments at and around the boundary, errors, effects on the maps).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Insn, splitImm64 } from '../src/isa/insn.js';
import { mapHelpers } from '../src/vm/helpers/maps.js';
import { prepare } from '../src/vm/interpreter.js';
import { prepareJit } from '../src/vm/jit/program.js';
import type { RingbufMap } from '../src/vm/maps/ringbuf.js';
import { MapRuntime } from '../src/vm/maps/runtime.js';
import { AddressSpace } from '../src/vm/memory.js';

const ins = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
const ld64 = (dst: number, v: bigint): Insn => ({ code: 0x18, dst, src: 0, off: 0, ...splitImm64(v) });
const EXIT = ins(0x95);

describe('JIT helpers without BigInts (numeric twins)', () => {
  const space = new AddressSpace();
  const rt = new MapRuntime({ memory: space });
  const rb = rt.create({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096 }) as RingbufMap;
  const hash = rt.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 4 });
  const helpers = new Map(mapHelpers(rt));
  const engines = {
    interpreter: (code: Insn[]) => prepare(code, { helpers, memory: space }),
    jit: (code: Insn[]) => prepareJit(code, { helpers, memory: space }),
  };

  /** reserve(size, flags); submit(sample, submitFlags) when it succeeds; r0 = sample != 0. */
  const reserve = (size: bigint, flags: bigint, submitFlags: bigint): Insn[] => [
    ld64(1, BigInt(rb.address)),
    ld64(2, size),
    ld64(3, flags),
    ins(0x85, 0, 0, 0, 131), // bpf_ringbuf_reserve
    ins(0x15, 0, 0, 5, 0), // if r0 == 0 goto out
    ins(0xbf, 1, 0), // r1 = r0
    ld64(2, submitFlags),
    ins(0x85, 0, 0, 0, 132), // bpf_ringbuf_submit
    ins(0xb7, 0, 0, 0, 1),
    EXIT,
    EXIT, // out
  ];
  /** update(key 7, value 0x1122, flags); r0 = its result. */
  const update = (flags: bigint): Insn[] => [
    ins(0x62, 10, 0, -4, 7), // *(u32 *)(r10 - 4) = 7
    ins(0x7a, 10, 0, -16, 0x1122), // *(u64 *)(r10 - 16) = 0x1122
    ld64(1, BigInt(hash.address)),
    ins(0xbf, 2, 10),
    ins(0x07, 2, 0, 0, -4),
    ins(0xbf, 3, 10),
    ins(0x07, 3, 0, 0, -16),
    ld64(4, flags),
    ins(0x85, 0, 0, 0, 2), // bpf_map_update_elem
    EXIT,
  ];

  const big = [0n, 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

  test('ringbuf_reserve/submit: the same samples and refusals under both engines', () => {
    const wat = prepareJit(reserve(8n, 0n, 0n), { helpers, memory: space }).wat();
    assert.equal(wat.match(/call \$host\.fast/g)?.length, 2); // both calls have the numeric path...
    assert.equal(wat.match(/call \$host\.helper/g)?.length, 2); // ...and the BigInt one for large arguments
    for (const size of [8n, 16n, 2n ** 32n, 2n ** 53n, 2n ** 64n - 1n]) {
      for (const flags of big) {
        const got: Record<string, string> = {};
        for (const [name, make] of Object.entries(engines)) {
          const p = make(reserve(size, flags, 0n));
          got[name] = `r0=${p.run().r0} records=${rb.drain().length}`;
        }
        assert.equal(got.jit, got.interpreter, `size ${size} flags ${flags}`);
      }
    }
  });

  test('a bad sample address stops the program with the same error in both engines', () => {
    for (const sample of [0x12345678n, 2n ** 53n + 8n]) {
      const code = [ld64(1, sample), ins(0xb7, 2, 0, 0, 0), ins(0x85, 0, 0, 0, 132), EXIT];
      const msgs = Object.values(engines).map((make) => {
        try {
          make(code).run();
          return 'no error';
        } catch (e) {
          return (e as Error).message;
        }
      });
      assert.equal(msgs[1], msgs[0]);
      assert.match(msgs[0], /is not a reserved ring buffer sample/);
    }
  });

  test('map_update_elem: flags at the 2^53 boundary give the same errno', () => {
    for (const flags of big) {
      const rs = Object.values(engines).map((make) => {
        hash.delete(Uint8Array.of(7, 0, 0, 0));
        const r0 = make(update(flags)).run().r0;
        return `${r0} ${hash.lookup(Uint8Array.of(7, 0, 0, 0)) ? 'stored' : 'absent'}`;
      });
      assert.equal(rs[1], rs[0], `flags ${flags}`);
    }
  });
});
