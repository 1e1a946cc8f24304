import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TsbpfError } from '../src/errors.js';
import { disassembleObject } from '../src/isa/disasm.js';
import {
  codeSections,
  type ElfFile,
  EM_BPF,
  ET_REL,
  readElf,
  relocationsFor,
  SHF_EXECINSTR,
  SHT_RELA,
  SHT_SYMTAB,
  sectionByName,
  symbolsOf,
} from '../src/object/elf.js';
import {
  CLANG,
  FIXTURES,
  fixtureNames,
  fixturePath,
  hasTool,
  loadFixture,
  OBJDUMP,
  prng,
  READELF,
  run,
} from './support/fixtures.js';

const SECTION_TYPES: Record<string, number> = {
  NULL: 0,
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  RELA: 4,
  NOBITS: 8,
  REL: 9,
  LLVM_ADDRSIG: 0x6fff4c03,
};
const SYM_TYPES: Record<string, number> = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4 };
const SYM_BINDS: Record<string, number> = { LOCAL: 0, GLOBAL: 1, WEAK: 2 };
const SYM_VIS: Record<string, number> = { DEFAULT: 0, INTERNAL: 1, HIDDEN: 2, PROTECTED: 3 };

/** Checks sections, symbols and relocations against `llvm-readelf-19 -S -s -r -W`. */
function compareWithReadelf(elf: ElfFile, path: string): void {
  const out = run(READELF, ['-S', '-s', '-r', '-W', path]).split('\n');
  let sections = 0;
  let symbols = 0;
  let relocs = 0;
  let relSection: string | undefined;
  let relIndex = 0;
  for (const line of out) {
    const s =
      /^\s*\[\s*(\d+)\]\s+(\S*)\s+(\S+)\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([A-Za-z]*)\s+(\d+)\s+(\d+)\s+(\d+)$/.exec(
        line,
      );
    if (s) {
      const sec = elf.sections[Number(s[1])];
      assert.ok(sec, `section ${s[1]}`);
      assert.equal(sec.name, s[2], `section ${s[1]} name`);
      if (SECTION_TYPES[s[3]] !== undefined) assert.equal(sec.type, SECTION_TYPES[s[3]], `${sec.name} type`);
      assert.equal(sec.addr, Number.parseInt(s[4], 16));
      assert.equal(sec.offset, Number.parseInt(s[5], 16), `${sec.name} offset`);
      assert.equal(sec.size, Number.parseInt(s[6], 16), `${sec.name} size`);
      assert.equal(sec.data.length, sec.type === 8 ? 0 : sec.size);
      assert.equal(sec.entsize, Number.parseInt(s[7], 16), `${sec.name} entsize`);
      assert.equal((sec.flags & 1) !== 0, s[8].includes('W'), `${sec.name} W`);
      assert.equal((sec.flags & 2) !== 0, s[8].includes('A'), `${sec.name} A`);
      assert.equal((sec.flags & 4) !== 0, s[8].includes('X'), `${sec.name} X`);
      assert.equal(sec.link, Number(s[9]), `${sec.name} link`);
      assert.equal(sec.info, Number(s[10]), `${sec.name} info`);
      assert.equal(sec.addralign, Number(s[11]), `${sec.name} align`);
      sections++;
      continue;
    }
    const y = /^\s*(\d+):\s+([0-9a-f]{16})\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+) ?(.*)$/.exec(line);
    if (y) {
      const sym = elf.symbols[Number(y[1])];
      assert.ok(sym, `symbol ${y[1]}`);
      assert.equal(sym.name, y[8], `symbol ${y[1]} name`);
      assert.equal(sym.value, Number.parseInt(y[2], 16), `${sym.name} value`);
      assert.equal(sym.size, Number(y[3]), `${sym.name} size`);
      assert.equal(sym.type, SYM_TYPES[y[4]], `${sym.name} type`);
      assert.equal(sym.bind, SYM_BINDS[y[5]], `${sym.name} bind`);
      assert.equal(sym.visibility, SYM_VIS[y[6]], `${sym.name} visibility`);
      const ndx = y[7] === 'UND' ? 0 : y[7] === 'ABS' ? 0xfff1 : y[7] === 'COM' ? 0xfff2 : Number(y[7]);
      assert.equal(sym.shndx, ndx, `${sym.name} shndx`);
      if (ndx > 0 && ndx < 0xff00) assert.equal(sym.sectionName, elf.sections[ndx].name);
      symbols++;
      continue;
    }
    const h = /^Relocation section '(.*)' at offset 0x([0-9a-f]+) contains (\d+) entries:$/.exec(line);
    if (h) {
      relSection = h[1];
      relIndex = 0;
      const rs = elf.relocations.find((r) => r.section.name === relSection);
      assert.ok(rs, `relocation section ${relSection}`);
      assert.equal(rs.section.offset, Number.parseInt(h[2], 16));
      assert.equal(rs.entries.length, Number(h[3]));
      continue;
    }
    const r = /^([0-9a-f]{16})\s+([0-9a-f]{16})\s+(\S+)/.exec(line);
    if (r && relSection !== undefined) {
      const rs = elf.relocations.find((x) => x.section.name === relSection);
      const e = rs?.entries[relIndex++];
      assert.ok(e, `relocation ${relIndex} of ${relSection}`);
      const info = BigInt(`0x${r[2]}`);
      assert.equal(e.offset, Number.parseInt(r[1], 16));
      assert.equal(e.symbol, Number(info >> 32n));
      assert.equal(e.type, Number(info & 0xffffffffn));
      relocs++;
    }
  }
  assert.equal(sections, elf.sections.length, 'every section compared');
  assert.equal(symbols, elf.symbols.length, 'every symbol compared');
  assert.equal(
    relocs,
    elf.relocations.reduce((n, r) => n + r.entries.length, 0),
    'every relocation compared',
  );
}

describe('readElf on every fixture', () => {
  for (const name of fixtureNames()) {
    it(name, (t) => {
      const elf = readElf(loadFixture(name));
      assert.equal(elf.header.machine, EM_BPF);
      assert.equal(elf.header.type, ET_REL);
      assert.equal(elf.bigEndian, name.endsWith('.bpfeb'));
      assert.ok(sectionByName(elf, 'license'), 'license section');
      assert.ok(sectionByName(elf, '.BTF'), '.BTF section');
      assert.ok(
        codeSections(elf).some((s) => s.data.length > 0),
        'some code',
      );
      for (const rs of elf.relocations) {
        assert.ok(rs.target > 0 && rs.target < elf.sections.length);
        assert.equal(rs.rela, rs.section.type === SHT_RELA);
      }
      if (!hasTool(READELF)) return t.skip(`${READELF} not installed: structure checked, not compared`);
      compareWithReadelf(elf, fixturePath(name));
    });
  }
});

describe('readElf: what the objects layer needs', () => {
  it('xdp_parser: map symbol in .maps, a relocation on the map load, the program symbol', () => {
    const elf = readElf(loadFixture('xdp_parser'));
    const maps = symbolsOf(elf, '.maps');
    assert.deepEqual(
      maps.map((s) => s.name),
      ['proto_count'],
    );
    const prog = symbolsOf(elf, 'xdp').find((s) => s.type === 2);
    assert.equal(prog?.name, 'xdp_count_proto');
    const relocs = relocationsFor(elf, 'xdp');
    assert.ok(relocs.length >= 1);
    for (const r of relocs) {
      assert.equal(r.symbolName, 'proto_count');
      assert.equal(r.type, 1); // R_BPF_64_64
      assert.equal(
        elf.bytes[sectionByName(elf, 'xdp')!.offset + r.offset],
        0x18,
        'relocation on an LD_IMM64',
      );
    }
  });
  it('globals: .rodata/.data/.bss and a custom .data.table section with their variables', () => {
    const elf = readElf(loadFixture('globals'));
    const names = (sec: string) =>
      symbolsOf(elf, sec)
        .map((s) => s.name)
        .sort();
    assert.deepEqual(names('.rodata'), ['greeting', 'threshold']);
    assert.deepEqual(names('.data'), ['packets']);
    assert.deepEqual(names('.bss'), ['dropped', 'sizes']);
    assert.deepEqual(names('.data.table'), ['table']);
    assert.equal(sectionByName(elf, '.bss')!.data.length, 0, 'NOBITS has no bytes');
  });
  it('subprog and tail_call: several functions in one code section', () => {
    const sub = codeSections(readElf(loadFixture('subprog')));
    const text = sub.find((s) => s.name === '.text')!;
    assert.deepEqual(
      text.symbols
        .filter((s) => s.type === 2)
        .map((s) => s.name)
        .sort(),
      ['clamp', 'fold', 'mix'],
    );
    const tc = codeSections(readElf(loadFixture('tail_call'))).find((s) => s.name === 'xdp')!;
    assert.equal(tc.symbols.filter((s) => s.type === 2).length, 3);
    assert.ok(
      relocationsFor(readElf(loadFixture('tail_call')), '.maps').length >= 2,
      'prog array initial values',
    );
  });
  it('big endian: the bpfeb build has the same structure as the bpfel build (code differs: bpf_htons)', () => {
    const le = readElf(loadFixture('xdp_parser'));
    const be = readElf(loadFixture('xdp_parser.bpfeb'));
    assert.equal(be.bigEndian, true);
    const shape = (e: ElfFile) => ({
      sections: e.sections
        .filter((s) => !s.name.startsWith('.debug'))
        .map((s) => [s.name, s.type, s.flags, s.entsize]),
      symbols: e.symbols.map((s) => [s.name, s.type, s.bind, s.sectionName]),
      code: codeSections(e).map((s) => s.name),
      relocs: relocationsFor(e, 'xdp').map((r) => [r.type, r.symbolName]),
      maps: relocationsFor(e, '.BTF').length,
    });
    assert.deepEqual(shape(be), shape(le));
  });
  it('big endian, built live with clang-19 -target bpfeb: agrees with llvm-readelf and llvm-objdump', (t) => {
    if (!hasTool(CLANG) || !hasTool(READELF) || !hasTool(OBJDUMP))
      return t.skip('clang-19 / llvm-19 tools missing');
    const dir = mkdtempSync(join(tmpdir(), 'tsbpf-elf-'));
    try {
      const out = join(dir, 'sf.o');
      const src = join(FIXTURES, 'c', 'socket_filter.c');
      run(CLANG, [
        '-O2',
        '-g',
        '-target',
        'bpfeb',
        '-mcpu=v3',
        '-I/usr/include/x86_64-linux-gnu',
        '-c',
        src,
        '-o',
        out,
      ]);
      const elf = readElf(new Uint8Array(readFileSync(out)));
      assert.equal(elf.bigEndian, true);
      compareWithReadelf(elf, out);
      const ours = disassembleObject(codeSections(elf), { fileName: 'sf.o', bigEndian: true });
      assert.equal(ours, run(OBJDUMP, ['-d', 'sf.o'], dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Malformed input.

function expectObjectError(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => readElf(bytes),
    (e: unknown) => e instanceof TsbpfError && e.code === 'object' && pattern.test(e.message),
    `expected TsbpfError('object', ${pattern})`,
  );
}

describe('readElf refuses malformed headers with a message naming the problem', () => {
  const base = loadFixture('loop');
  const elf = readElf(base);
  const shoff = Number(new DataView(base.buffer, base.byteOffset).getBigUint64(40, true));
  const patch = (f: (v: DataView, b: Uint8Array) => void): Uint8Array => {
    const b = base.slice();
    f(new DataView(b.buffer), b);
    return b;
  };
  const shdr = (i: number, field: number) => shoff + i * 64 + field;
  const symtab = elf.sections.find((s) => s.type === SHT_SYMTAB)!;
  const strtab = elf.sections[symtab.link];
  const rel = elf.relocations[0].section;

  it('empty and non-ELF input', () => {
    expectObjectError(new Uint8Array(0), /not an ELF file/);
    expectObjectError(new TextEncoder().encode('#!/bin/sh\necho hi\n'), /not an ELF file/);
  });
  it('not ELF64, bad data encoding, bad version', () => {
    expectObjectError(
      patch((_, b) => (b[4] = 1)),
      /not an ELF64 file/,
    );
    expectObjectError(
      patch((_, b) => (b[5] = 3)),
      /data encoding/,
    );
    expectObjectError(
      patch((_, b) => (b[6] = 0)),
      /version/,
    );
  });
  it('truncated header and truncated file', () => {
    expectObjectError(base.subarray(0, 40), /truncated ELF header/);
    expectObjectError(base.subarray(0, 1000), /past the end of the file/);
  });
  it('section header table past the end, wrong entry size, absurd count', () => {
    expectObjectError(
      patch((v) => v.setBigUint64(40, BigInt(base.length), true)),
      /section header table.*past the end/,
    );
    expectObjectError(
      patch((v) => v.setUint16(58, 40, true)),
      /e_shentsize 40/,
    );
    expectObjectError(
      patch((v) => v.setUint16(60, 60000, true)),
      /60000 entries.*past the end/,
    );
    expectObjectError(
      patch((v) => v.setBigUint64(40, 1n << 62n, true)),
      /e_shoff is too large/,
    );
  });
  it('bad e_shstrndx', () => {
    expectObjectError(
      patch((v) => v.setUint16(62, 200, true)),
      /e_shstrndx 200 is not a section/,
    );
    expectObjectError(
      patch((v) => v.setUint16(62, symtab.index, true)),
      /is not a string table/,
    );
  });
  it('section data past the end', () => {
    expectObjectError(
      patch((v) => v.setBigUint64(shdr(3, 24), BigInt(base.length - 4), true)),
      /section 3 data.*past the end/,
    );
    expectObjectError(
      patch((v) => v.setBigUint64(shdr(3, 32), 1n << 40n, true)),
      /section 3 data.*past the end/,
    );
  });
  it('bad string offsets and unterminated strings', () => {
    expectObjectError(
      patch((v) => v.setUint32(shdr(3, 0), 0x7fffffff, true)),
      /section 3: name offset 2147483647 is outside/,
    );
    expectObjectError(
      patch((_, b) => b.fill(0x41, strtab.offset, strtab.offset + strtab.size)),
      /not NUL-terminated/,
    );
  });
  it('entry size mismatches in symbol and relocation tables', () => {
    expectObjectError(
      patch((v) => v.setBigUint64(shdr(symtab.index, 56), 16n, true)),
      /entry size 16, expected 24/,
    );
    expectObjectError(
      patch((v) => v.setBigUint64(shdr(symtab.index, 32), BigInt(symtab.size - 1), true)),
      /not a multiple of 24/,
    );
    expectObjectError(
      patch((v) => v.setBigUint64(shdr(rel.index, 56), 24n, true)),
      /SHT_REL section '.relxdp' has entry size 24/,
    );
  });
  it('dangling references: symbol section index, relocation symbol and target', () => {
    expectObjectError(
      patch((v) => v.setUint16(symtab.offset + 11 * 24 + 6, 500, true)),
      /symbol 11 \('xdp_hash_loop'\) refers to section 500/,
    );
    expectObjectError(
      patch((v) => v.setUint32(rel.offset + 12, 9999, true)),
      /refers to symbol 9999/,
    );
    expectObjectError(
      patch((v) => v.setUint32(shdr(rel.index, 44), 77, true)),
      /sh_info refers to section 77/,
    );
    expectObjectError(
      patch((v) => v.setUint32(shdr(symtab.index, 40), 0, true)),
      /sh_link refers to section 0/,
    );
  });
});

describe('readElf fuzz: mutated fixtures only ever throw TsbpfError, and never hang', () => {
  it('bit flips, truncations and field overwrites', () => {
    const long = process.env.TSBPF_LONG === '1';
    const iterations = long ? 50_000 : 4_000;
    const budgetMs = long ? 120_000 : 12_000;
    const rand = prng(0x7b9f);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const seeds = fixtureNames().map((n) => ({ bytes: loadFixture(n), elf: readElf(loadFixture(n)) }));
    const interesting = [
      0n,
      1n,
      2n,
      0x18n,
      0x40n,
      0xffn,
      0xffffn,
      0x7fffffffn,
      0xffffffffn,
      1n << 53n,
      (1n << 64n) - 1n,
    ];
    const start = Date.now();
    let ok = 0;
    let refused = 0;
    let done = 0;
    for (; done < iterations && Date.now() - start < budgetMs; done++) {
      const seed = pick(seeds);
      const b = seed.bytes.slice();
      const shoff = Number(new DataView(b.buffer).getBigUint64(40, !seed.elf.bigEndian));
      const view = new DataView(b.buffer);
      const kind = rand();
      let input: Uint8Array = b;
      if (kind < 0.3) {
        for (let n = 1 + Math.floor(rand() * 8); n > 0; n--) {
          // bias flips toward the headers, where they matter most
          const region = rand();
          const at =
            region < 0.3
              ? Math.floor(rand() * 64)
              : region < 0.7
                ? shoff + Math.floor(rand() * (b.length - shoff))
                : Math.floor(rand() * b.length);
          if (at < b.length) b[at] ^= 1 << Math.floor(rand() * 8);
        }
      } else if (kind < 0.45) {
        input = b.subarray(0, Math.floor(rand() * b.length));
      } else {
        // overwrite a header, section header, symbol or relocation field with an interesting value
        const sec = pick(seed.elf.sections);
        const targets = [
          Math.floor(rand() * 32) * 2,
          shoff + sec.index * 64 + pick([0, 4, 8, 24, 32, 40, 44, 56]),
          sec.offset + Math.floor(rand() * Math.max(1, sec.size)),
        ];
        const at = pick(targets);
        const width = pick([1, 2, 4, 8]);
        const value =
          rand() < 0.7
            ? pick(interesting)
            : BigInt(Math.floor(rand() * 2 ** 32)) * BigInt(Math.floor(rand() * 2 ** 20));
        if (at + width <= b.length) {
          const le = !seed.elf.bigEndian;
          if (width === 1) view.setUint8(at, Number(value & 0xffn));
          else if (width === 2) view.setUint16(at, Number(value & 0xffffn), le);
          else if (width === 4) view.setUint32(at, Number(value & 0xffffffffn), le);
          else view.setBigUint64(at, BigInt.asUintN(64, value), le);
        }
      }
      try {
        const elf = readElf(input);
        // Everything built on a successfully read file must work too.
        for (const s of elf.sections) relocationsFor(elf, s.index);
        symbolsOf(elf);
        disassembleObject(codeSections(elf), { bigEndian: elf.bigEndian });
        ok++;
      } catch (e) {
        if (!(e instanceof TsbpfError) || e.code !== 'object') {
          assert.fail(`iteration ${done}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        }
        assert.ok(e.message.length > 0);
        refused++;
      }
    }
    assert.ok(done >= Math.min(iterations, 500), `only ${done} iterations in the time budget`);
    assert.ok(refused > 0 && ok > 0, `refused ${refused}, read ${ok}`);
  });
  it('SHF_EXECINSTR sections are the code sections', () => {
    const elf = readElf(loadFixture('tracepoint'));
    assert.deepEqual(
      codeSections(elf).map((s) => s.name),
      elf.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0).map((s) => s.name),
    );
  });
});
