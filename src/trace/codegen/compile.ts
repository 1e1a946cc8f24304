/**
 * The tracing code generator: a typed AST (compileFrontEnd's Analysis) → eBPF programs and maps,
 * packaged as an ObjectSpec both backends load, plus the layouts the runtime decodes (records.ts).
 *
 * Conventions of the generated code:
 * - r6 = ctx, r7 = the per-CPU scratch value (SCRATCH_MAP, looked up at entry), r9 = the main frame's
 *   frame pointer inside for-loop callbacks; r0-r5 are temporaries; scalar results land in r0.
 * - Scalar variables live in 8-byte stack slots of the probe's main frame; strings, tuples, keys,
 *   records and other memory values live in scratch regions at fixed offsets (one per use site).
 */
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Btf } from '../../btf/btf.js';
import type { BtfExt } from '../../btf/ext.js';
import type { BtfType } from '../../btf/types.js';
import { helperId } from '../../catalog/helpers.js';
import { mapTypeByName } from '../../catalog/map-types.js';
import {
  HARDWARE_EVENTS,
  PERF_TYPE_HARDWARE,
  PERF_TYPE_SOFTWARE,
  perfEventByName,
  SOFTWARE_EVENTS,
} from '../../catalog/perf-events.js';
import { CTX_STRUCTS } from '../../catalog/program-types.js';
import { matchSection } from '../../catalog/sections.js';
import { type Insn, slots } from '../../isa/insn.js';
import {
  BPF_ADD,
  BPF_ALU,
  BPF_AND,
  BPF_ARSH,
  BPF_DIV,
  BPF_END,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JNE,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_LSH,
  BPF_MOD,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_SUB,
  BPF_TO_BE,
  BPF_XOR,
} from '../../isa/opcodes.js';
import type { MapSpec } from '../../object/maps.js';
import type { ObjectSpec, ProgramSpec } from '../../object/spec.js';
import type { Analysis, MapInfo } from '../analyse.js';
import { blockEnds, configValues, PROBE_TYPE_NAMES, parseFormat, stmtEnds } from '../analyse.js';
import type { Block, Call, Expr, MapRef, Probe, Stmt } from '../ast.js';
import type { Loc } from '../diagnostics.js';
import { formatDiagnostic, TraceError } from '../diagnostics.js';
import { type ProbeSpec, probeName } from '../probes.js';
import { signalNumber } from '../signals.js';
import { type StructField, sizeOf, type TraceType, type TypeProvider } from '../types.js';
import { Asm } from './emit.js';
import { isScalarType, layoutOf } from './layout.js';
import {
  Action,
  type ActionFormat,
  type ActionKind,
  type AttachSpec,
  alignUp,
  type CompiledScript,
  GLOBALS,
  GLOBALS_MAP,
  HEADER_SIZE,
  JOIN_ARG_SIZE,
  JOIN_MAX_ARGS,
  LOSS_MAP,
  type MapLayout,
  type ProbeInfo,
  RINGBUF_MAP,
  SCRATCH_MAP,
  TSERIES,
  type TseriesAgg,
  type TseriesParams,
  type ValueKind,
  type ValueLayout,
} from './records.js';

export interface CodegenOptions {
  /** Kernel types (BTF, tracepoint formats): needed for struct field offsets resolved by name. */
  types?: TypeProvider;
  /** ncpus builtin (default: os.availableParallelism()). */
  ncpus?: number;
  /** Expands wildcard attach points (tracepoint:syscalls:sys_enter_*) to concrete specs. */
  expand?: (spec: ProbeSpec) => ProbeSpec[];
  /** Ring buffer size in bytes (power of 2 multiple of the page size). */
  ringbufSize?: number;
  /** Default max_strlen for str() (bpftrace 0.17: 64). */
  maxStrlen?: number;
  /** Object name. */
  name?: string;
  /** Positional parameters ($1...), as given on the command line. */
  positionalArgs?: string[];
  /** Resolves a kernel symbol for kaddr(). */
  ksym?: (name: string) => bigint | undefined;
  /**
   * BPFTRACE_DUMMY_TS_MAP: the scalar map (`@ts`) whose u64 value tseries() takes as the time instead of
   * the clock, so that tests can drive time.
   */
  dummyTsMap?: string;
}

// Helper ids come from the catalog; the names this generator calls are listed once here.
const HELPER_NAMES = [
  'map_lookup_elem',
  'map_update_elem',
  'map_delete_elem',
  'probe_read',
  'get_prandom_u32',
  'get_smp_processor_id',
  'get_current_pid_tgid',
  'get_current_uid_gid',
  'get_current_comm',
  'get_stackid',
  'get_current_task',
  'get_numa_node_id',
  'probe_read_str',
  'get_current_cgroup_id',
  'send_signal',
  'probe_read_user',
  'probe_read_kernel',
  'probe_read_user_str',
  'probe_read_kernel_str',
  'jiffies64',
  'ktime_get_boot_ns',
  'ktime_get_tai_ns',
  'ringbuf_output',
  'for_each_map_elem',
  'loop',
  'get_func_ip',
  'map_lookup_percpu_elem',
] as const;
const H = Object.fromEntries(HELPER_NAMES.map((n) => [n, helperId(n)])) as Record<
  (typeof HELPER_NAMES)[number],
  number
>;

/** x86-64 struct pt_regs offsets, from the kprobe context layout in the catalog. */
const PT_REGS: Readonly<Record<string, number>> = Object.fromEntries(
  CTX_STRUCTS.pt_regs.fields.map(([name, offset]) => [name, offset]),
);
const ARG_REGS = ['di', 'si', 'dx', 'cx', 'r8', 'r9'];

/** Largest per-CPU value the kernel allocates (PCPU_MIN_UNIT_SIZE). */
const MAX_SCRATCH = 32768;

type StructType = TraceType & { kind: 'struct' };

/** A memory value's place. */
type Place =
  | { kind: 'ctx'; off: number }
  | { kind: 'scratch'; off: number }
  /** An address (kernel or user memory) held in a stack slot, plus a constant offset. */
  | { kind: 'mem'; slot: number; off: number; user: boolean | undefined };

interface Loop {
  brk: number;
  cont: number;
}

interface Frame {
  /** Register the probe's scalar variables are addressed from (10 in main, 9 in callbacks). */
  varBase: number;
  /** Next free temporary stack offset (negative, own frame) and the free list. */
  next: number;
  free: number[];
  min: number;
  callback: boolean;
  loops: Loop[];
  exitLabel: number;
}

interface PendingCallback {
  label: number;
  stmt: Stmt & { kind: 'For' };
  /** range: bpf_loop over `for ($i : a..b)` with bounds the verifier cannot know (startVar holds a). */
  kind: 'for' | 'count' | 'range';
  startVar?: string;
  /** The map iterated (for, count). */
  map?: MapLayout;
  kvOff: number;
  /** Main-frame stack slot of the saved ctx pointer. */
  ctxSlot: number;
  /** Main-frame slot of the counter (count callbacks). */
  counterSlot?: number;
}

const fits32 = (v: bigint) => v >= -(1n << 31n) && v < 1n << 31n;

/** Compiles an analysed script. Throws TraceError for what cannot be lowered. */
export function compileScript(analysis: Analysis, options: CodegenOptions = {}): CompiledScript {
  return new ScriptCompiler(analysis, options).run();
}

class ScriptCompiler {
  readonly maps: MapLayout[] = [];
  readonly mapSpecs: MapSpec[] = [];
  readonly actions: ActionFormat[] = [];
  readonly probes: ProbeInfo[] = [];
  readonly programs: ProgramSpec[] = [];
  readonly stackMaps: CompiledScript['stackMaps'] = [];
  readonly warnings: string[] = [];
  readonly mapByName = new Map<string, MapLayout>();
  scratchSize = 8;
  usesElapsed = false;
  readonly callbacks = new Map<string, number[]>();
  readonly ncpus: number;
  /** Loop bound over per-CPU values (the kernel's possible CPUs, at least ncpus). */
  readonly possibleCpus: number;
  readonly maxStrlen: number;

  constructor(
    readonly analysis: Analysis,
    readonly options: CodegenOptions,
  ) {
    this.ncpus = options.ncpus ?? defaultCpus();
    this.possibleCpus = Math.max(this.ncpus, possibleCpus());
    const ms = analysis.config.get('max_strlen');
    this.maxStrlen = typeof ms === 'bigint' ? Number(ms) : (options.maxStrlen ?? 64);
  }

  run(): CompiledScript {
    // Fixed maps first: ringbuf 0, loss counter 1, globals 2, scratch 3.
    this.addMapSpec(RINGBUF_MAP, 'ringbuf', 0, 0, this.options.ringbufSize ?? 1 << 20);
    this.addMapSpec(LOSS_MAP, 'array', 4, 8, 1);
    this.addMapSpec(GLOBALS_MAP, 'array', 4, GLOBALS.size, 1);
    this.addMapSpec(SCRATCH_MAP, 'percpu_array', 4, 8, 1);
    for (const info of this.analysis.maps.values()) {
      if (info.value.kind === 'none') continue;
      this.declareMap(info);
    }
    for (const probe of this.analysis.program.probes) this.compileProbe(probe);
    let init: string | undefined;
    if (this.usesElapsed) {
      init = 'bt_init';
      this.programs.push(this.initProgram(init));
    }
    const scratch = this.mapSpecs[3] as MapSpec;
    scratch.valueSize = alignUp(this.scratchSize, 8);
    if (scratch.valueSize > MAX_SCRATCH)
      throw this.fail(
        `the script needs ${scratch.valueSize} bytes of per-CPU scratch memory (at most ${MAX_SCRATCH}): use fewer or shorter strings`,
      );
    const { btf, btfExt } = this.funcBtf();
    const spec: ObjectSpec = {
      name: this.options.name ?? 'bpftrace',
      bigEndian: false,
      license: 'GPL',
      kernelVersion: 0,
      programs: this.programs,
      subprograms: [],
      maps: this.mapSpecs,
      variables: [],
      externs: [],
      btf,
      btfExt,
      warnings: [],
    };
    return {
      spec,
      maps: this.maps,
      actions: this.actions,
      probes: this.probes,
      init,
      ringbuf: RINGBUF_MAP,
      stackMaps: this.stackMaps,
      config: this.analysis.config,
      warnings: this.warnings,
    };
  }

  /**
   * BTF FUNC types and func_info for programs with bpf_for_each_map_elem callbacks (the kernel wants
   * func_info for every subprogram). Each program's functions[0].section is a unique key into btfExt.
   */
  funcBtf(): { btf: Btf | undefined; btfExt: BtfExt | undefined } {
    if (![...this.callbacks.values()].some((c) => c.length > 0)) return { btf: undefined, btfExt: undefined };
    const types: BtfType[] = [
      { id: 0, kind: 'UNKN', name: '' },
      { id: 1, kind: 'INT', name: 'long', size: 8, encoding: 1, bitsOffset: 0, bits: 64 },
      { id: 2, kind: 'PTR', name: '', type: 0 },
      { id: 3, kind: 'FUNC_PROTO', name: '', returnType: 1, params: [{ name: 'ctx', type: 2 }] },
      {
        id: 4,
        kind: 'FUNC_PROTO',
        name: '',
        returnType: 1,
        params: ['map', 'key', 'value', 'data'].map((n) => ({ name: n, type: 2 })),
      },
    ];
    const funcInfo: BtfExt['funcInfo'] = [];
    for (const prog of this.programs) {
      const starts = this.callbacks.get(prog.name) ?? [];
      const key = `${prog.section}#${prog.name}`;
      const fn0 = prog.functions[0];
      if (fn0) fn0.section = key;
      const records = [{ insnOff: 0, typeId: types.length }];
      types.push({ id: types.length, kind: 'FUNC', name: prog.name, type: 3, linkage: 1 });
      starts.forEach((slot, i) => {
        records.push({ insnOff: slot * 8, typeId: types.length });
        types.push({ id: types.length, kind: 'FUNC', name: `${prog.name}_cb${i}`, type: 4, linkage: 0 });
      });
      funcInfo.push({ section: key, records });
    }
    const btf = new Btf({ types });
    const btfExt: BtfExt = {
      endianness: 'little',
      hdrLen: 32,
      funcInfoRecSize: 8,
      lineInfoRecSize: 16,
      coreReloRecSize: 16,
      funcInfo,
      lineInfo: [],
      coreRelos: [],
    };
    return { btf, btfExt };
  }

  fail(message: string, loc?: Loc): TraceError {
    return new TraceError(
      [{ severity: 'error', message, ...(loc ? { loc } : {}) }],
      this.analysis.diagnostics.source,
    );
  }

  addMapSpec(name: string, type: string, keySize: number, valueSize: number, maxEntries: number): number {
    const t = mapTypeByName(type);
    this.mapSpecs.push({
      name,
      kind: 'legacy',
      section: 'maps',
      sectionOffset: 0,
      type,
      typeId: t?.id ?? 0,
      keySize,
      valueSize,
      maxEntries,
      flags: 0,
      numaNode: 0,
      mapExtra: 0n,
      pinning: 'none',
      keyTypeId: 0,
      valueTypeId: 0,
      frozen: false,
    });
    return this.mapSpecs.length - 1;
  }

  layout(t: TraceType, top: boolean): ValueLayout {
    return layoutOf(t, top, {
      stackMap: (user, mode, limit) => this.stackMap(user, mode, limit),
      struct: (tag, name) => this.lookupStruct(tag, name),
      enumValues: (name) => this.enumValues(name),
    });
  }

  private readonly enumTables = new Map<string, Record<string, string> | undefined>();

  /** The script's or the kernel's enum `name` as value → constant (the first constant of a value wins). */
  enumValues(name: string): Record<string, string> | undefined {
    if (this.enumTables.has(name)) return this.enumTables.get(name);
    let variants: { name: string; value: bigint }[] | undefined = [];
    for (const [constName, v] of this.analysis.enums)
      if (v.enumName === name) variants.push({ name: constName, value: v.value });
    if (variants.length === 0) variants = this.options.types?.enumVariants?.(name);
    let table: Record<string, string> | undefined;
    if (variants && variants.length > 0) {
      table = {};
      for (const v of variants) table[v.value.toString()] ??= v.name;
    }
    this.enumTables.set(name, table);
    return table;
  }

  lookupStruct(tag: 'struct' | 'union', name: string): StructType | undefined {
    return this.analysis.structs.get(`${tag} ${name}`) ?? this.options.types?.struct?.(tag, name);
  }

  stackMap(user: boolean, mode: string, limit: number): string {
    const name = `stack_${user ? 'u' : 'k'}${mode === 'bpftrace' ? '' : `_${mode}`}_${limit}`;
    if (!this.stackMaps.some((s) => s.name === name)) {
      this.stackMaps.push({ name, user, mode, limit });
      this.addMapSpec(name, 'stack_trace', 4, 8 * Math.max(1, limit), 4096);
    }
    return name;
  }

  stackMapIndex(name: string): number {
    return this.mapSpecs.findIndex((m) => m.name === name);
  }

  declareMap(info: MapInfo): MapLayout {
    const existing = this.mapByName.get(info.name);
    if (existing) return existing;
    const keyed = info.key !== undefined;
    const key: ValueLayout = keyed
      ? this.layout(info.key as TraceType, true)
      : { kind: 'int', size: 8, align: 8, signed: false };
    let kind: ValueKind = 'plain';
    let signed = false;
    let value: ValueLayout;
    const v = info.value;
    if (v.kind === 'aggregate' && v.fn === 'tseries') {
      kind = 'tseries';
      signed = v.signed;
      const u64: ValueLayout = { kind: 'int', size: 8, align: 8, signed: false };
      value = {
        kind: 'tuple',
        size: TSERIES.size,
        align: 8,
        fields: [
          { offset: TSERIES.value, layout: { kind: 'int', size: 8, align: 8, signed: v.signed } },
          { offset: TSERIES.meta, layout: u64 },
          { offset: TSERIES.epoch, layout: u64 },
        ],
      };
    } else if (v.kind === 'aggregate') {
      kind = v.fn;
      signed = v.signed;
      const i64: ValueLayout = { kind: 'int', size: 8, align: 8, signed: v.signed };
      if (kind === 'min' || kind === 'max' || kind === 'avg' || kind === 'stats')
        value = {
          kind: 'tuple',
          size: 16,
          align: 8,
          fields: [
            { offset: 0, layout: i64 },
            { offset: 8, layout: { kind: 'int', size: 8, align: 8, signed: false } },
          ],
        };
      else
        value =
          kind === 'count' || kind === 'hist' || kind === 'lhist'
            ? { kind: 'int', size: 8, align: 8, signed: false }
            : i64;
    } else {
      value = this.layout(v, true);
    }
    const bucketOffset =
      kind === 'hist' || kind === 'lhist' || kind === 'tseries'
        ? keyed
          ? alignUp(key.size, 8)
          : 0
        : undefined;
    const keySize = bucketOffset !== undefined ? bucketOffset + 8 : Math.max(1, key.size);
    const perCpu = kind !== 'plain';
    let mapType = perCpu ? 'percpu_hash' : 'hash';
    if (info.mapType) {
      const t = info.mapType.replace('percpuhash', 'percpu_hash').replace('lruhash', 'lru_hash');
      mapType = t === 'percpulru_hash' ? 'lru_percpu_hash' : t === 'percpuarray' ? 'percpu_array' : t;
    }
    const maxEntries = Number(
      info.maxEntries ?? BigInt(Number(this.analysis.config.get('max_map_keys') ?? 4096n)),
    );
    const mapName = kernelMapName(info.name);
    const valueSize = Math.max(1, value.size);
    const mapIndex = this.addMapSpec(mapName, mapType, keySize, valueSize, maxEntries);
    const layout: MapLayout = {
      name: info.name,
      mapName,
      mapIndex,
      mapType,
      maxEntries,
      keyed,
      key,
      keySize,
      ...(bucketOffset !== undefined ? { bucketOffset } : {}),
      kind,
      signed,
      value,
      valueSize,
      perCpu,
    };
    if (kind === 'tseries') layout.tseries = this.tseriesParams(info.name);
    this.maps.push(layout);
    this.mapByName.set(info.name, layout);
    return layout;
  }

  /**
   * The literal arguments of the script's tseries() calls on map `name` (analyse checked each): one map
   * has one interval, window and aggregation, as in bpftrace.
   */
  tseriesParams(name: string): TseriesParams {
    let found: TseriesParams | undefined;
    const visit = (n: unknown): void => {
      if (n === null || typeof n !== 'object') return;
      if (Array.isArray(n)) {
        for (const x of n) visit(x);
        return;
      }
      const o = n as { kind?: string; map?: { name?: string }; value?: Expr };
      const call = o.value;
      if (
        o.kind === 'AssignMap' &&
        o.map?.name === name &&
        call?.kind === 'Call' &&
        call.name === 'tseries'
      ) {
        const agg = call.args[3];
        const params: TseriesParams = {
          intervalNs: constValue(call.args[1]) ?? 1n,
          numIntervals: constValue(call.args[2]) ?? 1n,
          agg: agg?.kind === 'String' ? (agg.value as TseriesAgg) : 'none',
        };
        if (
          found &&
          (found.intervalNs !== params.intervalNs ||
            found.numIntervals !== params.numIntervals ||
            found.agg !== params.agg)
        )
          throw this.fail('Different tseries bounds in a single map unsupported', call.loc);
        found ??= params;
        return;
      }
      for (const [k, v] of Object.entries(o)) if (k !== 'type' && k !== 'loc') visit(v);
    };
    visit(this.analysis.program);
    return found ?? { intervalNs: 1n, numIntervals: 1n, agg: 'none' };
  }

  /** A source location as bpftrace's diagnostics show it: `stdin:1:9-62`, the line, a caret line. */
  site(loc: Loc): { where: string; context: string } {
    const source = this.analysis.diagnostics.source;
    const [head, ...context] = formatDiagnostic({ severity: 'error', message: '', loc }, source).split('\n');
    return { where: (head ?? '').replace(/: ERROR: $/, ''), context: context.join('\n') };
  }

  addAction(
    action: ActionKind,
    format: string,
    args: { offset: number; layout: ValueLayout }[],
    size: number,
  ): ActionFormat {
    const a: ActionFormat = { index: this.actions.length, action, format, args, size };
    this.actions.push(a);
    return a;
  }

  /** Attach specs of a probe, wildcards expanded by the resolver. */
  /**
   * Attach specs of a probe, wildcards expanded by the resolver. As bpftrace's probe expansion, an attach
   * point without wildcards that names no tracepoint or raw tracepoint is missing: with the `missing_probes`
   * config `error` (the default) an error, `warn` a warning, `ignore` nothing; the others still attach. A
   * probe left with no attach point is an error (`warn`: a warning, the probe removed).
   */
  expandSpecs(probe: Probe): ProbeSpec[] {
    const out: ProbeSpec[] = [];
    const missing = String(this.analysis.config.get('missing_probes') ?? 'error');
    const diags = this.analysis.diagnostics;
    for (const ap of probe.attachPoints) {
      const s = ap.spec;
      if (s.wildcard && this.options.expand) out.push(...this.options.expand(s));
      else if ((s.provider === 'tracepoint' || s.provider === 'rawtracepoint') && this.options.expand) {
        const found = this.options.expand(s);
        out.push(...found);
        // A raw tracepoint without a module matches any module (bpftrace expands it as a wildcard).
        if (found.length > 0 || (s.provider === 'rawtracepoint' && s.module === undefined)) continue;
        const target = s.provider === 'tracepoint' ? s.target : s.module;
        const msg = `No matches for ${s.provider} ${target !== undefined ? `${target}:` : ''}${s.func ?? ''}`;
        if (missing === 'warn') diags.warning(`${msg}. Skipping.`, ap.loc);
        else if (missing !== 'ignore') throw this.fail(`${msg}.`, ap.loc);
      } else out.push(s);
    }
    if (out.length === 0 && probe.attachPoints.length > 0) {
      const loc = probe.attachPoints[0]?.loc ?? probe.loc;
      if (missing === 'warn')
        diags.warning(
          'Probe has no valid attach points. It is being removed which may cause issues with program behavior.',
          loc,
        );
      else if (missing !== 'ignore') throw this.fail('Probe has no valid attach points.', loc);
    }
    return out;
  }

  compileProbe(probe: Probe): void {
    const specs = this.expandSpecs(probe);
    if (specs.length === 0) return;
    // One program per attach point when the body depends on it (args, probe, func); else one shared.
    const perAttach = usesProbeSpecific(probe);
    const groups: ProbeSpec[][] = perAttach ? specs.map((s) => [s]) : groupByProgramType(specs);
    for (const group of groups) {
      const first = group[0] as ProbeSpec;
      let unsupported: string | undefined;
      try {
        sectionFor(first);
      } catch (e) {
        unsupported = (e as Error).message;
      }
      if (unsupported) throw this.fail(unsupported, probe.attachPoints[0]?.loc);
      const progName = `p${this.programs.length}_${sanitize(probeName(first))}`.slice(0, 60);
      const infos: ProbeInfo[] = group.map((s) => {
        const info: ProbeInfo = {
          index: this.probes.length,
          name: probeName(s),
          provider: s.provider,
          spec: s,
          program: progName,
          attach: attachSpec(s),
        };
        this.probes.push(info);
        return info;
      });
      const pc = new ProgramCompiler(this, probe, first, infos[0] as ProbeInfo);
      const insns = pc.compile();
      const prog = makeProgram(progName, sectionFor(first), insns, this.mapSpecs);
      this.programs.push(prog);
      this.callbacks.set(progName, pc.callbackSlots);
    }
  }

  initProgram(name: string): ProgramSpec {
    const a = new Asm();
    const exit = a.newLabel();
    a.st(4, 10, -4, 0);
    a.ldMap(1, 2);
    a.mov(2, 10);
    a.aluImm(BPF_ADD, 2, -4);
    a.call(H.map_lookup_elem);
    a.jImm(BPF_JEQ, 0, 0, exit);
    a.mov(6, 0);
    a.call(H.ktime_get_boot_ns);
    a.stx(8, 6, GLOBALS.startNs, 0);
    a.bind(exit);
    a.movImm(0, 0);
    a.exit();
    return makeProgram(name, 'raw_tp/bt_init', a.finish(), this.mapSpecs);
  }
}

function defaultCpus(): number {
  try {
    return availableParallelism();
  } catch {
    return 1;
  }
}

/** The kernel's possible CPUs (/sys/devices/system/cpu/possible: "0-N"), 1 when unknown. */
function possibleCpus(): number {
  try {
    const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
    let n = 1;
    for (const part of text.split(',')) n = Math.max(n, Number(part.split('-').at(-1)) + 1);
    return Number.isFinite(n) ? Math.min(n, 8192) : 1;
  } catch {
    return 1;
  }
}

function kernelMapName(name: string): string {
  const base = name === '@' ? 'AT_' : `AT_${name.slice(1)}`;
  return base.replace(/[^A-Za-z0-9_.]/g, '_');
}

function sanitize(s: string): string {
  return s.replace(/[^A-Za-z0-9_]/g, '_');
}

function usesProbeSpecific(probe: Probe): boolean {
  let found = false;
  const visit = (n: unknown): void => {
    if (found || n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      for (const x of n) visit(x);
      return;
    }
    const o = n as { kind?: string; name?: string };
    if (o.kind === 'Identifier' && (o.name === 'args' || o.name === 'probe' || o.name === 'func')) {
      found = true;
      return;
    }
    if (o.kind === 'Call' && (o.name === 'probe' || o.name === 'func')) found = true;
    for (const [k, v] of Object.entries(o)) if (k !== 'type' && k !== 'loc') visit(v);
  };
  visit(probe.block);
  visit(probe.predicate);
  return found;
}

function progTypeOf(s: ProbeSpec): string {
  return sectionFor(s).split('/')[0] as string;
}

function groupByProgramType(specs: ProbeSpec[]): ProbeSpec[][] {
  const m = new Map<string, ProbeSpec[]>();
  for (const s of specs) {
    const k = `${progTypeOf(s)}|${s.provider}`;
    const g = m.get(k);
    if (g) g.push(s);
    else m.set(k, [s]);
  }
  return [...m.values()];
}

/** The SEC() name of the program for a probe (decides its program type). */
function sectionFor(s: ProbeSpec): string {
  switch (s.provider) {
    case 'begin':
    case 'end':
    case 'self':
    case 'test':
    case 'bench':
      return `raw_tp/bt_${s.provider}`;
    case 'tracepoint':
      return `tracepoint/${s.target}/${s.func}`;
    case 'rawtracepoint':
      return `raw_tp/${s.func}`;
    case 'uprobe':
    case 'uretprobe':
    case 'usdt':
      return `${s.provider === 'uretprobe' ? 'uretprobe' : 'uprobe'}/${s.target}:${s.func ?? '0'}`;
    case 'kprobe':
    case 'kretprobe':
      return `${s.provider}/${s.func}`;
    case 'interval':
    case 'profile':
    case 'software':
    case 'hardware':
      return 'perf_event';
    default:
      throw new Error(`${s.provider} probes are not supported by the code generator`);
  }
}

function attachSpec(s: ProbeSpec): AttachSpec {
  switch (s.provider) {
    case 'begin':
      return { kind: 'begin' };
    case 'end':
      return { kind: 'end' };
    case 'tracepoint':
      return { kind: 'tracepoint', category: s.target ?? '', event: s.func ?? '' };
    case 'rawtracepoint':
      return { kind: 'raw_tracepoint', event: s.func ?? '' };
    case 'uprobe':
    case 'uretprobe':
      return {
        kind: 'uprobe',
        path: s.target ?? '',
        ...(s.func !== undefined ? { func: s.func } : {}),
        ...(s.address !== undefined ? { address: s.address } : {}),
        offset: s.offset ?? 0n,
        retprobe: s.provider === 'uretprobe',
      };
    case 'usdt':
      return { kind: 'usdt', path: s.target ?? '', provider: s.ns ?? '', probe: s.func ?? '' };
    case 'kprobe':
    case 'kretprobe':
      return {
        kind: 'kprobe',
        func: s.func ?? '',
        offset: s.offset ?? 0n,
        retprobe: s.provider === 'kretprobe',
      };
    case 'interval':
    case 'profile': {
      const count = s.count ?? 1n;
      if (s.unit === 'hz')
        return {
          kind: 'perf_event',
          type: 1,
          config: 0,
          frequency: Number(count),
          cpus: s.provider === 'interval' ? 'one' : 'all',
        };
      const ns =
        count *
        ({ ns: 1n, us: 1000n, ms: 1000000n, s: 1000000000n } as Record<string, bigint>)[s.unit ?? 'ns']!;
      return {
        kind: 'perf_event',
        type: 1,
        config: 0,
        period: ns,
        cpus: s.provider === 'interval' ? 'one' : 'all',
      };
    }
    case 'software': {
      const ev = perfEventByName(SOFTWARE_EVENTS, s.target ?? '');
      const period = s.count ?? ev?.defaultPeriod ?? 1000000n;
      return { kind: 'perf_event', type: PERF_TYPE_SOFTWARE, config: ev?.config ?? 0, period, cpus: 'all' };
    }
    case 'hardware':
      return {
        kind: 'perf_event',
        type: PERF_TYPE_HARDWARE,
        config: perfEventByName(HARDWARE_EVENTS, s.target ?? '')?.config ?? 0,
        period: s.count ?? 1000000n,
        cpus: 'all',
      };
    default:
      throw new Error(`${s.provider} probes are not supported by the code generator`);
  }
}

function makeProgram(name: string, section: string, insns: Insn[], maps: readonly MapSpec[]): ProgramSpec {
  const m = matchSection(section);
  let pc = 0;
  const decoded = insns.map((i) => {
    const d = { ...i, pc };
    pc += slots(i);
    return d;
  });
  const references: ProgramSpec['references'] = [];
  for (const d of decoded)
    if (d.code === 0x18 && d.src === 5)
      references.push({ kind: 'map', pc: d.pc, map: maps[d.imm]?.name ?? '', mapIndex: d.imm });
  return {
    name,
    section,
    autoload: true,
    type: m?.def.progType,
    typeId: m?.progTypeId ?? 0,
    attachType: m?.def.attachType ?? undefined,
    attachTypeId: m?.attachTypeId ?? 0,
    attachTarget: m?.target,
    sectionDef: m?.def.sec,
    sectionFlags: m?.def.flags ?? [],
    insns: decoded,
    slotCount: pc,
    functions: [{ name, section, start: 0, slotCount: pc, secInsnOff: 0 }],
    references,
    funcInfo: [],
    lineInfo: [],
    coreRelos: [],
    sectionOffset: 0,
    global: true,
  };
}

// =====================================================================================================
// One program

class ProgramCompiler {
  readonly a = new Asm();
  readonly provider: ProbeSpec['provider'];
  /** Scalar variables: main-frame stack offsets. Memory variables: scratch offsets. */
  readonly vars = new Map<string, { scalar: boolean; off: number; size: number }>();
  frame!: Frame;
  mainFrame!: Frame;
  readonly pending: PendingCallback[] = [];
  scratchTop = 0;
  ctxSlot = 0;
  /** Slots where for-each callbacks start (they need BTF func_info). */
  callbackSlots: number[] = [];

  constructor(
    readonly sc: ScriptCompiler,
    readonly probe: Probe,
    readonly spec: ProbeSpec,
    readonly info: ProbeInfo,
  ) {
    this.provider = spec.provider;
  }

  error(msg: string, loc?: Loc): never {
    throw this.sc.fail(msg, loc);
  }

  // ------------------------------------------------------------------------------ allocation

  /** A scratch region of `size` bytes (8-aligned). */
  scratch(size: number): number {
    const off = this.scratchTop;
    this.scratchTop = alignUp(off + Math.max(1, size), 8);
    if (this.scratchTop > this.sc.scratchSize) this.sc.scratchSize = this.scratchTop;
    return off;
  }

  /** A temporary 8-byte slot of the current frame (offset from r10). */
  tmp(): number {
    const f = this.frame;
    const s = f.free.pop();
    if (s !== undefined) return s;
    f.next -= 8;
    if (f.next < -512) this.error('the probe needs more than 512 bytes of stack (expression too complex)');
    f.min = Math.min(f.min, f.next);
    return f.next;
  }

  release(slot: number): void {
    this.frame.free.push(slot);
  }

  newFrame(varBase: number, callback: boolean): Frame {
    return { varBase, next: 0, free: [], min: 0, callback, loops: [], exitLabel: this.a.newLabel() };
  }

  // ------------------------------------------------------------------------------ program

  compile(): Insn[] {
    const a = this.a;
    this.frame = this.newFrame(10, false);
    this.mainFrame = this.frame;
    a.mov(6, 1);
    this.ctxSlot = this.tmp();
    a.stx(8, 10, this.ctxSlot, 6);
    if (this.info.attach.kind !== 'end') this.returnIfExited();
    this.lookupScratch();
    this.prepareVars();
    if (this.probe.predicate) this.cond(this.probe.predicate, this.frame.exitLabel);
    this.block(this.probe.block);
    a.bind(this.frame.exitLabel);
    a.movImm(0, 0);
    a.exit();
    const callbacks: number[] = [];
    while (this.pending.length > 0) {
      const p = this.pending.shift() as PendingCallback;
      callbacks.push(p.label);
      this.emitCallback(p);
    }
    const insns = a.finish();
    this.callbackSlots = callbacks.map((l) => a.labelSlot(l));
    return insns;
  }

  /** r0 = element 0 of the array map at `slot` (NULL cannot happen, but the verifier wants the check). */
  private lookupFirstElement(slot: number): void {
    const a = this.a;
    const k = this.tmp();
    a.st(4, 10, k, 0);
    a.ldMap(1, slot);
    a.mov(2, 10);
    a.aluImm(BPF_ADD, 2, k);
    a.call(H.map_lookup_elem);
    this.release(k);
  }

  /** r0 = the GLOBALS_MAP value. */
  lookupGlobals(): void {
    this.lookupFirstElement(2);
  }

  /** After exit(), later firings do nothing: the runtime may take a while to detach. */
  returnIfExited(): void {
    const a = this.a;
    const go = a.newLabel();
    this.lookupGlobals();
    a.jImm(BPF_JEQ, 0, 0, go);
    a.ldx(8, 1, 0, GLOBALS.exited);
    a.jImm(BPF_JNE, 1, 0, this.frame.exitLabel);
    a.bind(go);
  }

  /** r7 = the scratch map's value (the probe ends if it is missing). */
  lookupScratch(): void {
    const a = this.a;
    this.lookupFirstElement(3);
    a.jImm(BPF_JEQ, 0, 0, this.frame.exitLabel);
    a.mov(7, 0);
  }

  /** Allocates and zeroes every variable of the probe. */
  prepareVars(): void {
    const visit = (n: unknown): void => {
      if (n === null || typeof n !== 'object') return;
      if (Array.isArray(n)) {
        for (const x of n) visit(x);
        return;
      }
      const o = n as { kind?: string; name?: string; type?: TraceType; iterable?: { kind?: string } };
      if (o.kind === 'Variable' && o.name && o.type) this.declareVar(o.name, o.type);
      if (o.kind === 'For' && o.iterable?.kind === 'Map') this.declareVar(RETURNED, I64T);
      if (
        o.kind === 'For' &&
        o.iterable?.kind === 'Range' &&
        !this.constantRange(n as Stmt & { kind: 'For' })
      ) {
        this.declareVar(RETURNED, I64T);
        this.declareVar(this.rangeStart(n as Stmt & { kind: 'For' }), I64T);
      }
      for (const [k, v] of Object.entries(o)) if (k !== 'type' && k !== 'loc') visit(v);
    };
    visit(this.probe.block);
    visit(this.probe.predicate);
    for (const v of this.vars.values()) {
      if (v.scalar) this.a.st(8, 10, v.off, 0);
      else this.zero(7, v.off, v.size);
    }
  }

  declareVar(name: string, t: TraceType): void {
    if (t.kind === 'unknown' && t.what === 'undeclared') return;
    const scalar = isScalarType(t);
    const size = scalar ? 8 : this.sc.layout(t, true).size;
    const key = `${name}|${scalar ? 's' : 'm'}`;
    const cur = this.vars.get(key);
    if (cur) {
      if (!scalar && size > cur.size) {
        cur.off = this.scratch(size);
        cur.size = size;
      }
      return;
    }
    const off = scalar ? this.tmp() : this.scratch(size);
    this.vars.set(key, { scalar, off, size });
  }

  varOf(name: string, t: TraceType | undefined): { scalar: boolean; off: number; size: number } {
    const scalar = isScalarType(t);
    const v =
      this.vars.get(`${name}|${scalar ? 's' : 'm'}`) ?? this.vars.get(`${name}|${scalar ? 'm' : 's'}`);
    if (!v) this.error(`internal: variable ${name} was not allocated`);
    return v;
  }

  // ------------------------------------------------------------------------------ memory helpers

  zero(base: number, off: number, size: number): void {
    let i = 0;
    for (; i + 8 <= size; i += 8) this.a.st(8, base, off + i, 0);
    for (; i + 4 <= size; i += 4) this.a.st(4, base, off + i, 0);
    for (; i < size; i++) this.a.st(1, base, off + i, 0);
  }

  /** Copies `size` bytes (uses r1). */
  copy(dstBase: number, dstOff: number, srcBase: number, srcOff: number, size: number): void {
    let i = 0;
    for (const w of [8, 4, 2, 1]) {
      for (; i + w <= size; i += w) {
        this.a.ldx(w, 1, srcBase, srcOff + i);
        this.a.stx(w, dstBase, dstOff + i, 1);
      }
    }
  }

  /** Extends r`reg` from `size` bytes per signedness. */
  extend(reg: number, size: number, signed: boolean): void {
    if (size >= 8) return;
    const sh = 64 - size * 8;
    if (signed) {
      this.a.aluImm(BPF_LSH, reg, sh);
      this.a.aluImm(BPF_ARSH, reg, sh);
    } else if (size === 4) {
      this.a.raw({ code: BPF_ALU | 0xb0 | 0x08, dst: reg, src: reg, off: 0, imm: 0 }); // w = w (zero-extend)
    } else {
      this.a.aluImm(BPF_AND, reg, (1 << (size * 8)) - 1);
    }
  }

  /** Normalizes r0 to type `t` (truncate + extend). */
  normalize(t: TraceType | undefined): void {
    if (t?.kind === 'int' && t.bits < 64) this.extend(0, t.bits / 8, t.signed);
    else if (t?.kind === 'bool') {
      const l = this.a.newLabel();
      this.a.jImm(BPF_JEQ, 0, 0, l);
      this.a.movImm(0, 1);
      this.a.bind(l);
    }
  }

  // ------------------------------------------------------------------------------ statements

  /** Compiles a block's statements up to the first one after which nothing runs (the kernel rejects dead code). */
  block(b: Block): void {
    if (this.stmts(b)) return;
    if (b.expr) this.discard(b.expr);
  }

  /** True when a statement ended the block (the rest was left out). */
  stmts(b: Block): boolean {
    for (const s of b.stmts) {
      this.stmt(s);
      if (stmtEnds(s)) return true;
    }
    return false;
  }

  discard(e: Expr): void {
    if (isScalarType(e.type)) this.scalar(e);
    else this.agg(e);
  }

  stmt(s: Stmt): void {
    const a = this.a;
    switch (s.kind) {
      case 'ExprStmt':
        this.discard(s.expr);
        return;
      case 'Discard':
        this.discard(s.value);
        return;
      case 'AssignMap':
        this.assignMap(s.map, s.op, s.value);
        return;
      case 'AssignVar':
        this.assignVar(s.variable.name, s.variable.type, s.op, s.value);
        return;
      case 'VarDecl':
        return;
      case 'If': {
        const elseL = a.newLabel();
        const end = a.newLabel();
        this.cond(s.cond, elseL);
        this.block(s.consequent);
        if (s.alternative && !blockEnds(s.consequent)) a.jmp(end);
        a.bind(elseL);
        if (s.alternative) {
          if (s.alternative.kind === 'Block') this.block(s.alternative);
          else this.stmt(s.alternative);
        }
        a.bind(end);
        return;
      }
      case 'Unroll': {
        const n = Number(constValue(s.count) ?? 1n);
        for (let i = 0; i < n; i++) this.block(s.body);
        return;
      }
      case 'While': {
        const top = a.newLabel();
        const end = a.newLabel();
        a.bind(top);
        this.cond(s.cond, end);
        this.frame.loops.push({ brk: end, cont: top });
        this.block(s.body);
        this.frame.loops.pop();
        a.jmp(top);
        a.bind(end);
        return;
      }
      case 'For':
        this.forLoop(s);
        return;
      case 'Jump': {
        const loop = this.frame.loops[this.frame.loops.length - 1];
        if (s.jump === 'return') {
          if (this.frame.callback) {
            // Stop the iteration, and tell the caller to return too.
            a.st(8, this.frame.varBase, this.varOf(RETURNED, I64T).off, 1);
            a.movImm(0, 1);
            a.exit();
          } else a.jmp(this.frame.exitLabel);
          return;
        }
        if (loop) {
          a.jmp(s.jump === 'break' ? loop.brk : loop.cont);
        } else if (this.frame.callback) {
          a.movImm(0, s.jump === 'break' ? 1 : 0);
          a.exit();
        }
        return;
      }
      case 'Import':
        return;
      case 'Block':
        this.block(s);
        return;
    }
  }

  assignVar(name: string, type: TraceType | undefined, op: string, value: Expr): void {
    const v = this.varOf(name, type);
    const base = this.frame.varBase;
    if (v.scalar) {
      if (op === '=') {
        this.scalar(value);
        this.normalize(type);
      } else {
        this.binopScalar(
          op.slice(0, -1),
          () => this.a.ldx(8, 0, base, v.off),
          type ?? I64T,
          value,
          type ?? I64T,
        );
        this.normalize(type);
      }
      this.a.stx(8, base, v.off, 0);
      return;
    }
    const t = type ?? value.type;
    this.storeInto(value, this.sc.layout(t as TraceType, true), 7, v.off);
  }

  // ------------------------------------------------------------------------------ conditions

  /** Jumps to `falseLabel` when `e` is false. */
  cond(e: Expr, falseLabel: number): void {
    const a = this.a;
    if (e.kind === 'Binop' && e.op === '&&') {
      this.cond(e.left, falseLabel);
      this.cond(e.right, falseLabel);
      return;
    }
    if (e.kind === 'Binop' && e.op === '||') {
      const ok = a.newLabel();
      const tryRight = a.newLabel();
      this.cond(e.left, tryRight);
      a.jmp(ok);
      a.bind(tryRight);
      this.cond(e.right, falseLabel);
      a.bind(ok);
      return;
    }
    if (e.kind === 'Unop' && e.op === '!') {
      const skip = a.newLabel();
      this.cond(e.operand, skip);
      a.jmp(falseLabel);
      a.bind(skip);
      return;
    }
    if (
      e.kind === 'Binop' &&
      ['==', '!=', '<', '<=', '>', '>='].includes(e.op) &&
      isScalarType(e.left.type) &&
      isScalarType(e.right.type)
    ) {
      const signed = isSigned(e.left.type) && isSigned(e.right.type);
      const neg: Record<string, number> = {
        '==': BPF_JNE,
        '!=': BPF_JEQ,
        '<': signed ? BPF_JSGE : BPF_JGE,
        '<=': signed ? BPF_JSGT : BPF_JGT,
        '>': signed ? BPF_JSLE : BPF_JLE,
        '>=': signed ? BPF_JSLT : BPF_JLT,
      };
      const rc = constValue(e.right);
      if (rc !== undefined && fits32(rc)) {
        this.scalar(e.left);
        a.jImm(neg[e.op] as number, 0, Number(rc), falseLabel);
        return;
      }
      const slot = this.spillScalar(e.left);
      this.scalar(e.right);
      a.mov(1, 0);
      a.ldx(8, 0, 10, slot);
      this.release(slot);
      a.jReg(neg[e.op] as number, 0, 1, falseLabel);
      return;
    }
    this.scalar(e);
    if (e.type?.kind === 'aggregate' || !isScalarType(e.type)) {
      // handled by scalar()
    }
    a.jImm(BPF_JEQ, 0, 0, falseLabel);
  }

  spillScalar(e: Expr): number {
    this.scalar(e);
    const slot = this.tmp();
    this.a.stx(8, 10, slot, 0);
    return slot;
  }

  // ------------------------------------------------------------------------------ scalar expressions

  /** Evaluates a scalar expression into r0 (64-bit, normalized for its type). */
  scalar(e: Expr): void {
    const a = this.a;
    const c = constValue(e);
    if (c !== undefined && e.kind !== 'Map' && e.kind !== 'Call') {
      a.movImm(0, BigInt.asIntN(64, c));
      return;
    }
    switch (e.kind) {
      case 'Integer':
        a.movImm(0, BigInt.asIntN(64, e.value));
        return;
      case 'Bool':
        a.movImm(0, e.value ? 1 : 0);
        return;
      case 'PositionalParam': {
        const v = this.positional(e.index);
        let n = 0n;
        try {
          n = v === undefined ? 0n : BigInt(v);
        } catch {
          n = 0n;
        }
        a.movImm(0, BigInt.asIntN(64, n));
        return;
      }
      case 'ParamCount':
        a.movImm(0, this.sc.options.positionalArgs?.length ?? 0);
        return;
      case 'Variable': {
        const v = this.varOf(e.name, e.type);
        if (!v.scalar) this.error(`internal: ${e.name} is not a scalar`, e.loc);
        a.ldx(8, 0, this.frame.varBase, v.off);
        return;
      }
      case 'Identifier':
        this.builtin(e.name.replace(/^__builtin_/, ''), e);
        return;
      case 'Map':
        this.readMapScalar(e);
        return;
      case 'Unop':
        this.unop(e);
        return;
      case 'Binop':
        this.binop(e);
        return;
      case 'Ternary': {
        const elseL = a.newLabel();
        const end = a.newLabel();
        if (e.consequent === undefined) {
          this.scalar(e.cond);
          a.jImm(BPF_JNE, 0, 0, end);
          this.scalar(e.alternative);
          a.bind(end);
          return;
        }
        this.cond(e.cond, elseL);
        this.scalar(e.consequent);
        a.jmp(end);
        a.bind(elseL);
        this.scalar(e.alternative);
        a.bind(end);
        return;
      }
      case 'IfExpr': {
        const elseL = a.newLabel();
        const end = a.newLabel();
        this.cond(e.cond, elseL);
        this.blockValue(e.consequent);
        a.jmp(end);
        a.bind(elseL);
        if (e.alternative.kind === 'Block') this.blockValue(e.alternative);
        else this.scalar(e.alternative);
        a.bind(end);
        return;
      }
      case 'BlockExpr':
        this.blockValue(e.block);
        return;
      case 'Call':
        this.call(e, undefined);
        return;
      case 'Sizeof':
      case 'Offsetof':
        a.movImm(0, this.sizeofOffsetof(e));
        return;
      case 'Cast': {
        const from = e.expr.type;
        if (!isScalarType(from)) {
          // (uint32)array: read the first bytes of the value.
          const loc = this.agg(e.expr);
          const n = Math.min(8, sizeOf(e.type as TraceType) ?? 8, loc.size);
          a.ldx(n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1, 0, 7, loc.off);
        } else this.scalar(e.expr);
        this.normalize(e.type);
        return;
      }
      case 'FieldAccess':
      case 'ArrayAccess':
      case 'TupleAccess': {
        const p = this.place(e);
        this.readScalar(p, e.type as TraceType, e);
        return;
      }
      case 'Comptime':
        this.scalar(e.expr);
        return;
      case 'AddrOf': {
        // &$var: the variable's stack slot (scalars) or scratch region (memory values); else a place.
        const t = e.target;
        if (t.kind === 'Variable') {
          const v = this.varOf(t.name, t.type);
          a.mov(0, v.scalar ? this.frame.varBase : 7);
          a.aluImm(BPF_ADD, 0, v.off);
          return;
        }
        const slot = this.addressOf(this.place(t));
        a.ldx(8, 0, 10, slot);
        this.release(slot);
        return;
      }
      default:
        this.error(`cannot lower ${e.kind} to a value`, e.loc);
    }
  }

  blockValue(b: Block): void {
    if (this.stmts(b)) return;
    if (b.expr) this.scalar(b.expr);
    else this.a.movImm(0, 0);
  }

  sizeofOffsetof(e: Expr & { kind: 'Sizeof' | 'Offsetof' }): number {
    let t: TraceType | undefined;
    const arg = e.arg;
    if ('type' in arg && arg.type) t = arg.type;
    else if (arg.kind === 'TaggedType' && arg.tag !== 'enum') t = this.sc.lookupStruct(arg.tag, arg.name);
    else if (arg.kind === 'NamedType') t = namedInt(arg.name);
    else if (arg.kind === 'PointerType') return 8;
    if (e.kind === 'Sizeof') {
      if (!t) this.error('sizeof: unknown type', e.loc);
      return t.kind === 'struct' ? (this.resolveStruct(t).size ?? 0) : this.sc.layout(t, false).size;
    }
    let off = 0;
    for (const f of e.fields) {
      if (t?.kind !== 'struct') this.error('offsetof: not a struct', e.loc);
      const r = this.findField(this.resolveStruct(t), f);
      if (!r) this.error(`offsetof: no field ${f}`, e.loc);
      off += r.offset;
      t = r.field.type;
    }
    return off;
  }

  unop(e: Expr & { kind: 'Unop' }): void {
    const a = this.a;
    switch (e.op) {
      case '!': {
        const f = a.newLabel();
        const end = a.newLabel();
        this.cond(e.operand, f);
        a.movImm(0, 0);
        a.jmp(end);
        a.bind(f);
        a.movImm(0, 1);
        a.bind(end);
        return;
      }
      case '~':
        this.scalar(e.operand);
        a.aluImm(BPF_XOR, 0, -1);
        this.normalize(e.type);
        return;
      case '-':
        this.scalar(e.operand);
        a.raw({ code: 0x07 | BPF_NEG, dst: 0, src: 0, off: 0, imm: 0 });
        return;
      case '+':
        this.scalar(e.operand);
        return;
      case '*': {
        const p = this.place(e);
        this.readScalar(p, e.type as TraceType, e);
        return;
      }
      case '++':
      case '--': {
        const delta: Expr = { kind: 'Integer', value: 1n, raw: '1', loc: e.loc, type: I64T };
        const op = e.op === '++' ? '+=' : '-=';
        const t = e.operand;
        if (t.kind === 'Variable') {
          const v = this.varOf(t.name, t.type);
          const base = this.frame.varBase;
          a.ldx(8, 0, base, v.off);
          const old = this.tmp();
          a.stx(8, 10, old, 0);
          a.aluImm(e.op === '++' ? BPF_ADD : BPF_SUB, 0, 1);
          this.normalize(t.type);
          a.stx(8, base, v.off, 0);
          if (!e.prefix) a.ldx(8, 0, 10, old);
          this.release(old);
          return;
        }
        if (t.kind === 'Map') {
          this.assignMap(t, op, delta, e.prefix ? 'new' : 'old');
          return;
        }
        this.error(`The ${e.op} operator must be applied to a map or variable`, e.loc);
      }
    }
  }

  binop(e: Expr & { kind: 'Binop' }): void {
    const a = this.a;
    const op = e.op;
    if (op === '&&' || op === '||' || ['==', '!=', '<', '<=', '>', '>='].includes(op)) {
      if (!isScalarType(e.left.type) || !isScalarType(e.right.type)) {
        this.compareMemory(e);
        return;
      }
      const f = a.newLabel();
      const end = a.newLabel();
      this.cond(e, f);
      a.movImm(0, 1);
      a.jmp(end);
      a.bind(f);
      a.movImm(0, 0);
      a.bind(end);
      return;
    }
    if (e.left.kind === 'String' && e.left.positional !== undefined) {
      this.scalar(e.right);
      return;
    }
    this.binopScalar(op, () => this.scalar(e.left), e.left.type ?? I64T, e.right, e.type ?? I64T, e.loc);
  }

  /** r0 = left OP right; `left` emits code leaving the left operand in r0. */
  binopScalar(op: string, left: () => void, lt: TraceType, right: Expr, rt: TraceType, at = right.loc): void {
    const a = this.a;
    const signed = isSigned(lt) && isSigned(right.type ?? I64T);
    const ops: Record<string, number> = {
      '+': BPF_ADD,
      '-': BPF_SUB,
      '*': BPF_MUL,
      '/': BPF_DIV,
      '%': BPF_MOD,
      '&': BPF_AND,
      '|': BPF_OR,
      '^': BPF_XOR,
      '<<': BPF_LSH,
      '>>': isSigned(lt) ? BPF_ARSH : BPF_RSH,
    };
    const code = ops[op];
    if (code === undefined) this.error(`operator ${op} is not supported here`, right.loc);
    const off = (op === '/' || op === '%') && signed ? 1 : 0;
    // Pointer arithmetic scales by the pointee size.
    let scale = 1;
    if (lt.kind === 'pointer' && (op === '+' || op === '-') && right.type?.kind !== 'pointer') {
      const to = lt.to;
      scale =
        to.kind === 'void'
          ? 1
          : to.kind === 'struct'
            ? (this.resolveStruct(to).size ?? 1)
            : (sizeOf(to) ?? 1);
    }
    const rc = constValue(right);
    if (rc !== undefined && fits32(rc * BigInt(scale))) {
      left();
      a.aluImm(code, 0, Number(rc * BigInt(scale)), off);
    } else {
      this.scalar(right);
      if (scale !== 1) a.aluImm(BPF_MUL, 0, scale);
      const slot = this.tmp();
      a.stx(8, 10, slot, 0);
      left();
      a.ldx(8, 1, 10, slot);
      this.release(slot);
      if (op === '/' || op === '%') {
        // bpftrace makes x / 0 and x % 0 be 1, with a warning (the kernel would give 0 and x).
        const ok = a.newLabel();
        const end = a.newLabel();
        a.jImm(BPF_JNE, 1, 0, ok);
        this.record(
          'WARNF',
          'Divide or modulo by 0 detected. This can lead to unexpected results. 1 is being used as the result.',
          [],
          { loc: at },
        );
        a.movImm(0, 1);
        a.jmp(end);
        a.bind(ok);
        a.alu(code, 0, 1, off);
        a.bind(end);
      } else a.alu(code, 0, 1, off);
    }
    void rt;
  }

  /** ==, != (and <, > for strings) on memory values: byte-wise comparison up to the first NUL. */
  compareMemory(e: Expr & { kind: 'Binop' }): void {
    const a = this.a;
    const l = this.agg(e.left);
    const r = this.agg(e.right);
    const isStr = e.left.type?.kind === 'string' || e.right.type?.kind === 'string';
    let n = Math.min(l.size, r.size);
    if (e.left.kind === 'String') n = Math.min(n, l.size);
    if (e.right.kind === 'String') n = Math.min(n, r.size);
    const result = this.tmp();
    const done = a.newLabel();
    const op = e.op;
    // Result when every compared byte is equal.
    a.st(8, 10, result, op === '==' || op === '<=' || op === '>=' ? 1 : 0);
    for (let i = 0; i < n; i++) {
      a.ldx(1, 1, 7, l.off + i);
      a.ldx(1, 2, 7, r.off + i);
      const eq = a.newLabel();
      a.jReg(BPF_JEQ, 1, 2, eq);
      // Differ: decide.
      if (op === '==' || op === '!=') {
        a.st(8, 10, result, op === '!=' ? 1 : 0);
      } else {
        const less = op === '<' || op === '<=';
        const lt = a.newLabel();
        a.jReg(BPF_JLT, 1, 2, lt);
        a.st(8, 10, result, less ? 0 : 1);
        a.jmp(done);
        a.bind(lt);
        a.st(8, 10, result, less ? 1 : 0);
      }
      a.jmp(done);
      a.bind(eq);
      if (isStr) a.jImm(BPF_JEQ, 1, 0, done);
    }
    if (!isStr && l.size !== r.size && (op === '==' || op === '!=')) a.st(8, 10, result, op === '!=' ? 1 : 0);
    a.bind(done);
    a.ldx(8, 0, 10, result);
    this.release(result);
  }

  // ------------------------------------------------------------------------------ builtins

  builtin(name: string, e: Expr): void {
    const a = this.a;
    switch (name) {
      case 'pid':
        a.call(H.get_current_pid_tgid);
        a.aluImm(BPF_RSH, 0, 32);
        return;
      case 'tid':
        a.call(H.get_current_pid_tgid);
        this.extend(0, 4, false);
        return;
      case 'uid':
      case 'username':
        a.call(H.get_current_uid_gid);
        this.extend(0, 4, false);
        return;
      case 'gid':
        a.call(H.get_current_uid_gid);
        a.aluImm(BPF_RSH, 0, 32);
        return;
      case 'nsecs':
        a.call(H.ktime_get_boot_ns);
        return;
      case 'elapsed': {
        this.sc.usesElapsed = true;
        const k = this.tmp();
        a.st(4, 10, k, 0);
        a.ldMap(1, 2);
        a.mov(2, 10);
        a.aluImm(BPF_ADD, 2, k);
        a.call(H.map_lookup_elem);
        const ok = a.newLabel();
        const end = a.newLabel();
        a.jImm(BPF_JNE, 0, 0, ok);
        a.movImm(0, 0);
        a.jmp(end);
        a.bind(ok);
        a.ldx(8, 1, 0, GLOBALS.startNs);
        a.stx(8, 10, k, 1);
        a.call(H.ktime_get_boot_ns);
        a.ldx(8, 1, 10, k);
        a.alu(BPF_SUB, 0, 1);
        a.bind(end);
        this.release(k);
        return;
      }
      case 'cpu':
        a.call(H.get_smp_processor_id);
        return;
      case 'ncpus':
        a.movImm(0, this.sc.ncpus);
        return;
      case 'numaid':
        a.call(H.get_numa_node_id);
        return;
      case 'cgroup':
        a.call(H.get_current_cgroup_id);
        return;
      case 'rand':
        a.call(H.get_prandom_u32);
        this.extend(0, 4, false);
        return;
      case 'jiffies':
        a.call(H.jiffies64);
        return;
      case 'curtask':
        a.call(H.get_current_task);
        return;
      case 'probe':
        a.movImm(0, this.info.index);
        return;
      case 'cpid': {
        const k = this.tmp();
        a.st(4, 10, k, 0);
        a.ldMap(1, 2);
        a.mov(2, 10);
        a.aluImm(BPF_ADD, 2, k);
        a.call(H.map_lookup_elem);
        const end = a.newLabel();
        a.jImm(BPF_JEQ, 0, 0, end);
        a.ldx(8, 0, 0, GLOBALS.cpid);
        a.bind(end);
        this.release(k);
        return;
      }
      case 'func':
        if (this.provider === 'uprobe' || this.provider === 'kprobe') {
          a.ldx(8, 0, 6, PT_REGS.ip as number);
          return;
        }
        a.mov(1, 6);
        a.call(H.get_func_ip);
        return;
      case 'retval':
        if (this.isPtRegs()) {
          a.ldx(8, 0, 6, PT_REGS.ax as number);
          return;
        }
        this.error('retval is not available in this probe', e.loc);
        break;
      case 'ctx':
        a.mov(0, 6);
        return;
      case 'usermode': {
        // BEGIN/END and user probes run for user code; where pt_regs are at hand, the CPL in cs says.
        if (['begin', 'end', 'uprobe', 'uretprobe', 'usdt'].includes(this.provider)) a.movImm(0, 1);
        else if (this.isPtRegs()) {
          a.ldx(8, 0, 6, PT_REGS.cs as number);
          a.aluImm(BPF_AND, 0, 3);
          const user = a.newLabel();
          const end = a.newLabel();
          a.jImm(BPF_JEQ, 0, 3, user);
          a.movImm(0, 0);
          a.jmp(end);
          a.bind(user);
          a.movImm(0, 1);
          a.bind(end);
        } else a.movImm(0, 0);
        return;
      }
      case 'kstack':
        this.stackId(false, 'bpftrace', 127);
        return;
    }
    let m = /^arg([0-9]+)$/.exec(name);
    if (m) {
      const n = Number(m[1]);
      if (this.provider === 'rawtracepoint') {
        a.ldx(8, 0, 6, n * 8);
        return;
      }
      if (this.isPtRegs()) {
        if (n < ARG_REGS.length) {
          a.ldx(8, 0, 6, PT_REGS[ARG_REGS[n] as string] as number);
          return;
        }
        this.readStackArg(n - ARG_REGS.length + 1);
        return;
      }
      this.error(`${name} is not available in this probe`, e.loc);
    }
    m = /^sarg([0-9]+)$/.exec(name);
    if (m && this.isPtRegs()) {
      this.readStackArg(Number(m[1]) + 1);
      return;
    }
    // Enum constants.
    const en = this.sc.analysis.enums.get(name) ?? this.sc.options.types?.enumValue?.(name);
    if (en) {
      a.movImm(0, BigInt.asIntN(64, en.value));
      return;
    }
    this.error(`cannot lower builtin '${name}'`, e.loc);
  }

  isPtRegs(): boolean {
    return [
      'uprobe',
      'uretprobe',
      'kprobe',
      'kretprobe',
      'usdt',
      'interval',
      'profile',
      'software',
      'hardware',
    ].includes(this.provider);
  }

  /** r0 = the n-th 8-byte word above the stack pointer (user memory). */
  readStackArg(word: number): void {
    const a = this.a;
    const slot = this.tmp();
    a.st(8, 10, slot, 0);
    a.mov(1, 10);
    a.aluImm(BPF_ADD, 1, slot);
    a.movImm(2, 8);
    a.ldx(8, 3, 6, PT_REGS.sp as number);
    a.aluImm(BPF_ADD, 3, word * 8);
    a.call(this.provider.startsWith('k') ? H.probe_read_kernel : H.probe_read_user);
    a.ldx(8, 0, 10, slot);
    this.release(slot);
  }

  stackId(user: boolean, mode: string, limit: number): void {
    const a = this.a;
    const name = this.sc.stackMap(user, mode, limit);
    a.mov(1, 6);
    a.ldMap(2, this.sc.stackMapIndex(name));
    a.movImm(3, user ? 1 << 8 : 0);
    a.call(H.get_stackid);
  }

  // ------------------------------------------------------------------------------ places (lvalues)

  resolveStruct(t: StructType): StructType {
    if (t.fields) return t;
    return this.sc.lookupStruct(t.tag, t.name) ?? t;
  }

  /** A field by name, searching anonymous members; offset from the start of `t`. */
  findField(t: StructType, name: string): { field: StructField; offset: number } | undefined {
    for (const f of t.fields ?? []) {
      if (f.name === name) return { field: f, offset: f.offset ?? 0 };
    }
    for (const f of t.fields ?? []) {
      if (f.name === '' && f.type.kind === 'struct') {
        const inner = this.findField(this.resolveStruct(f.type), name);
        if (inner) return { field: inner.field, offset: (f.offset ?? 0) + inner.offset };
      }
    }
    return undefined;
  }

  /** Where a memory-resident expression lives. */
  place(e: Expr): Place {
    const a = this.a;
    switch (e.kind) {
      case 'Identifier':
        if (e.name === 'args') {
          if (this.provider === 'tracepoint' || this.provider === 'rawtracepoint')
            return { kind: 'ctx', off: 0 };
          this.error(`args is not supported for ${this.provider} probes by the code generator`, e.loc);
        }
        break;
      case 'FieldAccess': {
        let pt = e.expr.type as TraceType;
        // `args` is resolved per attach point: the analyser typed it from the first one, but each
        // program here compiles for one tracepoint, whose format may place the field elsewhere.
        if (
          e.expr.kind === 'Identifier' &&
          e.expr.name === 'args' &&
          (this.provider === 'tracepoint' || this.provider === 'rawtracepoint')
        )
          pt = this.sc.options.types?.probeArgs?.(this.spec) ?? pt;
        let base: Place;
        if (pt.kind === 'pointer') {
          base = this.pointerPlace(e.expr, pt);
          pt = pt.to;
        } else if (pt.kind === 'record' || pt.kind === 'tuple') {
          const loc = this.agg(e.expr);
          const lay = this.sc.layout(pt, true);
          const f = lay.kind === 'record' ? lay.fields.find((x) => x.name === e.field) : undefined;
          if (!f) this.error(`no field ${e.field}`, e.loc);
          return { kind: 'scratch', off: loc.off + f.offset };
        } else {
          base = this.place(e.expr);
        }
        if (pt.kind !== 'struct') this.error(`cannot access field '${e.field}' of ${pt.kind}`, e.loc);
        const st = this.resolveStruct(pt);
        const r = this.findField(st, e.field);
        if (!r) this.error(`'${st.name}' has no field '${e.field}'`, e.loc);
        const tf = r.field as StructField & { dataLoc?: boolean };
        if (tf.dataLoc && base.kind === 'ctx') {
          // __data_loc: u32 (len << 16 | offset) → the data's address in the record.
          a.ldx(4, 0, 6, base.off + r.offset);
          a.aluImm(BPF_AND, 0, 0xffff);
          a.mov(1, 6);
          a.alu(BPF_ADD, 1, 0);
          const slot = this.tmp();
          a.stx(8, 10, slot, 1);
          return { kind: 'mem', slot, off: 0, user: false };
        }
        return offsetPlace(base, r.offset);
      }
      case 'TupleAccess': {
        const loc = this.agg(e.expr);
        const lay = this.sc.layout(e.expr.type as TraceType, true);
        if (lay.kind !== 'tuple' && lay.kind !== 'record') this.error('not a tuple', e.loc);
        const f = lay.fields[e.index];
        if (!f) this.error('tuple index out of range', e.loc);
        return { kind: 'scratch', off: loc.off + f.offset };
      }
      case 'ArrayAccess': {
        const t = e.expr.type as TraceType;
        const elem = e.type as TraceType;
        if (t.kind === 'tuple') {
          // `$t[1 + 1]`: a constant index is a tuple access.
          const loc = this.agg(e.expr);
          const lay = this.sc.layout(t, true);
          const f = lay.kind === 'tuple' ? lay.fields[Number(constValue(e.index) ?? -1)] : undefined;
          if (!f) this.error('tuple index out of range', e.loc);
          return { kind: 'scratch', off: loc.off + f.offset };
        }
        const es =
          elem.kind === 'struct' ? (this.resolveStruct(elem).size ?? 1) : this.sc.layout(elem, false).size;
        const idx = constValue(e.index);
        if (t.kind === 'pointer' || (t.kind === 'int' && t.bits === 64) || t.kind === 'unknown') {
          // ptr[i]: address arithmetic.
          const slot = this.tmp();
          this.scalar(e.index);
          a.aluImm(BPF_MUL, 0, es);
          a.stx(8, 10, slot, 0);
          this.scalar(e.expr);
          a.ldx(8, 1, 10, slot);
          a.alu(BPF_ADD, 0, 1);
          a.stx(8, 10, slot, 0);
          return { kind: 'mem', slot, off: 0, user: this.userSpace() };
        }
        const base = t.kind === 'array' || t.kind === 'string' ? this.arrayPlace(e.expr) : this.place(e.expr);
        if (idx !== undefined) return offsetPlace(base, Number(idx) * es);
        // Variable index: turn the place into an address.
        const slot = this.addressOf(base);
        this.scalar(e.index);
        const len = t.kind === 'array' ? t.length : t.kind === 'string' ? t.size : 1;
        const bad = a.newLabel();
        const ok = a.newLabel();
        a.jImm(BPF_JGE, 0, len, bad);
        a.aluImm(BPF_MUL, 0, es);
        a.ldx(8, 1, 10, slot);
        a.alu(BPF_ADD, 1, 0);
        a.stx(8, 10, slot, 1);
        a.jmp(ok);
        a.bind(bad);
        a.st(8, 10, slot, 0);
        a.bind(ok);
        return { kind: 'mem', slot, off: 0, user: base.kind === 'mem' ? base.user : false };
      }
      case 'Unop':
        if (e.op === '*') {
          const t = e.operand.type as TraceType;
          return this.pointerPlace(
            e.operand,
            t.kind === 'pointer' ? t : { kind: 'pointer', to: e.type as TraceType },
          );
        }
        break;
      case 'Cast':
        if (isScalarType(e.expr.type) && !isScalarType(e.type)) break;
        return this.place(e.expr);
      default:
        break;
    }
    if (!isScalarType(e.type)) {
      const loc = this.agg(e);
      return { kind: 'scratch', off: loc.off };
    }
    this.error(`cannot take the place of ${e.kind}`, e.loc);
  }

  arrayPlace(e: Expr): Place {
    if (e.kind === 'Variable' || e.kind === 'Map' || e.kind === 'Call' || e.kind === 'String') {
      const loc = this.agg(e);
      return { kind: 'scratch', off: loc.off };
    }
    return this.place(e);
  }

  userSpace(): boolean | undefined {
    if (this.provider === 'uprobe' || this.provider === 'uretprobe' || this.provider === 'usdt') return true;
    if (this.provider === 'tracepoint' && this.spec.target === 'syscalls') return true;
    return undefined;
  }

  /** A pointer expression's target: the pointer value goes to a stack slot. */
  pointerPlace(e: Expr, t: TraceType & { kind: 'pointer' }): Place {
    this.scalar(e);
    const slot = this.tmp();
    this.a.stx(8, 10, slot, 0);
    // Struct pointers from BTF are kernel memory; other pointers depend on the probe.
    const kernel =
      t.kernel === true ||
      (t.to.kind === 'struct' &&
        this.sc.options.types?.struct?.(t.to.tag, t.to.name) !== undefined &&
        !this.userSpace());
    return { kind: 'mem', slot, off: 0, user: kernel ? false : this.userSpace() };
  }

  /** The address of a place, in a new stack slot. */
  addressOf(p: Place): number {
    const a = this.a;
    const slot = this.tmp();
    if (p.kind === 'ctx') {
      a.mov(0, 6);
      a.aluImm(BPF_ADD, 0, p.off);
    } else if (p.kind === 'scratch') {
      a.mov(0, 7);
      a.aluImm(BPF_ADD, 0, p.off);
    } else {
      a.ldx(8, 0, 10, p.slot);
      if (p.off) a.aluImm(BPF_ADD, 0, p.off);
    }
    a.stx(8, 10, slot, 0);
    return slot;
  }

  readHelper(user: boolean | undefined, str: boolean): number {
    if (user === true) return str ? H.probe_read_user_str : H.probe_read_user;
    if (user === false) return str ? H.probe_read_kernel_str : H.probe_read_kernel;
    return str ? H.probe_read_str : H.probe_read;
  }

  /** Reads `size` bytes at a place into scratch (r7 + dst). */
  readInto(p: Place, dst: number, size: number, str = false): void {
    const a = this.a;
    if (p.kind === 'scratch') {
      if (p.off !== dst) this.copy(7, dst, 7, p.off, size);
      return;
    }
    a.mov(1, 7);
    a.aluImm(BPF_ADD, 1, dst);
    a.movImm(2, size);
    if (p.kind === 'ctx') {
      a.mov(3, 6);
      a.aluImm(BPF_ADD, 3, p.off);
      a.call(H.probe_read_kernel);
      return;
    }
    a.ldx(8, 3, 10, p.slot);
    if (p.off) a.aluImm(BPF_ADD, 3, p.off);
    a.call(this.readHelper(p.user, str));
  }

  /** r0 = the scalar of type t at place p. */
  readScalar(p: Place, t: TraceType, e: Expr): void {
    const a = this.a;
    let size = t.kind === 'int' ? t.bits / 8 : t.kind === 'bool' ? 1 : 8;
    let bitField: { bo: number; bw: number } | undefined;
    if (e.kind === 'FieldAccess') {
      const pt0 = e.expr.type;
      const st = pt0?.kind === 'pointer' ? pt0.to : pt0;
      if (st?.kind === 'struct') {
        const r = this.findField(this.resolveStruct(st), e.field);
        if (r?.field.bitWidth) {
          bitField = { bo: r.field.bitOffset ?? 0, bw: r.field.bitWidth };
          const need = Math.ceil((bitField.bo + bitField.bw) / 8);
          size = need <= 1 ? 1 : need <= 2 ? 2 : need <= 4 ? 4 : 8;
        }
      }
    }
    if (t.kind === 'struct' || t.kind === 'array') this.error(`cannot use a ${t.kind} as a scalar`, e.loc);
    if (p.kind === 'ctx') {
      a.ldx(size, 0, 6, p.off);
    } else if (p.kind === 'scratch') {
      a.ldx(size, 0, 7, p.off);
    } else {
      const slot = this.tmp();
      a.st(8, 10, slot, 0);
      a.mov(1, 10);
      a.aluImm(BPF_ADD, 1, slot);
      a.movImm(2, size);
      a.ldx(8, 3, 10, p.slot);
      if (p.off) a.aluImm(BPF_ADD, 3, p.off);
      a.call(this.readHelper(p.user, false));
      a.ldx(size, 0, 10, slot);
      this.release(slot);
      this.release(p.slot);
    }
    if (bitField) {
      if (bitField.bo) a.aluImm(BPF_RSH, 0, bitField.bo);
      if (bitField.bw < 32) a.aluImm(BPF_AND, 0, (1 << bitField.bw) - 1);
      return;
    }
    if (t.kind === 'int') this.extend(0, size, t.signed);
  }

  // ------------------------------------------------------------------------------ memory expressions

  /** Evaluates a memory-resident expression into scratch; returns its region. */
  agg(e: Expr): { off: number; size: number } {
    const a = this.a;
    const t = e.type as TraceType;
    const lay = this.sc.layout(t, true);
    switch (e.kind) {
      case 'String': {
        const bytes = stringBytes(e.value);
        const size = Math.max(lay.size, bytes.length + 1);
        const off = this.scratch(size);
        this.writeBytes(off, bytes, size);
        return { off, size };
      }
      case 'PositionalParam': {
        const v = this.positional(e.index) ?? '';
        const bytes = stringBytes(v);
        const off = this.scratch(lay.size);
        this.writeBytes(off, bytes, lay.size);
        return { off, size: lay.size };
      }
      case 'Variable': {
        const v = this.varOf(e.name, t);
        if (v.scalar) break;
        return { off: v.off, size: v.size };
      }
      case 'Map':
        return this.readMapAgg(e, lay);
      case 'Tuple':
      case 'Record': {
        const off = this.scratch(lay.size);
        if (lay.kind !== 'tuple' && lay.kind !== 'record') break;
        this.zero(7, off, lay.size);
        const elems = e.kind === 'Tuple' ? e.elems : e.fields.map((f) => f.value);
        elems.forEach((x, i) => {
          const f = lay.fields[i];
          if (f) this.storeInto(x, f.layout, 7, off + f.offset);
        });
        return { off, size: lay.size };
      }
      case 'Call':
        return this.call(e, lay) ?? this.error(`${e.name}() has no value`, e.loc);
      case 'Ternary': {
        const off = this.scratch(lay.size);
        const elseL = a.newLabel();
        const end = a.newLabel();
        this.cond(e.cond, elseL);
        this.storeInto(e.consequent ?? e.cond, lay, 7, off);
        a.jmp(end);
        a.bind(elseL);
        this.storeInto(e.alternative, lay, 7, off);
        a.bind(end);
        return { off, size: lay.size };
      }
      case 'Identifier': {
        const id = e.name.replace(/^__builtin_/, '');
        if (id === 'comm') return this.comm();
        if (id === 'probetype') {
          const off = this.scratch(lay.size);
          this.writeBytes(off, stringBytes(PROBE_TYPE_NAMES[this.provider]), lay.size);
          return { off, size: lay.size };
        }
        if (id === 'config' && lay.kind === 'record') {
          // Constants: the script's config over bpftrace's defaults.
          const off = this.scratch(lay.size);
          this.zero(7, off, lay.size);
          const values = configValues(this.sc.analysis.config, this.sc.maxStrlen);
          for (const f of lay.fields) {
            const v = values.find((x) => x.name === f.name)?.value;
            if (typeof v === 'string') this.writeBytes(off + f.offset, stringBytes(v), f.layout.size);
            else if (v !== undefined) {
              a.ldImm64(1, typeof v === 'boolean' ? (v ? 1n : 0n) : v);
              a.stx(Math.min(8, f.layout.size), 7, off + f.offset, 1);
            }
          }
          return { off, size: lay.size };
        }
        if (id === 'ustack') return this.ustack('bpftrace', 127);
        if (e.name === 'func') {
          // func in uprobes: usym layout.
          const off = this.scratch(16);
          this.scalar(e);
          this.usymAt(off);
          return { off, size: 16 };
        }
        if (id === 'args') return this.readPlace(this.place(e), lay.size);
        break;
      }
      case 'FieldAccess':
      case 'ArrayAccess':
      case 'TupleAccess':
      case 'Unop':
        return this.readPlace(this.place(e), lay.size, t.kind === 'string');
      case 'Cast': {
        const inner = this.agg(e.expr);
        return { off: inner.off, size: Math.min(inner.size, lay.size) };
      }
      case 'BlockExpr': {
        if (this.stmts(e.block)) return { off: this.scratch(8), size: 8 };
        if (e.block.expr) return this.agg(e.block.expr);
        break;
      }
      case 'Comptime':
        return this.agg(e.expr);
      default:
        break;
    }
    if (isScalarType(t)) {
      // A scalar used where memory is needed: store it.
      const off = this.scratch(8);
      this.scalar(e);
      a.stx(8, 7, off, 0);
      return { off, size: 8 };
    }
    this.error(`cannot lower ${e.kind} of type ${t.kind}`, e.loc);
  }

  positional(index: number): string | undefined {
    return this.sc.options.positionalArgs?.[index - 1];
  }

  readPlace(p: Place, size: number, str = false): { off: number; size: number } {
    if (p.kind === 'scratch') return { off: p.off, size };
    const off = this.scratch(size);
    if (str) this.zero(7, off, size);
    this.readInto(p, off, size, false);
    if (p.kind === 'mem') this.release(p.slot);
    return { off, size };
  }

  writeBytes(off: number, bytes: Uint8Array, size: number): void {
    const a = this.a;
    const buf = new Uint8Array(alignUp(size, 8));
    buf.set(bytes.subarray(0, size));
    if (size > bytes.length) buf[bytes.length] = 0;
    let i = 0;
    for (; i + 8 <= size; i += 8) {
      let v = 0n;
      for (let j = 7; j >= 0; j--) v = (v << 8n) | BigInt(buf[i + j] as number);
      if (v === 0n) a.st(8, 7, off + i, 0);
      else {
        a.ldImm64(1, v);
        a.stx(8, 7, off + i, 1);
      }
    }
    for (; i < size; i++) a.st(1, 7, off + i, buf[i] as number);
  }

  comm(): { off: number; size: number } {
    const a = this.a;
    const off = this.scratch(16);
    a.mov(1, 7);
    a.aluImm(BPF_ADD, 1, off);
    a.movImm(2, 16);
    a.call(H.get_current_comm);
    return { off, size: 16 };
  }

  ustack(mode: string, limit: number): { off: number; size: number } {
    const a = this.a;
    const off = this.scratch(16);
    this.stackId(true, mode, limit);
    a.stx(8, 7, off, 0);
    a.call(H.get_current_pid_tgid);
    a.aluImm(BPF_RSH, 0, 32);
    a.stx(4, 7, off + 8, 0);
    a.st(4, 7, off + 12, this.info.index);
    return { off, size: 16 };
  }

  /** Stores r0 (address) as a usym {addr, pid, probe} at scratch off. */
  usymAt(off: number): void {
    const a = this.a;
    a.stx(8, 7, off, 0);
    a.call(H.get_current_pid_tgid);
    a.aluImm(BPF_RSH, 0, 32);
    a.stx(4, 7, off + 8, 0);
    a.st(4, 7, off + 12, this.info.index);
  }

  /** Evaluates `e` and stores it with `layout` at base+off. */
  storeInto(e: Expr, layout: ValueLayout, base: number, off: number): void {
    const a = this.a;
    if (
      isScalarType(e.type) &&
      layout.kind !== 'string' &&
      layout.kind !== 'tuple' &&
      layout.kind !== 'record'
    ) {
      this.scalar(e);
      const size = layout.size >= 8 ? 8 : layout.size >= 4 ? 4 : layout.size >= 2 ? 2 : 1;
      a.stx(size, base, off, 0);
      return;
    }
    if (
      (e.kind === 'Tuple' || e.kind === 'Record') &&
      (layout.kind === 'tuple' || layout.kind === 'record')
    ) {
      this.zero(base, off, layout.size);
      const elems = e.kind === 'Tuple' ? e.elems : e.fields.map((f) => f.value);
      elems.forEach((x, i) => {
        // A record goes into a record type by field name: `(b=1, a=2)` fits `(a, b)` (in source order).
        const name = e.kind === 'Record' && layout.kind === 'record' ? e.fields[i]?.name : undefined;
        const f = name !== undefined ? layout.fields.find((g) => g.name === name) : layout.fields[i];
        if (f) this.storeInto(x, f.layout, base, off + f.offset);
      });
      return;
    }
    const src = this.agg(e);
    if (src.off === off && base === 7) return;
    const from =
      e.type && (layout.kind === 'tuple' || layout.kind === 'record')
        ? this.sc.layout(e.type, true)
        : undefined;
    if (from && from.kind === layout.kind && !sameLayout(from, layout)) {
      this.convertInto(from, src.off, layout, base, off);
      return;
    }
    const n = Math.min(src.size, layout.size);
    if (n < layout.size) this.zero(base, off, layout.size);
    this.copy(base, off, 7, src.off, n);
    if (layout.kind === 'string' && n === layout.size) a.st(1, base, off + layout.size - 1, 0);
  }

  /**
   * Copies a tuple at r7 + `srcOff` laid out as `from` into `to` (a map key or variable whose element types
   * are wider): each integer is sign- or zero-extended, strings are NUL-padded.
   */
  convertInto(from: ValueLayout, srcOff: number, to: ValueLayout, base: number, off: number): void {
    const a = this.a;
    if (from.kind === 'int' && to.kind === 'int') {
      a.ldx(from.size, 0, 7, srcOff);
      this.extend(0, from.size, from.signed);
      a.stx(to.size, base, off, 0);
      return;
    }
    if (
      (from.kind === 'tuple' || from.kind === 'record') &&
      from.kind === to.kind &&
      from.fields.length === to.fields.length
    ) {
      this.zero(base, off, to.size);
      from.fields.forEach((f, i) => {
        const g = to.fields[i] as (typeof to.fields)[number];
        this.convertInto(f.layout, srcOff + f.offset, g.layout, base, off + g.offset);
      });
      return;
    }
    const n = Math.min(from.size, to.size);
    if (n < to.size) this.zero(base, off, to.size);
    this.copy(base, off, 7, srcOff, n);
  }

  // ------------------------------------------------------------------------------ maps

  mapLayout(m: MapRef): MapLayout {
    const l = this.sc.mapByName.get(m.name);
    if (!l) this.error(`Undefined map: ${m.name}`, m.loc);
    return l;
  }

  /** Builds the BPF key of `@m[keys]` in scratch; returns its offset. */
  buildKey(map: MapLayout, keys: Expr[] | undefined, sized = map.keySize): number {
    const off = this.scratch(sized);
    if (!keys || keys.length === 0 || !map.keyed) {
      this.zero(7, off, sized);
      return off;
    }
    if (map.key.size !== sized || keys.length > 1) this.zero(7, off, sized);
    if (keys.length === 1) {
      this.storeInto(keys[0] as Expr, map.key, 7, off);
    } else {
      const lay = map.key;
      if (lay.kind !== 'tuple') this.error('internal: tuple key expected', keys[0]?.loc);
      keys.forEach((k, i) => {
        const f = lay.fields[i];
        if (f) this.storeInto(k, f.layout, 7, off + f.offset);
      });
    }
    return off;
  }

  /** r0 = lookup(map, r7 + keyOff). */
  lookup(map: MapLayout, keyOff: number): void {
    const a = this.a;
    a.ldMap(1, map.mapIndex);
    a.mov(2, 7);
    a.aluImm(BPF_ADD, 2, keyOff);
    a.call(H.map_lookup_elem);
  }

  /** r0 = the value of key (created zeroed when absent); jumps to `fail` when it cannot be. */
  lookupOrInit(map: MapLayout, keyOff: number, fail: number, at?: Loc): void {
    const a = this.a;
    this.lookup(map, keyOff);
    const have = a.newLabel();
    a.jImm(BPF_JNE, 0, 0, have);
    const zero = this.scratch(map.valueSize);
    this.zero(7, zero, map.valueSize);
    a.ldMap(1, map.mapIndex);
    a.mov(2, 7);
    a.aluImm(BPF_ADD, 2, keyOff);
    a.mov(3, 7);
    a.aluImm(BPF_ADD, 3, zero);
    a.movImm(4, 1); // BPF_NOEXIST
    a.call(H.map_update_elem);
    if (at) this.warnIfMapFull(at, map);
    this.lookup(map, keyOff);
    a.jImm(BPF_JEQ, 0, 0, fail);
    a.bind(have);
  }

  /**
   * After map_update_elem (r0): bpftrace's warning when the map has no room for the key. Only for maps
   * declared with a size (`let @a = hash(2)`): the extra branch doubles what the verifier walks through in
   * loops, which can push a loop-heavy program past its limit.
   */
  warnIfMapFull(at: Loc, map: MapLayout): void {
    if (this.sc.analysis.maps.get(map.name)?.maxEntries === undefined) return;
    const a = this.a;
    const ok = a.newLabel();
    a.jImm(BPF_JNE, 0, -7, ok); // -E2BIG
    this.record('WARNF', "Map full; can't update element", [], { loc: at });
    a.bind(ok);
  }

  /** r0 = scalar value of @m[k]; 0 when absent. Aggregates combine every CPU's value, as bpftrace does. */
  readMapScalar(e: MapRef): void {
    const a = this.a;
    const map = this.mapLayout(e);
    const keyOff = this.buildKey(map, e.keys, map.bucketOffset !== undefined ? map.keySize : map.keySize);
    if (map.perCpu && map.kind !== 'plain') {
      this.readPerCpuScalar(map, keyOff);
      return;
    }
    this.lookup(map, keyOff);
    const end = a.newLabel();
    a.jImm(BPF_JEQ, 0, 0, end);
    if (map.kind === 'avg') {
      const zero = a.newLabel();
      a.ldx(8, 1, 0, 8);
      a.ldx(8, 0, 0, 0);
      a.jImm(BPF_JEQ, 1, 0, zero);
      a.alu(BPF_DIV, 0, 1, map.signed ? 1 : 0);
      a.jmp(end);
      a.bind(zero);
      a.movImm(0, 0);
    } else if (map.value.kind === 'int' || map.value.kind === 'tuple' || map.value.kind === 'bool') {
      const size = map.value.kind === 'bool' ? 1 : 8;
      a.ldx(size, 0, 0, 0);
    } else {
      a.ldx(Math.min(8, map.value.size) >= 8 ? 8 : 1, 0, 0, 0);
    }
    a.bind(end);
  }

  /**
   * r0 = an aggregation's value summed over CPUs: bpf_map_lookup_percpu_elem for each possible CPU;
   * count/sum add, avg/stats divide the summed total by the summed count, min/max keep the best set value.
   */
  readPerCpuScalar(map: MapLayout, keyOff: number): void {
    const a = this.a;
    const acc = this.tmp();
    const aux = this.tmp();
    const cpu = this.tmp();
    a.st(8, 10, acc, 0);
    a.st(8, 10, aux, 0);
    a.st(8, 10, cpu, 0);
    const loop = a.newLabel();
    const next = a.newLabel();
    const done = a.newLabel();
    a.bind(loop);
    a.ldx(8, 3, 10, cpu);
    a.jImm(BPF_JGE, 3, this.sc.possibleCpus, done);
    a.ldMap(1, map.mapIndex);
    a.mov(2, 7);
    a.aluImm(BPF_ADD, 2, keyOff);
    a.call(H.map_lookup_percpu_elem);
    // NULL: past the last CPU, or no such key (then on every CPU).
    a.jImm(BPF_JEQ, 0, 0, done);
    if (map.kind === 'min' || map.kind === 'max') {
      const store = a.newLabel();
      a.ldx(8, 1, 0, 8);
      a.jImm(BPF_JEQ, 1, 0, next);
      a.ldx(8, 2, 0, 0);
      a.ldx(8, 1, 10, aux);
      a.jImm(BPF_JEQ, 1, 0, store);
      a.ldx(8, 1, 10, acc);
      const jop = map.kind === 'min' ? (map.signed ? BPF_JSGE : BPF_JGE) : map.signed ? BPF_JSLE : BPF_JLE;
      a.jReg(jop, 2, 1, next);
      a.bind(store);
      a.stx(8, 10, acc, 2);
      a.st(8, 10, aux, 1);
    } else {
      a.ldx(8, 1, 0, 0);
      a.ldx(8, 2, 10, acc);
      a.alu(BPF_ADD, 2, 1);
      a.stx(8, 10, acc, 2);
      if (map.kind === 'avg' || map.kind === 'stats') {
        a.ldx(8, 1, 0, 8);
        a.ldx(8, 2, 10, aux);
        a.alu(BPF_ADD, 2, 1);
        a.stx(8, 10, aux, 2);
      }
    }
    a.bind(next);
    a.ldx(8, 3, 10, cpu);
    a.aluImm(BPF_ADD, 3, 1);
    a.stx(8, 10, cpu, 3);
    a.jmp(loop);
    a.bind(done);
    a.ldx(8, 0, 10, acc);
    if (map.kind === 'avg' || map.kind === 'stats') {
      const end = a.newLabel();
      a.ldx(8, 1, 10, aux);
      a.jImm(BPF_JEQ, 1, 0, end);
      a.alu(BPF_DIV, 0, 1, map.signed ? 1 : 0);
      a.bind(end);
    }
    this.release(cpu);
    this.release(aux);
    this.release(acc);
  }

  readMapAgg(e: MapRef, lay: ValueLayout): { off: number; size: number } {
    const a = this.a;
    const map = this.mapLayout(e);
    const size = Math.max(lay.size, map.valueSize);
    const off = this.scratch(size);
    this.zero(7, off, size);
    const keyOff = this.buildKey(map, e.keys);
    this.lookup(map, keyOff);
    const end = a.newLabel();
    a.jImm(BPF_JEQ, 0, 0, end);
    this.copy(7, off, 0, 0, map.valueSize);
    a.bind(end);
    return { off, size: lay.size };
  }

  /** `@m[k] op= value`, aggregations included. `result`: leave old/new value in r0 (for ++/--). */
  assignMap(m: MapRef, op: string, value: Expr, result?: 'old' | 'new'): void {
    const a = this.a;
    const map = this.mapLayout(m);
    if (
      op === '=' &&
      value.kind === 'BlockExpr' &&
      value.block.expr?.kind === 'Call' &&
      map.kind !== 'plain'
    ) {
      // `@ = { let $a = 100; avg($a) }`: the block's statements, then the aggregation of its value.
      if (this.stmts(value.block)) return;
      this.assignMap(m, op, value.block.expr, result);
      return;
    }
    if (
      op === '=' &&
      value.kind === 'Call' &&
      ['count', 'sum', 'min', 'max', 'avg', 'stats', 'hist', 'lhist'].includes(value.name)
    ) {
      this.aggregate(map, m, value);
      return;
    }
    if (op === '=' && value.kind === 'Call' && value.name === 'tseries') {
      this.tseries(map, m, value);
      return;
    }
    if (map.kind !== 'plain' && op !== '=') {
      // @x++ on an aggregation map: add to this CPU's value.
      const fail = a.newLabel();
      const slot = this.spillScalar(value);
      const keyOff = this.buildKey(map, m.keys);
      this.lookupOrInit(map, keyOff, fail, m.loc);
      a.ldx(8, 1, 0, 0);
      a.ldx(8, 2, 10, slot);
      a.alu(op === '-=' ? BPF_SUB : BPF_ADD, 1, 2);
      a.stx(8, 0, 0, 1);
      a.mov(0, 1);
      a.bind(fail);
      this.release(slot);
      return;
    }
    const valOff = this.scratch(map.valueSize);
    if (op === '=') {
      this.storeInto(value, map.value, 7, valOff);
    } else {
      const mt = m.type ?? I64T;
      this.binopScalar(op.slice(0, -1), () => this.readMapScalar(m), mt, value, mt);
      a.stx(8, 7, valOff, 0);
      if (result === 'old') {
        // old = new - delta (for ++/-- only)
      }
    }
    const keyOff = this.buildKey(map, m.keys);
    a.ldMap(1, map.mapIndex);
    a.mov(2, 7);
    a.aluImm(BPF_ADD, 2, keyOff);
    a.mov(3, 7);
    a.aluImm(BPF_ADD, 3, valOff);
    a.movImm(4, 0);
    a.call(H.map_update_elem);
    this.warnIfMapFull(m.loc, map);
    if (result !== undefined) {
      a.ldx(8, 0, 7, valOff);
      if (result === 'old') a.aluImm(op === '+=' ? BPF_SUB : BPF_ADD, 0, 1);
    }
  }

  aggregate(map: MapLayout, m: MapRef, call: Call): void {
    const a = this.a;
    const fail = a.newLabel();
    const fn = call.name;
    let slot: number | undefined;
    if (fn !== 'count') slot = this.spillScalar(call.args[0] as Expr);
    let keyOff: number;
    if (fn === 'hist' || fn === 'lhist') {
      keyOff = this.buildKey(map, m.keys, map.keySize);
      a.ldx(8, 0, 10, slot as number);
      if (fn === 'hist') this.histBucket(Number(constValue(call.args[1] as Expr) ?? 0n));
      else {
        const [mn, mx, st] = call.args.slice(1).map((x) => constValue(x) ?? 0n) as [bigint, bigint, bigint];
        this.lhistBucket(mn, mx, st);
      }
      a.stx(8, 7, keyOff + (map.bucketOffset as number), 0);
    } else {
      keyOff = this.buildKey(map, m.keys);
    }
    this.lookupOrInit(map, keyOff, fail, m.loc);
    switch (fn) {
      case 'count':
      case 'hist':
      case 'lhist':
        a.ldx(8, 1, 0, 0);
        a.aluImm(BPF_ADD, 1, 1);
        a.stx(8, 0, 0, 1);
        break;
      case 'sum':
        a.ldx(8, 1, 0, 0);
        a.ldx(8, 2, 10, slot as number);
        a.alu(BPF_ADD, 1, 2);
        a.stx(8, 0, 0, 1);
        break;
      case 'avg':
      case 'stats':
        a.ldx(8, 1, 0, 0);
        a.ldx(8, 2, 10, slot as number);
        a.alu(BPF_ADD, 1, 2);
        a.stx(8, 0, 0, 1);
        a.ldx(8, 1, 0, 8);
        a.aluImm(BPF_ADD, 1, 1);
        a.stx(8, 0, 8, 1);
        break;
      case 'min':
      case 'max': {
        const store = a.newLabel();
        const skip = a.newLabel();
        a.ldx(8, 2, 10, slot as number);
        a.ldx(8, 1, 0, 8);
        a.jImm(BPF_JEQ, 1, 0, store);
        a.ldx(8, 1, 0, 0);
        const signed = map.signed;
        // Skip unless value is better.
        const jop = fn === 'min' ? (signed ? BPF_JSGE : BPF_JGE) : signed ? BPF_JSLE : BPF_JLE;
        a.jReg(jop, 2, 1, skip);
        a.bind(store);
        a.stx(8, 0, 0, 2);
        a.st(8, 0, 8, 1);
        a.bind(skip);
        break;
      }
    }
    a.bind(fail);
    if (slot !== undefined) this.release(slot);
  }

  /**
   * `@m[k] = tseries(v, interval, n, agg)`: the bucket of the current epoch (now / interval, key ++
   * epoch % n) is reset when it holds an older epoch, then updated per agg (records.ts describes the value).
   */
  tseries(map: MapLayout, m: MapRef, call: Call): void {
    const a = this.a;
    const params = map.tseries ?? { intervalNs: 1n, numIntervals: 1n, agg: 'none' };
    const fail = a.newLabel();
    const value = this.spillScalar(call.args[0] as Expr);
    const keyOff = this.buildKey(map, m.keys, map.keySize);
    this.tseriesNow();
    const now = this.tmp();
    a.stx(8, 10, now, 0);
    a.ldImm64(1, params.intervalNs);
    a.alu(BPF_DIV, 0, 1);
    const epoch = this.tmp();
    a.stx(8, 10, epoch, 0);
    a.ldImm64(1, params.numIntervals);
    a.alu(BPF_MOD, 0, 1);
    a.stx(8, 7, keyOff + (map.bucketOffset as number), 0);

    this.lookup(map, keyOff);
    const have = a.newLabel();
    a.jImm(BPF_JNE, 0, 0, have);
    // A new bucket starts at the current epoch, so it is not reset below.
    const init = this.scratch(TSERIES.size);
    this.zero(7, init, TSERIES.size);
    a.ldx(8, 1, 10, epoch);
    a.stx(8, 7, init + TSERIES.epoch, 1);
    a.ldMap(1, map.mapIndex);
    a.mov(2, 7);
    a.aluImm(BPF_ADD, 2, keyOff);
    a.mov(3, 7);
    a.aluImm(BPF_ADD, 3, init);
    a.movImm(4, 1); // BPF_NOEXIST: another CPU may have created it meanwhile
    a.call(H.map_update_elem);
    this.lookup(map, keyOff);
    a.jImm(BPF_JEQ, 0, 0, fail);
    a.bind(have);

    if (params.agg !== 'none') {
      const current = a.newLabel();
      a.ldx(8, 1, 0, TSERIES.epoch);
      a.ldx(8, 2, 10, epoch);
      a.jReg(BPF_JEQ, 1, 2, current);
      a.st(8, 0, TSERIES.value, 0);
      a.st(8, 0, TSERIES.meta, 0);
      a.bind(current);
    }
    a.ldx(8, 2, 10, value);
    switch (params.agg) {
      case 'none':
        a.stx(8, 0, TSERIES.value, 2);
        a.ldx(8, 1, 10, now);
        a.stx(8, 0, TSERIES.meta, 1);
        break;
      case 'avg':
      case 'sum':
        a.ldx(8, 1, 0, TSERIES.value);
        a.alu(BPF_ADD, 1, 2);
        a.stx(8, 0, TSERIES.value, 1);
        if (params.agg === 'avg') {
          a.ldx(8, 1, 0, TSERIES.meta);
          a.aluImm(BPF_ADD, 1, 1);
          a.stx(8, 0, TSERIES.meta, 1);
        }
        break;
      case 'min':
      case 'max': {
        const store = a.newLabel();
        const skip = a.newLabel();
        a.ldx(8, 1, 0, TSERIES.meta);
        a.jImm(BPF_JEQ, 1, 0, store);
        a.ldx(8, 1, 0, TSERIES.value);
        const signed = map.signed;
        const jop = params.agg === 'min' ? (signed ? BPF_JSGE : BPF_JGE) : signed ? BPF_JSLE : BPF_JLE;
        a.jReg(jop, 2, 1, skip);
        a.bind(store);
        a.stx(8, 0, TSERIES.value, 2);
        a.st(8, 0, TSERIES.meta, 1);
        a.bind(skip);
        break;
      }
    }
    a.ldx(8, 1, 10, epoch);
    a.stx(8, 0, TSERIES.epoch, 1);
    a.bind(fail);
    this.release(epoch);
    this.release(now);
    this.release(value);
  }

  /**
   * r0 = tseries()'s clock: bpftrace's TAI time (printed as wall-clock time), or the value of the
   * BPFTRACE_DUMMY_TS_MAP map (0 while it has none).
   */
  tseriesNow(): void {
    const a = this.a;
    const name = this.sc.options.dummyTsMap;
    const dummy = name ? this.sc.mapByName.get(name) : undefined;
    if (!dummy || dummy.keyed || dummy.kind !== 'plain' || dummy.value.kind !== 'int') {
      a.call(H.ktime_get_tai_ns);
      return;
    }
    const keyOff = this.scratch(dummy.keySize);
    this.zero(7, keyOff, dummy.keySize);
    this.lookup(dummy, keyOff);
    const end = a.newLabel();
    const found = a.newLabel();
    a.jImm(BPF_JNE, 0, 0, found);
    a.movImm(0, 0);
    a.jmp(end);
    a.bind(found);
    a.ldx(dummy.value.size, 0, 0, 0);
    a.bind(end);
  }

  /** r0 = hist bucket of r0 (bpftrace's log2 with k sub-bucket bits). Uses r1, r2, r3. */
  histBucket(k: number): void {
    const a = this.a;
    const end = a.newLabel();
    const nonneg = a.newLabel();
    a.jImm(BPF_JSGE, 0, 0, nonneg);
    a.movImm(0, 0);
    a.jmp(end);
    a.bind(nonneg);
    const mask = (1 << k) - 1;
    const big = a.newLabel();
    a.jImm(BPF_JGT, 0, mask, big);
    a.aluImm(BPF_ADD, 0, 1);
    a.jmp(end);
    a.bind(big);
    a.mov(3, 0); // n0
    a.movImm(2, 0); // l
    for (let i = 5; i >= 0; i--) {
      const skip = a.newLabel();
      const shift = 1 << i;
      a.ldImm64(1, 1n << BigInt(shift));
      a.jReg(BPF_JLT, 0, 1, skip);
      a.aluImm(BPF_RSH, 0, shift);
      a.aluImm(BPF_ADD, 2, shift);
      a.bind(skip);
    }
    // l -= k; x = (n0 >> l) & mask; r0 = ((l + 1) << k) + x + 1
    if (k) a.aluImm(BPF_SUB, 2, k);
    a.mov(0, 3);
    a.alu(BPF_RSH, 0, 2);
    a.aluImm(BPF_AND, 0, mask);
    a.aluImm(BPF_ADD, 2, 1);
    if (k) a.aluImm(BPF_LSH, 2, k);
    a.alu(BPF_ADD, 0, 2);
    a.aluImm(BPF_ADD, 0, 1);
    a.bind(end);
  }

  /** r0 = lhist bucket of r0. */
  lhistBucket(min: bigint, max: bigint, step: bigint): void {
    const a = this.a;
    const end = a.newLabel();
    const ge = a.newLabel();
    a.ldImm64(1, BigInt.asUintN(64, min));
    a.jReg(BPF_JSGE, 0, 1, ge);
    a.movImm(0, 0);
    a.jmp(end);
    a.bind(ge);
    const le = a.newLabel();
    a.ldImm64(1, BigInt.asUintN(64, max));
    a.jReg(BPF_JSLE, 0, 1, le);
    a.movImm(0, 1n + BigInt.asUintN(64, max - min) / (step === 0n ? 1n : step));
    a.jmp(end);
    a.bind(le);
    a.ldImm64(1, BigInt.asUintN(64, min));
    a.alu(BPF_SUB, 0, 1);
    a.ldImm64(1, step === 0n ? 1n : step);
    a.alu(BPF_DIV, 0, 1);
    a.aluImm(BPF_ADD, 0, 1);
    a.bind(end);
  }

  // ------------------------------------------------------------------------------ for loops

  private readonly rangeStarts = new Map<Stmt, string>();

  /** The probe variable holding the start of a bpf_loop range. */
  rangeStart(s: Stmt & { kind: 'For' }): string {
    let name = this.rangeStarts.get(s);
    if (!name) {
      name = `$$range_start${this.rangeStarts.size}`;
      this.rangeStarts.set(s, name);
    }
    return name;
  }

  /** Both bounds constant: a plain loop the verifier can follow. */
  constantRange(s: Stmt & { kind: 'For' }): boolean {
    return (
      s.iterable.kind === 'Range' &&
      constValue(s.iterable.start) !== undefined &&
      constValue(s.iterable.end) !== undefined
    );
  }

  forLoop(s: Stmt & { kind: 'For' }): void {
    const a = this.a;
    if (s.iterable.kind === 'Range' && !this.constantRange(s)) {
      // Bounds from maps or variables: the verifier would walk every possible iteration, so use bpf_loop
      // (at most 2^23 iterations), whose callback sets $i = start + index.
      const startVar = this.rangeStart(s);
      const base = this.frame.varBase;
      const endSlot = this.spillScalar(s.iterable.end);
      this.scalar(s.iterable.start);
      a.stx(8, base, this.varOf(startVar, I64T).off, 0);
      a.ldx(8, 1, 10, endSlot);
      a.alu(BPF_SUB, 1, 0);
      this.release(endSlot);
      const none = a.newLabel();
      const go = a.newLabel();
      a.jImm(BPF_JSLE, 1, 0, none);
      a.jImm(BPF_JLE, 1, 1 << 23, go);
      a.movImm(1, 1 << 23);
      a.bind(go);
      const label = a.newLabel();
      const v = this.varOf(s.variable.name, s.variable.type);
      this.pending.push({
        label,
        stmt: s,
        kind: 'range',
        startVar,
        kvOff: v.off,
        ctxSlot: this.ctxSlot,
      });
      a.ldFunc(2, label);
      a.mov(3, base);
      a.movImm(4, 0);
      a.call(H.loop);
      this.afterCallbackLoop();
      a.bind(none);
      return;
    }
    if (s.iterable.kind === 'Range') {
      // for ($i : a..b): a bounded loop over a stack variable.
      const v = this.varOf(s.variable.name, s.variable.type);
      const base = this.frame.varBase;
      const endSlot = this.spillScalar(s.iterable.end);
      this.scalar(s.iterable.start);
      a.stx(8, base, v.off, 0);
      const top = a.newLabel();
      const cont = a.newLabel();
      const done = a.newLabel();
      a.bind(top);
      a.ldx(8, 0, base, v.off);
      a.ldx(8, 1, 10, endSlot);
      a.jReg(BPF_JSGE, 0, 1, done);
      this.frame.loops.push({ brk: done, cont });
      this.block(s.body);
      this.frame.loops.pop();
      a.bind(cont);
      a.ldx(8, 0, base, v.off);
      a.aluImm(BPF_ADD, 0, 1);
      a.stx(8, base, v.off, 0);
      a.jmp(top);
      a.bind(done);
      this.release(endSlot);
      return;
    }
    const map = this.mapLayout(s.iterable);
    const v = this.varOf(s.variable.name, s.variable.type);
    const label = a.newLabel();
    this.pending.push({ label, stmt: s, kind: 'for', map, kvOff: v.off, ctxSlot: this.ctxSlot });
    this.forEach(map, label);
    this.afterCallbackLoop();
  }

  /** After a callback loop: a `return` in the body ends the probe, not just the loop. */
  afterCallbackLoop(): void {
    const a = this.a;
    const cont = a.newLabel();
    a.ldx(8, 0, this.frame.varBase, this.varOf(RETURNED, I64T).off);
    a.jImm(BPF_JEQ, 0, 0, cont);
    if (this.frame.callback) {
      a.movImm(0, 1);
      a.exit();
    } else a.jmp(this.frame.exitLabel);
    a.bind(cont);
  }

  /** Calls bpf_for_each_map_elem(map, callback, main frame pointer, 0). */
  forEach(map: MapLayout, label: number): void {
    const a = this.a;
    a.ldMap(1, map.mapIndex);
    a.ldFunc(2, label);
    a.mov(3, this.frame.varBase);
    a.movImm(4, 0);
    a.call(H.for_each_map_elem);
  }

  emitCallback(p: PendingCallback): void {
    const a = this.a;
    a.bind(p.label);
    const saved = this.frame;
    this.frame = this.newFrame(9, true);
    // for_each_map_elem: r1 = map, r2 = key, r3 = value, r4 = callback ctx (main frame pointer).
    // bpf_loop: r1 = index, r2 = ctx.
    if (p.kind === 'range') {
      a.mov(9, 2);
      a.mov(8, 1);
    } else {
      a.mov(9, 4);
      a.mov(8, 2);
    }
    const valSlot = this.tmp();
    if (p.kind !== 'range') a.stx(8, 10, valSlot, 3);
    a.ldx(8, 6, 9, p.ctxSlot);
    // Scratch.
    const k = this.tmp();
    a.st(4, 10, k, 0);
    a.ldMap(1, 3);
    a.mov(2, 10);
    a.aluImm(BPF_ADD, 2, k);
    a.call(H.map_lookup_elem);
    a.jImm(BPF_JEQ, 0, 0, this.frame.exitLabel);
    a.mov(7, 0);
    if (p.kind === 'range') {
      // r8 holds bpf_loop's index (r1 at entry): $i = start + index.
      a.ldx(8, 0, 9, this.varOf(p.startVar as string, I64T).off);
      a.alu(BPF_ADD, 0, 8);
      a.stx(8, 9, p.kvOff, 0);
      this.block(p.stmt.body);
    } else if (p.kind === 'count') {
      a.ldx(8, 0, 9, p.counterSlot as number);
      a.aluImm(BPF_ADD, 0, 1);
      a.stx(8, 9, p.counterSlot as number, 0);
    } else {
      const kvType = p.stmt.variable.type as TraceType;
      const lay = this.sc.layout(kvType, true);
      if (lay.kind === 'tuple') {
        const kf = lay.fields[0];
        const vf = lay.fields[1];
        const map = p.map as MapLayout;
        if (kf) this.copy(7, p.kvOff + kf.offset, 8, 0, Math.min(kf.layout.size, map.key.size));
        if (vf) {
          a.ldx(8, 3, 10, valSlot);
          if (map.kind === 'avg') {
            a.ldx(8, 1, 3, 0);
            a.ldx(8, 2, 3, 8);
            const z = a.newLabel();
            const d = a.newLabel();
            a.jImm(BPF_JEQ, 2, 0, z);
            a.alu(BPF_DIV, 1, 2, map.signed ? 1 : 0);
            a.jmp(d);
            a.bind(z);
            a.movImm(1, 0);
            a.bind(d);
            a.stx(8, 7, p.kvOff + vf.offset, 1);
          } else {
            const n = Math.min(vf.layout.size, map.kind === 'plain' ? map.valueSize : 8);
            for (let i = 0; i + 8 <= n; i += 8) {
              a.ldx(8, 1, 3, i);
              a.stx(8, 7, p.kvOff + vf.offset + i, 1);
            }
            for (let i = n - (n % 8); i < n; i++) {
              a.ldx(1, 1, 3, i);
              a.stx(1, 7, p.kvOff + vf.offset + i, 1);
            }
          }
        }
      }
      this.release(valSlot);
      this.block(p.stmt.body);
    }
    a.bind(this.frame.exitLabel);
    a.movImm(0, 0);
    a.exit();
    this.frame = saved;
  }

  // ------------------------------------------------------------------------------ calls

  /** Lowers a call; scalar results in r0, memory results returned. */
  call(e: Call, lay: ValueLayout | undefined): { off: number; size: number } | undefined {
    const a = this.a;
    const name = e.name.replace(/^__builtin_/, '');
    const args = e.args;
    switch (name) {
      case 'printf':
      case 'errorf':
      case 'warnf':
      case 'debugf':
      case 'system':
      case 'cat': {
        const kind = (
          {
            printf: 'PRINTF',
            errorf: 'ERRORF',
            warnf: 'WARNF',
            debugf: 'DEBUGF',
            system: 'SYSTEM',
            cat: 'CAT',
          } as const
        )[name];
        const fmt = stringOf(args[0]);
        this.record(kind, fmt ?? '', args.slice(1), kind === 'ERRORF' || kind === 'WARNF' ? e : undefined);
        return undefined;
      }
      case 'print': {
        const first = args[0] as Expr;
        if (first.kind === 'Map' && !first.keys) {
          const map = this.mapLayout(first);
          const off = this.scratch(32);
          a.st(8, 7, off, Action.PRINT_MAP);
          a.st(8, 7, off + 8, this.sc.maps.indexOf(map));
          a.st(8, 7, off + 16, Number(constValue(args[1] as Expr) ?? 0n));
          a.st(8, 7, off + 24, Number(constValue(args[2] as Expr) ?? 0n));
          this.output(off, 32);
          return undefined;
        }
        this.record('PRINT_VALUE', '', [first]);
        return undefined;
      }
      case 'clear':
      case 'zero': {
        const map = this.mapLayout(args[0] as MapRef);
        const off = this.scratch(16);
        a.st(8, 7, off, name === 'clear' ? Action.CLEAR : Action.ZERO);
        a.st(8, 7, off + 8, this.sc.maps.indexOf(map));
        this.output(off, 16);
        return undefined;
      }
      case 'time': {
        const fmt = args[0] ? (stringOf(args[0]) ?? '%H:%M:%S\n') : '%H:%M:%S\n';
        this.record('TIME', fmt, []);
        return undefined;
      }
      case 'exit': {
        const act = this.sc.addAction(
          'EXIT',
          '',
          [{ offset: 16, layout: { kind: 'int', size: 8, align: 8, signed: true } }],
          24,
        );
        void act;
        const flagged = a.newLabel();
        this.lookupGlobals();
        a.jImm(BPF_JEQ, 0, 0, flagged);
        a.st(8, 0, GLOBALS.exited, 1);
        a.bind(flagged);
        const off = this.scratch(24);
        a.st(8, 7, off, Action.EXIT);
        a.st(8, 7, off + 8, 0);
        if (args[0]) {
          this.scalar(args[0]);
          a.stx(8, 7, off + 16, 0);
        } else a.st(8, 7, off + 16, 0);
        this.output(off, 24);
        if (this.frame.callback) {
          a.movImm(0, 1);
          a.exit();
        } else a.jmp(this.frame.exitLabel);
        return undefined;
      }
      case 'join': {
        const delim = args[1] ? (stringOf(args[1]) ?? ' ') : ' ';
        const act = this.sc.addAction('JOIN', delim, [], 24 + JOIN_MAX_ARGS * JOIN_ARG_SIZE);
        const size = act.size;
        const off = this.scratch(size);
        a.st(8, 7, off, Action.JOIN);
        a.st(8, 7, off + 8, act.index);
        a.st(8, 7, off + 16, 0);
        const arr = this.tmp();
        this.scalar(args[0] as Expr);
        a.stx(8, 10, arr, 0);
        const ptr = this.tmp();
        const done = a.newLabel();
        const user = this.userSpace();
        for (let i = 0; i < JOIN_MAX_ARGS; i++) {
          a.st(8, 10, ptr, 0);
          a.mov(1, 10);
          a.aluImm(BPF_ADD, 1, ptr);
          a.movImm(2, 8);
          a.ldx(8, 3, 10, arr);
          a.aluImm(BPF_ADD, 3, i * 8);
          a.call(this.readHelper(user, false));
          a.ldx(8, 3, 10, ptr);
          a.jImm(BPF_JEQ, 3, 0, done);
          a.mov(1, 7);
          a.aluImm(BPF_ADD, 1, off + 24 + i * JOIN_ARG_SIZE);
          a.movImm(2, JOIN_ARG_SIZE);
          a.call(this.readHelper(user, true));
          a.st(8, 7, off + 16, i + 1);
        }
        a.bind(done);
        this.release(ptr);
        this.release(arr);
        this.output(off, size);
        return undefined;
      }
      case 'signal': {
        const arg = args[0] as Expr;
        if (arg.kind === 'String') {
          const sig = signalNumber(arg.value) ?? 0;
          a.movImm(1, sig);
        } else {
          this.scalar(arg);
          a.mov(1, 0);
        }
        a.call(H.send_signal);
        return undefined;
      }
      case 'delete': {
        const m = args[0] as MapRef;
        const map = this.mapLayout(m);
        const keyOff = this.buildKey(map, args.length > 1 ? [args[1] as Expr] : m.keys);
        a.ldMap(1, map.mapIndex);
        a.mov(2, 7);
        a.aluImm(BPF_ADD, 2, keyOff);
        a.call(H.map_delete_elem);
        a.aluImm(BPF_RSH, 0, 63);
        a.aluImm(BPF_XOR, 0, 1);
        return undefined;
      }
      case 'has_key': {
        const map = this.mapLayout(args[0] as MapRef);
        const keyOff = this.buildKey(map, [args[1] as Expr]);
        this.lookup(map, keyOff);
        const end = a.newLabel();
        a.jImm(BPF_JEQ, 0, 0, end);
        a.movImm(0, 1);
        a.bind(end);
        return undefined;
      }
      case 'len': {
        const first = args[0] as Expr;
        if (first.kind !== 'Map') {
          a.movImm(0, 0);
          return undefined;
        }
        const map = this.mapLayout(first);
        const counter = this.tmpMain();
        a.st(8, this.frame.varBase, counter, 0);
        const label = a.newLabel();
        this.pending.push({
          label,
          stmt: undefined as unknown as Stmt & { kind: 'For' },
          kind: 'count',
          map,
          kvOff: 0,
          ctxSlot: this.ctxSlot,
          counterSlot: counter,
        });
        this.forEach(map, label);
        a.ldx(8, 0, this.frame.varBase, counter);
        return undefined;
      }
      case 'str': {
        const size = lay?.size ?? this.sc.maxStrlen;
        const off = this.scratch(size);
        this.zero(7, off, size);
        const src = args[0] as Expr;
        if (src.kind === 'Binop' && src.left.kind === 'String' && src.left.positional !== undefined) {
          const full = stringBytes(src.left.value);
          const k = Number(constValue(src.right) ?? 0n);
          this.writeBytes(off, full.subarray(Math.min(k, full.length)), size);
          return { off, size };
        }
        if (!isScalarType(src.type)) {
          const loc = this.agg(src);
          this.copy(7, off, 7, loc.off, Math.min(loc.size, size));
          a.st(1, 7, off + size - 1, 0);
          return { off, size };
        }
        if (src.kind === 'Binop' && src.left.kind === 'String' && src.left.positional !== undefined) {
          const full = stringBytes(src.left.value);
          const k = Number(constValue(src.right) ?? 0n);
          this.writeBytes(off, full.subarray(Math.min(k, full.length)), size);
          return { off, size };
        }
        const lenSlot = this.tmp();
        if (args[1]) {
          this.scalar(args[1]);
          a.aluImm(BPF_ADD, 0, 1);
          const ok = a.newLabel();
          a.jImm(BPF_JLE, 0, size, ok);
          a.movImm(0, size);
          a.bind(ok);
          a.stx(8, 10, lenSlot, 0);
        } else a.st(8, 10, lenSlot, size);
        this.scalar(src);
        a.mov(3, 0);
        a.mov(1, 7);
        a.aluImm(BPF_ADD, 1, off);
        a.ldx(8, 2, 10, lenSlot);
        this.release(lenSlot);
        a.call(this.readHelper(this.addressSpace(src), true));
        return { off, size };
      }
      case 'buf': {
        const size = lay?.size ?? this.sc.maxStrlen + 1;
        const n = size - 1;
        const off = this.scratch(size);
        this.zero(7, off, size);
        const src = args[0] as Expr;
        if (src.kind === 'Binop' && src.left.kind === 'String' && src.left.positional !== undefined) {
          const full = stringBytes(src.left.value);
          const k = Number(constValue(src.right) ?? 0n);
          this.writeBytes(off, full.subarray(Math.min(k, full.length)), size);
          return { off, size };
        }
        if (!isScalarType(src.type)) {
          const loc = this.agg(src);
          this.copy(7, off + 1, 7, loc.off, Math.min(loc.size, n));
          a.st(1, 7, off, Math.min(loc.size, n));
          return { off, size };
        }
        const lenSlot = this.tmp();
        if (args[1]) {
          this.scalar(args[1]);
          const ok = a.newLabel();
          a.jImm(BPF_JLE, 0, n, ok);
          a.movImm(0, n);
          a.bind(ok);
        } else a.movImm(0, n);
        a.stx(8, 10, lenSlot, 0);
        a.stx(1, 7, off, 0);
        this.scalar(src);
        a.mov(3, 0);
        a.mov(1, 7);
        a.aluImm(BPF_ADD, 1, off + 1);
        a.ldx(8, 2, 10, lenSlot);
        this.release(lenSlot);
        a.call(this.readHelper(this.addressSpace(src), false));
        return { off, size };
      }
      case 'ksym':
      case 'kptr':
      case 'uptr':
        this.scalar(args[0] as Expr);
        return undefined;
      case 'usym': {
        const off = this.scratch(16);
        this.scalar(args[0] as Expr);
        this.usymAt(off);
        return { off, size: 16 };
      }
      case 'kaddr': {
        const sym = stringOf(args[0]) ?? '';
        const addr = this.sc.options.ksym?.(sym) ?? kallsym(sym);
        if (addr === undefined) this.error(`Failed to resolve kernel symbol: ${sym}`, e.loc);
        a.movImm(0, BigInt.asIntN(64, addr));
        return undefined;
      }
      case 'cgroupid': {
        const path = stringOf(args[0]) ?? '';
        let id = 0n;
        try {
          id = BigInt(statSync(path.startsWith('/') ? path : `/sys/fs/cgroup/${path}`, { bigint: true }).ino);
        } catch {
          this.error(`Failed to get cgroup id for path: ${path}`, e.loc);
        }
        a.movImm(0, BigInt.asIntN(64, id));
        return undefined;
      }
      case 'reg': {
        const r = stringOf(args[0]) ?? '';
        const off = PT_REGS[r];
        if (off === undefined || !this.isPtRegs()) this.error(`reg('${r}') is not available here`, e.loc);
        a.ldx(8, 0, 6, off);
        return undefined;
      }
      case 'bswap': {
        const t = (args[0] as Expr).type;
        const bits = t?.kind === 'int' ? t.bits : 64;
        this.scalar(args[0] as Expr);
        if (bits > 8) a.raw({ code: BPF_ALU | BPF_END | BPF_TO_BE, dst: 0, src: 0, off: 0, imm: bits });
        return undefined;
      }
      case 'strncmp': {
        const n = Number(constValue(args[2] as Expr) ?? 0n);
        this.strcmpN(args[0] as Expr, args[1] as Expr, n);
        return undefined;
      }
      case 'strcontains':
        this.strcontains(args[0] as Expr, args[1] as Expr);
        return undefined;
      case 'strlen': {
        // r0 = index of the first NUL (or the string's size): a bounded loop over the scratch copy.
        const loc = this.agg(args[0] as Expr);
        const loop = a.newLabel();
        const done = a.newLabel();
        a.movImm(0, 0);
        a.bind(loop);
        a.jImm(BPF_JGE, 0, loc.size, done);
        a.mov(1, 7);
        a.alu(BPF_ADD, 1, 0);
        a.ldx(1, 2, 1, loc.off);
        a.jImm(BPF_JEQ, 2, 0, done);
        a.aluImm(BPF_ADD, 0, 1);
        a.jmp(loop);
        a.bind(done);
        return undefined;
      }
      case 'pton': {
        const bytes = ptonBytes(stringOf(args[0]) ?? '');
        if (!bytes) this.error(`pton() expects a valid IPv4 or IPv6 address (${stringOf(args[0])})`, e.loc);
        const off = this.scratch(bytes.length);
        this.writeBytes(off, bytes, bytes.length);
        return { off, size: bytes.length };
      }
      case 'getopt': {
        // A program option: a constant, from the command line (-- --name=value) or the default.
        const v = this.sc.analysis.programOptions?.get(stringOf(args[0]) ?? '')?.value ?? false;
        if (typeof v === 'string') {
          const size = this.sc.layout(e.type as TraceType, true).size;
          const off = this.scratch(size);
          this.writeBytes(off, stringBytes(v), size);
          return { off, size };
        }
        a.movImm(0, typeof v === 'boolean' ? (v ? 1 : 0) : BigInt.asIntN(64, v));
        return undefined;
      }
      case 'cgroup_path':
        // The cgroup id; the runtime turns it into the path (layout kind cgroup_path).
        this.scalar(args[0] as Expr);
        return undefined;
      case 'strftime': {
        const act = this.sc.addAction('STRFTIME', stringOf(args[0]) ?? '', [], 0);
        const off = this.scratch(16);
        a.st(8, 7, off, act.index);
        this.scalar(args[1] as Expr);
        a.stx(8, 7, off + 8, 0);
        return { off, size: 16 };
      }
      case 'ntop': {
        const off = this.scratch(24);
        this.zero(7, off, 24);
        let af: Expr | undefined;
        let addr = args[0] as Expr;
        if (args.length === 2) {
          af = args[0];
          addr = args[1] as Expr;
        }
        const at = addr.type;
        if (at && !isScalarType(at)) {
          const loc = this.agg(addr);
          const n = Math.min(16, loc.size);
          a.st(8, 7, off, n === 16 ? 10 : 2);
          this.copy(7, off + 8, 7, loc.off, n);
        } else {
          this.scalar(addr);
          a.stx(4, 7, off + 8, 0);
          a.st(8, 7, off, 2);
        }
        if (af) {
          this.scalar(af);
          a.stx(8, 7, off, 0);
        }
        return { off, size: 24 };
      }
      case 'macaddr': {
        const off = this.scratch(8);
        const p = this.place(args[0] as Expr);
        this.readInto(p, off, 6);
        return { off, size: 6 };
      }
      case 'kstack':
      case 'ustack': {
        let mode = 'bpftrace';
        let limit = 127;
        for (const x of args) {
          if (x.kind === 'Identifier') mode = x.name;
          else limit = Number(constValue(x) ?? 127n);
        }
        if (name === 'kstack') {
          this.stackId(false, mode, limit);
          return undefined;
        }
        return this.ustack(mode, limit);
      }
      case 'comm':
        return this.comm();
      case 'pid':
      case 'tid':
      case 'nsecs':
      case 'cpu':
      case 'elapsed':
      case 'uid':
      case 'gid':
      case 'cgroup':
      case 'rand':
      case 'curtask':
      case 'ncpus':
      case 'jiffies':
      case 'probe':
      case 'func':
        this.builtin(name, e);
        return undefined;
      case 'strerror':
      case 'signal_name':
      case 'is_err':
        this.scalar(args[0] as Expr);
        if (name === 'is_err') {
          const t = a.newLabel();
          const end = a.newLabel();
          a.jImm(BPF_JGE, 0, -4095, t);
          a.movImm(0, 0);
          a.jmp(end);
          a.bind(t);
          a.movImm(0, 1);
          a.bind(end);
        }
        return undefined;
      case 'override':
        this.scalar(args[0] as Expr);
        a.mov(2, 0);
        a.mov(1, 6);
        a.call(58);
        return undefined;
      case 'ppid': {
        // task->real_parent->tgid, the task being the argument or the current one.
        const ts = this.sc.lookupStruct('struct', 'task_struct');
        if (!ts) this.error('ppid() needs the kernel BTF (struct task_struct)', e.loc);
        const task: TraceType = { kind: 'pointer', to: ts };
        const base: Expr = args[0] ?? { kind: 'Identifier', name: 'curtask', loc: e.loc, type: task };
        const parent: Expr = {
          kind: 'FieldAccess',
          expr: base,
          field: 'real_parent',
          arrow: true,
          loc: e.loc,
          type: task,
        };
        const tgid: Expr = {
          kind: 'FieldAccess',
          expr: parent,
          field: 'tgid',
          arrow: true,
          loc: e.loc,
          type: I32T,
        };
        this.scalar(tgid);
        return undefined;
      }
      case 'assert': {
        // bpftrace's stdlib macro: if (!cond) { errorf("assert failed: %s", msg); exit(1); }, reported at
        // the errorf in its stdlib/base.bt, expanded from this call.
        const fail = a.newLabel();
        const ok = a.newLabel();
        this.cond(args[0] as Expr, fail);
        a.jmp(ok);
        a.bind(fail);
        const act = this.record('ERRORF', args[1] ? 'assert failed: %s' : 'assert failed', args.slice(1, 2), {
          loc: e.loc,
        });
        act.sites = [{ where: 'stdlib/base.bt:6:5-37', context: '' }, this.sc.site(e.loc)];
        const one: Expr = { kind: 'Integer', value: 1n, raw: '1', loc: e.loc, type: I64T };
        this.call({ kind: 'Call', name: 'exit', args: [one], nameLoc: e.loc, loc: e.loc }, undefined);
        a.bind(ok);
        return undefined;
      }
      case 'unwatch':
        return undefined;
    }
    if (args.length === 0 && BUILTIN_CALLS.has(name)) {
      // A builtin value called like a function: `usermode()`, `probetype()`, `config()`.
      const id: Expr = { kind: 'Identifier', name, loc: e.loc, ...(e.type ? { type: e.type } : {}) };
      if (isScalarType(e.type)) {
        this.builtin(name, id);
        return undefined;
      }
      return this.agg(id);
    }
    this.error(`${name}() is not supported by the code generator`, e.loc);
  }

  /** A fresh 8-byte slot in the main frame (addressed from varBase). */
  tmpMain(): number {
    const f = this.frame;
    this.frame = this.mainFrame;
    const s = this.tmp();
    this.frame = f;
    return s;
  }

  addressSpace(e: Expr): boolean | undefined {
    const t = e.type;
    if (t?.kind === 'pointer' && t.kernel) return false;
    if (t?.kind === 'pointer' && t.to.kind === 'struct' && !this.userSpace()) return false;
    return this.userSpace();
  }

  /** r0 = strncmp(a, b, n) != 0 semantics of bpftrace (0 when equal for n bytes or up to NUL). */
  strcmpN(x: Expr, y: Expr, n: number): void {
    const a = this.a;
    const l = this.agg(x);
    const r = this.agg(y);
    const len = Math.min(n, l.size, r.size);
    const res = this.tmp();
    const done = a.newLabel();
    a.st(8, 10, res, 0);
    for (let i = 0; i < len; i++) {
      a.ldx(1, 1, 7, l.off + i);
      a.ldx(1, 2, 7, r.off + i);
      const eq = a.newLabel();
      a.jReg(BPF_JEQ, 1, 2, eq);
      a.st(8, 10, res, 1);
      a.jmp(done);
      a.bind(eq);
      a.jImm(BPF_JEQ, 1, 0, done);
    }
    a.bind(done);
    a.ldx(8, 0, 10, res);
    this.release(res);
  }

  /** r0 = 1 when the needle occurs in the haystack. */
  strcontains(hay: Expr, needle: Expr): void {
    const a = this.a;
    const h = this.agg(hay);
    const n = this.agg(needle);
    // The needle ends at its first NUL, even inside a literal ("wo\0rld" looks for "wo").
    const lit = needle.kind === 'String' ? stringBytes(needle.value) : undefined;
    const nlen = lit ? (lit.indexOf(0) < 0 ? lit.length : lit.indexOf(0)) : n.size - 1;
    const res = this.tmp();
    const done = a.newLabel();
    a.st(8, 10, res, 1);
    if (nlen > 0) {
      a.st(8, 10, res, 0);
      // A variable needle may be shorter than its buffer: try every start, reading the haystack in bounds.
      const last = lit ? h.size - nlen : h.size - 2;
      for (let i = 0; i <= last; i++) {
        const next = a.newLabel();
        const found = a.newLabel();
        for (let j = 0; j < nlen; j++) {
          a.ldx(1, 2, 7, n.off + j);
          if (i + j >= h.size) {
            if (!lit) a.jImm(BPF_JEQ, 2, 0, found);
            a.jmp(next);
            break;
          }
          if (needle.kind !== 'String') a.jImm(BPF_JEQ, 2, 0, found);
          a.ldx(1, 1, 7, h.off + i + j);
          if (j === 0) a.jImm(BPF_JEQ, 1, 0, done);
          a.jReg(BPF_JNE, 1, 2, next);
        }
        a.bind(found);
        a.st(8, 10, res, 1);
        a.jmp(done);
        a.bind(next);
      }
    }
    a.bind(done);
    a.ldx(8, 0, 10, res);
    this.release(res);
  }

  /** Writes a PRINTF-like record of `args` and outputs it. */
  record(
    kind: ActionKind,
    fmt: string,
    args: Expr[],
    call?: { loc: Loc; expandedFrom?: Loc[] },
  ): ActionFormat {
    const a = this.a;
    const layouts: { offset: number; layout: ValueLayout }[] = [];
    let off = HEADER_SIZE;
    for (const x of args) {
      const lay = this.sc.layout(recordType(x), true);
      off = alignUp(off, Math.min(8, lay.align));
      layouts.push({ offset: off, layout: lay });
      off += lay.size;
    }
    const size = alignUp(off, 8);
    const act = this.sc.addAction(kind, fmt, layouts, size);
    if (call) act.sites = [call.loc, ...(call.expandedFrom ?? [])].map((l) => this.sc.site(l));
    const base = this.scratch(size);
    args.forEach((x, i) => {
      const l = layouts[i] as { offset: number; layout: ValueLayout };
      this.storeArg(x, l.layout, base + l.offset);
    });
    a.st(8, 7, base, Action[kind]);
    a.st(8, 7, base + 8, act.index);
    this.output(base, size);
    void parseFormat;
    return act;
  }

  storeArg(x: Expr, lay: ValueLayout, off: number): void {
    const t = x.type;
    if (t?.kind === 'aggregate' && x.kind === 'Map') {
      this.readMapScalar(x);
      this.a.stx(8, 7, off, 0);
      return;
    }
    this.storeInto(x, lay, 7, off);
  }

  /** bpf_ringbuf_output(ringbuf, r7 + off, size, 0); counts losses. */
  output(off: number, size: number): void {
    const a = this.a;
    a.ldMap(1, 0);
    a.mov(2, 7);
    a.aluImm(BPF_ADD, 2, off);
    a.movImm(3, size);
    a.movImm(4, 0);
    a.call(H.ringbuf_output);
    const ok = a.newLabel();
    a.jImm(BPF_JEQ, 0, 0, ok);
    const k = this.tmp();
    a.st(4, 10, k, 0);
    a.ldMap(1, 1);
    a.mov(2, 10);
    a.aluImm(BPF_ADD, 2, k);
    a.call(H.map_lookup_elem);
    a.jImm(BPF_JEQ, 0, 0, ok);
    a.movImm(1, 1);
    a.raw({ code: 0xdb, dst: 0, src: 1, off: 0, imm: 0 }); // lock *(u64 *)(r0 + 0) += r1
    a.bind(ok);
    this.release(k);
  }
}

const I64T: TraceType = { kind: 'int', bits: 64, signed: true };
const I32T: TraceType = { kind: 'int', bits: 32, signed: true };
/** Builtin values that may also be called with no arguments. */
const BUILTIN_CALLS = new Set([
  'usermode',
  'probetype',
  'config',
  'cpid',
  'numaid',
  'jiffies',
  'username',
  'ctx',
]);
/** The probe variable a `return` inside a `for` over a map sets (the callback cannot return for the probe). */
const RETURNED = '$$returned';

/** Same bytes for the same values (enum tables and names aside). */
function sameLayout(x: ValueLayout, y: ValueLayout): boolean {
  if (x.kind !== y.kind || x.size !== y.size) return false;
  if (x.kind === 'int' && y.kind === 'int') return x.signed === y.signed;
  if ((x.kind === 'tuple' || x.kind === 'record') && (y.kind === 'tuple' || y.kind === 'record'))
    return (
      x.fields.length === y.fields.length &&
      x.fields.every((f, i) => f.offset === y.fields[i]?.offset && sameLayout(f.layout, y.fields[i].layout))
    );
  if (x.kind === 'array' && y.kind === 'array') return x.length === y.length && sameLayout(x.of, y.of);
  return true;
}

function isSigned(t: TraceType | undefined): boolean {
  if (!t) return true;
  if (t.kind === 'int') return t.signed;
  if (t.kind === 'aggregate') return t.signed;
  if (t.kind === 'unknown') return true;
  return false;
}

/** Type used for a printf/print argument (aggregates print as their integer value). */
function recordType(x: Expr): TraceType {
  const t = x.type ?? I64T;
  if (t.kind === 'aggregate') return { kind: 'int', bits: 64, signed: t.signed || t.fn === 'avg' };
  return t;
}

function offsetPlace(p: Place, off: number): Place {
  return { ...p, off: p.off + off };
}

function stringOf(e: Expr | undefined): string | undefined {
  let x = e;
  while (x && x.kind === 'BlockExpr' && x.block.expr && x.block.stmts.length === 0) x = x.block.expr;
  if (x?.kind === 'Call' && x.name === 'str' && x.args.length === 1) x = x.args[0];
  return x?.kind === 'String' ? x.value : undefined;
}

/** pton(): an IPv4 (4 bytes) or IPv6 (16 bytes) address literal in network order; undefined when invalid. */
export function ptonBytes(text: string): Uint8Array | undefined {
  if (!text.includes(':')) {
    const parts = text.split('.');
    if (parts.length !== 4 || parts.some((p) => !/^[0-9]{1,3}$/.test(p) || Number(p) > 255)) return undefined;
    return Uint8Array.from(parts.map(Number));
  }
  let s = text;
  const tail: number[] = [];
  const v4 = /^(.*:)([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$/.exec(s);
  if (v4) {
    const b = ptonBytes(v4[2] as string);
    if (!b) return undefined;
    tail.push((b[0] as number) * 256 + (b[1] as number), (b[2] as number) * 256 + (b[3] as number));
    s = (v4[1] as string).endsWith('::') ? (v4[1] as string) : (v4[1] as string).slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string): number[] | undefined => {
    if (h === '') return [];
    const g = h.split(':');
    if (g.some((x) => !/^[0-9a-fA-F]{1,4}$/.test(x))) return undefined;
    return g.map((x) => Number.parseInt(x, 16));
  };
  const head = group(halves[0] as string);
  const rest = halves.length === 2 ? group(halves[1] as string) : [];
  if (!head || !rest) return undefined;
  const words = [...head, ...rest, ...tail];
  if (halves.length === 1 ? words.length !== 8 : words.length > 7) return undefined;
  const all = [...head, ...new Array<number>(8 - words.length).fill(0), ...rest, ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** String literal values hold bytes as char codes. */
function stringBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function namedInt(name: string): TraceType | undefined {
  const m = /^(u?)int(8|16|32|64)(_t)?$/.exec(name);
  if (m) return { kind: 'int', bits: Number(m[2]) as 8 | 16 | 32 | 64, signed: m[1] === '' };
  return undefined;
}

/** Constant value of an integer expression, when it has one. */
export function constValue(e: Expr | undefined): bigint | undefined {
  if (!e) return undefined;
  switch (e.kind) {
    case 'Integer':
      return e.value;
    case 'Bool':
      return e.value ? 1n : 0n;
    case 'Unop': {
      const v = constValue(e.operand);
      if (v === undefined) return undefined;
      if (e.op === '-') return -v;
      if (e.op === '~') return ~v;
      if (e.op === '+') return v;
      return undefined;
    }
    case 'Comptime':
      return constValue(e.expr);
    case 'Binop': {
      const l = constValue(e.left);
      const r = constValue(e.right);
      if (l === undefined || r === undefined) return undefined;
      const ops: Record<string, (x: bigint, y: bigint) => bigint> = {
        '+': (x, y) => x + y,
        '-': (x, y) => x - y,
        '*': (x, y) => x * y,
        '&': (x, y) => x & y,
        '|': (x, y) => x | y,
        '^': (x, y) => x ^ y,
      };
      const op = ops[e.op];
      return op ? BigInt.asIntN(64, op(l, r)) : undefined;
    }
    case 'Cast': {
      const v = constValue(e.expr);
      const t = e.type;
      if (v === undefined || t?.kind !== 'int') return undefined;
      return t.signed ? BigInt.asIntN(t.bits, v) : BigInt.asUintN(t.bits, v);
    }
    default:
      return undefined;
  }
}

let kallsymsCache: Map<string, bigint> | undefined;
function kallsym(name: string): bigint | undefined {
  if (!kallsymsCache) {
    kallsymsCache = new Map();
    try {
      const text = readFileSync('/proc/kallsyms', 'utf8');
      for (const line of text.split('\n')) {
        const p = line.split(' ');
        if (p[2] && !kallsymsCache.has(p[2])) kallsymsCache.set(p[2], BigInt(`0x${p[0]}`));
      }
    } catch {
      // none
    }
  }
  return kallsymsCache.get(name);
}
