/**
 * Records the Linux kernel's verdict for every verifier case (test/data/verifier/*.txt): creates the
 * case's maps, loads the program with BPF_PROG_LOAD at log level 2, closes every fd, and writes the
 * verdict, errno, failing instruction, `processed N insns` and error lines back into the case file.
 *
 *   node dist/scripts/record-verifier-cases.js            record every case (rewrites the files)
 *   node dist/scripts/record-verifier-cases.js --missing  record only cases with no result yet
 *   node dist/scripts/record-verifier-cases.js --check    re-run every case, change nothing, and
 *                                                        list the cases whose stored result differs
 *                                                        from the live kernel (exit 1 if any)
 *   ... FILTER                                           only cases whose file or name contains FILTER
 *   ... --log NAME                                       print the kernel's full log for one case
 *
 * Needs root (or CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN) on Linux. The processed count is part of
 * the check only with --check-processed, since it may move between kernel versions.
 */
import { bpfAvailable } from '../src/kernel/program.js';
import {
  assembleCase,
  formatResult,
  type KernelResult,
  loadCases,
  runKernelCase,
  type VerifierCase,
  writeResults,
} from '../test/support/verifier-cases.js';

function same(a: KernelResult | undefined, b: KernelResult, withProcessed: boolean): boolean {
  if (!a) return false;
  return (
    a.verdict === b.verdict &&
    (a.errno ?? '') === (b.errno ?? '') &&
    a.insn === b.insn &&
    (!withProcessed || a.processed === b.processed) &&
    (a.reason ?? '') === (b.reason ?? '') &&
    a.errors.join('\n') === b.errors.join('\n')
  );
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const missing = argv.includes('--missing');
  const withProcessed = argv.includes('--check-processed');
  const logIdx = argv.indexOf('--log');
  const logName = logIdx >= 0 ? argv[logIdx + 1] : undefined;
  const filters = argv.filter((a, i) => !a.startsWith('--') && (logIdx < 0 || i !== logIdx + 1));

  const avail = bpfAvailable();
  if (!avail.ok) {
    console.error(`record-verifier-cases: cannot use the kernel: ${avail.reason}`);
    return 2;
  }
  let cases = loadCases();
  if (logName !== undefined) {
    const c = cases.find((x) => x.name === logName);
    if (!c) {
      console.error(`no case named '${logName}'`);
      return 2;
    }
    const run = runKernelCase(c);
    console.log(run.log);
    console.log(formatResult(run.result).join('\n'));
    return 0;
  }
  if (filters.length > 0)
    cases = cases.filter((c) => filters.some((f) => c.file.includes(f) || c.name.includes(f)));
  if (missing) cases = cases.filter((c) => !c.kernel);

  const byFile = new Map<string, Map<string, KernelResult>>();
  const changed: string[] = [];
  let accepts = 0;
  let rejects = 0;
  let skips = 0;
  const started = Date.now();
  for (const c of cases) {
    let result: KernelResult;
    try {
      result = runKernelCase(c, assembleCase(c)).result;
    } catch (e) {
      console.error(`${c.file}:${c.line} '${c.name}': ${e instanceof Error ? e.message : String(e)}`);
      return 2;
    }
    if (result.verdict === 'accept') accepts++;
    else if (result.verdict === 'reject') rejects++;
    else skips++;
    if (!same(c.kernel, result, withProcessed || !check)) changed.push(describe(c, result));
    let m = byFile.get(c.file);
    if (!m) {
      m = new Map();
      byFile.set(c.file, m);
    }
    m.set(c.name, result);
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `${cases.length} cases in ${secs}s: kernel accepts ${accepts}, rejects ${rejects}, skipped ${skips}`,
  );
  if (check) {
    if (changed.length === 0) {
      console.log('every stored kernel result matches the live kernel');
      return 0;
    }
    console.log(`${changed.length} cases whose stored result differs from the live kernel:`);
    for (const d of changed) console.log(d);
    return 1;
  }
  for (const [file, results] of byFile) writeResults(file, results);
  console.log(`${changed.length} results new or changed`);
  if (changed.length <= 60) for (const d of changed) console.log(d);
  return 0;
}

function describe(c: VerifierCase, now: KernelResult): string {
  const was = c.kernel ? formatResult(c.kernel).join(' | ') : '(none)';
  return `  ${c.file}:${c.line} ${c.name}\n    stored: ${was}\n    kernel: ${formatResult(now).join(' | ')}`;
}

process.exitCode = main(process.argv.slice(2));
