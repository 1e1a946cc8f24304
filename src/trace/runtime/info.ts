/**
 * `tsbpf trace --info`: bpftrace's report of what this system can do (System, Build, Kernel helpers,
 * Kernel features, Map types, Probe types), made by trying each thing on the running kernel: programs
 * calling a helper, maps created, fentry/iter programs loaded and attached. Where the kernel cannot be
 * asked (no BPF here) every probed line says `no`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { release, type, version } from 'node:os';
import { HELPERS } from '../../catalog/helpers.js';

/** bpftrace's helper lines and the helper (and program type) each stands for. */
const HELPER_LINES: [string, string, string][] = [
  ['probe_read', 'probe_read', 'kprobe'],
  ['probe_read_str', 'probe_read_str', 'kprobe'],
  ['probe_read_user', 'probe_read_user', 'kprobe'],
  ['probe_read_user_str', 'probe_read_user_str', 'kprobe'],
  ['probe_read_kernel', 'probe_read_kernel', 'kprobe'],
  ['probe_read_kernel_str', 'probe_read_kernel_str', 'kprobe'],
  ['get_current_cgroup_id', 'get_current_cgroup_id', 'kprobe'],
  ['send_signal', 'send_signal', 'kprobe'],
  ['override_return', 'override_return', 'kprobe'],
  ['get_boot_ns', 'ktime_get_boot_ns', 'kprobe'],
  ['dpath', 'd_path', 'tracing'],
  ['skboutput', 'skb_output', 'tracing'],
  ['get_tai_ns', 'ktime_get_tai_ns', 'kprobe'],
  ['get_func_ip', 'get_func_ip', 'kprobe'],
  ['jiffies64', 'jiffies64', 'kprobe'],
  ['for_each_map_elem', 'for_each_map_elem', 'kprobe'],
  ['get_ns_current_pid_tgid', 'get_ns_current_pid_tgid', 'kprobe'],
  ['lookup_percpu_elem', 'map_lookup_percpu_elem', 'kprobe'],
];

const MAP_LINES: [string, string][] = [
  ['hash', 'hash'],
  ['percpu hash', 'percpu_hash'],
  ['array', 'array'],
  ['percpu array', 'percpu_array'],
  ['stack_trace', 'stack_trace'],
  ['perf_event_array', 'perf_event_array'],
  ['ringbuf', 'ringbuf'],
];

const yn = (ok: boolean | undefined) => (ok ? 'yes' : 'no');

/** KERNEL_VERSION(a, b, c) of the running kernel. */
function kernelVersion(): number {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return m ? (Number(m[1]) << 16) + (Number(m[2]) << 8) : 0;
}

/** Loads a tracing program of this attach type against a vmlinux function; with `attach`, links it too. */
async function tracingWorks(attachType: number, func: string, attach: boolean): Promise<boolean> {
  const { kernelBtf } = await import('../../kernel/btf-load.js');
  const { closeFd, loadProgram } = await import('../../kernel/program.js');
  const { linkCreate } = await import('../../kernel/link.js');
  const id = kernelBtf()?.findAllByName(func, 'FUNC')[0];
  if (id === undefined) return false;
  let fd: number | undefined;
  try {
    fd = loadProgram({
      type: 'tracing',
      insns: [
        { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
        { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
      ],
      expectedAttachType: attachType,
      attachBtfId: id,
    }).fd;
    if (attach) closeFd(linkCreate(fd, 0, attachType));
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeFd(fd);
  }
}

/** The report, as bpftrace's --info prints it. */
export async function infoReport(): Promise<string> {
  const { bpfAvailable } = await import('../../kernel/program.js');
  const bpf = bpfAvailable().ok;
  const probe = bpf ? await import('../../kernel/probe.js') : undefined;
  const { probePmu } = await import('../../kernel/perf.js');
  const kv = kernelVersion();
  const at = (major: number, minor: number) => kv >= (major << 16) + (minor << 8);
  const tracefs = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].find((d) => existsSync(`${d}/events`));
  const kprobes =
    probePmu('kprobe') !== undefined || (tracefs !== undefined && existsSync(`${tracefs}/kprobe_events`));
  const uprobes = probePmu('uprobe') !== undefined;
  let moduleBtf = false;
  try {
    moduleBtf = readdirSync('/sys/kernel/btf').some((f) => f !== 'vmlinux');
  } catch {
    moduleBtf = false;
  }
  const helper = (name: string, progType: string): boolean => {
    const h = HELPERS.find((x) => x.name === name);
    return probe !== undefined && h !== undefined && probe.probeHelper(progType, h.id).ok;
  };
  const fentry = bpf && (await tracingWorks(24, 'bpf_fentry_test1', true));
  const iter = bpf && (await tracingWorks(28, 'bpf_iter_task', false));
  const lines = [
    'System',
    `  OS: ${type()} ${release()} ${version()}`,
    `  Arch: ${process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch}`,
    '',
    'Build',
    '  version: v0.17.0 (tsbpf trace 0.1.0)',
    '  LLVM: none (tsbpf generates eBPF itself)',
    '  unsafe uprobe: no',
    '  bfd: no',
    '  libdw (DWARF support): no',
    '',
    'Kernel helpers',
    ...HELPER_LINES.map(([label, name, progType]) => `  ${label}: ${yn(helper(name, progType))}`),
    '',
    'Kernel features',
    `  Instruction limit: ${at(5, 2) ? 1000000 : 4096}`,
    `  Loop support: ${yn(at(5, 3))}`,
    `  btf: ${yn(existsSync('/sys/kernel/btf/vmlinux'))}`,
    `  module btf: ${yn(moduleBtf)}`,
    `  map batch: ${yn(at(5, 6))}`,
    `  uprobe refcount: ${yn(existsSync('/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset'))}`,
    '',
    'Map types',
    ...MAP_LINES.map(([label, name]) => `  ${label}: ${yn(probe?.probeMapType(name).ok)}`),
    '',
    'Probe types',
    `  kprobe: ${yn(kprobes)}`,
    `  tracepoint: ${yn(tracefs !== undefined)}`,
    `  perf_event: ${yn(probe?.probeProgramType('perf_event').ok)}`,
    `  fentry: ${yn(fentry)}`,
    `  kprobe_multi: ${yn(kprobes && at(5, 18))}`,
    `  kprobe_session: ${yn(kprobes && at(6, 10))}`,
    `  uprobe_multi: ${yn(uprobes && at(6, 6))}`,
    `  raw_tp_special: ${yn(probe?.probeProgramType('raw_tracepoint').ok)}`,
    `  iter: ${yn(iter)}`,
  ];
  return `${lines.join('\n')}\n`;
}
