/**
 * BPF ring buffer (kernel/bpf/ringbuf.c) with the kernel's memory layout, in VM memory:
 *
 *   control region (read-only to programs): page 0 consumer_pos (u64), page 1 producer_pos (u64)
 *   data region: max_entries bytes, followed by a second max_entries bytes that stand for the
 *                kernel's double mapping, so a record that wraps is contiguous for the program.
 *
 * A record is an 8-byte header { u32 len (BUSY bit 31, DISCARD bit 30); u32 pg_off } and the data,
 * rounded up to 8 bytes. `reserve` refuses (NULL) when the producer would get max_entries or more
 * bytes ahead of the consumer, or of the oldest record not yet committed, exactly as the kernel's
 * `__bpf_ringbuf_reserve`. `submit`/`discard` clear BUSY (and set DISCARD); the part of a wrapped
 * record written in the mirror is copied to the start of the ring then.
 *
 * The consumer (TypeScript) follows libbpf's `ringbuf_process_ring`: it stops at a BUSY record,
 * skips discarded ones and advances consumer_pos. `poll()`/`drain()` read what is there; the
 * async iterator waits for submissions.
 */

import { EAGAIN, EINVAL, ENOTSUPP } from '../../errno.js';
import { TsbpfError } from '../../errors.js';
import type { Region } from '../memory.js';
import { type MapAttrs, type MapHost, VmMap } from './base.js';

export const BPF_RINGBUF_BUSY_BIT = 1 << 31;
export const BPF_RINGBUF_DISCARD_BIT = 1 << 30;
export const BPF_RINGBUF_HDR_SZ = 8;
/** bpf_ringbuf_output/submit/discard flags. */
export const BPF_RB_NO_WAKEUP = 1;
export const BPF_RB_FORCE_WAKEUP = 2;
/** bpf_ringbuf_query flags. */
export const BPF_RB_AVAIL_DATA = 0;
export const BPF_RB_RING_SIZE = 1;
export const BPF_RB_CONS_POS = 2;
export const BPF_RB_PROD_POS = 3;
const RINGBUF_MAX_RECORD_SZ = 0xffffffff >>> 2;
const PAGE = 4096;
/** Pages before the data in the kernel's struct bpf_ringbuf (meta, consumer, producer): pg_off base. */
const RINGBUF_PGOFF = 3;

export interface RingbufRecord {
  data: Uint8Array;
}

export class RingbufMap extends VmMap {
  private readonly control: Region;
  readonly data: Region;
  private readonly mask: number;
  private pendingPos = 0;
  private waiters: (() => void)[] = [];
  /** Records refused by reserve/output (ring full). */
  dropped = 0;

  constructor(host: MapHost, attrs: MapAttrs, id: number) {
    super(host, attrs, id);
    this.mask = this.maxEntries - 1;
    this.control = this.allocate(2 * PAGE, 'positions', false, PAGE);
    this.data = this.allocate(2 * this.maxEntries, 'data', true, PAGE);
  }

  // The positions live in VM memory (programs may read them; only the host writes them), as u64s
  // written as two u32 halves: no BigInt on the reserve/submit path.
  get consumerPos(): number {
    const v = this.space.view;
    return v.getUint32(this.control.base, true) + v.getUint32(this.control.base + 4, true) * 2 ** 32;
  }
  private set consumerPos(n: number) {
    const v = this.space.view;
    v.setUint32(this.control.base, n >>> 0, true);
    v.setUint32(this.control.base + 4, Math.floor(n / 2 ** 32), true);
  }
  get producerPos(): number {
    const v = this.space.view;
    return (
      v.getUint32(this.control.base + PAGE, true) + v.getUint32(this.control.base + PAGE + 4, true) * 2 ** 32
    );
  }
  private set producerPos(n: number) {
    const v = this.space.view;
    v.setUint32(this.control.base + PAGE, n >>> 0, true);
    v.setUint32(this.control.base + PAGE + 4, Math.floor(n / 2 ** 32), true);
  }

  private hdrLen(pos: number): number {
    return this.space.view.getUint32(this.data.base + (pos & this.mask), true);
  }

  /** bpf_ringbuf_reserve: the sample's address, or 0. */
  reserve(size: number, flags: number): number {
    if (flags !== 0) return 0;
    if (size > RINGBUF_MAX_RECORD_SZ) return 0;
    const len = (size + BPF_RINGBUF_HDR_SZ + 7) & ~7;
    if (len > this.maxEntries) return 0;
    const consPos = this.consumerPos;
    const prodPos = this.producerPos;
    let pend = this.pendingPos;
    while (pend < prodPos) {
      const h = this.hdrLen(pend);
      if (h & BPF_RINGBUF_BUSY_BIT) break;
      pend += ((h & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ + 7) & ~7;
    }
    this.pendingPos = pend;
    const newProd = prodPos + len;
    if (newProd - consPos > this.mask || newProd - pend > this.mask) {
      this.dropped++;
      return 0;
    }
    const hdr = this.data.base + (prodPos & this.mask);
    const v = this.space.view;
    v.setUint32(hdr, (size | BPF_RINGBUF_BUSY_BIT) >>> 0, true);
    v.setUint32(hdr + 4, RINGBUF_PGOFF + Math.floor((prodPos & this.mask) / PAGE), true);
    this.producerPos = newProd;
    return hdr + BPF_RINGBUF_HDR_SZ;
  }

  /** The record header of a sample address, or undefined if it is not one of this ring's. */
  private headerOf(sample: number): number | undefined {
    const hdr = sample - BPF_RINGBUF_HDR_SZ;
    if (hdr < this.data.base || hdr >= this.data.base + this.maxEntries || (hdr - this.data.base) & 7)
      return undefined;
    return hdr;
  }

  /** Whether `sample` is a reserved (BUSY) record of this ring. */
  owns(sample: number): boolean {
    const hdr = this.headerOf(sample);
    return hdr !== undefined && (this.space.view.getUint32(hdr, true) & BPF_RINGBUF_BUSY_BIT) !== 0;
  }

  /** bpf_ringbuf_submit / bpf_ringbuf_discard. */
  commit(sample: number, flags: number, discard: boolean): void {
    const hdr = this.headerOf(sample);
    if (hdr === undefined)
      throw new TsbpfError('runtime', `ringbuf commit of ${sample}: not a ring buffer sample`);
    const v = this.space.view;
    const len = v.getUint32(hdr, true) & ~BPF_RINGBUF_BUSY_BIT & ~BPF_RINGBUF_DISCARD_BIT;
    // The part of a wrapped sample that the program wrote in the mirror goes to the ring's start.
    const end = hdr - this.data.base + BPF_RINGBUF_HDR_SZ + len;
    if (end > this.maxEntries) {
      const u8 = this.space.u8;
      u8.copyWithin(this.data.base, this.data.base + this.maxEntries, this.data.base + end);
    }
    v.setUint32(hdr, (len | (discard ? BPF_RINGBUF_DISCARD_BIT : 0)) >>> 0, true);
    if (!(flags & BPF_RB_NO_WAKEUP)) this.wake();
  }

  /** bpf_ringbuf_output: 0 or -EAGAIN (full), -EINVAL (flags). */
  output(data: Uint8Array, flags: number): number {
    if (flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return -EINVAL;
    const s = this.reserve(data.length, 0);
    if (s === 0) return -EAGAIN;
    this.space.u8.set(data, s);
    this.commit(s, flags, false);
    return 0;
  }

  /** bpf_ringbuf_query. */
  query(flags: number): bigint {
    switch (flags) {
      case BPF_RB_AVAIL_DATA:
        return BigInt(this.producerPos - this.consumerPos);
      case BPF_RB_RING_SIZE:
        return BigInt(this.maxEntries);
      case BPF_RB_CONS_POS:
        return BigInt(this.consumerPos);
      case BPF_RB_PROD_POS:
        return BigInt(this.producerPos);
      default:
        return 0n;
    }
  }

  // --- syscall side: a ring buffer has no elements
  override sysLookup(): number {
    return -ENOTSUPP;
  }
  override sysUpdate(): number {
    return -ENOTSUPP;
  }
  override sysDelete(): number {
    return -ENOTSUPP;
  }
  override sysNextKey(): number {
    return -ENOTSUPP;
  }

  // --- consumer

  /**
   * Consumes the committed records (up to `max`), calling `fn` for each that was not discarded;
   * returns how many were passed to `fn`. Stops at a record still being written.
   */
  poll(fn: (data: Uint8Array) => void, max = Number.POSITIVE_INFINITY): number {
    let cons = this.consumerPos;
    let n = 0;
    const u8 = this.space.u8;
    while (n < max) {
      const prod = this.producerPos;
      if (cons >= prod) break;
      const h = this.hdrLen(cons);
      if (h & BPF_RINGBUF_BUSY_BIT) break;
      const len = h & ~BPF_RINGBUF_DISCARD_BIT;
      const start = this.data.base + (cons & this.mask) + BPF_RINGBUF_HDR_SZ;
      const off = start - this.data.base;
      let rec: Uint8Array;
      if (off + len <= this.maxEntries) rec = u8.slice(start, start + len);
      else {
        rec = new Uint8Array(len);
        const first = this.maxEntries - off;
        rec.set(u8.subarray(start, start + first));
        rec.set(u8.subarray(this.data.base, this.data.base + len - first), first);
      }
      cons += (len + BPF_RINGBUF_HDR_SZ + 7) & ~7;
      this.consumerPos = cons;
      if (!(h & BPF_RINGBUF_DISCARD_BIT)) {
        fn(rec);
        n++;
      }
    }
    return n;
  }

  /** Every committed record now in the ring, consumed. */
  drain(): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.poll((d) => out.push(d));
    return out;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves at the next submission (or at once if records are waiting). */
  waitForData(): Promise<void> {
    if (this.producerPos > this.consumerPos) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Records as they are submitted; ends when the map is closed (or `signal` aborts). */
  async *records(signal?: AbortSignal): AsyncIterableIterator<Uint8Array> {
    while (!this.closed && !signal?.aborted) {
      const batch = this.drain();
      for (const r of batch) yield r;
      if (batch.length === 0) {
        await new Promise<void>((resolve) => {
          this.waiters.push(resolve);
          signal?.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    }
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.records();
  }

  override close(): void {
    super.close();
    this.wake();
  }
}
