/**
 * The eBPF conformance suite (bpf_conformance) against the tsbpf interpreter: parse `.data` test
 * files, run them, judge them; and the suite's plugin protocol (program bytes in, r0 out).
 *
 * A `.data` file has sections introduced by `-- name` lines: `asm` (conformance assembly), `raw`
 * (bytecode: one 64-bit little-endian word as 0x... per line, or hex bytes), `mem` (hex bytes),
 * `result` (expected r0) and `error` (the program must fail); other sections are ignored.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isTsbpfError, TsbpfError } from '../errors.js';
import { parseHexBytes } from '../hex.js';
import { assembleConformance } from '../isa/asm/conformance.js';
import { decode, type Insn } from '../isa/insn.js';
import { type Engine, type EngineOptions, prepareProgram } from '../vm/engine.js';
import type { HelperFn, HelperTable } from '../vm/interpreter.js';

export interface ConformanceTest {
  /** Assembly source, if the file has an `asm` section. */
  asm?: string;
  /** Line number (1-based, in the file) of the first line of the asm section. */
  asmLine?: number;
  /** Bytecode, if the file has a `raw` section. */
  raw?: Uint8Array;
  mem?: Uint8Array;
  /** Expected r0 (unsigned 64-bit). */
  result?: bigint;
  /** Present when the program is expected to fail; the section's text (may be empty). */
  error?: string;
}

export interface ConformanceOutcome {
  file: string;
  passed: boolean;
  /** What happened: the r0 we got, or our error. */
  message: string;
  r0?: bigint;
  error?: string;
}

/** uBPF's "unwind" helper, registered as helper 5 by the conformance plugins: returns r1; 0 stops the program. */
export const unwindHelper: HelperFn = (args, vm) => {
  if (args[0] === 0n) vm.stop(0n);
  return args[0];
};

export const CONFORMANCE_HELPERS: HelperTable = new Map([[5, unwindHelper]]);

function rawBytes(text: string): Uint8Array {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l !== '');
  if (lines.length > 0 && lines.every((l) => /^0x[0-9a-fA-F]{1,16}$/.test(l))) {
    const out = new Uint8Array(lines.length * 8);
    const view = new DataView(out.buffer);
    lines.forEach((l, i) => {
      view.setBigUint64(i * 8, BigInt(l), true);
    });
    return out;
  }
  return parseHexBytes(lines.join(' '), 'raw section');
}

/** Parses the text of a `.data` file. */
export function parseConformanceData(text: string): ConformanceTest {
  const sections = new Map<string, { body: string[]; line: number }>();
  let current: { body: string[]; line: number } | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const m = /^--\s*(.*?)\s*$/.exec(line);
    if (m) {
      current = { body: [], line: i + 2 };
      if (!sections.has(m[1])) sections.set(m[1], current);
      continue;
    }
    if (current) current.body.push(line);
  }
  const test: ConformanceTest = {};
  const asm = sections.get('asm');
  if (asm) {
    test.asm = asm.body.join('\n');
    test.asmLine = asm.line;
  }
  const raw = sections.get('raw');
  if (raw) test.raw = rawBytes(raw.body.join('\n'));
  const mem = sections.get('mem');
  if (mem) test.mem = parseHexBytes(mem.body.join('\n'), 'mem section');
  const result = sections.get('result');
  if (result) {
    const r = result.body
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter((l) => l !== '')
      .join('');
    if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(r))
      throw new TsbpfError('usage', `result section: '${r}' is not a number`);
    test.result = BigInt.asUintN(64, BigInt(r));
  }
  const error = sections.get('error');
  if (error) test.error = error.body.join('\n').trim();
  return test;
}

/** The instructions of a test: `raw` wins over `asm`. */
export function conformanceProgram(test: ConformanceTest): Insn[] {
  if (test.raw !== undefined) return decode(test.raw);
  if (test.asm !== undefined) {
    try {
      return assembleConformance(test.asm);
    } catch (e) {
      // Report the line in the file, not in the section.
      if (isTsbpfError(e) && e.details.position && test.asmLine !== undefined) {
        const line = e.details.position.line + test.asmLine - 1;
        const msg = e.message.replace(/^line \d+/, `line ${line}`);
        throw new TsbpfError('asm', msg, { position: { line, column: e.details.position.column } });
      }
      throw e;
    }
  }
  throw new TsbpfError('usage', 'the test has neither an asm nor a raw section');
}

export interface RunConformanceOptions {
  /** Instruction budget per test (default 1,000,000). */
  budget?: number;
  helpers?: HelperTable;
  /** Which engine runs the tests (default: the engine switch's default, the interpreter). */
  engine?: Engine;
  /** JIT only: constant blinding. */
  blind?: boolean;
}

/** Runs one parsed test and judges it. Never throws for bad tests: the failure is the verdict. */
export function judgeConformance(
  file: string,
  test: ConformanceTest,
  options: RunConformanceOptions = {},
): ConformanceOutcome {
  const interp: EngineOptions = {
    helpers: options.helpers ?? CONFORMANCE_HELPERS,
    budget: options.budget ?? 1_000_000,
    engine: options.engine,
    blind: options.blind,
  };
  let r0: bigint;
  try {
    if (test.result === undefined && test.error === undefined) {
      throw new TsbpfError('usage', 'the test has neither a result nor an error section');
    }
    const insns = conformanceProgram(test);
    const program = prepareProgram(insns, interp);
    try {
      r0 = program.run({ mem: test.mem }).r0;
    } finally {
      program.dispose?.();
    }
  } catch (e) {
    if (!isTsbpfError(e)) throw e;
    const error = `${e.code}: ${e.message}`;
    if (test.error !== undefined)
      return { file, passed: true, message: `failed as expected (${error})`, error };
    return { file, passed: false, message: error, error };
  }
  if (test.error !== undefined) {
    return {
      file,
      passed: false,
      message: `expected an error${test.error ? ` (${test.error})` : ''}, got r0 = 0x${r0.toString(16)}`,
      r0,
    };
  }
  if (r0 !== test.result) {
    return {
      file,
      passed: false,
      message: `r0 = 0x${r0.toString(16)}, expected 0x${(test.result as bigint).toString(16)}`,
      r0,
    };
  }
  return { file, passed: true, message: `r0 = 0x${r0.toString(16)}`, r0 };
}

/** Reads, runs and judges one `.data` file. */
export function runConformanceFile(path: string, options: RunConformanceOptions = {}): ConformanceOutcome {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TsbpfError('io', `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let test: ConformanceTest;
  try {
    test = parseConformanceData(text);
  } catch (e) {
    if (!isTsbpfError(e)) throw e;
    return { file: path, passed: false, message: `${e.code}: ${e.message}`, error: e.message };
  }
  return judgeConformance(path, test, options);
}

export interface ConformanceSummary {
  results: ConformanceOutcome[];
  passed: number;
  failed: number;
}

/** Runs every `.data` file of a directory (sorted by name). */
export function runConformanceDirectory(
  dir: string,
  options: RunConformanceOptions = {},
): ConformanceSummary {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith('.data'))
      .sort();
  } catch (e) {
    throw new TsbpfError('io', `cannot read directory ${dir}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const results = names.map((n) => runConformanceFile(join(dir, n), options));
  const passed = results.filter((r) => r.passed).length;
  return { results, passed, failed: results.length - passed };
}

/**
 * The bpf_conformance plugin protocol: the program's bytes as base16 (what the runner writes to
 * the plugin's stdin), and optionally the memory as base16 (the plugin's argument). Prints r0 in
 * hex; on error prints the message and exits non-zero.
 */
export function runConformancePlugin(
  programHex: string,
  memHex?: string,
  options: RunConformanceOptions = {},
): { stdout: string; exitCode: number } {
  try {
    const program = parseHexBytes(programHex, 'program');
    const mem = memHex !== undefined && memHex.trim() !== '' ? parseHexBytes(memHex, 'memory') : undefined;
    const insns = decode(program);
    const prepared = prepareProgram(insns, {
      helpers: options.helpers ?? CONFORMANCE_HELPERS,
      budget: options.budget ?? 1_000_000,
      engine: options.engine,
      blind: options.blind,
    });
    let r: { r0: bigint };
    try {
      r = prepared.run({ mem });
    } finally {
      prepared.dispose?.();
    }
    return { stdout: `${r.r0.toString(16)}\n`, exitCode: 0 };
  } catch (e) {
    if (!isTsbpfError(e)) throw e;
    return { stdout: `${e.message}\n`, exitCode: 1 };
  }
}
