/**
 * Longest-prefix-match trie (kernel/bpf/lpm_trie.c). A key is `struct bpf_lpm_trie_key_u8`:
 * a u32 prefix length (host order) and `keySize - 4` data bytes, compared bit by bit from the most
 * significant bit of the first byte. A lookup finds the stored prefix of greatest length that is
 * no longer than the key's prefix length and agrees with the key on its bits.
 *
 * Elements are kept by (prefix length, masked data); the data stored and returned by get_next_key
 * is the key as last written (the kernel copies the whole key, masked or not). get_next_key walks
 * in the kernel's post-order: a more specific prefix before the prefix that contains it, the 0
 * side of a bit before the 1 side.
 */
import { BPF_EXIST, BPF_NOEXIST } from '../../catalog/map-types.js';
import { EEXIST, EINVAL, ENOENT, ENOSPC } from '../../errno.js';
import { roundUp8 } from '../../maps.js';
import { type MapAttrs, type MapHost, SlotPool, VmMap } from './base.js';

interface Node {
  key: Uint8Array;
  prefixlen: number;
  addr: number;
}

const bit = (data: Uint8Array, i: number) => (data[i >> 3] >> (7 - (i & 7))) & 1;

export class LpmTrieMap extends VmMap {
  private readonly nodes = new Map<string, Node>();
  /** How many nodes have each prefix length. */
  private readonly lens = new Map<number, number>();
  private sortedLens: number[] | undefined;
  private order: Node[] | undefined;
  private readonly pool: SlotPool;
  readonly maxPrefixlen: number;

  constructor(host: MapHost, attrs: MapAttrs, id: number) {
    super(host, attrs, id);
    this.maxPrefixlen = (this.keySize - 4) * 8;
    const writable = this.progWritable;
    this.pool = new SlotPool(
      (n, w) => this.allocate(n, w, writable),
      roundUp8(this.valueSize),
      this.maxEntries,
      false,
    );
  }

  get size(): number {
    return this.nodes.size;
  }

  private static prefixlen(key: Uint8Array): number {
    return (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
  }

  /** Identity of (prefixlen, the first prefixlen bits of data). */
  private nodeId(key: Uint8Array, len: number): string {
    let s = `${len}:`;
    const full = len >> 3;
    for (let i = 0; i < full; i++) s += String.fromCharCode(key[4 + i]);
    const rest = len & 7;
    if (rest) s += String.fromCharCode(key[4 + full] & (0xff << (8 - rest)) & 0xff);
    return s;
  }

  private changed(): void {
    this.order = undefined;
    this.sortedLens = undefined;
  }

  private find(key: Uint8Array): Node | undefined {
    const want = LpmTrieMap.prefixlen(key);
    if (want > this.maxPrefixlen) return undefined; // measured: the kernel finds nothing
    this.sortedLens ??= [...this.lens.keys()].sort((a, b) => b - a);
    for (const len of this.sortedLens) {
      if (len > want || len > this.maxPrefixlen) continue;
      const n = this.nodes.get(this.nodeId(key, len));
      if (n) return n;
    }
    return undefined;
  }

  override sysLookup(key: Uint8Array | undefined, out: Uint8Array): number {
    const n = this.find(key as Uint8Array);
    if (!n) return -ENOENT;
    out.set(this.space.u8.subarray(n.addr, n.addr + this.valueSize));
    return 0;
  }

  override progLookup(key: Uint8Array): number {
    return this.find(key)?.addr ?? 0;
  }

  override sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    return this.progUpdate(key as Uint8Array, value, flags);
  }

  override progUpdate(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (flags > BPF_EXIST) return -EINVAL;
    const len = LpmTrieMap.prefixlen(key);
    if (len > this.maxPrefixlen) return -EINVAL;
    const id = this.nodeId(key, len);
    let n = this.nodes.get(id);
    if (n) {
      if (flags === BPF_NOEXIST) return -EEXIST;
      n.key = key.slice();
    } else {
      if (flags === BPF_EXIST) return -ENOENT;
      if (this.nodes.size >= this.maxEntries) return -ENOSPC;
      const addr = this.pool.take();
      if (addr === 0) return -ENOSPC;
      n = { key: key.slice(), prefixlen: len, addr };
      this.nodes.set(id, n);
      this.lens.set(len, (this.lens.get(len) ?? 0) + 1);
      this.changed();
    }
    this.space.u8.set(value.subarray(0, this.valueSize), n.addr);
    this.order = undefined;
    return 0;
  }

  override sysDelete(key: Uint8Array | undefined): number {
    return this.progDelete(key as Uint8Array);
  }

  override progDelete(key: Uint8Array): number {
    const len = LpmTrieMap.prefixlen(key);
    if (len > this.maxPrefixlen) return -EINVAL;
    const id = this.nodeId(key, len);
    const n = this.nodes.get(id);
    if (!n) return -ENOENT;
    this.nodes.delete(id);
    const c = (this.lens.get(len) ?? 1) - 1;
    if (c === 0) this.lens.delete(len);
    else this.lens.set(len, c);
    this.pool.give(n.addr);
    this.changed();
    return 0;
  }

  /** Post-order of the trie. */
  private compare(a: Node, b: Node): number {
    const m = Math.min(a.prefixlen, b.prefixlen);
    const da = a.key.subarray(4);
    const db = b.key.subarray(4);
    for (let i = 0; i < m; i++) {
      const x = bit(da, i);
      const y = bit(db, i);
      if (x !== y) return x - y;
    }
    return b.prefixlen - a.prefixlen;
  }

  override sysNextKey(key: Uint8Array | undefined, out: Uint8Array): number {
    this.order ??= [...this.nodes.values()].sort((a, b) => this.compare(a, b));
    let i = 0;
    if (key !== undefined) {
      const len = LpmTrieMap.prefixlen(key);
      const n = len <= this.maxPrefixlen ? this.nodes.get(this.nodeId(key, len)) : undefined;
      if (n) i = this.order.indexOf(n) + 1;
    }
    const next = this.order[i];
    if (!next) return -ENOENT;
    out.set(next.key);
    return 0;
  }
}
