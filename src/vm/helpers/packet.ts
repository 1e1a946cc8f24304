/**
 * Packet helpers of the VM: the sk_buff ones (skb_load_bytes, store_bytes, load_bytes_relative,
 * change_head/tail, pull_data, l3/l4_csum_replace, csum_diff, redirect, vlan push/pop, hashes,
 * fib_lookup) and the XDP ones (xdp_adjust_head/tail/meta, xdp_load/store_bytes, redirect,
 * redirect_map, fib_lookup), with the kernel's checks and return codes (net/core/filter.c).
 *
 * Several helper ids have a different implementation per program type in the kernel (bpf_redirect
 * is bpf_xdp_redirect in XDP); `packetHelpers` builds the set for one kind of context.
 */
import { TsbpfError } from '../../errors.js';
import {
  EAFNOSUPPORT,
  EFAULT,
  EINVAL,
  ENOMEM,
  ETH_HLEN,
  ETH_P_8021AD,
  ETH_P_8021Q,
  ETH_P_IP,
  ETH_P_IPV6,
  type SkbContext,
  type XdpContext,
} from '../context.js';
import type { VmEnv } from '../env.js';
import type { HelperContext, HelperFn } from '../interpreter.js';
import { helperId } from './base.js';

const err = (errno: number) => BigInt(-errno);

// --- Internet checksum arithmetic, as include/net/checksum.h (values in memory order) ----------

const u32 = (x: number) => x >>> 0;
export function csumAdd(a: number, b: number): number {
  const r = u32(a) + u32(b);
  return u32(r + (r > 0xffffffff ? 1 : 0));
}
export const csumSub = (a: number, b: number) => csumAdd(a, u32(~b));
/** csum_fold: a 32-bit sum to the complemented 16-bit checksum. */
export function csumFold(csum: number): number {
  let sum = u32(csum);
  sum = u32(sum + u32((sum >>> 16) | (sum << 16)));
  return ~(sum >>> 16) & 0xffff;
}
/** csum_partial (x86-64) over 32-bit little-endian words of `b` (length a multiple of 4), plus seed. */
export function csumPartial(b: Uint8Array, seed: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let s = BigInt(u32(seed));
  for (let i = 0; i + 4 <= b.length; i += 4) s += BigInt(v.getUint32(i, true));
  if (b.length & 2) s += BigInt(v.getUint16(b.length & ~3, true));
  if (b.length & 1) s += BigInt(b[b.length - 1]);
  s = (s & 0xffffffffn) + (s >> 32n);
  s = (s & 0xffffffffn) + (s >> 32n);
  return Number(s & 0xffffffffn);
}
/** csum_replace4 / inet_proto_csum_replace4 (CHECKSUM_NONE): the new 16-bit checksum. */
export function csumReplace4(sum: number, from: number, to: number): number {
  return csumFold(csumAdd(csumSub(u32(~sum & 0xffff), from), to));
}
export function csumReplaceByDiff(sum: number, diff: number): number {
  return csumFold(csumAdd(diff, u32(~sum & 0xffff)));
}

const BPF_F_RECOMPUTE_CSUM = 1n;
const BPF_F_INVALIDATE_HASH = 2n;
const BPF_F_HDR_FIELD_MASK = 0xfn;
const BPF_F_PSEUDO_HDR = 1n << 4n;
const BPF_F_MARK_MANGLED_0 = 1n << 5n;
const BPF_F_MARK_ENFORCE = 1n << 6n;
const BPF_F_IPV6 = 1n << 7n;
const BPF_F_INGRESS = 1n;
const BPF_HDR_START_MAC = 0n;
const BPF_HDR_START_NET = 1n;
const CSUM_MANGLED_0 = 0xffff;
const TC_ACT_SHOT = 2n;
const TC_ACT_REDIRECT = 7n;
const XDP_ABORTED = 0n;
const XDP_REDIRECT = 4n;
const BPF_F_ACTION_MASK = 3n;

// fib_lookup
const FIB = {
  SUCCESS: 0,
  BLACKHOLE: 1,
  UNREACHABLE: 2,
  PROHIBIT: 3,
  NOT_FWDED: 4,
  FRAG_NEEDED: 8,
  NO_NEIGH: 7,
};
const BPF_FIB_LOOKUP_SKIP_NEIGH = 4n;
const FIB_FLAGS = 0x7fn;
const AF_INET = 2;
const AF_INET6 = 10;

function prefixMatch(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const m = 0x80 >> (i & 7);
    if ((a[i >> 3] & m) !== (b[i >> 3] & m)) return false;
  }
  return true;
}

/** bpf_fib_lookup over the environment's routes and neighbours. */
function fibLookup(env: VmEnv, vm: HelperContext, params: bigint, plen: bigint, flags: bigint): bigint {
  if (plen < 64n) return err(EINVAL);
  if (flags & ~FIB_FLAGS) return err(EINVAL);
  const p = vm.memory.read(params, 64);
  const v = new DataView(p.buffer);
  const family = p[0];
  if (family !== AF_INET && family !== AF_INET6) return err(EAFNOSUPPORT);
  const alen = family === AF_INET ? 4 : 16;
  const dst = p.slice(32, 32 + alen);
  let best: VmEnv['routes'][number] | undefined;
  for (const r of env.routes) {
    if ((r.family === 'inet') !== (family === AF_INET) || r.dst.length !== alen) continue;
    if (!prefixMatch(r.dst, dst, r.prefixLen)) continue;
    if (!best || r.prefixLen > best.prefixLen) best = r;
  }
  if (!best) return BigInt(FIB.NOT_FWDED);
  if (best.type === 'blackhole') return BigInt(FIB.BLACKHOLE);
  if (best.type === 'unreachable') return BigInt(FIB.UNREACHABLE);
  if (best.type === 'prohibit') return BigInt(FIB.PROHIBIT);
  const dev = env.interfaces.find((i) => i.ifindex === best.ifindex);
  if (!dev) return BigInt(FIB.NOT_FWDED);
  const mtu = best.mtu ?? dev.mtu;
  const totLen = v.getUint16(6, true);
  if (totLen > mtu) {
    v.setUint16(6, mtu, true);
    vm.memory.write(params, p);
    return BigInt(FIB.FRAG_NEEDED);
  }
  v.setUint32(8, dev.ifindex, true);
  const nh = best.gateway ?? dst;
  if (best.gateway) p.set(best.gateway.subarray(0, alen), 32);
  v.setUint16(48, 0, true);
  v.setUint16(50, 0, true);
  p.set(dev.mac.subarray(0, 6), 52);
  if (!(flags & BPF_FIB_LOOKUP_SKIP_NEIGH)) {
    const n = env.neighbours.find((x) => x.ip.length === alen && x.ip.every((b, i) => b === nh[i]));
    if (!n) {
      vm.memory.write(params, p);
      return BigInt(FIB.NO_NEIGH);
    }
    p.set(n.mac.subarray(0, 6), 58);
  }
  vm.memory.write(params, p);
  return BigInt(FIB.SUCCESS);
}

/** A 32-bit flow hash of the packet's addresses, protocol and ports (deterministic per environment). */
function flowHash(pkt: Uint8Array, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  const mix = (b: number) => {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  const proto = (pkt[12] << 8) | pkt[13];
  let l4 = -1;
  let ipProto = 0;
  if (proto === ETH_P_IP && pkt.length >= 34) {
    for (let i = 26; i < 34; i++) mix(pkt[i]);
    ipProto = pkt[23];
    l4 = 14 + (pkt[14] & 0xf) * 4;
  } else if (proto === ETH_P_IPV6 && pkt.length >= 54) {
    for (let i = 22; i < 54; i++) mix(pkt[i]);
    ipProto = pkt[20];
    l4 = 54;
  } else {
    for (let i = 0; i < Math.min(pkt.length, 14); i++) mix(pkt[i]);
  }
  mix(ipProto);
  if (l4 > 0 && pkt.length >= l4 + 4 && (ipProto === 6 || ipProto === 17))
    for (let i = l4; i < l4 + 4; i++) mix(pkt[i]);
  return h === 0 ? 1 : h;
}

export interface PacketHost {
  readonly env: VmEnv;
  /** The context of the running test, whatever its kind. */
  current(): XdpContext | SkbContext | { kind: string } | undefined;
}

/** The packet helpers for `kind` ('skb' or 'xdp') programs. */
export function packetHelpers(host: PacketHost, kind: 'skb' | 'xdp'): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();
  const env = host.env;

  h.set(helperId('csum_diff'), ([from, fromSize, to, toSize, seed], vm) => {
    const fs = Number(fromSize);
    const ts = Number(toSize);
    if ((fs | ts) & 3 || fs + ts > 512) return err(EINVAL);
    const diff = new Uint8Array(fs + ts);
    if (fs) {
      const f = vm.memory.read(from, fs);
      for (let i = 0; i < fs; i++) diff[i] = ~f[i] & 0xff;
    }
    if (ts) diff.set(vm.memory.read(to, ts), fs);
    // Linux 6.18 folds the sum to 16 bits (csum_from32to16), the same answer on every architecture.
    let sum = csumPartial(diff, Number(seed & 0xffffffffn));
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    return BigInt(sum & 0xffff);
  });
  h.set(helperId('fib_lookup'), ([_ctx, params, plen, flags], vm) => fibLookup(env, vm, params, plen, flags));

  if (kind === 'xdp') {
    const xdp = (): XdpContext => {
      const c = host.current();
      if (c?.kind !== 'xdp') throw new TsbpfError('runtime', 'XDP helper called outside an XDP run');
      return c as XdpContext;
    };
    h.set(helperId('xdp_adjust_head'), ([_ctx, delta]) =>
      BigInt(xdp().adjustHead(Number(BigInt.asIntN(32, delta)))),
    );
    h.set(helperId('xdp_adjust_tail'), ([_ctx, delta]) =>
      BigInt(xdp().adjustTail(Number(BigInt.asIntN(32, delta)))),
    );
    h.set(helperId('xdp_adjust_meta'), ([_ctx, delta]) =>
      BigInt(xdp().adjustMeta(Number(BigInt.asIntN(32, delta)))),
    );
    h.set(helperId('xdp_get_buff_len'), () => BigInt(xdp().length));
    const xdpBytes = (store: boolean): HelperFn => {
      return ([_ctx, offset, buf, len], vm) => {
        const x = xdp();
        const o = Number(offset & 0xffffffffn);
        const n = Number(len & 0xffffffffn);
        if (store) return x.store(o, vm.memory.read(buf, n)) ? 0n : err(EINVAL);
        const b = x.load(o, n);
        if (!b) return err(EINVAL);
        vm.memory.write(buf, b);
        return 0n;
      };
    };
    h.set(helperId('xdp_load_bytes'), xdpBytes(false));
    h.set(helperId('xdp_store_bytes'), xdpBytes(true));
    h.set(helperId('redirect'), ([ifindex, flags]) => {
      if (flags !== 0n) return XDP_ABORTED;
      xdp().redirect = { ifindex: Number(ifindex & 0xffffffffn), flags: 0 };
      return XDP_REDIRECT;
    });
    // No devmap/cpumap/xskmap in the VM: every lookup misses, so the answer is the fallback action.
    h.set(helperId('redirect_map'), ([_map, _key, flags]) => {
      if (flags & ~BPF_F_ACTION_MASK & 0xffffffffn) return XDP_ABORTED;
      return flags & BPF_F_ACTION_MASK;
    });
    return h;
  }

  const skb = (addr?: bigint): SkbContext => {
    const c = host.current();
    if (c?.kind !== 'skb') throw new TsbpfError('runtime', 'sk_buff helper called outside a socket/TC run');
    const s = c as SkbContext;
    if (addr !== undefined && addr !== s.address)
      throw new TsbpfError('runtime', `0x${addr.toString(16)} is not the program's __sk_buff`);
    return s;
  };

  h.set(helperId('skb_load_bytes'), ([ctx, offset, to, len], vm) => {
    const s = skb(ctx);
    const o = Number(offset & 0xffffffffn);
    const n = Number(len & 0xffffffffn);
    if (o > 0x7fffffff || o + n > s.len) {
      vm.memory.write(to, new Uint8Array(n));
      return err(EFAULT);
    }
    vm.memory.write(to, vm.memory.u8.slice(s.data + o, s.data + o + n));
    return 0n;
  });
  h.set(helperId('skb_load_bytes_relative'), ([ctx, offset, to, len, start], vm) => {
    const s = skb(ctx);
    const o = Number(offset & 0xffffffffn);
    const n = Number(len & 0xffffffffn);
    const fail = () => {
      vm.memory.write(to, new Uint8Array(n));
      return err(EFAULT);
    };
    if (o > 0xffff) return fail();
    let ptr: number;
    if (start === BPF_HDR_START_MAC) ptr = s.macHeader + o;
    else if (start === BPF_HDR_START_NET) ptr = s.networkHeader + o;
    else return fail();
    if (ptr >= s.macHeader && ptr + n <= s.data + s.len) {
      vm.memory.write(to, vm.memory.u8.slice(ptr, ptr + n));
      return 0n;
    }
    return fail();
  });
  h.set(helperId('skb_store_bytes'), ([ctx, offset, from, len, flags], vm) => {
    const s = skb(ctx);
    if (flags & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH)) return err(EINVAL);
    const o = Number(offset & 0xffffffffn);
    const n = Number(len & 0xffffffffn);
    if (o > 0xffff) return err(EFAULT);
    if (o + n > s.len) return err(EFAULT);
    vm.memory.u8.set(vm.memory.read(from, n), s.data + o);
    if (flags & BPF_F_INVALIDATE_HASH) {
      s.hash = 0;
      s.swHash = false;
      s.l4Hash = false;
    }
    s.sync();
    return 0n;
  });
  h.set(helperId('l3_csum_replace'), ([ctx, offset, from, to, flags]) => {
    const s = skb(ctx);
    if (flags & ~BPF_F_HDR_FIELD_MASK) return err(EINVAL);
    const o = Number(offset & 0xffffffffn);
    if (o > 0xffff || o & 1) return err(EFAULT);
    if (o + 2 > s.len) return err(EFAULT);
    const v = s.bytesView();
    const sum = v.getUint16(o, true);
    let n: number;
    switch (flags & BPF_F_HDR_FIELD_MASK) {
      case 0n:
        if (from !== 0n) return err(EINVAL);
        n = csumReplaceByDiff(sum, Number(to & 0xffffffffn));
        break;
      case 2n:
        n = csumReplace4(sum, Number(from & 0xffffn), Number(to & 0xffffn));
        break;
      case 4n:
        n = csumReplace4(sum, Number(from & 0xffffffffn), Number(to & 0xffffffffn));
        break;
      default:
        return err(EINVAL);
    }
    v.setUint16(o, n, true);
    return 0n;
  });
  h.set(helperId('l4_csum_replace'), ([ctx, offset, from, to, flags]) => {
    const s = skb(ctx);
    if (
      flags &
      ~(BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK | BPF_F_IPV6)
    )
      return err(EINVAL);
    const o = Number(offset & 0xffffffffn);
    if (o > 0xffff || o & 1) return err(EFAULT);
    if (o + 2 > s.len) return err(EFAULT);
    const v = s.bytesView();
    const sum = v.getUint16(o, true);
    const mm = (flags & BPF_F_MARK_MANGLED_0) !== 0n;
    if (mm && !(flags & BPF_F_MARK_ENFORCE) && sum === 0) return 0n;
    let n: number;
    switch (flags & BPF_F_HDR_FIELD_MASK) {
      case 0n:
        if (from !== 0n) return err(EINVAL);
        n = csumReplaceByDiff(sum, Number(to & 0xffffffffn));
        break;
      case 2n:
        n = csumReplace4(sum, Number(from & 0xffffn), Number(to & 0xffffn));
        break;
      case 4n:
        n = csumReplace4(sum, Number(from & 0xffffffffn), Number(to & 0xffffffffn));
        break;
      default:
        return err(EINVAL);
    }
    if (mm && n === 0) n = CSUM_MANGLED_0;
    v.setUint16(o, n, true);
    return 0n;
  });
  h.set(helperId('csum_update'), () => 0n); // CHECKSUM_NONE: nothing to update; returns the csum (0)
  h.set(helperId('csum_level'), () => 0n);
  h.set(helperId('skb_pull_data'), ([ctx, len]) => {
    const s = skb(ctx);
    const n = Number(len & 0xffffffffn);
    if ((n === 0 ? s.len : n) > s.len) return err(ENOMEM);
    s.sync();
    return 0n;
  });
  h.set(helperId('skb_change_tail'), ([ctx, len, flags]) => {
    const s = skb(ctx);
    const n = Number(len & 0xffffffffn);
    const max = s.dev.mtu + ETH_HLEN;
    const min = Math.max(0, s.networkHeader - s.data);
    if (flags !== 0n || n > max || n < min) return err(EINVAL);
    if (n > s.len) {
      s.ensureRoom(0, n - s.len);
      s.space.u8.fill(0, s.data + s.len, s.data + n);
    }
    s.len = n;
    s.sync();
    return 0n;
  });
  h.set(helperId('skb_change_head'), ([ctx, len, flags]) => {
    const s = skb(ctx);
    const n = Number(len & 0xffffffffn);
    if (flags !== 0n || n > 0x7fffffff) return err(EINVAL);
    if (s.len + n > s.dev.mtu + ETH_HLEN) return err(ENOMEM);
    s.ensureRoom(n, 0);
    s.data -= n;
    s.len += n;
    s.space.u8.fill(0, s.data, s.data + n);
    s.macOff = s.data - s.buffer.base;
    s.sync();
    return 0n;
  });
  h.set(helperId('redirect'), ([ifindex, flags]) => {
    if (flags & ~BPF_F_INGRESS) return TC_ACT_SHOT;
    skb().redirect = { ifindex: Number(ifindex & 0xffffffffn), flags: Number(flags) };
    return TC_ACT_REDIRECT;
  });
  h.set(helperId('clone_redirect'), ([ctx, ifindex, flags]) => {
    const s = skb(ctx);
    if (flags & ~BPF_F_INGRESS) return err(EINVAL);
    if (!env.interfaces.some((i) => i.ifindex === Number(ifindex))) return err(EINVAL);
    void s;
    return 0n;
  });
  h.set(helperId('skb_vlan_push'), ([ctx, proto, tci]) => {
    const s = skb(ctx);
    let p = Number(proto & 0xffffn);
    p = ((p & 0xff) << 8) | (p >> 8); // __be16 as the program passed it → host order
    if (p !== ETH_P_8021Q && p !== ETH_P_8021AD) p = ETH_P_8021Q;
    if (s.vlan) {
      // the tag already held moves into the packet, after the MAC addresses
      const old = s.vlan;
      s.ensureRoom(4, 0);
      const u8 = s.space.u8;
      const mac = s.macHeader;
      u8.copyWithin(mac - 4, mac, mac + 12);
      u8[mac + 8] = old.proto >> 8;
      u8[mac + 9] = old.proto & 0xff;
      u8[mac + 10] = old.tci >> 8;
      u8[mac + 11] = old.tci & 0xff;
      s.macOff -= 4;
      if (s.data === mac) {
        s.data -= 4;
      }
      s.len += 4;
      s.protocol = old.proto;
    }
    s.vlan = { proto: p, tci: Number(tci & 0xffffn) };
    s.sync();
    return 0n;
  });
  h.set(helperId('skb_vlan_pop'), ([ctx]) => {
    const s = skb(ctx);
    const popPayload = (): { proto: number; tci: number } | number => {
      // __skb_vlan_pop: the tag after the MAC addresses leaves the packet
      const u8 = s.space.u8;
      const mac = s.macHeader;
      if (s.data + s.len < mac + ETH_HLEN + 4) return -EINVAL;
      const tci = (u8[mac + 14] << 8) | u8[mac + 15];
      const inner = (u8[mac + 16] << 8) | u8[mac + 17];
      const proto = (u8[mac + 12] << 8) | u8[mac + 13];
      u8.copyWithin(mac + 4, mac, mac + 12);
      s.macOff += 4;
      if (s.data <= mac + 12) {
        s.data += 4;
      }
      s.len -= 4;
      s.protocol = inner;
      return { proto, tci };
    };
    if (s.vlan) s.vlan = undefined;
    else {
      if (s.protocol !== ETH_P_8021Q && s.protocol !== ETH_P_8021AD) return 0n;
      const r = popPayload();
      if (typeof r === 'number') return BigInt(r);
    }
    if (s.protocol === ETH_P_8021Q || s.protocol === ETH_P_8021AD) {
      const r = popPayload();
      if (typeof r === 'number') return BigInt(r);
      s.vlan = r;
    }
    s.sync();
    return 0n;
  });
  h.set(helperId('get_hash_recalc'), ([ctx]) => {
    const s = skb(ctx);
    if (!s.swHash && !s.l4Hash) {
      const mac = s.macHeader;
      s.hash = flowHash(s.space.u8.slice(mac, s.data + s.len), env.random32.length);
      s.swHash = true;
      s.sync();
    }
    return BigInt(s.hash >>> 0);
  });
  h.set(helperId('set_hash'), ([ctx, hash]) => {
    const s = skb(ctx);
    s.hash = Number(hash & 0xffffffffn);
    s.swHash = true;
    s.l4Hash = true;
    s.sync();
    return 0n;
  });
  h.set(helperId('set_hash_invalid'), ([ctx]) => {
    const s = skb(ctx);
    s.hash = 0;
    s.swHash = false;
    s.l4Hash = false;
    s.sync();
    return 0n;
  });
  h.set(helperId('get_cgroup_classid'), () => 0n);
  h.set(helperId('get_route_realm'), () => 0n);
  h.set(helperId('get_socket_cookie'), () => 1n);
  h.set(helperId('get_socket_uid'), () => BigInt(env.task.uid));
  h.set(helperId('skb_cgroup_id'), () => 1n);
  return h;
}
