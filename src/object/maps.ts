/**
 * Map definitions of an eBPF object, the way libbpf's bpf_object__open reads them: BTF-defined maps in
 * `.maps` (parse_btf_map_def), legacy `struct bpf_map_def` records in `maps` (libbpf before v1.0),
 * the global-data maps libbpf makes of `.data*`, `.rodata*`, `.bss*` (bpf_object__init_internal_map)
 * and the `.kconfig` map of `__kconfig` externs. Pure data: nothing here touches a kernel.
 */
import type { Btf } from '../btf/btf.js';
import type { BtfType } from '../btf/types.js';
import { MAP_FLAGS, mapTypeById, mapTypeByName } from '../catalog/map-types.js';
import { TsbpfError } from '../errors.js';

/** Where a map comes from. */
export type MapKind = 'btf' | 'legacy' | 'data' | 'rodata' | 'bss' | 'kconfig';

/** An initial entry of a prog array or map-in-map (`.values = { [i] = &x }`): what slot i holds. */
export interface MapSlot {
  kind: 'program' | 'map';
  /** Name of the program (entry point) or map (a BTF-defined one). */
  name: string;
}

export interface MapSpec {
  /** libbpf's name: the variable name, or `<obj>.rodata`-style for global data (see internalMapName). */
  name: string;
  kind: MapKind;
  /** ELF section the map is defined in (`.maps`, `maps`, `.rodata`, ... `.kconfig` for the kconfig map). */
  section: string;
  /** Byte offset of the definition (or data) in that section. */
  sectionOffset: number;
  /** Map type name from the catalog (`hash`, `array`...), or `unknown(N)` for a type it does not list. */
  type: string;
  /** `enum bpf_map_type` value. */
  typeId: number;
  keySize: number;
  valueSize: number;
  /** max_entries as libbpf passes it to BPF_MAP_CREATE (ring buffer sizes already rounded up). */
  maxEntries: number;
  /** map_flags (BPF_F_*). */
  flags: number;
  numaNode: number;
  /** map_extra (bloom filter hash count, arena address...). */
  mapExtra: bigint;
  pinning: 'none' | 'by_name';
  /** BTF type ids of key and value (0 when not known; for global data the value is the DATASEC). */
  keyTypeId: number;
  valueTypeId: number;
  /** Template of the inner maps of a map-in-map (named `<name>.inner`). */
  inner?: MapSpec;
  /** Initial slots of a prog array or map-in-map, by index; null for an empty slot. */
  initialSlots?: (MapSlot | null)[];
  /** Initial contents of a global-data map (one value of valueSize bytes); setVariable writes here. */
  data?: Uint8Array;
  /** libbpf freezes the map after filling it (.rodata and .kconfig). */
  frozen: boolean;
}

const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_PROG_ARRAY = 3;
const BPF_MAP_TYPE_ARRAY_OF_MAPS = 12;
const BPF_MAP_TYPE_HASH_OF_MAPS = 13;
const BPF_MAP_TYPE_RINGBUF = 27;
const BPF_MAP_TYPE_USER_RINGBUF = 31;
const LIBBPF_PIN_BY_NAME = 1;
/** Largest global-data section read (the kernel's own limit on an array value is KMALLOC_MAX_SIZE, 4 MiB here). */
export const MAX_GLOBAL_DATA = 1 << 26;
/** BPF_OBJ_NAME_LEN: kernel object names hold 15 characters and a NUL. */
export const BPF_OBJ_NAME_LEN = 16;

export function objectError(message: string): TsbpfError {
  return new TsbpfError('object', message);
}

export function isMapInMap(typeId: number): boolean {
  return typeId === BPF_MAP_TYPE_ARRAY_OF_MAPS || typeId === BPF_MAP_TYPE_HASH_OF_MAPS;
}
export const isProgArray = (typeId: number): boolean => typeId === BPF_MAP_TYPE_PROG_ARRAY;

export function mapTypeName(typeId: number): string {
  return mapTypeById(typeId)?.name ?? `unknown(${typeId})`;
}

/** libbpf's adjust_ringbuf_sz: a power-of-2 multiple of the page size at least as big as asked. */
export function adjustRingbufSize(size: number, pageSize: number): number {
  if (size === 0) return 0;
  const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (size % pageSize === 0 && isPow2(size / pageSize)) return size;
  for (let mul = 1; mul <= Math.floor(0xffffffff / pageSize); mul *= 2) {
    if (mul * pageSize > size) return mul * pageSize;
  }
  return size;
}

/**
 * libbpf's internal_map_name: up to 8 characters of the object name, then the section name (at least
 * 7 characters reserved for it); sections with a second dot (`.data.stats`, `.rodata.str1.1`) keep
 * their own name alone. Characters the kernel refuses become '_'.
 */
export function internalMapName(objectName: string, sectionName: string): string {
  let sfxLen = Math.max(7, sectionName.length);
  if (sfxLen >= BPF_OBJ_NAME_LEN) sfxLen = BPF_OBJ_NAME_LEN - 1;
  const pfxLen =
    sectionName.indexOf('.', 1) >= 0 ? 0 : Math.min(BPF_OBJ_NAME_LEN - sfxLen - 1, objectName.length);
  const name = objectName.slice(0, pfxLen) + sectionName.slice(0, sfxLen);
  return name.slice(0, BPF_OBJ_NAME_LEN - 1).replace(/[^A-Za-z0-9_.]/g, '_');
}

function kindOf(t: BtfType): string {
  return t.kind === 'UNKN' ? 'void' : t.kind.toLowerCase();
}

/** skip_mods_and_typedefs, refusing dangling ids with an object error naming the map. */
function skipMods(btf: Btf, id: number, what: string): BtfType {
  try {
    return btf.type(btf.resolve(id));
  } catch (e) {
    throw objectError(`${what}: ${(e as Error).message}`);
  }
}

function typeAt(btf: Btf, id: number, what: string): BtfType {
  if (!Number.isInteger(id) || id < 0 || id >= btf.typeCount)
    throw objectError(`${what}: type [${id}] not found`);
  return btf.types[id];
}

/** get_map_field_int: `__uint(name, N)` is `int (*name)[N]`; the value is the array's length. */
function fieldInt(btf: Btf, mapName: string, field: string, typeId: number): number {
  const what = `map '${mapName}': attr '${field}'`;
  const t = skipMods(btf, typeId, what);
  if (t.kind !== 'PTR') throw objectError(`${what}: expected PTR, got ${kindOf(t)}`);
  const arr = typeAt(btf, t.type, what);
  if (arr.kind !== 'ARRAY') throw objectError(`${what}: expected ARRAY, got ${kindOf(arr)}`);
  return arr.nelems;
}

/** get_map_field_long: `__uint` or `__ulong(name, N)` (an enum with one value N). */
function fieldLong(btf: Btf, mapName: string, field: string, typeId: number): bigint {
  const what = `map '${mapName}': attr '${field}'`;
  const t = skipMods(btf, typeId, what);
  if (t.kind === 'PTR') return BigInt(fieldInt(btf, mapName, field, typeId));
  if (t.kind !== 'ENUM' && t.kind !== 'ENUM64')
    throw objectError(`${what}: expected ENUM or ENUM64, got ${kindOf(t)}`);
  if (t.values.length !== 1) throw objectError(`${what}: invalid __ulong`);
  const v = t.values[0].value;
  return BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(v >>> 0));
}

function sizeOf(btf: Btf, id: number, what: string): number {
  try {
    const n = btf.sizeof(id);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`size ${n} is out of range`);
    return n;
  } catch (e) {
    throw objectError(`${what}: can't determine size for type [${id}]: ${(e as Error).message}`);
  }
}

interface MapDef {
  typeId: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  numaNode: number;
  mapExtra: bigint;
  pinning: number;
  keyTypeId: number;
  valueTypeId: number;
  inner?: MapDef;
  hasValues: boolean;
}

/** libbpf's parse_btf_map_def over the members of a map definition struct. */
function parseBtfMapDef(btf: Btf, mapName: string, def: BtfType, inner: boolean): MapDef {
  if (def.kind !== 'STRUCT') throw objectError(`map '${mapName}': unexpected def kind ${kindOf(def)}`);
  const d: MapDef = {
    typeId: 0,
    keySize: 0,
    valueSize: 0,
    maxEntries: 0,
    flags: 0,
    numaNode: 0,
    mapExtra: 0n,
    pinning: 0,
    keyTypeId: 0,
    valueTypeId: 0,
    hasValues: false,
  };
  const members = def.members;
  for (let i = 0; i < members.length; i++) {
    const m = members[i];
    const name = m.name;
    const sized = (field: 'key' | 'value', typeId: number, size: number) => {
      const current = field === 'key' ? d.keySize : d.valueSize;
      if (current && current !== size)
        throw objectError(`map '${mapName}': conflicting ${field} size ${current} != ${size}`);
      if (field === 'key') d.keySize = size;
      else d.valueSize = size;
      if (typeId) {
        if (field === 'key') d.keyTypeId = typeId;
        else d.valueTypeId = typeId;
      }
    };
    switch (name) {
      case 'type':
        d.typeId = fieldInt(btf, mapName, name, m.type);
        break;
      case 'max_entries':
        d.maxEntries = fieldInt(btf, mapName, name, m.type);
        break;
      case 'map_flags':
        d.flags = fieldInt(btf, mapName, name, m.type);
        break;
      case 'numa_node':
        d.numaNode = fieldInt(btf, mapName, name, m.type);
        break;
      case 'key_size':
      case 'value_size':
        sized(name === 'key_size' ? 'key' : 'value', 0, fieldInt(btf, mapName, name, m.type));
        break;
      case 'key':
      case 'value': {
        const t = typeAt(btf, m.type, `map '${mapName}': ${name} type`);
        if (t.kind !== 'PTR') throw objectError(`map '${mapName}': ${name} spec is not PTR: ${kindOf(t)}`);
        sized(name, t.type, sizeOf(btf, t.type, `map '${mapName}': ${name}`));
        break;
      }
      case 'values': {
        const mim = isMapInMap(d.typeId);
        const pa = isProgArray(d.typeId);
        const desc = mim ? 'map-in-map inner' : 'prog-array value';
        if (inner) throw objectError(`map '${mapName}': multi-level inner maps not supported`);
        if (i !== members.length - 1) throw objectError(`map '${mapName}': '${name}' member should be last`);
        if (!mim && !pa) throw objectError(`map '${mapName}': should be map-in-map or prog-array`);
        if (d.valueSize && d.valueSize !== 4)
          throw objectError(`map '${mapName}': conflicting value size ${d.valueSize} != 4`);
        d.valueSize = 4;
        d.hasValues = true;
        const arr = typeAt(btf, m.type, `map '${mapName}': ${desc} type`);
        if (arr.kind !== 'ARRAY' || arr.nelems !== 0)
          throw objectError(`map '${mapName}': ${desc} spec is not a zero-sized array`);
        const ptr = skipMods(btf, arr.type, `map '${mapName}'`);
        if (ptr.kind !== 'PTR')
          throw objectError(`map '${mapName}': ${desc} def is of unexpected kind ${kindOf(ptr)}`);
        const target = skipMods(btf, ptr.type, `map '${mapName}'`);
        if (pa) {
          if (target.kind !== 'FUNC_PROTO')
            throw objectError(
              `map '${mapName}': prog-array value def is of unexpected kind ${kindOf(target)}`,
            );
          break;
        }
        if (target.kind !== 'STRUCT')
          throw objectError(`map '${mapName}': map-in-map inner def is of unexpected kind ${kindOf(target)}`);
        d.inner = parseBtfMapDef(btf, `${mapName}.inner`, target, true);
        break;
      }
      case 'pinning': {
        if (inner) throw objectError(`map '${mapName}': inner def can't be pinned`);
        const v = fieldInt(btf, mapName, name, m.type);
        if (v !== 0 && v !== LIBBPF_PIN_BY_NAME)
          throw objectError(`map '${mapName}': invalid pinning value ${v}`);
        d.pinning = v;
        break;
      }
      case 'map_extra':
        d.mapExtra = fieldLong(btf, mapName, name, m.type);
        break;
      default:
        // libbpf in strict mode (1.0+) refuses unknown fields.
        throw objectError(`map '${mapName}': unknown field '${name}'`);
    }
  }
  if (d.typeId === 0) throw objectError(`map '${mapName}': map type isn't specified`);
  return d;
}

function fromDef(
  name: string,
  def: MapDef,
  kind: MapKind,
  section: string,
  sectionOffset: number,
  pageSize: number,
): MapSpec {
  const ring = def.typeId === BPF_MAP_TYPE_RINGBUF || def.typeId === BPF_MAP_TYPE_USER_RINGBUF;
  const spec: MapSpec = {
    name,
    kind,
    section,
    sectionOffset,
    type: mapTypeName(def.typeId),
    typeId: def.typeId,
    keySize: def.keySize,
    valueSize: def.valueSize,
    maxEntries: ring ? adjustRingbufSize(def.maxEntries, pageSize) : def.maxEntries,
    flags: def.flags,
    numaNode: def.numaNode,
    mapExtra: def.mapExtra,
    pinning: def.pinning === LIBBPF_PIN_BY_NAME ? 'by_name' : 'none',
    keyTypeId: def.keyTypeId,
    valueTypeId: def.valueTypeId,
    frozen: false,
  };
  if (def.inner) spec.inner = fromDef(`${name}.inner`, def.inner, kind, section, sectionOffset, pageSize);
  if (def.hasValues) spec.initialSlots = [];
  return spec;
}

/** A `.maps` variable: where it sits in the section. */
export interface BtfMapVar {
  map: MapSpec;
  offset: number;
  size: number;
  /** The definition struct (to find the `values` member for slot relocations). */
  def: BtfType;
}

/** bpf_object__init_user_btf_maps: one MapSpec per variable of the `.maps` DATASEC, in its order. */
export function readBtfMaps(
  btf: Btf,
  section: { name: string; size: number },
  pageSize: number,
): BtfMapVar[] {
  const datasec = btf.findAllByName(section.name, 'DATASEC')[0];
  if (datasec === undefined) throw objectError(`DATASEC '${section.name}' not found in BTF`);
  const sec = btf.types[datasec];
  if (sec.kind !== 'DATASEC') throw objectError(`DATASEC '${section.name}' not found in BTF`);
  const out: BtfMapVar[] = [];
  sec.vars.forEach((vi, i) => {
    const v = typeAt(btf, vi.type, `map #${i}`);
    const name = v.name;
    if (name === '') throw objectError(`map #${i}: empty name`);
    if (vi.offset + vi.size > section.size) throw objectError(`map '${name}' BTF data is corrupted`);
    if (v.kind !== 'VAR') throw objectError(`map '${name}': unexpected var kind ${kindOf(v)}`);
    if (v.linkage !== 1) {
      const linkage = v.linkage === 0 ? 'static' : v.linkage === 2 ? 'extern' : `linkage ${v.linkage}`;
      throw objectError(`map '${name}': unsupported map linkage ${linkage}`);
    }
    const def = skipMods(btf, v.type, `map '${name}'`);
    if (def.kind !== 'STRUCT') throw objectError(`map '${name}': unexpected def kind ${kindOf(def)}`);
    if (def.size > vi.size) throw objectError(`map '${name}': invalid def size`);
    const parsed = parseBtfMapDef(btf, name, def, false);
    out.push({
      map: fromDef(name, parsed, 'btf', section.name, vi.offset, pageSize),
      offset: vi.offset,
      size: vi.size,
      def,
    });
  });
  return out;
}

/** A symbol defining a legacy map. */
export interface LegacySymbol {
  name: string;
  value: number;
}

/**
 * Legacy `maps` section (libbpf 0.x bpf_object__init_user_maps): every symbol in the section is a map;
 * definitions are equally sized; the first 20 bytes are struct bpf_map_def { type, key_size,
 * value_size, max_entries, map_flags }; longer records must be zero past those.
 */
export function readLegacyMaps(
  data: Uint8Array,
  symbols: readonly LegacySymbol[],
  bigEndian: boolean,
  pageSize: number,
): MapSpec[] {
  if (symbols.length === 0) return [];
  if (data.length === 0 || data.length % symbols.length !== 0)
    throw objectError(
      `unable to determine legacy map definition size in section 'maps': ${symbols.length} maps in ${data.length} bytes`,
    );
  const defSize = data.length / symbols.length;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return symbols.map((s) => {
    if (s.value + defSize > data.length)
      throw objectError(`corrupted maps section: map '${s.name}' at offset ${s.value} does not fit`);
    for (let b = s.value + 20; b < s.value + defSize; b++) {
      if (data[b] !== 0) throw objectError(`maps section: '${s.name}' has unrecognized, non-zero options`);
    }
    const field = (i: number) => (i * 4 + 4 <= defSize ? view.getUint32(s.value + i * 4, !bigEndian) : 0);
    const def: MapDef = {
      typeId: field(0),
      keySize: field(1),
      valueSize: field(2),
      maxEntries: field(3),
      flags: field(4),
      numaNode: 0,
      mapExtra: 0n,
      pinning: 0,
      keyTypeId: 0,
      valueTypeId: 0,
      hasValues: false,
    };
    return fromDef(s.name, def, 'legacy', 'maps', s.value, pageSize);
  });
}

/**
 * A global-data map (bpf_object__init_internal_map): an array of one value, the section's size; the
 * section's bytes as its initial value (zeros for .bss); BPF_F_RDONLY_PROG for .rodata and .kconfig;
 * BPF_F_MMAPABLE.
 */
export function internalMap(
  objectName: string,
  kind: 'data' | 'rodata' | 'bss' | 'kconfig',
  section: string,
  size: number,
  initial: Uint8Array | undefined,
  btf: Btf | undefined,
): MapSpec {
  if (size > MAX_GLOBAL_DATA)
    throw objectError(
      `section '${section}' is ${size} bytes: too large for a global data map (at most ${MAX_GLOBAL_DATA})`,
    );
  let valueTypeId = 0;
  if (btf) {
    const id = btf.findAllByName(section, 'DATASEC')[0];
    if (id !== undefined) {
      valueTypeId = id;
    }
  }
  // libbpf 1.1 (bpftool's, measured) makes every global-data map mmapable; later libbpf releases
  // leave BPF_F_MMAPABLE off when the section's DATASEC holds only static variables.
  let flags = kind === 'rodata' || kind === 'kconfig' ? MAP_FLAGS.BPF_F_RDONLY_PROG : 0;
  flags |= MAP_FLAGS.BPF_F_MMAPABLE;
  const data = new Uint8Array(size);
  if (initial) data.set(initial.subarray(0, size));
  return {
    name: internalMapName(objectName, section),
    kind,
    section,
    sectionOffset: 0,
    type: mapTypeName(BPF_MAP_TYPE_ARRAY),
    typeId: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: size,
    maxEntries: 1,
    flags,
    numaNode: 0,
    mapExtra: 0n,
    pinning: 'none',
    keyTypeId: 0,
    valueTypeId,
    data,
    frozen: kind === 'rodata' || kind === 'kconfig',
  };
}

/** The map-type id for a catalog name, for callers that build specs by hand. */
export function mapTypeIdByName(name: string): number | undefined {
  return mapTypeByName(name)?.id;
}
