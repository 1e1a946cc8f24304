/**
 * The BTF value formatter (src/btf/dump-value.ts) against what bpftool v7.1 prints for the same types
 * and bytes (the expected texts were taken from `bpftool map dump` on maps with these types; the live
 * comparison is in kernel-cli.test.ts). Also bpftool's json_writer layout and the function signatures
 * of `prog dump xlated`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Btf } from '../src/btf/btf.js';
import { btfTypeSignature, dumpBtfValue, JsonWriter } from '../src/btf/dump-value.js';
import type { BtfType } from '../src/btf/types.js';

// biome-ignore lint/suspicious/noExplicitAny: hand-written type records
const T = (types: any[]) => new Btf({ types: [{ kind: 'UNKN', id: 0, name: '' }, ...types] as BtfType[] });

const btf = T([
  /* 1 */ { kind: 'INT', id: 1, name: 'unsigned int', size: 4, encoding: 0, bitsOffset: 0, bits: 32 },
  /* 2 */ { kind: 'INT', id: 2, name: 'int', size: 4, encoding: 1, bitsOffset: 0, bits: 32 },
  /* 3 */ { kind: 'INT', id: 3, name: 'char', size: 1, encoding: 1, bitsOffset: 0, bits: 8 },
  /* 4 */ { kind: 'ARRAY', id: 4, name: '', type: 3, indexType: 1, nelems: 8 },
  /* 5 */ { kind: 'INT', id: 5, name: '_Bool', size: 1, encoding: 4, bitsOffset: 0, bits: 8 },
  /* 6 */ {
    kind: 'ENUM',
    id: 6,
    name: 'color',
    size: 4,
    signed: true,
    values: [
      { name: 'RED', value: 0 },
      { name: 'BLUE', value: -1 },
    ],
  },
  /* 7 */ { kind: 'PTR', id: 7, name: '', type: 0 },
  /* 8 */ { kind: 'INT', id: 8, name: 'unsigned __int128', size: 16, encoding: 0, bitsOffset: 0, bits: 128 },
  /* 9 */ {
    kind: 'STRUCT',
    id: 9,
    name: 'flags',
    size: 8,
    kindFlag: true,
    members: [
      { name: 'a', type: 1, bitOffset: 0, bitfieldSize: 3 },
      { name: 'b', type: 1, bitOffset: 3, bitfieldSize: 5 },
      { name: 'c', type: 2, bitOffset: 32, bitfieldSize: 0 },
    ],
  },
  /* 10 */ { kind: 'FLOAT', id: 10, name: 'float', size: 4 },
  /* 11 */ { kind: 'TYPEDEF', id: 11, name: 'u32_t', type: 1 },
  /* 12 */ { kind: 'VAR', id: 12, name: 'counter', type: 11, linkage: 1 },
  /* 13 */ { kind: 'VAR', id: 13, name: 'greeting', type: 4, linkage: 1 },
  /* 14 */ {
    kind: 'DATASEC',
    id: 14,
    name: '.data',
    size: 12,
    vars: [
      { type: 12, offset: 0, size: 4 },
      { type: 13, offset: 4, size: 8 },
    ],
  },
  /* 15 */ { kind: 'ARRAY', id: 15, name: '', type: 1, indexType: 1, nelems: 2 },
  /* 16 */ { kind: 'STRUCT', id: 16, name: 'xdp_md', size: 4, kindFlag: false, members: [] },
  /* 17 */ { kind: 'PTR', id: 17, name: '', type: 16 },
  /* 18 */ { kind: 'FUNC_PROTO', id: 18, name: '', returnType: 2, params: [{ name: 'ctx', type: 17 }] },
  /* 19 */ { kind: 'FUNC', id: 19, name: 'xdp_prog', type: 18, linkage: 1 },
  /* 20 */ { kind: 'FUNC_PROTO', id: 20, name: '', returnType: 0, params: [{ name: '', type: 17 }] },
]);

function fmt(typeId: number, bytes: number[] | Uint8Array, plainText: boolean, pretty = plainText): string {
  const w = new JsonWriter(pretty);
  dumpBtfValue(w, btf, typeId, Uint8Array.from(bytes), 0, { plainText });
  return w.text;
}

describe('BTF values as bpftool prints them', () => {
  it('ints by width and signedness, typedefs resolved', () => {
    assert.equal(fmt(1, [0xff, 0xff, 0xff, 0xff], false), '4294967295');
    assert.equal(fmt(2, [0xff, 0xff, 0xff, 0xff], false), '-1');
    assert.equal(fmt(11, [7, 0, 0, 0], false), '7');
    assert.equal(fmt(3, [0xff], false), '-1');
  });

  it('char arrays are strings only when printable and NUL-terminated; the writer escapes as bpftool', () => {
    assert.equal(fmt(4, [104, 105, 0, 0, 0, 0, 0, 0], false), '"hi"');
    assert.equal(fmt(4, [97, 92, 98, 34, 99, 39, 0, 0], false), String.raw`"a\nb\"c'"`);
    assert.equal(fmt(4, [65, 92, 34, 39, 10, 66, 67, 0], false), '[65,92,34,39,10,66,67,0]');
    assert.equal(
      fmt(4, [104, 105, 104, 105, 104, 105, 104, 105], false),
      '[104,105,104,105,104,105,104,105]',
    );
    assert.equal(fmt(4, [0xff, 0, 0, 0, 0, 0, 0, 0], true), '[-1,0,0,0,0,0,0,0\n]');
  });

  it('bools read an int, enums print names or numbers', () => {
    assert.equal(fmt(5, [0, 1, 0, 0], false), 'true');
    assert.equal(fmt(5, [0, 0, 0, 0], false), 'false');
    assert.equal(fmt(6, [0xff, 0xff, 0xff, 0xff], false), '"BLUE"');
    assert.equal(fmt(6, [5, 0, 0, 0], false), '5');
  });

  it('pointers: %p in plain text, decimal in JSON', () => {
    assert.equal(fmt(7, [0, 0, 0, 0, 0, 0, 0, 0], true), '(nil)');
    assert.equal(fmt(7, [0x10, 0x32, 0, 0, 0, 0, 0, 0], true), '0x3210');
    assert.equal(fmt(7, [0x10, 0x32, 0, 0, 0, 0, 0, 0], false), '12816');
    assert.equal(fmt(7, new Uint8Array(8).fill(0xff), false), '18446744073709551615');
  });

  it('bitfields and 128-bit ints in hex, quoted in JSON', () => {
    assert.equal(fmt(9, [0xff, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff], false), '{"a":"0x7","b":"0x1f","c":-2}');
    assert.equal(
      fmt(9, [0xff, 0, 0, 0, 1, 0, 0, 0], true),
      '{\n    "a": 0x7,\n    "b": 0x1f,\n    "c": 1\n}',
    );
    assert.equal(fmt(8, new Uint8Array(16).fill(0xff), true), '0xffffffffffffffffffffffffffffffff');
    assert.equal(fmt(8, [1, ...new Array(15).fill(0)], false), '"0x1"');
    const b = new Uint8Array(16);
    b[8] = 1;
    assert.equal(fmt(8, b, false), '"0x10000000000000000"');
  });

  it('kinds bpftool cannot print end in its marker', () => {
    assert.equal(fmt(10, [0, 0, 0x80, 0x3f], false), '(unsupported-kind');
  });

  it('global data: DATASEC of VARs', () => {
    assert.equal(
      fmt(14, [7, 0, 0, 0, 116, 115, 98, 112, 102, 0, 0, 0], true),
      '{\n    ".data": [{\n            "counter": 7\n        },{\n            "greeting": "tsbpf"\n        }\n    ]\n}',
    );
  });
});

describe("bpftool's json_writer", () => {
  it('pretty layout: array items stay on the line, the bracket closes on its own line', () => {
    const w = new JsonWriter(true);
    w.value([{ key: ['0x01', '0x00'], n: 1, e: [], o: {} }]);
    assert.equal(
      w.finish(),
      '[{\n        "key": ["0x01","0x00"\n        ],\n        "n": 1,\n        "e": [],\n        "o": {}\n    }\n]\n',
    );
    const c = new JsonWriter(false);
    c.value({ a: [1, 2], b: null, c: true, s: 'x' });
    assert.equal(c.finish(), '{"a":[1,2],"b":null,"c":true,"s":"x"}\n');
  });
});

describe('function signatures (btf_dumper_type_only)', () => {
  it('prints FUNC and FUNC_PROTO like bpftool', () => {
    assert.equal(btfTypeSignature(btf, 19), 'int xdp_prog(struct xdp_md * ctx)');
    assert.equal(btfTypeSignature(btf, 20), 'void (struct xdp_md *)');
    assert.equal(btfTypeSignature(btf, 15), 'unsigned int [2]');
  });
});
