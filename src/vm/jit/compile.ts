/**
 * eBPF → WebAssembly: one module per program, one function per entry point (the program, and
 * each bpf-to-bpf subprogram or function address). The module imports the VM's one
 * WebAssembly.Memory, so a pointer in a register is the same number in both worlds.
 *
 * - Registers r0..r10 are i64 locals. 32-bit ALU operations compute on i32 and zero-extend.
 * - Basic blocks become structured control flow (structure.ts).
 * - Every instruction has the interpreter's semantics (division by zero, INT_MIN / -1, shift masks,
 *   movsx, bswap, 32-bit zero extension); the interpreter is the reference and the tests compare.
 * - Loads and stores are checked against the address space's regions: r10-relative accesses with
 *   a constant offset inside the current frame need no run-time check; other accesses try the
 *   current frame, then a one-entry region cache (wasm globals), then call the host (`access`),
 *   which checks the regions, refills the cache or throws the interpreter's error.
 * - Atomics are plain load-op-store sequences: the memory is not shared and the VM runs one
 *   program at a time on one thread, so that is exact.
 * - The instruction budget is counted per basic block (count += block length), with a check at
 *   each block entry; the host works out the exact pc where the budget ran out.
 * - Helpers, faults, traps and budget errors go through a handful of imported host functions.
 */

import { helperById } from '../../catalog/helpers.js';
import { TsbpfError } from '../../errors.js';
import type { Insn } from '../../isa/insn.js';
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
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_RSH,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_SUB,
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
} from '../../isa/opcodes.js';
import { INDEX_MIX, INDEX_MUL, INDEX_MUL_BYTE } from '../maps/hash.js';
import type { MapInline } from '../maps/inline.js';
import { structure } from './structure.js';
import { CodeWriter, F64, FC, I32, I64, type ModuleSpec, Op, writeModule } from './wasm.js';

/** Imported host functions (function indices). */
export const Imp = {
  helper: 0,
  access: 1,
  trap: 2,
  budget: 3,
  callx: 4,
  stop0: 5,
  deep: 6,
  lookup: 7,
  fast: 8,
  tail: 9,
} as const;
const IMPORT_NAMES = [
  'helper',
  'access',
  'trap',
  'budget',
  'callx',
  'stop0',
  'deep',
  'lookup',
  'fast',
  'tail',
];
/**
 * Globals: the imported blinding key and the tail-call globals every program of an address space
 * shares (program.ts's Linker), then the module's own.
 * - tail_next: the chain table's slot of the program a tail call asked for (0: none; -1: the host
 *   follows the chain, the target being a program outside the table);
 * - tail_r1: that program's r1; tail_cnt: tail calls so far in this run (at most 33);
 * - tail_pkt_base/len: the packet for its LD_ABS/LD_IND.
 */
export const G = {
  key: 0,
  tailNext: 1,
  tailR1: 2,
  tailCnt: 3,
  tailPktBase: 4,
  tailPktLen: 5,
  rlo: 6,
  rend: 7,
  wlo: 8,
  wend: 9,
  count: 10,
  pktBase: 11,
  pktLen: 12,
  stop: 13,
  epoch: 14,
  stopValue: 15,
} as const;
export const GLOBAL_NAMES = [
  'key',
  'tail_next',
  'tail_r1',
  'tail_cnt',
  'tail_pkt_base',
  'tail_pkt_len',
  'rlo',
  'rend',
  'wlo',
  'wend',
  'count',
  'pkt_base',
  'pkt_len',
  'stop',
  'epoch',
  'stop_value',
];
/** Tables: the address space's chain table (imported), then the module's own functions. */
const CHAIN_TABLE = 0;
const OWN_TABLE = 1;
const T = {
  helper: 0,
  access: 1,
  i32v: 2,
  callx: 3,
  vv: 4,
  deep: 5,
  entry: 6,
  sub: 7,
  lookup: 8,
  repeat: 9,
  cb: 10,
  hash: 11,
  fast: 12,
  tail: 13,
} as const;
/** bpf_map_lookup_elem's helper id. */
const MAP_LOOKUP_ELEM = 1;

const FIRST_FUNC = IMPORT_NAMES.length;
/** Loops of one basic block of at most UNROLL_MAX_INSNS instructions run UNROLL_COPIES copies per back edge. */
const UNROLL_MAX_INSNS = 24;
const UNROLL_COPIES = 4;
/** The kernel's MAX_TAIL_CALL_CNT. */
const MAX_TAIL_CALLS = 33;

export interface CompileOptions {
  /** Largest instruction count a run may execute; Infinity: no checks. */
  budget: number;
  /**
   * Count executed instructions (default true). False for a program the verifier accepted: it
   * terminates, so the code carries no counter at all (runs report 0 instructions) and no budget.
   */
  count?: boolean;
  /** Constant blinding key (lo, hi), or undefined for no blinding. */
  blindKey?: [number, number];
  forceDispatch?: boolean;
  /** Top address (r10) of each stack frame, by call depth. */
  frameTops: readonly number[];
  /** Base address of the read-only 'code' region function addresses point into (0: none). */
  codeBase: number;
  /** Map lookups the JIT may inline (see MapInline); called at compile time with a map's address. */
  inlineMap?: (address: number) => MapInline | undefined;
  /** Address of the access-site cache: accessSites(insns).count entries of 16 bytes, zeroed. */
  siteBase: number;
  /** Address of the address space's free epoch (memory.ts FREE_EPOCH_ADDR). */
  epochAddr: number;
  /**
   * Helper ids that have a numeric twin (HelperFn.fast): their calls pass the arguments as f64 to
   * the `fast` import when all of them are below 2^53, and take the BigInt `helper` import otherwise.
   */
  fastHelpers?: ReadonlySet<number>;
  /**
   * The id of bpf_tail_call when its helper can name its target (HelperFn.tailTarget): its calls
   * first ask the `tail` import for the target's slot in the chain table and, with one and fewer
   * than 33 tail calls so far, jump there inside WebAssembly (set tail_next and return); else the
   * helper runs as any other.
   */
  tailHelper?: number;
}

/**
 * The instructions that may access memory through a pointer (loads, stores, atomics; helper calls,
 * for an inlined lookup's key): each gets an entry in the access-site cache, [lo, lim) of the region
 * its last access hit (an instruction nearly always hits the same region: the context, the packet, a
 * map value), so a checked access costs a subtraction and a comparison.
 */
export function accessSites(insns: readonly Insn[]): { siteOf: Int32Array; count: number } {
  let n = 0;
  for (const insn of insns) n += insn.code === OPCODE_LD_IMM64 ? 2 : 1;
  const siteOf = new Int32Array(n).fill(-1);
  let count = 0;
  let pc = 0;
  for (const insn of insns) {
    const c = cls(insn.code);
    if (c === BPF_LDX || c === BPF_ST || c === BPF_STX || (c === BPF_JMP && op(insn.code) === BPF_CALL))
      siteOf[pc] = count++;
    pc += insn.code === OPCODE_LD_IMM64 ? 2 : 1;
  }
  return { siteOf, count };
}

export interface CompiledFunction {
  name: string;
  entryPc: number;
  kind: 'entry' | 'sub';
  /** Function index in the module. */
  index: number;
  /** Code (after the locals declaration). */
  body: Uint8Array;
  /** Types of the declared locals after the parameters, and the parameter types. */
  params: number[];
  locals: number[];
  /** Pairs (byte offset in body, eBPF pc): where each instruction's code starts. */
  marks: number[];
  mode: 'structured' | 'dispatch';
}

export interface CompiledProgram {
  bytes: Uint8Array;
  functions: CompiledFunction[];
  /** Trap messages by index (jump out of range, fell off the end, kfunc...). */
  traps: string[];
  /** Per basic block: the pcs of its instructions (budget errors name the exact one). */
  blockPcs: Int32Array[];
  /** callx: table index of the function entered at a pc. */
  tableIndex: Map<number, number>;
  /** Names of the module's types, imports and globals, for the text dump. */
  importNames: string[];
  /** Host lookups of inlined map_lookup_elem calls, by the index the `lookup` import receives. */
  lookups: { keySize: number; lookup: (keyAddr: number) => number; map: number }[];
  /** Whether the module exports `cb` (callbacks into its functions through the table). */
  hasCallbacks: boolean;
  /**
   * The pcs of the bpf_tail_call calls (options.tailHelper) inside subprograms: the host runs such a
   * tail call's target at once and answers with `stop` = 2, after which the subprogram returns
   * stop_value to its caller (the kernel unwinds the subprogram's frame only).
   */
  subTailPcs: Set<number>;
  /** The module's other functions (repeat, cb, in-module hash lookups), for the text dump. */
  extraNames: Map<number, string>;
  stats: { insns: number; blocks: number; functions: number; dispatch: number; loops: number };
}

/** What the program as a whole needs (computed once, shared by all functions). */
interface Analysis {
  n: number;
  insns: readonly Insn[];
  /** Instruction index at a slot, or -1. */
  at: Int32Array;
  traps: string[];
  usesStack: boolean;
  usesLdAbs: boolean;
  r10Mutable: boolean;
  blocks: Block[];
  blockAt: Int32Array;
  /** Entry pcs of bpf-to-bpf calls and function addresses (each becomes a function of its own). */
  callees: number[];
  /** A jump/call target, or a trap -(k + 1) saying why it is not one. */
  resolve(from: number, t: number, what: string): number;
  /** The trap -(k + 1) with this message. */
  trap(msg: string): number;
}

interface Block {
  id: number;
  start: number;
  /** pcs of the instructions. */
  pcs: number[];
  /** Successor slots; negative: trap -(k + 1). For a conditional jump: [taken, fallthrough]. */
  succ: number[];
  cond: boolean;
}

const regDefs = (insn: Insn): number[] => {
  const c = cls(insn.code);
  if (c === BPF_ALU || c === BPF_ALU64 || c === BPF_LDX) return [insn.dst];
  if (insn.code === OPCODE_LD_IMM64) return [insn.dst];
  if (c === BPF_STX && mode(insn.code) === 0xc0) {
    if (insn.imm === BPF_LOAD_ACQ) return [insn.dst];
    if (insn.imm === BPF_CMPXCHG) return [0];
    if (insn.imm & BPF_FETCH) return [insn.src];
  }
  return [];
};

function analyse(insns: readonly Insn[]): Analysis {
  const pcs: number[] = [];
  let n = 0;
  for (const insn of insns) {
    pcs.push(n);
    n += insn.code === OPCODE_LD_IMM64 ? 2 : 1;
  }
  const at = new Int32Array(n + 1).fill(-1);
  for (let i = 0; i < insns.length; i++) at[pcs[i]] = i;
  const traps: string[] = [];
  const trapIds = new Map<string, number>();
  const trap = (msg: string): number => {
    let k = trapIds.get(msg);
    if (k === undefined) {
      k = traps.length;
      traps.push(msg);
      trapIds.set(msg, k);
    }
    return -(k + 1);
  };
  const fell = () =>
    trap(
      `pc ${n - 1}: execution fell off the end of the program (the last instruction must be exit or a jump)`,
    );
  const target = (from: number, t: number, what: string): number => {
    if (t < 0 || t >= n) return trap(`pc ${from}: ${what} out of range from insn ${from} to ${t}`);
    if (at[t] < 0) return trap(`pc ${from}: ${what} into the middle of ldimm64 insn ${t - 1}`);
    return t;
  };

  let usesStack = false;
  let usesLdAbs = false;
  let r10Mutable = false;
  const leader = new Uint8Array(n + 1);
  leader[0] = 1;
  const entries = new Set<number>();
  /** Per instruction index: resolved successor info. */
  const jumpTo = new Int32Array(insns.length);
  const ends = new Uint8Array(insns.length); // 1: ends a block
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i];
    const pc = pcs[i];
    const c = cls(insn.code);
    const o = op(insn.code);
    if (insn.dst === 10 || (insn.src === 10 && insn.code !== OPCODE_LD_IMM64)) usesStack = true;
    if (regDefs(insn).includes(10)) r10Mutable = true;
    const next = pc + (insn.code === OPCODE_LD_IMM64 ? 2 : 1);
    if (c === BPF_JMP || c === BPF_JMP32) {
      if (o === BPF_JA || (o !== BPF_CALL && o !== BPF_EXIT)) {
        const t = target(pc, pc + 1 + (o === BPF_JA && c === BPF_JMP32 ? insn.imm : insn.off), 'jump');
        jumpTo[i] = t;
        if (t >= 0) leader[t] = 1;
        ends[i] = 1;
      } else if (o === BPF_EXIT) ends[i] = 1;
      else {
        ends[i] = 1; // calls end blocks: the count must be exact when the callee or helper runs
        if (srcBit(insn.code) === BPF_K && insn.src === BPF_PSEUDO_CALL) {
          const t = target(pc, pc + 1 + insn.imm, 'call');
          jumpTo[i] = t;
          if (t >= 0) entries.add(t);
        }
      }
    } else if (c === BPF_LD) {
      if (insn.code === OPCODE_LD_IMM64) {
        if (insn.src === BPF_PSEUDO_FUNC) {
          const t = target(pc, pc + 1 + insn.imm, 'function address');
          jumpTo[i] = t;
          if (t >= 0) entries.add(t);
        } else if (insn.src !== 0) ends[i] = 1; // traps
      } else {
        usesLdAbs = true;
        ends[i] = 1; // may end the program (out of range)
      }
    }
    if (ends[i]) leader[next] = 1;
  }
  for (const e of entries) leader[e] = 1;

  const blocks: Block[] = [];
  const blockAt = new Int32Array(n + 1).fill(-1);
  let cur: Block | undefined;
  for (let i = 0; i < insns.length; i++) {
    const pc = pcs[i];
    if (leader[pc] || cur === undefined) {
      cur = { id: blocks.length, start: pc, pcs: [], succ: [], cond: false };
      blocks.push(cur);
      blockAt[pc] = cur.id;
    }
    cur.pcs.push(pc);
    const insn = insns[i];
    const next = pc + (insn.code === OPCODE_LD_IMM64 ? 2 : 1);
    const nextOrFell = next >= n ? fell() : next;
    if (ends[i] || leader[next] || next >= n) {
      const c = cls(insn.code);
      const o = op(insn.code);
      if ((c === BPF_JMP || c === BPF_JMP32) && o === BPF_JA) cur.succ = [jumpTo[i]];
      else if ((c === BPF_JMP || c === BPF_JMP32) && o === BPF_EXIT) cur.succ = [];
      else if ((c === BPF_JMP || c === BPF_JMP32) && o !== BPF_CALL) {
        cur.succ = jumpTo[i] === nextOrFell ? [nextOrFell] : [jumpTo[i], nextOrFell];
        cur.cond = cur.succ.length === 2;
      } else if (insn.code === OPCODE_LD_IMM64 && insn.src !== 0 && insn.src !== BPF_PSEUDO_FUNC)
        cur.succ = [];
      else if (
        c === BPF_JMP &&
        o === BPF_CALL &&
        insn.src === BPF_PSEUDO_KFUNC_CALL &&
        srcBit(insn.code) === BPF_K
      )
        cur.succ = [];
      else cur.succ = [nextOrFell];
      cur = undefined;
    }
  }
  return {
    n,
    insns,
    at,
    traps,
    usesStack,
    usesLdAbs,
    r10Mutable,
    blocks,
    blockAt,
    callees: [...entries].sort((a, b) => a - b),
    resolve: target,
    trap,
  };
}

interface Layout {
  reg: number[];
  depth: number;
  count: number;
  a: number;
  t: number;
  t2: number;
  fpLo: number;
  a32: number;
  lbl: number;
  fpLo32: number;
  t32: number;
}

// entry(memBase i32, memLen i32, r1 i64, useR1 i32, pktBase i32, pktLen i32):
// locals i64 r0..r10, count, a, t, t2, fpLo; i32 depth, a32, lbl, fpLo32, t32
const ENTRY_PARAMS = [I32, I32, I64, I32, I32, I32];
const ENTRY: Layout = {
  reg: [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
  count: 17,
  a: 18,
  t: 19,
  t2: 20,
  fpLo: 21,
  depth: 22,
  a32: 23,
  lbl: 24,
  fpLo32: 25,
  t32: 26,
};
const ENTRY_LOCALS = [...Array(16).fill(I64), ...Array(5).fill(I32)];
// sub(r1..r5 i64, depth i32, r10 i64): locals i64 r0, r6..r9, count, a, t, t2, fpLo; i32 a32, lbl, fpLo32, t32
const SUB: Layout = {
  reg: [7, 0, 1, 2, 3, 4, 8, 9, 10, 11, 6],
  depth: 5,
  count: 12,
  a: 13,
  t: 14,
  t2: 15,
  fpLo: 16,
  a32: 17,
  lbl: 18,
  fpLo32: 19,
  t32: 20,
};
const SUB_LOCALS = [...Array(10).fill(I64), ...Array(4).fill(I32)];
const SUB_PARAMS = [I64, I64, I64, I64, I64, I32, I64];

const ALU64: Record<number, number> = {
  [BPF_ADD]: Op.i64_add,
  [BPF_SUB]: Op.i64_sub,
  [BPF_MUL]: Op.i64_mul,
  [BPF_OR]: Op.i64_or,
  [BPF_AND]: Op.i64_and,
  [BPF_XOR]: Op.i64_xor,
  [BPF_LSH]: Op.i64_shl,
  [BPF_RSH]: Op.i64_shr_u,
  [BPF_ARSH]: Op.i64_shr_s,
};
const ALU32: Record<number, number> = {
  [BPF_ADD]: Op.i32_add,
  [BPF_SUB]: Op.i32_sub,
  [BPF_MUL]: Op.i32_mul,
  [BPF_OR]: Op.i32_or,
  [BPF_AND]: Op.i32_and,
  [BPF_XOR]: Op.i32_xor,
  [BPF_LSH]: Op.i32_shl,
  [BPF_RSH]: Op.i32_shr_u,
  [BPF_ARSH]: Op.i32_shr_s,
};
const CMP64: Record<number, number> = {
  [BPF_JEQ]: Op.i64_eq,
  [BPF_JNE]: Op.i64_ne,
  [BPF_JGT]: Op.i64_gt_u,
  [BPF_JGE]: Op.i64_ge_u,
  [BPF_JLT]: Op.i64_lt_u,
  [BPF_JLE]: Op.i64_le_u,
  [BPF_JSGT]: Op.i64_gt_s,
  [BPF_JSGE]: Op.i64_ge_s,
  [BPF_JSLT]: Op.i64_lt_s,
  [BPF_JSLE]: Op.i64_le_s,
};
const CMP32: Record<number, number> = {
  [BPF_JEQ]: Op.i32_eq,
  [BPF_JNE]: Op.i32_ne,
  [BPF_JGT]: Op.i32_gt_u,
  [BPF_JGE]: Op.i32_ge_u,
  [BPF_JLT]: Op.i32_lt_u,
  [BPF_JLE]: Op.i32_le_u,
  [BPF_JSGT]: Op.i32_gt_s,
  [BPF_JSGE]: Op.i32_ge_s,
  [BPF_JSLT]: Op.i32_lt_s,
  [BPF_JSLE]: Op.i32_le_s,
};
const LOAD_U: Record<number, number> = {
  1: Op.i64_load8_u,
  2: Op.i64_load16_u,
  4: Op.i64_load32_u,
  8: Op.i64_load,
};
const LOAD_S: Record<number, number> = { 1: Op.i64_load8_s, 2: Op.i64_load16_s, 4: Op.i64_load32_s };
const STORE: Record<number, number> = {
  1: Op.i64_store8,
  2: Op.i64_store16,
  4: Op.i64_store32,
  8: Op.i64_store,
};
const ALIGN: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };
const ATOMIC32: Record<number, number> = {
  [BPF_ADD]: Op.i32_add,
  [BPF_OR]: Op.i32_or,
  [BPF_AND]: Op.i32_and,
  [BPF_XOR]: Op.i32_xor,
};
const ATOMIC64: Record<number, number> = {
  [BPF_ADD]: Op.i64_add,
  [BPF_OR]: Op.i64_or,
  [BPF_AND]: Op.i64_and,
  [BPF_XOR]: Op.i64_xor,
};
const BLOCK_I64 = I64;

const TWO32 = 4294967296;

/** Compiles a program that the interpreter's prepare() has already accepted. */
export function compileProgram(insns: readonly Insn[], options: CompileOptions): CompiledProgram {
  const A = analyse(insns);
  const budgetChecks = Number.isFinite(options.budget) && options.budget < 2 ** 53;
  const budget = budgetChecks ? Math.floor(options.budget) : 0;
  const frameTops = options.frameTops;
  const F0 = frameTops[0];
  let stride = frameTops.length > 1 ? frameTops[1] - frameTops[0] : 0;
  for (let d = 2; d < frameTops.length; d++) if (frameTops[d] - frameTops[d - 1] !== stride) stride = 0;
  const key = options.blindKey;

  // Functions: the program (entry kind) and every callable entry (sub kind).
  const subEntries = A.callees;
  const subIndex = new Map<number, number>();
  const tableIndex = new Map<number, number>();
  for (let i = 0; i < subEntries.length; i++) {
    subIndex.set(subEntries[i], FIRST_FUNC + 1 + i);
    tableIndex.set(subEntries[i], i);
  }

  // No loops and no calls: at most n instructions run, so a budget >= n needs no checks.
  let hasBackEdge = false;
  for (const b of A.blocks) for (const s of b.succ) if (s >= 0 && s <= b.start) hasBackEdge = true;
  const counting = options.count ?? true;
  const checks = counting && budgetChecks && (hasBackEdge || subEntries.length > 0 || A.n > budget);

  const functions: CompiledFunction[] = [];
  const lookups: CompiledProgram['lookups'] = [];
  // Functions after the program's: repeat, cb (when there are subprograms), then one in-module hash
  // lookup per hash map the program looks up (by index header address).
  const hashBase = FIRST_FUNC + 1 + subEntries.length + 2 + (subEntries.length > 0 ? 1 : 0);
  const hashFuncs = new Map<number, { index: number; info: Extract<MapInline, { kind: 'hash' }> }>();
  const sites = accessSites(insns);
  /** Drops the access-site cache when a region was freed since it was filled. */
  const epochCheck = (w: CodeWriter) => {
    if (sites.count === 0) return;
    w.i32c(0);
    w.mem(Op.i32_load, options.epochAddr, 2);
    w.gget(G.epoch);
    w.op(Op.i32_ne);
    w.block(Op.if);
    w.i32c(0);
    w.mem(Op.i32_load, options.epochAddr, 2);
    w.gset(G.epoch);
    w.i32c(options.siteBase);
    w.i32c(0);
    w.i32c(sites.count * 16);
    w.op(Op.prefix_fc);
    w.u32(FC.memory_fill);
    w.byte(0);
    w.op(Op.end);
  };
  let dispatchCount = 0;
  let loopCount = 0;
  const subTailPcs = new Set<number>();

  const compileFunction = (entryPc: number, kind: 'entry' | 'sub'): CompiledFunction => {
    const L = kind === 'entry' ? ENTRY : SUB;
    const R = L.reg;
    const w = new CodeWriter(256);
    const marks: number[] = [];
    /** r1's value when the block so far made it a known constant (a map reference before a call). */
    let curR1: number | undefined;

    // Nodes: blocks reachable from the entry, plus one node per trap.
    const nodeOfBlock = new Map<number, number>();
    const nodeOfTrap = new Map<number, number>();
    const nodes: { block?: Block; trap?: number }[] = [];
    const succ: number[][] = [];
    const nodeFor = (s: number): number => {
      if (s < 0) {
        const k = -s - 1;
        let id = nodeOfTrap.get(k);
        if (id === undefined) {
          id = nodes.length;
          nodeOfTrap.set(k, id);
          nodes.push({ trap: k });
          succ.push([]);
        }
        return id;
      }
      const b = A.blocks[A.blockAt[s]];
      let id = nodeOfBlock.get(b.id);
      if (id === undefined) {
        id = nodes.length;
        nodeOfBlock.set(b.id, id);
        nodes.push({ block: b });
        succ.push([]);
        queue.push(id);
      }
      return id;
    };
    const queue: number[] = [];
    nodeFor(entryPc);
    for (let qi = 0; qi < queue.length; qi++) {
      const id = queue[qi];
      const b = nodes[id].block as Block;
      succ[id] = b.succ.map(nodeFor);
    }

    // ---- constants (blinded when asked)
    const k64 = (lo: number, hi: number = lo >> 31) => {
      if (key) {
        w.i64c(lo ^ key[0], hi ^ key[1]);
        w.gget(G.key);
        w.op(Op.i64_xor);
      } else w.i64c(lo, hi);
    };
    const k32 = (v: number) => {
      if (key) {
        w.i32c(v ^ key[0]);
        w.gget(G.key);
        w.op(Op.i32_wrap_i64);
        w.op(Op.i32_xor);
      } else w.i32c(v);
    };
    const num64 = (v: number) => w.i64c((v % TWO32) | 0, Math.floor(v / TWO32));
    const flushCount = () => {
      if (!counting) return;
      w.get(L.count);
      w.gset(G.count);
    };

    // ---- memory access: leaves the i32 address on the stack, returns the memarg offset
    const address = (pc: number, base: number, off: number, sz: number, write: boolean): number => {
      if (base === 10 && !A.r10Mutable && off >= -MAX_BPF_STACK && off + sz <= 0) {
        if (kind === 'entry') {
          w.i32c(0);
          return F0 + off;
        }
        w.get(L.fpLo32);
        return MAX_BPF_STACK + off;
      }
      w.get(R[base]);
      if (off !== 0) {
        w.i64c(off);
        w.op(Op.i64_add);
      }
      w.set(L.a);
      w.block();
      // the current frame
      w.get(L.a);
      w.get(L.fpLo);
      w.op(Op.i64_sub);
      w.i64c(MAX_BPF_STACK - sz);
      w.op(Op.i64_le_u);
      w.brIf(0);
      // the region this instruction's last access hit: a - lo < lim
      const site = options.siteBase + sites.siteOf[pc] * 16;
      w.get(L.a);
      w.i32c(0);
      w.mem(Op.i64_load, site, 3);
      w.op(Op.i64_sub);
      w.i32c(0);
      w.mem(Op.i64_load, site + 8, 3);
      w.op(Op.i64_lt_u);
      w.brIf(0);
      // the host: checks the regions, refills the site's cache entry or throws
      w.i32c(pc);
      w.get(L.a);
      w.op(Op.i32_wrap_i64);
      w.get(L.a);
      w.i64c(32);
      w.op(Op.i64_shr_u);
      w.op(Op.i32_wrap_i64);
      w.i32c(sz | (write ? 16 : 0) | (sites.siteOf[pc] << 5));
      w.call(Imp.access);
      w.op(Op.end);
      w.get(L.a);
      w.op(Op.i32_wrap_i64);
      return 0;
    };

    const invalidateCache = () => epochCheck(w);

    /**
     * After a helper or a call: the host asked the program to end (helper stop(), tail call), with
     * r0 = stop_value (the host sets both).
     */
    const stopCheck = () => {
      w.gget(G.stop);
      w.block(Op.if);
      if (kind === 'entry') {
        w.gget(G.stopValue);
        w.get(L.count);
        w.op(Op.f64_convert_i64_u);
      } else {
        flushCount();
        w.gget(G.stopValue);
      }
      w.op(Op.return);
      w.op(Op.end);
    };

    const helperCall = (pc: number, id: () => void, fastId?: number) => {
      flushCount();
      const tail = fastId !== undefined && fastId === options.tailHelper;
      // a tail call inside a subprogram ends that subprogram only: the host runs it (subTailPcs)
      if (tail && kind === 'entry') tailJump();
      if (tail && kind === 'sub') subTailPcs.add(pc);
      const fast = fastId !== undefined && options.fastHelpers?.has(fastId) === true;
      if (fast) {
        // the arguments the helper takes all below 2^53: numbers, no BigInts
        const argc = Math.min(helperById(fastId as number)?.proto?.args.length ?? 5, 5);
        if (argc > 0) {
          w.get(R[1]);
          for (let r = 2; r <= argc; r++) {
            w.get(R[r]);
            w.op(Op.i64_or);
          }
          w.i64c(53);
          w.op(Op.i64_shr_u);
          w.op(Op.i64_eqz);
        } else w.i32c(1);
        w.block(Op.if, BLOCK_I64);
        w.i32c(fastId as number);
        w.i32c(pc);
        for (let r = 1; r <= 5; r++) {
          if (r <= argc) w.get(R[r]);
          else w.i64c(0);
          w.op(Op.f64_convert_i64_u);
        }
        w.call(Imp.fast);
        w.op(Op.i64_trunc_f64_s);
        w.op(Op.else);
      }
      id();
      w.i32c(pc);
      for (let r = 1; r <= 5; r++) w.get(R[r]);
      w.call(Imp.helper);
      if (fast) w.op(Op.end);
      w.set(R[0]);
      invalidateCache();
      if (tail && kind === 'sub') {
        // stop = 2: the host ran the tail call's target; its r0 (stop_value) is this subprogram's
        // (the count is already in the global: the host added the target's to it)
        w.gget(G.stop);
        w.i32c(2);
        w.op(Op.i32_eq);
        w.block(Op.if);
        w.i32c(0);
        w.gset(G.stop);
        w.gget(G.stopValue);
        w.op(Op.return);
        w.op(Op.end);
      }
      stopCheck();
    };

    /**
     * bpf_tail_call(r1 = ctx, r2 = prog_array, r3 = index) to a program of the chain table: the
     * host names the target's slot (0: none, the helper call that follows handles the call), and
     * with fewer than 33 tail calls so far the program ends here, leaving the target to `run`.
     */
    const tailJump = () => {
      w.block();
      w.get(R[2]);
      w.get(R[3]);
      w.op(Op.i64_or);
      w.i64c(53);
      w.op(Op.i64_shr_u);
      w.op(Op.i64_eqz);
      w.op(Op.i32_eqz);
      w.brIf(0);
      w.get(R[2]);
      w.op(Op.f64_convert_i64_u);
      w.get(R[3]);
      w.op(Op.f64_convert_i64_u);
      w.call(Imp.tail);
      w.tee(L.t32);
      w.op(Op.i32_eqz);
      w.brIf(0);
      w.gget(G.tailCnt);
      w.i32c(MAX_TAIL_CALLS);
      w.op(Op.i32_ge_u);
      w.brIf(0);
      w.gget(G.tailCnt);
      w.i32c(1);
      w.op(Op.i32_add);
      w.gset(G.tailCnt);
      w.get(L.t32);
      w.gset(G.tailNext);
      w.get(R[1]);
      w.gset(G.tailR1);
      w.gget(G.pktBase);
      w.gset(G.tailPktBase);
      w.gget(G.pktLen);
      w.gset(G.tailPktLen);
      // ends the program as a stopped helper does (callers of a subprogram see `stop`)
      w.i32c(1);
      w.gset(G.stop);
      if (kind === 'entry') {
        w.i64c(0);
        w.get(L.count);
        w.op(Op.f64_convert_i64_u);
      } else {
        flushCount();
        w.i64c(0);
      }
      w.op(Op.return);
      w.op(Op.end);
    };

    /** bpf_map_lookup_elem on a map known at compile time, without the generic helper call. */
    const inlineLookup = (pc: number, info: MapInline, mapAddr: number) => {
      if (info.kind === 'array') {
        const mo = address(pc, 2, 0, 4, false);
        w.mem(Op.i32_load, mo, 0);
        w.tee(L.t32);
        w.i32c(info.maxEntries | 0);
        w.op(Op.i32_lt_u);
        w.block(Op.if, BLOCK_I64);
        w.get(L.t32);
        w.op(Op.i64_extend_i32_u);
        if (info.cpuCell !== undefined) {
          w.i32c(info.cpuCell);
          w.mem(Op.i32_load, 0, 2);
          w.op(Op.i64_extend_i32_u);
          num64(info.maxEntries);
          w.op(Op.i64_mul);
          w.op(Op.i64_add);
        }
        num64(info.stride);
        w.op(Op.i64_mul);
        num64(info.base);
        w.op(Op.i64_add);
        w.op(Op.else);
        w.i64c(0);
        w.op(Op.end);
        w.set(R[0]);
        return;
      }
      let inFrame = false;
      if (info.kind === 'hash' && info.keySize <= MAX_BPF_STACK) {
        // the key in the current stack frame (where programs build keys): the module's own lookup
        let f = hashFuncs.get(info.header);
        if (f === undefined) {
          f = { index: hashBase + hashFuncs.size, info };
          hashFuncs.set(info.header, f);
        }
        w.get(R[2]);
        w.get(L.fpLo);
        w.op(Op.i64_sub);
        w.i64c(MAX_BPF_STACK - info.keySize);
        w.op(Op.i64_le_u);
        w.block(Op.if, BLOCK_I64);
        w.get(R[2]);
        w.op(Op.i32_wrap_i64);
        w.call(f.index);
        w.op(Op.i64_extend_i32_u);
        w.op(Op.else);
        inFrame = true;
      }
      const k = lookups.length;
      lookups.push({ keySize: info.keySize, lookup: info.lookup, map: mapAddr });
      w.i32c(k);
      w.get(R[2]);
      w.op(Op.i32_wrap_i64);
      w.get(R[2]);
      w.i64c(32);
      w.op(Op.i64_shr_u);
      w.op(Op.i32_wrap_i64);
      // bit 31: the key lies inside the current stack frame (the host need not check it)
      w.i32c(pc);
      if (info.keySize <= MAX_BPF_STACK) {
        w.get(R[2]);
        w.get(L.fpLo);
        w.op(Op.i64_sub);
        w.i64c(MAX_BPF_STACK - info.keySize);
        w.op(Op.i64_le_u);
        w.i32c(31);
        w.op(Op.i32_shl);
        w.op(Op.i32_or);
      }
      w.call(Imp.lookup);
      w.op(Op.i64_extend_i32_u);
      if (inFrame) w.op(Op.end);
      w.set(R[0]);
    };

    const calleeFrame = () => {
      // pushes the callee's r10 (frame top at depth + 1)
      if (stride !== 0) {
        w.get(L.fpLo);
        w.i64c(MAX_BPF_STACK + stride);
        w.op(Op.i64_add);
        return;
      }
      num64(frameTops[frameTops.length - 1]);
      w.set(L.t2);
      for (let d = 1; d < frameTops.length - 1; d++) {
        num64(frameTops[d]);
        w.get(L.t2);
        w.get(L.depth);
        w.i32c(d - 1);
        w.op(Op.i32_eq);
        w.op(Op.select);
        w.set(L.t2);
      }
      w.get(L.t2);
    };

    const localCall = (pc: number, call: () => void) => {
      w.get(L.depth);
      w.i32c(MAX_CALL_FRAMES - 2);
      w.op(Op.i32_gt_s);
      w.block(Op.if);
      w.i32c(pc);
      w.get(L.depth);
      w.call(Imp.deep);
      w.op(Op.unreachable);
      w.op(Op.end);
      flushCount();
      for (let r = 1; r <= 5; r++) w.get(R[r]);
      w.get(L.depth);
      w.i32c(1);
      w.op(Op.i32_add);
      calleeFrame();
      call();
      w.set(R[0]);
      if (counting) {
        w.gget(G.count);
        w.set(L.count);
      }
      stopCheck();
    };

    const exit = () => {
      if (kind === 'entry') {
        // the program returns (r0, instruction count): a global read from JavaScript costs more than the run
        w.get(R[0]);
        w.get(L.count);
        w.op(Op.f64_convert_i64_u);
      } else {
        flushCount();
        w.get(R[0]);
      }
      w.op(Op.return);
    };

    const trapNow = (k: number) => {
      w.i32c(k);
      w.call(Imp.trap);
      w.op(Op.unreachable);
    };

    const alu = (insn: Insn) => {
      const { code, dst, imm, off } = insn;
      const is64 = cls(code) === BPF_ALU64;
      const o = op(code);
      const isX = srcBit(code) === BPF_X;
      const d = R[dst];
      const s = R[insn.src];
      const opnd64 = () => (isX ? w.get(s) : k64(imm));
      const opnd32 = () => {
        if (isX) {
          w.get(s);
          w.op(Op.i32_wrap_i64);
        } else k32(imm);
      };
      const d32 = () => {
        w.get(d);
        w.op(Op.i32_wrap_i64);
      };
      const zext = () => w.op(Op.i64_extend_i32_u);
      if (o === BPF_END) {
        const swap = is64 || srcBit(code) === BPF_TO_BE;
        if (!swap) {
          if (imm === 16) {
            w.get(d);
            w.i64c(0xffff);
            w.op(Op.i64_and);
            w.set(d);
          } else if (imm === 32) {
            d32();
            zext();
            w.set(d);
          }
          return;
        }
        if (imm === 16) {
          d32();
          w.tee(L.a32);
          w.i32c(8);
          w.op(Op.i32_shl);
          w.i32c(0xff00);
          w.op(Op.i32_and);
          w.get(L.a32);
          w.i32c(8);
          w.op(Op.i32_shr_u);
          w.i32c(0xff);
          w.op(Op.i32_and);
          w.op(Op.i32_or);
          zext();
          w.set(d);
        } else if (imm === 32) {
          d32();
          bswap32();
          zext();
          w.set(d);
        } else {
          const step = (shift: number, lo: number, hi: number) => {
            w.get(d);
            w.i64c(shift);
            w.op(Op.i64_shr_u);
            w.i64c(lo, hi);
            w.op(Op.i64_and);
            w.get(d);
            w.i64c(lo, hi);
            w.op(Op.i64_and);
            w.i64c(shift);
            w.op(Op.i64_shl);
            w.op(Op.i64_or);
            w.set(d);
          };
          step(8, 0x00ff00ff, 0x00ff00ff);
          step(16, 0x0000ffff, 0x0000ffff);
          w.get(d);
          w.i64c(32);
          w.op(Op.i64_rotl);
          w.set(d);
        }
        return;
      }
      if (o === BPF_NEG) {
        if (is64) {
          w.i64c(0);
          w.get(d);
          w.op(Op.i64_sub);
        } else {
          w.i32c(0);
          d32();
          w.op(Op.i32_sub);
          zext();
        }
        w.set(d);
        return;
      }
      if (o === BPF_MOV) {
        if (isX && off !== 0) {
          w.get(s);
          if (is64) w.op(off === 8 ? Op.i64_extend8_s : off === 16 ? Op.i64_extend16_s : Op.i64_extend32_s);
          else {
            w.op(Op.i32_wrap_i64);
            w.op(off === 8 ? Op.i32_extend8_s : Op.i32_extend16_s);
            zext();
          }
        } else if (is64) opnd64();
        else if (isX) {
          opnd32();
          zext();
        } else k64(imm, 0);
        w.set(d);
        return;
      }
      if (o === BPF_DIV || o === BPF_MOD) {
        divmod(insn, is64, o === BPF_DIV, off === 1, isX, d, s);
        return;
      }
      if (is64) {
        w.get(d);
        opnd64();
        w.op(ALU64[o]);
      } else {
        d32();
        opnd32();
        w.op(ALU32[o]);
        zext();
      }
      w.set(d);
    };

    const bswap32 = () => {
      // value on the stack (i32) → byte-swapped
      w.tee(L.a32);
      w.i32c(8);
      w.op(Op.i32_rotr);
      w.i32c(0xff00ff00 | 0);
      w.op(Op.i32_and);
      w.get(L.a32);
      w.i32c(8);
      w.op(Op.i32_rotl);
      w.i32c(0x00ff00ff);
      w.op(Op.i32_and);
      w.op(Op.i32_or);
    };

    const divmod = (
      insn: Insn,
      is64: boolean,
      div: boolean,
      signed: boolean,
      isX: boolean,
      d: number,
      s: number,
    ) => {
      const imm = insn.imm;
      const zext = () => w.op(Op.i64_extend_i32_u);
      const d32 = () => {
        w.get(d);
        w.op(Op.i32_wrap_i64);
      };
      if (!isX) {
        // the divisor is known: no guards needed except for its special values
        if (imm === 0) {
          if (div) w.i64c(0);
          else if (is64) return;
          else {
            d32();
            zext();
          }
          w.set(d);
          return;
        }
        if (signed && imm === -1) {
          if (!div) w.i64c(0);
          else if (is64) {
            w.i64c(0);
            w.get(d);
            w.op(Op.i64_sub);
          } else {
            w.i32c(0);
            d32();
            w.op(Op.i32_sub);
            zext();
          }
          w.set(d);
          return;
        }
        if (is64) {
          w.get(d);
          k64(imm);
          w.op(signed ? (div ? Op.i64_div_s : Op.i64_rem_s) : div ? Op.i64_div_u : Op.i64_rem_u);
        } else {
          d32();
          k32(imm);
          w.op(signed ? (div ? Op.i32_div_s : Op.i32_rem_s) : div ? Op.i32_div_u : Op.i32_rem_u);
          zext();
        }
        w.set(d);
        return;
      }
      if (is64) {
        w.get(s);
        w.op(Op.i64_eqz);
        w.block(Op.if, BLOCK_I64);
        if (div) w.i64c(0);
        else w.get(d);
        w.op(Op.else);
        if (signed && div) {
          w.get(s);
          w.i64c(-1);
          w.op(Op.i64_eq);
          w.block(Op.if, BLOCK_I64);
          w.i64c(0);
          w.get(d);
          w.op(Op.i64_sub);
          w.op(Op.else);
          w.get(d);
          w.get(s);
          w.op(Op.i64_div_s);
          w.op(Op.end);
        } else {
          // i64.rem_s(INT64_MIN, -1) is 0 in WebAssembly (no trap), as eBPF wants
          w.get(d);
          w.get(s);
          w.op(signed ? Op.i64_rem_s : div ? Op.i64_div_u : Op.i64_rem_u);
        }
        w.op(Op.end);
        w.set(d);
        return;
      }
      w.get(s);
      w.op(Op.i32_wrap_i64);
      w.tee(L.t32);
      w.op(Op.i32_eqz);
      w.block(Op.if, BLOCK_I64);
      if (div) w.i64c(0);
      else {
        d32();
        zext();
      }
      w.op(Op.else);
      if (signed && div) {
        w.get(L.t32);
        w.i32c(-1);
        w.op(Op.i32_eq);
        w.block(Op.if, BLOCK_I64);
        w.i32c(0);
        d32();
        w.op(Op.i32_sub);
        zext();
        w.op(Op.else);
        d32();
        w.get(L.t32);
        w.op(Op.i32_div_s);
        zext();
        w.op(Op.end);
      } else {
        d32();
        w.get(L.t32);
        w.op(signed ? Op.i32_rem_s : div ? Op.i32_div_u : Op.i32_rem_u);
        zext();
      }
      w.op(Op.end);
      w.set(d);
    };

    const atomic = (pc: number, insn: Insn) => {
      const sz = SIZE_BYTES[size(insn.code)];
      const imm = insn.imm;
      const is64 = sz === 8;
      const s = R[insn.src];
      if (imm === BPF_LOAD_ACQ) {
        const mo = address(pc, insn.src, insn.off, sz, false);
        w.mem(LOAD_U[sz], mo, ALIGN[sz]);
        w.set(R[insn.dst]);
        return;
      }
      if (imm === BPF_STORE_REL) {
        const mo = address(pc, insn.dst, insn.off, sz, true);
        w.get(s);
        w.mem(STORE[sz], mo, ALIGN[sz]);
        return;
      }
      const mo = address(pc, insn.dst, insn.off, sz, true);
      if (mo !== 0) {
        w.i32c(mo);
        w.op(Op.i32_add);
      }
      w.set(L.a32);
      const load = is64 ? Op.i64_load : Op.i32_load;
      const store = is64 ? Op.i64_store : Op.i32_store;
      const old = is64 ? L.t : L.t32;
      const val = () => {
        w.get(s);
        if (!is64) w.op(Op.i32_wrap_i64);
      };
      const widen = () => {
        if (!is64) w.op(Op.i64_extend_i32_u);
      };
      const al = is64 ? 3 : 2;
      w.get(L.a32);
      w.mem(load, 0, al);
      w.set(old);
      const base = imm & ~BPF_FETCH;
      if (imm === BPF_CMPXCHG) {
        w.get(old);
        w.get(R[0]);
        if (!is64) w.op(Op.i32_wrap_i64);
        w.op(is64 ? Op.i64_eq : Op.i32_eq);
        w.block(Op.if);
        w.get(L.a32);
        val();
        w.mem(store, 0, al);
        w.op(Op.end);
        w.get(old);
        widen();
        w.set(R[0]);
        return;
      }
      w.get(L.a32);
      if (imm === BPF_XCHG) val();
      else {
        w.get(old);
        val();
        w.op((is64 ? ATOMIC64 : ATOMIC32)[base]);
      }
      w.mem(store, 0, al);
      if (imm & BPF_FETCH) {
        w.get(old);
        widen();
        w.set(s);
      }
    };

    const ldPacket = (insn: Insn) => {
      const sz = SIZE_BYTES[size(insn.code)];
      if (mode(insn.code) === BPF_ABS) k32(insn.imm);
      else {
        w.get(R[insn.src]);
        w.op(Op.i32_wrap_i64);
        k32(insn.imm);
        w.op(Op.i32_add);
      }
      w.tee(L.t32);
      w.i32c(0);
      w.op(Op.i32_lt_s);
      w.get(L.t32);
      w.gget(G.pktLen);
      w.i32c(sz);
      w.op(Op.i32_sub);
      w.op(Op.i32_gt_s);
      w.op(Op.i32_or);
      w.block(Op.if);
      flushCount();
      w.call(Imp.stop0);
      stopCheck();
      w.op(Op.unreachable);
      w.op(Op.end);
      w.gget(G.pktBase);
      w.get(L.t32);
      w.op(Op.i32_add);
      if (sz === 1) w.mem(Op.i32_load8_u, 0);
      else if (sz === 2) {
        w.mem(Op.i32_load16_u, 0);
        w.tee(L.a32);
        w.i32c(8);
        w.op(Op.i32_shl);
        w.get(L.a32);
        w.i32c(8);
        w.op(Op.i32_shr_u);
        w.op(Op.i32_or);
        w.i32c(0xffff);
        w.op(Op.i32_and);
      } else {
        w.mem(Op.i32_load, 0);
        bswap32();
      }
      w.op(Op.i64_extend_i32_u);
      w.set(R[0]);
    };

    /** One instruction that is not a block terminator (or a call/ld_abs that ends its block). */
    const insnCode = (pc: number, insn: Insn) => {
      marks.push(w.length, pc);
      const c = cls(insn.code);
      switch (c) {
        case BPF_ALU:
        case BPF_ALU64:
          alu(insn);
          return;
        case BPF_LDX: {
          const sz = SIZE_BYTES[size(insn.code)];
          const mo = address(pc, insn.src, insn.off, sz, false);
          w.mem(mode(insn.code) === BPF_MEMSX ? LOAD_S[sz] : LOAD_U[sz], mo, ALIGN[sz]);
          w.set(R[insn.dst]);
          return;
        }
        case BPF_ST: {
          const sz = SIZE_BYTES[size(insn.code)];
          const mo = address(pc, insn.dst, insn.off, sz, true);
          k64(insn.imm);
          w.mem(STORE[sz], mo, ALIGN[sz]);
          return;
        }
        case BPF_STX: {
          if (mode(insn.code) === BPF_MEM) {
            const sz = SIZE_BYTES[size(insn.code)];
            const mo = address(pc, insn.dst, insn.off, sz, true);
            w.get(R[insn.src]);
            w.mem(STORE[sz], mo, ALIGN[sz]);
          } else atomic(pc, insn);
          return;
        }
        case BPF_LD: {
          if (insn.code === OPCODE_LD_IMM64) {
            if (insn.src === 0) k64(insn.imm, insn.imm2 ?? 0);
            else if (insn.src === BPF_PSEUDO_FUNC) {
              const t = A.resolve(pc, pc + 1 + insn.imm, 'function address');
              if (t < 0) {
                trapNow(-t - 1);
                return;
              }
              num64(options.codeBase + t * 8);
            } else {
              trapNow(
                -A.trap(
                  `pc ${pc}: ld_imm64 with pseudo source ${insn.src} is not resolved (a loader must replace it before the program runs)`,
                ) - 1,
              );
              return;
            }
            w.set(R[insn.dst]);
            return;
          }
          ldPacket(insn);
          return;
        }
        default: {
          const o = op(insn.code);
          if (o === BPF_EXIT) {
            exit();
            return;
          }
          if (o === BPF_CALL) {
            if (srcBit(insn.code) === BPF_X) {
              callx(pc, insn.dst);
            } else if (insn.src === BPF_PSEUDO_CALL) {
              const t = A.resolve(pc, pc + 1 + insn.imm, 'call');
              if (t < 0) trapNow(-t - 1);
              else localCall(pc, () => w.call(subIndex.get(t) as number));
            } else if (insn.src === BPF_PSEUDO_KFUNC_CALL) {
              trapNow(
                -A.trap(`pc ${pc}: kernel function calls (kfunc ${insn.imm}) are not supported by the VM`) -
                  1,
              );
            } else {
              const info =
                insn.imm === MAP_LOOKUP_ELEM && curR1 !== undefined && options.inlineMap
                  ? options.inlineMap(curR1)
                  : undefined;
              if (info) inlineLookup(pc, info, curR1 as number);
              else helperCall(pc, () => w.i32c(insn.imm), insn.imm);
            }
          }
          // jumps: the terminator is structural (cond() below)
        }
      }
    };

    const callx = (pc: number, dst: number) => {
      w.get(R[dst]);
      w.tee(L.a);
      w.op(Op.i32_wrap_i64);
      w.get(L.a);
      w.i64c(32);
      w.op(Op.i64_shr_u);
      w.op(Op.i32_wrap_i64);
      w.i32c(pc);
      w.call(Imp.callx);
      w.tee(L.t32);
      w.i32c(-1);
      w.op(Op.i32_eq);
      w.block(Op.if);
      helperCall(pc, () => {
        w.get(L.a);
        w.op(Op.i32_wrap_i64);
      });
      w.op(Op.else);
      localCall(pc, () => {
        w.get(L.t32);
        w.op(Op.call_indirect);
        w.u32(T.sub);
        w.u32(OWN_TABLE);
      });
      w.op(Op.end);
    };

    const cond = (insn: Insn) => {
      const c = cls(insn.code);
      const o = op(insn.code);
      const isX = srcBit(insn.code) === BPF_X;
      const d = R[insn.dst];
      const s = R[insn.src];
      if (c === BPF_JMP) {
        w.get(d);
        if (isX) w.get(s);
        else k64(insn.imm);
        if (o === BPF_JSET) {
          w.op(Op.i64_and);
          w.op(Op.i64_eqz);
          w.op(Op.i32_eqz);
        } else w.op(CMP64[o]);
      } else {
        w.get(d);
        w.op(Op.i32_wrap_i64);
        if (isX) {
          w.get(s);
          w.op(Op.i32_wrap_i64);
        } else k32(insn.imm);
        w.op(o === BPF_JSET ? Op.i32_and : CMP32[o]);
      }
    };

    // ---- prologue
    if (kind === 'entry') {
      if (A.usesStack) {
        for (const [lo, len] of frameRuns(frameTops)) {
          w.i32c(lo);
          w.i32c(0);
          w.i32c(len);
          w.op(Op.prefix_fc);
          w.u32(FC.memory_fill);
          w.byte(0);
        }
      }
      invalidateCache();
      w.i32c(0);
      w.gset(G.stop);
      // the packet (LD_ABS/LD_IND, and a tail-called program's packet)
      w.get(4);
      w.gset(G.pktBase);
      w.get(5);
      w.gset(G.pktLen);
      // r1 = useR1 ? r1 : memBase; r2 = useR1 ? 0 : memLen
      w.get(2);
      w.get(0);
      w.op(Op.i64_extend_i32_u);
      w.get(3);
      w.op(Op.select);
      w.set(R[1]);
      w.i64c(0);
      w.get(1);
      w.op(Op.i64_extend_i32_u);
      w.get(3);
      w.op(Op.select);
      w.set(R[2]);
      num64(F0);
      w.set(R[10]);
      num64(F0 - MAX_BPF_STACK);
      w.set(L.fpLo);
      w.i32c(F0 - MAX_BPF_STACK);
      w.set(L.fpLo32);
    } else {
      if (counting) {
        w.gget(G.count);
        w.set(L.count);
      }
      w.get(R[10]);
      w.i64c(-MAX_BPF_STACK);
      w.op(Op.i64_add);
      w.tee(L.fpLo);
      w.op(Op.i32_wrap_i64);
      w.set(L.fpLo32);
    }

    const result = structure(
      w,
      succ,
      {
        body: (x) => {
          const node = nodes[x];
          if (node.trap !== undefined) {
            trapNow(node.trap);
            return;
          }
          const b = node.block as Block;
          if (!counting) {
            // verified: no counter
          } else if (checks) {
            w.get(L.count);
            w.i64c(b.pcs.length);
            w.op(Op.i64_add);
            w.tee(L.count);
            num64(budget);
            w.op(Op.i64_gt_s);
            w.block(Op.if);
            flushCount();
            w.i32c(b.id);
            w.call(Imp.budget);
            w.op(Op.unreachable);
            w.op(Op.end);
          } else {
            w.get(L.count);
            w.i64c(b.pcs.length);
            w.op(Op.i64_add);
            w.set(L.count);
          }
          const last = b.pcs.length - 1;
          curR1 = undefined;
          for (let k = 0; k <= last; k++) {
            const pc = b.pcs[k];
            const insn = insns[A.at[pc]];
            const c = cls(insn.code);
            const prevR1: number | undefined = curR1;
            if (insn.code === OPCODE_LD_IMM64 && insn.dst === 1)
              curR1 = insn.src === 0 && (insn.imm2 ?? 0) === 0 ? insn.imm >>> 0 : undefined;
            else if (regDefs(insn).includes(1)) curR1 = undefined;
            if (c === BPF_JMP && op(insn.code) === BPF_CALL) curR1 = prevR1; // the call below reads it
            if (k === last && (c === BPF_JMP || c === BPF_JMP32)) {
              const o = op(insn.code);
              if (o === BPF_JA) {
                marks.push(w.length, pc);
                continue;
              }
              if (o !== BPF_CALL && o !== BPF_EXIT) {
                marks.push(w.length, pc); // a conditional jump: cond() and the structure emit it
                continue;
              }
            }
            insnCode(pc, insn);
            if (c === BPF_JMP && op(insn.code) === BPF_CALL) curR1 = undefined;
          }
        },
        cond: (x) => {
          const b = nodes[x].block as Block;
          cond(insns[A.at[b.pcs[b.pcs.length - 1]]]);
        },
        unroll: (x) => {
          // a short straight-line loop (no calls): four copies per back edge
          const b = nodes[x].block;
          if (b === undefined || b.pcs.length > UNROLL_MAX_INSNS) return 1;
          for (const pc of b.pcs) {
            const insn = insns[A.at[pc]];
            if (cls(insn.code) === BPF_JMP && op(insn.code) === BPF_CALL) return 1;
          }
          return UNROLL_COPIES;
        },
      },
      L.lbl,
      options.forceDispatch ?? false,
    );
    if (result.mode === 'dispatch') dispatchCount++;
    loopCount += result.loops;
    w.op(Op.unreachable);
    w.op(Op.end);
    const name = kind === 'entry' ? 'prog' : `subprog_${entryPc}`;
    return {
      name,
      entryPc,
      kind,
      index: kind === 'entry' ? FIRST_FUNC : (subIndex.get(entryPc) as number),
      body: w.finish(),
      params: kind === 'entry' ? ENTRY_PARAMS : SUB_PARAMS,
      locals: kind === 'entry' ? ENTRY_LOCALS : SUB_LOCALS,
      marks,
      mode: result.mode,
    };
  };

  functions.push(compileFunction(0, 'entry'));
  for (const e of subEntries) functions.push(compileFunction(e, 'sub'));

  // run(...entry params) → (r0, count): the program, then the programs it tail-calls, in a loop
  // (at most 33 of them): a tail call to a program of the chain table sets tail_next and ends the
  // caller; run calls the target through the table with r1 = tail_r1, the count adding up. A
  // target outside the table (tail_next = -1) is the host's to run: run returns.
  const repeatIndex = FIRST_FUNC + 1 + subEntries.length;
  const runIndex = repeatIndex + 1;
  const dw = new CodeWriter(96);
  for (let p = 0; p < ENTRY_PARAMS.length; p++) dw.get(p);
  dw.call(FIRST_FUNC);
  dw.set(7); // count
  dw.set(6); // r0
  dw.block();
  dw.block(Op.loop);
  dw.gget(G.tailNext);
  dw.tee(8);
  dw.i32c(0);
  dw.op(Op.i32_le_s);
  dw.brIf(1);
  dw.i32c(0);
  dw.gset(G.tailNext);
  dw.i32c(0);
  dw.i32c(0);
  dw.gget(G.tailR1);
  dw.i32c(1);
  dw.gget(G.tailPktBase);
  dw.gget(G.tailPktLen);
  dw.get(8);
  dw.op(Op.call_indirect);
  dw.u32(T.entry);
  dw.u32(CHAIN_TABLE);
  dw.get(7);
  dw.op(Op.f64_add);
  dw.set(7);
  dw.set(6);
  dw.br(0);
  dw.op(Op.end);
  dw.op(Op.end);
  dw.get(6);
  dw.get(7);
  dw.op(Op.end);

  // repeat(n, r1) → (r0, count, repeats left): run n times in a row with r1 as its context
  // (BPF_PROG_TEST_RUN's repeat loop, one JS→wasm transition for all of them), each run starting
  // a new tail-call chain. Ends early when a chain goes on outside the table (tail_next = -1): the
  // host finishes that run and calls again.
  const rw = new CodeWriter(64);
  rw.block(Op.loop);
  rw.i32c(0);
  rw.gset(G.tailCnt);
  rw.i32c(0);
  rw.i32c(0);
  rw.get(1);
  rw.i32c(1);
  rw.gget(G.pktBase);
  rw.gget(G.pktLen);
  rw.call(runIndex);
  rw.set(3);
  rw.set(2);
  rw.get(0);
  rw.i32c(1);
  rw.op(Op.i32_sub);
  rw.set(0);
  rw.gget(G.tailNext);
  rw.block(Op.if);
  rw.get(2);
  rw.get(3);
  rw.get(0);
  rw.op(Op.return);
  rw.op(Op.end);
  rw.get(0);
  rw.i32c(0);
  rw.op(Op.i32_gt_s);
  rw.brIf(0);
  rw.op(Op.end);
  rw.get(2);
  rw.get(3);
  rw.i32c(0);
  rw.op(Op.end);
  const extraFuncs: { type: number; locals: number[]; body: Uint8Array }[] = [
    { type: T.repeat, locals: [I64, F64], body: rw.finish() },
    { type: T.entry, locals: [I64, F64, I32], body: dw.finish() },
  ];
  const extraExports: ModuleSpec['exports'] = [
    { name: 'repeat', kind: 'func', index: repeatIndex },
    { name: 'run', kind: 'func', index: runIndex },
  ];
  // cb(index, r1..r5, r10) → r0: a function of the program called back by a helper (bpf_loop...),
  // at call depth 0 on the frames whose top is r10.
  const hasCallbacks = subEntries.length > 0;
  if (hasCallbacks) {
    const cw = new CodeWriter(64);
    epochCheck(cw);
    for (let r = 1; r <= 5; r++) cw.get(r);
    cw.i32c(0);
    cw.get(6);
    cw.get(0);
    cw.op(Op.call_indirect);
    cw.u32(T.sub);
    cw.u32(OWN_TABLE);
    cw.op(Op.end);
    extraFuncs.push({ type: T.cb, locals: [], body: cw.finish() });
    extraExports.push({ name: 'cb', kind: 'func', index: runIndex + 1 });
  }

  const extraNames = new Map<number, string>([
    [repeatIndex, '$repeat'],
    [runIndex, '$run'],
  ]);
  if (hasCallbacks) extraNames.set(runIndex + 1, '$cb');
  for (const f of hashFuncs.values()) {
    if (f.index !== repeatIndex + extraFuncs.length) throw internalError('hash lookup function index');
    extraNames.set(f.index, `$hash_lookup_${f.info.header.toString(16)}`);
    extraFuncs.push({ type: T.hash, locals: Array(7).fill(I32), body: hashLookupFunc(f.info) });
  }

  const spec: ModuleSpec = {
    types: [
      { params: [I32, I32, I64, I64, I64, I64, I64], results: [I64] },
      { params: [I32, I32, I32, I32], results: [] },
      { params: [I32], results: [] },
      { params: [I32, I32, I32], results: [I32] },
      { params: [], results: [] },
      { params: [I32, I32], results: [] },
      { params: ENTRY_PARAMS, results: [I64, F64] },
      { params: SUB_PARAMS, results: [I64] },
      { params: [I32, I32, I32, I32], results: [I32] },
      { params: [I32, I64], results: [I64, F64, I32] },
      { params: [I32, I64, I64, I64, I64, I64, I64], results: [I64] },
      { params: [I32], results: [I32] },
      { params: [I32, I32, F64, F64, F64, F64, F64], results: [F64] },
      { params: [F64, F64], results: [I32] },
    ],
    imports: [
      { module: 'host', name: 'helper', type: T.helper },
      { module: 'host', name: 'access', type: T.access },
      { module: 'host', name: 'trap', type: T.i32v },
      { module: 'host', name: 'budget', type: T.i32v },
      { module: 'host', name: 'callx', type: T.callx },
      { module: 'host', name: 'stop0', type: T.vv },
      { module: 'host', name: 'deep', type: T.deep },
      { module: 'host', name: 'lookup', type: T.lookup },
      { module: 'host', name: 'fast', type: T.fast },
      { module: 'host', name: 'tail', type: T.tail },
    ],
    memory: { module: 'host', name: 'memory' },
    importTable: { module: 'host', name: 'chain' },
    importGlobals: [
      { module: 'host', name: 'key', type: I64, mutable: true },
      { module: 'host', name: 'tail_next', type: I32, mutable: true },
      { module: 'host', name: 'tail_r1', type: I64, mutable: true },
      { module: 'host', name: 'tail_cnt', type: I32, mutable: true },
      { module: 'host', name: 'tail_pkt_base', type: I32, mutable: true },
      { module: 'host', name: 'tail_pkt_len', type: I32, mutable: true },
    ],
    globals: [
      { type: I64, mutable: true, init: -1 }, // rlo
      { type: I64, mutable: true, init: 0 }, // rend
      { type: I64, mutable: true, init: -1 }, // wlo
      { type: I64, mutable: true, init: 0 }, // wend
      { type: I64, mutable: true, init: 0 }, // count
      { type: I32, mutable: true, init: 0 }, // pktBase
      { type: I32, mutable: true, init: 0 }, // pktLen
      { type: I32, mutable: true, init: 0 }, // stop
      { type: I32, mutable: true, init: -1 }, // epoch
      { type: I64, mutable: true, init: 0 }, // stop_value
    ],
    funcs: [
      ...functions.map((f) => ({
        type: f.kind === 'entry' ? T.entry : T.sub,
        locals: f.locals,
        body: f.body,
      })),
      ...extraFuncs,
    ],
    table: subEntries.map((e) => subIndex.get(e) as number),
    exports: [
      { name: 'prog', kind: 'func', index: FIRST_FUNC },
      { name: 'stop_value', kind: 'global', index: G.stopValue },
      { name: 'rlo', kind: 'global', index: G.rlo },
      { name: 'rend', kind: 'global', index: G.rend },
      { name: 'wlo', kind: 'global', index: G.wlo },
      { name: 'wend', kind: 'global', index: G.wend },
      { name: 'count', kind: 'global', index: G.count },
      { name: 'pkt_base', kind: 'global', index: G.pktBase },
      { name: 'pkt_len', kind: 'global', index: G.pktLen },
      { name: 'stop', kind: 'global', index: G.stop },
      ...extraExports,
    ],
  };
  return {
    bytes: writeModule(spec),
    functions,
    traps: A.traps,
    blockPcs: A.blocks.map((b) => Int32Array.from(b.pcs)),
    tableIndex,
    subTailPcs,
    importNames: IMPORT_NAMES,
    lookups,
    hasCallbacks,
    extraNames,
    stats: {
      insns: insns.length,
      blocks: A.blocks.length,
      functions: functions.length,
      dispatch: dispatchCount,
      loops: loopCount,
    },
  };
}

/**
 * hash(key i32) → value address (0: no element): maps/hash.ts's lookup over its in-memory index,
 * inside the module. The key is in the current stack frame (the caller checked); the index, the
 * key copies and the header are the host's, so their loads need no checks.
 */
function hashLookupFunc(info: Extract<MapInline, { kind: 'hash' }>): Uint8Array {
  const key = 0;
  const h = 1;
  const base = 2;
  const mask = 3;
  const i = 4;
  const e = 5;
  const v = 6;
  const ka = 7;
  const n = info.keySize;
  const w = new CodeWriter(128);
  // h = indexHash(key)
  w.i32c(n);
  w.set(h);
  let o = 0;
  for (; o + 4 <= n; o += 4) {
    w.get(h);
    w.get(key);
    w.mem(Op.i32_load, o, 0);
    w.op(Op.i32_xor);
    w.i32c(INDEX_MUL);
    w.op(Op.i32_mul);
    w.tee(h);
    w.get(h);
    w.i32c(15);
    w.op(Op.i32_shr_u);
    w.op(Op.i32_xor);
    w.set(h);
  }
  for (; o < n; o++) {
    w.get(h);
    w.get(key);
    w.mem(Op.i32_load8_u, o, 0);
    w.op(Op.i32_xor);
    w.i32c(INDEX_MUL_BYTE);
    w.op(Op.i32_mul);
    w.set(h);
  }
  w.get(h);
  w.get(h);
  w.i32c(16);
  w.op(Op.i32_shr_u);
  w.op(Op.i32_xor);
  w.i32c(INDEX_MIX);
  w.op(Op.i32_mul);
  w.tee(h);
  w.get(h);
  w.i32c(13);
  w.op(Op.i32_shr_u);
  w.op(Op.i32_xor);
  w.set(h);
  // the table
  w.i32c(info.header);
  w.mem(Op.i32_load, 0, 2);
  w.set(base);
  w.i32c(info.header);
  w.mem(Op.i32_load, 4, 2);
  w.tee(mask);
  w.get(h);
  w.op(Op.i32_and);
  w.set(i);
  w.block(Op.loop);
  // e = base + i * 16; v = e.value (0: empty: not found)
  w.get(base);
  w.get(i);
  w.i32c(4);
  w.op(Op.i32_shl);
  w.op(Op.i32_add);
  w.tee(e);
  w.mem(Op.i32_load, 4, 2);
  w.tee(v);
  w.op(Op.i32_eqz);
  w.block(Op.if);
  w.i32c(0);
  w.op(Op.return);
  w.op(Op.end);
  w.get(e);
  w.mem(Op.i32_load, 0, 2);
  w.get(h);
  w.op(Op.i32_eq);
  w.block(Op.if);
  w.get(e);
  w.mem(Op.i32_load, 8, 2);
  w.set(ka);
  // the key copy == the key: 8 bytes at a time, then 4, 2, 1
  let first = true;
  const and = () => {
    if (!first) w.op(Op.i32_and);
    first = false;
  };
  let p = 0;
  for (; p + 8 <= n; p += 8) {
    w.get(ka);
    w.mem(Op.i64_load, p, 3);
    w.get(key);
    w.mem(Op.i64_load, p, 0);
    w.op(Op.i64_eq);
    and();
  }
  for (const [sz, load] of [
    [4, Op.i32_load],
    [2, Op.i32_load16_u],
    [1, Op.i32_load8_u],
  ] as const) {
    if (p + sz > n) continue;
    w.get(ka);
    w.mem(load, p, 0);
    w.get(key);
    w.mem(load, p, 0);
    w.op(Op.i32_eq);
    and();
    p += sz;
  }
  w.block(Op.if);
  w.get(v);
  if (info.cpuCell !== undefined) {
    w.i32c(info.cpuCell);
    w.mem(Op.i32_load, 0, 2);
    w.i32c(info.stride);
    w.op(Op.i32_mul);
    w.op(Op.i32_add);
  }
  w.op(Op.return);
  w.op(Op.end);
  w.op(Op.end);
  // the next entry of the probe run
  w.get(i);
  w.i32c(1);
  w.op(Op.i32_add);
  w.get(mask);
  w.op(Op.i32_and);
  w.set(i);
  w.br(0);
  w.op(Op.end);
  w.op(Op.unreachable);
  w.op(Op.end);
  return w.finish();
}

/** Contiguous runs [lo, length) covering the stack frames (for zeroing them at run start). */
function frameRuns(frameTops: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  const bases = frameTops.map((t) => t - MAX_BPF_STACK).sort((a, b) => a - b);
  for (const b of bases) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === b) last[1] += MAX_BPF_STACK;
    else runs.push([b, MAX_BPF_STACK]);
  }
  return runs;
}

export function internalError(message: string): TsbpfError {
  return new TsbpfError('runtime', `internal JIT error: ${message}`);
}
