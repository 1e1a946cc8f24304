/**
 * stack_trace map (kernel/bpf/stackmap.c): stacks stored by id for bpf_get_stackid. The kernel
 * hashes the instruction pointers into one of roundup_pow_of_two(max_entries) buckets; the bucket
 * number is the stack id. A different stack in a taken bucket is -EEXIST unless
 * BPF_F_REUSE_STACKID. User space reads a stack by id: the u64 ips, zero-filled to value_size.
 * The VM's hash is not the kernel's jhash2, so ids differ from the kernel's (they are opaque).
 */

import { E2BIG, EEXIST, EFAULT, EINVAL, ENOENT } from '../../errno.js';
import { type MapAttrs, type MapHost, VmMap } from './base.js';

export const BPF_F_SKIP_FIELD_MASK = 0xffn;
export const BPF_F_USER_STACK = 1n << 8n;
export const BPF_F_FAST_STACK_CMP = 1n << 9n;
export const BPF_F_REUSE_STACKID = 1n << 10n;

export class StackTraceMap extends VmMap {
  private readonly buckets: (BigUint64Array | undefined)[];
  readonly nBuckets: number;

  constructor(host: MapHost, attrs: MapAttrs, id: number) {
    super(host, attrs, id);
    this.nBuckets = 2 ** Math.ceil(Math.log2(Math.max(1, this.maxEntries)));
    this.buckets = new Array(this.nBuckets).fill(undefined);
  }

  /** bpf_get_stackid with the stack `ips` (innermost first): the id or a negative errno. */
  getStackId(ips: readonly bigint[], flags: bigint): number {
    if (flags & ~(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP | BPF_F_REUSE_STACKID))
      return -EINVAL;
    const skip = Number(flags & BPF_F_SKIP_FIELD_MASK);
    const depth = Math.min(ips.length - skip, Math.floor(this.valueSize / 8));
    if (depth <= 0) return -EFAULT;
    const trace = BigUint64Array.from(ips.slice(skip, skip + depth), (x) => BigInt.asUintN(64, x));
    let h = 0x811c9dc5;
    for (const ip of trace) {
      h = Math.imul(h ^ Number(ip & 0xffffffffn), 0x01000193);
      h = Math.imul(h ^ Number(ip >> 32n), 0x01000193);
    }
    const id = (h >>> 0) & (this.nBuckets - 1);
    const old = this.buckets[id];
    if (old) {
      if (old.length === trace.length && old.every((x, i) => x === trace[i])) return id;
      if (!(flags & BPF_F_REUSE_STACKID)) return -EEXIST;
    }
    this.buckets[id] = trace;
    return id;
  }

  private idOf(key: Uint8Array | undefined): number {
    const k = key as Uint8Array;
    return (k[0] | (k[1] << 8) | (k[2] << 16) | (k[3] << 24)) >>> 0;
  }

  override sysLookup(key: Uint8Array | undefined, out: Uint8Array): number {
    const id = this.idOf(key);
    const t = id < this.nBuckets ? this.buckets[id] : undefined;
    if (!t) return -ENOENT;
    out.fill(0);
    out.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    return 0;
  }

  override sysUpdate(): number {
    return -EINVAL;
  }

  override sysDelete(key: Uint8Array | undefined): number {
    const id = this.idOf(key);
    if (id >= this.nBuckets) return -E2BIG;
    if (!this.buckets[id]) return -ENOENT;
    this.buckets[id] = undefined;
    return 0;
  }

  override progDelete(key: Uint8Array): number {
    return this.sysDelete(key);
  }

  override sysNextKey(key: Uint8Array | undefined, out: Uint8Array): number {
    let id = key === undefined ? 0 : this.idOf(key);
    id = key === undefined || id >= this.nBuckets ? 0 : id + 1;
    while (id < this.nBuckets && !this.buckets[id]) id++;
    if (id >= this.nBuckets) return -ENOENT;
    new DataView(out.buffer, out.byteOffset, 4).setUint32(0, id, true);
    return 0;
  }
}
