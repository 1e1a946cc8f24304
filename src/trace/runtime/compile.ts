/**
 * Script text → CompiledScript: the front end (parse, analyse: TraceError with bpftrace's diagnostics, types
 * from the running kernel's BTF and tracepoint formats) then the code generator (src/trace/codegen/), which
 * is loaded lazily so that `-d ast`, `-l` and compile errors never pay for it.
 */
import { type Analysis, analyse } from '../analyse.js';
import { kernelTypes } from '../btf-types.js';
import type { CompiledScript } from '../codegen/records.js';
import { parse } from '../parser.js';
import { expandProbeSpec } from './list.js';

export interface CompileOptions {
  /** `stdin` for -e programs, else the script's path (as bpftrace names it in messages). */
  filename: string;
  positionalArgs: string[];
  unsafe: boolean;
  childCommand: boolean;
  /** The backend the program will load into. */
  backend: 'kernel' | 'vm';
  /** Named program parameters (`-- --name=value`) for getopt(). */
  namedArgs?: Record<string, string | true>;
  /** tseries()'s test clock map (`@ts`); default: the BPFTRACE_DUMMY_TS_MAP environment variable. */
  dummyTsMap?: string;
}

/** index.ts's compileFrontEnd, without importing index.ts (it also loads the AST printer, for -d ast only). */
export async function frontEnd(text: string, o: CompileOptions): Promise<Analysis> {
  const options = {
    filename: o.filename,
    positionalArgs: o.positionalArgs,
    unsafe: o.unsafe,
    childCommand: o.childCommand,
    ...(o.namedArgs ? { namedArgs: o.namedArgs } : {}),
    types: kernelTypes(),
  };
  return analyse(parse(text, options), options);
}

export async function compileScript(
  text: string,
  o: CompileOptions,
): Promise<{ analysis: Analysis; script: CompiledScript }> {
  const analysis = await frontEnd(text, o);
  const { compileScript: generate } = await import('../codegen/compile.js');
  const script = generate(analysis, {
    types: kernelTypes(),
    positionalArgs: o.positionalArgs,
    expand: expandProbeSpec,
    dummyTsMap: o.dummyTsMap ?? process.env.BPFTRACE_DUMMY_TS_MAP,
  });
  fillHistParams(analysis, script);
  return { analysis, script };
}

/**
 * lhist(x, min, max, step) and hist(x, k) parameters of each map, from the script's calls, for layouts that
 * do not carry them.
 */
function fillHistParams(analysis: Analysis, script: CompiledScript): void {
  const need = script.maps.filter(
    (m) => (m.kind === 'lhist' && !m.lhist) || (m.kind === 'hist' && m.histBits === undefined),
  );
  if (need.length === 0) return;
  const found = new Map<string, bigint[]>();
  const walk = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    const o = node as Record<string, unknown>;
    if (o.kind === 'AssignMap') {
      const v = o.value as { kind?: string; name?: string; args?: { kind?: string; value?: unknown }[] };
      const name = (o.map as { name: string }).name;
      if (v?.kind === 'Call' && (v.name === 'lhist' || v.name === 'hist') && !found.has(name)) {
        const consts = (v.args ?? [])
          .slice(1)
          .map((a) => (a.kind === 'Integer' ? (a.value as bigint) : undefined));
        if (consts.every((c) => c !== undefined)) found.set(name, consts as bigint[]);
      }
    }
    for (const [k, v] of Object.entries(o)) if (k !== 'type' && k !== 'loc') walk(v);
  };
  walk(analysis.program);
  for (const m of need) {
    const args = found.get(m.name);
    if (m.kind === 'lhist' && args && args.length === 3)
      m.lhist = { min: args[0], max: args[1], step: args[2] };
    if (m.kind === 'hist') m.histBits = args && args.length === 1 ? Number(args[0]) : 0;
  }
}
