/**
 * tsbpf's verifier: decides whether a program is safe the way the Linux 6.18 verifier does, and
 * explains why not in the kernel's own log format and sentences.
 *
 * What is modelled and what is approximated is listed in src/verifier/README.md.
 */

import type { Btf } from '../btf/btf.js';
import { TsbpfError } from '../errors.js';
import type { Insn } from '../isa/insn.js';
import { Verifier, type VerifierFunc, type VerifierMap } from './check.js';

export type { VerifierFunc, VerifierMap } from './check.js';
export { kernelInsn } from './log.js';

export interface VerifyOptions {
  progType: number;
  expectedAttachType?: number;
  /** LD_IMM64 src=BPF_PSEUDO_MAP_FD/MAP_IDX imm=i refers to maps[i]; MAP_VALUE/MAP_IDX_VALUE: imm=i, imm2=offset. */
  maps?: readonly VerifierMap[];
  /**
   * BTF func_info: one record per function (slot of its first instruction), as the kernel takes it
   * with the program's BTF. Without it, `ld_imm64 func` (bpf_loop callbacks) is refused the way the
   * kernel refuses it ("missing btf func_info").
   */
  funcInfo?: readonly VerifierFunc[];
  logLevel?: 0 | 1 | 2;
  unprivileged?: boolean;
  /** Default 1_000_000. */
  insnLimit?: number;
  /**
   * The target kernel's BTF (/sys/kernel/btf/vmlinux): kfunc calls (imm = the BTF id of a FUNC in it)
   * and BTF-typed kernel pointers are checked against it; without it they are refused.
   */
  kernelBtf?: Btf;
  /** attach_btf_id of a tracing program (tp_btf, fentry...): a FUNC or `btf_trace_*` TYPEDEF in kernelBtf. */
  attachBtfId?: number;
}

export interface VerifyResult {
  ok: boolean;
  /** The log, in the kernel's format. */
  log: string;
  /** The instruction and the kernel's error sentence (the line before "processed ..."). */
  error?: { insn: number; message: string };
  stats: { processed: number; maxStatesPerInsn: number; totalStates: number; peakStates: number };
}

/** Verifies a program. Throws TsbpfError('usage') only for unusable options. */
export function verify(insns: readonly Insn[], options: VerifyOptions): VerifyResult {
  if (!Number.isInteger(options.progType) || options.progType < 0) {
    throw new TsbpfError('usage', `invalid program type ${options.progType}`);
  }
  const logLevel = options.logLevel ?? 0;
  const insnLimit = options.insnLimit ?? 1_000_000;
  if (insns.length === 0) {
    return {
      ok: false,
      log: '',
      error: { insn: 0, message: 'the program has no instructions' },
      stats: { processed: 0, maxStatesPerInsn: 0, totalStates: 0, peakStates: 0 },
    };
  }
  const v = new Verifier(insns, {
    progType: options.progType,
    ...(options.expectedAttachType === undefined ? {} : { expectedAttachType: options.expectedAttachType }),
    maps: options.maps ?? [],
    ...(options.funcInfo ? { funcInfo: options.funcInfo } : {}),
    logLevel,
    unprivileged: options.unprivileged ?? false,
    insnLimit,
    ...(options.kernelBtf ? { kernelBtf: options.kernelBtf } : {}),
    ...(options.attachBtfId === undefined ? {} : { attachBtfId: options.attachBtfId }),
  });
  const r = v.run();
  const lines = [...r.lines];
  if (logLevel > 0) {
    lines.push(
      `processed ${r.stats.processed} insns (limit ${insnLimit}) max_states_per_insn ${r.stats.maxStatesPerInsn} total_states ${r.stats.totalStates} peak_states ${r.stats.peakStates} mark_read 0`,
    );
  }
  return {
    ok: r.ok,
    log: logLevel > 0 ? `${lines.join('\n')}\n` : '',
    ...(r.error ? { error: r.error } : {}),
    stats: r.stats,
  };
}
