/**
 * The one place tsbpf makes raw system calls. Everything else in kernel/ goes through `bpf()` and
 * `closeFd()` here, so the FFI (koffi) is loaded in one module and only when a kernel code path
 * actually runs: importing the package never loads a native addon.
 *
 * Pointers: the kernel reads nested pointers (instructions, license, log buffer, packet data) as u64
 * fields inside `union bpf_attr`. We take them from `koffi.address(typedArray)`, which returns the
 * address of the array's backing store as a bigint. Buffers whose address is taken are created by
 * `kernelBuffer()` over a fresh ArrayBuffer, so their backing store is off the V8 heap and does not
 * move, and the caller keeps a reference to every one of them until the call returns.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  E2BIG,
  EACCES,
  EAGAIN,
  EBADF,
  EBUSY,
  EEXIST,
  EFAULT,
  EINTR,
  EINVAL,
  ENODEV,
  ENOENT,
  ENOMEM,
  ENOSPC,
  ENOSYS,
  ENOTSUPP,
  EOPNOTSUPP,
  EPERM,
  ERANGE,
  errnoName,
} from '../errno.js';
import { TsbpfError } from '../errors.js';

type Koffi = typeof import('koffi').default;

/** bpf(2) commands (enum bpf_cmd): only those tsbpf uses so far. */
export const BPF_CMD = {
  MAP_CREATE: 0,
  PROG_LOAD: 5,
  PROG_TEST_RUN: 10,
  OBJ_PIN: 6,
  OBJ_GET: 7,
  PROG_GET_NEXT_ID: 11,
  MAP_GET_NEXT_ID: 12,
  PROG_GET_FD_BY_ID: 13,
  MAP_GET_FD_BY_ID: 14,
  OBJ_GET_INFO_BY_FD: 15,
  RAW_TRACEPOINT_OPEN: 17,
  BTF_LOAD: 18,
  BTF_GET_FD_BY_ID: 19,
  BTF_GET_NEXT_ID: 23,
  LINK_CREATE: 28,
  LINK_UPDATE: 29,
  LINK_GET_FD_BY_ID: 30,
  LINK_GET_NEXT_ID: 31,
  ENABLE_STATS: 32,
  LINK_DETACH: 34,
} as const;

/**
 * Program types (enum bpf_prog_type) tsbpf names today. The catalog/ module will own program-type
 * facts; until then this is the one table of their numbers.
 */

/** x86_64 and aarch64 system call numbers of bpf(2). */
const SYS_BPF: Readonly<Record<string, number>> = { x64: 321, arm64: 280, riscv64: 280, loong64: 280 };

/** Linux errno values with names and what they usually mean for bpf(2). */
const EXPLANATIONS: Readonly<Record<number, string>> = {
  [EPERM]: 'operation not permitted: needs CAP_BPF/CAP_SYS_ADMIN or root',
  [ENOENT]: 'no such object',
  [EINTR]: 'interrupted by a signal',
  [E2BIG]: 'argument too big: too many instructions, or non-zero bytes past the end of bpf_attr',
  [EBADF]: 'bad file descriptor',
  [EAGAIN]: 'resource temporarily unavailable',
  [ENOMEM]: 'out of memory (or the locked-memory limit was hit)',
  [EACCES]: 'permission denied: the verifier rejected the program, or it needs CAP_BPF/CAP_SYS_ADMIN or root',
  [EFAULT]: 'bad address: a pointer inside bpf_attr is wrong',
  [EBUSY]: 'device or resource busy',
  [EEXIST]: 'object already exists',
  [ENODEV]: 'no such device',
  [EINVAL]: 'invalid argument: a malformed bpf_attr or instruction, or the verifier rejected the program',
  [ENOSPC]: 'no space left: a buffer (verifier log, output data) is too small',
  [ERANGE]: 'result out of range',
  [ENOSYS]: 'the bpf() system call is not implemented by this kernel',
  [EOPNOTSUPP]: 'operation not supported',
  [ENOTSUPP]: 'operation not supported by this program type or kernel',
};

/** `EACCES (permission denied: ...)` for an errno. */
export function explainErrno(errno: number): string {
  const why = EXPLANATIONS[errno];
  return why ? `${errnoName(errno)} (${why})` : errnoName(errno);
}

interface Libc {
  koffi: Koffi;
  // biome-ignore lint/suspicious/noExplicitAny: koffi function objects are untyped
  syscall: (...args: any[]) => number | bigint;
  close: (fd: number) => number;
  sysBpf: number;
  // biome-ignore lint/suspicious/noExplicitAny: koffi library handle
  lib: any;
}

let libc: Libc | undefined;
let libcError: string | undefined;

/** The koffi major version package.json depends on. */
const KOFFI_MAJOR = 3;

/** The musl dynamic loader of each architecture the direct path below knows (named as koffi's addons are). */
const MUSL_LOADERS: Readonly<Record<string, string>> = {
  x64: '/lib/ld-musl-x86_64.so.1',
  arm64: '/lib/ld-musl-aarch64.so.1',
};

/**
 * koffi. Its entry point spends ~5 ms of JavaScript (a bundled loader that reads node's ELF header to tell
 * glibc from musl, then wraps deprecated functions) to end at one native addon, which is what a trace's
 * start-up waits on; on glibc Linux the addon is loaded directly from koffi's @koromix/koffi-linux-ARCH
 * dependency: where npm hoists it (found without resolving koffi, ~1 ms more), else next to koffi. Where musl
 * may be the libc, or the addon is not there or is another major version than package.json asks for, koffi's
 * own loader decides.
 */
function loadKoffi(): Koffi {
  const require = createRequire(import.meta.url);
  const arch = process.arch;
  const musl = MUSL_LOADERS[arch];
  if (process.platform === 'linux' && musl !== undefined && !existsSync(musl)) {
    const addon = `@koromix/koffi-linux-${arch}/linux_${arch}/koffi.node`;
    const places = [() => require(addon), () => createRequire(require.resolve('koffi'))(addon)];
    for (const place of places) {
      try {
        const native = place() as Koffi & { version?: unknown };
        if (typeof native?.load === 'function' && String(native.version).startsWith(`${KOFFI_MAJOR}.`))
          return native;
      } catch {
        // the next place, then koffi's loader
      }
    }
  }
  return require('koffi') as Koffi;
}

/** Loads koffi and binds libc on first use. Throws TsbpfError('kernel') when that is impossible. */
function getLibc(): Libc {
  if (libc) return libc;
  if (libcError !== undefined) throw new TsbpfError('kernel', libcError);
  try {
    if (process.platform !== 'linux')
      throw new Error(`the bpf() system call needs Linux, not ${process.platform}`);
    const sysBpf = SYS_BPF[process.arch];
    if (sysBpf === undefined) throw new Error(`no known bpf() system call number for ${process.arch}`);
    const koffi = loadKoffi();
    const lib = koffi.load('libc.so.6');
    libc = {
      koffi,
      syscall: lib.func('long syscall(long, ...)'),
      close: lib.func('int close(int)'),
      sysBpf,
      lib,
    };
    return libc;
  } catch (e) {
    libcError = `cannot reach the kernel: ${e instanceof Error ? e.message : String(e)}`;
    throw new TsbpfError('kernel', libcError);
  }
}

/** A zeroed byte buffer whose address may be handed to the kernel (off-heap, never moves). */
export function kernelBuffer(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(Math.max(size, 1)));
}

/** A copy of `bytes` in a kernelBuffer. */
export function toKernelBuffer(bytes: Uint8Array): Uint8Array {
  const out = kernelBuffer(bytes.byteLength);
  out.set(bytes);
  return out;
}

/** The address of a buffer's first byte, for a u64 pointer field; 0n for an empty or absent buffer. */
export function addressOf(buf: Uint8Array | undefined): bigint {
  if (!buf || buf.byteLength === 0) return 0n;
  return BigInt(getLibc().koffi.address(buf));
}

/** Buffers the kernel is reading or writing right now: referenced here so nothing collects them mid-call. */
const inFlight: (readonly (Uint8Array | undefined)[])[] = [];

/**
 * The raw bpf(2) call: the result and errno (never throws on a kernel error). `pointees` are the
 * buffers whose addresses were written into `attr`; they stay referenced until the call returns.
 */
export function bpfRaw(
  cmd: number,
  attr: Uint8Array,
  pointees: readonly (Uint8Array | undefined)[] = [],
): { result: number; errno: number } {
  const { koffi, syscall, sysBpf } = getLibc();
  inFlight.push([attr, ...pointees]);
  try {
    const r = Number(syscall(sysBpf, 'int', cmd, 'uint64', addressOf(attr), 'uint', attr.byteLength));
    return r < 0 ? { result: r, errno: koffi.errno() } : { result: r, errno: 0 };
  } finally {
    inFlight.pop();
  }
}

/**
 * bpf(cmd, attr, sizeof attr). Returns the result (an fd for the *_LOAD and *_CREATE commands,
 * 0 otherwise) or throws TsbpfError('kernel') with details.errno. EINTR is retried.
 * `attr` must come from kernelBuffer(); the kernel may write results back into it.
 */
export function bpf(
  cmd: number,
  attr: Uint8Array,
  pointees: readonly (Uint8Array | undefined)[] = [],
  what = `bpf(${cmdName(cmd)})`,
): number {
  for (let attempt = 0; ; attempt++) {
    const { result, errno } = bpfRaw(cmd, attr, pointees);
    if (result >= 0) return result;
    if (errno === EINTR && attempt < 10) continue;
    throw new TsbpfError('kernel', `${what} failed: ${explainErrno(errno)}`, { errno });
  }
}

function cmdName(cmd: number): string {
  for (const [name, n] of Object.entries(BPF_CMD)) if (n === cmd) return `BPF_${name}`;
  return String(cmd);
}

/** close(2). Errors are reported, not ignored: closing a bad fd is a bug in the caller. */
export function closeFd(fd: number): void {
  const { koffi, close } = getLibc();
  if (close(fd) < 0) {
    const errno = koffi.errno();
    throw new TsbpfError('kernel', `close(${fd}) failed: ${explainErrno(errno)}`, { errno });
  }
}

/** Whether the FFI can be loaded at all (does not call the kernel). */
export function ffiAvailable(): { ok: true } | { ok: false; reason: string } {
  try {
    getLibc();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

// biome-ignore lint/suspicious/noExplicitAny: koffi function objects are untyped
type LibcFn = (...args: any[]) => any;
const boundFunctions = new Map<string, LibcFn>();

/**
 * A libc function bound by its C declaration (`int ioctl(int, unsigned long, ...)`), cached: the other
 * kernel/ modules (perf_event_open, mmap, epoll, setsockopt) reach libc through here only.
 */
export function libcFunction(decl: string): LibcFn {
  let f = boundFunctions.get(decl);
  if (!f) {
    f = getLibc().lib.func(decl) as LibcFn;
    boundFunctions.set(decl, f);
  }
  return f;
}

/** errno of the last libc call made through the FFI. */
export function lastErrno(): number {
  return getLibc().koffi.errno();
}

/** The koffi module (for views over mmap'd memory and pointer casts). */
export function ffiModule(): Koffi {
  return getLibc().koffi;
}

/** The raw syscall(2) entry point: syscall(nr, 'type', value, ...) with koffi's variadic typing. */
export function rawSyscall(nr: number, ...typedArgs: unknown[]): { result: number; errno: number } {
  const { koffi, syscall } = getLibc();
  const r = Number(syscall(nr, ...typedArgs));
  return r < 0 ? { result: r, errno: koffi.errno() } : { result: r, errno: 0 };
}
