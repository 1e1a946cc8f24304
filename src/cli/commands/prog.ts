/**
 * `tsbpf prog`: bpftool's `prog` subcommands on the running kernel, with bpftool's words, fields and
 * JSON keys: list|show [PROG], dump xlated|jited PROG, run PROG data_in FILE ..., pin PROG FILE,
 * load OBJ FILE, loadall OBJ DIR [pinmaps DIR]. PROG is `id N`, `pinned PATH`, `tag TAG` or `name NAME`.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import type { Btf } from '../../btf/btf.js';
import { btfTypeSignature, hexDataJson, JsonWriter } from '../../btf/dump-value.js';
import { helperById } from '../../catalog/helpers.js';
import { programTypeById } from '../../catalog/program-types.js';
import { isTsbpfError, TsbpfError } from '../../errors.js';
import { type DecodedInsn, decode } from '../../isa/insn.js';
import { loadBtfById } from '../../kernel/btf-info.js';
import { kernelBackend } from '../../kernel/collection.js';
import {
  fdById,
  fdInfo,
  objectIds,
  objGet,
  objPin,
  type ProgInfo,
  type ProgLineInfo,
  progBtfInfo,
  progInfoByFd,
  progInstructions,
  progJitedFuncs,
} from '../../kernel/info.js';
import { closeFd, testRun } from '../../kernel/program.js';
import { readObject } from '../../object/spec.js';
import { kernelInsn } from '../../verifier/log.js';
import type { Command, Io } from '../command.js';
import { readInput, writeOutput } from '../files.js';

/** -j / -p / --json / --pretty anywhere in argv; the rest. */
export function jsonFlags(argv: string[]): { json: boolean; pretty: boolean; rest: string[] } {
  let json = false;
  let pretty = false;
  const rest: string[] = [];
  for (const a of argv) {
    if (a === '-j' || a === '--json') json = true;
    else if (a === '-p' || a === '--pretty') {
      json = true;
      pretty = true;
    } else rest.push(a);
  }
  return { json, pretty, rest };
}

/** Prints a value as bpftool's json_writer does (`-p`: its own indentation, not JSON.stringify's). */
export function printJson(io: Io, value: unknown, pretty: boolean): void {
  const w = new JsonWriter(pretty);
  w.value(value);
  io.stdout(w.finish());
}

/**
 * Runs a bpftool-style subcommand and reports kernel errors as bpftool does: `Error: MSG` on stderr
 * (with -j/-p, `{"error":"MSG"}` on stdout) and the negative errno as the exit status. Usage errors
 * and the rest go to the CLI's usual handling.
 */
export async function bpftoolErrors(
  io: Io,
  json: boolean,
  pretty: boolean,
  fn: () => number | Promise<number>,
): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (!isTsbpfError(e) || e.code !== 'kernel') throw e;
    const errno = typeof e.details.errno === 'number' ? e.details.errno : 1;
    if (json) printJson(io, { error: e.message }, pretty);
    else io.stderr(`Error: ${e.message}\n`);
    return -errno & 0xff;
  }
}

/** bpftool's fprint_hex: bytes as `xx`, `sep` between, two spaces after every 8th, a newline after every 16th. */
export function fprintHex(bytes: Uint8Array, sep = ' '): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) {
    if (i === 0) s += '';
    else if (i % 16 === 0) s += '\n';
    else if (i % 8 === 0) s += '  ';
    else s += sep;
    s += bytes[i].toString(16).padStart(2, '0');
  }
  return s;
}

/** bpftool's print_boot_time: boot-relative ns as local wall-clock time, `%FT%T%z`. */
export function bootTime(ns: bigint): { text: string; epoch: number } {
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const epoch = Math.floor(Date.now() / 1000 - uptime + Number(ns) / 1e9);
  const d = new Date(epoch * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const tz = `${off >= 0 ? '+' : '-'}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)}`;
  return {
    text: `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${tz}`,
    epoch,
  };
}

/** Parses an object selector (`id N`, `pinned PATH`, `tag T`, `name N`) off the front of args: fds (caller closes). */
export function selectObjects(kind: 'prog' | 'map', args: string[]): { fds: number[]; rest: string[] } {
  const [how, what, ...rest] = args;
  if (how === undefined || what === undefined)
    throw new TsbpfError(
      'usage',
      `expected a ${kind.toUpperCase()}: id ID | pinned PATH | name NAME${kind === 'prog' ? ' | tag TAG' : ''}`,
    );
  if (how === 'id') {
    const id = Number(what);
    if (!Number.isInteger(id) || id < 0) throw new TsbpfError('usage', `can't parse ${what} as ID`);
    return { fds: [fdById(kind, id)], rest };
  }
  if (how === 'pinned') return { fds: [objGet(what)], rest };
  if (how === 'name' || how === 'tag') {
    const fds: number[] = [];
    for (const id of objectIds(kind)) {
      let fd: number;
      try {
        fd = fdById(kind, id);
      } catch {
        continue;
      }
      const info = kind === 'prog' ? progInfoByFd(fd) : undefined;
      const name = info ? info.name : readMapName(fd);
      if ((how === 'name' && name === what) || (how === 'tag' && info?.tag === what.toLowerCase()))
        fds.push(fd);
      else closeFd(fd);
    }
    if (fds.length === 0) throw new TsbpfError('kernel', `no ${kind} with ${how} ${what}`);
    return { fds, rest };
  }
  throw new TsbpfError(
    'usage',
    `expected 'id', 'pinned', 'name'${kind === 'prog' ? " or 'tag'" : ''}, got: '${how}'`,
  );
}

function readMapName(fd: number): string {
  return fdInfo(fd).get('map_name') ?? '';
}

/**
 * bpftool's get_prog_full_name: a name cut at 15 characters is replaced by the program's BTF function
 * name (its first func_info record) when the program has BTF.
 */
export function progFullName(info: ProgInfo, fd: number): string {
  if (info.name.length < 15 || !info.btfId || !info.nrFuncInfo) return info.name;
  try {
    const { btfId, funcInfo } = progBtfInfo(fd);
    const f = funcInfo[0];
    if (!f) return info.name;
    const t = loadBtfById(btfId).type(f.typeId);
    return t.kind === 'FUNC' ? t.name : info.name;
  } catch {
    return info.name;
  }
}

function progJson(info: ProgInfo, fd: number): Record<string, unknown> {
  const t = programTypeById(info.type)?.name;
  const o: Record<string, unknown> = { id: info.id };
  o.type = t ?? info.type;
  if (info.name) o.name = progFullName(info, fd);
  o.tag = info.tag;
  o.gpl_compatible = info.gplCompatible;
  if (info.runTimeNs) {
    o.run_time_ns = Number(info.runTimeNs);
    o.run_cnt = Number(info.runCnt);
  }
  if (info.recursionMisses) o.recursion_misses = Number(info.recursionMisses);
  if (info.loadTime) {
    o.loaded_at = bootTime(info.loadTime).epoch;
    o.uid = info.createdByUid;
  }
  o.bytes_xlated = info.xlatedProgLen;
  o.jited = info.jitedProgLen > 0;
  if (info.jitedProgLen) o.bytes_jited = info.jitedProgLen;
  const memlock = fdInfo(fd).get('memlock');
  if (memlock !== undefined) o.bytes_memlock = Number(memlock);
  if (info.mapIds.length) o.map_ids = info.mapIds;
  if (info.btfId) o.btf_id = info.btfId;
  return o;
}

function progPlain(info: ProgInfo, fd: number): string {
  const t = programTypeById(info.type)?.name;
  let s = `${info.id}: ${t ? `${t}  ` : `type ${info.type}  `}`;
  if (info.name) s += `name ${progFullName(info, fd)}  `;
  s += `tag ${info.tag}`;
  s += info.gplCompatible ? '  gpl' : '';
  if (info.runTimeNs) s += ` run_time_ns ${info.runTimeNs} run_cnt ${info.runCnt}`;
  if (info.recursionMisses) s += ` recursion_misses ${info.recursionMisses}`;
  s += '\n';
  if (info.loadTime) s += `\tloaded_at ${bootTime(info.loadTime).text}  uid ${info.createdByUid}\n`;
  s += `\txlated ${info.xlatedProgLen}B`;
  s += info.jitedProgLen ? `  jited ${info.jitedProgLen}B` : '  not jited';
  const memlock = fdInfo(fd).get('memlock');
  if (memlock !== undefined) s += `  memlock ${memlock}B`;
  if (info.mapIds.length) s += `  map_ids ${info.mapIds.join(',')}`;
  if (info.btfId) s += `\n\tbtf_id ${info.btfId}`;
  return `${s}\n`;
}

function withFds<T>(fds: number[], fn: (fd: number) => T): T[] {
  try {
    return fds.map(fn);
  } finally {
    for (const fd of fds) closeFd(fd);
  }
}

function show(args: string[], io: Io, json: boolean, pretty: boolean): number {
  const out: Record<string, unknown>[] = [];
  const emit = (fd: number) => {
    const info = progInfoByFd(fd);
    if (json) out.push(progJson(info, fd));
    else io.stdout(progPlain(info, fd));
  };
  if (args.length > 0) {
    const { fds } = selectObjects('prog', args);
    withFds(fds, emit);
    if (json)
      printJson(io, fds.length === 1 && args[0] !== 'name' && args[0] !== 'tag' ? out[0] : out, pretty);
    return 0;
  }
  for (const id of objectIds('prog')) {
    let fd: number;
    try {
      fd = fdById('prog', id);
    } catch {
      continue; // gone meanwhile
    }
    withFds([fd], emit);
  }
  if (json) printJson(io, out, pretty);
  return 0;
}

let kallsyms: { callBase: bigint; byAddr: Map<bigint, string> } | null | undefined;

/** /proc/kallsyms by address (bpftool's kernel_syms_load); null when addresses are hidden. */
function kernelSyms(): { callBase: bigint; byAddr: Map<bigint, string> } | null {
  if (kallsyms !== undefined) return kallsyms;
  kallsyms = null;
  try {
    const byAddr = new Map<bigint, string>();
    let callBase: bigint | undefined;
    for (const line of readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
      const sp1 = line.indexOf(' ');
      if (sp1 < 0) continue;
      const sp2 = line.indexOf(' ', sp1 + 1);
      const end = line.indexOf('\t', sp2 + 1);
      const name = line.slice(sp2 + 1, end < 0 ? undefined : end);
      const addr = BigInt(`0x${line.slice(0, sp1)}`);
      if (name === '__bpf_call_base') {
        if (addr === 0n) return kallsyms;
        callBase = addr;
      }
      if (addr !== 0n && !byAddr.has(addr)) byAddr.set(addr, name);
    }
    if (callBase !== undefined) kallsyms = { callBase, byAddr };
  } catch {
    // no kallsyms: calls print as addresses
  }
  return kallsyms;
}

/** The last helper id bpftool v7.1's disassembler (kernel 6.1's func_id_str) has a name for. */
const BPFTOOL_MAX_FUNC_ID = 211;

/**
 * One xlated instruction in bpftool's words: the kernel's printer (verifier/log.ts, as in the
 * verifier log) with bpftool's callbacks for map references (`map[id:N]`, `map[id:N][0]+OFF`) and
 * calls (kernel symbols from /proc/kallsyms, `pc+N#bpf_prog_TAG_F` for subprograms).
 */
function xlatedInsn(insn: DecodedInsn, jitedKsyms: bigint[]): string {
  const hex2 = insn.code.toString(16).padStart(2, '0');
  if (insn.code === 0x18 && [1, 2, 4, 6].includes(insn.src)) {
    const imm2 = (insn.imm2 ?? 0) >>> 0;
    const m =
      insn.src === 1
        ? `map[id:${insn.imm >>> 0}]`
        : insn.src === 2
          ? `map[id:${insn.imm >>> 0}][0]+${imm2}`
          : insn.src === 4
            ? `subprog[${insn.imm >= 0 ? '+' : ''}${insn.imm}]`
            : `map[idx:${insn.imm >>> 0}]+${imm2}`;
    return `(${hex2}) r${insn.dst} = ${m}`;
  }
  // the kernel's internal per-CPU address move (off -1): bpftool v7.1 prints a plain move
  if (insn.code === 0xbf && insn.off === -1) return `(${hex2}) r${insn.dst} = r${insn.src}`;
  if (insn.code === 0x85) {
    const syms = kernelSyms();
    const base = syms?.callBase ?? 0n;
    if (insn.src === 1) {
      const off = insn.off >= 0 ? `+${insn.off}` : `${insn.off}`;
      if (!jitedKsyms.length) return `(${hex2}) call pc${off}`;
      const addr =
        insn.imm >>> 0 < jitedKsyms.length ? (jitedKsyms[insn.imm >>> 0] as bigint) : base + BigInt(insn.imm);
      const sym = syms?.byAddr.get(addr);
      return `(${hex2}) call pc${off}#${sym ?? `0x${BigInt.asUintN(64, addr).toString(16)}`}`;
    }
    if (insn.src !== 0 || insn.imm <= 0 || insn.imm > BPFTOOL_MAX_FUNC_ID || !helperById(insn.imm)) {
      const addr = BigInt.asUintN(64, base + BigInt(insn.imm));
      return `(${hex2}) call ${syms?.byAddr.get(addr) ?? `0x${addr.toString(16)}`}#${insn.imm}`;
    }
  }
  return kernelInsn(insn);
}

/** bpf_prog_linfo__lfind: the line info of instruction `i`, searching from record `skip`. */
function lfind(lines: ProgLineInfo[], i: number, skip: number): ProgLineInfo | undefined {
  if (skip >= lines.length || i < (lines[skip] as ProgLineInfo).insnOff) return undefined;
  let k = skip;
  while (k < lines.length && i >= (lines[k] as ProgLineInfo).insnOff) k++;
  const l = lines[k - 1] as ProgLineInfo;
  return l.insnOff === i ? l : undefined;
}

function dump(args: string[], io: Io, json: boolean, pretty: boolean): number {
  const [which, ...rest] = args;
  if (which !== 'xlated' && which !== 'jited') throw new TsbpfError('usage', "expected 'xlated' or 'jited'");
  const { fds, rest: tail } = selectObjects('prog', rest);
  let file: string | undefined;
  let opcodes = false;
  let linum = false;
  for (let i = 0; i < tail.length; i++) {
    if (tail[i] === 'file') file = tail[++i];
    else if (tail[i] === 'opcodes') opcodes = true;
    else if (tail[i] === 'linum') linum = true;
    else if (tail[i] !== 'visual') throw new TsbpfError('usage', `unexpected '${tail[i]}'`);
  }
  withFds(fds, (fd) => {
    const bytes = progInstructions(fd, which);
    if (file !== undefined) {
      writeOutput(file, bytes);
      return;
    }
    if (which === 'jited') {
      if (json)
        printJson(
          io,
          [{ opcodes: Array.from(bytes, (b) => `0x${b.toString(16).padStart(2, '0')}`) }],
          pretty,
        );
      else io.stdout(`${fprintHex(bytes)}\n`);
      return;
    }
    const { btfId, funcInfo, lineInfo } = progBtfInfo(fd);
    let btf: Btf | undefined;
    if (btfId) {
      try {
        btf = loadBtfById(btfId);
      } catch {
        btf = undefined;
      }
    }
    const jitedKsyms = progJitedFuncs(fd).ksyms;
    const insns = decode(bytes);
    const str = (off: number) => {
      try {
        return btf?.str(off);
      } catch {
        return undefined;
      }
    };
    const hexArr = (b: Uint8Array) => (w: JsonWriter) => hexDataJson(w, b);
    let rec = 0;
    let skip = 0;
    const out: Record<string, unknown>[] = [];
    let text = '';
    for (const insn of insns) {
      const o: Record<string, unknown> = {};
      const f = funcInfo[rec];
      if (btf && f && f.insnOff === insn.pc) {
        const sig = btfTypeSignature(btf, f.typeId);
        if (sig) {
          if (json) o.proto = sig;
          else text += `${sig}:\n`;
        }
        rec++;
      }
      const l = lineInfo.length ? lfind(lineInfo, insn.pc, skip) : undefined;
      if (l) {
        const line = str(l.lineOff)?.replace(/^\s+/, '');
        if (json) {
          if (line !== undefined) o.src = line;
          if (linum) {
            const f = str(l.fileNameOff);
            if (f !== undefined) o.file = f;
            if (l.line) o.line_num = l.line;
            if (l.col) o.line_col = l.col;
          }
        } else if (line !== undefined) {
          text += linum
            ? `; ${line} [file:${str(l.fileNameOff) ?? ''} line_num:${l.line} line_col:${l.col}]\n`
            : `; ${line}\n`;
        }
        skip++;
      }
      const raw = bytes.subarray(insn.pc * 8, insn.pc * 8 + (insn.code === 0x18 ? 16 : 8));
      if (json) {
        o.disasm = xlatedInsn(insn, jitedKsyms);
        if (opcodes)
          o.opcodes = {
            code: (w: JsonWriter) => w.raw(`"0x${insn.code.toString(16).padStart(2, '0')}"`),
            src_reg: (w: JsonWriter) => w.raw(`"0x${insn.src.toString(16)}"`),
            dst_reg: (w: JsonWriter) => w.raw(`"0x${insn.dst.toString(16)}"`),
            off: hexArr(raw.subarray(2, 4)),
            imm: hexArr(raw.subarray(4, insn.code === 0x18 ? 16 : 8)),
          };
        out.push(o);
      } else {
        text += `${String(insn.pc).padStart(4)}: ${xlatedInsn(insn, jitedKsyms)}\n`;
        if (opcodes)
          text += `       ${fprintHex(raw.subarray(0, 8))}${insn.code === 0x18 ? ` ${fprintHex(raw.subarray(8, 16))}` : ''}\n`;
      }
    }
    if (json) printJson(io, out, pretty);
    else io.stdout(text);
  });
  return 0;
}

function run(args: string[], io: Io, json: boolean, pretty: boolean): number {
  const { fds, rest } = selectObjects('prog', args);
  const opts: {
    dataIn?: string;
    dataOut?: string;
    ctxIn?: string;
    ctxOut?: string;
    repeat?: number;
    dataSizeOut?: number;
  } = {};
  for (let i = 0; i < rest.length; i += 2) {
    const v = rest[i + 1];
    if (v === undefined) throw new TsbpfError('usage', `missing value after '${rest[i]}'`);
    switch (rest[i]) {
      case 'data_in':
        opts.dataIn = v;
        break;
      case 'data_out':
        opts.dataOut = v;
        break;
      case 'data_size_out':
        opts.dataSizeOut = Number(v);
        break;
      case 'ctx_in':
        opts.ctxIn = v;
        break;
      case 'ctx_out':
        opts.ctxOut = v;
        break;
      case 'repeat':
        opts.repeat = Number(v);
        break;
      default:
        throw new TsbpfError('usage', `unexpected '${rest[i]}'`);
    }
  }
  withFds(fds, (fd) => {
    const read = (p: string | undefined) => (p === undefined ? undefined : readInput(p));
    const data = read(opts.dataIn);
    const ctx = read(opts.ctxIn);
    const r = testRun(fd, {
      ...(data ? { data } : {}),
      ...(ctx ? { ctx } : {}),
      ...(opts.repeat !== undefined ? { repeat: opts.repeat } : {}),
      ...(opts.dataSizeOut !== undefined ? { dataOutSize: opts.dataSizeOut } : {}),
    });
    const outTo = (path: string | undefined, bytes: Uint8Array | undefined) => {
      if (path === undefined || !bytes) return;
      if (path === '-') io.stdout(`${fprintHex(bytes)}\n`);
      else writeOutput(path, bytes);
    };
    outTo(opts.dataOut, r.data);
    outTo(opts.ctxOut, r.ctx);
    if (json) printJson(io, { retval: r.retval, duration: r.durationNs }, pretty);
    else
      io.stdout(
        `Return value: ${r.retval}, duration${(opts.repeat ?? 1) > 1 ? ' (average)' : ''}: ${r.durationNs}ns\n`,
      );
  });
  return 0;
}

function load(args: string[], io: Io, all: boolean): number {
  const [obj, path, ...rest] = args;
  if (obj === undefined || path === undefined)
    throw new TsbpfError('usage', `expected OBJ ${all ? 'DIR' : 'FILE'}`);
  let pinmaps: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === 'pinmaps') pinmaps = rest[++i];
    else if (rest[i] === 'type' || rest[i] === 'map' || rest[i] === 'dev' || rest[i] === 'xdpmeta_dev') i++;
    else throw new TsbpfError('usage', `unexpected '${rest[i]}'`);
  }
  const spec = readObject(readInput(obj), { path: obj });
  const programs = spec.programs.filter((p) => p.autoload).map((p) => p.name);
  const c = kernelBackend.load(spec, { programs: all ? programs : programs.slice(0, 1) });
  try {
    if (all) {
      mkdirSync(path, { recursive: true });
      for (const p of c.programs.values()) p.pin(`${path}/${p.name}`);
    } else {
      const first = [...c.programs.values()][0];
      if (!first) throw new TsbpfError('usage', `${obj} has no program to load`);
      first.pin(path);
    }
    if (pinmaps !== undefined) {
      mkdirSync(pinmaps, { recursive: true });
      for (const [name, m] of c.maps) m.pin(`${pinmaps}/${name}`);
    }
  } finally {
    c.close();
  }
  void io;
  return 0;
}

export const progCommand: Command = {
  name: 'prog',
  summary: "inspect and manage programs in the kernel (bpftool's prog)",
  usage: `Usage: tsbpf prog { show | list } [PROG]
       tsbpf prog dump xlated PROG [file FILE] [opcodes]
       tsbpf prog dump jited  PROG [file FILE]
       tsbpf prog pin PROG FILE
       tsbpf prog load OBJ FILE [pinmaps MAP_DIR]
       tsbpf prog loadall OBJ DIR [pinmaps MAP_DIR]
       tsbpf prog run PROG data_in FILE [data_out FILE [data_size_out L]] [ctx_in FILE [ctx_out FILE]] [repeat N]

       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       -j/--json, -p/--pretty: JSON output (bpftool's keys)
`,
  async run(argv, io) {
    const { json, pretty, rest } = jsonFlags(argv);
    const [sub, ...args] = rest;
    switch (sub) {
      case undefined:
      case 'show':
      case 'list':
        return show(args, io, json, pretty);
      case 'dump':
        return dump(args, io, json, pretty);
      case 'run':
        return run(args, io, json, pretty);
      case 'pin': {
        const { fds, rest: tail } = selectObjects('prog', args);
        if (fds.length !== 1 || tail.length !== 1) {
          for (const fd of fds) closeFd(fd);
          throw new TsbpfError('usage', 'expected one PROG and a FILE');
        }
        withFds(fds, (fd) => objPin(fd, tail[0] as string));
        if (json) io.stdout('null\n');
        return 0;
      }
      case 'load':
      case 'loadall':
        return load(args, io, sub === 'loadall');
      default:
        throw new TsbpfError('usage', `unknown prog subcommand '${sub}'`);
    }
  },
};
