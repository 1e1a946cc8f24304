/** Kernel maps through bpf(2): every type the VM has is creatable, errors carry errno, fds are closed. */
import assert from 'node:assert/strict';
import { existsSync, rmSync, statfsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { BPF_EXIST, BPF_NOEXIST, MAP_FLAGS } from '../src/catalog/map-types.js';
import { isTsbpfError } from '../src/errors.js';
import { openBpfFds } from '../src/kernel/fds.js';
import { KernelMap, mapInfoByFd, possibleCpus } from '../src/kernel/map.js';
import { bpfAvailable } from '../src/kernel/program.js';
import type { MapSpec } from '../src/maps.js';

const avail = bpfAvailable();
const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
};
const readU32 = (b: Uint8Array | undefined) =>
  b ? new DataView(b.buffer, b.byteOffset).getUint32(0, true) : undefined;
const errnoOf = (f: () => unknown): number | undefined => {
  try {
    f();
    return 0;
  } catch (e) {
    if (!isTsbpfError(e)) throw e;
    return e.details.errno;
  }
};

/** One spec per map type the VM implements. */
const SPECS: MapSpec[] = [
  { type: 'hash', keySize: 4, valueSize: 8, maxEntries: 4 },
  { type: 'array', keySize: 4, valueSize: 8, maxEntries: 4 },
  { type: 'prog_array', keySize: 4, valueSize: 4, maxEntries: 4 },
  { type: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: 2 },
  { type: 'percpu_hash', keySize: 4, valueSize: 8, maxEntries: 4 },
  { type: 'percpu_array', keySize: 4, valueSize: 8, maxEntries: 4 },
  { type: 'stack_trace', keySize: 4, valueSize: 64, maxEntries: 4 },
  { type: 'lru_hash', keySize: 4, valueSize: 8, maxEntries: 4 },
  { type: 'lru_percpu_hash', keySize: 4, valueSize: 8, maxEntries: 4 },
  { type: 'lpm_trie', keySize: 8, valueSize: 8, maxEntries: 4, flags: MAP_FLAGS.BPF_F_NO_PREALLOC },
  {
    type: 'array_of_maps',
    keySize: 4,
    valueSize: 4,
    maxEntries: 4,
    innerMap: { type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 },
  },
  {
    type: 'hash_of_maps',
    keySize: 4,
    valueSize: 4,
    maxEntries: 4,
    innerMap: { type: 'hash', keySize: 4, valueSize: 4, maxEntries: 1 },
  },
  { type: 'queue', keySize: 0, valueSize: 8, maxEntries: 4 },
  { type: 'stack', keySize: 0, valueSize: 8, maxEntries: 4 },
  { type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096 },
  { type: 'bloom_filter', keySize: 0, valueSize: 8, maxEntries: 4, mapExtra: 3n },
  {
    type: 'array',
    keySize: 4,
    valueSize: 64,
    maxEntries: 1,
    name: '.rodata',
    flags: MAP_FLAGS.BPF_F_RDONLY_PROG | MAP_FLAGS.BPF_F_MMAPABLE,
    freeze: true,
  },
];

describe('kernel maps', { skip: avail.ok ? false : avail.reason }, () => {
  let fdsBefore: number[] | undefined;
  before(() => {
    fdsBefore = openBpfFds('map');
  });
  after(() => {
    assert.deepEqual(openBpfFds('map'), fdsBefore, 'every map fd the tests opened is closed');
  });

  it('creates every map type the VM has and reads its info back', () => {
    for (const spec of SPECS) {
      const m = KernelMap.create({ name: `t_${String(spec.type).slice(0, 12)}`, ...spec });
      try {
        const info = m.info();
        assert.equal(info.type, m.type);
        assert.equal(info.keySize, spec.keySize);
        assert.equal(info.valueSize, spec.valueSize);
        assert.equal(info.maxEntries, spec.maxEntries);
        assert.equal(info.flags, spec.flags ?? 0);
        assert.equal(info.mapExtra, spec.mapExtra ?? 0n);
        assert.ok(info.id > 0);
        assert.equal(m.frozen, spec.freeze === true);
      } finally {
        m.close();
      }
    }
  });

  it('element commands: lookup/update/delete/next with the kernel errnos', () => {
    const m = KernelMap.create({ name: 't_elem', type: 'hash', keySize: 4, valueSize: 4, maxEntries: 2 });
    try {
      m.update(u32(1), u32(10));
      assert.equal(readU32(m.lookup(u32(1))), 10);
      assert.equal(m.lookup(u32(2)), undefined);
      assert.equal(
        errnoOf(() => m.update(u32(1), u32(1), BPF_NOEXIST)),
        17,
      );
      assert.equal(
        errnoOf(() => m.update(u32(2), u32(1), BPF_EXIST)),
        2,
      );
      m.update(u32(2), u32(20));
      const e = (() => {
        try {
          m.update(u32(3), u32(30));
        } catch (x) {
          return x;
        }
      })();
      assert.ok(
        isTsbpfError(e) &&
          e.code === 'kernel' &&
          e.details.errno === 7 &&
          /E2BIG \(map is full/.test(e.message),
      );
      assert.equal(
        errnoOf(() => m.update(u32(1), u32(1), 99)),
        22,
      );
      assert.deepEqual(new Set([...m.keys()].map(readU32)), new Set([1, 2]));
      assert.equal(m.delete(u32(1)), true);
      assert.equal(m.delete(u32(1)), false);
      assert.equal(readU32(m.lookupAndDelete(u32(2))), 20);
      assert.equal(m.nextKey(), undefined);
      assert.throws(() => m.lookup(new Uint8Array(2)), /key size is 2 bytes, expected 4/);
    } finally {
      m.close();
    }
  });

  it('per-CPU values: one per possible CPU, rounded up to 8 bytes', () => {
    const cpus = possibleCpus();
    const m = KernelMap.create({
      name: 't_pcpu',
      type: 'percpu_array',
      keySize: 4,
      valueSize: 4,
      maxEntries: 1,
    });
    try {
      assert.equal(m.valueBufferSize, cpus * 8);
      m.updatePerCpu(
        u32(0),
        Array.from({ length: cpus }, (_, c) => u32(c + 1)),
      );
      assert.deepEqual(
        m.lookupPerCpu(u32(0))?.map(readU32),
        Array.from({ length: cpus }, (_, c) => c + 1),
      );
    } finally {
      m.close();
    }
  });

  it('batches: lookup pages to ENOENT, update, delete, lookup_and_delete', () => {
    const m = KernelMap.create({ name: 't_batch', type: 'hash', keySize: 4, valueSize: 4, maxEntries: 64 });
    try {
      const keys = Array.from({ length: 40 }, (_, i) => u32(i));
      assert.equal(
        m.updateBatch(
          keys,
          keys.map((k) => k.slice()),
        ),
        40,
      );
      const got = new Set<number>();
      let cursor: Uint8Array | undefined;
      for (;;) {
        const p = m.lookupBatch(7, cursor);
        p.keys.forEach((k, i) => {
          assert.equal(readU32(p.values[i]), readU32(k));
          got.add(readU32(k) as number);
        });
        if (!p.next) break;
        cursor = p.next;
      }
      assert.equal(got.size, 40);
      assert.equal(m.deleteBatch(keys.slice(0, 10)), 10);
      assert.equal(
        errnoOf(() => m.deleteBatch([u32(0)])),
        2,
      );
      let n = 0;
      cursor = undefined;
      for (;;) {
        const p = m.lookupAndDeleteBatch(16, cursor);
        n += p.keys.length;
        if (!p.next) break;
        cursor = p.next;
      }
      assert.equal(n, 30);
      assert.equal(m.nextKey(), undefined);
    } finally {
      m.close();
    }
  });

  it('queue push/pop/peek and freeze', () => {
    const q = KernelMap.create({ name: 't_queue', type: 'queue', keySize: 0, valueSize: 4, maxEntries: 2 });
    try {
      q.push(u32(1));
      q.push(u32(2));
      assert.equal(
        errnoOf(() => q.push(u32(3))),
        7,
      );
      q.push(u32(3), BPF_EXIST);
      assert.equal(readU32(q.peek()), 2);
      assert.equal(readU32(q.pop()), 2);
      assert.equal(readU32(q.pop()), 3);
      assert.equal(q.pop(), undefined);
      q.freeze();
      assert.equal(q.frozen, true);
      assert.equal(
        errnoOf(() => q.push(u32(1))),
        1,
      );
    } finally {
      q.close();
    }
  });

  it('pin to bpffs and get it back (BPF_OBJ_PIN / BPF_OBJ_GET)', (t) => {
    let isBpffs = false;
    try {
      isBpffs = statfsSync('/sys/fs/bpf').type === 0xcafe4a11;
    } catch {
      // no /sys/fs/bpf
    }
    if (!isBpffs) {
      t.skip('/sys/fs/bpf is not a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)');
      return;
    }
    const path = `/sys/fs/bpf/tsbpf_test_${process.pid}`;
    const m = KernelMap.create({ name: 't_pin', type: 'array', keySize: 4, valueSize: 4, maxEntries: 2 });
    try {
      m.update(u32(1), u32(42));
      m.pin(path);
      assert.equal(
        errnoOf(() => m.pin(path)),
        17,
      );
      const again = KernelMap.pinned(path);
      try {
        assert.equal(again.id, m.id);
        assert.equal(readU32(again.lookup(u32(1))), 42);
        assert.equal(mapInfoByFd(again.fd).name, 't_pin');
      } finally {
        again.close();
      }
      const ro = KernelMap.pinned(path, { readOnly: true });
      try {
        assert.equal(
          errnoOf(() => ro.update(u32(0), u32(1))),
          1,
        );
      } finally {
        ro.close();
      }
    } finally {
      if (existsSync(path)) rmSync(path);
      m.close();
    }
    assert.equal(
      errnoOf(() => KernelMap.pinned(path)),
      2,
    );
  });

  it('map-in-map: inner fd in, inner id out; a mismatching inner map is EINVAL', () => {
    const inner = { type: 'array', keySize: 4, valueSize: 4, maxEntries: 2 } as const;
    const outer = KernelMap.create({
      name: 't_outer',
      type: 'array_of_maps',
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
      innerMap: inner,
    });
    const a = KernelMap.create({ name: 't_inner', ...inner });
    const b = KernelMap.create({ name: 't_bad', ...inner, valueSize: 8 });
    try {
      outer.update(u32(0), u32(a.fd));
      assert.equal(readU32(outer.lookup(u32(0))), a.id);
      assert.equal(
        errnoOf(() => outer.update(u32(1), u32(b.fd))),
        22,
      );
      const byId = KernelMap.fromId(a.id);
      byId.close();
    } finally {
      for (const m of [outer, a, b]) m.close();
    }
  });

  it('creation errors carry errno and say what is wrong; close is idempotent', () => {
    const e = (() => {
      try {
        KernelMap.create({ type: 'hash', keySize: 0, valueSize: 4, maxEntries: 1 });
      } catch (x) {
        return x;
      }
    })();
    assert.ok(
      isTsbpfError(e) &&
        e.code === 'kernel' &&
        e.details.errno === 22 &&
        /invalid map attributes/.test(e.message),
    );
    assert.throws(
      () => KernelMap.create({ name: 'x'.repeat(16), type: 'hash', keySize: 4, valueSize: 4, maxEntries: 1 }),
      /longer than 15/,
    );
    const m = KernelMap.create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 });
    m.close();
    m.close();
    assert.throws(() => m.lookup(u32(0)), /closed/);
  });
});
