/**
 * Map operations per second from TypeScript, the VM's maps beside the kernel's (bpf(2) per
 * operation through the FFI), measured in the same run: `node dist/bench/maps.js` (after
 * `npm run build`). Hash and array maps, u32 keys, 8-byte values, 1024 entries, lookups and
 * updates of existing keys. Without BPF the kernel columns say "n/a". Options: --quick, --json.
 */

import { KernelMap } from '../src/kernel/map.js';
import { bpfAvailable } from '../src/kernel/program.js';
import type { BpfMap } from '../src/maps.js';
import { MapRuntime } from '../src/vm/maps/index.js';

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const ENTRIES = 1024;
const TARGET_MS = quick ? 100 : 400;

const keys = Array.from({ length: ENTRIES }, (_, i) => {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, i, true);
  return k;
});
const value = new Uint8Array(8).fill(7);

/** Operations per second of `op` over the keys, for about TARGET_MS after a warm-up. */
function opsPerSecond(op: (i: number) => void): number {
  for (let i = 0; i < 20_000; i++) op(i & (ENTRIES - 1));
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < TARGET_MS) {
    for (let i = 0; i < 10_000; i++) op((n + i) & (ENTRIES - 1));
    n += 10_000;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return (n / elapsed) * 1000;
}

function measure(m: BpfMap): { lookup: number; update: number } {
  for (const k of keys) m.update(k, value);
  return {
    lookup: opsPerSecond((i) => m.lookup(keys[i])),
    update: opsPerSecond((i) => m.update(keys[i], value)),
  };
}

const rt = new MapRuntime();
const avail = bpfAvailable();
const rows: { map: string; op: string; vm: number; kernel: number | undefined }[] = [];
for (const type of ['hash', 'array'] as const) {
  const spec = { name: `bench_${type}`, type, keySize: 4, valueSize: 8, maxEntries: ENTRIES };
  const vm = measure(rt.create(spec));
  let kernel: { lookup: number; update: number } | undefined;
  if (avail.ok) {
    const km = KernelMap.create(spec);
    try {
      kernel = measure(km);
    } finally {
      km.close();
    }
  }
  for (const op of ['lookup', 'update'] as const)
    rows.push({ map: type, op, vm: vm[op], kernel: kernel?.[op] });
}
rt.close();

if (json) {
  console.log(JSON.stringify({ entries: ENTRIES, kernel: avail.ok ? 'ok' : avail.reason, rows }, null, 2));
} else {
  const fmt = (n: number | undefined) => (n === undefined ? 'n/a' : `${(n / 1e6).toFixed(2)} M/s`);
  const lines = [['map', 'op', 'VM', 'kernel (bpf(2))', 'VM / kernel']];
  for (const r of rows) {
    lines.push([
      r.map,
      r.op,
      fmt(r.vm),
      fmt(r.kernel),
      r.kernel ? `${(r.vm / r.kernel).toFixed(1)}x` : 'n/a',
    ]);
  }
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  for (const l of lines)
    console.log(l.map((x, c) => (c < 2 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  '));
  if (!avail.ok) console.log(`kernel: n/a (${avail.reason})`);
  console.log(`${ENTRIES} entries, u32 keys, 8-byte values; from TypeScript, one operation per call.`);
}
