import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { disassemble, disassembleLines, disassembleObject, formatInsn } from '../src/isa/disasm.js';
import { decode, encode, type Insn } from '../src/isa/insn.js';
import { codeSections, readElf } from '../src/object/elf.js';
import {
  fixtureNames,
  hasTool,
  LLVM_MC,
  loadFixture,
  OBJDUMP,
  objdumpReference,
  run,
} from './support/fixtures.js';

const bytesOf = (hex: string): Uint8Array =>
  Uint8Array.from(hex.trim().split(/\s+/), (h) => Number.parseInt(h, 16));
const text = (hex: string, alu32 = false): string => formatInsn(decode(bytesOf(hex))[0], { alu32 });

/** `   12:\t<bytes>\t<text>` → { pc, bytes, text } with the `<sym+0x..>` branch annotation removed. */
function insnLine(line: string): { pc: number; bytes: string; text: string } | undefined {
  const m = /^\s*(\d+):\t([0-9a-f]{2}(?: [0-9a-f]{2})*)\t(.*)$/.exec(line);
  if (!m) return undefined;
  return { pc: Number(m[1]), bytes: m[2], text: m[3].replace(/ <[^<>]*>$/, '') };
}

/** 32-bit atomics other than `lock +=`: plain llvm-objdump (no --mcpu) cannot decode them; we print the alu32 form. */
const isAtomic32WithImm = (bytes: string): boolean =>
  bytes.startsWith('c3 ') && !bytes.endsWith('00 00 00 00');

describe('formatInsn: LLVM 19 syntax (fixed table, no tools needed)', () => {
  const table: [string, string, boolean?][] = [
    ['61 10 04 00 00 00 00 00', 'r0 = *(u32 *)(r1 + 0x4)'],
    ['61 10 04 00 00 00 00 00', 'w0 = *(u32 *)(r1 + 0x4)', true],
    ['71 10 fc ff 00 00 00 00', 'r0 = *(u8 *)(r1 - 0x4)'],
    ['7b 1a f8 ff 00 00 00 00', '*(u64 *)(r10 - 0x8) = r1'],
    ['63 1a f8 ff 00 00 00 00', '*(u32 *)(r10 - 0x8) = w1', true],
    ['62 0a f8 ff 05 00 00 00', '*(u32 *)(r10 - 0x8) = 0x5'],
    ['6a 0a f8 ff fb ff ff ff', '*(u16 *)(r10 - 0x8) = -0x5'],
    ['bc 10 00 00 00 00 00 00', 'w0 = w1'],
    ['07 01 00 00 ff ff ff ff', 'r1 += -0x1'],
    ['b7 01 00 00 00 00 00 80', 'r1 = -0x80000000'],
    ['25 01 02 00 05 00 00 00', 'if r1 > 0x5 goto +0x2'],
    ['ce 21 fd ff 00 00 00 00', 'if w1 s< w2 goto -0x3'],
    ['16 01 01 00 ff ff ff ff', 'if w1 == -0x1 goto +0x1'],
    ['45 01 01 00 10 00 00 00', 'if r1 & 0x10 goto +0x1'],
    ['18 01 00 00 88 77 66 55 00 00 00 00 44 33 22 11', 'r1 = 0x1122334455667788 ll'],
    ['18 01 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff', 'r1 = -0x1 ll'],
    ['18 11 00 00 07 00 00 00 00 00 00 00 00 00 00 00', 'ld_pseudo\tr1, 0x1, 0x7'],
    ['85 00 00 00 01 00 00 00', 'call 0x1'],
    ['85 10 00 00 ff ff ff ff', 'call -0x1'],
    ['8d 02 00 00 00 00 00 00', 'callx r2'],
    ['95 00 00 00 00 00 00 00', 'exit'],
    ['dc 01 00 00 10 00 00 00', 'r1 = be16 r1'],
    ['d4 01 00 00 20 00 00 00', 'r1 = le32 r1'],
    ['d7 01 00 00 40 00 00 00', 'r1 = bswap64 r1'],
    ['3f 21 01 00 00 00 00 00', 'r1 s/= r2'],
    ['94 01 01 00 03 00 00 00', 'w1 s%= 0x3'],
    ['bf 21 08 00 00 00 00 00', 'r1 = (s8)r2'],
    ['bc 21 10 00 00 00 00 00', 'w1 = (s16)w2'],
    ['89 21 00 00 00 00 00 00', 'r1 = *(s16 *)(r2 + 0x0)'],
    ['06 00 00 00 05 00 00 00', 'gotol +0x5'],
    ['05 00 ff ff 00 00 00 00', 'goto -0x1'],
    ['db 21 00 00 00 00 00 00', 'lock *(u64 *)(r1 + 0x0) += r2'],
    ['c3 21 00 00 00 00 00 00', 'lock *(u32 *)(r1 + 0x0) += r2'],
    ['c3 21 00 00 00 00 00 00', 'lock *(u32 *)(r1 + 0x0) += w2', true],
    ['db 21 00 00 01 00 00 00', 'r2 = atomic_fetch_add((u64 *)(r1 + 0x0), r2)'],
    ['c3 21 00 00 51 00 00 00', 'w2 = atomic_fetch_and((u32 *)(r1 + 0x0), w2)'],
    ['db 21 00 00 f1 00 00 00', 'r0 = cmpxchg_64(r1 + 0x0, r0, r2)'],
    ['c3 21 00 00 f1 00 00 00', 'w0 = cmpxchg32_32(r1 + 0x0, w0, w2)'],
    ['db 21 00 00 e1 00 00 00', 'r2 = xchg_64(r1 + 0x0, r2)'],
    ['30 00 00 00 01 00 00 00', 'r0 = *(u8 *)skb[0x1]'],
    ['48 10 00 00 00 00 00 00', 'r0 = *(u16 *)skb[r1]'],
    ['87 01 00 00 00 00 00 00', 'r1 = -r1'],
    ['84 01 00 00 00 00 00 00', 'w1 = -w1'],
    ['c4 01 00 00 1f 00 00 00', 'w1 s>>= 0x1f'],
  ];
  for (const [hex, want, alu32] of table) {
    it(`${hex} → ${want}${alu32 ? ' (alu32)' : ''}`, () => assert.equal(text(hex, alu32), want));
  }
  it('prints invalid instructions clearly', () => {
    assert.equal(text('ff 00 00 00 00 00 00 00'), '<unknown opcode 0xff>');
    assert.equal(text('e5 00 00 00 00 00 00 00'), '<unknown opcode 0xe5>');
    assert.match(text('0f 21 00 00 07 00 00 00'), /^<invalid: BPF_ALU64 uses reserved fields>$/);
    assert.match(text('07 0b 00 00 00 00 00 00'), /^<invalid: R11 is invalid>$/);
    assert.match(text('18 01 00 00 00 00 00 00'), /^<invalid: .*second half/);
    assert.match(text('37 01 00 00 00 00 00 00'), /^<invalid: div by zero>$/);
  });
  it('formats Insn objects without a decoder problem field (validates them itself)', () => {
    const insn: Insn = { code: 0x07, dst: 1, src: 0, off: 0, imm: 5 };
    assert.equal(formatInsn(insn), 'r1 += 0x5');
    assert.equal(formatInsn({ ...insn, dst: 12 }), '<invalid: R12 is invalid>');
  });
});

describe('disassemble layout', () => {
  const code = bytesOf(
    '18 01 00 00 88 77 66 55 00 00 00 00 44 33 22 11  25 01 01 00 05 00 00 00  b7 00 00 00 01 00 00 00  95 00 00 00 00 00 00 00',
  );
  it('lays out slot index, bytes and text like llvm-objdump', () => {
    assert.deepEqual(disassembleLines(code), [
      '       0:\t18 01 00 00 88 77 66 55 00 00 00 00 44 33 22 11\tr1 = 0x1122334455667788 ll',
      '       2:\t25 01 01 00 05 00 00 00\tif r1 > 0x5 goto +0x1',
      '       3:\tb7 00 00 00 01 00 00 00\tr0 = 0x1',
      '       4:\t95 00 00 00 00 00 00 00\texit',
    ]);
  });
  it('adds symbol headers and branch annotations when given symbols', () => {
    const lines = disassembleLines(code, {
      symbols: [
        { name: 'prog', value: 0, type: 2 },
        { name: 'tail', value: 32 },
      ],
    });
    assert.equal(lines[0], '0000000000000000 <prog>:');
    assert.equal(lines[2], '       2:\t25 01 01 00 05 00 00 00\tif r1 > 0x5 goto +0x1 <tail>');
    assert.equal(lines[4], '');
    assert.equal(lines[5], '0000000000000020 <tail>:');
  });
  it('accepts decoded instructions as well as bytes, and can omit the bytes', () => {
    assert.equal(disassemble(decode(code)), disassemble(code));
    assert.equal(disassembleLines(code, { rawBytes: false })[3], '       4:\texit');
  });
});

describe('fixtures: our disassembly equals llvm-objdump-19 -d', () => {
  const names = fixtureNames();
  it('has fixtures', () => assert.ok(names.length >= 8, `only ${names.length} fixtures`));
  for (const name of names) {
    for (const v4 of [false, true]) {
      it(`${name}${v4 ? ' (--mcpu=v4 / alu32)' : ''}`, (t) => {
        const ref = objdumpReference(name, v4);
        if (ref === undefined)
          return t.skip(`neither ${OBJDUMP} nor fixtures/obj/${name}.objdump is available`);
        if (ref.source === 'committed')
          t.diagnostic(`${OBJDUMP} missing: comparing with the committed reference`);
        const elf = readElf(loadFixture(name));
        const ours = disassembleObject(codeSections(elf), {
          fileName: `${name}.o`,
          bigEndian: elf.bigEndian,
          alu32: v4,
        });
        const theirs = ref.text.split('\n');
        const mine = ours.split('\n');
        const alt = v4 ? undefined : objdumpReference(name, true)?.text.split('\n');
        assert.equal(mine.length, theirs.length, 'line count');
        let deviations = 0;
        for (let i = 0; i < theirs.length; i++) {
          if (mine[i] === theirs[i]) continue;
          // The one documented deviation: 32-bit atomics that plain llvm-objdump cannot decode print in alu32 form.
          const l = insnLine(theirs[i]);
          if (
            !v4 &&
            l !== undefined &&
            isAtomic32WithImm(l.bytes) &&
            alt !== undefined &&
            mine[i] === alt[i]
          ) {
            deviations++;
            continue;
          }
          assert.equal(mine[i], theirs[i], `line ${i + 1}`);
        }
        if (deviations > 0)
          t.diagnostic(`${deviations} 32-bit atomics printed in alu32 form (llvm: <unknown>)`);
      });
    }
  }
});

describe('decode → encode round-trips every fixture code section', () => {
  for (const name of fixtureNames()) {
    it(name, () => {
      const elf = readElf(loadFixture(name));
      for (const s of codeSections(elf)) {
        const insns = decode(s.data, { bigEndian: elf.bigEndian });
        for (const i of insns) assert.equal(i.problem, undefined, `${s.name} pc ${i.pc}: ${i.problem}`);
        assert.deepEqual(encode(insns, { bigEndian: elf.bigEndian }), s.data, s.name);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Every opcode, assembled with llvm-mc-19 as raw bytes and disassembled by llvm-objdump-19.

/** Field variants tried for every one of the 256 opcodes; LD_IMM64 gets a second slot. */
function opcodeCorpus(): number[][] {
  const out: number[][] = [];
  const emit = (code: number, dst: number, src: number, off: number, imm: number) => {
    const b = [
      code,
      (src << 4) | dst,
      off & 0xff,
      (off >> 8) & 0xff,
      imm & 0xff,
      (imm >>> 8) & 0xff,
      (imm >>> 16) & 0xff,
      imm >>> 24,
    ];
    if (code === 0x18) b.push(0, 0, 0, 0, 0x44, 0x33, 0x22, 0x91);
    out.push(b);
  };
  const variants: number[][] = [
    [1, 2, 0, 0],
    [1, 0, 0, 5],
    [1, 2, -3, 0],
    [1, 0, 7, -7],
    [0, 0, 0, 0],
    [10, 0, -512, 0x7fffffff],
    [3, 9, 0x7fff, -0x80000000],
    [1, 0, 1, 3],
    [1, 2, 1, 0],
  ];
  for (const o of [8, 16, 32]) variants.push([1, 2, o, 0]);
  for (const i of [16, 32, 64, 63, 31]) variants.push([1, 0, 0, i]);
  for (const i of [0, 1, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1, 0x100, 0x110])
    variants.push([1, 2, 0, i], [4, 5, -8, i]);
  for (const s of [1, 2, 3, 4, 5, 6]) variants.push([1, s, 0, 7]);
  for (let code = 0; code < 256; code++) for (const [d, s, o, i] of variants) emit(code, d, s, o, i);
  return out;
}

/** Where we knowingly differ from llvm-objdump-19 (documented in src/isa/disasm.ts). */
function deviation(bytes: number[], alu32: boolean): string | undefined {
  const [code] = bytes;
  const imm = (bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24)) >>> 0;
  if ((code === 0x40 || code === 0x48 || code === 0x50) && imm !== 0) return 'LD_IND imm (llvm drops it)';
  if ((code & 0xe7) === 0xc3 && (imm === 0x100 || imm === 0x110))
    return 'load_acquire/store_release (LLVM 20+ syntax)';
  if (code === 0xc3 && imm !== 0 && !alu32) return '32-bit atomic without --mcpu (llvm: <unknown>)';
  return undefined;
}

describe('every opcode: formatInsn equals llvm-objdump-19 (llvm-mc-19 assembled)', () => {
  for (const alu32 of [false, true]) {
    it(alu32 ? '--mcpu=v4 (alu32)' : 'plain -d', (t) => {
      if (!hasTool(LLVM_MC) || !hasTool(OBJDUMP)) return t.skip(`${LLVM_MC} or ${OBJDUMP} not installed`);
      const corpus = opcodeCorpus();
      const dir = mkdtempSync(join(tmpdir(), 'tsbpf-disasm-'));
      try {
        writeFileSync(
          join(dir, 'all.s'),
          `.text\n${corpus.map((b) => `.byte ${b.join(', ')}`).join('\n')}\n`,
        );
        run(LLVM_MC, [
          '-triple',
          'bpf',
          '-mcpu=v4',
          '-filetype=obj',
          join(dir, 'all.s'),
          '-o',
          join(dir, 'all.o'),
        ]);
        const args = alu32 ? ['-d', '--mcpu=v4', join(dir, 'all.o')] : ['-d', join(dir, 'all.o')];
        const llvm = new Map<number, string>();
        for (const line of run(OBJDUMP, args).split('\n')) {
          const l = insnLine(line);
          if (l) llvm.set(l.pc, l.text);
        }
        assert.deepEqual([...readFileSync(join(dir, 'all.o')).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
        let pc = 0;
        let matched = 0;
        let deviations = 0;
        let invalid = 0;
        const validOpcodes = new Set<number>();
        for (const b of corpus) {
          const here = pc;
          pc += b.length / 8;
          const [insn] = decode(Uint8Array.from(b));
          const ours = formatInsn(insn, { alu32 });
          if (insn.problem !== undefined) {
            invalid++;
            assert.match(ours, /^<(unknown opcode 0x[0-9a-f]{2}|invalid: .+)>$/);
            continue;
          }
          validOpcodes.add(b[0]);
          const theirs = llvm.get(here);
          assert.notEqual(theirs, undefined, `no llvm line at ${here}`);
          if (ours === theirs) {
            matched++;
            continue;
          }
          const why = deviation(b, alu32);
          const hex = b.map((x) => x.toString(16).padStart(2, '0')).join(' ');
          assert.ok(why !== undefined, `${hex}: ours ${JSON.stringify(ours)} llvm ${JSON.stringify(theirs)}`);
          deviations++;
        }
        // Every opcode byte the ISA defines is exercised: ALU 27 + ALU64 26 + JMP 26 + JMP32 23 + LD 7 + LDX 7
        // + ST 4 + STX 8 (4 MEM, 4 ATOMIC) = 128.
        assert.equal(validOpcodes.size, 128, 'valid opcodes exercised');
        t.diagnostic(
          `${matched} match, ${deviations} documented deviations, ${invalid} invalid, ${validOpcodes.size} opcodes`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
