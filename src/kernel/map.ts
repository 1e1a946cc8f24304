/**
 * Maps in the Linux kernel: BPF_MAP_CREATE, the element commands (lookup, update, delete,
 * get_next_key, lookup_and_delete), FREEZE, the four batch commands, OBJ_PIN/OBJ_GET and
 * BPF_OBJ_GET_INFO_BY_FD, behind the BpfMap interface the VM's maps implement too.
 *
 * `union bpf_attr` members are laid out by byte offset (include/uapi/linux/bpf.h). Every map keeps
 * its own attr, key and value buffers (off-heap, addresses taken once), so an element operation is
 * one DataView write, one copy and one system call.
 */
import { readFileSync } from 'node:fs';
import { mapTypeById, mapTypeByName } from '../catalog/map-types.js';
import { ENOENT } from '../errno.js';
import { TsbpfError } from '../errors.js';
import {
  type BatchPage,
  type BpfMap,
  describeMapErrno,
  joinPerCpu,
  type MapInfo,
  type MapOp,
  type MapSpec,
  roundUp8,
  splitPerCpu,
} from '../maps.js';
import { addressOf, bpfRaw, closeFd, kernelBuffer } from './syscall.js';

/** enum bpf_cmd values of the map commands. */
export const MAP_CMD = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  OBJ_PIN: 6,
  OBJ_GET: 7,
  MAP_GET_NEXT_ID: 12,
  MAP_GET_FD_BY_ID: 14,
  OBJ_GET_INFO_BY_FD: 15,
  MAP_LOOKUP_AND_DELETE_ELEM: 21,
  MAP_FREEZE: 22,
  MAP_LOOKUP_BATCH: 24,
  MAP_LOOKUP_AND_DELETE_BATCH: 25,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
} as const;

/** BPF_MAP_CREATE member. */
const CREATE = {
  map_type: 0,
  key_size: 4,
  value_size: 8,
  max_entries: 12,
  map_flags: 16,
  inner_map_fd: 20,
  numa_node: 24,
  map_name: 28,
  map_ifindex: 44,
  btf_fd: 48,
  btf_key_type_id: 52,
  btf_value_type_id: 56,
  btf_vmlinux_value_type_id: 60,
  map_extra: 64,
  size: 80,
} as const;

/** Element commands member: map_fd, key, value/next_key, flags. */
const ELEM = { map_fd: 0, key: 8, value: 16, flags: 24, size: 32 } as const;

/** Batch member. */
const BATCH = {
  in_batch: 0,
  out_batch: 8,
  keys: 16,
  values: 24,
  count: 32,
  map_fd: 36,
  elem_flags: 40,
  flags: 48,
  size: 56,
} as const;

/** OBJ_PIN / OBJ_GET member. */
const OBJ = { pathname: 0, bpf_fd: 8, file_flags: 12, size: 24 } as const;
const INFO = { bpf_fd: 0, info_len: 4, info: 8, size: 16 } as const;
/** struct bpf_map_info. */
const MAP_INFO = {
  type: 0,
  id: 4,
  key_size: 8,
  value_size: 12,
  max_entries: 16,
  map_flags: 20,
  name: 24,
  map_extra: 80,
  size: 88,
} as const;

const BPF_OBJ_NAME_LEN = 16;

let possible: number | undefined;

/** Number of possible CPUs (/sys/devices/system/cpu/possible, e.g. "0-3"): per-CPU values come in this many. */
export function possibleCpus(): number {
  if (possible !== undefined) return possible;
  try {
    const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
    let n = 0;
    for (const part of text.split(',')) {
      const [a, b] = part.split('-').map(Number);
      n += b === undefined ? 1 : b - a + 1;
    }
    possible = n;
  } catch (e) {
    throw new TsbpfError(
      'kernel',
      `cannot read the possible CPUs: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  return possible;
}

function mapErr(op: MapOp, errno: number, what: string, extra = ''): TsbpfError {
  return new TsbpfError('kernel', `${op}${what} failed: ${describeMapErrno(op, errno)}${extra}`, { errno });
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function pathBuffer(path: string): Uint8Array {
  const enc = new TextEncoder().encode(path);
  const buf = kernelBuffer(enc.length + 1);
  buf.set(enc);
  return buf;
}

/** Opening modes of a pinned map (BPF_OBJ_GET file_flags). */
export interface OpenOptions {
  readOnly?: boolean;
  writeOnly?: boolean;
}

/** A map in the kernel, by fd. */
export class KernelMap implements BpfMap {
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
  readonly id: number;
  private fdValue: number;

  private readonly attr: Uint8Array;
  private readonly av: DataView;
  private readonly keyBuf: Uint8Array;
  private readonly nextBuf: Uint8Array;
  private readonly valueBuf: Uint8Array;
  private readonly keyAddr: bigint;
  private readonly nextAddr: bigint;
  private readonly valueAddr: bigint;

  private constructor(fd: number, info: MapInfo) {
    this.fdValue = fd;
    this.type = info.type;
    const t = mapTypeById(info.type);
    this.typeName = t?.name ?? `type ${info.type}`;
    this.name = info.name;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.mapExtra = info.mapExtra;
    this.id = info.id;
    this.perCpu = t?.perCpu ?? false;
    this.cpus = possibleCpus();
    this.valueBufferSize = this.perCpu ? this.cpus * roundUp8(this.valueSize) : this.valueSize;
    this.attr = kernelBuffer(BATCH.size);
    this.av = new DataView(this.attr.buffer);
    this.keyBuf = kernelBuffer(this.keySize);
    this.nextBuf = kernelBuffer(this.keySize);
    this.valueBuf = kernelBuffer(this.valueBufferSize);
    this.keyAddr = addressOf(this.keyBuf);
    this.nextAddr = addressOf(this.nextBuf);
    this.valueAddr = addressOf(this.valueBuf);
  }

  /** The map's fd (throws once closed). */
  get fd(): number {
    if (this.fdValue < 0) throw new TsbpfError('usage', `map '${this.name}' is closed`);
    return this.fdValue;
  }

  private get what(): string {
    return ` on ${this.typeName} map '${this.name}'`;
  }

  /** BPF_MAP_CREATE. The spec's innerMap is created for the call (inner_map_fd) and closed after. */
  static create(spec: MapSpec): KernelMap {
    const type = typeof spec.type === 'number' ? mapTypeById(spec.type) : mapTypeByName(spec.type);
    if (!type) throw new TsbpfError('usage', `unknown map type ${spec.type}`);
    const name = spec.name ?? '';
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.length >= BPF_OBJ_NAME_LEN) {
      throw new TsbpfError('usage', `map name '${name}' is longer than ${BPF_OBJ_NAME_LEN - 1} bytes`);
    }
    let inner: KernelMap | undefined;
    try {
      if (spec.innerMap) inner = KernelMap.create({ ...spec.innerMap, contents: undefined, freeze: false });
      const attr = kernelBuffer(CREATE.size);
      const v = new DataView(attr.buffer);
      v.setUint32(CREATE.map_type, type.id, true);
      v.setUint32(CREATE.key_size, spec.keySize, true);
      v.setUint32(CREATE.value_size, spec.valueSize, true);
      v.setUint32(CREATE.max_entries, spec.maxEntries, true);
      v.setUint32(CREATE.map_flags, spec.flags ?? 0, true);
      v.setUint32(CREATE.inner_map_fd, inner?.fd ?? 0, true);
      v.setUint32(CREATE.numa_node, spec.numaNode ?? 0, true);
      attr.set(nameBytes, CREATE.map_name);
      v.setUint32(CREATE.btf_fd, spec.btfFd ?? 0, true);
      v.setUint32(CREATE.btf_key_type_id, spec.btfKeyTypeId ?? 0, true);
      v.setUint32(CREATE.btf_value_type_id, spec.btfValueTypeId ?? 0, true);
      v.setUint32(CREATE.btf_vmlinux_value_type_id, spec.btfVmlinuxValueTypeId ?? 0, true);
      v.setBigUint64(CREATE.map_extra, spec.mapExtra ?? 0n, true);
      const { result, errno } = bpfRaw(MAP_CMD.MAP_CREATE, attr);
      if (result < 0) throw mapErr('BPF_MAP_CREATE', errno, ` of ${type.name} map '${name}'`);
      let map: KernelMap;
      try {
        map = KernelMap.fromFd(result);
      } catch (e) {
        closeFd(result);
        throw e;
      }
      try {
        for (const [k, val] of spec.contents ?? []) map.update(k, val);
        if (spec.freeze) map.freeze();
      } catch (e) {
        map.close();
        throw e;
      }
      return map;
    } finally {
      inner?.close();
    }
  }

  /** A map from an fd this object now owns (closes it on close()). */
  static fromFd(fd: number): KernelMap {
    return new KernelMap(fd, mapInfoByFd(fd));
  }

  /** BPF_MAP_GET_FD_BY_ID: opens a map by its id (e.g. an inner map id read from a map-in-map). */
  static fromId(id: number): KernelMap {
    const attr = kernelBuffer(12);
    new DataView(attr.buffer).setUint32(0, id, true);
    const { result, errno } = bpfRaw(MAP_CMD.MAP_GET_FD_BY_ID, attr);
    if (result < 0)
      throw new TsbpfError('kernel', `BPF_MAP_GET_FD_BY_ID ${id} failed: errno ${errno}`, { errno });
    return KernelMap.fromFd(result);
  }

  /** BPF_OBJ_GET: opens a pinned map. */
  static pinned(path: string, options: OpenOptions = {}): KernelMap {
    const p = pathBuffer(path);
    const attr = kernelBuffer(OBJ.size);
    const v = new DataView(attr.buffer);
    v.setBigUint64(OBJ.pathname, addressOf(p), true);
    v.setUint32(OBJ.file_flags, (options.readOnly ? 1 << 3 : 0) | (options.writeOnly ? 1 << 4 : 0), true);
    const { result, errno } = bpfRaw(MAP_CMD.OBJ_GET, attr, [p]);
    if (result < 0) throw mapErr('BPF_OBJ_GET', errno, ` of '${path}'`);
    return KernelMap.fromFd(result);
  }

  /** BPF_OBJ_PIN: pins the map at a path on a bpf filesystem (/sys/fs/bpf/...). */
  pin(path: string): void {
    const p = pathBuffer(path);
    const attr = kernelBuffer(OBJ.size);
    const v = new DataView(attr.buffer);
    v.setBigUint64(OBJ.pathname, addressOf(p), true);
    v.setUint32(OBJ.bpf_fd, this.fd, true);
    const { result, errno } = bpfRaw(MAP_CMD.OBJ_PIN, attr, [p]);
    if (result < 0) throw mapErr('BPF_OBJ_PIN', errno, `${this.what} at '${path}'`);
  }

  info(): MapInfo {
    return mapInfoByFd(this.fd);
  }

  /** Whether the map is frozen (from /proc/self/fdinfo). */
  get frozen(): boolean {
    try {
      return /^frozen:\s*1$/m.test(readFileSync(`/proc/self/fdinfo/${this.fd}`, 'utf8'));
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Element commands

  private checkBytes(what: 'key' | 'value', got: Uint8Array, want: number, op: MapOp): void {
    if (!(got instanceof Uint8Array))
      throw new TsbpfError('usage', `${op} on map '${this.name}': the ${what} must be a Uint8Array`);
    if (got.length !== want) {
      throw new TsbpfError(
        'usage',
        `${op}${this.what}: ${what} size is ${got.length} bytes, expected ${want}`,
      );
    }
  }

  /** Sets attr = { fd, key, value, flags } and calls; returns the errno (0 on success). */
  private elem(cmd: number, key: Uint8Array | undefined, value: bigint, flags: bigint): number {
    const v = this.av;
    v.setUint32(ELEM.map_fd, this.fd, true);
    v.setUint32(4, 0, true);
    if (key !== undefined && this.keySize > 0) {
      this.keyBuf.set(key);
      v.setBigUint64(ELEM.key, this.keyAddr, true);
    } else v.setBigUint64(ELEM.key, 0n, true);
    v.setBigUint64(ELEM.value, value, true);
    v.setBigUint64(ELEM.flags, flags, true);
    const { result, errno } = bpfRaw(cmd, this.attr);
    return result < 0 ? errno : 0;
  }

  private keyArg(key: Uint8Array | undefined, op: MapOp): Uint8Array | undefined {
    if (this.keySize === 0) {
      if (key !== undefined && key.length !== 0) this.checkBytes('key', key, 0, op);
      return undefined;
    }
    if (key === undefined)
      throw new TsbpfError('usage', `${op}${this.what}: a key of ${this.keySize} bytes is needed`);
    this.checkBytes('key', key, this.keySize, op);
    return key;
  }

  lookup(key: Uint8Array): Uint8Array | undefined {
    const op = 'BPF_MAP_LOOKUP_ELEM';
    const k = this.keyArg(key, op);
    const e = this.elem(MAP_CMD.MAP_LOOKUP_ELEM, k, this.valueAddr, 0n);
    if (e === ENOENT) return undefined;
    if (e) throw mapErr(op, e, this.what);
    return this.valueBuf.slice(0, this.valueBufferSize);
  }

  lookupPerCpu(key: Uint8Array): Uint8Array[] | undefined {
    if (!this.perCpu)
      throw new TsbpfError('usage', `lookupPerCpu: ${this.typeName} map '${this.name}' is not per-CPU`);
    const v = this.lookup(key);
    return v && splitPerCpu(v, this.cpus, this.valueSize);
  }

  update(key: Uint8Array, value: Uint8Array, flags = 0): void {
    const op = 'BPF_MAP_UPDATE_ELEM';
    const k = this.keyArg(key, op);
    this.checkBytes('value', value, this.valueBufferSize, op);
    this.valueBuf.set(value);
    const e = this.elem(MAP_CMD.MAP_UPDATE_ELEM, k, this.valueAddr, BigInt(flags));
    if (e) throw mapErr(op, e, this.what);
  }

  updatePerCpu(key: Uint8Array, values: readonly Uint8Array[], flags = 0): void {
    const check = (v: Uint8Array) => this.checkBytes('value', v, this.valueSize, 'BPF_MAP_UPDATE_ELEM');
    this.update(key, joinPerCpu(this, values, check), flags);
  }

  delete(key: Uint8Array): boolean {
    const op = 'BPF_MAP_DELETE_ELEM';
    const k = this.keyArg(key, op);
    const e = this.elem(MAP_CMD.MAP_DELETE_ELEM, k, 0n, 0n);
    if (e === ENOENT) return false;
    if (e) throw mapErr(op, e, this.what);
    return true;
  }

  lookupAndDelete(key: Uint8Array): Uint8Array | undefined {
    const op = 'BPF_MAP_LOOKUP_AND_DELETE_ELEM';
    const k = this.keyArg(key, op);
    const e = this.elem(MAP_CMD.MAP_LOOKUP_AND_DELETE_ELEM, k, this.valueAddr, 0n);
    if (e === ENOENT) return undefined;
    if (e) throw mapErr(op, e, this.what);
    return this.valueBuf.slice(0, this.valueBufferSize);
  }

  nextKey(key?: Uint8Array): Uint8Array | undefined {
    const op = 'BPF_MAP_GET_NEXT_KEY';
    if (key !== undefined) this.checkBytes('key', key, this.keySize, op);
    const e = this.elem(MAP_CMD.MAP_GET_NEXT_KEY, key, this.nextAddr, 0n);
    if (e === ENOENT) return undefined;
    if (e) throw mapErr(op, e, this.what);
    return this.nextBuf.slice(0, this.keySize);
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
    this.checkBytes('value', value, this.valueSize, op);
    this.valueBuf.set(value);
    const e = this.elem(MAP_CMD.MAP_UPDATE_ELEM, undefined, this.valueAddr, BigInt(flags));
    if (e) throw mapErr(op, e, this.what);
  }

  pop(): Uint8Array | undefined {
    const op = 'BPF_MAP_LOOKUP_AND_DELETE_ELEM';
    const e = this.elem(MAP_CMD.MAP_LOOKUP_AND_DELETE_ELEM, undefined, this.valueAddr, 0n);
    if (e === ENOENT) return undefined;
    if (e) throw mapErr(op, e, this.what);
    return this.valueBuf.slice(0, this.valueSize);
  }

  peek(): Uint8Array | undefined {
    const op = 'BPF_MAP_LOOKUP_ELEM';
    const e = this.elem(MAP_CMD.MAP_LOOKUP_ELEM, undefined, this.valueAddr, 0n);
    if (e === ENOENT) return undefined;
    if (e) throw mapErr(op, e, this.what);
    return this.valueBuf.slice(0, this.valueSize);
  }

  mayContain(value: Uint8Array): boolean {
    const op = 'BPF_MAP_LOOKUP_ELEM';
    this.checkBytes('value', value, this.valueSize, op);
    this.valueBuf.set(value);
    const e = this.elem(MAP_CMD.MAP_LOOKUP_ELEM, undefined, this.valueAddr, 0n);
    if (e === ENOENT) return false;
    if (e) throw mapErr(op, e, this.what);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Batch commands

  private batchCall(
    cmd: number,
    count: number,
    inBatch: Uint8Array | undefined,
    outBatch: Uint8Array | undefined,
    keys: Uint8Array,
    values: Uint8Array | undefined,
    elemFlags: number,
  ): { count: number; errno: number } {
    const attr = kernelBuffer(BATCH.size);
    const v = new DataView(attr.buffer);
    v.setBigUint64(BATCH.in_batch, addressOf(inBatch), true);
    v.setBigUint64(BATCH.out_batch, addressOf(outBatch), true);
    v.setBigUint64(BATCH.keys, addressOf(keys), true);
    v.setBigUint64(BATCH.values, addressOf(values), true);
    v.setUint32(BATCH.count, count, true);
    v.setUint32(BATCH.map_fd, this.fd, true);
    v.setBigUint64(BATCH.elem_flags, BigInt(elemFlags), true);
    const { result, errno } = bpfRaw(cmd, attr, [inBatch, outBatch, keys, values]);
    return { count: v.getUint32(BATCH.count, true), errno: result < 0 ? errno : 0 };
  }

  private walk(op: MapOp, cmd: number, count: number, cursor: Uint8Array | undefined): BatchPage {
    if (!Number.isInteger(count) || count <= 0)
      throw new TsbpfError('usage', `${op}${this.what}: count must be a positive integer`);
    const cursorSize = Math.max(this.keySize, 4);
    const inBatch = cursor ? kernelBuffer(cursorSize) : undefined;
    if (cursor && inBatch) inBatch.set(cursor.subarray(0, cursorSize));
    const outBatch = kernelBuffer(cursorSize);
    const keys = kernelBuffer(count * this.keySize);
    const values = kernelBuffer(count * this.valueBufferSize);
    const r = this.batchCall(cmd, count, inBatch, outBatch, keys, values, 0);
    if (r.errno && r.errno !== ENOENT) throw mapErr(op, r.errno, this.what);
    const page: BatchPage = { keys: [], values: [], next: undefined };
    for (let i = 0; i < r.count; i++) {
      page.keys.push(keys.slice(i * this.keySize, (i + 1) * this.keySize));
      page.values.push(values.slice(i * this.valueBufferSize, (i + 1) * this.valueBufferSize));
    }
    if (r.errno !== ENOENT) page.next = outBatch.slice(0, cursorSize);
    return page;
  }

  lookupBatch(count: number, cursor?: Uint8Array): BatchPage {
    return this.walk('BPF_MAP_LOOKUP_BATCH', MAP_CMD.MAP_LOOKUP_BATCH, count, cursor);
  }

  lookupAndDeleteBatch(count: number, cursor?: Uint8Array): BatchPage {
    return this.walk('BPF_MAP_LOOKUP_AND_DELETE_BATCH', MAP_CMD.MAP_LOOKUP_AND_DELETE_BATCH, count, cursor);
  }

  updateBatch(keys: readonly Uint8Array[], values: readonly Uint8Array[], flags = 0): number {
    const op = 'BPF_MAP_UPDATE_BATCH';
    if (keys.length !== values.length)
      throw new TsbpfError('usage', `${op}: ${keys.length} keys but ${values.length} values`);
    const kb = kernelBuffer(keys.length * this.keySize);
    const vb = kernelBuffer(values.length * this.valueBufferSize);
    keys.forEach((k, i) => {
      this.checkBytes('key', k, this.keySize, op);
      kb.set(k, i * this.keySize);
    });
    values.forEach((v, i) => {
      this.checkBytes('value', v, this.valueBufferSize, op);
      vb.set(v, i * this.valueBufferSize);
    });
    const r = this.batchCall(MAP_CMD.MAP_UPDATE_BATCH, keys.length, undefined, undefined, kb, vb, flags);
    if (r.errno) throw mapErr(op, r.errno, this.what, ` after ${r.count} of ${keys.length} elements`);
    return r.count;
  }

  deleteBatch(keys: readonly Uint8Array[]): number {
    const op = 'BPF_MAP_DELETE_BATCH';
    const kb = kernelBuffer(keys.length * this.keySize);
    keys.forEach((k, i) => {
      this.checkBytes('key', k, this.keySize, op);
      kb.set(k, i * this.keySize);
    });
    const r = this.batchCall(MAP_CMD.MAP_DELETE_BATCH, keys.length, undefined, undefined, kb, undefined, 0);
    if (r.errno) throw mapErr(op, r.errno, this.what, ` after ${r.count} of ${keys.length} elements`);
    return r.count;
  }

  freeze(): void {
    const op = 'BPF_MAP_FREEZE';
    const attr = kernelBuffer(ELEM.size);
    new DataView(attr.buffer).setUint32(ELEM.map_fd, this.fd, true);
    const { result, errno } = bpfRaw(MAP_CMD.MAP_FREEZE, attr);
    if (result < 0) throw mapErr(op, errno, this.what);
  }

  close(): void {
    if (this.fdValue < 0) return;
    const fd = this.fdValue;
    this.fdValue = -1;
    closeFd(fd);
  }

  toString(): string {
    return `${this.typeName} map '${this.name}' (id ${this.id}, fd ${this.fdValue})`;
  }
}

/** BPF_OBJ_GET_INFO_BY_FD on a map fd. */
export function mapInfoByFd(fd: number): MapInfo {
  const info = kernelBuffer(MAP_INFO.size);
  const attr = kernelBuffer(INFO.size);
  const v = new DataView(attr.buffer);
  v.setUint32(INFO.bpf_fd, fd, true);
  v.setUint32(INFO.info_len, info.byteLength, true);
  v.setBigUint64(INFO.info, addressOf(info), true);
  const { result, errno } = bpfRaw(MAP_CMD.OBJ_GET_INFO_BY_FD, attr, [info]);
  if (result < 0) throw mapErr('BPF_OBJ_GET_INFO_BY_FD', errno, ` of fd ${fd}`);
  const iv = new DataView(info.buffer);
  return {
    type: iv.getUint32(MAP_INFO.type, true),
    id: iv.getUint32(MAP_INFO.id, true),
    keySize: iv.getUint32(MAP_INFO.key_size, true),
    valueSize: iv.getUint32(MAP_INFO.value_size, true),
    maxEntries: iv.getUint32(MAP_INFO.max_entries, true),
    flags: iv.getUint32(MAP_INFO.map_flags, true),
    name: cString(info.subarray(MAP_INFO.name, MAP_INFO.name + BPF_OBJ_NAME_LEN)),
    mapExtra: iv.getBigUint64(MAP_INFO.map_extra, true),
  };
}

/** Creates a kernel map (BPF_MAP_CREATE). */
export function createMap(spec: MapSpec): KernelMap {
  return KernelMap.create(spec);
}
