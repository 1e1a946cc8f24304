/**
 * Array maps (kernel/bpf/arraymap.c): array (also the global-data maps .data/.bss/.rodata: one big
 * value, BPF_F_MMAPABLE, BPF_F_RDONLY_PROG for .rodata), percpu_array, and the fd arrays: prog_array,
 * array_of_maps (and the perf_event_array of perf.ts builds on these rules).
 *
 * Every element exists from creation, zeroed. Values are laid out like the kernel's:
 * `elem_size = round_up(value_size, 8)`, element i at `base + i * elem_size` (per-CPU: one such
 * block per CPU). BPF_F_RDONLY_PROG makes the value memory read-only to programs.
 */
import { BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MAP_FLAGS } from '../../catalog/map-types.js';
import { E2BIG, EBADF, EEXIST, EINVAL, ENOENT, ENOTSUPP } from '../../errno.js';
import { type BatchPage, roundUp8 } from '../../maps.js';
import { type MapAttrs, type MapHost, VmMap } from './base.js';

function index(key: Uint8Array): number {
  return (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
}

export class ArrayMap extends VmMap {
  readonly base: number;
  /** Bytes from one element to the next: round_up(value_size, 8). */
  readonly stride: number;
  protected override readonly batchOps = {
    lookup: true,
    lookupAndDelete: false,
    update: true,
    delete: false,
  };

  constructor(host: MapHost, attrs: MapAttrs, id: number) {
    super(host, attrs, id);
    this.stride = roundUp8(this.valueSize);
    const size = this.stride * this.maxEntries * (this.perCpu ? this.cpus : 1);
    const mmapable = (this.flags & MAP_FLAGS.BPF_F_MMAPABLE) !== 0;
    this.base = this.allocate(size, 'values', this.progWritable, mmapable ? 4096 : 8).base;
  }

  /** Address of element `i` on `cpu`. Per-CPU arrays keep each CPU's elements together. */
  elementAddress(i: number, cpu = this.host.cpu): number {
    return this.perCpu ? this.base + (cpu * this.maxEntries + i) * this.stride : this.base + i * this.stride;
  }

  /** Address of byte `offset` of the value at index `i` (what `map_value(fd, off)` resolves to). */
  valueAddress(i = 0, offset = 0): number {
    return this.elementAddress(i, 0) + offset;
  }

  override sysLookup(key: Uint8Array | undefined, out: Uint8Array): number {
    const i = index(key as Uint8Array);
    if (i >= this.maxEntries) return -ENOENT;
    const u8 = this.space.u8;
    if (!this.perCpu) {
      out.set(u8.subarray(this.base + i * this.stride, this.base + i * this.stride + this.valueSize));
      return 0;
    }
    // round_up(value_size, 8) bytes per CPU, padding included (copy_map_value_long)
    for (let c = 0; c < this.cpus; c++) {
      const a = this.elementAddress(i, c);
      out.set(u8.subarray(a, a + this.stride), c * this.stride);
    }
    return 0;
  }

  private put(key: Uint8Array, value: Uint8Array, flags: number, fromProg: boolean): number {
    if (this.perCpu ? flags > BPF_EXIST : (flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
    const i = index(key);
    if (i >= this.maxEntries) return -E2BIG;
    if (flags & BPF_NOEXIST) return -EEXIST;
    if (flags & BPF_F_LOCK) return -EINVAL; // no bpf_spin_lock in the value
    const u8 = this.space.u8;
    if (!this.perCpu || fromProg) {
      u8.set(value.subarray(0, this.valueSize), this.elementAddress(i));
      return 0;
    }
    for (let c = 0; c < this.cpus; c++) {
      u8.set(value.subarray(c * this.stride, (c + 1) * this.stride), this.elementAddress(i, c));
    }
    return 0;
  }

  override sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    return this.put(key as Uint8Array, value, flags, false);
  }

  override sysDelete(): number {
    return -EINVAL;
  }

  override sysNextKey(key: Uint8Array | undefined, out: Uint8Array): number {
    return arrayNextKey(this.maxEntries, key, out);
  }

  override progLookup(key: Uint8Array): number {
    const i = index(key);
    return i < this.maxEntries ? this.elementAddress(i) : 0;
  }

  override progLookupPercpu(key: Uint8Array, cpu: number): number {
    const i = index(key);
    return this.perCpu && i < this.maxEntries && cpu < this.cpus ? this.elementAddress(i, cpu) : 0;
  }

  override progUpdate(key: Uint8Array, value: Uint8Array, flags: number): number {
    return this.put(key, value, flags, true);
  }

  override progDelete(): number {
    return -EINVAL;
  }

  protected override batchWalk(
    count: number,
    cursor: Uint8Array | undefined,
    del: boolean,
  ): BatchPage | number {
    return this.genericBatchWalk(count, cursor, del);
  }

  *elements(): IterableIterator<{ key: Uint8Array; addr: number }> {
    for (let i = 0; i < this.maxEntries; i++) {
      const key = new Uint8Array(4);
      new DataView(key.buffer).setUint32(0, i, true);
      yield { key, addr: this.elementAddress(i) };
    }
  }
}

/** array_map_get_next_key: a missing or out-of-range key gives 0; the last index gives ENOENT. */
export function arrayNextKey(maxEntries: number, key: Uint8Array | undefined, out: Uint8Array): number {
  const i = key === undefined ? maxEntries : index(key);
  let n: number;
  if (i >= maxEntries) n = 0;
  else if (i === maxEntries - 1) return -ENOENT;
  else n = i + 1;
  new DataView(out.buffer, out.byteOffset, 4).setUint32(0, n, true);
  return 0;
}

/**
 * Arrays of references (prog_array, array_of_maps, perf_event_array): the value from user space is
 * an fd (a VM map id or program id here); a user-space lookup returns the object's id.
 */
export abstract class FdArrayMap<T> extends VmMap {
  protected readonly slots: (T | undefined)[];

  constructor(host: MapHost, attrs: MapAttrs, id: number) {
    super(host, attrs, id);
    this.slots = new Array(this.maxEntries).fill(undefined);
    this.userLookup = attrs.type.userLookup;
  }

  /** The object an fd from user space stands for, or a negative errno. */
  protected abstract resolve(fd: number): T | number;
  /** The id a user-space lookup returns. */
  protected abstract idOf(obj: T): number;
  private readonly userLookup: boolean | undefined;

  /** The object at index i. */
  at(i: number): T | undefined {
    return i < this.maxEntries ? this.slots[i] : undefined;
  }

  /** Stores an object directly (TypeScript-side convenience). */
  set(i: number, obj: T | undefined): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.maxEntries)
      throw new Error(`index ${i} out of range for ${this}`);
    this.slots[i] = obj;
  }

  override sysLookup(key: Uint8Array | undefined, out: Uint8Array): number {
    // perf_event_array has no map_fd_sys_lookup_elem: ENOTSUPP (the catalog's userLookup).
    if (this.userLookup === false) return -ENOTSUPP;
    const obj = this.at(index(key as Uint8Array));
    if (obj === undefined) return -ENOENT;
    new DataView(out.buffer, out.byteOffset, 4).setUint32(0, this.idOf(obj), true);
    return 0;
  }

  override sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    if (flags !== BPF_ANY) return -EINVAL;
    const i = index(key as Uint8Array);
    if (i >= this.maxEntries) return -E2BIG;
    const fd = new DataView(value.buffer, value.byteOffset, 4).getUint32(0, true);
    const obj = this.resolve(fd);
    if (typeof obj === 'number') return obj;
    this.slots[i] = obj;
    return 0;
  }

  override sysDelete(key: Uint8Array | undefined): number {
    const i = index(key as Uint8Array);
    if (i >= this.maxEntries) return -E2BIG;
    if (this.slots[i] === undefined) return -ENOENT;
    this.slots[i] = undefined;
    return 0;
  }

  override sysNextKey(key: Uint8Array | undefined, out: Uint8Array): number {
    return arrayNextKey(this.maxEntries, key, out);
  }
}

/** A program a prog_array can hold: whatever the runtime registered (opaque to maps). */
export class ProgArrayMap extends FdArrayMap<unknown> {
  protected resolve(fd: number): unknown {
    const p = this.host.programById(fd);
    return p === undefined ? -EBADF : p;
  }
  protected idOf(obj: unknown): number {
    return this.host.programId(obj) ?? 0;
  }
  /** A tail call's target: the program at `i`, if any. */
  program(i: number): unknown {
    return this.at(i);
  }
}

export class ArrayOfMapsMap extends FdArrayMap<VmMap> {
  constructor(
    host: MapHost,
    attrs: MapAttrs,
    id: number,
    private readonly innerOk: (m: VmMap) => boolean,
  ) {
    super(host, attrs, id);
  }
  protected resolve(fd: number): VmMap | number {
    const m = this.host.mapById(fd);
    if (!m) return -EBADF;
    return this.innerOk(m) ? m : -EINVAL;
  }
  protected idOf(obj: VmMap): number {
    return obj.id;
  }
  override progLookup(key: Uint8Array): number {
    return this.at(index(key))?.address ?? 0;
  }
}
