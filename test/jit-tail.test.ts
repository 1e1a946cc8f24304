/**
 * Tail-call chains inside WebAssembly and unrolled one-block loops: the JIT runs a chain through
 * its address space's table of program entries (no return to the host per tail call) and copies
 * short loops four times per back edge; both must give exactly the interpreter's results.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assembleLlvm } from '../src/isa/asm/index.js';
import { readObject } from '../src/object/spec.js';
import { vmBackend } from '../src/vm/backend.js';
import { ENGINES, prepareProgram } from '../src/vm/engine.js';
import { mapHelpers } from '../src/vm/helpers/maps.js';
import type { PreparedProgram } from '../src/vm/interpreter.js';
import { dumpWat, prepareJit } from '../src/vm/jit/program.js';
import type { ProgArrayMap } from '../src/vm/maps/array.js';
import { MapRuntime } from '../src/vm/maps/runtime.js';
import { AddressSpace } from '../src/vm/memory.js';
import { loadFixture } from './support/fixtures.js';
import { ipv4Packet } from './support/packets.js';

const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);

describe('tail calls inside WebAssembly', () => {
  test('tail_chain.o: the same verdicts and stage counts under both engines (33 tail calls at most)', () => {
    const out = ENGINES.map((engine) => {
      const c = vmBackend({ engine }).load(readObject(loadFixture('tail_chain'), { path: 'tail_chain.o' }));
      try {
        const data = ipv4Packet();
        const bad = data.slice();
        bad[0] = 0xff;
        const r = [
          c.program('chain_entry').testRun({ data, repeat: 3 }).retval,
          c.program('chain_loop').testRun({ data, repeat: 2 }).retval,
          c.program('chain_entry').testRun({ data: bad }).retval,
          c.program('chain_loop').testRun({ data }).retval,
        ];
        const hits = [0, 1, 2, 3, 4].map((k) => {
          const v = c.map('stage_hits').lookup(u32(k));
          return v ? new DataView(v.buffer, v.byteOffset).getBigUint64(0, true) : -1n;
        });
        return { r, hits };
      } finally {
        c.close();
      }
    });
    assert.deepEqual(out[0], out[1]);
    assert.deepEqual(out[1].hits, [4n, 4n, 3n, 3n, 3n * 34n]);
  });

  // r6 counts the programs run (in the array value), then: slot 0 from the main program or from a
  // subprogram, or slot 1 (another address space's program: the host's chain)
  const chainSrc = (viaSub: boolean) => `
      r6 = r1
      *(u32 *)(r10 - 4) = 0
      r1 = map_fd(1) ll
      r2 = r10
      r2 += -4
      call 1
      if r0 == 0 goto out
      r1 = *(u64 *)(r0 + 0)
      r1 += 1
      *(u64 *)(r0 + 0) = r1
      r1 = r6
      ${viaSub ? 'call sub' : 'r2 = map_fd(0) ll\n      r3 = 0\n      call 12'}
      r0 += 1000
    out:
      exit
    ${viaSub ? 'sub:\n      r2 = map_fd(0) ll\n      r3 = 0\n      call 12\n      r0 = 7\n      exit' : ''}`;

  for (const viaSub of [false, true]) {
    test(`a program tail-calling itself ${viaSub ? 'from a subprogram' : ''}: 1 + 33 runs, then it goes on`, () => {
      const results = ENGINES.map((engine) => {
        const rt = new MapRuntime({ memory: new AddressSpace() });
        const helpers = mapHelpers(rt, { tailTarget: (p) => p as PreparedProgram });
        const pa = rt.create({ type: 'prog_array', keySize: 4, valueSize: 4, maxEntries: 2 }) as ProgArrayMap;
        const counter = rt.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 });
        const prog = prepareProgram(
          rt.relocate(assembleLlvm(chainSrc(viaSub)), (i) => [pa, counter][i]),
          { engine, helpers, memory: rt.memory },
        );
        pa.update(u32(0), u32(rt.registerProgram(prog)));
        const ctx = rt.memory.allocate(8, 'ctx');
        const r0s = [
          prog.run({ r1: BigInt(ctx.base) }).r0,
          prog.runRepeat ? prog.runRepeat({ r1: BigInt(ctx.base) }, 3).r0 : -1n,
          prog.run({ mem: new Uint8Array(8) }).r0,
        ];
        const v = counter.lookup(u32(0)) as Uint8Array;
        const count = new DataView(v.buffer, v.byteOffset).getBigUint64(0, true);
        rt.close();
        return { r0s, count };
      });
      assert.deepEqual(results[0], results[1]);
      assert.equal(results[1].count, 5n * 34n);
    });
  }

  test('a target in another address space: the host follows the chain, as the interpreter does', () => {
    const results = ENGINES.map((engine) => {
      const rt = new MapRuntime({ memory: new AddressSpace() });
      const helpers = mapHelpers(rt, { tailTarget: (p) => p as PreparedProgram });
      const pa = rt.create({ type: 'prog_array', keySize: 4, valueSize: 4, maxEntries: 2 }) as ProgArrayMap;
      const counter = rt.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 });
      const prog = prepareProgram(
        rt.relocate(assembleLlvm(chainSrc(false)), (i) => [pa, counter][i]),
        { engine, helpers, memory: rt.memory },
      );
      const other = prepareProgram(assembleLlvm('r0 = 42\nexit'), { engine, memory: new AddressSpace() });
      pa.update(u32(0), u32(rt.registerProgram(other)));
      const r = prog.run({ mem: new Uint8Array(8) }).r0;
      rt.close();
      return r;
    });
    assert.deepEqual(results, [42n, 42n]);
  });
});

describe('unrolled one-block loops', () => {
  const loop = (n: number, cond: string) => `
      r0 = 0
      r1 = ${n}
    l:
      r0 += r1
      r0 *= 3
      w0 ^= 0x55
      r1 -= 1
      ${cond}
      r0 += 1
      exit`;
  for (const n of [1, 2, 3, 4, 5, 7, 8, 9, 100]) {
    test(`${n} trips: the interpreter's r0 and instruction count`, () => {
      for (const cond of ['if r1 != 0 goto l', 'if r1 s> 0 goto l', 'if w1 > 0 goto l']) {
        const insns = assembleLlvm(loop(n, cond));
        const a = prepareProgram(insns, { engine: 'interpreter' }).run();
        const b = prepareJit(insns).run();
        assert.equal(b.r0, a.r0);
        assert.equal(b.insnCount, a.insnCount);
      }
    });
  }
  test('the loop body appears four times in the generated code', () => {
    const wat = dumpWat(prepareJit(assembleLlvm(loop(10, 'if r1 != 0 goto l'))));
    assert.equal(wat.match(/r0 \*= 0x3/g)?.length, 4);
  });
});
