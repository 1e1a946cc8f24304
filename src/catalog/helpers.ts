/**
 * Every BPF helper of the reference kernel (Linux 6.18): its id and name as in `enum bpf_func_id`,
 * the C signature from include/uapi/linux/bpf.h's documentation, whether it is GPL-only, and the
 * prototype the verifier checks calls against (`struct bpf_func_proto`).
 *
 * Sources, per column:
 * - id/name: `enum bpf_func_id` of the running 6.18 kernel's BTF (test/catalog.test.ts re-checks it).
 * - signature: the doc comments of include/uapi/linux/bpf.h.
 * - gplOnly: measured on the 6.18 kernel (a load with a non-GPL license is refused with "cannot call
 *   GPL-restricted function"); for helpers no probeable program type may call, read from the source.
 * - proto: read from the kernel source file named in the row (`bpf_<name>_proto`). Several helpers
 *   have per-program-type variants (e.g. `get_socket_cookie` takes a `struct bpf_sock *` context in
 *   cgroup/sock programs, `perf_event_output` takes an skb in tc); the row holds the canonical
 *   (networking or tracing) one. `undefined` means not verified from source: do not guess.
 *
 * Argument and return kinds use the kernel's names lowercased without the ARG_/RET_ prefix, with
 * `bpf_type_flag`s joined by `|` (`ptr_to_mem|mem_rdonly`). A `:N` suffix is `argN_size` for
 * fixed-size memory arguments.
 */

/** Base argument kinds: `enum bpf_arg_type` below `__BPF_ARG_TYPE_MAX`, by value. */
export const ARG_KINDS = [
  'dontcare',
  'const_map_ptr',
  'ptr_to_map_key',
  'ptr_to_map_value',
  'ptr_to_mem',
  'ptr_to_arena',
  'const_size',
  'const_size_or_zero',
  'ptr_to_ctx',
  'anything',
  'ptr_to_spin_lock',
  'ptr_to_sock_common',
  'ptr_to_socket',
  'ptr_to_btf_id',
  'ptr_to_ringbuf_mem',
  'const_alloc_size_or_zero',
  'ptr_to_btf_id_sock_common',
  'ptr_to_percpu_btf_id',
  'ptr_to_func',
  'ptr_to_stack',
  'ptr_to_const_str',
  'ptr_to_timer',
  'kptr_xchg_dest',
  'ptr_to_dynptr',
] as const;
export type ArgKind = (typeof ARG_KINDS)[number];

/** Base return kinds: `enum bpf_return_type` below `__BPF_RET_TYPE_MAX`, by value. */
export const RET_KINDS = [
  'integer',
  'void',
  'ptr_to_map_value',
  'ptr_to_socket',
  'ptr_to_tcp_sock',
  'ptr_to_sock_common',
  'ptr_to_mem',
  'ptr_to_mem_or_btf_id',
  'ptr_to_btf_id',
] as const;
export type RetKind = (typeof RET_KINDS)[number];

/** `enum bpf_type_flag`: modifier bits or'ed onto a base kind (value = bit). */
export const TYPE_FLAGS = {
  ptr_maybe_null: 1 << 8,
  mem_rdonly: 1 << 9,
  mem_ringbuf: 1 << 10,
  mem_user: 1 << 11,
  mem_percpu: 1 << 12,
  obj_release: 1 << 13,
  ptr_untrusted: 1 << 14,
  mem_uninit: 1 << 15,
  dynptr_type_local: 1 << 16,
  dynptr_type_ringbuf: 1 << 17,
  mem_fixed_size: 1 << 18,
  mem_alloc: 1 << 19,
  ptr_trusted: 1 << 20,
  mem_rcu: 1 << 21,
  non_own_ref: 1 << 22,
  dynptr_type_skb: 1 << 23,
  dynptr_type_xdp: 1 << 24,
  mem_aligned: 1 << 25,
  mem_write: 1 << 26,
  dynptr_type_skb_meta: 1 << 27,
} as const;
export type TypeFlag = keyof typeof TYPE_FLAGS;

/**
 * The kernel's named combinations (`ARG_PTR_TO_UNINIT_MEM`, `RET_PTR_TO_MAP_VALUE_OR_NULL`...),
 * as defined in include/linux/bpf.h of 6.18 (their values are in the kernel BTF; the test checks).
 */
export const ARG_ALIASES: Readonly<Record<string, readonly [ArgKind, ...TypeFlag[]]>> = {
  ptr_to_map_value_or_null: ['ptr_to_map_value', 'ptr_maybe_null'],
  ptr_to_mem_or_null: ['ptr_to_mem', 'ptr_maybe_null'],
  ptr_to_ctx_or_null: ['ptr_to_ctx', 'ptr_maybe_null'],
  ptr_to_socket_or_null: ['ptr_to_socket', 'ptr_maybe_null'],
  ptr_to_stack_or_null: ['ptr_to_stack', 'ptr_maybe_null'],
  ptr_to_btf_id_or_null: ['ptr_to_btf_id', 'ptr_maybe_null'],
  ptr_to_uninit_mem: ['ptr_to_mem', 'mem_write', 'mem_uninit'],
  ptr_to_fixed_size_mem: ['ptr_to_mem', 'mem_fixed_size'],
};
export const RET_ALIASES: Readonly<Record<string, readonly [RetKind, ...TypeFlag[]]>> = {
  ptr_to_map_value_or_null: ['ptr_to_map_value', 'ptr_maybe_null'],
  ptr_to_socket_or_null: ['ptr_to_socket', 'ptr_maybe_null'],
  ptr_to_tcp_sock_or_null: ['ptr_to_tcp_sock', 'ptr_maybe_null'],
  ptr_to_sock_common_or_null: ['ptr_to_sock_common', 'ptr_maybe_null'],
  ptr_to_ringbuf_mem_or_null: ['ptr_to_mem', 'ptr_maybe_null', 'mem_ringbuf'],
  ptr_to_dynptr_mem_or_null: ['ptr_to_mem', 'ptr_maybe_null'],
  ptr_to_btf_id_or_null: ['ptr_to_btf_id', 'ptr_maybe_null'],
  ptr_to_btf_id_trusted: ['ptr_to_btf_id', 'ptr_trusted'],
};

export interface HelperArg {
  /** As written in the kernel source, e.g. `ptr_to_uninit_mem` or `ptr_to_mem|mem_rdonly`. */
  readonly spelling: string;
  readonly kind: ArgKind;
  readonly flags: readonly TypeFlag[];
  /** `argN_size` of a fixed-size memory argument. */
  readonly size?: number;
}

export interface HelperRet {
  readonly spelling: string;
  readonly kind: RetKind;
  readonly flags: readonly TypeFlag[];
}

export interface HelperProto {
  readonly ret: HelperRet;
  readonly args: readonly HelperArg[];
  /** Kernel source file the prototype was read from. */
  readonly source: string;
}

export interface Helper {
  readonly id: number;
  /** `enum bpf_func_id` name without `BPF_FUNC_`: `map_lookup_elem`. */
  readonly name: string;
  /** C signature from bpf.h's doc comment, when documented. */
  readonly signature: string | undefined;
  /** `undefined` when not measured and not read. */
  readonly gplOnly: boolean | undefined;
  /** `undefined` = prototype not verified; callers must not assume one. */
  readonly proto: HelperProto | undefined;
}

type Row = readonly [
  id: number,
  name: string,
  signature: string | undefined,
  gplOnly: boolean | undefined,
  proto: readonly [ret: string, args: readonly string[], source: string] | undefined,
];

// biome-ignore format: one helper per line
const ROWS: readonly Row[] = [
  [0, 'unspec', undefined, undefined, undefined],
  [1, 'map_lookup_elem', 'void *bpf_map_lookup_elem(struct bpf_map *map, const void *key)', false, ['ptr_to_map_value_or_null', ['const_map_ptr', 'ptr_to_map_key'], 'kernel/bpf/helpers.c']],
  [2, 'map_update_elem', 'long bpf_map_update_elem(struct bpf_map *map, const void *key, const void *value, u64 flags)', false, ['integer', ['const_map_ptr', 'ptr_to_map_key', 'ptr_to_map_value', 'anything'], 'kernel/bpf/helpers.c']],
  [3, 'map_delete_elem', 'long bpf_map_delete_elem(struct bpf_map *map, const void *key)', false, ['integer', ['const_map_ptr', 'ptr_to_map_key'], 'kernel/bpf/helpers.c']],
  [4, 'probe_read', 'long bpf_probe_read(void *dst, u32 size, const void *unsafe_ptr)', true, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'anything'], 'kernel/trace/bpf_trace.c']],
  [5, 'ktime_get_ns', 'u64 bpf_ktime_get_ns(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [6, 'trace_printk', 'long bpf_trace_printk(const char *fmt, u32 fmt_size, ...)', true, ['integer', ['ptr_to_mem|mem_rdonly', 'const_size'], 'kernel/trace/bpf_trace.c']],
  [7, 'get_prandom_u32', 'u32 bpf_get_prandom_u32(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [8, 'get_smp_processor_id', 'u32 bpf_get_smp_processor_id(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [9, 'skb_store_bytes', 'long bpf_skb_store_bytes(struct sk_buff *skb, u32 offset, const void *from, u32 len, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'ptr_to_mem|mem_rdonly', 'const_size', 'anything'], 'net/core/filter.c']],
  [10, 'l3_csum_replace', 'long bpf_l3_csum_replace(struct sk_buff *skb, u32 offset, u64 from, u64 to, u64 size)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything', 'anything', 'anything'], 'net/core/filter.c']],
  [11, 'l4_csum_replace', 'long bpf_l4_csum_replace(struct sk_buff *skb, u32 offset, u64 from, u64 to, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything', 'anything', 'anything'], 'net/core/filter.c']],
  [12, 'tail_call', 'long bpf_tail_call(void *ctx, struct bpf_map *prog_array_map, u32 index)', false, undefined],
  [13, 'clone_redirect', 'long bpf_clone_redirect(struct sk_buff *skb, u32 ifindex, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything'], 'net/core/filter.c']],
  [14, 'get_current_pid_tgid', 'u64 bpf_get_current_pid_tgid(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [15, 'get_current_uid_gid', 'u64 bpf_get_current_uid_gid(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [16, 'get_current_comm', 'long bpf_get_current_comm(void *buf, u32 size_of_buf)', false, ['integer', ['ptr_to_uninit_mem', 'const_size'], 'kernel/bpf/helpers.c']],
  [17, 'get_cgroup_classid', 'u32 bpf_get_cgroup_classid(struct sk_buff *skb)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [18, 'skb_vlan_push', 'long bpf_skb_vlan_push(struct sk_buff *skb, __be16 vlan_proto, u16 vlan_tci)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything'], 'net/core/filter.c']],
  [19, 'skb_vlan_pop', 'long bpf_skb_vlan_pop(struct sk_buff *skb)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [20, 'skb_get_tunnel_key', 'long bpf_skb_get_tunnel_key(struct sk_buff *skb, struct bpf_tunnel_key *key, u32 size, u64 flags)', false, ['integer', ['ptr_to_ctx', 'ptr_to_uninit_mem', 'const_size', 'anything'], 'net/core/filter.c']],
  [21, 'skb_set_tunnel_key', 'long bpf_skb_set_tunnel_key(struct sk_buff *skb, struct bpf_tunnel_key *key, u32 size, u64 flags)', false, ['integer', ['ptr_to_ctx', 'ptr_to_mem|mem_rdonly', 'const_size', 'anything'], 'net/core/filter.c']],
  [22, 'perf_event_read', 'u64 bpf_perf_event_read(struct bpf_map *map, u64 flags)', true, ['integer', ['const_map_ptr', 'anything'], 'kernel/trace/bpf_trace.c']],
  [23, 'redirect', 'long bpf_redirect(u32 ifindex, u64 flags)', false, ['integer', ['anything', 'anything'], 'net/core/filter.c']],
  [24, 'get_route_realm', 'u32 bpf_get_route_realm(struct sk_buff *skb)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [25, 'perf_event_output', 'long bpf_perf_event_output(void *ctx, struct bpf_map *map, u64 flags, void *data, u64 size)', true, ['integer', ['ptr_to_ctx', 'const_map_ptr', 'anything', 'ptr_to_mem|mem_rdonly', 'const_size_or_zero'], 'kernel/trace/bpf_trace.c']],
  [26, 'skb_load_bytes', 'long bpf_skb_load_bytes(const void *skb, u32 offset, void *to, u32 len)', false, ['integer', ['ptr_to_ctx', 'anything', 'ptr_to_uninit_mem', 'const_size'], 'net/core/filter.c']],
  [27, 'get_stackid', 'long bpf_get_stackid(void *ctx, struct bpf_map *map, u64 flags)', true, ['integer', ['ptr_to_ctx', 'const_map_ptr', 'anything'], 'kernel/bpf/stackmap.c']],
  [28, 'csum_diff', 's64 bpf_csum_diff(__be32 *from, u32 from_size, __be32 *to, u32 to_size, __wsum seed)', false, ['integer', ['ptr_to_mem|ptr_maybe_null|mem_rdonly', 'const_size_or_zero', 'ptr_to_mem|ptr_maybe_null|mem_rdonly', 'const_size_or_zero', 'anything'], 'net/core/filter.c']],
  [29, 'skb_get_tunnel_opt', 'long bpf_skb_get_tunnel_opt(struct sk_buff *skb, void *opt, u32 size)', false, ['integer', ['ptr_to_ctx', 'ptr_to_uninit_mem', 'const_size'], 'net/core/filter.c']],
  [30, 'skb_set_tunnel_opt', 'long bpf_skb_set_tunnel_opt(struct sk_buff *skb, void *opt, u32 size)', false, ['integer', ['ptr_to_ctx', 'ptr_to_mem|mem_rdonly', 'const_size'], 'net/core/filter.c']],
  [31, 'skb_change_proto', 'long bpf_skb_change_proto(struct sk_buff *skb, __be16 proto, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything'], 'net/core/filter.c']],
  [32, 'skb_change_type', 'long bpf_skb_change_type(struct sk_buff *skb, u32 type)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [33, 'skb_under_cgroup', 'long bpf_skb_under_cgroup(struct sk_buff *skb, struct bpf_map *map, u32 index)', false, ['integer', ['ptr_to_ctx', 'const_map_ptr', 'anything'], 'net/core/filter.c']],
  [34, 'get_hash_recalc', 'u32 bpf_get_hash_recalc(struct sk_buff *skb)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [35, 'get_current_task', 'u64 bpf_get_current_task(void)', true, ['integer', [], 'kernel/trace/bpf_trace.c']],
  [36, 'probe_write_user', 'long bpf_probe_write_user(void *dst, const void *src, u32 len)', undefined, ['integer', ['anything', 'ptr_to_mem|mem_rdonly', 'const_size'], 'kernel/trace/bpf_trace.c']],
  [37, 'current_task_under_cgroup', 'long bpf_current_task_under_cgroup(struct bpf_map *map, u32 index)', false, ['integer', ['const_map_ptr', 'anything'], 'kernel/trace/bpf_trace.c']],
  [38, 'skb_change_tail', 'long bpf_skb_change_tail(struct sk_buff *skb, u32 len, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything'], 'net/core/filter.c']],
  [39, 'skb_pull_data', 'long bpf_skb_pull_data(struct sk_buff *skb, u32 len)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [40, 'csum_update', 's64 bpf_csum_update(struct sk_buff *skb, __wsum csum)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [41, 'set_hash_invalid', 'void bpf_set_hash_invalid(struct sk_buff *skb)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [42, 'get_numa_node_id', 'long bpf_get_numa_node_id(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [43, 'skb_change_head', 'long bpf_skb_change_head(struct sk_buff *skb, u32 len, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything'], 'net/core/filter.c']],
  [44, 'xdp_adjust_head', 'long bpf_xdp_adjust_head(struct xdp_buff *xdp_md, int delta)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [45, 'probe_read_str', 'long bpf_probe_read_str(void *dst, u32 size, const void *unsafe_ptr)', true, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'anything'], 'kernel/trace/bpf_trace.c']],
  [46, 'get_socket_cookie', 'u64 bpf_get_socket_cookie(struct sk_buff *skb)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [47, 'get_socket_uid', 'u32 bpf_get_socket_uid(struct sk_buff *skb)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [48, 'set_hash', 'long bpf_set_hash(struct sk_buff *skb, u32 hash)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [49, 'setsockopt', 'long bpf_setsockopt(void *bpf_socket, int level, int optname, void *optval, int optlen)', false, undefined],
  [50, 'skb_adjust_room', 'long bpf_skb_adjust_room(struct sk_buff *skb, s32 len_diff, u32 mode, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything', 'anything'], 'net/core/filter.c']],
  [51, 'redirect_map', 'long bpf_redirect_map(struct bpf_map *map, u32 key, u64 flags)', false, ['integer', ['const_map_ptr', 'anything', 'anything'], 'net/core/filter.c']],
  [52, 'sk_redirect_map', 'long bpf_sk_redirect_map(struct sk_buff *skb, struct bpf_map *map, u32 key, u64 flags)', false, undefined],
  [53, 'sock_map_update', 'long bpf_sock_map_update(struct bpf_sock_ops *skops, struct bpf_map *map, void *key, u64 flags)', false, undefined],
  [54, 'xdp_adjust_meta', 'long bpf_xdp_adjust_meta(struct xdp_buff *xdp_md, int delta)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [55, 'perf_event_read_value', 'long bpf_perf_event_read_value(struct bpf_map *map, u64 flags, struct bpf_perf_event_value *buf, u32 buf_size)', true, ['integer', ['const_map_ptr', 'anything', 'ptr_to_uninit_mem', 'const_size'], 'kernel/trace/bpf_trace.c']],
  [56, 'perf_prog_read_value', 'long bpf_perf_prog_read_value(struct bpf_perf_event_data *ctx, struct bpf_perf_event_value *buf, u32 buf_size)', true, undefined],
  [57, 'getsockopt', 'long bpf_getsockopt(void *bpf_socket, int level, int optname, void *optval, int optlen)', false, undefined],
  [58, 'override_return', 'long bpf_override_return(struct pt_regs *regs, u64 rc)', true, ['integer', ['ptr_to_ctx', 'anything'], 'kernel/trace/bpf_trace.c']],
  [59, 'sock_ops_cb_flags_set', 'long bpf_sock_ops_cb_flags_set(struct bpf_sock_ops *bpf_sock, int argval)', false, undefined],
  [60, 'msg_redirect_map', 'long bpf_msg_redirect_map(struct sk_msg_buff *msg, struct bpf_map *map, u32 key, u64 flags)', false, undefined],
  [61, 'msg_apply_bytes', 'long bpf_msg_apply_bytes(struct sk_msg_buff *msg, u32 bytes)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [62, 'msg_cork_bytes', 'long bpf_msg_cork_bytes(struct sk_msg_buff *msg, u32 bytes)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [63, 'msg_pull_data', 'long bpf_msg_pull_data(struct sk_msg_buff *msg, u32 start, u32 end, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything', 'anything'], 'net/core/filter.c']],
  [64, 'bind', 'long bpf_bind(struct bpf_sock_addr *ctx, struct sockaddr *addr, int addr_len)', false, undefined],
  [65, 'xdp_adjust_tail', 'long bpf_xdp_adjust_tail(struct xdp_buff *xdp_md, int delta)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [66, 'skb_get_xfrm_state', 'long bpf_skb_get_xfrm_state(struct sk_buff *skb, u32 index, struct bpf_xfrm_state *xfrm_state, u32 size, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'ptr_to_uninit_mem', 'const_size', 'anything'], 'net/core/filter.c']],
  [67, 'get_stack', 'long bpf_get_stack(void *ctx, void *buf, u32 size, u64 flags)', true, ['integer', ['ptr_to_ctx', 'ptr_to_uninit_mem', 'const_size_or_zero', 'anything'], 'kernel/bpf/stackmap.c']],
  [68, 'skb_load_bytes_relative', 'long bpf_skb_load_bytes_relative(const void *skb, u32 offset, void *to, u32 len, u32 start_header)', false, ['integer', ['ptr_to_ctx', 'anything', 'ptr_to_uninit_mem', 'const_size', 'anything'], 'net/core/filter.c']],
  [69, 'fib_lookup', 'long bpf_fib_lookup(void *ctx, struct bpf_fib_lookup *params, int plen, u32 flags)', true, ['integer', ['ptr_to_ctx', 'ptr_to_mem', 'const_size', 'anything'], 'net/core/filter.c']],
  [70, 'sock_hash_update', 'long bpf_sock_hash_update(struct bpf_sock_ops *skops, struct bpf_map *map, void *key, u64 flags)', false, undefined],
  [71, 'msg_redirect_hash', 'long bpf_msg_redirect_hash(struct sk_msg_buff *msg, struct bpf_map *map, void *key, u64 flags)', false, undefined],
  [72, 'sk_redirect_hash', 'long bpf_sk_redirect_hash(struct sk_buff *skb, struct bpf_map *map, void *key, u64 flags)', false, undefined],
  [73, 'lwt_push_encap', 'long bpf_lwt_push_encap(struct sk_buff *skb, u32 type, void *hdr, u32 len)', false, undefined],
  [74, 'lwt_seg6_store_bytes', 'long bpf_lwt_seg6_store_bytes(struct sk_buff *skb, u32 offset, const void *from, u32 len)', false, undefined],
  [75, 'lwt_seg6_adjust_srh', 'long bpf_lwt_seg6_adjust_srh(struct sk_buff *skb, u32 offset, s32 delta)', false, undefined],
  [76, 'lwt_seg6_action', 'long bpf_lwt_seg6_action(struct sk_buff *skb, u32 action, void *param, u32 param_len)', false, undefined],
  [77, 'rc_repeat', 'long bpf_rc_repeat(void *ctx)', undefined, undefined],
  [78, 'rc_keydown', 'long bpf_rc_keydown(void *ctx, u32 protocol, u64 scancode, u32 toggle)', undefined, undefined],
  [79, 'skb_cgroup_id', 'u64 bpf_skb_cgroup_id(struct sk_buff *skb)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [80, 'get_current_cgroup_id', 'u64 bpf_get_current_cgroup_id(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [81, 'get_local_storage', 'void *bpf_get_local_storage(void *map, u64 flags)', false, ['ptr_to_map_value', ['const_map_ptr', 'anything'], 'kernel/bpf/helpers.c']],
  [82, 'sk_select_reuseport', 'long bpf_sk_select_reuseport(struct sk_reuseport_md *reuse, struct bpf_map *map, void *key, u64 flags)', false, undefined],
  [83, 'skb_ancestor_cgroup_id', 'u64 bpf_skb_ancestor_cgroup_id(struct sk_buff *skb, int ancestor_level)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [84, 'sk_lookup_tcp', 'struct bpf_sock *bpf_sk_lookup_tcp(void *ctx, struct bpf_sock_tuple *tuple, u32 tuple_size, u64 netns, u64 flags)', false, ['ptr_to_socket_or_null', ['ptr_to_ctx', 'ptr_to_mem|mem_rdonly', 'const_size_or_zero', 'anything', 'anything'], 'net/core/filter.c']],
  [85, 'sk_lookup_udp', 'struct bpf_sock *bpf_sk_lookup_udp(void *ctx, struct bpf_sock_tuple *tuple, u32 tuple_size, u64 netns, u64 flags)', false, ['ptr_to_socket_or_null', ['ptr_to_ctx', 'ptr_to_mem|mem_rdonly', 'const_size_or_zero', 'anything', 'anything'], 'net/core/filter.c']],
  [86, 'sk_release', 'long bpf_sk_release(void *sock)', false, ['integer', ['ptr_to_btf_id_sock_common|obj_release'], 'net/core/filter.c']],
  [87, 'map_push_elem', 'long bpf_map_push_elem(struct bpf_map *map, const void *value, u64 flags)', false, ['integer', ['const_map_ptr', 'ptr_to_map_value', 'anything'], 'kernel/bpf/helpers.c']],
  [88, 'map_pop_elem', 'long bpf_map_pop_elem(struct bpf_map *map, void *value)', false, ['integer', ['const_map_ptr', 'ptr_to_map_value|mem_uninit|mem_write'], 'kernel/bpf/helpers.c']],
  [89, 'map_peek_elem', 'long bpf_map_peek_elem(struct bpf_map *map, void *value)', false, ['integer', ['const_map_ptr', 'ptr_to_map_value|mem_uninit|mem_write'], 'kernel/bpf/helpers.c']],
  [90, 'msg_push_data', 'long bpf_msg_push_data(struct sk_msg_buff *msg, u32 start, u32 len, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything', 'anything'], 'net/core/filter.c']],
  [91, 'msg_pop_data', 'long bpf_msg_pop_data(struct sk_msg_buff *msg, u32 start, u32 len, u64 flags)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything', 'anything'], 'net/core/filter.c']],
  [92, 'rc_pointer_rel', 'long bpf_rc_pointer_rel(void *ctx, s32 rel_x, s32 rel_y)', undefined, undefined],
  [93, 'spin_lock', 'long bpf_spin_lock(struct bpf_spin_lock *lock)', false, ['void', ['ptr_to_spin_lock'], 'kernel/bpf/helpers.c']],
  [94, 'spin_unlock', 'long bpf_spin_unlock(struct bpf_spin_lock *lock)', false, ['void', ['ptr_to_spin_lock'], 'kernel/bpf/helpers.c']],
  [95, 'sk_fullsock', 'struct bpf_sock *bpf_sk_fullsock(struct bpf_sock *sk)', false, ['ptr_to_socket_or_null', ['ptr_to_sock_common'], 'net/core/filter.c']],
  [96, 'tcp_sock', 'struct bpf_tcp_sock *bpf_tcp_sock(struct bpf_sock *sk)', false, ['ptr_to_tcp_sock_or_null', ['ptr_to_sock_common'], 'net/core/filter.c']],
  [97, 'skb_ecn_set_ce', 'long bpf_skb_ecn_set_ce(struct sk_buff *skb)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [98, 'get_listener_sock', 'struct bpf_sock *bpf_get_listener_sock(struct bpf_sock *sk)', false, ['ptr_to_socket_or_null', ['ptr_to_sock_common'], 'net/core/filter.c']],
  [99, 'skc_lookup_tcp', 'struct bpf_sock *bpf_skc_lookup_tcp(void *ctx, struct bpf_sock_tuple *tuple, u32 tuple_size, u64 netns, u64 flags)', false, ['ptr_to_sock_common_or_null', ['ptr_to_ctx', 'ptr_to_mem|mem_rdonly', 'const_size_or_zero', 'anything', 'anything'], 'net/core/filter.c']],
  [100, 'tcp_check_syncookie', 'long bpf_tcp_check_syncookie(void *sk, void *iph, u32 iph_len, struct tcphdr *th, u32 th_len)', true, undefined],
  [101, 'sysctl_get_name', 'long bpf_sysctl_get_name(struct bpf_sysctl *ctx, char *buf, size_t buf_len, u64 flags)', false, undefined],
  [102, 'sysctl_get_current_value', 'long bpf_sysctl_get_current_value(struct bpf_sysctl *ctx, char *buf, size_t buf_len)', false, undefined],
  [103, 'sysctl_get_new_value', 'long bpf_sysctl_get_new_value(struct bpf_sysctl *ctx, char *buf, size_t buf_len)', false, undefined],
  [104, 'sysctl_set_new_value', 'long bpf_sysctl_set_new_value(struct bpf_sysctl *ctx, const char *buf, size_t buf_len)', false, undefined],
  [105, 'strtol', 'long bpf_strtol(const char *buf, size_t buf_len, u64 flags, long *res)', false, ['integer', ['ptr_to_mem|mem_rdonly', 'const_size', 'anything', 'ptr_to_fixed_size_mem|mem_uninit|mem_write|mem_aligned:8'], 'kernel/bpf/helpers.c']],
  [106, 'strtoul', 'long bpf_strtoul(const char *buf, size_t buf_len, u64 flags, unsigned long *res)', false, ['integer', ['ptr_to_mem|mem_rdonly', 'const_size', 'anything', 'ptr_to_fixed_size_mem|mem_uninit|mem_write|mem_aligned:8'], 'kernel/bpf/helpers.c']],
  [107, 'sk_storage_get', 'void *bpf_sk_storage_get(struct bpf_map *map, void *sk, void *value, u64 flags)', false, undefined],
  [108, 'sk_storage_delete', 'long bpf_sk_storage_delete(struct bpf_map *map, void *sk)', false, undefined],
  [109, 'send_signal', 'long bpf_send_signal(u32 sig)', false, ['integer', ['anything'], 'kernel/trace/bpf_trace.c']],
  [110, 'tcp_gen_syncookie', 's64 bpf_tcp_gen_syncookie(void *sk, void *iph, u32 iph_len, struct tcphdr *th, u32 th_len)', true, undefined],
  [111, 'skb_output', 'long bpf_skb_output(void *ctx, struct bpf_map *map, u64 flags, void *data, u64 size)', true, undefined],
  [112, 'probe_read_user', 'long bpf_probe_read_user(void *dst, u32 size, const void *unsafe_ptr)', true, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'anything'], 'kernel/trace/bpf_trace.c']],
  [113, 'probe_read_kernel', 'long bpf_probe_read_kernel(void *dst, u32 size, const void *unsafe_ptr)', true, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'anything'], 'kernel/trace/bpf_trace.c']],
  [114, 'probe_read_user_str', 'long bpf_probe_read_user_str(void *dst, u32 size, const void *unsafe_ptr)', true, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'anything'], 'kernel/trace/bpf_trace.c']],
  [115, 'probe_read_kernel_str', 'long bpf_probe_read_kernel_str(void *dst, u32 size, const void *unsafe_ptr)', true, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'anything'], 'kernel/trace/bpf_trace.c']],
  [116, 'tcp_send_ack', 'long bpf_tcp_send_ack(void *tp, u32 rcv_nxt)', undefined, undefined],
  [117, 'send_signal_thread', 'long bpf_send_signal_thread(u32 sig)', false, ['integer', ['anything'], 'kernel/trace/bpf_trace.c']],
  [118, 'jiffies64', 'u64 bpf_jiffies64(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [119, 'read_branch_records', 'long bpf_read_branch_records(struct bpf_perf_event_data *ctx, void *buf, u32 size, u64 flags)', true, undefined],
  [120, 'get_ns_current_pid_tgid', 'long bpf_get_ns_current_pid_tgid(u64 dev, u64 ino, struct bpf_pidns_info *nsdata, u32 size)', false, ['integer', ['anything', 'anything', 'ptr_to_uninit_mem', 'const_size'], 'kernel/bpf/helpers.c']],
  [121, 'xdp_output', 'long bpf_xdp_output(void *ctx, struct bpf_map *map, u64 flags, void *data, u64 size)', true, undefined],
  [122, 'get_netns_cookie', 'u64 bpf_get_netns_cookie(void *ctx)', false, ['integer', ['ptr_to_ctx_or_null'], 'net/core/filter.c']],
  [123, 'get_current_ancestor_cgroup_id', 'u64 bpf_get_current_ancestor_cgroup_id(int ancestor_level)', false, ['integer', ['anything'], 'kernel/bpf/helpers.c']],
  [124, 'sk_assign', 'long bpf_sk_assign(struct sk_buff *skb, void *sk, u64 flags)', false, undefined],
  [125, 'ktime_get_boot_ns', 'u64 bpf_ktime_get_boot_ns(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [126, 'seq_printf', 'long bpf_seq_printf(struct seq_file *m, const char *fmt, u32 fmt_size, const void *data, u32 data_len)', true, ['integer', ['ptr_to_btf_id', 'ptr_to_mem|mem_rdonly', 'const_size', 'ptr_to_mem|ptr_maybe_null|mem_rdonly', 'const_size_or_zero'], 'kernel/trace/bpf_trace.c']],
  [127, 'seq_write', 'long bpf_seq_write(struct seq_file *m, const void *data, u32 len)', true, ['integer', ['ptr_to_btf_id', 'ptr_to_mem|mem_rdonly', 'const_size_or_zero'], 'kernel/trace/bpf_trace.c']],
  [128, 'sk_cgroup_id', 'u64 bpf_sk_cgroup_id(void *sk)', false, ['integer', ['ptr_to_btf_id_sock_common'], 'net/core/filter.c']],
  [129, 'sk_ancestor_cgroup_id', 'u64 bpf_sk_ancestor_cgroup_id(void *sk, int ancestor_level)', false, ['integer', ['ptr_to_btf_id_sock_common', 'anything'], 'net/core/filter.c']],
  [130, 'ringbuf_output', 'long bpf_ringbuf_output(void *ringbuf, void *data, u64 size, u64 flags)', false, ['integer', ['const_map_ptr', 'ptr_to_mem|mem_rdonly', 'const_size_or_zero', 'anything'], 'kernel/bpf/ringbuf.c']],
  [131, 'ringbuf_reserve', 'void *bpf_ringbuf_reserve(void *ringbuf, u64 size, u64 flags)', false, ['ptr_to_ringbuf_mem_or_null', ['const_map_ptr', 'const_alloc_size_or_zero', 'anything'], 'kernel/bpf/ringbuf.c']],
  [132, 'ringbuf_submit', 'void bpf_ringbuf_submit(void *data, u64 flags)', false, ['void', ['ptr_to_ringbuf_mem|obj_release', 'anything'], 'kernel/bpf/ringbuf.c']],
  [133, 'ringbuf_discard', 'void bpf_ringbuf_discard(void *data, u64 flags)', false, ['void', ['ptr_to_ringbuf_mem|obj_release', 'anything'], 'kernel/bpf/ringbuf.c']],
  [134, 'ringbuf_query', 'u64 bpf_ringbuf_query(void *ringbuf, u64 flags)', false, ['integer', ['const_map_ptr', 'anything'], 'kernel/bpf/ringbuf.c']],
  [135, 'csum_level', 'long bpf_csum_level(struct sk_buff *skb, u64 level)', false, ['integer', ['ptr_to_ctx', 'anything'], 'net/core/filter.c']],
  [136, 'skc_to_tcp6_sock', 'struct tcp6_sock *bpf_skc_to_tcp6_sock(void *sk)', false, undefined],
  [137, 'skc_to_tcp_sock', 'struct tcp_sock *bpf_skc_to_tcp_sock(void *sk)', false, undefined],
  [138, 'skc_to_tcp_timewait_sock', 'struct tcp_timewait_sock *bpf_skc_to_tcp_timewait_sock(void *sk)', false, undefined],
  [139, 'skc_to_tcp_request_sock', 'struct tcp_request_sock *bpf_skc_to_tcp_request_sock(void *sk)', false, undefined],
  [140, 'skc_to_udp6_sock', 'struct udp6_sock *bpf_skc_to_udp6_sock(void *sk)', false, undefined],
  [141, 'get_task_stack', 'long bpf_get_task_stack(struct task_struct *task, void *buf, u32 size, u64 flags)', false, undefined],
  [142, 'load_hdr_opt', 'long bpf_load_hdr_opt(struct bpf_sock_ops *skops, void *searchby_res, u32 len, u64 flags)', false, undefined],
  [143, 'store_hdr_opt', 'long bpf_store_hdr_opt(struct bpf_sock_ops *skops, const void *from, u32 len, u64 flags)', false, undefined],
  [144, 'reserve_hdr_opt', 'long bpf_reserve_hdr_opt(struct bpf_sock_ops *skops, u32 len, u64 flags)', false, undefined],
  [145, 'inode_storage_get', 'void *bpf_inode_storage_get(struct bpf_map *map, void *inode, void *value, u64 flags)', undefined, undefined],
  [146, 'inode_storage_delete', 'int bpf_inode_storage_delete(struct bpf_map *map, void *inode)', undefined, undefined],
  [147, 'd_path', 'long bpf_d_path(struct path *path, char *buf, u32 sz)', false, ['integer', ['ptr_to_btf_id', 'ptr_to_mem', 'const_size_or_zero'], 'kernel/trace/bpf_trace.c']],
  [148, 'copy_from_user', 'long bpf_copy_from_user(void *dst, u32 size, const void *user_ptr)', false, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'anything'], 'kernel/bpf/helpers.c']],
  [149, 'snprintf_btf', 'long bpf_snprintf_btf(char *str, u32 str_size, struct btf_ptr *ptr, u32 btf_ptr_size, u64 flags)', false, ['integer', ['ptr_to_mem', 'const_size', 'ptr_to_mem|mem_rdonly', 'const_size', 'anything'], 'kernel/trace/bpf_trace.c']],
  [150, 'seq_printf_btf', 'long bpf_seq_printf_btf(struct seq_file *m, struct btf_ptr *ptr, u32 ptr_size, u64 flags)', true, ['integer', ['ptr_to_btf_id', 'ptr_to_mem|mem_rdonly', 'const_size_or_zero', 'anything'], 'kernel/trace/bpf_trace.c']],
  [151, 'skb_cgroup_classid', 'u64 bpf_skb_cgroup_classid(struct sk_buff *skb)', false, undefined],
  [152, 'redirect_neigh', 'long bpf_redirect_neigh(u32 ifindex, struct bpf_redir_neigh *params, int plen, u64 flags)', false, ['integer', ['anything', 'ptr_to_mem|ptr_maybe_null|mem_rdonly', 'const_size_or_zero', 'anything'], 'net/core/filter.c']],
  [153, 'per_cpu_ptr', 'void *bpf_per_cpu_ptr(const void *percpu_ptr, u32 cpu)', false, ['ptr_to_mem_or_btf_id|ptr_maybe_null|mem_rdonly', ['ptr_to_percpu_btf_id', 'anything'], 'kernel/bpf/helpers.c']],
  [154, 'this_cpu_ptr', 'void *bpf_this_cpu_ptr(const void *percpu_ptr)', false, ['ptr_to_mem_or_btf_id|mem_rdonly', ['ptr_to_percpu_btf_id'], 'kernel/bpf/helpers.c']],
  [155, 'redirect_peer', 'long bpf_redirect_peer(u32 ifindex, u64 flags)', false, ['integer', ['anything', 'anything'], 'net/core/filter.c']],
  [156, 'task_storage_get', 'void *bpf_task_storage_get(struct bpf_map *map, struct task_struct *task, void *value, u64 flags)', false, undefined],
  [157, 'task_storage_delete', 'long bpf_task_storage_delete(struct bpf_map *map, struct task_struct *task)', false, undefined],
  [158, 'get_current_task_btf', 'struct task_struct *bpf_get_current_task_btf(void)', true, ['ptr_to_btf_id_trusted', [], 'kernel/trace/bpf_trace.c']],
  [159, 'bprm_opts_set', 'long bpf_bprm_opts_set(struct linux_binprm *bprm, u64 flags)', undefined, undefined],
  [160, 'ktime_get_coarse_ns', 'u64 bpf_ktime_get_coarse_ns(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [161, 'ima_inode_hash', 'long bpf_ima_inode_hash(struct inode *inode, void *dst, u32 size)', undefined, undefined],
  [162, 'sock_from_file', 'struct socket *bpf_sock_from_file(struct file *file)', false, undefined],
  [163, 'check_mtu', 'long bpf_check_mtu(void *ctx, u32 ifindex, u32 *mtu_len, s32 len_diff, u64 flags)', true, ['integer', ['ptr_to_ctx', 'anything', 'ptr_to_fixed_size_mem|mem_write|mem_aligned:4', 'anything', 'anything'], 'net/core/filter.c']],
  [164, 'for_each_map_elem', 'long bpf_for_each_map_elem(struct bpf_map *map, void *callback_fn, void *callback_ctx, u64 flags)', false, ['integer', ['const_map_ptr', 'ptr_to_func', 'ptr_to_stack_or_null', 'anything'], 'kernel/bpf/bpf_iter.c']],
  [165, 'snprintf', 'long bpf_snprintf(char *str, u32 str_size, const char *fmt, u64 *data, u32 data_len)', true, ['integer', ['ptr_to_mem_or_null', 'const_size_or_zero', 'ptr_to_const_str', 'ptr_to_mem|ptr_maybe_null|mem_rdonly', 'const_size_or_zero'], 'kernel/bpf/helpers.c']],
  [166, 'sys_bpf', 'long bpf_sys_bpf(u32 cmd, void *attr, u32 attr_size)', false, undefined],
  [167, 'btf_find_by_name_kind', 'long bpf_btf_find_by_name_kind(char *name, int name_sz, u32 kind, int flags)', false, undefined],
  [168, 'sys_close', 'long bpf_sys_close(u32 fd)', false, undefined],
  [169, 'timer_init', 'long bpf_timer_init(struct bpf_timer *timer, struct bpf_map *map, u64 flags)', true, ['integer', ['ptr_to_timer', 'const_map_ptr', 'anything'], 'kernel/bpf/helpers.c']],
  [170, 'timer_set_callback', 'long bpf_timer_set_callback(struct bpf_timer *timer, void *callback_fn)', true, ['integer', ['ptr_to_timer', 'ptr_to_func'], 'kernel/bpf/helpers.c']],
  [171, 'timer_start', 'long bpf_timer_start(struct bpf_timer *timer, u64 nsecs, u64 flags)', true, ['integer', ['ptr_to_timer', 'anything', 'anything'], 'kernel/bpf/helpers.c']],
  [172, 'timer_cancel', 'long bpf_timer_cancel(struct bpf_timer *timer)', true, ['integer', ['ptr_to_timer'], 'kernel/bpf/helpers.c']],
  [173, 'get_func_ip', 'u64 bpf_get_func_ip(void *ctx)', true, ['integer', ['ptr_to_ctx'], 'kernel/trace/bpf_trace.c']],
  [174, 'get_attach_cookie', 'u64 bpf_get_attach_cookie(void *ctx)', false, ['integer', ['ptr_to_ctx'], 'kernel/trace/bpf_trace.c']],
  [175, 'task_pt_regs', 'long bpf_task_pt_regs(struct task_struct *task)', true, ['ptr_to_btf_id', ['ptr_to_btf_id'], 'kernel/trace/bpf_trace.c']],
  [176, 'get_branch_snapshot', 'long bpf_get_branch_snapshot(void *entries, u32 size, u64 flags)', true, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero'], 'kernel/trace/bpf_trace.c']],
  [177, 'trace_vprintk', 'long bpf_trace_vprintk(const char *fmt, u32 fmt_size, const void *data, u32 data_len)', true, ['integer', ['ptr_to_mem|mem_rdonly', 'const_size', 'ptr_to_mem|ptr_maybe_null|mem_rdonly', 'const_size_or_zero'], 'kernel/trace/bpf_trace.c']],
  [178, 'skc_to_unix_sock', 'struct unix_sock *bpf_skc_to_unix_sock(void *sk)', false, undefined],
  [179, 'kallsyms_lookup_name', 'long bpf_kallsyms_lookup_name(const char *name, int name_sz, int flags, u64 *res)', false, undefined],
  [180, 'find_vma', 'long bpf_find_vma(struct task_struct *task, u64 addr, void *callback_fn, void *callback_ctx, u64 flags)', false, undefined],
  [181, 'loop', 'long bpf_loop(u32 nr_loops, void *callback_fn, void *callback_ctx, u64 flags)', false, ['integer', ['anything', 'ptr_to_func', 'ptr_to_stack_or_null', 'anything'], 'kernel/bpf/bpf_iter.c']],
  [182, 'strncmp', 'long bpf_strncmp(const char *s1, u32 s1_sz, const char *s2)', false, ['integer', ['ptr_to_mem|mem_rdonly', 'const_size', 'ptr_to_const_str'], 'kernel/bpf/helpers.c']],
  [183, 'get_func_arg', 'long bpf_get_func_arg(void *ctx, u32 n, u64 *value)', false, ['integer', ['ptr_to_ctx', 'anything', 'ptr_to_fixed_size_mem|mem_uninit|mem_write|mem_aligned:8'], 'kernel/trace/bpf_trace.c']],
  [184, 'get_func_ret', 'long bpf_get_func_ret(void *ctx, u64 *value)', undefined, undefined],
  [185, 'get_func_arg_cnt', 'long bpf_get_func_arg_cnt(void *ctx)', undefined, undefined],
  [186, 'get_retval', 'int bpf_get_retval(void)', false, ['integer', [], 'kernel/bpf/cgroup.c']],
  [187, 'set_retval', 'int bpf_set_retval(int retval)', false, ['integer', ['anything'], 'kernel/bpf/cgroup.c']],
  [188, 'xdp_get_buff_len', 'u64 bpf_xdp_get_buff_len(struct xdp_buff *xdp_md)', false, ['integer', ['ptr_to_ctx'], 'net/core/filter.c']],
  [189, 'xdp_load_bytes', 'long bpf_xdp_load_bytes(struct xdp_buff *xdp_md, u32 offset, void *buf, u32 len)', false, ['integer', ['ptr_to_ctx', 'anything', 'ptr_to_uninit_mem', 'const_size'], 'net/core/filter.c']],
  [190, 'xdp_store_bytes', 'long bpf_xdp_store_bytes(struct xdp_buff *xdp_md, u32 offset, void *buf, u32 len)', false, ['integer', ['ptr_to_ctx', 'anything', 'ptr_to_mem|mem_rdonly', 'const_size'], 'net/core/filter.c']],
  [191, 'copy_from_user_task', 'long bpf_copy_from_user_task(void *dst, u32 size, const void *user_ptr, struct task_struct *tsk, u64 flags)', true, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'anything', 'ptr_to_btf_id', 'anything'], 'kernel/bpf/helpers.c']],
  [192, 'skb_set_tstamp', 'long bpf_skb_set_tstamp(struct sk_buff *skb, u64 tstamp, u32 tstamp_type)', false, ['integer', ['ptr_to_ctx', 'anything', 'anything'], 'net/core/filter.c']],
  [193, 'ima_file_hash', 'long bpf_ima_file_hash(struct file *file, void *dst, u32 size)', undefined, undefined],
  [194, 'kptr_xchg', 'void *bpf_kptr_xchg(void *map_value, void *ptr)', false, ['ptr_to_btf_id_or_null', ['kptr_xchg_dest', 'ptr_to_btf_id_or_null|obj_release'], 'kernel/bpf/helpers.c']],
  [195, 'map_lookup_percpu_elem', 'void *bpf_map_lookup_percpu_elem(struct bpf_map *map, const void *key, u32 cpu)', false, ['ptr_to_map_value_or_null', ['const_map_ptr', 'ptr_to_map_key', 'anything'], 'kernel/bpf/helpers.c']],
  [196, 'skc_to_mptcp_sock', 'struct mptcp_sock *bpf_skc_to_mptcp_sock(void *sk)', false, undefined],
  [197, 'dynptr_from_mem', 'long bpf_dynptr_from_mem(void *data, u32 size, u64 flags, struct bpf_dynptr *ptr)', false, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'anything', 'ptr_to_dynptr|dynptr_type_local|mem_uninit|mem_write'], 'kernel/bpf/helpers.c']],
  [198, 'ringbuf_reserve_dynptr', 'long bpf_ringbuf_reserve_dynptr(void *ringbuf, u32 size, u64 flags, struct bpf_dynptr *ptr)', false, undefined],
  [199, 'ringbuf_submit_dynptr', 'void bpf_ringbuf_submit_dynptr(struct bpf_dynptr *ptr, u64 flags)', false, ['void', ['ptr_to_dynptr|dynptr_type_ringbuf|obj_release', 'anything'], 'kernel/bpf/ringbuf.c']],
  [200, 'ringbuf_discard_dynptr', 'void bpf_ringbuf_discard_dynptr(struct bpf_dynptr *ptr, u64 flags)', false, ['void', ['ptr_to_dynptr|dynptr_type_ringbuf|obj_release', 'anything'], 'kernel/bpf/ringbuf.c']],
  [201, 'dynptr_read', 'long bpf_dynptr_read(void *dst, u32 len, struct bpf_dynptr *src, u32 offset, u64 flags)', false, ['integer', ['ptr_to_uninit_mem', 'const_size_or_zero', 'ptr_to_dynptr|mem_rdonly', 'anything', 'anything'], 'kernel/bpf/helpers.c']],
  [202, 'dynptr_write', 'long bpf_dynptr_write(struct bpf_dynptr *dst, u32 offset, void *src, u32 len, u64 flags)', false, ['integer', ['ptr_to_dynptr|mem_rdonly', 'anything', 'ptr_to_mem|mem_rdonly', 'const_size_or_zero', 'anything'], 'kernel/bpf/helpers.c']],
  [203, 'dynptr_data', 'void *bpf_dynptr_data(struct bpf_dynptr *ptr, u32 offset, u32 len)', false, ['ptr_to_dynptr_mem_or_null', ['ptr_to_dynptr|mem_rdonly', 'anything', 'const_alloc_size_or_zero'], 'kernel/bpf/helpers.c']],
  [204, 'tcp_raw_gen_syncookie_ipv4', 's64 bpf_tcp_raw_gen_syncookie_ipv4(struct iphdr *iph, struct tcphdr *th, u32 th_len)', true, undefined],
  [205, 'tcp_raw_gen_syncookie_ipv6', 's64 bpf_tcp_raw_gen_syncookie_ipv6(struct ipv6hdr *iph, struct tcphdr *th, u32 th_len)', true, undefined],
  [206, 'tcp_raw_check_syncookie_ipv4', 'long bpf_tcp_raw_check_syncookie_ipv4(struct iphdr *iph, struct tcphdr *th)', true, undefined],
  [207, 'tcp_raw_check_syncookie_ipv6', 'long bpf_tcp_raw_check_syncookie_ipv6(struct ipv6hdr *iph, struct tcphdr *th)', true, undefined],
  [208, 'ktime_get_tai_ns', 'u64 bpf_ktime_get_tai_ns(void)', false, ['integer', [], 'kernel/bpf/helpers.c']],
  [209, 'user_ringbuf_drain', 'long bpf_user_ringbuf_drain(struct bpf_map *map, void *callback_fn, void *ctx, u64 flags)', false, ['integer', ['const_map_ptr', 'ptr_to_func', 'ptr_to_stack_or_null', 'anything'], 'kernel/bpf/ringbuf.c']],
  [210, 'cgrp_storage_get', 'void *bpf_cgrp_storage_get(struct bpf_map *map, struct cgroup *cgroup, void *value, u64 flags)', false, undefined],
  [211, 'cgrp_storage_delete', 'long bpf_cgrp_storage_delete(struct bpf_map *map, struct cgroup *cgroup)', false, undefined],
];

function splitSpelling(spelling: string): { base: string; flags: TypeFlag[]; size?: number } {
  const [main, size] = spelling.split(':');
  const [base, ...rest] = (main as string).split('|');
  for (const f of rest) if (!(f in TYPE_FLAGS)) throw new Error(`catalog: unknown type flag ${f}`);
  return {
    base: base as string,
    flags: rest as TypeFlag[],
    ...(size === undefined ? {} : { size: Number(size) }),
  };
}

function parseArg(spelling: string): HelperArg {
  const { base, flags, size } = splitSpelling(spelling);
  const alias = ARG_ALIASES[base];
  if (alias) {
    const [kind, ...aliasFlags] = alias;
    return { spelling, kind, flags: [...aliasFlags, ...flags], ...(size === undefined ? {} : { size }) };
  }
  if (!(ARG_KINDS as readonly string[]).includes(base)) throw new Error(`catalog: unknown arg kind ${base}`);
  return { spelling, kind: base as ArgKind, flags, ...(size === undefined ? {} : { size }) };
}

function parseRet(spelling: string): HelperRet {
  const { base, flags } = splitSpelling(spelling);
  const alias = RET_ALIASES[base];
  if (alias) {
    const [kind, ...aliasFlags] = alias;
    return { spelling, kind, flags: [...aliasFlags, ...flags] };
  }
  if (!(RET_KINDS as readonly string[]).includes(base))
    throw new Error(`catalog: unknown return kind ${base}`);
  return { spelling, kind: base as RetKind, flags };
}

/** Every helper id of the kernel, indexed by id (`HELPERS[1].name === 'map_lookup_elem'`). */
export const HELPERS: readonly Helper[] = ROWS.map(([id, name, signature, gplOnly, raw]) => {
  let proto: HelperProto | undefined | null = null;
  return {
    id,
    name,
    signature,
    gplOnly,
    // Parsed on first use: a process that needs only ids and names (tsbpf trace's start) skips ~8 ms.
    get proto(): HelperProto | undefined {
      if (proto === null)
        proto = raw && { ret: parseRet(raw[0]), args: raw[1].map(parseArg), source: raw[2] };
      return proto;
    },
  };
});

const BY_NAME = new Map(HELPERS.map((h) => [h.name, h]));

/** The helper with this id, or undefined past the kernel's `__BPF_FUNC_MAX_ID`. */
export function helperById(id: number): Helper | undefined {
  return HELPERS[id];
}

/** The helper with this name (`map_lookup_elem`; a leading `bpf_` is accepted). */
export function helperByName(name: string): Helper | undefined {
  return BY_NAME.get(name.startsWith('bpf_') ? name.slice(4) : name);
}

/** The id of a helper the caller knows exists; throws for a name the catalog lacks (a bug in the caller). */
export function helperId(name: string): number {
  const h = helperByName(name);
  if (!h) throw new Error(`catalog: no helper named ${name}`);
  return h.id;
}

/** `enum bpf_arg_type` value of an argument kind as the kernel encodes it (base | flag bits). */
export function argTypeValue(arg: HelperArg): number {
  return arg.flags.reduce((v, f) => v | TYPE_FLAGS[f], ARG_KINDS.indexOf(arg.kind));
}

/** `enum bpf_return_type` value of a return kind (base | flag bits). */
export function retTypeValue(ret: HelperRet): number {
  return ret.flags.reduce((v, f) => v | TYPE_FLAGS[f], RET_KINDS.indexOf(ret.kind));
}
