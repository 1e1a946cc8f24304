/**
 * Packet capture files: read and write libpcap's format (microsecond and nanosecond, either byte
 * order) and pcapng (Section Header, Interface Description, Enhanced/Simple/obsolete Packet blocks;
 * other blocks skipped), as tcpdump and Wireshark write them. A file that is cut short or malformed
 * is a TsbpfError('io') naming the byte offset where it goes wrong.
 */
import { TsbpfError } from '../errors.js';

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;

export interface CapturedPacket {
  /** Capture time, nanoseconds since the epoch. */
  timestampNs: bigint;
  /** The bytes captured (may be shorter than the packet was on the wire). */
  data: Uint8Array;
  /** Length on the wire. */
  originalLength: number;
  /** pcapng: index of the interface (its link type is in `interfaces`); 0 for pcap. */
  interfaceId: number;
}

export interface CaptureInterface {
  linkType: number;
  snapLen: number;
  name?: string;
  /** Units per second of this interface's timestamps (1e6 by default, 1e9 for nanosecond pcap). */
  tsResolution: bigint;
}

export interface Capture {
  format: 'pcap' | 'pcapng';
  /** pcap: the file's byte order; pcapng: the first section's. */
  bigEndian: boolean;
  /** pcap: nanosecond timestamps (magic a1b23c4d). */
  nanosecond: boolean;
  interfaces: CaptureInterface[];
  packets: CapturedPacket[];
}

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;
const PCAPNG_IDB = 1;
const PCAPNG_OPB = 2;
const PCAPNG_SPB = 3;
const PCAPNG_EPB = 6;
/** Largest packet accepted (a corrupt length should not allocate gigabytes). */
const MAX_PACKET = 256 * 1024 * 1024;

function cut(what: string, offset: number, need: number, have: number): TsbpfError {
  return new TsbpfError(
    'io',
    `${what} at offset ${offset} is cut: needs ${need} bytes, the file has ${Math.max(0, have - offset)} left`,
  );
}

/** Reads a pcap or pcapng file (detected by its magic number). */
export function readCapture(bytes: Uint8Array): Capture {
  if (bytes.length < 4) throw cut('capture file header', 0, 4, bytes.length);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) === PCAPNG_SHB) return readPcapng(bytes, v);
  const le = v.getUint32(0, true);
  const be = v.getUint32(0, false);
  if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS || be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS)
    return readPcap(bytes, v);
  throw new TsbpfError(
    'io',
    `not a pcap or pcapng file: magic number 0x${be.toString(16).padStart(8, '0')} at offset 0`,
  );
}

function readPcap(bytes: Uint8Array, v: DataView): Capture {
  const magicLe = v.getUint32(0, true);
  const little = magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS;
  const nano = (little ? magicLe : v.getUint32(0, false)) === PCAP_MAGIC_NS;
  if (bytes.length < 24) throw cut('pcap file header', 0, 24, bytes.length);
  const snapLen = v.getUint32(16, little);
  const linkType = v.getUint32(20, little) & 0x0fffffff;
  const packets: CapturedPacket[] = [];
  const unit = nano ? 1n : 1000n;
  let p = 24;
  while (p < bytes.length) {
    if (p + 16 > bytes.length) throw cut(`pcap record header #${packets.length + 1}`, p, 16, bytes.length);
    const sec = v.getUint32(p, little);
    const frac = v.getUint32(p + 4, little);
    const incl = v.getUint32(p + 8, little);
    const orig = v.getUint32(p + 12, little);
    if (incl > MAX_PACKET)
      throw new TsbpfError(
        'io',
        `pcap record #${packets.length + 1} at offset ${p} claims ${incl} bytes (corrupt length)`,
      );
    if (p + 16 + incl > bytes.length)
      throw cut(`pcap record #${packets.length + 1}`, p, 16 + incl, bytes.length);
    packets.push({
      timestampNs: BigInt(sec) * 1_000_000_000n + BigInt(frac) * unit,
      data: bytes.slice(p + 16, p + 16 + incl),
      originalLength: orig,
      interfaceId: 0,
    });
    p += 16 + incl;
  }
  return {
    format: 'pcap',
    bigEndian: !little,
    nanosecond: nano,
    interfaces: [{ linkType, snapLen, tsResolution: nano ? 1_000_000_000n : 1_000_000n }],
    packets,
  };
}

function readPcapng(bytes: Uint8Array, v: DataView): Capture {
  const packets: CapturedPacket[] = [];
  let interfaces: CaptureInterface[] = [];
  const all: CaptureInterface[] = [];
  let little = true;
  let firstBigEndian: boolean | undefined;
  let base = 0; // index in `all` of this section's first interface
  let p = 0;
  while (p < bytes.length) {
    if (p + 12 > bytes.length) throw cut('pcapng block header', p, 12, bytes.length);
    const type = v.getUint32(p, true);
    if (type === PCAPNG_SHB) {
      if (p + 12 > bytes.length) throw cut('pcapng section header', p, 12, bytes.length);
      const bom = v.getUint32(p + 8, true);
      if (bom === PCAPNG_BOM) little = true;
      else if (v.getUint32(p + 8, false) === PCAPNG_BOM) little = false;
      else throw new TsbpfError('io', `pcapng section header at offset ${p}: bad byte-order magic`);
      firstBigEndian ??= !little;
      base = all.length;
      interfaces = [];
    }
    const len = v.getUint32(p + 4, little);
    const btype = v.getUint32(p, little);
    if (len < 12 || len % 4 !== 0)
      throw new TsbpfError('io', `pcapng block at offset ${p}: invalid length ${len}`);
    if (p + len > bytes.length) throw cut(`pcapng block of type ${btype}`, p, len, bytes.length);
    if (v.getUint32(p + len - 4, little) !== len)
      throw new TsbpfError('io', `pcapng block at offset ${p}: trailing length does not match ${len}`);
    const body = p + 8;
    const end = p + len - 4;
    const need = (n: number) => {
      if (body + n > end)
        throw new TsbpfError(
          'io',
          `pcapng block of type ${btype} at offset ${p} is too short for its fields`,
        );
    };
    if (btype === PCAPNG_IDB) {
      need(8);
      const iface: CaptureInterface = {
        linkType: v.getUint16(body, little),
        snapLen: v.getUint32(body + 4, little),
        tsResolution: 1_000_000n,
      };
      // options
      let o = body + 8;
      while (o + 4 <= end) {
        const code = v.getUint16(o, little);
        const olen = v.getUint16(o + 2, little);
        if (code === 0) break;
        if (o + 4 + olen > end)
          throw new TsbpfError('io', `pcapng interface option at offset ${o} runs past its block`);
        if (code === 2)
          iface.name = new TextDecoder().decode(bytes.subarray(o + 4, o + 4 + olen)).replace(/\0+$/, '');
        if (code === 9 && olen >= 1) {
          const r = bytes[o + 4];
          iface.tsResolution = r & 0x80 ? 1n << BigInt(r & 0x7f) : 10n ** BigInt(r & 0x7f);
        }
        o += 4 + ((olen + 3) & ~3);
      }
      interfaces.push(iface);
      all.push(iface);
    } else if (btype === PCAPNG_EPB || btype === PCAPNG_OPB) {
      need(20);
      const ifid = btype === PCAPNG_EPB ? v.getUint32(body, little) : v.getUint16(body, little);
      const iface = interfaces[ifid];
      if (!iface)
        throw new TsbpfError(
          'io',
          `pcapng packet block at offset ${p} names interface ${ifid}, which is not defined`,
        );
      const ts = (BigInt(v.getUint32(body + 4, little)) << 32n) | BigInt(v.getUint32(body + 8, little));
      const capLen = v.getUint32(body + 12, little);
      const orig = v.getUint32(body + 16, little);
      if (body + 20 + capLen > end)
        throw new TsbpfError(
          'io',
          `pcapng packet block at offset ${p}: captured length ${capLen} runs past the block`,
        );
      packets.push({
        timestampNs: (ts * 1_000_000_000n) / iface.tsResolution,
        data: bytes.slice(body + 20, body + 20 + capLen),
        originalLength: orig,
        interfaceId: base + ifid,
      });
    } else if (btype === PCAPNG_SPB) {
      need(4);
      const iface = interfaces[0];
      if (!iface)
        throw new TsbpfError('io', `pcapng simple packet block at offset ${p} before any interface`);
      const orig = v.getUint32(body, little);
      const capLen = Math.min(orig, iface.snapLen || orig, end - body - 4);
      packets.push({
        timestampNs: 0n,
        data: bytes.slice(body + 4, body + 4 + capLen),
        originalLength: orig,
        interfaceId: base,
      });
    }
    p += len;
  }
  return {
    format: 'pcapng',
    bigEndian: firstBigEndian ?? false,
    nanosecond: false,
    interfaces: all,
    packets,
  };
}

export interface WriteOptions {
  linkType?: number;
  snapLen?: number;
  /** pcap: nanosecond timestamps (magic a1b23c4d). Default false (microseconds). */
  nanosecond?: boolean;
}

/** A pcap file (little-endian). */
export function writePcap(
  packets: readonly CapturedPacket[] | readonly Uint8Array[],
  options: WriteOptions = {},
): Uint8Array {
  const list = normalise(packets);
  const nano = options.nanosecond ?? false;
  const size = 24 + list.reduce((n, p) => n + 16 + p.data.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, nano ? PCAP_MAGIC_NS : PCAP_MAGIC_US, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, options.snapLen ?? 262144, true);
  v.setUint32(20, options.linkType ?? LINKTYPE_ETHERNET, true);
  let p = 24;
  for (const pk of list) {
    const sec = pk.timestampNs / 1_000_000_000n;
    const frac = (pk.timestampNs % 1_000_000_000n) / (nano ? 1n : 1000n);
    v.setUint32(p, Number(sec & 0xffffffffn), true);
    v.setUint32(p + 4, Number(frac), true);
    v.setUint32(p + 8, pk.data.length, true);
    v.setUint32(p + 12, pk.originalLength, true);
    out.set(pk.data, p + 16);
    p += 16 + pk.data.length;
  }
  return out;
}

/** A pcapng file: one section, one interface (nanosecond timestamps), an Enhanced Packet Block per packet. */
export function writePcapng(
  packets: readonly CapturedPacket[] | readonly Uint8Array[],
  options: WriteOptions = {},
): Uint8Array {
  const list = normalise(packets);
  const blocks: Uint8Array[] = [];
  const block = (type: number, body: Uint8Array) => {
    const len = 12 + ((body.length + 3) & ~3);
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    v.setUint32(0, type, true);
    v.setUint32(4, len, true);
    b.set(body, 8);
    v.setUint32(len - 4, len, true);
    blocks.push(b);
  };
  const shb = new Uint8Array(16);
  const sv = new DataView(shb.buffer);
  sv.setUint32(0, PCAPNG_BOM, true);
  sv.setUint16(4, 1, true);
  sv.setBigInt64(8, -1n, true);
  block(PCAPNG_SHB, shb);
  const idb = new Uint8Array(8 + 8 + 4);
  const iv = new DataView(idb.buffer);
  iv.setUint16(0, options.linkType ?? LINKTYPE_ETHERNET, true);
  iv.setUint32(4, options.snapLen ?? 262144, true);
  iv.setUint16(8, 9, true); // if_tsresol
  iv.setUint16(10, 1, true);
  idb[12] = 9; // 10^-9
  block(PCAPNG_IDB, idb);
  for (const pk of list) {
    const body = new Uint8Array(20 + pk.data.length);
    const v = new DataView(body.buffer);
    v.setUint32(0, 0, true);
    v.setUint32(4, Number(pk.timestampNs >> 32n), true);
    v.setUint32(8, Number(pk.timestampNs & 0xffffffffn), true);
    v.setUint32(12, pk.data.length, true);
    v.setUint32(16, pk.originalLength, true);
    body.set(pk.data, 20);
    block(PCAPNG_EPB, body);
  }
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let p = 0;
  for (const b of blocks) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

function normalise(packets: readonly CapturedPacket[] | readonly Uint8Array[]): CapturedPacket[] {
  return packets.map((p, i) =>
    p instanceof Uint8Array
      ? { timestampNs: BigInt(i) * 1000n, data: p, originalLength: p.length, interfaceId: 0 }
      : p,
  );
}
