/**
 * The verifier's differential case suite: case files (test/data/verifier/*.txt), their parser and
 * writer, the kernel side (maps + BPF_PROG_LOAD at log level 2) and the comparison with tsbpf's
 * verifier.
 *
 * Case file format (one file per topic; lines before the first `===` are the file's comment):
 *
 *   === a map value read after a null check          <- case name (unique in the suite)
 *   type: socket_filter                               <- catalog program type name
 *   attach: cgroup_inet_egress                        <- optional expected attach type (catalog name)
 *   map: hash key=4 value=8 entries=16 flags=rdonly_prog   <- optional, repeatable: maps[0], maps[1]...
 *   unpriv: yes                                       <- optional: load without privileges
 *   btf: btf_trace_sched_process_fork                 <- optional: attach_btf_id, the kernel BTF FUNC or
 *                                                        TYPEDEF of that name (tp_btf/fentry programs)
 *   note: free text                                   <- optional, repeatable
 *   ---
 *   r1 = map_fd(0) ll                                 <- the program, LLVM syntax (src/isa/asm/llvm.ts);
 *   call bpf_map_lookup_elem                             `call bpf_NAME` is the helper of that name
 *   ...
 *   => reject EACCES insn=5 processed=6                <- the recorded kernel result (written by
 *   => R1 invalid mem access 'scalar'                     scripts/record-verifier-cases.ts): verdict,
 *                                                        errno, failing insn, `processed N insns`;
 *                                                        then the kernel's error lines, first = the
 *                                                        error sentence
 *   => accept processed=9
 *   => skip unprivileged_bpf_disabled=2               <- the kernel could not be asked
 *
 * `call kfunc(NAME)` calls the kernel function NAME: the immediate is its BTF id in the running
 * kernel's BTF (/sys/kernel/btf/vmlinux), resolved when the case is assembled.
 *
 * `map_fd(i)` / `map_value(i, off)` name maps[i]: the kernel run creates real maps and patches the
 * immediate to their fds; tsbpf's verifier gets the same VerifierMap list and the index.
 */

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Btf } from '../../src/btf/btf.js';
import { attachTypeByName } from '../../src/catalog/attach-types.js';
import { helperByName } from '../../src/catalog/helpers.js';
import { MAP_FLAGS, mapTypeByName } from '../../src/catalog/map-types.js';
import { programTypeByName } from '../../src/catalog/program-types.js';
import { errnoName } from '../../src/errno.js';
import { TsbpfError } from '../../src/errors.js';
import { assembleLlvm } from '../../src/isa/asm/llvm.js';
import type { Insn } from '../../src/isa/insn.js';
import { BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE, OPCODE_LD_IMM64 } from '../../src/isa/opcodes.js';
import { kernelBtf } from '../../src/kernel/btf-load.js';
import { createMap as createKernelMap } from '../../src/kernel/map.js';
import { closeFd, loadProgram } from '../../src/kernel/program.js';
import { ROOT } from './fixtures.js';

export const CASE_DIR = join(ROOT, 'test', 'data', 'verifier');

// ───────────────────────────── the verifier's API (src/verifier/index.ts) ─────────────────────────────

export interface VerifierMap {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}
export interface VerifyOptions {
  progType: number;
  expectedAttachType?: number;
  maps?: readonly VerifierMap[];
  logLevel?: 0 | 1 | 2;
  unprivileged?: boolean;
  insnLimit?: number;
  kernelBtf?: Btf;
  attachBtfId?: number;
}
export interface VerifyResult {
  ok: boolean;
  log: string;
  error?: { insn: number; message: string };
  stats: { processed: number; maxStatesPerInsn: number; totalStates: number; peakStates: number };
}
export type VerifyFn = (insns: readonly Insn[], options: VerifyOptions) => VerifyResult;

/**
 * tsbpf's verifier, or the reason it cannot be used. Imported by a computed specifier so this file
 * compiles before src/verifier/ exists.
 */
export async function loadVerifier(): Promise<{ verify: VerifyFn } | { verify: undefined; reason: string }> {
  const spec = '../../src/verifier/index.js';
  try {
    const mod = (await import(spec)) as { verify?: VerifyFn };
    if (typeof mod.verify !== 'function')
      return { verify: undefined, reason: 'src/verifier exports no verify()' };
    return { verify: mod.verify };
  } catch (e) {
    return {
      verify: undefined,
      reason: `src/verifier/index.js cannot be imported: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
    };
  }
}

// ───────────────────────────── case files ─────────────────────────────

export interface CaseMap {
  /** Catalog map type name (`hash`, `array`, `ringbuf`...). */
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface KernelResult {
  verdict: 'accept' | 'reject' | 'skip';
  /** errno name of a rejection (`EACCES`, `EINVAL`...). */
  errno?: string;
  /** The instruction the kernel was checking when it gave up (the last `N: (..)` line), if any. */
  insn?: number;
  /** `processed N insns`. */
  processed?: number;
  /** The kernel's error lines (first = the error sentence); empty for accepts. */
  errors: string[];
  /** Why the kernel was not asked (verdict 'skip'). */
  reason?: string;
}

export interface VerifierCase {
  file: string; // base name, e.g. bounds.txt
  line: number; // 1-based line of the `===` header
  name: string;
  type: string;
  attach?: string;
  maps: CaseMap[];
  unpriv: boolean;
  /** attach_btf_id by name: a FUNC or TYPEDEF of the kernel BTF. */
  btf?: string;
  notes: string[];
  asm: string;
  kernel?: KernelResult;
}

interface ParsedFile {
  file: string;
  /** Lines of the file with each case's `=>` lines removed; `resultAt[i]` = where case i's go. */
  lines: string[];
  resultAt: number[];
  cases: VerifierCase[];
}

const FLAG_NAMES: Record<string, number> = Object.fromEntries(
  Object.entries(MAP_FLAGS).map(([k, v]) => [k.replace(/^BPF_F_/, '').toLowerCase(), v]),
);

function parseFlags(s: string, where: string): number {
  let v = 0;
  for (const part of s.split('|')) {
    if (/^(0x[0-9a-f]+|\d+)$/i.test(part)) v |= Number(part);
    else if (FLAG_NAMES[part.toLowerCase()] !== undefined) v |= FLAG_NAMES[part.toLowerCase()];
    else throw new Error(`${where}: unknown map flag '${part}'`);
  }
  return v;
}

function parseMap(spec: string, where: string): CaseMap {
  const [type, ...rest] = spec.trim().split(/\s+/);
  if (!type || !mapTypeByName(type)) throw new Error(`${where}: unknown map type '${type}'`);
  const m: CaseMap = { type, keySize: 4, valueSize: 8, maxEntries: 1, flags: 0 };
  for (const kv of rest) {
    const [k, v] = kv.split('=');
    if (v === undefined) throw new Error(`${where}: expected key=value in map spec, got '${kv}'`);
    if (k === 'key') m.keySize = Number(v);
    else if (k === 'value') m.valueSize = Number(v);
    else if (k === 'entries') m.maxEntries = Number(v);
    else if (k === 'flags') m.flags = parseFlags(v, where);
    else throw new Error(`${where}: unknown map attribute '${k}'`);
  }
  return m;
}

function parseResult(lines: string[], where: string): KernelResult {
  const [head, ...errors] = lines;
  const words = head.trim().split(/\s+/);
  const verdict = words[0];
  if (verdict !== 'accept' && verdict !== 'reject' && verdict !== 'skip')
    throw new Error(`${where}: result must start with accept, reject or skip: '${head}'`);
  const r: KernelResult = { verdict, errors };
  if (verdict === 'skip') {
    r.reason = words.slice(1).join(' ');
    return r;
  }
  for (const w of words.slice(1)) {
    const [k, v] = w.split('=');
    if (v === undefined) r.errno = k;
    else if (k === 'insn') r.insn = Number(v);
    else if (k === 'processed') r.processed = Number(v);
    else throw new Error(`${where}: unknown result attribute '${w}'`);
  }
  return r;
}

export function formatResult(r: KernelResult): string[] {
  if (r.verdict === 'skip') return [`=> skip ${r.reason ?? ''}`.trimEnd()];
  const head = ['=>', r.verdict];
  if (r.errno) head.push(r.errno);
  if (r.insn !== undefined) head.push(`insn=${r.insn}`);
  if (r.processed !== undefined) head.push(`processed=${r.processed}`);
  return [head.join(' '), ...r.errors.map((e) => `=> ${e}`)];
}

function parseFile(file: string, text: string): ParsedFile {
  const src = text.split('\n');
  if (src[src.length - 1] === '') src.pop();
  const lines: string[] = [];
  const resultAt: number[] = [];
  const cases: VerifierCase[] = [];
  let i = 0;
  while (i < src.length && !src[i].startsWith('=== ')) lines.push(src[i++]);
  while (i < src.length) {
    const headerLine = i + 1;
    const where = `${file}:${headerLine}`;
    const name = src[i].slice(4).trim();
    lines.push(src[i++]);
    const c: VerifierCase = {
      file,
      line: headerLine,
      name,
      type: '',
      maps: [],
      unpriv: false,
      notes: [],
      asm: '',
    };
    for (; i < src.length && src[i].trim() !== '---'; i++) {
      lines.push(src[i]);
      const t = src[i].trim();
      if (t === '' || t.startsWith('#')) continue;
      const m = /^([a-z]+):\s*(.*)$/.exec(t);
      if (!m) throw new Error(`${file}:${i + 1}: expected 'key: value' or '---' in the case header`);
      const [, k, v] = m;
      if (k === 'type') c.type = v;
      else if (k === 'attach') c.attach = v;
      else if (k === 'map') c.maps.push(parseMap(v, `${file}:${i + 1}`));
      else if (k === 'unpriv') c.unpriv = v === 'yes' || v === 'true';
      else if (k === 'btf') c.btf = v;
      else if (k === 'note') c.notes.push(v);
      else throw new Error(`${file}:${i + 1}: unknown case attribute '${k}'`);
    }
    if (i >= src.length) throw new Error(`${where}: case '${name}' has no '---' line`);
    lines.push(src[i++]);
    const asm: string[] = [];
    const result: string[] = [];
    for (; i < src.length && !src[i].startsWith('=== '); i++) {
      if (src[i].startsWith('=>')) result.push(src[i].slice(2).trim());
      else if (result.length > 0 && src[i].trim() !== '')
        throw new Error(`${file}:${i + 1}: program text after the '=>' result lines`);
      else {
        lines.push(src[i]);
        asm.push(src[i]);
      }
    }
    // the result goes after the last non-blank program line
    let at = lines.length;
    while (at > 0 && lines[at - 1].trim() === '') at--;
    resultAt.push(at);
    while (asm.length > 0 && asm[asm.length - 1].trim() === '') asm.pop();
    c.asm = asm.join('\n');
    if (!c.type) throw new Error(`${where}: case '${name}' has no type`);
    if (!programTypeByName(c.type)) throw new Error(`${where}: unknown program type '${c.type}'`);
    if (c.attach !== undefined && attachTypeByName(c.attach) === undefined)
      throw new Error(`${where}: unknown attach type '${c.attach}'`);
    if (result.length > 0) c.kernel = parseResult(result, where);
    cases.push(c);
  }
  return { file, lines, resultAt, cases };
}

export function caseFiles(dir = CASE_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort();
}

/** Every case of every file; throws on a malformed file or a duplicate name. */
export function loadCases(dir = CASE_DIR): VerifierCase[] {
  const all: VerifierCase[] = [];
  const names = new Map<string, string>();
  for (const f of caseFiles(dir)) {
    for (const c of parseFile(f, readFileSync(join(dir, f), 'utf8')).cases) {
      const prev = names.get(c.name);
      if (prev) throw new Error(`${f}:${c.line}: duplicate case name '${c.name}' (also ${prev})`);
      names.set(c.name, `${f}:${c.line}`);
      all.push(c);
    }
  }
  return all;
}

/** Rewrites one case file with new kernel results (by case name); other text is kept as it is. */
export function writeResults(file: string, results: ReadonlyMap<string, KernelResult>, dir = CASE_DIR): void {
  const path = join(dir, file);
  const parsed = parseFile(file, readFileSync(path, 'utf8'));
  const out: string[] = [];
  let next = 0;
  for (let k = 0; k <= parsed.lines.length; k++) {
    while (next < parsed.cases.length && parsed.resultAt[next] === k) {
      const c = parsed.cases[next];
      const r = results.get(c.name) ?? c.kernel;
      if (r) out.push(...formatResult(r));
      next++;
    }
    if (k < parsed.lines.length) out.push(parsed.lines[k]);
  }
  writeFileSync(path, `${out.join('\n')}\n`);
}

// ───────────────────────────── programs ─────────────────────────────

/** `call bpf_NAME` -> `call ID` for helper names of the catalog; `call kfunc(NAME)` -> its kernel BTF id. */
export function resolveHelperNames(asm: string): string {
  return asm
    .replace(/\bcall\s+(bpf_[a-z0-9_]+)\b/g, (whole, name: string) => {
      const h = helperByName(name);
      return h ? `call ${h.id}` : whole;
    })
    .replace(/\bcall\s+kfunc\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)/g, (_whole, name: string) => {
      const id = kernelBtf()?.findAllByName(name, 'FUNC')[0];
      if (id === undefined) throw new Error(`kfunc ${name}: not in the kernel BTF`);
      return `call kfunc(${id})`;
    });
}

/** The case's attach_btf_id in the running kernel's BTF. */
export function attachBtfIdOf(c: VerifierCase): number | undefined {
  if (c.btf === undefined) return undefined;
  const btf = kernelBtf();
  const id = btf?.findAllByName(c.btf).find((i) => ['FUNC', 'TYPEDEF'].includes(btf.types[i].kind));
  if (id === undefined) throw new Error(`${c.file}:${c.line}: '${c.btf}' is not in the kernel BTF`);
  return id;
}

const RAW_MAGIC = 0x5ead_0000;

/**
 * Assembles a case. Besides LLVM syntax a line may be `.raw CODE DST SRC OFF IMM` (numbers): one
 * instruction slot as it is, for the malformed instructions no assembler will write.
 */
export function assembleCase(c: VerifierCase): Insn[] {
  try {
    const raws: Insn[] = [];
    const text = resolveHelperNames(c.asm).replace(/^[ \t]*\.raw\s+(.*)$/gm, (_whole, args: string) => {
      const n = args
        .replace(/(#|\/\/).*$/, '')
        .trim()
        .split(/[\s,]+/)
        .map(Number);
      if (n.length !== 5 || n.some((x) => !Number.isInteger(x)))
        throw new Error(`.raw needs CODE DST SRC OFF IMM, got '${args}'`);
      raws.push({ code: n[0], dst: n[1], src: n[2], off: n[3], imm: n[4] });
      return `r9 = ${RAW_MAGIC + raws.length - 1}`;
    });
    const insns = assembleLlvm(text);
    if (raws.length === 0) return insns;
    return insns.map((i) =>
      i.code === 0xb7 && i.dst === 9 && i.imm >= RAW_MAGIC && i.imm < RAW_MAGIC + raws.length
        ? raws[i.imm - RAW_MAGIC]
        : i,
    );
  } catch (e) {
    throw new Error(`${c.file}:${c.line} '${c.name}': ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function progTypeOf(c: VerifierCase): number {
  return programTypeByName(c.type)!.id;
}

export function attachTypeOf(c: VerifierCase): number | undefined {
  return c.attach === undefined ? undefined : attachTypeByName(c.attach);
}

export function verifierMaps(c: VerifierCase): VerifierMap[] {
  return c.maps.map((m) => ({
    type: mapTypeByName(m.type)!.id,
    keySize: m.keySize,
    valueSize: m.valueSize,
    maxEntries: m.maxEntries,
    flags: m.flags,
  }));
}

export function verifyOptions(c: VerifierCase, logLevel: 0 | 1 | 2 = 2): VerifyOptions {
  const o: VerifyOptions = { progType: progTypeOf(c), maps: verifierMaps(c), logLevel };
  const a = attachTypeOf(c);
  if (a !== undefined) o.expectedAttachType = a;
  if (c.unpriv) o.unprivileged = true;
  // the kernel's BTF for kfunc calls (also raw ones) and BTF attach targets
  const btf = kernelBtf();
  if (btf) o.kernelBtf = btf;
  const id = attachBtfIdOf(c);
  if (id !== undefined) o.attachBtfId = id;
  return o;
}

// ───────────────────────────── the kernel side ─────────────────────────────

/** BPF_MAP_CREATE for a case's map; the caller closes the fd. */
export function createMap(m: VerifierMap, name = 'vcase'): number {
  return createKernelMap({
    name,
    type: m.type,
    keySize: m.keySize,
    valueSize: m.valueSize,
    maxEntries: m.maxEntries,
    flags: m.flags,
  }).fd;
}

/** A copy of the program with map_fd(i)/map_value(i, off) immediates replaced by real fds. */
export function patchMapFds(insns: readonly Insn[], fds: readonly number[]): Insn[] {
  return insns.map((insn) => {
    if (
      insn.code !== OPCODE_LD_IMM64 ||
      (insn.src !== BPF_PSEUDO_MAP_FD && insn.src !== BPF_PSEUDO_MAP_VALUE)
    )
      return insn;
    const fd = fds[insn.imm];
    // an index with no map keeps an impossible fd, so the kernel says what it says about bad fds
    return { ...insn, imm: fd ?? 0x7fff_0000 + insn.imm };
  });
}

export interface KernelRun {
  result: KernelResult;
  log: string;
}

/** Why cases marked `unpriv` cannot be loaded here, or undefined when they can. */
export function unprivilegedUnavailable(): string | undefined {
  try {
    const v = readFileSync('/proc/sys/kernel/unprivileged_bpf_disabled', 'utf8').trim();
    if (v !== '0') return `unprivileged_bpf_disabled=${v}`;
  } catch {
    return 'no /proc/sys/kernel/unprivileged_bpf_disabled';
  }
  // Loading without privileges needs dropping CAP_BPF/CAP_SYS_ADMIN/CAP_PERFMON from this thread;
  // not implemented (the reference machines have unprivileged_bpf_disabled=2).
  return 'dropping privileges is not implemented';
}

/** The kernel's log buffer for case runs: the log rotates, so a long log keeps its tail (the verdict). */
const KERNEL_LOG_SIZE = 16 << 20;

/** BPF_PROG_LOAD with the log buffer never grown (see loadProgram's logGrow): `{ fd }` or `{ errno }`, and the log. */
function fixedLogLoad(
  insns: readonly Insn[],
  progType: number,
  expectedAttachType: number,
  logLevel: number,
  attachBtfId: number,
): { fd?: number; errno?: number; log: string } {
  try {
    const p = loadProgram({
      type: progType,
      insns,
      expectedAttachType,
      attachBtfId,
      logLevel,
      logSize: KERNEL_LOG_SIZE,
      logGrow: false,
    });
    return { fd: p.fd, log: p.log };
  } catch (e) {
    if (!(e instanceof TsbpfError) || e.code !== 'kernel') throw e;
    const d = e.details as { errno?: number; log?: string } | undefined;
    return { errno: d?.errno ?? 0, log: d?.log ?? '' };
  }
}

/**
 * Loads `insns` (with maps) into the kernel at log level 2 (or `logLevel`) and closes every fd
 * again. When the log does not fit the buffer, its tail is used for the words and a second load
 * at log level 0 gives the verdict.
 */
export function runKernel(
  insns: readonly Insn[],
  opts: {
    progType: number;
    expectedAttachType?: number;
    attachBtfId?: number;
    maps: readonly VerifierMap[];
    logLevel?: number;
  },
): KernelRun {
  const fds: number[] = [];
  const attach = opts.expectedAttachType ?? 0;
  try {
    for (const m of opts.maps) fds.push(createMap(m));
    const patched = patchMapFds(insns, fds);
    const btfId = opts.attachBtfId ?? 0;
    const verdict = fixedLogLoad(patched, opts.progType, attach, opts.logLevel ?? 2, btfId);
    if (verdict.fd !== undefined) closeFd(verdict.fd);
    const log = verdict.log;
    if (verdict.fd !== undefined)
      return { result: { verdict: 'accept', processed: parseProcessed(log), errors: [] }, log };
    const parsed = parseKernelLog(log);
    const r: KernelResult = {
      verdict: 'reject',
      errno: errnoName(verdict.errno ?? 0),
      errors: parsed.errors,
    };
    if (parsed.insn !== undefined) r.insn = parsed.insn;
    if (parsed.processed !== undefined) r.processed = parsed.processed;
    return { result: r, log };
  } finally {
    for (const fd of fds) closeFd(fd);
  }
}

export function runKernelCase(c: VerifierCase, insns = assembleCase(c)): KernelRun {
  if (c.unpriv) {
    const why = unprivilegedUnavailable();
    if (why) return { result: { verdict: 'skip', reason: why, errors: [] }, log: '' };
  }
  const o: { progType: number; expectedAttachType?: number; attachBtfId?: number; maps: VerifierMap[] } = {
    progType: progTypeOf(c),
    maps: verifierMaps(c),
  };
  const a = attachTypeOf(c);
  if (a !== undefined) o.expectedAttachType = a;
  const b = attachBtfIdOf(c);
  if (b !== undefined) o.attachBtfId = b;
  return runKernel(insns, o);
}

export function parseProcessed(log: string): number | undefined {
  const m = /processed (\d+) insns \(limit/.exec(log);
  return m ? Number(m[1]) : undefined;
}

/** `verification time N usec` (log level with BPF_LOG_STATS). */
export function parseVerificationTime(log: string): number | undefined {
  const m = /^verification time (\d+) usec/m.exec(log);
  return m ? Number(m[1]) : undefined;
}

const INSN_LINE = /^(\d+): (\([0-9a-f]{2}\)|BUG_)/;
/** Lines of a level-2 log that are state, not words about an error. */
const STATE_LINE =
  /^(\d+: R\d|\d+: safe|from \d+ to \d+:|mark_precise:|last_idx |regs=|\d+: \(|; |frame\d|caller:|callee:|returning from callee:|to caller at|propagating |func#\d+ @\d+|Live regs before insn:|Func#\d+ |\(\d+,\d+\) )/;

/**
 * The kernel's words about a rejection: the lines after the last instruction line and before
 * `processed ...`, state lines skipped; plus the failing instruction and the processed count.
 */
export function parseKernelLog(log: string): { errors: string[]; insn?: number; processed?: number } {
  // some kernel messages lack their newline, so `processed ...` may be glued to the last one
  const lines = log
    .replace(/(\S)(processed \d+ insns \(limit)/g, '$1\n$2')
    .split('\n')
    .map((l) => l.trimEnd());
  let end = lines.findIndex((l) => /^processed \d+ insns/.test(l));
  if (end < 0) end = lines.length;
  let lastInsn = -1;
  for (let i = 0; i < end; i++) if (INSN_LINE.test(lines[i])) lastInsn = i;
  const errors: string[] = [];
  for (let i = lastInsn + 1; i < end; i++) {
    const l = lines[i].trim();
    if (l === '' || STATE_LINE.test(l) || /^verification time|^stack depth/.test(l)) continue;
    // a liveness table (6.18 level 2 prints `  N: ...` dumps before verification) is indented
    if (lastInsn < 0 && /^\s+\d+: /.test(lines[i])) continue;
    errors.push(l);
  }
  const out: { errors: string[]; insn?: number; processed?: number } = { errors };
  if (lastInsn >= 0) out.insn = Number(INSN_LINE.exec(lines[lastInsn])![1]);
  const p = parseProcessed(log);
  if (p !== undefined) out.processed = p;
  return out;
}

// ───────────────────────────── comparison ─────────────────────────────

/** Normalises only what legitimately differs between runs: fds and whitespace. */
export function normaliseSentence(s: string): string {
  return s
    .trim()
    .replace(/\s+/g, ' ')
    .replace(/\bfd \d+\b/g, 'fd N');
}

/**
 * Kernel rejections that are about policy or program shape rather than memory safety. Everything
 * else the kernel rejects counts as memory safety (bad access, uninitialised reads, pointer abuse,
 * leaked references): tsbpf must never accept those.
 */
const POLICY = [
  /^unreachable insn/,
  /^back-edge from insn/,
  /^infinite loop detected/,
  /^jump out of range/,
  /^jump to reserved code/,
  /^At program exit the register R0 has/,
  /^At callback return the register R0 has/,
  /^unknown func /,
  /^program of this type cannot use helper/,
  /^BPF program is too large/,
  /^The sequence of \d+ jumps is too complex/,
  /^combined stack size of/,
  /^the call stack of \d+ frames is too deep/,
  /^cannot call GPL-restricted function/,
  /^invalid BPF_LD_IMM insn/,
  /^unknown opcode/,
  /^BPF_\w+ uses reserved fields/,
  /^invalid bpf_ld_imm64 insn/,
  /^last insn is not an exit or jmp/,
  /^invalid insn idx/,
  /^loading\/calling other bpf or kernel functions are allowed for CAP_SYS_ADMIN only/,
  /^function calls to other bpf functions are allowed for CAP_SYS_ADMIN only/,
  /^R\d+ is invalid$/,
  /^fd \d+ is not pointing to valid bpf_map/,
  /^cannot pass map_type \d+ into func/,
  /^tail_calls are not allowed/,
  /^bpf_tail_call is not allowed/,
  /^tail_call is not allowed in subprogs without BTF/,
  /^LD_ABS is not allowed in subprogs without BTF/,
  /^missing btf func_info/,
  /^invalid func unknown#/,
  /^call to invalid destination/,
  /^unrecognized bpf_ld_imm64 insn/,
  /^BPF_LD_\[ABS\|IND\] instructions not allowed for this program type/,
  /^invalid shift \d+/,
  /^div by zero/,
  /^invalid atomic operand size/,
  /^BPF_ATOMIC uses invalid atomic opcode/,
  /^no direct value access support for this map type/,
  /^expected prog array map for tail call/,
  /^At program exit the register R0 is not a known value/,
];

export function isMemorySafetyRejection(r: KernelResult): boolean {
  if (r.verdict !== 'reject') return false;
  if (r.errno === 'E2BIG') return false; // too large, too complex, too deep
  const first = r.errors[0] ?? '';
  return !POLICY.some((p) => p.test(first));
}

export interface CaseOutcome {
  c: VerifierCase;
  kernel: KernelResult;
  ours: VerifyResult | { threw: string };
  verdictAgrees: boolean;
  /** undefined when not applicable (the kernel accepts, or we accept). */
  sentenceAgrees?: boolean;
  ourSentence?: string;
}

export function runOurs(
  verify: VerifyFn,
  c: VerifierCase,
  logLevel: 0 | 1 | 2 = 2,
  insns = assembleCase(c),
): VerifyResult | { threw: string } {
  try {
    return verify(insns, verifyOptions(c, logLevel));
  } catch (e) {
    return { threw: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

export function compare(
  c: VerifierCase,
  kernel: KernelResult,
  ours: VerifyResult | { threw: string },
): CaseOutcome {
  const kernelOk = kernel.verdict === 'accept';
  if ('threw' in ours) return { c, kernel, ours, verdictAgrees: false };
  const out: CaseOutcome = { c, kernel, ours, verdictAgrees: ours.ok === kernelOk };
  if (!kernelOk && !ours.ok) {
    const mine = normaliseSentence(ours.error?.message ?? '');
    out.ourSentence = ours.error?.message ?? '(no error message)';
    const theirs = kernel.errors.map(normaliseSentence);
    out.sentenceAgrees = theirs.length > 0 ? mine === theirs[0] || theirs.includes(mine) : mine === '';
  }
  return out;
}

export interface Figures {
  cases: number;
  verdictAgree: number;
  rejectsBoth: number;
  sentenceAgree: number;
  verdictPct: number;
  sentencePct: number;
  unsafeAccepts: CaseOutcome[];
}

export function figures(outcomes: readonly CaseOutcome[]): Figures {
  const verdictAgree = outcomes.filter((o) => o.verdictAgrees).length;
  const both = outcomes.filter((o) => o.sentenceAgrees !== undefined);
  const sentenceAgree = both.filter((o) => o.sentenceAgrees).length;
  const kernelRejects = outcomes.filter((o) => o.kernel.verdict === 'reject').length;
  return {
    cases: outcomes.length,
    verdictAgree,
    rejectsBoth: both.length,
    sentenceAgree,
    verdictPct: outcomes.length ? (100 * verdictAgree) / outcomes.length : 100,
    // over every kernel rejection: a missed rejection is also a missed sentence
    sentencePct: kernelRejects ? (100 * sentenceAgree) / kernelRejects : 100,
    unsafeAccepts: outcomes.filter(
      (o) => isMemorySafetyRejection(o.kernel) && !('threw' in o.ours) && o.ours.ok === true,
    ),
  };
}

export function describeOutcome(o: CaseOutcome): string {
  const where = `${o.c.file}:${o.c.line} ${o.c.name}`;
  const k =
    o.kernel.verdict === 'accept'
      ? 'kernel accepts'
      : `kernel rejects: ${o.kernel.errors[0] ?? '(no message)'}`;
  let ours: string;
  if ('threw' in o.ours) ours = `tsbpf threw ${o.ours.threw}`;
  else if (o.ours.ok) ours = 'tsbpf accepts';
  else ours = `tsbpf rejects at insn ${o.ours.error?.insn}: ${o.ours.error?.message ?? '(no message)'}`;
  return `${where}\n    ${k}\n    ${ours}`;
}
