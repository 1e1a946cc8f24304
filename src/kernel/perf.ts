/**
 * perf_event_open(2) and the perf event ioctls: the events BPF programs hang off (tracepoints, uprobes,
 * software cpu-clock sampling), plus the small libc calls the attach and ring-buffer code needs
 * (ioctl, setsockopt, mmap/munmap, epoll), each a thin typed wrapper that throws TsbpfError('kernel')
 * with the errno.
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { TsbpfError } from '../errors.js';
import {
  addressOf,
  explainErrno,
  ffiModule,
  kernelBuffer,
  lastErrno,
  libcFunction,
  rawSyscall,
} from './syscall.js';

const SYS_PERF_EVENT_OPEN: Readonly<Record<string, number>> = {
  x64: 298,
  arm64: 241,
  riscv64: 241,
  loong64: 241,
};

export {
  PERF_COUNT_SW_CPU_CLOCK,
  PERF_TYPE_HARDWARE,
  PERF_TYPE_SOFTWARE,
  PERF_TYPE_TRACEPOINT,
} from '../catalog/perf-events.js';
export const PERF_SAMPLE_RAW = 1 << 10;
export const PERF_FLAG_FD_CLOEXEC = 8;

export const PERF_EVENT_IOC_ENABLE = 0x2400;
export const PERF_EVENT_IOC_DISABLE = 0x2401;
export const PERF_EVENT_IOC_SET_BPF = 0x40042408;

function kerr(what: string, errno: number): TsbpfError {
  return new TsbpfError('kernel', `${what} failed: ${explainErrno(errno)}`, { errno });
}

export interface PerfEventAttr {
  type: number;
  config?: bigint;
  /** sample_period, or sample_freq with `freq`. */
  sample?: bigint;
  freq?: boolean;
  sampleType?: bigint;
  disabled?: boolean;
  /** wakeup_events (or wakeup_watermark with `watermark`). */
  wakeup?: number;
  watermark?: boolean;
  /** config1 (for the uprobe PMU: a pointer to the path; pass the string in `path`). */
  config1?: bigint;
  config2?: bigint;
  /** uprobe/kprobe PMU: the file (its address goes in config1). */
  path?: string;
}

const ATTR_SIZE = 136;

/** perf_event_open(2): an fd for the event (O_CLOEXEC). */
export function perfEventOpen(attr: PerfEventAttr, pid: number, cpu: number, groupFd = -1): number {
  const nr = SYS_PERF_EVENT_OPEN[process.arch];
  if (nr === undefined) throw new TsbpfError('kernel', `no perf_event_open number for ${process.arch}`);
  const a = kernelBuffer(ATTR_SIZE);
  const v = new DataView(a.buffer);
  v.setUint32(0, attr.type, true);
  v.setUint32(4, ATTR_SIZE, true);
  v.setBigUint64(8, attr.config ?? 0n, true);
  v.setBigUint64(16, attr.sample ?? 0n, true);
  v.setBigUint64(24, attr.sampleType ?? 0n, true);
  let flags = 0n;
  if (attr.disabled) flags |= 1n;
  if (attr.freq) flags |= 1n << 10n;
  if (attr.watermark) flags |= 1n << 14n;
  v.setBigUint64(40, flags, true);
  v.setUint32(48, attr.wakeup ?? 0, true);
  let path: Uint8Array | undefined;
  if (attr.path !== undefined) {
    const enc = new TextEncoder().encode(attr.path);
    path = kernelBuffer(enc.length + 1);
    path.set(enc);
    v.setBigUint64(56, addressOf(path), true);
  } else v.setBigUint64(56, attr.config1 ?? 0n, true);
  v.setBigUint64(64, attr.config2 ?? 0n, true);
  const keep = [a, path];
  const r = rawSyscall(
    nr,
    'uint64',
    addressOf(a),
    'int',
    pid,
    'int',
    cpu,
    'int',
    groupFd,
    'ulong',
    PERF_FLAG_FD_CLOEXEC,
  );
  void keep;
  if (r.result < 0) throw kerr('perf_event_open', r.errno);
  return r.result;
}

/** ioctl(fd, request, arg) with an integer argument. */
export function ioctl(fd: number, request: number, arg: number): number {
  const f = libcFunction('int ioctl(int, unsigned long, ...)');
  const r = f(fd, request, 'long', arg) as number;
  if (r < 0) throw kerr(`ioctl(0x${request.toString(16)})`, lastErrno());
  return r;
}

/** setsockopt(fd, level, name, &int, 4). */
export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const f = libcFunction('int setsockopt(int, int, int, void *, uint32_t)');
  const b = kernelBuffer(4);
  new DataView(b.buffer).setInt32(0, value, true);
  if ((f(fd, level, name, b, 4) as number) < 0) throw kerr(`setsockopt(${level}, ${name})`, lastErrno());
}

/** socket(2). */
export function socket(domain: number, type: number, protocol: number): number {
  const f = libcFunction('int socket(int, int, int)');
  const r = f(domain, type, protocol) as number;
  if (r < 0) throw kerr('socket', lastErrno());
  return r;
}

/** A region of memory mapped from an fd: its bytes, and munmap. */
export interface Mapping {
  readonly buffer: ArrayBuffer;
  readonly length: number;
  unmap(): void;
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;

/**
 * A whole file as a read-only private mapping that stays for the process (writing into it faults). For
 * /sys/kernel/btf/vmlinux: sysfs hands out 4 KiB per read(2), so reading its ~5 MiB takes ~1400 system calls
 * (~8 ms from Node); the kernel maps it (Linux 6.16 and later) without copying. Throws where it cannot.
 */
export function mapFile(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) throw new TsbpfError('kernel', `mmap of ${path}: the file is empty`);
    return new Uint8Array(mmapFd(fd, size, PROT_READ, 0, MAP_PRIVATE).buffer);
  } finally {
    closeSync(fd);
  }
}

/** mmap(NULL, length, prot, flags, fd, offset), as an ArrayBuffer over the mapping. */
export function mmapFd(
  fd: number,
  length: number,
  prot: number,
  offset: number,
  flags = MAP_SHARED,
): Mapping {
  const mmap = libcFunction('void *mmap(void *, size_t, int, int, int, int64_t)');
  const munmap = libcFunction('int munmap(void *, size_t)');
  const p = mmap(null, length, prot, flags, fd, offset);
  const koffi = ffiModule();
  const addr = p === null ? -1n : BigInt(koffi.address(p));
  if (addr === -1n || addr === 0xffffffffffffffffn) throw kerr('mmap', lastErrno());
  const buffer = koffi.view(p, length);
  let mapped = true;
  return {
    buffer,
    length,
    unmap() {
      if (!mapped) return;
      mapped = false;
      munmap(p, length);
    },
  };
}

/** epoll: an instance watching fds for EPOLLIN, waited on off the main thread. */
export class Epoll {
  readonly fd: number;
  private readonly events = kernelBuffer(12 * 16);
  constructor() {
    const create = libcFunction('int epoll_create1(int)');
    const fd = create(0o2000000 /* EPOLL_CLOEXEC */) as number;
    if (fd < 0) throw kerr('epoll_create1', lastErrno());
    this.fd = fd;
  }
  add(fd: number, data = fd): void {
    const ctl = libcFunction('int epoll_ctl(int, int, int, void *)');
    const ev = kernelBuffer(12);
    const v = new DataView(ev.buffer);
    v.setUint32(0, 1 /* EPOLLIN */, true);
    v.setBigUint64(4, BigInt(data), true);
    if ((ctl(this.fd, 1 /* EPOLL_CTL_ADD */, fd, ev) as number) < 0) throw kerr('epoll_ctl', lastErrno());
  }
  /** Blocks this thread up to timeoutMs: the number of ready fds. */
  waitSync(timeoutMs: number): number {
    const wait = libcFunction('int epoll_wait(int, void *, int, int)');
    const r = wait(this.fd, this.events, 16, timeoutMs) as number;
    if (r < 0 && lastErrno() !== 4) throw kerr('epoll_wait', lastErrno());
    return Math.max(r, 0);
  }
  /** Waits on a libuv worker thread, so the event loop keeps running. */
  wait(timeoutMs: number): Promise<number> {
    const wait = libcFunction('int epoll_wait(int, void *, int, int)');
    const buf = kernelBuffer(12 * 16);
    return new Promise((resolve, reject) => {
      (wait as unknown as { async: (...a: unknown[]) => void }).async(
        this.fd,
        buf,
        16,
        timeoutMs,
        (err: unknown, r: number) => {
          if (err) reject(err);
          else resolve(Math.max(r, 0));
        },
      );
    });
  }
  close(): void {
    libcFunction('int close(int)')(this.fd);
  }
}

/** The id of a tracepoint (tracefs events/CATEGORY/NAME/id). */
export function tracepointId(category: string, name: string): number {
  for (const root of ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']) {
    try {
      return Number(readFileSync(`${root}/events/${category}/${name}/id`, 'utf8').trim());
    } catch {
      // try the next mount point
    }
  }
  throw new TsbpfError(
    'kernel',
    `no tracepoint ${category}:${name} (or tracefs is not mounted: mount -t tracefs tracefs /sys/kernel/tracing)`,
  );
}

/** The dynamic PMU type of `uprobe` / `kprobe` and its retprobe config bit; undefined when the kernel has none. */
export function probePmu(kind: 'uprobe' | 'kprobe'): { type: number; retprobeBit: number } | undefined {
  try {
    const type = Number(readFileSync(`/sys/bus/event_source/devices/${kind}/type`, 'utf8').trim());
    const fmt = readFileSync(`/sys/bus/event_source/devices/${kind}/format/retprobe`, 'utf8').trim();
    const bit = Number(/config:(\d+)/.exec(fmt)?.[1] ?? 0);
    return { type, retprobeBit: bit };
  } catch {
    return undefined;
  }
}
