/**
 * `tsbpf map`: bpftool's `map` subcommands on the running kernel, with bpftool's words, fields and JSON
 * keys: list|show [MAP], create, dump, lookup, update, delete, getnext, pin, freeze. MAP is `id N`,
 * `pinned PATH` or `name NAME`; keys and values are bytes (`key 0x01 0x00 0x00 0x00`, `key hex 01 00 00 00`).
 * Dumps and lookups of maps with BTF print the BTF-formatted entries as bpftool does (plain text: the
 * pretty JSON of the formatted values; -j: the hex bytes plus "formatted").
 */

import type { Btf } from '../../btf/btf.js';
import { dumpBtfValue, hexDataJson, JsonWriter } from '../../btf/dump-value.js';
import { mapTypeById, mapTypeByName } from '../../catalog/map-types.js';
import { programTypeById } from '../../catalog/program-types.js';
import { isTsbpfError, TsbpfError } from '../../errors.js';
import { loadBtfById } from '../../kernel/btf-info.js';
import { kernelBtf } from '../../kernel/btf-load.js';
import { fdById, fdInfo, type MapInfoFull, mapInfoFull, objectIds, objPin } from '../../kernel/info.js';
import { KernelMap } from '../../kernel/map.js';
import { closeFd } from '../../kernel/program.js';
import type { Command, Io } from '../command.js';
import { bpftoolErrors, fprintHex, jsonFlags, printJson, selectObjects } from './prog.js';

const hexArr = (b: Uint8Array) => Array.from(b, (x) => `0x${x.toString(16).padStart(2, '0')}`);

function mapJson(info: MapInfoFull, fd: number): Record<string, unknown> {
  const fi = fdInfo(fd);
  const o: Record<string, unknown> = { id: info.id, type: mapTypeById(info.type)?.name ?? info.type };
  if (info.name) o.name = info.name;
  o.flags = info.flags;
  o.bytes_key = info.keySize;
  o.bytes_value = info.valueSize;
  o.max_entries = info.maxEntries;
  const memlock = fi.get('memlock');
  if (memlock !== undefined) o.bytes_memlock = Number(memlock);
  if (info.type === 3) {
    const opt = fi.get('owner_prog_type');
    const jited = fi.get('owner_jited');
    if (opt !== undefined) o.owner_prog_type = programTypeById(Number(opt))?.name ?? Number(opt);
    if (jited !== undefined) o.owner_jited = Number(jited) !== 0;
  }
  o.frozen = Number(fi.get('frozen') ?? 0);
  if (info.btfId) o.btf_id = info.btfId;
  return o;
}

function mapPlain(info: MapInfoFull, fd: number): string {
  const fi = fdInfo(fd);
  const t = mapTypeById(info.type)?.name;
  let s = `${info.id}: ${t ? `${t}  ` : `type ${info.type}  `}`;
  if (info.name) s += `name ${info.name}  `;
  s += `flags 0x${info.flags.toString(16)}\n`;
  s += `\tkey ${info.keySize}B  value ${info.valueSize}B  max_entries ${info.maxEntries}`;
  const memlock = fi.get('memlock');
  if (memlock !== undefined) s += `  memlock ${memlock}B`;
  if (info.type === 3) {
    const opt = fi.get('owner_prog_type');
    const jited = fi.get('owner_jited');
    if (opt !== undefined || jited !== undefined) s += '\n\t';
    if (opt !== undefined) s += `owner_prog_type ${programTypeById(Number(opt))?.name ?? opt}  `;
    if (jited !== undefined) s += `owner${Number(jited) ? '' : ' not'} jited`;
  }
  const frozen = Number(fi.get('frozen') ?? 0) !== 0;
  if (info.btfId || frozen)
    s += `\n\t${info.btfId ? `btf_id ${info.btfId}` : ''}${frozen ? `${info.btfId ? '  ' : ''}frozen` : ''}`;
  return `${s}\n`;
}

/** Bytes after `key`/`value`: `0x01 0x02`, `1 2`, or `hex 01 02`; takes exactly `size` of them. */
export function parseBytes(
  args: string[],
  size: number,
  what: string,
): { bytes: Uint8Array; rest: string[] } {
  let i = 0;
  let hex = false;
  if (args[0] === 'hex') {
    hex = true;
    i = 1;
  }
  const out = new Uint8Array(size);
  for (let n = 0; n < size; n++, i++) {
    const a = args[i];
    if (a === undefined) throw new TsbpfError('usage', `${what} expected ${size} bytes got ${n}`);
    const v = hex ? Number.parseInt(a, 16) : Number(a);
    if (!Number.isInteger(v) || v < 0 || v > 255 || (hex && !/^[0-9a-f]{1,2}$/i.test(a)))
      throw new TsbpfError('usage', `error parsing byte: ${a}`);
    out[n] = v;
  }
  return { bytes: out, rest: args.slice(i) };
}

function entryPlain(m: KernelMap, key: Uint8Array, value: Uint8Array): string {
  if (!m.perCpu) {
    const breakNames = m.keySize > 16 || m.valueSize > 16;
    const single = m.keySize + m.valueSize <= 24 && !breakNames;
    let s = '';
    if (m.keySize) s += `key:${breakNames ? '\n' : ' '}${fprintHex(key)}${single ? '  ' : '\n'}`;
    if (m.valueSize) s += `value:${breakNames ? '\n' : ' '}${fprintHex(value.subarray(0, m.valueSize))}`;
    return `${s}\n`;
  }
  let s = m.keySize ? `key:\n${fprintHex(key)}\n` : '';
  const step = (m.valueSize + 7) & ~7;
  if (m.valueSize)
    for (let c = 0; c < m.cpus; c++)
      s += `value (CPU ${String(c).padStart(2, '0')}):${m.valueSize > 16 ? '\n' : ' '}${fprintHex(value.subarray(c * step, c * step + m.valueSize))}\n`;
  return s;
}

/** bpftool's do_dump_btf: `{ "key": K, "value": V }` (or `"values": [{ "cpu": N, "value": V }]`) from BTF. */
function dumpBtfKv(
  w: JsonWriter,
  btf: Btf,
  info: MapInfoFull,
  m: KernelMap,
  key: Uint8Array,
  value: Uint8Array,
  plainText: boolean,
): void {
  const o = { plainText };
  w.startObject();
  let r = 0;
  if (info.btfKeyTypeId) {
    w.name('key');
    r = dumpBtfValue(w, btf, info.btfKeyTypeId, key, 0, o);
  }
  if (!r) {
    const vid = info.btfVmlinuxValueTypeId || info.btfValueTypeId;
    if (!m.perCpu) {
      w.name('value');
      dumpBtfValue(w, btf, vid, value, 0, o);
    } else {
      w.name('values');
      w.startArray();
      const step = (m.valueSize + 7) & ~7;
      for (let c = 0; c < m.cpus; c++) {
        w.startObject();
        w.name('cpu');
        w.raw(String(c));
        w.name('value');
        r = dumpBtfValue(w, btf, vid, value.subarray(c * step, c * step + m.valueSize), 0, o);
        w.endObject();
        if (r) break;
      }
      w.endArray();
    }
  }
  w.endObject();
}

/** bpftool's print_entry_json: the bytes in hex, and the BTF-formatted entry under "formatted". */
function entryJson(
  w: JsonWriter,
  m: KernelMap,
  info: MapInfoFull,
  btf: Btf | undefined,
  key: Uint8Array,
  value: Uint8Array,
): void {
  w.startObject();
  w.name('key');
  hexDataJson(w, key.subarray(0, m.keySize));
  if (!m.perCpu) {
    w.name('value');
    hexDataJson(w, value.subarray(0, m.valueSize));
  } else {
    const step = (m.valueSize + 7) & ~7;
    w.name('values');
    w.startArray();
    for (let c = 0; c < m.cpus; c++) {
      w.startObject();
      w.name('cpu');
      w.raw(String(c));
      w.name('value');
      hexDataJson(w, value.subarray(c * step, c * step + m.valueSize));
      w.endObject();
    }
    w.endArray();
  }
  if (btf) {
    w.name('formatted');
    dumpBtfKv(w, btf, info, m, key, value, false);
  }
  w.endObject();
}

/** bpftool's get_map_kv_btf: the BTF to format entries with (vmlinux for struct_ops values). */
function mapKvBtf(info: MapInfoFull): Btf | undefined {
  if (info.btfVmlinuxValueTypeId) return kernelBtf();
  if (!info.btfValueTypeId) return undefined;
  try {
    return loadBtfById(info.btfId);
  } catch (e) {
    throw new TsbpfError('kernel', 'failed to get btf', { errno: errnoOf(e) ?? 3 });
  }
}

const errnoOf = (e: unknown): number | undefined =>
  isTsbpfError(e) && typeof e.details.errno === 'number' ? e.details.errno : undefined;

/** strerror(3) for the errnos map operations return. */
const STRERROR: Record<number, string> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  7: 'Argument list too long',
  9: 'Bad file descriptor',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  14: 'Bad address',
  16: 'Device or resource busy',
  22: 'Invalid argument',
  28: 'No space left on device',
  95: 'Operation not supported',
  524: 'Unknown error 524',
};
export const strerror = (e: number) => STRERROR[e] ?? `Unknown error ${e}`;

const isMapOfMaps = (t: number) => t === 12 || t === 13;

/** print_entry_error: a failed lookup inside a dump (silent for map-of-maps and prog arrays). */
function entryError(
  w: JsonWriter | undefined,
  json: boolean,
  m: KernelMap,
  key: Uint8Array,
  errno: number,
): string {
  if ((isMapOfMaps(m.type) || m.type === 3) && errno === 2) return '';
  if (json && w) {
    w.startObject();
    w.name('key');
    hexDataJson(w, key);
    w.name('value');
    w.startObject();
    w.name('error');
    w.string(strerror(errno));
    w.endObject();
    w.endObject();
    return '';
  }
  const msg = errno === 2 ? '<no entry>' : errno === 28 && m.type === 20 ? '<cannot read>' : strerror(errno);
  const breakNames = m.keySize > 16 || msg.length > 16;
  const single = m.keySize + msg.length <= 24 && !breakNames;
  return `key:${breakNames ? '\n' : ' '}${fprintHex(key)}${single ? '  ' : '\n'}value:${breakNames ? '\n' : ' '}${msg}\n`;
}

function openOne(args: string[]): { map: KernelMap; rest: string[] } {
  const { fds, rest } = selectObjects('map', args);
  if (fds.length !== 1) {
    for (const fd of fds) closeFd(fd);
    throw new TsbpfError('usage', `the name matches ${fds.length} maps: select one by id`);
  }
  return { map: KernelMap.fromFd(fds[0] as number), rest };
}

function show(args: string[], io: Io, json: boolean, pretty: boolean): number {
  const out: Record<string, unknown>[] = [];
  const emit = (fd: number) => {
    const info = mapInfoFull(fd);
    if (json) out.push(mapJson(info, fd));
    else io.stdout(mapPlain(info, fd));
  };
  if (args.length > 0) {
    const { fds } = selectObjects('map', args);
    try {
      for (const fd of fds) emit(fd);
    } finally {
      for (const fd of fds) closeFd(fd);
    }
    if (json) printJson(io, fds.length > 1 ? out : out[0], pretty);
    return 0;
  }
  for (const id of objectIds('map')) {
    let fd: number;
    try {
      fd = fdById('map', id);
    } catch {
      continue;
    }
    try {
      emit(fd);
    } finally {
      closeFd(fd);
    }
  }
  if (json) printJson(io, out, pretty);
  return 0;
}

/** bpftool's exit status for a negative errno returned from a command. */
const status = (errno: number) => -errno & 0xff;

function dump(args: string[], io: Io, json: boolean, pretty: boolean): number {
  const { map } = openOne(args);
  try {
    const info = mapInfoFull(map.fd);
    // plain text with BTF is bpftool's pretty JSON of the formatted entries
    const w = json ? new JsonWriter(pretty) : info.btfId ? new JsonWriter(true) : undefined;
    const btf = w ? mapKvBtf(info) : undefined;
    let n = 0;
    let text = '';
    let err = 0;
    w?.startArray();
    let prev: Uint8Array | undefined;
    for (;;) {
      let key: Uint8Array | undefined;
      try {
        key = map.nextKey(prev);
      } catch (e) {
        err = errnoOf(e) ?? 22;
        break;
      }
      if (!key) break;
      prev = key;
      let value: Uint8Array | undefined;
      let lookupErr = 0;
      try {
        value = map.lookup(key);
        if (!value) lookupErr = 2;
      } catch (e) {
        lookupErr = errnoOf(e) ?? 22;
      }
      if (!value) {
        const t = entryError(w, json, map, key, lookupErr);
        if (w) w.passthrough(t);
        else text += t;
        continue;
      }
      n++;
      if (json && w) entryJson(w, map, info, btf, key, value);
      else if (w && btf) dumpBtfKv(w, btf, info, map, key, value, true);
      else if (w) w.passthrough(entryPlain(map, key, value));
      else text += entryPlain(map, key, value);
    }
    if (w) {
      w.endArray();
      io.stdout(w.finish());
    } else io.stdout(`${text}Found ${n} element${n !== 1 ? 's' : ''}\n`);
    return err ? status(err) : 0;
  } finally {
    map.close();
  }
}

function lookup(args: string[], io: Io, json: boolean, pretty: boolean): number {
  const { map, rest } = openOne(args);
  try {
    const info = mapInfoFull(map.fd);
    let key: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
    if (map.keySize) {
      if (rest[0] !== 'key') throw new TsbpfError('usage', 'did not find key');
      key = parseBytes(rest.slice(1), map.keySize, 'key').bytes;
    }
    let value: Uint8Array | undefined;
    try {
      value = map.keySize ? map.lookup(key) : map.peek();
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === undefined) throw e;
      throw new TsbpfError('kernel', `lookup failed: ${strerror(errno)}`, { errno });
    }
    if (!value) {
      if (json) io.stdout('null\n');
      else io.stdout(`key:\n${fprintHex(key)}\n\nNot found\n`);
      return status(2);
    }
    const btf = info.btfId ? loadBtfById(info.btfId) : undefined;
    if (json) {
      const w = new JsonWriter(pretty);
      entryJson(w, map, info, btf, key, value);
      io.stdout(w.finish());
    } else if (btf) {
      const w = new JsonWriter(true);
      dumpBtfKv(w, btf, info, map, key, value, true);
      io.stdout(w.finish());
    } else io.stdout(entryPlain(map, key, value));
  } finally {
    map.close();
  }
  return 0;
}

function update(args: string[], io: Io, json: boolean): number {
  const { map, rest } = openOne(args);
  try {
    let r = rest;
    let key: Uint8Array = new Uint8Array(0);
    if (map.keySize > 0) {
      if (r[0] !== 'key') throw new TsbpfError('usage', "expected 'key'");
      ({ bytes: key, rest: r } = parseBytes(r.slice(1), map.keySize, 'key'));
    }
    if (r[0] !== 'value') throw new TsbpfError('usage', "expected 'value'");
    const parsed = parseBytes(r.slice(1), map.valueBufferSize, 'value');
    const flag = parsed.rest[0];
    const flags =
      flag === undefined || flag === 'any' ? 0 : flag === 'noexist' ? 1 : flag === 'exist' ? 2 : -1;
    if (flags < 0) throw new TsbpfError('usage', `unexpected '${flag}': expected any, exist or noexist`);
    if (map.keySize === 0) map.push(parsed.bytes, flags);
    else map.update(key, parsed.bytes, flags);
    if (json) io.stdout('null\n');
  } finally {
    map.close();
  }
  return 0;
}

export const mapCommand: Command = {
  name: 'map',
  summary: "inspect and manage maps in the kernel (bpftool's map)",
  usage: `Usage: tsbpf map { show | list } [MAP]
       tsbpf map create FILE type TYPE key KEY_SIZE value VALUE_SIZE entries MAX_ENTRIES name NAME [flags FLAGS] [inner_map MAP]
       tsbpf map dump MAP
       tsbpf map update MAP [key DATA] [value VALUE] [UPDATE_FLAGS]
       tsbpf map lookup MAP [key DATA]
       tsbpf map getnext MAP [key DATA]
       tsbpf map delete MAP key DATA
       tsbpf map pin MAP FILE
       tsbpf map freeze MAP

       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       DATA := { [hex] BYTES }
       UPDATE_FLAGS := { any | exist | noexist }
       -j/--json, -p/--pretty: JSON output (bpftool's keys)
`,
  async run(argv, io) {
    const { json, pretty } = jsonFlags(argv);
    return bpftoolErrors(io, json, pretty, () => runMap(argv, io));
  },
};

function runMap(argv: string[], io: Io): number {
  {
    const { json, pretty, rest } = jsonFlags(argv);
    const [sub, ...args] = rest;
    switch (sub) {
      case undefined:
      case 'show':
      case 'list':
        return show(args, io, json, pretty);
      case 'dump':
        return dump(args, io, json, pretty);
      case 'lookup':
        return lookup(args, io, json, pretty);
      case 'update':
        return update(args, io, json);
      case 'delete': {
        const { map, rest: r } = openOne(args);
        try {
          if (r[0] !== 'key') throw new TsbpfError('usage', "expected 'key'");
          const { bytes } = parseBytes(r.slice(1), map.keySize, 'key');
          if (!map.delete(bytes))
            throw new TsbpfError('kernel', 'delete failed: No such file or directory', { errno: 2 });
          if (json) io.stdout('null\n');
        } finally {
          map.close();
        }
        return 0;
      }
      case 'getnext': {
        const { map, rest: r } = openOne(args);
        try {
          const key = r[0] === 'key' ? parseBytes(r.slice(1), map.keySize, 'key').bytes : undefined;
          const next = map.nextKey(key);
          if (!next)
            throw new TsbpfError('kernel', "can't get next key: No such file or directory", { errno: 2 });
          if (json) printJson(io, { key: key ? hexArr(key) : null, next_key: hexArr(next) }, pretty);
          else
            io.stdout(`${key ? `key:\n${fprintHex(key)}\n` : 'key: None\n'}next key:\n${fprintHex(next)}\n`);
        } finally {
          map.close();
        }
        return 0;
      }
      case 'pin': {
        const { map, rest: r } = openOne(args);
        try {
          if (r.length !== 1) throw new TsbpfError('usage', 'expected MAP FILE');
          objPin(map.fd, r[0] as string);
          if (json) io.stdout('null\n');
        } finally {
          map.close();
        }
        return 0;
      }
      case 'freeze': {
        const { map } = openOne(args);
        try {
          map.freeze();
          if (json) io.stdout('null\n');
        } finally {
          map.close();
        }
        return 0;
      }
      case 'create': {
        const [file, ...r] = args;
        if (file === undefined) throw new TsbpfError('usage', 'expected FILE');
        const o: Record<string, string> = {};
        let inner: KernelMap | undefined;
        for (let i = 0; i < r.length; i += 2) {
          const k = r[i] as string;
          if (k === 'inner_map') {
            const sel = openOne(r.slice(i + 1, i + 3));
            inner = sel.map;
            i++;
            continue;
          }
          if (r[i + 1] === undefined) throw new TsbpfError('usage', `missing value after '${k}'`);
          o[k] = r[i + 1] as string;
        }
        try {
          const type = o.type === undefined ? undefined : mapTypeByName(o.type);
          if (!type) throw new TsbpfError('usage', `invalid or missing map type '${o.type ?? ''}'`);
          if (o.name === undefined) throw new TsbpfError('usage', 'map name not specified');
          const m = KernelMap.create({
            name: o.name,
            type: type.id,
            keySize: Number(o.key ?? 0),
            valueSize: Number(o.value ?? 0),
            maxEntries: Number(o.entries ?? 0),
            flags: Number(o.flags ?? 0),
            ...(inner
              ? {
                  innerMap: {
                    type: inner.type,
                    keySize: inner.keySize,
                    valueSize: inner.valueSize,
                    maxEntries: inner.maxEntries,
                    flags: inner.flags,
                  },
                }
              : {}),
          });
          try {
            m.pin(file);
          } finally {
            m.close();
          }
          if (json) io.stdout('null\n');
        } finally {
          inner?.close();
        }
        return 0;
      }
      default:
        throw new TsbpfError('usage', `unknown map subcommand '${sub}'`);
    }
  }
}
