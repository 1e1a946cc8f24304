/**
 * The VM's helpers that are not about maps or packets, with the kernel's ids (src/catalog/helpers.ts)
 * and answers: time, randomness, the CPU and NUMA node, the current task, probe_read_*, trace_printk /
 * trace_vprintk / snprintf with the kernel's format rules, get_stack, bpf_loop, strncmp, strtol /
 * strtoul, spin locks and the basics of timers. Everything from outside the program comes from the
 * environment (src/vm/env.ts), so a deterministic environment gives deterministic runs.
 */
import { helperByName } from '../../catalog/helpers.js';
import { TsbpfError } from '../../errors.js';
import { E2BIG, EBUSY, EFAULT, EINVAL, EPERM, ERANGE } from '../context.js';
import type { VmEnv } from '../env.js';
import type { HelperContext, HelperFn } from '../interpreter.js';
import type { AddressSpace } from '../memory.js';
import { bpfFormat, MAX_BPRINTF_BUF, MAX_BPRINTF_VARARGS, type PrintfMemory } from './printf.js';

/** What the helpers of a collection share. */
export interface HelperHost {
  readonly env: VmEnv;
  readonly memory: AddressSpace;
  /** The CPU the program runs on. */
  cpu(): number;
  /** The stack get_stack records (env.stack unless replaced). */
  stack(user: boolean): readonly bigint[];
}

export const helperId = (name: string): number => {
  const h = helperByName(name);
  if (!h) throw new Error(`catalog has no helper ${name}`);
  return h.id;
};

const err = (errno: number) => BigInt(-errno);
const TASK_COMM_LEN = 16;
/** Iterations bpf_loop allows (BPF_MAX_LOOPS). */
export const BPF_MAX_LOOPS = 1 << 23;
const BPF_F_USER_STACK = 1n << 8n;
const BPF_F_USER_BUILD_ID = 1n << 11n;
const BPF_F_SKIP_FIELD_MASK = 0xffn;

/** Reads VM memory, or the environment's user/kernel memory for addresses outside it. */
function readAny(host: HelperHost, addr: bigint, len: number, user: boolean): Uint8Array | undefined {
  if (len === 0) return new Uint8Array(0);
  try {
    return host.memory.read(addr, len);
  } catch {
    const f = user ? host.env.readUser : host.env.readKernel;
    const b = f?.call(host.env, addr, len);
    return b && b.length >= len ? b.subarray(0, len) : undefined;
  }
}

/** A NUL-terminated string of at most `max` bytes (the NUL included when found). */
function readStr(host: HelperHost, addr: bigint, max: number, user: boolean): Uint8Array | undefined {
  const out: number[] = [];
  for (let i = 0; i < max; i++) {
    const b = readAny(host, addr + BigInt(i), 1, user);
    if (b === undefined) return i === 0 ? undefined : Uint8Array.from(out);
    out.push(b[0]);
    if (b[0] === 0) break;
  }
  return Uint8Array.from(out);
}

function printfMemory(host: HelperHost): PrintfMemory {
  return {
    readString: (a, max) => readStr(host, a, max, false),
    readBytes: (a, n) => readAny(host, a, n, false),
  };
}

/** Timer state kept per `struct bpf_timer` address. */
interface TimerState {
  map: bigint;
  callback: bigint | undefined;
  /** Deadline (monotonic ns) when started. */
  deadline: bigint | undefined;
}

export interface BaseHelpers {
  helpers: Map<number, HelperFn>;
  /** Timers that have been started and not cancelled (bpf_timer_start), by timer address. */
  timers: Map<bigint, TimerState>;
}

/** The kernel's strncmp: -1, 0 or 1. */
function strncmp(a: Uint8Array, b: Uint8Array, n: number): number {
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
    if (x === 0) return 0;
  }
  return 0;
}

/** __bpf_strtoull: bytes consumed and the value, or a negative errno. */
function strtoull(
  buf: Uint8Array,
  flags: bigint,
): { consumed: number; value: bigint; negative: boolean } | number {
  if (flags & ~0x1fn) return -EINVAL;
  let base = Number(flags & 0x1fn);
  if (base !== 0 && base !== 8 && base !== 10 && base !== 16) return -EINVAL;
  if (buf.length === 0) return -EINVAL;
  let p = 0;
  while (p < buf.length && (buf[p] === 0x20 || (buf[p] >= 0x09 && buf[p] <= 0x0d))) p++;
  const negative = p < buf.length && buf[p] === 0x2d;
  if (negative) p++;
  let consumed = p;
  const rest = buf.subarray(p, p + Math.min(buf.length - p, 63));
  if (rest.length === 0) return -EINVAL;
  const s = new TextDecoder('latin1').decode(rest.indexOf(0) < 0 ? rest : rest.subarray(0, rest.indexOf(0)));
  let i = 0;
  const lower = s.toLowerCase();
  if (base === 0) {
    if (lower[0] === '0') base = lower[1] === 'x' && /[0-9a-f]/.test(lower[2] ?? '') ? 16 : 8;
    else base = 10;
  }
  if (base === 16 && lower[0] === '0' && lower[1] === 'x') i = 2;
  const start = i;
  let value = 0n;
  let overflow = false;
  for (; i < lower.length; i++) {
    const d = Number.parseInt(lower[i], 36);
    if (Number.isNaN(d) || d >= base) break;
    value = value * BigInt(base) + BigInt(d);
    if (value > 0xffff_ffff_ffff_ffffn) overflow = true;
  }
  if (overflow) return -ERANGE;
  if (i === start) return -EINVAL;
  consumed += i;
  return { consumed, value, negative };
}

/** The non-map, non-packet helpers over a host. */
export function baseHelpers(host: HelperHost): BaseHelpers {
  const h = new Map<number, HelperFn>();
  const env = host.env;
  const timers = new Map<bigint, TimerState>();
  const mem = () => host.memory;

  h.set(helperId('ktime_get_ns'), () => env.monotonicNs());
  h.set(helperId('ktime_get_boot_ns'), () => env.boottimeNs());
  h.set(helperId('ktime_get_coarse_ns'), () => env.coarseNs());
  h.set(helperId('ktime_get_tai_ns'), () => env.taiNs());
  h.set(helperId('jiffies64'), () => env.jiffies());
  h.set(helperId('get_prandom_u32'), () => BigInt(env.random32() >>> 0));
  h.set(helperId('get_smp_processor_id'), () => BigInt(host.cpu()));
  h.set(helperId('get_numa_node_id'), () => BigInt(env.numaNode));
  h.set(
    helperId('get_current_pid_tgid'),
    () => (BigInt(env.task.tgid >>> 0) << 32n) | BigInt(env.task.pid >>> 0),
  );
  h.set(
    helperId('get_current_uid_gid'),
    () => (BigInt(env.task.gid >>> 0) << 32n) | BigInt(env.task.uid >>> 0),
  );
  h.set(helperId('get_current_comm'), ([buf, size], vm) => {
    const n = Number(size);
    const out = new Uint8Array(n);
    // strscpy_pad: at most size - 1 characters, NUL-padded
    const comm = new TextEncoder()
      .encode(env.task.comm)
      .subarray(0, Math.min(TASK_COMM_LEN - 1, Math.max(n - 1, 0)));
    out.set(comm);
    vm.memory.write(buf, out);
    return 0n;
  });

  // A zeroed task_struct stand-in, so programs get a non-NULL current task.
  let task: bigint | undefined;
  const currentTask = () => {
    task ??= BigInt(mem().allocate(4096, 'task_struct', { writable: false }).base);
    return task;
  };
  h.set(helperId('get_current_task'), currentTask);
  h.set(helperId('get_current_task_btf'), currentTask);

  // probe_read_{user,kernel}{,_str} and the legacy probe_read/probe_read_str (kernel first, then user).
  const probeRead = (user: boolean): HelperFn => {
    return ([dst, size, src], vm) => {
      const n = Number(size);
      const b = readAny(host, src, n, user);
      if (b === undefined) {
        vm.memory.write(dst, new Uint8Array(n));
        return err(EFAULT);
      }
      vm.memory.write(dst, b);
      return 0n;
    };
  };
  const probeReadStr = (user: boolean): HelperFn => {
    return ([dst, size, src], vm) => {
      const n = Number(size);
      if (n === 0) return 0n;
      const s = readStr(host, src, n, user);
      if (s === undefined) {
        vm.memory.write(dst, new Uint8Array(n));
        return err(EFAULT);
      }
      // copies up to n - 1 bytes and a NUL; returns the length including the NUL
      const end = s.indexOf(0);
      const body = s.subarray(0, Math.min(end < 0 ? s.length : end, n - 1));
      const out = new Uint8Array(body.length + 1);
      out.set(body);
      vm.memory.write(dst, out);
      return BigInt(out.length);
    };
  };
  h.set(helperId('probe_read_user'), probeRead(true));
  h.set(helperId('probe_read_kernel'), probeRead(false));
  h.set(helperId('probe_read_user_str'), probeReadStr(true));
  h.set(helperId('probe_read_kernel_str'), probeReadStr(false));
  h.set(helperId('probe_read'), probeRead(false));
  h.set(helperId('probe_read_str'), probeReadStr(false));

  const trace = (message: string) => {
    env.trace.write({
      timestampNs: env.monotonicNs(),
      cpu: host.cpu(),
      pid: env.task.pid,
      comm: env.task.comm,
      message,
    });
  };
  const fmtBytes = (vm: HelperContext, fmt: bigint, size: number): Uint8Array | number => {
    if (size <= 0) return -EINVAL;
    const b = vm.memory.read(fmt, size);
    if (b.indexOf(0) < 0) return -EINVAL; // the format must end within fmt_size
    return b;
  };
  h.set(helperId('trace_printk'), ([fmt, size, a1, a2, a3], vm) => {
    const f = fmtBytes(vm, fmt, Number(size));
    if (typeof f === 'number') return BigInt(f);
    const r = bpfFormat(f, [a1, a2, a3], printfMemory(host));
    if (typeof r === 'number') return BigInt(r);
    const text = r.slice(0, MAX_BPRINTF_BUF - 1);
    trace(text);
    return BigInt(text.length);
  });
  const dataArgs = (vm: HelperContext, data: bigint, len: number): bigint[] | number => {
    if (len % 8 !== 0 || len > MAX_BPRINTF_VARARGS * 8 || (len > 0 && data === 0n)) return -EINVAL;
    const out: bigint[] = [];
    const b = len > 0 ? vm.memory.read(data, len) : new Uint8Array(0);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < len; i += 8) out.push(v.getBigUint64(i, true));
    return out;
  };
  h.set(helperId('trace_vprintk'), ([fmt, size, data, dataLen], vm) => {
    const f = fmtBytes(vm, fmt, Number(size));
    if (typeof f === 'number') return BigInt(f);
    const args = dataArgs(vm, data, Number(dataLen));
    if (typeof args === 'number') return BigInt(args);
    const r = bpfFormat(f, args, printfMemory(host));
    if (typeof r === 'number') return BigInt(r);
    const text = r.slice(0, MAX_BPRINTF_BUF - 1);
    trace(text);
    return BigInt(text.length);
  });
  h.set(helperId('snprintf'), ([str, strSize, fmt, data, dataLen], vm) => {
    const args = dataArgs(vm, data, Number(dataLen));
    if (typeof args === 'number') return BigInt(args);
    const f = readStr(host, fmt, 1 << 16, false);
    if (f === undefined) return err(EFAULT);
    const r = bpfFormat(f, args, printfMemory(host));
    if (typeof r === 'number') return BigInt(r);
    const bytes = new TextEncoder().encode(r);
    const n = Number(strSize);
    if (n > 0) {
      const out = new Uint8Array(Math.min(bytes.length + 1, n));
      out.set(bytes.subarray(0, out.length - 1));
      vm.memory.write(str, out);
    }
    return BigInt(bytes.length + 1);
  });

  h.set(helperId('get_stack'), ([_ctx, buf, size, flags], vm) => {
    const n = Number(size);
    if (flags & ~(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)) {
      vm.memory.write(buf, new Uint8Array(n));
      return err(EINVAL);
    }
    const user = (flags & BPF_F_USER_STACK) !== 0n;
    const elem = flags & BPF_F_USER_BUILD_ID ? 32 : 8;
    if (n % elem !== 0 || (flags & BPF_F_USER_BUILD_ID && !user)) {
      vm.memory.write(buf, new Uint8Array(n));
      return err(EINVAL);
    }
    const skip = Number(flags & BPF_F_SKIP_FIELD_MASK);
    const ips = host.stack(user).slice(skip, skip + n / elem);
    const out = new Uint8Array(n);
    const v = new DataView(out.buffer);
    for (const [i, ip] of ips.entries()) v.setBigUint64(i * 8, ip, true);
    vm.memory.write(buf, out);
    return BigInt(ips.length * 8);
  });

  h.set(helperId('loop'), ([nr, fn, ctx, flags], vm) => {
    if (flags !== 0n) return err(EINVAL);
    if (nr > BigInt(BPF_MAX_LOOPS)) return err(E2BIG);
    if (!vm.callFunction)
      throw new TsbpfError('runtime', 'bpf_loop needs an engine that can call BPF callbacks');
    const n = Number(nr);
    for (let i = 0; i < n; i++) {
      const r = vm.callFunction(fn, [BigInt(i), ctx]);
      if (r !== 0n) return BigInt(i + 1);
    }
    return BigInt(n);
  });

  h.set(helperId('strncmp'), ([s1, s1sz, s2], vm) => {
    const n = Number(s1sz);
    const a = vm.memory.read(s1, n);
    const b = readStr(host, s2, n, false) ?? new Uint8Array(0);
    return BigInt(strncmp(a, b, n));
  });

  const strto = (signed: boolean): HelperFn => {
    return ([buf, bufLen, flags, res], vm) => {
      const r = strtoull(vm.memory.read(buf, Number(bufLen)), flags);
      if (typeof r === 'number') return BigInt(r);
      let value: bigint;
      if (signed) {
        if (r.negative) {
          if (r.value - 1n > 0x7fff_ffff_ffff_ffffn) return err(ERANGE);
          value = -r.value;
        } else {
          if (r.value > 0x7fff_ffff_ffff_ffffn) return err(ERANGE);
          value = r.value;
        }
      } else {
        if (r.negative) return err(EINVAL);
        value = r.value;
      }
      vm.memory.writeU64(res, value);
      return BigInt(r.consumed);
    };
  };
  h.set(helperId('strtol'), strto(true));
  h.set(helperId('strtoul'), strto(false));

  // One program runs at a time in the VM: a spin lock is always free.
  h.set(helperId('spin_lock'), () => 0n);
  h.set(helperId('spin_unlock'), () => 0n);

  // Timers: the kernel's bookkeeping and return codes. Firing is left to the caller (Collection.timers).
  h.set(helperId('timer_init'), ([timer, map, flags]) => {
    if (flags & ~0x7n) return err(EINVAL);
    if (timers.has(timer)) return err(EBUSY);
    timers.set(timer, { map, callback: undefined, deadline: undefined });
    return 0n;
  });
  h.set(helperId('timer_set_callback'), ([timer, fn]) => {
    const t = timers.get(timer);
    if (!t) return err(EINVAL);
    t.callback = fn;
    return 0n;
  });
  h.set(helperId('timer_start'), ([timer, nsecs, flags]) => {
    const t = timers.get(timer);
    if (flags & ~0x7n) return err(EINVAL);
    if (!t || t.callback === undefined) return err(EINVAL);
    t.deadline = (flags & 1n ? 0n : env.monotonicNs()) + nsecs;
    return 0n;
  });
  h.set(helperId('timer_cancel'), ([timer]) => {
    const t = timers.get(timer);
    if (!t) return err(EINVAL);
    const was = t.deadline !== undefined;
    t.deadline = undefined;
    return was ? 1n : 0n;
  });

  h.set(helperId('send_signal'), () => err(EPERM));
  h.set(helperId('send_signal_thread'), () => err(EPERM));
  h.set(helperId('get_current_cgroup_id'), () => 1n);
  return { helpers: h, timers };
}
