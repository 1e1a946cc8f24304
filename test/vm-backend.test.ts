/**
 * The VM backend end to end: the seed examples (blocklist filter, per-CPU protocol counters, socket
 * filter trimming, a tail-call chain, ring-buffer records read from TypeScript), contexts and helpers,
 * and bad input (short packets, wrong key sizes, unknown programs, helpers a type may not call).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { vmlinuxBtf } from '../src/btf/vmlinux.js';
import { TsbpfError } from '../src/errors.js';
import type { Insn } from '../src/isa/insn.js';
import { type ObjectSpec, readObject } from '../src/object/spec.js';
import { vmBackend } from '../src/vm/backend.js';
import { rawTracepointArgs } from '../src/vm/context.js';
import { ENGINES } from '../src/vm/engine.js';
import { deterministicEnv, TracePipe } from '../src/vm/env.js';
import { bpfFormat } from '../src/vm/helpers/printf.js';
import type { RingbufMap } from '../src/vm/maps/ringbuf.js';
import { loadFixture } from './support/fixtures.js';
import { arpPacket, ipv4Packet, ipv6Packet } from './support/packets.js';

const spec = (name: string): ObjectSpec => readObject(loadFixture(name), { path: `${name}.o` });
for (const engine of ENGINES) {
  const load = (name: string, cpus = 1) =>
    vmBackend({ engine, env: deterministicEnv(), cpus }).load(spec(name));
  const u32 = (n: number) => Uint8Array.of(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24);
  const u64 = (b: Uint8Array, o = 0) =>
    new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(o, true);
  const XDP_ABORTED = 0;
  const XDP_DROP = 1;
  const XDP_PASS = 2;
  const XDP_TX = 3;

  function errno(fn: () => unknown): number | undefined {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof TsbpfError, `not a TsbpfError: ${e}`);
      return e.details.errno;
    }
    assert.fail('no error');
  }

  describe(`seed examples [${engine}]`, () => {
    it('XDP filter drops a blocked IPv4 source and counts it', () => {
      const c = load('xdp_blocklist');
      const blocked = c.map('blocked');
      blocked.update(Uint8Array.of(10, 9, 8, 7), new Uint8Array(8));
      const p = c.program('xdp_blocklist');
      assert.equal(p.testRun({ data: ipv4Packet({ src: [10, 9, 8, 7] }) }).retval, XDP_DROP);
      assert.equal(p.testRun({ data: ipv4Packet({ src: [10, 9, 8, 6] }) }).retval, XDP_PASS);
      assert.equal(p.testRun({ data: arpPacket() }).retval, XDP_PASS);
      assert.equal(p.testRun({ data: ipv4Packet({ src: [10, 9, 8, 7] }), repeat: 4 }).retval, XDP_DROP);
      assert.equal(u64(blocked.lookup(Uint8Array.of(10, 9, 8, 7)) as Uint8Array), 5n);
      c.close();
      // const volatile override at load
      const d = vmBackend({ engine, env: deterministicEnv() }).load(spec('xdp_blocklist'), {
        constants: { drop_non_ip: 1 },
      });
      assert.equal(d.program('xdp_blocklist').testRun({ data: arpPacket() }).retval, XDP_DROP);
      d.close();
    });

    it('XDP per-protocol counters in a per-CPU array', () => {
      const c = load('xdp_proto_stats', 4);
      const p = c.program('xdp_proto_stats');
      c.cpu = 2;
      p.testRun({ data: ipv4Packet({ proto: 6 }), repeat: 3 });
      c.cpu = 1;
      p.testRun({ data: ipv4Packet({ proto: 17 }) });
      p.testRun({ data: ipv6Packet({ next: 58 }) });
      const m = c.map('proto_stats');
      const tcp = m.lookupPerCpu(u32(6)) as Uint8Array[];
      assert.deepEqual(
        tcp.map((v) => u64(v)),
        [0n, 0n, 3n, 0n],
      );
      assert.equal(u64(tcp[2], 8), BigInt(3 * ipv4Packet({ proto: 6 }).length));
      assert.equal(u64((m.lookupPerCpu(u32(17)) as Uint8Array[])[1]), 1n);
      assert.equal(u64((m.lookupPerCpu(u32(58)) as Uint8Array[])[1]), 1n);
      c.close();
    });

    it('socket filter trims packets to their headers', () => {
      const c = load('sock_trim');
      const p = c.program('sock_trim');
      // socket filters run at L3 in a test run: the length is counted from the IP header
      assert.equal(p.testRun({ data: ipv4Packet({ proto: 6, payload: 100 }) }).retval, 40);
      assert.equal(p.testRun({ data: ipv4Packet({ proto: 6, tcpDoff: 8, payload: 100 }) }).retval, 52);
      assert.equal(p.testRun({ data: ipv4Packet({ proto: 17, payload: 100 }) }).retval, 28);
      const arp = p.testRun({ data: arpPacket() });
      assert.equal(arp.retval, arpPacket().length - 14);
      // data_out: the Ethernet header comes back zeroed, as the kernel returns it
      assert.deepEqual(arp.data.subarray(0, 14), new Uint8Array(14));
      assert.deepEqual(arp.data.subarray(14), arpPacket().subarray(14));
      c.close();
    });

    it('tail-call chain, empty slots and the limit of 33 tail calls', () => {
      const c = load('tail_chain');
      const hits = c.map('stage_hits');
      const hit = (k: number) => u64(hits.lookup(u32(k)) as Uint8Array);
      assert.equal(c.program('chain_entry').testRun({ data: ipv4Packet() }).retval, XDP_TX);
      assert.deepEqual([0, 1, 2, 3].map(hit), [1n, 1n, 1n, 1n]);
      const odd = ipv4Packet();
      odd[13] = 1;
      assert.equal(c.program('chain_entry').testRun({ data: odd }).retval, XDP_DROP);
      // a tail call into an empty slot falls through
      const ff = new Uint8Array(20).fill(0xff);
      assert.equal(c.program('chain_entry').testRun({ data: ff }).retval, XDP_PASS);
      assert.equal(c.program('chain_loop').testRun({ data: ipv4Packet() }).retval, XDP_PASS);
      assert.equal(hit(4), 34n); // the program and its 33 tail calls
      // the prog array from TypeScript: emptying slot 3 makes chain_count fall through; refilling restores it
      const stages = c.map('stages');
      assert.equal(stages.delete(u32(3)), true);
      assert.equal(c.program('chain_entry').testRun({ data: ipv4Packet() }).retval, XDP_ABORTED);
      stages.update(u32(3), u32(c.program('chain_verdict').id));
      assert.equal(c.program('chain_entry').testRun({ data: ipv4Packet() }).retval, XDP_TX);
      c.close();
    });

    it('ring-buffer records read by the TypeScript consumer', async () => {
      const c = load('xdp_ringbuf');
      const p = c.program('xdp_ringbuf');
      p.testRun({ data: ipv4Packet({ src: [1, 2, 3, 4], proto: 17, ttl: 9 }) });
      p.testRun({ data: arpPacket() });
      const rb = c.map('pkt_events') as RingbufMap;
      const records = rb.drain();
      assert.equal(records.length, 2);
      const e = new DataView(records[0].buffer, records[0].byteOffset, records[0].byteLength);
      assert.equal(e.getUint32(0, true), ipv4Packet({ proto: 17 }).length);
      assert.deepEqual(records[0].subarray(4, 8), Uint8Array.of(1, 2, 3, 4));
      assert.equal(records[0][12], 17);
      assert.equal(records[0][13], 9);
      assert.equal(e.getUint16(14, true), 0x0800);
      assert.deepEqual(records[1], Uint8Array.of(0x06, 0x08));
      // the async iterator sees records as they are submitted
      p.testRun({ data: ipv4Packet() });
      const it = rb.records();
      const next = await it.next();
      assert.equal(next.done, false);
      c.close();
    });

    it('a tracepoint producer runs with trigger() and sees the environment', () => {
      const env = deterministicEnv({ task: { pid: 77, tgid: 70, comm: 'worker' } });
      const c = vmBackend({ engine, env }).load(spec('ringbuf'));
      const p = c.program('on_exec');
      assert.equal(
        errno(() => p.testRun({ ctx: new Uint8Array(64) })),
        524,
      );
      assert.equal(p.trigger({ ctx: new Uint8Array(64) }).r0, 0n);
      const [rec, marker] = (c.map('events') as RingbufMap).drain();
      const v = new DataView(rec.buffer, rec.byteOffset);
      assert.equal(v.getUint32(0, true), 77);
      assert.equal(v.getUint32(4, true), 70);
      assert.ok(v.getBigUint64(8, true) > 1_000_000_000n);
      assert.equal(new TextDecoder().decode(rec.subarray(16, 22)), 'worker');
      assert.equal(rec[22], 0);
      assert.deepEqual(marker, Uint8Array.of(0x0d, 0xf0, 0xed, 0xfe));
      c.close();
    });
  });

  describe(`contexts and helpers [${engine}]`, () => {
    it('bpf_loop and bpf_for_each_map_elem callbacks, bpf-to-bpf calls', () => {
      const c = load('callbacks');
      assert.equal(c.program('xdp_loop_cb').testRun({ data: ipv4Packet() }).retval, 3);
      assert.equal(c.program('tc_plain').testRun({ data: ipv4Packet() }).retval, 3);
      assert.equal(c.program('xdp_each_cb').testRun({ data: ipv4Packet() }).retval, 3);
      c.close();
    });

    it('global data and const volatile overrides', () => {
      const c = vmBackend({ engine, env: deterministicEnv() }).load(spec('globals'), {
        constants: { threshold: 10 },
      });
      const p = c.program('xdp_globals');
      assert.equal(p.testRun({ data: ipv4Packet({ payload: 0 }) }).retval, XDP_DROP);
      const data = c.map('globals.data').lookup(u32(0)) as Uint8Array;
      assert.equal(u64(data), 2n);
      assert.throws(() => c.map('globals.rodata').update(u32(0), new Uint8Array(12)), TsbpfError);
      c.close();
    });

    it('XDP metadata in ctx_in and ctx_out', () => {
      const c = load('xdp_proto_stats');
      const pkt = ipv4Packet();
      const data = new Uint8Array(8 + pkt.length);
      data.set(pkt, 8);
      const md = new Uint8Array(24);
      new DataView(md.buffer).setUint32(0, 8, true);
      new DataView(md.buffer).setUint32(4, data.length, true);
      const r = c.program('xdp_proto_stats').testRun({ data, ctx: md });
      assert.equal(r.retval, XDP_PASS);
      assert.equal(r.data.length, data.length);
      assert.deepEqual([...(r.ctx as Uint8Array).subarray(0, 8)], [8, 0, 0, 0, data.length, 0, 0, 0]);
      md[12] = 1; // ingress_ifindex lo
      md[16] = 1; // rx queue 1: lo has one
      assert.equal(
        errno(() => c.program('xdp_proto_stats').testRun({ data, ctx: md })),
        22,
      );
      c.close();
    });

    it('raw_tracepoint and syscall test runs follow the kernel rules', () => {
      const c = load('progtypes');
      const raw = c.program('p_raw_tp');
      assert.equal(raw.testRun({ ctx: rawTracepointArgs([1, 2]) }).retval, 0);
      assert.equal(
        errno(() => raw.testRun({ ctx: rawTracepointArgs([1]), repeat: 2 })),
        22,
      );
      assert.equal(
        errno(() => raw.testRun({ data: ipv4Packet() })),
        22,
      );
      const sys = c.program('p_syscall');
      assert.deepEqual(sys.testRun({ ctx: Uint8Array.of(1, 2, 3) }).ctx, Uint8Array.of(1, 2, 3));
      assert.equal(
        errno(() => sys.testRun({ data: ipv4Packet() })),
        22,
      );
      assert.equal(
        errno(() => c.program('p_perf_event').testRun({})),
        524,
      );
      c.close();
    });

    it('trace_printk writes the trace pipe with the kernel format rules', () => {
      const s = spec('progtypes');
      const p = s.programs.find((x) => x.name === 'p_syscall');
      assert.ok(p);
      const fmt = new TextEncoder().encode('n=%d x=%08x s=%s\0');
      const insns: Insn[] = [];
      // the format on the stack, 8 bytes at a time
      const padded = new Uint8Array(Math.ceil(fmt.length / 8) * 8);
      padded.set(fmt);
      const dv = new DataView(padded.buffer);
      for (let i = 0; i < padded.length; i += 4) {
        insns.push({ code: 0x62, dst: 10, src: 0, off: -padded.length + i, imm: dv.getInt32(i, true) });
      }
      insns.push({ code: 0x62, dst: 10, src: 0, off: -padded.length - 8, imm: 0x6b6f }); // "ok\0"
      insns.push({ code: 0xbf, dst: 1, src: 10, off: 0, imm: 0 });
      insns.push({ code: 0x07, dst: 1, src: 0, off: 0, imm: -padded.length });
      insns.push({ code: 0xb7, dst: 2, src: 0, off: 0, imm: fmt.length });
      insns.push({ code: 0xb7, dst: 3, src: 0, off: 0, imm: -5 });
      insns.push({ code: 0xb7, dst: 4, src: 0, off: 0, imm: 0xbeef });
      insns.push({ code: 0xbf, dst: 5, src: 10, off: 0, imm: 0 });
      insns.push({ code: 0x07, dst: 5, src: 0, off: 0, imm: -padded.length - 8 });
      insns.push({ code: 0x85, dst: 0, src: 0, off: 0, imm: 6 });
      insns.push({ code: 0x95, dst: 0, src: 0, off: 0, imm: 0 });
      p.insns = insns.map((x, pc) => ({ ...x, pc }) as never);
      p.references = [];
      const env = deterministicEnv();
      const c = vmBackend({ engine, env }).load(s, { programs: ['p_syscall'] });
      const r = c.program('p_syscall').testRun({});
      assert.equal(r.retval, 'n=-5 x=0000beef s=ok'.length);
      const [line] = env.trace.read();
      assert.equal(line.message, 'n=-5 x=0000beef s=ok');
      assert.match(
        TracePipe.format(line),
        /tsbpf-4242 +\[000\] d\.\.31 +\d+\.\d{6}: bpf_trace_printk: n=-5 x=0000beef s=ok$/,
      );
      c.close();
    });

    it('printf: what the kernel accepts and refuses', () => {
      const mem = {
        readString: () => new TextEncoder().encode('str\0'),
        readBytes: () => Uint8Array.of(10, 0, 0, 1),
      };
      const f = (s: string, ...args: bigint[]) => bpfFormat(new TextEncoder().encode(`${s}\0`), args, mem);
      assert.equal(
        f('%d %u %x %X %ld %llx', -1n, -1n, 255n, 255n, -1n, -1n),
        '-1 4294967295 ff FF -1 ffffffffffffffff',
      );
      assert.equal(f('[%5d|%-5d|%05d]', 42n, 42n, -42n), '[   42|42   |-0042]');
      assert.equal(f('%s %c %pI4 %pi4 %%', 1n, 65n, 1n, 1n), 'str A 10.0.0.1 010.000.000.001 %');
      assert.equal(f('%d %d', 1n), -22);
      assert.equal(f('%.2d', 1n), -22);
      assert.equal(f('%#x', 1n), -22);
      assert.equal(f('%q', 1n), -22);
      assert.equal(f('%sx', 1n), -22);
      assert.equal(bpfFormat(Uint8Array.of(0xc3, 0xa9, 0), [], mem), -22);
    });
  });

  describe(`bad input [${engine}]`, () => {
    it('a packet shorter than Ethernet is EINVAL, as in the kernel', () => {
      const c = load('tc_classifier');
      assert.equal(
        errno(() => c.program('tc_classify').testRun({ data: new Uint8Array(13) })),
        22,
      );
      const x = load('xdp_parser');
      assert.equal(
        errno(() => x.program('xdp_count_proto').testRun({ data: new Uint8Array(10) })),
        22,
      );
      c.close();
      x.close();
    });

    it('a map update with the wrong key size stores nothing', () => {
      const c = load('xdp_blocklist');
      const m = c.map('blocked');
      assert.throws(
        () => m.update(Uint8Array.of(1, 2, 3), new Uint8Array(8)),
        (e: unknown) => e instanceof TsbpfError && e.code === 'usage' && /key/.test(e.message),
      );
      assert.equal([...m.keys()].length, 0);
      c.close();
    });

    it('a program or map that is not there names the ones that are', () => {
      const c = load('tail_chain');
      assert.throws(() => c.program('nope'), /no program 'nope'.*chain_entry/);
      assert.throws(() => c.map('nope'), /no map 'nope'.*stage_hits/);
      assert.throws(
        () => vmBackend({ engine }).load(spec('tail_chain'), { programs: ['nope'] }),
        (e: unknown) => e instanceof TsbpfError && e.code === 'usage',
      );
      c.close();
      assert.throws(() => c.program('chain_entry').testRun({ data: ipv4Packet() }), /closed/);
    });

    it('a helper the program type may not call is refused at load', () => {
      const s = spec('progtypes');
      const p = s.programs.find((x) => x.name === 'p_socket');
      assert.ok(p);
      p.insns = [
        { code: 0x85, dst: 0, src: 0, off: 0, imm: 44, pc: 0 }, // bpf_xdp_adjust_head in a socket filter
        { code: 0x95, dst: 0, src: 0, off: 0, imm: 0, pc: 1 },
      ] as never;
      assert.throws(
        () => vmBackend({ engine }).load(s, { programs: ['p_socket'] }),
        /program of this type cannot use helper bpf_xdp_adjust_head#44/,
      );
    });

    it('a program the verifier rejects does not load: the kernel sentence and the C source line', () => {
      // xdp_parser with the IPv4 header's bounds check made a no-op (`if r3 > r2 goto +0`): the
      // kernel refuses the read of ip->ihl that follows.
      const s = spec('xdp_parser');
      const p = s.programs.find((x) => x.name === 'xdp_count_proto');
      assert.ok(p);
      const check = p.insns[13];
      assert.equal(check.code, 0x2d); // if r3 > r2 goto ...
      p.insns = p.insns.map((insn, i) => (i === 13 ? { ...insn, off: 0 } : insn));
      let err: unknown;
      try {
        vmBackend({ engine }).load(s, { programs: ['xdp_count_proto'] });
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof TsbpfError, `loaded, or not a TsbpfError: ${err}`);
      assert.equal(err.code, 'verify');
      const [first, second] = err.message.split('\n');
      // the kernel's words (Linux 6.18 logs the same two lines and returns the second)
      assert.equal(first, 'xdp_count_proto: R1 offset is outside of the packet');
      assert.match(second, /^; if \(ip->ihl < 5\) return XDP_DROP; @ xdp_parser\.c:\d+$/);
      assert.equal(err.details.pc, 15);
      assert.match(
        err.details.log ?? '',
        /^invalid access to packet, off=14 size=1, R1\(id=0,off=14,r=14\)$/m,
      );
      assert.match(err.details.log ?? '', /^processed \d+ insns \(limit 1000000\)/m);
      // The explicit opt-out (this packet is long enough, so the VM's run-time checks pass).
      for (const c of [
        vmBackend({ engine }).load(s, { programs: ['xdp_count_proto'], unverified: true }),
        vmBackend({ engine, unverified: true }).load(s, { programs: ['xdp_count_proto'] }),
      ]) {
        const prog = c.program('xdp_count_proto');
        assert.equal(prog.verified, false);
        assert.equal(prog.testRun({ data: ipv4Packet() }).retval, XDP_PASS);
        assert.equal(u64(c.map('proto_count').lookup(u32(6)) as Uint8Array), 1n);
        c.close();
      }
    });

    it('accepted programs are marked verified; logLevel keeps the verifier log', () => {
      const c = vmBackend({ engine }).load(spec('xdp_parser'), { logLevel: 1 });
      const p = c.program('xdp_count_proto');
      assert.equal(p.verified, true);
      assert.match(p.verifierLog, /^processed \d+ insns/m);
      c.close();
    });

    it("the verifier gate uses the kernel's BTF: tp_btf attach points, kfuncs, ksyms", {
      skip: vmlinuxBtf() ? false : 'no /sys/kernel/btf/vmlinux',
    }, () => {
      // default (the running kernel's, read when a program needs it) and supplied
      for (const options of [{ engine }, { engine, kernelBtf: vmlinuxBtf() }]) {
        const core = vmBackend(options).load(spec('core_kinds'), { programs: ['core_direct'] });
        assert.equal(core.program('core_direct').verified, true);
        core.close();
        const ext = vmBackend(options).load(spec('externs'));
        assert.equal(ext.program('xdp_externs').verified, true);
        // the VM has no kernel functions: a kfunc call stops the run
        assert.throws(() => ext.program('xdp_externs').testRun({ data: ipv4Packet() }), /kfunc/);
        ext.close();
      }
      // a kernel BTF without the attach point or the kfunc: refused, as the kernel would
      const other = spec('xdp_parser').btf;
      assert.throws(
        () => vmBackend({ engine, kernelBtf: other }).load(spec('core_kinds'), { programs: ['core_direct'] }),
        (e: unknown) => e instanceof TsbpfError && e.code === 'verify',
      );
      assert.throws(
        () => vmBackend({ engine, kernelBtf: other }).load(spec('externs')),
        /kernel function 'bpf_cast_to_kern_ctx' does not exist/,
      );
    });

    it('data_out larger than dataOutSize is ENOSPC', () => {
      const c = load('xdp_proto_stats');
      const b = ipv4Packet();
      b[14] = 2; // xdp_adjust: grow the tail by 100
      b[15] = 100;
      assert.equal(
        errno(() => c.program('xdp_adjust').testRun({ data: b, dataOutSize: b.length })),
        28,
      );
      assert.equal(c.program('xdp_adjust').testRun({ data: b }).data.length, b.length + 100);
      c.close();
    });
  });
}
