/**
 * `tsbpf load OBJ [--attach]`: loads a whole object into the kernel as a Collection, attaches every
 * program where its SEC() name says (with --interface / --cgroup / --pid filling in what a section
 * cannot say), prints ring-buffer records as they arrive, and detaches and closes everything on
 * Ctrl-C (SIGINT), SIGTERM, --duration or --count.
 */
import { TsbpfError } from '../../errors.js';
import { toHex } from '../../hex.js';
import { kernelBackend } from '../../kernel/collection.js';
import type { Link } from '../../kernel/link.js';
import { RingBuffer } from '../../kernel/ringbuf.js';
import { readObject, type VariableValue } from '../../object/spec.js';
import { type Command, helpOption, parseCommandArgs } from '../command.js';
import { readInput } from '../files.js';

export const loadCommand: Command = {
  name: 'load',
  summary: 'load an object into the kernel, attach its programs by SEC() name and print its ring buffers',
  usage: `Usage: tsbpf load OBJ [--attach] [options]

Loads every program and map of OBJ into the kernel (BTF, CO-RE, global data, tail calls...).
  --attach           attach each program by its SEC() name (tracepoint/..., uprobe/..., xdp, tc/ingress...)
  --interface IF     network interface for xdp and tc programs
  --cgroup PATH      cgroup v2 directory for cgroup programs (default: the cgroup2 root)
  --pid PID          only this process (uprobes, perf events)
  --set NAME=VALUE   set a global variable / const volatile before load (repeatable)
  --duration SEC     stop after SEC seconds (default: until Ctrl-C)
  --count N          stop after N ring-buffer records
  --log-level N      verifier log level; the logs are printed to standard error
Ring-buffer records are printed as they come: 'MAP: hex bytes'. Ctrl-C detaches and closes everything.
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...helpOption,
        attach: { type: 'boolean' },
        interface: { type: 'string' },
        cgroup: { type: 'string' },
        pid: { type: 'string' },
        set: { type: 'string', multiple: true },
        duration: { type: 'string' },
        count: { type: 'string' },
        'log-level': { type: 'string' },
      },
      { min: 1, max: 1 },
    );
    const path = positionals[0] as string;
    const constants: Record<string, VariableValue> = {};
    for (const s of values.set ?? []) {
      const eq = s.indexOf('=');
      if (eq <= 0) throw new TsbpfError('usage', `--set expects NAME=VALUE, not '${s}'`);
      const v = s.slice(eq + 1);
      constants[s.slice(0, eq)] =
        /^-?\d+$/.test(v) || /^0x[0-9a-f]+$/i.test(v)
          ? BigInt(v)
          : v === 'true'
            ? true
            : v === 'false'
              ? false
              : new TextEncoder().encode(v);
    }
    const logLevel = values['log-level'] === undefined ? 0 : Number(values['log-level']);
    if (logLevel !== 0 && logLevel !== 1 && logLevel !== 2)
      throw new TsbpfError('usage', '--log-level must be 0, 1 or 2');
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const spec = readObject(readInput(path), { path });
    const c = kernelBackend.load(spec, { constants, logLevel });
    const links: Link[] = [];
    const rings: { name: string; rb: RingBuffer }[] = [];
    try {
      for (const w of c.warnings) io.stderr(`warning: ${w}\n`);
      for (const p of c.programs.values()) {
        if (logLevel > 0) io.stderr(`prog '${p.name}' verifier log:\n${p.log}\n`);
        io.stdout(`loaded prog '${p.name}' (${p.type}, SEC("${p.spec.section}")) id ${p.info().id}\n`);
      }
      if (values.attach) {
        for (const p of c.programs.values()) {
          try {
            const link = p.attach({
              ...(values.interface !== undefined ? { interface: values.interface } : {}),
              ...(values.cgroup !== undefined ? { cgroup: values.cgroup } : {}),
              ...(values.pid !== undefined ? { pid: Number(values.pid) } : {}),
            });
            links.push(link);
            io.stdout(`attached prog '${p.name}' (${link.kind})\n`);
          } catch (e) {
            if (e instanceof TsbpfError && e.code === 'usage') io.stderr(`not attached: ${e.message}\n`);
            else throw e;
          }
        }
      }
      for (const [name, m] of c.maps) if (m.type === 27) rings.push({ name, rb: new RingBuffer(m) });
      if (!values.attach && rings.length === 0) return 0;
      const limit = values.count === undefined ? Number.POSITIVE_INFINITY : Number(values.count);
      const timer =
        values.duration === undefined
          ? undefined
          : setTimeout(() => ac.abort(), Number(values.duration) * 1000);
      let seen = 0;
      io.stdout('running; Ctrl-C to detach and exit\n');
      while (!ac.signal.aborted && seen < limit) {
        let any = 0;
        for (const { name, rb } of rings)
          any += rb.consume((r) => {
            io.stdout(`${name}: ${toHex(r)}\n`);
            return ++seen < limit;
          });
        if (any === 0) {
          if (rings.length > 0) await rings[0].rb.wait(100);
          else await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (timer) clearTimeout(timer);
      io.stdout(`detaching ${links.length} link${links.length === 1 ? '' : 's'}\n`);
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      for (const { rb } of rings) rb.close();
      for (const l of links) l.close();
      c.close();
    }
  },
};
