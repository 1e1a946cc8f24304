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
  followChain,
  type HelperContext,
  type HelperTable,
  type InterpreterOptions,
  MAX_TAIL_CALL_CNT,
  newChain,
  type PreparedProgram,
  prepare,
  type RunInput,
  type RunResult,
  runSubprogTail,
  type TailChain,
} from '../interpreter.js';
import type { MapInline } from '../maps/inline.js';
import { type AddressSpace, defaultAddressSpace, Fault, FREE_EPOCH_ADDR, type Region } from '../memory.js';
import { accessSites, type CompiledProgram, compileProgram } from './compile.js';
import { renderWat } from './wat.js';

export interface JitOptions extends InterpreterOptions {
  /**
   * Constant blinding, as the kernel's bpf_jit_harden: every immediate of the program appears in
   * the generated code XORed with a random per-program key, and is recovered at run time.
   */
  blind?: boolean;
  /** Testing: compile every function with the irreducible-graph dispatcher instead of blocks and loops. */
  forceDispatch?: boolean;
  /**
   * Map lookups the JIT may inline: for the identity address of a map (a constant in r1 at a call of
   * bpf_map_lookup_elem), how to find a value without the generic helper. The VM backend passes its
   * maps' answers; without it every lookup is a helper call.
   */
  inlineMap?: (address: number) => MapInline | undefined;
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
interface WasmTable {
  readonly length: number;
  grow(delta: number): number;
  set(index: number, value: unknown): void;
}
interface WasmApi {
  Table: new (descriptor: { element: string; initial: number }) => WasmTable;
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
type Repeat = (n: number, r1: bigint) => [bigint, number, number];
type Callback = (index: number, a: bigint, b: bigint, c: bigint, d: bigint, e: bigint, r10: bigint) => bigint;

const hex = (n: number | bigint) => `0x${n.toString(16)}`;
const u64 = (v: bigint) => (v < 0n ? BigInt.asUintN(64, v) : v);

function freeAll(space: AddressSpace, regions: readonly Region[]): void {
  for (const r of regions) {
    try {
      space.freeRegion(r);
    } catch {
      // already freed
    }
  }
}

const registry = new FinalizationRegistry<{ space: AddressSpace; regions: Region[] }>((held) =>
  freeAll(held.space, held.regions),
);

/**
 * What the JIT-compiled programs of one address space share for tail calls inside WebAssembly:
 * a funcref table of program entries (a program gets a slot when it is first tail-called) and the
 * tail-call globals every module imports (compile.ts G.tail*). A tail call to a program of the
 * table sets tail_next and ends the caller; the `run` function of the program that started the
 * run calls the target through the table, in a loop, so a chain never comes back to the host.
 * Runs nested in a helper (depth > 1) and targets outside the table take the host's chain
 * (followChain), as every tail call did before.
 */
interface Linker {
  table: WasmTable;
  next: WasmGlobal;
  r1: WasmGlobal;
  cnt: WasmGlobal;
  pktBase: WasmGlobal;
  pktLen: WasmGlobal;
  /** Runs in progress (runLink/runRepeat) on the space's JIT programs. */
  depth: number;
  /** The chain of the innermost run in progress (where a tail call outside the table goes). */
  chain: TailChain | undefined;
  /**
   * Whether tail calls of the run in progress may go through the table: not when it runs over
   * `mem` without a packet (its targets read no packet, as followChain runs them).
   */
  inline: boolean;
  free: number[];
}

const linkers = new WeakMap<AddressSpace, Linker>();

function linkerOf(space: AddressSpace): Linker {
  let l = linkers.get(space);
  if (l === undefined) {
    const g = (value: string) => new WA.Global({ value, mutable: true }, value === 'i64' ? 0n : 0);
    l = {
      table: new WA.Table({ element: 'anyfunc', initial: 1 }), // slot 0: no program
      next: g('i32'),
      r1: g('i64'),
      cnt: g('i32'),
      pktBase: g('i32'),
      pktLen: g('i32'),
      depth: 0,
      chain: undefined,
      inline: true,
      free: [],
    };
    linkers.set(space, l);
  }
  return l;
}

/** What a re-entrant run saves of the outer run and puts back afterwards. */
interface Saved {
  frames: Uint8Array;
  count: bigint | number;
  pktBase: bigint | number;
  pktLen: bigint | number;
  packet: { base: number; length: number } | undefined;
  stopped: boolean;
  stopValue: bigint;
  pc: number;
}

export class JitProgram implements PreparedProgram {
  /** The program's instructions (a frozen copy). */
  readonly source: readonly Insn[];
  readonly stats: Readonly<JitStats>;

  #space: AddressSpace;
  #helpers: HelperTable;
  #budget: number;
  #compiled: CompiledProgram;
  #entry: Entry;
  #repeat: Repeat;
  #cb: Callback | undefined;
  /** The run's packet for LD_ABS/LD_IND when the caller gave one (re-read after every helper call). */
  #packet: { base: number; length: number } | undefined;
  #pkt!: { base: WasmGlobal; len: WasmGlobal };
  #count: WasmGlobal;
  #stop: WasmGlobal;
  /** r0 of a stopped run (the module returns it); #stopValueSet mirrors it, to write it only on change. */
  #stopValueG: WasmGlobal;
  #stopValueSet = 0n;
  #linker: Linker;
  /** The program's slot in the linker's table (0: none yet). */
  #slot = 0;
  #prog: unknown;
  #regions: Region[];
  /** [lo, hi) of the main stack frames (saved around a re-entrant run). */
  #framesLo: number;
  #framesHi: number;
  /** Stack frames of callbacks, per nesting level (level 1 = a callback of the program...). */
  #cbFrames: Region[][] = [];
  #cbLevel = 0;
  #held: { space: AddressSpace; regions: Region[] };
  #ctx: HelperContext;
  /** The helper context inside callbacks: no tail calls there. */
  #cbCtx: HelperContext;
  #codeBase: number;
  #pc = 0;
  #stopped = false;
  #stopValue = 0n;
  /** A tail call a subprogram just made (compile.ts subTailPcs): run when its helper returns. */
  #subTail: { target: PreparedProgram; r1: bigint } | undefined;
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
    const linker = linkerOf(space);
    this.#linker = linker;

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

    // Stack frames (side by side: a callee's frame is its caller's plus a fixed stride) and the code
    // region function addresses point into live as long as the program.
    let regions: Region[] = [];
    const t0 = performance.now();
    let compiled: CompiledProgram;
    let instance: { exports: Record<string, unknown> };
    let t1: number;
    try {
      regions = space.allocateAdjacent(
        calls ? MAX_CALL_FRAMES : 1,
        MAX_BPF_STACK,
        (f) => `stack frame ${f}`,
        {
          guard: MAX_BPF_STACK,
        },
      );
      const frameTops = regions.map((r) => r.end);
      let codeBase = 0;
      if (funcAddr) {
        const code = space.allocate(slotCount * 8, 'code', { writable: false });
        regions.push(code);
        codeBase = code.base;
      }
      this.#codeBase = codeBase;
      const sites = accessSites(insns).count;
      const siteTable = space.allocate(Math.max(sites, 1) * 16, 'JIT access cache', { writable: false });
      regions.push(siteTable);
      const blind = options.blind ?? false;
      const keyWords = blind ? randomWords() : undefined;
      compiled = compileProgram(insns, {
        budget: options.verified ? Number.POSITIVE_INFINITY : this.#budget,
        count: !options.verified,
        blindKey: keyWords,
        forceDispatch: options.forceDispatch,
        frameTops,
        codeBase,
        inlineMap: options.inlineMap,
        siteBase: siteTable.base,
        epochAddr: FREE_EPOCH_ADDR,
        fastHelpers: new Set([...this.#helpers].filter(([, fn]) => fn.fast !== undefined).map(([id]) => id)),
        tailHelper: [...this.#helpers].find(([, fn]) => fn.tailTarget !== undefined)?.[0],
      });
      t1 = performance.now();
      const module = new WA.Module(compiled.bytes);
      const key = new WA.Global(
        { value: 'i64', mutable: true },
        keyWords ? (BigInt(keyWords[1] >>> 0) << 32n) | BigInt(keyWords[0] >>> 0) : 0n,
      );
      instance = new WA.Instance(module, {
        host: {
          ...this.#imports(compiled, codeBase, slotCount, siteTable.base),
          memory: space.memory,
          key,
          chain: linker.table,
          tail_next: linker.next,
          tail_r1: linker.r1,
          tail_cnt: linker.cnt,
          tail_pkt_base: linker.pktBase,
          tail_pkt_len: linker.pktLen,
        },
      });
    } catch (e) {
      freeAll(space, regions);
      throw e;
    }
    const t2 = performance.now();
    this.#framesLo = regions[0].base;
    this.#framesHi = regions[calls ? MAX_CALL_FRAMES - 1 : 0].end;
    this.#compiled = compiled;
    this.#regions = regions;
    const ex = instance.exports;
    this.#entry = ex.run as Entry;
    this.#prog = ex.prog;
    this.#stopValueG = ex.stop_value as WasmGlobal;
    this.#repeat = ex.repeat as Repeat;
    this.#cb = ex.cb as Callback | undefined;
    this.#pkt = { base: ex.pkt_base as WasmGlobal, len: ex.pkt_len as WasmGlobal };
    this.#count = ex.count as WasmGlobal;
    this.#stop = ex.stop as WasmGlobal;
    this.#held = { space, regions };
    registry.register(this, this.#held, this);
    const self = this;
    const stop = (r0: bigint) => {
      self.#stopped = true;
      self.#stopValue = BigInt.asUintN(64, r0);
    };
    const callFunction = (address: bigint, args: readonly bigint[]) => self.#callFunction(address, args);
    this.#ctx = {
      memory: space,
      stop,
      get pc() {
        return self.#pc;
      },
      callFunction,
      tailCall(target: PreparedProgram, r1: bigint): boolean {
        // chainTailCall's rule over the linker's count (a run without a chain starts it at the limit)
        const l = self.#linker;
        const cnt = l.cnt.value as number;
        if (cnt >= MAX_TAIL_CALL_CNT) return false;
        const chain = l.chain;
        if (chain === undefined) return false;
        l.cnt.value = cnt + 1;
        if (self.#compiled.subTailPcs.has(self.#pc)) {
          // inside a subprogram: only its frame goes (#runSubTail)
          self.#subTail = { target, r1 };
          return true;
        }
        if (l.depth === 1 && l.inline && target instanceof JitProgram && target.#link(l)) {
          // inside WebAssembly: the run's `run` function calls the target through the table
          const pkt = self.#packet;
          target.#packet = pkt;
          l.pktBase.value = pkt ? pkt.base : 0;
          l.pktLen.value = pkt ? pkt.length : 0;
          l.r1.value = r1;
          l.next.value = target.#slot;
        } else {
          chain.next = target;
          chain.r1 = r1;
          l.next.value = -1;
        }
        return true;
      },
    };
    this.#cbCtx = {
      memory: space,
      stop,
      get pc() {
        return self.#pc;
      },
      callFunction,
    };
    this.stats = Object.freeze({
      ...compiled.stats,
      wasmBytes: compiled.bytes.length,
      translateMs: t1 - t0,
      instantiateMs: t2 - t1,
    });
    Object.freeze(this);
  }

  run(input: RunInput = {}): RunResult {
    const chain = newChain();
    const r = this.runLink(input, chain);
    return chain.next === undefined ? r : followChain(r, chain, input);
  }

  /** One program of a tail-call chain (run() follows the chain). */
  runLink(input: RunInput, chain: TailChain | undefined): RunResult {
    if (this.#disposed) throw new TsbpfError('usage', 'the program was disposed');
    const space = this.#space;
    const saved = this.#busy ? this.#save() : undefined;
    let memRegion: Region | undefined;
    if (input.mem !== undefined) memRegion = space.allocate(input.mem.length, 'mem', { init: input.mem });
    this.#busy = true;
    this.#stopped = false;
    const l = this.#linker;
    const outer = { cnt: l.cnt.value, next: l.next.value, chain: l.chain, inline: l.inline };
    l.depth++;
    l.cnt.value = chain === undefined ? MAX_TAIL_CALL_CNT : chain.count;
    l.next.value = 0;
    l.chain = chain;
    l.inline = memRegion === undefined || input.packet !== undefined;
    try {
      const memBase = memRegion?.base ?? 0;
      const memLen = memRegion?.size ?? 0;
      const pkt = input.packet;
      this.#packet = pkt;
      const r1 = input.r1;
      let out: [bigint, number];
      try {
        out = this.#entry(
          memBase,
          memLen,
          r1 ?? 0n,
          r1 === undefined ? 0 : 1,
          pkt ? pkt.base : memBase,
          pkt ? pkt.length : memLen,
        );
      } catch (e) {
        throw translate(e);
      }
      if (chain !== undefined) chain.count = l.cnt.value as number;
      const result: RunResult = { r0: u64(out[0]), insnCount: out[1] };
      if (memRegion) result.mem = space.u8.slice(memRegion.base, memRegion.end);
      return result;
    } finally {
      l.depth--;
      l.cnt.value = outer.cnt;
      l.next.value = outer.next;
      l.chain = outer.chain;
      l.inline = outer.inline;
      if (memRegion) space.freeRegion(memRegion);
      if (saved) this.#restore(saved);
      else this.#busy = false;
    }
  }

  /**
   * run(input) `repeat` times with the loop inside the module (one JS→wasm transition for all of
   * them, as the kernel loops inside the kernel); state carries over from run to run.
   */
  runRepeat(input: RunInput, repeat: number): RunResult {
    if (repeat <= 1 || input.mem !== undefined || this.#busy || this.#disposed) {
      let r = this.run(input);
      for (let i = 1; i < repeat; i++) r = this.run(input);
      return r;
    }
    const r1 = input.r1 ?? 0n;
    const pkt = input.packet;
    let left = repeat;
    let result: RunResult = { r0: 0n, insnCount: 0 };
    const chain = newChain();
    let pktSet = false;
    const l = this.#linker;
    const outer = { cnt: l.cnt.value, next: l.next.value, chain: l.chain, inline: l.inline };
    while (left > 0) {
      chain.count = 0;
      chain.next = undefined;
      this.#packet = pkt;
      if (!pktSet) {
        // once, and again after a tail chain ran (a re-entrant run may have restored older values)
        this.#pkt.base.value = pkt ? pkt.base : 0;
        this.#pkt.len.value = pkt ? pkt.length : 0;
        pktSet = true;
      }
      this.#busy = true;
      this.#stopped = false;
      l.depth++;
      l.next.value = 0;
      l.chain = chain;
      l.inline = true;
      let out: [bigint, number, number];
      try {
        out = this.#repeat(left, r1);
      } catch (e) {
        throw translate(e);
      } finally {
        this.#busy = false;
        l.depth--;
        chain.count = l.cnt.value as number;
        l.cnt.value = outer.cnt;
        l.next.value = outer.next;
        l.chain = outer.chain;
        l.inline = outer.inline;
      }
      left = out[2];
      result = { r0: u64(out[0]), insnCount: out[1] };
      if (chain.next !== undefined) {
        result = followChain(result, chain, input);
        pktSet = false;
      }
    }
    return result;
  }

  /** Frees the stack frames (and code region) now instead of when the program is garbage-collected. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    registry.unregister(this);
    if (this.#slot !== 0) {
      this.#linker.table.set(this.#slot, null);
      this.#linker.free.push(this.#slot);
      this.#slot = 0;
    }
    freeAll(this.#space, this.#regions);
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

  /** A helper stopped the program: the module returns (r0 = stop_value) after the call. */
  #stopNow(): void {
    this.#stopped = false;
    this.#stop.value = 1;
    const v = this.#stopValue;
    if (v !== this.#stopValueSet) {
      this.#stopValueG.value = v;
      this.#stopValueSet = v;
    }
  }

  /**
   * A tail call made inside a subprogram (#subTail): the target, and the chain it starts, run now on
   * the run's chain; the subprogram then returns their r0 to its caller (stop = 2, stop_value = r0),
   * as the kernel unwinds the subprogram's frame only.
   */
  #runSubTail(): void {
    const t = this.#subTail as { target: PreparedProgram; r1: bigint };
    this.#subTail = undefined;
    const l = this.#linker;
    const chain = l.chain as TailChain;
    chain.count = l.cnt.value as number;
    chain.next = t.target;
    chain.r1 = t.r1;
    const pc = this.#pc;
    const r = runSubprogTail(chain, this.#packet);
    l.cnt.value = chain.count;
    this.#pc = pc;
    this.#stopped = false;
    if (r.insnCount !== 0) this.#count.value = (this.#count.value as bigint) + BigInt(r.insnCount);
    this.#stop.value = 2;
    this.#stopValueG.value = r.r0;
    this.#stopValueSet = r.r0;
  }

  /** Gives the program a slot in the linker's table (false: it cannot be a target in there). */
  #link(l: Linker): boolean {
    if (this.#linker !== l || this.#disposed) return false;
    if (this.#slot === 0) {
      const slot = l.free.pop() ?? l.table.grow(1);
      l.table.set(slot, this.#prog);
      this.#slot = slot;
    }
    return true;
  }

  #save(): Saved {
    return {
      frames: this.#space.u8.slice(this.#framesLo, this.#framesHi),
      count: this.#count.value,
      pktBase: this.#pkt.base.value,
      pktLen: this.#pkt.len.value,
      packet: this.#packet,
      stopped: this.#stopped,
      stopValue: this.#stopValue,
      pc: this.#pc,
    };
  }

  #restore(s: Saved): void {
    this.#space.u8.set(s.frames, this.#framesLo);
    this.#count.value = s.count;
    this.#pkt.base.value = s.pktBase;
    this.#pkt.len.value = s.pktLen;
    this.#packet = s.packet;
    this.#stopped = s.stopped;
    this.#stopValue = s.stopValue;
    this.#pc = s.pc;
    this.#stop.value = 0;
  }

  /** HelperContext.callFunction: runs a function of this program (a callback) to its exit. */
  #callFunction(address: bigint, args: readonly bigint[]): bigint {
    const pc = this.#pc;
    const rel = address >= BigInt(this.#codeBase) ? Number(address - BigInt(this.#codeBase)) : -1;
    const idx =
      this.#codeBase !== 0 && rel >= 0 && rel % 8 === 0 ? this.#compiled.tableIndex.get(rel / 8) : undefined;
    const cb = this.#cb;
    if (idx === undefined || cb === undefined) {
      throw new TsbpfError(
        'runtime',
        `pc ${pc}: callback ${hex(address)} is not a function of this program`,
        {
          pc,
        },
      );
    }
    const level = this.#cbLevel + 1;
    let frames = this.#cbFrames[level];
    if (frames === undefined) {
      frames = this.#space.allocateAdjacent(
        MAX_CALL_FRAMES,
        MAX_BPF_STACK,
        (f) => `callback stack frame ${f}`,
        { guard: MAX_BPF_STACK },
      );
      this.#cbFrames[level] = frames;
      this.#regions.push(...frames);
    }
    this.#space.u8.fill(0, frames[0].base, frames[MAX_CALL_FRAMES - 1].end);
    const count = this.#count.value;
    const stopped = this.#stopped;
    const stopValue = this.#stopValue;
    this.#count.value = 0n;
    this.#stopped = false;
    this.#cbLevel = level;
    try {
      const a = (k: number) => args[k] ?? 0n;
      const r = cb(idx, a(0), a(1), a(2), a(3), a(4), BigInt(frames[0].end));
      return this.#stopped ? this.#stopValue : u64(r);
    } finally {
      this.#cbLevel = level - 1;
      this.#count.value = count;
      this.#stopped = stopped;
      this.#stopValue = stopValue;
      this.#stop.value = 0;
      this.#pc = pc;
    }
  }

  #imports(
    compiled: CompiledProgram,
    codeBase: number,
    slotCount: number,
    siteBase: number,
  ): Record<string, unknown> {
    const space = this.#space;
    const helpers = this.#helpers;
    const fail = (pc: number, msg: string): never => {
      throw new TsbpfError('runtime', `pc ${pc}: ${msg}`, { pc });
    };
    const callHelper = (id: number, pc: number, a: bigint, b: bigint, c: bigint, d: bigint, e: bigint) => {
      const fn = helpers.get(id);
      if (fn === undefined) fail(pc, `invalid func unknown#${id}`);
      this.#pc = pc;
      let r: bigint;
      try {
        r = (fn as NonNullable<typeof fn>)(
          [u64(a), u64(b), u64(c), u64(d), u64(e)],
          this.#cbLevel === 0 ? this.#ctx : this.#cbCtx,
        );
      } catch (err) {
        if (err instanceof TsbpfError) {
          if (err.details.pc === undefined)
            throw new TsbpfError(err.code, `pc ${pc}: ${err.message}`, { ...err.details, pc });
          throw err;
        }
        return fail(pc, `helper ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (typeof r !== 'bigint') fail(pc, `helper ${id} returned ${typeof r}, not a bigint`);
      if (this.#subTail !== undefined) this.#runSubTail();
      if (this.#stopped) this.#stopNow();
      const pkt = this.#packet;
      if (pkt !== undefined) {
        // a helper may have moved or resized the packet
        this.#pkt.base.value = pkt.base;
        this.#pkt.len.value = pkt.length;
      }
      return r;
    };
    /** A helper's numeric twin (HelperFn.fast): the arguments are exact numbers below 2^53. */
    const callFast = (id: number, pc: number, a: number, b: number, c: number, d: number, e: number) => {
      const fn = helpers.get(id)?.fast;
      if (fn === undefined) return fail(pc, `invalid func unknown#${id}`);
      this.#pc = pc;
      let r: number;
      try {
        r = fn(a, b, c, d, e, this.#cbLevel === 0 ? this.#ctx : this.#cbCtx);
      } catch (err) {
        if (err instanceof TsbpfError) {
          if (err.details.pc === undefined)
            throw new TsbpfError(err.code, `pc ${pc}: ${err.message}`, { ...err.details, pc });
          throw err;
        }
        return fail(pc, `helper ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (this.#subTail !== undefined) this.#runSubTail();
      if (this.#stopped) this.#stopNow();
      const pkt = this.#packet;
      if (pkt !== undefined) {
        this.#pkt.base.value = pkt.base;
        this.#pkt.len.value = pkt.length;
      }
      return r;
    };
    const lookups = compiled.lookups;
    const tailTarget = [...helpers.values()].find((fn) => fn.tailTarget !== undefined)?.tailTarget;
    const linker = this.#linker;
    return {
      tail: (map: number, index: number): number => {
        // a tail call the module can take itself: the outermost run on the space (no program's
        // frames are live but the caller's), not a callback, the target a program of the table
        const l = linker;
        if (l.depth !== 1 || !l.inline || this.#cbLevel !== 0 || tailTarget === undefined) return 0;
        const t = tailTarget(map, index);
        if (!(t instanceof JitProgram) || !t.#link(l)) return 0;
        t.#packet = this.#packet;
        return t.#slot;
      },
      helper: callHelper,
      fast: callFast,
      lookup: (k: number, lo: number, hi: number, pcFlag: number): number => {
        const l = lookups[k];
        if (pcFlag < 0 || (hi === 0 && space.check(lo >>> 0, l.keySize, false) === Fault.None))
          return l.lookup(lo >>> 0);
        const pc = pcFlag & 0x7fffffff;
        // a bad key pointer: the generic helper says why, as it would have
        const key = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
        callHelper(1, pc, BigInt(l.map), key, 0n, 0n, 0n);
        return fail(pc, 'internal JIT error: a map lookup failed without an error');
      },
      access: (pc: number, lo: number, hi: number, sizeWrite: number) => {
        const sz = sizeWrite & 15;
        const write = (sizeWrite & 16) !== 0;
        if (hi === 0 && space.check(lo >>> 0, sz, write) === Fault.None) {
          // the site's cache entry: lo = region base, lim = end - size - base + 1 (hit: a - lo < lim)
          const entry = siteBase + (sizeWrite >>> 5) * 16;
          const v = space.view;
          v.setUint32(entry, space.lastBase, true);
          v.setUint32(entry + 4, 0, true);
          v.setUint32(entry + 8, space.lastEnd - sz - space.lastBase + 1, true);
          v.setUint32(entry + 12, 0, true);
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
        // an out-of-range LD_ABS/LD_IND: the kernel ends the program with r0 = 0
        this.#stopped = true;
        this.#stopValue = 0n;
        this.#stopNow();
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
