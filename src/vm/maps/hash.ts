/**
 * Hash maps: hash, percpu_hash, lru_hash, lru_percpu_hash and hash_of_maps (kernel/bpf/hashtab.c).
 *
 * Elements sit on a list in insertion order (the VM's iteration order; the kernel's is its bucket
 * order, which user space must not rely on). A deleted element keeps its forward link, so a batch
 * cursor resumes correctly after deletes; `get_next_key` of a missing key restarts at the first
 * element, as the kernel's does. Values live in VM memory slots, so a program's lookup returns a
 * real pointer and writes through it are seen by everyone.
 *
 * LRU maps never refuse an insert: when full they evict the least recently used element (an update,
 * or a lookup from a program, makes an element recent; a user-space lookup does not, as in the
 * kernel). The kernel's LRU is approximate (per-CPU lists, batch shrinking); this one is exact.
 *
 * hash and percpu_hash maps also keep an index in VM memory, so the JIT can look keys up without
 * leaving WebAssembly (see `jitIndex`): an open-addressing table (linear probing, backward-shift
 * deletion, power-of-two capacity, at most half full) of 16-byte entries
 * [hash u32, value slot u32 (0: empty), key copy u32, 0], the key copies in a pool of their own, and
 * an 8-byte header [table address u32, mask u32] that stays put when the table grows. Every update
 * and delete from JavaScript (user space or a helper) maintains it; nothing but the host writes it.
 */
import { BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MAP_FLAGS } from '../../catalog/map-types.js';
import { E2BIG, EBADF, EEXIST, EINVAL, ENOENT } from '../../errno.js';
import { type BatchPage, roundUp8 } from '../../maps.js';
import type { Region } from '../memory.js';
import { keyId, type MapAttrs, type MapHost, SlotPool, VmMap } from './base.js';

interface Entry {
  id: number | string;
  key: Uint8Array;
  /** Value slot address (0 for hash_of_maps). */
  addr: number;
  /** Index hash (indexHash of the key) and the address of the key's copy in VM memory (0: no index). */
  h: number;
  keyAddr: number;
  /** Inner map (hash_of_maps). */
  inner: VmMap | undefined;
  seq: number;
  next: Entry | null;
  prev: Entry | null;
  dead: boolean;
  lruNext: Entry | null;
  lruPrev: Entry | null;
}

/** A 32-bit hash of n bytes, a little-endian word at a time. */
function hashBytes(b: Uint8Array, off: number, n: number): number {
  let h = n | 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = off + i;
    h = Math.imul(h ^ (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)), 0x9e3779b1);
    h ^= h >>> 15;
  }
  for (; i < n; i++) h = Math.imul(h ^ b[off + i], 0x01000193);
  return h & 0x3fffffff; // a small integer: a Map key V8 does not box
}

/**
 * The hash of the in-memory index: n bytes, a little-endian u32 at a time, then the tail bytes,
 * then a final mix. The JIT emits the same computation in WebAssembly (compile.ts hashLookupFunc).
 */
export function indexHash(b: Uint8Array, off: number, n: number): number {
  let h = n | 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = off + i;
    h = Math.imul(h ^ (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)), INDEX_MUL);
    h ^= h >>> 15;
  }
  for (; i < n; i++) h = Math.imul(h ^ b[off + i], INDEX_MUL_BYTE);
  h = Math.imul(h ^ (h >>> 16), INDEX_MIX);
  return (h ^ (h >>> 13)) >>> 0;
}
export const INDEX_MUL = 0x9e3779b1 | 0;
export const INDEX_MUL_BYTE = 0x01000193;
export const INDEX_MIX = 0x85ebca6b | 0;
/** Bytes per index entry. */
export const INDEX_ENTRY = 16;

/** Where the JIT finds a hash map's in-memory index. */
export interface HashIndexInfo {
  /** Address of the header: [table address u32, mask u32]. */
  header: number;
  keySize: number;
  /** Per-CPU maps: bytes between one CPU's value and the next (value += cpu * stride). */
  stride: number;
  perCpu: boolean;
}

function sameKey(key: Uint8Array, u8: Uint8Array, addr: number): boolean {
  for (let i = 0; i < key.length; i++) if (key[i] !== u8[addr + i]) return false;
  return true;
}

export type HashKind = 'hash' | 'percpu_hash' | 'lru_hash' | 'lru_percpu_hash' | 'hash_of_maps';

export class HashMap extends VmMap {
  private readonly table = new Map<number | string, Entry>();
  /** Keys of other sizes than 4 by a numeric hash of their bytes (progLookupAt). */
  private readonly byHash: Map<number, Entry | Entry[]> | undefined;
  private head: Entry | null = null;
  private tail: Entry | null = null;
  /** Most recent first. */
  private lruHead: Entry | null = null;
  private lruTail: Entry | null = null;
  private seq = 0;
  private readonly pool: SlotPool | undefined;
  private readonly stride: number;
  private readonly lru: boolean;
  private readonly ofMaps: boolean;
  /** Checks an inner map against the template (hash_of_maps). */
  private readonly innerOk: ((m: VmMap) => boolean) | undefined;
  /** The in-memory index (hash and percpu_hash): header, table, key copies. */
  private readonly idxHeader: Region | undefined;
  private idxTable: Region | undefined;
  private idxMask = 0;
  private idxCount = 0;
  private readonly keyPool: SlotPool | undefined;
  protected override readonly batchOps = { lookup: true, lookupAndDelete: true, update: true, delete: true };

  constructor(host: MapHost, attrs: MapAttrs, id: number, innerOk?: (m: VmMap) => boolean) {
    super(host, attrs, id);
    const kind = attrs.type.name as HashKind;
    this.lru = kind === 'lru_hash' || kind === 'lru_percpu_hash';
    this.ofMaps = kind === 'hash_of_maps';
    this.innerOk = innerOk;
    this.stride = roundUp8(this.valueSize);
    this.byHash = this.keySize === 4 ? undefined : new Map();
    if (!this.ofMaps) {
      const slot = this.perCpu ? this.stride * this.cpus : this.stride;
      const prealloc = (this.flags & MAP_FLAGS.BPF_F_NO_PREALLOC) === 0;
      const writable = this.progWritable;
      this.pool = new SlotPool((n, w) => this.allocate(n, w, writable), slot, this.maxEntries, prealloc);
    }
    if ((kind === 'hash' || kind === 'percpu_hash') && this.keySize > 0) {
      const prealloc = (this.flags & MAP_FLAGS.BPF_F_NO_PREALLOC) === 0;
      this.keyPool = new SlotPool(
        (n, w) => this.allocate(n, `key copies (${w})`, false),
        roundUp8(this.keySize),
        this.maxEntries,
        prealloc,
      );
      this.idxHeader = this.allocate(8, 'index header', false);
      this.idxResize(Math.min(this.maxEntries, 64)); // grows with the map
    }
  }

  // --- the in-memory index

  /** Where the JIT finds the index (undefined: this map has none; LRU maps touch on lookup). */
  jitIndex(): HashIndexInfo | undefined {
    if (!this.idxHeader) return undefined;
    return { header: this.idxHeader.base, keySize: this.keySize, stride: this.stride, perCpu: this.perCpu };
  }

  /** A table for `entries` elements at most half full; every live element re-inserted. */
  private idxResize(entries: number): void {
    let cap = 16;
    while (cap < entries * 2) cap *= 2;
    const old = this.idxTable;
    this.idxTable = this.allocate(cap * INDEX_ENTRY, 'index', false);
    this.idxMask = cap - 1;
    this.idxCount = 0;
    const v = this.space.view;
    v.setUint32((this.idxHeader as Region).base, this.idxTable.base, true);
    v.setUint32((this.idxHeader as Region).base + 4, this.idxMask, true);
    if (old) {
      this.space.freeRegion(old);
      const k = this.regions.indexOf(old);
      if (k >= 0) this.regions.splice(k, 1);
    }
    for (let e = this.head; e; e = e.next) if (!e.dead && e.keyAddr) this.idxInsert(e);
  }

  private idxInsert(e: Entry): void {
    if ((this.idxCount + 1) * 2 > this.idxMask + 1) {
      this.idxResize(this.idxCount + 1); // re-inserts the live elements (not e: not linked yet)
    }
    const v = this.space.view;
    const base = (this.idxTable as Region).base;
    let i = e.h & this.idxMask;
    while (v.getUint32(base + i * INDEX_ENTRY + 4, true) !== 0) i = (i + 1) & this.idxMask;
    const at = base + i * INDEX_ENTRY;
    v.setUint32(at, e.h, true);
    v.setUint32(at + 4, e.addr, true);
    v.setUint32(at + 8, e.keyAddr, true);
    this.idxCount++;
  }

  private idxRemove(e: Entry): void {
    const v = this.space.view;
    const base = (this.idxTable as Region).base;
    const mask = this.idxMask;
    let i = e.h & mask;
    for (;;) {
      const a = v.getUint32(base + i * INDEX_ENTRY + 4, true);
      if (a === e.addr) break;
      if (a === 0) return; // not there (cannot happen)
      i = (i + 1) & mask;
    }
    // backward-shift deletion: move later entries of the probe run into the hole
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const at = base + j * INDEX_ENTRY;
      if (v.getUint32(at + 4, true) === 0) break;
      const k = v.getUint32(at, true) & mask;
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (stays) continue;
      const to = base + i * INDEX_ENTRY;
      v.setUint32(to, v.getUint32(at, true), true);
      v.setUint32(to + 4, v.getUint32(at + 4, true), true);
      v.setUint32(to + 8, v.getUint32(at + 8, true), true);
      i = j;
    }
    const hole = base + i * INDEX_ENTRY;
    v.setUint32(hole, 0, true);
    v.setUint32(hole + 4, 0, true);
    v.setUint32(hole + 8, 0, true);
    this.idxCount--;
  }

  get size(): number {
    return this.table.size;
  }

  // --- lists

  private link(e: Entry): void {
    e.prev = this.tail;
    if (this.tail) this.tail.next = e;
    else this.head = e;
    this.tail = e;
  }

  private unlink(e: Entry): void {
    // e.next stays: a cursor parked on a dead entry follows it forward.
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.dead = true;
    if (this.lru) this.lruUnlink(e);
  }

  private lruUnlink(e: Entry): void {
    if (e.lruPrev) e.lruPrev.lruNext = e.lruNext;
    else if (this.lruHead === e) this.lruHead = e.lruNext;
    if (e.lruNext) e.lruNext.lruPrev = e.lruPrev;
    else if (this.lruTail === e) this.lruTail = e.lruPrev;
    e.lruNext = e.lruPrev = null;
  }

  private touch(e: Entry): void {
    if (this.lruHead === e) return;
    this.lruUnlink(e);
    e.lruNext = this.lruHead;
    if (this.lruHead) this.lruHead.lruPrev = e;
    this.lruHead = e;
    if (!this.lruTail) this.lruTail = e;
  }

  private remove(e: Entry): void {
    this.table.delete(e.id);
    if (this.byHash) {
      const h = hashBytes(e.key, 0, e.key.length);
      const cur = this.byHash.get(h);
      if (cur === e) this.byHash.delete(h);
      else if (Array.isArray(cur)) {
        const rest = cur.filter((x) => x !== e);
        this.byHash.set(h, rest.length === 1 ? rest[0] : rest);
      }
    }
    if (e.keyAddr) {
      this.idxRemove(e);
      this.keyPool?.give(e.keyAddr);
    }
    this.unlink(e);
    if (e.addr) this.pool?.give(e.addr);
  }

  // --- values

  private writeValue(e: Entry, value: Uint8Array, fromProg: boolean, isNew: boolean): void {
    const u8 = this.space.u8;
    if (!this.perCpu) {
      u8.set(value.subarray(0, this.valueSize), e.addr);
      return;
    }
    if (fromProg) {
      // A program writes its own CPU's value; a new element starts at zero on the other CPUs.
      if (isNew) u8.fill(0, e.addr, e.addr + this.stride * this.cpus);
      u8.set(value.subarray(0, this.valueSize), e.addr + this.host.cpu * this.stride);
      return;
    }
    // From user space the kernel copies round_up(value_size, 8) bytes per CPU (copy_map_value_long).
    u8.set(value.subarray(0, this.stride * this.cpus), e.addr);
  }

  private readValue(e: Entry, out: Uint8Array): void {
    if (this.ofMaps) {
      new DataView(out.buffer, out.byteOffset, 4).setUint32(0, e.inner?.id ?? 0, true);
      return;
    }
    const u8 = this.space.u8;
    if (!this.perCpu) {
      out.set(u8.subarray(e.addr, e.addr + this.valueSize));
      return;
    }
    out.set(u8.subarray(e.addr, e.addr + this.stride * this.cpus));
  }

  private put(key: Uint8Array, value: Uint8Array, flags: number, fromProg: boolean): number {
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
    if (flags & BPF_F_LOCK) return -EINVAL; // no bpf_spin_lock in the value (no BTF record)
    let inner: VmMap | undefined;
    if (this.ofMaps) {
      if (fromProg) return -EINVAL; // programs cannot update map-in-map (the verifier refuses)
      const fd = new DataView(value.buffer, value.byteOffset, 4).getUint32(0, true);
      inner = this.host.mapById(fd);
      if (!inner) return -EBADF;
      if (!this.innerOk?.(inner)) return -EINVAL;
    }
    const id = keyId(key);
    const e = this.table.get(id);
    if (e) {
      if (flags === BPF_NOEXIST) return -EEXIST;
      if (this.ofMaps) e.inner = inner;
      else this.writeValue(e, value, fromProg, false);
      if (this.lru) this.touch(e);
      return 0;
    }
    if (flags === BPF_EXIST) return -ENOENT;
    if (this.table.size >= this.maxEntries) {
      if (!this.lru || !this.lruTail) return -E2BIG;
      this.remove(this.lruTail);
    }
    let addr = 0;
    if (this.pool) {
      addr = this.pool.take();
      if (addr === 0) return -E2BIG;
    }
    let keyAddr = 0;
    if (this.keyPool) {
      keyAddr = this.keyPool.take();
      if (keyAddr === 0) {
        this.pool?.give(addr);
        return -E2BIG;
      }
      this.space.u8.set(key.subarray(0, this.keySize), keyAddr);
    }
    const entry: Entry = {
      id,
      key: key.slice(),
      addr,
      h: keyAddr ? indexHash(key, 0, this.keySize) : 0,
      keyAddr,
      inner,
      seq: this.seq++,
      next: null,
      prev: null,
      dead: false,
      lruNext: null,
      lruPrev: null,
    };
    this.table.set(id, entry);
    if (this.byHash) {
      const h = hashBytes(entry.key, 0, entry.key.length);
      const cur = this.byHash.get(h);
      if (cur === undefined) this.byHash.set(h, entry);
      else if (Array.isArray(cur)) cur.push(entry);
      else this.byHash.set(h, [cur, entry]);
    }
    if (keyAddr) this.idxInsert(entry);
    this.link(entry);
    if (!this.ofMaps) this.writeValue(entry, value, fromProg, true);
    if (this.lru) this.touch(entry);
    return 0;
  }

  // --- kernel-style operations

  override sysLookup(key: Uint8Array | undefined, out: Uint8Array): number {
    const e = this.table.get(keyId(key as Uint8Array));
    if (!e) return -ENOENT;
    this.readValue(e, out);
    return 0;
  }

  override sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    return this.put(key as Uint8Array, value, flags, false);
  }

  override sysDelete(key: Uint8Array | undefined): number {
    return this.progDelete(key as Uint8Array);
  }

  override sysLookupAndDelete(key: Uint8Array | undefined, out: Uint8Array): number {
    const e = this.table.get(keyId(key as Uint8Array));
    if (!e) return -ENOENT;
    this.readValue(e, out);
    this.remove(e);
    return 0;
  }

  override sysNextKey(key: Uint8Array | undefined, out: Uint8Array): number {
    let n: Entry | null;
    if (key === undefined) n = this.head;
    else {
      const e = this.table.get(keyId(key));
      n = e ? e.next : this.head;
    }
    if (!n) return -ENOENT;
    out.set(n.key);
    return 0;
  }

  override progLookup(key: Uint8Array): number {
    return this.lookupId(keyId(key));
  }

  /** progLookup of the key at `addr` in VM memory (already checked), without copying it out. */
  progLookupAt(addr: number): number {
    const u8 = this.space.u8;
    const n = this.keySize;
    if (n === 4)
      return this.found(
        this.table.get((u8[addr] | (u8[addr + 1] << 8) | (u8[addr + 2] << 16) | (u8[addr + 3] << 24)) >>> 0),
      );
    // other sizes: the numeric hash index, then the bytes (no key string to build)
    const cur = (this.byHash as Map<number, Entry | Entry[]>).get(hashBytes(u8, addr, n));
    if (cur === undefined) return 0;
    if (!Array.isArray(cur)) return sameKey(cur.key, u8, addr) ? this.found(cur) : 0;
    for (const e of cur) if (sameKey(e.key, u8, addr)) return this.found(e);
    return 0;
  }

  private lookupId(id: number | string): number {
    return this.found(this.table.get(id));
  }

  private found(e: Entry | undefined): number {
    if (!e) return 0;
    if (this.lru) this.touch(e);
    if (this.ofMaps) return e.inner?.address ?? 0;
    return this.perCpu ? e.addr + this.host.cpu * this.stride : e.addr;
  }

  override progLookupPercpu(key: Uint8Array, cpu: number): number {
    if (!this.perCpu || cpu >= this.cpus) return 0;
    const e = this.table.get(keyId(key));
    return e ? e.addr + cpu * this.stride : 0;
  }

  override progUpdate(key: Uint8Array, value: Uint8Array, flags: number): number {
    return this.put(key, value, flags, true);
  }

  override progDelete(key: Uint8Array): number {
    const e = this.table.get(keyId(key));
    if (!e) return -ENOENT;
    this.remove(e);
    return 0;
  }

  /** Cursor: 8 bytes of sequence number, then the key of the next element. */
  protected override batchWalk(
    count: number,
    cursor: Uint8Array | undefined,
    del: boolean,
  ): BatchPage | number {
    let e: Entry | null = this.head;
    if (cursor !== undefined) {
      if (cursor.length !== 8 + this.keySize) return -EINVAL;
      const seq = new DataView(cursor.buffer, cursor.byteOffset, 8).getFloat64(0, true);
      const at = this.table.get(keyId(cursor.subarray(8)));
      if (at && at.seq === seq) e = at;
      else {
        while (e && e.seq < seq) e = e.next;
      }
    }
    const page: BatchPage = { keys: [], values: [], next: undefined };
    while (e && page.keys.length < count) {
      const out = new Uint8Array(this.valueBufferSize);
      this.readValue(e, out);
      page.keys.push(e.key.slice());
      page.values.push(out);
      const n: Entry | null = e.next;
      if (del) this.remove(e);
      e = n;
    }
    if (e) {
      const c = new Uint8Array(8 + this.keySize);
      new DataView(c.buffer).setFloat64(0, e.seq, true);
      c.set(e.key, 8);
      page.next = c;
    }
    return page;
  }

  /** Every element, in iteration order (for for_each_map_elem). */
  *elements(): IterableIterator<{ key: Uint8Array; addr: number }> {
    for (let e = this.head; e; ) {
      const n: Entry | null = e.next;
      if (!e.dead) yield { key: e.key, addr: this.perCpu ? e.addr + this.host.cpu * this.stride : e.addr };
      e = n;
    }
  }
}
