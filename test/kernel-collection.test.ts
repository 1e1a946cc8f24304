/**
 * The kernel backend's Collection: every loadable fixture loads as a whole (BTF, maps, programs, global
 * data, kconfig/ksym/kfunc externs, CO-RE, tail calls, map-in-map), testRun agrees with
 * `bpftool prog run`, maps work through the BpfMap interface, pinning by name is reused, and nothing is
 * left behind (fds, pins).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { TsbpfError } from '../src/errors.js';
import { kernelBackend } from '../src/kernel/collection.js';
import { openBpfFds } from '../src/kernel/fds.js';
import { progInfoByFd, progInstructions } from '../src/kernel/info.js';
import { openAttachments } from '../src/kernel/link.js';
import { bpfAvailable } from '../src/kernel/program.js';
import { type ObjectSpec, readObject } from '../src/object/spec.js';

const avail = bpfAvailable();
const FIX = new URL('../../fixtures/obj/', import.meta.url).pathname;
const hasBpftool = spawnSync('bpftool', ['version']).status === 0;
const PIN_DIR = '/sys/fs/bpf';
const tag = `tsbpf_kc_${process.pid}`;

function spec(name: string): ObjectSpec {
  return readObject(new Uint8Array(readFileSync(`${FIX}${name}.o`)), { path: `${name}.o` });
}

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);

function bpfPins(): string[] {
  return readdirSync(PIN_DIR).filter((n) => n.startsWith(tag));
}

describe('kernel collection', { skip: avail.ok ? false : avail.reason }, () => {
  let fds: Record<string, number[] | undefined>;
  let tmp: string;
  before(() => {
    fds = {
      prog: openBpfFds('prog'),
      map: openBpfFds('map'),
      link: openBpfFds('link'),
      btf: openBpfFds('btf'),
    };
    tmp = mkdtempSync(`${tmpdir()}/tsbpf-kc-`);
  });
  after(() => {
    rmSync(tmp, { recursive: true, force: true });
    for (const k of ['prog', 'map', 'link', 'btf'] as const)
      assert.deepEqual(openBpfFds(k), fds[k], `no ${k} fd left`);
    assert.deepEqual(bpfPins(), [], 'no pin left in /sys/fs/bpf');
    assert.equal(openAttachments(), 0, 'nothing left registered for cleanup');
  });

  const fixtures = readdirSync(FIX)
    .filter((f) => f.endsWith('.o') && !f.includes('bpfeb'))
    .map((f) => f.slice(0, -2));

  for (const name of fixtures) {
    it(`loads ${name}.o as a Collection`, () => {
      const s = spec(name);
      // sections.o spells every SEC() kind: this kernel has no BPF LSM and no BPF trampolines (fentry/fexit),
      // and libbpf knows no type for one section; everything else loads.
      const notHere = (p: ObjectSpec['programs'][number]) =>
        p.type === undefined ||
        p.type === 'lsm' ||
        p.attachType === 'trace_fentry' ||
        p.attachType === 'trace_fexit';
      const programs =
        name === 'sections'
          ? s.programs.filter((p) => p.autoload && !notHere(p)).map((p) => p.name)
          : undefined;
      const c = kernelBackend.load(s, programs ? { programs } : {});
      try {
        const expected = programs ?? s.programs.filter((p) => p.autoload).map((p) => p.name);
        assert.deepEqual([...c.programs.keys()].sort(), [...expected].sort());
        assert.deepEqual(
          [...c.maps.keys()],
          s.maps.map((m) => m.name),
        );
        for (const p of c.programs.values()) {
          const info = progInfoByFd(p.fd);
          assert.equal(info.type, p.spec.typeId, `${p.name} has its type`);
          assert.ok(info.xlatedProgLen > 0);
          if (s.btf) assert.ok(info.btfId > 0, `${p.name} was loaded with BTF`);
          if (s.btfExt && s.btf) assert.ok(info.nrLineInfo > 0, `${p.name} has line info`);
        }
        for (const m of s.maps) {
          const km = c.map(m.name);
          assert.equal(km.type, m.typeId);
          assert.equal(km.keySize, m.keySize);
          assert.equal(km.valueSize, m.valueSize);
        }
      } finally {
        c.close();
      }
      c.close(); // idempotent
    });
  }

  it('refuses a big-endian object like libbpf', () => {
    assert.throws(() => kernelBackend.load(spec('xdp_parser.bpfeb')), /endian/);
  });

  it('refuses an LSM program with a reason when BPF LSM is off', () => {
    const s = spec('sections');
    const lsm = s.programs.find((p) => p.type === 'lsm');
    if (!lsm) return;
    assert.throws(
      () => kernelBackend.load(s, { programs: [lsm.name] }),
      (e: unknown) => {
        assert.ok(e instanceof TsbpfError);
        assert.match(e.message, new RegExp(`prog '${lsm.name}'`));
        return true;
      },
    );
  });

  it('fills global data, applies constants and freezes .rodata', () => {
    const s = spec('globals');
    const ro = s.variables.find((v) => v.readonly && v.size === 4);
    const c = kernelBackend.load(s, ro ? { constants: { [ro.name]: 1234 } } : {});
    try {
      for (const m of s.maps.filter((x) => x.data)) {
        const km = c.map(m.name);
        const v = km.lookup(u32(0));
        assert.ok(v);
        if (ro && m.name === ro.map) {
          assert.equal(new DataView(v.buffer, v.byteOffset).getUint32(ro.offset, true), 1234);
          assert.ok(km.frozen, '.rodata is frozen');
        } else assert.deepEqual(v, m.data, `${m.name} holds the section's bytes`);
      }
      // the caller's spec is not changed
      if (ro)
        assert.notEqual(
          new DataView(s.maps.find((m) => m.name === ro.map)?.data?.buffer as ArrayBuffer).getUint32(
            ro.offset,
            true,
          ),
          1234,
        );
    } finally {
      c.close();
    }
  });

  it('resolves kconfig, ksym and kfunc externs; the program runs', () => {
    const c = kernelBackend.load(spec('externs'));
    try {
      const p = [...c.programs.values()][0];
      const r = p.testRun({ data: new Uint8Array(100) });
      assert.equal(r.retval, 2, 'XDP_PASS: enabled, long enough');
      const short = p.testRun({ data: new Uint8Array(20) });
      assert.equal(short.retval, 1, 'XDP_DROP below min_len');
      const kconfig = [...c.maps.values()].find((m) => m.name.endsWith('.kconfig'));
      assert.ok(kconfig?.frozen);
    } finally {
      c.close();
    }
  });

  it('fills prog arrays: tail calls work', () => {
    const c = kernelBackend.load(spec('tail_call'));
    try {
      const d = c.program('xdp_dispatch');
      const ctx = new Uint8Array(24);
      assert.equal(d.testRun({ data: new Uint8Array(64), ctx }).retval, 2, 'slot 0 → handle_ipv4 → XDP_PASS');
      assert.deepEqual(c.map('jump_table').lookup(u32(2)), undefined);
    } finally {
      c.close();
    }
  });

  it('fills map-in-map slots', () => {
    const s = spec('maps_all');
    const c = kernelBackend.load(s);
    try {
      for (const m of s.maps.filter((x) => x.initialSlots && x.typeId !== 3)) {
        const outer = c.map(m.name);
        m.initialSlots?.forEach((slot, i) => {
          if (!slot) return;
          const id = outer.lookup(u32(i));
          assert.ok(id, `${m.name}[${i}] is set`);
          assert.equal(new DataView(id.buffer, id.byteOffset).getUint32(0, true), c.map(slot.name).id);
        });
      }
    } finally {
      c.close();
    }
  });

  it('keeps the verifier log on request and reports xlated code', () => {
    const c = kernelBackend.load(spec('loop'), { logLevel: 2 });
    try {
      const p = [...c.programs.values()][0];
      assert.match(p.log, /processed \d+ insns/);
      assert.equal(progInstructions(p.fd, 'xlated').length, progInfoByFd(p.fd).xlatedProgLen);
    } finally {
      c.close();
    }
  });

  it('attaches a verifier log to a failed load', () => {
    const s = spec('xdp_parser');
    const p = s.programs[0];
    // break it: drop the bounds check by making the first instruction read past the context
    const bad: ObjectSpec = {
      ...s,
      programs: [
        {
          ...p,
          insns: [
            { code: 0x61, dst: 0, src: 1, off: 200, imm: 0, pc: 0 },
            { code: 0x95, dst: 0, src: 0, off: 0, imm: 0, pc: 1 },
          ],
          funcInfo: [],
          lineInfo: [],
          functions: [{ ...p.functions[0], slotCount: 2 }],
          slotCount: 2,
          references: [],
        },
      ],
    };
    assert.throws(
      () => kernelBackend.load(bad),
      (e: unknown) =>
        e instanceof TsbpfError &&
        e.code === 'kernel' &&
        /invalid bpf_context access/.test(e.details.log ?? ''),
    );
  });

  it('pins maps by name and reuses the pinned map', () => {
    const s = spec('xdp_parser');
    const m = s.maps[0];
    const pinned: ObjectSpec = { ...s, maps: [{ ...m, name: `${tag}_pc`, pinning: 'by_name' }] };
    const a = kernelBackend.load(pinned);
    try {
      assert.ok(existsSync(`${PIN_DIR}/${tag}_pc`));
      a.map(`${tag}_pc`).update(u32(17), new Uint8Array(8).fill(1));
      const b = kernelBackend.load(pinned);
      try {
        assert.equal(b.map(`${tag}_pc`).id, a.map(`${tag}_pc`).id, 'same map');
        assert.ok(b.map(`${tag}_pc`).lookup(u32(17)));
      } finally {
        b.close();
      }
    } finally {
      a.close();
      unlinkSync(`${PIN_DIR}/${tag}_pc`);
    }
  });

  it('maps: iteration and batch operations through BpfMap', () => {
    const c = kernelBackend.load(spec('xdp_parser'));
    try {
      const m = c.map('proto_count');
      for (let i = 0; i < 10; i++)
        m.update(u32(i), new Uint8Array(new BigUint64Array([BigInt(i * 10)]).buffer));
      assert.equal([...m.keys()].length, 10);
      const page = m.lookupBatch(100);
      assert.equal(page.keys.length, 10);
      assert.equal(u64(m.lookup(u32(7)) as Uint8Array), 70n);
      assert.equal(m.deleteBatch([u32(1), u32(2)]), 2);
      assert.equal([...m.entries()].length, 8);
    } finally {
      c.close();
    }
  });

  it('testRun equals bpftool prog run', { skip: hasBpftool ? false : 'bpftool is not installed' }, () => {
    const packets = [
      // Ethernet + IPv4 + UDP
      Uint8Array.from([
        ...new Array(12).fill(0xaa),
        0x08,
        0x00,
        0x45,
        0,
        0,
        28,
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        0,
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
        0,
        53,
        0,
        53,
        0,
        8,
        0,
        0,
      ]),
      // ICMP with TTL 1 (dropped by xdp_parser)
      Uint8Array.from([
        ...new Array(12).fill(0xaa),
        0x08,
        0x00,
        0x45,
        0,
        0,
        28,
        0,
        0,
        0,
        0,
        1,
        1,
        0,
        0,
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
        8,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
      ]),
      new Uint8Array(80).map((_, i) => i * 7),
    ];
    for (const [obj, prog] of [
      ['xdp_parser', 'xdp_count_proto'],
      ['tc_classifier', 'tc_classify'],
      ['socket_filter', 'http_filter'],
      ['subprog', undefined],
      ['loop', undefined],
    ] as const) {
      const c = kernelBackend.load(spec(obj));
      try {
        const p = prog ? c.program(prog) : [...c.programs.values()][0];
        const pin = `${PIN_DIR}/${tag}_run`;
        p.pin(pin);
        try {
          for (const [i, pkt] of packets.entries()) {
            const ours = p.testRun({ data: pkt });
            const din = `${tmp}/in${i}`;
            const dout = `${tmp}/out${i}`;
            writeFileSync(din, pkt);
            const r = spawnSync('bpftool', ['prog', 'run', 'pinned', pin, 'data_in', din, 'data_out', dout], {
              encoding: 'utf8',
            });
            assert.equal(r.status, 0, r.stderr);
            const m = /Return value: (\d+)/.exec(r.stdout);
            assert.ok(m, r.stdout);
            assert.equal(ours.retval, Number(m[1]), `${obj}: retval of packet ${i}`);
            assert.deepEqual(
              ours.data,
              new Uint8Array(readFileSync(dout)),
              `${obj}: data_out of packet ${i}`,
            );
          }
        } finally {
          unlinkSync(pin);
        }
      } finally {
        c.close();
      }
    }
  });
});
