/**
 * The VM's test runs beside the kernel's: `node dist/bench/vm.js` (after `npm run build`).
 *
 * For each XDP program (and one TC program), ns per packet through `testRun({ repeat })` in the VM
 * (the JIT, or --engine interp) and through BPF_PROG_TEST_RUN in the kernel, same object, same packet,
 * same repeat, measured in the same run; the ratio is VM / kernel. Without BPF the kernel column says
 * why. Options: --quick, --json, --engine interp|jit.
 */
import type { Collection } from '../src/backend.js';
import { kernelBackend } from '../src/kernel/collection.js';
import { bpfAvailable } from '../src/kernel/program.js';
import { readObject } from '../src/object/spec.js';
import { vmBackend } from '../src/vm/backend.js';
import { loadFixture } from '../test/support/fixtures.js';
import { ipv4Packet } from '../test/support/packets.js';

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const ei = process.argv.indexOf('--engine');
const engine = (ei >= 0 ? process.argv[ei + 1] : 'jit') as 'interp' | 'jit';
const REPEAT = quick ? 2_000 : 50_000;

const CASES: { object: string; program: string; setup?: (c: Collection) => void }[] = [
  { object: 'progtypes', program: 'p_xdp_a' },
  { object: 'xdp_parser', program: 'xdp_count_proto' },
  {
    object: 'xdp_blocklist',
    program: 'xdp_blocklist',
    setup: (c) => c.map('blocked').update(Uint8Array.of(10, 9, 9, 9), new Uint8Array(8)),
  },
  { object: 'xdp_proto_stats', program: 'xdp_proto_stats' },
  { object: 'tail_chain', program: 'chain_entry' },
  { object: 'tc_classifier', program: 'tc_classify' },
];

function perPacket(c: Collection, program: string, data: Uint8Array): number {
  const p = c.program(program);
  p.testRun({ data, repeat: Math.min(REPEAT, 1000) }); // warm up
  return p.testRun({ data, repeat: REPEAT }).durationNs;
}

const bpf = bpfAvailable();
const rows: { program: string; vmNs: number; kernelNs: number | string; ratio: number | string }[] = [];
for (const c of CASES) {
  const spec = () => readObject(loadFixture(c.object), { path: `${c.object}.o` });
  const data = ipv4Packet({ payload: 64 });
  const vm = vmBackend({ engine }).load(spec(), { programs: [c.program] });
  c.setup?.(vm);
  const vmNs = perPacket(vm, c.program, data);
  vm.close();
  let kernelNs: number | string = bpf.ok ? 0 : `n/a: ${bpf.reason}`;
  if (bpf.ok) {
    const k = kernelBackend.load(spec(), { programs: [c.program] });
    try {
      c.setup?.(k);
      kernelNs = perPacket(k, c.program, data);
    } catch (e) {
      kernelNs = `n/a: ${(e as Error).message}`;
    } finally {
      k.close();
    }
  }
  const ratio = typeof kernelNs === 'number' && kernelNs > 0 ? vmNs / kernelNs : '-';
  rows.push({ program: `${c.object}/${c.program}`, vmNs, kernelNs, ratio });
}

if (json) {
  console.log(JSON.stringify({ engine, repeat: REPEAT, rows }, null, 2));
} else {
  const w = Math.max(...rows.map((r) => r.program.length), 7);
  console.log(`testRun ns per packet, repeat ${REPEAT}, VM engine ${engine}`);
  console.log(`${'program'.padEnd(w)}  ${'VM ns'.padStart(9)}  ${'kernel ns'.padStart(9)}  ratio`);
  for (const r of rows) {
    const k = typeof r.kernelNs === 'number' ? r.kernelNs.toString().padStart(9) : r.kernelNs;
    const ratio = typeof r.ratio === 'number' ? `${r.ratio.toFixed(1)}x` : r.ratio;
    console.log(`${r.program.padEnd(w)}  ${r.vmNs.toString().padStart(9)}  ${k}  ${ratio}`);
  }
}
