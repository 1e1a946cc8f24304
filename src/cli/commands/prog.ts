/**
 * `tsbpf prog`: bpftool's `prog` subcommands on the running kernel, with bpftool's words, fields and
 * JSON keys: list|show [PROG], dump xlated|jited PROG, run PROG data_in FILE ..., pin PROG FILE,
 * load OBJ FILE, loadall OBJ DIR [pinmaps DIR]. PROG is `id N`, `pinned PATH`, `tag TAG` or `name NAME`.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { programTypeById } from '../../catalog/program-types.js';
import { TsbpfError } from '../../errors.js';
import { formatInsn } from '../../isa/disasm.js';
import { decode } from '../../isa/insn.js';
import { kernelBackend } from '../../kernel/collection.js';
import {
  fdById,
  fdInfo,
  objectIds,
  objGet,
  objPin,
  type ProgInfo,
  progInfoByFd,
  progInstructions,
} from '../../kernel/info.js';
import { closeFd, testRun } from '../../kernel/program.js';
import { readObject } from '../../object/spec.js';
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

export function printJson(io: Io, value: unknown, pretty: boolean): void {
  io.stdout(`${pretty ? JSON.stringify(value, null, 4) : JSON.stringify(value)}\n`);
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

function progJson(info: ProgInfo, fd: number): Record<string, unknown> {
  const t = programTypeById(info.type)?.name;
  const o: Record<string, unknown> = { id: info.id };
  o.type = t ?? info.type;
  if (info.name) o.name = info.name;
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
  if (info.name) s += `name ${info.name}  `;
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

function dump(args: string[], io: Io, json: boolean, pretty: boolean): number {
  const [which, ...rest] = args;
  if (which !== 'xlated' && which !== 'jited') throw new TsbpfError('usage', "expected 'xlated' or 'jited'");
  const { fds, rest: tail } = selectObjects('prog', rest);
  let file: string | undefined;
  let opcodes = false;
  for (let i = 0; i < tail.length; i++) {
    if (tail[i] === 'file') file = tail[++i];
    else if (tail[i] === 'opcodes') opcodes = true;
    else if (tail[i] !== 'linum' && tail[i] !== 'visual')
      throw new TsbpfError('usage', `unexpected '${tail[i]}'`);
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
    // bpftool's layout (`   0: (b7) r0 = 0`), with the instruction in LLVM's syntax
    const insns = decode(bytes);
    const text = (i: (typeof insns)[number]) => formatInsn(i, { lossless: true });
    if (json) {
      printJson(
        io,
        insns.map((i) => ({
          disasm: text(i),
          ...(opcodes ? { opcodes: { code: `0x${i.code.toString(16).padStart(2, '0')}` } } : {}),
        })),
        pretty,
      );
    } else {
      let out = '';
      for (const i of insns) {
        out += `${String(i.pc).padStart(4)}: (${i.code.toString(16).padStart(2, '0')}) ${text(i)}\n`;
        if (opcodes)
          out += `       ${fprintHex(bytes.subarray(i.pc * 8, i.pc * 8 + (i.code === 0x18 ? 16 : 8)))}\n`;
      }
      io.stdout(out);
    }
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
