/** The kernel backend's program calls: BPF_PROG_LOAD, BPF_PROG_TEST_RUN, errors, fds. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { isTsbpfError, TsbpfError } from '../src/errors.js';
import { type Insn, splitImm64 } from '../src/isa/insn.js';
import { openBpfFds } from '../src/kernel/fds.js';
import {
  bpfAvailable,
  closeFd,
  loadAndRun,
  loadProgram,
  programInfo,
  testRun,
} from '../src/kernel/program.js';
import { generateProgram, spliceBeforeExits, upperHalfVariant } from './support/progen.js';

const movK = (dst: number, imm: number): Insn => ({ code: 0xb7, dst, src: 0, off: 0, imm });
const movX = (dst: number, src: number): Insn => ({ code: 0xbf, dst, src, off: 0, imm: 0 });
const exit: Insn = { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 };
const ldImm64 = (dst: number, v: bigint): Insn => ({ code: 0x18, dst, src: 0, off: 0, ...splitImm64(v) });
const PACKET = new Uint8Array(64).map((_, i) => i);

const avail = bpfAvailable();

describe('kernel programs', { skip: avail.ok ? false : avail.reason }, () => {
  let fdsBefore: number[] | undefined;
  before(() => {
    fdsBefore = openBpfFds();
  });
  after(() => {
    assert.deepEqual(openBpfFds(), fdsBefore, 'every program fd the tests opened is closed');
  });

  it('bpfAvailable says yes here', () => {
    assert.deepEqual(bpfAvailable(), { ok: true });
  });

  it('loads a trivial program, runs it and reads r0', () => {
    const { fd, log } = loadProgram({
      type: 'socket_filter',
      insns: [movK(0, 42), exit],
      name: 'tsbpf_test',
    });
    try {
      assert.ok(fd > 2);
      assert.equal(log, '');
      assert.equal(readlinkSync(`/proc/self/fd/${fd}`), 'anon_inode:bpf-prog');
      const r = testRun(fd, { data: PACKET });
      assert.equal(r.retval, 42);
      // A socket filter sees the packet from the network header on; the kernel hands back the rest unchanged.
      assert.equal(r.data.length, PACKET.length);
      assert.deepEqual(r.data.subarray(14), PACKET.subarray(14));
      assert.equal(typeof r.durationNs, 'number');
      const info = programInfo(fd);
      assert.equal(info.type, 1);
      assert.equal(info.name, 'tsbpf_test');
      assert.match(info.tag, /^[0-9a-f]{16}$/);
      assert.equal(info.xlatedLen, 16);
    } finally {
      closeFd(fd);
    }
    assert.ok(
      !existsSync(`/proc/self/fd/${fd}`) || readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:bpf-prog',
    );
  });

  it('bpftool sees the loaded program by id (cross-check)', (t) => {
    const probe = spawnSync('bpftool', ['version'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip('bpftool is not installed');
      return;
    }
    const { fd } = loadProgram({ type: 'socket_filter', insns: [movK(0, 1), exit], name: 'tsbpf_xcheck' });
    try {
      const { id, tag } = programInfo(fd);
      const r = spawnSync('bpftool', ['-j', 'prog', 'show', 'id', String(id)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const shown = JSON.parse(r.stdout) as { id: number; type: string; name: string; tag: string };
      assert.equal(shown.id, id);
      assert.equal(shown.type, 'socket_filter');
      assert.equal(shown.name, 'tsbpf_xcheck');
      assert.equal(shown.tag, tag);
    } finally {
      closeFd(fd);
    }
  });

  it('returns the low 32 bits of r0 as an unsigned retval', () => {
    const v = 0x1122_3344_8899_aabbn;
    assert.equal(
      loadAndRun({ type: 'socket_filter', insns: [ldImm64(0, v), exit] }, { data: PACKET }).retval,
      0x8899aabb,
    );
    const hi = loadAndRun(
      { type: 'socket_filter', insns: upperHalfVariant([ldImm64(0, v), exit]) },
      { data: PACKET },
    );
    assert.equal(hi.retval, 0x11223344);
    assert.equal(
      loadAndRun({ type: 'socket_filter', insns: [movK(0, -7), exit] }, { data: PACKET }).retval,
      2 ** 32 - 7,
    );
  });

  it('averages the duration over repeat', () => {
    const r = loadAndRun(
      { type: 'socket_filter', insns: [movK(0, 3), exit] },
      { data: PACKET, repeat: 1000 },
    );
    assert.equal(r.retval, 3);
    assert.ok(r.durationNs >= 0 && r.durationNs < 1_000_000, `duration ${r.durationNs} ns`);
  });

  it('attaches the verifier log to the error of a rejected program (EACCES)', () => {
    let err: unknown;
    try {
      loadProgram({ type: 'socket_filter', insns: [movX(0, 2), exit] });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof TsbpfError, 'a TsbpfError');
    assert.equal(err.code, 'kernel');
    assert.equal(err.details.errno, 13);
    assert.match(err.details.log ?? '', /R2 !read_ok/);
    assert.match(err.details.log ?? '', /^processed \d+ insns/m);
    assert.match(err.message, /EACCES.*R2 !read_ok/);
  });

  it('reports a malformed program with EINVAL and the kernel sentence', () => {
    assert.throws(
      () => loadProgram({ type: 'socket_filter', insns: [movK(0, 0)] }),
      (e: unknown) =>
        isTsbpfError(e) &&
        e.code === 'kernel' &&
        e.details.errno === 22 &&
        /last insn is not an exit or jmp/.test(e.details.log ?? '') &&
        /EINVAL/.test(e.message),
    );
  });

  it('grows the log buffer when it is too small (ENOSPC) and returns the whole log', () => {
    const insns = [
      movK(0, 0),
      ...Array.from({ length: 300 }, (_, i) => ({ ...movK(0, i), code: 0x07 })),
      exit,
    ];
    const { fd, log } = loadProgram({ type: 'socket_filter', insns, logLevel: 2, logSize: 256 });
    closeFd(fd);
    assert.ok(log.length > 256, `log of ${log.length} bytes`);
    assert.match(log, /^processed 302 insns/m);
  });

  it('throws TsbpfError for a bad fd and for bad arguments', () => {
    assert.throws(
      () => testRun(-1, { data: PACKET }),
      (e: unknown) => isTsbpfError(e) && e.code === 'kernel' && e.details.errno === 9,
    );
    assert.throws(
      () => loadProgram({ type: 'nope' as 'xdp', insns: [exit] }),
      (e: unknown) => isTsbpfError(e) && e.code === 'usage',
    );
    assert.throws(
      () => loadProgram({ type: 'socket_filter', insns: [movK(0, 0), exit], name: 'bad name!' }),
      (e: unknown) => isTsbpfError(e) && e.code === 'usage',
    );
  });

  it('program rewriting keeps jumps on target (same result with a no-op spliced before each exit)', () => {
    const orNothing: Insn = { code: 0x47, dst: 0, src: 0, off: 0, imm: 0 }; // r0 |= 0
    for (let seed = 1; seed <= 40; seed++) {
      const p = generateProgram(seed);
      const plain = loadAndRun({ type: 'socket_filter', insns: p.insns }, { data: PACKET }).retval;
      const spliced = spliceBeforeExits(p.insns, [orNothing]);
      assert.ok(spliced.length > p.insns.length);
      assert.equal(
        loadAndRun({ type: 'socket_filter', insns: spliced }, { data: PACKET }).retval,
        plain,
        p.description,
      );
    }
  });
});
