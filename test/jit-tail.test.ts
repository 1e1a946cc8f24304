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
        const first = prog.run({ r1: BigInt(ctx.base) });
        const r0s = [
          first.r0,
          prog.runRepeat ? prog.runRepeat({ r1: BigInt(ctx.base) }, 3).r0 : -1n,
          prog.run({ mem: new Uint8Array(8) }).r0,
        ];
        const v = counter.lookup(u32(0)) as Uint8Array;
        const count = new DataView(v.buffer, v.byteOffset).getBigUint64(0, true);
        rt.close();
        return { r0s, count, insns: first.insnCount };
      });
      assert.deepEqual(results[0], results[1]);
      assert.equal(results[1].count, 5n * 34n);
      // from the main program the 34th run's r0 is the result (the failed call's -ENOENT + 1000);
      // from a subprogram each tail call ends only the subprogram, so all 34 levels add their 1000
      // (the kernel's x86-64 JIT)
      const r0 = viaSub ? 7n + 34n * 1000n : 998n;
      assert.deepEqual(results[1].r0s, [r0, r0, r0]);
    });
  }

  test('tail_subprog.o: a tail call in a subprogram returns to its caller (kernel-measured results)', () => {
    // packet byte 0: the slot tsp_sub tail-calls (bits 0-1), then a tail call from the main program
    // (bit 2); results and hit counts as BPF_PROG_TEST_RUN gave them on Linux 6.18 (x86-64 JIT)
    const expected: [number, number, string][] = [
      [0, 41, '0,1,1,40,0,0,0,0'],
      [1, 3, '0,1,0,2,1,0,0,0'],
      [2, 74, '0,34,1,73,0,33,33,0'],
      [4, 73, '0,34,2,40,0,33,33,0'],
      [5, 72, '0,33,1,2,1,32,32,0'],
    ];
    for (const engine of ENGINES) {
      for (const [op, retval, hits] of expected) {
        const c = vmBackend({ engine }).load(
          readObject(loadFixture('tail_subprog'), { path: 'tail_subprog.o' }),
        );
        try {
          const data = ipv4Packet();
          data[0] = op;
          const r = c.program('tsp_entry').testRun({ data });
          const got = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => {
            const v = c.map('tsp_hits').lookup(u32(k)) as Uint8Array;
            return new DataView(v.buffer, v.byteOffset).getBigUint64(0, true);
          });
          assert.deepEqual([r.retval, got.join(',')], [retval, hits], `${engine}, op ${op}`);
        } finally {
          c.close();
        }
      }
    }
  });

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
