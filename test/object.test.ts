/**
 * readObject (src/object/spec.ts) against the fixtures, against the kernel (bpftool loads each object
 * with libbpf; the programs' types, maps, map references and subprogram layout it reports must agree
 * with the ObjectSpec), against malformed objects, and under fuzzing.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { matchSection } from '../src/catalog/sections.js';
import { objectCommand, objectSummary } from '../src/cli/commands/object.js';
import { isTsbpfError, TsbpfError } from '../src/errors.js';
import { OPCODE_LD_IMM64 } from '../src/isa/opcodes.js';
import { readElf, SHF_EXECINSTR, STT_FUNC } from '../src/object/elf.js';
import { mapTypeName } from '../src/object/maps.js';
import {
  internalMapName,
  type ObjectSpec,
  type ProgramSpec,
  readObject,
  setConstant,
  setVariable,
  variableBytes,
} from '../src/object/spec.js';
import { fixtureNames, fixturePath, loadFixture, prng } from './support/fixtures.js';

const read = (name: string): ObjectSpec => readObject(loadFixture(name), { path: fixturePath(name) });
const KNAME = (s: string) => s.slice(0, 15); // the kernel keeps 15 characters of object names

function expectObjectError(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => readObject(bytes, { name: 'bad' }),
    (e: unknown) => {
      assert.ok(isTsbpfError(e), `expected a TsbpfError, got ${(e as Error)?.stack ?? e}`);
      assert.equal(e.code, 'object');
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('readObject on the fixtures', () => {
  for (const name of fixtureNames()) {
    it(`${name}: programs are the non-.text functions, each linked with the subprograms it calls`, () => {
      const bytes = loadFixture(name);
      const spec = read(name);
      const elf = readElf(bytes);
      const entry = elf.symbols
        .filter((s) => s.type === STT_FUNC && s.sectionName !== '.text')
        .filter((s) => (elf.sections[s.shndx].flags & SHF_EXECINSTR) !== 0)
        .map((s) => s.name)
        .sort();
      assert.deepEqual(spec.programs.map((p) => p.name).sort(), entry);
      assert.equal(spec.license, 'GPL');
      for (const p of spec.programs) checkLinked(spec, p);
    });
  }

  it('names global-data maps like libbpf (8 characters of the object name, custom sections alone)', () => {
    assert.deepEqual(
      read('globals').maps.map((m) => m.name),
      ['globals.rodata', 'globals.data', '.data.table', 'globals.bss'],
    );
    assert.equal(read('tracepoint').maps[1].name, 'tracepoi.rodata');
    assert.equal(internalMapName('my_object_name', '.bss'), 'my_objec.bss');
    assert.equal(internalMapName('x-y', '.kconfig'), 'x_y.kconfig');
    assert.equal(internalMapName('o', '.rodata.str1.1'), '.rodata.str1.1');
    assert.equal(readObject(loadFixture('globals')).maps[0].name, '.rodata', 'no name: no prefix');
  });

  it('global data: initial bytes, read-only .rodata, variables at their ELF symbol offsets', () => {
    const spec = read('externs');
    const rodata = spec.maps.find((m) => m.name === 'externs.rodata');
    assert.ok(rodata?.data);
    assert.equal(rodata.flags, 0x480); // BPF_F_RDONLY_PROG | BPF_F_MMAPABLE
    assert.equal(rodata.frozen, true);
    const vars = Object.fromEntries(spec.variables.map((v) => [v.name, v]));
    assert.deepEqual(
      { o: vars.min_len.offset, s: vars.min_len.size, t: vars.min_len.type, r: vars.min_len.readonly },
      { o: 0, s: 4, t: 'const volatile __u32', r: true },
    );
    assert.equal(vars.verdict.offset, 8);
    assert.equal(vars.enabled.offset, 16);
    assert.equal(vars.last_version.offset, 8);
    assert.deepEqual([...variableBytes(spec, 'min_len')], [64, 0, 0, 0]);
    assert.deepEqual([...variableBytes(spec, 'stats')], [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    const bss = spec.maps.find((m) => m.name === 'externs.bss');
    assert.deepEqual([...(bss?.data ?? [])], new Array(12).fill(0));
  });

  it('setConstant / setVariable write the value in the object byte order', () => {
    const spec = read('externs');
    setConstant(spec, 'min_len', 1500);
    assert.deepEqual([...variableBytes(spec, 'min_len')], [0xdc, 0x05, 0, 0]);
    setConstant(spec, 'verdict', 0x1122334455667788n);
    assert.deepEqual([...variableBytes(spec, 'verdict')], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    setConstant(spec, 'enabled', false);
    assert.deepEqual([...variableBytes(spec, 'enabled')], [0]);
    setVariable(spec, 'seen', -1);
    assert.deepEqual([...variableBytes(spec, 'seen')], new Array(8).fill(0xff));
    setVariable(spec, 'stats', new Uint8Array([9]));
    assert.deepEqual([...variableBytes(spec, 'stats')], [9, ...new Array(15).fill(0)]);
    const usage = (f: () => void, re: RegExp) =>
      assert.throws(f, (e: unknown) => e instanceof TsbpfError && e.code === 'usage' && re.test(e.message));
    usage(() => setConstant(spec, 'seen', 1), /not a constant/);
    usage(() => setConstant(spec, 'nope', 1), /no constant/);
    usage(() => setConstant(spec, 'min_len', 2 ** 32), /does not fit/);
    usage(() => setVariable(spec, 'stats', new Uint8Array(17)), /17 bytes/);
  });

  it('externs: .kconfig laid out as libbpf (align desc, size asc, name), ksyms and kfuncs referenced', () => {
    const spec = read('externs');
    // Offsets as libbpf 1.1 logged them for this object (`bpftool -d prog loadall`).
    assert.deepEqual(
      spec.externs.map((e) => [e.name, e.kind, e.kconfig?.offset ?? null]),
      [
        ['CONFIG_TSBPF_MISSING', 'kconfig', 0],
        ['CONFIG_HZ', 'kconfig', 8],
        ['CONFIG_NET_SCHED', 'kconfig', 12],
        ['LINUX_KERNEL_VERSION', 'kconfig', 16],
        ['CONFIG_BPF_SYSCALL', 'kconfig', 20],
        ['CONFIG_LOCALVERSION', 'kconfig', 21],
        ['bpf_cast_to_kern_ctx', 'ksym', null],
        ['schedule', 'ksym', null],
      ],
    );
    const kconfig = spec.maps.find((m) => m.kind === 'kconfig');
    assert.equal(kconfig?.name, 'externs.kconfig');
    assert.equal(kconfig?.valueSize, 37);
    assert.equal(spec.kernelVersion, 0x061200);
    const p = spec.programs[0];
    const kinds = p.references.map((r) => `${r.kind}:${'extern' in r ? r.extern : ''}`);
    assert.ok(kinds.includes('kfunc:bpf_cast_to_kern_ctx'));
    assert.ok(kinds.includes('ksym:schedule'));
    assert.ok(kinds.includes('map_value:CONFIG_HZ'));
    const kfunc = p.references.find((r) => r.kind === 'kfunc');
    assert.equal(p.insns.find((i) => i.pc === kfunc?.pc)?.src, 2, 'BPF_PSEUDO_KFUNC_CALL');
  });

  it('BTF-defined maps: sizes from key/value types, flags, ringbuf rounding, map_extra, inner maps, initial values', () => {
    const spec = read('maps_all');
    const m = Object.fromEntries(spec.maps.map((x) => [x.name, x]));
    assert.deepEqual([m.m_hash.keySize, m.m_hash.valueSize, m.m_hash.flags], [4, 16, 1]);
    assert.deepEqual([m.m_lpm.keySize, m.m_lpm.valueSize], [8, 4]);
    assert.equal(m.m_ringbuf.maxEntries, 8192, '5000 rounds up to a power-of-2 number of pages');
    assert.equal(m.m_bloom.mapExtra, 3n);
    assert.equal(m.m_cgrp_storage.type, 'cgrp_storage');
    assert.deepEqual(
      {
        type: m.m_array_of_maps.inner?.type,
        v: m.m_array_of_maps.inner?.valueSize,
        n: m.m_array_of_maps.inner?.name,
      },
      { type: 'array', v: 8, n: 'm_array_of_maps.inner' },
    );
    assert.deepEqual(
      m.m_array_of_maps.initialSlots?.map((s) => s?.name ?? null),
      ['inner_a', null, 'inner_b'],
    );
    assert.deepEqual(
      m.m_hash_of_maps.initialSlots?.map((s) => s?.name ?? null),
      [null, 'inner_b'],
    );
    assert.deepEqual(m.m_prog_array.initialSlots, [null, { kind: 'program', name: 'prog_one' }]);
    assert.deepEqual(
      read('tail_call').maps[0].initialSlots?.map((s) => s?.name),
      ['handle_ipv4', 'handle_ipv6'],
    );
  });

  it('legacy `maps` section definitions (struct bpf_map_def)', () => {
    const spec = read('legacy_maps');
    assert.deepEqual(
      spec.maps.map((m) => [m.name, m.kind, m.type, m.keySize, m.valueSize, m.maxEntries, m.flags]),
      [
        ['legacy_hash', 'legacy', 'hash', 4, 8, 128, 1],
        ['legacy_array', 'legacy', 'array', 4, 4, 4, 0],
      ],
    );
    assert.equal(spec.kernelVersion, 0x050400);
    assert.deepEqual(
      spec.programs[0].references.map((r) => (r.kind === 'map' ? r.map : r.kind)),
      ['legacy_hash', 'legacy_array'],
    );
  });

  it('section names map to program and attach types through the catalog', () => {
    const spec = read('sections');
    const p = Object.fromEntries(spec.programs.map((x) => [x.name, x]));
    for (const prog of spec.programs) {
      const m = matchSection(prog.section);
      assert.equal(prog.typeId, m?.progTypeId ?? 0, prog.name);
      assert.equal(prog.attachTypeId, m?.attachTypeId ?? 0, prog.name);
    }
    assert.deepEqual([p.s_tc_ingress.type, p.s_tc_ingress.attachType], ['sched_cls', 'tcx_ingress']);
    assert.deepEqual([p.s_lsm.type, p.s_lsm.attachType], ['lsm', 'lsm_mac']);
    assert.deepEqual([p.s_fexit.type, p.s_fexit.attachType], ['tracing', 'trace_fexit']);
    assert.deepEqual(p.s_kretprobe.attachTarget, {
      kind: 'kprobe',
      func: 'do_unlinkat',
      offset: 0,
      retprobe: true,
    });
    assert.deepEqual(p.s_uretprobe.attachTarget, {
      kind: 'uprobe',
      path: '/usr/lib/libc.so.6',
      func: 'malloc',
      offset: 16,
      retprobe: true,
    });
    assert.deepEqual(p.s_usdt.attachTarget, {
      kind: 'usdt',
      path: './app',
      provider: 'provider',
      name: 'probe',
    });
    assert.deepEqual(p.s_tp.attachTarget, {
      kind: 'tracepoint',
      category: 'syscalls',
      name: 'sys_enter_openat',
    });
    assert.deepEqual([p.s_xdp_off.section, p.s_xdp_off.autoload, p.s_xdp_off.type], ['xdp', false, 'xdp']);
    assert.equal(p.s_unknown.type, undefined);
    assert.equal(
      spec.programs.filter((x) => x.section === 'xdp').length,
      3,
      'several programs in one section',
    );
  });

  it('subprograms are appended depth-first in order of first use, once per program', () => {
    const spec = read('callbacks');
    const layout = (n: string) =>
      spec.programs.find((p) => p.name === n)?.functions.map((f) => `${f.name}@${f.start}`);
    assert.deepEqual(layout('xdp_loop_cb'), [
      'xdp_loop_cb@0',
      'add_step@12',
      'square@19',
      'global_helper@22',
    ]);
    assert.deepEqual(layout('xdp_each_cb'), ['xdp_each_cb@0', 'visit@15', 'square@25', 'global_helper@28']);
    assert.deepEqual(layout('tc_plain'), ['tc_plain@0', 'global_helper@3']);
    const each = spec.programs.find((p) => p.name === 'xdp_each_cb') as ProgramSpec;
    assert.deepEqual(
      each.funcInfo.map((f) => `${f.name}@${f.pc}`),
      ['xdp_each_cb@0', 'visit@15', 'square@25', 'global_helper@28'],
    );
    assert.ok(each.lineInfo.every((l) => l.fileName.endsWith('callbacks.c') && l.lineNum > 0));
    assert.deepEqual(
      read('subprog').programs[0].functions.map((f) => f.name),
      ['xdp_subprogs', 'fold', 'mix', 'clamp'],
    );
    assert.equal(
      read('core_read').programs[0].coreRelos.length > 0,
      true,
      'CO-RE records kept for the CO-RE pass',
    );
  });
});

/** Internal consistency of a linked program: every reference is what its instruction encodes. */
function checkLinked(spec: ObjectSpec, p: ProgramSpec): void {
  const at = new Map(p.insns.map((i) => [i.pc, i]));
  const starts = new Map(p.functions.map((f) => [f.start, f.name]));
  assert.equal(
    p.slotCount,
    p.insns.reduce((n, i) => n + (i.code === OPCODE_LD_IMM64 ? 2 : 1), 0),
  );
  for (const r of p.references) {
    const insn = at.get(r.pc);
    assert.ok(insn, `${p.name}: reference at pc ${r.pc} is an instruction`);
    switch (r.kind) {
      case 'map':
        assert.deepEqual(
          [insn.code, insn.src, insn.imm, spec.maps[insn.imm].name],
          [0x18, 5, r.mapIndex, r.map],
        );
        break;
      case 'map_value':
        assert.deepEqual([insn.code, insn.src, insn.imm, insn.imm2], [0x18, 6, r.mapIndex, r.offset]);
        break;
      case 'call':
      case 'func':
        assert.equal(r.pc + insn.imm + 1, r.targetPc, `${p.name}: call at ${r.pc}`);
        assert.equal(starts.get(r.targetPc), r.target, `${p.name}: call at ${r.pc} lands on ${r.target}`);
        assert.equal(insn.src, r.kind === 'call' ? 1 : 4);
        break;
      default:
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Against the kernel: bpftool (libbpf 1.1) loads the object; what the kernel then holds must agree.

/** Fixtures that cannot load here, and why (the reason is checked against the loader's output). */
const CANNOT_LOAD: Record<string, { why: string; log: RegExp }> = {
  'xdp_parser.bpfeb': { why: 'a big-endian object on a little-endian kernel', log: /endianness mismatch/ },
  legacy_maps: { why: "libbpf 1.x refuses legacy 'maps' sections", log: /legacy map definitions|maps/ },
  sections: {
    why: 'SEC() names this libbpf or kernel refuses (tc/ingress unknown to libbpf 1.1; lsm/fentry EPERM; no kprobes)',
    log: /failed to (guess program type|load object)|unrecognized/,
  },
};

/** map_flags the kernel sets itself at BPF_MAP_CREATE (devmaps: dev_map_init_map forces BPF_F_RDONLY_PROG). */
const KERNEL_ADDED_FLAGS: Record<string, number> = { devmap: 0x80, devmap_hash: 0x80 };

function kernelReason(): string | false {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root to load programs';
  if (spawnSync('bpftool', ['version'], { stdio: 'ignore' }).status !== 0) return 'bpftool is not installed';
  if (spawnSync('mountpoint', ['-q', '/sys/fs/bpf']).status !== 0) {
    if (spawnSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']).status !== 0)
      return 'cannot mount bpffs at /sys/fs/bpf';
  }
  return false;
}

interface BpftoolProg {
  id: number;
  type: string;
  name: string;
  bytes_xlated: number;
  map_ids?: number[];
}
interface BpftoolMap {
  id: number;
  type: string | number;
  name: string;
  flags: number;
  bytes_key: number;
  bytes_value: number;
  max_entries: number;
  frozen?: number;
}

const bpftool = (...args: string[]) =>
  execFileSync('bpftool', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const bpftoolJson = <T>(...args: string[]): T => JSON.parse(bpftool('-j', ...args)) as T;

/** `bpftool prog dump xlated` text → functions (name, start pc) and, in order, map refs and call targets. */
function parseXlated(text: string) {
  const functions: { name: string; start: number }[] = [];
  const maps: { id: number; offset: number | undefined }[] = [];
  const calls: string[] = [];
  let pending: string | undefined;
  for (const line of text.split('\n')) {
    const insn = /^\s*(\d+): \(([0-9a-f]{2})\) (.*)$/.exec(line);
    if (!insn) {
      if (line !== '' && !line.startsWith(';') && !line.startsWith(' '))
        pending = /([A-Za-z_]\w*)\(/.exec(line)?.[1];
      continue;
    }
    const pc = Number(insn[1]);
    if (pending !== undefined) {
      functions.push({ name: pending, start: pc });
      pending = undefined;
    }
    const m = /map\[id:(\d+)\](?:\[0\]\+(\d+))?/.exec(insn[3]);
    if (m) maps.push({ id: Number(m[1]), offset: m[2] === undefined ? undefined : Number(m[2]) });
    const c = /call pc[+-]\d+#bpf_prog_[0-9a-f]+_(\w+)/.exec(insn[3]);
    if (c) calls.push(c[1]);
  }
  return { functions, maps, calls };
}

describe('ObjectSpec agrees with the kernel (bpftool prog loadall)', { skip: kernelReason() }, () => {
  const pinned: string[] = [];
  after(() => {
    for (const dir of pinned) spawnSync('rm', ['-rf', dir]);
  });

  for (const name of fixtureNames()) {
    it(name, (t) => {
      const spec = read(name);
      const tag = `tsbpf_objtest_${name.replace(/\W/g, '_')}_${process.pid}`;
      const progDir = `/sys/fs/bpf/${tag}`;
      const mapDir = `/sys/fs/bpf/${tag}_maps`;
      pinned.push(progDir, mapDir);
      try {
        const load = spawnSync(
          'bpftool',
          ['prog', 'loadall', fixturePath(name), progDir, 'pinmaps', mapDir],
          {
            encoding: 'utf8',
          },
        );
        const cannot = CANNOT_LOAD[name];
        if (load.status !== 0) {
          assert.ok(cannot, `bpftool could not load ${name}:\n${load.stderr}`);
          assert.match(load.stderr, cannot.log);
          t.skip(`cannot load: ${cannot.why}`);
          return;
        }
        assert.equal(cannot, undefined, `${name} is listed as unloadable but loaded`);

        // Maps: every map libbpf created is pinned under its (sanitised) name.
        const mapPins = existsSync(mapDir) ? readdirSync(mapDir) : []; // no maps: no directory
        const kmaps = mapPins.map((f) => bpftoolJson<BpftoolMap>('map', 'show', 'pinned', `${mapDir}/${f}`));
        const ours = spec.maps;
        assert.deepEqual(kmaps.map((m) => m.name).sort(), ours.map((m) => KNAME(m.name)).sort(), 'map names');
        const byId = new Map(kmaps.map((m) => [m.id, m]));
        for (const m of ours) {
          const k = kmaps.find((x) => x.name === KNAME(m.name)) as BpftoolMap;
          const want = {
            type: m.type,
            key: m.keySize,
            value: m.valueSize,
            max: m.maxEntries,
            flags: m.flags,
          };
          const added = KERNEL_ADDED_FLAGS[m.type] ?? 0;
          // bpftool 7.1 prints types newer than itself as numbers.
          const got = {
            type: typeof k.type === 'number' ? mapTypeName(k.type) : k.type,
            key: k.bytes_key,
            value: k.bytes_value,
            max: k.max_entries,
            flags: k.flags & ~added,
          };
          assert.deepEqual(got, want, `map ${m.name}`);
          if (m.frozen) assert.equal(k.frozen, 1, `map ${m.name} frozen`);
        }

        // Programs: names, types, the maps each one uses, and the layout of the linked code.
        const kprogs = spec.programs.filter((p) => p.autoload);
        for (const p of kprogs) {
          const k = bpftoolJson<BpftoolProg>('prog', 'show', 'pinned', `${progDir}/${p.name}`);
          assert.equal(k.name, KNAME(p.name));
          assert.equal(k.type, p.type, `${p.name} type`);
          const kernelMaps = (k.map_ids ?? []).map((id) => byId.get(id)?.name).sort();
          const ourMaps = [
            ...new Set(p.references.flatMap((r) => ('map' in r ? [KNAME(r.map)] : []))),
          ].sort();
          const x = parseXlated(bpftool('prog', 'dump', 'xlated', 'pinned', `${progDir}/${p.name}`));
          assert.deepEqual(
            x.functions.map((f) => f.name),
            p.functions.map((f) => f.name),
            `${p.name}: functions in the order libbpf appended them`,
          );
          const xlatedMaps = x.maps.map((r) => byId.get(r.id)?.name);
          const kslots = k.bytes_xlated / 8;
          t.diagnostic(
            `${p.name}: ${kslots === p.slotCount ? 'xlated layout identical' : `kernel rewrote it (${kslots} vs ${p.slotCount} slots)`}`,
          );
          if (kslots === p.slotCount) {
            // Nothing was rewritten or removed: the layout is ours instruction for instruction.
            assert.deepEqual(
              x.functions.map((f) => f.start),
              p.functions.map((f) => f.start),
              `${p.name}: function starts`,
            );
          }
          if (kslots >= p.slotCount) {
            // Only inlining and context rewrites (no dead code removed): every reference is still there, in order.
            assert.deepEqual(kernelMaps, ourMaps, `${p.name}: maps used`);
            const refs = p.references.filter((r) => r.kind === 'map' || r.kind === 'map_value');
            assert.deepEqual(
              xlatedMaps,
              refs.map((r) => ('map' in r ? KNAME(r.map) : '')),
              `${p.name}: map references in order`,
            );
            assert.deepEqual(
              x.maps.map((r) => r.offset ?? null),
              refs.map((r) => (r.kind === 'map_value' ? r.offset : null)),
              `${p.name}: map value offsets`,
            );
            // bpf_loop inlining turns a callback address into a direct call: leave callbacks out.
            const callbacks = new Set(p.references.flatMap((r) => (r.kind === 'func' ? [r.target] : [])));
            assert.deepEqual(
              x.calls.filter((c) => !callbacks.has(c)),
              p.references.flatMap((r) => (r.kind === 'call' && !callbacks.has(r.target) ? [r.target] : [])),
              `${p.name}: call targets`,
            );
          } else {
            // The verifier removed dead code: what remains must be ours.
            for (const n of kernelMaps)
              assert.ok(ourMaps.includes(n as string), `${p.name}: kernel uses ${n}`);
            for (const n of xlatedMaps)
              assert.ok(ourMaps.includes(n as string), `${p.name}: xlated refers to ${n}`);
          }
        }
        const pins = readdirSync(progDir).sort();
        assert.deepEqual(
          pins,
          kprogs.map((p) => p.name).sort(),
          'bpftool pinned exactly our autoload programs',
        );
      } finally {
        spawnSync('rm', ['-rf', progDir, mapDir]);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Malformed objects.

/** A patchable copy of a fixture with helpers to find its relocation entries. */
function patchable(name: string) {
  const bytes = loadFixture(name).slice();
  const elf = readElf(bytes);
  const view = new DataView(bytes.buffer);
  return { bytes, elf, view };
}

describe('malformed objects are refused with TsbpfError(object)', () => {
  it('truncated files', () => {
    const bytes = loadFixture('tail_call');
    for (const n of [0, 3, 20, 63, 64, 200, bytes.length >> 1, bytes.length - 1]) {
      expectObjectError(bytes.subarray(0, n), /./);
    }
  });

  it('not an eBPF object (e_machine)', () => {
    const { bytes, view } = patchable('loop');
    view.setUint16(18, 62, true); // EM_X86_64
    expectObjectError(bytes, /not an eBPF object file .*e_machine 62/);
  });

  it('a relocation against a symbol that is neither map, data, subprogram nor extern', () => {
    const { bytes, elf, view } = patchable('loop');
    const rel = elf.relocations.find((r) => r.section.name === '.relxdp');
    assert.ok(rel);
    const license = elf.symbols.find((s) => s.name === 'LICENSE');
    assert.ok(license);
    view.setUint32(rel.section.offset + 12, license.index, true); // r_info high half: the symbol
    expectObjectError(
      bytes,
      /section 'xdp' \(\.relxdp #0\) offset 176 against 'LICENSE': bad data relocation against section 'license'/,
    );
  });

  it('a relocation offset outside its section', () => {
    const { bytes, elf, view } = patchable('loop');
    const rel = elf.relocations.find((r) => r.section.name === '.relxdp');
    assert.ok(rel);
    view.setBigUint64(rel.section.offset, 0x10000n, true);
    expectObjectError(bytes, /section 'xdp' .*offset 65536 against 'result': invalid relocation offset/);
  });

  it('a relocation on an instruction that is not a call or LD_IMM64', () => {
    const { bytes, elf, view } = patchable('loop');
    const rel = elf.relocations.find((r) => r.section.name === '.relxdp');
    assert.ok(rel);
    view.setBigUint64(rel.section.offset, 0n, true); // insn 0 of xdp_hash_loop is an ALU/load instruction
    expectObjectError(
      bytes,
      /offset 0 against 'result': relocation of insn #0 .*neither a call nor an LD_IMM64/,
    );
  });

  it('an unknown relocation type in a code section', () => {
    const { bytes, elf, view } = patchable('loop');
    const rel = elf.relocations.find((r) => r.section.name === '.relxdp');
    assert.ok(rel);
    view.setUint32(rel.section.offset + 8, 7, true);
    expectObjectError(bytes, /unsupported relocation type 7/);
  });

  it('a .maps definition with a field libbpf does not know', () => {
    const { bytes, elf } = patchable('loop');
    const btf = elf.sections.find((s) => s.name === '.BTF');
    assert.ok(btf);
    const text = new TextDecoder('latin1').decode(btf.data);
    const at = text.indexOf('\0max_entries\0');
    assert.ok(at > 0);
    bytes[btf.offset + at + 11] = 'z'.charCodeAt(0); // max_entries -> max_entriez
    expectObjectError(bytes, /map 'result': unknown field 'max_entriez'/);
  });

  it('a .maps section without usable BTF', () => {
    const { bytes, elf } = patchable('loop');
    const btf = elf.sections.find((s) => s.name === '.BTF');
    assert.ok(btf);
    bytes[btf.offset] = 0; // bad magic
    expectObjectError(bytes, /section '\.maps' needs BTF, but it is corrupted: .*magic/);
  });

  it('a map definition of the wrong shape (max_entries not a pointer to an array)', () => {
    const { bytes, elf, view } = patchable('loop');
    const btfSec = elf.sections.find((s) => s.name === '.BTF');
    assert.ok(btfSec);
    // Point the map struct's `type` member (`int (*)[2]`) at type 1 (an INT) instead.
    const spec = readObject(loadFixture('loop'));
    const b = spec.btf;
    assert.ok(b);
    const def = b.types.find((t) => t.kind === 'STRUCT' && t.members.some((m) => m.name === 'max_entries'));
    assert.ok(def && def.kind === 'STRUCT');
    const hdrLen = view.getUint32(btfSec.offset + 4, true);
    const typeOff = view.getUint32(btfSec.offset + 8, true);
    let at = btfSec.offset + hdrLen + typeOff;
    for (let id = 1; id < def.id; id++) at += recordSize(view, at);
    const intId = b.types.findIndex((t) => t.kind === 'INT');
    view.setUint32(at + 12 + 4, intId, true); // members start after the 12-byte header; member 0's type
    expectObjectError(bytes, /map 'result': attr 'type': expected PTR, got int/);
  });
});

/** Size of one BTF type record (for walking raw BTF in a test). */
function recordSize(view: DataView, at: number): number {
  const info = view.getUint32(at + 4, true);
  const kind = (info >>> 24) & 0x1f;
  const vlen = info & 0xffff;
  switch (kind) {
    case 1:
      return 16;
    case 3:
      return 24;
    case 4:
    case 5:
      return 12 + vlen * 12;
    case 6:
      return 12 + vlen * 8;
    case 13:
      return 12 + vlen * 8;
    case 14:
      return 16;
    case 15:
      return 12 + vlen * 12;
    case 17:
      return 16;
    case 19:
      return 12 + vlen * 12;
    default:
      return 12;
  }
}

describe('fuzz: mutated fixtures through readObject', () => {
  it('only TsbpfError escapes, nothing hangs', (t) => {
    const rand = prng(0x7eb9f);
    const sources = fixtureNames().map(loadFixture);
    const budgetMs = process.env.TSBPF_LONG ? 60_000 : 8_000;
    const target = process.env.TSBPF_LONG ? 50_000 : 10_000;
    const start = Date.now();
    let runs = 0;
    let refused = 0;
    while (runs < target && Date.now() - start < budgetMs) {
      const src = sources[Math.floor(rand() * sources.length)];
      const bytes = src.slice();
      const mode = rand();
      const flips = 1 + Math.floor(rand() * 8);
      for (let i = 0; i < flips; i++) {
        const at = Math.floor(rand() * bytes.length);
        bytes[at] = mode < 0.5 ? Math.floor(rand() * 256) : bytes[at] ^ (1 << Math.floor(rand() * 8));
      }
      // One run in ten is also cut short.
      const input = mode < 0.1 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : bytes;
      runs++;
      try {
        const spec = readObject(input, { name: 'fuzz' });
        objectSummary(spec);
      } catch (e) {
        if (!isTsbpfError(e)) {
          assert.fail(`run ${runs}: ${(e as Error)?.stack ?? e}`);
        }
        refused++;
      }
    }
    t.diagnostic(`${runs} mutated objects, ${refused} refused, ${Date.now() - start} ms`);
    assert.ok(runs >= 1000, `ran ${runs} mutations`);
    assert.ok(refused > 0);
  });
});

describe('tsbpf object', () => {
  const run = async (...argv: string[]) => {
    let out = '';
    const io = {
      stdout: (s: string) => {
        out += s;
      },
      stdoutBytes: () => {},
      stderr: () => {},
      readStdin: async () => new Uint8Array(),
    };
    const status = await objectCommand.run(argv, io);
    return { status, out };
  };

  it('--json prints programs, maps, variables and license', async () => {
    const { status, out } = await run(fixturePath('externs'), '--json');
    assert.equal(status, 0);
    const j = JSON.parse(out);
    assert.equal(j.license, 'GPL');
    assert.deepEqual(
      j.programs.map((p: Record<string, unknown>) => [p.name, p.section, p.type, p.attachType, p.insnCount]),
      [['xdp_externs', 'xdp', 'xdp', 'xdp', 69]],
    );
    const rodata = j.maps.find((m: { name: string }) => m.name === 'externs.rodata');
    assert.deepEqual(
      [rodata.type, rodata.keySize, rodata.valueSize, rodata.maxEntries, rodata.flags],
      ['array', 4, 17, 1, 0x480],
    );
    assert.ok(
      j.variables.some((v: { name: string; readonly: boolean }) => v.name === 'min_len' && v.readonly),
    );
  });

  it('prints a table', async () => {
    const { status, out } = await run(fixturePath('callbacks'));
    assert.equal(status, 0);
    assert.match(out, /xdp_each_cb\s+xdp\s+xdp\s+xdp\s+32\s+visit,square,global_helper/);
    assert.match(out, /counts\s+array\s+4\s+8\s+8\s+0/);
  });
});
