/**
 * Attaching programs to kernel hooks. Every attachment is a Link you close (or pin, when the kernel
 * made a bpf_link); links and collections still open when the process exits, or gets SIGINT/SIGTERM,
 * are closed first (fd-based links would die with the process anyway; this also tears down the
 * attachments that are not fds).
 *
 * - tracepoint: perf_event_open(PERF_TYPE_TRACEPOINT, id from tracefs) + BPF_LINK_CREATE(BPF_PERF_EVENT)
 * - raw tracepoint / tp_btf / fentry...: BPF_RAW_TRACEPOINT_OPEN
 * - uprobe / uretprobe: perf_event_open on the `uprobe` PMU (path + file offset of the symbol, read
 *   from the ELF's .symtab or .dynsym), optional PID filter, + BPF_LINK_CREATE(BPF_PERF_EVENT)
 * - kprobe: refused with a clear message when the kernel has no kprobe PMU (this one has none)
 * - perf_event: software cpu-clock at a frequency on every CPU, one perf link each
 * - xdp: BPF_LINK_CREATE(BPF_XDP) on an ifindex, generic (skb) or driver mode
 * - sched_cls: tcx links (BPF_LINK_CREATE with BPF_TCX_INGRESS / BPF_TCX_EGRESS)
 * - cgroup_*: BPF_LINK_CREATE on a cgroup directory fd with the program's attach type
 * - socket_filter: setsockopt(SO_ATTACH_BPF) on a socket fd; close() detaches (SO_DETACH_BPF)
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { ATTACH_TYPES, attachTypeByName, LINK_TYPES } from '../catalog/attach-types.js';
import type { AttachTarget } from '../catalog/sections.js';
import { TsbpfError } from '../errors.js';
import { readFunctionSymbols } from './elf-symbols.js';
import { objPin } from './info.js';
import { possibleCpus } from './map.js';
import {
  PERF_COUNT_SW_CPU_CLOCK,
  PERF_TYPE_SOFTWARE,
  PERF_TYPE_TRACEPOINT,
  perfEventOpen,
  probePmu,
  setsockoptInt,
  tracepointId,
} from './perf.js';
import { addressOf, BPF_CMD, bpfRaw, closeFd, explainErrno, kernelBuffer } from './syscall.js';

/** What attach needs from a program (KernelProgram fits). */
export interface AttachableProgram {
  readonly name: string;
  readonly type: string;
  readonly fd: number;
  readonly spec?: {
    readonly section: string;
    readonly attachType: string | undefined;
    readonly attachTarget: AttachTarget | undefined;
    readonly attachTargetError?: string;
  };
}

export interface AttachOptions {
  /** tracepoint `category/name` (default: from SEC()). */
  tracepoint?: string;
  /** raw tracepoint name. */
  rawTracepoint?: string;
  /** uprobe target (default: from SEC("uprobe/PATH:FUNC")). */
  uprobe?: { path: string; func?: string; offset?: number; retprobe?: boolean };
  /** Only this process (uprobes, perf events); default all. */
  pid?: number;
  /** XDP / TC: the interface, by name or index. */
  interface?: string | number;
  /** XDP mode: generic (skb), driver (native) or the kernel's choice (default). */
  xdpMode?: 'generic' | 'driver' | 'auto';
  /** TC direction when the section does not say (SEC("tc")). */
  direction?: 'ingress' | 'egress';
  /** cgroup v2 directory (default: the root of the cgroup2 mount). */
  cgroup?: string;
  /** Socket filter: the socket's fd (a Node socket's `_handle.fd`, or rawPacketSocket()). */
  socketFd?: number;
  /** perf_event programs: samples per second on each CPU (default 99), or a period. */
  frequency?: number;
  period?: number;
  /** Attach type override (name or number) for cgroup programs. */
  attachType?: string | number;
}

export interface Link {
  /** 'perf_event', 'raw_tracepoint', 'xdp', 'tcx', 'cgroup', 'socket_filter'... */
  readonly kind: string;
  readonly program: string;
  /** The bpf_link fd(s) (none for socket filters). */
  readonly fds: readonly number[];
  readonly closed: boolean;
  /** BPF_OBJ_PIN the bpf_link: it stays attached after the process exits until the pin is removed. */
  pin(path: string): void;
  /** Detaches (closes the link fds and their perf events). Idempotent. */
  close(): void;
  onClose(cb: () => void): void;
}

// ---------------------------------------------------------------------------------------------------
// cleanup on exit / signals

const closers = new Set<() => void>();
let installed = false;

function runClosers(): void {
  for (const c of [...closers].reverse()) {
    try {
      c();
    } catch {
      // best effort at exit
    }
  }
  closers.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  runClosers();
  uninstall();
  process.kill(process.pid, sig);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runClosers);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', runClosers);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

/** Runs `close` at exit, SIGINT and SIGTERM unless unregistered first. */
export function registerCleanup(close: () => void): void {
  closers.add(close);
  install();
}

export function unregisterCleanup(close: () => void): void {
  closers.delete(close);
  if (closers.size === 0) uninstall();
}

/** How many links and collections are still registered for cleanup (tests check it drops to 0). */
export function openAttachments(): number {
  return closers.size;
}

// ---------------------------------------------------------------------------------------------------

class BaseLink implements Link {
  private isClosed = false;
  private readonly callbacks: (() => void)[] = [];
  private readonly closer = () => this.close();
  constructor(
    readonly kind: string,
    readonly program: string,
    readonly fds: number[],
    private readonly extra: number[] = [],
    private readonly detach?: () => void,
  ) {
    registerCleanup(this.closer);
  }
  get closed(): boolean {
    return this.isClosed;
  }
  pin(path: string): void {
    if (this.fds.length !== 1)
      throw new TsbpfError('usage', `a ${this.kind} link of ${this.fds.length} fds cannot be pinned`);
    objPin(this.fds[0], path);
  }
  onClose(cb: () => void): void {
    this.callbacks.push(cb);
  }
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    unregisterCleanup(this.closer);
    let first: unknown;
    const attempt = (f: () => void) => {
      try {
        f();
      } catch (e) {
        first ??= e;
      }
    };
    if (this.detach) attempt(this.detach);
    for (const fd of this.fds) attempt(() => closeFd(fd));
    for (const fd of this.extra) attempt(() => closeFd(fd));
    for (const cb of this.callbacks) attempt(cb);
    if (first) throw first;
  }
}

const LINK = { prog_fd: 0, target: 4, attach_type: 8, flags: 12, u: 16, size: 64 } as const;

/** BPF_LINK_CREATE: a bpf_link fd. `extra(view)` fills the type-specific union (offset 16). */
export function linkCreate(
  progFd: number,
  target: number,
  attachType: number,
  flags = 0,
  extra?: (v: DataView) => void,
): number {
  const attr = kernelBuffer(LINK.size);
  const v = new DataView(attr.buffer);
  v.setUint32(LINK.prog_fd, progFd, true);
  v.setUint32(LINK.target, target, true);
  v.setUint32(LINK.attach_type, attachType, true);
  v.setUint32(LINK.flags, flags, true);
  extra?.(v);
  const r = bpfRaw(BPF_CMD.LINK_CREATE, attr);
  if (r.result < 0)
    throw new TsbpfError(
      'kernel',
      `BPF_LINK_CREATE (${ATTACH_TYPES[attachType] ?? attachType}) failed: ${explainErrno(r.errno)}`,
      {
        errno: r.errno,
      },
    );
  return r.result;
}

const BPF_PERF_EVENT = 41;

/** A perf event fd + a BPF_PERF_EVENT link on it. */
function perfLink(prog: AttachableProgram, kind: string, perfFds: number[]): Link {
  const links: number[] = [];
  try {
    for (const pfd of perfFds) links.push(linkCreate(prog.fd, pfd, BPF_PERF_EVENT));
  } catch (e) {
    for (const l of links) closeFd(l);
    for (const p of perfFds) closeFd(p);
    throw e;
  }
  return new BaseLink(kind, prog.name, links, perfFds);
}

export function attachTracepoint(prog: AttachableProgram, category: string, name: string): Link {
  const id = tracepointId(category, name);
  const pfd = perfEventOpen({ type: PERF_TYPE_TRACEPOINT, config: BigInt(id), sample: 1n, wakeup: 1 }, -1, 0);
  return perfLink(prog, 'tracepoint', [pfd]);
}

export function attachRawTracepoint(prog: AttachableProgram, name: string | undefined): Link {
  const n = name === undefined ? undefined : kernelBuffer(new TextEncoder().encode(name).length + 1);
  if (n && name !== undefined) n.set(new TextEncoder().encode(name));
  const attr = kernelBuffer(16);
  const v = new DataView(attr.buffer);
  v.setBigUint64(0, addressOf(n), true);
  v.setUint32(8, prog.fd, true);
  const r = bpfRaw(BPF_CMD.RAW_TRACEPOINT_OPEN, attr, [n]);
  if (r.result < 0)
    throw new TsbpfError(
      'kernel',
      `BPF_RAW_TRACEPOINT_OPEN${name ? ` '${name}'` : ''} failed: ${explainErrno(r.errno)}`,
      {
        errno: r.errno,
      },
    );
  return new BaseLink(name === undefined ? 'tracing' : 'raw_tracepoint', prog.name, [r.result]);
}

// ----- uprobes

/** Resolves `libc`, `c` or a bare library name like libbpf does (searching the loaded libraries and common dirs). */
export function resolveBinaryPath(path: string): string {
  if (path.includes('/')) return path;
  const want = path.startsWith('lib') ? path : `lib${path}`;
  try {
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const file = line.slice(line.indexOf('/'));
      const base = file.slice(file.lastIndexOf('/') + 1);
      if (
        line.includes('/') &&
        (base === want || base.startsWith(`${want}.so`) || base.startsWith(`${want}-`))
      )
        return file;
    }
  } catch {
    // no /proc
  }
  for (const dir of [
    '/lib/x86_64-linux-gnu',
    '/usr/lib/x86_64-linux-gnu',
    '/lib64',
    '/usr/lib64',
    '/lib',
    '/usr/lib',
    '/usr/bin',
    '/bin',
  ]) {
    for (const name of [want, `${want}.so`, `${want}.so.6`, path]) {
      try {
        readFileSync(`${dir}/${name}`, { flag: 'r' }).subarray(0, 0);
        return `${dir}/${name}`;
      } catch {
        // next
      }
    }
  }
  throw new TsbpfError('usage', `cannot find binary or library '${path}'`);
}

/**
 * File offset of a function symbol in an ELF64 executable or shared library (.symtab first, then
 * .dynsym; versioned names like `srand@@GLIBC_2.2.5` match `srand`), as libbpf's elf_sym_offset computes it.
 */
export function symbolFileOffset(path: string, func: string): number {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new TsbpfError(
      'usage',
      `cannot read '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  const symbols = readFunctionSymbols(bytes);
  if (!symbols) throw new TsbpfError('usage', `'${path}' is not a 64-bit ELF file`);
  const sym = symbols.find((s) => s.name === func && s.addr !== 0n);
  if (!sym) throw new TsbpfError('usage', `no function '${func}' in ${path}`);
  return sym.fileOffset;
}

export function attachUprobe(
  prog: AttachableProgram,
  target: { path: string; func?: string; offset?: number; retprobe?: boolean },
  pid = -1,
): Link {
  const pmu = probePmu('uprobe');
  if (!pmu)
    throw new TsbpfError('kernel', 'this kernel has no uprobe PMU (/sys/bus/event_source/devices/uprobe)');
  const path = resolveBinaryPath(target.path);
  const offset = (target.func ? symbolFileOffset(path, target.func) : 0) + (target.offset ?? 0);
  const pfd = perfEventOpen(
    {
      type: pmu.type,
      config: target.retprobe ? 1n << BigInt(pmu.retprobeBit) : 0n,
      path,
      config2: BigInt(offset),
      sample: 1n,
      wakeup: 1,
    },
    pid < 0 ? -1 : pid,
    pid < 0 ? 0 : -1,
  );
  return perfLink(prog, target.retprobe ? 'uretprobe' : 'uprobe', [pfd]);
}

/** Software cpu-clock sampling at `frequency` Hz (or every `period` ns) on every CPU. */
export function attachPerfEvent(
  prog: AttachableProgram,
  options: { frequency?: number; period?: number; pid?: number } = {},
): Link {
  const fds: number[] = [];
  const online = onlineCpus();
  try {
    for (const cpu of online) {
      fds.push(
        perfEventOpen(
          options.period !== undefined
            ? {
                type: PERF_TYPE_SOFTWARE,
                config: BigInt(PERF_COUNT_SW_CPU_CLOCK),
                sample: BigInt(options.period),
              }
            : {
                type: PERF_TYPE_SOFTWARE,
                config: BigInt(PERF_COUNT_SW_CPU_CLOCK),
                sample: BigInt(options.frequency ?? 99),
                freq: true,
              },
          options.pid ?? -1,
          cpu,
        ),
      );
    }
  } catch (e) {
    for (const f of fds) closeFd(f);
    throw e;
  }
  return perfLink(prog, 'perf_event', fds);
}

/** CPUs online now (/sys/devices/system/cpu/online). */
export function onlineCpus(): number[] {
  try {
    const out: number[] = [];
    for (const part of readFileSync('/sys/devices/system/cpu/online', 'utf8').trim().split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let c = a; c <= (b ?? a); c++) out.push(c);
    }
    return out;
  } catch {
    return Array.from({ length: possibleCpus() }, (_, i) => i);
  }
}

// ----- network

/** An interface's index, by name (/sys/class/net/NAME/ifindex) or as given. */
export function ifIndex(iface: string | number): number {
  if (typeof iface === 'number') return iface;
  try {
    return Number(readFileSync(`/sys/class/net/${iface}/ifindex`, 'utf8').trim());
  } catch {
    const known = Object.keys(networkInterfaces()).join(', ');
    throw new TsbpfError('usage', `no network interface '${iface}' in this namespace (have: ${known})`);
  }
}

const XDP_FLAGS_SKB_MODE = 1 << 1;
const XDP_FLAGS_DRV_MODE = 1 << 2;

export function attachXdp(
  prog: AttachableProgram,
  iface: string | number,
  mode: 'generic' | 'driver' | 'auto' = 'auto',
): Link {
  const flags = mode === 'generic' ? XDP_FLAGS_SKB_MODE : mode === 'driver' ? XDP_FLAGS_DRV_MODE : 0;
  const fd = linkCreate(prog.fd, ifIndex(iface), 37, flags);
  return new BaseLink('xdp', prog.name, [fd]);
}

export function attachTcx(
  prog: AttachableProgram,
  iface: string | number,
  direction: 'ingress' | 'egress',
): Link {
  const fd = linkCreate(prog.fd, ifIndex(iface), direction === 'ingress' ? 46 : 47, 0);
  return new BaseLink('tcx', prog.name, [fd]);
}

/** The cgroup v2 mount point (where `cgroup2` is mounted). */
export function cgroup2Root(): string {
  try {
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const f = line.split(' ');
      if (f[2] === 'cgroup2') return f[1];
    }
  } catch {
    // fall through
  }
  throw new TsbpfError('kernel', 'no cgroup v2 filesystem is mounted (mount -t cgroup2 none /sys/fs/cgroup)');
}

export function attachCgroup(prog: AttachableProgram, cgroupPath: string, attachType: number): Link {
  const cg = openSync(cgroupPath, 'r');
  try {
    const fd = linkCreate(prog.fd, cg, attachType, 0);
    return new BaseLink('cgroup', prog.name, [fd]);
  } finally {
    closeSync(cg);
  }
}

const SOL_SOCKET = 1;
const SO_ATTACH_BPF = 50;
const SO_DETACH_BPF = 27;

/** SO_ATTACH_BPF on a socket; close() detaches with SO_DETACH_BPF (the socket itself stays the caller's). */
export function attachSocketFilter(prog: AttachableProgram, socketFd: number): Link {
  setsockoptInt(socketFd, SOL_SOCKET, SO_ATTACH_BPF, prog.fd);
  return new BaseLink('socket_filter', prog.name, [], [], () => {
    try {
      setsockoptInt(socketFd, SOL_SOCKET, SO_DETACH_BPF, 0);
    } catch (e) {
      // the socket may be gone already (EBADF) or have no filter left (ENOENT)
      const errno = e instanceof TsbpfError ? e.details.errno : undefined;
      if (errno !== 9 && errno !== 2 && errno !== 88) throw e;
    }
  });
}

// ---------------------------------------------------------------------------------------------------

/** Attaches a program where its type and SEC() say, with options filling in what the section does not. */
export function attachProgram(prog: AttachableProgram, o: AttachOptions = {}): Link {
  const target = prog.spec?.attachTarget;
  const where = `prog '${prog.name}'${prog.spec ? ` (SEC("${prog.spec.section}"))` : ''}`;
  const need = (what: string): never => {
    throw new TsbpfError('usage', `${where}: say ${what} to attach it`);
  };
  if (prog.spec?.attachTargetError && !o.tracepoint && !o.uprobe && !o.rawTracepoint)
    throw new TsbpfError('usage', `${where}: ${prog.spec.attachTargetError}`);
  switch (prog.type) {
    case 'tracepoint': {
      const tp =
        o.tracepoint ?? (target?.kind === 'tracepoint' ? `${target.category}/${target.name}` : undefined);
      if (!tp) return need("the tracepoint ('category/name')");
      const slash = tp.indexOf('/') >= 0 ? tp.indexOf('/') : tp.indexOf(':');
      return attachTracepoint(prog, tp.slice(0, slash), tp.slice(slash + 1));
    }
    case 'raw_tracepoint':
    case 'raw_tracepoint_writable': {
      const n = o.rawTracepoint ?? (target?.kind === 'raw_tracepoint' ? target.name : undefined);
      if (!n) return need('the raw tracepoint name');
      return attachRawTracepoint(prog, n);
    }
    case 'tracing':
    case 'lsm':
      return attachRawTracepoint(prog, undefined);
    case 'kprobe': {
      const up =
        o.uprobe ??
        (target?.kind === 'uprobe'
          ? { path: target.path, func: target.func, offset: target.offset, retprobe: target.retprobe }
          : undefined);
      if (up) return attachUprobe(prog, { ...up, func: up.func ?? undefined }, o.pid);
      if (target?.kind === 'usdt')
        throw new TsbpfError('usage', `${where}: USDT probes are not supported yet`);
      if (!probePmu('kprobe'))
        throw new TsbpfError(
          'kernel',
          `${where}: this kernel has no kprobes (no kprobe PMU in /sys/bus/event_source/devices, CONFIG_KPROBE_EVENTS is off)`,
        );
      throw new TsbpfError('usage', `${where}: kprobe attachment is not implemented`);
    }
    case 'perf_event':
      return attachPerfEvent(prog, {
        ...(o.frequency !== undefined ? { frequency: o.frequency } : {}),
        ...(o.period !== undefined ? { period: o.period } : {}),
        ...(o.pid !== undefined ? { pid: o.pid } : {}),
      });
    case 'xdp':
      if (o.interface === undefined) return need('the interface');
      return attachXdp(prog, o.interface as string | number, o.xdpMode ?? 'auto');
    case 'sched_cls': {
      if (o.interface === undefined) return need('the interface');
      const at = prog.spec?.attachType;
      const dir =
        o.direction ?? (at === 'tcx_ingress' ? 'ingress' : at === 'tcx_egress' ? 'egress' : undefined);
      if (!dir) return need("the direction ('ingress' or 'egress')");
      return attachTcx(prog, o.interface as string | number, dir as 'ingress' | 'egress');
    }
    case 'socket_filter':
      if (o.socketFd === undefined) return need('the socket fd');
      return attachSocketFilter(prog, o.socketFd as number);
    default:
      if (prog.type.startsWith('cgroup') || prog.type === 'sock_ops') {
        const at = o.attachType ?? prog.spec?.attachType;
        const n = typeof at === 'number' ? at : at === undefined ? undefined : attachTypeByName(at);
        if (n === undefined) return need('the attach type');
        return attachCgroup(prog, o.cgroup ?? cgroup2Root(), n as number);
      }
      throw new TsbpfError('usage', `${where}: attaching ${prog.type} programs is not supported`);
  }
}

export { LINK_TYPES };
