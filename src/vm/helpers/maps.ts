/**
 * The map helpers of the VM, with the kernel's ids (src/catalog/helpers.ts) and answers: negative
 * errnos for refusals (-ENOENT = -2, -EEXIST = -17, -E2BIG = -7, -EINVAL = -22...), NULL (0) for a
 * failed lookup or reserve, pointers that are addresses in the VM's memory.
 *
 * A map argument is a map's identity address (what `r1 = map_fd(N) ll` becomes after
 * MapRuntime.relocate); anything else stops the program with a runtime error, as the kernel's
 * verifier would have refused it.
 *
 * Two helpers need more than a helper can do alone:
 * - tail_call runs the prog_array's program to completion with the same ctx and ends the caller
 *   with its r0 (`HelperContext.stop`), which is what replacing the running program means; the
 *   runner of the target comes from `options.tailCall` (default: the stored program is a function
 *   `(ctx, vm) => r0`). At most 33 tail calls in a chain (MAX_TAIL_CALL_CNT), then the call fails.
 *   With an engine's `HelperContext.tailCall` the engine runs the target instead, and a tail call
 *   made inside a bpf-to-bpf subprogram ends that subprogram only, as in the kernel.
 * - for_each_map_elem calls a BPF function of the running program for each element: it needs
 *   `HelperContext.callFunction(address, args)` from the interpreter (see CallbackContext).
 */
import { helperByName } from '../../catalog/helpers.js';
import { MAP_FLAGS } from '../../catalog/map-types.js';
import { E2BIG, EINVAL, ENOENT, EPERM } from '../../errno.js';
import { TsbpfError } from '../../errors.js';
import {
  type HelperContext,
  type HelperFn,
  MAX_TAIL_CALL_CNT,
  type PreparedProgram,
  withFast,
} from '../interpreter.js';
import { ArrayMap, ProgArrayMap } from '../maps/array.js';
import type { VmMap } from '../maps/base.js';
import { HashMap } from '../maps/hash.js';
import { PerfEventArrayMap } from '../maps/perf.js';
import { RingbufMap } from '../maps/ringbuf.js';
import type { MapRuntime } from '../maps/runtime.js';
import { BPF_F_USER_STACK, StackTraceMap } from '../maps/stack-trace.js';

export { MAX_TAIL_CALL_CNT };

/** A HelperContext that can call a BPF function of the running program (needed by for_each_map_elem). */
export interface CallbackContext extends HelperContext {
  /** Calls the BPF function at `address` (a BPF_PSEUDO_FUNC value) with r1..r5 = args; returns its r0. */
  callFunction?(address: bigint, args: readonly bigint[]): bigint;
}

export interface MapHelperOptions {
  /** Runs `program` (a prog_array element) as a tail call with r1 = ctx; returns its r0. */
  tailCall?: (program: unknown, ctx: bigint, vm: HelperContext) => bigint;
  /**
   * The prepared program of a prog_array element: with it, and an engine whose HelperContext has
   * `tailCall`, the target replaces the running program (the engine loops; no nested run).
   */
  tailTarget?: (program: unknown) => PreparedProgram | undefined;
}

const id = (name: string): number => {
  const h = helperByName(name);
  if (!h) throw new Error(`catalog has no helper ${name}`);
  return h.id;
};

const err = (errno: number) => BigInt(-errno);

/** The map helpers bound to a runtime's maps. */
export function mapHelpers(rt: MapRuntime, options: MapHelperOptions = {}): Map<number, HelperFn> {
  const helpers = new Map<number, HelperFn>();
  let tailDepth = 0;

  const mapArg = (addr: bigint | number, name: string): VmMap => {
    const m = rt.mapAt(addr);
    if (!m) {
      throw new TsbpfError(
        'runtime',
        `${name}: 0x${addr.toString(16)} is not a map (relocate map references with MapRuntime.relocate)`,
      );
    }
    return m;
  };
  const read = (vm: HelperContext, addr: bigint | number, n: number): Uint8Array => vm.memory.read(addr, n);
  const flags32 = (f: bigint): number => (f > 0xffffffffn || f < 0n ? -1 : Number(f));
  // The numeric twins (FastHelperFn) of the helpers on programs' hot paths: arguments below 2^53.
  const flags32n = (f: number): number => (f > 0xffffffff ? -1 : f);

  const lookupN = (m: number, key: number, vm: HelperContext): number => {
    const map = mapArg(m, 'bpf_map_lookup_elem');
    if (map.keySize === 0) return 0;
    return map.progLookup(read(vm, key, map.keySize));
  };
  helpers.set(
    id('map_lookup_elem'),
    withFast(
      ([m, key], vm) => BigInt(lookupN(Number(m), Number(key), vm)),
      (m, key, _c, _d, _e, vm) => lookupN(m, key, vm),
    ),
  );

  const updateN = (
    m: number | bigint,
    key: number | bigint,
    value: number | bigint,
    f: number,
    vm: HelperContext,
  ) => {
    const map = mapArg(m, 'bpf_map_update_elem');
    if (map.keySize === 0) return -EINVAL;
    if (map.flags & MAP_FLAGS.BPF_F_RDONLY_PROG) return -EPERM; // the verifier: "write into map forbidden"
    if (f < 0) return -EINVAL;
    const k = read(vm, key, map.keySize);
    const v = read(vm, value, map.valueSize);
    return map.progUpdate(k, v, f);
  };
  helpers.set(
    id('map_update_elem'),
    withFast(
      ([m, key, value, flags], vm) => BigInt(updateN(m, key, value, flags32(flags), vm)),
      (m, key, value, flags, _e, vm) => updateN(m, key, value, flags32n(flags), vm),
    ),
  );

  const deleteN = (m: number | bigint, key: number | bigint, vm: HelperContext): number => {
    const map = mapArg(m, 'bpf_map_delete_elem');
    if (map.keySize === 0) return -EINVAL;
    if (map.flags & MAP_FLAGS.BPF_F_RDONLY_PROG) return -EPERM;
    return map.progDelete(read(vm, key, map.keySize));
  };
  helpers.set(
    id('map_delete_elem'),
    withFast(
      ([m, key], vm) => BigInt(deleteN(m, key, vm)),
      (m, key, _c, _d, _e, vm) => deleteN(m, key, vm),
    ),
  );

  helpers.set(id('map_lookup_percpu_elem'), ([m, key, cpu], vm) => {
    const map = mapArg(m, 'bpf_map_lookup_percpu_elem');
    if (cpu >= BigInt(map.cpus)) return 0n;
    return BigInt(map.progLookupPercpu(read(vm, key, map.keySize), Number(cpu)));
  });

  helpers.set(id('map_push_elem'), ([m, value, flags], vm) => {
    const map = mapArg(m, 'bpf_map_push_elem');
    const f = flags32(flags);
    if (f < 0) return err(EINVAL);
    return BigInt(map.pushElem(read(vm, value, map.valueSize), f));
  });

  const popPeek = (name: string, pop: boolean): HelperFn => {
    return ([m, value], vm) => {
      const map = mapArg(m, name);
      const out = new Uint8Array(map.valueSize);
      if (map.typeName === 'bloom_filter') {
        if (pop) return BigInt(map.popElem(out));
        return BigInt(map.peekElem(read(vm, value, map.valueSize)));
      }
      vm.memory.assertAccess(value, map.valueSize, true);
      const r = pop ? map.popElem(out) : map.peekElem(out);
      if (r === 0) vm.memory.write(value, out);
      return BigInt(r);
    };
  };
  helpers.set(id('map_pop_elem'), popPeek('bpf_map_pop_elem', true));
  helpers.set(id('map_peek_elem'), popPeek('bpf_map_peek_elem', false));

  const ringbuf = (m: bigint | number, name: string): RingbufMap => {
    const map = mapArg(m, name);
    if (!(map instanceof RingbufMap)) throw new TsbpfError('runtime', `${name}: ${map} is not a ring buffer`);
    return map;
  };
  const outputN = (m: number | bigint, data: number | bigint, size: number, f: number, vm: HelperContext) => {
    const rb = ringbuf(m, 'bpf_ringbuf_output');
    if (size > 0xffffffff) return -E2BIG;
    if (f < 0) return -EINVAL;
    return rb.output(read(vm, data, size), f);
  };
  helpers.set(
    id('ringbuf_output'),
    withFast(
      ([m, data, size, flags], vm) =>
        BigInt(outputN(m, data, size > 0xffffffffn ? 2 ** 32 : Number(size), flags32(flags), vm)),
      (m, data, size, flags, _e, vm) => outputN(m, data, size, flags32n(flags), vm),
    ),
  );
  const reserveN = (m: number | bigint, size: number, flagsZero: boolean): number => {
    const rb = ringbuf(m, 'bpf_ringbuf_reserve');
    if (size > 0xffffffff || !flagsZero) return 0;
    return rb.reserve(size, 0);
  };
  helpers.set(
    id('ringbuf_reserve'),
    withFast(
      ([m, size, flags]) => BigInt(reserveN(m, size > 0xffffffffn ? 2 ** 32 : Number(size), flags === 0n)),
      (m, size, flags) => reserveN(m, size, flags === 0),
    ),
  );
  /** The ring buffer the last commit went to (the usual one: no search over every map). */
  let lastRing: RingbufMap | undefined;
  const commit = (name: string, discard: boolean): HelperFn => {
    const commitN = (a: number, flags: number): number => {
      const rb =
        lastRing && !lastRing.closed && lastRing.owns(a)
          ? lastRing
          : rt.maps().find((x): x is RingbufMap => x instanceof RingbufMap && x.owns(a));
      lastRing = rb;
      if (!rb)
        throw new TsbpfError('runtime', `${name}: 0x${a.toString(16)} is not a reserved ring buffer sample`);
      rb.commit(a, flags, discard);
      return 0;
    };
    return withFast(
      ([sample, flags]) => {
        if (sample >= 0x1_0000_0000n)
          throw new TsbpfError(
            'runtime',
            `${name}: 0x${sample.toString(16)} is not a reserved ring buffer sample`,
          );
        return BigInt(commitN(Number(sample), Number(flags & 0xffffffffn)));
      },
      (sample, flags) => commitN(sample, flags % 2 ** 32),
    );
  };
  helpers.set(id('ringbuf_submit'), commit('bpf_ringbuf_submit', false));
  helpers.set(id('ringbuf_discard'), commit('bpf_ringbuf_discard', true));
  helpers.set(id('ringbuf_query'), ([m, flags]) =>
    ringbuf(m, 'bpf_ringbuf_query').query(flags > 0xffffffffn ? -1 : Number(flags)),
  );

  helpers.set(id('perf_event_output'), ([_ctx, m, flags, data, size], vm) => {
    const map = mapArg(m, 'bpf_perf_event_output');
    if (!(map instanceof PerfEventArrayMap)) return err(EINVAL);
    return BigInt(map.output(flags, read(vm, data, Number(size))));
  });

  helpers.set(id('get_stackid'), ([_ctx, m, flags]) => {
    const map = mapArg(m, 'bpf_get_stackid');
    if (!(map instanceof StackTraceMap)) return err(EINVAL);
    return BigInt(map.getStackId(rt.stack((flags & BPF_F_USER_STACK) !== 0n), flags));
  });

  const tailCall: HelperFn = ([ctx, m, index], vm) => {
    const map = mapArg(m, 'bpf_tail_call');
    if (!(map instanceof ProgArrayMap)) return err(EINVAL);
    const i = Number(index & 0xffffffffn);
    const prog = i < map.maxEntries ? map.program(i) : undefined;
    if (prog === undefined) return err(ENOENT);
    const target = vm.tailCall ? options.tailTarget?.(prog) : undefined;
    if (target !== undefined && vm.tailCall) {
      if (!vm.tailCall(target, ctx)) return err(ENOENT);
      vm.stop(0n);
      return 0n;
    }
    if (tailDepth >= MAX_TAIL_CALL_CNT) return err(ENOENT);
    const run =
      options.tailCall ??
      ((p: unknown, c: bigint, v: HelperContext) => {
        if (typeof p !== 'function')
          throw new TsbpfError(
            'runtime',
            'bpf_tail_call: no tailCall runner for the programs of this prog_array',
          );
        return (p as (ctx: bigint, vm: HelperContext) => bigint)(c, v);
      });
    tailDepth++;
    let r0: bigint;
    try {
      r0 = run(prog, ctx, vm);
    } finally {
      tailDepth--;
    }
    vm.stop(r0);
    return r0;
  };
  const tailHelper = withFast(tailCall, (ctx, m, index, _d, _e, vm) => {
    // the usual case (the engine replaces the program) without BigInts but r1; else the BigInt form
    // (its r0 is the stop value: what the helper returns does not matter then)
    const map = mapArg(m, 'bpf_tail_call');
    if (!(map instanceof ProgArrayMap)) return -EINVAL;
    const i = index % 2 ** 32;
    const prog = i < map.maxEntries ? map.program(i) : undefined;
    if (prog === undefined) return -ENOENT;
    const target = vm.tailCall ? options.tailTarget?.(prog) : undefined;
    if (target !== undefined && vm.tailCall) {
      if (!vm.tailCall(target, BigInt(ctx))) return -ENOENT;
      vm.stop(0n);
      return 0;
    }
    const r = tailCall([BigInt(ctx), BigInt(m), BigInt(index), 0n, 0n], vm);
    return r === 0n || r === BigInt(-ENOENT) ? Number(r) : 0;
  });
  tailHelper.tailTarget = (m, index) => {
    const map = rt.mapAt(m);
    if (!(map instanceof ProgArrayMap)) return undefined;
    const i = index % 2 ** 32;
    const prog = i < map.maxEntries ? map.program(i) : undefined;
    return prog === undefined ? undefined : options.tailTarget?.(prog);
  };
  helpers.set(id('tail_call'), tailHelper);

  helpers.set(id('for_each_map_elem'), ([m, fn, cbCtx, flags], vm: CallbackContext) => {
    const map = mapArg(m, 'bpf_for_each_map_elem');
    if (flags !== 0n) return err(EINVAL);
    if (!vm.callFunction) {
      throw new TsbpfError(
        'runtime',
        'bpf_for_each_map_elem needs an interpreter that can call BPF callbacks (HelperContext.callFunction)',
      );
    }
    if (!(map instanceof HashMap || map instanceof ArrayMap)) return err(EINVAL);
    const keyRegion = vm.memory.allocate(map.keySize, 'for_each_map_elem key', { writable: false });
    let n = 0n;
    try {
      for (const { key, addr } of map.elements()) {
        vm.memory.u8.set(key, keyRegion.base);
        n++;
        const r = vm.callFunction(fn, [m, BigInt(keyRegion.base), BigInt(addr), cbCtx, 0n]);
        if (r !== 0n) break;
      }
    } finally {
      vm.memory.freeRegion(keyRegion);
    }
    return n;
  });

  return helpers;
}
