/**
 * A JIT-compiled program: validation (the interpreter's prepare, so both engines refuse the same
 * programs with the same words), stack frames and the code region allocated once, the module
 * compiled and instantiated over the address space's memory, and the host side of its imports.
 */
import { isTsbpfError, TsbpfError } from '../../errors.js';
import type { Insn } from '../../isa/insn.js';
import {
  BPF_CALL,
  BPF_JMP,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_X,
  cls,
  MAX_BPF_STACK,
  MAX_CALL_FRAMES,
  OPCODE_LD_IMM64,
  op,
  srcBit,
} from '../../isa/opcodes.js';
import {
  DEFAULT_BUDGET,
  type HelperContext,
  type HelperTable,
  type InterpreterOptions,
  type PreparedProgram,
  prepare,
  type RunInput,
  type RunResult,
} from '../interpreter.js';
import { type AddressSpace, defaultAddressSpace, Fault, type Region } from '../memory.js';
import { type CompiledProgram, compileProgram } from './compile.js';
import { renderWat } from './wat.js';

export interface JitOptions extends InterpreterOptions {
  /**
   * Constant blinding, as the kernel's bpf_jit_harden: every immediate of the program appears in
   * the generated code XORed with a random per-program key, and is recovered at run time.
   */
  blind?: boolean;
  /** Testing: compile every function with the irreducible-graph dispatcher instead of blocks and loops. */
  forceDispatch?: boolean;
}

export interface JitStats {
  insns: number;
  blocks: number;
  functions: number;
  /** Functions compiled with the loop + br_table dispatcher (irreducible control flow). */
  dispatch: number;
  loops: number;
  wasmBytes: number;
  /** Milliseconds: eBPF → wasm bytes, and WebAssembly.Module + Instance. */
  translateMs: number;
  instantiateMs: number;
}

// lib ES2022 has no WebAssembly declarations: the little we use.
interface WasmGlobal {
  value: bigint | number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Global: new (descriptor: { value: string; mutable: boolean }, value: bigint | number) => WasmGlobal;
  RuntimeError: new (...args: unknown[]) => Error;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

type Entry = (
  memBase: number,
  memLen: number,
  r1: bigint,
  useR1: number,
  pktBase: number,
  pktLen: number,
) => [bigint, number];

/** Thrown through the wasm frames to end a program early (helper stop(), out-of-range LD_ABS). */
const STOP = Object.freeze({ stop: true });

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

const registry = new FinalizationRegistry<{ space: AddressSpace; regions: Region[] }>((held) => {
  for (const r of held.regions) {
    try {
      held.space.freeRegion(r);
    } catch {
      // already freed
    }
  }
});

export class JitProgram implements PreparedProgram {
  /** The program's instructions (a frozen copy). */
  readonly source: readonly Insn[];
  readonly stats: Readonly<JitStats>;

  #space: AddressSpace;
  #helpers: HelperTable;
  #budget: number;
  #compiled: CompiledProgram;
  #entry: Entry;
  /** The run's packet for LD_ABS/LD_IND when the caller gave one (re-read after every helper call). */
  #packet: { base: number; length: number } | undefined;
  #pkt!: { base: WasmGlobal; len: WasmGlobal };
  #count: WasmGlobal;
  #regions: Region[];
  #held: { space: AddressSpace; regions: Region[] };
  #ctx: HelperContext;
  #pc = 0;
  #stopped = false;
  #stopValue = 0n;
  #busy = false;
  #disposed = false;

  constructor(insns: readonly Insn[], options: JitOptions = {}) {
    // The interpreter's checks, so both engines refuse the same programs with the same message.
    prepare(insns, options);
    this.source = Object.freeze(insns.map((i) => Object.freeze({ ...i })));
    this.#helpers = options.helpers ?? new Map();
    this.#budget = options.budget ?? DEFAULT_BUDGET;
    const space = options.memory ?? defaultAddressSpace();
    this.#space = space;

    let slotCount = 0;
    let calls = false;
    let funcAddr = false;
    for (const insn of insns) {
      slotCount += insn.code === OPCODE_LD_IMM64 ? 2 : 1;
      if (cls(insn.code) === BPF_JMP && op(insn.code) === BPF_CALL) {
        if (srcBit(insn.code) === BPF_X || insn.src === BPF_PSEUDO_CALL) calls = true;
      }
      if (insn.code === OPCODE_LD_IMM64 && insn.src === BPF_PSEUDO_FUNC) funcAddr = calls = true;
    }

    // Stack frames (and the code region function addresses point into) live as long as the program.
    const regions: Region[] = [];
    const frameTops: number[] = [];
    const t0 = performance.now();
    let compiled: CompiledProgram;
    let instance: { exports: Record<string, unknown> };
    let t1: number;
    try {
      for (let f = 0; f < (calls ? MAX_CALL_FRAMES : 1); f++) {
        const r = space.allocate(MAX_BPF_STACK, `stack frame ${f}`, { align: 16 });
        regions.push(r);
        frameTops.push(r.end);
      }
      let codeBase = 0;
      if (funcAddr) {
        const code = space.allocate(slotCount * 8, 'code', { writable: false });
        regions.push(code);
        codeBase = code.base;
      }
      const blind = options.blind ?? false;
      const keyWords = blind ? randomWords() : undefined;
      compiled = compileProgram(insns, {
        budget: this.#budget,
        blindKey: keyWords,
        forceDispatch: options.forceDispatch,
        frameTops,
        codeBase,
      });
      t1 = performance.now();
      const module = new WA.Module(compiled.bytes);
      const key = new WA.Global(
        { value: 'i64', mutable: true },
        keyWords ? (BigInt(keyWords[1] >>> 0) << 32n) | BigInt(keyWords[0] >>> 0) : 0n,
      );
      instance = new WA.Instance(module, {
        host: { ...this.#imports(compiled, codeBase, slotCount), memory: space.memory, key },
      });
    } catch (e) {
      for (const r of regions) space.freeRegion(r);
      throw e;
    }
    const t2 = performance.now();
    this.#compiled = compiled;
    this.#regions = regions;
    this.#entry = instance.exports.run as Entry;
    this.#pkt = {
      base: instance.exports.pkt_base as WasmGlobal,
      len: instance.exports.pkt_len as WasmGlobal,
    };
    this.#count = instance.exports.count as WasmGlobal;
    const cache = {
      rlo: instance.exports.rlo as WasmGlobal,
      rend: instance.exports.rend as WasmGlobal,
      wlo: instance.exports.wlo as WasmGlobal,
      wend: instance.exports.wend as WasmGlobal,
    };
    this.#cache = cache;
    this.#held = { space, regions };
    registry.register(this, this.#held, this);
    const self = this;
    this.#ctx = {
      memory: space,
      stop(r0: bigint) {
        self.#stopped = true;
        self.#stopValue = BigInt.asUintN(64, r0);
      },
      get pc() {
        return self.#pc;
      },
    };
    this.stats = Object.freeze({
      ...compiled.stats,
      wasmBytes: compiled.bytes.length,
      translateMs: t1 - t0,
      instantiateMs: t2 - t1,
    });
    Object.freeze(this);
  }

  #cache: { rlo: WasmGlobal; rend: WasmGlobal; wlo: WasmGlobal; wend: WasmGlobal };

  run(input: RunInput = {}): RunResult {
    if (this.#disposed) throw new TsbpfError('usage', 'the program was disposed');
    if (this.#busy) {
      throw new TsbpfError(
        'runtime',
        'a JIT-compiled program cannot be run again from inside one of its helper calls',
      );
    }
    const space = this.#space;
    let memRegion: Region | undefined;
    if (input.mem !== undefined) memRegion = space.allocate(input.mem.length, 'mem', { init: input.mem });
    this.#busy = true;
    this.#stopped = false;
    try {
      let r0: bigint;
      let insnCount: number;
      try {
        const memBase = memRegion?.base ?? 0;
        const memLen = memRegion?.size ?? 0;
        const pkt = input.packet;
        this.#packet = pkt;
        const r1 = input.r1;
        const out = this.#entry(
          memBase,
          memLen,
          r1 ?? 0n,
          r1 === undefined ? 0 : 1,
          pkt ? pkt.base : memBase,
          pkt ? pkt.length : memLen,
        );
        r0 = out[0];
        insnCount = out[1];
      } catch (e) {
        if (e !== STOP) throw translate(e);
        r0 = this.#stopValue;
        insnCount = Number(this.#count.value);
      }
      const result: RunResult = { r0: r0 < 0n ? BigInt.asUintN(64, r0) : r0, insnCount };
      if (memRegion) result.mem = space.u8.slice(memRegion.base, memRegion.end);
      return result;
    } finally {
      this.#busy = false;
      if (memRegion) space.freeRegion(memRegion);
    }
  }

  /** Frees the stack frames (and code region) now instead of when the program is garbage-collected. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    registry.unregister(this);
    for (const r of this.#regions) this.#space.freeRegion(r);
  }

  /** The generated WebAssembly as text, annotated with the eBPF instructions. */
  wat(): string {
    return renderWat(this.#compiled, this.source);
  }

  /** A copy of the generated module's bytes. */
  wasm(): Uint8Array {
    return this.#compiled.bytes.slice();
  }

  toString(): string {
    return `JitProgram(${this.source.length} insns, ${this.stats.wasmBytes} bytes of wasm)`;
  }

  #imports(compiled: CompiledProgram, codeBase: number, slotCount: number): Record<string, unknown> {
    const space = this.#space;
    const helpers = this.#helpers;
    const u = (v: bigint) => (v < 0n ? BigInt.asUintN(64, v) : v);
    const fail = (pc: number, msg: string): never => {
      throw new TsbpfError('runtime', `pc ${pc}: ${msg}`, { pc });
    };
    const callHelper = (id: number, pc: number, a: bigint, b: bigint, c: bigint, d: bigint, e: bigint) => {
      const fn = helpers.get(id);
      if (fn === undefined) fail(pc, `invalid func unknown#${id}`);
      this.#pc = pc;
      let r: bigint;
      try {
        r = (fn as NonNullable<typeof fn>)([u(a), u(b), u(c), u(d), u(e)], this.#ctx);
      } catch (err) {
        if (err === STOP) throw err;
        if (err instanceof TsbpfError) {
          if (err.details.pc === undefined)
            throw new TsbpfError(err.code, `pc ${pc}: ${err.message}`, { ...err.details, pc });
          throw err;
        }
        return fail(pc, `helper ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (typeof r !== 'bigint') fail(pc, `helper ${id} returned ${typeof r}, not a bigint`);
      if (this.#stopped) throw STOP;
      const pkt = this.#packet;
      if (pkt !== undefined) {
        // a helper may have moved or resized the packet
        this.#pkt.base.value = pkt.base;
        this.#pkt.len.value = pkt.length;
      }
      return r;
    };
    return {
      helper: callHelper,
      access: (pc: number, lo: number, hi: number, sizeWrite: number) => {
        const sz = sizeWrite & 15;
        const write = (sizeWrite & 16) !== 0;
        if (hi === 0 && space.check(lo >>> 0, sz, write) === Fault.None) {
          const c = this.#cache;
          c.rlo.value = BigInt(space.lastBase);
          c.rend.value = BigInt(space.lastEnd);
          if (space.lastWritable) {
            c.wlo.value = BigInt(space.lastBase);
            c.wend.value = BigInt(space.lastEnd);
          }
          return;
        }
        const addr = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
        fail(pc, space.describeFault(addr, sz, write));
      },
      trap: (k: number) => {
        const msg = compiled.traps[k];
        const pc = Number(/^pc (\d+)/.exec(msg)?.[1] ?? 0);
        throw new TsbpfError('runtime', msg, { pc });
      },
      budget: (block: number) => {
        const pcs = compiled.blockPcs[block];
        const count = Number(this.#count.value);
        const k = Math.floor(this.#budget) - (count - pcs.length);
        const pc = pcs[Math.min(Math.max(k, 0), pcs.length - 1)];
        throw new TsbpfError('runtime', `pc ${pc}: instruction budget of ${this.#budget} exhausted`, { pc });
      },
      callx: (lo: number, hi: number, pc: number) => {
        const rel = (lo >>> 0) - codeBase;
        if (hi === 0 && codeBase !== 0 && rel >= 0 && rel < slotCount * 8 && rel % 8 === 0) {
          const idx = compiled.tableIndex.get(rel / 8);
          if (idx !== undefined) return idx;
          fail(
            pc,
            `callx to ${hex(lo >>> 0)}: pc ${rel / 8} is not the entry of a function the JIT compiled`,
          );
        }
        if (hi === 0 && helpers.has(lo >>> 0)) return -1;
        const v = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
        return fail(pc, `callx to ${hex(v)}, which is neither a function address nor a known helper`);
      },
      stop0: () => {
        this.#stopValue = 0n;
        throw STOP;
      },
      deep: (pc: number, depth: number) => fail(pc, `the call stack of ${depth + 2} frames is too deep`),
    };
  }
}

function translate(e: unknown): unknown {
  if (isTsbpfError(e)) return e;
  if (e instanceof WA.RuntimeError) return new TsbpfError('runtime', `internal JIT error: ${e.message}`);
  if (e instanceof RangeError && /call stack/i.test(e.message))
    return new TsbpfError('runtime', `the host stack overflowed: ${e.message}`);
  return e;
}

function randomWords(): [number, number] {
  const a = new Uint32Array(2);
  globalThis.crypto.getRandomValues(a);
  return [a[0] | 0, a[1] | 0];
}

/** Compiles a program to WebAssembly. Same options and errors as the interpreter's prepare(). */
export function prepareJit(insns: readonly Insn[], options: JitOptions = {}): JitProgram {
  return new JitProgram(insns, options);
}

/** The generated WebAssembly of a JIT-compiled program as text (a `bpftool prog dump jited` view). */
export function dumpWat(program: PreparedProgram): string {
  if (!(program instanceof JitProgram)) {
    throw new TsbpfError('usage', 'dumpWat needs a program prepared with the JIT engine');
  }
  return program.wat();
}
