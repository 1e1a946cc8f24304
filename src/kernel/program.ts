/**
 * Programs in the Linux kernel: BPF_PROG_LOAD, BPF_PROG_TEST_RUN, BPF_OBJ_GET_INFO_BY_FD.
 * `union bpf_attr` is laid out by byte offset (include/uapi/linux/bpf.h) with a DataView.
 */

import { programTypeByName } from '../catalog/program-types.js';
import { EACCES, EAGAIN, EINTR, ENOSPC, ENOSYS, EPERM } from '../errno.js';
import { TsbpfError } from '../errors.js';
import { encode, type Insn } from '../isa/insn.js';
import {
  addressOf,
  BPF_CMD,
  bpf,
  bpfRaw,
  closeFd as closeRawFd,
  explainErrno,
  ffiAvailable,
  kernelBuffer,
  toKernelBuffer,
} from './syscall.js';

/** Byte offsets of the BPF_PROG_LOAD member of union bpf_attr. */
const LOAD = {
  prog_type: 0,
  insn_cnt: 4,
  insns: 8,
  license: 16,
  log_level: 24,
  log_size: 28,
  log_buf: 32,
  kern_version: 40,
  prog_flags: 44,
  prog_name: 48, // char[16]
  prog_ifindex: 64,
  expected_attach_type: 68,
  prog_btf_fd: 72,
  func_info_rec_size: 76,
  func_info: 80,
  func_info_cnt: 88,
  line_info_rec_size: 92,
  line_info: 96,
  line_info_cnt: 104,
  attach_btf_id: 108,
  attach_btf_obj_fd: 112,
  fd_array: 120,
  log_true_size: 140, // Linux 6.4+: the log size the kernel needed
  size: 144,
} as const;

/** Byte offsets of the BPF_PROG_TEST_RUN member. */
const TEST = {
  prog_fd: 0,
  retval: 4,
  data_size_in: 8,
  data_size_out: 12,
  data_in: 16,
  data_out: 24,
  repeat: 32,
  duration: 36,
  ctx_size_in: 40,
  ctx_size_out: 44,
  ctx_in: 48,
  ctx_out: 56,
  flags: 64,
  cpu: 68,
  batch_size: 72,
  size: 80,
} as const;

/** BPF_OBJ_GET_INFO_BY_FD (attr.info) and the head of struct bpf_prog_info. */
const INFO = { bpf_fd: 0, info_len: 4, info: 8, size: 16 } as const;
const PROG_INFO = {
  type: 0,
  id: 4,
  tag: 8,
  jited_prog_len: 16,
  xlated_prog_len: 20,
  name: 64,
  size: 80,
} as const;

/** The kernel refuses log buffers larger than this (UINT_MAX >> 2). */
const MAX_LOG_SIZE = 0x3fff_ffff;
const DEFAULT_LOG_SIZE = 64 * 1024;
const BPF_OBJ_NAME_LEN = 16;

export interface LoadOptions {
  /** Program type: the catalog's name ('xdp', 'socket_filter', ...) or the kernel's number. */
  type: string | number;
  insns: readonly Insn[];
  /** Defaults to "GPL". */
  license?: string;
  /**
   * Verifier log level (0, 1, 2; 4 = stats). With 0 (default) a successful load returns no log and a
   * failed load is retried once at level 1 so the error carries the verifier's log.
   */
  logLevel?: number;
  /** Initial log buffer size in bytes; grown on ENOSPC unless `logGrow` is false. */
  logSize?: number;
  /**
   * false: the log buffer stays `logSize` bytes. A log that does not fit keeps its tail (the kernel rotates
   * it, and the tail holds the verdict), and a second load without a log gives the verdict; the first
   * log is returned or thrown. For million-instruction programs, whose full level-2 log is larger than a
   * JavaScript string can be.
   */
  logGrow?: boolean;
  /** Program name (up to 15 characters of [A-Za-z0-9_.]). */
  name?: string;
  expectedAttachType?: number;
  progFlags?: number;
  /** kern_version (only kprobes of very old kernels check it). */
  kernVersion?: number;
  /** fd_array: the map fds BPF_PSEUDO_MAP_IDX / BPF_PSEUDO_MAP_IDX_VALUE immediates index (and kfunc BTF fds). */
  fdArray?: readonly number[];
  /** BTF object (BPF_BTF_LOAD fd) the func_info / line_info type ids and string offsets refer to. */
  btfFd?: number;
  /** struct bpf_func_info records {insn_off, type_id}, 8 bytes each. */
  funcInfo?: readonly { insnOff: number; typeId: number }[];
  /** struct bpf_line_info records, 16 bytes each (string offsets in the btfFd's string section). */
  lineInfo?: readonly { insnOff: number; fileNameOff: number; lineOff: number; lineCol: number }[];
  /** attach_btf_id (tracing, lsm, struct_ops, ext) and the BTF object it is in (0: vmlinux). */
  attachBtfId?: number;
  attachBtfObjFd?: number;
}

export interface LoadedProgram {
  fd: number;
  /** The verifier log ('' when none was requested). */
  log: string;
}

function progTypeNumber(type: string | number): number {
  if (typeof type === 'number') return type;
  const known = programTypeByName(type);
  if (known === undefined) throw new TsbpfError('usage', `unknown program type '${type}'`);
  return known.id;
}

function cString(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  const out = kernelBuffer(bytes.byteLength + 1);
  out.set(bytes);
  return out;
}

function readCString(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
}

/** Loads a program (BPF_PROG_LOAD). Throws TsbpfError('kernel') with details.errno and details.log. */
export function loadProgram(options: LoadOptions): LoadedProgram {
  const progType = progTypeNumber(options.type);
  if (options.insns.length === 0) throw new TsbpfError('usage', 'cannot load a program with no instructions');
  const insns = toKernelBuffer(encode(options.insns));
  const license = cString(options.license ?? 'GPL');
  const requested = options.logLevel ?? 0;
  const fdArray =
    options.fdArray && options.fdArray.length > 0 ? kernelBuffer(options.fdArray.length * 4) : undefined;
  if (fdArray && options.fdArray) {
    const dv = new DataView(fdArray.buffer);
    options.fdArray.forEach((fd, i) => {
      dv.setInt32(i * 4, fd, true);
    });
  }
  const funcInfo =
    options.funcInfo && options.funcInfo.length > 0 ? kernelBuffer(options.funcInfo.length * 8) : undefined;
  if (funcInfo && options.funcInfo) {
    const dv = new DataView(funcInfo.buffer);
    options.funcInfo.forEach((r, i) => {
      dv.setUint32(i * 8, r.insnOff, true);
      dv.setUint32(i * 8 + 4, r.typeId, true);
    });
  }
  const lineInfo =
    options.lineInfo && options.lineInfo.length > 0 ? kernelBuffer(options.lineInfo.length * 16) : undefined;
  if (lineInfo && options.lineInfo) {
    const dv = new DataView(lineInfo.buffer);
    options.lineInfo.forEach((r, i) => {
      dv.setUint32(i * 16, r.insnOff, true);
      dv.setUint32(i * 16 + 4, r.fileNameOff, true);
      dv.setUint32(i * 16 + 8, r.lineOff, true);
      dv.setUint32(i * 16 + 12, r.lineCol, true);
    });
  }
  if (options.name !== undefined && !/^[A-Za-z0-9_.]{0,15}$/.test(options.name)) {
    throw new TsbpfError(
      'usage',
      `invalid program name '${options.name}': up to 15 characters of [A-Za-z0-9_.]`,
    );
  }

  const attempt = (logLevel: number, logSize: number) => {
    const attr = kernelBuffer(LOAD.size);
    const v = new DataView(attr.buffer);
    const log = logLevel > 0 ? kernelBuffer(logSize) : undefined;
    v.setUint32(LOAD.prog_type, progType, true);
    v.setUint32(LOAD.insn_cnt, insns.byteLength / 8, true);
    v.setBigUint64(LOAD.insns, addressOf(insns), true);
    v.setBigUint64(LOAD.license, addressOf(license), true);
    if (log) {
      v.setUint32(LOAD.log_level, logLevel, true);
      v.setUint32(LOAD.log_size, log.byteLength, true);
      v.setBigUint64(LOAD.log_buf, addressOf(log), true);
    }
    v.setUint32(LOAD.prog_flags, options.progFlags ?? 0, true);
    if (options.name)
      attr.set(new TextEncoder().encode(options.name).subarray(0, BPF_OBJ_NAME_LEN - 1), LOAD.prog_name);
    v.setUint32(LOAD.expected_attach_type, options.expectedAttachType ?? 0, true);
    v.setUint32(LOAD.kern_version, options.kernVersion ?? 0, true);
    if (fdArray) v.setBigUint64(LOAD.fd_array, addressOf(fdArray), true);
    if (options.btfFd !== undefined && options.btfFd > 0) {
      v.setUint32(LOAD.prog_btf_fd, options.btfFd, true);
      if (funcInfo && options.funcInfo) {
        v.setUint32(LOAD.func_info_rec_size, 8, true);
        v.setBigUint64(LOAD.func_info, addressOf(funcInfo), true);
        v.setUint32(LOAD.func_info_cnt, options.funcInfo.length, true);
      }
      if (lineInfo && options.lineInfo) {
        v.setUint32(LOAD.line_info_rec_size, 16, true);
        v.setBigUint64(LOAD.line_info, addressOf(lineInfo), true);
        v.setUint32(LOAD.line_info_cnt, options.lineInfo.length, true);
      }
    }
    v.setUint32(LOAD.attach_btf_id, options.attachBtfId ?? 0, true);
    v.setUint32(LOAD.attach_btf_obj_fd, options.attachBtfObjFd ?? 0, true);
    const pointees = [insns, license, log, fdArray, funcInfo, lineInfo];
    let r = bpfRaw(BPF_CMD.PROG_LOAD, attr, pointees);
    // EAGAIN: the verifier was interrupted; EINTR: a signal. Both are worth a few retries (as libbpf does).
    for (let i = 0; i < 5 && r.result < 0 && (r.errno === EAGAIN || r.errno === EINTR); i++) {
      r = bpfRaw(BPF_CMD.PROG_LOAD, attr, pointees);
    }
    return {
      ...r,
      log: log ? readCString(log) : '',
      trueSize: v.getUint32(LOAD.log_true_size, true),
      bufSize: log?.byteLength ?? 0,
    };
  };

  let logLevel = requested;
  let logSize = Math.min(Math.max(options.logSize ?? DEFAULT_LOG_SIZE, 128), MAX_LOG_SIZE);
  for (;;) {
    const r = attempt(logLevel, logSize);
    if (r.result >= 0) return { fd: r.result, log: r.log };
    if (r.errno === ENOSPC && logLevel > 0 && options.logGrow === false) {
      const verdict = attempt(0, 0);
      if (verdict.result >= 0) return { fd: verdict.result, log: r.log };
      throw loadError(verdict.errno, r.log);
    }
    if (r.errno === ENOSPC && logLevel > 0 && logSize < MAX_LOG_SIZE) {
      // The log did not fit (the load failed for that reason alone, or failed and the log was cut).
      logSize = Math.min(MAX_LOG_SIZE, Math.max(logSize * 4, r.trueSize > r.bufSize ? r.trueSize : 0));
      continue;
    }
    if (logLevel === 0 && r.errno !== EPERM && r.errno !== ENOSYS) {
      // Load again with a log, so the error says why.
      logLevel = 1;
      continue;
    }
    throw loadError(r.errno, r.log);
  }
}

function loadError(errno: number, log: string): TsbpfError {
  const first = verifierReason(log);
  return new TsbpfError(
    'kernel',
    `BPF_PROG_LOAD failed: ${explainErrno(errno)}${first ? `: ${first}` : ''}`,
    log ? { errno, log } : { errno },
  );
}

/** The verifier's reason: the last non-empty line of the log that is not its statistics line. */
function verifierReason(log: string): string {
  const lines = log
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('processed ') && !l.startsWith('verification time'));
  return lines[lines.length - 1] ?? '';
}

export interface TestRunOptions {
  /** Packet data in (data_in); data_out gets a buffer of the same size plus headroom. */
  data?: Uint8Array;
  /** Context in (ctx_in), e.g. a struct __sk_buff or xdp_md. */
  ctx?: Uint8Array;
  /**
   * Repetitions (the kernel averages the duration over them). Unset or 0 means once; raw_tracepoint and
   * syscall programs refuse any other value.
   */
  repeat?: number;
  /** Ask for ctx_out (default true when ctx is given); raw_tracepoint and syscall test runs refuse it. */
  ctxOut?: boolean;
  /** Size of the data_out buffer; default data.length + 256. */
  dataOutSize?: number;
  flags?: number;
  cpu?: number;
}

export interface TestRunResult {
  /** The program's return value as the kernel reports it: the low 32 bits of r0, unsigned. */
  retval: number;
  /** data_out, trimmed to the size the kernel reported. */
  data: Uint8Array;
  /** Average nanoseconds per repetition, measured by the kernel. */
  durationNs: number;
  /** ctx_out when a ctx was given. */
  ctx?: Uint8Array;
}

/** Runs a loaded program once or `repeat` times (BPF_PROG_TEST_RUN). */
export function testRun(fd: number, options: TestRunOptions = {}): TestRunResult {
  const dataIn = options.data ? toKernelBuffer(options.data) : undefined;
  const dataOut = dataIn ? kernelBuffer(options.dataOutSize ?? dataIn.byteLength + 256) : undefined;
  const ctxIn = options.ctx ? toKernelBuffer(options.ctx) : undefined;
  const ctxOut = ctxIn && options.ctxOut !== false ? kernelBuffer(ctxIn.byteLength) : undefined;
  const attr = kernelBuffer(TEST.size);
  const v = new DataView(attr.buffer);
  v.setUint32(TEST.prog_fd, fd, true);
  if (dataIn && dataOut) {
    v.setUint32(TEST.data_size_in, dataIn.byteLength, true);
    v.setBigUint64(TEST.data_in, addressOf(dataIn), true);
    v.setUint32(TEST.data_size_out, dataOut.byteLength, true);
    v.setBigUint64(TEST.data_out, addressOf(dataOut), true);
  }
  if (ctxIn) {
    v.setUint32(TEST.ctx_size_in, ctxIn.byteLength, true);
    v.setBigUint64(TEST.ctx_in, addressOf(ctxIn), true);
  }
  if (ctxOut) {
    v.setUint32(TEST.ctx_size_out, ctxOut.byteLength, true);
    v.setBigUint64(TEST.ctx_out, addressOf(ctxOut), true);
  }
  const repeat = options.repeat ?? 0;
  if (!Number.isInteger(repeat) || repeat < 0 || repeat > 0xffff_ffff) {
    throw new TsbpfError('usage', `repeat must be an unsigned 32-bit integer, not ${repeat}`);
  }
  v.setUint32(TEST.repeat, repeat, true);
  v.setUint32(TEST.flags, options.flags ?? 0, true);
  v.setUint32(TEST.cpu, options.cpu ?? 0, true);
  bpf(BPF_CMD.PROG_TEST_RUN, attr, [dataIn, dataOut, ctxIn, ctxOut], 'BPF_PROG_TEST_RUN');
  const outSize = Math.min(v.getUint32(TEST.data_size_out, true), dataOut?.byteLength ?? 0);
  const result: TestRunResult = {
    retval: v.getUint32(TEST.retval, true),
    data: dataOut ? dataOut.slice(0, outSize) : new Uint8Array(0),
    durationNs: v.getUint32(TEST.duration, true),
  };
  if (ctxOut) result.ctx = ctxOut.slice(0, Math.min(v.getUint32(TEST.ctx_size_out, true), ctxOut.byteLength));
  return result;
}

export interface ProgramInfo {
  type: number;
  id: number;
  /** The kernel's 8-byte program tag, as 16 hex digits. */
  tag: string;
  jitedLen: number;
  xlatedLen: number;
  name: string;
}

/** BPF_OBJ_GET_INFO_BY_FD for a program fd: id, tag, sizes, name. */
export function programInfo(fd: number): ProgramInfo {
  const info = kernelBuffer(PROG_INFO.size);
  const attr = kernelBuffer(INFO.size);
  const v = new DataView(attr.buffer);
  v.setUint32(INFO.bpf_fd, fd, true);
  v.setUint32(INFO.info_len, info.byteLength, true);
  v.setBigUint64(INFO.info, addressOf(info), true);
  bpf(BPF_CMD.OBJ_GET_INFO_BY_FD, attr, [info], 'BPF_OBJ_GET_INFO_BY_FD');
  const iv = new DataView(info.buffer);
  return {
    type: iv.getUint32(PROG_INFO.type, true),
    id: iv.getUint32(PROG_INFO.id, true),
    tag: Array.from(info.subarray(PROG_INFO.tag, PROG_INFO.tag + 8), (b) =>
      b.toString(16).padStart(2, '0'),
    ).join(''),
    jitedLen: iv.getUint32(PROG_INFO.jited_prog_len, true),
    xlatedLen: iv.getUint32(PROG_INFO.xlated_prog_len, true),
    name: readCString(info.subarray(PROG_INFO.name, PROG_INFO.name + BPF_OBJ_NAME_LEN)),
  };
}

/** Closes a program (or any bpf) fd. */
export function closeFd(fd: number): void {
  closeRawFd(fd);
}

/** Loads, runs once and closes in one call: handy for tests and one-off checks. */
export function loadAndRun(options: LoadOptions, run: TestRunOptions = {}): TestRunResult & { log: string } {
  const { fd, log } = loadProgram(options);
  try {
    return { ...testRun(fd, run), log };
  } finally {
    closeFd(fd);
  }
}

let available: { ok: true } | { ok: false; reason: string } | undefined;

/**
 * Whether this process can load and run BPF programs: Linux, the FFI loads, and a trivial
 * socket filter (r0 = 0; exit) loads and test-runs. The answer is cached.
 */
export function bpfAvailable(): { ok: true } | { ok: false; reason: string } {
  if (available) return available;
  available = probe();
  return available;
}

function probe(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `BPF needs Linux (this is ${process.platform})` };
  const ffi = ffiAvailable();
  if (!ffi.ok) return ffi;
  const trivial: Insn[] = [
    { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
    { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
  ];
  let fd: number;
  try {
    fd = loadProgram({ type: 'socket_filter', insns: trivial }).fd;
  } catch (e) {
    const errno = e instanceof TsbpfError ? e.details.errno : undefined;
    const uid = process.getuid?.();
    const who = uid === 0 ? 'running as root' : `running as uid ${uid}, not root`;
    if (errno === EPERM || errno === EACCES) {
      return { ok: false, reason: `bpf() is not permitted (${who}): needs CAP_BPF/CAP_SYS_ADMIN or root` };
    }
    if (errno === ENOSYS) return { ok: false, reason: 'this kernel has no bpf() system call' };
    return {
      ok: false,
      reason: `cannot load a trivial BPF program: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
  try {
    testRun(fd, { data: new Uint8Array(64) });
    return { ok: true };
  } catch (e) {
    return {
      ok: false,
      reason: `BPF_PROG_TEST_RUN does not work: ${e instanceof Error ? e.message : String(e)}`,
    };
  } finally {
    closeFd(fd);
  }
}
