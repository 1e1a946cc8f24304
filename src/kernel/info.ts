/**
 * What the kernel holds: program, map, link and BTF enumeration (BPF_*_GET_NEXT_ID, *_GET_FD_BY_ID),
 * BPF_OBJ_GET_INFO_BY_FD in full (struct bpf_prog_info, bpf_map_info, bpf_link_info), xlated and
 * jited instruction dumps, pinning (BPF_OBJ_PIN / BPF_OBJ_GET) and BPF_ENABLE_STATS.
 */
import { readFileSync } from 'node:fs';
import { TsbpfError } from '../errors.js';
import { addressOf, BPF_CMD, bpfRaw, closeFd, explainErrno, kernelBuffer } from './syscall.js';

function fail(what: string, errno: number): TsbpfError {
  return new TsbpfError('kernel', `${what} failed: ${explainErrno(errno)}`, { errno });
}

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

function pathBuf(path: string): Uint8Array {
  const enc = new TextEncoder().encode(path);
  const b = kernelBuffer(enc.length + 1);
  b.set(enc);
  return b;
}

/** BPF_OBJ_PIN: pins any bpf fd (program, map, link) at a path on a bpf filesystem. */
export function objPin(fd: number, path: string): void {
  const p = pathBuf(path);
  const attr = kernelBuffer(24);
  const v = new DataView(attr.buffer);
  v.setBigUint64(0, addressOf(p), true);
  v.setUint32(8, fd, true);
  const r = bpfRaw(BPF_CMD.OBJ_PIN, attr, [p]);
  if (r.result < 0) throw fail(`BPF_OBJ_PIN at '${path}'`, r.errno);
}

/** BPF_OBJ_GET: a new fd of a pinned object. */
export function objGet(path: string, flags = 0): number {
  const p = pathBuf(path);
  const attr = kernelBuffer(24);
  const v = new DataView(attr.buffer);
  v.setBigUint64(0, addressOf(p), true);
  v.setUint32(12, flags, true);
  const r = bpfRaw(BPF_CMD.OBJ_GET, attr, [p]);
  if (r.result < 0) throw fail(`BPF_OBJ_GET of '${path}'`, r.errno);
  return r.result;
}

export type ObjectKind = 'prog' | 'map' | 'link' | 'btf';
const NEXT_ID: Record<ObjectKind, number> = {
  prog: BPF_CMD.PROG_GET_NEXT_ID,
  map: BPF_CMD.MAP_GET_NEXT_ID,
  link: BPF_CMD.LINK_GET_NEXT_ID,
  btf: BPF_CMD.BTF_GET_NEXT_ID,
};
const FD_BY_ID: Record<ObjectKind, number> = {
  prog: BPF_CMD.PROG_GET_FD_BY_ID,
  map: BPF_CMD.MAP_GET_FD_BY_ID,
  link: BPF_CMD.LINK_GET_FD_BY_ID,
  btf: BPF_CMD.BTF_GET_FD_BY_ID,
};

/** Every id of a kind of object in the kernel, ascending (BPF_*_GET_NEXT_ID). */
export function objectIds(kind: ObjectKind): number[] {
  const ids: number[] = [];
  let id = 0;
  for (;;) {
    const attr = kernelBuffer(12);
    const v = new DataView(attr.buffer);
    v.setUint32(0, id, true);
    const r = bpfRaw(NEXT_ID[kind], attr);
    if (r.result < 0) {
      if (r.errno === 2) return ids;
      throw fail(`BPF_${kind.toUpperCase()}_GET_NEXT_ID`, r.errno);
    }
    id = v.getUint32(4, true);
    ids.push(id);
  }
}

/** A new fd for the object with this id (BPF_*_GET_FD_BY_ID); the caller closes it. */
export function fdById(kind: ObjectKind, id: number): number {
  const attr = kernelBuffer(16);
  new DataView(attr.buffer).setUint32(0, id, true);
  const r = bpfRaw(FD_BY_ID[kind], attr);
  if (r.result < 0) throw fail(`BPF_${kind.toUpperCase()}_GET_FD_BY_ID ${id}`, r.errno);
  return r.result;
}

/** BPF_OBJ_GET_INFO_BY_FD into a buffer of `size` bytes (pre-filled by `prepare`, e.g. with array pointers). */
function infoByFd(fd: number, info: Uint8Array, pointees: Uint8Array[] = []): DataView {
  const attr = kernelBuffer(16);
  const v = new DataView(attr.buffer);
  v.setUint32(0, fd, true);
  v.setUint32(4, info.byteLength, true);
  v.setBigUint64(8, addressOf(info), true);
  const r = bpfRaw(BPF_CMD.OBJ_GET_INFO_BY_FD, attr, [info, ...pointees]);
  if (r.result < 0) throw fail(`BPF_OBJ_GET_INFO_BY_FD of fd ${fd}`, r.errno);
  return new DataView(info.buffer);
}

/** struct bpf_prog_info, in full. */
export interface ProgInfo {
  type: number;
  id: number;
  tag: string;
  jitedProgLen: number;
  xlatedProgLen: number;
  /** Nanoseconds since boot. */
  loadTime: bigint;
  createdByUid: number;
  mapIds: number[];
  name: string;
  ifindex: number;
  gplCompatible: boolean;
  netnsDev: bigint;
  netnsIno: bigint;
  btfId: number;
  nrFuncInfo: number;
  nrLineInfo: number;
  runTimeNs: bigint;
  runCnt: bigint;
  recursionMisses: bigint;
  verifiedInsns: number;
  attachBtfObjId: number;
  attachBtfId: number;
}

const PI = 232;

export function progInfoByFd(fd: number): ProgInfo {
  let v = infoByFd(fd, kernelBuffer(PI));
  const nrMaps = v.getUint32(52, true);
  const mapIds = kernelBuffer(nrMaps * 4);
  if (nrMaps > 0) {
    const info = kernelBuffer(PI);
    const w = new DataView(info.buffer);
    w.setUint32(52, nrMaps, true);
    w.setBigUint64(56, addressOf(mapIds), true);
    v = infoByFd(fd, info, [mapIds]);
  }
  const u8 = new Uint8Array(v.buffer);
  const mv = new DataView(mapIds.buffer);
  return {
    type: v.getUint32(0, true),
    id: v.getUint32(4, true),
    tag: Array.from(u8.subarray(8, 16), (b) => b.toString(16).padStart(2, '0')).join(''),
    jitedProgLen: v.getUint32(16, true),
    xlatedProgLen: v.getUint32(20, true),
    loadTime: v.getBigUint64(40, true),
    createdByUid: v.getUint32(48, true),
    mapIds: Array.from({ length: Math.min(nrMaps, v.getUint32(52, true)) }, (_, i) =>
      mv.getUint32(i * 4, true),
    ),
    name: cString(u8.subarray(64, 80)),
    ifindex: v.getUint32(80, true),
    gplCompatible: (v.getUint32(84, true) & 1) !== 0,
    netnsDev: v.getBigUint64(88, true),
    netnsIno: v.getBigUint64(96, true),
    btfId: v.getUint32(128, true),
    nrFuncInfo: v.getUint32(144, true),
    nrLineInfo: v.getUint32(148, true),
    runTimeNs: v.getBigUint64(192, true),
    runCnt: v.getBigUint64(200, true),
    recursionMisses: v.getBigUint64(208, true),
    verifiedInsns: v.getUint32(216, true),
    attachBtfObjId: v.getUint32(220, true),
    attachBtfId: v.getUint32(224, true),
  };
}

/** The translated (as the verifier left them) or JITed instructions of a program. */
export function progInstructions(fd: number, which: 'xlated' | 'jited'): Uint8Array {
  const first = progInfoByFd(fd);
  const len = which === 'xlated' ? first.xlatedProgLen : first.jitedProgLen;
  const out = kernelBuffer(len);
  if (len === 0) return new Uint8Array(0);
  const info = kernelBuffer(PI);
  const w = new DataView(info.buffer);
  w.setUint32(which === 'xlated' ? 20 : 16, len, true);
  w.setBigUint64(which === 'xlated' ? 32 : 24, addressOf(out), true);
  infoByFd(fd, info, [out]);
  return out.slice(0, len);
}

/** JITed function addresses and lengths (for `dump jited` of programs with subprograms). */
export function progJitedFuncs(fd: number): { ksyms: bigint[]; lens: number[] } {
  const first = infoByFd(fd, kernelBuffer(PI));
  const nk = first.getUint32(104, true);
  const nl = first.getUint32(108, true);
  const ks = kernelBuffer(nk * 8);
  const ls = kernelBuffer(nl * 4);
  const info = kernelBuffer(PI);
  const w = new DataView(info.buffer);
  w.setUint32(104, nk, true);
  w.setUint32(108, nl, true);
  w.setBigUint64(112, addressOf(ks), true);
  w.setBigUint64(120, addressOf(ls), true);
  infoByFd(fd, info, [ks, ls]);
  const kv = new DataView(ks.buffer);
  const lv = new DataView(ls.buffer);
  return {
    ksyms: Array.from({ length: nk }, (_, i) => kv.getBigUint64(i * 8, true)),
    lens: Array.from({ length: nl }, (_, i) => lv.getUint32(i * 4, true)),
  };
}

/** struct bpf_map_info, in full. */
export interface MapInfoFull {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  ifindex: number;
  btfVmlinuxValueTypeId: number;
  netnsDev: bigint;
  netnsIno: bigint;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  mapExtra: bigint;
}

export function mapInfoFull(fd: number): MapInfoFull {
  const v = infoByFd(fd, kernelBuffer(96));
  const u8 = new Uint8Array(v.buffer);
  return {
    type: v.getUint32(0, true),
    id: v.getUint32(4, true),
    keySize: v.getUint32(8, true),
    valueSize: v.getUint32(12, true),
    maxEntries: v.getUint32(16, true),
    flags: v.getUint32(20, true),
    name: cString(u8.subarray(24, 40)),
    ifindex: v.getUint32(40, true),
    btfVmlinuxValueTypeId: v.getUint32(44, true),
    netnsDev: v.getBigUint64(48, true),
    netnsIno: v.getBigUint64(56, true),
    btfId: v.getUint32(64, true),
    btfKeyTypeId: v.getUint32(68, true),
    btfValueTypeId: v.getUint32(72, true),
    mapExtra: v.getBigUint64(80, true),
  };
}

/** struct bpf_link_info: the common head and the type-specific union, raw. */
export interface LinkInfo {
  type: number;
  id: number;
  progId: number;
  /** The union's bytes (offset 16 on), decoded by the caller per link type. */
  extra: DataView;
}

export function linkInfoByFd(fd: number): LinkInfo {
  const v = infoByFd(fd, kernelBuffer(96));
  return {
    type: v.getUint32(0, true),
    id: v.getUint32(4, true),
    progId: v.getUint32(8, true),
    extra: new DataView(v.buffer, 16),
  };
}

export function btfInfoByFd(fd: number): { id: number; size: number; name: string; kernelBtf: boolean } {
  const name = kernelBuffer(64);
  const info = kernelBuffer(40);
  const w = new DataView(info.buffer);
  w.setBigUint64(16, addressOf(name), true);
  w.setUint32(24, 64, true);
  const v = infoByFd(fd, info, [name]);
  return {
    size: v.getUint32(8, true),
    id: v.getUint32(12, true),
    name: cString(name),
    kernelBtf: v.getUint32(28, true) !== 0,
  };
}

/** Fields of /proc/self/fdinfo/FD (memlock, frozen, owner_prog_type...). */
export function fdInfo(fd: number): Map<string, string> {
  const out = new Map<string, string>();
  try {
    for (const line of readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n')) {
      const m = /^([^:]+):\s*(.*)$/.exec(line);
      if (m) out.set(m[1], m[2]);
    }
  } catch {
    // gone
  }
  return out;
}

/**
 * BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): while the returned fd is open the kernel counts run_cnt and
 * run_time_ns of every program. Close it with closeFd (or the returned close()).
 */
export function enableStats(): { fd: number; close(): void } {
  const attr = kernelBuffer(8);
  const r = bpfRaw(BPF_CMD.ENABLE_STATS, attr);
  if (r.result < 0) throw fail('BPF_ENABLE_STATS', r.errno);
  let open = true;
  return {
    fd: r.result,
    close() {
      if (open) closeFd(r.result);
      open = false;
    },
  };
}

/** Runs `fn` with an fd for the object `id`, closing it after. */
export function withFdById<T>(kind: ObjectKind, id: number, fn: (fd: number) => T): T {
  const fd = fdById(kind, id);
  try {
    return fn(fd);
  } finally {
    closeFd(fd);
  }
}

/** The raw bytes of a BTF object in the kernel (struct bpf_btf_info's btf buffer). */
export function btfBytesByFd(fd: number): Uint8Array {
  const { size } = btfInfoByFd(fd);
  const data = kernelBuffer(Math.max(size, 1));
  const info = kernelBuffer(40);
  const w = new DataView(info.buffer);
  w.setBigUint64(0, addressOf(data), true);
  w.setUint32(8, size, true);
  infoByFd(fd, info, [data]);
  return data.slice(0, size);
}

/** A bpf_func_info record: the instruction a function starts at and its BTF FUNC type. */
export interface ProgFuncInfo {
  insnOff: number;
  typeId: number;
}

/** A bpf_line_info record: strings are offsets into the program's BTF string section. */
export interface ProgLineInfo {
  insnOff: number;
  fileNameOff: number;
  lineOff: number;
  line: number;
  col: number;
}

/** The program's func_info and (xlated) line_info records, empty when it was loaded without BTF. */
export function progBtfInfo(fd: number): {
  btfId: number;
  funcInfo: ProgFuncInfo[];
  lineInfo: ProgLineInfo[];
} {
  const first = infoByFd(fd, kernelBuffer(PI));
  const btfId = first.getUint32(128, true);
  const nf = first.getUint32(144, true);
  const nl = first.getUint32(148, true);
  if (!btfId || (nf === 0 && nl === 0)) return { btfId, funcInfo: [], lineInfo: [] };
  const fi = kernelBuffer(Math.max(nf * 8, 8));
  const li = kernelBuffer(Math.max(nl * 16, 16));
  const info = kernelBuffer(PI);
  const w = new DataView(info.buffer);
  w.setUint32(132, 8, true);
  w.setBigUint64(136, addressOf(fi), true);
  w.setUint32(144, nf, true);
  w.setUint32(148, nl, true);
  w.setBigUint64(152, addressOf(li), true);
  w.setUint32(172, 16, true);
  infoByFd(fd, info, [fi, li]);
  const fv = new DataView(fi.buffer);
  const lv = new DataView(li.buffer);
  return {
    btfId,
    funcInfo: Array.from({ length: nf }, (_, i) => ({
      insnOff: fv.getUint32(i * 8, true),
      typeId: fv.getUint32(i * 8 + 4, true),
    })),
    lineInfo: Array.from({ length: nl }, (_, i) => {
      const lc = lv.getUint32(i * 16 + 12, true);
      return {
        insnOff: lv.getUint32(i * 16, true),
        fileNameOff: lv.getUint32(i * 16 + 4, true),
        lineOff: lv.getUint32(i * 16 + 8, true),
        line: lc >>> 10,
        col: lc & 0x3ff,
      };
    }),
  };
}

/** A raw_tracepoint link's tracepoint name (bpf_link_info.raw_tracepoint.tp_name). */
export function linkRawTpName(fd: number): string {
  const name = kernelBuffer(256);
  const info = kernelBuffer(96);
  const w = new DataView(info.buffer);
  w.setBigUint64(16, addressOf(name), true);
  w.setUint32(24, 256, true);
  infoByFd(fd, info, [name]);
  return cString(name);
}
