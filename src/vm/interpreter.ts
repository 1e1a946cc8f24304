/**
 * The eBPF interpreter: RFC 9669 semantics with the Linux kernel's answers where the RFC leaves a
 * choice (division by zero, INT_MIN / -1, shift counts, 32-bit results zero-extended).
 *
 * `prepare` checks and pre-decodes a program once into typed arrays; `run` executes it. Registers
 * are pairs of 32-bit halves (LO/HI Int32Arrays), so the common instructions never touch BigInt.
 * Every immediate lives in a constant "register" slot of its own (index CONST_BASE + pc), so an
 * instruction with an immediate operand runs the same code as its register form.
 * Memory is the VM address space of memory.ts; every access is checked against its regions.
 */
import { TsbpfError } from '../errors.js';
import { type Insn, validate } from '../isa/insn.js';
import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_OR,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_REG_FP,
  BPF_RSH,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_TO_BE,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  cls,
  MAX_BPF_STACK,
  MAX_CALL_FRAMES,
  mode,
  OPCODE_LD_IMM64,
  op,
  SIZE_BYTES,
  size,
  srcBit,
} from '../isa/opcodes.js';
import { type AddressSpace, defaultAddressSpace, Fault, type Region } from './memory.js';

// ---------------------------------------------------------------------------------------------
// Public API

export type HelperFn = ((
  args: readonly [bigint, bigint, bigint, bigint, bigint],
  vm: HelperContext,
) => bigint) & {
  /** The helper's numeric twin, for engines that avoid BigInts on the hot path (FastHelperFn). */
  fast?: FastHelperFn;
  /**
   * bpf_tail_call only: the program a tail call through prog_array `map` (a map address) at
   * `index` would run, when that is a PreparedProgram; undefined for every other outcome (not a
   * prog_array, an empty slot, a program the engine cannot replace the caller with), which the
   * helper itself then handles. No effects: an engine that can jump to the target itself asks this
   * first (the JIT does, to run a tail-call chain inside WebAssembly), and calls the helper when
   * the answer is undefined or it cannot take the jump.
   */
  tailTarget?: (map: number, index: number) => PreparedProgram | undefined;
};
/**
 * A helper's numeric twin: the same helper with the same effects and errors, called with the five
 * arguments as exact numbers when each of them is below 2^53 (unsigned), returning its r0 as a
 * number (an integer in (-2^53, 2^53)). The JIT calls it whenever the arguments fit and the BigInt
 * form otherwise; the interpreter always calls the BigInt form.
 */
export type FastHelperFn = (
  a: number,
  b: number,
  c: number,
  d: number,
  e: number,
  vm: HelperContext,
) => number;
/** `fn` with `fast` as its numeric twin. */
export function withFast(fn: HelperFn, fast: FastHelperFn): HelperFn {
  fn.fast = fast;
  return fn;
}
export interface HelperContext {
  memory: AddressSpace;
  /** End the program now, with this r0. */
  stop(r0: bigint): void;
  /** The pc of the call instruction (an addition, for helpers' error messages). */
  readonly pc?: number;
  /**
   * Calls a BPF function of the running program (`address`: a BPF_PSEUDO_FUNC value the program
   * passed, e.g. a bpf_loop callback) with r1..r5 = args, on fresh stack frames; returns its r0.
   */
  callFunction?(address: bigint, args: readonly bigint[]): bigint;
  /**
   * bpf_tail_call: `target` replaces the running program (with r1 = `r1`) once the helper has
   * stopped this one: the engine's run() goes on with it, in a loop, so a chain of tail calls does
   * not grow the host's stack. Made inside a bpf-to-bpf subprogram, the tail call replaces only that
   * subprogram's frame, as in the kernel (x86-64 JIT since 5.10): the engine runs the target (and the
   * chain it starts) at once, and its r0 is what the subprogram returns to its caller, which goes on
   * (runSubprogTail). False, and nothing happens, when the run has already made MAX_TAIL_CALL_CNT tail
   * calls (one count for the whole run, subprograms included). Absent where a tail call cannot
   * replace the program (callbacks).
   */
  tailCall?(target: PreparedProgram, r1: bigint): boolean;
}
/** The kernel's limit on tail calls in one chain. */
export const MAX_TAIL_CALL_CNT = 33;
/** A run's tail-call chain: how many tail calls so far, and the program to run next. */
export interface TailChain {
  count: number;
  next: PreparedProgram | undefined;
  r1: bigint;
}
export function newChain(): TailChain {
  return { count: 0, next: undefined, r1: 0n };
}
/** HelperContext.tailCall over a chain. */
export function chainTailCall(chain: TailChain): (target: PreparedProgram, r1: bigint) => boolean {
  return (target, r1) => {
    if (chain.count >= MAX_TAIL_CALL_CNT) return false;
    chain.count++;
    chain.next = target;
    chain.r1 = r1;
    return true;
  };
}
/**
 * A tail call made inside a bpf-to-bpf subprogram (chain.next, chain.r1): runs the target, and the
 * programs it tail-calls in turn, on the run's chain (the count goes on from the run's), and returns
 * the last one's r0 (the subprogram's return value) and the instructions they executed.
 */
export function runSubprogTail(chain: TailChain, packet: RunInput['packet']): RunResult {
  return followChain({ r0: 0n, insnCount: 0 }, chain, packet ? { packet } : {});
}
/**
 * Runs the programs a run tail-called, one after the other (same packet), and returns the result of
 * the last one: r0 of the chain's last program, instructions counted over the whole chain, `mem` of
 * the first run.
 */
export function followChain(first: RunResult, chain: TailChain, input: RunInput): RunResult {
  let r = first;
  let count = first.insnCount;
  while (chain.next !== undefined) {
    const p = chain.next;
    chain.next = undefined;
    const next: RunInput = input.packet ? { r1: chain.r1, packet: input.packet } : { r1: chain.r1 };
    r = p.runLink ? p.runLink(next, chain) : p.run(next);
    count += r.insnCount;
  }
  const out: RunResult = { r0: r.r0, insnCount: count };
  if (first.mem) out.mem = first.mem;
  return out;
}
export type HelperTable = ReadonlyMap<number, HelperFn>;
export interface InterpreterOptions {
  helpers?: HelperTable;
  /** Most instructions one run may execute (default 10,000,000). */
  budget?: number;
  /** Address space to run in (default: one shared by all programs; each run frees what it allocates). */
  memory?: AddressSpace;
  /**
   * Refuse programs that may read a register before writing it, or write r10, as the kernel
   * verifier does ("R0 !read_ok"). Default true.
   */
  checkRegisters?: boolean;
  /**
   * The caller vouches that tsbpf's verifier (src/verifier) accepted exactly these instructions,
   * so every run ends (bounded loops were explored to their exit): the JIT then compiles the
   * program without the instruction budget counter (its runs report insnCount 0). The interpreter
   * counts and checks the budget either way. Default false: nothing here verifies programs.
   */
  verified?: boolean;
}
export interface RunInput {
  /** Copied into VM memory; r1 = its address, r2 = its length; r1 = r2 = 0 when absent. */
  mem?: Uint8Array;
  /** Initial r1 instead of `mem`'s address (a program context already in VM memory); r2 is then 0. */
  r1?: bigint;
  /**
   * Where the legacy packet loads (LD_ABS/LD_IND) read (default: `mem`). Read at every load, so the
   * caller may move it (a helper that changes the packet updates `base`/`length`).
   */
  packet?: { base: number; length: number };
}
export interface RunResult {
  /** r0 at exit, unsigned 64-bit. */
  r0: bigint;
  insnCount: number;
  /** `mem` after the run. */
  mem?: Uint8Array;
}
export interface PreparedProgram {
  run(input?: RunInput): RunResult;
  /** Releases what the program holds in the address space (stack frames); optional. */
  dispose?(): void;
  /** One program of a tail-call chain: run() without following the chain (engines implement it). */
  runLink?(input: RunInput, chain: TailChain): RunResult;
  /**
   * run(input) `repeat` times in a row, state carrying over (BPF_PROG_TEST_RUN's repeat); the
   * result of the last run. Optional: an engine that can loop faster than its caller implements it.
   */
  runRepeat?(input: RunInput, repeat: number): RunResult;
}

export const DEFAULT_BUDGET = 10_000_000;

/** Checks and pre-decodes a program. TsbpfError('decode') names the pc and the problem. */
export function prepare(insns: readonly Insn[], options: InterpreterOptions = {}): PreparedProgram {
  return new Program(insns, options);
}

export function runProgram(
  insns: readonly Insn[],
  input?: RunInput,
  options?: InterpreterOptions,
): RunResult {
  return prepare(insns, options).run(input);
}

// ---------------------------------------------------------------------------------------------
// Internal operations (dense numbers so the dispatch switch becomes a jump table)

enum O {
  ADD64 = 1,
  SUB64,
  MUL64,
  DIV64,
  SDIV64,
  OR64,
  AND64,
  LSH64,
  RSH64,
  NEG64,
  MOD64,
  SMOD64,
  XOR64,
  MOV64,
  ARSH64,
  MOVSX8_64,
  MOVSX16_64,
  MOVSX32_64,
  BSWAP16,
  BSWAP32,
  BSWAP64,
  ADD32,
  SUB32,
  MUL32,
  DIV32,
  SDIV32,
  OR32,
  AND32,
  LSH32,
  RSH32,
  NEG32,
  MOD32,
  SMOD32,
  XOR32,
  MOV32,
  ARSH32,
  MOVSX8_32,
  MOVSX16_32,
  LE16,
  LE32,
  LE64,
  JA,
  JEQ,
  JGT,
  JGE,
  JSET,
  JNE,
  JSGT,
  JSGE,
  JLT,
  JLE,
  JSLT,
  JSLE,
  JEQ32,
  JGT32,
  JGE32,
  JSET32,
  JNE32,
  JSGT32,
  JSGE32,
  JLT32,
  JLE32,
  JSLT32,
  JSLE32,
  CALL_HELPER,
  CALL_LOCAL,
  CALLX,
  EXIT,
  LDXB,
  LDXH,
  LDXW,
  LDXDW,
  LDXSB,
  LDXSH,
  LDXSW,
  STB,
  STH,
  STW,
  STDW,
  LDDW,
  LDDW_FUNC,
  ATOMIC,
  LD_PKT,
  TRAP,
}

/** Registers 0..10 live at 0..10; immediates at CONST_BASE + pc. */
const CONST_BASE = 16;
const TWO32 = 4294967296;

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

function toBig(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

function bswap32(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

/** validate(), minus the verifier-level rules whose run-time meaning the ISA defines (div by 0 imm, shift range). */
function vmProblem(insn: Insn): string | undefined {
  const c = cls(insn.code);
  if ((c === BPF_ALU || c === BPF_ALU64) && srcBit(insn.code) === BPF_K) {
    const o = op(insn.code);
    if ((o === BPF_DIV || o === BPF_MOD) && insn.imm === 0) return validate({ ...insn, imm: 1 });
    if (o === BPF_LSH || o === BPF_RSH || o === BPF_ARSH) return validate({ ...insn, imm: 0 });
  }
  return validate(insn);
}

interface Flow {
  reads: number;
  defs: number;
  kills: number;
  next: number; // fall-through successor or -1
  jump: number; // branch successor or -1
  entry: number; // a function entry this instruction makes (local call / PSEUDO_FUNC) or -1
}

const ALU_OPS_64 = [
  O.ADD64,
  O.SUB64,
  O.MUL64,
  O.DIV64,
  O.OR64,
  O.AND64,
  O.LSH64,
  O.RSH64,
  O.NEG64,
  O.MOD64,
  O.XOR64,
  O.MOV64,
  O.ARSH64,
];
const ALU_OPS_32 = [
  O.ADD32,
  O.SUB32,
  O.MUL32,
  O.DIV32,
  O.OR32,
  O.AND32,
  O.LSH32,
  O.RSH32,
  O.NEG32,
  O.MOD32,
  O.XOR32,
  O.MOV32,
  O.ARSH32,
];
// index by op>>4 for jumps 1..13 excluding CALL(8)/EXIT(9)
const JMP_OPS_64: Record<number, number> = {
  1: O.JEQ,
  2: O.JGT,
  3: O.JGE,
  4: O.JSET,
  5: O.JNE,
  6: O.JSGT,
  7: O.JSGE,
  10: O.JLT,
  11: O.JLE,
  12: O.JSLT,
  13: O.JSLE,
};
const JMP_OPS_32: Record<number, number> = {
  1: O.JEQ32,
  2: O.JGT32,
  3: O.JGE32,
  4: O.JSET32,
  5: O.JNE32,
  6: O.JSGT32,
  7: O.JSGE32,
  10: O.JLT32,
  11: O.JLE32,
  12: O.JSLT32,
  13: O.JSLE32,
};
const LDX_OPS: Record<number, number> = { 1: O.LDXB, 2: O.LDXH, 4: O.LDXW, 8: O.LDXDW };
const LDXS_OPS: Record<number, number> = { 1: O.LDXSB, 2: O.LDXSH, 4: O.LDXSW };
const ST_OPS: Record<number, number> = { 1: O.STB, 2: O.STH, 4: O.STW, 8: O.STDW };

const bit = (r: number) => 1 << r;
const ARG_REGS = 0b111110; // r1..r5

class Program implements PreparedProgram {
  /** Instruction slots (LD_IMM64 counts two). */
  readonly slotCount: number;
  private readonly OP: Uint8Array;
  private readonly DST: Uint8Array;
  private readonly SRC: Int32Array;
  private readonly OFF: Int32Array;
  private readonly IMM: Int32Array;
  /** Register file template: 0..10 registers, CONST_BASE.. immediates. Copied per run. */
  private readonly constLo: Int32Array;
  private readonly constHi: Int32Array;
  private readonly traps: string[] = [];
  /** Slot is the first slot of an instruction (valid call/jump target). */
  private readonly starts: Uint8Array;
  private readonly helpers: HelperTable;
  private readonly budget: number;
  private readonly space: AddressSpace | undefined;
  private readonly usesFrames: boolean;
  private readonly usesFuncAddr: boolean;
  private readonly source: readonly Insn[];
  /** Working arrays reused by every run (a typed-array allocation costs more than a short program). */
  private scratch: Scratch | undefined;
  /** Stack frames kept between runs. */
  private kept: Kept | undefined;
  private busy = false;

  constructor(insns: readonly Insn[], options: InterpreterOptions) {
    this.helpers = options.helpers ?? new Map();
    const budget = options.budget ?? DEFAULT_BUDGET;
    if (!(budget >= 0)) throw new TsbpfError('usage', `budget must be a non-negative number, not ${budget}`);
    this.budget = budget;
    this.space = options.memory;
    this.source = insns;

    // Slot layout.
    const pcs: number[] = [];
    let n = 0;
    for (const insn of insns) {
      pcs.push(n);
      n += insn.code === OPCODE_LD_IMM64 ? 2 : 1;
    }
    if (n === 0) throw new TsbpfError('decode', 'the program has no instructions');
    this.slotCount = n;
    const starts = new Uint8Array(n + 1);
    for (const p of pcs) starts[p] = 1;
    this.starts = starts;

    // Check every instruction first.
    for (let i = 0; i < insns.length; i++) {
      const insn = insns[i];
      const pc = pcs[i];
      const own = (insn as { problem?: unknown }).problem;
      let problem = vmProblem(insn);
      if (problem === undefined && typeof own === 'string' && own !== validate(insn)) problem = own;
      if (problem === undefined && !isEncodable(insn)) problem = 'instruction fields out of range';
      if (problem !== undefined) throw new TsbpfError('decode', `pc ${pc}: ${problem}`, { pc });
    }

    // Traps live after the program: slot n is "fell off the end".
    const trapSlots: { msg: string }[] = [];
    const trapFor = (msg: string): number => {
      trapSlots.push({ msg });
      return n + trapSlots.length; // n + 1, n + 2, ...
    };
    const targetOf = (from: number, target: number, what: string): number => {
      if (target < 0 || target >= n)
        return trapFor(`pc ${from}: ${what} out of range from insn ${from} to ${target}`);
      if (!starts[target])
        return trapFor(`pc ${from}: ${what} into the middle of ldimm64 insn ${target - 1}`);
      return target;
    };

    const pre: {
      op: number;
      dst: number;
      src: number;
      off: number;
      imm: number;
      lo?: number;
      hi?: number;
    }[] = new Array(n);
    const flows: (Flow | undefined)[] = new Array(n);
    let usesFrames = false;
    let usesFuncAddr = false;
    for (let i = 0; i < insns.length; i++) {
      const insn = insns[i];
      const pc = pcs[i];
      const { code, dst, off, imm } = insn;
      const K = CONST_BASE + pc;
      const isX = srcBit(code) === BPF_X;
      const s = isX ? insn.src : K;
      const flow: Flow = { reads: 0, defs: 0, kills: 0, next: pc + 1, jump: -1, entry: -1 };
      let e: (typeof pre)[number];
      const c = cls(code);
      switch (c) {
        case BPF_ALU:
        case BPF_ALU64: {
          const is64 = c === BPF_ALU64;
          const o = op(code);
          flow.defs = bit(dst);
          flow.reads = (o === BPF_MOV ? 0 : bit(dst)) | (isX && o !== BPF_END ? bit(insn.src) : 0);
          if (o === BPF_END) {
            const kind = is64 ? 'swap' : srcBit(code) === BPF_TO_BE ? 'swap' : 'le';
            const opx =
              kind === 'le'
                ? imm === 16
                  ? O.LE16
                  : imm === 32
                    ? O.LE32
                    : O.LE64
                : imm === 16
                  ? O.BSWAP16
                  : imm === 32
                    ? O.BSWAP32
                    : O.BSWAP64;
            e = { op: opx, dst, src: 0, off: 0, imm };
          } else if (o === BPF_MOV && isX && off !== 0) {
            const opx =
              off === 8
                ? is64
                  ? O.MOVSX8_64
                  : O.MOVSX8_32
                : off === 16
                  ? is64
                    ? O.MOVSX16_64
                    : O.MOVSX16_32
                  : O.MOVSX32_64;
            e = { op: opx, dst, src: s, off: 0, imm: 0 };
          } else {
            let opx = (is64 ? ALU_OPS_64 : ALU_OPS_32)[o >> 4];
            if (off === 1 && (o === BPF_DIV || o === BPF_MOD)) {
              opx = o === BPF_DIV ? (is64 ? O.SDIV64 : O.SDIV32) : is64 ? O.SMOD64 : O.SMOD32;
            }
            // 32-bit ops read only the low half of an immediate; 64-bit ones see it sign-extended.
            e = { op: opx, dst, src: s, off: 0, imm, lo: imm, hi: imm >> 31 };
          }
          break;
        }
        case BPF_JMP:
        case BPF_JMP32: {
          const o = op(code);
          if (o === BPF_JA) {
            const target = pc + 1 + (c === BPF_JMP32 ? imm : off);
            const t = targetOf(pc, target, 'jump');
            e = { op: O.JA, dst: 0, src: 0, off: t, imm: 0 };
            flow.next = -1;
            flow.jump = t < n ? t : -1;
          } else if (o === BPF_EXIT) {
            e = { op: O.EXIT, dst: 0, src: 0, off: 0, imm: 0 };
            flow.reads = bit(0);
            flow.next = -1;
          } else if (o === BPF_CALL) {
            flow.defs = bit(0);
            flow.kills = ARG_REGS;
            if (isX) {
              e = { op: O.CALLX, dst, src: 0, off: 0, imm: 0 };
              flow.reads = bit(dst);
              usesFrames = true;
            } else if (insn.src === BPF_PSEUDO_CALL) {
              const t = targetOf(pc, pc + 1 + imm, 'call');
              e = { op: O.CALL_LOCAL, dst: 0, src: 0, off: t, imm };
              if (t < n) flow.entry = t;
              usesFrames = true;
            } else if (insn.src === BPF_PSEUDO_KFUNC_CALL) {
              e = { op: O.TRAP, dst: 0, src: 0, off: 0, imm: 0 };
              e.imm = trapFor(`pc ${pc}: kernel function calls (kfunc ${imm}) are not supported by the VM`);
            } else {
              e = { op: O.CALL_HELPER, dst: 0, src: 0, off: 0, imm };
            }
          } else {
            const is32 = c === BPF_JMP32;
            const t = targetOf(pc, pc + 1 + off, 'jump');
            e = {
              op: (is32 ? JMP_OPS_32 : JMP_OPS_64)[o >> 4],
              dst,
              src: s,
              off: t,
              imm,
              lo: imm,
              hi: imm >> 31,
            };
            flow.reads = bit(dst) | (isX ? bit(insn.src) : 0);
            flow.jump = t < n ? t : -1;
          }
          break;
        }
        case BPF_LDX: {
          const sz = SIZE_BYTES[size(code)];
          const opx = mode(code) === BPF_MEMSX ? LDXS_OPS[sz] : LDX_OPS[sz];
          e = { op: opx, dst, src: insn.src, off, imm: 0 };
          flow.reads = bit(insn.src);
          flow.defs = bit(dst);
          break;
        }
        case BPF_ST:
        case BPF_STX: {
          const sz = SIZE_BYTES[size(code)];
          if (c === BPF_ST) {
            e = { op: ST_OPS[sz], dst, src: K, off, imm, lo: imm, hi: imm >> 31 };
            flow.reads = bit(dst);
          } else if (mode(code) === BPF_MEM || imm === BPF_STORE_REL) {
            e = { op: ST_OPS[sz], dst, src: insn.src, off, imm: 0 };
            flow.reads = bit(dst) | bit(insn.src);
          } else if (imm === BPF_LOAD_ACQ) {
            // dst = *(size *)(src + off), with acquire ordering (a plain load in a single-threaded VM)
            e = { op: LDX_OPS[sz], dst, src: insn.src, off, imm: 0 };
            flow.reads = bit(insn.src);
            flow.defs = bit(dst);
          } else {
            e = { op: O.ATOMIC, dst, src: insn.src, off, imm: imm | (sz === 8 ? 0x10000 : 0) };
            flow.reads = bit(dst) | bit(insn.src);
            if (imm === BPF_CMPXCHG) {
              flow.reads |= bit(0);
              flow.defs = bit(0);
            } else if (imm & BPF_FETCH) flow.defs = bit(insn.src);
          }
          break;
        }
        default: {
          // BPF_LD
          if (code === OPCODE_LD_IMM64) {
            flow.defs = bit(dst);
            flow.next = pc + 2;
            if (insn.src === 0) {
              e = { op: O.LDDW, dst, src: K, off: 0, imm, lo: imm, hi: insn.imm2 ?? 0 };
            } else if (insn.src === BPF_PSEUDO_FUNC) {
              const t = targetOf(pc, pc + 1 + imm, 'function address');
              e = { op: O.LDDW_FUNC, dst, src: 0, off: t, imm };
              if (t < n) flow.entry = t;
              usesFuncAddr = true;
              usesFrames = true;
            } else {
              e = { op: O.TRAP, dst, src: 0, off: 0, imm: 0 };
              e.imm = trapFor(
                `pc ${pc}: ld_imm64 with pseudo source ${insn.src} is not resolved (a loader must replace it before the program runs)`,
              );
            }
          } else {
            const sz = SIZE_BYTES[size(code)];
            const ind = mode(code) !== BPF_ABS;
            e = { op: O.LD_PKT, dst: sz, src: ind ? insn.src : -1, off: 0, imm };
            flow.reads = ind ? bit(insn.src) : 0;
            flow.defs = bit(0);
            flow.kills = ARG_REGS;
          }
        }
      }
      if (e.op === undefined)
        throw new TsbpfError('decode', `pc ${pc}: unknown opcode ${code.toString(16)}`, { pc });
      pre[pc] = e;
      flows[pc] = flow;
    }

    this.usesFrames = usesFrames;
    this.usesFuncAddr = usesFuncAddr;

    if (options.checkRegisters ?? true) checkRegisters(n, flows);

    // Materialise typed arrays: slots 0..n-1 program, n "end", n+1.. traps.
    const total = n + 1 + trapSlots.length;
    this.OP = new Uint8Array(total);
    this.DST = new Uint8Array(total);
    this.SRC = new Int32Array(total);
    this.OFF = new Int32Array(total);
    this.IMM = new Int32Array(total);
    this.constLo = new Int32Array(CONST_BASE + total);
    this.constHi = new Int32Array(CONST_BASE + total);
    this.traps = [];
    for (let pc = 0; pc < n; pc++) {
      const e = pre[pc];
      if (e === undefined) {
        // second slot of an LD_IMM64: only reachable by a jump, which the jump's own check forbids.
        this.OP[pc] = O.TRAP;
        this.IMM[pc] = this.traps.length;
        this.traps.push(`pc ${pc}: execution reached the middle of an ldimm64 instruction`);
        continue;
      }
      this.OP[pc] = e.op;
      this.DST[pc] = e.dst;
      this.SRC[pc] = e.src;
      this.OFF[pc] = e.off;
      this.IMM[pc] = e.imm;
      if (e.lo !== undefined) {
        this.constLo[CONST_BASE + pc] = e.lo;
        this.constHi[CONST_BASE + pc] = e.hi ?? 0;
      }
    }
    // Trap slots. Jump targets above point at n + k (k >= 1); the trap's IMM indexes `traps`.
    this.OP[n] = O.TRAP;
    this.IMM[n] = this.traps.length;
    this.traps.push(
      `pc ${n - 1}: execution fell off the end of the program (the last instruction must be exit or a jump)`,
    );
    for (let k = 0; k < trapSlots.length; k++) {
      this.OP[n + 1 + k] = O.TRAP;
      this.IMM[n + 1 + k] = this.traps.length;
      this.traps.push(trapSlots[k].msg);
    }
    // Traps for kfunc/unresolved pseudo: their IMM pointed at a trap slot; turn that into the message index.
    for (let pc = 0; pc < n; pc++) {
      if (this.OP[pc] === O.TRAP && pre[pc] !== undefined) this.IMM[pc] = this.IMM[this.IMM[pc]];
    }
  }

  run(input: RunInput = {}): RunResult {
    const chain = newChain();
    const r = this.runLink(input, chain);
    return chain.next === undefined ? r : followChain(r, chain, input);
  }

  runRepeat(input: RunInput, repeat: number): RunResult {
    let r = this.run(input);
    for (let i = 1; i < repeat; i++) r = this.run(input);
    return r;
  }

  /** Frees the stack frames kept between runs (they are also freed when the program is collected). */
  dispose(): void {
    const k = this.kept;
    if (k === undefined) return;
    this.kept = undefined;
    keptRegistry.unregister(this);
    freeAll(k.space, k.regions);
  }

  /** Stack frames (and the code region) kept from run to run in `space`, zeroed for each run. */
  private keptFor(space: AddressSpace): Kept {
    const k = this.kept;
    if (k !== undefined && k.space === space) return k;
    if (k !== undefined) this.dispose();
    const frames = this.usesFrames ? MAX_CALL_FRAMES : 1;
    const regions = space.allocateAdjacent(frames, MAX_BPF_STACK, (f) => `stack frame ${f}`, {
      guard: MAX_BPF_STACK,
    });
    const kept: Kept = { space, regions, lo: regions[0].base, hi: regions[frames - 1].end, codeBase: 0 };
    if (this.usesFuncAddr) {
      const code = space.allocate(this.slotCount * 8, 'code', { writable: false });
      regions.push(code);
      kept.codeBase = code.base;
    }
    this.kept = kept;
    keptRegistry.register(this, { space, regions }, this);
    return kept;
  }

  runLink(input: RunInput, chain: TailChain | undefined): RunResult {
    const space = this.space ?? defaultAddressSpace();
    const regions: Region[] = [];
    const reentrant = this.busy;
    try {
      const frames = this.usesFrames ? MAX_CALL_FRAMES : 1;
      // Reuse the working arrays and frames unless this is a re-entrant run (a helper running the same program).
      let scratch: Scratch;
      let codeBase = 0;
      if (!reentrant) {
        if (this.scratch === undefined) this.scratch = makeScratch(this.constLo.length);
        scratch = this.scratch;
        const kept = this.keptFor(space);
        space.u8.fill(0, kept.lo, kept.hi);
        for (let f = 0; f < frames; f++) scratch.frameTops[f] = kept.regions[f].end;
        codeBase = kept.codeBase;
      } else {
        scratch = makeScratch(this.constLo.length);
        for (let f = 0; f < frames; f++) {
          const r = space.allocate(MAX_BPF_STACK, `stack frame ${f}`, { align: 16 });
          regions.push(r);
          scratch.frameTops[f] = r.end;
        }
        if (this.usesFuncAddr) {
          const code = space.allocate(this.slotCount * 8, 'code', { writable: false });
          regions.push(code);
          codeBase = code.base;
        }
      }
      const frameTops = scratch.frameTops;
      let memRegion: Region | undefined;
      if (input.mem !== undefined) {
        memRegion = space.allocate(input.mem.length, 'mem', { init: input.mem });
        regions.push(memRegion);
      }
      const state: RunState = {
        space,
        ctx: undefined as unknown as HelperContext,
        pc: 0,
        stopped: false,
        stopValue: 0n,
        frameTops,
        memBase: memRegion?.base ?? 0,
        memLen: memRegion?.size ?? 0,
        r1: input.r1,
        pkt: input.packet ?? { base: memRegion?.base ?? 0, length: memRegion?.size ?? 0 },
        entry: 0,
        args: undefined,
        codeBase,
        count: 0,
        chain,
        packet: input.packet,
      };
      const ctx: HelperContext = {
        memory: space,
        stop(r0: bigint) {
          state.stopped = true;
          state.stopValue = BigInt.asUintN(64, r0);
        },
        get pc() {
          return state.pc;
        },
        callFunction: (address: bigint, args: readonly bigint[]) => this.callFunction(state, address, args),
      };
      if (chain !== undefined) ctx.tailCall = chainTailCall(chain);
      state.ctx = ctx;
      this.busy = true;
      let r0: bigint;
      try {
        r0 = this.execute(state, scratch);
      } finally {
        this.busy = reentrant;
      }
      const result: RunResult = { r0, insnCount: state.count };
      if (memRegion) result.mem = space.u8.slice(memRegion.base, memRegion.end);
      return result;
    } finally {
      for (let i = regions.length - 1; i >= 0; i--) space.freeRegion(regions[i]);
    }
  }

  private fault(
    pc: number,
    space: AddressSpace,
    hi: number,
    lo: number,
    off: number,
    size: number,
    write: boolean,
  ): never {
    const addr = BigInt.asUintN(64, toBig(lo, hi) + BigInt(off));
    throw new TsbpfError('runtime', `pc ${pc}: ${space.describeFault(addr, size, write)}`, { pc });
  }

  /** Address of an access that missed the fast path; throws on a fault. */
  private slowAddr(
    pc: number,
    space: AddressSpace,
    hi: number,
    lo: number,
    off: number,
    size: number,
    write: boolean,
  ): number {
    let a = hi * TWO32 + (lo >>> 0) + off;
    if (hi === -1 && a < 0) a = -1; // negative: never valid
    if (hi !== 0 && !(hi === 1 && off < 0 && a >= 0 && a < TWO32))
      this.fault(pc, space, hi, lo, off, size, write);
    if (space.check(a, size, write) !== Fault.None) this.fault(pc, space, hi, lo, off, size, write);
    return a;
  }

  /** Calls helper `id`; true when the helper stopped the program (its r0 is st.stopValue). */
  private callHelper(st: RunState, LO: Int32Array, HI: Int32Array, pc: number, id: number): boolean {
    const fn = this.helpers.get(id);
    if (fn === undefined) throw new TsbpfError('runtime', `pc ${pc}: invalid func unknown#${id}`, { pc });
    st.pc = pc;
    let r: bigint;
    try {
      r = fn(
        [
          toBig(LO[1], HI[1]),
          toBig(LO[2], HI[2]),
          toBig(LO[3], HI[3]),
          toBig(LO[4], HI[4]),
          toBig(LO[5], HI[5]),
        ],
        st.ctx,
      );
    } catch (err) {
      if (err instanceof TsbpfError) {
        if (err.details.pc === undefined)
          throw new TsbpfError(err.code, `pc ${pc}: ${err.message}`, { ...err.details, pc });
        throw err;
      }
      throw new TsbpfError(
        'runtime',
        `pc ${pc}: helper ${id} failed: ${err instanceof Error ? err.message : String(err)}`,
        { pc },
      );
    }
    if (typeof r !== 'bigint')
      throw new TsbpfError('runtime', `pc ${pc}: helper ${id} returned ${typeof r}, not a bigint`, { pc });
    if (st.stopped) r = st.stopValue;
    LO[0] = Number(BigInt.asIntN(32, r));
    HI[0] = Number(BigInt.asIntN(32, r >> 32n));
    return st.stopped;
  }

  /** Runs the function at `address` (a BPF_PSEUDO_FUNC value of this run) to its exit: HelperContext.callFunction. */
  private callFunction(outer: RunState, address: bigint, args: readonly bigint[]): bigint {
    const rel = address >= BigInt(outer.codeBase) ? Number(address - BigInt(outer.codeBase)) : -1;
    if (
      outer.codeBase === 0 ||
      rel < 0 ||
      rel >= this.slotCount * 8 ||
      rel % 8 !== 0 ||
      !this.starts[rel / 8]
    ) {
      throw new TsbpfError(
        'runtime',
        `pc ${outer.pc}: callback ${hex(address)} is not a function of this program`,
        {
          pc: outer.pc,
        },
      );
    }
    const space = outer.space;
    const regions: Region[] = [];
    try {
      const scratch = makeScratch(this.constLo.length);
      const frameTops = scratch.frameTops;
      for (let f = 0; f < MAX_CALL_FRAMES; f++) {
        const r = space.allocate(MAX_BPF_STACK, `callback stack frame ${f}`, { align: 16 });
        regions.push(r);
        frameTops[f] = r.end;
      }
      const state: RunState = {
        ...outer,
        frameTops,
        entry: rel / 8,
        args,
        stopped: false,
        stopValue: 0n,
        count: 0,
        chain: undefined,
      };
      state.ctx = {
        memory: space,
        stop(r0: bigint) {
          state.stopped = true;
          state.stopValue = BigInt.asUintN(64, r0);
        },
        get pc() {
          return state.pc;
        },
        callFunction: (a: bigint, g: readonly bigint[]) => this.callFunction(state, a, g),
      };
      const r0 = this.execute(state, scratch);
      outer.count += state.count;
      return r0;
    } finally {
      for (let i = regions.length - 1; i >= 0; i--) space.freeRegion(regions[i]);
    }
  }

  /** Where callx goes: a slot for a function address, -1 for a helper id, or a runtime error. */
  private callxTarget(st: RunState, lo: number, hi: number, pc: number): number {
    const rel = (lo >>> 0) - st.codeBase;
    if (
      hi === 0 &&
      st.codeBase !== 0 &&
      rel >= 0 &&
      rel < this.slotCount * 8 &&
      rel % 8 === 0 &&
      this.starts[rel / 8]
    ) {
      return rel / 8;
    }
    if (hi === 0 && this.helpers.has(lo >>> 0)) return -1;
    throw new TsbpfError(
      'runtime',
      `pc ${pc}: callx to ${hex(toBig(lo, hi))}, which is neither a function address nor a known helper`,
      { pc },
    );
  }

  private execute(st: RunState, scratch: Scratch): bigint {
    const { OP, DST, SRC, OFF, IMM } = this;
    const space = st.space;
    const { LO, HI, retPc, saved } = scratch;
    if (!scratch.ready) {
      // first use: copy the constants in (runs never write them: every dst is a register 0..10)
      LO.set(this.constLo);
      HI.set(this.constHi);
      scratch.ready = true;
    }
    LO.fill(0, 0, CONST_BASE);
    HI.fill(0, 0, CONST_BASE);
    let dv = space.view;
    const budget = this.budget;
    const frameTops = st.frameTops;
    // call frames: return pc and r6..r10 saved per depth
    let depth = 0;

    LO[1] = st.memBase;
    HI[1] = 0;
    LO[2] = st.memLen;
    HI[2] = 0;
    if (st.args !== undefined) {
      for (let r = 1; r <= 5; r++) {
        const v = st.args[r - 1] ?? 0n;
        LO[r] = Number(BigInt.asIntN(32, v));
        HI[r] = Number(BigInt.asIntN(32, v >> 32n));
      }
    } else if (st.r1 !== undefined) {
      LO[1] = Number(BigInt.asIntN(32, st.r1));
      HI[1] = Number(BigInt.asIntN(32, st.r1 >> 32n));
      LO[2] = 0;
    }
    LO[10] = frameTops[0];
    HI[10] = 0;
    // The current stack frame [fLo, fHi): checked before the address space's cache.
    let fHi = frameTops[0];
    let fLo = fHi - MAX_BPF_STACK;

    let pc = st.entry;
    let count = 0;
    for (;;) {
      if (++count > budget) {
        count = budget;
        throw new TsbpfError('runtime', `pc ${pc}: instruction budget of ${budget} exhausted`, { pc });
      }
      switch (OP[pc]) {
        // ---------------- ALU64
        case O.ADD64: {
          const d = DST[pc];
          const s = SRC[pc];
          const l = (LO[d] >>> 0) + (LO[s] >>> 0);
          LO[d] = l;
          HI[d] = HI[d] + HI[s] + (l > 0xffffffff ? 1 : 0);
          pc++;
          continue;
        }
        case O.SUB64: {
          const d = DST[pc];
          const s = SRC[pc];
          const l = (LO[d] >>> 0) - (LO[s] >>> 0);
          LO[d] = l;
          HI[d] = HI[d] - HI[s] - (l < 0 ? 1 : 0);
          pc++;
          continue;
        }
        case O.MUL64: {
          const d = DST[pc];
          const s = SRC[pc];
          mul64(LO, HI, d, LO[s], HI[s]);
          pc++;
          continue;
        }
        case O.DIV64:
        case O.MOD64:
        case O.SDIV64:
        case O.SMOD64: {
          divmod64(OP[pc], LO, HI, DST[pc], SRC[pc]);
          pc++;
          continue;
        }
        case O.OR64: {
          const d = DST[pc];
          const s = SRC[pc];
          LO[d] |= LO[s];
          HI[d] |= HI[s];
          pc++;
          continue;
        }
        case O.AND64: {
          const d = DST[pc];
          const s = SRC[pc];
          LO[d] &= LO[s];
          HI[d] &= HI[s];
          pc++;
          continue;
        }
        case O.XOR64: {
          const d = DST[pc];
          const s = SRC[pc];
          LO[d] ^= LO[s];
          HI[d] ^= HI[s];
          pc++;
          continue;
        }
        case O.LSH64: {
          const d = DST[pc];
          const k = LO[SRC[pc]] & 63;
          if (k >= 32) {
            HI[d] = LO[d] << (k - 32);
            LO[d] = 0;
          } else if (k !== 0) {
            HI[d] = (HI[d] << k) | (LO[d] >>> (32 - k));
            LO[d] = LO[d] << k;
          }
          pc++;
          continue;
        }
        case O.RSH64: {
          const d = DST[pc];
          const k = LO[SRC[pc]] & 63;
          if (k >= 32) {
            LO[d] = HI[d] >>> (k - 32);
            HI[d] = 0;
          } else if (k !== 0) {
            LO[d] = (LO[d] >>> k) | (HI[d] << (32 - k));
            HI[d] = HI[d] >>> k;
          }
          pc++;
          continue;
        }
        case O.ARSH64: {
          const d = DST[pc];
          const k = LO[SRC[pc]] & 63;
          if (k >= 32) {
            LO[d] = HI[d] >> (k - 32);
            HI[d] = HI[d] >> 31;
          } else if (k !== 0) {
            LO[d] = (LO[d] >>> k) | (HI[d] << (32 - k));
            HI[d] = HI[d] >> k;
          }
          pc++;
          continue;
        }
        case O.NEG64: {
          const d = DST[pc];
          const l = -(LO[d] >>> 0);
          LO[d] = l;
          HI[d] = ~HI[d] + (l === 0 ? 1 : 0);
          pc++;
          continue;
        }
        case O.MOV64:
        case O.LDDW: {
          const d = DST[pc];
          const s = SRC[pc];
          LO[d] = LO[s];
          HI[d] = HI[s];
          pc += OP[pc] === O.LDDW ? 2 : 1;
          continue;
        }
        case O.MOVSX8_64: {
          const d = DST[pc];
          const v = (LO[SRC[pc]] << 24) >> 24;
          LO[d] = v;
          HI[d] = v >> 31;
          pc++;
          continue;
        }
        case O.MOVSX16_64: {
          const d = DST[pc];
          const v = (LO[SRC[pc]] << 16) >> 16;
          LO[d] = v;
          HI[d] = v >> 31;
          pc++;
          continue;
        }
        case O.MOVSX32_64: {
          const d = DST[pc];
          const v = LO[SRC[pc]];
          LO[d] = v;
          HI[d] = v >> 31;
          pc++;
          continue;
        }
        case O.BSWAP16: {
          const d = DST[pc];
          const v = LO[d];
          LO[d] = ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.BSWAP32: {
          const d = DST[pc];
          LO[d] = bswap32(LO[d]);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.BSWAP64: {
          const d = DST[pc];
          const l = LO[d];
          LO[d] = bswap32(HI[d]);
          HI[d] = bswap32(l);
          pc++;
          continue;
        }
        case O.LE16: {
          const d = DST[pc];
          LO[d] &= 0xffff;
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.LE32: {
          HI[DST[pc]] = 0;
          pc++;
          continue;
        }
        case O.LE64: {
          pc++;
          continue;
        }
        // ---------------- ALU32 (results zero-extended)
        case O.ADD32: {
          const d = DST[pc];
          LO[d] = LO[d] + LO[SRC[pc]];
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.SUB32: {
          const d = DST[pc];
          LO[d] = LO[d] - LO[SRC[pc]];
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.MUL32: {
          const d = DST[pc];
          LO[d] = Math.imul(LO[d], LO[SRC[pc]]);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.DIV32: {
          const d = DST[pc];
          const b = LO[SRC[pc]] >>> 0;
          LO[d] = b === 0 ? 0 : Math.floor((LO[d] >>> 0) / b);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.MOD32: {
          const d = DST[pc];
          const b = LO[SRC[pc]] >>> 0;
          if (b !== 0) LO[d] = (LO[d] >>> 0) % b;
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.SDIV32: {
          const d = DST[pc];
          const b = LO[SRC[pc]];
          const a = LO[d];
          LO[d] = b === 0 ? 0 : b === -1 ? -a : Math.trunc(a / b);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.SMOD32: {
          const d = DST[pc];
          const b = LO[SRC[pc]];
          if (b === -1) LO[d] = 0;
          else if (b !== 0) LO[d] = LO[d] % b;
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.OR32: {
          const d = DST[pc];
          LO[d] |= LO[SRC[pc]];
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.AND32: {
          const d = DST[pc];
          LO[d] &= LO[SRC[pc]];
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.XOR32: {
          const d = DST[pc];
          LO[d] ^= LO[SRC[pc]];
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.LSH32: {
          const d = DST[pc];
          LO[d] = LO[d] << (LO[SRC[pc]] & 31);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.RSH32: {
          const d = DST[pc];
          LO[d] = LO[d] >>> (LO[SRC[pc]] & 31);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.ARSH32: {
          const d = DST[pc];
          LO[d] = LO[d] >> (LO[SRC[pc]] & 31);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.NEG32: {
          const d = DST[pc];
          LO[d] = -LO[d];
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.MOV32: {
          const d = DST[pc];
          LO[d] = LO[SRC[pc]];
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.MOVSX8_32: {
          const d = DST[pc];
          LO[d] = (LO[SRC[pc]] << 24) >> 24;
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.MOVSX16_32: {
          const d = DST[pc];
          LO[d] = (LO[SRC[pc]] << 16) >> 16;
          HI[d] = 0;
          pc++;
          continue;
        }
        // ---------------- jumps
        case O.JA:
          pc = OFF[pc];
          continue;
        case O.JEQ: {
          const d = DST[pc];
          const s = SRC[pc];
          pc = LO[d] === LO[s] && HI[d] === HI[s] ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JNE: {
          const d = DST[pc];
          const s = SRC[pc];
          pc = LO[d] !== LO[s] || HI[d] !== HI[s] ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JSET: {
          const d = DST[pc];
          const s = SRC[pc];
          pc = (LO[d] & LO[s]) !== 0 || (HI[d] & HI[s]) !== 0 ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JGT: {
          const d = DST[pc];
          const s = SRC[pc];
          const a = HI[d] >>> 0;
          const b = HI[s] >>> 0;
          pc = a > b || (a === b && LO[d] >>> 0 > LO[s] >>> 0) ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JGE: {
          const d = DST[pc];
          const s = SRC[pc];
          const a = HI[d] >>> 0;
          const b = HI[s] >>> 0;
          pc = a > b || (a === b && LO[d] >>> 0 >= LO[s] >>> 0) ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JLT: {
          const d = DST[pc];
          const s = SRC[pc];
          const a = HI[d] >>> 0;
          const b = HI[s] >>> 0;
          pc = a < b || (a === b && LO[d] >>> 0 < LO[s] >>> 0) ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JLE: {
          const d = DST[pc];
          const s = SRC[pc];
          const a = HI[d] >>> 0;
          const b = HI[s] >>> 0;
          pc = a < b || (a === b && LO[d] >>> 0 <= LO[s] >>> 0) ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JSGT: {
          const d = DST[pc];
          const s = SRC[pc];
          const a = HI[d];
          const b = HI[s];
          pc = a > b || (a === b && LO[d] >>> 0 > LO[s] >>> 0) ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JSGE: {
          const d = DST[pc];
          const s = SRC[pc];
          const a = HI[d];
          const b = HI[s];
          pc = a > b || (a === b && LO[d] >>> 0 >= LO[s] >>> 0) ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JSLT: {
          const d = DST[pc];
          const s = SRC[pc];
          const a = HI[d];
          const b = HI[s];
          pc = a < b || (a === b && LO[d] >>> 0 < LO[s] >>> 0) ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JSLE: {
          const d = DST[pc];
          const s = SRC[pc];
          const a = HI[d];
          const b = HI[s];
          pc = a < b || (a === b && LO[d] >>> 0 <= LO[s] >>> 0) ? OFF[pc] : pc + 1;
          continue;
        }
        case O.JEQ32:
          pc = LO[DST[pc]] === LO[SRC[pc]] ? OFF[pc] : pc + 1;
          continue;
        case O.JNE32:
          pc = LO[DST[pc]] !== LO[SRC[pc]] ? OFF[pc] : pc + 1;
          continue;
        case O.JSET32:
          pc = (LO[DST[pc]] & LO[SRC[pc]]) !== 0 ? OFF[pc] : pc + 1;
          continue;
        case O.JGT32:
          pc = LO[DST[pc]] >>> 0 > LO[SRC[pc]] >>> 0 ? OFF[pc] : pc + 1;
          continue;
        case O.JGE32:
          pc = LO[DST[pc]] >>> 0 >= LO[SRC[pc]] >>> 0 ? OFF[pc] : pc + 1;
          continue;
        case O.JLT32:
          pc = LO[DST[pc]] >>> 0 < LO[SRC[pc]] >>> 0 ? OFF[pc] : pc + 1;
          continue;
        case O.JLE32:
          pc = LO[DST[pc]] >>> 0 <= LO[SRC[pc]] >>> 0 ? OFF[pc] : pc + 1;
          continue;
        case O.JSGT32:
          pc = LO[DST[pc]] > LO[SRC[pc]] ? OFF[pc] : pc + 1;
          continue;
        case O.JSGE32:
          pc = LO[DST[pc]] >= LO[SRC[pc]] ? OFF[pc] : pc + 1;
          continue;
        case O.JSLT32:
          pc = LO[DST[pc]] < LO[SRC[pc]] ? OFF[pc] : pc + 1;
          continue;
        case O.JSLE32:
          pc = LO[DST[pc]] <= LO[SRC[pc]] ? OFF[pc] : pc + 1;
          continue;
        // ---------------- calls
        case O.CALL_HELPER: {
          if (this.callHelper(st, LO, HI, pc, IMM[pc])) {
            const chain = st.chain;
            if (depth === 0 || chain === undefined || chain.next === undefined) {
              st.count = count;
              return st.stopValue;
            }
            // a tail call inside a subprogram: the target runs now and the subprogram returns its
            // r0 to its caller (the kernel unwinds the subprogram's frame only)
            st.stopped = false;
            const res = runSubprogTail(chain, st.packet);
            count += res.insnCount;
            LO[0] = Number(BigInt.asIntN(32, res.r0));
            HI[0] = Number(BigInt.asIntN(32, res.r0 >> 32n));
            dv = space.view;
            depth--;
            const b = depth * 10;
            for (let r = 0; r < 5; r++) {
              LO[6 + r] = saved[b + r * 2];
              HI[6 + r] = saved[b + r * 2 + 1];
            }
            fHi = frameTops[depth];
            fLo = fHi - MAX_BPF_STACK;
            pc = retPc[depth];
            continue;
          }
          dv = space.view; // the helper may have allocated (and grown the memory)
          pc++;
          continue;
        }
        case O.CALL_LOCAL:
        case O.CALLX: {
          let target: number;
          if (OP[pc] === O.CALL_LOCAL) {
            target = OFF[pc];
          } else {
            target = this.callxTarget(st, LO[DST[pc]], HI[DST[pc]], pc);
            if (target < 0) {
              if (this.callHelper(st, LO, HI, pc, LO[DST[pc]] >>> 0)) {
                st.count = count;
                return st.stopValue;
              }
              dv = space.view;
              pc++;
              continue;
            }
          }
          if (depth + 1 >= MAX_CALL_FRAMES) {
            throw new TsbpfError('runtime', `pc ${pc}: the call stack of ${depth + 2} frames is too deep`, {
              pc,
            });
          }
          const b = depth * 10;
          for (let r = 0; r < 5; r++) {
            saved[b + r * 2] = LO[6 + r];
            saved[b + r * 2 + 1] = HI[6 + r];
          }
          retPc[depth] = pc + 1;
          depth++;
          LO[10] = frameTops[depth];
          HI[10] = 0;
          fHi = frameTops[depth];
          fLo = fHi - MAX_BPF_STACK;
          pc = target;
          continue;
        }
        case O.EXIT:
          if (depth === 0) {
            st.count = count;
            return toBig(LO[0], HI[0]);
          }
          depth--;
          {
            const b = depth * 10;
            for (let r = 0; r < 5; r++) {
              LO[6 + r] = saved[b + r * 2];
              HI[6 + r] = saved[b + r * 2 + 1];
            }
          }
          fHi = frameTops[depth];
          fLo = fHi - MAX_BPF_STACK;
          pc = retPc[depth];
          continue;
        // ---------------- loads
        case O.LDXB: {
          const s = SRC[pc];
          let a = (LO[s] >>> 0) + OFF[pc];
          if (HI[s] !== 0 || ((a < fLo || a + 1 > fHi) && (a < space.lastBase || a + 1 > space.lastEnd)))
            a = this.slowAddr(pc, space, HI[s], LO[s], OFF[pc], 1, false);
          const d = DST[pc];
          LO[d] = dv.getUint8(a);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.LDXH: {
          const s = SRC[pc];
          let a = (LO[s] >>> 0) + OFF[pc];
          if (HI[s] !== 0 || ((a < fLo || a + 2 > fHi) && (a < space.lastBase || a + 2 > space.lastEnd)))
            a = this.slowAddr(pc, space, HI[s], LO[s], OFF[pc], 2, false);
          const d = DST[pc];
          LO[d] = dv.getUint16(a, true);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.LDXW: {
          const s = SRC[pc];
          let a = (LO[s] >>> 0) + OFF[pc];
          if (HI[s] !== 0 || ((a < fLo || a + 4 > fHi) && (a < space.lastBase || a + 4 > space.lastEnd)))
            a = this.slowAddr(pc, space, HI[s], LO[s], OFF[pc], 4, false);
          const d = DST[pc];
          LO[d] = dv.getInt32(a, true);
          HI[d] = 0;
          pc++;
          continue;
        }
        case O.LDXDW: {
          const s = SRC[pc];
          let a = (LO[s] >>> 0) + OFF[pc];
          if (HI[s] !== 0 || ((a < fLo || a + 8 > fHi) && (a < space.lastBase || a + 8 > space.lastEnd)))
            a = this.slowAddr(pc, space, HI[s], LO[s], OFF[pc], 8, false);
          const d = DST[pc];
          LO[d] = dv.getInt32(a, true);
          HI[d] = dv.getInt32(a + 4, true);
          pc++;
          continue;
        }
        case O.LDXSB: {
          const s = SRC[pc];
          let a = (LO[s] >>> 0) + OFF[pc];
          if (HI[s] !== 0 || ((a < fLo || a + 1 > fHi) && (a < space.lastBase || a + 1 > space.lastEnd)))
            a = this.slowAddr(pc, space, HI[s], LO[s], OFF[pc], 1, false);
          const d = DST[pc];
          const v = dv.getInt8(a);
          LO[d] = v;
          HI[d] = v >> 31;
          pc++;
          continue;
        }
        case O.LDXSH: {
          const s = SRC[pc];
          let a = (LO[s] >>> 0) + OFF[pc];
          if (HI[s] !== 0 || ((a < fLo || a + 2 > fHi) && (a < space.lastBase || a + 2 > space.lastEnd)))
            a = this.slowAddr(pc, space, HI[s], LO[s], OFF[pc], 2, false);
          const d = DST[pc];
          const v = dv.getInt16(a, true);
          LO[d] = v;
          HI[d] = v >> 31;
          pc++;
          continue;
        }
        case O.LDXSW: {
          const s = SRC[pc];
          let a = (LO[s] >>> 0) + OFF[pc];
          if (HI[s] !== 0 || ((a < fLo || a + 4 > fHi) && (a < space.lastBase || a + 4 > space.lastEnd)))
            a = this.slowAddr(pc, space, HI[s], LO[s], OFF[pc], 4, false);
          const d = DST[pc];
          const v = dv.getInt32(a, true);
          LO[d] = v;
          HI[d] = v >> 31;
          pc++;
          continue;
        }
        // ---------------- stores (ST: SRC is the immediate's constant slot)
        case O.STB: {
          const t = DST[pc];
          let a = (LO[t] >>> 0) + OFF[pc];
          if (
            HI[t] !== 0 ||
            ((a < fLo || a + 1 > fHi) && (a < space.lastBase || a + 1 > space.lastEnd || !space.lastWritable))
          )
            a = this.slowAddr(pc, space, HI[t], LO[t], OFF[pc], 1, true);
          dv.setUint8(a, LO[SRC[pc]]);
          pc++;
          continue;
        }
        case O.STH: {
          const t = DST[pc];
          let a = (LO[t] >>> 0) + OFF[pc];
          if (
            HI[t] !== 0 ||
            ((a < fLo || a + 2 > fHi) && (a < space.lastBase || a + 2 > space.lastEnd || !space.lastWritable))
          )
            a = this.slowAddr(pc, space, HI[t], LO[t], OFF[pc], 2, true);
          dv.setUint16(a, LO[SRC[pc]], true);
          pc++;
          continue;
        }
        case O.STW: {
          const t = DST[pc];
          let a = (LO[t] >>> 0) + OFF[pc];
          if (
            HI[t] !== 0 ||
            ((a < fLo || a + 4 > fHi) && (a < space.lastBase || a + 4 > space.lastEnd || !space.lastWritable))
          )
            a = this.slowAddr(pc, space, HI[t], LO[t], OFF[pc], 4, true);
          dv.setInt32(a, LO[SRC[pc]], true);
          pc++;
          continue;
        }
        case O.STDW: {
          const t = DST[pc];
          let a = (LO[t] >>> 0) + OFF[pc];
          if (
            HI[t] !== 0 ||
            ((a < fLo || a + 8 > fHi) && (a < space.lastBase || a + 8 > space.lastEnd || !space.lastWritable))
          )
            a = this.slowAddr(pc, space, HI[t], LO[t], OFF[pc], 8, true);
          const s = SRC[pc];
          dv.setInt32(a, LO[s], true);
          dv.setInt32(a + 4, HI[s], true);
          pc++;
          continue;
        }
        case O.LDDW_FUNC: {
          const d = DST[pc];
          LO[d] = st.codeBase + OFF[pc] * 8;
          HI[d] = 0;
          pc += 2;
          continue;
        }
        case O.ATOMIC: {
          const t = DST[pc];
          const is64 = (IMM[pc] & 0x10000) !== 0;
          const sz = is64 ? 8 : 4;
          const a = this.slowAddr(pc, space, HI[t], LO[t], OFF[pc], sz, true);
          atomic(dv, a, IMM[pc] & 0xffff, is64, LO, HI, SRC[pc]);
          pc++;
          continue;
        }
        case O.LD_PKT: {
          const sz = DST[pc];
          const s = SRC[pc];
          const off = s < 0 ? IMM[pc] : (LO[s] + IMM[pc]) | 0;
          const pk = st.pkt;
          if (off < 0 || off + sz > pk.length) {
            // The kernel ends the program with r0 = 0 when a legacy packet load is out of bounds.
            st.count = count;
            return 0n;
          }
          const a = pk.base + off;
          LO[0] = sz === 1 ? dv.getUint8(a) : sz === 2 ? dv.getUint16(a, false) : dv.getInt32(a, false);
          HI[0] = 0;
          pc++;
          continue;
        }
        case O.TRAP: {
          const msg = this.traps[IMM[pc]];
          const at = Number(/^pc (\d+)/.exec(msg)?.[1] ?? pc);
          throw new TsbpfError('runtime', msg, { pc: at });
        }
        default:
          throw new TsbpfError('runtime', `pc ${pc}: internal error: no handler for op ${OP[pc]}`, { pc });
      }
    }
  }

  toString(): string {
    return `PreparedProgram(${this.source.length} insns)`;
  }
}

interface Kept {
  space: AddressSpace;
  regions: Region[];
  /** [lo, hi): the frames, zeroed before each run. */
  lo: number;
  hi: number;
  codeBase: number;
}

function freeAll(space: AddressSpace, regions: readonly Region[]): void {
  for (const r of regions) {
    try {
      space.freeRegion(r);
    } catch {
      // already freed
    }
  }
}

const keptRegistry = new FinalizationRegistry<{ space: AddressSpace; regions: Region[] }>((held) =>
  freeAll(held.space, held.regions),
);

interface Scratch {
  LO: Int32Array;
  HI: Int32Array;
  retPc: Int32Array;
  saved: Int32Array;
  frameTops: Float64Array;
  /** The constants have been copied in. */
  ready: boolean;
}

function makeScratch(regs: number): Scratch {
  return {
    LO: new Int32Array(regs),
    HI: new Int32Array(regs),
    retPc: new Int32Array(MAX_CALL_FRAMES),
    saved: new Int32Array(MAX_CALL_FRAMES * 10),
    frameTops: new Float64Array(MAX_CALL_FRAMES),
    ready: false,
  };
}

interface RunState {
  space: AddressSpace;
  ctx: HelperContext;
  pc: number;
  stopped: boolean;
  stopValue: bigint;
  frameTops: Float64Array;
  memBase: number;
  memLen: number;
  /** RunInput.r1. */
  r1: bigint | undefined;
  /** Where LD_ABS/LD_IND read. */
  pkt: { base: number; length: number };
  /** First slot to run (0, or a callback's entry). */
  entry: number;
  /** r1..r5 of a callback. */
  args: readonly bigint[] | undefined;
  codeBase: number;
  count: number;
  /** The run's tail-call chain (a tail call in a subprogram runs it at once: runSubprogTail). */
  chain: TailChain | undefined;
  /** RunInput.packet: the packet of the programs a tail call runs. */
  packet: RunInput['packet'];
}

function isEncodable(insn: Insn): boolean {
  const { code, dst, src, off, imm } = insn;
  return (
    Number.isInteger(code) &&
    code >= 0 &&
    code <= 255 &&
    Number.isInteger(dst) &&
    dst >= 0 &&
    dst <= 15 &&
    Number.isInteger(src) &&
    src >= 0 &&
    src <= 15 &&
    Number.isInteger(off) &&
    off >= -32768 &&
    off <= 32767 &&
    Number.isInteger(imm) &&
    imm >= -2147483648 &&
    imm <= 2147483647 &&
    (insn.imm2 === undefined ||
      (Number.isInteger(insn.imm2) && insn.imm2 >= -2147483648 && insn.imm2 <= 4294967295))
  );
}

/** Low 64 bits of (LO[d],HI[d]) * (bl,bh), in place, without BigInt. */
function mul64(LO: Int32Array, HI: Int32Array, d: number, bl: number, bh: number): void {
  const al = LO[d];
  const ah = HI[d];
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const mid = a0 * b1 + a1 * b0; // < 2^33
  const low = p00 + (mid % 65536) * 65536; // < 2^49
  const carry = Math.floor(low / TWO32);
  const hiPart = a1 * b1 + Math.floor(mid / 65536) + carry;
  LO[d] = low % TWO32;
  HI[d] = (hiPart + Math.imul(ah, bl) + Math.imul(al, bh)) | 0;
}

function divmod64(opx: number, LO: Int32Array, HI: Int32Array, d: number, s: number): void {
  const al = LO[d];
  const ah = HI[d];
  const bl = LO[s];
  const bh = HI[s];
  if (opx === O.DIV64 || opx === O.MOD64) {
    if (bl === 0 && bh === 0) {
      if (opx === O.DIV64) {
        LO[d] = 0;
        HI[d] = 0;
      }
      return;
    }
    if (ah === 0 && bh === 0) {
      const a = al >>> 0;
      const b = bl >>> 0;
      LO[d] = opx === O.DIV64 ? Math.floor(a / b) : a % b;
      return;
    }
    const a = toBig(al, ah);
    const b = toBig(bl, bh);
    setBig(LO, HI, d, opx === O.DIV64 ? a / b : a % b);
    return;
  }
  // signed
  if (bl === 0 && bh === 0) {
    if (opx === O.SDIV64) {
      LO[d] = 0;
      HI[d] = 0;
    }
    return;
  }
  const a = BigInt.asIntN(64, toBig(al, ah));
  const b = BigInt.asIntN(64, toBig(bl, bh));
  if (b === -1n) {
    // INT64_MIN / -1 wraps to INT64_MIN; INT64_MIN % -1 is 0.
    setBig(LO, HI, d, opx === O.SDIV64 ? -a : 0n);
    return;
  }
  setBig(LO, HI, d, opx === O.SDIV64 ? a / b : a % b);
}

function setBig(LO: Int32Array, HI: Int32Array, d: number, v: bigint): void {
  LO[d] = Number(BigInt.asIntN(32, v));
  HI[d] = Number(BigInt.asIntN(32, v >> 32n));
}

function atomic(
  dv: DataView,
  a: number,
  aop: number,
  is64: boolean,
  LO: Int32Array,
  HI: Int32Array,
  s: number,
): void {
  if (!is64) {
    const old = dv.getInt32(a, true);
    const v = LO[s];
    switch (aop & ~BPF_FETCH) {
      case BPF_ADD:
        dv.setInt32(a, old + v, true);
        break;
      case BPF_OR:
        dv.setInt32(a, old | v, true);
        break;
      case BPF_AND:
        dv.setInt32(a, old & v, true);
        break;
      case BPF_XOR:
        dv.setInt32(a, old ^ v, true);
        break;
      case BPF_XCHG & ~BPF_FETCH:
        dv.setInt32(a, v, true);
        break;
      case BPF_CMPXCHG & ~BPF_FETCH:
        if (old === LO[0]) dv.setInt32(a, v, true);
        LO[0] = old;
        HI[0] = 0;
        return;
    }
    if (aop & BPF_FETCH) {
      LO[s] = old;
      HI[s] = 0;
    }
    return;
  }
  const oldLo = dv.getInt32(a, true);
  const oldHi = dv.getInt32(a + 4, true);
  const vl = LO[s];
  const vh = HI[s];
  let nl = vl;
  let nh = vh;
  switch (aop & ~BPF_FETCH) {
    case BPF_ADD: {
      const l = (oldLo >>> 0) + (vl >>> 0);
      nl = l | 0;
      nh = (oldHi + vh + (l > 0xffffffff ? 1 : 0)) | 0;
      break;
    }
    case BPF_OR:
      nl = oldLo | vl;
      nh = oldHi | vh;
      break;
    case BPF_AND:
      nl = oldLo & vl;
      nh = oldHi & vh;
      break;
    case BPF_XOR:
      nl = oldLo ^ vl;
      nh = oldHi ^ vh;
      break;
    case BPF_XCHG & ~BPF_FETCH:
      break;
    case BPF_CMPXCHG & ~BPF_FETCH:
      if (oldLo === LO[0] && oldHi === HI[0]) {
        dv.setInt32(a, vl, true);
        dv.setInt32(a + 4, vh, true);
      }
      LO[0] = oldLo;
      HI[0] = oldHi;
      return;
  }
  dv.setInt32(a, nl, true);
  dv.setInt32(a + 4, nh, true);
  if (aop & BPF_FETCH) {
    LO[s] = oldLo;
    HI[s] = oldHi;
  }
}

/**
 * Forward "definitely written" analysis over the control-flow graph, the kernel verifier's
 * register-initialisation rule: every read must see a register written on every path to it.
 */
function checkRegisters(n: number, flows: (Flow | undefined)[]): void {
  const state = new Int32Array(n).fill(-1);
  const work: number[] = [];
  const push = (pc: number, mask: number) => {
    if (pc < 0 || pc >= n || flows[pc] === undefined) return;
    const old = state[pc];
    const merged = old === -1 ? mask : old & mask;
    if (merged !== old) {
      state[pc] = merged;
      work.push(pc);
    }
  };
  const FP = bit(BPF_REG_FP);
  push(0, bit(1) | bit(2) | FP);
  while (work.length > 0) {
    const pc = work.pop() as number;
    const f = flows[pc] as Flow;
    const out = ((state[pc] & ~f.kills) | f.defs) & 0x7ff;
    if (f.next >= 0) push(f.next, out);
    if (f.jump >= 0) push(f.jump, out);
    if (f.entry >= 0) push(f.entry, ARG_REGS | FP);
  }
  for (let pc = 0; pc < n; pc++) {
    const f = flows[pc];
    if (f === undefined || state[pc] === -1) continue;
    if (f.defs & FP) throw new TsbpfError('decode', `pc ${pc}: frame pointer is read only`, { pc });
    const missing = f.reads & ~state[pc];
    if (missing !== 0) {
      const r = 31 - Math.clz32(missing & -missing);
      throw new TsbpfError('decode', `pc ${pc}: R${r} !read_ok`, { pc });
    }
  }
}
