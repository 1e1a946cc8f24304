/**
 * Feature probing, like `bpftool feature probe` but by trying rather than guessing: a program type is
 * there when `r0 = 0; exit` loads with it (types that need an attach BTF id are probed against a kernel
 * function from /sys/kernel/btf/vmlinux); a map type when a small map of it can be created (with the
 * sizes and flags the type demands); a helper for a program type when a program calling it is not
 * refused with "invalid func"/"unknown func"/"program of this type cannot use helper". Also the
 * attach points this kernel has (kprobes, uprobes, tracepoints, tracefs, bpffs, BTF).
 */
import { existsSync } from 'node:fs';
import { HELPERS } from '../catalog/helpers.js';
import { MAP_TYPES } from '../catalog/map-types.js';
import { PROGRAM_TYPES } from '../catalog/program-types.js';
import { TsbpfError } from '../errors.js';
import type { Insn } from '../isa/insn.js';
import { kernelBtf } from './btf-load.js';
import { KernelMap } from './map.js';
import { probePmu } from './perf.js';
import { closeFd, loadProgram } from './program.js';

const RET0: Insn[] = [
  { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
  { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
];

/** Expected attach types a program type needs to load at all (by type name). */
const ATTACH_FOR: Readonly<Record<string, number>> = {
  cgroup_sock_addr: 8, // cgroup_inet4_bind
  cgroup_sockopt: 21, // cgroup_getsockopt
  sk_lookup: 36,
  netfilter: 45,
  tracing: 23, // tp_btf (fentry needs BPF trampolines, which not every kernel has)
  lsm: 27,
};

/** BTF targets for the types that need attach_btf_id. */
function btfTarget(type: string): number | undefined {
  const btf = kernelBtf();
  if (!btf) return undefined;
  if (type === 'tracing') return btf.findAllByName('btf_trace_sched_switch', 'TYPEDEF')[0];
  if (type === 'lsm') return btf.findAllByName('bpf_lsm_file_open', 'FUNC')[0];
  return undefined;
}

export interface ProbeResult {
  ok: boolean;
  /** Why not (errno name and the verifier's last line), when not. */
  reason?: string;
}

function describe(e: unknown): string {
  if (!(e instanceof TsbpfError)) return String(e);
  const last = (e.details.log ?? '')
    .trim()
    .split('\n')
    .filter((l) => l && !l.startsWith('processed') && !l.startsWith('verification time'))
    .pop();
  return last ? `${e.message.split(':')[0]}: ${last}` : e.message;
}

/** Whether a program type loads. */
export function probeProgramType(name: string): ProbeResult {
  const t = PROGRAM_TYPES.find((p) => p.name === name);
  if (!t) return { ok: false, reason: 'unknown program type' };
  if (t.id === 0) return { ok: false, reason: 'unspec' };
  // As libbpf_probe_bpf_prog_type: types that cannot load without a target are there when the kernel
  // refuses the missing target (EINVAL) rather than the type; struct_ops answers ENOTSUPP.
  const expectedErrno: Readonly<Record<string, number>> = { tracing: 22, lsm: 22, ext: 22, struct_ops: 524 };
  try {
    const attachBtfId = btfTarget(name);
    const { fd } = loadProgram({
      type: t.id,
      insns: RET0,
      expectedAttachType: ATTACH_FOR[name] ?? 0,
      progFlags: name === 'syscall' ? 1 << 4 : 0,
      ...(attachBtfId !== undefined ? { attachBtfId } : {}),
    });
    closeFd(fd);
    return { ok: true };
  } catch (e) {
    const errno = e instanceof TsbpfError ? e.details.errno : undefined;
    if (expectedErrno[name] !== undefined && errno === expectedErrno[name]) return { ok: true };
    return { ok: false, reason: describe(e) };
  }
}

/** A spec that BPF_MAP_CREATE accepts for each map type (or undefined for types needing BTF/vmlinux types). */
function mapProbeSpec(name: string): Parameters<typeof KernelMap.create>[0] | undefined {
  const base = { type: name, keySize: 4, valueSize: 4, maxEntries: 1 };
  switch (name) {
    case 'unspec':
    case 'struct_ops':
      return undefined;
    case 'lpm_trie':
      return { ...base, keySize: 8, flags: 1 /* NO_PREALLOC */ };
    case 'queue':
    case 'stack':
    case 'bloom_filter':
      return { ...base, keySize: 0 };
    case 'ringbuf':
    case 'user_ringbuf':
      return { ...base, keySize: 0, valueSize: 0, maxEntries: 4096 };
    case 'arena':
      return { ...base, keySize: 0, valueSize: 0, maxEntries: 1, flags: 1 << 10 /* MMAPABLE */ };
    case 'cgroup_storage':
    case 'percpu_cgroup_storage':
      return { ...base, keySize: 8, maxEntries: 0 };
    case 'array_of_maps':
    case 'hash_of_maps':
      return { ...base, innerMap: { type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 } };
    case 'stack_trace':
      return { ...base, valueSize: 8 };
    default:
      return base;
  }
}

/** Map types whose creation needs key/value BTF (local storage): probed as "needs BTF". */
const NEEDS_BTF = new Set(['sk_storage', 'inode_storage', 'task_storage', 'cgrp_storage']);

/** Whether a map type can be created. */
export function probeMapType(name: string): ProbeResult {
  const spec = mapProbeSpec(name);
  if (!spec) return { ok: false, reason: 'not probed (needs a BTF value type)' };
  if (NEEDS_BTF.has(name)) {
    // The kernel checks the type exists before BTF: EINVAL "needs BTF" means it is there.
    try {
      KernelMap.create({ ...spec, maxEntries: 0, flags: 1 }).close();
      return { ok: true };
    } catch (e) {
      const errno = e instanceof TsbpfError ? e.details.errno : undefined;
      return errno === 22 ? { ok: true } : { ok: false, reason: describe(e) };
    }
  }
  try {
    KernelMap.create(spec).close();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: describe(e) };
  }
}

/** Whether a program type may call a helper. */
export function probeHelper(progType: string, helperId: number): ProbeResult {
  const t = PROGRAM_TYPES.find((p) => p.name === progType);
  if (!t) return { ok: false, reason: 'unknown program type' };
  const insns: Insn[] = [{ code: 0x85, dst: 0, src: 0, off: 0, imm: helperId }, ...RET0];
  try {
    const attachBtfId = btfTarget(progType);
    const { fd } = loadProgram({
      type: t.id,
      insns,
      expectedAttachType: ATTACH_FOR[progType] ?? 0,
      progFlags: progType === 'syscall' ? 1 << 4 : 0,
      ...(attachBtfId !== undefined ? { attachBtfId } : {}),
      logLevel: 1,
    });
    closeFd(fd);
    return { ok: true };
  } catch (e) {
    const log = e instanceof TsbpfError ? (e.details.log ?? '') : '';
    if (
      /invalid func |unknown func |cannot use helper|helper call is not allowed|not supported in this program type/.test(
        log,
      )
    )
      return { ok: false, reason: describe(e) };
    if (e instanceof TsbpfError && (e.details.errno === 22 || e.details.errno === 13) && log)
      return { ok: true };
    return { ok: false, reason: describe(e) };
  }
}

export interface FeatureReport {
  system: { key: string; ok: boolean; text: string }[];
  programTypes: { name: string; ok: boolean; reason?: string }[];
  mapTypes: { name: string; ok: boolean; reason?: string }[];
  /** Helpers per available program type (only when asked for). */
  helpers?: { progType: string; helpers: string[] }[];
}

/** Everything: system facts, program types, map types and (optionally) helpers per program type. */
export function probeFeatures(
  options: { helpers?: boolean; progTypes?: readonly string[] } = {},
): FeatureReport {
  const system = [
    { key: 'have_bpf_syscall', ok: true, text: 'bpf() syscall is available' },
    {
      key: 'have_btf_vmlinux',
      ok: existsSync('/sys/kernel/btf/vmlinux'),
      text: 'kernel BTF (/sys/kernel/btf/vmlinux)',
    },
    {
      key: 'have_tracefs',
      ok: existsSync('/sys/kernel/tracing/events') || existsSync('/sys/kernel/debug/tracing/events'),
      text: 'tracefs (tracepoints)',
    },
    { key: 'have_bpffs', ok: existsSync('/sys/fs/bpf'), text: 'bpf filesystem at /sys/fs/bpf' },
    { key: 'have_uprobes', ok: probePmu('uprobe') !== undefined, text: 'uprobes (uprobe PMU)' },
    { key: 'have_kprobes', ok: probePmu('kprobe') !== undefined, text: 'kprobes (kprobe PMU)' },
  ];
  const programTypes = PROGRAM_TYPES.filter((t) => t.id !== 0).map((t) => ({
    name: t.name,
    ...probeProgramType(t.name),
  }));
  const mapTypes = MAP_TYPES.filter((t) => t.id !== 0).map((t) => ({
    name: t.name,
    ...probeMapType(t.name),
  }));
  const report: FeatureReport = { system, programTypes, mapTypes };
  if (options.helpers) {
    const wanted = options.progTypes ? new Set(options.progTypes) : undefined;
    report.helpers = programTypes
      .filter((p) => p.ok && (!wanted || wanted.has(p.name)))
      .map((p) => ({
        progType: p.name,
        helpers: HELPERS.filter((h) => h.id !== 0 && probeHelper(p.name, h.id).ok).map(
          (h) => `bpf_${h.name}`,
        ),
      }));
  }
  return report;
}
