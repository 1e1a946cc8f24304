/**
 * Program contexts in the VM, built the way the kernel's BPF_PROG_TEST_RUN builds them
 * (net/bpf/test_run.c): `struct xdp_md` over an xdp_buff with 256 bytes of headroom and metadata,
 * `struct __sk_buff` for socket filters, TC and cgroup_skb with its fields derived from the packet
 * as eth_type_trans derives them, raw tracepoint args, syscall arguments, tracepoint records,
 * `pt_regs` and `bpf_perf_event_data`.
 *
 * Context access: the kernel rewrites every ctx field load at load time into a load from its real
 * structures (xdp_md.data, a u32, becomes a 64-bit load of xdp_buff->data). The VM's real structure
 * *is* the uapi layout: a context lives in VM memory as the uapi struct, its pointer fields hold VM
 * addresses, and every VM address fits in 32 bits (the address space is at most 4 GiB; memory.ts
 * caps it at 1 GiB), so `(void *)(long)ctx->data` is exactly the packet's address and no load needs
 * rewriting. The TypeScript objects below hold the authoritative state (the kernel's xdp_buff and
 * sk_buff), and `sync()` writes the fields programs read after every change a helper makes.
 */
import { CTX_STRUCTS, ctxField } from '../catalog/program-types.js';
import { TsbpfError } from '../errors.js';
import type { NetInterface, VmEnv } from './env.js';
import type { AddressSpace, Region } from './memory.js';

export const ETH_HLEN = 14;
export const XDP_PACKET_HEADROOM = 256;
export const PAGE_SIZE = 4096;
/** SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64. */
export const SKB_SHINFO_SIZE = 320;
/** sizeof(struct xdp_frame): the part of the headroom bpf_xdp_adjust_head/meta may not enter. */
export const XDP_FRAME_SIZE = 40;
/** NET_SKB_PAD + NET_IP_ALIGN: headroom of a test-run skb. */
export const SKB_HEADROOM = 64;
export const GSO_LEGACY_MAX_SIZE = 65536;
export const GSO_MAX_SEGS = 65535;
export const MAX_SKB_FRAGS = 17;

export const EPERM = 1;
export const ENOENT = 2;
export const EFAULT = 14;
export const EINVAL = 22;
export const ENODEV = 19;
export const E2BIG = 7;
export const ENOMEM = 12;
export const ENOSPC = 28;
export const EACCES = 13;
export const ERANGE = 34;
export const EBUSY = 16;
export const EAFNOSUPPORT = 97;
export const ENOTSUPP = 524;

const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [EINVAL]: 'EINVAL',
  [ENODEV]: 'ENODEV',
  [E2BIG]: 'E2BIG',
  [ENOMEM]: 'ENOMEM',
  [ENOSPC]: 'ENOSPC',
  [EFAULT]: 'EFAULT',
  [ENOTSUPP]: 'ENOTSUPP',
};

/** A refusal of BPF_PROG_TEST_RUN, with the kernel's errno in details.errno. */
export function testRunError(errno: number, why: string): TsbpfError {
  return new TsbpfError('usage', `BPF_PROG_TEST_RUN: ${ERRNO_NAMES[errno] ?? `errno ${errno}`} (${why})`, {
    errno,
  });
}

/** The uapi offset of a context field (from the catalog). */
function off(struct: string, field: string): number {
  const f = ctxField(struct, field);
  if (!f) throw new Error(`catalog has no ${struct}.${field}`);
  return f.offset;
}

function findInterface(env: VmEnv, ifindex: number): NetInterface | undefined {
  return env.interfaces.find((i) => i.ifindex === ifindex);
}

/** bpf_ctx_init: the ctx given (up to `size` bytes), refusing non-zero bytes past the struct (E2BIG). */
function ctxInit(ctx: Uint8Array | undefined, size: number): Uint8Array | undefined {
  if (ctx === undefined) return undefined;
  if (ctx.length > size && ctx.subarray(size).some((b) => b !== 0))
    throw testRunError(
      E2BIG,
      `ctx_in has ${ctx.length} bytes and non-zero bytes past the ${size} of the context`,
    );
  const out = new Uint8Array(size);
  out.set(ctx.subarray(0, size));
  return out;
}

function rangeIsZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// XDP

const X = {
  data: off('xdp_md', 'data'),
  data_end: off('xdp_md', 'data_end'),
  data_meta: off('xdp_md', 'data_meta'),
  ingress_ifindex: off('xdp_md', 'ingress_ifindex'),
  rx_queue_index: off('xdp_md', 'rx_queue_index'),
  egress_ifindex: off('xdp_md', 'egress_ifindex'),
};

/** An xdp_buff over one page of VM memory, and the `struct xdp_md` programs see. */
export class XdpContext {
  readonly kind = 'xdp';
  readonly frame: Region;
  readonly ctxRegion: Region;
  /** Addresses (VM offsets) as in struct xdp_buff. */
  hardStart: number;
  data: number;
  dataEnd: number;
  dataMeta: number;
  /** The packet beyond the linear part: the kernel's frags, a page each at most. */
  frags: Uint8Array[];
  readonly ingressIfindex: number;
  readonly rxQueueIndex: number;
  /** Where a program said to redirect (bpf_redirect/redirect_map). */
  redirect: { ifindex: number; flags: number } | undefined;
  private readonly ctxIn: Uint8Array | undefined;

  /** bpf_prog_test_run_xdp's checks and setup. */
  constructor(
    private readonly space: AddressSpace,
    data: Uint8Array,
    ctx: Uint8Array | undefined,
    env: VmEnv,
  ) {
    const md = ctxInit(ctx, 24);
    let headroom = XDP_PACKET_HEADROOM;
    // The linear part: the whole packet, or xdp_md.data_end bytes of it (the rest becomes frags).
    let size = data.length;
    if (md) {
      const v = new DataView(md.buffer);
      const mdData = v.getUint32(X.data, true);
      const mdEnd = v.getUint32(X.data_end, true);
      if (v.getUint32(X.data_meta, true) !== 0) throw testRunError(EINVAL, 'xdp_md.data_meta must be 0');
      if (mdEnd > size)
        throw testRunError(EINVAL, `xdp_md.data_end (${mdEnd}) is past the packet (${size} bytes)`);
      if (mdData > mdEnd) throw testRunError(EINVAL, 'xdp_md.data is past xdp_md.data_end');
      if (mdData & 3 || mdData > XDP_PACKET_HEADROOM - XDP_FRAME_SIZE)
        throw testRunError(
          EINVAL,
          `metadata of ${mdData} bytes: must be a multiple of 4 up to ${XDP_PACKET_HEADROOM - XDP_FRAME_SIZE}`,
        );
      headroom -= mdData;
      size = mdEnd;
    }
    const maxData = PAGE_SIZE - headroom - SKB_SHINFO_SIZE;
    if (size > maxData) size = maxData;
    if (data.length < ETH_HLEN)
      throw testRunError(EINVAL, `packet of ${data.length} bytes is shorter than an Ethernet header (14)`);
    let ingress = 1;
    let rxq = 0;
    if (md) {
      const v = new DataView(md.buffer);
      if (v.getUint32(X.egress_ifindex, true) !== 0)
        throw testRunError(EINVAL, 'xdp_md.egress_ifindex must be 0');
      const ifi = v.getUint32(X.ingress_ifindex, true);
      const q = v.getUint32(X.rx_queue_index, true);
      if (ifi === 0 && q !== 0) throw testRunError(EINVAL, 'xdp_md.rx_queue_index without ingress_ifindex');
      if (ifi !== 0) {
        const dev = findInterface(env, ifi);
        if (!dev) throw testRunError(ENODEV, `no interface with ifindex ${ifi}`);
        if (q >= dev.rxQueues)
          throw testRunError(
            EINVAL,
            `rx_queue_index ${q}: interface ${dev.name} has ${dev.rxQueues} rx queue(s)`,
          );
        ingress = ifi;
        rxq = q;
      }
    }
    this.frame = space.allocate(PAGE_SIZE, 'xdp frame', { align: 64 });
    this.hardStart = this.frame.base;
    this.dataMeta = this.hardStart + headroom;
    space.u8.set(data.subarray(0, size), this.dataMeta);
    this.data = this.dataMeta + (md ? new DataView(md.buffer).getUint32(X.data, true) : 0);
    this.dataEnd = this.dataMeta + size;
    this.frags = [];
    for (let p = size; p < data.length; p += PAGE_SIZE) {
      if (this.frags.length === MAX_SKB_FRAGS) {
        space.freeRegion(this.frame);
        throw testRunError(
          ENOMEM,
          `packet of ${data.length} bytes needs more than ${MAX_SKB_FRAGS} fragments`,
        );
      }
      this.frags.push(data.slice(p, Math.min(p + PAGE_SIZE, data.length)));
    }
    this.ingressIfindex = ingress;
    this.rxQueueIndex = rxq;
    this.ctxIn = md;
    this.ctxRegion = space.allocate(24, 'xdp_md', { writable: false });
    this.sync();
  }

  get address(): bigint {
    return BigInt(this.ctxRegion.base);
  }

  /** Writes the xdp_md fields from the xdp_buff. */
  sync(): void {
    const v = this.space.view;
    const b = this.ctxRegion.base;
    v.setUint32(b + X.data, this.data, true);
    v.setUint32(b + X.data_end, this.dataEnd, true);
    v.setUint32(b + X.data_meta, this.dataMeta, true);
    v.setUint32(b + X.ingress_ifindex, this.ingressIfindex, true);
    v.setUint32(b + X.rx_queue_index, this.rxQueueIndex, true);
    v.setUint32(b + X.egress_ifindex, 0, true);
  }

  /** Last address data_end may reach (xdp_data_hard_end). */
  get hardEnd(): number {
    return this.hardStart + PAGE_SIZE - SKB_SHINFO_SIZE;
  }

  /** data_out (metadata, packet, frags) and ctx_out (xdp_convert_buff_to_md). */
  output(): { data: Uint8Array; ctx: Uint8Array | undefined } {
    const lin = this.space.u8.subarray(this.dataMeta, this.dataEnd);
    const data = new Uint8Array(lin.length + this.fragsSize);
    data.set(lin);
    let p = lin.length;
    for (const f of this.frags) {
      data.set(f, p);
      p += f.length;
    }
    let ctx: Uint8Array | undefined;
    if (this.ctxIn) {
      ctx = this.ctxIn.slice();
      const v = new DataView(ctx.buffer);
      v.setUint32(X.data, this.data - this.dataMeta, true);
      v.setUint32(X.data_end, this.dataEnd - this.dataMeta, true);
    }
    return { data, ctx };
  }

  /** bpf_xdp_adjust_head. */
  adjustHead(offset: number): number {
    const metalen = this.data - this.dataMeta;
    const data = this.data + offset;
    if (data < this.hardStart + XDP_FRAME_SIZE + metalen || data > this.dataEnd - ETH_HLEN) return -EINVAL;
    if (metalen) this.space.u8.copyWithin(this.dataMeta + offset, this.dataMeta, this.data);
    this.dataMeta += offset;
    this.data = data;
    this.sync();
    return 0;
  }

  /** Bytes in frags (sinfo->xdp_frags_size). */
  get fragsSize(): number {
    let n = 0;
    for (const f of this.frags) n += f.length;
    return n;
  }

  /** bpf_xdp_adjust_tail: the last fragment grows or the tail shrinks (frags first), else the linear part. */
  adjustTail(offset: number): number {
    if (this.frags.length > 0) {
      if (offset >= 0) {
        // bpf_xdp_frags_increase_tail: within the last fragment's page
        const last = this.frags[this.frags.length - 1];
        if (last.length + offset > PAGE_SIZE) return -EINVAL;
        const f = new Uint8Array(last.length + offset);
        f.set(last);
        this.frags[this.frags.length - 1] = f;
        return 0;
      }
      // bpf_xdp_frags_shrink_tail
      let shrink = -offset;
      if (shrink > this.length - ETH_HLEN) return -EINVAL;
      while (this.frags.length > 0 && shrink > 0) {
        const last = this.frags[this.frags.length - 1];
        const cut = Math.min(shrink, last.length);
        shrink -= cut;
        if (cut === last.length) this.frags.pop();
        else this.frags[this.frags.length - 1] = last.slice(0, last.length - cut);
      }
      if (this.frags.length === 0) this.dataEnd -= shrink;
      this.sync();
      return 0;
    }
    const end = this.dataEnd + offset;
    if (end > this.hardEnd) return -EINVAL;
    if (end < this.data + ETH_HLEN) return -EINVAL;
    if (offset > 0) this.space.u8.fill(0, this.dataEnd, end);
    this.dataEnd = end;
    this.sync();
    return 0;
  }

  /** bpf_xdp_adjust_meta. */
  adjustMeta(offset: number): number {
    const meta = this.dataMeta + offset;
    const metalen = this.data - meta;
    if (meta < this.hardStart + XDP_FRAME_SIZE || meta > this.data) return -EINVAL;
    if (metalen & 3 || metalen > 255) return -EACCES;
    this.dataMeta = meta;
    this.sync();
    return 0;
  }

  /** Total packet length (bpf_xdp_get_buff_len). */
  get length(): number {
    return this.dataEnd - this.data + this.fragsSize;
  }

  /** Byte `i` of the packet (linear part, then frags): [array, index] or undefined past the end. */
  private locate(i: number): [Uint8Array, number] | undefined {
    const lin = this.dataEnd - this.data;
    if (i < lin) return [this.space.u8, this.data + i];
    let p = i - lin;
    for (const f of this.frags) {
      if (p < f.length) return [f, p];
      p -= f.length;
    }
    return undefined;
  }

  /** bpf_xdp_load_bytes: the bytes, or undefined when out of range. */
  load(offset: number, len: number): Uint8Array | undefined {
    if (offset < 0 || len <= 0 || offset + len > this.length) return undefined;
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const [a, k] = this.locate(offset + i) as [Uint8Array, number];
      out[i] = a[k];
    }
    return out;
  }

  /** bpf_xdp_store_bytes: false when out of range. */
  store(offset: number, bytes: Uint8Array): boolean {
    if (offset < 0 || bytes.length === 0 || offset + bytes.length > this.length) return false;
    for (let i = 0; i < bytes.length; i++) {
      const [a, k] = this.locate(offset + i) as [Uint8Array, number];
      a[k] = bytes[i];
    }
    return true;
  }

  free(): void {
    this.space.freeRegion(this.ctxRegion);
    this.space.freeRegion(this.frame);
  }
}

// ---------------------------------------------------------------------------------------------
// __sk_buff

const S: Record<string, number> = Object.fromEntries(CTX_STRUCTS.__sk_buff.fields.map(([n, o]) => [n, o]));
const SKB_SIZE = CTX_STRUCTS.__sk_buff.size;
const BPF_SOCK_SIZE = CTX_STRUCTS.bpf_sock.size;

export const PACKET_HOST = 0;
export const PACKET_BROADCAST = 1;
export const PACKET_MULTICAST = 2;
export const PACKET_OTHERHOST = 3;
const ETH_P_802_3_MIN = 0x600;
export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;
const AF_INET = 2;
const AF_INET6 = 10;

/** Program types whose test run starts at the MAC header (is_l2 in bpf_prog_test_run_skb). */
const L2_TYPES = new Set(['sched_cls', 'sched_act']);

const be16 = (u8: Uint8Array, i: number) => (u8[i] << 8) | u8[i + 1];

/** The sk_buff of a test run, and the `struct __sk_buff` programs see. */
export class SkbContext {
  readonly kind = 'skb';
  /** The buffer holding the packet (reallocated when a helper grows it past its room). */
  buffer: Region;
  readonly ctxRegion: Region;
  readonly sockRegion: Region;
  /** skb->data and skb->len (VM address, bytes). */
  data: number;
  len: number;
  /** Offsets of the MAC and network headers from the buffer's base. */
  macOff: number;
  netOff: number;
  /** eth_type_trans's protocol (host order). */
  protocol: number;
  pktType: number;
  vlan: { proto: number; tci: number } | undefined;
  hash = 0;
  swHash = false;
  l4Hash = false;
  readonly dev: NetInterface;
  readonly isL2: boolean;
  redirect: { ifindex: number; flags: number } | undefined;
  /** The packet as the program's LD_ABS/LD_IND see it (kept in step with data/len). */
  readonly packet: { base: number; length: number };
  private readonly ctxIn: Uint8Array | undefined;

  constructor(
    readonly space: AddressSpace,
    readonly type: string,
    packet: Uint8Array,
    ctx: Uint8Array | undefined,
    env: VmEnv,
  ) {
    this.isL2 = L2_TYPES.has(type);
    if (packet.length < ETH_HLEN)
      throw testRunError(EINVAL, `packet of ${packet.length} bytes is shorter than an Ethernet header (14)`);
    if (packet.length > PAGE_SIZE - SKB_HEADROOM - SKB_SHINFO_SIZE)
      throw testRunError(
        EINVAL,
        `packet of ${packet.length} bytes is longer than ${PAGE_SIZE - SKB_HEADROOM - SKB_SHINFO_SIZE} (one page less headroom and tailroom)`,
      );
    const sk = ctxInit(ctx, SKB_SIZE);
    if (sk) checkSkbCtx(sk);
    const sv = sk && new DataView(sk.buffer);
    let dev = findInterface(env, 1) ?? {
      ifindex: 1,
      name: 'lo',
      mac: new Uint8Array(6),
      mtu: 65536,
      rxQueues: 1,
    };
    const want = sv?.getUint32(S.ifindex, true) ?? 0;
    if (want > 1) {
      const d = findInterface(env, want);
      if (!d) throw testRunError(ENODEV, `no interface with ifindex ${want}`);
      dev = d;
    }
    this.dev = dev;
    // The test run's socket takes its addresses from the IP header, which must be there.
    const et = be16(packet, 12);
    if (et === ETH_P_IP && packet.length < ETH_HLEN + 20)
      throw testRunError(EINVAL, `IPv4 packet of ${packet.length} bytes has no room for an IP header`);
    if (et === ETH_P_IPV6 && packet.length < ETH_HLEN + 40)
      throw testRunError(EINVAL, `IPv6 packet of ${packet.length} bytes has no room for an IPv6 header`);
    this.buffer = space.allocate(roomFor(packet.length), 'skb data', { align: 64 });
    const base = this.buffer.base + SKB_HEADROOM;
    space.u8.set(packet, base);
    // eth_type_trans: the MAC header, pkt_type and protocol; pulls the Ethernet header.
    this.macOff = SKB_HEADROOM;
    const u8 = packet;
    const dst = u8.subarray(0, 6);
    this.pktType = PACKET_HOST;
    if (!dst.every((b, i) => b === dev.mac[i])) {
      if (dst[0] & 1) this.pktType = dst.every((b) => b === 0xff) ? PACKET_BROADCAST : PACKET_MULTICAST;
      else this.pktType = PACKET_OTHERHOST;
    }
    const proto = be16(u8, 12);
    if (proto >= ETH_P_802_3_MIN) this.protocol = proto;
    else if (u8.length >= 16 && be16(u8, 14) === 0xffff)
      this.protocol = 0x0001; // ETH_P_802_3
    else this.protocol = 0x0004; // ETH_P_802_2
    this.netOff = SKB_HEADROOM + ETH_HLEN;
    this.data = this.isL2 ? base : base + ETH_HLEN;
    this.len = this.isL2 ? packet.length : packet.length - ETH_HLEN;
    this.vlan = undefined;
    this.redirect = undefined;
    this.packet = { base: this.data, length: this.len };
    this.ctxIn = sk;

    // The test run's socket (family and addresses from the IP header).
    this.sockRegion = space.allocate(BPF_SOCK_SIZE, 'bpf_sock', { writable: false });
    const sb = this.sockRegion.base;
    const v = space.view;
    const ip = u8.subarray(ETH_HLEN);
    if (this.protocol === ETH_P_IP) {
      v.setUint32(sb + 4, AF_INET, true);
      if (ip.length >= 20) {
        space.u8.set(ip.subarray(12, 16), sb + 24); // src_ip4 = sk_rcv_saddr = saddr
        space.u8.set(ip.subarray(16, 20), sb + 52); // dst_ip4 = sk_daddr = daddr
      }
    } else if (this.protocol === ETH_P_IPV6) {
      v.setUint32(sb + 4, AF_INET6, true);
      if (ip.length >= 40) {
        space.u8.set(ip.subarray(8, 24), sb + 28);
        space.u8.set(ip.subarray(24, 40), sb + 56);
      }
    }

    this.ctxRegion = space.allocate(SKB_SIZE, '__sk_buff');
    const c = this.ctxRegion.base;
    if (sk) {
      // mark, priority, ingress_ifindex (skb_iif), cb, tstamp, gso_segs, gso_size, hwtstamp
      for (const f of ['mark', 'priority', 'ingress_ifindex', 'tstamp', 'gso_segs', 'gso_size', 'hwtstamp']) {
        const [, o, n] = CTX_STRUCTS.__sk_buff.fields.find(([name]) => name === f) as readonly [
          string,
          number,
          number,
        ];
        space.u8.set(sk.subarray(o, o + n), c + o);
      }
      space.u8.set(sk.subarray(S.cb, S.cb + 20), c + S.cb);
    }
    const wire = sv?.getUint32(S.wire_len, true) ?? 0;
    if (wire !== 0 && (wire < this.len || wire > GSO_LEGACY_MAX_SIZE))
      throw testRunError(
        EINVAL,
        `wire_len ${wire} is below the packet length ${this.len} or above ${GSO_LEGACY_MAX_SIZE}`,
      );
    if ((sv?.getUint32(S.gso_segs, true) ?? 0) > GSO_MAX_SEGS)
      throw testRunError(EINVAL, `gso_segs above ${GSO_MAX_SEGS}`);
    v.setUint32(c + S.wire_len, wire === 0 ? this.len : wire, true);
    v.setUint32(c + S.ifindex, dev.ifindex, true);
    v.setBigUint64(c + S.sk, BigInt(sb), true);
    v.setUint32(c + S.family, v.getUint32(sb + 4, true), true);
    if (type === 'cgroup_skb') {
      if (this.protocol === ETH_P_IP) {
        v.setUint32(c + S.remote_ip4, v.getUint32(sb + 52, true), true);
        v.setUint32(c + S.local_ip4, v.getUint32(sb + 24, true), true);
      } else if (this.protocol === ETH_P_IPV6) {
        space.u8.copyWithin(c + S.remote_ip6, sb + 56, sb + 72);
        space.u8.copyWithin(c + S.local_ip6, sb + 28, sb + 44);
      }
    }
    this.sync();
  }

  get address(): bigint {
    return BigInt(this.ctxRegion.base);
  }

  /** Address of the MAC / network header. */
  get macHeader(): number {
    return this.buffer.base + this.macOff;
  }
  get networkHeader(): number {
    return this.buffer.base + this.netOff;
  }
  /** End of the buffer's room (where data + len may grow to). */
  get roomEnd(): number {
    return this.buffer.end;
  }

  /** Writes the __sk_buff fields that follow the sk_buff (len, protocol, data pointers, vlan, hash...). */
  sync(): void {
    const v = this.space.view;
    const c = this.ctxRegion.base;
    v.setUint32(c + S.len, this.len, true);
    v.setUint32(c + S.pkt_type, this.pktType, true);
    // protocol and vlan_proto are __be16: the program sees the bytes in network order
    v.setUint32(c + S.protocol, ((this.protocol & 0xff) << 8) | (this.protocol >>> 8), true);
    v.setUint32(c + S.vlan_present, this.vlan ? 1 : 0, true);
    v.setUint32(c + S.vlan_tci, this.vlan?.tci ?? 0, true);
    const vp = this.vlan?.proto ?? 0;
    v.setUint32(c + S.vlan_proto, ((vp & 0xff) << 8) | (vp >>> 8), true);
    v.setUint32(c + S.hash, this.hash >>> 0, true);
    v.setUint32(c + S.data, this.data, true);
    v.setUint32(c + S.data_end, this.data + this.len, true);
    v.setUint32(c + S.data_meta, this.data, true);
    this.packet.base = this.data;
    this.packet.length = this.len;
  }

  /** A little-endian view of the packet bytes [data, data + len). */
  bytesView(): DataView {
    return new DataView(this.space.u8.buffer, this.data, this.len);
  }

  /** The packet bytes [data, data + len). */
  bytes(): Uint8Array {
    return this.space.u8.subarray(this.data, this.data + this.len);
  }

  /** data_out (the Ethernet header zeroed for types that run at L3, as the kernel does) and ctx_out. */
  output(): { data: Uint8Array; ctx: Uint8Array | undefined } {
    const pkt = this.bytes();
    let data: Uint8Array;
    if (this.isL2) data = pkt.slice();
    else {
      data = new Uint8Array(ETH_HLEN + pkt.length);
      data.set(pkt, ETH_HLEN);
    }
    let ctx: Uint8Array | undefined;
    if (this.ctxIn) {
      ctx = this.ctxIn.slice();
      const c = this.ctxRegion.base;
      const u8 = this.space.u8;
      // convert_skb_to___skb: mark, priority, ingress_ifindex, ifindex, tstamp, cb, wire_len, gso_segs, hwtstamp
      for (const f of [
        'mark',
        'priority',
        'ingress_ifindex',
        'ifindex',
        'tstamp',
        'wire_len',
        'gso_segs',
        'hwtstamp',
      ]) {
        const [, o, n] = CTX_STRUCTS.__sk_buff.fields.find(([name]) => name === f) as readonly [
          string,
          number,
          number,
        ];
        ctx.set(u8.subarray(c + o, c + o + n), o);
      }
      ctx.set(u8.subarray(c + S.cb, c + S.cb + 20), S.cb);
    }
    return { data, ctx };
  }

  /** Reads a u32 field of __sk_buff as the program left it (mark, priority...). */
  field(name: string): number {
    return this.space.view.getUint32(this.ctxRegion.base + S[name], true);
  }

  /**
   * Makes room for `head` more bytes before data and `tail` more after data + len, moving the packet
   * to a bigger buffer when needed (pointers into the packet change, as after the kernel's helpers).
   */
  ensureRoom(head: number, tail: number): void {
    const dataOff = this.data - this.buffer.base;
    const headroom = dataOff;
    const tailroom = this.buffer.size - (dataOff + this.len);
    if (headroom >= head && tailroom >= tail) return;
    const addHead = headroom >= head ? 0 : head - headroom + SKB_HEADROOM;
    const addTail = tailroom >= tail ? 0 : tail - tailroom + 64;
    const old = this.buffer;
    const nb = this.space.allocate(old.size + addHead + addTail, 'skb data', { align: 64 });
    this.space.u8.copyWithin(nb.base + addHead, old.base, old.end);
    this.space.freeRegion(old);
    this.buffer = nb;
    this.data = nb.base + addHead + dataOff;
    this.macOff += addHead;
    this.netOff += addHead;
  }

  free(): void {
    this.space.freeRegion(this.ctxRegion);
    this.space.freeRegion(this.sockRegion);
    this.space.freeRegion(this.buffer);
  }
}

function roomFor(len: number): number {
  return SKB_HEADROOM + len + SKB_SHINFO_SIZE;
}

/** convert___skb_to_skb's rule: only some __sk_buff fields may be set in ctx_in. */
function checkSkbCtx(sk: Uint8Array): void {
  const allowed = [
    'mark',
    'priority',
    'ingress_ifindex',
    'ifindex',
    'cb',
    'tstamp',
    'wire_len',
    'gso_segs',
    'gso_size',
    'hwtstamp',
  ];
  const fields = CTX_STRUCTS.__sk_buff.fields;
  let pos = 0;
  for (const [name, o, n] of fields) {
    if (!allowed.includes(name)) continue;
    if (!rangeIsZero(sk, pos, o))
      throw testRunError(
        EINVAL,
        `__sk_buff in ctx_in sets a field before '${name}' that a test run does not take`,
      );
    pos = o + n;
  }
  if (!rangeIsZero(sk, pos, sk.length))
    throw testRunError(
      EINVAL,
      '__sk_buff in ctx_in sets a field past hwtstamp that a test run does not take',
    );
}

// ---------------------------------------------------------------------------------------------
// Plain contexts: raw tracepoint args, syscall args, tracepoint records, pt_regs, perf events

/** A context that is just bytes in VM memory (copied back after the run for syscall programs). */
export class BytesContext {
  readonly kind = 'bytes';
  readonly region: Region;
  constructor(
    private readonly space: AddressSpace,
    bytes: Uint8Array,
    name: string,
    writable: boolean,
  ) {
    this.region = space.allocate(bytes.length, name, { init: bytes, writable });
  }
  get address(): bigint {
    return bytes0(this.region);
  }
  bytes(): Uint8Array {
    return this.space.u8.slice(this.region.base, this.region.end);
  }
  free(): void {
    this.space.freeRegion(this.region);
  }
}

function bytes0(r: Region): bigint {
  return r.size === 0 ? 0n : BigInt(r.base);
}

/** A little-endian struct from named u64/u32 fields of a catalog context struct (pt_regs...). */
export function buildCtxStruct(
  struct: string,
  values: Readonly<Record<string, bigint | number>>,
): Uint8Array {
  const s = CTX_STRUCTS[struct];
  if (!s) throw new TsbpfError('usage', `no context struct '${struct}'`);
  const out = new Uint8Array(s.size);
  const v = new DataView(out.buffer);
  for (const [name, value] of Object.entries(values)) {
    const f = s.fields.find(([n]) => n === name);
    if (!f)
      throw new TsbpfError(
        'usage',
        `${struct} has no field '${name}' (fields: ${s.fields.map(([n]) => n).join(', ')})`,
      );
    const [, o, n] = f;
    const b = BigInt(value);
    if (n === 8) v.setBigUint64(o, BigInt.asUintN(64, b), true);
    else if (n === 4) v.setUint32(o, Number(BigInt.asUintN(32, b)), true);
    else if (n === 2) v.setUint16(o, Number(BigInt.asUintN(16, b)), true);
    else if (n === 1) v.setUint8(o, Number(BigInt.asUintN(8, b)));
    else throw new TsbpfError('usage', `${struct}.${name} is ${n} bytes: set it as bytes`);
  }
  return out;
}

/** struct pt_regs (x86-64) from register values: `ptRegs({ di: 1n, si: 2n, ip: 0x1000n })`. */
export function ptRegs(values: Readonly<Record<string, bigint | number>> = {}): Uint8Array {
  return buildCtxStruct('pt_regs', values);
}

/** struct bpf_perf_event_data: pt_regs, sample_period, addr. */
export function perfEventData(
  regs: Readonly<Record<string, bigint | number>> = {},
  samplePeriod: bigint | number = 0,
  addr: bigint | number = 0,
): Uint8Array {
  const out = new Uint8Array(CTX_STRUCTS.bpf_perf_event_data.size);
  out.set(ptRegs(regs));
  const v = new DataView(out.buffer);
  v.setBigUint64(168, BigInt(samplePeriod), true);
  v.setBigUint64(176, BigInt(addr), true);
  return out;
}

/** Raw tracepoint args: an array of u64 (struct bpf_raw_tracepoint_args). */
export function rawTracepointArgs(args: readonly (bigint | number)[]): Uint8Array {
  const out = new Uint8Array(args.length * 8);
  const v = new DataView(out.buffer);
  for (const [i, a] of args.entries()) v.setBigUint64(i * 8, BigInt.asUintN(64, BigInt(a)), true);
  return out;
}

/** A field of a tracepoint's format file (/sys/kernel/tracing/events/CAT/NAME/format). */
export interface TracepointField {
  /** C declaration as the format file spells it (`char comm[16]`, `pid_t pid`). */
  decl: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
  /** Element count for arrays (`[16]`), undefined for scalars. */
  arrayLength?: number;
  /** `__data_loc` fields: a u32 (offset | length << 16) pointing into the record. */
  dataLoc: boolean;
}

export interface TracepointFormat {
  name: string;
  id: number;
  fields: TracepointField[];
  /** Size of the fixed part (the end of the last field). */
  size: number;
}

/** Parses a tracepoint format file. */
export function parseTracepointFormat(text: string): TracepointFormat {
  const name = /^name:\s*(\S+)/m.exec(text)?.[1] ?? '';
  const id = Number(/^ID:\s*(\d+)/m.exec(text)?.[1] ?? 0);
  const fields: TracepointField[] = [];
  const re = /field:([^;]+);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const decl = m[1].trim();
    const dm = /(\w+)\s*(?:\[(\d*)\])?\s*$/.exec(decl);
    const fname = dm?.[1] ?? decl;
    const arr = dm?.[2];
    fields.push({
      decl,
      name: fname,
      offset: Number(m[2]),
      size: Number(m[3]),
      signed: m[4] === '1',
      ...(arr !== undefined && arr !== '' ? { arrayLength: Number(arr) } : {}),
      dataLoc: decl.startsWith('__data_loc'),
    });
  }
  if (fields.length === 0) throw new TsbpfError('usage', 'not a tracepoint format: no fields');
  const size = Math.max(...fields.map((f) => f.offset + f.size));
  return { name, id, fields, size };
}

/**
 * A tracepoint record laid out by its format: numbers and bigints for scalar fields, strings or
 * bytes for arrays and `__data_loc` fields (appended after the fixed part, as the kernel does).
 * `common_type` defaults to the format's id.
 */
export function tracepointRecord(
  format: TracepointFormat,
  values: Readonly<Record<string, bigint | number | string | Uint8Array>>,
): Uint8Array {
  const tail: Uint8Array[] = [];
  let tailLen = 0;
  const enc = new TextEncoder();
  const fixed = new Uint8Array(format.size);
  const v = new DataView(fixed.buffer);
  const all = { common_type: format.id, ...values };
  for (const [name, value] of Object.entries(all)) {
    const f = format.fields.find((x) => x.name === name);
    if (!f) throw new TsbpfError('usage', `tracepoint ${format.name} has no field '${name}'`);
    const bytes =
      typeof value === 'string' ? enc.encode(`${value}\0`) : typeof value === 'object' ? value : undefined;
    if (f.dataLoc) {
      const b = bytes ?? new Uint8Array(0);
      v.setUint32(f.offset, (format.size + tailLen) | (b.length << 16), true);
      tail.push(b);
      tailLen += b.length;
      continue;
    }
    if (bytes) {
      fixed.set(bytes.subarray(0, f.size), f.offset);
      continue;
    }
    const n = BigInt(value as bigint | number);
    if (f.size === 8) v.setBigUint64(f.offset, BigInt.asUintN(64, n), true);
    else if (f.size === 4) v.setUint32(f.offset, Number(BigInt.asUintN(32, n)), true);
    else if (f.size === 2) v.setUint16(f.offset, Number(BigInt.asUintN(16, n)), true);
    else if (f.size === 1) v.setUint8(f.offset, Number(BigInt.asUintN(8, n)));
    else throw new TsbpfError('usage', `field '${name}' is ${f.size} bytes: give it as bytes`);
  }
  const out = new Uint8Array(format.size + tailLen);
  out.set(fixed);
  let p = format.size;
  for (const t of tail) {
    out.set(t, p);
    p += t.length;
  }
  return out;
}
