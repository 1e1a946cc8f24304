/**
 * Soundness guard: a program tsbpf's verifier accepts never trips the VM's runtime memory checks.
 *
 * Random XDP programs doing pointer arithmetic on the stack, a map value and the packet
 * (test/support/memgen.ts: variable offsets from unknown bytes, bounds checks that are sometimes
 * wrong, linked scalars) go through verify(); every accepted one runs in the VM — the interpreter
 * and the JIT — over several inputs (packet lengths and bytes, map contents). Every region is
 * allocated at its exact size (the packet, the 24-byte xdp_md, the one-entry array's value, the
 * 512-byte stack frame), so an access the verifier should have refused crosses a region end and
 * the VM faults. A fault on an accepted program is a verifier soundness bug.
 *
 * Fixed seed in CI (a few hundred programs); TSBPF_LONG=1 runs thousands, TSBPF_SEED picks the seed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { programTypeByName } from '../src/catalog/program-types.js';
import { TsbpfError } from '../src/errors.js';
import { assembleLlvm } from '../src/isa/asm/llvm.js';
import { verify } from '../src/verifier/index.js';
import { type Engine, prepareProgram } from '../src/vm/engine.js';
import { mapHelpers } from '../src/vm/helpers/maps.js';
import { MapRuntime, type VmMap } from '../src/vm/maps/index.js';
import { AddressSpace } from '../src/vm/memory.js';
import { generateMemProgram, VALUE_SIZE } from './support/memgen.js';
import { makeRng } from './support/progen.js';

const LONG = process.env.TSBPF_LONG === '1';
const SEED = Number(process.env.TSBPF_SEED ?? 0x5eed);
const PROGRAMS = LONG ? 5000 : 400;
const INPUTS = LONG ? 12 : 6;
const XDP = programTypeByName('xdp')?.id ?? 6;
const MAPS = [{ type: 2, keySize: 4, valueSize: VALUE_SIZE, maxEntries: 1, flags: 0 }];

describe('verifier soundness: accepted programs never fault in the VM', () => {
  for (const engine of ['interpreter', 'jit'] as Engine[]) {
    it(`${PROGRAMS} random pointer-arithmetic programs (seed ${SEED}), ${engine}`, (t) => {
      const rng = makeRng(SEED);
      const rt = new MapRuntime({ memory: new AddressSpace() });
      const map = rt.create({
        name: 'sound',
        type: 'array',
        keySize: 4,
        valueSize: VALUE_SIZE,
        maxEntries: 1,
      });
      const helpers = mapHelpers(rt);
      const space = rt.memory;
      let accepted = 0;
      let rejected = 0;
      let runs = 0;
      const faults: string[] = [];
      for (let n = 0; n < PROGRAMS; n++) {
        const src = generateMemProgram(rng);
        const insns = assembleLlvm(src);
        const r = verify(insns, { progType: XDP, maps: MAPS });
        if (!r.ok) {
          rejected++;
          continue;
        }
        accepted++;
        const relocated = rt.relocate(insns, () => map as VmMap);
        const programs = [{ engine, p: prepareProgram(relocated, { engine, helpers, memory: space }) }];
        for (let i = 0; i < INPUTS; i++) {
          const len = rng.pick([0, 1, 7, 14, 20, 33, 47, 48, 49, 64, rng.int(80)]);
          const pkt = Uint8Array.from({ length: len }, () => rng.int(256));
          const value = Uint8Array.from({ length: VALUE_SIZE }, () => (rng.chance(0.3) ? 255 : rng.int(256)));
          for (const { engine, p } of programs) {
            map.update(new Uint8Array(4), value);
            // the packet and xdp_md at their exact sizes: one byte past either is a fault
            const pktRegion = space.allocate(Math.max(len, 1), 'packet', { init: pkt });
            const ctx = space.allocate(24, 'xdp_md', { writable: false });
            const dv = space.view;
            dv.setUint32(ctx.base, pktRegion.base, true);
            dv.setUint32(ctx.base + 4, pktRegion.base + len, true);
            dv.setUint32(ctx.base + 8, pktRegion.base, true);
            try {
              p.run({ r1: BigInt(ctx.base) });
              runs++;
            } catch (e) {
              if (!(e instanceof TsbpfError) || e.code !== 'runtime') throw e;
              faults.push(`${engine}, packet of ${len} bytes: ${e.message}\n${src}`);
            } finally {
              space.freeRegion(pktRegion);
              space.freeRegion(ctx);
            }
          }
          if (faults.length) break;
        }
        for (const { p } of programs) p.dispose?.();
        if (faults.length) break;
      }
      t.diagnostic(
        `verifier soundness (${engine}): ${PROGRAMS} programs, ${accepted} accepted, ${rejected} rejected; ${runs} VM runs without a fault`,
      );
      assert.deepEqual(faults.slice(0, 1), [], 'an accepted program faulted in the VM');
      assert.ok(accepted > PROGRAMS / 10, `enough accepted programs (${accepted})`);
      assert.ok(rejected > PROGRAMS / 10, `enough rejected programs (${rejected})`);
    });
  }
});
