/**
 * The verifier's differential case suite (issue 5): every case of test/data/verifier/*.txt runs
 * through tsbpf's verifier and is compared with the kernel result recorded in the case file
 * (scripts/record-verifier-cases.ts records them; its --check mode re-asks the live kernel).
 *
 * Figures printed: verdict agreement, error-sentence agreement (over the kernel's rejections), and
 * the disagreements. Asserted:
 * - verdict agreement >= TSBPF_VERIFIER_MIN (percent; default MIN_VERDICT below, the figure last
 *   measured, so it only ratchets up; the Done-means target is 100);
 * - sentence agreement >= TSBPF_VERIFIER_MIN_SENTENCE (default MIN_SENTENCE; target 90);
 * - strictly: tsbpf never accepts a case the kernel rejects for memory safety.
 * TSBPF_VERIFIER_CASES=FILTER runs only the cases whose file or name contains FILTER.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assembleCase,
  type CaseOutcome,
  compare,
  describeOutcome,
  figures,
  isMemorySafetyRejection,
  loadCases,
  loadVerifier,
  runOurs,
  type VerifierCase,
} from './support/verifier-cases.js';

/** The last measured figures (percent). Raise them as the verifier improves; never lower them. */
const MIN_VERDICT = 100;
const MIN_SENTENCE = 100;

const minVerdict = Number(process.env.TSBPF_VERIFIER_MIN ?? MIN_VERDICT);
const minSentence = Number(process.env.TSBPF_VERIFIER_MIN_SENTENCE ?? MIN_SENTENCE);
const filter = process.env.TSBPF_VERIFIER_CASES;

const all = loadCases();
const selected = filter ? all.filter((c) => c.file.includes(filter) || c.name.includes(filter)) : all;
/** Cases the kernel needed more than this many processed insns for run only with TSBPF_LONG=1. */
const LONG_CASE = 50_000;
const long = process.env.TSBPF_LONG === '1';
const isLong = (c: VerifierCase) => (c.kernel?.processed ?? 0) > LONG_CASE;
const recorded = selected.filter((c) => c.kernel && c.kernel.verdict !== 'skip' && (long || !isLong(c)));
const leftLong = selected.filter((c) => !long && isLong(c)).length;

const pct = (n: number) => `${n.toFixed(1)}%`;

describe('verifier case suite: the case files', () => {
  it('hold at least 500 recorded cases, both verdicts well represented', () => {
    const everyRecorded = all.filter((c) => c.kernel && c.kernel.verdict !== 'skip');
    const accepts = everyRecorded.filter((c) => c.kernel?.verdict === 'accept').length;
    const rejects = everyRecorded.length - accepts;
    assert.ok(everyRecorded.length >= 500, `only ${everyRecorded.length} recorded cases`);
    assert.ok(
      accepts >= everyRecorded.length / 3 && rejects >= everyRecorded.length / 3,
      `${accepts}/${rejects}`,
    );
  });

  it('every case has a kernel result (run scripts/record-verifier-cases.ts --missing)', () => {
    const missing = all.filter((c) => !c.kernel).map((c) => `${c.file}:${c.line} ${c.name}`);
    assert.deepEqual(missing, []);
  });

  it('every case assembles', () => {
    for (const c of all) assert.ok(assembleCase(c).length > 0 || c.asm.trim() === '', c.name);
  });

  it('skips only what the kernel could not be asked (unprivileged cases)', () => {
    const odd = all.filter((c) => c.kernel?.verdict === 'skip' && !c.unpriv).map((c) => c.name);
    assert.deepEqual(odd, []);
  });

  it('every rejection carries the kernel errno and an error sentence', () => {
    const bad = all
      .filter((c) => c.kernel?.verdict === 'reject' && (!c.kernel.errno || c.kernel.errors.length === 0))
      .map((c) => `${c.file}:${c.line} ${c.name}`);
    assert.deepEqual(bad, []);
  });
});

describe('verifier case suite: tsbpf against the recorded kernel verdicts', async () => {
  const v = await loadVerifier();
  const skip = v.verify ? false : v.reason;
  const outcomes: CaseOutcome[] = [];
  let elapsed = 0;
  const slow: { c: VerifierCase; ms: number }[] = [];

  const run = () => {
    if (outcomes.length > 0 || !v.verify) return outcomes;
    const started = performance.now();
    for (const c of recorded) {
      const t0 = performance.now();
      const ours = runOurs(v.verify, c, 0);
      slow.push({ c, ms: performance.now() - t0 });
      outcomes.push(compare(c, c.kernel!, ours));
    }
    elapsed = performance.now() - started;
    return outcomes;
  };

  it('reports agreement figures and meets the ratchet', { skip }, () => {
    const out = run();
    const f = figures(out);
    const lines: string[] = [];
    lines.push(
      `verifier suite: ${f.cases} cases in ${(elapsed / 1000).toFixed(2)}s; verdict agreement ${f.verdictAgree}/${f.cases} = ${pct(f.verdictPct)}; ` +
        `error sentence agreement ${f.sentenceAgree}/${out.filter((o) => o.kernel.verdict === 'reject').length} kernel rejections = ${pct(f.sentencePct)}`,
    );
    const byFile = new Map<string, CaseOutcome[]>();
    for (const o of out) byFile.set(o.c.file, [...(byFile.get(o.c.file) ?? []), o]);
    for (const [file, os] of byFile) {
      const ff = figures(os);
      lines.push(
        `  ${file.padEnd(20)} verdict ${pct(ff.verdictPct).padStart(6)}  sentence ${pct(ff.sentencePct).padStart(6)}  (${os.length} cases)`,
      );
    }
    const processedSame = out.filter(
      (o) =>
        !('threw' in o.ours) &&
        o.kernel.processed !== undefined &&
        o.ours.stats.processed === o.kernel.processed,
    ).length;
    if (leftLong > 0)
      lines.push(`  (${leftLong} cases of over ${LONG_CASE} processed insns run only with TSBPF_LONG=1)`);
    lines.push(`  processed-insns count identical in ${processedSame}/${out.length} cases (informational)`);
    const verdictMiss = out.filter((o) => !o.verdictAgrees);
    if (verdictMiss.length > 0) {
      lines.push(`verdict disagreements (${verdictMiss.length}):`);
      for (const o of verdictMiss.slice(0, 80)) lines.push(`  ${describeOutcome(o)}`);
      if (verdictMiss.length > 80) lines.push(`  ... and ${verdictMiss.length - 80} more`);
    }
    const sentenceMiss = out.filter((o) => o.sentenceAgrees === false);
    if (sentenceMiss.length > 0) {
      lines.push(`sentence disagreements (${sentenceMiss.length}):`);
      for (const o of sentenceMiss.slice(0, 60)) lines.push(`  ${describeOutcome(o)}`);
      if (sentenceMiss.length > 60) lines.push(`  ... and ${sentenceMiss.length - 60} more`);
    }
    slow.sort((a, b) => b.ms - a.ms);
    lines.push(
      `slowest: ${slow
        .slice(0, 3)
        .map((s) => `${s.c.name} ${s.ms.toFixed(0)}ms`)
        .join(', ')}`,
    );
    console.log(lines.join('\n'));
    assert.ok(
      f.verdictPct >= minVerdict,
      `verdict agreement ${pct(f.verdictPct)} fell below ${minVerdict}% (TSBPF_VERIFIER_MIN)`,
    );
    assert.ok(
      f.sentencePct >= minSentence,
      `sentence agreement ${pct(f.sentencePct)} fell below ${minSentence}% (TSBPF_VERIFIER_MIN_SENTENCE)`,
    );
  });

  it('never accepts a program the kernel rejects for memory safety', { skip }, () => {
    const f = figures(run());
    const unsafe = f.unsafeAccepts.map(describeOutcome);
    assert.equal(
      unsafe.length,
      0,
      `tsbpf accepts ${unsafe.length} programs the kernel rejects for memory safety:\n${unsafe.join('\n')}`,
    );
  });

  it('never throws on a case (a rejection is a result, not an exception)', { skip }, () => {
    const threw = run()
      .filter((o) => 'threw' in o.ours)
      .map((o) => `${o.c.file}:${o.c.line} ${o.c.name}: ${'threw' in o.ours ? o.ours.threw : ''}`);
    assert.deepEqual(threw, []);
  });

  it('classifies the kernel rejections it counts as memory safety', () => {
    // guards the classifier itself: the bulk of the suite's rejections are memory-safety ones
    const rejects = all.filter((c) => c.kernel?.verdict === 'reject');
    const safety = rejects.filter((c) => isMemorySafetyRejection(c.kernel!));
    assert.ok(safety.length >= rejects.length / 2, `${safety.length}/${rejects.length}`);
    const policy = rejects.filter((c) => !isMemorySafetyRejection(c.kernel!)).map((c) => c.kernel!.errors[0]);
    assert.ok(policy.some((m) => m?.startsWith('unreachable insn')));
  });
});
