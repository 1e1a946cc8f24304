/**
 * Test packets: Ethernet frames with IPv4/IPv6 and TCP/UDP/ICMP headers (valid checksums), VLAN
 * tags, ARP, and a seeded generator of varied frames for differential tests.
 */

export interface PacketOptions {
  src?: readonly number[];
  dst?: readonly number[];
  proto?: number;
  ttl?: number;
  sport?: number;
  dport?: number;
  payload?: number;
  dstMac?: readonly number[];
  srcMac?: readonly number[];
  vlan?: number;
  /** TCP data offset in 32-bit words (default 5). */
  tcpDoff?: number;
  /** Fill byte of the payload (default: i & 0xff). */
  fill?: number;
}

function ipChecksum(b: Uint8Array, start: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[start + i] << 8) | (b[start + i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An Ethernet + IPv4 frame (proto 6 TCP, 17 UDP, 1 ICMP, or anything else with a raw payload). */
export function ipv4Packet(o: PacketOptions = {}): Uint8Array {
  const proto = o.proto ?? 6;
  const l4 = proto === 6 ? (o.tcpDoff ?? 5) * 4 : proto === 17 ? 8 : proto === 1 ? 8 : 0;
  const payload = o.payload ?? 16;
  const vlan = o.vlan === undefined ? 0 : 4;
  const b = new Uint8Array(14 + vlan + 20 + l4 + payload);
  b.set(o.dstMac ?? [0x02, 0, 0, 0, 0, 2], 0);
  b.set(o.srcMac ?? [0x02, 0, 0, 0, 0, 1], 6);
  let p = 12;
  if (o.vlan !== undefined) {
    b.set([0x81, 0x00, (o.vlan >> 8) & 0x0f, o.vlan & 0xff], 12);
    p = 16;
  }
  b.set([0x08, 0x00], p);
  const ip = p + 2;
  const tot = 20 + l4 + payload;
  b.set([0x45, 0, tot >> 8, tot & 0xff, 0x12, 0x34, 0x40, 0, o.ttl ?? 64, proto, 0, 0], ip);
  b.set(o.src ?? [192, 168, 1, 10], ip + 12);
  b.set(o.dst ?? [10, 0, 0, 2], ip + 16);
  const c = ipChecksum(b, ip, 20);
  b[ip + 10] = c >> 8;
  b[ip + 11] = c & 0xff;
  const t = ip + 20;
  if (proto === 6 || proto === 17) {
    const sp = o.sport ?? 40000;
    const dp = o.dport ?? 80;
    b.set([sp >> 8, sp & 0xff, dp >> 8, dp & 0xff], t);
    if (proto === 6) {
      b.set([0, 0, 0, 1, 0, 0, 0, 0, ((o.tcpDoff ?? 5) << 4) & 0xf0, 0x18, 0xff, 0xff], t + 4);
    } else {
      const ul = 8 + payload;
      b.set([ul >> 8, ul & 0xff], t + 4);
    }
  } else if (proto === 1) {
    b.set([8, 0, 0, 0, 0, 1, 0, 1], t);
  }
  for (let i = t + l4; i < b.length; i++) b[i] = o.fill ?? i & 0xff;
  // transport checksum over the pseudo header
  if (proto === 6 || proto === 17 || proto === 1) {
    const len = l4 + payload;
    const pseudo = new Uint8Array(12 + len + (len & 1));
    if (proto !== 1) {
      pseudo.set(b.subarray(ip + 12, ip + 20), 0);
      pseudo.set([0, proto, len >> 8, len & 0xff], 8);
    }
    pseudo.set(b.subarray(t, t + len), 12);
    const off = proto === 6 ? 16 : proto === 17 ? 6 : 2;
    const c2 = ipChecksum(pseudo, proto === 1 ? 12 : 0, proto === 1 ? len + (len & 1) : pseudo.length);
    b[t + off] = c2 >> 8;
    b[t + off + 1] = c2 & 0xff;
  }
  return b;
}

/** An Ethernet + IPv6 frame with a next header and a raw payload. */
export function ipv6Packet(o: { next?: number; payload?: number; hop?: number } = {}): Uint8Array {
  const payload = o.payload ?? 24;
  const b = new Uint8Array(14 + 40 + payload);
  b.set([0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd], 0);
  b.set([0x60, 0, 0, 0, payload >> 8, payload & 0xff, o.next ?? 17, o.hop ?? 64], 14);
  b.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 22);
  b.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 38);
  for (let i = 54; i < b.length; i++) b[i] = i & 0xff;
  return b;
}

/** A broadcast ARP request. */
export function arpPacket(): Uint8Array {
  const b = new Uint8Array(42);
  b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06], 0);
  b.set([0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2], 14);
  return b;
}

/** mulberry32. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A varied set of frames: every protocol, sizes from 14 bytes up, random sources and payloads. */
export function packetCorpus(seed: number, count: number): Uint8Array[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const out: Uint8Array[] = [
    ipv4Packet(),
    ipv4Packet({ proto: 17 }),
    ipv4Packet({ proto: 1, ttl: 1 }),
    ipv6Packet(),
    arpPacket(),
  ];
  out.push(new Uint8Array(14), Uint8Array.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, 0x45, 0]));
  while (out.length < count) {
    const kind = pick(['v4', 'v4', 'v4', 'v6', 'arp', 'vlan', 'raw']);
    if (kind === 'v4' || kind === 'vlan')
      out.push(
        ipv4Packet({
          proto: pick([6, 17, 1, 47]),
          ttl: pick([1, 2, 64, 255]),
          src: [pick([10, 192, 172]), Math.floor(r() * 4), 0, Math.floor(r() * 4)],
          sport: Math.floor(r() * 65536),
          dport: pick([22, 53, 80, 443, 8080]),
          payload: Math.floor(r() * 200),
          ...(kind === 'vlan' ? { vlan: Math.floor(r() * 4096) } : {}),
          dstMac: pick([
            [0, 0, 0, 0, 0, 0],
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            [0x01, 0, 0x5e, 0, 0, 1],
            [0x02, 0, 0, 0, 0, 2],
          ]),
        }),
      );
    else if (kind === 'v6') out.push(ipv6Packet({ next: pick([6, 17, 58]), payload: Math.floor(r() * 100) }));
    else if (kind === 'arp') out.push(arpPacket());
    else {
      const b = new Uint8Array(14 + Math.floor(r() * 80));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
      out.push(b);
    }
  }
  return out;
}
