/**
 * Reading a BPF_MAP_TYPE_RINGBUF from user space, as libbpf's ring_buffer does: the consumer page
 * mapped read-write, the producer page and the data area mapped read-only with the data area mapped
 * twice in a row (so a record that wraps is contiguous), records walked from consumer_pos to
 * producer_pos (8-byte header: length with BUSY and DISCARD bits, then the data, rounded up to 8), and
 * consumer_pos advanced after each record so the kernel can reuse the space.
 *
 * - consume(): drains what is there now (synchronous), calling back per record;
 * - poll(timeout): waits with epoll on a libuv worker thread (the event loop keeps running), then
 *   consumes;
 * - for await (const rec of ring): an async iterator with back-pressure: records are taken out of the
 *   ring only as fast as the loop asks for them (a slow consumer leaves them in the ring, and the
 *   kernel's bpf_ringbuf_reserve fails instead of overwriting);
 * - stats: records and bytes delivered, records the producer discarded. Records lost because the ring
 *   was full are not visible to user space in a ring buffer (bpf_ringbuf_reserve/output return an
 *   error to the program): count them in the program (the `lost` option reads such a counter).
 */
import { TsbpfError } from '../errors.js';
import { Epoll, type Mapping, mmapFd, PROT_READ, PROT_WRITE } from './perf.js';
import { libcFunction } from './syscall.js';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const HDR = 8;

let pageSizeCache: number | undefined;
export function pageSize(): number {
  pageSizeCache ??= libcFunction('int getpagesize()')() as number;
  return pageSizeCache;
}

export interface RingBufferStats {
  records: number;
  bytes: number;
  discarded: number;
}

/** What RingBuffer needs of a map (KernelMap fits). */
export interface RingMap {
  readonly fd: number;
  readonly maxEntries: number;
  readonly name?: string;
  readonly type?: number;
}

export class RingBuffer implements AsyncIterable<Uint8Array> {
  readonly size: number;
  readonly stats: RingBufferStats = { records: 0, bytes: 0, discarded: 0 };
  private readonly consumer: Mapping;
  private readonly producer: Mapping;
  private readonly cons: DataView;
  private readonly prod: DataView;
  private readonly data: Uint8Array;
  private readonly mask: number;
  private epoll: Epoll | undefined;
  private closed = false;
  private readonly fd: number;

  constructor(map: RingMap) {
    if (map.type !== undefined && map.type !== 27)
      throw new TsbpfError('usage', `map '${map.name ?? map.fd}' is not a ring buffer (type ${map.type})`);
    const page = pageSize();
    this.fd = map.fd;
    this.size = map.maxEntries;
    this.mask = this.size - 1;
    this.consumer = mmapFd(map.fd, page, PROT_READ | PROT_WRITE, 0);
    try {
      this.producer = mmapFd(map.fd, page + 2 * this.size, PROT_READ, page);
    } catch (e) {
      this.consumer.unmap();
      throw e;
    }
    this.cons = new DataView(this.consumer.buffer);
    this.prod = new DataView(this.producer.buffer);
    this.data = new Uint8Array(this.producer.buffer, page, 2 * this.size);
  }

  private pos(v: DataView): number {
    return v.getUint32(0, true) + v.getUint32(4, true) * 0x1_0000_0000;
  }

  private setConsumer(p: number): void {
    this.cons.setUint32(4, Math.floor(p / 0x1_0000_0000), true);
    this.cons.setUint32(0, p >>> 0, true);
  }

  /** Bytes written by the producer and not yet consumed. */
  get available(): number {
    if (this.closed) return 0;
    return this.pos(this.prod) - this.pos(this.cons);
  }

  /**
   * Reads up to `max` committed records (default: all), calling `cb` with a copy of each. Returns how
   * many were delivered. Stops early when `cb` returns false.
   */
  consume(cb: (record: Uint8Array) => boolean | undefined, max = Number.POSITIVE_INFINITY): number {
    if (this.closed) throw new TsbpfError('usage', 'ring buffer is closed');
    let cons = this.pos(this.cons);
    let n = 0;
    while (n < max) {
      const prod = this.pos(this.prod);
      if (cons >= prod) break;
      const off = cons & this.mask;
      const hdr =
        this.data[off] | (this.data[off + 1] << 8) | (this.data[off + 2] << 16) | (this.data[off + 3] << 24);
      const h = hdr >>> 0;
      if (h & BUSY) break;
      const len = h & ~(BUSY | DISCARD);
      cons += (len + HDR + 7) & ~7;
      if (h & DISCARD) {
        this.stats.discarded++;
        this.setConsumer(cons);
        continue;
      }
      const rec = this.data.slice(off + HDR, off + HDR + len);
      this.setConsumer(cons);
      this.stats.records++;
      this.stats.bytes += len;
      n++;
      if (cb(rec) === false) break;
    }
    return n;
  }

  /** Every committed record now in the ring. */
  read(max?: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.consume((r) => {
      out.push(r);
    }, max);
    return out;
  }

  /** Waits up to timeoutMs for data (epoll, off the main thread); true when data is there. */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.available > 0) return true;
    if (!this.epoll) {
      this.epoll = new Epoll();
      this.epoll.add(this.fd);
    }
    await this.epoll.wait(timeoutMs);
    return this.available > 0;
  }

  /** Waits for data (up to timeoutMs), then consumes it. */
  async poll(cb: (record: Uint8Array) => boolean | undefined, timeoutMs = 100): Promise<number> {
    await this.wait(timeoutMs);
    if (this.closed) return 0;
    return this.consume(cb);
  }

  /**
   * Records as they come, until close() (or `signal` aborts). Back-pressure: at most `batch` records are
   * taken out of the ring ahead of the loop body.
   */
  async *records(
    options: { batch?: number; signal?: AbortSignal; pollMs?: number } = {},
  ): AsyncGenerator<Uint8Array> {
    const batch = options.batch ?? 256;
    while (!this.closed && !options.signal?.aborted) {
      const got = this.read(batch);
      if (got.length === 0) {
        await this.wait(options.pollMs ?? 100);
        continue;
      }
      for (const r of got) yield r;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.records();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.consumer.unmap();
    this.producer.unmap();
    this.epoll?.close();
    this.epoll = undefined;
  }
}

/** Opens a reader on a ring buffer map. */
export function openRingBuffer(map: RingMap): RingBuffer {
  return new RingBuffer(map);
}
