/**
 * The VM's maps against the kernel's: the same seeded random sequence of operations on a VM map and
 * a kernel map of the same type and attributes must give the same outcome at every step (value, or
 * errno, or usage error) and the same contents afterwards (as sets where the order is unspecified).
 * Only what is deterministic is compared: hash iteration order and LRU eviction choices are not.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MAP_FLAGS } from '../src/catalog/map-types.js';
import { isTsbpfError } from '../src/errors.js';
import { assembleLlvm } from '../src/isa/asm/index.js';
import { openBpfFds } from '../src/kernel/fds.js';
import { KernelMap, possibleCpus } from '../src/kernel/map.js';
import { bpfAvailable, closeFd, loadProgram, testRun } from '../src/kernel/program.js';
import type { BpfMap, MapSpec } from '../src/maps.js';
import { mapHelpers } from '../src/vm/helpers/maps.js';
import { prepare } from '../src/vm/interpreter.js';
import { MapRuntime, type VmMap } from '../src/vm/maps/index.js';

const avail = bpfAvailable();

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): {
  int(n: number): number;
  bytes(n: number): Uint8Array;
  pick<T>(xs: readonly T[]): T;
} {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    bytes: (n) => Uint8Array.from({ length: n }, () => int(256)),
    pick: (xs) => xs[int(xs.length)],
  };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The CPU this thread is on (field 39 of /proc/thread-self/stat). */
function currentCpu(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[36]);
}

/** What an operation gave: a comparable string. */
function outcome(fn: () => unknown): string {
  try {
    const r = fn();
    if (r === undefined) return 'undefined';
    if (r instanceof Uint8Array) return `bytes:${hex(r)}`;
    if (typeof r === 'boolean' || typeof r === 'number') return `${r}`;
    return JSON.stringify(r);
  } catch (e) {
    if (isTsbpfError(e)) return e.details.errno !== undefined ? `errno:${e.details.errno}` : `${e.code}`;
    throw e;
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

function contents(m: BpfMap): string[] {
  return [...m.entries()].map(([k, v]) => `${hex(k)}=${hex(v)}`);
}

describe('VM maps agree with kernel maps', { skip: avail.ok ? false : avail.reason }, () => {
  const cpus = avail.ok ? possibleCpus() : 1;
  let rt: MapRuntime;
  const open: BpfMap[] = [];
  let fdsBefore: number[] | undefined;
  before(() => {
    fdsBefore = openBpfFds('map');
    rt = new MapRuntime({ cpus });
  });
  after(() => {
    for (const m of open) m.close();
    rt.close();
    assert.deepEqual(openBpfFds('map'), fdsBefore, 'every map fd the tests opened is closed');
  });

  const pair = (spec: MapSpec): [BpfMap, BpfMap] => {
    const v = rt.create(spec);
    const k = KernelMap.create(spec);
    open.push(v, k);
    return [v, k];
  };

  /** Runs `op` on both and asserts the same outcome. */
  const same = (log: string[], what: string, v: BpfMap, k: BpfMap, op: (m: BpfMap) => unknown): string => {
    const a = outcome(() => op(v));
    const b = outcome(() => op(k));
    log.push(`${what} -> ${b}`);
    assert.equal(a, b, `${what}: VM ${a}, kernel ${b}\n${log.slice(-12).join('\n')}`);
    return a;
  };

  const FLAGS = [BPF_ANY, BPF_ANY, BPF_NOEXIST, BPF_EXIST, 3, BPF_F_LOCK];

  for (const type of ['hash', 'percpu_hash', 'hash_no_prealloc'] as const) {
    it(`${type}: random updates/deletes/lookups/batches, same codes and contents`, () => {
      const r = rng(0x5eed + type.length);
      const perCpu = type === 'percpu_hash';
      const [v, k] = pair({
        name: 'd_hash',
        type: perCpu ? 'percpu_hash' : 'hash',
        keySize: 6,
        valueSize: 12,
        maxEntries: 16,
        flags: type === 'hash_no_prealloc' ? MAP_FLAGS.BPF_F_NO_PREALLOC : 0,
      });
      const keyOf = (i: number) => Uint8Array.of(i, 0, 0, 0, 0xaa, i ^ 0x55);
      const log: string[] = [];
      for (let step = 0; step < 400; step++) {
        const key = keyOf(r.int(24));
        const op = r.int(10);
        if (op < 4) {
          const value = r.bytes(v.valueBufferSize);
          const f = r.pick(FLAGS);
          same(log, `update ${hex(key)} flags ${f}`, v, k, (m) => m.update(key, value, f));
        } else if (op < 6) same(log, `delete ${hex(key)}`, v, k, (m) => m.delete(key));
        else if (op < 8) same(log, `lookup ${hex(key)}`, v, k, (m) => m.lookup(key));
        else if (op === 8) same(log, `lookupAndDelete ${hex(key)}`, v, k, (m) => m.lookupAndDelete(key));
        else {
          // a walk: same set of keys, no duplicates
          const a = [...v.keys()].map(hex);
          const b = [...k.keys()].map(hex);
          assert.equal(new Set(a).size, a.length);
          assert.deepEqual(new Set(a), new Set(b), `walk at step ${step}`);
        }
      }
      assert.deepEqual(new Set(contents(v)), new Set(contents(k)));
      // Full map: a new key is E2BIG, an existing one can still be updated.
      for (let i = 0; i < 24; i++) {
        same(log, `fill ${i}`, v, k, (m) => m.update(keyOf(i), new Uint8Array(m.valueBufferSize).fill(i)));
      }
      // Batches: pages of 5, compared as sets. The kernel hands out whole hash buckets and says ENOSPC
      // when a bucket (its hash seed is random) holds more than the page: retry with a bigger page, as
      // callers of BPF_MAP_LOOKUP_BATCH do.
      const page = (m: BpfMap, del: boolean, cursor: Uint8Array | undefined) => {
        for (let count = 5; ; count *= 2) {
          try {
            return del ? m.lookupAndDeleteBatch(count, cursor) : m.lookupBatch(count, cursor);
          } catch (e) {
            if (!(isTsbpfError(e) && e.details.errno === 28 && count < 64)) throw e;
          }
        }
      };
      const walk = (m: BpfMap, del: boolean) => {
        const seen: string[] = [];
        let cursor: Uint8Array | undefined;
        for (let n = 0; n < 100; n++) {
          const p = page(m, del, cursor);
          p.keys.forEach((key, i) => {
            seen.push(`${hex(key)}=${hex(p.values[i])}`);
          });
          if (!p.next) break;
          cursor = p.next;
        }
        return seen;
      };
      const wv = walk(v, false);
      assert.equal(wv.length, 16);
      assert.deepEqual(new Set(wv), new Set(walk(k, false)));
      // delete batch with a missing key in the middle: both stop there with ENOENT.
      const dkeys = [keyOf(0), keyOf(1), keyOf(200), keyOf(2)].filter((x) => v.lookup(x) || x[0] === 200);
      same(log, 'deleteBatch', v, k, (m) => m.deleteBatch(dkeys));
      assert.deepEqual(new Set(contents(v)), new Set(contents(k)));
      // update batch: NOEXIST on an existing key stops the batch with EEXIST.
      const present = [...k.keys()][0];
      const bkeys = [keyOf(0), present, keyOf(1)];
      const bvals = bkeys.map(() => new Uint8Array(v.valueBufferSize).fill(7));
      same(log, 'updateBatch NOEXIST', v, k, (m) => m.updateBatch(bkeys, bvals, BPF_NOEXIST));
      assert.deepEqual(new Set(contents(v)), new Set(contents(k)));
      const all = walk(v, true);
      assert.deepEqual(new Set(all), new Set(walk(k, true)));
      assert.equal(v.nextKey(), undefined);
      assert.equal(k.nextKey(), undefined);
    });
  }

  for (const type of ['array', 'percpu_array'] as const) {
    it(`${type}: updates, range errors, get_next_key and batches agree exactly`, () => {
      const r = rng(0xa77a + type.length);
      const [v, k] = pair({ name: 'd_array', type, keySize: 4, valueSize: 6, maxEntries: 10 });
      const log: string[] = [];
      for (let step = 0; step < 300; step++) {
        const key = u32(r.pick([0, 1, 5, 9, 10, 11, 0xffffffff, r.int(12)]));
        const op = r.int(8);
        if (op < 3) {
          const value = r.bytes(v.valueBufferSize);
          const f = r.pick(FLAGS);
          same(log, `update ${hex(key)} flags ${f}`, v, k, (m) => m.update(key, value, f));
        } else if (op === 3) same(log, `delete ${hex(key)}`, v, k, (m) => m.delete(key));
        else if (op === 4) same(log, `lookup ${hex(key)}`, v, k, (m) => m.lookup(key));
        else if (op === 5) same(log, `nextKey ${hex(key)}`, v, k, (m) => m.nextKey(key));
        else if (op === 6) same(log, `lookupAndDelete ${hex(key)}`, v, k, (m) => m.lookupAndDelete(key));
        else {
          const c = 1 + r.int(4);
          const cursor = r.int(2) ? undefined : u32(r.int(11));
          same(log, `lookupBatch ${c}`, v, k, (m) => {
            const p = m.lookupBatch(c, cursor);
            return { keys: p.keys.map(hex), values: p.values.map(hex), next: p.next && hex(p.next) };
          });
        }
      }
      same(log, 'nextKey()', v, k, (m) => m.nextKey());
      assert.deepEqual(contents(v), contents(k));
      same(log, 'updateBatch', v, k, (m) =>
        m.updateBatch(
          [u32(1), u32(2), u32(12), u32(3)],
          [1, 2, 3, 4].map(() => new Uint8Array(m.valueBufferSize).fill(9)),
        ),
      );
      same(log, 'deleteBatch', v, k, (m) => m.deleteBatch([u32(1)]));
      same(log, 'lookupAndDeleteBatch', v, k, (m) => m.lookupAndDeleteBatch(3));
      assert.deepEqual(contents(v), contents(k));
    });
  }

  it('lpm_trie: longest-prefix lookups, exact deletes, ENOSPC, get_next_key order', () => {
    const r = rng(0x1b3);
    const spec = {
      name: 'd_lpm',
      type: 'lpm_trie',
      keySize: 8,
      valueSize: 4,
      maxEntries: 12,
      flags: MAP_FLAGS.BPF_F_NO_PREALLOC,
    } as const;
    const [v, k] = pair(spec);
    const key = (len: number, a: number, b: number, c = 0, d = 0) => {
      const x = Uint8Array.of(0, 0, 0, 0, a, b, c, d);
      new DataView(x.buffer).setUint32(0, len, true);
      return x;
    };
    const log: string[] = [];
    for (let step = 0; step < 400; step++) {
      const len = r.pick([0, 1, 4, 8, 9, 12, 16, 24, 32, 33, r.int(33)]);
      const kk = key(len, r.pick([10, 192, 0x80, 0x7f]), r.pick([0, 1, 168, 0xff]), r.int(4), r.int(3));
      const op = r.int(7);
      if (op < 3) {
        const f = r.pick(FLAGS.slice(0, 5));
        same(log, `update ${hex(kk)} flags ${f}`, v, k, (m) => m.update(kk, u32(step), f));
      } else if (op === 3) same(log, `delete ${hex(kk)}`, v, k, (m) => m.delete(kk));
      else if (op < 6) same(log, `lookup ${hex(kk)}`, v, k, (m) => m.lookup(kk));
      else same(log, 'walk', v, k, (m) => [...m.keys()].map(hex));
    }
    same(log, 'entries', v, k, (m) => contents(m));
  });

  it('lru_hash: never full, the newest key stays, at most max_entries', () => {
    const [v, k] = pair({ name: 'd_lru', type: 'lru_hash', keySize: 4, valueSize: 8, maxEntries: 64 });
    const log: string[] = [];
    for (let i = 0; i < 1000; i++) {
      same(log, `update ${i}`, v, k, (m) => m.update(u32(i), new Uint8Array(8).fill(i & 0xff)));
      same(log, `lookup newest ${i}`, v, k, (m) => m.lookup(u32(i)));
    }
    assert.ok([...v.keys()].length <= 64);
    assert.ok([...k.keys()].length <= 64);
    same(log, 'NOEXIST on present', v, k, (m) => m.update(u32(999), new Uint8Array(8), BPF_NOEXIST));
    same(log, 'EXIST on absent', v, k, (m) => m.update(u32(5000), new Uint8Array(8), BPF_EXIST));
  });

  for (const type of ['queue', 'stack'] as const) {
    it(`${type}: push/pop/peek, E2BIG when full, BPF_EXIST overwrites the oldest`, () => {
      const r = rng(0x9 + type.length);
      const [v, k] = pair({ name: 'd_qs', type, keySize: 0, valueSize: 4, maxEntries: 5 });
      const log: string[] = [];
      for (let step = 0; step < 300; step++) {
        const op = r.int(6);
        if (op < 3) {
          const f = r.pick([BPF_ANY, BPF_ANY, BPF_EXIST, BPF_NOEXIST, 4]);
          same(log, `push ${step} flags ${f}`, v, k, (m) => m.push(u32(step), f));
        } else if (op === 3) same(log, 'pop', v, k, (m) => m.pop());
        else if (op === 4) same(log, 'peek', v, k, (m) => m.peek());
        else same(log, 'nextKey', v, k, (m) => m.nextKey());
      }
      same(log, 'delete', v, k, (m) => m.delete(new Uint8Array(0)));
      same(log, 'lookupBatch', v, k, (m) => m.lookupBatch(4));
    });
  }

  it('bloom_filter: no false negatives; pop/delete/next refused alike', () => {
    const [v, k] = pair({
      name: 'd_bloom',
      type: 'bloom_filter',
      keySize: 0,
      valueSize: 4,
      maxEntries: 100,
      mapExtra: 3n,
    });
    const log: string[] = [];
    for (let i = 0; i < 100; i++) same(log, `push ${i}`, v, k, (m) => m.push(u32(i * 7919)));
    for (let i = 0; i < 100; i++) same(log, `mayContain ${i}`, v, k, (m) => m.mayContain(u32(i * 7919)));
    same(log, 'push NOEXIST', v, k, (m) => m.push(u32(1), BPF_NOEXIST));
    same(log, 'pop', v, k, (m) => m.pop());
    same(log, 'nextKey', v, k, (m) => m.nextKey());
  });

  it('array_of_maps / hash_of_maps: inner maps by fd in, by id out; template mismatch EINVAL', () => {
    const inner = { type: 'array', keySize: 4, valueSize: 4, maxEntries: 2 } as const;
    const log: string[] = [];
    for (const type of ['array_of_maps', 'hash_of_maps'] as const) {
      const [v, k] = pair({ name: 'd_mim', type, keySize: 4, valueSize: 4, maxEntries: 3, innerMap: inner });
      const [iv, ik] = pair({ name: 'd_inner', ...inner });
      const [bv, bk] = pair({ name: 'd_bad', ...inner, maxEntries: 3 });
      const fdOf = (m: BpfMap) => u32(m instanceof KernelMap ? m.fd : (m as unknown as { id: number }).id);
      const pick = (m: BpfMap, good: BpfMap, bad: BpfMap) => (m === v || m === k ? [m, good, bad] : []);
      const innerOf = (m: BpfMap) => (m === v ? [iv, bv] : [ik, bk]);
      same(log, 'update ok', v, k, (m) => m.update(u32(1), fdOf(innerOf(m)[0])));
      same(log, 'update bad template', v, k, (m) => m.update(u32(2), fdOf(innerOf(m)[1])));
      same(log, 'update flags', v, k, (m) => m.update(u32(0), fdOf(innerOf(m)[0]), BPF_NOEXIST));
      same(log, 'lookup present is the inner id', v, k, (m) => {
        const got = m.lookup(u32(1));
        return got && new DataView(got.buffer).getUint32(0, true) === innerOf(m)[0].info().id;
      });
      same(log, 'lookup absent', v, k, (m) => m.lookup(u32(2)));
      same(log, 'out of range', v, k, (m) => m.update(u32(7), fdOf(innerOf(m)[0])));
      same(log, 'delete', v, k, (m) => m.delete(u32(1)));
      same(log, 'delete again', v, k, (m) => m.delete(u32(1)));
      void pick;
    }
  });

  it('prog_array, stack_trace, ringbuf, perf_event_array: user-space refusals agree', () => {
    const log: string[] = [];
    const prog = loadProgram({
      type: 'socket_filter',
      insns: [
        { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
        { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
      ],
    });
    try {
      const [v, k] = pair({ name: 'd_progs', type: 'prog_array', keySize: 4, valueSize: 4, maxEntries: 4 });
      const vmProg = rt.registerProgram(() => 0n);
      const fd = (m: BpfMap) => u32(m === v ? vmProg : prog.fd);
      same(log, 'update', v, k, (m) => m.update(u32(1), fd(m)));
      same(log, 'update NOEXIST', v, k, (m) => m.update(u32(2), fd(m), BPF_NOEXIST));
      same(log, 'update out of range', v, k, (m) => m.update(u32(4), fd(m)));
      same(log, 'lookup absent', v, k, (m) => m.lookup(u32(0)));
      same(log, 'lookup present', v, k, (m) => m.lookup(u32(1)) !== undefined);
      same(log, 'nextKey', v, k, (m) => m.nextKey(u32(3)));
      same(log, 'delete', v, k, (m) => m.delete(u32(1)));
      same(log, 'delete absent', v, k, (m) => m.delete(u32(1)));
      same(log, 'delete out of range', v, k, (m) => m.delete(u32(9)));
    } finally {
      closeFd(prog.fd);
    }
    const [sv, sk] = pair({
      name: 'd_stacks',
      type: 'stack_trace',
      keySize: 4,
      valueSize: 64,
      maxEntries: 16,
    });
    same(log, 'stack lookup', sv, sk, (m) => m.lookup(u32(0)));
    same(log, 'stack update', sv, sk, (m) => m.update(u32(0), new Uint8Array(64)));
    same(log, 'stack delete', sv, sk, (m) => m.delete(u32(0)));
    same(log, 'stack delete out of range', sv, sk, (m) => m.delete(u32(99)));
    same(log, 'stack next', sv, sk, (m) => m.nextKey());
    const [rv, rk] = pair({ name: 'd_rb', type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096 });
    same(log, 'ringbuf lookup', rv, rk, (m) => m.peek());
    same(log, 'ringbuf push', rv, rk, (m) => m.push(new Uint8Array(0)));
    same(log, 'ringbuf next', rv, rk, (m) => m.nextKey());
    const [pv, pk] = pair({
      name: 'd_perf',
      type: 'perf_event_array',
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
    });
    same(log, 'perf lookup', pv, pk, (m) => m.lookup(u32(0)));
    same(log, 'perf delete', pv, pk, (m) => m.delete(u32(0)));
    same(log, 'perf next', pv, pk, (m) => m.nextKey(u32(0)));
  });

  it('access flags and freeze: BPF_F_RDONLY/WRONLY and frozen maps refuse alike', () => {
    const log: string[] = [];
    const base = { type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 } as const;
    for (const [name, flags] of [
      ['d_ro', MAP_FLAGS.BPF_F_RDONLY],
      ['d_wo', MAP_FLAGS.BPF_F_WRONLY],
      ['d_rop', MAP_FLAGS.BPF_F_RDONLY_PROG],
    ] as const) {
      const [v, k] = pair({ name, ...base, flags });
      same(log, `${name} update`, v, k, (m) => m.update(u32(1), u32(1)));
      same(log, `${name} lookup`, v, k, (m) => m.lookup(u32(1)));
      same(log, `${name} next`, v, k, (m) => m.nextKey());
      same(log, `${name} delete`, v, k, (m) => m.delete(u32(1)));
      same(log, `${name} freeze`, v, k, (m) => m.freeze());
    }
    const [v, k] = pair({ name: 'd_frz', ...base, contents: [[u32(1), u32(2)]], freeze: true });
    same(log, 'frozen update', v, k, (m) => m.update(u32(1), u32(1)));
    same(log, 'frozen delete', v, k, (m) => m.delete(u32(1)));
    same(log, 'frozen lookup', v, k, (m) => m.lookup(u32(1)));
    same(log, 'frozen freeze', v, k, (m) => m.freeze());
    same(log, 'frozen flag', v, k, (m) => m.frozen);
  });

  it('bad input from TypeScript: usage errors, nothing stored is lost', () => {
    const log: string[] = [];
    const [v, k] = pair({ name: 'd_bad', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 2 });
    for (const m of [v, k]) m.update(u32(1), new Uint8Array(8).fill(1));
    same(log, 'short key', v, k, (m) => m.update(new Uint8Array(3), new Uint8Array(8)));
    same(log, 'long value', v, k, (m) => m.update(u32(2), new Uint8Array(9)));
    same(log, 'fill', v, k, (m) => m.update(u32(2), new Uint8Array(8)));
    same(log, 'full', v, k, (m) => m.update(u32(3), new Uint8Array(8)));
    same(log, 'lookup kept', v, k, (m) => m.lookup(u32(1)));
    for (const m of [v, k]) {
      assert.throws(
        () => m.update(new Uint8Array(5), new Uint8Array(8)),
        (e: unknown) =>
          isTsbpfError(e) && e.code === 'usage' && /key size is 5 bytes, expected 4/.test(e.message),
      );
    }
    assert.deepEqual(new Set(contents(v)), new Set(contents(k)));
  });

  it('creation: every (type, flag) and size rule the VM implements is accepted or refused like the kernel', () => {
    const shapes: Record<string, [number, number, number, number?]> = {
      hash: [4, 8, 16],
      array: [4, 8, 16],
      prog_array: [4, 4, 4],
      perf_event_array: [4, 4, 2],
      percpu_hash: [4, 8, 16],
      percpu_array: [4, 8, 16],
      stack_trace: [4, 64, 16],
      lru_hash: [4, 8, 16],
      lru_percpu_hash: [4, 8, 16],
      lpm_trie: [8, 8, 16, MAP_FLAGS.BPF_F_NO_PREALLOC],
      array_of_maps: [4, 4, 4],
      hash_of_maps: [4, 4, 4],
      queue: [0, 8, 16],
      stack: [0, 8, 16],
      ringbuf: [0, 0, 4096],
      bloom_filter: [0, 8, 16],
    };
    const inner = { type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 } as const;
    const attempt = (create: () => BpfMap) =>
      outcome(() => {
        create().close();
        return 'created';
      });
    let checked = 0;
    for (const [type, [ks, vs, me, f0 = 0]] of Object.entries(shapes)) {
      const specs: MapSpec[] = [];
      const s = (o: Partial<MapSpec>): MapSpec => ({
        type,
        keySize: ks,
        valueSize: vs,
        maxEntries: me,
        flags: f0,
        ...(type.endsWith('_of_maps') ? { innerMap: inner } : {}),
        ...o,
      });
      for (const bit of Object.values(MAP_FLAGS)) specs.push(s({ flags: f0 | bit }));
      for (const n of [0, 1, 3, 4, 5, 8, 260, 261, 600]) specs.push(s({ keySize: n }));
      for (const n of [0, 1, 3, 4, 8, 12]) specs.push(s({ valueSize: n }));
      for (const n of [0, 1, 3, 8192, 12288]) specs.push(s({ maxEntries: n }));
      for (const x of [1n, 0x10n]) specs.push(s({ mapExtra: x }));
      specs.push(s({ flags: f0 | MAP_FLAGS.BPF_F_RDONLY | MAP_FLAGS.BPF_F_WRONLY }));
      for (const spec of specs) {
        const a = attempt(() => rt.create(spec));
        const b = attempt(() => KernelMap.create(spec));
        assert.equal(a, b, `${JSON.stringify(spec, (_k, x) => (typeof x === 'bigint' ? `${x}` : x))}`);
        checked++;
      }
    }
    assert.ok(checked > 500);
  });

  /**
   * One program per map kind, driven by the packet: op, key, value and flags are read with legacy
   * packet loads (big-endian fields after the 14-byte Ethernet header), so one load serves a whole
   * random sequence. r0 is the helper's result (or the value read), compared as the kernel reports
   * it: the low 32 bits.
   */
  const PROGRAM = (kind: 'keyed' | 'lpm' | 'keyless', map: string) => `
    r6 = r1
    r0 = *(u32 *)skb[0]
    r7 = r0
    r0 = *(u32 *)skb[4]
    ${kind === 'lpm' ? '*(u32 *)(r10 - 8) = r0\n    r0 = *(u32 *)skb[8]\n    *(u32 *)(r10 - 4) = r0' : '*(u32 *)(r10 - 4) = r0'}
    r0 = *(u32 *)skb[12]
    *(u32 *)(r10 - 16) = r0
    r0 = 0
    *(u32 *)(r10 - 12) = r0
    r0 = *(u32 *)skb[16]
    r8 = r0
    r2 = r10
    r2 += ${kind === 'lpm' ? -8 : -4}
    r3 = r10
    r3 += -16
    r1 = ${map} ll
    ${
      kind === 'keyless'
        ? `if r7 == 3 goto push
    if r7 == 4 goto pop
    r1 = ${map} ll
    r2 = r10
    r2 += -16
    call 89
    goto result
  push:
    r2 = r10
    r2 += -16
    r3 = r8
    call 87
    exit
  pop:
    r2 = r10
    r2 += -16
    call 88
  result:
    if r0 != 0 goto out
    r0 = *(u32 *)(r10 - 16)
  out:
    exit`
        : `if r7 == 0 goto update
    if r7 == 1 goto delete
    call 1
    if r0 == 0 goto null
    r1 = *(u32 *)(r0 + 0)
    if r7 != 6 goto ret
    r1 += 1
    *(u32 *)(r0 + 0) = r1
  ret:
    r0 = r1
    exit
  null:
    r0 = 0xfffffffe
    exit
  update:
    r4 = r8
    call 2
    exit
  delete:
    call 3
    exit`
    }`;

  const packet = (op: number, key: number, key2: number, value: number, flags: number) => {
    const p = new Uint8Array(14 + 20);
    const v = new DataView(p.buffer);
    [op, key, key2, value, flags].forEach((x, i) => {
      v.setUint32(14 + i * 4, x >>> 0, false);
    });
    return p;
  };

  for (const [label, spec, kind] of [
    ['hash', { type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8 }, 'keyed'],
    ['lru_hash', { type: 'lru_hash', keySize: 4, valueSize: 8, maxEntries: 64 }, 'keyed'],
    ['percpu_hash', { type: 'percpu_hash', keySize: 4, valueSize: 8, maxEntries: 8 }, 'keyed'],
    ['array', { type: 'array', keySize: 4, valueSize: 8, maxEntries: 8 }, 'keyed'],
    ['percpu_array', { type: 'percpu_array', keySize: 4, valueSize: 8, maxEntries: 8 }, 'keyed'],
    [
      'lpm_trie',
      { type: 'lpm_trie', keySize: 8, valueSize: 8, maxEntries: 8, flags: MAP_FLAGS.BPF_F_NO_PREALLOC },
      'lpm',
    ],
    ['queue', { type: 'queue', keySize: 0, valueSize: 8, maxEntries: 4 }, 'keyless'],
    ['stack', { type: 'stack', keySize: 0, valueSize: 8, maxEntries: 4 }, 'keyless'],
  ] as const) {
    it(`${label} from programs: the VM's helpers return what the kernel's return (BPF_PROG_TEST_RUN)`, () => {
      const [v, k] = pair({ name: `p_${label}`.slice(0, 15), ...spec } as MapSpec);
      const kfd = (k as KernelMap).fd;
      const prog = loadProgram({
        type: 'socket_filter',
        insns: assembleLlvm(PROGRAM(kind, `map_fd(${kfd})`)),
      });
      try {
        const vmProg = prepare(
          rt.relocate(assembleLlvm(PROGRAM(kind, 'map_fd(0)')), () => v as VmMap),
          { helpers: mapHelpers(rt), memory: rt.memory },
        );
        const r = rng(0xbeef + label.length);
        const log: string[] = [];
        for (let step = 0; step < 250; step++) {
          const op = kind === 'keyless' ? 3 + r.int(3) : r.pick([0, 0, 0, 1, 2, 6]);
          const key = kind === 'lpm' ? r.pick([0, 8, 16, 24, 32, 33]) : r.int(kind === 'keyed' ? 12 : 1);
          const key2 = r.pick([0x0a000000, 0x0a010000, 0x0a010200, 0xc0a80000, r.int(4)]);
          const value = r.int(1000);
          const flags = r.pick([0, 0, 1, 2, 3]);
          const data = packet(op, key, key2, value, flags);
          // The kernel runs a socket filter's test run on the calling thread's CPU: the VM runs on
          // the same one (a migration during the call would make the step ambiguous: stop there).
          const cpuBefore = currentCpu();
          const kr = testRun(prog.fd, { data }).retval;
          const cpu = currentCpu();
          if (cpu !== cpuBefore && spec.type.startsWith('percpu')) break;
          rt.setCpu(cpu);
          const vr = Number(vmProg.run({ mem: data.subarray(14) }).r0 & 0xffffffffn);
          log.push(`op ${op} key ${key}/${key2} value ${value} flags ${flags} -> ${kr}`);
          assert.equal(vr, kr, `step ${step}: VM ${vr}, kernel ${kr}\n${log.slice(-10).join('\n')}`);
        }
        if (kind !== 'keyless' && label !== 'lru_hash') {
          assert.deepEqual(new Set(contents(v)), new Set(contents(k)));
        }
        rt.setCpu(0);
      } finally {
        closeFd(prog.fd);
      }
    });
  }

  it('ringbuf from programs: output until full (-EAGAIN) and ringbuf_query agree with the kernel', () => {
    const [v, k] = pair({ name: 'p_ringbuf', type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096 });
    const src = (map: string) => `
      r6 = r1
      r0 = *(u32 *)skb[0]
      r7 = r0
      r0 = *(u32 *)skb[4]
      r8 = r0
      r1 = 0
      ${Array.from({ length: 8 }, (_, i) => `*(u64 *)(r10 - ${8 * (i + 1)}) = r1`).join('\n      ')}
      if r8 == 1 goto query
      if r7 > 64 goto out
      r1 = ${map} ll
      r2 = r10
      r2 += -64
      r3 = r7
      r4 = 0
      call 130
      exit
    query:
      r1 = ${map} ll
      r2 = r7
      call 134
      exit
    out:
      r0 = 12345
      exit`;
    const prog = loadProgram({
      type: 'socket_filter',
      insns: assembleLlvm(src(`map_fd(${(k as KernelMap).fd})`)),
    });
    try {
      const vmProg = prepare(
        rt.relocate(assembleLlvm(src('map_fd(0)')), () => v as VmMap),
        { helpers: mapHelpers(rt), memory: rt.memory },
      );
      const r = rng(0xfeed);
      const log: string[] = [];
      let full = 0;
      for (let step = 0; step < 200; step++) {
        const query = r.int(4) === 0;
        const arg = query ? r.int(5) : r.int(65);
        const data = packet(arg, query ? 1 : 0, 0, 0, 0);
        const kr = testRun(prog.fd, { data }).retval;
        const vr = Number(vmProg.run({ mem: data.subarray(14) }).r0 & 0xffffffffn);
        log.push(`${query ? 'query' : 'output'} ${arg} -> ${kr}`);
        assert.equal(vr, kr, `step ${step}: VM ${vr}, kernel ${kr}\n${log.slice(-10).join('\n')}`);
        if (!query && kr === 0xfffffff5) full++;
      }
      assert.ok(full > 0, 'the ring filled up (-EAGAIN)');
    } finally {
      closeFd(prog.fd);
    }
  });
});
