/**
 * The contract between an ObjectSpec and the two places it can run: the portable VM (src/vm/) and the
 * Linux kernel (src/kernel/). Types only. Front ends (CLI, tracing, tools) program against these and
 * never against one backend's internals; the backends implement them.
 *
 * Like cilium/ebpf's NewCollection: `backend.load(spec)` creates every map, loads every program and
 * returns a Collection that owns them until `close()`.
 */
import type { ObjectSpec, VariableValue } from './object/spec.js';

export type { BatchPage, BpfMap, MapInfo } from './maps.js';

import type { BpfMap } from './maps.js';

/** BPF_PROG_TEST_RUN's input, for every program type that supports it. */
export interface TestRunOptions {
  /** Packet (data_in) for packet programs. */
  data?: Uint8Array;
  /** Context in (ctx_in): `struct xdp_md`, `struct __sk_buff`, raw tracepoint args, a `syscall` program's argument... */
  ctx?: Uint8Array;
  /** Runs of the program; durationNs is the average (the kernel's semantics). Default 1. */
  repeat?: number;
  /** BPF_F_TEST_* flags (e.g. BPF_F_TEST_XDP_LIVE_FRAMES, BPF_F_TEST_RUN_ON_CPU). */
  flags?: number;
  cpu?: number;
  /** Room for data_out when the program may grow the packet (default: data size + headroom). */
  dataOutSize?: number;
}

export interface TestRunResult {
  /** The program's return value, as the kernel reports it (u32). */
  retval: number;
  /** data_out: the packet after the program (empty when the type has no packet). */
  data: Uint8Array;
  /** ctx_out, when a context was given and the type writes it back. */
  ctx?: Uint8Array;
  /** Average nanoseconds per run. */
  durationNs: number;
}

export interface Program {
  readonly name: string;
  /** Catalog program type name (`xdp`, `sched_cls`, `tracepoint`...). */
  readonly type: string;
  /** BPF_PROG_TEST_RUN semantics of this program type. */
  testRun(options?: TestRunOptions): TestRunResult;
}

export interface CollectionOptions {
  /** Values of `const volatile` (.rodata) and other global variables, set before load. */
  constants?: Readonly<Record<string, VariableValue>>;
  /** Load only these programs (default: every program whose SEC() autoloads). */
  programs?: readonly string[];
  /** Verifier log level for every program (0 default; the log is kept on the Program when > 0). */
  logLevel?: 0 | 1 | 2;
  /**
   * Load the programs without verifying them (the VM only; the kernel always verifies). By
   * default the VM runs a program only once tsbpf's verifier has accepted it, as the kernel does,
   * and refuses the collection with TsbpfError('verify') otherwise. `true` is an explicit opt-out
   * for programs the verifier does not (yet) accept: they run with the VM's run-time checks only
   * (every memory access checked, an instruction budget instead of a proof of termination).
   */
  unverified?: boolean;
}

export interface Collection {
  readonly programs: ReadonlyMap<string, Program>;
  readonly maps: ReadonlyMap<string, BpfMap>;
  /** The program called `name`, or TsbpfError('usage') listing the names there are. */
  program(name: string): Program;
  map(name: string): BpfMap;
  /** Releases every program and map (fds, VM memory). Idempotent. */
  close(): void;
}

export interface Backend {
  readonly name: 'vm' | 'kernel';
  load(spec: ObjectSpec, options?: CollectionOptions): Collection;
}
