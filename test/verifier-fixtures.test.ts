/**
 * tsbpf's verifier against the kernel's on every program of every clang-built fixture
 * (fixtures/obj/*.o): the kernel loads the program through the kernel backend (its maps created,
 * BTF, func/line info, CO-RE applied, fd_array), tsbpf verifies the same relocated instructions
 * with the object's maps and func_info (src/verifier/object.ts). The verdicts must be the same.
 *
 * Also: every helper prototype added to the catalog for the verifier is checked live — a program
 * calling the helper with valid arguments is accepted by the kernel and by tsbpf.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { applyCoreRelocations } from '../src/btf/core.js';
import { helperById } from '../src/catalog/helpers.js';
import { programTypeByName } from '../src/catalog/program-types.js';
import { TsbpfError } from '../src/errors.js';
import { assembleLlvm } from '../src/isa/asm/llvm.js';
import type { Insn } from '../src/isa/insn.js';
import { BPF_PSEUDO_MAP_FD, OPCODE_LD_IMM64 } from '../src/isa/opcodes.js';
import { kernelBtf } from '../src/kernel/btf-load.js';
import { kernelBackend } from '../src/kernel/collection.js';
import { KernelMap } from '../src/kernel/map.js';
import { bpfAvailable, closeFd, loadProgram } from '../src/kernel/program.js';
import { type ObjectSpec, type ProgramSpec, readObject } from '../src/object/spec.js';
import { type VerifierMap, verify } from '../src/verifier/index.js';
import { verifyProgram } from '../src/verifier/object.js';

const OBJ_DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'obj');

/** Programs the kernel here cannot load for a reason that is not its verifier's verdict. */
const CANNOT_LOAD: Record<string, string> = {
  'xdp_parser.bpfeb': 'a big-endian object on a little-endian kernel',
  'sections/s_lsm': 'BPF LSM is not active on this kernel (EPERM)',
  'sections/s_fentry': 'this kernel has no BPF trampolines for fentry/fexit (EPERM)',
  'sections/s_fexit': 'this kernel has no BPF trampolines for fentry/fexit (EPERM)',
  'sections/s_unknown': 'SEC("not_a_known_section") names no program type',
};

/**
 * Where tsbpf's verdict differs from the kernel's, and why. The test fails when one of these starts
 * agreeing (remove it) or another program disagrees.
 */
const KNOWN_DISAGREEMENTS: Record<string, string> = {};

interface Verdict {
  ok: boolean;
  message: string;
}

function kernelVerdict(spec: ObjectSpec, prog: ProgramSpec): Verdict | { skip: string } {
  try {
    const c = kernelBackend.load(spec, { programs: [prog.name] });
    c.close();
    return { ok: true, message: '' };
  } catch (e) {
    if (!(e instanceof TsbpfError)) throw e;
    const log = e.details.log;
    if (e.code !== 'kernel' || !log) return { skip: e.message };
    const lines = log
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('processed ') && !l.startsWith('verification time'));
    return { ok: false, message: lines[lines.length - 1] ?? e.message };
  }
}

function ourInsns(spec: ObjectSpec, prog: ProgramSpec): Insn[] | undefined {
  if (prog.coreRelos.length === 0 || !spec.btf) return undefined;
  const target = kernelBtf();
  if (!target) return undefined;
  return applyCoreRelocations(prog.insns, prog.coreRelos, spec.btf, target, {
    programs: [{ name: prog.name, slot: 0, slots: prog.slotCount }],
  }).insns;
}

const bpf = bpfAvailable();

describe('verifier on the clang-built fixtures: the same verdict as the kernel', () => {
  const files = readdirSync(OBJ_DIR)
    .filter((f) => f.endsWith('.o'))
    .sort();
  const tally = { agree: 0, compared: 0, known: 0, skipped: 0 };

  for (const file of files) {
    const name = file.slice(0, -2);
    it(name, (t) => {
      const spec = readObject(new Uint8Array(readFileSync(join(OBJ_DIR, file))), { path: file });
      for (const prog of spec.programs) {
        const key = `${name}/${prog.name}`;
        const cannot = CANNOT_LOAD[name] ?? CANNOT_LOAD[key];
        if (cannot || prog.type === undefined) {
          tally.skipped++;
          continue;
        }
        const insns = ourInsns(spec, prog);
        const vmlinux = kernelBtf();
        const ours = verifyProgram(spec, prog, {
          ...(insns ? { insns } : {}),
          ...(vmlinux ? { kernelBtf: vmlinux } : {}),
        });
        if (!bpf.ok) {
          tally.skipped++;
          continue;
        }
        const k = kernelVerdict(spec, prog);
        if ('skip' in k) {
          assert.fail(`${key}: the kernel could not be asked: ${k.skip}`);
        }
        tally.compared++;
        const known = KNOWN_DISAGREEMENTS[key];
        if (known) {
          tally.known++;
          assert.notEqual(
            ours.ok,
            k.ok,
            `${key} is listed as a known disagreement but now agrees: remove it`,
          );
          continue;
        }
        assert.equal(
          ours.ok,
          k.ok,
          `${key}: kernel ${k.ok ? 'accepts' : `rejects: ${k.message}`}; tsbpf ${ours.ok ? 'accepts' : `rejects at insn ${ours.error?.insn}: ${ours.error?.message}`}`,
        );
        tally.agree++;
      }
      if (!bpf.ok) t.diagnostic(`kernel side skipped: ${bpf.reason}`);
    });
  }

  it('reports the figure', (t) => {
    if (!bpf.ok) {
      t.skip(bpf.reason);
      return;
    }
    t.diagnostic(
      `fixtures: ${tally.agree + tally.known} programs compared, same verdict on ${tally.agree} (${((100 * tally.agree) / Math.max(1, tally.compared)).toFixed(1)}%), ${tally.known} known disagreements, ${tally.skipped} not loadable here`,
    );
    assert.ok(tally.compared > 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Helper prototypes added for the verifier: each checked live.

interface HelperCase {
  helper: number;
  type: string;
  attach?: number;
  maps?: { type: number; keySize: number; valueSize: number; maxEntries: number }[];
  asm: string;
}

const ZERO_STACK = (bytes: number) =>
  Array.from({ length: bytes / 8 }, (_, i) => `*(u64 *)(r10 - ${8 * (i + 1)}) = r1`).join('; ');

const HELPER_CASES: HelperCase[] = [
  { helper: 67, type: 'tracepoint', asm: 'r2 = r10; r2 += -64; r3 = 64; r4 = 0; call 67; r0 = 0; exit' },
  {
    helper: 37,
    type: 'tracepoint',
    maps: [{ type: 8, keySize: 4, valueSize: 4, maxEntries: 1 }],
    asm: 'r1 = map_fd(0) ll; r2 = 0; call 37; r0 = 0; exit',
  },
  { helper: 47, type: 'socket_filter', asm: 'call 47; r0 = 0; exit' },
  {
    helper: 66,
    type: 'sched_cls',
    asm: 'r2 = 0; r3 = r10; r3 += -32; r4 = 32; r5 = 0; call 66; r0 = 0; exit',
  },
  {
    helper: 69,
    type: 'xdp',
    asm: `r6 = r1; r1 = 0; ${ZERO_STACK(64)}; r1 = r6; r2 = r10; r2 += -64; r3 = 64; r4 = 0; call 69; r0 = 2; exit`,
  },
  {
    helper: 81,
    type: 'cgroup_skb',
    maps: [{ type: 19, keySize: 8, valueSize: 8, maxEntries: 0 }],
    asm: 'r1 = map_fd(0) ll; r2 = 0; call 81; r1 = *(u64 *)(r0 + 0); r0 = 1; exit',
  },
  {
    helper: 163,
    type: 'sched_cls',
    asm: 'r2 = 0; *(u32 *)(r10 - 4) = r2; r3 = r10; r3 += -4; r4 = 0; r5 = 0; call 163; r0 = 0; exit',
  },
  { helper: 186, type: 'cgroup_sock', asm: 'call 186; r0 = 1; exit' },
  { helper: 187, type: 'cgroup_sock', asm: 'r1 = 0; call 187; r0 = 1; exit' },
  { helper: 192, type: 'sched_cls', asm: 'r2 = 0; r3 = 0; call 192; r0 = 0; exit' },
  // sockets: a lookup acquires a reference that bpf_sk_release (86) gives back
  ...[84, 85, 99].map((helper) => ({
    helper,
    type: 'sched_cls',
    asm: `r6 = r1; TUPLE; call ${helper}; if r0 == 0 goto +2; r1 = r0; call 86; r0 = 0; exit`,
  })),
  {
    helper: 86,
    type: 'xdp',
    asm: 'r6 = r1; TUPLE; call 84; if r0 == 0 goto +2; r1 = r0; call 86; r0 = 2; exit',
  },
  ...[95, 96, 98].map((helper) => ({
    helper,
    type: 'sched_cls',
    asm: `r1 = *(u64 *)(r1 + 168); if r1 == 0 goto +1; call ${helper}; r0 = 0; exit`,
  })),
  { helper: 97, type: 'sched_cls', asm: 'call 97; r0 = 0; exit' },
].map((c) => ({
  ...c,
  asm: c.asm.replace(
    'TUPLE',
    `r2 = r10; r2 += -40; r1 = 0; ${ZERO_STACK(40)}; r1 = r6; r3 = 12; r4 = 0; r5 = 0`,
  ),
}));

describe('helper prototypes added to the catalog: a valid call is accepted by the kernel and by tsbpf', () => {
  for (const c of HELPER_CASES) {
    const h = helperById(c.helper);
    it(`${c.helper} bpf_${h?.name} (${c.type})`, (t) => {
      assert.ok(h?.proto, 'the catalog has the prototype');
      const pt = programTypeByName(c.type);
      assert.ok(pt);
      const insns = assembleLlvm(c.asm);
      const vmaps: VerifierMap[] = (c.maps ?? []).map((m) => ({ ...m, flags: 0 }));
      const ours = verify(insns, { progType: pt.id, maps: vmaps, logLevel: 1 });
      assert.ok(ours.ok, `tsbpf rejects: ${ours.error?.message}\n${ours.log}`);
      if (!bpf.ok) {
        t.skip(bpf.reason);
        return;
      }
      const kmaps = (c.maps ?? []).map((m) => KernelMap.create(m));
      try {
        const kinsns = insns.map((i) =>
          i.code === OPCODE_LD_IMM64 && i.src === BPF_PSEUDO_MAP_FD ? { ...i, imm: kmaps[i.imm].fd } : i,
        );
        const p = loadProgram({
          type: c.type,
          insns: kinsns,
          ...(c.attach ? { expectedAttachType: c.attach } : {}),
        });
        closeFd(p.fd);
      } finally {
        for (const m of kmaps) m.close();
      }
    });
  }
});
