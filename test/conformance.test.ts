import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encode } from '../src/isa/insn.js';
import {
  conformanceProgram,
  parseConformanceData,
  runConformanceDirectory,
  runConformanceFile,
  runConformancePlugin,
} from '../src/testing/conformance.js';
import { ENGINES } from '../src/vm/engine.js';
import { CORPORA } from './support/fixtures.js';

const CORPUS = join(CORPORA, 'bpf_conformance');
const TESTS = join(CORPUS, 'tests');
const NEGATIVE = join(CORPUS, 'negative');
const dataFiles = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.data'))
    .sort();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

for (const engine of ENGINES) {
  describe(`bpf_conformance tests/ [${engine}]`, () => {
    test('the directory runner passes all 313 files', () => {
      const summary = runConformanceDirectory(TESTS, { engine });
      const failures = summary.results.filter((r) => !r.passed).map((r) => `${r.file}: ${r.message}`);
      assert.deepEqual(failures, []);
      assert.equal(summary.passed, 313);
      assert.equal(summary.failed, 0);
    });

    for (const name of dataFiles(TESTS)) {
      test(name, () => {
        const r = runConformanceFile(join(TESTS, name), { engine });
        assert.ok(r.passed, r.message);
      });
    }

    test('plugin protocol on every file: bytes in, r0 in hex out', () => {
      const names = dataFiles(TESTS);
      assert.equal(names.length, 313);
      for (const name of names) {
        const t = parseConformanceData(readFileSync(join(TESTS, name), 'utf8'));
        const program = hex(encode(conformanceProgram(t)));
        const out = runConformancePlugin(program, t.mem ? hex(t.mem) : undefined, { engine });
        assert.equal(out.exitCode, 0, `${name}: ${out.stdout}`);
        assert.equal(out.stdout, `${(t.result as bigint).toString(16)}\n`, name);
      }
    });

    test('plugin protocol: errors exit non-zero with a message', () => {
      const bad = runConformancePlugin('0710000001000000' + '9500000000000000', undefined, { engine });
      assert.equal(bad.exitCode, 1);
      assert.match(bad.stdout, /pc 0: BPF_ALU64 uses reserved fields/);
      const oob = runConformancePlugin('6110000000000000' + 'b700000000000000' + '9500000000000000', '0102', {
        engine,
      });
      assert.equal(oob.exitCode, 1);
      assert.match(oob.stdout, /pc 0: invalid read of 4 bytes/);
      assert.equal(runConformancePlugin('zz', undefined, { engine }).exitCode, 1);
      // helper 5 (unwind) with r1 = 0 stops the program with r0 = 0
      const unwind = runConformancePlugin(
        'b701000000000000' + '8500000005000000' + 'b700000002000000' + '9500000000000000',
        undefined,
        { engine },
      );
      assert.deepEqual(unwind, { stdout: '0\n', exitCode: 0 });
    });
  });

  describe(`bpf_conformance negative/ [${engine}]`, () => {
    const names = dataFiles(NEGATIVE);
    test('there are 60 negative files', () => {
      assert.equal(names.length, 60);
    });
    const assemblerLevel = new Set([
      'invalid_imm32_dec_range.data',
      'invalid_imm32_hex_range.data',
      'invalid_label.data',
      'invalid_lock.data',
      'invalid_lock2.data',
      'invalid_mnemonic.data',
      'invalid_offset.data',
      'invalid_offset_range.data',
      'invalid_operand_count.data',
      'invalid_register.data',
    ]);
    for (const name of names) {
      test(name, () => {
        const r = runConformanceFile(join(NEGATIVE, name), { engine });
        if (name === 'incorrect_return_value_high_bits.data') {
          // runs fine, but the file's expected value is wrong: the judge must say so
          assert.equal(r.passed, false);
          assert.match(r.message, /expected 0x8977665544332211/);
          return;
        }
        assert.ok(r.error !== undefined, `expected an error, got: ${r.message}`);
        assert.ok(r.message.length > 0);
        if (assemblerLevel.has(name))
          assert.match(r.message, /^(failed as expected \()?asm: line \d+, column \d+: /);
        if (name.startsWith('unused-')) assert.match(r.message, /decode: pc 0: .*(reserved fields)/);
      });
    }
  });
}
