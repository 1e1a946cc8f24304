import { TsbpfError } from '../../errors.js';
import { runConformanceDirectory, runConformancePlugin } from '../../testing/conformance.js';
import { type Command, helpOption, parseCommandArgs } from '../command.js';

export const conformanceCommand: Command = {
  name: 'conformance',
  summary: "run bpf_conformance '.data' tests on the embedded VM",
  usage: `Usage: tsbpf conformance DIR [--budget N] [--verbose] [--json]

Runs every '.data' file of DIR (bpf_conformance's format: '-- asm' or '-- raw', '-- mem', '-- result'
or '-- error') in the interpreter, prints each failure, then a 'N passed, N failed' line.
Exits 0 when every test passed, 1 otherwise.
  --budget N   instruction budget per test (default 1000000)
  --verbose    print every test, not only failures
  --json       print { "passed", "failed", "results": [{ "file", "passed", "message" }] }
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      { ...helpOption, budget: { type: 'string' }, verbose: { type: 'boolean' }, json: { type: 'boolean' } },
      { min: 1, max: 1 },
    );
    const budget = values.budget === undefined ? undefined : Number(values.budget);
    if (budget !== undefined && !(Number.isSafeInteger(budget) && budget > 0)) {
      throw new TsbpfError('usage', `--budget must be a positive integer, not '${values.budget}'`);
    }
    const summary = runConformanceDirectory(positionals[0]!, budget ? { budget } : {});
    if (values.json) {
      const results = summary.results.map(({ file, passed, message }) => ({ file, passed, message }));
      io.stdout(`${JSON.stringify({ passed: summary.passed, failed: summary.failed, results }, null, 2)}\n`);
    } else {
      for (const r of summary.results) {
        if (!r.passed || values.verbose) io.stdout(`${r.passed ? 'PASS' : 'FAIL'} ${r.file}: ${r.message}\n`);
      }
      io.stdout(`${summary.passed} passed, ${summary.failed} failed\n`);
    }
    return summary.failed === 0 ? 0 : 1;
  },
};

export const conformancePluginCommand: Command = {
  name: 'conformance-plugin',
  summary: "bpf_conformance's plugin protocol: program hex on stdin, r0 in hex on stdout",
  usage: `Usage: tsbpf conformance-plugin [MEMORY_HEX] < PROGRAM_HEX

Speaks the protocol of bpf_conformance's test runner (--plugin_path): reads the program's bytes as
base16 from standard input, takes the input memory as base16 in the first argument (r1 points at it,
r2 holds its length), runs the program and prints r0 in hex. On error prints the reason and exits 1.
`,
  async run(argv, io) {
    const { positionals } = parseCommandArgs(argv, { ...helpOption }, { min: 0, max: 1 });
    const program = new TextDecoder().decode(await io.readStdin());
    const { stdout, exitCode } = runConformancePlugin(program, positionals[0]);
    (exitCode === 0 ? io.stdout : io.stderr)(stdout);
    return exitCode;
  },
};
