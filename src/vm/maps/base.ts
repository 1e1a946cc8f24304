/**
 * What every VM map shares: identity (an id and an address in the VM), the user-space side of the
 * map commands (size checks, BPF_F_RDONLY/WRONLY, freeze, errors) and the defaults of operations a
 * type does not support. Each type implements the kernel-style operations, which return a negative
 * errno instead of throwing: the helpers hand those to programs as they are.
 */
import { BPF_F_LOCK, MAP_FLAGS, type MapType } from '../../catalog/map-types.js';
import { EINVAL, ENOENT, ENOTSUPP, EPERM } from '../../errno.js';
import { TsbpfError } from '../../errors.js';
import {
  type BatchPage,
  type BpfMap,
  describeMapErrno,
  joinPerCpu,
  type MapInfo,
  type MapOp,
  roundUp8,
  splitPerCpu,
} from '../../maps.js';
import type { AddressSpace, Region } from '../memory.js';

/** What a map needs from the runtime that owns it. */
export interface MapHost {
  readonly memory: AddressSpace;
  readonly cpus: number;
  /** The CPU programs run on now. */
  readonly cpu: number;
  /** The map with this id (VM map ids stand for map fds). */
  mapById(id: number): VmMap | undefined;
  /** The program registered under this id (prog_array values). */
  programById(id: number): unknown;
  /** The id of a registered program. */
  programId(program: unknown): number | undefined;
}

/** Validated creation attributes. */
export interface MapAttrs {
  type: MapType;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  mapExtra: bigint;
}

export const hex = (n: number) => `0x${n.toString(16)}`;

export function mapError(op: MapOp, errno: number, map?: { name: string; typeName: string }): TsbpfError {
  const what = map ? ` on ${map.typeName} map '${map.name}'` : '';
  return new TsbpfError('runtime', `${op}${what} failed: ${describeMapErrno(op, errno)}`, { errno });
}

/** Key of a JS Map for the bytes of a map key (numbers for 4-byte keys: the common, fast case). */
export function keyId(key: Uint8Array): number | string {
  if (key.length === 4) return (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
  let s = '';
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i]);
  return s;
}

export abstract class VmMap implements BpfMap {
  readonly type: number;
  readonly typeName: string;
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly mapExtra: bigint;
  readonly perCpu: boolean;
  readonly cpus: number;
  readonly valueBufferSize: number;
  /** The map's id; also the number that stands for it where the kernel wants a map fd. */
  readonly id: number;
  /** The map's own address in the VM: what `r1 = map_fd(N) ll` becomes after relocation. */
  readonly address: number;
  frozen = false;
  closed = false;
  protected readonly host: MapHost;
  protected readonly regions: Region[] = [];
  private readonly identity: Region;

  constructor(host: MapHost, attrs: MapAttrs, id: number) {
    this.host = host;
    this.type = attrs.type.id;
    this.typeName = attrs.type.name;
    this.name = attrs.name;
    this.keySize = attrs.keySize;
    this.valueSize = attrs.valueSize;
    this.maxEntries = attrs.maxEntries;
    this.flags = attrs.flags;
    this.mapExtra = attrs.mapExtra;
    this.perCpu = attrs.type.perCpu;
    this.cpus = host.cpus;
    this.valueBufferSize = this.perCpu ? host.cpus * roundUp8(attrs.valueSize) : attrs.valueSize;
    this.id = id;
    this.identity = host.memory.allocate(64, `map '${attrs.name}'`, { writable: false });
    this.address = this.identity.base;
  }

  protected get space(): AddressSpace {
    return this.host.memory;
  }

  /** Allocates VM memory that lives as long as the map. */
  protected allocate(size: number, what: string, writable = true, align = 8): Region {
    const r = this.space.allocate(size, `map '${this.name}' ${what}`, { writable, align });
    this.regions.push(r);
    return r;
  }

  /** Whether programs may write values (BPF_F_RDONLY_PROG makes value memory read-only to them). */
  protected get progWritable(): boolean {
    return (this.flags & MAP_FLAGS.BPF_F_RDONLY_PROG) === 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Kernel-style operations: 0 / a result, or a negative errno. Defaults are the kernel's answers
  // for a type without the operation.

  /** Syscall lookup: copies the value (valueBufferSize bytes) into `out`. */
  sysLookup(_key: Uint8Array | undefined, _out: Uint8Array): number {
    return -ENOTSUPP;
  }
  /** Syscall update: `value` has valueBufferSize bytes. */
  sysUpdate(_key: Uint8Array | undefined, _value: Uint8Array, _flags: number): number {
    return -ENOTSUPP;
  }
  sysDelete(_key: Uint8Array | undefined): number {
    return -ENOTSUPP;
  }
  /** Copies the next key into `out`. */
  sysNextKey(_key: Uint8Array | undefined, _out: Uint8Array): number {
    return -ENOTSUPP;
  }
  sysLookupAndDelete(_key: Uint8Array | undefined, _out: Uint8Array): number {
    return -ENOTSUPP;
  }
  /** Program lookup: the value's address on the current CPU, or 0 (NULL). */
  progLookup(_key: Uint8Array): number {
    return 0;
  }
  /** bpf_map_lookup_percpu_elem. */
  progLookupPercpu(_key: Uint8Array, _cpu: number): number {
    return 0;
  }
  /** Program update: `value` has valueSize bytes (the current CPU's value for per-CPU maps). */
  progUpdate(_key: Uint8Array, _value: Uint8Array, _flags: number): number {
    return -EINVAL;
  }
  progDelete(_key: Uint8Array): number {
    return -EINVAL;
  }
  pushElem(_value: Uint8Array, _flags: number): number {
    return -EINVAL;
  }
  popElem(_out: Uint8Array): number {
    return -EINVAL;
  }
  peekElem(_out: Uint8Array): number {
    return -EINVAL;
  }
  /**
   * The kernel's batch commands this type has (the others fail with ENOTSUPP, as `BPF_DO_BATCH`
   * does when the map's ops lack them).
   */
  protected readonly batchOps = { lookup: false, lookupAndDelete: false, update: false, delete: false };
  /** One page of a lookup (and delete) batch, or a negative errno. */
  protected batchWalk(_count: number, _cursor: Uint8Array | undefined, _del: boolean): BatchPage | number {
    return -ENOTSUPP;
  }

  /**
   * The kernel's generic_map_lookup_batch: walk with get_next_key from the cursor (the last key of
   * the previous page), skipping keys that vanished; the cursor of a page is its last key.
   */
  protected genericBatchWalk(
    count: number,
    cursor: Uint8Array | undefined,
    del: boolean,
  ): BatchPage | number {
    if (del) return -ENOTSUPP;
    if (cursor !== undefined && cursor.length !== this.keySize) return -EINVAL;
    const page: BatchPage = { keys: [], values: [], next: undefined };
    let prev = cursor;
    while (page.keys.length < count) {
      const key = new Uint8Array(this.keySize);
      const r = this.sysNextKey(prev, key);
      if (r === -ENOENT) return page;
      if (r < 0) return r;
      const value = new Uint8Array(this.valueBufferSize);
      const l = this.sysLookup(key, value);
      if (l === 0) {
        page.keys.push(key);
        page.values.push(value);
      } else if (l !== -ENOENT) return l;
      prev = key;
    }
    page.next = prev;
    return page;
  }

  // ---------------------------------------------------------------------------------------------
  // The TypeScript side (BpfMap)

  private live(op: MapOp): void {
    if (this.closed) throw new TsbpfError('usage', `${op}: map '${this.name}' is closed`);
  }

  protected checkBytes(what: 'key' | 'value', got: Uint8Array, want: number, op: MapOp): void {
    if (!(got instanceof Uint8Array))
      throw new TsbpfError('usage', `${op} on map '${this.name}': the ${what} must be a Uint8Array`);
    if (got.length !== want) {
      throw new TsbpfError(
        'usage',
        `${op} on ${this.typeName} map '${this.name}': ${what} size is ${got.length} bytes, expected ${want}`,
      );
    }
  }

  protected keyArg(key: Uint8Array | undefined, op: MapOp): Uint8Array | undefined {
    if (this.keySize === 0) {
      if (key !== undefined && key.length !== 0) this.checkBytes('key', key, 0, op); // throws: keyless maps take no key
      return undefined;
    }
    if (key === undefined)
      throw new TsbpfError('usage', `${op} on map '${this.name}': a key of ${this.keySize} bytes is needed`);
    this.checkBytes('key', key, this.keySize, op);
    return key;
  }

  private canRead(op: MapOp): void {
    if (this.flags & MAP_FLAGS.BPF_F_WRONLY) throw mapError(op, EPERM, this);
  }
  private canWrite(op: MapOp): void {
    if (this.flags & MAP_FLAGS.BPF_F_RDONLY || this.frozen) throw mapError(op, EPERM, this);
  }

  private fail(op: MapOp, r: number): never {
    throw mapError(op, -r, this);
  }

  lookup(key: Uint8Array): Uint8Array | undefined {
    const op = 'BPF_MAP_LOOKUP_ELEM';
    this.live(op);
    const k = this.keyArg(key, op);
    this.canRead(op);
    const out = new Uint8Array(this.valueBufferSize);
    const r = this.sysLookup(k, out);
    if (r === -ENOENT) return undefined;
    if (r < 0) this.fail(op, r);
    return out;
  }

  lookupPerCpu(key: Uint8Array): Uint8Array[] | undefined {
    if (!this.perCpu) {
      throw new TsbpfError('usage', `lookupPerCpu: ${this.typeName} map '${this.name}' is not per-CPU`);
    }
    const v = this.lookup(key);
    return v && splitPerCpu(v, this.cpus, this.valueSize);
  }

  update(key: Uint8Array, value: Uint8Array, flags = 0): void {
    const op = 'BPF_MAP_UPDATE_ELEM';
    this.live(op);
    const k = this.keyArg(key, op);
    this.checkBytes('value', value, this.valueBufferSize, op);
    this.canWrite(op);
    // map_update_elem refuses BPF_F_LOCK before the map sees it: no value has a bpf_spin_lock here.
    if (flags & BPF_F_LOCK) this.fail(op, -EINVAL);
    const r = this.sysUpdate(k, value, flags);
    if (r < 0) this.fail(op, r);
  }

  updatePerCpu(key: Uint8Array, values: readonly Uint8Array[], flags = 0): void {
    const check = (v: Uint8Array) => this.checkBytes('value', v, this.valueSize, 'BPF_MAP_UPDATE_ELEM');
    this.update(key, joinPerCpu(this, values, check), flags);
  }

  delete(key: Uint8Array): boolean {
    const op = 'BPF_MAP_DELETE_ELEM';
    this.live(op);
    const k = this.keyArg(key, op);
    this.canWrite(op);
    const r = this.sysDelete(k);
    if (r === -ENOENT) return false;
    if (r < 0) this.fail(op, r);
    return true;
  }

  lookupAndDelete(key: Uint8Array): Uint8Array | undefined {
    const op = 'BPF_MAP_LOOKUP_AND_DELETE_ELEM';
    this.live(op);
    const k = this.keyArg(key, op);
    this.canWrite(op);
    const out = new Uint8Array(this.valueBufferSize);
    const r = this.sysLookupAndDelete(k, out);
    if (r === -ENOENT) return undefined;
    if (r < 0) this.fail(op, r);
    return out;
  }

  nextKey(key?: Uint8Array): Uint8Array | undefined {
    const op = 'BPF_MAP_GET_NEXT_KEY';
    this.live(op);
    if (key !== undefined) this.checkBytes('key', key, this.keySize, op);
    this.canRead(op);
    const out = new Uint8Array(this.keySize);
    const r = this.sysNextKey(key, out);
    if (r === -ENOENT) return undefined;
    if (r < 0) this.fail(op, r);
    return out;
  }

  *keys(): IterableIterator<Uint8Array> {
    let k = this.nextKey();
    while (k !== undefined) {
      yield k;
      k = this.nextKey(k);
    }
  }

  *entries(): IterableIterator<[Uint8Array, Uint8Array]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v !== undefined) yield [k, v];
    }
  }

  push(value: Uint8Array, flags = 0): void {
    const op = 'BPF_MAP_UPDATE_ELEM';
    this.live(op);
    if (this.keySize !== 0)
      throw new TsbpfError('usage', `push: ${this.typeName} map '${this.name}' has keys; use update`);
    this.checkBytes('value', value, this.valueSize, op);
    this.canWrite(op);
    if (flags & BPF_F_LOCK) this.fail(op, -EINVAL);
    const r = this.sysUpdate(undefined, value, flags);
    if (r < 0) this.fail(op, r);
  }

  pop(): Uint8Array | undefined {
    const op = 'BPF_MAP_LOOKUP_AND_DELETE_ELEM';
    this.live(op);
    this.canWrite(op);
    const out = new Uint8Array(this.valueSize);
    const r = this.sysLookupAndDelete(undefined, out);
    if (r === -ENOENT) return undefined;
    if (r < 0) this.fail(op, r);
    return out;
  }

  peek(): Uint8Array | undefined {
    const op = 'BPF_MAP_LOOKUP_ELEM';
    this.live(op);
    this.canRead(op);
    const out = new Uint8Array(this.valueSize);
    const r = this.sysLookup(undefined, out);
    if (r === -ENOENT) return undefined;
    if (r < 0) this.fail(op, r);
    return out;
  }

  mayContain(value: Uint8Array): boolean {
    const op = 'BPF_MAP_LOOKUP_ELEM';
    this.live(op);
    this.checkBytes('value', value, this.valueSize, op);
    this.canRead(op);
    const r = this.sysLookup(undefined, value.slice());
    if (r === -ENOENT) return false;
    if (r < 0) this.fail(op, r);
    return true;
  }

  private batch(op: MapOp, count: number, cursor: Uint8Array | undefined, del: boolean): BatchPage {
    this.live(op);
    if (!Number.isInteger(count) || count <= 0)
      throw new TsbpfError('usage', `${op} on map '${this.name}': count must be a positive integer`);
    if (del) this.canWrite(op);
    else this.canRead(op);
    const r = (del ? this.batchOps.lookupAndDelete : this.batchOps.lookup)
      ? this.batchWalk(count, cursor, del)
      : -ENOTSUPP;
    if (typeof r === 'number') this.fail(op, r);
    return r;
  }

  lookupBatch(count: number, cursor?: Uint8Array): BatchPage {
    return this.batch('BPF_MAP_LOOKUP_BATCH', count, cursor, false);
  }

  lookupAndDeleteBatch(count: number, cursor?: Uint8Array): BatchPage {
    return this.batch('BPF_MAP_LOOKUP_AND_DELETE_BATCH', count, cursor, true);
  }

  updateBatch(keys: readonly Uint8Array[], values: readonly Uint8Array[], flags = 0): number {
    const op = 'BPF_MAP_UPDATE_BATCH';
    this.live(op);
    if (keys.length !== values.length)
      throw new TsbpfError('usage', `${op}: ${keys.length} keys but ${values.length} values`);
    for (const k of keys) this.checkBytes('key', k, this.keySize, op);
    for (const v of values) this.checkBytes('value', v, this.valueBufferSize, op);
    this.canWrite(op);
    if (!this.batchOps.update) this.fail(op, -ENOTSUPP);
    // generic_map_update_batch: elem_flags may only be BPF_F_LOCK (and no value has a lock here).
    if (flags & ~BPF_F_LOCK || flags & BPF_F_LOCK) this.fail(op, -EINVAL);
    for (let i = 0; i < keys.length; i++) {
      const r = this.sysUpdate(keys[i], values[i], flags);
      if (r < 0) {
        const e = mapError(op, -r, this);
        e.message += ` after ${i} of ${keys.length} elements`;
        throw e;
      }
    }
    return keys.length;
  }

  deleteBatch(keys: readonly Uint8Array[]): number {
    const op = 'BPF_MAP_DELETE_BATCH';
    this.live(op);
    for (const k of keys) this.checkBytes('key', k, this.keySize, op);
    this.canWrite(op);
    if (!this.batchOps.delete) this.fail(op, -ENOTSUPP);
    for (let i = 0; i < keys.length; i++) {
      const r = this.sysDelete(keys[i]);
      if (r < 0) {
        const e = mapError(op, -r, this);
        e.message += ` after ${i} of ${keys.length} elements`;
        throw e;
      }
    }
    return keys.length;
  }

  freeze(): void {
    const op = 'BPF_MAP_FREEZE';
    this.live(op);
    // A frozen map has lost its write permission: freezing again is EPERM, as in the kernel.
    this.canWrite(op);
    this.frozen = true;
  }

  info(): MapInfo {
    return {
      type: this.type,
      id: this.id,
      keySize: this.keySize,
      valueSize: this.valueSize,
      maxEntries: this.maxEntries,
      flags: this.flags,
      name: this.name,
      mapExtra: this.mapExtra,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.regions) this.space.freeRegion(r);
    this.regions.length = 0;
    this.space.freeRegion(this.identity);
    this.onClose?.();
  }

  /** Set by the runtime: forget the map when it closes. */
  onClose?: () => void;

  toString(): string {
    return `${this.typeName} map '${this.name}' (id ${this.id} at ${hex(this.address)})`;
  }
}

/**
 * Fixed-size slots of VM memory: values of hash-like maps. Preallocated maps get one region for all
 * slots at creation, as the kernel preallocates; BPF_F_NO_PREALLOC maps grow in chunks.
 */
export class SlotPool {
  private readonly free: number[] = [];
  private allocated = 0;
  private chunk: number;

  constructor(
    private readonly alloc: (size: number, what: string) => Region,
    readonly slotSize: number,
    private readonly capacity: number,
    prealloc: boolean,
  ) {
    this.chunk = prealloc ? capacity : Math.min(capacity, 16);
    if (prealloc) this.grow();
  }

  private grow(): boolean {
    const n = Math.min(this.chunk, this.capacity - this.allocated);
    if (n <= 0) return false;
    const r = this.alloc(n * this.slotSize, `values ${this.allocated}..${this.allocated + n - 1}`);
    for (let i = n - 1; i >= 0; i--) this.free.push(r.base + i * this.slotSize);
    this.allocated += n;
    this.chunk = Math.min(this.chunk * 2, 65536);
    return true;
  }

  /** A slot's address, or 0 when every slot is taken. */
  take(): number {
    if (this.free.length === 0 && !this.grow()) return 0;
    return this.free.pop() as number;
  }

  give(addr: number): void {
    this.free.push(addr);
  }
}
