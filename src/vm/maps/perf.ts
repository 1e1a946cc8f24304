/**
 * perf_event_array with per-CPU buffers a reader drains (the kernel's array of perf event fds, each
 * with its mmap ring; kernel/trace/bpf_trace.c `bpf_perf_event_output`). In the VM a slot holds a
 * PerfBuffer, opened by `openReader()` for every CPU (as cilium/ebpf's perf.NewReader does); user
 * space cannot store fds in it (EBADF: the VM has no perf events).
 *
 * A sample costs what it costs in the kernel's ring: an 8-byte perf_event_header, a u32 size and the
 * data, padded to 8 bytes. A sample that does not fit is lost and counted.
 */

import { E2BIG, EBADF, EINVAL, ENOENT, EOPNOTSUPP } from '../../errno.js';
import { FdArrayMap } from './array.js';

export const BPF_F_INDEX_MASK = 0xffffffffn;
export const BPF_F_CURRENT_CPU = 0xffffffffn;
export const BPF_F_CTXLEN_MASK = 0xfffffn << 32n;

export interface PerfRecord {
  cpu: number;
  data: Uint8Array;
}

export class PerfBuffer {
  private records: Uint8Array[] = [];
  private used = 0;
  lost = 0;
  constructor(
    readonly cpu: number,
    readonly capacity: number,
  ) {}

  static cost(size: number): number {
    return 8 + ((4 + size + 7) & ~7);
  }

  append(data: Uint8Array): boolean {
    const c = PerfBuffer.cost(data.length);
    if (this.used + c > this.capacity) {
      this.lost++;
      return false;
    }
    this.records.push(data.slice());
    this.used += c;
    return true;
  }

  drain(): Uint8Array[] {
    const r = this.records;
    this.records = [];
    this.used = 0;
    return r;
  }
}

export class PerfEventArrayMap extends FdArrayMap<PerfBuffer> {
  private waiters: (() => void)[] = [];

  protected resolve(): number {
    return -EBADF;
  }
  protected idOf(): number {
    return 0;
  }

  /** Opens a buffer of `perCpuBytes` on each CPU (slots 0..min(cpus, max_entries)-1). */
  openReader(perCpuBytes = 64 * 4096): PerfReader {
    const n = Math.min(this.cpus, this.maxEntries);
    for (let c = 0; c < n; c++) this.set(c, new PerfBuffer(c, perCpuBytes));
    return new PerfReader(this);
  }

  /** bpf_perf_event_output (map part): 0 or a negative errno. */
  output(flags: bigint, data: Uint8Array): number {
    if (flags & ~(BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK)) return -EINVAL;
    let index = Number(flags & BPF_F_INDEX_MASK);
    const cpu = this.host.cpu;
    if (BigInt(index) === BPF_F_CURRENT_CPU) index = cpu;
    if (index >= this.maxEntries) return -E2BIG;
    const buf = this.at(index);
    if (!buf) return -ENOENT;
    if (buf.cpu !== cpu) return -EOPNOTSUPP;
    buf.append(data);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
    return 0;
  }

  buffers(): PerfBuffer[] {
    return this.slots.filter((b): b is PerfBuffer => b !== undefined);
  }

  wait(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }

  override close(): void {
    super.close();
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

export class PerfReader {
  constructor(private readonly map: PerfEventArrayMap) {}

  /** Samples lost because a CPU's buffer was full. */
  get lost(): number {
    return this.map.buffers().reduce((n, b) => n + b.lost, 0);
  }

  /** Every sample waiting, CPU by CPU (in order within a CPU). */
  drain(): PerfRecord[] {
    const out: PerfRecord[] = [];
    for (const b of this.map.buffers()) for (const data of b.drain()) out.push({ cpu: b.cpu, data });
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<PerfRecord> {
    while (!this.map.closed) {
      const batch = this.drain();
      for (const r of batch) yield r;
      if (batch.length === 0) await this.map.wait();
    }
  }
}
