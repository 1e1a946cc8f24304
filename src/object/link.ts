/**
 * Program relocations and linking, as libbpf does them at bpf_object__open/prepare time:
 * - bpf_program__record_reloc: what each relocation in a code section means (map, global data,
 *   extern, bpf-to-bpf call, callback address);
 * - bpf_object__reloc_code: every entry program gets the `.text` subprograms it calls appended, in
 *   depth-first order of first use, and its call / BPF_PSEUDO_FUNC offsets rewritten;
 * - bpf_object__relocate_data: map references become LD_IMM64 with BPF_PSEUDO_MAP_IDX (imm = index in
 *   ObjectSpec.maps) and global data BPF_PSEUDO_MAP_IDX_VALUE (imm = index, second imm = offset), the
 *   fd_array form the kernel resolves itself; kfunc calls become BPF_PSEUDO_KFUNC_CALL and ksym loads
 *   stay for the backend to fill, both listed in the program's references.
 */
import type { DecodedInsn } from '../isa/insn.js';
import {
  BPF_CALL,
  BPF_JMP,
  BPF_K,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  OPCODE_LD_IMM64,
} from '../isa/opcodes.js';
import type { ExternSpec } from './externs.js';
import { objectError } from './maps.js';

/** A function of a code section: an entry program or a `.text` subprogram, before linking. */
export interface RawFunction {
  name: string;
  section: string;
  sectionIndex: number;
  /** First slot (8-byte unit) in its section. */
  secInsnOff: number;
  /** Length in slots. */
  slotCount: number;
  /** Decoded instructions, pc relative to the function's start. */
  insns: DecodedInsn[];
  byPc: Map<number, DecodedInsn>;
  relocs: Map<number, Reloc>;
  global: boolean;
}

export type Reloc =
  | { type: 'call'; symOff: number; symbol: string }
  | { type: 'subprog_addr'; symOff: number; symbol: string }
  | { type: 'map'; mapIndex: number; symbol: string }
  | { type: 'data'; mapIndex: number; symOff: number; symbol: string }
  | { type: 'extern_ld'; ext: ExternSpec }
  | { type: 'extern_call'; ext: ExternSpec };

/** What an instruction of a linked program refers to. `pc` is the slot index in ProgramSpec.insns. */
export type InsnReference =
  /** LD_IMM64 of a map (BPF_PSEUDO_MAP_IDX, imm = mapIndex). */
  | { kind: 'map'; pc: number; map: string; mapIndex: number }
  /** LD_IMM64 of an address in a map's value (BPF_PSEUDO_MAP_IDX_VALUE); global data and .kconfig externs. */
  | { kind: 'map_value'; pc: number; map: string; mapIndex: number; offset: number; extern?: string }
  /** LD_IMM64 of a kernel symbol (`__ksym` variable): the loader fills address or BTF id. */
  | { kind: 'ksym'; pc: number; extern: string }
  /** Call of a kernel function (BPF_PSEUDO_KFUNC_CALL): the loader fills the BTF id. */
  | { kind: 'kfunc'; pc: number; extern: string }
  /** bpf-to-bpf call (resolved: imm is the relative offset). */
  | { kind: 'call'; pc: number; target: string; targetPc: number }
  /** Address of a function (callback), BPF_PSEUDO_FUNC (resolved: imm is the relative offset). */
  | { kind: 'func'; pc: number; target: string; targetPc: number };

/** Where a function landed in a linked program. */
export interface PlacedFunction {
  name: string;
  section: string;
  /** First slot in ProgramSpec.insns. */
  start: number;
  slotCount: number;
  /** First slot of the function in its ELF section. */
  secInsnOff: number;
}

export const isSubprogCall = (i: DecodedInsn): boolean =>
  i.code === (BPF_JMP | BPF_CALL | BPF_K) && i.src === BPF_PSEUDO_CALL && i.dst === 0 && i.off === 0;
export const isPseudoFunc = (i: DecodedInsn): boolean =>
  i.code === OPCODE_LD_IMM64 && i.src === BPF_PSEUDO_FUNC;
export const isCallInsn = (i: DecodedInsn): boolean => i.code === (BPF_JMP | BPF_CALL);

/** The function of `funcs` covering slot `idx` of a section (find_prog_by_sec_insn). */
export function findFunction(funcs: readonly RawFunction[], idx: number): RawFunction | undefined {
  for (const f of funcs) if (idx >= f.secInsnOff && idx < f.secInsnOff + f.slotCount) return f;
  return undefined;
}

export interface LinkContext {
  /** `.text` functions, sorted by offset. */
  text: readonly RawFunction[];
  maps: readonly { name: string }[];
  kconfigMapIndex: number;
}

export interface LinkedProgram {
  insns: DecodedInsn[];
  functions: PlacedFunction[];
  references: InsnReference[];
}

const clone = (i: DecodedInsn, pc: number): DecodedInsn => ({ ...i, pc });

/** bpf_object__relocate_calls + bpf_object__relocate_data for one entry program. */
export function linkProgram(main: RawFunction, ctx: LinkContext): LinkedProgram {
  const out: DecodedInsn[] = [];
  const byPc = new Map<number, DecodedInsn>();
  const placed = new Map<RawFunction, number>();
  const functions: PlacedFunction[] = [];
  const references: InsnReference[] = [];
  let slots = 0;

  const append = (f: RawFunction): number => {
    const start = slots;
    placed.set(f, start);
    for (const insn of f.insns) {
      const c = clone(insn, start + insn.pc);
      out.push(c);
      byPc.set(c.pc, c);
    }
    slots += f.slotCount;
    functions.push({
      name: f.name,
      section: f.section,
      start,
      slotCount: f.slotCount,
      secInsnOff: f.secInsnOff,
    });
    return start;
  };

  append(main);
  // Depth-first, as libbpf's recursive bpf_object__reloc_code: a frame resumes after the callee is done.
  const stack: { f: RawFunction; at: number }[] = [{ f: main, at: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    if (frame.at >= frame.f.insns.length) {
      stack.pop();
      continue;
    }
    const insn = frame.f.insns[frame.at];
    const { f } = frame;
    if (!isSubprogCall(insn) && !isPseudoFunc(insn)) {
      frame.at++;
      continue;
    }
    const relo = f.relocs.get(insn.pc);
    if (relo?.type === 'extern_call') {
      frame.at++;
      continue;
    }
    if (relo && relo.type !== 'call' && relo.type !== 'subprog_addr')
      throw objectError(
        `prog '${main.name}': unexpected relocation for insn #${insn.pc} of '${f.name}' (section '${f.section}')`,
      );
    let subIdx: number;
    if (relo?.type === 'call') subIdx = relo.symOff / 8 + insn.imm + 1;
    else if (relo?.type === 'subprog_addr') subIdx = (relo.symOff + insn.imm) / 8;
    else if (isPseudoFunc(insn))
      throw objectError(
        `prog '${main.name}': missing subprog addr relocation for insn #${insn.pc} of '${f.name}'`,
      );
    else subIdx = f.secInsnOff + insn.pc + insn.imm + 1;
    const sub = findFunction(ctx.text, subIdx);
    if (!sub)
      throw objectError(
        `prog '${main.name}': call at insn #${insn.pc} of '${f.name}' (section '${f.section}') targets .text insn ${subIdx}, which is in no function`,
      );
    if (sub.secInsnOff !== subIdx)
      throw objectError(
        `prog '${main.name}': call at insn #${insn.pc} of '${f.name}' targets the middle of '${sub.name}' (.text insn ${subIdx})`,
      );
    if (!placed.has(sub)) {
      append(sub);
      stack.push({ f: sub, at: 0 });
      continue; // come back to this instruction once the callee is placed and relocated
    }
    const base = placed.get(f) as number;
    const target = placed.get(sub) as number;
    const mine = byPc.get(base + insn.pc) as DecodedInsn;
    mine.imm = target - (base + insn.pc) - 1;
    references.push({
      kind: isPseudoFunc(insn) ? 'func' : 'call',
      pc: mine.pc,
      target: sub.name,
      targetPc: target,
    });
    frame.at++;
  }

  // Data relocations, on every placed function's copy.
  for (const [f, base] of placed) {
    for (const [pc, relo] of f.relocs) {
      const insn = byPc.get(base + pc);
      if (!insn) continue;
      switch (relo.type) {
        case 'map':
          insn.src = BPF_PSEUDO_MAP_IDX;
          insn.imm = relo.mapIndex;
          references.push({
            kind: 'map',
            pc: insn.pc,
            map: ctx.maps[relo.mapIndex].name,
            mapIndex: relo.mapIndex,
          });
          break;
        case 'data': {
          const offset = (insn.imm + relo.symOff) | 0;
          insn.src = BPF_PSEUDO_MAP_IDX_VALUE;
          insn.imm2 = offset;
          insn.imm = relo.mapIndex;
          references.push({
            kind: 'map_value',
            pc: insn.pc,
            map: ctx.maps[relo.mapIndex].name,
            mapIndex: relo.mapIndex,
            offset,
          });
          break;
        }
        case 'extern_ld':
          if (relo.ext.kind === 'kconfig') {
            const offset = relo.ext.kconfig?.offset ?? 0;
            insn.src = BPF_PSEUDO_MAP_IDX_VALUE;
            insn.imm = ctx.kconfigMapIndex;
            insn.imm2 = offset;
            references.push({
              kind: 'map_value',
              pc: insn.pc,
              map: ctx.maps[ctx.kconfigMapIndex].name,
              mapIndex: ctx.kconfigMapIndex,
              offset,
              extern: relo.ext.name,
            });
          } else {
            insn.imm = 0;
            insn.imm2 = 0;
            references.push({ kind: 'ksym', pc: insn.pc, extern: relo.ext.name });
          }
          break;
        case 'extern_call':
          insn.src = BPF_PSEUDO_KFUNC_CALL;
          insn.imm = 0;
          insn.off = 0;
          references.push({ kind: 'kfunc', pc: insn.pc, extern: relo.ext.name });
          break;
        default:
          break; // calls and callback addresses: done above
      }
    }
  }
  references.sort((a, b) => a.pc - b.pc);
  return { insns: out, functions, references };
}
