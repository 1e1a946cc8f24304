/**
 * `enum bpf_attach_type` and `enum bpf_link_type` of the reference kernel (Linux 6.18), by value.
 * Names are the kernel's without the `BPF_` / `BPF_LINK_TYPE_` prefix, lowercased. Checked against
 * the running kernel's BTF by test/catalog.test.ts.
 */

/** Attach type names indexed by value: `ATTACH_TYPES[37] === 'xdp'`. */
export const ATTACH_TYPES: readonly string[] = [
  'cgroup_inet_ingress', // 0
  'cgroup_inet_egress', // 1
  'cgroup_inet_sock_create', // 2
  'cgroup_sock_ops', // 3
  'sk_skb_stream_parser', // 4
  'sk_skb_stream_verdict', // 5
  'cgroup_device', // 6
  'sk_msg_verdict', // 7
  'cgroup_inet4_bind', // 8
  'cgroup_inet6_bind', // 9
  'cgroup_inet4_connect', // 10
  'cgroup_inet6_connect', // 11
  'cgroup_inet4_post_bind', // 12
  'cgroup_inet6_post_bind', // 13
  'cgroup_udp4_sendmsg', // 14
  'cgroup_udp6_sendmsg', // 15
  'lirc_mode2', // 16
  'flow_dissector', // 17
  'cgroup_sysctl', // 18
  'cgroup_udp4_recvmsg', // 19
  'cgroup_udp6_recvmsg', // 20
  'cgroup_getsockopt', // 21
  'cgroup_setsockopt', // 22
  'trace_raw_tp', // 23
  'trace_fentry', // 24
  'trace_fexit', // 25
  'modify_return', // 26
  'lsm_mac', // 27
  'trace_iter', // 28
  'cgroup_inet4_getpeername', // 29
  'cgroup_inet6_getpeername', // 30
  'cgroup_inet4_getsockname', // 31
  'cgroup_inet6_getsockname', // 32
  'xdp_devmap', // 33
  'cgroup_inet_sock_release', // 34
  'xdp_cpumap', // 35
  'sk_lookup', // 36
  'xdp', // 37
  'sk_skb_verdict', // 38
  'sk_reuseport_select', // 39
  'sk_reuseport_select_or_migrate', // 40
  'perf_event', // 41
  'trace_kprobe_multi', // 42
  'lsm_cgroup', // 43
  'struct_ops', // 44
  'netfilter', // 45
  'tcx_ingress', // 46
  'tcx_egress', // 47
  'trace_uprobe_multi', // 48
  'cgroup_unix_connect', // 49
  'cgroup_unix_sendmsg', // 50
  'cgroup_unix_recvmsg', // 51
  'cgroup_unix_getpeername', // 52
  'cgroup_unix_getsockname', // 53
  'netkit_primary', // 54
  'netkit_peer', // 55
  'trace_kprobe_session', // 56
  'trace_uprobe_session', // 57
];

/** Link type names indexed by value: `LINK_TYPES[6] === 'xdp'`. */
export const LINK_TYPES: readonly string[] = [
  'unspec', // 0
  'raw_tracepoint', // 1
  'tracing', // 2
  'cgroup', // 3
  'iter', // 4
  'netns', // 5
  'xdp', // 6
  'perf_event', // 7
  'kprobe_multi', // 8
  'struct_ops', // 9
  'netfilter', // 10
  'tcx', // 11
  'uprobe_multi', // 12
  'netkit', // 13
  'sockmap', // 14
];

/** Value of an attach type by name (`xdp`, `cgroup_inet_ingress` or `BPF_XDP`); undefined if unknown. */
export function attachTypeByName(name: string): number | undefined {
  const i = ATTACH_TYPES.indexOf(name.replace(/^BPF_/i, '').toLowerCase());
  return i < 0 ? undefined : i;
}

/** Value of a link type by name (`tcx` or `BPF_LINK_TYPE_TCX`). */
export function linkTypeByName(name: string): number | undefined {
  const i = LINK_TYPES.indexOf(name.replace(/^BPF_LINK_TYPE_/i, '').toLowerCase());
  return i < 0 ? undefined : i;
}
