/**
 * tsbpf's bpftool-style commands against the running kernel, compared with bpftool itself on the same
 * objects: `prog show/list`, `map show/dump/lookup/getnext/update/delete/pin/freeze`, `link list`,
 * `feature probe`, and `load OBJ --attach` printing ring-buffer records. Plain output must be the same
 * text, JSON the same keys and values (loaded_at may differ by the second it was computed in).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
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

const bpftool = (args: string[]) => execFileSync('bpftool', args, { encoding: 'utf8' });
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
    for (const args of cases) {
      const ours = await tsbpf(mapCommand, args);
      assert.equal(ours.out, bpftool(['map', ...args]), `map ${args.join(' ')}`);
      const oursJ = await tsbpf(mapCommand, [...args, '-j']);
      assert.deepEqual(
        JSON.parse(oursJ.out),
        JSON.parse(bpftool(['-j', 'map', ...args])),
        `-j map ${args.join(' ')}`,
      );
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
        assert.equal(o.id, t.id);
        assert.equal(o.type, t.type);
      } finally {
        raw.close();
      }
    } finally {
      tp.close();
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
