/**
 * Verifying the programs of an ObjectSpec: the maps, BTF func_info and global data of the object
 * given to the verifier the way a loader gives them to the kernel, and the result tied back to the
 * C source through the object's .BTF.ext line info.
 *
 *   const spec = readObject(bytes, { path });
 *   const r = verifyProgram(spec, 'xdp_prog', { logLevel: 1 });
 *   if (!r.ok) console.log(r.error.message, r.error.sourceLine);
 */
import type { Btf } from '../btf/btf.js';
import { TsbpfError } from '../errors.js';
import type { Insn } from '../isa/insn.js';
import { BPF_PSEUDO_KFUNC_CALL, OPCODE_LD_IMM64 } from '../isa/opcodes.js';
import type { MapSpec, ObjectSpec, ProgramSpec } from '../object/spec.js';
import type { VerifierFunc, VerifierMap } from './check.js';
import { type VerifyResult, verify } from './index.js';

export interface ObjectVerifyOptions {
  logLevel?: 0 | 1 | 2;
  unprivileged?: boolean;
  /** Default 1_000_000. */
  insnLimit?: number;
  /**
   * The instructions to verify instead of the spec's (e.g. after CO-RE relocation against the
   * target kernel's BTF); same slot layout as ProgramSpec.insns.
   */
  insns?: readonly Insn[];
  /**
   * The target kernel's BTF (/sys/kernel/btf/vmlinux, e.g. src/kernel/btf-load.ts kernelBtf()):
   * resolves kfunc calls and tp_btf/fentry attach targets the way the loader does, and types
   * BTF kernel pointers. Without it programs that need it are refused.
   */
  kernelBtf?: Btf;
}

/** The C source line an instruction came from (.BTF.ext line info). */
export interface SourceLine {
  file: string;
  line: number;
  text: string;
}

export interface ProgramVerifyResult {
  program: string;
  /** Program type name from the catalog (undefined when the SEC() names none). */
  type: string | undefined;
  ok: boolean;
  /** The log in the kernel's format ('' at log level 0). */
  log: string;
  error?: { insn: number; message: string; sourceLine?: SourceLine };
  stats: VerifyResult['stats'];
}

/** map_flags the kernel adds at BPF_MAP_CREATE (dev_map_init_map forces BPF_F_RDONLY_PROG). */
const KERNEL_ADDED_FLAGS: Readonly<Record<number, number>> = { 14: 0x80, 25: 0x80 };

function verifierMap(m: MapSpec): VerifierMap {
  const out: VerifierMap = {
    type: m.typeId,
    keySize: m.keySize,
    valueSize: m.valueSize,
    maxEntries: m.maxEntries,
    flags: m.flags | (KERNEL_ADDED_FLAGS[m.typeId] ?? 0),
  };
  if (m.inner) out.inner = verifierMap(m.inner);
  // .rodata is frozen after libbpf fills it: its bytes are what the program reads. (.kconfig is
  // filled at load time from the running kernel: unknown here.)
  if (m.frozen && m.kind !== 'kconfig' && m.data) out.frozenData = m.data;
  return out;
}

/** The object's maps as the verifier takes them: maps[i] is what MAP_IDX imm=i refers to. */
export function verifierMaps(spec: ObjectSpec): VerifierMap[] {
  return spec.maps.map(verifierMap);
}

/** The BTF func_info records of a program (undefined when the object has no BTF for it). */
export function verifierFuncInfo(spec: ObjectSpec, prog: ProgramSpec): VerifierFunc[] | undefined {
  if (!spec.btf || prog.funcInfo.length === 0) return undefined;
  return prog.funcInfo.map((f) => ({ insn: f.pc, name: f.name }));
}

/** The source line of the instruction at slot `insn`: the last line info at or before it in its function. */
export function sourceLineAt(prog: ProgramSpec, insn: number): SourceLine | undefined {
  const fn = prog.functions.find((f) => insn >= f.start && insn < f.start + f.slotCount);
  let best: ProgramSpec['lineInfo'][number] | undefined;
  for (const l of prog.lineInfo) {
    if (l.pc > insn) continue;
    if (fn && l.pc < fn.start) continue;
    if (!best || l.pc >= best.pc) best = l;
  }
  if (!best) return undefined;
  return { file: best.fileName, line: best.lineNum, text: best.line };
}

function findProgram(spec: ObjectSpec, program: ProgramSpec | string): ProgramSpec {
  if (typeof program !== 'string') return program;
  const p = spec.programs.find((x) => x.name === program);
  if (!p)
    throw new TsbpfError(
      'usage',
      `no program '${program}' (have: ${spec.programs.map((x) => x.name).join(', ') || 'none'})`,
    );
  return p;
}

/** The kernel BTF id a SEC("tp_btf/..."), fentry/fexit, lsm or iter program attaches to (as libbpf finds it). */
function attachTargetId(prog: ProgramSpec, btf: Btf): number | undefined {
  if (!prog.sectionFlags.includes('attach_btf') || prog.attachTarget?.kind !== 'btf') return undefined;
  let name = prog.attachTarget.name;
  let kind: 'FUNC' | 'TYPEDEF' = 'FUNC';
  if (prog.attachType === 'trace_raw_tp') {
    name = `btf_trace_${name}`;
    kind = 'TYPEDEF';
  } else if (prog.attachType === 'lsm_mac' || prog.attachType === 'lsm_cgroup') name = `bpf_lsm_${name}`;
  else if (prog.attachType === 'trace_iter') name = `bpf_iter_${name}`;
  return btf.findAllByName(name, kind)[0];
}

/** Verifies one program of an object with the object's maps, func_info and global data. */
export function verifyProgram(
  spec: ObjectSpec,
  program: ProgramSpec | string,
  options: ObjectVerifyOptions = {},
): ProgramVerifyResult {
  const prog = findProgram(spec, program);
  if (prog.type === undefined) {
    throw new TsbpfError(
      'usage',
      `program '${prog.name}': SEC("${prog.section}") names no program type (use a section libbpf knows)`,
    );
  }
  const funcInfo = verifierFuncInfo(spec, prog);
  const btf = options.kernelBtf;
  let insns = options.insns ?? prog.insns;
  if (btf && prog.references.some((r) => r.kind === 'kfunc')) {
    // the loader's kfunc resolution: imm = the BTF id of the kernel FUNC of that name
    const patched = insns.map((i) => ({ ...i }));
    const bySlot = new Map<number, number>();
    let slot = 0;
    patched.forEach((insn, i) => {
      bySlot.set(slot, i);
      slot += insn.code === OPCODE_LD_IMM64 ? 2 : 1;
    });
    for (const ref of prog.references) {
      if (ref.kind !== 'kfunc') continue;
      const id = btf.findAllByName(ref.extern, 'FUNC')[0];
      const insn = patched[bySlot.get(ref.pc) ?? -1];
      if (id !== undefined && insn?.src === BPF_PSEUDO_KFUNC_CALL) insn.imm = id;
    }
    insns = patched;
  }
  const attachBtfId = btf ? attachTargetId(prog, btf) : undefined;
  const r = verify(insns, {
    progType: prog.typeId,
    expectedAttachType: prog.attachTypeId,
    maps: verifierMaps(spec),
    ...(funcInfo ? { funcInfo } : {}),
    logLevel: options.logLevel ?? 0,
    unprivileged: options.unprivileged ?? false,
    ...(options.insnLimit === undefined ? {} : { insnLimit: options.insnLimit }),
    ...(btf ? { kernelBtf: btf } : {}),
    ...(attachBtfId === undefined ? {} : { attachBtfId }),
  });
  const out: ProgramVerifyResult = {
    program: prog.name,
    type: prog.type,
    ok: r.ok,
    log: r.log,
    stats: r.stats,
  };
  if (r.error) {
    const sourceLine = sourceLineAt(prog, r.error.insn);
    out.error = { ...r.error, ...(sourceLine ? { sourceLine } : {}) };
  }
  return out;
}

/** Verifies the selected programs of an object (default: every program whose SEC() autoloads). */
export function verifyObject(
  spec: ObjectSpec,
  options: ObjectVerifyOptions & { programs?: readonly string[] } = {},
): ProgramVerifyResult[] {
  const { programs, insns: _ignored, ...rest } = options;
  const selected = programs
    ? programs.map((n) => findProgram(spec, n))
    : spec.programs.filter((p) => p.autoload);
  return selected.map((p) => verifyProgram(spec, p, rest));
}

/** `; int x = *p; @ file.c:12`: the kernel's source-line annotation, with where it is. */
export function formatSourceLine(s: SourceLine): string {
  return `; ${s.text.trim()} @ ${s.file.slice(s.file.lastIndexOf('/') + 1)}:${s.line}`;
}
