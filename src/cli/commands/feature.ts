/**
 * `tsbpf feature probe [kernel] [full] [program_types TYPE,...]`: what this kernel has, found by trying
 * (src/kernel/probe.ts), in bpftool's words (`eBPF program_type xdp is available`) and JSON keys
 * (`program_types.have_xdp_prog_type`, `map_types.have_hash_map_type`,
 * `helpers.xdp_available_helpers`). Helpers are probed with `full` (or for the listed types).
 */
import { TsbpfError } from '../../errors.js';
import { probeFeatures } from '../../kernel/probe.js';
import type { Command } from '../command.js';
import { jsonFlags, printJson } from './prog.js';

export const featureCommand: Command = {
  name: 'feature',
  summary: "probe which program types, map types and helpers this kernel has (bpftool's feature probe)",
  usage: `Usage: tsbpf feature probe [kernel] [full] [program_types TYPE[,TYPE...]]
       full: also probe the helpers of every available program type (slower)
       -j/--json, -p/--pretty: JSON output (bpftool's keys)
`,
  async run(argv, io) {
    const { json, pretty, rest } = jsonFlags(argv);
    const [sub, ...args] = rest;
    if (sub !== 'probe') throw new TsbpfError('usage', `unknown feature subcommand '${sub ?? ''}'`);
    let full = false;
    let types: string[] | undefined;
    for (let i = 0; i < args.length; i++) {
      if (args[i] === 'full') full = true;
      else if (args[i] === 'kernel' || args[i] === 'unprivileged') continue;
      else if (args[i] === 'program_types') types = (args[++i] ?? '').split(',');
      else throw new TsbpfError('usage', `unexpected '${args[i]}'`);
    }
    const r = probeFeatures({ helpers: full || types !== undefined, ...(types ? { progTypes: types } : {}) });
    if (json) {
      printJson(
        io,
        {
          system_config: Object.fromEntries(r.system.map((s) => [s.key, s.ok])),
          program_types: Object.fromEntries(r.programTypes.map((p) => [`have_${p.name}_prog_type`, p.ok])),
          map_types: Object.fromEntries(r.mapTypes.map((m) => [`have_${m.name}_map_type`, m.ok])),
          ...(r.helpers
            ? {
                helpers: Object.fromEntries(
                  r.helpers.map((h) => [`${h.progType}_available_helpers`, h.helpers]),
                ),
              }
            : {}),
        },
        pretty,
      );
      return 0;
    }
    let s = 'Scanning system configuration...\n';
    for (const x of r.system) s += `${x.text} is ${x.ok ? 'available' : 'NOT available'}\n`;
    s += '\nScanning eBPF program types...\n';
    for (const p of r.programTypes)
      s += `eBPF program_type ${p.name} is ${p.ok ? 'available' : 'NOT available'}\n`;
    s += '\nScanning eBPF map types...\n';
    for (const m of r.mapTypes) s += `eBPF map_type ${m.name} is ${m.ok ? 'available' : 'NOT available'}\n`;
    if (r.helpers) {
      s += '\nScanning eBPF helper functions...\n';
      for (const h of r.helpers) {
        s += `eBPF helpers supported for program type ${h.progType}:\n`;
        for (const name of h.helpers) s += `\t- ${name}\n`;
      }
    }
    io.stdout(s);
    return 0;
  },
};
