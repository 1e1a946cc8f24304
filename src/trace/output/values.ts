/**
 * Decoded values, the input of every formatter in this directory. The runtime decodes ring-buffer records
 * and map entries (per the code generator's layouts) into these; the formatters turn them into bpftrace's
 * text or JSON. Nothing here reads bytes or knows about maps' storage.
 */

/** One printable value. Integers carry their width so keys print and sort the way bpftrace does. */
export type Value =
  /** `symbol`: the enum constant of this value (text prints it, JSON and %d print the number). */
  | { kind: 'int'; value: bigint; bits?: 8 | 16 | 32 | 64; signed?: boolean; symbol?: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'string'; value: string }
  /** buffer: printed with printable bytes as-is and the rest as `\xNN` (bpftrace's hex_format_buffer). */
  | { kind: 'buffer'; bytes: Uint8Array }
  | { kind: 'pointer'; value: bigint }
  | { kind: 'tuple'; elems: Value[] }
  | { kind: 'record'; fields: { name: string; value: Value }[] }
  | { kind: 'array'; elems: Value[] }
  /**
   * Text resolved by the runtime (ksym, usym, stacks, usernames, timestamps, probe names, inet addresses).
   * `quoted`: JSON prints it as a string (bpftrace's is_quoted_type).
   */
  | { kind: 'text'; text: string; quoted: boolean };

export const int = (value: bigint | number, bits: 8 | 16 | 32 | 64 = 64, signed = true): Value => ({
  kind: 'int',
  value: BigInt(value),
  bits,
  signed,
});
export const uint = (value: bigint | number, bits: 8 | 16 | 32 | 64 = 64): Value => int(value, bits, false);
export const str = (value: string): Value => ({ kind: 'string', value });

/** The aggregation (or plain value) a map holds; decides its printing and sorting. */
export type MapKind =
  | 'plain'
  | 'count'
  | 'sum'
  | 'min'
  | 'max'
  | 'avg'
  | 'stats'
  | 'hist'
  | 'lhist'
  | 'tseries';

export type MapValue =
  /** plain maps and count/sum/min/max (already merged across CPUs). */
  | { kind: 'scalar'; value: Value }
  /** avg and stats: count and total (the average is total / count, truncated). */
  | { kind: 'stats'; count: bigint; total: bigint }
  /**
   * hist: 65 buckets in bpftrace's order: [0] negative, [1] zero, [2] one, [i] = [2^(i-2), 2^(i-1)).
   * lhist: [0] below min, [1..n] the steps, [n+1] at or above max, n = (max - min) / step.
   */
  | { kind: 'buckets'; buckets: bigint[] }
  /**
   * tseries: each bucket's newest epoch (time / interval) and its value; a bucket that no CPU wrote is
   * epoch 0, value 0 (bpftrace keeps it, and prints it when epoch 0 is in the window).
   */
  | { kind: 'tseries'; points: { epoch: bigint; value: bigint }[] };

export interface MapEntry {
  /** The key's elements (empty for a scalar map like `@x = 1`). */
  key: Value[];
  value: MapValue;
  /** The raw key bytes when known: bpftrace orders hist/stats entries with equal totals by them. */
  keyBytes?: Uint8Array;
}

export interface PrintableMap {
  /** With the `@`: `@`, `@x`. */
  name: string;
  kind: MapKind;
  /** The map is declared with keys (`@x[k]`), even when it has no entries now. */
  keyed: boolean;
  /** Values of sum/plain ints are signed (sorting of negative values). */
  signed?: boolean;
  /** hist(x, k): k bits of sub-buckets per power of two (default 0, bpftrace v0.17's only form). */
  histBits?: number;
  /** lhist(min, max, step) parameters. */
  lhist?: { min: number; max: number; step: number };
  /** tseries(v, interval, n): the interval in ns and the number of intervals shown. */
  tseries?: { intervalNs: bigint; numIntervals: bigint };
  /** Entries in the backend's iteration order (ties keep it, as bpftrace's sort does for small maps). */
  entries: MapEntry[];
}

/** print(@map, top, div) arguments; 0 means "all" and "1". */
export interface PrintOptions {
  top?: number;
  div?: number;
}
