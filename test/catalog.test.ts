/**
 * Cross-checks src/catalog against THIS kernel, live:
 * - ids and names of helpers, program/map/attach/link types vs the kernel BTF's enums,
 * - argument/return kind encodings vs `enum bpf_arg_type` / `bpf_return_type`,
 * - context struct layouts vs the kernel BTF's structs,
 * - helper availability, GPL-only, context access, return ranges and BPF_PROG_TEST_RUN support
 *   vs the verifier (small probe programs loaded with bpf(BPF_PROG_LOAD); needs root),
 * - SEC() matching against libbpf's documented section names.
 * The BTF is dumped once with `bpftool btf dump ... format raw` (~0.5 s); skipped with a reason when
 * bpftool or /sys/kernel/btf/vmlinux is missing, the probes when bpf() is not permitted.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  ARG_ALIASES,
  ARG_KINDS,
  ATTACH_TYPES,
  argTypeValue,
  CTX_STRUCTS,
  HELPERS,
  helperByName,
  LINK_TYPES,
  MAP_FLAGS,
  MAP_TYPES,
  matchSection,
  PROGRAM_TYPES,
  programTypeByName,
  RET_ALIASES,
  RET_KINDS,
  retTypeValue,
  SECTION_DEFS,
  TYPE_FLAGS,
} from '../src/catalog/index.js';
import { isTsbpfError } from '../src/errors.js';
import { decode } from '../src/isa/insn.js';
import { bpfAvailable, closeFd, loadProgram, testRun } from '../src/kernel/program.js';

// ---------------------------------------------------------------------------------------------
// Kernel BTF, parsed from bpftool's raw dump.

interface BtfType {
  kind: string;
  name: string;
  size?: number;
  typeId?: number;
  nrElems?: number;
  members: { name: string; typeId: number; bitsOffset: number }[];
  values: { name: string; val: number }[];
}

function loadBtf(): Map<number, BtfType> | string {
  const path = '/sys/kernel/btf/vmlinux';
  if (!existsSync(path)) return `${path} missing`;
  let text: string;
  try {
    text = execFileSync('bpftool', ['btf', 'dump', 'file', path, 'format', 'raw'], {
      encoding: 'utf8',
      maxBuffer: 256 << 20,
    });
  } catch (e) {
    return `bpftool unavailable: ${(e as Error).message.split('\n')[0]}`;
  }
  const types = new Map<number, BtfType>();
  let cur: BtfType | undefined;
  for (const line of text.split('\n')) {
    const head = /^\[(\d+)\] (\w+) '([^']*)'(.*)$/.exec(line);
    if (head) {
      const attrs = head[4] as string;
      const num = (k: string) => {
        const m = new RegExp(`\\b${k}=(-?\\d+)`).exec(attrs);
        return m ? Number(m[1]) : undefined;
      };
      cur = {
        kind: head[2] as string,
        name: head[3] as string,
        size: num('size'),
        typeId: num('type_id'),
        nrElems: num('nr_elems'),
        members: [],
        values: [],
      };
      types.set(Number(head[1]), cur);
      continue;
    }
    const member = /^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)/.exec(line);
    if (member && cur) {
      cur.members.push({
        name: member[1] as string,
        typeId: Number(member[2]),
        bitsOffset: Number(member[3]),
      });
      continue;
    }
    const value = /^\t'([^']*)' val=(-?\d+)/.exec(line);
    if (value && cur) cur.values.push({ name: value[1] as string, val: Number(value[2]) });
  }
  return types;
}

const btf = loadBtf();
const btfSkip = typeof btf === 'string' ? btf : false;
const T = typeof btf === 'string' ? new Map<number, BtfType>() : btf;

function btfNamed(kind: string, name: string): BtfType {
  for (const t of T.values()) if (t.kind === kind && t.name === name) return t;
  throw new Error(`BTF has no ${kind} ${name}`);
}

function btfEnum(name: string): Map<string, number> {
  return new Map(btfNamed('ENUM', name).values.map((v) => [v.name, v.val]));
}

function resolve(id: number): BtfType {
  let t = T.get(id) as BtfType;
  while (['TYPEDEF', 'VOLATILE', 'CONST', 'RESTRICT', 'TYPE_TAG'].includes(t.kind))
    t = T.get(t.typeId as number) as BtfType;
  return t;
}

function sizeOf(id: number): number {
  const t = resolve(id);
  if (t.kind === 'PTR') return 8;
  if (t.kind === 'ARRAY') return (t.nrElems as number) * sizeOf(t.typeId as number);
  return t.size as number;
}

/** [name, offset, size] the way CTX_STRUCTS flattens anonymous unions. */
function btfLayout(struct: string): { size: number; fields: [string, number, number][] } {
  const s = btfNamed('STRUCT', struct);
  const fields: [string, number, number][] = [];
  for (const m of s.members) {
    const off = m.bitsOffset / 8;
    if (m.name !== '(anon)') {
      fields.push([m.name, off, sizeOf(m.typeId)]);
      continue;
    }
    const inner = resolve(m.typeId).members[0] as BtfType['members'][number];
    if (inner.name === '(anon)') {
      for (const x of resolve(inner.typeId).members)
        fields.push([x.name, off + x.bitsOffset / 8, sizeOf(x.typeId)]);
    } else {
      fields.push([inner.name, off, sizeOf(m.typeId)]);
    }
  }
  return { size: s.size as number, fields };
}

/** Names indexed by value of a kernel enum, prefix stripped and lowercased, skipping `__` markers. */
function enumNames(name: string, prefix: string): string[] {
  const out: string[] = [];
  for (const [k, v] of btfEnum(name)) {
    if (!k.startsWith(prefix) || k.startsWith('__') || k.endsWith('_DEPRECATED')) continue;
    out[v] = k.slice(prefix.length).toLowerCase();
  }
  return out;
}

describe('catalog vs kernel BTF', { skip: btfSkip }, () => {
  it('helper ids and names equal enum bpf_func_id', () => {
    const kernel = enumNames('bpf_func_id', 'BPF_FUNC_');
    assert.deepEqual(
      HELPERS.map((h) => h.name),
      kernel,
    );
    HELPERS.forEach((h, i) => {
      assert.equal(h.id, i);
    });
  });

  it('program, map, attach and link types equal the kernel enums', () => {
    assert.deepEqual(
      PROGRAM_TYPES.map((p) => p.name),
      enumNames('bpf_prog_type', 'BPF_PROG_TYPE_'),
    );
    PROGRAM_TYPES.forEach((p, i) => {
      assert.equal(p.id, i);
    });
    assert.deepEqual(
      MAP_TYPES.map((m) => m.name),
      enumNames('bpf_map_type', 'BPF_MAP_TYPE_'),
    );
    MAP_TYPES.forEach((m, i) => {
      assert.equal(m.id, i);
    });
    assert.deepEqual([...ATTACH_TYPES], enumNames('bpf_attach_type', 'BPF_'));
    assert.deepEqual([...LINK_TYPES], enumNames('bpf_link_type', 'BPF_LINK_TYPE_'));
  });

  it('argument/return kinds and type flags encode like the kernel', () => {
    const arg = btfEnum('bpf_arg_type');
    ARG_KINDS.forEach((k, i) => {
      assert.equal(arg.get(`ARG_${k.toUpperCase()}`), i, k);
    });
    for (const [alias, [kind, ...flags]] of Object.entries(ARG_ALIASES)) {
      const value = argTypeValue({ spelling: alias, kind, flags });
      assert.equal(arg.get(`ARG_${alias.toUpperCase()}`), value, alias);
    }
    const ret = btfEnum('bpf_return_type');
    RET_KINDS.forEach((k, i) => {
      assert.equal(ret.get(`RET_${k.toUpperCase()}`), i, k);
    });
    for (const [alias, [kind, ...flags]] of Object.entries(RET_ALIASES)) {
      assert.equal(
        ret.get(`RET_${alias.toUpperCase()}`),
        retTypeValue({ spelling: alias, kind, flags }),
        alias,
      );
    }
    const flag = btfEnum('bpf_type_flag');
    for (const [name, bit] of Object.entries(TYPE_FLAGS))
      assert.equal(flag.get(name.toUpperCase()), bit, name);
  });

  it('map flags equal the kernel constants', () => {
    const anon = [...T.values()].find(
      (t) => t.kind === 'ENUM' && t.values.some((v) => v.name === 'BPF_F_NO_PREALLOC'),
    );
    assert.ok(anon);
    const values = new Map(anon.values.map((v) => [v.name, v.val]));
    for (const [name, bit] of Object.entries(MAP_FLAGS)) assert.equal(values.get(name), bit, name);
  });

  it('context struct layouts equal the kernel BTF', () => {
    for (const [name, s] of Object.entries(CTX_STRUCTS)) {
      const k = btfLayout(name);
      assert.equal(s.size, k.size, `${name} size`);
      assert.deepEqual(
        s.fields.map((f) => [...f]),
        k.fields,
        `${name} fields`,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Verifier probes through bpf(2).

type Loader = (
  type: number,
  insns: Buffer,
  opts?: { attach?: number; license?: string },
) => { fd: number; log: string };

/** Syscall programs must be sleepable (BPF_F_SLEEPABLE). */
const flagsOf = (type: number): number => (type === 31 ? 1 << 4 : 0);

function makeLoader(): { load: Loader; testRun: (fd: number) => number } | string {
  const available = bpfAvailable();
  if (!available.ok) return available.reason;
  const load: Loader = (type, insns, opts = {}) => {
    try {
      const r = loadProgram({
        type,
        insns: decode(new Uint8Array(insns)),
        license: opts.license ?? 'GPL',
        logLevel: 1,
        expectedAttachType: opts.attach ?? 0,
        progFlags: flagsOf(type),
      });
      closeFd(r.fd);
      return { fd: r.fd, log: r.log };
    } catch (e) {
      if (!isTsbpfError(e)) throw e;
      return { fd: -1, log: e.details.log ?? e.message };
    }
  };
  const runErrno = (type: number): number => {
    const { fd } = loadProgram({
      type,
      insns: decode(new Uint8Array(exitWith(0))),
      expectedAttachType: attachOf(type),
      progFlags: flagsOf(type),
    });
    try {
      const data = new Uint8Array(64);
      data[12] = 0x08;
      testRun(fd, { data });
      return 0;
    } catch (e) {
      if (!isTsbpfError(e)) throw e;
      return -(e.details.errno ?? 1);
    } finally {
      closeFd(fd);
    }
  };
  return { load, testRun: runErrno };
}

function insn(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = code;
  b[1] = (src << 4) | dst;
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm, 4);
  return b;
}
const EXIT = insn(0x95, 0, 0, 0, 0);
function exitWith(k: number): Buffer {
  return Buffer.concat([insn(0xb7, 0, 0, 0, k), EXIT]);
}
const SIZE_BITS: Record<number, number> = { 1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18 };

function attachOf(type: number): number {
  const with_ = PROGRAM_TYPES[type]?.probedWith;
  return with_ ? ATTACH_TYPES.indexOf(with_) : 0;
}

const probe = btfSkip ? 'kernel BTF unavailable' : makeLoader();
const probeSkip = typeof probe === 'string' ? probe : false;
const probed = PROGRAM_TYPES.filter((p) => p.helpers !== undefined);
const NOT_ALLOWED = /unknown func|cannot use helper|invalid func/;

describe('catalog vs the verifier (live probes)', { skip: probeSkip }, () => {
  const { load, testRun } = probe as Exclude<typeof probe, string>;

  it('each probed program type may call exactly its helpers', () => {
    for (const p of probed) {
      const actual: number[] = [];
      for (let id = 1; id < HELPERS.length; id++) {
        const r = load(p.id, Buffer.concat([insn(0x85, 0, 0, 0, id), exitWith(0)]), {
          attach: attachOf(p.id),
        });
        if (!NOT_ALLOWED.test(r.log)) actual.push(id);
      }
      assert.deepEqual(actual, p.helpers, p.name);
    }
  });

  it('gplOnly matches the verifier', () => {
    for (const h of HELPERS) {
      const p = probed.find((t) => t.helpers?.includes(h.id));
      if (!p) continue;
      const r = load(p.id, Buffer.concat([insn(0x85, 0, 0, 0, h.id), exitWith(0)]), {
        attach: attachOf(p.id),
        license: 'MIT',
      });
      assert.equal(/GPL-restricted/.test(r.log), h.gplOnly, `${h.name} in ${p.name}`);
    }
  });

  it('context access matches the verifier', () => {
    for (const p of PROGRAM_TYPES) {
      if (!p.ctx?.read || p.probedWith === undefined) continue;
      const s = CTX_STRUCTS[p.ctx.struct];
      assert.ok(s, p.ctx.struct);
      for (const [name, off, size] of s.fields) {
        // Arrays (all __u32[N], N <= 5) are probed at their first element; the one struct (perf_event regs) as u64.
        const w = size in SIZE_BITS ? size : size <= 20 ? 4 : 8;
        const attach = attachOf(p.id);
        const rd = load(
          p.id,
          Buffer.concat([insn(0x61 | (SIZE_BITS[w] as number), 0, 1, off, 0), exitWith(0)]),
          { attach },
        );
        const wr = load(
          p.id,
          Buffer.concat([
            insn(0xb7, 2, 0, 0, 0),
            insn(0x63 | (SIZE_BITS[w] as number), 1, 2, off, 0),
            exitWith(0),
          ]),
          { attach },
        );
        assert.equal(rd.fd >= 0, p.ctx.read.includes(name), `${p.name} read ${name}`);
        assert.equal(wr.fd >= 0, p.ctx.write?.includes(name), `${p.name} write ${name}`);
        if (w > 1) {
          const nr = load(p.id, Buffer.concat([insn(0x71, 0, 1, off, 0), exitWith(0)]), { attach });
          assert.equal(nr.fd >= 0, p.ctx.narrowRead?.includes(name), `${p.name} narrow read ${name}`);
        }
      }
    }
  });

  it('return ranges match the verifier', () => {
    for (const p of probed) {
      for (const [attachName, range] of Object.entries(p.returnRange ?? { default: null })) {
        const attach = attachName === 'default' ? 0 : ATTACH_TYPES.indexOf(attachName);
        for (const k of [-1, 0, 1, 2, 3, 4, 100]) {
          const ok = load(p.id, exitWith(k), { attach }).fd >= 0;
          const want = range === null || (k >= range[0] && k <= range[1]);
          assert.equal(ok, want, `${p.name}/${attachName} returning ${k}`);
        }
      }
    }
  });

  it('BPF_PROG_TEST_RUN support matches', () => {
    for (const p of probed) {
      if (p.testRun === undefined) continue;
      const errno = testRun(p.id);
      assert.equal(errno !== -524 /* ENOTSUPP */, p.testRun, p.name);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Pure table checks.

describe('catalog tables', () => {
  it('helpers: lookups, prototypes parse, at least 80 verified prototypes', () => {
    assert.equal(helperByName('bpf_map_lookup_elem')?.id, 1);
    const lookup = helperByName('map_lookup_elem')?.proto;
    assert.equal(lookup?.ret.kind, 'ptr_to_map_value');
    assert.deepEqual(lookup?.ret.flags, ['ptr_maybe_null']);
    assert.deepEqual(
      lookup?.args.map((a) => a.kind),
      ['const_map_ptr', 'ptr_to_map_key'],
    );
    const read = helperByName('probe_read_kernel')?.proto?.args[0];
    assert.equal(read?.kind, 'ptr_to_mem');
    assert.deepEqual(read?.flags, ['mem_write', 'mem_uninit']);
    assert.deepEqual(helperByName('ringbuf_reserve')?.proto?.ret.flags, ['ptr_maybe_null', 'mem_ringbuf']);
    assert.equal(helperByName('strtol')?.proto?.args[3]?.size, 8);
    assert.ok(HELPERS.filter((h) => h.proto).length >= 80);
    for (const h of HELPERS.slice(1)) assert.ok(h.signature?.includes(`bpf_${h.name}(`), h.name);
  });

  it('section table names only known program and attach types', () => {
    for (const d of SECTION_DEFS) {
      assert.ok(programTypeByName(d.progType), d.sec);
      if (d.attachType !== null) assert.ok(ATTACH_TYPES.includes(d.attachType), d.sec);
    }
  });

  // Section names from libbpf's documentation (Documentation/bpf/libbpf/program_types.rst).
  const cases: [string, string, string | null, unknown?][] = [
    ['socket', 'socket_filter', null],
    ['sk_reuseport', 'sk_reuseport', 'sk_reuseport_select'],
    ['sk_reuseport/migrate', 'sk_reuseport', 'sk_reuseport_select_or_migrate'],
    ['kprobe', 'kprobe', null, undefined],
    [
      'kprobe/do_unlinkat',
      'kprobe',
      null,
      { kind: 'kprobe', func: 'do_unlinkat', offset: 0, retprobe: false },
    ],
    [
      'kprobe/tcp_v4_connect+0x10',
      'kprobe',
      null,
      { kind: 'kprobe', func: 'tcp_v4_connect', offset: 16, retprobe: false },
    ],
    [
      'kretprobe/do_unlinkat',
      'kprobe',
      null,
      { kind: 'kprobe', func: 'do_unlinkat', offset: 0, retprobe: true },
    ],
    [
      'kprobe.multi/tcp_*',
      'kprobe',
      'trace_kprobe_multi',
      { kind: 'kprobe_multi', pattern: 'tcp_*', retprobe: false },
    ],
    [
      'kretprobe.multi/vfs_*',
      'kprobe',
      'trace_kprobe_multi',
      { kind: 'kprobe_multi', pattern: 'vfs_*', retprobe: true },
    ],
    ['ksyscall/openat', 'kprobe', null, { kind: 'ksyscall', syscall: 'openat', retprobe: false }],
    ['kretsyscall/openat', 'kprobe', null, { kind: 'ksyscall', syscall: 'openat', retprobe: true }],
    [
      'uprobe//usr/lib/libc.so.6:malloc',
      'kprobe',
      null,
      { kind: 'uprobe', path: '/usr/lib/libc.so.6', func: 'malloc', offset: 0, retprobe: false },
    ],
    [
      'uretprobe//proc/self/exe:main+4',
      'kprobe',
      null,
      { kind: 'uprobe', path: '/proc/self/exe', func: 'main', offset: 4, retprobe: true },
    ],
    ['uprobe.s//bin/bash:readline', 'kprobe', null],
    [
      'uprobe.multi//usr/bin/bash:read*',
      'kprobe',
      'trace_uprobe_multi',
      { kind: 'uprobe_multi', path: '/usr/bin/bash', pattern: 'read*', retprobe: false },
    ],
    [
      'usdt//usr/lib/libc.so.6:libc:setjmp',
      'kprobe',
      null,
      { kind: 'usdt', path: '/usr/lib/libc.so.6', provider: 'libc', name: 'setjmp' },
    ],
    [
      'tracepoint/syscalls/sys_enter_openat',
      'tracepoint',
      null,
      { kind: 'tracepoint', category: 'syscalls', name: 'sys_enter_openat' },
    ],
    [
      'tp/sched/sched_switch',
      'tracepoint',
      null,
      { kind: 'tracepoint', category: 'sched', name: 'sched_switch' },
    ],
    ['raw_tracepoint/sched_switch', 'raw_tracepoint', null, { kind: 'raw_tracepoint', name: 'sched_switch' }],
    ['raw_tp/sys_enter', 'raw_tracepoint', null, { kind: 'raw_tracepoint', name: 'sys_enter' }],
    ['raw_tp.w/bpf_testmod_test_writable_bare', 'raw_tracepoint_writable', null],
    ['tp_btf/sched_switch', 'tracing', 'trace_raw_tp', { kind: 'btf', name: 'sched_switch' }],
    ['fentry/do_unlinkat', 'tracing', 'trace_fentry', { kind: 'btf', name: 'do_unlinkat' }],
    ['fexit/do_unlinkat', 'tracing', 'trace_fexit'],
    ['fmod_ret/bpf_modify_return_test', 'tracing', 'modify_return'],
    ['fentry.s/__x64_sys_openat', 'tracing', 'trace_fentry'],
    ['freplace/xdp_prog', 'ext', null],
    ['lsm/file_open', 'lsm', 'lsm_mac', { kind: 'btf', name: 'file_open' }],
    ['lsm.s/bprm_committed_creds', 'lsm', 'lsm_mac'],
    ['lsm_cgroup/socket_bind', 'lsm', 'lsm_cgroup'],
    ['iter/task', 'tracing', 'trace_iter', { kind: 'btf', name: 'task' }],
    ['iter.s/bpf_map_elem', 'tracing', 'trace_iter'],
    ['syscall', 'syscall', null],
    ['xdp', 'xdp', 'xdp'],
    ['xdp.frags', 'xdp', 'xdp'],
    ['xdp/devmap', 'xdp', 'xdp_devmap'],
    ['xdp.frags/cpumap', 'xdp', 'xdp_cpumap'],
    ['tc', 'sched_cls', null],
    ['classifier', 'sched_cls', null],
    ['action', 'sched_act', null],
    ['tc/ingress', 'sched_cls', 'tcx_ingress'],
    ['tcx/egress', 'sched_cls', 'tcx_egress'],
    ['netkit/primary', 'sched_cls', 'netkit_primary'],
    ['perf_event', 'perf_event', null],
    ['lwt_xmit', 'lwt_xmit', null],
    ['sockops', 'sock_ops', 'cgroup_sock_ops'],
    ['sk_skb/stream_parser', 'sk_skb', 'sk_skb_stream_parser'],
    ['sk_skb/stream_verdict', 'sk_skb', 'sk_skb_stream_verdict'],
    ['sk_skb', 'sk_skb', null],
    ['sk_msg', 'sk_msg', 'sk_msg_verdict'],
    ['lirc_mode2', 'lirc_mode2', 'lirc_mode2'],
    ['flow_dissector', 'flow_dissector', 'flow_dissector'],
    ['cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress'],
    ['cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress'],
    ['cgroup/skb', 'cgroup_skb', null],
    ['cgroup/sock', 'cgroup_sock', 'cgroup_inet_sock_create'],
    ['cgroup/sock_release', 'cgroup_sock', 'cgroup_inet_sock_release'],
    ['cgroup/post_bind4', 'cgroup_sock', 'cgroup_inet4_post_bind'],
    ['cgroup/connect4', 'cgroup_sock_addr', 'cgroup_inet4_connect'],
    ['cgroup/connect_unix', 'cgroup_sock_addr', 'cgroup_unix_connect'],
    ['cgroup/recvmsg6', 'cgroup_sock_addr', 'cgroup_udp6_recvmsg'],
    ['cgroup/getsockname4', 'cgroup_sock_addr', 'cgroup_inet4_getsockname'],
    ['cgroup/dev', 'cgroup_device', 'cgroup_device'],
    ['cgroup/sysctl', 'cgroup_sysctl', 'cgroup_sysctl'],
    ['cgroup/getsockopt', 'cgroup_sockopt', 'cgroup_getsockopt'],
    ['cgroup/setsockopt', 'cgroup_sockopt', 'cgroup_setsockopt'],
    ['struct_ops/tcp_init', 'struct_ops', null, { kind: 'struct_ops', member: 'tcp_init' }],
    ['struct_ops.s/dequeue', 'struct_ops', null],
    ['sk_lookup', 'sk_lookup', 'sk_lookup'],
    ['netfilter', 'netfilter', 'netfilter'],
  ];

  it('matches SEC() names like libbpf', () => {
    for (const [sec, progType, attachType, target] of cases) {
      const m = matchSection(sec);
      assert.ok(m, sec);
      assert.equal(m.def.progType, progType, sec);
      assert.equal(m.def.attachType, attachType, sec);
      assert.equal(m.progTypeId, programTypeByName(progType)?.id);
      assert.equal(m.attachTypeId, attachType === null ? 0 : ATTACH_TYPES.indexOf(attachType));
      if (cases.find((c) => c[0] === sec)?.length === 4) assert.deepEqual(m.target, target, sec);
    }
  });

  it('applies the "+" and "/" rules and refuses unknown names', () => {
    assert.equal(matchSection('kprobex'), undefined); // `kprobe+` needs end or '/'
    assert.equal(matchSection('xdp_foo'), undefined); // `xdp` is exact
    assert.equal(matchSection('sk_skb/foo'), undefined);
    assert.equal(matchSection('cgroup/skbx'), undefined);
    assert.equal(matchSection('.text'), undefined);
    assert.equal(matchSection('kprobe.multi')?.def.sec, 'kprobe.multi+');
    assert.equal(matchSection('uprobe.multi.s')?.def.sec, 'uprobe.multi.s+');
    assert.equal(matchSection('tp')?.target, undefined);
    assert.equal(
      matchSection('kretprobe/foo+8')?.targetError,
      'kretprobes do not support offset specification',
    );
    assert.ok(matchSection('tracepoint/nocategory')?.targetError);
    assert.ok(matchSection('uprobe/nocolon')?.targetError);
  });
});
