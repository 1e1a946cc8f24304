/**
 * The verifier's abstract interpreter: the kernel's do_check over every path, with its checks and
 * its error sentences (kernel/bpf/verifier.c of Linux 6.18).
 */
import type { Btf } from '../btf/btf.js';
import { ATTACH_TYPES } from '../catalog/attach-types.js';
import { type HelperArg, helperById } from '../catalog/helpers.js';
import { MAP_FLAGS } from '../catalog/map-types.js';
import { CTX_STRUCTS, type ProgramType, programTypeById } from '../catalog/program-types.js';
import type { Insn } from '../isa/insn.js';
import { validate } from '../isa/insn.js';
import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_IND,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_MEMSX,
  BPF_MOV,
  BPF_NEG,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_X,
  BPF_XCHG,
  cls,
  mode,
  OPCODE_LD_IMM64,
  op,
  SIZE_BYTES,
  size,
  srcBit,
} from '../isa/opcodes.js';
import { branchTaken, refineBranch } from './branch.js';
import { ctxArgAccess, skipModifiers, structAccess, structIdsMatch } from './btf.js';
import { ALU_STRING, alignPad, kernelInsn } from './log.js';
import {
  type AluOp,
  addVarOffset,
  aluScalar,
  boundsEqual,
  coerceToSize,
  coerceToSizeSx,
  constBounds,
  isConst,
  markKnown,
  S64_MIN,
  s32,
  s64,
  syncBounds,
  u32,
  u64,
  unknownBounds,
  zext32,
} from './scalar.js';
import {
  cloneReg,
  cloneState,
  type Frame,
  frameStr,
  isPkt,
  isPointer,
  notInit,
  pointer,
  type Reg,
  Slot,
  type StackSlot,
  scalarConst,
  scalarUnknown,
  statesEqual,
  typeStr,
  type VState,
} from './state.js';
import { tnumAdd, tnumConst, tnumIsAligned, tnumIsConst, tnumStr } from './tnum.js';

export interface VerifierMap {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Map-in-map: the template of the inner maps (what a lookup in the outer map returns). */
  inner?: VerifierMap;
  /**
   * The value of a frozen map (libbpf's .rodata): with BPF_F_RDONLY_PROG, loads at constant
   * offsets are known constants, as the kernel's bpf_map_direct_read makes them.
   */
  frozenData?: Uint8Array;
}

/** A BTF func_info record: a function starts at slot `insn` (the kernel needs these for callbacks). */
export interface VerifierFunc {
  insn: number;
  name?: string;
}

export interface CheckOptions {
  progType: number;
  expectedAttachType?: number;
  maps: readonly VerifierMap[];
  /** BTF func_info (one record per function, in order); enables `ld_imm64 func` for callbacks. */
  funcInfo?: readonly VerifierFunc[];
  logLevel: 0 | 1 | 2;
  unprivileged: boolean;
  insnLimit: number;
  /**
   * The kernel's BTF (vmlinux): the types of BTF-typed kernel pointers (tp_btf/fentry arguments,
   * kfunc results) and kfunc prototypes. Without it those are refused.
   */
  kernelBtf?: Btf;
  /** attach_btf_id: the kernel BTF id a tracing program attaches to (FUNC, or `btf_trace_*` TYPEDEF). */
  attachBtfId?: number;
}

export interface CheckResult {
  ok: boolean;
  lines: string[];
  error?: { insn: number; message: string };
  stats: { processed: number; maxStatesPerInsn: number; totalStates: number; peakStates: number };
}

/** A rejection: the lines the kernel logs for it (the last is the error sentence). */
export class Reject {
  constructor(
    readonly lines: string[],
    readonly insn: number,
  ) {}
}

const MAX_BPF_STACK = 512;
const MAX_CALL_FRAMES = 8;
const BPF_MAX_VAR_OFF = 1n << 29n;
const BPF_MAX_VAR_SIZ = 1n << 29n;
const MAX_PACKET_OFF = 0xffff;
const CALLER_SAVED = [1, 2, 3, 4, 5];

/** Scalars of `cur` that differ from `old`'s become unknown; zeroed stack bytes that differ, misc. */
function widen(old: VState, cur: VState): void {
  if (old.frames.length !== cur.frames.length) return;
  const w = (o: Reg | undefined, c: Reg) => {
    if (c.t !== 'scalar' || (o?.t === 'scalar' && boundsEqual(o.b, c.b))) return;
    c.b = unknownBounds();
    unlink(c);
  };
  for (let f = 0; f < cur.frames.length; f++) {
    const of = old.frames[f];
    const cf = cur.frames[f];
    for (let r = 0; r < cf.regs.length; r++) w(of.regs[r], cf.regs[r]);
    for (let spi = 0; spi < cf.stack.length; spi++) {
      const cs = cf.stack[spi];
      const os = of.stack[spi];
      if (cs.spilled) w(os?.spilled, cs.spilled);
      for (let j = 0; j < 8; j++)
        if (cs.types[j] === Slot.ZERO && os?.types[j] !== Slot.ZERO) cs.types[j] = Slot.MISC;
    }
  }
}

/** Drops a scalar's links (id and BPF_ADD_CONST delta). */
function unlink(r: Reg): void {
  r.id = 0;
  r.off = 0;
  r.addConst = false;
}

const isMayGoto = (i: Insn): boolean =>
  i.code === (BPF_JMP | 0xe0) && i.src === 0 && i.dst === 0 && i.imm === 0;

const ALU_OPS: Record<number, AluOp> = {
  0: 'add',
  16: 'sub',
  32: 'mul',
  48: 'div',
  64: 'or',
  80: 'and',
  96: 'lsh',
  112: 'rsh',
  128: 'neg',
  144: 'mod',
  160: 'xor',
  192: 'arsh',
};

/** Helpers whose argument is a callback subprogram, and the callback's R1-R5 shape. */
const CALLBACK_HELPERS: Record<number, { fnArg: number; ret: [number, number] }> = {
  181: { fnArg: 1, ret: [0, 1] }, // bpf_loop(nr, fn, ctx, flags)
  164: { fnArg: 1, ret: [0, 1] }, // bpf_for_each_map_elem(map, fn, ctx, flags)
};

/** Map types a helper's map argument accepts (check_map_func_compatibility, helper side). */
const HELPER_MAP_TYPES: Record<number, number[]> = {
  25: [4], // perf_event_output
  22: [4], // perf_event_read
  55: [4], // perf_event_read_value
  27: [7], // get_stackid
  130: [27], // ringbuf_output
  131: [27], // ringbuf_reserve
  134: [27], // ringbuf_query
  51: [14, 16, 17, 25], // redirect_map
  37: [8], // current_task_under_cgroup: cgroup_array
  33: [8], // skb_under_cgroup
  81: [19, 21], // get_local_storage: (percpu_)cgroup_storage
  164: [1, 2, 5, 6, 9, 10], // for_each_map_elem: maps with map_for_each_callback
  87: [22, 23, 30], // map_push_elem: queue, stack, bloom_filter
  88: [22, 23], // map_pop_elem
  89: [22, 23, 30], // map_peek_elem
};

/** bpf_helper_changes_pkt_data: packet pointers are invalid after these. */
/**
 * The kfuncs tsbpf models, by name. bpf_cast_to_kern_ctx is in the kernel's common kfunc set,
 * registered for every program type.
 */
const KFUNCS: Readonly<Record<string, 'cast_to_kern_ctx'>> = {
  bpf_cast_to_kern_ctx: 'cast_to_kern_ctx',
};

/** is_acquire_function: helpers whose result is a reference the program must release. */
const SOCK_ACQUIRE_HELPERS = new Set([84, 85, 99]);
/** is_ptr_cast_function (socket casts): the result carries the argument's reference. */
const SOCK_CAST_HELPERS = new Set([95, 96]);

/** check_sock_access: bpf_sock_is_valid_access, bpf_sock_common_is_valid_access, bpf_tcp_sock_is_valid_access. */
function sockAccessOk(t: 'sock' | 'sock_common' | 'tcp_sock', off: number, sz: number): boolean {
  if (t === 'tcp_sock') {
    if (off < 0 || off >= 112 || off % sz !== 0) return false;
    return off === 80 || off === 88 ? sz === 8 : sz === 4;
  }
  // struct bpf_sock: type..priority are not in sock_common
  if (t === 'sock_common' && off >= 8 && off < 24) return false;
  if (off < 0 || off >= 80 || off % sz !== 0) return false;
  const narrow = (fieldSize: number) => sz <= fieldSize && (sz & (sz - 1)) === 0;
  // state, family, type, protocol, src_port, rx_queue_mapping (exact offsets); src_ip4, src_ip6,
  // dst_ip4, dst_ip6 (any offset in them)
  if ([72, 4, 8, 12, 44, 76].includes(off)) return narrow(4);
  if ((off >= 24 && off < 44) || (off >= 52 && off < 72)) return narrow(4);
  if (off >= 48 && off < 50) return narrow(sz === 4 ? 4 : 2); // dst_port
  if (off >= 50 && off < 52) return false;
  return sz === 4;
}

const PKT_CHANGING_HELPERS = new Set([
  9, 10, 11, 18, 19, 31, 38, 39, 43, 44, 50, 54, 63, 65, 73, 74, 75, 76, 90, 91,
]);

interface Checkpoint {
  state: VState;
  branches: number;
  parent: Checkpoint | undefined;
  done: boolean;
}

interface Pending {
  state: VState;
  insn: number;
  prev: number;
  logLen: number;
  cp: Checkpoint | undefined;
  speculative?: boolean;
}

export class Verifier {
  readonly lines: string[] = [];
  private readonly insns: (Insn | undefined)[] = []; // by slot; undefined for the second half of LD_IMM64
  private readonly prog: ProgramType | undefined;
  private idGen = 0;
  private processed = 0;
  private totalStates = 0;
  private peakStates = 0;
  private curStates = 0;
  private maxStatesPerInsn = 0;
  private readonly explored = new Map<number, Checkpoint[]>();
  private readonly pruneAt = new Set<number>();
  private readonly loopHeads = new Set<number>();
  private sinceCheckpoint = 0;
  private readonly hasMayGoto: boolean;
  private subprogs: number[] = [0];
  private readonly stackDepth: number[] = [];
  private readonly callEdges = new Map<number, Set<number>>();
  // per-instruction scratch: what the instruction touched, for the `; R...` annotation
  private scratchRegs = new Set<number>();
  private scratchSlots = new Set<number>();
  private scratchAll = false;
  private insnLineIdx = -1;
  private insnIdx = 0;
  private cur!: VState;
  /** opts.maps, then the inner map templates of map-in-maps (innerOf[i] is the index of maps[i]'s). */
  private readonly maps: VerifierMap[];
  private readonly innerOf: number[] = [];
  /**
   * Helper calls that may take a callback (re-entered after each callback run, the kernel's
   * callsite loop) and may_goto insns: where a state within an ancestor's converges.
   */
  private readonly callbackSites = new Set<number>();
  /** A line btf_ctx_access logs before `invalid bpf_context access`. */
  private ctxNote: string | undefined;

  constructor(
    insns: readonly Insn[],
    private readonly opts: CheckOptions,
  ) {
    this.maps = [...opts.maps];
    for (let i = 0; i < opts.maps.length; i++) {
      const inner = opts.maps[i].inner;
      if (!inner) continue;
      this.innerOf[i] = this.maps.length;
      this.maps.push(inner);
    }
    for (const i of insns) {
      this.insns.push(i);
      if (i.code === OPCODE_LD_IMM64) this.insns.push(undefined);
    }
    this.prog = programTypeById(opts.progType);
    this.hasMayGoto = insns.some(isMayGoto);
  }

  private get level(): number {
    return this.opts.logLevel;
  }
  private log(line: string): void {
    if (this.level) this.lines.push(line);
  }
  private fail(...lines: string[]): never {
    throw new Reject(lines, this.insnIdx);
  }

  run(): CheckResult {
    try {
      this.structure();
      this.doCheck();
      this.checkMaxStackDepth();
    } catch (e) {
      if (!(e instanceof Reject)) throw e;
      for (const l of e.lines) this.lines.push(l);
      return {
        ok: false,
        lines: this.lines,
        error: { insn: e.insn, message: e.lines[e.lines.length - 1] ?? '' },
        stats: this.stats(),
      };
    }
    return { ok: true, lines: this.level === 1 ? [] : this.lines, stats: this.stats() };
  }

  private stats() {
    return {
      processed: this.processed,
      maxStatesPerInsn: this.maxStatesPerInsn,
      totalStates: this.totalStates,
      peakStates: this.peakStates,
    };
  }

  // ---------------------------------------------------------------- structure

  private isJmp(i: Insn): boolean {
    const c = cls(i.code);
    return (c === BPF_JMP || c === BPF_JMP32) && op(i.code) !== BPF_CALL && op(i.code) !== BPF_EXIT;
  }
  private jmpTarget(pc: number, i: Insn): number {
    if (cls(i.code) === BPF_JMP32 && op(i.code) === BPF_JA) return pc + i.imm + 1;
    return pc + i.off + 1;
  }

  private structure(): void {
    const n = this.insns.length;
    // add_subprog_and_kfunc
    const starts = new Set<number>([0]);
    for (let pc = 0; pc < n; pc++) {
      const i = this.insns[pc];
      if (!i) continue;
      const isPseudoCall = i.code === (BPF_JMP | BPF_CALL) && i.src === BPF_PSEUDO_CALL;
      const isFunc = i.code === OPCODE_LD_IMM64 && i.src === BPF_PSEUDO_FUNC;
      if (!isPseudoCall && !isFunc) continue;
      if (this.opts.unprivileged && isPseudoCall) {
        this.insnIdx = pc;
        this.fail('loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN');
      }
      const t = pc + i.imm + 1;
      if (t < 0 || t >= n) {
        this.insnIdx = pc;
        this.fail(isFunc ? 'function pointer must point to a function entry' : 'call to invalid destination');
      }
      starts.add(t);
    }
    this.subprogs = [...starts].sort((a, b) => a - b);
    if (this.level >= 2) for (const [k, s] of this.subprogs.entries()) this.log(`func#${k} @${s}`);
    const fi = this.opts.funcInfo;
    if (fi) {
      // check_btf_func: one record per function, at its first instruction
      this.insnIdx = 0;
      if (fi.length !== this.subprogs.length)
        this.fail("number of funcs in func_info doesn't match number of subprogs");
      for (let k = 0; k < fi.length; k++)
        if (fi[k].insn !== this.subprogs[k])
          this.fail("func_info BTF section doesn't match subprog layout in BPF program");
    }
    for (let pc = 0; pc < n; pc++) {
      const i = this.insns[pc];
      if (i && i.code === (BPF_JMP | BPF_CALL) && i.src === 0 && CALLBACK_HELPERS[i.imm])
        this.callbackSites.add(pc);
      // may_goto: bounded at run time, so a state within an ancestor's at the insn is safe too
      if (i && isMayGoto(i)) this.callbackSites.add(pc);
    }
    // check_subprogs
    for (let k = 0; k < this.subprogs.length; k++) {
      const start = this.subprogs[k];
      const end = this.subprogs[k + 1] ?? n;
      this.stackDepth[k] = 0;
      for (let pc = start; pc < end; pc++) {
        const i = this.insns[pc];
        if (!i) continue;
        if (this.isJmp(i)) {
          const t = this.jmpTarget(pc, i);
          if (t < start || t >= end) {
            this.insnIdx = pc;
            this.fail(`jump out of range from insn ${pc} to ${t}`);
          }
        }
      }
      const last = this.insns[end - 1] ?? this.insns[end - 2];
      if (
        !last ||
        (last.code !== (BPF_JMP | BPF_EXIT) &&
          last.code !== (BPF_JMP | BPF_JA) &&
          last.code !== (BPF_JMP32 | BPF_JA))
      ) {
        this.insnIdx = end - 1;
        this.fail('last insn is not an exit or jmp');
      }
    }
    // resolve_pseudo_ldimm64: unknown opcodes and LD_IMM64 forms
    for (let pc = 0; pc < n; pc++) {
      const i = this.insns[pc];
      if (!i) continue;
      this.insnIdx = pc;
      const problem = isMayGoto(i) ? undefined : validate(i);
      if (problem?.startsWith('unknown opcode')) this.fail(problem);
      if (
        (op(i.code) === BPF_NEG || op(i.code) === BPF_END) &&
        (cls(i.code) === BPF_ALU || cls(i.code) === BPF_ALU64)
      ) {
        if (op(i.code) === BPF_NEG && srcBit(i.code) === BPF_X)
          this.fail(`unknown opcode ${i.code.toString(16).padStart(2, '0')}`);
        if (op(i.code) === BPF_END && cls(i.code) === BPF_ALU64 && srcBit(i.code) === BPF_X)
          this.fail(`unknown opcode ${i.code.toString(16).padStart(2, '0')}`);
      }
      if (i.code === OPCODE_LD_IMM64) {
        if (i.off !== 0) this.fail('invalid bpf_ld_imm64 insn');
        if (i.src === 0 || i.src === BPF_PSEUDO_FUNC) continue;
        if (i.src === 3)
          this.fail('kernel is missing BTF, make sure CONFIG_DEBUG_INFO_BTF=y is specified in Kconfig.');
        if (
          i.src !== BPF_PSEUDO_MAP_FD &&
          i.src !== BPF_PSEUDO_MAP_VALUE &&
          i.src !== BPF_PSEUDO_MAP_IDX &&
          i.src !== BPF_PSEUDO_MAP_IDX_VALUE
        )
          this.fail('unrecognized bpf_ld_imm64 insn');
        const m = this.opts.maps[i.imm];
        if (!m || i.imm < 0) {
          if (i.src === BPF_PSEUDO_MAP_IDX || i.src === BPF_PSEUDO_MAP_IDX_VALUE)
            this.fail('fd_idx without fd_array is invalid');
          this.fail(`fd ${i.imm} is not pointing to valid bpf_map`);
        }
        if (i.src === BPF_PSEUDO_MAP_VALUE || i.src === BPF_PSEUDO_MAP_IDX_VALUE) {
          const off = (i.imm2 ?? 0) >>> 0;
          if (m.type !== 2) this.fail('no direct value access support for this map type');
          if (off >= m.valueSize)
            this.fail(`invalid access to map value pointer, value_size=${m.valueSize} off=${off}`);
        }
      } else if (problem?.startsWith('invalid BPF_LD_IMM')) {
      }
    }
    this.checkCfg();
    for (const pc of this.callbackSites) this.pruneAt.add(pc);
  }

  /** check_cfg: reachability, back-edges (unprivileged), jumps into LD_IMM64. */
  private checkCfg(): void {
    const n = this.insns.length;
    const seen = new Uint8Array(n);
    const onStack = new Uint8Array(n);
    const stack: { pc: number; succ: number[]; k: number }[] = [];
    const succOf = (pc: number): number[] => {
      const i = this.insns[pc];
      if (!i) return [pc + 1];
      const c = cls(i.code);
      const o = op(i.code);
      if ((c === BPF_JMP || c === BPF_JMP32) && o === BPF_EXIT) return [];
      if (c === BPF_JMP && o === BPF_CALL) {
        const out = [pc + 1];
        if (i.src === BPF_PSEUDO_CALL) out.push(pc + i.imm + 1);
        return out;
      }
      if (i.code === OPCODE_LD_IMM64) {
        const out = [pc + 2];
        if (i.src === BPF_PSEUDO_FUNC) out.push(pc + i.imm + 1);
        return out;
      }
      if (c === BPF_JMP || c === BPF_JMP32) {
        const t = this.jmpTarget(pc, i);
        if (o === BPF_JA) return [t];
        return [pc + 1, t];
      }
      return [pc + 1];
    };
    const visit = (root: number) => {
      if (seen[root]) return;
      seen[root] = 1;
      onStack[root] = 1;
      stack.push({ pc: root, succ: succOf(root), k: 0 });
      while (stack.length) {
        const top = stack[stack.length - 1];
        if (top.k >= top.succ.length) {
          onStack[top.pc] = 0;
          stack.pop();
          continue;
        }
        const w = top.succ[top.k++];
        if (w < 0 || w >= n) {
          this.insnIdx = top.pc;
          this.fail(`jump out of range from insn ${top.pc} to ${w}`);
        }
        const i = this.insns[top.pc];
        const isCallEdge =
          i &&
          ((i.code === (BPF_JMP | BPF_CALL) && w !== top.pc + 1) ||
            (i.code === OPCODE_LD_IMM64 && w !== top.pc + 2));
        if (onStack[w] && !isCallEdge) {
          if (this.opts.unprivileged) {
            this.insnIdx = top.pc;
            this.fail(`back-edge from insn ${top.pc} to ${w}`);
          }
          this.pruneAt.add(w);
          this.loopHeads.add(w);
          continue;
        }
        if (i && this.isJmp(i)) {
          this.pruneAt.add(w);
          this.pruneAt.add(top.pc);
        }
        if (i && i.code === (BPF_JMP | BPF_CALL)) this.pruneAt.add(top.pc + 1);
        if (seen[w]) continue;
        seen[w] = 1;
        onStack[w] = 1;
        stack.push({ pc: w, succ: succOf(w), k: 0 });
      }
    };
    visit(0);
    for (let pc = 0; pc < n; pc++) {
      const i = this.insns[pc];
      if (!i) continue;
      if (!seen[pc]) {
        this.insnIdx = pc;
        this.fail(`unreachable insn ${pc}`);
      }
      if (i.code === OPCODE_LD_IMM64 && seen[pc + 1]) {
        this.insnIdx = pc;
        this.fail(`jump into the middle of ldimm64 insn ${pc}`);
      }
    }
  }

  // ---------------------------------------------------------------- do_check

  private initialState(): VState {
    const regs: Reg[] = [];
    for (let r = 0; r < 11; r++) regs.push(notInit());
    regs[1] = pointer('ctx');
    regs[10] = pointer('stack', { frameno: 0 });
    return { frames: [{ regs, stack: [], frameno: 0, subprog: 0, callsite: -1 }], refs: [] };
  }

  private frame(): Frame {
    return this.cur.frames[this.cur.frames.length - 1];
  }
  private regs(): Reg[] {
    return this.frame().regs;
  }

  private printState(prefix: string, all: boolean): void {
    if (!this.level) return;
    const fi = this.cur.frames.length - 1;
    const only = all || this.scratchAll ? undefined : { regs: this.scratchRegs, slots: this.scratchSlots };
    if (only && only.regs.size === 0 && only.slots.size === 0) return;
    const s = frameStr(this.cur, fi, this.maps, only);
    if (prefix === ';') {
      // continue the instruction's line when nothing was logged after it
      if (this.insnLineIdx === this.lines.length - 1 && this.insnLineIdx >= 0) {
        const l = this.lines[this.insnLineIdx];
        this.lines[this.insnLineIdx] = `${l}${' '.repeat(alignPad(l.length + 1))};${s}`;
        return;
      }
      this.lines.push(`${this.insnIdx}:${s}`);
      return;
    }
    this.lines.push(`${prefix}${s}`);
  }

  private scratch(reg: number): void {
    this.scratchRegs.add(reg);
  }

  private doCheck(): void {
    const stack: Pending[] = [];
    this.cur = this.initialState();
    let insnIdx = 0;
    let prev = -1;
    let cp: Checkpoint | undefined;
    this.scratchAll = true;
    let printFrom = false;
    const finishPath = () => {
      let c = cp;
      while (c) {
        c.branches--;
        if (c.branches > 0) break;
        c.done = true;
        c = c.parent;
      }
    };
    for (;;) {
      this.insnIdx = insnIdx;
      const insn = this.insns[insnIdx];
      if (++this.processed > this.opts.insnLimit) {
        this.fail(`BPF program is too large. Processed ${this.processed} insn`);
      }
      if (insnIdx >= this.insns.length || insn === undefined) {
        this.fail(`invalid insn idx ${insnIdx} insn_cnt ${this.insns.length}`);
      }
      // pruning
      let pruned = false;
      if (this.pruneAt.has(insnIdx)) {
        const list = this.explored.get(insnIdx) ?? [];
        for (const old of list) {
          if (old.done) {
            if (statesEqual(old.state, this.cur, false)) {
              pruned = true;
              break;
            }
          }
        }
        if (!pruned && this.callbackSites.has(insnIdx)) {
          // a helper call re-entered after a callback run: the iteration has converged when the
          // state is within one still being explored here (is_state_visited's calls_callback case)
          const ancestors: Checkpoint[] = [];
          for (let a = cp; a; a = a.parent) if (!a.done && list.includes(a)) ancestors.push(a);
          pruned = ancestors.some((a) => statesEqual(a.state, this.cur, false));
          if (!pruned && ancestors.length >= 4) {
            // without precision tracking a counter never converges: widen the scalars that keep
            // changing to unknown (a superset, so sound) and try again
            widen(ancestors[0].state, this.cur);
            pruned = ancestors.some((a) => statesEqual(a.state, this.cur, false));
          }
        } else if (!pruned && this.loopHeads.has(insnIdx)) {
          for (let a = cp; a; a = a.parent) {
            if (!a.done && list.includes(a) && statesEqual(a.state, this.cur, true)) {
              // with may_goto in the program the loop is bounded at run time: the repeat is safe
              if (this.hasMayGoto) {
                pruned = true;
                break;
              }
              this.fail(`infinite loop detected at insn ${insnIdx}`);
            }
          }
        }
        const force = this.loopHeads.has(insnIdx) || this.callbackSites.has(insnIdx);
        if (!pruned && (force || this.sinceCheckpoint >= 8)) {
          if (list.length < 64) {
            this.sinceCheckpoint = 0;
            const ncp: Checkpoint = { state: cloneState(this.cur), branches: 1, parent: cp, done: false };
            list.push(ncp);
            this.explored.set(insnIdx, list);
            this.totalStates++;
            this.curStates++;
            if (this.curStates > this.peakStates) this.peakStates = this.curStates;
            if (list.length > this.maxStatesPerInsn) this.maxStatesPerInsn = list.length;
            cp = ncp;
          }
        }
      }
      this.sinceCheckpoint++;
      if (pruned) {
        if (this.level >= 2) {
          this.lines.push(`${insnIdx}: safe`);
        }
        finishPath();
        const next = this.popState(stack);
        if (!next) break;
        ({ insnIdx, prev, cp } = next);
        printFrom = true;
        continue;
      }
      if (this.level) {
        if (printFrom) {
          this.lines.push(
            `from ${prev} to ${insnIdx}:${frameStr(this.cur, this.cur.frames.length - 1, this.maps)}`,
          );
          printFrom = false;
          this.scratchAll = true;
        }
        if (this.scratchAll || this.scratchRegs.size || this.scratchSlots.size) {
          this.printState(';', false);
        }
        this.lines.push(
          `${insnIdx}: ${kernelInsn(
            insn,
            (i) => 0xffff888100000000n + BigInt(i) * 0x1000n,
            (id) => this.kfuncName(id),
          )}`,
        );
        this.insnLineIdx = this.lines.length - 1;
      }
      this.scratchRegs = new Set();
      this.scratchSlots = new Set();
      this.scratchAll = false;
      const r = this.step(insn, insnIdx, stack, cp);
      if (r.branchPushed) {
        if (cp) cp.branches++;
      }
      if (r.next === 'exit') {
        if (this.level) this.printState(';', false);
        finishPath();
        const next = this.popState(stack);
        if (!next) break;
        ({ insnIdx, prev, cp } = next);
        printFrom = true;
        continue;
      }
      if (r.printAll) this.scratchAll = true;
      prev = insnIdx;
      insnIdx = r.next;
    }
  }

  private popState(
    stack: Pending[],
  ): { insnIdx: number; prev: number; cp: Checkpoint | undefined } | undefined {
    const p = stack.pop();
    if (!p) return undefined;
    this.cur = p.state;
    if (this.level === 1) this.lines.length = Math.min(this.lines.length, p.logLen);
    this.insnLineIdx = -1;
    return { insnIdx: p.insn, prev: p.prev, cp: p.cp };
  }

  private pushState(
    stack: Pending[],
    state: VState,
    insn: number,
    prev: number,
    cp: Checkpoint | undefined,
  ): void {
    if (stack.length > 8192) this.fail(`The sequence of ${stack.length} jumps is too complex.`);
    stack.push({ state, insn, prev, logLen: this.lines.length, cp });
  }

  // ---------------------------------------------------------------- registers

  private readReg(regno: number): Reg {
    this.scratch(regno);
    const r = this.regs()[regno];
    if (r.t === 'not_init') this.fail(`R${regno} !read_ok`);
    return r;
  }
  private checkDst(regno: number): void {
    this.scratch(regno);
    if (regno === 10) this.fail('frame pointer is read only');
  }
  private setReg(regno: number, r: Reg): void {
    this.scratch(regno);
    this.regs()[regno] = r;
  }

  // ---------------------------------------------------------------- step

  private step(
    insn: Insn,
    pc: number,
    stack: Pending[],
    cp: Checkpoint | undefined,
  ): { next: number | 'exit'; branchPushed?: boolean; printAll?: boolean } {
    if (isMayGoto(insn)) {
      // may_goto: the kernel bounds the loop at run time; both ways are explored
      const other = cloneState(this.cur);
      this.pushState(stack, other, pc + insn.off + 1, pc, cp);
      return { next: pc + 1, branchPushed: true };
    }
    const problem = validate(insn);
    if (problem)
      this.fail(problem === 'BPF_ALU64 uses reserved fields' ? 'BPF_ALU uses reserved fields' : problem);
    const c = cls(insn.code);
    if (c === BPF_ALU || c === BPF_ALU64) {
      this.checkAlu(insn);
      return { next: pc + 1 };
    }
    if (c === BPF_LDX) {
      const src = this.readReg(insn.src);
      this.checkDst(insn.dst);
      const sz = SIZE_BYTES[size(insn.code)];
      this.checkMemAccess(insn.src, src, insn.off, sz, 'read', insn.dst, mode(insn.code) === BPF_MEMSX);
      return { next: pc + 1 };
    }
    if (c === BPF_STX) {
      if (mode(insn.code) === BPF_ATOMIC) {
        this.checkAtomic(insn);
        return { next: pc + 1 };
      }
      this.readReg(insn.src);
      const dst = this.readReg(insn.dst);
      this.checkMemAccess(insn.dst, dst, insn.off, SIZE_BYTES[size(insn.code)], 'write', insn.src, false);
      return { next: pc + 1 };
    }
    if (c === BPF_ST) {
      const dst = this.readReg(insn.dst);
      this.checkMemAccess(insn.dst, dst, insn.off, SIZE_BYTES[size(insn.code)], 'write', -1, false, insn.imm);
      return { next: pc + 1 };
    }
    if (c === BPF_LD) {
      if (insn.code === OPCODE_LD_IMM64) {
        this.checkLdImm64(insn);
        return { next: pc + 2 };
      }
      this.checkLdAbs(insn);
      return { next: pc + 1 };
    }
    // JMP / JMP32
    const o = op(insn.code);
    if (o === BPF_CALL) {
      if (insn.src === BPF_PSEUDO_CALL) return this.checkPseudoCall(insn, pc);
      if (insn.src === BPF_PSEUDO_KFUNC_CALL) return this.checkKfuncCall(insn, pc);
      if (srcBit(insn.code) === BPF_X) this.fail(`unknown opcode ${insn.code.toString(16)}`);
      return this.checkHelperCall(insn, pc, stack, cp);
    }
    if (o === BPF_EXIT) return this.checkExit(pc);
    if (o === BPF_JA) {
      return { next: this.jmpTarget(pc, insn) };
    }
    return this.checkCondJmp(insn, pc, stack, cp);
  }

  // ---------------------------------------------------------------- ALU

  private checkAlu(insn: Insn): void {
    const is64 = cls(insn.code) === BPF_ALU64;
    const o = op(insn.code);
    const regs = this.regs();
    if (o === BPF_END || o === BPF_NEG) {
      this.readReg(insn.dst);
      this.checkDst(insn.dst);
      const d = regs[insn.dst];
      if (isPointer(d)) {
        if (this.opts.unprivileged) this.fail(`R${insn.dst} pointer arithmetic prohibited`);
        this.setReg(insn.dst, scalarUnknown());
        return;
      }
      if (o === BPF_NEG) {
        const nb = { ...d.b };
        aluScalar('neg', nb, constBounds(0n), is64);
        this.setReg(insn.dst, { ...scalarUnknown(), b: nb });
        return;
      }
      // byte swap: a constant stays constant, anything else becomes unknown of the width
      const width = insn.imm;
      if (isConst(d.b)) {
        let v = d.b.var.value;
        const swap = (x: bigint, bytes: number) => {
          let out = 0n;
          for (let k = 0; k < bytes; k++) out = (out << 8n) | ((x >> BigInt(8 * k)) & 0xffn);
          return out;
        };
        const mask = (1n << BigInt(width)) - 1n;
        const toBe = srcBit(insn.code) === BPF_X;
        v = is64 || toBe ? swap(v & mask, width / 8) : v & mask;
        this.setReg(insn.dst, scalarConst(v));
        return;
      }
      if (!is64 && srcBit(insn.code) !== BPF_X) {
        // to-little-endian on a little-endian machine: a truncation
        const r = cloneReg(d);
        unlink(r);
        if (width < 64) coerceToSize(r.b, width / 8);
        this.setReg(insn.dst, r);
        return;
      }
      const r = scalarUnknown();
      if (width < 64) coerceToSize(r.b, width / 8);
      this.setReg(insn.dst, r);
      return;
    }
    if (o === BPF_MOV) {
      if (srcBit(insn.code) === BPF_X) {
        const src = this.readReg(insn.src);
        this.checkDst(insn.dst);
        if (is64) {
          if (insn.off === 0) {
            if (src.t === 'scalar' && src.addConst) unlink(src);
            if (src.t === 'scalar' && !src.id && !isConst(src.b)) src.id = ++this.idGen;
            this.setReg(insn.dst, cloneReg(src));
          } else {
            if (isPointer(src)) {
              if (this.opts.unprivileged) this.fail(`R${insn.src} sign-extension part of pointer`);
              this.setReg(insn.dst, scalarUnknown());
              return;
            }
            const r = cloneReg(src);
            unlink(r);
            coerceToSizeSx(r.b, insn.off / 8, false);
            this.setReg(insn.dst, r);
          }
        } else {
          if (isPointer(src)) {
            if (this.opts.unprivileged) this.fail(`R${insn.src} partial copy of pointer`);
            this.setReg(insn.dst, scalarUnknown());
            this.regs()[insn.dst].b = unknownBounds();
            zext32(this.regs()[insn.dst].b);
            syncBounds(this.regs()[insn.dst].b);
            return;
          }
          const r = cloneReg(src);
          unlink(r);
          if (insn.off === 0) {
            r.b.var = { value: r.b.var.value & 0xffffffffn, mask: r.b.var.mask & 0xffffffffn };
            zext32(r.b);
            syncBounds(r.b);
          } else {
            coerceToSizeSx(r.b, insn.off / 8, true);
          }
          this.setReg(insn.dst, r);
        }
      } else {
        this.checkDst(insn.dst);
        this.setReg(insn.dst, scalarConst(is64 ? BigInt(insn.imm) : u32(BigInt(insn.imm))));
      }
      return;
    }
    // other ALU ops
    let src: Reg;
    if (srcBit(insn.code) === BPF_X) src = this.readReg(insn.src);
    else src = scalarConst(BigInt(insn.imm));
    const dst = this.readReg(insn.dst);
    this.checkDst(insn.dst);
    const aop = ALU_OPS[o];
    if (isPointer(src) && isPointer(dst)) {
      if (o === 0x10 && !this.opts.unprivileged) {
        this.setReg(insn.dst, scalarUnknown());
        return;
      }
      this.fail(`R${insn.dst} pointer ${ALU_STRING[o >> 4]} pointer prohibited`);
    }
    if (isPointer(src) || isPointer(dst)) {
      const ptrIsDst = isPointer(dst);
      this.adjustPtr(insn, ptrIsDst ? dst : src, ptrIsDst ? src : dst, ptrIsDst, is64, aop);
      return;
    }
    const nb = { ...dst.b };
    if (aop === 'div' || aop === 'mod') {
      // division: the kernel tracks no bounds; constants fold
      // the kernel computes no bounds for division (is_safe_to_compute_dst_reg_range), constants included
      this.setReg(insn.dst, scalarUnknown());
      return;
    }
    aluScalar(aop, nb, src.b, is64);
    const r = { ...scalarUnknown(), b: nb };
    // adjust_reg_min_max_vals: `rX += const` keeps the link as BPF_ADD_CONST (once, delta in s32)
    if (aop === 'add' && is64 && dst.id && isConst(src.b) && !this.opts.unprivileged) {
      const val = src.b.var.value;
      if (!dst.addConst && val <= 0x7fffffffn) {
        r.id = dst.id;
        r.addConst = true;
        r.off = Number(val);
      }
    }
    this.setReg(insn.dst, r);
  }

  private adjustPtr(insn: Insn, ptr: Reg, off: Reg, ptrIsDst: boolean, is64: boolean, aop: AluOp): void {
    const dstno = insn.dst;
    const ob = off.b;
    const known = isConst(ob);
    if ((known && (ob.smin !== ob.smax || ob.umin !== ob.umax)) || ob.smin > ob.smax || ob.umin > ob.umax) {
      this.setReg(dstno, scalarUnknown());
      return;
    }
    if (!is64) {
      if (aop === 'sub' && !this.opts.unprivileged) {
        this.setReg(dstno, scalarUnknown());
        return;
      }
      this.fail(`R${dstno} 32-bit pointer arithmetic prohibited`);
    }
    if (ptr.maybeNull)
      this.fail(`R${dstno} pointer arithmetic on ${typeStr(ptr)} prohibited, null-check it first`);
    switch (ptr.t) {
      case 'ctx':
      case 'map_value':
      case 'map_key':
      case 'stack':
      case 'pkt':
      case 'pkt_meta':
      case 'mem':
      case 'func':
      case 'btf_id':
        break;
      case 'flow_keys':
        if (known) break;
        this.fail(`R${dstno} pointer arithmetic on ${typeStr(ptr)} prohibited`);
        break;
      case 'map_ptr':
        if (known && ob.smin === 0n && aop === 'add') break;
        this.fail(`R${dstno} pointer arithmetic on ${typeStr(ptr)} prohibited`);
        break;
      default:
        this.fail(`R${dstno} pointer arithmetic on ${typeStr(ptr)} prohibited`);
    }
    this.saneOffset(off, ptr);
    this.saneOffset(ptr, ptr);
    const d = cloneReg(ptr);
    switch (aop) {
      case 'add': {
        const s = ob.smin;
        if (known && Number(BigInt(ptr.off) + s) === Number(BigInt.asIntN(32, BigInt(ptr.off) + s))) {
          d.off = ptr.off + Number(s);
          break;
        }
        d.b = addVarOffset(ptr.b, ob, false);
        if (isPkt(ptr)) {
          d.id = ++this.idGen;
          d.range = 0;
        }
        break;
      }
      case 'sub': {
        if (!ptrIsDst) this.fail(`R${dstno} tried to subtract pointer from scalar`);
        if (ptr.t === 'stack') this.fail(`R${dstno} subtraction from stack pointer prohibited`);
        const s = ob.smin;
        if (known && BigInt(ptr.off) - s === BigInt.asIntN(32, BigInt(ptr.off) - s)) {
          d.off = ptr.off - Number(s);
          break;
        }
        d.b = addVarOffset(ptr.b, ob, true);
        if (isPkt(ptr)) {
          d.id = ++this.idGen;
          if (ob.smin < 0n) d.range = 0;
        }
        break;
      }
      case 'and':
      case 'or':
      case 'xor':
        this.fail(`R${dstno} bitwise operator ${ALU_STRING[op(insn.code) >> 4]} on pointer prohibited`);
        break;
      default:
        this.fail(`R${dstno} pointer arithmetic with ${ALU_STRING[op(insn.code) >> 4]} operator prohibited`);
    }
    this.saneOffset(d, ptr);
    this.setReg(dstno, d);
  }

  /** check_reg_sane_offset. */
  private saneOffset(reg: Reg, ptr: Reg): void {
    const t = typeStr(ptr);
    const known = isConst(reg.b);
    const val = s64(reg.b.var.value);
    if (known && (val >= BPF_MAX_VAR_OFF || val <= -BPF_MAX_VAR_OFF))
      this.fail(`math between ${t} pointer and ${val} is not allowed`);
    if (reg.off >= Number(BPF_MAX_VAR_OFF) || reg.off <= -Number(BPF_MAX_VAR_OFF))
      this.fail(`${t} pointer offset ${reg.off} is not allowed`);
    if (reg.b.smin === S64_MIN)
      this.fail(`math between ${t} pointer and register with unbounded min value is not allowed`);
    if (reg.b.smin >= BPF_MAX_VAR_OFF || reg.b.smin <= -BPF_MAX_VAR_OFF)
      this.fail(`value ${reg.b.smin} makes ${t} pointer be out of bounds`);
  }

  // ---------------------------------------------------------------- LD_IMM64, LD_ABS

  private checkLdImm64(insn: Insn): void {
    this.checkDst(insn.dst);
    const m = this.maps[insn.imm];
    switch (insn.src) {
      case 0:
        this.setReg(insn.dst, scalarConst((BigInt(insn.imm2 ?? 0) << 32n) | BigInt(insn.imm >>> 0)));
        return;
      case BPF_PSEUDO_FUNC: {
        if (!this.opts.funcInfo) this.fail('missing btf func_info');
        const target = this.insnIdx + insn.imm + 1;
        this.setReg(insn.dst, pointer('func', { subprog: this.subprogs.indexOf(target) }));
        return;
      }
      case BPF_PSEUDO_MAP_FD:
      case BPF_PSEUDO_MAP_IDX:
        this.setReg(insn.dst, pointer('map_ptr', { map: insn.imm }));
        return;
      case BPF_PSEUDO_MAP_VALUE:
      case BPF_PSEUDO_MAP_IDX_VALUE:
        this.setReg(insn.dst, pointer('map_value', { map: insn.imm, off: (insn.imm2 ?? 0) | 0 }));
        void m;
        return;
    }
  }

  private checkLdAbs(insn: Insn): void {
    const t = this.prog?.name ?? '';
    if (
      ![
        'socket_filter',
        'sched_cls',
        'sched_act',
        'cgroup_skb',
        'lwt_in',
        'lwt_out',
        'lwt_xmit',
        'lwt_seg6local',
      ].includes(t)
    ) {
      this.fail('BPF_LD_[ABS|IND] instructions not allowed for this program type');
    }
    if (this.frame().subprog !== 0 && !this.opts.funcInfo)
      this.fail('LD_ABS is not allowed in subprogs without BTF');
    const r6 = this.readReg(6);
    if (mode(insn.code) === BPF_IND) this.readReg(insn.src);
    if (r6.t !== 'ctx') this.fail('at the time of BPF_LD_ABS|IND R6 != pointer to skb');
    if (this.cur.refs.length) {
      this.fail(
        ...this.cur.refs.map((r) => `Unreleased reference id=${r.id} alloc_insn=${r.insn}`),
        'BPF_LD_[ABS|IND] would lead to reference leak',
      );
    }
    for (const r of CALLER_SAVED) this.setReg(r, notInit());
    const r0 = scalarUnknown();
    const sz = SIZE_BYTES[size(insn.code)];
    if (sz < 8) coerceToSize(r0.b, sz);
    this.setReg(0, r0);
    void BPF_ABS;
  }

  // ---------------------------------------------------------------- memory

  private checkAtomic(insn: Insn): void {
    const sz = SIZE_BYTES[size(insn.code)];
    if (insn.imm === BPF_LOAD_ACQ) {
      const src = this.readReg(insn.src);
      this.checkDst(insn.dst);
      this.checkMemAccess(insn.src, src, insn.off, sz, 'read', insn.dst, false);
      return;
    }
    if (insn.imm === BPF_STORE_REL) {
      this.readReg(insn.src);
      const dst = this.readReg(insn.dst);
      this.checkMemAccess(insn.dst, dst, insn.off, sz, 'write', insn.src, false);
      return;
    }
    this.readReg(insn.src);
    const dst = this.readReg(insn.dst);
    if (insn.imm === BPF_CMPXCHG) this.readReg(0);
    const srcReg = this.regs()[insn.src];
    if (isPointer(srcReg) && this.opts.unprivileged) this.fail(`R${insn.src} leaks addr into mem`);
    if (dst.t === 'ctx' || isPkt(dst) || dst.t === 'flow_keys' || dst.t === 'sock')
      this.fail(`BPF_ATOMIC stores into R${insn.dst} ${typeStr(dst)} is not allowed`);
    this.strictAlign(dst, insn.off, sz);
    const fetch = (insn.imm & BPF_FETCH) !== 0;
    const loadReg = insn.imm === BPF_CMPXCHG ? 0 : insn.src;
    if (fetch) {
      if (loadReg === 10) this.fail('frame pointer is read only');
      this.checkMemAccess(insn.dst, dst, insn.off, sz, 'read', -1, false);
    } else {
      this.checkMemAccess(insn.dst, dst, insn.off, sz, 'read', -1, false);
    }
    this.checkMemAccess(insn.dst, this.regs()[insn.dst], insn.off, sz, 'write', -1, false);
    if (fetch) {
      const r = scalarUnknown();
      if (sz < 8) coerceToSize(r.b, sz);
      this.setReg(loadReg, r);
    }
    void BPF_XCHG;
  }

  private checkMemAccess(
    regno: number,
    reg: Reg,
    off: number,
    sz: number,
    t: 'read' | 'write',
    valueRegno: number,
    signExt: boolean,
    stImm?: number,
  ): void {
    const regs = this.regs();
    const value = valueRegno >= 0 ? regs[valueRegno] : undefined;
    const setLoaded = (r: Reg) => {
      if (valueRegno < 0 || t !== 'read') return;
      if (r.t === 'scalar' && sz < 8) {
        if (signExt) coerceToSizeSx(r.b, sz, false);
        else coerceToSize(r.b, sz);
      }
      this.setReg(valueRegno, r);
    };
    // alignment (stack always strict)
    if (reg.t === 'stack' && sz > 1) {
      const a = tnumAdd(reg.b.var, tnumConst(BigInt(reg.off + off)));
      if (!tnumIsAligned(a, sz)) {
        const tn = tnumIsConst(reg.b.var) ? `${s64(reg.b.var.value)}` : tnumStr(reg.b.var);
        this.fail(`misaligned stack access off ${tn}+${reg.off}+${off} size ${sz}`);
      }
    }
    const full = off + reg.off;
    if (reg.maybeNull) this.fail(`R${regno} invalid mem access '${typeStr(reg)}'`);
    switch (reg.t) {
      case 'map_value': {
        const m = this.maps[reg.map];
        if (t === 'write' && m.flags & MAP_FLAGS.BPF_F_RDONLY_PROG)
          this.fail(`write into map forbidden, value_size=${m.valueSize} off=${full} size=${sz}`);
        if (t === 'read' && m.flags & MAP_FLAGS.BPF_F_WRONLY_PROG)
          this.fail(`read from map forbidden, value_size=${m.valueSize} off=${full} size=${sz}`);
        this.checkRegion(regno, reg, full, sz, m.valueSize, false);
        if (t === 'write' && value && isPointer(value) && this.opts.unprivileged)
          this.fail(`R${valueRegno} leaks addr into map`);
        if (
          t === 'read' &&
          m.frozenData &&
          m.type === 2 &&
          m.flags & MAP_FLAGS.BPF_F_RDONLY_PROG &&
          isConst(reg.b)
        ) {
          // bpf_map_direct_read: a frozen read-only array's bytes are known
          const at = full + Number(s64(reg.b.var.value));
          if (at >= 0 && at + sz <= m.frozenData.length) {
            let v = 0n;
            for (let k = sz - 1; k >= 0; k--) v = (v << 8n) | BigInt(m.frozenData[at + k]);
            if (signExt) v = BigInt.asUintN(64, BigInt.asIntN(sz * 8, v));
            if (valueRegno >= 0) this.setReg(valueRegno, scalarConst(v));
            return;
          }
        }
        setLoaded(scalarUnknown());
        return;
      }
      case 'map_key': {
        const m = this.maps[reg.map];
        if (t === 'write') this.fail(`R${regno} cannot write into map_key`);
        this.checkRegion(regno, reg, full, sz, m.keySize, false);
        setLoaded(scalarUnknown());
        return;
      }
      case 'mem': {
        if (reg.maybeNull) break;
        if (t === 'write' && reg.rdonly) this.fail(`R${regno} cannot write into ${typeStr(reg)}`);
        this.checkRegion(regno, reg, full, sz, reg.memSize, false);
        setLoaded(scalarUnknown());
        return;
      }
      case 'ctx': {
        if (t === 'write' && value && isPointer(value) && this.opts.unprivileged)
          this.fail(`R${valueRegno} leaks addr into ctx`);
        if (reg.off) this.fail(`dereference of modified ctx ptr R${regno} off=${reg.off} disallowed`);
        if (!isConst(reg.b) || reg.b.var.value)
          this.fail(`variable ctx access var_off=${tnumStr(reg.b.var)} disallowed`);
        this.ctxNote = undefined;
        const res = this.ctxAccess(off, sz, t);
        if (!res) {
          const note = this.ctxNote;
          this.fail(...(note ? [note] : []), `invalid bpf_context access off=${off} size=${sz}`);
        }
        if (t === 'read') setLoaded(res === 'scalar' ? scalarUnknown() : res);
        return;
      }
      case 'stack':
        this.checkStackAccess(regno, reg, off, sz, t, valueRegno, stImm);
        return;
      case 'pkt':
      case 'pkt_meta': {
        if (t === 'write' && !this.pktWritable()) this.fail('cannot write into packet');
        if (t === 'write' && value && isPointer(value)) this.fail(`R${valueRegno} leaks addr into packet`);
        this.checkPacket(regno, reg, full, sz, false);
        setLoaded(scalarUnknown());
        return;
      }
      case 'sock':
      case 'sock_common':
      case 'tcp_sock': {
        // check_sock_access
        if (t === 'write') this.fail(`R${regno} cannot write into ${typeStr(reg)}`);
        if (reg.b.smin < 0n)
          this.fail(
            `R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`,
          );
        if (!sockAccessOk(reg.t, full, sz))
          this.fail(`R${regno} invalid ${typeStr(reg)} access off=${full} size=${sz}`);
        setLoaded(scalarUnknown());
        return;
      }
      case 'btf_id': {
        // check_ptr_to_btf_access
        const btf = this.opts.kernelBtf;
        if (!btf) this.fail(`R${regno} BTF pointer access needs the kernel BTF`);
        if (full < 0) this.fail(`R${regno} is ptr_${reg.btfName} invalid negative access: off=${full}`);
        if (!isConst(reg.b) || reg.b.var.value) {
          this.fail(
            `R${regno} is ptr_${reg.btfName} invalid variable offset: off=${full}, var_off=${tnumStr(reg.b.var)}`,
          );
        }
        if (t !== 'read') this.fail('only read is supported');
        const a = structAccess(btf, reg.btfId, full, sz);
        if (a.kind === 'error') this.fail(a.message);
        if (a.kind === 'ptr') {
          if (valueRegno >= 0) this.setReg(valueRegno, pointer('btf_id', { btfId: a.id, btfName: a.name }));
          return;
        }
        setLoaded(scalarUnknown());
        return;
      }
      case 'map_ptr': {
        // check_ptr_to_map_access: reads of the map's struct (bpf_array, bpf_htab...)
        const mt = this.maps[reg.map]?.type ?? -1;
        const tname = [2, 3, 4, 6, 8, 12].includes(mt)
          ? 'bpf_array'
          : [1, 5, 9, 10, 13].includes(mt)
            ? 'bpf_htab'
            : mt === 27
              ? 'bpf_ringbuf_map'
              : 'bpf_map';
        if (full < 0) this.fail(`R${regno} is ${tname} invalid negative access: off=${full}`);
        if (t === 'write') this.fail(`only read from ${tname} is supported`);
        // the VM's map identity is 64 bytes (struct bpf_map's leading fields): refuse past it
        if (full + sz > 64 || !isConst(reg.b) || reg.b.var.value !== 0n)
          this.fail(`R${regno} ${tname} access off=${full} size=${sz} is beyond what tsbpf models`);
        setLoaded(scalarUnknown());
        return;
      }
      case 'flow_keys': {
        if (full < 0 || full + sz > 56) this.fail(`invalid access to flow keys off=${full} size=${sz}`);
        setLoaded(scalarUnknown());
        return;
      }
      default:
        break;
    }
    this.fail(`R${regno} invalid mem access '${typeStr(reg)}'`);
  }

  /** check_generic_ptr_alignment with strict alignment (atomics). */
  private strictAlign(reg: Reg, off: number, sz: number): void {
    if (sz === 1) return;
    const desc: Partial<Record<string, string>> = {
      map_value: 'value ',
      map_key: 'key ',
      ctx: 'context ',
      stack: 'stack ',
      flow_keys: 'flow keys ',
    };
    const a = tnumAdd(reg.b.var, tnumConst(BigInt(reg.off + off)));
    if (!tnumIsAligned(a, sz)) {
      const tn = tnumIsConst(reg.b.var) ? `${s64(reg.b.var.value)}` : tnumStr(reg.b.var);
      this.fail(`misaligned ${desc[reg.t] ?? ''}access off ${tn}+${reg.off}+${off} size ${sz}`);
    }
  }

  private pktWritable(): boolean {
    return ['sched_cls', 'sched_act', 'xdp', 'lwt_xmit', 'sk_skb', 'sk_msg'].includes(this.prog?.name ?? '');
  }

  /** __check_mem_access's sentence for the region type. */
  private memErr(regno: number, reg: Reg, off: bigint, sz: number, memSize: number): string {
    switch (reg.t) {
      case 'map_key':
        return `invalid access to map key, key_size=${memSize} off=${off} size=${sz}`;
      case 'map_value':
        return `invalid access to map value, value_size=${memSize} off=${off} size=${sz}`;
      case 'pkt':
      case 'pkt_meta':
      case 'pkt_end':
        return `invalid access to packet, off=${off} size=${sz}, R${regno}(id=${reg.id},off=${off},r=${memSize})`;
      default:
        return `invalid access to memory, mem_size=${memSize} off=${off} size=${sz}`;
    }
  }
  private memOk(off: bigint, sz: number, memSize: number, zeroOk: boolean): boolean {
    const sizeOk = sz > 0 || (sz === 0 && zeroOk);
    return off >= 0n && sizeOk && off + BigInt(sz) <= BigInt(memSize);
  }

  /** check_mem_region_access. */
  private checkRegion(
    regno: number,
    reg: Reg,
    off: number,
    sz: number,
    memSize: number,
    zeroOk: boolean,
  ): void {
    const b = reg.b;
    const o = BigInt(off);
    if (
      b.smin < 0n &&
      (b.smin === S64_MIN || o + b.smin !== BigInt.asIntN(32, o + b.smin) || b.smin + o < 0n)
    ) {
      this.fail(`R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`);
    }
    if (!this.memOk(b.smin + o, sz, memSize, zeroOk)) {
      this.fail(
        this.memErr(regno, reg, b.smin + o, sz, memSize),
        `R${regno} min value is outside of the allowed memory range`,
      );
    }
    if (b.umax >= BPF_MAX_VAR_OFF)
      this.fail(`R${regno} unbounded memory access, make sure to bounds check any such access`);
    if (!this.memOk(b.umax + o, sz, memSize, zeroOk)) {
      this.fail(
        this.memErr(regno, reg, b.umax + o, sz, memSize),
        `R${regno} max value is outside of the allowed memory range`,
      );
    }
  }

  /** check_packet_access. */
  private checkPacket(regno: number, reg: Reg, off: number, sz: number, zeroOk: boolean): void {
    if (reg.b.smin < 0n)
      this.fail(`R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`);
    if (reg.range < 0 || !this.memOk(BigInt(off), sz, reg.range, zeroOk)) {
      this.fail(
        `invalid access to packet, off=${off} size=${sz}, R${regno}(id=${reg.id},off=${reg.off},r=${reg.range})`,
        `R${regno} offset is outside of the packet`,
      );
    }
    if (reg.b.umax + BigInt(off) + BigInt(sz) > BigInt(MAX_PACKET_OFF)) {
      this.fail(`R${regno} unbounded memory access, make sure to bounds check any such access`);
    }
  }

  /** is_valid_access for the program type's context. Returns the loaded register or undefined. */
  private ctxAccess(off: number, sz: number, t: 'read' | 'write'): Reg | 'scalar' | undefined {
    const p = this.prog;
    const name = p?.name ?? '';
    if (off < 0) return undefined;
    if (name === 'kprobe') {
      if (t !== 'read' || off % sz !== 0 || off + sz > 168) return undefined;
      return 'scalar';
    }
    if (name === 'tracepoint') {
      if (t !== 'read' || off < 8 || off >= 8192 || off % sz !== 0) return undefined;
      return 'scalar';
    }
    if (name === 'raw_tracepoint' || name === 'raw_tracepoint_writable') {
      if (t !== 'read' || off >= 8 * 12 || off % sz !== 0) return undefined;
      return 'scalar';
    }
    if (name === 'tracing' && this.opts.attachBtfId !== undefined && this.opts.kernelBtf) {
      // tracing_prog_is_valid_access + btf_ctx_access
      if (t !== 'read' || off >= 8 * 12 || off % sz !== 0) return undefined;
      const fexit = this.opts.expectedAttachType === 25 || this.opts.expectedAttachType === 26;
      const a = ctxArgAccess(this.opts.kernelBtf, this.opts.attachBtfId, off, sz, fexit);
      if (a.kind === 'error') {
        if (a.message) this.ctxNote = a.message;
        return undefined;
      }
      if (a.kind === 'scalar') return 'scalar';
      this.log(a.log);
      return pointer('btf_id', { btfId: a.id, btfName: a.name, trusted: true });
    }
    if (name === 'perf_event') {
      if (off + sz > 184 || off % sz !== 0) return undefined;
      if (t !== 'read') return undefined;
      if (off < 168 && sz !== 8) return undefined;
      return 'scalar';
    }
    const ctx = p?.ctx;
    if (!ctx) return undefined;
    const st = CTX_STRUCTS[ctx.struct];
    if (!st) return undefined;
    const allowed = t === 'read' ? ctx.read : ctx.write;
    if (!allowed) return undefined;
    for (const [fname, foff, fsize] of st.fields) {
      if (off < foff || off >= foff + fsize) continue;
      if (!allowed.includes(fname)) return undefined;
      // arrays of u32 (cb, remote_ip6...) are accessed per element
      const elem = fsize > 8 ? 4 : fsize;
      const eoff = foff + Math.floor((off - foff) / elem) * elem;
      if (sz === elem && off === eoff) {
        return this.ctxFieldReg(fname, sz);
      }
      if (sz === 8 && elem === 4 && fsize > 8 && off % 8 === 0 && off + 8 <= foff + fsize && fname === 'cb')
        return 'scalar';
      if (
        sz < elem &&
        t === 'read' &&
        ctx.narrowRead?.includes(fname) &&
        off + sz <= eoff + elem &&
        off % sz === 0
      )
        return 'scalar';
      return undefined;
    }
    return undefined;
  }

  private ctxFieldReg(field: string, sz: number): Reg | 'scalar' {
    const name = this.prog?.name ?? '';
    const pktTypes = [
      'sched_cls',
      'sched_act',
      'xdp',
      'cgroup_skb',
      'lwt_in',
      'lwt_out',
      'lwt_xmit',
      'lwt_seg6local',
      'sk_skb',
      'sk_msg',
      'flow_dissector',
      'sk_reuseport',
    ];
    if (pktTypes.includes(name)) {
      if (field === 'data') return pointer('pkt', { id: 0 });
      if (field === 'data_end') return pointer('pkt_end');
      if (field === 'data_meta') return pointer('pkt_meta');
    }
    if (name === 'flow_dissector' && field === 'flow_keys') return pointer('flow_keys');
    if (field === 'sk' && sz === 8) {
      return { ...pointer('sock_common'), maybeNull: true, id: ++this.idGen };
    }
    return 'scalar';
  }

  // ---- stack

  private slot(f: Frame, spi: number): StackSlot {
    while (f.stack.length <= spi) f.stack.push({ types: [0, 0, 0, 0, 0, 0, 0, 0], spilled: undefined });
    return f.stack[spi];
  }

  private checkStackAccess(
    regno: number,
    reg: Reg,
    off: number,
    sz: number,
    t: 'read' | 'write',
    valueRegno: number,
    stImm?: number,
  ): void {
    const f = this.cur.frames[reg.frameno] ?? this.frame();
    const full = off + reg.off;
    const constOff = isConst(reg.b);
    let minOff: bigint;
    let maxOff: bigint;
    if (!constOff && (reg.b.smax >= BPF_MAX_VAR_OFF || reg.b.smin <= -BPF_MAX_VAR_OFF)) {
      this.fail(
        `invalid unbounded variable-offset${t === 'read' ? ' read from' : ' write to'} stack R${regno}`,
      );
    }
    if (constOff) {
      minOff = s64(reg.b.var.value) + BigInt(full);
      maxOff = minOff + BigInt(sz);
    } else {
      minOff = reg.b.smin + BigInt(full);
      maxOff = reg.b.smax + BigInt(full) + BigInt(sz);
    }
    if (minOff < -BigInt(MAX_BPF_STACK) || minOff >= 0n || maxOff > 0n) {
      const extra = t === 'read' ? ' read from' : ' write to';
      if (constOff) this.fail(`invalid${extra} stack R${regno} off=${full} size=${sz}`);
      this.fail(
        `invalid variable-offset${extra} stack R${regno} var_off=${tnumStr(reg.b.var)} off=${full} size=${sz}`,
      );
    }
    if (!constOff && this.opts.unprivileged) {
      this.fail(
        `R${regno} variable stack access prohibited for !root, var_off=${tnumStr(reg.b.var)} off=${full}`,
      );
    }
    this.growStack(f, Number(-minOff));
    if (!constOff) {
      // variable-offset access
      if (t === 'write') {
        for (let a = minOff; a < maxOff; a++) {
          const slot = Number(-a - 1n);
          const s = this.slot(f, Math.floor(slot / 8));
          this.scratchSlots.add(Math.floor(slot / 8));
          if (s.types[slot % 8] === Slot.SPILL || s.spilled) {
            s.spilled = undefined;
            s.types = s.types.map((x) => (x === Slot.SPILL ? Slot.MISC : x));
          }
          if (s.types[slot % 8] !== Slot.ZERO || !(valueRegno >= 0 && this.isZero(this.regs()[valueRegno])))
            s.types[slot % 8] = Slot.MISC;
        }
        return;
      }
      let zeros = true;
      for (let a = minOff; a < maxOff; a++) {
        const slot = Number(-a - 1n);
        const s = this.slot(f, Math.floor(slot / 8));
        const ty = s.types[slot % 8];
        if (ty !== Slot.ZERO && !(ty === Slot.SPILL && s.spilled && this.isZero(s.spilled))) zeros = false;
        if (ty === Slot.INVALID && this.opts.unprivileged) {
          this.fail(
            `invalid variable-offset read from stack R${regno} var_off=${tnumStr(reg.b.var)} off=${full} size=${sz}`,
          );
        }
        if (ty === Slot.SPILL && s.spilled && s.spilled.t !== 'scalar' && this.opts.unprivileged) {
          this.fail(
            `invalid read from stack R${regno} var_off=${tnumStr(reg.b.var)}+${Number(a - minOff)} size ${sz}`,
          );
        }
      }
      if (valueRegno >= 0) this.setLoadedScalar(valueRegno, zeros ? scalarConst(0n) : scalarUnknown(), sz);
      return;
    }
    const at = Number(minOff);
    const slotIdx = -at - 1;
    const spi = Math.floor(slotIdx / 8);
    this.scratchSlots.add(spi);
    const s = this.slot(f, spi);
    if (t === 'write') {
      const value = valueRegno >= 0 ? this.regs()[valueRegno] : undefined;
      if (value && at % 8 === 0 && value.t === 'scalar' && !this.opts.unprivileged) {
        const r = cloneReg(value);
        this.saveSpill(s, r, sz);
      } else if (!value && at % 8 === 0 && stImm !== undefined && !this.opts.unprivileged) {
        this.saveSpill(s, scalarConst(BigInt(stImm)), sz);
      } else if (value && isPointer(value)) {
        if (sz !== 8) this.fail('invalid size of register spill');
        if (f !== this.frame() && value.t === 'stack')
          this.fail('cannot spill pointers to stack into stack frame of the caller');
        this.saveSpill(s, cloneReg(value), sz);
      } else {
        if (s.spilled || s.types.includes(Slot.SPILL)) {
          s.spilled = undefined;
          s.types = s.types.map((x) => (x === Slot.SPILL ? Slot.MISC : x));
        }
        const zero = (value && this.isZero(value)) || (!value && stImm === 0);
        for (let k = 0; k < sz; k++) s.types[(slotIdx - k) % 8] = zero ? Slot.ZERO : Slot.MISC;
      }
      return;
    }
    // read
    if (s.types[7] === Slot.SPILL && s.spilled) {
      const sp = s.spilled;
      const spillSize = s.types.filter((x) => x === Slot.SPILL).length;
      if (sz !== 8) {
        if (sp.t !== 'scalar') this.fail('invalid size of register fill');
        // reading part of a spilled scalar
        if (valueRegno >= 0) {
          const fits = sp.b.umax < 1n << BigInt(sz * 8);
          if (at % 8 === 0 && (sz === spillSize || fits)) this.setLoadedScalar(valueRegno, cloneReg(sp), sz);
          else this.setLoadedScalar(valueRegno, scalarUnknown(), sz);
        }
        return;
      }
      if (spillSize !== 8) {
        // a narrower spill read as 8 bytes: the rest must be readable
        for (let k = 0; k < 8 - spillSize; k++) {
          if (s.types[k] === Slot.INVALID && this.opts.unprivileged)
            this.fail(`invalid read from stack off ${at}+${0} size ${sz}`);
        }
        if (valueRegno >= 0) this.setReg(valueRegno, scalarUnknown());
        return;
      }
      if (valueRegno >= 0) {
        this.setReg(valueRegno, cloneReg(sp));
      }
      return;
    }
    let zeros = 0;
    for (let k = 0; k < sz; k++) {
      const ty = s.types[(slotIdx - k) % 8];
      if (ty === Slot.MISC) continue;
      if (ty === Slot.ZERO) {
        zeros++;
        continue;
      }
      if (ty === Slot.INVALID && !this.opts.unprivileged) continue;
      if (ty === Slot.SPILL && s.spilled?.t === 'scalar') continue;
      this.fail(`invalid read from stack off ${at}+${k} size ${sz}`);
    }
    if (valueRegno >= 0)
      this.setLoadedScalar(valueRegno, zeros === sz ? scalarConst(0n) : scalarUnknown(), sz);
  }

  private setLoadedScalar(regno: number, r: Reg, sz: number): void {
    if (r.t === 'scalar' && sz < 8) coerceToSize(r.b, sz);
    this.setReg(regno, r);
  }

  private isZero(r: Reg): boolean {
    return r.t === 'scalar' && isConst(r.b) && r.b.var.value === 0n;
  }

  private saveSpill(s: StackSlot, r: Reg, sz: number): void {
    s.spilled = r;
    for (let k = 8; k > 8 - sz; k--) s.types[k - 1] = Slot.SPILL;
    for (let k = 8 - sz; k > 0; k--) {
      const ty = s.types[k - 1];
      if (ty === Slot.SPILL) s.types[k - 1] = Slot.MISC;
      else if (ty !== Slot.ZERO && ty !== Slot.INVALID) s.types[k - 1] = Slot.MISC;
    }
  }

  private growStack(f: Frame, bytes: number): void {
    const need = Math.ceil(bytes / 8);
    while (f.stack.length < need) f.stack.push({ types: [0, 0, 0, 0, 0, 0, 0, 0], spilled: undefined });
    const k = f.subprog;
    const depth = Math.ceil(bytes / 8) * 8;
    if ((this.stackDepth[k] ?? 0) < depth) this.stackDepth[k] = depth;
  }

  // ---------------------------------------------------------------- jumps

  private checkCondJmp(
    insn: Insn,
    pc: number,
    stack: Pending[],
    cp: Checkpoint | undefined,
  ): { next: number; branchPushed?: boolean } {
    const is32 = cls(insn.code) === BPF_JMP32;
    const o = op(insn.code);
    const dst = this.readReg(insn.dst);
    let src: Reg;
    if (srcBit(insn.code) === BPF_X) {
      src = this.readReg(insn.src);
      if (isPointer(src) && this.opts.unprivileged && !(isPkt(src) || src.t === 'pkt_end')) {
        this.fail(`R${insn.src} pointer comparison prohibited`);
      }
    } else {
      src = scalarConst(BigInt(insn.imm));
    }
    if (
      isPointer(dst) &&
      this.opts.unprivileged &&
      !(isPkt(dst) || dst.t === 'pkt_end') &&
      !(srcBit(insn.code) === BPF_K && insn.imm === 0)
    ) {
      this.fail(`R${insn.dst} pointer comparison prohibited`);
    }
    const target = pc + insn.off + 1;
    const taken = branchTaken(dst, src, o, is32);
    if (taken === 1) return { next: target };
    if (taken === 0) return { next: pc + 1 };
    // both ways: the other branch is the jump target
    const other = cloneState(this.cur);
    const otherFrame = other.frames[other.frames.length - 1];
    const thisFrame = this.frame();
    const srcno = srcBit(insn.code) === BPF_X ? insn.src : -1;
    // null checks
    const nullCheck = (f: Frame, st: VState, isNull: boolean) => {
      const d = f.regs[insn.dst];
      const sreg = srcno >= 0 ? f.regs[srcno] : scalarConst(BigInt(insn.imm));
      if (d.maybeNull && this.isZero(sreg) && d.id) this.markPtrOrNull(st, d.id, isNull);
      else if (srcno >= 0 && sreg.maybeNull && this.isZero(d) && sreg.id)
        this.markPtrOrNull(st, sreg.id, isNull);
    };
    if (!is32 && (o === 0x10 || o === 0x50)) {
      // JEQ: jump branch is "equal"
      nullCheck(otherFrame, other, o === 0x10);
      nullCheck(thisFrame, this.cur, o === 0x50);
    }
    // packet range
    this.pktRange(insn, o, otherFrame, other, thisFrame, this.cur, srcno);
    // scalar refinement
    const ok1 = refineBranch(
      otherFrame.regs,
      insn.dst,
      srcno,
      srcno >= 0 ? undefined : BigInt(insn.imm),
      o,
      is32,
      true,
      (r) => this.linkScalars(other, r),
    );
    const ok2 = refineBranch(
      thisFrame.regs,
      insn.dst,
      srcno,
      srcno >= 0 ? undefined : BigInt(insn.imm),
      o,
      is32,
      false,
      (r) => this.linkScalars(this.cur, r),
    );
    if (!ok1 && !ok2) return { next: pc + 1 };
    if (!ok1) return { next: pc + 1 };
    if (!ok2) {
      this.cur = other;
      return { next: target };
    }
    this.pushState(stack, other, target, pc, cp);
    return { next: pc + 1, branchPushed: true };
  }

  /**
   * sync_linked_regs: after refining a scalar with an id, give every scalar sharing the id the same
   * bounds, shifted by the difference of their BPF_ADD_CONST deltas.
   */
  private linkScalars(st: VState, known: Reg): void {
    const id = known.id;
    if (!id) return;
    const sync = (r: Reg) => {
      if (r === known || r.t !== 'scalar' || r.id !== id) return;
      if ((!r.addConst && !known.addConst) || r.off === known.off) {
        r.b = { ...known.b, var: { ...known.b.var } };
        return;
      }
      const b = { ...known.b, var: { ...known.b.var } };
      aluScalar('add', b, constBounds(BigInt(r.off - known.off)), true);
      r.b = b;
    };
    for (const f of st.frames) {
      for (const r of f.regs) sync(r);
      for (const s of f.stack) if (s.spilled) sync(s.spilled);
    }
  }

  /** mark_ptr_or_null_regs: the `== NULL` branch of an acquired pointer releases its reference. */
  private markPtrOrNull(st: VState, id: number, isNull: boolean): void {
    let release = false;
    const fix = (r: Reg) => {
      if (!r.maybeNull || r.id !== id) return;
      if (isNull) {
        if (r.refId === id) release = true;
        Object.assign(r, scalarConst(0n));
      } else {
        r.maybeNull = false;
        r.id = 0;
      }
    };
    for (const f of st.frames) {
      f.regs.forEach(fix);
      for (const s of f.stack) if (s.spilled) fix(s.spilled);
    }
    if (release) st.refs = st.refs.filter((r) => r.id !== id);
  }

  private pktRange(
    insn: Insn,
    o: number,
    otherF: Frame,
    other: VState,
    thisF: Frame,
    cur: VState,
    srcno: number,
  ): void {
    if (srcno < 0 || cls(insn.code) === BPF_JMP32) return;
    const d = thisF.regs[insn.dst];
    const s = thisF.regs[srcno];
    const dataVsEnd = (a: Reg, b: Reg) =>
      (a.t === 'pkt' && b.t === 'pkt_end') ||
      (a.t === 'pkt_meta' && b.t === 'pkt' && b.off === 0 && isConst(b.b));
    let regno: number;
    let inTaken: boolean;
    let open: boolean;
    // "p' <= end" gives range off, "p' < end" gives off + 1
    if (dataVsEnd(d, s)) {
      regno = insn.dst;
      if (o === 0x20)
        [inTaken, open] = [false, false]; // p > end: fallthrough p <= end
      else if (o === 0xa0)
        [inTaken, open] = [true, true]; // p < end
      else if (o === 0x30)
        [inTaken, open] = [false, true]; // p >= end: fallthrough p < end
      else if (o === 0xb0)
        [inTaken, open] = [true, false]; // p <= end
      else return;
    } else if (dataVsEnd(s, d)) {
      regno = srcno;
      if (o === 0x20)
        [inTaken, open] = [true, true]; // end > p
      else if (o === 0xa0)
        [inTaken, open] = [false, false]; // end < p: fallthrough end >= p
      else if (o === 0x30)
        [inTaken, open] = [true, false]; // end >= p
      else if (o === 0xb0)
        [inTaken, open] = [false, true]; // end <= p: fallthrough end > p
      else return;
    } else return;
    const st = inTaken ? other : cur;
    const f = inTaken ? otherF : thisF;
    const p = f.regs[regno];
    if (p.off < 0 || (p.off === 0 && open)) return;
    if (p.b.umax > BigInt(MAX_PACKET_OFF) || p.b.umax + BigInt(p.off) > BigInt(MAX_PACKET_OFF)) return;
    const range = p.off + (open ? 1 : 0);
    const t = p.t;
    const id = p.id;
    for (const fr of st.frames) {
      for (const r of fr.regs) if (r.t === t && r.id === id) r.range = Math.max(r.range, range);
      for (const sl of fr.stack)
        if (sl.spilled && sl.spilled.t === t && sl.spilled.id === id)
          sl.spilled.range = Math.max(sl.spilled.range, range);
    }
  }

  // ---------------------------------------------------------------- calls

  private checkPseudoCall(insn: Insn, pc: number): { next: number; printAll: boolean } {
    const target = pc + insn.imm + 1;
    const k = this.subprogs.indexOf(target);
    this.enterFrame(pc, k, undefined, this.cur);
    return { next: target, printAll: true };
  }

  /** setup_func_entry on `st`: a callback keeps the caller's registers (the call is re-evaluated). */
  private enterFrame(
    callsite: number,
    subprog: number,
    cb: { helper: number; ret: [number, number]; args: Reg[] } | undefined,
    st: VState,
  ): void {
    if (st.frames.length >= MAX_CALL_FRAMES) {
      this.fail(`the call stack of ${st.frames.length + 1} frames is too deep`);
    }
    const caller = st.frames[st.frames.length - 1];
    const frameno = st.frames.length;
    const regs: Reg[] = [];
    for (let r = 0; r < 11; r++) regs.push(notInit());
    if (cb) {
      for (let r = 1; r <= 5; r++) regs[r] = cb.args[r - 1] ?? notInit();
    } else {
      for (let r = 1; r <= 5; r++) regs[r] = cloneReg(caller.regs[r]);
    }
    regs[10] = pointer('stack', { frameno });
    const callee: Frame = {
      regs,
      stack: [],
      frameno,
      subprog,
      callsite,
      ...(cb ? { callbackRet: cb.ret, callbackOf: cb.helper } : {}),
    };
    const edges = this.callEdges.get(caller.subprog) ?? new Set<number>();
    edges.add(subprog);
    this.callEdges.set(caller.subprog, edges);
    if (!cb) for (const r of [0, ...CALLER_SAVED]) caller.regs[r] = notInit();
    st.frames.push(callee);
    if (cb) return;
    this.scratchAll = true;
    if (this.level)
      this.lines.push(
        `caller:${frameStr(st, frameno - 1, this.maps)}`,
        `callee:${frameStr(st, frameno, this.maps)}`,
      );
  }

  private checkExit(pc: number): { next: number | 'exit'; printAll?: boolean } {
    const f = this.frame();
    if (this.cur.frames.length > 1) {
      // prepare_func_exit
      const r0 = f.regs[0];
      if (f.callbackRet) {
        if (r0.t === 'not_init') this.fail('R0 !read_ok');
        if (r0.t !== 'scalar')
          this.fail(`At callback return the register R0 is not a known value (${typeStr(r0)})`);
        const [lo, hi] = f.callbackRet;
        if (r0.b.smin < BigInt(lo) || r0.b.smax > BigInt(hi)) {
          this.fail(this.invalidScalar('At callback return', r0, lo, hi));
        }
      } else if (r0.t === 'stack' && r0.frameno === f.frameno) {
        this.fail('cannot return stack pointer to the caller');
      }
      this.cur.frames.pop();
      const caller = this.frame();
      // a callback goes back to its helper call, which schedules the next iteration
      if (!f.callbackRet) caller.regs[0] = r0.t === 'stack' && r0.frameno > caller.frameno ? notInit() : r0;
      this.scratchAll = true;
      if (this.level) {
        this.lines.push(
          `returning from callee:${frameStr({ ...this.cur, frames: [...this.cur.frames, f] }, this.cur.frames.length, this.maps)}`,
        );
        this.lines.push(
          `to caller at ${f.callbackRet ? f.callsite : f.callsite + 1}:${frameStr(this.cur, this.cur.frames.length - 1, this.maps)}`,
        );
      }
      return { next: f.callbackRet ? f.callsite : f.callsite + 1, printAll: true };
    }
    // main program exit
    if (this.cur.refs.length) {
      this.fail(
        ...this.cur.refs.map((r) => `Unreleased reference id=${r.id} alloc_insn=${r.insn}`),
        'BPF_EXIT instruction in main prog would lead to reference leak',
      );
    }
    this.readReg(0);
    const r0 = f.regs[0];
    if (isPointer(r0) && this.opts.unprivileged) this.fail('R0 leaks addr as return value');
    const range = this.returnRange();
    if (range) {
      if (r0.t !== 'scalar')
        this.fail(`At program exit the register R0 is not a known value (${typeStr(r0)})`);
      if (r0.b.smin < BigInt(range[0]) || r0.b.smax > BigInt(range[1])) {
        this.fail(this.invalidScalar('At program exit', r0, range[0], range[1]));
      }
    }
    void pc;
    return { next: 'exit' };
  }

  private invalidScalar(ctx: string, r: Reg, lo: number, hi: number): string {
    let s = `${ctx} the register R0 has`;
    let unknown = true;
    if (r.b.smin > S64_MIN) {
      s += ` smin=${r.b.smin}`;
      unknown = false;
    }
    if (r.b.smax < (1n << 63n) - 1n) {
      s += ` smax=${r.b.smax}`;
      unknown = false;
    }
    if (unknown) s += ' unknown scalar value';
    return `${s} should have been in [${lo}, ${hi}]`;
  }

  private returnRange(): readonly [number, number] | undefined {
    const rr = this.prog?.returnRange;
    if (!rr) return undefined;
    const at = this.opts.expectedAttachType;
    const name = at !== undefined && at !== 0 ? ATTACH_TYPES[at] : undefined;
    if (name && name in rr) return rr[name] ?? undefined;
    // attach type 0 is cgroup_inet_ingress: cgroup programs keyed by it
    if (at === 0 || at === undefined) {
      if ('default' in rr) return rr.default ?? undefined;
      const n0 = ATTACH_TYPES[0];
      if (n0 in rr) return rr[n0] ?? undefined;
    }
    return undefined;
  }

  private checkHelperCall(
    insn: Insn,
    pc: number,
    stack: Pending[],
    cp: Checkpoint | undefined,
  ): { next: number; printAll?: boolean; branchPushed?: boolean } {
    const id = insn.imm;
    const h = helperById(id);
    if (id < 0 || !h) this.fail(`invalid func unknown#${id}`);
    const allowed = this.prog?.helpers;
    if (allowed && !allowed.includes(id))
      this.fail(`program of this type cannot use helper bpf_${h.name}#${id}`);
    if (!h.proto && id !== 12) {
      // no verified prototype in the catalog: refuse rather than guess (soundness first)
      this.fail(`helper bpf_${h.name}#${id} has no prototype in tsbpf's catalog`);
    }
    let args: readonly HelperArg[] = h.proto?.args ?? [];
    let retKind = h.proto?.ret;
    if (id === 12) {
      // bpf_tail_call(ctx, prog_array, index)
      args = [
        { spelling: 'ptr_to_ctx', kind: 'ptr_to_ctx', flags: [] },
        { spelling: 'const_map_ptr', kind: 'const_map_ptr', flags: [] },
        { spelling: 'anything', kind: 'anything', flags: [] },
      ];
      retKind = { spelling: 'void', kind: 'void', flags: [] };
    }
    const meta: {
      map?: number;
      memSize?: number;
      releaseRef?: number;
      callback?: number;
      rawStack?: number[];
      memAccess?: 'read' | 'write' | 'readwrite';
      refObj?: number;
    } = {};
    for (let a = 0; a < args.length; a++) {
      this.checkFuncArg(a + 1, args[a], args, meta);
    }
    if (id === 12) {
      const m = this.maps[meta.map ?? -1];
      if (m?.type !== 3) this.fail('expected prog array map for tail call');
      if (this.cur.refs.length) {
        this.fail(
          ...this.cur.refs.map((r) => `Unreleased reference id=${r.id} alloc_insn=${r.insn}`),
          'tail_call would lead to reference leak',
        );
      }
      if (this.frame().subprog !== 0 && !this.opts.funcInfo)
        this.fail('tail_call is not allowed in subprogs without BTF');
    }
    const needs = HELPER_MAP_TYPES[id];
    if (needs && meta.map !== undefined) {
      const m = this.maps[meta.map];
      if (m && !needs.includes(m.type))
        this.fail(`cannot pass map_type ${m.type} into func bpf_${h.name}#${id}`);
    }
    if (id === 81 && !this.isZero(this.regs()[2]))
      this.fail("get_local_storage() doesn't support non-zero flags");
    if (meta.map !== undefined && (id === 1 || id === 2 || id === 3)) {
      const m = this.maps[meta.map];
      if ([3, 4, 7, 8, 27, 31, 22, 23, 30].includes(m.type) && !(id === 1 && false)) {
        this.fail(`cannot pass map_type ${m.type} into func bpf_${h.name}#${id}`);
      }
    }
    // release
    if (meta.releaseRef) {
      const rid = meta.releaseRef;
      this.cur.refs = this.cur.refs.filter((r) => r.id !== rid);
      for (const f of this.cur.frames) {
        for (let r = 0; r < f.regs.length; r++)
          if (f.regs[r].refId === rid) f.regs[r] = this.opts.unprivileged ? notInit() : scalarUnknown();
        for (const s of f.stack) if (s.spilled?.refId === rid) s.spilled = scalarUnknown();
      }
    }
    // callbacks
    const cb = CALLBACK_HELPERS[id];
    const cbArgs: Reg[] | undefined =
      cb && meta.callback !== undefined ? this.callbackArgs(id, meta.map) : undefined;
    let branchPushed = false;
    if (cb && meta.callback !== undefined && cbArgs) {
      // push_callback_call: the callback runs as a branch of its own, entered from this call with
      // the caller's registers intact; when it returns, the call is evaluated again (another
      // iteration) until the states converge. This path goes on as if it ran no more.
      const cbState = cloneState(this.cur);
      this.enterFrame(pc, meta.callback, { helper: id, ret: cb.ret, args: cbArgs }, cbState);
      this.pushState(stack, cbState, this.subprogs[meta.callback], pc, cp);
      branchPushed = true;
    }
    if (PKT_CHANGING_HELPERS.has(id)) {
      // clear_all_pkt_pointers
      for (const f of this.cur.frames) {
        for (let r = 0; r < f.regs.length; r++)
          if (isPkt(f.regs[r]) || f.regs[r].t === 'pkt_end') f.regs[r] = scalarUnknown();
        for (const sl of f.stack)
          if (sl.spilled && (isPkt(sl.spilled) || sl.spilled.t === 'pkt_end')) sl.spilled = scalarUnknown();
      }
    }
    // clobber caller-saved registers
    for (const r of CALLER_SAVED) this.setReg(r, notInit());
    this.scratch(0);
    // R0
    const ret = retKind;
    let r0: Reg = scalarUnknown();
    if (!ret || ret.kind === 'integer') r0 = scalarUnknown();
    else if (ret.kind === 'void') r0 = notInit();
    else if (ret.kind === 'ptr_to_map_value' && this.innerOf[meta.map ?? -1] !== undefined) {
      // map-in-map lookup: the inner map (its template), or NULL
      r0 = pointer('map_ptr', { map: this.innerOf[meta.map ?? -1], maybeNull: true, id: ++this.idGen });
    } else if (ret.kind === 'ptr_to_map_value') {
      const m = this.maps[meta.map ?? -1];
      r0 = pointer('map_value', { map: meta.map ?? -1, maybeNull: ret.flags.includes('ptr_maybe_null') });
      if (r0.maybeNull && m && (m.type === 2 || m.type === 6) && id === 1 && meta.rawStack) {
        const key = meta.rawStack[0];
        if (key !== undefined && key >= 0 && key < m.maxEntries) r0.maybeNull = false;
      }
      if (r0.maybeNull) r0.id = ++this.idGen;
    } else if (ret.kind === 'ptr_to_mem') {
      const ringbuf = ret.flags.includes('mem_ringbuf');
      r0 = pointer('mem', {
        maybeNull: ret.flags.includes('ptr_maybe_null'),
        memSize: meta.memSize ?? 0,
        ringbuf,
      });
      if (r0.maybeNull) r0.id = ++this.idGen;
      if (ringbuf) {
        r0.id = ++this.idGen;
        r0.refId = r0.id;
        this.cur.refs.push({ id: r0.id, insn: pc });
      }
    } else if (
      ret.kind === 'ptr_to_socket' ||
      ret.kind === 'ptr_to_tcp_sock' ||
      ret.kind === 'ptr_to_sock_common'
    ) {
      const t =
        ret.kind === 'ptr_to_socket' ? 'sock' : ret.kind === 'ptr_to_tcp_sock' ? 'tcp_sock' : 'sock_common';
      r0 = pointer(t, { maybeNull: ret.flags.includes('ptr_maybe_null') });
      if (r0.maybeNull) r0.id = ++this.idGen;
      if (SOCK_CAST_HELPERS.has(id)) {
        // is_ptr_cast_function: the result shares the argument's reference
        r0.refId = meta.refObj ?? 0;
      } else if (SOCK_ACQUIRE_HELPERS.has(id)) {
        // is_acquire_function: a new reference the program must release
        r0.id = ++this.idGen;
        r0.refId = r0.id;
        this.cur.refs.push({ id: r0.id, insn: pc });
      }
    } else {
      r0 = scalarUnknown();
    }
    this.setReg(0, r0);
    return { next: pc + 1, ...(branchPushed ? { branchPushed } : {}) };
  }

  // ---------------------------------------------------------------- kfuncs

  /** The kfunc's name for the log (disasm_kfunc_name), when the kernel BTF is known. */
  private kfuncName(id: number): string | undefined {
    const btf = this.opts.kernelBtf;
    // type(id), not types[id]: reading `types` decodes every type of a lazily parsed kernel BTF.
    const t = btf && id > 0 && id < btf.typeCount ? btf.type(id) : undefined;
    return t?.kind === 'FUNC' ? t.name : undefined;
  }

  /**
   * check_kfunc_call for the kfuncs tsbpf models (KFUNCS); any other kfunc is refused with a tsbpf
   * sentence, since which kfuncs a program type may call is registered in kernel code, not BTF.
   */
  private checkKfuncCall(insn: Insn, pc: number): { next: number } {
    const btf = this.opts.kernelBtf;
    if (!btf) this.fail('calling kernel function is not supported without CONFIG_DEBUG_INFO_BTF');
    const t = insn.imm > 0 && insn.off === 0 && insn.imm < btf.typeCount ? btf.type(insn.imm) : undefined;
    if (t?.kind !== 'FUNC') this.fail(`kernel btf_id ${insn.imm} is not a function`);
    const k = KFUNCS[t.name];
    if (!k) this.fail(`kfunc ${t.name}#${insn.imm} is not modelled by tsbpf's verifier`);
    const regs = this.regs();
    let r0: Reg = scalarUnknown();
    if (k === 'cast_to_kern_ctx') {
      // one KF_ARG_PTR_TO_CTX argument; returns the program type's kernel context, trusted
      this.scratch(1);
      const r1 = regs[1];
      if (r1.t !== 'ctx') this.fail(`arg#0 expected pointer to ctx, but got ${typeStr(r1)}`);
      if (r1.off) this.fail(`dereference of modified ctx ptr R1 off=${r1.off} disallowed`);
      const member = `BPF_PROG_TYPE_${(this.prog?.name ?? '').toUpperCase()}_kern`;
      const conv = btf.findByName('bpf_ctx_convert', 'STRUCT');
      const m = conv?.kind === 'STRUCT' ? conv.members.find((x) => x.name === member) : undefined;
      if (!m) this.fail(`tsbpf: no kernel context type for program type ${this.prog?.name ?? '?'}`);
      // get_kern_ctx_btf_id
      const kt = btf.type(m.type);
      if (kt.kind !== 'STRUCT' && kt.kind !== 'UNION')
        this.fail(`kern ctx type id ${m.type} is not a struct`);
      const id = skipModifiers(btf, m.type);
      r0 = pointer('btf_id', { btfId: id, btfName: btf.type(id).name, trusted: true });
    }
    for (const r of CALLER_SAVED) this.setReg(r, notInit());
    this.setReg(0, r0);
    return { next: pc + 1 };
  }

  private savedArgs: Reg[] = [];

  private callbackArgs(id: number, map: number | undefined): Reg[] {
    const a = this.savedArgs;
    if (id === 181) return [scalarUnknown(), cloneReg(a[2] ?? notInit())];
    if (id === 164) {
      return [
        pointer('map_ptr', { map: map ?? -1 }),
        pointer('map_key', { map: map ?? -1 }),
        pointer('map_value', { map: map ?? -1 }),
        cloneReg(a[2] ?? notInit()),
      ];
    }
    return [scalarUnknown(), scalarUnknown(), cloneReg(a[3] ?? notInit())];
  }

  private checkFuncArg(
    regno: number,
    arg: HelperArg,
    args: readonly HelperArg[],
    meta: {
      map?: number;
      memSize?: number;
      releaseRef?: number;
      callback?: number;
      rawStack?: number[];
      memAccess?: 'read' | 'write' | 'readwrite';
      refObj?: number;
    },
  ): void {
    if (arg.kind === 'dontcare') return;
    const reg = this.readReg(regno);
    this.savedArgs[regno - 1] = cloneReg(reg);
    const maybeNull = arg.flags.includes('ptr_maybe_null');
    const memTypes = [
      'fp',
      'pkt',
      'pkt_meta',
      'map_key',
      'map_value',
      'mem',
      'ringbuf_mem',
      'buf',
      'trusted_ptr_',
    ];
    const typeErr = (expected: string[]): never =>
      this.fail(`R${regno} type=${typeStr(reg)} expected=${expected.join(', ')}`);
    switch (arg.kind) {
      case 'anything':
        if (isPointer(reg) && this.opts.unprivileged) this.fail(`R${regno} leaks addr into helper function`);
        return;
      case 'const_map_ptr':
        if (reg.t !== 'map_ptr' || reg.maybeNull) typeErr(['map_ptr']);
        meta.map = reg.map;
        return;
      case 'ptr_to_ctx':
        if (reg.t !== 'ctx' || reg.maybeNull) typeErr(['ctx']);
        if (reg.off) this.fail(`dereference of modified ctx ptr R${regno} off=${reg.off} disallowed`);
        return;
      case 'ptr_to_func':
        if (reg.t !== 'func') typeErr(['func']);
        meta.callback = reg.subprog;
        return;
      case 'const_size':
      case 'const_size_or_zero':
        if (reg.t !== 'scalar') typeErr(['scalar']);
        this.checkMemSize(regno, reg, arg.kind === 'const_size_or_zero', meta);
        return;
      case 'const_alloc_size_or_zero':
        if (reg.t !== 'scalar') typeErr(['scalar']);
        if (!isConst(reg.b)) this.fail(`R${regno} is not a known constant'`);
        meta.memSize = Number(reg.b.var.value);
        return;
      case 'ptr_to_ringbuf_mem':
        if (reg.t !== 'mem' || !reg.ringbuf || reg.maybeNull) typeErr(['ringbuf_mem']);
        if (!reg.refId) this.fail(`R${regno} must be referenced when passed to release function`);
        if (reg.off || !isConst(reg.b) || reg.b.var.value)
          this.fail(`R${regno} must have zero offset when passed to release func or trusted arg to kfunc`);
        meta.releaseRef = reg.refId;
        return;
      case 'ptr_to_map_key':
      case 'ptr_to_map_value':
      case 'ptr_to_mem':
      case 'ptr_to_stack': {
        const okTypes =
          arg.kind === 'ptr_to_stack'
            ? ['stack']
            : ['stack', 'pkt', 'pkt_meta', 'map_key', 'map_value', 'mem'];
        if (maybeNull && this.isZero(reg)) return;
        const trustedBtf = arg.kind !== 'ptr_to_stack' && reg.t === 'btf_id' && reg.trusted;
        if ((!okTypes.includes(reg.t) && !trustedBtf) || reg.maybeNull)
          typeErr(arg.kind === 'ptr_to_stack' ? ['fp'] : memTypes);
        if (trustedBtf && !arg.flags.includes('mem_rdonly')) {
          // kernel memory behind a BTF pointer is read-only to helpers
          const h = helperById(this.insns[this.insnIdx]?.imm ?? -1);
          this.fail(
            `bpf_${h?.name ?? '?'}() may write into memory pointed by R${regno} type=${typeStr(reg)}`,
          );
        }
        if (arg.kind === 'ptr_to_map_key' || arg.kind === 'ptr_to_map_value') {
          const m = this.maps[meta.map ?? -1];
          if (!m)
            this.fail(`invalid map_ptr to access map->${arg.kind === 'ptr_to_map_key' ? 'key' : 'value'}`);
          const n = arg.kind === 'ptr_to_map_key' ? m.keySize : m.valueSize;
          // map_pop_elem/peek write the value into the buffer (MEM_UNINIT|MEM_WRITE)
          this.helperMemAccess(regno, reg, n, false, arg.flags.includes('mem_uninit') ? 'write' : 'read');
          if (arg.kind === 'ptr_to_map_key' && reg.t === 'stack' && isConst(reg.b)) {
            const key = this.constStackKey(reg, n);
            if (key !== undefined) meta.rawStack = [key];
          }
          return;
        }
        // what the helper does with the memory: a writable ptr_to_mem (no MEM_RDONLY) may be
        // written, so what the verifier knew of those bytes is forgotten after the call
        const uninit = arg.flags.includes('mem_uninit');
        const writes = uninit || arg.flags.includes('mem_write') || !arg.flags.includes('mem_rdonly');
        const access = uninit ? 'write' : writes ? 'readwrite' : 'read';
        if (arg.size !== undefined) {
          if (arg.flags.includes('mem_aligned') && reg.t === 'stack') {
            const a = tnumAdd(reg.b.var, tnumConst(BigInt(reg.off)));
            if (!tnumIsAligned(a, arg.size))
              this.fail(`misaligned stack access off ${tnumStr(reg.b.var)}+${reg.off}+0 size ${arg.size}`);
          }
          this.helperMemAccess(regno, reg, arg.size, false, access);
        }
        // the size comes with the next argument (const_size)
        meta.memAccess = access;
        return;
      }
      case 'ptr_to_const_str':
        if (reg.t !== 'map_value' || reg.maybeNull) typeErr(['map_value']);
        return;
      case 'ptr_to_socket':
      case 'ptr_to_sock_common':
      case 'ptr_to_btf_id_sock_common': {
        const common = ['sock_common', 'sock', 'tcp_sock', 'xdp_sock'];
        const expected =
          arg.kind === 'ptr_to_socket'
            ? ['sock']
            : arg.kind === 'ptr_to_sock_common'
              ? common
              : [...common, 'ptr_', 'trusted_ptr_'];
        const ok =
          arg.kind === 'ptr_to_socket'
            ? ['sock']
            : arg.kind === 'ptr_to_sock_common'
              ? ['sock_common', 'sock', 'tcp_sock']
              : ['sock_common', 'sock', 'tcp_sock', 'btf_id'];
        if (!ok.includes(reg.t) || reg.maybeNull) typeErr(expected);
        const release = arg.flags.includes('obj_release');
        if (reg.t === 'btf_id') {
          const btf = this.opts.kernelBtf;
          if (!btf || !structIdsMatch(btf, reg.btfId, 'sock_common'))
            this.fail(`R${regno} is of type ${reg.btfName} but sock_common is expected`);
          if (reg.off || !isConst(reg.b) || reg.b.var.value) {
            if (release)
              this.fail(
                `R${regno} must have zero offset when passed to release func or trusted arg to kfunc`,
              );
            this.fail(`dereference of modified ${typeStr(reg)} ptr R${regno} off=${reg.off} disallowed`);
          }
        }
        if (release) {
          if (!reg.refId) this.fail(`R${regno} must be referenced when passed to release function`);
          meta.releaseRef = reg.refId;
        }
        if (reg.refId) meta.refObj = reg.refId;
        return;
      }
      default:
        // kinds we do not model (sockets, BTF ids, dynptrs, timers...): refuse rather than guess
        this.fail(`R${regno} argument kind ${arg.spelling} is not modelled by tsbpf's verifier`);
    }
    void args;
  }

  /** The key's value when the key is a known constant on the stack (4-byte keys). */
  private constStackKey(reg: Reg, n: number): number | undefined {
    if (n !== 4) return undefined;
    const f = this.cur.frames[reg.frameno];
    const at = Number(s64(reg.b.var.value)) + reg.off;
    const slotIdx = -at - 1;
    const s = f?.stack[Math.floor(slotIdx / 8)];
    if (!s) return undefined;
    let zero = true;
    for (let k = 0; k < 4; k++) if (s.types[(slotIdx - k) % 8] !== Slot.ZERO) zero = false;
    if (zero) return 0;
    if (at % 8 === 0 && s.spilled?.t === 'scalar' && isConst(s.spilled.b))
      return Number(s.spilled.b.var.value & 0xffffffffn);
    return undefined;
  }

  /** check_mem_size_reg: the size argument for the memory argument before it. */
  private checkMemSize(
    regno: number,
    reg: Reg,
    zeroOk: boolean,
    meta: { memAccess?: 'read' | 'write' | 'readwrite' },
  ): void {
    const memReg = this.regs()[regno - 1];
    if (reg.b.smin < 0n) this.fail(`R${regno} min value is negative, either use unsigned or 'var &= const'`);
    if (reg.b.umin === 0n && !zeroOk)
      this.fail(`R${regno} invalid zero-sized read: u64=[${reg.b.umin},${reg.b.umax}]`);
    if (reg.b.umax >= BPF_MAX_VAR_SIZ)
      this.fail(`R${regno} unbounded memory access, use 'var &= const' or 'if (var < const)'`);
    if (memReg.t === 'scalar' && this.isZero(memReg)) {
      if (reg.b.umax !== 0n) this.fail(`R${regno - 1} type=scalar expected=fp`);
      return;
    }
    this.helperMemAccess(regno - 1, memReg, Number(reg.b.umax), zeroOk, meta.memAccess ?? 'read');
  }

  /** check_helper_mem_access; 'readwrite': the bytes must be initialized and are clobbered. */
  private helperMemAccess(
    regno: number,
    reg: Reg,
    n: number,
    zeroOk: boolean,
    access: 'read' | 'write' | 'readwrite',
  ): void {
    if (access !== 'write') this.checkHelperMem(regno, reg, n, zeroOk, 'read');
    if (access !== 'read') this.checkHelperMem(regno, reg, n, zeroOk, 'write');
  }

  /** check_helper_mem_access. */
  private checkHelperMem(
    regno: number,
    reg: Reg,
    n: number,
    zeroOk: boolean,
    access: 'read' | 'write',
  ): void {
    switch (reg.t) {
      case 'pkt':
      case 'pkt_meta':
        this.checkPacket(regno, reg, reg.off, n, zeroOk);
        return;
      case 'map_key':
        if (access === 'write') this.fail(`R${regno} cannot write into map_key`);
        this.checkRegion(regno, reg, reg.off, n, this.maps[reg.map].keySize, zeroOk);
        return;
      case 'map_value': {
        const m = this.maps[reg.map];
        if (access === 'write' && m.flags & MAP_FLAGS.BPF_F_RDONLY_PROG)
          this.fail(`write into map forbidden, value_size=${m.valueSize} off=${reg.off} size=${n}`);
        this.checkRegion(regno, reg, reg.off, n, m.valueSize, zeroOk);
        return;
      }
      case 'mem':
        if (access === 'write' && reg.rdonly) this.fail(`R${regno} cannot write into ${typeStr(reg)}`);
        this.checkRegion(regno, reg, reg.off, n, reg.memSize, zeroOk);
        return;
      case 'stack':
        this.checkStackRange(regno, reg, n, zeroOk, access);
        return;
      case 'btf_id': {
        // check_ptr_to_btf_access of the bytes the helper reads
        const btf = this.opts.kernelBtf;
        if (access === 'write' || !btf) this.fail('only read is supported');
        if (reg.off < 0) this.fail(`R${regno} is ptr_${reg.btfName} invalid negative access: off=${reg.off}`);
        if (n === 0) return;
        const a = structAccess(btf, reg.btfId, reg.off, n);
        if (a.kind === 'error') this.fail(a.message);
        return;
      }
      default:
        this.fail(`R${regno} type=${typeStr(reg)} expected=fp`);
    }
  }

  /** check_stack_range_initialized. */
  private checkStackRange(
    regno: number,
    reg: Reg,
    n: number,
    zeroOk: boolean,
    access: 'read' | 'write',
  ): void {
    if (n === 0 && !zeroOk) this.fail('invalid zero-sized read');
    const f = this.cur.frames[reg.frameno];
    const off = reg.off;
    const constOff = isConst(reg.b);
    let minOff: bigint;
    let maxOff: bigint;
    if (constOff) {
      minOff = s64(reg.b.var.value) + BigInt(off);
      maxOff = minOff + BigInt(n);
    } else {
      minOff = reg.b.smin + BigInt(off);
      maxOff = reg.b.smax + BigInt(off) + BigInt(n);
    }
    if (minOff < -BigInt(MAX_BPF_STACK) || minOff >= 0n || maxOff > 0n) {
      const extra = access === 'write' ? ' write to' : ' read from';
      if (constOff) this.fail(`invalid${extra} stack R${regno} off=${off} size=${n}`);
      this.fail(
        `invalid variable-offset${extra} stack R${regno} var_off=${tnumStr(reg.b.var)} off=${off} size=${n}`,
      );
    }
    if (!constOff && this.opts.unprivileged) {
      this.fail(`R${regno} variable offset stack access prohibited for !root, var_off=${tnumStr(reg.b.var)}`);
    }
    if (n === 0) return;
    this.growStack(f, Number(-minOff));
    const clobber = access === 'write';
    const hi = constOff ? maxOff : reg.b.smax + BigInt(off) + BigInt(n);
    for (let a = minOff; a < hi; a++) {
      const slotIdx = Number(-a - 1n);
      const spi = Math.floor(slotIdx / 8);
      const s = this.slot(f, spi);
      if (clobber) this.scratchSlots.add(spi);
      const ty = s.types[slotIdx % 8];
      if (ty === Slot.MISC) continue;
      if (ty === Slot.ZERO || (ty === Slot.INVALID && (!this.opts.unprivileged || (clobber && constOff)))) {
        if (clobber) s.types[slotIdx % 8] = Slot.MISC;
        continue;
      }
      if (ty === Slot.SPILL && s.spilled && (s.spilled.t === 'scalar' || !this.opts.unprivileged)) {
        if (clobber) {
          s.spilled = undefined;
          s.types = s.types.map((x) => (x === Slot.SPILL ? Slot.MISC : x));
        }
        continue;
      }
      if (constOff)
        this.fail(`invalid read from stack R${regno} off ${Number(minOff)}+${Number(a - minOff)} size ${n}`);
      this.fail(
        `invalid read from stack R${regno} var_off ${tnumStr(reg.b.var)}+${Number(a - minOff)} size ${n}`,
      );
    }
  }

  // ---------------------------------------------------------------- stack depth

  private checkMaxStackDepth(): void {
    const round = (d: number) => Math.ceil(d / 16) * 16;
    const visit = (k: number, depth: number, frames: number, seen: number[]) => {
      const d = depth + round(this.stackDepth[k] ?? 0);
      if (frames > MAX_CALL_FRAMES) this.fail(`the call stack of ${frames} frames is too deep`);
      if (d > MAX_BPF_STACK) this.fail(`combined stack size of ${frames} calls is ${d}. Too large`);
      for (const c of this.callEdges.get(k) ?? []) {
        if (seen.includes(c)) continue;
        visit(c, d, frames + 1, [...seen, c]);
      }
    };
    visit(0, 0, 1, [0]);
  }
}

// re-exported for the branch module and tests
export { markKnown, s32, u64, unknownBounds, zext32 };
