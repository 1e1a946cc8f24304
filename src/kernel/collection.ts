/**
 * The kernel Backend: an ObjectSpec loaded into the running kernel as a Collection, the way libbpf's
 * bpf_object__load does it (and cilium/ebpf's NewCollection):
 * 1. global variables set (`constants`), `.kconfig` filled from /proc/config.gz and uname;
 * 2. the object's BTF fixed up and loaded (BPF_BTF_LOAD); without it (or when the kernel refuses it)
 *    everything is loaded without BTF, as libbpf does;
 * 3. maps created in ObjectSpec order (key/value BTF ids, inner map templates, `pinning: by_name` reused
 *    from or pinned to the pin directory), global data filled and `.rodata`/`.kconfig` frozen,
 *    map-in-map initial slots set;
 * 4. programs: CO-RE relocations applied against /sys/kernel/btf/vmlinux, kfunc and ksym references
 *    resolved, then BPF_PROG_LOAD with the map fds as `fd_array` (ObjectSpec keeps MAP_IDX
 *    instructions), func/line info, expected attach type, attach BTF id, flags, verifier log;
 * 5. prog arrays filled from their initial slots (tail calls).
 * Any failure closes what was created and throws. Collection.close() detaches every Link made through
 * it and closes every fd; so does process exit, SIGINT and SIGTERM (see link.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { release } from 'node:os';
import type {
  Backend,
  Collection,
  CollectionOptions,
  Program,
  TestRunOptions,
  TestRunResult,
} from '../backend.js';
import type { Btf } from '../btf/btf.js';
import { vmlinuxBtf } from '../btf/vmlinux.js';
import { TsbpfError } from '../errors.js';
import type { Insn } from '../isa/insn.js';
import { BPF_PSEUDO_BTF_ID, OPCODE_LD_IMM64 } from '../isa/opcodes.js';
import type { ExternSpec, MapSpec, ObjectSpec, ProgramSpec } from '../object/spec.js';
import { objPin } from './info.js';
import { type AttachOptions, attachProgram, type Link, registerCleanup, unregisterCleanup } from './link.js';
import { KernelMap, possibleCpus } from './map.js';
import { mapFile } from './perf.js';
import { closeFd, loadProgram, type ProgramInfo, programInfo, testRun } from './program.js';

/**
 * What only some objects need (object BTF, CO-RE, constants, .kconfig), loaded on first use: these modules
 * are most of this one's import cost, and a plain object (every bpftrace program) uses none of them. load()
 * is synchronous, so they come through require() of ES modules (Node >= 20.19, Bun); where that is missing
 * they are imported up front.
 */
const requireModule = createRequire(import.meta.url);
const upfront = process.features.require_module
  ? undefined
  : {
      core: await import('../btf/core.js'),
      spec: await import('../object/spec.js'),
      btfLoad: await import('./btf-load.js'),
    };
const lazyModules = {
  core: (): typeof import('../btf/core.js') => upfront?.core ?? requireModule('../btf/core.js'),
  spec: (): typeof import('../object/spec.js') => upfront?.spec ?? requireModule('../object/spec.js'),
  btfLoad: (): typeof import('./btf-load.js') => upfront?.btfLoad ?? requireModule('./btf-load.js'),
  zlib: (): typeof import('node:zlib') => requireModule('node:zlib'),
};

/** The running kernel's BTF (btf-load.ts's kernelBtf, without importing that module). */
const kernelBtf = () => vmlinuxBtf(mapFile);

export interface KernelCollectionOptions extends CollectionOptions {
  /** Directory of `pinning: by_name` maps (libbpf's pin_root_path). Default /sys/fs/bpf. */
  pinPath?: string;
  /** Initial verifier log size (grown when the log is truncated). */
  logSize?: number;
  /** Skip CO-RE relocation (default: applied when a program has CO-RE records). */
  noCore?: boolean;
}

const BPF_F_SLEEPABLE = 1 << 4;
const BPF_F_XDP_HAS_FRAGS = 1 << 5;
const BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4;
/** Map types libbpf creates without key/value BTF (the kernel refuses or ignores it for them). */
const NO_BTF_MAP_TYPES = new Set([3, 4, 7, 8, 12, 13, 14, 15, 16, 17, 18, 22, 23, 25]);

/** A program loaded into the kernel. */
export class KernelProgram implements Program {
  readonly name: string;
  readonly type: string;
  /** The verifier log ('' unless a log level was asked for). */
  readonly log: string;
  private fdValue: number;
  private readonly links = new Set<Link>();

  constructor(
    readonly spec: ProgramSpec,
    fd: number,
    log: string,
  ) {
    this.name = spec.name;
    this.type = spec.type ?? `type ${spec.typeId}`;
    this.fdValue = fd;
    this.log = log;
  }

  get fd(): number {
    if (this.fdValue < 0) throw new TsbpfError('usage', `program '${this.name}' is closed`);
    return this.fdValue;
  }

  get closed(): boolean {
    return this.fdValue < 0;
  }

  testRun(options: TestRunOptions = {}): TestRunResult {
    // raw_tracepoint and syscall test runs take ctx_in only: ctx_out or a repeat count is EINVAL.
    const ctxOnly = this.type === 'raw_tracepoint' || this.type === 'syscall';
    return testRun(this.fd, ctxOnly ? { ...options, ctxOut: false, repeat: options.repeat ?? 0 } : options);
  }

  info(): ProgramInfo {
    return programInfo(this.fd);
  }

  /** BPF_OBJ_PIN at a path on a bpf filesystem. */
  pin(path: string): void {
    objPin(this.fd, path);
  }

  /**
   * Attaches the program where its SEC() name says (or where `options` say): tracepoint, raw
   * tracepoint, uprobe, perf event, XDP, TC (tcx), cgroup, socket filter. The Link is detached on
   * link.close(), on the collection's close(), and on exit.
   */
  attach(options: AttachOptions = {}): Link {
    const link = attachProgram(this, options);
    this.links.add(link);
    link.onClose(() => this.links.delete(link));
    return link;
  }

  close(): void {
    for (const l of [...this.links]) l.close();
    if (this.fdValue < 0) return;
    const fd = this.fdValue;
    this.fdValue = -1;
    closeFd(fd);
  }
}

/** The maps and programs of one object in the kernel. */
export class KernelCollection implements Collection {
  readonly programs: ReadonlyMap<string, KernelProgram>;
  readonly maps: ReadonlyMap<string, KernelMap>;
  /** The object's BTF in the kernel (undefined when loaded without). */
  btfFd: number | undefined;
  /** Non-fatal things that happened while loading (BTF refused, map retried without BTF...). */
  readonly warnings: string[];
  private closed = false;
  private readonly closer = () => this.close();

  constructor(
    readonly spec: ObjectSpec,
    programs: Map<string, KernelProgram>,
    maps: Map<string, KernelMap>,
    btfFd: number | undefined,
    warnings: string[],
  ) {
    this.programs = programs;
    this.maps = maps;
    this.btfFd = btfFd;
    this.warnings = warnings;
    registerCleanup(this.closer);
  }

  program(name: string): KernelProgram {
    const p = this.programs.get(name);
    if (!p)
      throw new TsbpfError(
        'usage',
        `no program '${name}' (have: ${[...this.programs.keys()].join(', ') || 'none'})`,
      );
    return p;
  }

  map(name: string): KernelMap {
    const m = this.maps.get(name);
    if (!m)
      throw new TsbpfError('usage', `no map '${name}' (have: ${[...this.maps.keys()].join(', ') || 'none'})`);
    return m;
  }

  /** Attaches every program by its SEC() name (skipping those that spell no target); closes them on failure. */
  attachAll(options: { skipUnattachable?: boolean } = {}): Link[] {
    const links: Link[] = [];
    try {
      for (const p of this.programs.values()) {
        try {
          links.push(p.attach());
        } catch (e) {
          if (options.skipUnattachable && e instanceof TsbpfError && e.code === 'usage') continue;
          throw e;
        }
      }
    } catch (e) {
      for (const l of links) l.close();
      throw e;
    }
    return links;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    unregisterCleanup(this.closer);
    for (const p of this.programs.values()) p.close();
    for (const m of this.maps.values()) m.close();
    if (this.btfFd !== undefined) closeFd(this.btfFd);
    this.btfFd = undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// .kconfig

let kconfigCache: Map<string, string> | null | undefined;

/** CONFIG_* values of the running kernel (/proc/config.gz, else /boot/config-$(uname -r)). */
export function kernelConfig(): Map<string, string> | undefined {
  if (kconfigCache !== undefined) return kconfigCache ?? undefined;
  let text: string | undefined;
  try {
    text = lazyModules.zlib().gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {
    try {
      text = readFileSync(`/boot/config-${release()}`, 'utf8');
    } catch {
      text = undefined;
    }
  }
  if (text === undefined) {
    kconfigCache = null;
    return undefined;
  }
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (line.startsWith('CONFIG_') && eq > 0) m.set(line.slice(0, eq), line.slice(eq + 1));
  }
  kconfigCache = m;
  return m;
}

/** KERNEL_VERSION(a, b, c) of `uname -r`, as libbpf computes LINUX_KERNEL_VERSION. */
export function kernelVersionCode(): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release());
  if (!m) return 0;
  return (Number(m[1]) << 16) + (Number(m[2]) << 8) + Math.min(Number(m[3] ?? 0), 255);
}

function writeInt(dst: Uint8Array, off: number, size: number, value: bigint): void {
  let u = BigInt.asUintN(size * 8, value);
  for (let i = 0; i < size; i++) {
    dst[off + i] = Number(u & 0xffn);
    u >>= 8n;
  }
}

function fillKconfig(externs: readonly ExternSpec[], data: Uint8Array): void {
  const config = kernelConfig();
  for (const e of externs) {
    const k = e.kconfig;
    if (e.kind !== 'kconfig' || !k) continue;
    let value: string | undefined;
    if (e.name === 'LINUX_KERNEL_VERSION') {
      writeInt(data, k.offset, k.size, BigInt(kernelVersionCode()));
      continue;
    }
    if (e.name === 'LINUX_HAS_BPF_COOKIE' || e.name === 'LINUX_HAS_SYSCALL_WRAPPER') value = 'y';
    else if (e.name.startsWith('CONFIG_')) value = config?.get(e.name);
    if (value === undefined) {
      if (e.weak) continue;
      throw new TsbpfError(
        'kernel',
        `extern (kcfg) '${e.name}': value not found in the kernel configuration`,
      );
    }
    const bad = () =>
      new TsbpfError('kernel', `extern (kcfg) '${e.name}': value '${value}' does not fit ${k.type}`);
    switch (k.type) {
      case 'bool':
        if (value !== 'y' && value !== 'n') throw bad();
        data[k.offset] = value === 'y' ? 1 : 0;
        break;
      case 'tristate':
        if (value !== 'y' && value !== 'n' && value !== 'm') throw bad();
        writeInt(data, k.offset, k.size, value === 'y' ? 1n : value === 'm' ? 2n : 0n);
        break;
      case 'char':
        if (value.length !== 1) throw bad();
        data[k.offset] = value.charCodeAt(0);
        break;
      case 'int': {
        let n: bigint;
        try {
          n = BigInt(value);
        } catch {
          throw bad();
        }
        writeInt(data, k.offset, k.size, n);
        break;
      }
      case 'char_array': {
        if (!value.startsWith('"')) throw bad();
        const s = new TextEncoder().encode(value.slice(1, value.endsWith('"') ? -1 : undefined));
        const n = Math.min(s.length, k.size - 1);
        data.set(s.subarray(0, n), k.offset);
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// ksyms and kfuncs

let kallsyms: Map<string, bigint> | undefined;

function kallsymsAddress(name: string): bigint | undefined {
  if (!kallsyms) {
    kallsyms = new Map();
    try {
      for (const line of readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
        const parts = line.split(' ');
        if (parts.length < 3 || parts[3] !== undefined) continue; // module symbols have a 4th column
        if (!kallsyms.has(parts[2])) kallsyms.set(parts[2], BigInt(`0x${parts[0]}`));
      }
    } catch {
      // no kallsyms: every ksym is missing
    }
  }
  return kallsyms.get(name);
}

function resolveExterns(
  prog: ProgramSpec,
  insns: Insn[],
  slotToIndex: Map<number, number>,
  spec: ObjectSpec,
): void {
  for (const ref of prog.references) {
    if (ref.kind !== 'ksym' && ref.kind !== 'kfunc') continue;
    const ext = spec.externs.find((e) => e.name === ref.extern);
    const insn = insns[slotToIndex.get(ref.pc) ?? -1];
    if (!ext || !insn) continue;
    const vmlinux = kernelBtf();
    if (ref.kind === 'kfunc') {
      const id = vmlinux?.findAllByName(ext.name, 'FUNC')[0];
      if (id === undefined) {
        if (ext.weak) continue; // libbpf leaves imm 0: the verifier refuses the call if it is reachable
        throw new TsbpfError('kernel', `prog '${prog.name}': kfunc '${ext.name}' not found in kernel BTF`);
      }
      insn.imm = id;
      insn.off = 0;
    } else if (ext.ksym && ext.ksym.typeId !== 0 && vmlinux) {
      const id = vmlinux.findAllByName(ext.name, 'VAR')[0];
      if (id === undefined) {
        if (ext.weak) continue;
        throw new TsbpfError('kernel', `prog '${prog.name}': ksym '${ext.name}' not found in kernel BTF`);
      }
      insn.src = BPF_PSEUDO_BTF_ID;
      insn.imm = id;
      insn.imm2 = 0;
    } else {
      const addr = kallsymsAddress(ext.name);
      if (addr === undefined && !ext.weak)
        throw new TsbpfError('kernel', `prog '${prog.name}': ksym '${ext.name}' not found in /proc/kallsyms`);
      const a = addr ?? 0n;
      insn.src = 0;
      insn.imm = Number(BigInt.asIntN(32, a & 0xffffffffn));
      insn.imm2 = Number(BigInt.asIntN(32, a >> 32n));
    }
  }
}

/** The vmlinux BTF id a SEC("fentry/..."), tp_btf, lsm or iter program attaches to. */
function attachBtfId(prog: ProgramSpec): number | undefined {
  if (!prog.sectionFlags.includes('attach_btf')) return undefined;
  const target = prog.attachTarget;
  if (target?.kind !== 'btf')
    throw new TsbpfError('usage', `prog '${prog.name}': SEC("${prog.section}") names no BTF attach target`);
  const vmlinux = kernelBtf();
  if (!vmlinux)
    throw new TsbpfError('kernel', `prog '${prog.name}': needs kernel BTF (/sys/kernel/btf/vmlinux)`);
  let name = target.name;
  let kind: 'FUNC' | 'TYPEDEF' = 'FUNC';
  if (prog.attachType === 'trace_raw_tp') {
    name = `btf_trace_${name}`;
    kind = 'TYPEDEF';
  } else if (prog.attachType === 'lsm_mac' || prog.attachType === 'lsm_cgroup') name = `bpf_lsm_${name}`;
  else if (prog.attachType === 'trace_iter') name = `bpf_iter_${name}`;
  else if (prog.type === 'ext')
    throw new TsbpfError(
      'usage',
      `prog '${prog.name}': freplace programs need a target program (not supported)`,
    );
  const id = vmlinux.findAllByName(name, kind)[0];
  if (id === undefined)
    throw new TsbpfError('kernel', `prog '${prog.name}': attach target '${name}' not found in kernel BTF`);
  return id;
}

/** func_info / line_info of a linked program, with the string offsets of the loaded BTF. */
function btfInfo(spec: ObjectSpec, prog: ProgramSpec) {
  const ext = spec.btfExt;
  const funcInfo: { insnOff: number; typeId: number }[] = [];
  const lineInfo: { insnOff: number; fileNameOff: number; lineOff: number; lineCol: number }[] = [];
  if (!ext) return { funcInfo, lineInfo };
  for (const pf of prog.functions) {
    const inFn = (insnOff: number) => {
      const idx = insnOff / 8;
      return idx >= pf.secInsnOff && idx < pf.secInsnOff + pf.slotCount ? idx - pf.secInsnOff + pf.start : -1;
    };
    for (const part of ext.funcInfo) {
      if (part.section !== pf.section) continue;
      for (const r of part.records) {
        const pc = inFn(r.insnOff);
        if (pc >= 0) funcInfo.push({ insnOff: pc, typeId: r.typeId });
      }
    }
    for (const part of ext.lineInfo) {
      if (part.section !== pf.section) continue;
      for (const r of part.records) {
        const pc = inFn(r.insnOff);
        if (pc >= 0)
          lineInfo.push({
            insnOff: pc,
            fileNameOff: r.fileNameOff,
            lineOff: r.lineOff,
            lineCol: (r.lineNum << 10) | (r.col & 0x3ff),
          });
      }
    }
  }
  funcInfo.sort((a, b) => a.insnOff - b.insnOff);
  lineInfo.sort((a, b) => a.insnOff - b.insnOff);
  return { funcInfo, lineInfo };
}

function mapCompatible(m: KernelMap, s: MapSpec, maxEntries: number): string | undefined {
  if (m.type !== s.typeId) return `type ${m.typeName}, expected ${s.type}`;
  if (m.keySize !== s.keySize) return `key size ${m.keySize}, expected ${s.keySize}`;
  if (m.valueSize !== s.valueSize) return `value size ${m.valueSize}, expected ${s.valueSize}`;
  if (m.maxEntries !== maxEntries) return `max_entries ${m.maxEntries}, expected ${maxEntries}`;
  if (m.flags !== s.flags) return `map_flags 0x${m.flags.toString(16)}, expected 0x${s.flags.toString(16)}`;
  return undefined;
}

function kernelObjName(name: string): string {
  return name.slice(0, 15).replace(/[^A-Za-z0-9_.]/g, '_');
}

function loadCollection(spec: ObjectSpec, options: KernelCollectionOptions): KernelCollection {
  const warnings: string[] = [];
  const hostBigEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;
  if (spec.bigEndian !== hostBigEndian)
    throw new TsbpfError(
      'usage',
      `object '${spec.name}' is ${spec.bigEndian ? 'big' : 'little'}-endian; this kernel runs ${hostBigEndian ? 'big' : 'little'}-endian programs (libbpf: endianness mismatch)`,
    );
  // Global data: per-collection copies, with the caller's values set.
  const maps = spec.maps.map((m) => ({ ...m, data: m.data?.slice() }));
  const work: ObjectSpec = { ...spec, maps };
  for (const [name, value] of Object.entries(options.constants ?? {}))
    lazyModules.spec().setVariable(work, name, value);
  const kconfig = maps.find((m) => m.kind === 'kconfig');
  if (kconfig) {
    kconfig.data ??= new Uint8Array(kconfig.valueSize);
    fillKconfig(spec.externs, kconfig.data);
  }

  const created: KernelMap[] = [];
  const loaded: KernelProgram[] = [];
  let btfFd: number | undefined;
  const toPin: { map: KernelMap; path: string }[] = [];
  try {
    if (spec.btf) {
      try {
        btfFd = lazyModules.btfLoad().loadObjectBtf(spec)?.fd;
      } catch (e) {
        if (e instanceof TsbpfError && e.details.errno === 1) throw e;
        warnings.push(`BTF not loaded (continuing without it, as libbpf does): ${(e as Error).message}`);
      }
    }

    // Maps.
    const mapsByName = new Map<string, KernelMap>();
    const fdArray: number[] = [];
    const pinDir = options.pinPath ?? '/sys/fs/bpf';
    for (const m of maps) {
      const maxEntries =
        m.typeId === BPF_MAP_TYPE_PERF_EVENT_ARRAY && m.maxEntries === 0 ? possibleCpus() : m.maxEntries;
      let km: KernelMap | undefined;
      const pinPath = m.pinning === 'by_name' ? `${pinDir}/${m.name}` : undefined;
      if (pinPath && existsSync(pinPath)) {
        km = KernelMap.pinned(pinPath);
        const why = mapCompatible(km, m, maxEntries);
        if (why) {
          km.close();
          throw new TsbpfError(
            'kernel',
            `map '${m.name}': pinned map at ${pinPath} is incompatible (${why})`,
          );
        }
      } else {
        const innerSpec = (s: MapSpec) => ({
          name: kernelObjName(s.name),
          type: s.typeId,
          keySize: s.keySize,
          valueSize: s.valueSize,
          maxEntries: s.maxEntries,
          flags: s.flags,
          mapExtra: s.mapExtra,
          numaNode: s.numaNode,
        });
        const base = {
          ...innerSpec(m),
          maxEntries,
          ...(m.inner ? { innerMap: innerSpec(m.inner) } : {}),
          ...(m.data ? { contents: [[new Uint8Array(4), m.data]] as [Uint8Array, Uint8Array][] } : {}),
          freeze: m.frozen,
        };
        const withBtf =
          btfFd !== undefined && (m.keyTypeId || m.valueTypeId) && !NO_BTF_MAP_TYPES.has(m.typeId)
            ? { btfFd, btfKeyTypeId: m.keyTypeId, btfValueTypeId: m.valueTypeId }
            : undefined;
        if (withBtf) {
          try {
            km = KernelMap.create({ ...base, ...withBtf });
          } catch (e) {
            if (!(e instanceof TsbpfError) || e.details.errno === 1) throw e;
            warnings.push(
              `map '${m.name}': BPF_MAP_CREATE with BTF failed (${e.message}); retrying without BTF`,
            );
          }
        }
        km ??= KernelMap.create(base);
        if (pinPath) toPin.push({ map: km, path: pinPath });
      }
      created.push(km);
      mapsByName.set(m.name, km);
      fdArray.push(km.fd);
    }
    // Map-in-map initial slots.
    for (const m of maps) {
      if (!m.initialSlots || m.typeId === 3) continue;
      const outer = mapsByName.get(m.name) as KernelMap;
      m.initialSlots.forEach((slot, i) => {
        if (!slot) return;
        const inner = mapsByName.get(slot.name);
        if (!inner)
          throw new TsbpfError('kernel', `map '${m.name}': slot ${i} names unknown map '${slot.name}'`);
        outer.update(u32(i, outer.keySize), u32(inner.fd, 4));
      });
    }

    // Programs.
    const wanted = options.programs ? new Set(options.programs) : undefined;
    if (wanted)
      for (const n of wanted)
        if (!spec.programs.some((p) => p.name === n))
          throw new TsbpfError(
            'usage',
            `no program '${n}' (have: ${spec.programs.map((p) => p.name).join(', ')})`,
          );
    let coreCache: Map<number, number[]> | undefined;
    for (const prog of spec.programs) {
      if (wanted ? !wanted.has(prog.name) : !prog.autoload) continue;
      if (prog.type === undefined)
        throw new TsbpfError(
          'usage',
          `prog '${prog.name}': SEC("${prog.section}") names no program type libbpf knows`,
        );
      let insns: Insn[] = prog.insns.map(({ code, dst, src, off, imm, imm2 }) =>
        imm2 === undefined ? { code, dst, src, off, imm } : { code, dst, src, off, imm, imm2 },
      );
      if (prog.coreRelos.length > 0 && !options.noCore && spec.btf) {
        const target = kernelBtf();
        if (!target)
          throw new TsbpfError('kernel', `prog '${prog.name}': CO-RE needs /sys/kernel/btf/vmlinux`);
        coreCache ??= new Map();
        insns = lazyModules.core().applyCoreRelocations(insns, prog.coreRelos, spec.btf as Btf, target, {
          programs: [{ name: prog.name, slot: 0, slots: prog.slotCount }],
          cache: coreCache,
        }).insns;
      }
      const slotToIndex = new Map<number, number>();
      let slot = 0;
      insns.forEach((insn, i) => {
        slotToIndex.set(slot, i);
        slot += insn.code === OPCODE_LD_IMM64 ? 2 : 1;
      });
      resolveExterns(prog, insns, slotToIndex, spec);
      const info = btfFd !== undefined ? btfInfo(spec, prog) : { funcInfo: [], lineInfo: [] };
      let progFlags = 0;
      if (prog.sectionFlags.includes('sleepable')) progFlags |= BPF_F_SLEEPABLE;
      if (prog.sectionFlags.includes('xdp_frags')) progFlags |= BPF_F_XDP_HAS_FRAGS;
      const btfId = attachBtfId(prog);
      let result: { fd: number; log: string };
      try {
        result = loadProgram({
          type: prog.typeId,
          insns,
          license: spec.license || 'GPL',
          name: kernelObjName(prog.name),
          expectedAttachType: prog.attachTypeId,
          progFlags,
          kernVersion: spec.kernelVersion,
          fdArray,
          ...(btfFd !== undefined ? { btfFd, funcInfo: info.funcInfo, lineInfo: info.lineInfo } : {}),
          ...(btfId !== undefined ? { attachBtfId: btfId } : {}),
          logLevel: options.logLevel ?? 0,
          ...(options.logSize !== undefined ? { logSize: options.logSize } : {}),
        });
      } catch (e) {
        if (e instanceof TsbpfError) {
          const hint =
            prog.type === 'lsm' && e.details.errno === 1
              ? ' (BPF LSM is not active on this kernel: boot with lsm=...,bpf)'
              : (prog.attachType === 'trace_fentry' ||
                    prog.attachType === 'trace_fexit' ||
                    prog.attachType === 'modify_return') &&
                  e.details.errno === 1
                ? ' (this kernel has no BPF trampolines for fentry/fexit)'
                : '';
          throw new TsbpfError(e.code, `prog '${prog.name}': ${e.message}${hint}`, e.details);
        }
        throw e;
      }
      loaded.push(new KernelProgram(prog, result.fd, result.log));
    }
    const programs = new Map(loaded.map((p) => [p.name, p]));

    // Prog arrays.
    for (const m of maps) {
      if (!m.initialSlots || m.typeId !== 3) continue;
      const arr = mapsByName.get(m.name) as KernelMap;
      m.initialSlots.forEach((slot, i) => {
        const p = slot && programs.get(slot.name);
        if (p) arr.update(u32(i, 4), u32(p.fd, 4));
      });
    }
    for (const { map, path } of toPin) map.pin(path);
    return new KernelCollection(spec, programs, mapsByName, btfFd, warnings);
  } catch (e) {
    for (const p of loaded) p.close();
    for (const m of created) m.close();
    if (btfFd !== undefined) closeFd(btfFd);
    throw e;
  }
}

function u32(n: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

/** The Linux kernel as a Backend: `kernelBackend.load(spec)` loads an object through bpf(2). */
export interface KernelBackend extends Backend {
  readonly name: 'kernel';
  load(spec: ObjectSpec, options?: KernelCollectionOptions): KernelCollection;
}

export const kernelBackend: KernelBackend = {
  name: 'kernel',
  load(spec: ObjectSpec, options: KernelCollectionOptions = {}): KernelCollection {
    return loadCollection(spec, options);
  },
};
