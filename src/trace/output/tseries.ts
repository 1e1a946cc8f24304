/**
 * tseries() maps as bpftrace prints them: a vertical chart per key (one row per interval, the value's `*`
 * placed between the series' min and max) in text, and `[{"interval_start": ..., "value": ...}]` in JSON.
 *
 * Which intervals show: the window is the `numIntervals` epochs ending at the newest epoch of ANY key of
 * the map (so a key that stopped updating shows `-` for the recent intervals); each key starts at its own
 * oldest epoch in that window. An interval with no value prints `-` (JSON null).
 */
import type { MapEntry, PrintableMap } from './values.js';

const GRAPH_WIDTH = 53;
/** Width of the min label, left-aligned; the max label is right-aligned in the rest of the graph. */
const LABEL_PADDING = 21;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** One interval of a series: its start (epoch × interval, ns since the Unix epoch) and value, if any. */
export interface TseriesRow {
  startNs: bigint;
  value: bigint | undefined;
}

/** The epochs every key of the map shows: [last - numIntervals + 1, last], in u64 arithmetic like bpftrace. */
export function tseriesWindow(map: PrintableMap): { first: bigint; last: bigint } | undefined {
  let last: bigint | undefined;
  for (const e of map.entries) {
    if (e.value.kind !== 'tseries') continue;
    let newest = 0n;
    for (const p of e.value.points) if (p.epoch > newest) newest = p.epoch;
    if (last === undefined || newest > last) last = newest;
  }
  if (last === undefined) return undefined;
  const n = map.tseries?.numIntervals ?? 1n;
  // bpftrace's unsigned subtraction wraps when fewer epochs than intervals exist: the window is then empty.
  return { first: BigInt.asUintN(64, last - n + 1n), last };
}

/** The rows one key prints within `window` (from its oldest point in the window to the window's end). */
export function tseriesRows(
  entry: MapEntry,
  window: { first: bigint; last: bigint },
  intervalNs: bigint,
): TseriesRow[] {
  if (entry.value.kind !== 'tseries') return [];
  const values = new Map<bigint, bigint>();
  let start = window.last;
  for (const p of entry.value.points) {
    // The first point of an epoch wins (only never-written buckets share one: epoch 0, value 0).
    if (!values.has(p.epoch)) values.set(p.epoch, p.value);
    if (p.epoch >= window.first && p.epoch < start) start = p.epoch;
  }
  const rows: TseriesRow[] = [];
  for (let epoch = window.first; epoch <= window.last; epoch++) {
    if (epoch < start) continue;
    rows.push({ startNs: epoch * intervalNs, value: values.get(epoch) });
  }
  return rows;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local time of `ns` since the Unix epoch with `strftime` fields (%Y-%m-%d, %H:%M:%S). */
function localParts(ns: bigint): { date: string; time: string; fraction: bigint } {
  const secs = ns / 1_000_000_000n;
  const d = new Date(Number(secs) * 1000);
  return {
    date: `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`,
    time: `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`,
    fraction: ns - secs * 1_000_000_000n,
  };
}

/** bpftrace's duration_str: the largest of s, ms, μs, ns not above `ns`, as (name, digits, scale). */
function displayUnit(ns: bigint): { name: string; digits: number; scale: bigint } {
  if (ns >= 1_000_000_000n) return { name: 's', digits: 0, scale: 1_000_000_000n };
  if (ns >= 1_000_000n) return { name: 'ms', digits: 3, scale: 1_000_000n };
  if (ns >= 1_000n) return { name: 'μs', digits: 6, scale: 1_000n };
  return { name: 'ns', digits: 9, scale: 1n };
}

/** std::setw on a byte string: pads to `width` bytes (the μ of "μs" is two). */
function padEndBytes(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - Buffer.byteLength(s)));
}

/** (v - min) as bpftrace's float math sees it (an int64 difference). */
function distance(from: bigint, to: bigint): number {
  return Math.fround(Number(BigInt.asIntN(64, to - from)));
}

/** `static_cast<float>(a) * static_cast<float>(b) / static_cast<float>(c)`, truncated to int. */
function scaled(a: number, b: number, c: number): number {
  return Math.trunc(Math.fround(Math.fround(Math.fround(a) * b) / c));
}

/** The chart of one series (every line ends with a newline), or `<no data>` without one. */
export function tseriesToText(rows: readonly TseriesRow[], signed: boolean): string {
  if (rows.length === 0) return '<no data>';
  let min: bigint | undefined;
  let max: bigint | undefined;
  for (const r of rows) {
    if (r.value === undefined) continue;
    if (min === undefined || r.value < min) min = r.value;
    if (max === undefined || r.value > max) max = r.value;
  }
  // The first row always has a value; guard anyway so that a gap-only series still prints.
  min ??= 0n;
  max ??= 0n;
  if (min === max) {
    // Leave room on both sides of a flat series, without overflowing the type.
    if (min > (signed ? I64_MIN : 0n)) min--;
    if (max < (signed ? I64_MAX : U64_MAX)) max++;
  }
  const first = rows[0] as TseriesRow;
  const lastRow = rows[rows.length - 1] as TseriesRow;
  const interval = (lastRow.startNs - first.startNs) / BigInt(rows.length > 1 ? rows.length - 1 : 1);
  const unit = displayUnit(interval);
  const timeFmt = unit.digits === 0 ? 'hh:mm:ss' : `hh:mm:ss.${unit.name}`;
  const timeSize = 8 + (unit.digits === 0 ? 0 : 1 + unit.digits);
  const labels = (lead: number): string =>
    `${' '.repeat(lead)}${min.toString().padEnd(LABEL_PADDING)}${max
      .toString()
      .padStart(GRAPH_WIDTH - LABEL_PADDING)}\n`;

  let out = labels(timeSize + 1);
  out += `${padEndBytes(timeFmt, timeSize + 1)}|${'_'.repeat(GRAPH_WIDTH - 2)}|\n`;
  const span = distance(min, max);
  const zeroOffset = min < 0n && max > 0n ? scaled(GRAPH_WIDTH, distance(min, 0n), span) : 0;
  for (const r of rows) {
    const t = localParts(r.startNs);
    let time = t.time;
    if (unit.digits > 0) time += `.${(t.fraction / unit.scale).toString().padStart(unit.digits, '0')}`;
    const line = new Array<string>(GRAPH_WIDTH).fill(' ');
    line[0] = '|';
    line[GRAPH_WIDTH - 1] = '|';
    if (zeroOffset > 0) line[zeroOffset] = '.';
    if (r.value === undefined) {
      out += `${time} ${line.join('')} -\n`;
      continue;
    }
    let at = Math.trunc(GRAPH_WIDTH / 2);
    if (min !== max) at = scaled(GRAPH_WIDTH - 1, distance(min, r.value), span);
    line[Math.max(0, Math.min(GRAPH_WIDTH - 1, at))] = '*';
    out += `${time} ${line.join('')} ${r.value}\n`;
  }
  out += `${' '.repeat(timeSize)} v${'_'.repeat(GRAPH_WIDTH - 2)}v\n`;
  out += labels(timeSize + 1);
  return out;
}

/**
 * One series as bpftrace's JSON: interval starts as local `YYYY-MM-DD HH:MM:SS.nnnnnnnnn`; intervals
 * without a value are left out (the text chart shows them as `-`).
 */
export function tseriesToJson(rows: readonly TseriesRow[]): string {
  const parts: string[] = [];
  for (const r of rows) {
    if (r.value === undefined) continue;
    const t = localParts(r.startNs);
    const start = `${t.date} ${t.time}.${t.fraction.toString().padStart(9, '0')}`;
    parts.push(`{"interval_start": "${start}", "value": ${r.value}}`);
  }
  return `[${parts.join(', ')}]`;
}

/** Every key's rows, in the order given, against the map-wide window. */
export function tseriesSeries(map: PrintableMap, entries: readonly MapEntry[]): TseriesRow[][] {
  const window = tseriesWindow(map);
  const intervalNs = map.tseries?.intervalNs ?? 1n;
  return entries.map((e) => (window ? tseriesRows(e, window, intervalNs) : []));
}
