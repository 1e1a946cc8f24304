/**
 * libbpf's SEC() table (`section_defs[]` in libbpf's src/libbpf.c, libbpf 1.5 era), in its order,
 * and its matching rule, so that a section name maps to the same program type, expected attach
 * type and load flags as libbpf picks. Also the attach target each auto-attaching section spells
 * (what libbpf's `attach_*` functions parse).
 *
 * Matching (`sec_def_matches`): entries are tried in order, first match wins.
 * - `type/` (ends in '/'): the section name must start with it.
 * - `type+`: the section name is exactly `type`, or `type/` followed by anything.
 * - otherwise: exact match.
 */

import { attachTypeByName } from './attach-types.js';
import { programTypeByName } from './program-types.js';

/** libbpf's SEC_* cookie bits, by their meaning. */
export type SectionFlag =
  | 'attachable' // SEC_ATTACHABLE: expected_attach_type is passed at load
  | 'attach_opt' // SEC_EXP_ATTACH_OPT: ...but retried without it on old kernels
  | 'attach_btf' // SEC_ATTACH_BTF: needs attach_btf_id (target from the name)
  | 'sleepable' // SEC_SLEEPABLE: loaded with BPF_F_SLEEPABLE
  | 'xdp_frags' // SEC_XDP_FRAGS: loaded with BPF_F_XDP_HAS_FRAGS
  | 'usdt'; // SEC_USDT: USDT, needs the usdt.bpf.h support maps

/** How the part after the prefix names what to attach to. */
export type TargetSyntax =
  | 'none' // no auto-attach target
  | 'kprobe' // FUNC[+OFFSET]
  | 'kprobe_multi' // glob pattern
  | 'ksyscall' // syscall name
  | 'uprobe' // BINARY:FUNC[+OFFSET] (or BINARY:OFFSET)
  | 'uprobe_multi' // BINARY:PATTERN
  | 'usdt' // BINARY:PROVIDER:NAME
  | 'tracepoint' // CATEGORY/NAME
  | 'raw_tracepoint' // NAME
  | 'btf' // BTF function / hook / iterator name (fentry, lsm, iter, tp_btf, freplace)
  | 'struct_ops'; // struct_ops member name

export interface SectionDef {
  /** As written in libbpf: `kprobe+`, `xdp`, `sk_skb/stream_parser`. */
  readonly sec: string;
  /** Program type name (see PROGRAM_TYPES). */
  readonly progType: string;
  /** Attach type name (see ATTACH_TYPES), or null for 0 / none. */
  readonly attachType: string | null;
  readonly flags: readonly SectionFlag[];
  readonly target: TargetSyntax;
}

type Row = readonly [
  sec: string,
  progType: string,
  attachType: string | null,
  flags: string,
  target?: TargetSyntax,
];

// biome-ignore format: mirrors libbpf's table, one entry per line
const ROWS: readonly Row[] = [
  ['socket', 'socket_filter', null, ''],
  ['sk_reuseport/migrate', 'sk_reuseport', 'sk_reuseport_select_or_migrate', 'attachable'],
  ['sk_reuseport', 'sk_reuseport', 'sk_reuseport_select', 'attachable'],
  ['kprobe+', 'kprobe', null, '', 'kprobe'],
  ['uprobe+', 'kprobe', null, '', 'uprobe'],
  ['uprobe.s+', 'kprobe', null, 'sleepable', 'uprobe'],
  ['kretprobe+', 'kprobe', null, '', 'kprobe'],
  ['uretprobe+', 'kprobe', null, '', 'uprobe'],
  ['uretprobe.s+', 'kprobe', null, 'sleepable', 'uprobe'],
  ['kprobe.multi+', 'kprobe', 'trace_kprobe_multi', '', 'kprobe_multi'],
  ['kretprobe.multi+', 'kprobe', 'trace_kprobe_multi', '', 'kprobe_multi'],
  ['uprobe.multi+', 'kprobe', 'trace_uprobe_multi', '', 'uprobe_multi'],
  ['uretprobe.multi+', 'kprobe', 'trace_uprobe_multi', '', 'uprobe_multi'],
  ['uprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', 'sleepable', 'uprobe_multi'],
  ['uretprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', 'sleepable', 'uprobe_multi'],
  ['ksyscall+', 'kprobe', null, '', 'ksyscall'],
  ['kretsyscall+', 'kprobe', null, '', 'ksyscall'],
  ['usdt+', 'kprobe', null, 'usdt', 'usdt'],
  ['usdt.s+', 'kprobe', null, 'usdt sleepable', 'usdt'],
  ['tc/ingress', 'sched_cls', 'tcx_ingress', ''],
  ['tc/egress', 'sched_cls', 'tcx_egress', ''],
  ['tcx/ingress', 'sched_cls', 'tcx_ingress', ''],
  ['tcx/egress', 'sched_cls', 'tcx_egress', ''],
  ['tc', 'sched_cls', null, ''],
  ['classifier', 'sched_cls', null, ''],
  ['action', 'sched_act', null, ''],
  ['netkit/primary', 'sched_cls', 'netkit_primary', ''],
  ['netkit/peer', 'sched_cls', 'netkit_peer', ''],
  ['tracepoint+', 'tracepoint', null, '', 'tracepoint'],
  ['tp+', 'tracepoint', null, '', 'tracepoint'],
  ['raw_tracepoint+', 'raw_tracepoint', null, '', 'raw_tracepoint'],
  ['raw_tp+', 'raw_tracepoint', null, '', 'raw_tracepoint'],
  ['raw_tracepoint.w+', 'raw_tracepoint_writable', null, '', 'raw_tracepoint'],
  ['raw_tp.w+', 'raw_tracepoint_writable', null, '', 'raw_tracepoint'],
  ['tp_btf+', 'tracing', 'trace_raw_tp', 'attach_btf', 'btf'],
  ['fentry+', 'tracing', 'trace_fentry', 'attach_btf', 'btf'],
  ['fmod_ret+', 'tracing', 'modify_return', 'attach_btf', 'btf'],
  ['fexit+', 'tracing', 'trace_fexit', 'attach_btf', 'btf'],
  ['fentry.s+', 'tracing', 'trace_fentry', 'attach_btf sleepable', 'btf'],
  ['fmod_ret.s+', 'tracing', 'modify_return', 'attach_btf sleepable', 'btf'],
  ['fexit.s+', 'tracing', 'trace_fexit', 'attach_btf sleepable', 'btf'],
  ['freplace+', 'ext', null, 'attach_btf', 'btf'],
  ['lsm+', 'lsm', 'lsm_mac', 'attach_btf', 'btf'],
  ['lsm.s+', 'lsm', 'lsm_mac', 'attach_btf sleepable', 'btf'],
  ['lsm_cgroup+', 'lsm', 'lsm_cgroup', 'attach_btf', 'btf'],
  ['iter+', 'tracing', 'trace_iter', 'attach_btf', 'btf'],
  ['iter.s+', 'tracing', 'trace_iter', 'attach_btf sleepable', 'btf'],
  ['syscall', 'syscall', null, 'sleepable'],
  ['xdp.frags/devmap', 'xdp', 'xdp_devmap', 'xdp_frags'],
  ['xdp/devmap', 'xdp', 'xdp_devmap', 'attachable'],
  ['xdp.frags/cpumap', 'xdp', 'xdp_cpumap', 'xdp_frags'],
  ['xdp/cpumap', 'xdp', 'xdp_cpumap', 'attachable'],
  ['xdp.frags', 'xdp', 'xdp', 'xdp_frags'],
  ['xdp', 'xdp', 'xdp', 'attachable attach_opt'],
  ['perf_event', 'perf_event', null, ''],
  ['lwt_in', 'lwt_in', null, ''],
  ['lwt_out', 'lwt_out', null, ''],
  ['lwt_xmit', 'lwt_xmit', null, ''],
  ['lwt_seg6local', 'lwt_seg6local', null, ''],
  ['sockops', 'sock_ops', 'cgroup_sock_ops', 'attachable attach_opt'],
  ['sk_skb/stream_parser', 'sk_skb', 'sk_skb_stream_parser', 'attachable attach_opt'],
  ['sk_skb/stream_verdict', 'sk_skb', 'sk_skb_stream_verdict', 'attachable attach_opt'],
  ['sk_skb', 'sk_skb', null, ''],
  ['sk_msg', 'sk_msg', 'sk_msg_verdict', 'attachable attach_opt'],
  ['lirc_mode2', 'lirc_mode2', 'lirc_mode2', 'attachable attach_opt'],
  ['flow_dissector', 'flow_dissector', 'flow_dissector', 'attachable attach_opt'],
  ['cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress', 'attachable attach_opt'],
  ['cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress', 'attachable attach_opt'],
  ['cgroup/skb', 'cgroup_skb', null, ''],
  ['cgroup/sock_create', 'cgroup_sock', 'cgroup_inet_sock_create', 'attachable'],
  ['cgroup/sock_release', 'cgroup_sock', 'cgroup_inet_sock_release', 'attachable'],
  ['cgroup/sock', 'cgroup_sock', 'cgroup_inet_sock_create', 'attachable attach_opt'],
  ['cgroup/post_bind4', 'cgroup_sock', 'cgroup_inet4_post_bind', 'attachable'],
  ['cgroup/post_bind6', 'cgroup_sock', 'cgroup_inet6_post_bind', 'attachable'],
  ['cgroup/bind4', 'cgroup_sock_addr', 'cgroup_inet4_bind', 'attachable'],
  ['cgroup/bind6', 'cgroup_sock_addr', 'cgroup_inet6_bind', 'attachable'],
  ['cgroup/connect4', 'cgroup_sock_addr', 'cgroup_inet4_connect', 'attachable'],
  ['cgroup/connect6', 'cgroup_sock_addr', 'cgroup_inet6_connect', 'attachable'],
  ['cgroup/connect_unix', 'cgroup_sock_addr', 'cgroup_unix_connect', 'attachable'],
  ['cgroup/sendmsg4', 'cgroup_sock_addr', 'cgroup_udp4_sendmsg', 'attachable'],
  ['cgroup/sendmsg6', 'cgroup_sock_addr', 'cgroup_udp6_sendmsg', 'attachable'],
  ['cgroup/sendmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_sendmsg', 'attachable'],
  ['cgroup/recvmsg4', 'cgroup_sock_addr', 'cgroup_udp4_recvmsg', 'attachable'],
  ['cgroup/recvmsg6', 'cgroup_sock_addr', 'cgroup_udp6_recvmsg', 'attachable'],
  ['cgroup/recvmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_recvmsg', 'attachable'],
  ['cgroup/getpeername4', 'cgroup_sock_addr', 'cgroup_inet4_getpeername', 'attachable'],
  ['cgroup/getpeername6', 'cgroup_sock_addr', 'cgroup_inet6_getpeername', 'attachable'],
  ['cgroup/getpeername_unix', 'cgroup_sock_addr', 'cgroup_unix_getpeername', 'attachable'],
  ['cgroup/getsockname4', 'cgroup_sock_addr', 'cgroup_inet4_getsockname', 'attachable'],
  ['cgroup/getsockname6', 'cgroup_sock_addr', 'cgroup_inet6_getsockname', 'attachable'],
  ['cgroup/getsockname_unix', 'cgroup_sock_addr', 'cgroup_unix_getsockname', 'attachable'],
  ['cgroup/sysctl', 'cgroup_sysctl', 'cgroup_sysctl', 'attachable'],
  ['cgroup/getsockopt', 'cgroup_sockopt', 'cgroup_getsockopt', 'attachable'],
  ['cgroup/setsockopt', 'cgroup_sockopt', 'cgroup_setsockopt', 'attachable'],
  ['cgroup/dev', 'cgroup_device', 'cgroup_device', 'attachable attach_opt'],
  ['struct_ops+', 'struct_ops', null, '', 'struct_ops'],
  ['struct_ops.s+', 'struct_ops', null, 'sleepable', 'struct_ops'],
  ['sk_lookup', 'sk_lookup', 'sk_lookup', 'attachable'],
  ['netfilter', 'netfilter', 'netfilter', ''],
];

/** libbpf's section_defs[], in order. */
export const SECTION_DEFS: readonly SectionDef[] = ROWS.map(([sec, progType, attachType, flags, target]) => ({
  sec,
  progType,
  attachType,
  flags: flags === '' ? [] : (flags.split(' ') as SectionFlag[]),
  target: target ?? 'none',
}));

/** libbpf's `sec_def_matches`. */
export function sectionDefMatches(def: SectionDef, secName: string): boolean {
  const pfx = def.sec;
  if (pfx.endsWith('/')) return secName.startsWith(pfx);
  if (pfx.endsWith('+')) {
    const base = pfx.slice(0, -1);
    if (!secName.startsWith(base)) return false;
    return secName.length === base.length || secName[base.length] === '/';
  }
  return secName === pfx;
}

/** What the part of a section name after the prefix says to attach to. */
export type AttachTarget =
  | { readonly kind: 'kprobe'; readonly func: string; readonly offset: number; readonly retprobe: boolean }
  | { readonly kind: 'kprobe_multi'; readonly pattern: string; readonly retprobe: boolean }
  | { readonly kind: 'ksyscall'; readonly syscall: string; readonly retprobe: boolean }
  | {
      readonly kind: 'uprobe';
      readonly path: string;
      /** Symbol name; undefined when the target is a bare offset. */
      readonly func: string | undefined;
      readonly offset: number;
      readonly retprobe: boolean;
    }
  | {
      readonly kind: 'uprobe_multi';
      readonly path: string;
      readonly pattern: string;
      readonly retprobe: boolean;
    }
  | { readonly kind: 'usdt'; readonly path: string; readonly provider: string; readonly name: string }
  | { readonly kind: 'tracepoint'; readonly category: string; readonly name: string }
  | { readonly kind: 'raw_tracepoint'; readonly name: string }
  | { readonly kind: 'btf'; readonly name: string }
  | { readonly kind: 'struct_ops'; readonly member: string };

export interface SectionMatch {
  readonly def: SectionDef;
  /** Program type id (`enum bpf_prog_type`). */
  readonly progTypeId: number;
  /** Expected attach type value, 0 when the entry has none. */
  readonly attachTypeId: number;
  /** The attach target the name spells; undefined when it spells none (`SEC("kprobe")`). */
  readonly target: AttachTarget | undefined;
  /** Set when the name spells a target in a form libbpf's attach would refuse. */
  readonly targetError?: string;
}

function parseOffset(text: string): number | undefined {
  const n = Number(text);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

function parseTarget(def: SectionDef, secName: string): { target?: AttachTarget; error?: string } {
  const slash = secName.indexOf('/');
  if (slash < 0) return {};
  const head = secName.slice(0, slash);
  const rest = secName.slice(slash + 1);
  const retprobe = head.startsWith('kret') || head.startsWith('uret');
  switch (def.target) {
    case 'none':
      return {};
    case 'kprobe': {
      const m = /^([A-Za-z0-9_.]+)(?:\+(\S+))?$/.exec(rest);
      const offset = m?.[2] === undefined ? 0 : parseOffset(m[2]);
      if (!m || offset === undefined) return { error: `kprobe name is invalid: ${rest}` };
      if (retprobe && offset !== 0) return { error: 'kretprobes do not support offset specification' };
      return { target: { kind: 'kprobe', func: m[1] as string, offset, retprobe } };
    }
    case 'kprobe_multi':
      return { target: { kind: 'kprobe_multi', pattern: rest, retprobe } };
    case 'ksyscall':
      return { target: { kind: 'ksyscall', syscall: rest, retprobe } };
    case 'uprobe':
    case 'uprobe_multi': {
      const colon = rest.indexOf(':');
      if (colon <= 0 || colon === rest.length - 1)
        return { error: `invalid format of section definition '${secName}'` };
      const path = rest.slice(0, colon);
      const spec = rest.slice(colon + 1);
      if (def.target === 'uprobe_multi')
        return { target: { kind: 'uprobe_multi', path, pattern: spec, retprobe } };
      const bare = parseOffset(spec);
      if (bare !== undefined)
        return { target: { kind: 'uprobe', path, func: undefined, offset: bare, retprobe } };
      const m = /^([^+]+)(?:\+(\S+))?$/.exec(spec);
      const offset = m?.[2] === undefined ? 0 : parseOffset(m[2]);
      if (!m || offset === undefined) return { error: `invalid uprobe target '${spec}'` };
      return { target: { kind: 'uprobe', path, func: m[1] as string, offset, retprobe } };
    }
    case 'usdt': {
      const parts = rest.split(':');
      if (parts.length !== 3 || parts.some((p) => p === ''))
        return { error: `invalid USDT section name '${secName}'` };
      const [path, provider, name] = parts as [string, string, string];
      return { target: { kind: 'usdt', path, provider, name } };
    }
    case 'tracepoint': {
      const s = rest.indexOf('/');
      if (s <= 0 || s === rest.length - 1) return { error: `invalid tracepoint section name '${secName}'` };
      return { target: { kind: 'tracepoint', category: rest.slice(0, s), name: rest.slice(s + 1) } };
    }
    case 'raw_tracepoint':
      return rest === ''
        ? { error: `invalid raw_tp section name '${secName}'` }
        : { target: { kind: 'raw_tracepoint', name: rest } };
    case 'btf':
      return rest === ''
        ? { error: `missing BTF target in '${secName}'` }
        : { target: { kind: 'btf', name: rest } };
    case 'struct_ops':
      return { target: { kind: 'struct_ops', member: rest } };
  }
}

/**
 * The section_defs entry libbpf picks for a section name, with the program and attach type ids
 * and the parsed attach target; undefined when no entry matches (libbpf refuses the program).
 */
export function matchSection(secName: string): SectionMatch | undefined {
  const def = SECTION_DEFS.find((d) => sectionDefMatches(d, secName));
  if (!def) return undefined;
  const progTypeId = programTypeByName(def.progType)?.id;
  const attachTypeId = def.attachType === null ? 0 : attachTypeByName(def.attachType);
  if (progTypeId === undefined || attachTypeId === undefined) return undefined; // table bug; the test guards it
  const { target, error } = parseTarget(def, secName);
  return { def, progTypeId, attachTypeId, target, ...(error === undefined ? {} : { targetError: error }) };
}
