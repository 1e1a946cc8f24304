import { TsbpfError } from '../../errors.js';
import { parseHexBytes, toHex } from '../../hex.js';
import { decode } from '../../isa/insn.js';
import { DEFAULT_ENGINE, parseEngine, prepareProgram } from '../../vm/engine.js';
import { type Command, helpOption, parseCommandArgs } from '../command.js';
import { readInput } from '../files.js';

export const runRawCommand: Command = {
  name: 'run-raw',
  summary: 'run raw eBPF bytecode on the embedded VM and print r0',
  usage: `Usage: tsbpf run-raw FILE [--mem HEX] [--budget N] [--engine jit|interp] [--json]

Runs the little-endian bytecode in FILE ('-' for standard input) in the interpreter.
  --mem HEX    input memory as hex bytes ('aa bb cc' or 'aabbcc'); r1 points at it, r2 holds its length
  --budget N   stop with an error after N executed instructions (default 10000000)
  --engine E   jit (default): compile to WebAssembly first; interp: the interpreter
  --json       print { "r0": "0x...", "r0Signed": "...", "insnCount": N, "mem": "hex" }
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...helpOption,
        mem: { type: 'string' },
        budget: { type: 'string' },
        engine: { type: 'string' },
        json: { type: 'boolean' },
      },
      { min: 1, max: 1 },
    );
    const mem = values.mem === undefined ? undefined : parseHexBytes(values.mem, '--mem');
    const budget = values.budget === undefined ? undefined : Number(values.budget);
    if (budget !== undefined && !(Number.isSafeInteger(budget) && budget > 0)) {
      throw new TsbpfError('usage', `--budget must be a positive integer, not '${values.budget}'`);
    }
    const engine = parseEngine(values.engine ?? DEFAULT_ENGINE);
    const path = positionals[0]!;
    const bytes = path === '-' ? await io.readStdin() : readInput(path);
    const program = prepareProgram(decode(bytes), { engine, ...(budget ? { budget } : {}) });
    const result = program.run(mem ? { mem } : {});
    program.dispose?.();
    const r0Hex = `0x${result.r0.toString(16)}`;
    if (values.json) {
      const out = {
        r0: r0Hex,
        r0Signed: BigInt.asIntN(64, result.r0).toString(),
        insnCount: result.insnCount,
        ...(result.mem ? { mem: toHex(result.mem, '') } : {}),
      };
      io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      io.stdout(`r0 = ${r0Hex} (${BigInt.asIntN(64, result.r0)})\n`);
    }
    return 0;
  },
};
