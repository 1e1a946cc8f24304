/**
 * bpftrace's two output formats (v0.17's TextOutput and JsonOutput), as pure functions from decoded values to
 * text. Every function returns the exact bytes bpftrace writes, newlines included.
 *
 * Map printing: count/sum/plain-integer maps are sorted by value, min/max by value, hist/lhist by the sum of
 * their buckets, avg/stats by the average, anything else by key (integers as unsigned, strings as bytes, the
 * last key element first, stable). Histograms print from the first to the last non-empty bucket with a 52
 * column bar scaled to the largest bucket.
 *
 * Where bpftrace's runtime test corpus expects a newer bpftrace than v0.17, the corpus wins: enum values
 * print their constant, stats print as `{ .count = 3, .average = 2, .total = 6 }`, a histogram's `@h:` line
 * has no trailing space, JSON records have no inner padding.
 */
import { hexFormatBuffer } from './printf.js';
import { tseriesSeries, tseriesToJson, tseriesToText } from './tseries.js';
import type { MapEntry, MapValue, PrintableMap, PrintOptions, Value } from './values.js';

export type OutputFormat = 'text' | 'json';

// ---------------------------------------------------------------------------------------------------------
// Values

/** A value as bpftrace's text output prints it (map values, print(), tuple elements, keys). */
export function valueToText(v: Value): string {
  switch (v.kind) {
    case 'int':
      return v.symbol ?? v.value.toString();
    case 'bool':
      return v.value ? 'true' : 'false';
    case 'string':
      return v.value;
    case 'buffer':
      return hexFormatBuffer(v.bytes);
    case 'pointer':
      return `0x${BigInt.asUintN(64, v.value).toString(16)}`;
    case 'tuple':
      return `(${v.elems.map(valueToText).join(', ')})`;
    case 'array':
      return `[${v.elems.map(valueToText).join(',')}]`;
    case 'record':
      return `{ ${v.fields.map((f) => `.${f.name} = ${valueToText(f.value)}`).join(', ')} }`;
    case 'text':
      return v.text;
  }
}

/** JSON string escaping as bpftrace does it (control characters as \uXXXX, \n \r \t by name). */
export function jsonEscape(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i];
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c <= 0x1f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}

/** A value as bpftrace's JSON output prints it: strings quoted, tuples as arrays. */
export function valueToJson(v: Value): string {
  switch (v.kind) {
    case 'int':
      return v.value.toString();
    case 'pointer':
      return BigInt.asUintN(64, v.value).toString();
    case 'string':
      return `"${jsonEscape(v.value)}"`;
    case 'buffer':
      return `"${jsonEscape(hexFormatBuffer(v.bytes))}"`;
    case 'text':
      return v.quoted ? `"${jsonEscape(v.text)}"` : v.text;
    case 'tuple':
      return `[${v.elems.map(valueToJson).join(',')}]`;
    case 'array':
      return `[${v.elems.map(valueToJson).join(',')}]`;
    case 'record':
      return `{${v.fields.map((f) => `"${f.name}": ${valueToJson(f.value)}`).join(', ')}}`;
    default:
      return valueToText(v);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Histograms

const BAR = 52;

/** bpftrace's bar: `int bar_width = value / (float)max * 52` (single-precision float, truncated). */
function barWidth(value: bigint, max: bigint): number {
  if (max === 0n) return 0;
  const ratio = Math.fround(Math.fround(Number(value)) / Math.fround(Number(max)));
  return Math.trunc(Math.fround(ratio * BAR));
}

function histRow(label: string, value: bigint, max: bigint, shown: bigint): string {
  const bar = '@'.repeat(barWidth(value, max));
  return `${label.padEnd(16)}${shown.toString().padStart(8)} |${bar.padEnd(BAR)}|\n`;
}

/** `1`, `2`, ... `512`, `1K`, ... for hist() bucket bounds (a power of two). */
export function histIndexLabel(power: number): string {
  let suffix = '';
  if (power >= 40) {
    suffix = 'T';
    power -= 40;
  } else if (power >= 30) {
    suffix = 'G';
    power -= 30;
  } else if (power >= 20) {
    suffix = 'M';
    power -= 20;
  } else if (power >= 10) {
    suffix = 'K';
    power -= 10;
  }
  return `${2 ** power}${suffix}`;
}

/** lhist() bucket bounds: `0`, `5`, `1K` (multiples of 1024), `1M`. */
export function lhistIndexLabel(n: number): string {
  if (n === 0) return '0';
  if (n % 1048576 === 0) return `${n / 1048576}M`;
  if (n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}

function histRange(buckets: readonly bigint[]): { first: number; last: number; max: bigint } {
  let first = -1;
  let last = -1;
  let max = 0n;
  buckets.forEach((v, i) => {
    if (v > 0n) {
      if (first === -1) first = i;
      last = i;
    }
    if (v > max) max = v;
  });
  return { first, last, max };
}

/** Lower bound of hist bucket `i` with `k` bits of sub-buckets (index 0 is the negative bucket). */
function histLow(i: number, k: number): bigint {
  const n = 1n << BigInt(k);
  const idx = BigInt(i) - 1n;
  if (idx < n) return idx;
  const l = (idx >> BigInt(k)) - 1n;
  return (n + (idx & (n - 1n))) << l;
}

/** A bucket bound with bpftrace's K/M/G/T suffixes for exact multiples of 1024. */
function boundLabel(v: bigint): string {
  const suffixes = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  let s = 0;
  while (v >= 1024n && v % 1024n === 0n && s < suffixes.length - 1) {
    v /= 1024n;
    s++;
  }
  return `${v}${suffixes[s]}`;
}

function histLabel(i: number, k: number): string {
  if (i === 0) return '(..., 0)';
  const low = histLow(i, k);
  const high = histLow(i + 1, k);
  if (high - low === 1n) return `[${boundLabel(low)}]`;
  return `[${boundLabel(low)}, ${boundLabel(high)})`;
}

/** hist() buckets as text rows (empty string when every bucket is empty); `k` is hist(x, k)'s second argument. */
export function histToText(buckets: readonly bigint[], div = 1, k = 0): string {
  const { first, last, max } = histRange(buckets);
  if (last === -1) return '';
  const d = BigInt(div || 1);
  let out = '';
  for (let i = first; i <= last; i++) {
    const label =
      k === 0 && i >= 3 ? `[${histIndexLabel(i - 2)}, ${histIndexLabel(i - 1)})` : histLabel(i, k);
    out += histRow(label, buckets[i] ?? 0n, max, (buckets[i] ?? 0n) / d);
  }
  return out;
}

function lhistBucketCount(p: { min: number; max: number; step: number }): number {
  return Math.trunc((p.max - p.min) / p.step);
}

function lhistRange(buckets: readonly bigint[], n: number): { first: number; last: number; max: bigint } {
  let first = -1;
  let last = 0;
  let max = 0n;
  let any = false;
  buckets.forEach((v) => {
    if (v !== 0n) any = true;
    if (v > max) max = v;
  });
  if (!any) return { first: -1, last: -1, max };
  for (let i = 0; i <= n + 1; i++) {
    if ((buckets[i] ?? 0n) > 0n) {
      if (first === -1) first = i;
      last = i;
    }
  }
  if (first === -1) first = 0;
  return { first, last, max };
}

/** lhist() buckets as text rows. */
export function lhistToText(
  buckets: readonly bigint[],
  p: { min: number; max: number; step: number },
): string {
  const n = lhistBucketCount(p);
  const { first, last, max } = lhistRange(buckets, n);
  if (first === -1) return '';
  let out = '';
  for (let i = first; i <= last; i++) {
    let label: string;
    if (i === 0) label = `(..., ${lhistIndexLabel(p.min)})`;
    else if (i === n + 1) label = `[${lhistIndexLabel(p.max)}, ...)`;
    else label = `[${lhistIndexLabel((i - 1) * p.step + p.min)}, ${lhistIndexLabel(i * p.step + p.min)})`;
    const v = buckets[i] ?? 0n;
    out += histRow(label, v, max, v);
  }
  return out;
}

export function histToJson(buckets: readonly bigint[], div = 1, k = 0): string {
  const { first, last } = histRange(buckets);
  if (last === -1) return '[]';
  const d = BigInt(div || 1);
  const parts: string[] = [];
  for (let i = first; i <= last; i++) {
    const range = i === 0 ? '"max": -1, ' : `"min": ${histLow(i, k)}, "max": ${histLow(i + 1, k) - 1n}, `;
    parts.push(`{${range}"count": ${(buckets[i] ?? 0n) / d}}`);
  }
  return `[${parts.join(', ')}]`;
}

export function lhistToJson(
  buckets: readonly bigint[],
  p: { min: number; max: number; step: number },
): string {
  const n = lhistBucketCount(p);
  const { first, last } = lhistRange(buckets, n);
  if (first === -1) return '[]';
  const parts: string[] = [];
  for (let i = first; i <= last; i++) {
    let range: string;
    if (i === 0) range = `"max": ${p.min - 1}, `;
    else if (i === n + 1) range = `"min": ${p.max}, `;
    else range = `"min": ${(i - 1) * p.step + p.min}, "max": ${i * p.step + p.min - 1}, `;
    parts.push(`{${range}"count": ${buckets[i] ?? 0n}}`);
  }
  return `[${parts.join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------------------
// Sorting

function scalarOf(v: MapValue): bigint {
  if (v.kind === 'scalar') {
    const x = v.value;
    if (x.kind === 'int' || x.kind === 'pointer') return x.value;
    if (x.kind === 'bool') return x.value ? 1n : 0n;
    return 0n;
  }
  if (v.kind === 'stats') return v.count === 0n ? 0n : v.total / v.count;
  if (v.kind === 'tseries') return 0n;
  return v.buckets.reduce((a, b) => a + b, 0n);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Key bytes as bpftrace stores them (little-endian integers, NUL-terminated strings), for ordering. */
function encodeKey(key: readonly Value[]): Uint8Array {
  const parts: number[] = [];
  const put = (v: Value): void => {
    switch (v.kind) {
      case 'int':
      case 'pointer': {
        const bits = v.kind === 'int' ? (v.bits ?? 64) : 64;
        let n = BigInt.asUintN(bits, v.value);
        for (let i = 0; i < bits / 8; i++) {
          parts.push(Number(n & 0xffn));
          n >>= 8n;
        }
        break;
      }
      case 'bool':
        parts.push(v.value ? 1 : 0);
        break;
      case 'string':
        for (const b of Buffer.from(v.value)) parts.push(b);
        parts.push(0);
        break;
      case 'tuple':
      case 'array':
        for (const e of v.elems) put(e);
        break;
      case 'record':
        for (const f of v.fields) put(f.value);
        break;
      default:
        break;
    }
  };
  for (const k of key) put(k);
  return Uint8Array.from(parts);
}

function compareKeyElem(a: Value | undefined, b: Value | undefined): number {
  if (!a || !b) return 0;
  if (a.kind === 'int' && b.kind === 'int') {
    const ua = BigInt.asUintN(a.bits ?? 64, a.value);
    const ub = BigInt.asUintN(b.bits ?? 64, b.value);
    return ua < ub ? -1 : ua > ub ? 1 : 0;
  }
  if (a.kind === 'string' && b.kind === 'string')
    return compareBytes(Buffer.from(a.value), Buffer.from(b.value));
  return 0;
}

function stableSort<T>(items: T[], cmp: (a: T, b: T) => number): T[] {
  return items
    .map((item, i) => ({ item, i }))
    .sort((a, b) => cmp(a.item, b.item) || a.i - b.i)
    .map((x) => x.item);
}

/** sort_by_key: the last key element first, each pass stable, so the first element decides. */
function byKey(entries: MapEntry[]): MapEntry[] {
  let out = entries;
  const width = entries[0]?.key.length ?? 0;
  for (let i = width - 1; i >= 0; i--) out = stableSort(out, (a, b) => compareKeyElem(a.key[i], b.key[i]));
  return out;
}

/** The entries in the order bpftrace prints them. */
export function sortEntries(map: PrintableMap): MapEntry[] {
  const entries = [...map.entries];
  switch (map.kind) {
    case 'count':
    case 'sum':
    case 'min':
    case 'max':
      // Ties keep the key order (bpftrace keeps the kernel's iteration order, which is not reproducible).
      return stableSort(byKey(entries), (a, b) => cmpBig(scalarOf(a.value), scalarOf(b.value)));
    case 'plain': {
      const first = entries[0]?.value;
      if (first?.kind === 'scalar' && (first.value.kind === 'int' || first.value.kind === 'bool')) {
        const signed = first.value.kind === 'int' ? first.value.signed !== false : false;
        return stableSort(byKey(entries), (a, b) => {
          const x = scalarOf(a.value);
          const y = scalarOf(b.value);
          return signed ? cmpBig(x, y) : cmpBig(BigInt.asUintN(64, x), BigInt.asUintN(64, y));
        });
      }
      return byKey(entries);
    }
    case 'avg':
    case 'stats':
    case 'hist':
    case 'lhist': {
      // std::map by key bytes, then sorted by the total (or the average).
      const byKey = stableSort(entries, (a, b) =>
        compareBytes(a.keyBytes ?? encodeKey(a.key), b.keyBytes ?? encodeKey(b.key)),
      );
      return stableSort(byKey, (a, b) => cmpBig(scalarOf(a.value), scalarOf(b.value)));
    }
    case 'tseries':
      // A std::map by key bytes, not sorted by value.
      return stableSort(entries, (a, b) =>
        compareBytes(a.keyBytes ?? encodeKey(a.key), b.keyBytes ?? encodeKey(b.key)),
      );
  }
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function applyTop<T>(items: T[], top: number | undefined): T[] {
  if (!top || items.length <= top) return items;
  return items.slice(items.length - top);
}

// ---------------------------------------------------------------------------------------------------------
// Maps

function keyText(map: PrintableMap, key: readonly Value[]): string {
  return key.length === 0 ? map.name : `${map.name}[${key.map(valueToText).join(', ')}]`;
}

function statsValue(v: MapValue): { count: bigint; total: bigint; average: bigint } {
  if (v.kind !== 'stats') return { count: 0n, total: 0n, average: 0n };
  return { count: v.count, total: v.total, average: v.count === 0n ? 0n : v.total / v.count };
}

function scalarText(map: PrintableMap, v: MapValue, div: bigint, json: boolean): string {
  if (v.kind !== 'scalar') return '';
  const x = v.value;
  if (x.kind === 'int' && div !== 1n) return (x.value / div).toString();
  void map;
  return json ? valueToJson(x) : valueToText(x);
}

/** A map as bpftrace's text output prints it, at exit or by print(@map, top, div). */
export function mapToText(map: PrintableMap, options: PrintOptions = {}): string {
  const div = BigInt(options.div || 1);
  if (map.kind === 'tseries') {
    // bpftrace ignores top and div for time series.
    const entries = sortEntries(map);
    const series = tseriesSeries(map, entries);
    return entries
      .map((e, i) => `${keyText(map, e.key)}:\n${tseriesToText(series[i] ?? [], map.signed === true)}\n`)
      .join('');
  }
  const entries = applyTop(sortEntries(map), options.top);
  switch (map.kind) {
    case 'hist':
    case 'lhist': {
      const parts = entries.map((e) => {
        const buckets = e.value.kind === 'buckets' ? e.value.buckets : [];
        const body =
          map.kind === 'hist'
            ? histToText(buckets, options.div, map.histBits ?? 0)
            : lhistToText(buckets, map.lhist ?? { min: 0, max: 0, step: 1 });
        return `${keyText(map, e.key)}:\n${body}`;
      });
      return `${parts.join('\n')}\n`;
    }
    case 'avg':
    case 'stats': {
      const parts = entries.map((e) => {
        const s = statsValue(e.value);
        const text =
          map.kind === 'stats'
            ? `{ .count = ${s.count}, .average = ${s.average}, .total = ${s.total} }`
            : `${s.average / div}`;
        return `${keyText(map, e.key)}: ${text}`;
      });
      return `${parts.join('\n')}\n\n`;
    }
    default: {
      const parts = entries.map((e) => `${keyText(map, e.key)}: ${scalarText(map, e.value, div, false)}`);
      // Stacks, symbols and addresses carry their own line ends.
      const first = entries[0]?.value;
      const delim =
        first?.kind === 'scalar' && first.value.kind === 'text' && first.value.text.startsWith('\n')
          ? ''
          : '\n';
      return `${parts.join(delim)}\n`;
    }
  }
}

/** A map as one line of bpftrace's JSON output (empty string for an empty map, as bpftrace prints nothing). */
export function mapToJson(map: PrintableMap, options: PrintOptions = {}): string {
  const div = BigInt(options.div || 1);
  const entries = applyTop(sortEntries(map), options.top);
  if (entries.length === 0) return '';
  const keyJson = (key: readonly Value[]): string =>
    key.length === 0 ? '' : `"${jsonEscape(key.map(valueToText).join(','))}"`;
  const kv = (key: readonly Value[], val: string): string => {
    const k = keyJson(key);
    return k === '' ? val : `${k}: ${val}`;
  };
  let type: string;
  let body: string[];
  switch (map.kind) {
    case 'hist':
    case 'lhist':
      type = 'hist';
      body = entries.map((e) => {
        const buckets = e.value.kind === 'buckets' ? e.value.buckets : [];
        return kv(
          e.key,
          map.kind === 'hist'
            ? histToJson(buckets, options.div, map.histBits ?? 0)
            : lhistToJson(buckets, map.lhist ?? { min: 0, max: 0, step: 1 }),
        );
      });
      break;
    case 'tseries': {
      type = 'tseries';
      const series = tseriesSeries(map, entries);
      body = entries.map((e, i) => kv(e.key, tseriesToJson(series[i] ?? [])));
      break;
    }
    case 'avg':
    case 'stats':
      type = 'stats';
      body = entries.map((e) => {
        const s = statsValue(e.value);
        return kv(
          e.key,
          map.kind === 'stats'
            ? `{"count": ${s.count}, "average": ${s.average}, "total": ${s.total}}`
            : `${s.average / div}`,
        );
      });
      break;
    default:
      type = 'map';
      body = entries.map((e) => kv(e.key, scalarText(map, e.value, div, true)));
  }
  const inner = body.join(', ');
  return `{"type": "${type}", "data": {"${jsonEscape(map.name)}": ${map.keyed ? `{${inner}}` : inner}}}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// Messages

/**
 * The sink of everything a running script prints, in one of bpftrace's two formats. Methods return the text;
 * `write` gets it.
 */
export class Output {
  constructor(
    readonly format: OutputFormat,
    readonly write: (text: string) => void,
  ) {}

  /**
   * Printed once every probe is attached, in the form of the newer bpftrace the runtime corpus is written for
   * (`Attached 1 probe`; v0.17 printed `Attaching N probes...` before attaching).
   */
  attachedProbes(n: number): void {
    if (this.format === 'json')
      this.write(`{"type": "attached_probes", "count": ${n}, "data": {"probes": ${n}}}\n`);
    else this.write(`Attached ${n} ${n === 1 ? 'probe' : 'probes'}\n`);
  }

  lostEvents(n: number | bigint): void {
    if (this.format === 'json') this.write(`{"type": "lost_events", "data": {"events": ${n}}}\n`);
    else this.write(`Lost ${n} events\n`);
  }

  /** printf(), time(), cat(), system() output: `type` names the JSON message. */
  message(type: 'printf' | 'time' | 'cat' | 'syscall' | 'join', text: string, newline = false): void {
    if (this.format === 'json') this.write(`{"type": "${type}", "data": "${jsonEscape(text)}"}\n`);
    else this.write(newline ? `${text}\n` : text);
  }

  /** print(value) of a non-map value. */
  value(v: Value): void {
    if (this.format === 'json') this.write(`{"type": "value", "data": ${valueToJson(v)}}\n`);
    else this.write(`${valueToText(v)}\n`);
  }

  map(map: PrintableMap, options: PrintOptions = {}): void {
    this.write(this.format === 'json' ? mapToJson(map, options) : mapToText(map, options));
  }

  /** What bpftrace prints when the script ends: a blank line pair, then every map by name. */
  exitMaps(maps: readonly PrintableMap[], printMaps = true): void {
    this.write('\n\n');
    if (!printMaps) return;
    const sorted = [...maps].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const m of sorted) this.map(m);
  }
}
