/**
 * The VM's view of the outside world: clocks, randomness, the current task, the CPU, network
 * interfaces and a routing table, user/kernel memory for probe_read_*, the stack get_stack sees, and
 * where trace_printk writes. Helpers read everything outside the program from here, so a test that
 * passes its own environment gets deterministic answers (`deterministicEnv()`).
 */

/** The task a program sees as "current" (bpf_get_current_pid_tgid, _uid_gid, _comm). */
export interface TaskInfo {
  /** Thread id (the kernel's pid). */
  pid: number;
  /** Process id (the kernel's tgid). */
  tgid: number;
  uid: number;
  gid: number;
  /** Up to 15 characters (TASK_COMM_LEN 16 with the NUL). */
  comm: string;
}

/** A network interface (XDP rx queues, redirects, fib_lookup's source MAC and MTU). */
export interface NetInterface {
  ifindex: number;
  name: string;
  mac: Uint8Array;
  mtu: number;
  /** Number of rx queues (xdp_md.rx_queue_index must be below it). */
  rxQueues: number;
}

/** A route of the table bpf_fib_lookup consults. */
export interface FibRoute {
  family: 'inet' | 'inet6';
  /** Destination network as bytes (4 or 16) and its prefix length. */
  dst: Uint8Array;
  prefixLen: number;
  /** Output interface. */
  ifindex: number;
  /** Next hop (absent: directly connected, the destination itself is the neighbour). */
  gateway?: Uint8Array;
  /** `unicast` (default), or a route type that makes the lookup fail as the kernel's does. */
  type?: 'unicast' | 'blackhole' | 'unreachable' | 'prohibit';
  /** Overrides the interface MTU for this route. */
  mtu?: number;
}

/** A neighbour (ARP/NDP) entry: IP address → MAC on an interface. */
export interface FibNeighbour {
  ip: Uint8Array;
  mac: Uint8Array;
}

/** One bpf_trace_printk / bpf_trace_vprintk line. */
export interface TraceRecord {
  timestampNs: bigint;
  cpu: number;
  pid: number;
  comm: string;
  /** The formatted message (as the helper formatted it, without a trailing newline added). */
  message: string;
}

/** The trace pipe: what /sys/kernel/tracing/trace_pipe would show for the VM's programs. */
export class TracePipe {
  private records: TraceRecord[] = [];
  /** Lines kept at most (the oldest are dropped beyond it, like a ring buffer). */
  limit = 65536;

  write(record: TraceRecord): void {
    this.records.push(record);
    if (this.records.length > this.limit) this.records.splice(0, this.records.length - this.limit);
  }

  /** The records so far, oldest first (kept). */
  peek(): readonly TraceRecord[] {
    return this.records;
  }

  /** Removes and returns the records so far (reading the pipe consumes it). */
  read(): TraceRecord[] {
    const r = this.records;
    this.records = [];
    return r;
  }

  /** Records as the trace_pipe lines the kernel prints (`comm-pid [cpu] ..... secs: bpf_trace_printk: msg`). */
  static format(r: TraceRecord): string {
    const task = `${r.comm}-${r.pid}`.padStart(16);
    const secs = `${r.timestampNs / 1_000_000_000n}.${((r.timestampNs % 1_000_000_000n) / 1000n).toString().padStart(6, '0')}`;
    const msg = r.message.endsWith('\n') ? r.message.slice(0, -1) : r.message;
    return `${task} [${r.cpu.toString().padStart(3, '0')}] d..31 ${secs.padStart(12)}: bpf_trace_printk: ${msg}`;
  }

  /** Drains the pipe and returns its text, one line per record. */
  readText(): string {
    return this.read()
      .map((r) => `${TracePipe.format(r)}\n`)
      .join('');
  }
}

export interface VmEnv {
  /** CLOCK_MONOTONIC in ns (bpf_ktime_get_ns). */
  monotonicNs(): bigint;
  /** CLOCK_BOOTTIME in ns (bpf_ktime_get_boot_ns). */
  boottimeNs(): bigint;
  /** CLOCK_MONOTONIC_COARSE in ns (bpf_ktime_get_coarse_ns). */
  coarseNs(): bigint;
  /** CLOCK_TAI in ns (bpf_ktime_get_tai_ns). */
  taiNs(): bigint;
  /** jiffies (bpf_jiffies64). */
  jiffies(): bigint;
  /** A 32-bit random number (bpf_get_prandom_u32). */
  random32(): number;
  /** The current task. */
  task: TaskInfo;
  /** The NUMA node of every CPU (bpf_get_numa_node_id). */
  numaNode: number;
  interfaces: NetInterface[];
  routes: FibRoute[];
  neighbours: FibNeighbour[];
  /**
   * Memory outside the VM that probe_read_user/_kernel may read (address → bytes), consulted when the
   * address is not in VM memory. Return undefined for a fault (the helper then returns -EFAULT).
   */
  readUser?(address: bigint, length: number): Uint8Array | undefined;
  readKernel?(address: bigint, length: number): Uint8Array | undefined;
  /** Instruction pointers of the stack, innermost first (get_stack, get_stackid). */
  stack(user: boolean): readonly bigint[];
  /** Where trace_printk writes. */
  trace: TracePipe;
}

/** The loopback interface the kernel's test runs use (ifindex 1, one rx queue, MTU 65536). */
export function loopback(): NetInterface {
  return { ifindex: 1, name: 'lo', mac: new Uint8Array(6), mtu: 65536, rxQueues: 1 };
}

/** xorshift32: a small deterministic generator for random32. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export interface DeterministicEnvOptions {
  /** Start of every clock, ns (default 1_000_000_000). */
  startNs?: bigint;
  /** How far the clocks move at each reading, ns (default 1000). */
  stepNs?: bigint;
  /** Seed of random32 (default 1). */
  seed?: number;
  task?: Partial<TaskInfo>;
}

const DEFAULT_TASK: TaskInfo = { pid: 4242, tgid: 4242, uid: 0, gid: 0, comm: 'tsbpf' };

/** An environment whose clocks tick by a fixed step at each reading and whose random numbers repeat. */
export function deterministicEnv(options: DeterministicEnvOptions = {}): VmEnv {
  let now = options.startNs ?? 1_000_000_000n;
  const step = options.stepNs ?? 1000n;
  const tick = () => {
    now += step;
    return now;
  };
  return {
    monotonicNs: tick,
    boottimeNs: () => tick() + 5_000_000_000n,
    coarseNs: () => tick() - (now % 4_000_000n),
    taiNs: () => tick() + 1_700_000_000_000_000_000n,
    jiffies: () => 4294667296n + now / 4_000_000n,
    random32: xorshift(options.seed ?? 1),
    task: { ...DEFAULT_TASK, ...options.task },
    numaNode: 0,
    interfaces: [loopback()],
    routes: [],
    neighbours: [],
    stack: () => [],
    trace: new TracePipe(),
  };
}

/** An environment over the host: real clocks (process.hrtime), Math.random, this process as the task. */
export function hostEnv(): VmEnv {
  const t0 = process.hrtime.bigint();
  const boot = BigInt(Math.round(performance.timeOrigin * 1e6)) - t0;
  const random = xorshift((Math.random() * 0x1_0000_0000) >>> 0);
  const pid = process.pid;
  let uid = 0;
  let gid = 0;
  try {
    uid = process.getuid?.() ?? 0;
    gid = process.getgid?.() ?? 0;
  } catch {
    // not on this platform
  }
  return {
    monotonicNs: () => process.hrtime.bigint(),
    boottimeNs: () => process.hrtime.bigint(),
    coarseNs: () => {
      const t = process.hrtime.bigint();
      return t - (t % 4_000_000n);
    },
    taiNs: () => process.hrtime.bigint() + boot + 37_000_000_000n,
    jiffies: () => process.hrtime.bigint() / 4_000_000n,
    random32: random,
    task: { pid, tgid: pid, uid, gid, comm: 'node' },
    numaNode: 0,
    interfaces: [loopback()],
    routes: [],
    neighbours: [],
    stack: () => [],
    trace: new TracePipe(),
  };
}
