/**
 * Running a compiled script the way bpftrace runs one: load the object through a Backend, run BEGIN, attach
 * every other probe, print `Attached N probes`, consume the ring buffer and perform each record's
 * action (printf, print, clear, zero, time, join, cat, system, exit), and when the script ends (exit(),
 * Ctrl-C/SIGTERM, the -c command or the -p process ending) detach, run END, print every map and close.
 *
 * Kernel backend: probes attach for real (tracepoints, raw tracepoints, uprobes, perf events). VM backend:
 * nothing can fire except BEGIN and END (test runs), so a script there ends at exit() or a signal.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { close as closeFdAsync, readFileSync } from 'node:fs';
import type { Backend, BpfMap, Collection, Program } from '../../backend.js';
import { TsbpfError } from '../../errors.js';
import {
  Action,
  type ActionFormat,
  type AttachSpec,
  type CompiledScript,
  GLOBALS,
  GLOBALS_MAP,
  HEADER_SIZE,
  JOIN_ARG_SIZE,
  LOSS_MAP,
  type ProbeInfo,
  readInt,
  readString,
} from '../codegen/records.js';
import { Output, type OutputFormat } from '../output/format.js';
import { formatPrintf, strftime } from '../output/printf.js';
import type { PrintableMap, Value } from '../output/values.js';
import { clearMap, type DecodeContext, decodeToValue, readMap, zeroMap } from './decode.js';
import { gfpFlagNames } from './gfp.js';
import { Symbols, strerror } from './resolve.js';

export interface RunOptions {
  backend: Backend;
  format?: OutputFormat;
  /** stdout and stderr. */
  write: (text: string) => void;
  writeErr: (text: string) => void;
  /** -q: no `Attached N probes`. */
  quiet?: boolean;
  /** -p PID: uprobes and perf events of this process only; the run ends when it exits. */
  pid?: number;
  /** -c CMD: started after attaching (stopped until then); the run ends when it exits. */
  command?: string;
  /** --unsafe: system() runs commands. */
  unsafe?: boolean;
  /** Print `__BPFTRACE_NOTIFY_PROBES_ATTACHED` once attached (bpftrace's test hook). */
  notifyAttached?: boolean;
  /** Where that line goes (default `write`): the terminal even when `write` is an -o file. */
  writeNotice?: (text: string) => void;
  /** --probe-filter: only probes whose name this matches attach (BEGIN and END always run). */
  probeFilter?: RegExp;
  /** --no-warnings: warnf() prints nothing, as bpftrace's disabled WARNING log. */
  noWarnings?: boolean;
  /** Stops the run as Ctrl-C would. */
  signal?: AbortSignal;
  /** Handle SIGINT/SIGTERM (default true): end the run, print the maps, exit cleanly. */
  handleSignals?: boolean;
  /** Called once every probe is attached (BEGIN has run by then; its output is not printed yet). */
  onAttached?: () => void;
}

/**
 * An attached probe. Teardown has two steps so that many probes detach in parallel: the kernel waits for an RCU
 * grace period in each (~25 ms to detach a program from a tracepoint, ~50 ms more to release its perf event),
 * and close(2) on libuv's thread pool lets those waits overlap instead of adding up.
 */
interface Attached {
  probe: ProbeInfo;
  /** Resolves once the program can no longer run. */
  detach(): Promise<void>;
  /** Closes what is left (perf event fds): nothing fires any more, so the run's end need not wait for it. */
  release(): Promise<void>;
}

/** close(2) off the main thread; errors are ignored (the fd is gone either way). */
function closeInPool(fd: number): Promise<void> {
  return new Promise((resolve) => closeFdAsync(fd, () => resolve()));
}

/** A probe held as raw fds: BPF links first, then the perf events under them. */
function fdProbe(probe: ProbeInfo, links: number[], perfFds: number[]): Attached {
  return {
    probe,
    detach: async () => {
      await Promise.all(links.splice(0).map(closeInPool));
    },
    release: async () => {
      await Promise.all([...links.splice(0), ...perfFds.splice(0)].map(closeInPool));
    },
  };
}

/** A probe held as a kernel Link (closed synchronously, in one step). */
function linkProbe(probe: ProbeInfo, link: { close(): void }): Attached {
  return {
    probe,
    detach: async () => link.close(),
    release: async () => link.close(),
  };
}

/** Something that yields ring buffer records: the kernel's mmap reader or the VM's map. */
interface RecordSource {
  /** Delivers every record there now; returns how many. */
  drain(cb: (rec: Uint8Array) => boolean | undefined): number;
  /** Waits (up to ms) for records. */
  wait(ms: number): Promise<void>;
  close(): void;
}

const BPF_PERF_EVENT = 41;

async function openSource(collection: Collection, name: string, kernel: boolean): Promise<RecordSource> {
  const map = collection.map(name);
  if (kernel) {
    const { openRingBuffer } = await import('../../kernel/ringbuf.js');
    const ring = openRingBuffer(
      map as unknown as { fd: number; maxEntries: number; type: number; name: string },
    );
    return {
      drain: (cb) => ring.consume(cb),
      wait: async (ms) => {
        await ring.wait(ms);
      },
      close: () => ring.close(),
    };
  }
  const vm = map as unknown as { drain(): Uint8Array[] };
  let pending: Uint8Array[] = [];
  return {
    drain(cb) {
      if (pending.length === 0) pending = vm.drain();
      let n = 0;
      while (pending.length > 0) {
        const rec = pending.shift() as Uint8Array;
        n++;
        if (cb(rec) === false) break;
      }
      return n;
    },
    wait: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))),
    close() {},
  };
}

/** Attaches one probe's program on the kernel backend. */
async function attachKernel(
  collection: Collection,
  probe: ProbeInfo,
  pid: number | undefined,
): Promise<Attached> {
  const { KernelProgram } = await import('../../kernel/collection.js');
  const prog = collection.program(probe.program);
  if (!(prog instanceof KernelProgram))
    throw new TsbpfError('usage', `program '${probe.program}' is not a kernel program`);
  const a: AttachSpec = probe.attach;
  switch (a.kind) {
    case 'tracepoint': {
      // What prog.attach() does (perf_event_open on the tracepoint + BPF_LINK_CREATE), with the fds kept here so
      // that the end of the run can close them in parallel.
      const { PERF_TYPE_TRACEPOINT, perfEventOpen, tracepointId } = await import('../../kernel/perf.js');
      const { linkCreate } = await import('../../kernel/link.js');
      const { closeFd } = await import('../../kernel/program.js');
      const id = tracepointId(a.category, a.event);
      const pfd = perfEventOpen(
        { type: PERF_TYPE_TRACEPOINT, config: BigInt(id), sample: 1n, wakeup: 1 },
        -1,
        0,
      );
      try {
        return fdProbe(probe, [linkCreate(prog.fd, pfd, BPF_PERF_EVENT)], [pfd]);
      } catch (e) {
        closeFd(pfd);
        throw e;
      }
    }
    case 'raw_tracepoint':
      return linkProbe(probe, prog.attach({ rawTracepoint: a.event }));
    case 'uprobe':
      return linkProbe(
        probe,
        prog.attach({
          uprobe: {
            path: a.path,
            ...(a.func !== undefined ? { func: a.func } : {}),
            offset: Number(a.address ?? 0n) + Number(a.offset),
            retprobe: a.retprobe,
          },
          ...(pid !== undefined ? { pid } : {}),
        }),
      );
    case 'perf_event': {
      // interval probes are timers, not samples of a process: -p/-c do not narrow them (as in bpftrace).
      if (a.cpus === 'one') pid = undefined;
      const { perfEventOpen } = await import('../../kernel/perf.js');
      const { linkCreate, onlineCpus } = await import('../../kernel/link.js');
      const { closeFd } = await import('../../kernel/program.js');
      const cpus = a.cpus === 'one' ? [onlineCpus()[0] ?? 0] : onlineCpus();
      const links: number[] = [];
      const perfFds: number[] = [];
      try {
        for (const cpu of cpus) {
          const pfd = perfEventOpen(
            {
              type: a.type,
              config: BigInt(a.config),
              ...(a.frequency !== undefined
                ? { sample: BigInt(a.frequency), freq: true }
                : { sample: a.period ?? 1n }),
            },
            pid ?? -1,
            pid !== undefined ? -1 : cpu,
          );
          perfFds.push(pfd);
          links.push(linkCreate(prog.fd, pfd, BPF_PERF_EVENT));
          if (pid !== undefined) break;
        }
      } catch (e) {
        for (const fd of [...links, ...perfFds]) closeFd(fd);
        throw e;
      }
      return fdProbe(probe, links, perfFds);
    }
    case 'kprobe':
      return linkProbe(probe, prog.attach());
    case 'usdt':
      throw new TsbpfError('trace', `${probe.name}: USDT probes are not supported yet`);
    default:
      throw new TsbpfError('trace', `${probe.name}: cannot attach`);
  }
}

/**
 * Runs BEGIN/END (raw_tracepoint programs) once. The kernel's raw_tracepoint test run refuses ctx_out,
 * repeat and data (EINVAL), so on the kernel backend the BPF_PROG_TEST_RUN is made here with ctx_in only.
 */
async function runBeginEnd(prog: Program, kernel: boolean): Promise<void> {
  if (!kernel) {
    prog.testRun({ ctx: new Uint8Array(8) });
    return;
  }
  const { BPF_CMD, bpfRaw, kernelBuffer, addressOf, explainErrno } = await import('../../kernel/syscall.js');
  const fd = (prog as unknown as { fd: number }).fd;
  const ctx = kernelBuffer(8);
  const attr = kernelBuffer(80);
  const v = new DataView(attr.buffer);
  v.setUint32(0, fd, true);
  v.setUint32(40, ctx.byteLength, true);
  v.setBigUint64(48, addressOf(ctx), true);
  const r = bpfRaw(BPF_CMD.PROG_TEST_RUN, attr, [ctx]);
  if (r.result < 0)
    throw new TsbpfError(
      'kernel',
      `running ${prog.name} (BPF_PROG_TEST_RUN) failed: ${explainErrno(r.errno)}`,
      {
        errno: r.errno,
      },
    );
}

/** Runs a compiled script to its end; returns the exit status. */
export async function runScript(script: CompiledScript, options: RunOptions): Promise<number> {
  const special = (p: ProbeInfo) => p.attach.kind === 'begin' || p.attach.kind === 'end';
  const filter = options.probeFilter;
  const probes = filter ? script.probes.filter((p) => special(p) || filter.test(p.name)) : script.probes;
  if (probes.length === 0 || (filter && probes.every(special) && !script.probes.every(special)))
    throw new TsbpfError('trace', 'No probes to attach');
  // With nothing but BEGIN/END there is nothing to wait for: the run ends after BEGIN, as bpftrace's does
  // (unless a -c command or -p process decides the end).
  const endAfterBegin = probes.every(special) && !options.command && options.pid === undefined;
  const out = new Output(options.format ?? 'text', options.write);
  const kernel = options.backend.name === 'kernel';
  const symbols = new Symbols();
  const collection = options.backend.load(script.spec);
  const mapsByName = new Map<string, BpfMap>();
  for (const layout of script.maps) mapsByName.set(layout.name, collection.map(layout.mapName));
  // cat() prints at most this much of a file: BPFTRACE_MAX_CAT_BYTES, else the script's max_cat_bytes.
  const maxCatBytes = configNumber(
    process.env.BPFTRACE_MAX_CAT_BYTES ?? script.config.get('max_cat_bytes'),
    10240,
  );
  const ctx: DecodeContext = {
    script,
    symbols,
    stackMap: (name) => (collection.maps.has(name) ? collection.map(name) : undefined),
  };
  const attached: Attached[] = [];
  let releasing: Promise<unknown> | undefined;
  let source: RecordSource | undefined;
  let child: ChildProcess | undefined;
  let exitCode = 0;
  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopping = true;
    wake?.();
  };

  // Signals: end the run like bpftrace (END, maps), instead of the backend's default of dying.
  const handleSignals = options.handleSignals ?? true;
  const onSig = (): void => stop();
  const foreign: { sig: NodeJS.Signals; fn: (...a: unknown[]) => void }[] = [];
  if (handleSignals) {
    for (const sig of ['SIGINT', 'SIGTERM'] as NodeJS.Signals[]) {
      for (const fn of process.listeners(sig)) {
        foreign.push({ sig, fn: fn as (...a: unknown[]) => void });
        process.off(sig, fn);
      }
      process.on(sig, onSig);
    }
  }
  options.signal?.addEventListener('abort', stop);

  const begin = probes.filter((p) => p.attach.kind === 'begin');
  const end = probes.filter((p) => p.attach.kind === 'end');
  const lossMap = collection.maps.has(LOSS_MAP) ? collection.map(LOSS_MAP) : undefined;
  let lostReported = 0n;

  const printMap = (name: string, top: number, div: number): void => {
    const layout = script.maps.find((m) => m.name === name);
    const map = mapsByName.get(name);
    if (!layout || !map) return;
    out.map(readMap(ctx, layout, map, { zeroIfEmpty: true }), { top, div });
  };

  let exited = false;
  /** Performs one record; records after exit() (or a signal) are dropped, as bpftrace drops them. */
  const handle = (rec: Uint8Array, inEnd: boolean, inBatch = false): boolean | undefined => {
    if (stopping && !inEnd && !inBatch) return false;
    const action = Number(readInt(rec, 0, 8, false));
    const id = Number(readInt(rec, 8, 8, false));
    const fmt: ActionFormat | undefined = script.actions[id];
    const args = (): Value[] => (fmt ? fmt.args.map((a) => decodeToValue(ctx, a.layout, rec, a.offset)) : []);
    switch (action) {
      case Action.PRINTF:
        if (fmt)
          out.message('printf', formatPrintf(fmt.format, args(), { gfpFlags: (f) => gfpFlagNames(f) }));
        break;
      case Action.ERRORF:
      case Action.WARNF:
      case Action.DEBUGF:
        if (fmt && !(action === Action.WARNF && options.noWarnings)) {
          const kind = action === Action.ERRORF ? 'ERROR' : action === Action.WARNF ? 'WARNING' : 'DEBUG';
          const message = formatPrintf(fmt.format, args());
          if (fmt.sites?.length) {
            // As bpftrace reports them: at the call, then at each macro call it was expanded from.
            for (const [i, s] of fmt.sites.entries())
              options.writeErr(
                `${s.where}: ${kind}: ${i === 0 ? message : 'expanded from'}\n${s.context ? `${s.context}\n` : ''}`,
              );
          } else options.writeErr(`${kind}: ${message}\n`);
        }
        break;
      case Action.SYSTEM:
        if (fmt) {
          const cmd = formatPrintf(fmt.format, args());
          if (!options.unsafe) break;
          try {
            const text = execFileSync('/bin/sh', ['-c', cmd], {
              encoding: 'utf8',
              stdio: ['ignore', 'pipe', 'inherit'],
            });
            out.message('syscall', text);
          } catch (e) {
            const text = (e as { stdout?: string }).stdout;
            if (text) out.message('syscall', text);
          }
        }
        break;
      case Action.CAT:
        if (fmt) {
          const path = formatPrintf(fmt.format, args());
          try {
            out.message('cat', readFileSync(path, 'latin1').slice(0, maxCatBytes));
          } catch (e) {
            options.writeErr(`ERROR: failed to open file '${path}' (${errnoText(e)})\n`);
          }
        }
        break;
      case Action.PRINT_VALUE:
        if (fmt && fmt.args.length > 0)
          out.value(decodeToValue(ctx, fmt.args[0].layout, rec, fmt.args[0].offset));
        break;
      case Action.TIME: {
        const now = new Date();
        out.message('time', strftime(fmt?.format ?? '%H:%M:%S\n', now, (now.getTime() % 1000) * 1e6));
        break;
      }
      case Action.JOIN: {
        const count = Number(readInt(rec, 16, 8, false));
        const parts: string[] = [];
        for (let i = 0; i < count; i++) parts.push(readString(rec, 24 + i * JOIN_ARG_SIZE, JOIN_ARG_SIZE));
        out.message('join', parts.join(fmt?.format ?? ' '), true);
        break;
      }
      case Action.EXIT:
        if (!inEnd && !exited) {
          exited = true;
          exitCode = rec.length >= HEADER_SIZE + 8 ? Number(readInt(rec, 16, 8, true)) : 0;
          stop();
          return false;
        }
        break;
      case Action.PRINT_MAP: {
        const layout = script.maps[id];
        if (layout)
          printMap(layout.name, Number(readInt(rec, 16, 8, false)), Number(readInt(rec, 24, 8, false)));
        break;
      }
      case Action.CLEAR: {
        const layout = script.maps[id];
        const map = layout && mapsByName.get(layout.name);
        if (map) clearMap(map);
        break;
      }
      case Action.ZERO: {
        const layout = script.maps[id];
        const map = layout && mapsByName.get(layout.name);
        if (map) zeroMap(map);
        break;
      }
      default:
        options.writeErr(`WARNING: unknown record type ${action}\n`);
    }
    return undefined;
  };

  const reportLoss = (): void => {
    if (!lossMap) return;
    try {
      const v = lossMap.lookup(new Uint8Array(4));
      if (!v) return;
      const n = readInt(v, 0, 8, false);
      if (n > lostReported) {
        out.lostEvents(n - lostReported);
        lostReported = n;
      }
    } catch {
      // ignore
    }
  };

  try {
    source = await openSource(collection, script.ringbuf, kernel);

    // -c: the command starts stopped, so probes are in place before it runs.
    if (options.command) {
      child = spawn('/bin/sh', ['-c', `kill -STOP $$; exec ${options.command}`], { stdio: 'inherit' });
      child.on('exit', () => stop());
      // `cpid` reads the child's pid from the globals map; the init program (run below) only sets the
      // start time beside it.
      if (child.pid !== undefined && collection.maps.has(GLOBALS_MAP)) {
        const value = new Uint8Array(GLOBALS.size);
        new DataView(value.buffer).setBigUint64(GLOBALS.cpid, BigInt(child.pid), true);
        collection.map(GLOBALS_MAP).update(new Uint8Array(4), value);
      }
    }

    // BEGIN runs before the other probes are attached, as in bpftrace: a probe that fires at once (i:ms:1)
    // then sees what BEGIN set up.
    if (script.init) await runBeginEnd(collection.program(script.init), kernel);
    for (const p of begin) await runBeginEnd(collection.program(p.program), kernel);

    if (kernel) {
      // In script order, except uprobes last to first: the kernel runs the consumers of a uprobe newest first,
      // and the script's first probe must fire first (as with bpftrace).
      const isRet = (p: ProbeInfo) => p.attach.kind === 'uprobe';
      const order = [...probes.filter((p) => !isRet(p)), ...probes.filter(isRet).reverse()];
      for (const p of order) {
        if (p.attach.kind === 'begin' || p.attach.kind === 'end') continue;
        if (p.attach.kind === 'uprobe') await checkUprobe(p.attach, options.unsafe === true);
        attached.push(
          await attachKernel(
            collection,
            p,
            options.pid ?? (child?.pid !== undefined ? child.pid : undefined),
          ),
        );
      }
    }
    // As bpftrace's run(): `Attached N probes` (BEGIN and END count as one each), then the test hook's line.
    // BEGIN's output is still in the ring buffer, so it prints after both.
    if (!options.quiet) out.attachedProbes(probes.length);
    if (options.notifyAttached) (options.writeNotice ?? options.write)('__BPFTRACE_NOTIFY_PROBES_ATTACHED\n');
    options.onAttached?.();
    if (child?.pid !== undefined) {
      // Wait until the shell has stopped itself, then let it run the command.
      await waitStopped(child.pid);
      process.kill(child.pid, 'SIGCONT');
    }

    let pidTimer: NodeJS.Timeout | undefined;
    if (options.pid !== undefined) {
      const pid = options.pid;
      pidTimer = setInterval(() => {
        try {
          process.kill(pid, 0);
        } catch {
          stop();
        }
      }, 200);
    }
    try {
      const src = source;
      while (!stopping) {
        src.drain((r) => handle(r, false));
        if (stopping || endAfterBegin) break;
        reportLoss();
        await Promise.race([
          src.wait(kernel ? 100 : 50),
          new Promise<void>((r) => {
            wake = r;
          }),
        ]);
        wake = undefined;
      }
    } finally {
      if (pidTimer) clearInterval(pidTimer);
    }

    // The end: detach (every probe at once), END, the maps; the perf events are released meanwhile.
    const ending = attached.splice(0);
    await Promise.all(ending.map((a) => a.detach()));
    releasing = Promise.all(ending.map((a) => a.release()));
    if (child && child.exitCode === null) {
      try {
        child.kill('SIGTERM');
      } catch {
        // gone
      }
    }
    // Records that arrived after exit() are dropped, as in bpftrace; END's are printed.
    source.drain(() => true);
    for (const p of end) await runBeginEnd(collection.program(p.program), kernel);
    source.drain((r) => handle(r, true));
    reportLoss();
    const printMaps =
      script.config.get('print_maps_on_exit') !== false && script.config.get('print_maps_on_exit') !== 0n;
    const maps: PrintableMap[] = [];
    if (printMaps)
      for (const layout of script.maps) {
        const map = mapsByName.get(layout.name);
        if (map) maps.push(readMap(ctx, layout, map));
      }
    out.exitMaps(maps, printMaps);
    return exitCode;
  } finally {
    for (const a of attached) {
      try {
        await a.release();
      } catch {
        // best effort
      }
    }
    source?.close();
    await releasing?.catch(() => {}); // best effort, like the closes above
    collection.close();
    options.signal?.removeEventListener('abort', stop);
    if (handleSignals) {
      for (const sig of ['SIGINT', 'SIGTERM'] as NodeJS.Signals[]) process.off(sig, onSig);
      void foreign;
    }
  }
}

/**
 * bpftrace's checks of a uprobe against the binary's symbols: `func+off` must lie inside the function, and
 * (without --unsafe) an address must lie in one.
 */
async function checkUprobe(a: AttachSpec & { kind: 'uprobe' }, unsafe: boolean): Promise<void> {
  if (a.func === undefined ? a.address === undefined || unsafe : a.offset === 0n) return;
  const { elfFunctionSymbols } = await import('./list.js');
  let syms: { name: string; addr: bigint; size: bigint }[];
  try {
    syms = elfFunctionSymbols(a.path);
  } catch {
    return; // unreadable: the attach reports it
  }
  if (a.func !== undefined) {
    const sym = syms.find((f) => f.name === a.func && f.size > 0n);
    if (sym && a.offset >= sym.size)
      throw new TsbpfError('trace', `Offset outside the function bounds ('${a.func}' size is ${sym.size})`);
    return;
  }
  const addr = a.address ?? 0n;
  if (!syms.some((f) => addr >= f.addr && addr < f.addr + (f.size > 0n ? f.size : 1n)))
    throw new TsbpfError('trace', `Could not resolve address: ${a.path}:0x${addr.toString(16)}`);
}

/** A numeric config value (an environment variable's text or the script's integer); `dflt` when not one. */
function configNumber(v: string | bigint | boolean | undefined, dflt: number): number {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) return Number(v);
  return dflt;
}

/** The text of a failed file operation's error, as strerror(3) gives it. */
function errnoText(e: unknown): string {
  const errno = (e as NodeJS.ErrnoException).errno;
  // Node reports errno negated (-2 for ENOENT).
  return errno === undefined ? (e as Error).message : strerror(BigInt(Math.abs(errno)));
}

/** Waits until process `pid` is in the stopped state (T), up to ~2 s. */
async function waitStopped(pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'T' || state === 't') return;
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
