/**
 * pcap and pcapng: round trips, tcpdump as the reference reader (and writer: it converts our pcapng to
 * pcap), files cut at every length, and random corruption (only TsbpfError may escape).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TsbpfError } from '../src/errors.js';
import { type CapturedPacket, readCapture, writePcap, writePcapng } from '../src/vm/pcap.js';
import { packetCorpus, rng } from './support/packets.js';

const packets: CapturedPacket[] = packetCorpus(99, 25).map((data, i) => ({
  timestampNs: 1_700_000_000_123_456_789n + BigInt(i) * 1_234_567n,
  data,
  originalLength: data.length + (i % 3 === 0 ? 10 : 0),
  interfaceId: 0,
}));
const dir = mkdtempSync(join(tmpdir(), 'tsbpf-pcap-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tcpdump = spawnSync('tcpdump', ['--version'], { encoding: 'utf8' }).status === 0;

const usTrunc = (ns: bigint) => ns - (ns % 1000n);

/** The packets tcpdump reads from a file: [seconds.fraction, bytes] per packet. */
function tcpdumpRead(path: string): { ts: string; bytes: string }[] {
  const r = spawnSync('tcpdump', ['-r', path, '-nn', '-xx', '-tt', '--nano'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out: { ts: string; bytes: string }[] = [];
  for (const line of r.stdout.split('\n')) {
    const head = /^(\d+\.\d+) /.exec(line);
    if (head) out.push({ ts: head[1], bytes: '' });
    // the -xx dump starts at offset 0x0000 (tcpdump may print a payload dump of its own before it)
    const hex = /^\s+0x([0-9a-f]+):\s+(.*)$/.exec(line);
    if (hex && out.length) {
      const last = out[out.length - 1];
      if (Number.parseInt(hex[1], 16) === 0) last.bytes = '';
      last.bytes += hex[2].replace(/\s+/g, '');
    }
  }
  return out;
}

const fmtTs = (ns: bigint) => `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('pcap / pcapng', () => {
  it('round-trips pcap (µs and ns) and pcapng', () => {
    const us = readCapture(writePcap(packets));
    assert.equal(us.format, 'pcap');
    assert.deepEqual(
      us.packets,
      packets.map((p) => ({ ...p, timestampNs: usTrunc(p.timestampNs) })),
    );
    const ns = readCapture(writePcap(packets, { nanosecond: true }));
    assert.equal(ns.nanosecond, true);
    assert.deepEqual(ns.packets, packets);
    const ng = readCapture(writePcapng(packets));
    assert.equal(ng.format, 'pcapng');
    assert.deepEqual(ng.packets, packets);
    assert.equal(ng.interfaces[0].linkType, 1);
  });

  it('reads big-endian pcap', () => {
    const le = writePcap(packets.slice(0, 2));
    const be = new Uint8Array(le);
    const v = new DataView(be.buffer);
    const swap32 = (o: number) => v.setUint32(o, new DataView(le.buffer).getUint32(o, true), false);
    const swap16 = (o: number) => v.setUint16(o, new DataView(le.buffer).getUint16(o, true), false);
    swap32(0);
    swap16(4);
    swap16(6);
    for (const o of [8, 12, 16, 20]) swap32(o);
    let p = 24;
    for (const pk of packets.slice(0, 2)) {
      for (const o of [0, 4, 8, 12]) swap32(p + o);
      p += 16 + pk.data.length;
    }
    const c = readCapture(be);
    assert.equal(c.bigEndian, true);
    assert.deepEqual(c.packets, readCapture(le).packets);
  });

  it('agrees with tcpdump', {
    skip: tcpdump ? false : 'tcpdump not installed (scripts/setup-machine.sh)',
  }, () => {
    for (const [name, bytes, exact] of [
      ['a.pcap', writePcap(packets), false],
      ['n.pcap', writePcap(packets, { nanosecond: true }), true],
      ['g.pcapng', writePcapng(packets), true],
    ] as const) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      const seen = tcpdumpRead(path);
      assert.equal(seen.length, packets.length, name);
      seen.forEach((s, i) => {
        assert.equal(s.bytes, hex(packets[i].data), `${name} packet ${i}`);
        assert.equal(
          s.ts,
          fmtTs(exact ? packets[i].timestampNs : usTrunc(packets[i].timestampNs)),
          `${name} time ${i}`,
        );
      });
    }
    // tcpdump as the writer: our pcapng converted to pcap by tcpdump, read back by us
    const out = join(dir, 'conv.pcap');
    const r = spawnSync('tcpdump', ['-r', join(dir, 'g.pcapng'), '-w', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const back = readCapture(new Uint8Array(readFileSync(out)));
    assert.deepEqual(
      back.packets.map((p) => [hex(p.data), p.originalLength]),
      packets.map((p) => [hex(p.data), p.originalLength]),
    );
  });

  it('a cut file is an error naming the offset (or, cut between records, the records before)', () => {
    for (const file of [writePcap(packets.slice(0, 4)), writePcapng(packets.slice(0, 4))]) {
      const full = readCapture(file).packets;
      for (let n = 0; n < file.length; n++) {
        try {
          const c = readCapture(file.subarray(0, n));
          assert.ok(c.packets.length < full.length, `cut at ${n}`);
          assert.deepEqual(c.packets, full.slice(0, c.packets.length));
        } catch (e) {
          assert.ok(e instanceof TsbpfError && e.code === 'io', `cut at ${n}: ${e}`);
          assert.match(e.message, /offset \d+/);
        }
      }
    }
  });

  it('fuzz: corrupt files only ever raise TsbpfError', () => {
    const r = rng(1234);
    const seeds = [
      writePcap(packets.slice(0, 3)),
      writePcapng(packets.slice(0, 3)),
      writePcap(packets.slice(0, 3), { nanosecond: true }),
    ];
    for (let i = 0; i < 3000; i++) {
      const b = new Uint8Array(seeds[i % 3]);
      const flips = 1 + Math.floor(r() * 4);
      for (let k = 0; k < flips; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      const cutAt = r() < 0.3 ? Math.floor(r() * b.length) : b.length;
      try {
        readCapture(b.subarray(0, cutAt));
      } catch (e) {
        assert.ok(e instanceof TsbpfError, `iteration ${i}: ${e}`);
      }
    }
  });
});
