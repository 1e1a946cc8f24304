/**
 * The VM's address space: one growable WebAssembly.Memory, carved into named regions.
 *
 * A pointer a program holds is an offset into this memory. The first 64 KiB page is never handed
 * out, so NULL (and small integers mistaken for pointers) never alias an object. Every load and
 * store goes through `check`, which answers in a few comparisons when the access hits the region
 * the previous access hit, and otherwise looks the region up by binary search.
 */
import { TsbpfError } from '../errors.js';

export const WASM_PAGE = 65536;
/** Addresses below this are never part of a region. */
export const NULL_PAGE_END = WASM_PAGE;
/**
 * A u32 in the NULL page (never a region, so no program can reach it) that the address space bumps
 * every time it frees a region: compiled code that caches which region an access hits drops its
 * cache when the number changes.
 */
export const FREE_EPOCH_ADDR = 64;

export interface Region {
  readonly id: number;
  readonly base: number;
  readonly size: number;
  /** base + size: the first address past the region. */
  readonly end: number;
  readonly name: string;
  readonly writable: boolean;
}

/** Why an access was refused (Fault.None means it was not). */
export const Fault = {
  None: 0,
  NullPage: 1,
  Unmapped: 2,
  CrossesEnd: 3,
  ReadOnly: 4,
  TooFar: 5,
} as const;
export type Fault = (typeof Fault)[keyof typeof Fault];

export interface AllocateOptions {
  /** Default true. */
  writable?: boolean;
  /** Alignment of the base address, a power of two (default 8). */
  align?: number;
  /** Initial contents (copied in); the rest of the region is zero. */
  init?: Uint8Array;
}

export interface AddressSpaceOptions {
  /** Initial size in 64 KiB pages (default 4). */
  initialPages?: number;
  /** Largest size in 64 KiB pages (default 16384 = 1 GiB). */
  maximumPages?: number;
}

/**
 * The part of WebAssembly.Memory the VM uses. (The project compiles against lib ES2022, which has
 * no WebAssembly declarations; the object is a real WebAssembly.Memory at run time.)
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}
type WasmMemoryConstructor = new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
const WasmMemoryClass = (globalThis as unknown as { WebAssembly: { Memory: WasmMemoryConstructor } })
  .WebAssembly.Memory;

interface FreeBlock {
  base: number;
  size: number;
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

export class AddressSpace {
  readonly memory: WasmMemory;
  /** Byte view of the whole memory; replaced when the memory grows (compare `generation`). */
  u8: Uint8Array;
  /** Little-endian access to the whole memory; replaced when the memory grows. */
  view: DataView;
  /** Incremented every time the memory grows and the views are replaced. */
  generation = 0;

  /** Regions sorted by base. */
  private readonly regions: Region[] = [];
  private readonly free: FreeBlock[] = [];
  private top = NULL_PAGE_END;
  private nextId = 1;
  private readonly maximumPages: number;

  /** Last region an access hit: the fast path of `check`. */
  lastBase = 0;
  lastEnd = 0;
  lastWritable = false;

  constructor(options: AddressSpaceOptions = {}) {
    const initial = Math.max(2, options.initialPages ?? 4);
    this.maximumPages = options.maximumPages ?? 16384;
    this.memory = new WasmMemoryClass({ initial, maximum: this.maximumPages });
    this.u8 = new Uint8Array(this.memory.buffer);
    this.view = new DataView(this.memory.buffer);
  }

  /** Size of the memory in bytes. */
  get byteLength(): number {
    return this.u8.byteLength;
  }

  /** The live regions, sorted by base address. */
  listRegions(): readonly Region[] {
    return this.regions;
  }

  /** Reserves `size` bytes (zeroed, or copied from `init`) and registers them as a region. */
  allocate(size: number, name: string, options: AllocateOptions = {}): Region {
    const align = options.align ?? 8;
    if (
      !Number.isInteger(size) ||
      size < 0 ||
      !Number.isInteger(align) ||
      align <= 0 ||
      (align & (align - 1)) !== 0
    ) {
      throw new TsbpfError(
        'usage',
        `cannot allocate region '${name}': bad size ${size} or alignment ${align}`,
      );
    }
    const want = Math.max(size, 1); // zero-sized regions still get a distinct address
    let base = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      const start = (b.base + align - 1) & ~(align - 1);
      if (start + want <= b.base + b.size) {
        base = start;
        this.takeFree(i, start, want);
        break;
      }
    }
    if (base < 0) {
      const start = Math.ceil(this.top / align) * align;
      if (start > this.top) this.release(this.top, start - this.top);
      base = start;
      this.top = start + want;
      this.ensure(this.top);
    }
    const region: Region = {
      id: this.nextId++,
      base,
      size,
      end: base + size,
      name,
      writable: options.writable ?? true,
    };
    this.u8.fill(0, base, base + want);
    if (options.init) this.u8.set(options.init.subarray(0, size), base);
    this.regions.splice(this.indexAfter(base), 0, region);
    return region;
  }

  /**
   * `count` regions of `size` bytes each, side by side (region k at base + k * size), named by
   * `name(k)`: call stacks whose frames must sit at a fixed stride (the JIT computes a callee's frame
   * from its caller's). `size` must be a multiple of `align`.
   */
  allocateAdjacent(
    count: number,
    size: number,
    name: (k: number) => string,
    options: { align?: number; guard?: number } = {},
  ): Region[] {
    const align = options.align ?? 16;
    const guard = options.guard ?? 0;
    if (!Number.isInteger(count) || count < 1 || size % align !== 0 || size <= 0 || guard % align !== 0)
      throw new TsbpfError('usage', `cannot allocate ${count} adjacent regions of ${size} bytes`);
    const block = this.allocate(count * size + 2 * guard, name(0), { align });
    // re-register the block as `count` regions, with unmapped guard bytes on both sides
    const i = this.indexAfter(block.base) - 1;
    const first = block.base + guard;
    const out: Region[] = [];
    for (let k = 0; k < count; k++) {
      out.push({
        id: k === 0 ? block.id : this.nextId++,
        base: first + k * size,
        size,
        end: first + (k + 1) * size,
        name: name(k),
        writable: true,
      });
    }
    this.regions.splice(i, 1, ...out);
    if (this.lastBase === block.base) {
      this.lastBase = 0;
      this.lastEnd = 0;
    }
    if (guard > 0) {
      const group = { left: count, guards: [block.base, first + count * size], size: guard };
      for (const r of out) this.guardGroups.set(r.id, group);
    }
    return out;
  }

  /** Regions allocated with guards (allocateAdjacent): the guards go back when the last region does. */
  private readonly guardGroups = new Map<number, { left: number; guards: number[]; size: number }>();

  /** Unregisters a region and gives its bytes back. Freeing twice is a usage error. */
  freeRegion(region: Region): void {
    const i = this.indexAfter(region.base) - 1;
    if (i < 0 || this.regions[i] !== region) {
      throw new TsbpfError('usage', `region '${region.name}' at ${hex(region.base)} is not allocated`);
    }
    this.regions.splice(i, 1);
    if (this.lastBase === region.base) {
      this.lastBase = 0;
      this.lastEnd = 0;
    }
    this.release(region.base, Math.max(region.size, 1));
    this.view.setUint32(FREE_EPOCH_ADDR, (this.view.getUint32(FREE_EPOCH_ADDR, true) + 1) >>> 0, true);
    const group = this.guardGroups.get(region.id);
    if (group !== undefined) {
      this.guardGroups.delete(region.id);
      if (--group.left === 0) for (const g of group.guards) this.release(g, group.size);
    }
  }

  /** The region containing `addr`, if any. */
  regionAt(addr: number): Region | undefined {
    const i = this.indexAfter(addr) - 1;
    if (i < 0) return undefined;
    const r = this.regions[i];
    return addr < r.end || (r.size === 0 && addr === r.base) ? r : undefined;
  }

  /**
   * Whether a program may access `size` bytes at `addr`: Fault.None, or the rule that failed.
   * A hit refreshes the one-entry cache (lastBase/lastEnd/lastWritable).
   */
  check(addr: number, size: number, write: boolean): Fault {
    if (addr >= this.lastBase && addr + size <= this.lastEnd && (!write || this.lastWritable))
      return Fault.None;
    return this.checkSlow(addr, size, write);
  }

  private checkSlow(addr: number, size: number, write: boolean): Fault {
    if (!(addr >= 0 && addr < 0x1_0000_0000)) return Fault.TooFar;
    if (addr < NULL_PAGE_END) return Fault.NullPage;
    const r = this.regionAt(addr);
    if (r === undefined || r.size === 0) return Fault.Unmapped;
    if (addr + size > r.end) return Fault.CrossesEnd;
    if (write && !r.writable) return Fault.ReadOnly;
    this.lastBase = r.base;
    this.lastEnd = r.end;
    this.lastWritable = r.writable;
    return Fault.None;
  }

  /** A sentence saying why an access was refused, e.g. "invalid write of 4 bytes at 0x10000 (region 'ctx' is read-only)". */
  describeFault(addr: number | bigint, size: number, write: boolean): string {
    const what = `invalid ${write ? 'write' : 'read'} of ${size} byte${size === 1 ? '' : 's'} at ${hex(addr)}`;
    const a = Number(addr);
    const fault =
      typeof addr === 'bigint' && addr >= 0x1_0000_0000n ? Fault.TooFar : this.checkSlow(a, size, write);
    switch (fault) {
      case Fault.TooFar:
        return `${what} (outside the address space)`;
      case Fault.NullPage:
        return `${what} (NULL page: addresses below ${hex(NULL_PAGE_END)} are never mapped)`;
      case Fault.Unmapped:
        return `${what} (not inside any region)`;
      case Fault.CrossesEnd: {
        const r = this.regionAt(a) as Region;
        return `${what} (crosses the end of region '${r.name}' [${hex(r.base)}, ${hex(r.end)}))`;
      }
      case Fault.ReadOnly: {
        const r = this.regionAt(a) as Region;
        return `${what} (region '${r.name}' is read-only)`;
      }
      default:
        return `${what}`;
    }
  }

  /** Throws TsbpfError('runtime') unless the access is allowed. */
  assertAccess(addr: number | bigint, size: number, write: boolean): number {
    const a = typeof addr === 'bigint' ? (addr >= 0n && addr < 0x1_0000_0000n ? Number(addr) : -1) : addr;
    if (this.check(a, size, write) !== Fault.None) {
      throw new TsbpfError('runtime', this.describeFault(addr, size, write));
    }
    return a;
  }

  /** Copies `length` bytes out of the VM (checked like a program read). */
  read(addr: number | bigint, length: number): Uint8Array {
    const a = this.assertAccess(addr, length, false);
    return this.u8.slice(a, a + length);
  }

  /** Copies bytes into the VM (checked like a program write). */
  write(addr: number | bigint, bytes: Uint8Array): void {
    const a = this.assertAccess(addr, bytes.length, true);
    this.u8.set(bytes, a);
  }

  readU64(addr: number | bigint): bigint {
    return this.view.getBigUint64(this.assertAccess(addr, 8, false), true);
  }
  writeU64(addr: number | bigint, value: bigint): void {
    this.view.setBigUint64(this.assertAccess(addr, 8, true), BigInt.asUintN(64, value), true);
  }
  readU32(addr: number | bigint): number {
    return this.view.getUint32(this.assertAccess(addr, 4, false), true);
  }
  writeU32(addr: number | bigint, value: number): void {
    this.view.setUint32(this.assertAccess(addr, 4, true), value >>> 0, true);
  }

  // --- allocator internals -------------------------------------------------

  /** Index of the first region whose base is > addr. */
  private indexAfter(addr: number): number {
    let lo = 0;
    let hi = this.regions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.regions[mid].base <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private takeFree(i: number, start: number, size: number): void {
    const b = this.free[i];
    const before = start - b.base;
    const after = b.base + b.size - (start + size);
    const repl: FreeBlock[] = [];
    if (before > 0) repl.push({ base: b.base, size: before });
    if (after > 0) repl.push({ base: start + size, size: after });
    this.free.splice(i, 1, ...repl);
  }

  /** Returns a block to the free list, merging neighbours and lowering `top` when possible. */
  private release(base: number, size: number): void {
    let i = 0;
    while (i < this.free.length && this.free[i].base < base) i++;
    this.free.splice(i, 0, { base, size });
    // merge with next
    if (i + 1 < this.free.length && this.free[i].base + this.free[i].size === this.free[i + 1].base) {
      this.free[i].size += this.free[i + 1].size;
      this.free.splice(i + 1, 1);
    }
    // merge with previous
    if (i > 0 && this.free[i - 1].base + this.free[i - 1].size === this.free[i].base) {
      this.free[i - 1].size += this.free[i].size;
      this.free.splice(i, 1);
      i--;
    }
    const last = this.free[this.free.length - 1];
    if (last && last.base + last.size === this.top) {
      this.top = last.base;
      this.free.pop();
    }
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / WASM_PAGE);
    const current = have / WASM_PAGE;
    const grow = Math.min(Math.max(pages, current), this.maximumPages - current); // at least double, when allowed
    if (grow < pages) {
      throw new TsbpfError(
        'runtime',
        `VM address space exhausted: need ${end} bytes, limit is ${this.maximumPages * WASM_PAGE}`,
      );
    }
    try {
      this.memory.grow(grow);
    } catch {
      try {
        this.memory.grow(pages);
      } catch {
        throw new TsbpfError(
          'runtime',
          `VM address space exhausted: the host refused to grow memory to ${end} bytes`,
        );
      }
    }
    this.u8 = new Uint8Array(this.memory.buffer);
    this.view = new DataView(this.memory.buffer);
    this.generation++;
  }
}

let shared: AddressSpace | undefined;
/** The address space programs use when no other is given. */
export function defaultAddressSpace(): AddressSpace {
  shared ??= new AddressSpace();
  return shared;
}
