/**
 * The portable VM as a Backend: `vmBackend().load(spec)` creates every map of an ObjectSpec in one VM
 * address space (global data filled, `const volatile` overrides applied, .rodata frozen, prog arrays
 * and map-in-maps filled from their initial slots), checks and prepares every program (helpers
 * allowed for its type, as the kernel's "program of this type cannot use helper" check), and returns a
 * Collection whose programs run with BPF_PROG_TEST_RUN's semantics for their type.
 *
 * Test runs follow net/bpf/test_run.c: XDP gets an xdp_buff with 256 bytes of headroom and optional
 * metadata (ctx_in xdp_md), sk_buff types get a packet of at least an Ethernet header run at L2 (TC)
 * or L3 (socket filter, cgroup_skb, lwt) with __sk_buff fields derived as eth_type_trans does,
 * raw_tracepoint takes its args in ctx_in, syscall its argument in ctx_in (written back), and types
 * the kernel cannot test-run (tracepoint, kprobe, perf_event...) refuse with ENOTSUPP (524). Those can
 * still run in the VM with `VmProgram.trigger({ ctx })`, as if their hook had fired.
 */
import type {
  Backend,
  Collection,
  CollectionOptions,
  Program,
  TestRunOptions,
  TestRunResult,
} from '../backend.js';
import type { Btf } from '../btf/btf.js';
import { applyCoreRelocations } from '../btf/core.js';
import { vmlinuxBtf } from '../btf/vmlinux.js';
import { helperById } from '../catalog/helpers.js';
import { type ProgramType, programTypeByName } from '../catalog/program-types.js';
import { TsbpfError } from '../errors.js';
import type { Insn } from '../isa/insn.js';
import { BPF_CALL, BPF_JMP, BPF_K, OPCODE_LD_IMM64 } from '../isa/opcodes.js';
import type { BpfMap, MapSpec as VmMapSpec } from '../maps.js';
import {
  type ObjectSpec,
  type MapSpec as ObjMapSpec,
  type ProgramSpec,
  setVariable,
} from '../object/spec.js';
import { formatSourceLine, verifyProgram } from '../verifier/object.js';
import {
  BytesContext,
  E2BIG,
  EINVAL,
  ENOSPC,
  ENOTSUPP,
  SkbContext,
  testRunError,
  XdpContext,
} from './context.js';
import { DEFAULT_ENGINE, type EngineOptions, prepareProgram } from './engine.js';
import { hostEnv, type VmEnv } from './env.js';
import { type BaseHelpers, baseHelpers } from './helpers/base.js';
import { mapHelpers } from './helpers/maps.js';
import { packetHelpers } from './helpers/packet.js';
import type { HelperFn, PreparedProgram } from './interpreter.js';
import { prepare } from './interpreter.js';
import { ArrayOfMapsMap, type ProgArrayMap } from './maps/array.js';
import type { VmMap } from './maps/base.js';
import { MapRuntime } from './maps/runtime.js';
import { AddressSpace } from './memory.js';

/** Prepares a program for an engine: the interpreter's `prepare` or anything with its signature. */
export type EngineFn = (insns: readonly Insn[], options: EngineOptions) => PreparedProgram;

export interface VmBackendOptions {
  /** Virtual CPUs (per-CPU maps hold one value each). Default 1. */
  cpus?: number;
  /** The outside world helpers see (default: the host's clocks, this process as the task). */
  env?: VmEnv;
  /** 'jit', 'interp' (or 'interpreter'), or a prepare function of another engine; default DEFAULT_ENGINE. */
  engine?: 'interp' | 'interpreter' | 'jit' | EngineFn;
  /**
   * Most instructions one run of an unverified program may execute (default: the interpreter's
   * 10,000,000). Verified programs run on the JIT without a budget: the verifier proved they end.
   */
  budget?: number;
  /**
   * Load every program without verifying it (as CollectionOptions.unverified, for every
   * collection of this backend): an explicit opt-out of the verifier gate.
   */
  unverified?: boolean;
  /**
   * The kernel BTF the verifier gate resolves against, as the kernel and `tsbpf verify` do:
   * tp_btf/fentry attach points (SEC flag attach_btf), kfunc calls and kernel symbols, CO-RE
   * targets. Default: the running kernel's (/sys/kernel/btf/vmlinux), read only when a program
   * needs it; without one such programs are refused.
   */
  kernelBtf?: Btf;
}

/** BPF_F_TEST_* flags. */
export const BPF_F_TEST_RUN_ON_CPU = 1;
export const BPF_F_TEST_XDP_LIVE_FRAMES = 2;
export const BPF_F_TEST_SKB_CHECKSUM_COMPLETE = 4;

const SKB_TYPES = new Set([
  'socket_filter',
  'sched_cls',
  'sched_act',
  'cgroup_skb',
  'lwt_in',
  'lwt_out',
  'lwt_xmit',
]);
/** Largest raw tracepoint ctx (MAX_BPF_FUNC_ARGS u64s). */
const RAW_TP_MAX_CTX = 12 * 8;

export interface VmBackend extends Backend {
  readonly name: 'vm';
  load(spec: ObjectSpec, options?: CollectionOptions): VmCollection;
}

export function vmBackend(options: VmBackendOptions = {}): VmBackend {
  return {
    name: 'vm',
    load(spec: ObjectSpec, collectionOptions: CollectionOptions = {}): VmCollection {
      return new VmCollection(spec, options, collectionOptions);
    },
  };
}

type RunContext = XdpContext | SkbContext | BytesContext;

/** Map spec of the object → BPF_MAP_CREATE attributes of the VM. */
function vmMapSpec(m: ObjMapSpec): VmMapSpec {
  const name = m.name.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, 15);
  const spec: VmMapSpec = {
    name,
    type: m.typeId,
    keySize: m.keySize,
    valueSize: m.valueSize,
    maxEntries: m.maxEntries,
    flags: m.flags,
    mapExtra: m.mapExtra,
    numaNode: m.numaNode,
  };
  if (m.inner) spec.innerMap = vmMapSpec(m.inner);
  if (m.data) {
    spec.contents = [[new Uint8Array(4), m.data]];
    if (m.frozen) spec.freeze = true;
  }
  return spec;
}

const u32le = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
};

export class VmCollection implements Collection {
  readonly programs: ReadonlyMap<string, VmProgram>;
  readonly maps: ReadonlyMap<string, BpfMap>;
  /** The VM memory every map, context and stack of this collection lives in. */
  readonly memory: AddressSpace;
  readonly runtime: MapRuntime;
  readonly env: VmEnv;
  /** Timers programs have initialised (bpf_timer_*). */
  readonly timers: BaseHelpers['timers'];
  private readonly contexts: RunContext[] = [];
  private closed = false;

  constructor(spec: ObjectSpec, options: VmBackendOptions, collectionOptions: CollectionOptions) {
    this.env = options.env ?? hostEnv();
    this.memory = new AddressSpace();
    const env = this.env;
    this.runtime = new MapRuntime({
      memory: this.memory,
      cpus: options.cpus ?? 1,
      stack: (u) => env.stack(u),
    });
    const rt = this.runtime;

    // `const volatile` and other variables: applied to a copy of the global data.
    const maps = spec.maps.map((m) => (m.data ? { ...m, data: m.data.slice() } : m));
    const copy: ObjectSpec = { ...spec, maps };
    for (const [name, value] of Object.entries(collectionOptions.constants ?? {}))
      setVariable(copy, name, value);

    const vmMaps: VmMap[] = [];
    const byName = new Map<string, BpfMap>();
    try {
      for (const m of maps) {
        if (m.typeId === 0 || m.type.startsWith('unknown'))
          throw new TsbpfError('usage', `map '${m.name}': unknown map type ${m.typeId}`);
        let vm: VmMap;
        try {
          vm = rt.create(vmMapSpec(m));
        } catch (e) {
          if (e instanceof TsbpfError)
            throw new TsbpfError(e.code, `map '${m.name}' (${m.type}): ${e.message}`, e.details);
          throw e;
        }
        vmMaps.push(vm);
        byName.set(m.name, vm);
      }
      // map-in-map initial slots
      maps.forEach((m, i) => {
        if (!m.initialSlots || m.type === 'prog_array') return;
        m.initialSlots.forEach((slot, k) => {
          if (slot?.kind !== 'map') return;
          const inner = byName.get(slot.name) as VmMap | undefined;
          if (!inner) throw new TsbpfError('usage', `map '${m.name}' slot ${k}: no map '${slot.name}'`);
          const outer = vmMaps[i];
          if (outer instanceof ArrayOfMapsMap) outer.set(k, inner);
          else outer.update(u32le(k), u32le(inner.id));
        });
      });

      // Programs
      const wanted = collectionOptions.programs;
      for (const n of wanted ?? []) {
        if (!spec.programs.some((p) => p.name === n))
          throw new TsbpfError(
            'usage',
            `no program '${n}' (have: ${spec.programs.map((p) => p.name).join(', ')})`,
          );
      }
      const toLoad = spec.programs.filter((p) => (wanted ? wanted.includes(p.name) : p.autoload));
      const base = baseHelpers({ env, memory: this.memory, cpu: () => rt.cpu, stack: (u) => env.stack(u) });
      this.timers = base.timers;
      const host = { env, current: () => this.currentContext() };
      const common = new Map<number, HelperFn>([
        ...base.helpers,
        ...mapHelpers(rt, {
          tailCall: (p, ctx) => (p as VmProgram).runTail(ctx),
          tailTarget: (p) => (p instanceof VmProgram ? p.prepared : undefined),
        }),
      ]);
      const tables = {
        xdp: new Map([...common, ...packetHelpers(host, 'xdp')]),
        skb: new Map([...common, ...packetHelpers(host, 'skb')]),
        none: common,
      };
      const engine = resolveEngine(options.engine);
      const unverified = options.unverified === true || collectionOptions.unverified === true;
      const logLevel = collectionOptions.logLevel ?? 0;
      const programs = new Map<string, VmProgram>();
      for (const p of toLoad) {
        const type = p.type === undefined ? undefined : programTypeByName(p.type);
        if (!type)
          throw new TsbpfError(
            'usage',
            `program '${p.name}': SEC("${p.section}") names no program type the VM knows`,
          );
        const kind =
          type.ctx?.struct === 'xdp_md' ? 'xdp' : type.ctx?.struct === '__sk_buff' ? 'skb' : 'none';
        const helpers = tables[kind];
        const kernelBtf = needsKernelBtf(p) ? (options.kernelBtf ?? vmlinuxBtf()) : undefined;
        checkProgram(p, type, helpers, kernelBtf);
        // The gate: the verifier sees the object as the kernel would (maps in ObjectSpec order, the
        // caller's constants in the frozen .rodata, BTF func_info, the kernel's BTF when the program
        // needs it) and the instructions the VM runs.
        // CO-RE against the target kernel's BTF, as the kernel backend (and libbpf) do before load.
        const relocated =
          p.coreRelos.length > 0 && copy.btf && kernelBtf
            ? applyCoreRelocations(p.insns, p.coreRelos, copy.btf, kernelBtf, {
                programs: [{ name: p.name, slot: 0, slots: p.slotCount }],
              }).insns
            : p.insns;
        const log = unverified ? undefined : verifyGate(copy, p, logLevel, kernelBtf, relocated);
        const insns = rt.relocate(relocated, (idx) => vmMaps[idx]);
        const prepared = engine(insns, {
          helpers,
          memory: this.memory,
          inlineMap: (a) => rt.inlineLookup(a),
          verified: !unverified,
          ...(options.budget === undefined ? {} : { budget: options.budget }),
        });
        const prog = new VmProgram(this, p, type, prepared, !unverified, log);
        programs.set(p.name, prog);
      }
      // prog_array initial slots
      maps.forEach((m, i) => {
        if (m.type !== 'prog_array' || !m.initialSlots) return;
        const pa = vmMaps[i] as ProgArrayMap;
        m.initialSlots.forEach((slot, k) => {
          if (slot?.kind !== 'program') return;
          const prog = programs.get(slot.name);
          if (prog) pa.set(k, prog);
        });
      });
      this.programs = programs;
      this.maps = byName;
    } catch (e) {
      rt.close();
      throw e;
    }
  }

  program(name: string): VmProgram {
    const p = this.programs.get(name);
    if (!p)
      throw new TsbpfError(
        'usage',
        `no program '${name}' in the collection (have: ${[...this.programs.keys()].join(', ') || 'none'})`,
      );
    return p;
  }

  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (!m)
      throw new TsbpfError(
        'usage',
        `no map '${name}' in the collection (have: ${[...this.maps.keys()].join(', ') || 'none'})`,
      );
    return m;
  }

  /** The virtual CPU programs run on (per-CPU map values, bpf_get_smp_processor_id). */
  get cpu(): number {
    return this.runtime.cpu;
  }
  set cpu(n: number) {
    this.runtime.setCpu(n);
  }

  /** The context of the run in progress (helpers use it). */
  currentContext(): RunContext | undefined {
    return this.contexts[this.contexts.length - 1];
  }

  /** Runs `fn` with `ctx` as the current context. */
  withContext<T>(ctx: RunContext, fn: () => T): T {
    this.contexts.push(ctx);
    try {
      return fn();
    } finally {
      this.contexts.pop();
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.runtime.close();
  }
}

/**
 * Verifies a program before the VM prepares it: its log when accepted (empty at log level 0), or
 * TsbpfError('verify') with "<program>: <the kernel's sentence>", the C source line when the object
 * has line info, and details { pc, log } (the log at level >= 1, even when logLevel is 0).
 */
function verifyGate(
  spec: ObjectSpec,
  p: ProgramSpec,
  logLevel: 0 | 1 | 2,
  kernelBtf: Btf | undefined,
  insns: readonly Insn[],
): string {
  const extra = { insns, ...(kernelBtf ? { kernelBtf } : {}) };
  const r = verifyProgram(spec, p, { logLevel, ...extra });
  if (r.ok) return r.log;
  const log = logLevel > 0 ? r.log : verifyProgram(spec, p, { logLevel: 1, ...extra }).log;
  const e = r.error ?? { insn: 0, message: 'rejected' };
  const where = e.sourceLine ? `\n${formatSourceLine(e.sourceLine)}` : '';
  throw new TsbpfError('verify', `${p.name}: ${e.message}${where}`, { pc: e.insn, log });
}

function resolveEngine(engine: VmBackendOptions['engine']): EngineFn {
  const e = engine ?? DEFAULT_ENGINE;
  if (e === 'interp' || e === 'interpreter') return prepare;
  if (e === 'jit') return (insns, options) => prepareProgram(insns, { ...options, engine: 'jit' });
  return e;
}

/** Whether verifying `p` needs the kernel's BTF (as `tsbpf verify` decides). */
function needsKernelBtf(p: ProgramSpec): boolean {
  return (
    p.coreRelos.length > 0 ||
    p.sectionFlags.includes('attach_btf') ||
    p.references.some((r) => r.kind === 'kfunc' || r.kind === 'ksym')
  );
}

/**
 * The kernel's load-time refusals the VM repeats: helpers the type may not call; kernel functions
 * the kernel's BTF does not have (or no kernel BTF at all). A kfunc the kernel has loads (the
 * verifier checks the call against its BTF prototype) but its call stops the run with an error: the
 * VM has no kernel functions. A typeless kernel symbol (__ksym) reads as 0, a weak symbol the
 * kernel lacks (the VM has no kernel addresses); typed ones are refused.
 */
function checkProgram(
  p: ProgramSpec,
  type: ProgramType,
  helpers: ReadonlyMap<number, HelperFn>,
  kernelBtf: Btf | undefined,
): void {
  const slots = new Map<number, Insn>();
  let slot = 0;
  for (const insn of p.insns) {
    slots.set(slot, insn);
    slot += insn.code === OPCODE_LD_IMM64 ? 2 : 1;
  }
  for (const r of p.references) {
    if (r.kind !== 'kfunc' && r.kind !== 'ksym') continue;
    const found =
      r.kind === 'kfunc'
        ? kernelBtf !== undefined && kernelBtf.findAllByName(r.extern, 'FUNC').length > 0
        : slots.get(r.pc)?.src === 0;
    if (found) continue;
    const what = r.kind === 'kfunc' ? 'kernel function' : 'kernel symbol';
    const why = r.kind === 'kfunc' && kernelBtf === undefined ? ' (no kernel BTF to find it in)' : '';
    throw new TsbpfError(
      'runtime',
      `program '${p.name}': insn ${r.pc}: ${what} '${r.extern}' does not exist in the VM${why}`,
      {
        pc: r.pc,
        errno: EINVAL,
      },
    );
  }
  for (const insn of p.insns) {
    if (insn.code !== (BPF_JMP | BPF_CALL | BPF_K) || insn.src !== 0) continue;
    const id = insn.imm;
    const h = helperById(id);
    const name = h ? `bpf_${h.name}#${id}` : `#${id}`;
    const pc = (insn as { pc?: number }).pc ?? 0;
    if (!h) {
      throw new TsbpfError('runtime', `program '${p.name}': ${pc}: invalid func unknown${name}`, {
        pc,
        errno: EINVAL,
      });
    }
    if (type.helpers && !type.helpers.includes(id)) {
      throw new TsbpfError(
        'runtime',
        `program '${p.name}': ${pc}: program of this type cannot use helper ${name}`,
        {
          pc,
          errno: EINVAL,
        },
      );
    }
    if (!helpers.has(id)) {
      throw new TsbpfError(
        'runtime',
        `program '${p.name}': ${pc}: the VM does not implement helper ${name}`,
        {
          pc,
          errno: EINVAL,
        },
      );
    }
  }
}

/** Result of `trigger`: r0 and the context after the run. */
export interface TriggerResult {
  r0: bigint;
  ctx: Uint8Array;
}

export class VmProgram implements Program {
  readonly name: string;
  readonly type: string;
  /** The id a prog_array update takes as the program's "fd". */
  readonly id: number;
  constructor(
    private readonly collection: VmCollection,
    readonly spec: ProgramSpec,
    readonly typeInfo: ProgramType,
    /** The program as its engine prepared it. */
    readonly prepared: PreparedProgram,
    /** Whether tsbpf's verifier accepted the program (false: loaded with `unverified: true`). */
    readonly verified = false,
    /** The verifier's log when the collection was loaded with logLevel > 0 ('' otherwise). */
    readonly verifierLog = '',
  ) {
    this.name = spec.name;
    this.type = typeInfo.name;
    this.id = collection.runtime.registerProgram(this);
  }

  /** A tail call into this program: same context, same packet. */
  runTail(ctx: bigint): bigint {
    const cur = this.collection.currentContext();
    const packet = cur instanceof SkbContext ? cur.packet : undefined;
    return this.prepared.run({ r1: ctx, ...(packet ? { packet } : {}) }).r0;
  }

  private live(): void {
    if (this.collection.isClosed)
      throw new TsbpfError('usage', `program '${this.name}': the collection is closed`);
  }

  /** BPF_PROG_TEST_RUN, as the kernel runs this program type. */
  testRun(options: TestRunOptions = {}): TestRunResult {
    this.live();
    const t = this.type;
    if (t === 'xdp') return this.testRunXdp(options);
    if (SKB_TYPES.has(t)) return this.testRunSkb(options);
    if (t === 'raw_tracepoint') return this.testRunRawTp(options);
    if (t === 'syscall') return this.testRunSyscall(options);
    if (this.typeInfo.testRun === true)
      throw new TsbpfError('usage', `the VM does not implement BPF_PROG_TEST_RUN for ${t} programs yet`, {
        errno: ENOTSUPP,
      });
    throw testRunError(ENOTSUPP, `${t} programs cannot be test-run (use trigger() to run them in the VM)`);
  }

  /** Runs the program `repeat` times (the state carries over, as in the kernel); retval of the last. */
  private repeatRun(
    ctx: RunContext,
    repeat: number,
    packet?: { base: number; length: number },
  ): { retval: number; durationNs: number } {
    const n = Math.max(1, repeat);
    const r1 = ctx.address;
    const input = packet ? { r1, packet } : { r1 };
    return this.collection.withContext(ctx, () => {
      let r0 = 0n;
      const p = this.prepared;
      const t0 = process.hrtime.bigint();
      if (p.runRepeat) r0 = p.runRepeat(input, n).r0;
      else for (let i = 0; i < n; i++) r0 = p.run(input).r0;
      const dt = process.hrtime.bigint() - t0;
      return { retval: Number(r0 & 0xffffffffn), durationNs: Number(dt / BigInt(n)) };
    });
  }

  private checkRepeat(options: TestRunOptions): number {
    const repeat = options.repeat ?? 1;
    if (!Number.isInteger(repeat) || repeat < 0 || repeat > 0xffffffff)
      throw new TsbpfError('usage', `repeat must be an unsigned 32-bit integer, not ${repeat}`);
    return repeat;
  }

  private finishData(data: Uint8Array, options: TestRunOptions, inLen: number): Uint8Array {
    const room = options.dataOutSize ?? inLen + 256;
    if (data.length > room)
      throw testRunError(ENOSPC, `data_out needs ${data.length} bytes; dataOutSize is ${room}`);
    return data;
  }

  private testRunXdp(options: TestRunOptions): TestRunResult {
    const flags = options.flags ?? 0;
    if (flags & ~BPF_F_TEST_XDP_LIVE_FRAMES) throw testRunError(EINVAL, `flags 0x${flags.toString(16)}`);
    if (flags & BPF_F_TEST_XDP_LIVE_FRAMES)
      throw new TsbpfError(
        'usage',
        'BPF_F_TEST_XDP_LIVE_FRAMES: the VM has no network devices to send frames to',
      );
    if (options.cpu) throw testRunError(EINVAL, 'cpu is only for BPF_F_TEST_RUN_ON_CPU');
    const repeat = this.checkRepeat(options);
    const data = options.data ?? new Uint8Array(0);
    const x = new XdpContext(this.collection.memory, data, options.ctx, this.collection.env);
    try {
      const { retval, durationNs } = this.repeatRun(x, repeat);
      const out = x.output();
      const result: TestRunResult = {
        retval,
        data: this.finishData(out.data, options, data.length),
        durationNs,
      };
      if (out.ctx) result.ctx = out.ctx;
      return result;
    } finally {
      x.free();
    }
  }

  private testRunSkb(options: TestRunOptions): TestRunResult {
    const flags = options.flags ?? 0;
    if (flags & ~BPF_F_TEST_SKB_CHECKSUM_COMPLETE || options.cpu)
      throw testRunError(EINVAL, `flags 0x${flags.toString(16)} / cpu ${options.cpu ?? 0}`);
    const repeat = this.checkRepeat(options);
    const data = options.data ?? new Uint8Array(0);
    const s = new SkbContext(this.collection.memory, this.type, data, options.ctx, this.collection.env);
    try {
      const { retval, durationNs } = this.repeatRun(s, repeat, s.packet);
      const out = s.output();
      const result: TestRunResult = {
        retval,
        data: this.finishData(out.data, options, data.length),
        durationNs,
      };
      if (out.ctx) result.ctx = out.ctx;
      return result;
    } finally {
      s.free();
    }
  }

  private testRunRawTp(options: TestRunOptions): TestRunResult {
    if (options.data !== undefined || options.dataOutSize !== undefined)
      throw testRunError(EINVAL, 'raw_tracepoint test runs take no data');
    if (options.repeat) throw testRunError(EINVAL, 'raw_tracepoint test runs take no repeat');
    const flags = options.flags ?? 0;
    if (flags & ~BPF_F_TEST_RUN_ON_CPU) throw testRunError(EINVAL, `flags 0x${flags.toString(16)}`);
    const cpu = options.cpu ?? 0;
    if (!(flags & BPF_F_TEST_RUN_ON_CPU) && cpu !== 0)
      throw testRunError(EINVAL, 'cpu without BPF_F_TEST_RUN_ON_CPU');
    const ctx = options.ctx ?? new Uint8Array(0);
    if (ctx.length > RAW_TP_MAX_CTX)
      throw testRunError(EINVAL, `ctx of ${ctx.length} bytes: at most ${RAW_TP_MAX_CTX}`);
    const rt = this.collection.runtime;
    const before = rt.cpu;
    if (flags & BPF_F_TEST_RUN_ON_CPU) {
      if (cpu >= rt.cpus)
        throw new TsbpfError('usage', `BPF_PROG_TEST_RUN: ENXIO (no CPU ${cpu})`, { errno: 6 });
      rt.setCpu(cpu);
    }
    const c = new BytesContext(this.collection.memory, ctx, 'bpf_raw_tracepoint_args', false);
    try {
      const r0 = this.collection.withContext(
        c,
        () => this.prepared.run({ r1: ctx.length ? c.address : 0n }).r0,
      );
      return { retval: Number(r0 & 0xffffffffn), data: new Uint8Array(0), durationNs: 0 };
    } finally {
      c.free();
      rt.setCpu(before);
    }
  }

  private testRunSyscall(options: TestRunOptions): TestRunResult {
    if (options.data !== undefined || options.dataOutSize !== undefined)
      throw testRunError(EINVAL, 'syscall test runs take their argument in ctx, not data');
    if (options.repeat || options.flags || options.cpu)
      throw testRunError(EINVAL, 'syscall test runs take no repeat, flags or cpu');
    const ctx = options.ctx ?? new Uint8Array(0);
    if (ctx.length > 0xffff) throw testRunError(E2BIG, `ctx of ${ctx.length} bytes: at most 65535`);
    const c = new BytesContext(this.collection.memory, ctx, 'syscall ctx', true);
    try {
      const r0 = this.collection.withContext(
        c,
        () => this.prepared.run({ r1: ctx.length ? c.address : 0n }).r0,
      );
      const result: TestRunResult = {
        retval: Number(r0 & 0xffffffffn),
        data: new Uint8Array(0),
        durationNs: 0,
      };
      if (ctx.length) result.ctx = c.bytes();
      return result;
    } finally {
      c.free();
    }
  }

  /**
   * Runs the program once with `ctx` as its context, as if its hook had fired (tracepoint record,
   * pt_regs, perf event data, raw tracepoint args...): any program type, no test-run rules. r0 in
   * full and the context afterwards.
   */
  trigger(options: { ctx?: Uint8Array; cpu?: number } = {}): TriggerResult {
    this.live();
    const rt = this.collection.runtime;
    const before = rt.cpu;
    if (options.cpu !== undefined) rt.setCpu(options.cpu);
    const ctx = options.ctx ?? new Uint8Array(0);
    const c = new BytesContext(
      this.collection.memory,
      ctx,
      `${this.typeInfo.ctx?.struct ?? this.type} ctx`,
      true,
    );
    try {
      const r0 = this.collection.withContext(
        c,
        () => this.prepared.run({ r1: ctx.length ? c.address : 0n }).r0,
      );
      return { r0, ctx: c.bytes() };
    } finally {
      c.free();
      rt.setCpu(before);
    }
  }

  toString(): string {
    return `VmProgram(${this.name}, ${this.type})`;
  }
}
