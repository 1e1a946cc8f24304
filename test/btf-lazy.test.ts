/**
 * parseBtf's lazy mode (what /sys/kernel/btf/vmlinux is read with) against the full parse: the same type
 * objects, look-ups and errors, whether types are reached one by one or all at once.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Btf, type BtfType, encodeBtf, parseBtf } from '../src/btf/index.js';
import { TsbpfError } from '../src/errors.js';
import { readObject } from '../src/object/spec.js';

const VMLINUX = '/sys/kernel/btf/vmlinux';
const OBJ = fileURLToPath(new URL('../../fixtures/obj', import.meta.url));

/** Every name a type or a member of one has, and a few that none has. */
function names(btf: Btf): Set<string> {
  const out = new Set(['', 'no_such_name_anywhere', 'int', 'long']);
  for (const t of btf.types) {
    out.add(t.name);
    if (t.kind === 'STRUCT' || t.kind === 'UNION') for (const m of t.members) out.add(m.name);
  }
  return out;
}

function enumValueNames(btf: Btf): Set<string> {
  const out = new Set(['NO_SUCH_VALUE']);
  for (const t of btf.types)
    if (t.kind === 'ENUM' || t.kind === 'ENUM64') for (const v of t.values) out.add(v.name);
  return out;
}

/** lazy and eager agree on every look-up; types are reached through type() first, then all at once. */
function assertSame(lazy: Btf, eager: Btf, step = 1): void {
  assert.equal(lazy.typeCount, eager.typeCount);
  assert.equal(lazy.startId, eager.startId);
  let k = 0;
  for (const n of names(eager)) {
    if (k++ % step) continue;
    assert.deepEqual(lazy.findAllByName(n), eager.findAllByName(n), `findAllByName('${n}')`);
    assert.deepEqual(lazy.findAllByName(n, 'STRUCT'), eager.findAllByName(n, 'STRUCT'), `'${n}' STRUCT`);
    assert.deepEqual(lazy.findByName(n, 'TYPEDEF'), eager.findByName(n, 'TYPEDEF'), `'${n}' TYPEDEF`);
    if (n.length >= 4 && k % (7 * step) === 1) {
      const prefix = n.slice(0, n.length >> 1);
      assert.deepEqual(
        lazy.findAllByNamePrefix(prefix),
        eager.findAllByNamePrefix(prefix),
        `prefix '${prefix}'`,
      );
    }
  }
  k = 0;
  for (const n of enumValueNames(eager)) {
    if (k++ % step) continue;
    assert.deepEqual(lazy.findEnumsWithValue(n), eager.findEnumsWithValue(n), `findEnumsWithValue('${n}')`);
  }
  assert.equal(lazy.pointerSize, eager.pointerSize);
  for (let id = 0; id < eager.typeCount; id += step) {
    assert.deepEqual(lazy.type(id), eager.type(id), `type ${id}`);
    assert.equal(lazy.resolve(id), eager.resolve(id));
  }
  const reached = lazy.type(eager.typeCount - 1);
  assert.deepEqual(lazy.types, eager.types);
  // Objects handed out before `types` was read are the ones in it.
  assert.equal(lazy.types[eager.typeCount - 1], reached);
}

function expectBtfError(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => e instanceof TsbpfError && e.code === 'btf' && re.test(e.message));
}

describe('btf: lazy parsing', () => {
  test('every fixture object: the same graph and look-ups as the full parse', () => {
    let seen = 0;
    for (const f of readdirSync(OBJ).filter((n) => n.endsWith('.o'))) {
      const btf = readObject(readFileSync(join(OBJ, f)), { path: f }).btf;
      if (!btf) continue;
      const bytes = encodeBtf(btf);
      assertSame(parseBtf(bytes, { lazy: true }), parseBtf(bytes));
      seen++;
    }
    assert.ok(seen > 5, `only ${seen} fixtures with BTF`);
  });

  test('split BTF on a lazy base, and lazy split BTF', () => {
    const btf = readObject(readFileSync(join(OBJ, 'core_kinds.o')), { path: 'core_kinds.o' }).btf;
    assert.ok(btf);
    const baseBytes = encodeBtf(btf);
    const base = parseBtf(baseBytes);
    const node = base.types.find((t) => t.kind === 'STRUCT' && t.name !== '');
    assert.ok(node);
    const n = base.typeCount;
    const types: BtfType[] = [
      ...base.types,
      { kind: 'PTR', id: n, name: '', type: node.id },
      {
        kind: 'STRUCT',
        id: n + 1,
        name: node.name, // the base's name again: look-ups find both
        size: 8,
        kindFlag: false,
        members: [{ name: 'p', type: n, bitOffset: 0, bitfieldSize: 0 }],
      },
    ];
    const bytes = encodeBtf(new Btf({ types, base }));
    const eager = parseBtf(bytes, { base });
    const lazyBase = parseBtf(baseBytes, { lazy: true });
    assertSame(
      parseBtf(bytes, { base: lazyBase, lazy: true }),
      parseBtf(bytes, { base: parseBtf(baseBytes) }),
    );
    assert.deepEqual(parseBtf(bytes, { base, lazy: true }).findAllByName(node.name, 'STRUCT'), [
      node.id,
      n + 1,
    ]);
    assert.deepEqual(eager.findAllByName(node.name, 'STRUCT'), [node.id, n + 1]);
  });

  test('malformed input: record headers are checked at once, references when decoded', () => {
    const blob = (words: number[], strs: string[]) => {
      const str = Buffer.from(`\0${strs.map((s) => `${s}\0`).join('')}`, 'latin1');
      const out = Buffer.alloc(24 + words.length * 4 + str.length);
      out.writeUInt16LE(0xeb9f, 0);
      out[2] = 1;
      out.writeUInt32LE(24, 4);
      out.writeUInt32LE(words.length * 4, 12);
      out.writeUInt32LE(words.length * 4, 16);
      out.writeUInt32LE(str.length, 20);
      words.forEach((w, i) => {
        out.writeUInt32LE(w >>> 0, 24 + 4 * i);
      });
      str.copy(out, 24 + words.length * 4);
      return out;
    };
    const info = (kind: number, vlen = 0) => ((kind << 24) | vlen) >>> 0;
    const lazy = (b: Uint8Array) => parseBtf(b, { lazy: true });
    expectBtfError(() => lazy(blob([1, info(1), 4], ['a'])), /truncated in type \[1\] \(INT data\)/);
    expectBtfError(
      () => lazy(blob([1, info(4, 1000), 4], ['a'])),
      /truncated in type \[1\] \(1000 members\)/,
    );
    expectBtfError(() => lazy(blob([0, info(25), 0], [])), /unknown kind 25/);
    const badRef = lazy(blob([0, info(2), 7], []));
    assert.equal(badRef.typeCount, 2);
    expectBtfError(() => badRef.type(1), /refers to type id 7, out of range/);
    const badName = lazy(blob([99, info(1), 4, 32], ['a']));
    expectBtfError(() => badName.type(1), /string offset 99 out of range/);
    // A loop only a graph-wide check finds: refused when every type is asked for.
    const loop = lazy(blob([0, info(8), 2, 0, info(8), 1], []));
    assert.equal(loop.type(1).kind, 'TYPEDEF');
    expectBtfError(() => loop.types, /cycle/);
    expectBtfError(() => lazy(blob([1, info(1), 4, 32], ['a'])).type(2), /out of range/);
  });

  test('/sys/kernel/btf/vmlinux: look-ups without decoding every type', {
    skip: existsSync(VMLINUX) ? false : `${VMLINUX} absent`,
  }, () => {
    const bytes = new Uint8Array(readFileSync(VMLINUX));
    const lazy = parseBtf(bytes, { lazy: true });
    const task = lazy.findByName('task_struct', 'STRUCT');
    assert.ok(task?.kind === 'STRUCT' && task.members.some((m) => m.name === 'real_parent'));
    assert.equal(lazy.sizeof(task.id), task.size);
    assert.equal(lazy.pointerSize, 8);
    // Only what was asked for is decoded.
    const decoded = (lazy as unknown as { own: unknown[] }).own.filter((t) => t !== undefined).length;
    assert.ok(decoded < 200, `${decoded} types decoded`);
    assertSame(lazy, parseBtf(bytes), 97);
  });
});
