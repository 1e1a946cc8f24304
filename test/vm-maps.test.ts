/** The VM's maps: semantics of each type from TypeScript and from programs run in the interpreter. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BPF_EXIST, BPF_NOEXIST, MAP_FLAGS } from '../src/catalog/map-types.js';
import { isTsbpfError } from '../src/errors.js';
import { assembleLlvm } from '../src/isa/asm/index.js';
import type { Insn } from '../src/isa/insn.js';
import { ENGINES, type EngineOptions, prepareProgram } from '../src/vm/engine.js';
import { type CallbackContext, MAX_TAIL_CALL_CNT, mapHelpers } from '../src/vm/helpers/maps.js';
import type { HelperContext } from '../src/vm/interpreter.js';
import {
  type ArrayMap,
  type ArrayOfMapsMap,
  type HashMap,
  MapRuntime,
  type PerfEventArrayMap,
  type ProgArrayMap,
  type RingbufMap,
  type StackTraceMap,
  type VmMap,
} from '../src/vm/maps/index.js';
import { AddressSpace } from '../src/vm/memory.js';

const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
};
const u64 = (n: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};
const readU32 = (b: Uint8Array | undefined) =>
  b ? new DataView(b.buffer, b.byteOffset).getUint32(0, true) : undefined;
const readU64 = (b: Uint8Array | undefined) =>
  b ? new DataView(b.buffer, b.byteOffset).getBigUint64(0, true) : undefined;

for (const engine of ENGINES) {
  const prepare = (insns: readonly Insn[], options: EngineOptions = {}) =>
    prepareProgram(insns, { ...options, engine });
  function setup(cpus = 2) {
    const rt = new MapRuntime({ memory: new AddressSpace(), cpus });
    const helpers = mapHelpers(rt);
    /** Assembles LLVM-syntax source, resolves map_fd(i)/map_value(i, off) to maps[i], runs it; r0 as a signed 64-bit. */
    const run = (src: string, maps: VmMap[]): bigint => {
      const insns = rt.relocate(assembleLlvm(src), (i) => maps[i]);
      return BigInt.asIntN(
        64,
        prepare(insns, { helpers, memory: rt.memory, inlineMap: (a) => rt.inlineLookup(a) }).run({
          mem: new Uint8Array(16),
        }).r0,
      );
    };
    return { rt, helpers, run };
  }

  /** Calls `map_update_elem(map, &key, &value, FLAGS)` with a u32 key and u64 value built on the stack. */
  const updateProg = (key: number, value: number, flags: number) => `
    *(u32 *)(r10 - 4) = ${key}
    r1 = ${value}
    *(u64 *)(r10 - 16) = r1
    r1 = map_fd(0) ll
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -16
    r4 = ${flags}
    call 2
    exit`;

  /** Looks up a u32 key and adds 1 to the u64 value through the returned pointer; r0 = new value or -1. */
  const incrementProg = (key: number) => `
    *(u32 *)(r10 - 4) = ${key}
    r1 = map_fd(0) ll
    r2 = r10
    r2 += -4
    call 1
    if r0 == 0 goto miss
    r1 = *(u64 *)(r0 + 0)
    r1 += 1
    *(u64 *)(r0 + 0) = r1
    r0 = r1
    exit
  miss:
    r0 = -1
    exit`;

  describe(`VM maps from TypeScript [${engine}]`, () => {
    it('hash: flags, E2BIG when full, delete, keys/entries, usage errors naming sizes', () => {
      const { rt } = setup();
      const m = rt.create({ name: 'h', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 2 });
      m.update(u32(1), u64(10n));
      assert.throws(
        () => m.update(u32(1), u64(11n), BPF_NOEXIST),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 17,
      );
      assert.throws(
        () => m.update(u32(2), u64(11n), BPF_EXIST),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 2,
      );
      m.update(u32(2), u64(20n));
      assert.throws(
        () => m.update(u32(3), u64(30n)),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 7 && /map is full/.test(e.message),
      );
      m.update(u32(2), u64(21n), BPF_EXIST); // an existing key can still be updated when full
      assert.throws(
        () => m.update(u32(1), new Uint8Array(9)),
        (e: unknown) =>
          isTsbpfError(e) && e.code === 'usage' && /value size is 9 bytes, expected 8/.test(e.message),
      );
      assert.equal(readU64(m.lookup(u32(1))), 10n, 'nothing lost after bad input');
      assert.deepEqual([...m.keys()].map(readU32), [1, 2]);
      assert.deepEqual(
        [...m.entries()].map(([k, v]) => [readU32(k), readU64(v)]),
        [
          [1, 10n],
          [2, 21n],
        ],
      );
      assert.equal(m.delete(u32(1)), true);
      assert.equal(m.delete(u32(1)), false);
      assert.equal(m.lookup(u32(1)), undefined);
      rt.close();
    });

    it('hash: get_next_key of a deleted key restarts; batch cursors survive deletes', () => {
      const { rt } = setup();
      const m = rt.create({ name: 'h', type: 'hash', keySize: 4, valueSize: 4, maxEntries: 100 });
      for (let i = 0; i < 10; i++) m.update(u32(i), u32(i * 2));
      assert.deepEqual(readU32(m.nextKey(u32(4))), 5);
      m.delete(u32(4));
      assert.deepEqual(readU32(m.nextKey(u32(4))), 0, 'a missing key restarts at the first key');
      assert.equal(m.nextKey(u32(9)), undefined);
      const p1 = m.lookupBatch(3);
      assert.deepEqual(p1.keys.map(readU32), [0, 1, 2]);
      m.delete(u32(3)); // the element the cursor points at
      m.delete(u32(5));
      const p2 = m.lookupBatch(3, p1.next);
      assert.deepEqual(p2.keys.map(readU32), [6, 7, 8]);
      const p3 = m.lookupAndDeleteBatch(3, p2.next);
      assert.deepEqual(p3.keys.map(readU32), [9]);
      assert.equal(p3.next, undefined);
      assert.equal(m.lookup(u32(9)), undefined);
      rt.close();
    });

    it('array: preallocated zeros, E2BIG/ENOENT out of range, delete is EINVAL, get_next_key', () => {
      const { rt } = setup();
      const m = rt.create({ name: 'a', type: 'array', keySize: 4, valueSize: 4, maxEntries: 3 });
      assert.deepEqual(m.lookup(u32(2)), new Uint8Array(4));
      assert.equal(m.lookup(u32(3)), undefined);
      assert.throws(
        () => m.update(u32(3), u32(1)),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 7,
      );
      assert.throws(
        () => m.update(u32(0), u32(1), BPF_NOEXIST),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 17,
      );
      assert.throws(
        () => m.delete(u32(0)),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 22,
      );
      assert.equal(readU32(m.nextKey()), 0);
      assert.equal(readU32(m.nextKey(u32(99))), 0);
      assert.equal(readU32(m.nextKey(u32(1))), 2);
      assert.equal(m.nextKey(u32(2)), undefined);
      rt.close();
    });

    it('per-CPU: one value per virtual CPU, rounded to 8 bytes', () => {
      const { rt } = setup(3);
      const m = rt.create({ name: 'p', type: 'percpu_hash', keySize: 4, valueSize: 4, maxEntries: 4 });
      assert.equal(m.valueBufferSize, 24);
      m.updatePerCpu(u32(7), [u32(1), u32(2), u32(3)]);
      assert.deepEqual(m.lookupPerCpu(u32(7))?.map(readU32), [1, 2, 3]);
      assert.throws(() => m.update(u32(7), u32(1)), /value size is 4 bytes, expected 24/);
      assert.throws(() => rt.setCpu(3), /cpu must be an integer from 0 to 2/);
      rt.close();
    });

    it('lru_hash: evicts the least recently used (program lookups and updates make recent)', () => {
      const { rt, run } = setup();
      const m = rt.create({ name: 'l', type: 'lru_hash', keySize: 4, valueSize: 8, maxEntries: 3 });
      for (const k of [1, 2, 3]) m.update(u32(k), u64(0n));
      assert.equal(run(incrementProg(1), [m]), 1n); // touches key 1
      m.update(u32(4), u64(0n)); // evicts 2, the least recent
      assert.deepEqual([...m.keys()].map(readU32).sort(), [1, 3, 4]);
      m.lookup(u32(3)); // a user-space lookup does not count
      m.update(u32(5), u64(0n));
      assert.deepEqual([...m.keys()].map(readU32).sort(), [1, 4, 5]);
      rt.close();
    });

    it('lpm_trie: longest prefix wins, exact delete, ENOSPC when full, EINVAL past the max prefix', () => {
      const { rt } = setup();
      const m = rt.create({
        name: 'lpm',
        type: 'lpm_trie',
        keySize: 8,
        valueSize: 4,
        maxEntries: 3,
        flags: MAP_FLAGS.BPF_F_NO_PREALLOC,
      });
      const k = (len: number, ...ip: number[]) => Uint8Array.of(len, 0, 0, 0, ...ip);
      m.update(k(8, 10, 0, 0, 0), u32(8));
      m.update(k(16, 10, 1, 0, 0), u32(16));
      m.update(k(24, 10, 1, 2, 0), u32(24));
      assert.equal(readU32(m.lookup(k(32, 10, 1, 2, 3))), 24);
      assert.equal(readU32(m.lookup(k(32, 10, 1, 3, 3))), 16);
      assert.equal(readU32(m.lookup(k(32, 10, 9, 9, 9))), 8);
      assert.equal(readU32(m.lookup(k(12, 10, 1, 2, 3))), 8, 'the key prefix length bounds the match');
      assert.equal(m.lookup(k(32, 11, 0, 0, 0)), undefined);
      assert.throws(
        () => m.update(k(4, 0, 0, 0, 0), u32(4)),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 28,
      );
      assert.throws(
        () => m.update(k(33, 0, 0, 0, 0), u32(4)),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 22,
      );
      assert.equal(m.delete(k(16, 10, 1, 0, 0)), true);
      assert.equal(m.delete(k(16, 10, 1, 0, 0)), false);
      assert.equal(readU32(m.lookup(k(32, 10, 1, 3, 3))), 8);
      // post-order walk: more specific first
      assert.deepEqual(
        [...m.keys()].map((x) => x[0]),
        [24, 8],
      );
      rt.close();
    });

    it('queue and stack: FIFO/LIFO, E2BIG when full, BPF_EXIST drops the oldest', () => {
      const { rt } = setup();
      const q = rt.create({ name: 'q', type: 'queue', keySize: 0, valueSize: 4, maxEntries: 2 });
      const s = rt.create({ name: 's', type: 'stack', keySize: 0, valueSize: 4, maxEntries: 2 });
      for (const m of [q, s]) {
        m.push(u32(1));
        m.push(u32(2));
        assert.throws(
          () => m.push(u32(3)),
          (e: unknown) => isTsbpfError(e) && e.details.errno === 7,
        );
        m.push(u32(3), BPF_EXIST);
      }
      assert.deepEqual(
        [readU32(q.peek()), readU32(q.pop()), readU32(q.pop()), q.pop()],
        [2, 2, 3, undefined],
      );
      assert.deepEqual([readU32(s.pop()), readU32(s.pop()), s.pop()], [3, 2, undefined]);
      rt.close();
    });

    it('creation refuses what the kernel refuses, with its errno', () => {
      const { rt } = setup();
      const errno = (f: () => unknown) => {
        try {
          f();
          return 0;
        } catch (e) {
          return isTsbpfError(e) ? e.details.errno : -1;
        }
      };
      assert.equal(
        errno(() => rt.create({ type: 'hash', keySize: 0, valueSize: 4, maxEntries: 1 })),
        22,
      );
      assert.equal(
        errno(() => rt.create({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 3000 })),
        22,
      );
      assert.equal(
        errno(() =>
          rt.create({
            type: 'lru_hash',
            keySize: 4,
            valueSize: 4,
            maxEntries: 1,
            flags: MAP_FLAGS.BPF_F_NO_PREALLOC,
          }),
        ),
        524,
      );
      assert.equal(
        errno(() => rt.create({ type: 'lpm_trie', keySize: 8, valueSize: 4, maxEntries: 1 })),
        22,
      );
      assert.throws(
        () => rt.create({ type: 'devmap', keySize: 4, valueSize: 4, maxEntries: 1 }),
        /not implemented by the VM/,
      );
      rt.close();
    });
  });

  describe(`VM maps from programs [${engine}]`, () => {
    it('hash: map_update_elem flags give -EEXIST/-ENOENT/-E2BIG; lookups return pointers into VM memory', () => {
      const { rt, run } = setup();
      const m = rt.create({ name: 'h', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 2 });
      assert.equal(run(updateProg(1, 100, 0), [m]), 0n);
      assert.equal(run(updateProg(1, 100, BPF_NOEXIST), [m]), -17n);
      assert.equal(run(updateProg(2, 5, BPF_EXIST), [m]), -2n);
      assert.equal(run(updateProg(2, 5, 0), [m]), 0n);
      assert.equal(run(updateProg(3, 5, 0), [m]), -7n);
      assert.equal(run(updateProg(3, 5, 9), [m]), -22n);
      assert.equal(run(incrementProg(1), [m]), 101n);
      assert.equal(readU64(m.lookup(u32(1))), 101n, 'a write through the pointer is seen by TypeScript');
      m.update(u32(1), u64(500n));
      assert.equal(run(incrementProg(1), [m]), 501n, 'and a TypeScript update by the program');
      assert.equal(run(incrementProg(9), [m]), -1n);
      rt.close();
    });

    it('percpu_array: each virtual CPU increments its own value', () => {
      const { rt, run } = setup(2);
      const m = rt.create({ name: 'pc', type: 'percpu_array', keySize: 4, valueSize: 8, maxEntries: 4 });
      run(incrementProg(2), [m]);
      rt.setCpu(1);
      run(incrementProg(2), [m]);
      run(incrementProg(2), [m]);
      assert.deepEqual(m.lookupPerCpu(u32(2))?.map(readU64), [1n, 2n]);
      rt.close();
    });

    it('global data: map_value(fd, off) loads; BPF_F_RDONLY_PROG memory cannot be written by a program', () => {
      const { rt, run } = setup();
      const init = new Uint8Array(16);
      new DataView(init.buffer).setUint32(4, 0xabcd, true);
      const rodata = rt.create({
        name: '.rodata',
        type: 'array',
        keySize: 4,
        valueSize: 16,
        maxEntries: 1,
        flags: MAP_FLAGS.BPF_F_RDONLY_PROG | MAP_FLAGS.BPF_F_MMAPABLE,
        contents: [[u32(0), init]],
        freeze: true,
      });
      assert.equal(run('r1 = map_value(0, 4) ll\nr0 = *(u32 *)(r1 + 0)\nexit', [rodata]), 0xabcdn);
      assert.throws(
        () => run('r1 = map_value(0, 4) ll\n*(u32 *)(r1 + 0) = 1\nr0 = 0\nexit', [rodata]),
        (e: unknown) => isTsbpfError(e) && e.code === 'runtime' && /read-only/.test(e.message),
      );
      assert.throws(
        () => rodata.update(u32(0), init),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 1,
      );
      assert.equal((rodata as ArrayMap).valueAddress(0) % 4096, 0, 'mmapable values are page-aligned');
      rt.close();
    });

    it('queue/stack/bloom: push, pop and peek from a program', () => {
      const { rt, run } = setup();
      const q = rt.create({ name: 'q', type: 'queue', keySize: 0, valueSize: 4, maxEntries: 2 });
      const push = (v: number, flags = 0) =>
        `*(u32 *)(r10 - 4) = ${v}\nr1 = map_fd(0) ll\nr2 = r10\nr2 += -4\nr3 = ${flags}\ncall 87\nexit`;
      const popOrPeek = (helper: number) =>
        `r1 = map_fd(0) ll\nr2 = r10\nr2 += -4\ncall ${helper}\nif r0 != 0 goto out\nr0 = *(u32 *)(r10 - 4)\nout:\nexit`;
      assert.equal(run(push(7), [q]), 0n);
      assert.equal(run(push(8), [q]), 0n);
      assert.equal(run(push(9), [q]), -7n);
      assert.equal(run(push(9, BPF_EXIST), [q]), 0n);
      assert.equal(run(popOrPeek(89), [q]), 8n);
      assert.equal(run(popOrPeek(88), [q]), 8n);
      assert.equal(run(popOrPeek(88), [q]), 9n);
      assert.equal(run(popOrPeek(88), [q]), -2n);
      const b = rt.create({ name: 'b', type: 'bloom_filter', keySize: 0, valueSize: 4, maxEntries: 10 });
      const peekB = (v: number) =>
        `*(u32 *)(r10 - 4) = ${v}\nr1 = map_fd(0) ll\nr2 = r10\nr2 += -4\ncall 89\nexit`;
      assert.equal(run(push(42), [b]), 0n);
      assert.equal(run(peekB(42), [b]), 0n);
      assert.equal(b.mayContain(u32(42)), true);
      assert.equal(run(peekB(43), [b]), -2n);
      rt.close();
    });

    it('ringbuf: reserve/submit/discard/output from programs, the kernel header, wraparound, query', async () => {
      const { rt, run } = setup();
      const rb = rt.create({
        name: 'rb',
        type: 'ringbuf',
        keySize: 0,
        valueSize: 0,
        maxEntries: 4096,
      }) as RingbufMap;
      const reserve = (size: number, value: number, commit: 'submit' | 'discard') => `
        r1 = map_fd(0) ll
        r2 = ${size}
        r3 = 0
        call 131
        if r0 == 0 goto full
        r1 = ${value}
        *(u32 *)(r0 + 0) = r1
        r1 = r0
        r2 = 0
        call ${commit === 'submit' ? 132 : 133}
        r0 = 0
        exit
      full:
        r0 = -1
        exit`;
      const output = (value: number) => `
        *(u64 *)(r10 - 8) = ${value}
        r1 = map_fd(0) ll
        r2 = r10
        r2 += -8
        r3 = 8
        r4 = 0
        call 130
        exit`;
      const query = (flag: number) => `r1 = map_fd(0) ll\nr2 = ${flag}\ncall 134\nexit`;
      assert.equal(run(reserve(4, 1, 'submit'), [rb]), 0n);
      assert.equal(run(reserve(4, 2, 'discard'), [rb]), 0n);
      assert.equal(run(output(3), [rb]), 0n);
      assert.equal(run(query(0), [rb]), 48n, 'three records of 16 bytes each');
      assert.equal(run(query(1), [rb]), 4096n);
      // header of the first record: len 4, no BUSY/DISCARD; pg_off counts pages from the ring's start
      const v = rt.memory.view;
      assert.equal(v.getUint32(rb.data.base, true), 4);
      assert.equal(
        v.getUint32(rb.data.base + 16, true),
        (1 << 30) | 4,
        'discarded record has the DISCARD bit',
      );
      assert.deepEqual(rb.drain().map(readU32), [1, 3]);
      assert.equal(run(query(2), [rb]), 48n);
      // Fill it: records of 1000 bytes (1008 with header) until reserve fails, then consume and wrap.
      let n = 0;
      while (run(reserve(1000, 100 + n, 'submit'), [rb]) === 0n) n++;
      assert.equal(n, 4, 'the producer may not get max_entries bytes ahead of the consumer');
      assert.equal(rb.dropped, 1);
      assert.deepEqual(rb.drain().map(readU32), [100, 101, 102, 103]);
      const seen: number[] = [];
      for (let i = 0; i < 10; i++) {
        assert.equal(run(reserve(1000, 200 + i, 'submit'), [rb]), 0n);
        rb.poll((d) => {
          assert.equal(d.length, 1000);
          seen.push(readU32(d) as number);
        });
      }
      assert.deepEqual(seen, [200, 201, 202, 203, 204, 205, 206, 207, 208, 209]);
      // async iterator: records submitted later arrive
      const it = rb.records();
      setTimeout(() => run(output(77), [rb]), 1);
      const first = await it.next();
      assert.equal(readU32(first.value as Uint8Array), 77);
      rb.close();
      assert.equal((await it.next()).done, true);
      rt.close();
    });

    it('perf_event_array: output to the current CPU buffer; -ENOENT with no reader', () => {
      const { rt, run } = setup(2);
      const pa = rt.create({
        name: 'pe',
        type: 'perf_event_array',
        keySize: 4,
        valueSize: 4,
        maxEntries: 2,
      }) as PerfEventArrayMap;
      const out = (v: number) => `
        r6 = r1
        *(u64 *)(r10 - 8) = ${v}
        r1 = r6
        r2 = map_fd(0) ll
        r3 = 0xffffffff ll
        r4 = r10
        r4 += -8
        r5 = 8
        call 25
        exit`;
      assert.equal(run(out(1), [pa]), -2n);
      const reader = pa.openReader(4096);
      assert.equal(run(out(5), [pa]), 0n);
      rt.setCpu(1);
      assert.equal(run(out(6), [pa]), 0n);
      assert.deepEqual(
        reader.drain().map((r) => [r.cpu, readU64(r.data)]),
        [
          [0, 5n],
          [1, 6n],
        ],
      );
      rt.close();
    });

    it('stack_trace: get_stackid stores the environment stack; same stack same id; user lookup zero-fills', () => {
      let stack: bigint[] = [0x1000n, 0x2000n, 0x3000n];
      const rt = new MapRuntime({ memory: new AddressSpace(), stack: () => stack });
      const helpers = mapHelpers(rt);
      const st = rt.create({
        name: 'st',
        type: 'stack_trace',
        keySize: 4,
        valueSize: 32,
        maxEntries: 8,
      }) as StackTraceMap;
      const prog = (flags: number) =>
        prepare(
          rt.relocate(assembleLlvm(`r2 = map_fd(0) ll\nr3 = ${flags}\ncall 27\nexit`), () => st),
          {
            helpers,
            memory: rt.memory,
          },
        );
      const id1 = prog(0).run({ mem: new Uint8Array(8) }).r0;
      assert.equal(prog(0).run({ mem: new Uint8Array(8) }).r0, id1);
      const v = st.lookup(u32(Number(id1)));
      assert.deepEqual(
        [0, 1, 2, 3].map((i) => readU64(v?.subarray(i * 8))),
        [0x1000n, 0x2000n, 0x3000n, 0n],
      );
      // skip 1 frame; BPF_F_REUSE_STACKID (1 << 10) replaces whatever stack had the same bucket
      const id2 = prog(1 | (1 << 10)).run({ mem: new Uint8Array(8) }).r0;
      assert.equal(readU64(st.lookup(u32(Number(id2)))), 0x2000n);
      stack = [];
      assert.equal(BigInt.asIntN(64, prog(0).run({ mem: new Uint8Array(8) }).r0), -14n);
      rt.close();
    });

    it('array_of_maps: a program looks up the inner map, then an element of it', () => {
      const { rt, run } = setup();
      const inner = { type: 'array', keySize: 4, valueSize: 8, maxEntries: 4 } as const;
      const outer = rt.create({
        name: 'o',
        type: 'array_of_maps',
        keySize: 4,
        valueSize: 4,
        maxEntries: 2,
        innerMap: inner,
      });
      const a = rt.create({ name: 'a', ...inner });
      a.update(u32(3), u64(33n));
      outer.update(u32(1), u32(a.id));
      assert.equal(readU32(outer.lookup(u32(1))), a.id);
      const bad = rt.create({ name: 'bad', ...inner, maxEntries: 5 });
      assert.throws(
        () => outer.update(u32(0), u32(bad.id)),
        (e: unknown) => isTsbpfError(e) && e.details.errno === 22,
      );
      const src = `
        *(u32 *)(r10 - 4) = 1
        r1 = map_fd(0) ll
        r2 = r10
        r2 += -4
        call 1
        if r0 == 0 goto miss
        *(u32 *)(r10 - 8) = 3
        r1 = r0
        r2 = r10
        r2 += -8
        call 1
        if r0 == 0 goto miss
        r0 = *(u64 *)(r0 + 0)
        exit
      miss:
        r0 = -1
        exit`;
      assert.equal(run(src, [outer]), 33n);
      (outer as ArrayOfMapsMap).set(1, undefined);
      assert.equal(run(src, [outer]), -1n);
      rt.close();
    });

    it('prog_array: tail calls replace the caller; at most 33 in a chain; a missing slot falls through', () => {
      const { rt, helpers } = setup();
      const pa = rt.create({
        name: 'jmp',
        type: 'prog_array',
        keySize: 4,
        valueSize: 4,
        maxEntries: 2,
      }) as ProgArrayMap;
      const counter = rt.create({ name: 'cnt', type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 });
      // the program counts itself, then tail-calls slot 0 (itself); when that fails it returns the count
      const src = `
        r6 = r1
        *(u32 *)(r10 - 4) = 0
        r1 = map_fd(1) ll
        r2 = r10
        r2 += -4
        call 1
        if r0 == 0 goto out
        r1 = *(u64 *)(r0 + 0)
        r1 += 1
        *(u64 *)(r0 + 0) = r1
        r1 = r6
        r2 = map_fd(0) ll
        r3 = 0
        call 12
        r0 = 1000
      out:
        exit`;
      const prog = prepare(
        rt.relocate(assembleLlvm(src), (i) => [pa, counter][i]),
        { helpers, memory: rt.memory },
      );
      // without an interpreter hook to run with r1 = ctx, the target runs on a fresh 8-byte context
      const runAsTail = (_ctx: bigint, _vm: HelperContext) => prog.run({ mem: new Uint8Array(8) }).r0;
      const id = rt.registerProgram(runAsTail);
      pa.update(u32(0), u32(id));
      assert.equal(readU32(pa.lookup(u32(0))), id);
      assert.equal(prog.run({ mem: new Uint8Array(8) }).r0, 1000n);
      assert.equal(
        readU64(counter.lookup(u32(0))),
        BigInt(1 + MAX_TAIL_CALL_CNT),
        'the first run and 33 tail calls',
      );
      pa.delete(u32(0));
      assert.equal(prog.run({ mem: new Uint8Array(8) }).r0, 1000n, 'an empty slot: the program goes on');
      rt.close();
    });

    it('for_each_map_elem: calls the callback per element until it returns 1 (with an interpreter hook)', () => {
      const { rt, helpers } = setup();
      const h = rt.create({ name: 'h', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8 }) as HashMap;
      for (let i = 1; i <= 5; i++) h.update(u32(i), u64(BigInt(i * 10)));
      const seen: number[] = [];
      const vm: CallbackContext = {
        memory: rt.memory,
        stop() {},
        callFunction(addr, [map, key, value, ctx]) {
          assert.equal(addr, 0x1234n);
          assert.equal(map, BigInt(h.address));
          assert.equal(ctx, 99n);
          const k = rt.memory.readU32(key);
          seen.push(k);
          rt.memory.writeU64(value, rt.memory.readU64(value) + 1n); // values are writable in place
          return k === 3 ? 1n : 0n;
        },
      };
      const fn = helpers.get(164);
      assert.ok(fn);
      assert.equal(fn([BigInt(h.address), 0x1234n, 99n, 0n, 0n], vm), 3n);
      assert.deepEqual(seen, [1, 2, 3]);
      assert.equal(readU64(h.lookup(u32(2))), 21n);
      assert.throws(
        () => fn([BigInt(h.address), 0x1234n, 0n, 0n, 0n], { memory: rt.memory, stop() {} }),
        /callFunction/,
      );
      rt.close();
    });

    it('a non-map address as a map argument stops the program with a clear error', () => {
      const { run } = setup();
      assert.throws(
        () => run('r1 = 0x10000\nr2 = r10\nr2 += -8\n*(u64 *)(r10 - 8) = 0\ncall 1\nexit', []),
        (e: unknown) => isTsbpfError(e) && e.code === 'runtime' && /is not a map/.test(e.message),
      );
    });
  });
}
