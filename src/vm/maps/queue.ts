/**
 * Keyless maps: queue and stack (kernel/bpf/queue_stack_maps.c), bloom_filter (bloom_filter.c).
 * Programs reach them with bpf_map_push_elem/pop_elem/peek_elem, which copy values in and out,
 * so their contents live on the host side.
 */
import { BPF_ANY, BPF_EXIST } from '../../catalog/map-types.js';
import { E2BIG, EINVAL, ENOENT, ENOTSUPP, EOPNOTSUPP } from '../../errno.js';
import { type MapAttrs, type MapHost, VmMap } from './base.js';

export class QueueStackMap extends VmMap {
  /** Oldest first. */
  private items: Uint8Array[] = [];
  private readonly lifo: boolean;

  constructor(host: MapHost, attrs: MapAttrs, id: number) {
    super(host, attrs, id);
    this.lifo = attrs.type.name === 'stack';
  }

  get size(): number {
    return this.items.length;
  }

  override pushElem(value: Uint8Array, flags: number): number {
    if (flags & ~BPF_EXIST) return -EINVAL;
    if (this.items.length >= this.maxEntries) {
      if (!(flags & BPF_EXIST)) return -E2BIG;
      this.items.shift(); // the kernel advances the tail: the oldest element goes, for a stack too
    }
    this.items.push(value.slice(0, this.valueSize));
    return 0;
  }

  override popElem(out: Uint8Array): number {
    const v = this.lifo ? this.items.pop() : this.items.shift();
    if (!v) return -ENOENT;
    out.set(v);
    return 0;
  }

  override peekElem(out: Uint8Array): number {
    const v = this.lifo ? this.items[this.items.length - 1] : this.items[0];
    if (!v) return -ENOENT;
    out.set(v);
    return 0;
  }

  override sysLookup(key: Uint8Array | undefined, out: Uint8Array): number {
    return key === undefined ? this.peekElem(out) : -EINVAL;
  }
  override sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    return key === undefined ? this.pushElem(value, flags) : -EINVAL;
  }
  override sysLookupAndDelete(key: Uint8Array | undefined, out: Uint8Array): number {
    return key === undefined ? this.popElem(out) : -EINVAL;
  }
  override sysDelete(): number {
    return -EINVAL;
  }
  override sysNextKey(): number {
    return -EINVAL;
  }
  override progUpdate(): number {
    return -EINVAL;
  }
  override progDelete(): number {
    return -EINVAL;
  }

  /** The values, oldest first. */
  values(): Uint8Array[] {
    return this.items.map((v) => v.slice());
  }
}

/** 32-bit FNV-1a of the bytes, with a seed mixed in: the VM's hash for bloom filter bits. */
function hash32(bytes: Uint8Array, seed: number): number {
  let h = (0x811c9dc5 ^ Math.imul(seed + 1, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/**
 * Bloom filter: map_extra's low 4 bits are the number of hash functions (0 means 5); the bit array
 * is sized as the kernel sizes it (max_entries × hashes / ln 2, rounded up to a power of two).
 * False positives happen, false negatives never.
 */
export class BloomFilterMap extends VmMap {
  private readonly bits: Uint8Array;
  private readonly mask: number;
  private readonly hashes: number;

  constructor(host: MapHost, attrs: MapAttrs, id: number) {
    super(host, attrs, id);
    this.hashes = Number(attrs.mapExtra & 0xfn) || 5;
    let nrBits = Math.ceil((this.maxEntries * this.hashes) / Math.LN2);
    nrBits = Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(nrBits, 1))));
    nrBits = Math.min(nrBits, 2 ** 31);
    this.mask = nrBits - 1;
    this.bits = new Uint8Array(Math.ceil(nrBits / 8));
  }

  override pushElem(value: Uint8Array, flags: number): number {
    if (flags !== BPF_ANY) return -EINVAL;
    for (let i = 0; i < this.hashes; i++) {
      const b = hash32(value, i) & this.mask;
      this.bits[b >>> 3] |= 1 << (b & 7);
    }
    return 0;
  }

  /** bpf_map_peek_elem on a bloom filter: 0 if the value may be present, -ENOENT if not. */
  override peekElem(value: Uint8Array): number {
    for (let i = 0; i < this.hashes; i++) {
      const b = hash32(value, i) & this.mask;
      if (!(this.bits[b >>> 3] & (1 << (b & 7)))) return -ENOENT;
    }
    return 0;
  }

  override popElem(): number {
    return -EOPNOTSUPP;
  }
  override sysLookup(key: Uint8Array | undefined, value: Uint8Array): number {
    return key === undefined ? this.peekElem(value) : -EINVAL;
  }
  override sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    return key === undefined ? this.pushElem(value, flags) : -EINVAL;
  }
  override sysLookupAndDelete(): number {
    return -ENOTSUPP; // the syscall pops only queues and stacks
  }
  override sysDelete(): number {
    return -EOPNOTSUPP;
  }
  override sysNextKey(): number {
    return -EOPNOTSUPP;
  }
}
