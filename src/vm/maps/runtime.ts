/**
 * The VM's maps, together: creation with the kernel's BPF_MAP_CREATE checks (rules read from
 * src/catalog/map-types.ts), ids, the table address → map that map helpers use, the virtual CPUs
 * (per-CPU maps hold one value per CPU; `cpu` is the CPU programs run on now), the programs a
 * prog_array may hold, and the relocation of map references in instructions.
 */
import {
  COMMON_MAP_FLAGS,
  MAP_FLAGS,
  type MapType,
  mapTypeById,
  mapTypeByName,
} from '../../catalog/map-types.js';
import { EBADF, EINVAL, ENOTSUPP } from '../../errno.js';
import { TsbpfError } from '../../errors.js';
import { type Insn, splitImm64 } from '../../isa/insn.js';
import {
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  OPCODE_LD_IMM64,
} from '../../isa/opcodes.js';
import type { MapSpec } from '../../maps.js';
import { type AddressSpace, defaultAddressSpace, type Region } from '../memory.js';
import { ArrayMap, ArrayOfMapsMap, ProgArrayMap } from './array.js';
import { type MapAttrs, type MapHost, mapError, type VmMap } from './base.js';
import { HashMap } from './hash.js';
import type { MapInline } from './inline.js';
import { LpmTrieMap } from './lpm.js';
import { PerfEventArrayMap } from './perf.js';
import { BloomFilterMap, QueueStackMap } from './queue.js';
import { RingbufMap } from './ringbuf.js';
import { StackTraceMap } from './stack-trace.js';

export interface MapRuntimeOptions {
  /** Address space of the maps (default: the VM's shared one). */
  memory?: AddressSpace;
  /** Number of virtual CPUs (default 1). */
  cpus?: number;
  /** The stack get_stackid records: instruction pointers, innermost first (default: none). */
  stack?: (user: boolean) => readonly bigint[];
}

/** Map types the VM implements, by catalog name. */
export const VM_MAP_TYPES = [
  'hash',
  'array',
  'prog_array',
  'perf_event_array',
  'percpu_hash',
  'percpu_array',
  'stack_trace',
  'lru_hash',
  'lru_percpu_hash',
  'lpm_trie',
  'array_of_maps',
  'hash_of_maps',
  'queue',
  'stack',
  'ringbuf',
  'bloom_filter',
] as const;
export type VmMapTypeName = (typeof VM_MAP_TYPES)[number];

const LPM_DATA_SIZE_MAX = 256;
const PAGE_SIZE = 4096;
/** sysctl kernel.perf_event_max_stack default: the deepest stack a stack_trace value may hold. */
const PERF_MAX_STACK = 127;

function typeOf(t: number | string): MapType | undefined {
  return typeof t === 'number' ? mapTypeById(t) : mapTypeByName(t);
}

/** Whether `n` satisfies a catalog size rule that is a number, 'any', 'none' or '> 0'. */
function sizeRule(rule: MapType['keySize'], n: number): boolean | undefined {
  if (typeof rule === 'number') return n === rule;
  if (rule === 'any' || rule === '> 0') return n > 0;
  if (rule === 'none') return n === 0;
  return undefined; // a rule in words: checked by the type-specific code below
}

export class MapRuntime implements MapHost {
  readonly memory: AddressSpace;
  readonly cpus: number;
  private current = 0;
  stack: (user: boolean) => readonly bigint[];
  private readonly byAddress = new Map<number, VmMap>();
  private readonly byId = new Map<number, VmMap>();
  private nextId = 1;
  private readonly programs = new Map<number, unknown>();
  private readonly programIds = new Map<unknown, number>();
  private nextProgramId = 1;
  /** A u32 in VM memory that holds `cpu` (inlined per-CPU lookups of the JIT read it). */
  private cpuCell: Region | undefined;

  constructor(options: MapRuntimeOptions = {}) {
    this.memory = options.memory ?? defaultAddressSpace();
    const cpus = options.cpus ?? 1;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 4096)
      throw new TsbpfError('usage', `cpus must be an integer from 1 to 4096, not ${cpus}`);
    this.cpus = cpus;
    this.stack = options.stack ?? (() => []);
  }

  /** The CPU programs run on now (per-CPU values, bpf_get_smp_processor_id). */
  get cpu(): number {
    return this.current;
  }
  set cpu(n: number) {
    this.setCpu(n);
  }
  setCpu(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n >= this.cpus)
      throw new TsbpfError('usage', `cpu must be an integer from 0 to ${this.cpus - 1}, not ${n}`);
    this.current = n;
    if (this.cpuCell) this.memory.view.setUint32(this.cpuCell.base, n, true);
  }

  /** Address of a u32 in VM memory that always holds the current CPU. */
  cpuAddress(): number {
    if (!this.cpuCell) {
      this.cpuCell = this.memory.allocate(8, 'current cpu', { writable: false });
      this.memory.view.setUint32(this.cpuCell.base, this.current, true);
    }
    return this.cpuCell.base;
  }

  /**
   * How the JIT may inline bpf_map_lookup_elem on the map at `address`: array and per-CPU array
   * lookups become address arithmetic (as the kernel inlines them), hash and percpu_hash lookups
   * a walk of the map's in-memory index inside the module, LRU hash lookups a direct host call.
   */
  inlineLookup(address: number): MapInline | undefined {
    const m = this.byAddress.get(address);
    if (m instanceof ArrayMap) {
      const info: MapInline = { kind: 'array', base: m.base, stride: m.stride, maxEntries: m.maxEntries };
      if (m.perCpu) info.cpuCell = this.cpuAddress();
      return info;
    }
    if (m instanceof HashMap && m.typeName !== 'hash_of_maps' && m.keySize > 0) {
      const lookup = (a: number) => m.progLookupAt(a);
      const index = m.jitIndex();
      if (index) {
        const info: MapInline = { kind: 'hash', keySize: m.keySize, header: index.header, stride: 0, lookup };
        if (index.perCpu) {
          info.stride = index.stride;
          info.cpuCell = this.cpuAddress();
        }
        return info;
      }
      return { kind: 'lookup', keySize: m.keySize, lookup };
    }
    return undefined;
  }

  /** BPF_MAP_CREATE in the VM. Attribute errors are TsbpfError('runtime') with the kernel's errno. */
  create(spec: MapSpec): VmMap {
    const attrs = this.check(spec);
    const id = this.nextId++;
    const t = attrs.type.name as VmMapTypeName;
    let map: VmMap;
    switch (t) {
      case 'hash':
      case 'percpu_hash':
      case 'lru_hash':
      case 'lru_percpu_hash':
        map = new HashMap(this, attrs, id);
        break;
      case 'hash_of_maps':
        map = new HashMap(this, attrs, id, this.innerCheck(spec));
        break;
      case 'array':
      case 'percpu_array':
        map = new ArrayMap(this, attrs, id);
        break;
      case 'prog_array':
        map = new ProgArrayMap(this, attrs, id);
        break;
      case 'array_of_maps':
        map = new ArrayOfMapsMap(this, attrs, id, this.innerCheck(spec));
        break;
      case 'perf_event_array':
        map = new PerfEventArrayMap(this, attrs, id);
        break;
      case 'lpm_trie':
        map = new LpmTrieMap(this, attrs, id);
        break;
      case 'queue':
      case 'stack':
        map = new QueueStackMap(this, attrs, id);
        break;
      case 'bloom_filter':
        map = new BloomFilterMap(this, attrs, id);
        break;
      case 'ringbuf':
        map = new RingbufMap(this, attrs, id);
        break;
      case 'stack_trace':
        map = new StackTraceMap(this, attrs, id);
        break;
    }
    this.byAddress.set(map.address, map);
    this.byId.set(id, map);
    map.onClose = () => {
      this.byAddress.delete(map.address);
      this.byId.delete(id);
    };
    try {
      for (const [k, v] of spec.contents ?? []) map.update(k, v);
      if (spec.freeze) map.freeze();
    } catch (e) {
      map.close();
      throw e;
    }
    return map;
  }

  /** The kernel's checks of BPF_MAP_CREATE attributes, as far as the VM's types need them. */
  private check(spec: MapSpec): MapAttrs {
    const op = 'BPF_MAP_CREATE';
    const type = typeOf(spec.type);
    if (!type || type.id === 0) throw mapError(op, EINVAL);
    if (!(VM_MAP_TYPES as readonly string[]).includes(type.name)) {
      throw new TsbpfError(
        'usage',
        `map type ${type.name} is not implemented by the VM (it has: ${VM_MAP_TYPES.join(', ')})`,
      );
    }
    const { keySize, valueSize, maxEntries } = spec;
    for (const [what, n] of [
      ['keySize', keySize],
      ['valueSize', valueSize],
      ['maxEntries', maxEntries],
    ] as const) {
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
        throw new TsbpfError('usage', `${what} must be a u32, not ${n}`);
    }
    const flags = spec.flags ?? 0;
    const mapExtra = spec.mapExtra ?? 0n;
    const bad = () => mapError(op, EINVAL, { name: spec.name ?? '', typeName: type.name });
    // Flags: the common ones plus the type's own (catalog).
    let allowed = 0;
    for (const f of [...COMMON_MAP_FLAGS, ...(type.flags ?? [])]) allowed |= MAP_FLAGS[f];
    for (const f of type.refusedCommonFlags ?? []) allowed &= ~MAP_FLAGS[f];
    // The catalog's note on LRU maps: BPF_F_NO_PREALLOC is refused with ENOTSUPP.
    if (type.name.startsWith('lru_') && flags & MAP_FLAGS.BPF_F_NO_PREALLOC)
      throw mapError(op, ENOTSUPP, { name: spec.name ?? '', typeName: type.name });
    if (flags & ~allowed) throw bad();
    const { BPF_F_RDONLY, BPF_F_WRONLY, BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG, BPF_F_NO_PREALLOC } = MAP_FLAGS;
    if (
      (flags & BPF_F_RDONLY && flags & BPF_F_WRONLY) ||
      (flags & BPF_F_RDONLY_PROG && flags & BPF_F_WRONLY_PROG)
    )
      throw bad();
    if (mapExtra !== 0n && type.name !== 'bloom_filter') throw bad();
    if (type.name === 'bloom_filter' && mapExtra & ~0xfn) throw bad();
    // Sizes: the catalog's rule when it is a plain one, the type's own check otherwise.
    const keyOk = sizeRule(type.keySize, keySize);
    const valueOk = sizeRule(type.valueSize, valueSize);
    if (keyOk === false || valueOk === false || maxEntries === 0) throw bad();
    switch (type.name) {
      case 'lpm_trie':
        if (keySize < 4 + 1 || keySize > 4 + LPM_DATA_SIZE_MAX || valueSize === 0) throw bad();
        if (!(flags & BPF_F_NO_PREALLOC)) throw bad();
        break;
      case 'stack_trace':
        if (valueSize < 8 || valueSize % 8 !== 0 || valueSize / 8 > PERF_MAX_STACK) throw bad();
        break;
      case 'ringbuf':
        if (maxEntries % PAGE_SIZE !== 0 || (maxEntries & (maxEntries - 1)) !== 0) throw bad();
        break;
    }
    if (keyOk === undefined && type.name !== 'lpm_trie')
      throw new Error(`no key-size check for ${type.name}`);
    if (valueOk === undefined && type.name !== 'stack_trace')
      throw new Error(`no value-size check for ${type.name}`);
    const name = spec.name ?? '';
    if (name.length > 15 || !/^[A-Za-z0-9_.]*$/.test(name)) throw bad();
    return { type, name, keySize, valueSize, maxEntries, flags, mapExtra };
  }

  /** The check of a map stored in a map-in-map against its template (bpf_map_meta_equal). */
  private innerCheck(spec: MapSpec): (m: VmMap) => boolean {
    const tpl = spec.innerMap;
    if (!tpl) {
      throw new TsbpfError(
        'usage',
        `map '${spec.name ?? ''}' of type ${spec.type} needs an innerMap template`,
      );
    }
    const t = typeOf(tpl.type);
    if (!t) throw mapError('BPF_MAP_CREATE', EBADF);
    if (t.name === 'prog_array' || t.name.endsWith('_of_maps')) throw mapError('BPF_MAP_CREATE', EINVAL);
    const tflags = tpl.flags ?? 0;
    const anySize = (tflags & MAP_FLAGS.BPF_F_INNER_MAP) !== 0;
    return (m) =>
      m.type === t.id &&
      m.keySize === tpl.keySize &&
      m.valueSize === tpl.valueSize &&
      m.flags === tflags &&
      (anySize || m.maxEntries === tpl.maxEntries);
  }

  /** The map whose identity address is `addr` (what a relocated `r1 = map ll` holds). */
  mapAt(addr: number | bigint): VmMap | undefined {
    return this.byAddress.get(Number(addr));
  }
  mapById(id: number): VmMap | undefined {
    return this.byId.get(id);
  }
  /** Every live map. */
  maps(): VmMap[] {
    return [...this.byId.values()];
  }

  /** Registers a program a prog_array can hold; its id stands for its fd from user space. */
  registerProgram(program: unknown): number {
    const have = this.programIds.get(program);
    if (have !== undefined) return have;
    const id = this.nextProgramId++;
    this.programs.set(id, program);
    this.programIds.set(program, id);
    return id;
  }
  programById(id: number): unknown {
    return this.programs.get(id);
  }
  programId(program: unknown): number | undefined {
    return this.programIds.get(program);
  }

  /**
   * Rewrites the map references of LD_IMM64 (BPF_PSEUDO_MAP_FD / MAP_IDX: the map's address;
   * MAP_VALUE / MAP_IDX_VALUE: the address of byte imm2 of an array's first value) into plain
   * 64-bit constants. `maps` resolves the instruction's imm (an fd or an index) to a VM map.
   */
  relocate(insns: readonly Insn[], maps: (fdOrIndex: number, src: number) => VmMap | undefined): Insn[] {
    return insns.map((insn, pc) => {
      if (insn.code !== OPCODE_LD_IMM64) return insn;
      const src = insn.src;
      if (
        src !== BPF_PSEUDO_MAP_FD &&
        src !== BPF_PSEUDO_MAP_IDX &&
        src !== BPF_PSEUDO_MAP_VALUE &&
        src !== BPF_PSEUDO_MAP_IDX_VALUE
      )
        return insn;
      const map = maps(insn.imm, src);
      if (!map)
        throw new TsbpfError('usage', `insn ${pc}: no map for reference ${insn.imm} (ld_imm64 src ${src})`);
      let addr = map.address;
      if (src === BPF_PSEUDO_MAP_VALUE || src === BPF_PSEUDO_MAP_IDX_VALUE) {
        const off = insn.imm2 ?? 0;
        if (!(map instanceof ArrayMap) || map.perCpu || off < 0 || off >= map.valueSize) {
          throw new TsbpfError(
            'usage',
            `insn ${pc}: map_value(${insn.imm}, ${off}) needs an array map with a value of more than ${off} bytes (${map})`,
          );
        }
        addr = map.valueAddress(0, off);
      }
      return { code: insn.code, dst: insn.dst, src: 0, off: 0, ...splitImm64(BigInt(addr)) };
    });
  }

  /** Closes every map. */
  close(): void {
    for (const m of this.maps()) m.close();
  }

  toString(): string {
    return `MapRuntime(${this.byId.size} maps, ${this.cpus} CPUs, cpu ${this.cpu})`;
  }
}
