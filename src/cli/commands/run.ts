/**
 * `tsbpf run`: loads an object into the VM and runs one of its packet programs through testRun, on
 * one packet (--data) or on every packet of a pcap/pcapng file (--pcap), like BPF_PROG_TEST_RUN.
 */

import { TsbpfError } from '../../errors.js';
import { toHex } from '../../hex.js';
import type { BpfMap } from '../../maps.js';
import { readObject } from '../../object/spec.js';
import { type VmCollection, vmBackend } from '../../vm/backend.js';
import { DEFAULT_ENGINE, parseEngine } from '../../vm/engine.js';
import { readCapture, writePcap } from '../../vm/pcap.js';
import { type Command, helpOption, parseCommandArgs } from '../command.js';
import { readInput, writeOutput } from '../files.js';

const XDP_ACTIONS = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'];
const TC_ACTIONS: Record<number, string> = {
  [-1]: 'TC_ACT_UNSPEC',
  0: 'TC_ACT_OK',
  1: 'TC_ACT_RECLASSIFY',
  2: 'TC_ACT_SHOT',
  3: 'TC_ACT_PIPE',
  4: 'TC_ACT_STOLEN',
  5: 'TC_ACT_QUEUED',
  6: 'TC_ACT_REPEAT',
  7: 'TC_ACT_REDIRECT',
  8: 'TC_ACT_TRAP',
};

/** The name of a program's verdict: an XDP/TC action, a socket filter's keep/drop, a cgroup verdict. */
export function verdictName(type: string, retval: number): string {
  if (type === 'xdp') return XDP_ACTIONS[retval] ?? `unknown (${retval})`;
  if (type === 'sched_cls' || type === 'sched_act')
    return TC_ACTIONS[retval | 0] ?? `unknown (${retval | 0})`;
  if (type === 'socket_filter') return retval === 0 ? 'drop' : 'keep';
  if (type === 'cgroup_skb') return retval & 1 ? 'allow' : 'deny';
  return String(retval);
}

/** bpftool's fprint_hex: bytes separated by spaces, two spaces after 8, a new line after 16. */
function fprintHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    if (i === 0) s += '';
    else if (i % 16 === 0) s += '\n';
    else if (i % 8 === 0) s += '  ';
    else s += ' ';
    s += b[i].toString(16).padStart(2, '0');
  }
  return s;
}

/** A map's contents as `bpftool map dump` prints them for a map without BTF. */
export function bpftoolDump(m: BpfMap): string {
  let out = '';
  let n = 0;
  const entries: [Uint8Array, Uint8Array][] = [];
  if (['ringbuf', 'perf_event_array', 'queue', 'stack', 'bloom_filter', 'prog_array'].includes(m.typeName)) {
    return m.typeName === 'prog_array' ? progArrayDump(m) : `Error: can't dump ${m.typeName} map\n`;
  }
  for (const k of m.keys()) {
    const v = m.lookup(k);
    if (v) entries.push([k, v]);
  }
  for (const [key, value] of entries) {
    n++;
    if (!m.perCpu) {
      const breakNames = m.keySize > 16 || m.valueSize > 16;
      const single = m.keySize + m.valueSize <= 24 && !breakNames;
      if (m.keySize) out += `key:${breakNames ? '\n' : ' '}${fprintHex(key)}${single ? '  ' : '\n'}`;
      if (m.valueSize) out += `value:${breakNames ? '\n' : ' '}${fprintHex(value)}`;
      out += '\n';
    } else {
      const step = (m.valueSize + 7) & ~7;
      if (m.keySize) out += `key:\n${fprintHex(key)}\n`;
      for (let c = 0; c < m.cpus; c++) {
        out += `value (CPU ${c.toString().padStart(2, '0')}):${m.valueSize > 16 ? '\n' : ' '}${fprintHex(value.subarray(c * step, c * step + m.valueSize))}\n`;
      }
    }
  }
  return `${out}Found ${n} element${n === 1 ? '' : 's'}\n`;
}

function progArrayDump(m: BpfMap): string {
  let out = '';
  let n = 0;
  for (const k of m.keys()) {
    const v = m.lookup(k);
    if (!v) continue;
    n++;
    out += `key: ${fprintHex(k)}  value: ${fprintHex(v)}\n`;
  }
  return `${out}Found ${n} element${n === 1 ? '' : 's'}\n`;
}

/** bpftool -j map dump: [{ key: ["0x06", ...], value: [...] }] (per-CPU: values: [{ cpu, value }]). */
export function bpftoolDumpJson(m: BpfMap): unknown[] {
  const hexes = (b: Uint8Array) => Array.from(b, (x) => `0x${x.toString(16).padStart(2, '0')}`);
  const out: unknown[] = [];
  if (['ringbuf', 'perf_event_array', 'queue', 'stack', 'bloom_filter'].includes(m.typeName)) return out;
  for (const k of m.keys()) {
    if (m.perCpu) {
      const per = m.lookupPerCpu(k);
      if (per) out.push({ key: hexes(k), values: per.map((value, cpu) => ({ cpu, value: hexes(value) })) });
    } else {
      const v = m.lookup(k);
      if (v) out.push({ key: hexes(k), value: hexes(v) });
    }
  }
  return out;
}

function positiveInt(text: string | undefined, what: string, dflt: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 0xffffffff)
    throw new TsbpfError('usage', `${what} must be a positive integer, not '${text}'`);
  return n;
}

/** `--const NAME=VALUE` (decimal, 0x hex, or true/false). */
function parseConstant(text: string): [string, number | bigint | boolean] {
  const m = /^([A-Za-z_]\w*)=(.+)$/.exec(text);
  if (!m) throw new TsbpfError('usage', `--const wants NAME=VALUE, not '${text}'`);
  const v = m[2];
  if (v === 'true' || v === 'false') return [m[1], v === 'true'];
  try {
    return [m[1], BigInt(v)];
  } catch {
    throw new TsbpfError('usage', `--const ${m[1]}: '${v}' is not a number`);
  }
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run a packet program of an object in the VM (BPF_PROG_TEST_RUN semantics)',
  usage: `Usage: tsbpf run OBJ --prog NAME (--data FILE | --pcap FILE) [--repeat N] [--json]
                 [--out FILE.pcap] [--dump-maps] [--engine jit|interp] [--ctx FILE]
                 [--const NAME=VALUE]... [--cpus N]

Loads OBJ (a clang-built eBPF object) into the portable VM and runs program NAME the way the kernel's
BPF_PROG_TEST_RUN does for its type (XDP, TC, socket filter, cgroup_skb...).
  --data FILE       one packet (raw bytes, starting at the Ethernet header)
  --pcap FILE       every packet of a pcap or pcapng file, in order; prints the verdicts per action
  --repeat N        run each packet N times (durationNs is the average per run)
  --json            print JSON: { retval, verdict, durationNs, dataOut, ctxOut? } (--data), or the counts
  --out FILE.pcap   with --pcap: write the packets the program changed (socket filters: trimmed)
  --dump-maps       print every map at the end, as 'bpftool map dump' does
  --engine E        jit (default): compiled to WebAssembly; interp: the interpreter
  --ctx FILE        context in (ctx_in): struct xdp_md, struct __sk_buff...
  --const N=V       set a 'const volatile' variable before load (repeatable)
  --cpus N          virtual CPUs of the VM (default 1)
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...helpOption,
        prog: { type: 'string' },
        data: { type: 'string' },
        pcap: { type: 'string' },
        repeat: { type: 'string' },
        json: { type: 'boolean' },
        out: { type: 'string' },
        'dump-maps': { type: 'boolean' },
        engine: { type: 'string' },
        ctx: { type: 'string' },
        const: { type: 'string', multiple: true },
        cpus: { type: 'string' },
      },
      { min: 1, max: 1 },
    );
    if (values.prog === undefined) throw new TsbpfError('usage', 'missing --prog NAME');
    if ((values.data === undefined) === (values.pcap === undefined))
      throw new TsbpfError('usage', 'give exactly one of --data FILE and --pcap FILE');
    if (values.out !== undefined && values.pcap === undefined)
      throw new TsbpfError('usage', '--out needs --pcap');
    const engine = parseEngine(values.engine ?? DEFAULT_ENGINE);
    const repeat = positiveInt(values.repeat, '--repeat', 1);
    const cpus = positiveInt(values.cpus, '--cpus', 1);
    const constants = Object.fromEntries((values.const ?? []).map(parseConstant));
    const path = positionals[0] as string;
    const spec = readObject(readInput(path), { path });
    const program = values.prog;
    if (!spec.programs.some((p) => p.name === program))
      throw new TsbpfError(
        'usage',
        `no program '${program}' in ${path} (have: ${spec.programs.map((p) => p.name).join(', ')})`,
      );
    const ctx = values.ctx === undefined ? undefined : readInput(values.ctx);
    const coll: VmCollection = vmBackend({ engine, cpus }).load(spec, { programs: [program], constants });
    try {
      const prog = coll.program(program);
      const dumpMaps = () => {
        if (!values['dump-maps']) return undefined;
        if (values.json) return Object.fromEntries([...coll.maps].map(([n, m]) => [n, bpftoolDumpJson(m)]));
        let text = '';
        for (const [n, m] of coll.maps) text += `map '${n}' (${m.typeName}):\n${bpftoolDump(m)}`;
        return text;
      };
      if (values.data !== undefined) {
        const data = readInput(values.data);
        const r = prog.testRun({ data, repeat, ...(ctx ? { ctx } : {}), dataOutSize: data.length + 4096 });
        const maps = dumpMaps();
        if (values.json) {
          const out = {
            retval: r.retval,
            verdict: verdictName(prog.type, r.retval),
            durationNs: r.durationNs,
            dataOut: toHex(r.data, ''),
            ...(r.ctx ? { ctxOut: toHex(r.ctx, '') } : {}),
            ...(maps ? { maps } : {}),
          };
          io.stdout(`${JSON.stringify(out, null, 2)}\n`);
        } else {
          const changed = r.data.length !== data.length || r.data.some((b, i) => b !== data[i]);
          io.stdout(
            `retval: ${r.retval} (${verdictName(prog.type, r.retval)})\nduration: ${r.durationNs} ns\n` +
              `data out: ${r.data.length} bytes${changed ? ' (changed)' : ' (unchanged)'}\n` +
              (changed ? `${toHex(r.data)}\n` : '') +
              (r.ctx ? `ctx out: ${toHex(r.ctx)}\n` : '') +
              (maps ?? ''),
          );
        }
        return 0;
      }
      const capture = readCapture(readInput(values.pcap as string));
      const counts = new Map<string, number>();
      const changedPackets: {
        timestampNs: bigint;
        data: Uint8Array;
        originalLength: number;
        interfaceId: number;
      }[] = [];
      let total = 0n;
      let runs = 0;
      for (const pk of capture.packets) {
        let verdict: string;
        try {
          const r = prog.testRun({
            data: pk.data,
            repeat,
            ...(ctx ? { ctx } : {}),
            dataOutSize: pk.data.length + 4096,
          });
          verdict = verdictName(prog.type, r.retval);
          total += BigInt(r.durationNs);
          runs++;
          let out = r.data;
          if (prog.type === 'socket_filter') {
            // The test run sees the packet from L3 (its Ethernet header comes back zeroed): keep the
            // original Ethernet header and the first retval bytes after it, as the socket would.
            const keep = Math.min(r.retval, out.length - 14);
            out = new Uint8Array(14 + keep);
            out.set(pk.data.subarray(0, 14));
            out.set(r.data.subarray(14, 14 + keep), 14);
          }
          const changed = out.length !== pk.data.length || out.some((b, i) => b !== pk.data[i]);
          if (changed && !(prog.type === 'socket_filter' && r.retval === 0))
            changedPackets.push({
              ...pk,
              data: out,
              originalLength: Math.max(out.length, pk.originalLength - pk.data.length + out.length),
            });
        } catch (e) {
          if (!(e instanceof TsbpfError) || e.details.errno === undefined) throw e;
          verdict = `error: ${/\b(E[A-Z0-9]+)\b/.exec(e.message)?.[1] ?? `errno ${e.details.errno}`}`;
        }
        counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
      }
      if (values.out !== undefined) {
        const link = capture.interfaces[0]?.linkType;
        writeOutput(values.out, writePcap(changedPackets, link === undefined ? {} : { linkType: link }));
      }
      const maps = dumpMaps();
      const avg = runs ? Number(total / BigInt(runs)) : 0;
      if (values.json) {
        const out = {
          packets: capture.packets.length,
          verdicts: Object.fromEntries(counts),
          changed: changedPackets.length,
          durationNs: avg,
          ...(maps ? { maps } : {}),
        };
        io.stdout(`${JSON.stringify(out, null, 2)}\n`);
      } else {
        let text = `${capture.packets.length} packet${capture.packets.length === 1 ? '' : 's'}, ${changedPackets.length} changed, ${avg} ns per run\n`;
        const width = Math.max(0, ...[...counts.keys()].map((k) => k.length));
        for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])))
          text += `  ${k.padEnd(width)}  ${n}\n`;
        io.stdout(text + (maps ?? ''));
      }
      return 0;
    } finally {
      coll.close();
    }
  },
};
