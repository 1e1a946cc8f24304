/**
 * tsbpf's bpftool-style commands against the running kernel, compared with bpftool itself on the same
 * objects: `prog show/list/dump xlated`, `map show/dump/lookup/getnext/update/delete/pin/freeze` (with
 * BTF-formatted values, from the fixtures and from a C file built here covering every BTF kind), `link list`,
 * `feature probe`, and `load OBJ --attach` printing ring-buffer records. Plain output must be the same
 * text, JSON the same keys and values (loaded_at may differ by the second it was computed in).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
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
import type { Command } from '../src/cli/command.js';
import { featureCommand } from '../src/cli/commands/feature.js';
import { linkCommand } from '../src/cli/commands/link.js';
import { loadCommand } from '../src/cli/commands/load.js';
import { mapCommand } from '../src/cli/commands/map.js';
import { progCommand } from '../src/cli/commands/prog.js';
import { type KernelCollection, kernelBackend } from '../src/kernel/collection.js';
import { openBpfFds } from '../src/kernel/fds.js';
import { openAttachments } from '../src/kernel/link.js';
import { bpfAvailable } from '../src/kernel/program.js';
import { readObject } from '../src/object/spec.js';

const avail = bpfAvailable();
const hasBpftool = spawnSync('bpftool', ['version']).status === 0;
const skip = !avail.ok ? avail.reason : !hasBpftool ? 'bpftool is not installed (the reference)' : false;
const FIX = new URL('../../fixtures/obj/', import.meta.url).pathname;
const tag = `tsbpf_kcli_${process.pid}`;

async function tsbpf(cmd: Command, args: string[]): Promise<{ out: string; err: string; status: number }> {
  let out = '';
  let err = '';
  const status = await cmd.run(args, {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    stdoutBytes: () => {},
    readStdin: async () => new Uint8Array(0),
  });
  return { out, err, status };
}

/**
 * bpftool's stdout. Listing fails as a whole (EAGAIN, "Resource temporarily unavailable") when it meets a link
 * that another test file is tearing down at that moment; that state passes, so bpftool is asked again.
 */
const bpftool = (args: string[]): string => {
  for (let attempt = 1; ; attempt++) {
    try {
      return execFileSync('bpftool', args, { encoding: 'utf8' });
    } catch (e) {
      const out = String((e as { stdout?: unknown }).stdout ?? '');
      if (attempt >= 5 || !out.includes('Resource temporarily unavailable')) throw e;
    }
  }
};
/** bpftool's stdout and exit status, also when it fails. */
const bpftoolRun = (args: string[]) => {
  const r = spawnSync('bpftool', args, { encoding: 'utf8' });
  return { out: r.stdout, status: r.status };
};
const hasClang = spawnSync('clang', ['--version']).status === 0;
/** loaded_at is computed from the boot clock by both tools: equal up to the second boundary. */
const normTime = (s: string) =>
  s.replace(/loaded_at \S+/g, 'loaded_at T').replace(/"loaded_at":\d+/g, '"loaded_at":0');

describe('kernel CLI (bpftool words)', { skip }, () => {
  let c: KernelCollection;
  let fds: number[] | undefined;
  before(() => {
    fds = openBpfFds('map');
    c = kernelBackend.load(
      readObject(new Uint8Array(readFileSync(`${FIX}maps_all.o`)), { path: 'maps_all.o' }),
    );
  });
  after(() => {
    c.close();
    assert.deepEqual(openBpfFds('map'), fds);
    assert.deepEqual(
      readdirSync('/sys/fs/bpf').filter((n) => n.startsWith(tag)),
      [],
    );
    assert.equal(openAttachments(), 0);
  });

  it('prog show id N: same text and JSON as bpftool', async () => {
    for (const p of c.programs.values()) {
      const id = String(p.info().id);
      assert.equal(
        normTime((await tsbpf(progCommand, ['show', 'id', id])).out),
        normTime(bpftool(['prog', 'show', 'id', id])),
      );
      assert.deepEqual(
        JSON.parse(normTime((await tsbpf(progCommand, ['show', 'id', id, '-j'])).out)),
        JSON.parse(normTime(bpftool(['-j', 'prog', 'show', 'id', id]))),
      );
    }
  });

  it('prog list holds every program bpftool lists, with the same fields', async () => {
    const ours = JSON.parse((await tsbpf(progCommand, ['list', '-j'])).out) as { id: number }[];
    const theirs = JSON.parse(bpftool(['-j', 'prog', 'list'])) as { id: number }[];
    const mine = new Set([...c.programs.values()].map((p) => p.info().id));
    const pick = (a: { id: number }[]) =>
      a.filter((x) => mine.has(x.id)).map((x) => JSON.parse(normTime(JSON.stringify(x))));
    assert.deepEqual(pick(ours), pick(theirs));
    assert.equal(pick(ours).length, mine.size);
  });

  it('map show, dump, lookup and getnext: same text and JSON as bpftool', async () => {
    const arr = c.map('m_array');
    arr.update(
      new Uint8Array([1, 0, 0, 0]),
      Uint8Array.from({ length: 24 }, (_, i) => i + 1),
    );
    const idOf = (name: string) => String(c.map(name).id);
    const cases: string[][] = [];
    // maps created without BTF (bpftool dumps their bytes)
    for (const name of [
      'm_array',
      'm_prog_array',
      'm_perf',
      'm_devmap',
      'm_queue',
      'm_ringbuf',
      'm_array_of_maps',
    ]) {
      cases.push(['show', 'id', idOf(name)]);
    }
    cases.push(['dump', 'id', idOf('m_array')]);
    cases.push(['lookup', 'id', idOf('m_array'), 'key', '1', '0', '0', '0']);
    cases.push(['lookup', 'id', idOf('m_array'), 'key', '0x02', '0x00', '0x00', '0x00']);
    cases.push(['getnext', 'id', idOf('m_array'), 'key', '1', '0', '0', '0']);
    cases.push(['getnext', 'id', idOf('m_array')]);
    // maps with BTF (formatted entries), per-CPU values, empty maps, maps without keys, lookups that fail
    c.map('m_hash').update(
      new Uint8Array([1, 0, 0, 0]),
      new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]),
    );
    for (const name of [
      'm_hash',
      'm_pcpu_array',
      'm_pcpu_hash',
      'm_lpm',
      'm_queue',
      'm_ringbuf',
      'm_prog_array',
    ])
      cases.push(['dump', 'id', idOf(name)]);
    cases.push(['lookup', 'id', idOf('m_hash'), 'key', '1', '0', '0', '0']);
    cases.push(['lookup', 'id', idOf('m_hash'), 'key', '2', '0', '0', '0']);
    cases.push(['lookup', 'id', idOf('m_pcpu_array'), 'key', '1', '0', '0', '0']);
    cases.push(['lookup', 'id', idOf('m_sockmap'), 'key', '0', '0', '0', '0']);
    for (const args of cases) {
      for (const flags of [[], ['-j'], ['-p']]) {
        const ours = await tsbpf(mapCommand, [...args, ...flags]);
        const theirs = bpftoolRun([...flags, 'map', ...args]);
        assert.equal(ours.out, theirs.out, `${flags.join(' ')} map ${args.join(' ')}`);
        assert.equal(ours.status, theirs.status, `exit status of ${flags.join(' ')} map ${args.join(' ')}`);
      }
    }
  });

  it('map update, delete, pin and freeze do what bpftool then reads', async () => {
    const id = String(c.map('m_lru_hash').id);
    await tsbpf(mapCommand, [
      'update',
      'id',
      id,
      'key',
      '7',
      '0',
      '0',
      '0',
      'value',
      '0x2a',
      '0',
      '0',
      '0',
      'noexist',
    ]);
    assert.match(bpftool(['-j', 'map', 'dump', 'id', id]), /"key":7,"value":42/);
    await tsbpf(mapCommand, ['delete', 'id', id, 'key', 'hex', '07', '00', '00', '00']);
    assert.match(bpftool(['-j', 'map', 'dump', 'id', id]), /^\[\]/);
    const pin = `/sys/fs/bpf/${tag}_map`;
    await tsbpf(mapCommand, ['pin', 'id', id, pin]);
    try {
      assert.equal(JSON.parse(bpftool(['-j', 'map', 'show', 'pinned', pin])).id, Number(id));
    } finally {
      unlinkSync(pin);
    }
    const q = String(c.map('m_queue').id);
    await tsbpf(mapCommand, ['freeze', 'id', q]);
    assert.equal(JSON.parse(bpftool(['-j', 'map', 'show', 'id', q])).frozen, 1);
  });

  it('prog run prints what bpftool prog run prints', async () => {
    const p = c.programs.values().next().value;
    assert.ok(p);
    const id = String(p.info().id);
    const data = `/tmp/${tag}.in`;
    execFileSync('sh', ['-c', `head -c 64 /dev/zero > ${data}`]);
    try {
      const ours = (await tsbpf(progCommand, ['run', 'id', id, 'data_in', data])).out;
      const theirs = bpftool(['prog', 'run', 'id', id, 'data_in', data]);
      assert.equal(ours.replace(/\d+ns/, 'Nns'), theirs.replace(/\d+ns/, 'Nns'));
    } finally {
      unlinkSync(data);
    }
  });

  it('prog loadall pins every program; link list shows a link like bpftool', async () => {
    const dir = `/sys/fs/bpf/${tag}_progs`;
    await tsbpf(progCommand, ['loadall', `${FIX}xdp_parser.o`, dir]);
    try {
      assert.deepEqual(readdirSync(dir), ['xdp_count_proto']);
      assert.equal(
        JSON.parse(bpftool(['-j', 'prog', 'show', 'pinned', `${dir}/xdp_count_proto`])).name,
        'xdp_count_proto',
      );
    } finally {
      execFileSync('rm', ['-rf', dir]);
    }
    const tp = kernelBackend.load(
      readObject(new Uint8Array(readFileSync(`${FIX}tracepoint.o`)), { path: 'tracepoint.o' }),
    );
    try {
      const link = tp.program('trace_openat').attach();
      assert.equal(link.kind, 'tracepoint');
      const raw = kernelBackend.load(
        readObject(new Uint8Array(readFileSync(`${FIX}sections.o`)), { path: 'sections.o' }),
        { programs: ['s_raw_tp'] },
      );
      try {
        raw.program('s_raw_tp').attach();
        const ours = JSON.parse((await tsbpf(linkCommand, ['list', '-j'])).out) as {
          id: number;
          type: string;
          prog_id: number;
        }[];
        const theirs = JSON.parse(bpftool(['-j', 'link', 'list'])) as {
          id: number;
          type: string;
          prog_id: number;
        }[];
        const rawId = raw.program('s_raw_tp').info().id;
        const o = ours.find((l) => l.prog_id === rawId);
        const t = theirs.find((l) => l.prog_id === rawId);
        assert.ok(o && t);
        assert.deepEqual(o, t, 'the same fields (tp_name of a raw_tracepoint link)');
        const block = (text: string) =>
          new RegExp(`^${o.id}: .*\\n(\\t.*\\n)?`, 'm').exec(text)?.[0] ?? `no link ${o.id}`;
        assert.equal(block((await tsbpf(linkCommand, ['list'])).out), block(bpftool(['link', 'list'])));
      } finally {
        raw.close();
      }
    } finally {
      tp.close();
    }
  });

  it('BTF-formatted values, long program names and xlated dumps: the same text as bpftool', {
    skip: hasClang ? false : 'clang is not installed (builds the test object)',
  }, async () => {
    const dir = mkdtempSync(`${tmpdir()}/tsbpf-kcli-`);
    try {
      writeFileSync(`${dir}/kinds.c`, KINDS_C);
      execFileSync('clang', [
        '-O2',
        '-g',
        '-target',
        'bpf',
        '-I/usr/include/x86_64-linux-gnu',
        '-c',
        `${dir}/kinds.c`,
        '-o',
        `${dir}/kinds.o`,
      ]);
      const k = kernelBackend.load(
        readObject(new Uint8Array(readFileSync(`${dir}/kinds.o`)), { path: 'kinds.o' }),
      );
      try {
        const h = k.map('kinds_hash');
        const v = new Uint8Array(h.valueSize);
        v.set([104, 105]); // "hi"
        for (let i = 8; i < v.length; i++) v[i] = (i * 37) & 0xff;
        h.update(new Uint8Array([1, 0, 0, 0, 2, 0, 3, 4]), v);
        const v2 = new Uint8Array(h.valueSize).fill(0xff);
        v2.set([97, 92, 98, 34, 99, 39, 0, 0]); // a\b"c' : bpftool's escapes
        h.update(new Uint8Array([9, 0, 0, 0, 0, 0, 0x41, 0x22]), v2);
        const pc = k.map('pcpu_flags');
        pc.update(new Uint8Array(4), new Uint8Array(pc.valueBufferSize).fill(0xa5));
        const cases: string[][] = [];
        for (const name of [
          'kinds_hash',
          'pcpu_flags',
          'floats',
          'kinds.rodata',
          'kinds.data',
          'kinds.bss',
        ]) {
          const m = k.map(name);
          cases.push(['map', 'dump', 'id', String(m.id)]);
          cases.push([
            'map',
            'lookup',
            'id',
            String(m.id),
            'key',
            ...Array.from({ length: m.keySize }, () => '0'),
          ]);
        }
        cases.push([
          'map',
          'lookup',
          'id',
          String(h.id),
          'key',
          '9',
          '0',
          '0',
          '0',
          '0',
          '0',
          '0x41',
          '0x22',
        ]);
        const prog = String(k.program('xdp_program_with_a_long_name').info().id);
        cases.push(['prog', 'show', 'id', prog]);
        for (const opt of [[], ['linum'], ['opcodes']])
          cases.push(['prog', 'dump', 'xlated', 'id', prog, ...opt]);
        for (const [what, ...args] of cases) {
          const cmd = what === 'map' ? mapCommand : progCommand;
          for (const flags of [[], ['-j'], ['-p']]) {
            const ours = await tsbpf(cmd, [...args, ...flags]);
            const theirs = bpftoolRun([...flags, what as string, ...args]);
            const label = `${flags.join(' ')} ${what} ${args.join(' ')}`;
            assert.equal(normTime(ours.out), normTime(theirs.out), label);
            assert.equal(ours.status, theirs.status, `exit status of ${label}`);
          }
        }
        assert.match(
          (await tsbpf(progCommand, ['show', 'id', prog])).out,
          /name xdp_program_with_a_long_name /,
        );
      } finally {
        k.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('feature probe says what this kernel has', async () => {
    const r = await tsbpf(featureCommand, ['probe', '-j']);
    const j = JSON.parse(r.out);
    assert.equal(j.program_types.have_xdp_prog_type, true);
    assert.equal(j.program_types.have_sched_cls_prog_type, true);
    assert.equal(j.map_types.have_ringbuf_map_type, true);
    assert.equal(j.system_config.have_kprobes, false, 'this kernel has no kprobes');
    const plain = (await tsbpf(featureCommand, ['probe', 'program_types', 'xdp'])).out;
    assert.match(plain, /eBPF program_type xdp is available/);
    assert.match(plain, /eBPF helpers supported for program type xdp:\n(\t- bpf_\w+\n)+/);
    assert.match(plain, /\t- bpf_xdp_adjust_head\n/);
    assert.doesNotMatch(plain, /\t- bpf_skb_load_bytes\n/);
  });

  it('load OBJ --attach prints ring-buffer records and cleans up', async () => {
    const run = tsbpf(loadCommand, [`${FIX}ringbuf.o`, '--attach', '--count', '2', '--duration', '5']);
    setTimeout(() => execFileSync('/bin/true'), 300);
    const r = await run;
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /attached prog 'on_exec' \(tracepoint\)/);
    assert.match(r.out, /events: ([0-9a-f]{2} ?)+\n/);
    const progId = Number(/loaded prog 'on_exec' .* id (\d+)/.exec(r.out)?.[1]);
    assert.ok(progId > 0);
    const links = JSON.parse(bpftool(['-j', 'link', 'list'])) as { prog_id: number }[];
    assert.ok(!links.some((l) => l.prog_id === progId), 'its link is gone');
    assert.ok(
      !(JSON.parse(bpftool(['-j', 'prog', 'list'])) as { id: number }[]).some((p) => p.id === progId),
      'its program is gone',
    );
    assert.ok(!existsSync('/sys/fs/bpf/events'));
  });
});

/** Every kind of BTF value bpftool formats, global data, a long program name and a subprogram. */
const KINDS_C = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum color { RED, GREEN = 5, BLUE = -1 };
enum big : unsigned long long { HUGE = 0x123456789abcdefULL, SMALL = 1 };
typedef unsigned int u32_t;
struct flags { unsigned int a : 3, b : 5; int c : 7; unsigned long long d : 33; };
union u { __u32 x; __u8 bytes[4]; };
struct kinds {
  char name[8];
  char raw[4];
  signed char sc;
  unsigned char uc;
  _Bool ok;
  short s;
  unsigned short us;
  int i;
  long long ll;
  enum color col;
  enum big bg;
  u32_t td;
  struct flags f;
  union u un;
  void *ptr;
  unsigned __int128 wide;
  __u32 arr2[2][2];
  struct { __u16 lo, hi; } anon;
};
struct key2 { __u32 a; __u16 b; __u8 c[2]; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, struct key2); __type(value, struct kinds); } kinds_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct flags); } pcpu_flags SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, float); } floats SEC(".maps");

const volatile __u32 cfg_threshold = 100;
const volatile char cfg_name[6] = "tsbpf";
__u64 counter = 7;
enum color last_color = GREEN;
struct flags zero_flags;
__u32 hist[3];

static __attribute__((noinline)) int helper_with_a_long_name(int x) { return x * 2 + (int)counter; }

SEC("xdp")
int xdp_program_with_a_long_name(struct xdp_md *ctx) {
  struct key2 k = {1, 2, {3, 4}};
  struct kinds *v = bpf_map_lookup_elem(&kinds_hash, &k);
  if (v) v->i++;
  hist[ctx->ingress_ifindex & 1]++;
  counter++;
  if (cfg_name[0] != 't') return XDP_ABORTED;
  return helper_with_a_long_name(cfg_threshold) > 3 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
`;
