import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  Btf,
  type BtfType,
  dumpBtfC,
  dumpBtfJson,
  dumpBtfRaw,
  encodeBtf,
  parseBtf,
  parseBtfExt,
} from '../src/btf/index.js';
import { TsbpfError } from '../src/errors.js';

const VMLINUX = '/sys/kernel/btf/vmlinux';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const have = (cmd: string, args: string[]) => {
  try {
    return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
};
const HAVE_BPFTOOL = have('bpftool', ['version']);
const HAVE_CLANG = have('clang-19', ['--version']);
const HAVE_OBJCOPY = have('llvm-objcopy-19', ['--version']);
const LONG = process.env.TSBPF_LONG === '1';

const tmp = mkdtempSync(join(tmpdir(), 'tsbpf-btf-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function bpftool(args: string[]): string {
  return execFileSync('bpftool', args, { maxBuffer: 256 << 20, encoding: 'utf8' });
}

/** Lines of `a` equal to the line at the same position of `b`, as a fraction of the longer one. */
function lineAgreement(a: string, b: string): number {
  const la = a.split('\n');
  const lb = b.split('\n');
  let same = 0;
  for (let i = 0; i < Math.min(la.length, lb.length); i++) if (la[i] === lb[i]) same++;
  return same / Math.max(la.length, lb.length);
}

// A C file exercising every construct the dumpers care about.
const SOURCE = `typedef unsigned int u32;
typedef unsigned long long u64;
struct fwd_only;
union fwd_union;
enum small_e { SA = 1, SB = 2 } __attribute__((packed));
enum neg_e { NA = -1, NB = 0, NC = 5 };
enum big_e { BA = 1, BB = 0x100000000ULL };
typedef int (*fnptr_t)(int, const char *);
typedef void fn_t(void);
struct node {
  struct node *next;
  struct fwd_only *fo;
  union fwd_union *fu;
  unsigned int a : 3, b : 5;
  int c : 7;
  unsigned long long d : 40;
  char pad;
  struct { int x; union { short s; char ch[2]; }; } anon_member;
  union { int i; float f; };
  int arr[4][3];
  int (*cb[2])(struct node *, ...);
  fnptr_t fp;
  fn_t *fp2;
  const volatile int *cvp;
  char *restrict rp;
  enum small_e se;
  enum { IN1, IN2 } inner_e;
  double dbl;
  _Bool flag;
};
struct __attribute__((packed)) pk { char c; int i; short s; };
struct __attribute__((packed)) pk2 { int a; char b; };
struct bits2 { char a; int b : 4; int : 0; long long c : 3; char d; };
struct aligned { char c; long x __attribute__((aligned(16))); };
struct empty {};
struct a; struct b;
struct a { struct b *pb; int v; };
struct b { struct a sa; struct a *pa; };
struct tagged { int __attribute__((btf_decl_tag("user"))) x; int *p; } __attribute__((btf_decl_tag("s")));
union un { int i; long long l; char c[3]; };
struct flex { int n; char data[]; };
typedef struct { int q; } anon_td;
typedef struct named_s named_s_t;
struct named_s { named_s_t *self; anon_td t; };
struct node gnode;
struct pk gpk; struct pk2 gpk2; struct bits2 gbits2; struct aligned gal; struct empty gem; struct b gb;
struct tagged gtag; union un gun; struct flex *gflex; named_s_t gnamed;
enum neg_e gneg; enum big_e gbig;
static volatile int counter;
int __attribute__((noinline)) helper(struct node *n, int k) { return n->a + k + counter; }
int __attribute__((section("xdp"))) prog(void *ctx) {
  struct node *n = ctx;
  int r = __builtin_preserve_access_index(n->arr[1][2]);
  r += helper(n, 3);
  return r;
}
char _license[] __attribute__((section("license"))) = "GPL";
`;

interface Sections {
  btf: Uint8Array;
  ext?: Uint8Array;
}

type ElfModule = { readElf(bytes: Uint8Array): { sections: { name: string; data: Uint8Array }[] } };
let elfModule: ElfModule | null | undefined;

/** The .BTF and .BTF.ext of an object file: through src/object/elf.ts when it exists, else llvm-objcopy-19. */
async function btfSections(obj: string): Promise<Sections | undefined> {
  if (elfModule === undefined) {
    const path = new URL('../src/object/elf.js', import.meta.url);
    elfModule = existsSync(path) ? ((await import(path.href)) as ElfModule) : null;
  }
  if (elfModule) {
    const elf = elfModule.readElf(readFileSync(obj));
    const btf = elf.sections.find((s) => s.name === '.BTF')?.data;
    const ext = elf.sections.find((s) => s.name === '.BTF.ext')?.data;
    return btf ? { btf, ext } : undefined;
  }
  if (!HAVE_OBJCOPY) return undefined;
  const base = join(tmp, `${obj.replace(/[^a-z0-9]/gi, '_')}`);
  try {
    execFileSync('llvm-objcopy-19', [`--dump-section=.BTF=${base}.btf`, obj, `${base}.tmp`], {
      stdio: 'ignore',
    });
  } catch {
    return undefined;
  }
  const s: Sections = { btf: readFileSync(`${base}.btf`) };
  try {
    execFileSync('llvm-objcopy-19', [`--dump-section=.BTF.ext=${base}.ext`, obj, `${base}.tmp`], {
      stdio: 'ignore',
    });
    s.ext = readFileSync(`${base}.ext`);
  } catch {
    // no .BTF.ext
  }
  return s;
}

/** Our own object, compiled from SOURCE (needs clang-19). */
let ownObject: string | undefined;
function compileOwn(): string {
  if (!ownObject) {
    const c = join(tmp, 'btf_all.c');
    writeFileSync(c, SOURCE);
    ownObject = join(tmp, 'btf_all.o');
    execFileSync('clang-19', ['-g', '-O2', '-target', 'bpf', '-c', c, '-o', ownObject]);
  }
  return ownObject;
}

/** Graph equality ignoring string offsets (which legitimately change when strings are rebuilt). */
function stripOffsets(types: readonly BtfType[]): unknown {
  return JSON.parse(
    JSON.stringify(types, (k, v) => (k === 'nameOff' ? undefined : typeof v === 'bigint' ? `${v}n` : v)),
  );
}

function expectBtfError(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TsbpfError, `not a TsbpfError: ${e}`);
    assert.equal(e.code, 'btf');
    assert.match(e.message, re);
    return true;
  });
}

// ---------------------------------------------------------------- vmlinux

describe('btf: /sys/kernel/btf/vmlinux', { skip: existsSync(VMLINUX) ? false : `${VMLINUX} absent` }, () => {
  let bytes: Uint8Array;
  let btf: Btf;
  const load = () => {
    if (!btf) {
      bytes = readFileSync(VMLINUX);
      btf = parseBtf(bytes);
    }
    return btf;
  };

  test('parses into a type graph with working look-ups', () => {
    const b = load();
    assert.ok(b.typeCount > 10000);
    const task = b.findByName('task_struct', 'STRUCT');
    assert.ok(task && task.kind === 'STRUCT');
    assert.equal(b.sizeof(task.id), task.size);
    assert.ok(task.members.some((m) => m.name === 'pid'));
    const u32 = b.findByName('u32', 'TYPEDEF');
    assert.ok(u32);
    const int = b.resolveType(u32.id);
    assert.equal(int.kind, 'INT');
    assert.equal(b.sizeof(u32.id), 4);
    assert.equal(b.pointerSize, 8);
    assert.ok(b.findAllByName('bpf_prog_load', 'FUNC').length <= 1);
  });

  test('raw dump equals `bpftool btf dump file vmlinux`', { skip: !HAVE_BPFTOOL && 'bpftool absent' }, () => {
    const b = load();
    const want = bpftool(['btf', 'dump', 'file', VMLINUX]);
    if (LONG) {
      assert.equal(dumpBtfRaw(b), want);
    } else {
      // the first 20000 types (a few seconds for all of them is left to TSBPF_LONG=1)
      const ids = Array.from({ length: Math.min(20000, b.typeCount - 1) }, (_, i) => i + 1);
      const got = dumpBtfRaw(b, { ids });
      assert.equal(got, want.slice(0, got.length));
      assert.match(want.slice(got.length, got.length + 10), /^\[\d+\] /);
    }
  });

  test('C dump equals `bpftool btf dump file vmlinux format c`', {
    skip: !HAVE_BPFTOOL && 'bpftool absent',
  }, () => {
    const got = dumpBtfC(load());
    const want = bpftool(['btf', 'dump', 'file', VMLINUX, 'format', 'c']);
    if (got !== want) assert.fail(`C dump differs from bpftool: line agreement ${lineAgreement(got, want)}`);
  });

  test('C dump compiles with clang-19 -target bpf', { skip: !HAVE_CLANG && 'clang-19 absent' }, () => {
    const h = join(tmp, 'vmlinux.h');
    writeFileSync(h, dumpBtfC(load()));
    const c = join(tmp, 'use_vmlinux.c');
    writeFileSync(
      c,
      '#include "vmlinux.h"\nint f(struct task_struct *t) { return t->pid + sizeof(struct sk_buff); }\n',
    );
    execFileSync('clang-19', ['-target', 'bpf', '-O2', '-c', c, '-o', join(tmp, 'use_vmlinux.o')]);
  });

  test('encode(parse(vmlinux)) is byte-identical', () => {
    const b = load();
    const enc = encodeBtf(b);
    assert.ok(Buffer.from(enc).equals(Buffer.from(bytes)));
  });
});

// ---------------------------------------------------------------- objects built by clang

function fixtureObjects(): string[] {
  const dir = join(ROOT, 'fixtures', 'obj');
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.o'))
        .map((f) => join(dir, f))
    : [];
}

describe('btf: clang-built objects', () => {
  const objects = (): string[] => [...fixtureObjects(), ...(HAVE_CLANG ? [compileOwn()] : [])];

  test('raw, JSON and C dumps equal bpftool; encode is byte-identical', {
    skip: !HAVE_BPFTOOL && 'bpftool absent',
  }, async (t) => {
    const report: string[] = [];
    for (const obj of objects()) {
      const s = await btfSections(obj);
      if (!s) continue;
      const file = join(tmp, 'cur.btf');
      writeFileSync(file, s.btf);
      const btf = parseBtf(s.btf);
      assert.equal(dumpBtfRaw(btf), bpftool(['btf', 'dump', 'file', file]), `${obj}: raw dump`);
      assert.equal(dumpBtfJson(btf), bpftool(['-j', 'btf', 'dump', 'file', file]), `${obj}: JSON dump`);
      const got = dumpBtfC(btf);
      const want = bpftool(['btf', 'dump', 'file', file, 'format', 'c']);
      report.push(`${obj}: ${(lineAgreement(got, want) * 100).toFixed(1)}%`);
      assert.equal(got, want, `${obj}: C dump`);
      assert.ok(
        Buffer.from(encodeBtf(btf)).equals(Buffer.from(s.btf)),
        `${obj}: encode is not byte-identical`,
      );
    }
    t.diagnostic(`C dump line agreement with bpftool: ${report.join(', ') || 'no objects'}`);
  });

  test('.BTF.ext of every fixture: func_info names FUNCs, line_info text is the source line', async (t) => {
    const dir = join(ROOT, 'fixtures');
    let records = 0;
    for (const obj of objects()) {
      if (!obj.startsWith(dir)) continue;
      const s = await btfSections(obj);
      if (!s?.ext) continue;
      const btf = parseBtf(s.btf);
      const ext = parseBtfExt(s.ext, btf);
      assert.ok(ext.funcInfo.length > 0, obj);
      for (const sec of ext.funcInfo)
        for (const r of sec.records) assert.equal(btf.type(r.typeId).kind, 'FUNC');
      for (const sec of ext.lineInfo) {
        for (const r of sec.records) {
          const src = r.fileName.startsWith('/') ? r.fileName : join(dir, r.fileName);
          if (!existsSync(src)) continue;
          const lines = readFileSync(src, 'utf8').split('\n');
          assert.equal(r.line, lines[r.lineNum - 1], `${obj}: ${r.fileName}:${r.lineNum}`);
          records++;
        }
      }
      for (const sec of ext.coreRelos) {
        for (const r of sec.records) {
          assert.match(r.accessStr, /^\d+(:\d+)*$/);
          assert.ok(r.kindName.startsWith('BPF_CORE_'));
        }
      }
    }
    t.diagnostic(`${records} line_info records matched their source lines`);
  });

  test('helpers: resolve, sizeof, alignof, findByName', {
    skip: !HAVE_CLANG && 'clang-19 absent',
  }, async () => {
    const s = await btfSections(compileOwn());
    assert.ok(s);
    const btf = parseBtf(s.btf);
    const node = btf.findByName('node', 'STRUCT');
    assert.ok(node?.kind === 'STRUCT');
    assert.equal(btf.sizeof(node.id), node.size);
    const a = node.members.find((m) => m.name === 'a');
    const b = node.members.find((m) => m.name === 'b');
    assert.deepEqual([a?.bitOffset, a?.bitfieldSize, b?.bitOffset, b?.bitfieldSize], [192, 3, 195, 5]);
    const arr = node.members.find((m) => m.name === 'arr');
    assert.ok(arr);
    assert.equal(btf.sizeof(arr.type), 48);
    const pk = btf.findByName('pk', 'STRUCT');
    assert.ok(pk);
    assert.equal(btf.alignof(pk.id), 1);
    assert.equal(btf.alignof(node.id), 8);
    const fp = btf.findByName('fnptr_t', 'TYPEDEF');
    assert.ok(fp);
    assert.equal(btf.resolveType(fp.id).kind, 'PTR');
    assert.equal(btf.sizeof(fp.id), 8);
    const big = btf.findByName('big_e');
    assert.ok(big?.kind === 'ENUM64');
    assert.equal(big.values[1].value, 0x100000000n);
    const neg = btf.findByName('neg_e');
    assert.ok(neg?.kind === 'ENUM' && neg.signed);
    assert.equal(neg.values[0].value, -1);
    assert.equal(btf.findByName('no_such_type'), undefined);
    expectBtfError(() => btf.type(1 << 20), /out of range/);
    const fn = btf.findByName('helper', 'FUNC');
    assert.ok(fn?.kind === 'FUNC');
    expectBtfError(() => btf.sizeof(fn.id), /no size/);
  });

  test('parse -> encode -> parse round-trips, in both byte orders', {
    skip: !HAVE_CLANG && 'clang-19 absent',
  }, async () => {
    const s = await btfSections(compileOwn());
    assert.ok(s);
    const btf = parseBtf(s.btf);
    const be = encodeBtf(btf, { endianness: 'big' });
    const fromBe = parseBtf(be);
    assert.equal(fromBe.endianness, 'big');
    assert.deepEqual(stripOffsets(fromBe.types), stripOffsets(btf.types));
    assert.ok(Buffer.from(encodeBtf(fromBe, { endianness: 'little' })).equals(Buffer.from(s.btf)));
    if (HAVE_BPFTOOL) {
      // libbpf reads opposite-endian BTF too: its dump of our big-endian bytes must match ours
      const file = join(tmp, 'be.btf');
      writeFileSync(file, be);
      assert.equal(bpftool(['btf', 'dump', 'file', file]), dumpBtfRaw(fromBe));
    }
    // a graph built by hand (no string offsets, no string table) encodes to an equal graph
    const fresh = new Btf({ types: stripOffsets(btf.types) as BtfType[] });
    for (const t of fresh.types) {
      if (t.kind === 'ENUM64') for (const v of t.values) v.value = BigInt(String(v.value).slice(0, -1));
    }
    const again = parseBtf(encodeBtf(fresh));
    assert.deepEqual(stripOffsets(again.types), stripOffsets(btf.types));
  });

  test('split BTF on top of a base', { skip: !HAVE_CLANG && 'clang-19 absent' }, async () => {
    const s = await btfSections(compileOwn());
    assert.ok(s);
    const base = parseBtf(s.btf);
    const node = base.findByName('node', 'STRUCT');
    assert.ok(node);
    const n = base.typeCount;
    const types: BtfType[] = [
      ...base.types,
      { kind: 'PTR', id: n, name: '', type: node.id },
      {
        kind: 'STRUCT',
        id: n + 1,
        name: 'mod_s',
        size: 16,
        kindFlag: false,
        members: [
          { name: 'n', type: n, bitOffset: 0, bitfieldSize: 0 },
          { name: 'next', type: n + 2, bitOffset: 64, bitfieldSize: 0 },
        ],
      },
      { kind: 'PTR', id: n + 2, name: '', type: n + 1 },
    ];
    const split = new Btf({ types, base });
    const bytes = encodeBtf(split);
    const parsed = parseBtf(bytes, { base });
    assert.equal(parsed.startId, n);
    assert.deepEqual(stripOffsets(parsed.types), stripOffsets(types));
    assert.match(dumpBtfC(parsed), /struct mod_s \{\n\tstruct node \*n;\n\tstruct mod_s \*next;\n\};/);
    expectBtfError(() => parseBtf(bytes), /string|magic|range/);
    if (HAVE_BPFTOOL) {
      const bf = join(tmp, 'base.btf');
      const sf = join(tmp, 'split.btf');
      writeFileSync(bf, s.btf);
      writeFileSync(sf, bytes);
      assert.equal(bpftool(['btf', 'dump', 'file', sf, '--base-btf', bf]), dumpBtfRaw(parsed));
    }
  });

  test('.BTF.ext: func_info, line_info (matching the source) and CO-RE relocations', {
    skip: !HAVE_CLANG && 'clang-19 absent',
  }, async () => {
    const s = await btfSections(compileOwn());
    assert.ok(s?.ext);
    const btf = parseBtf(s.btf);
    const ext = parseBtfExt(s.ext, btf);
    assert.deepEqual([ext.funcInfoRecSize, ext.lineInfoRecSize, ext.coreReloRecSize], [8, 16, 16]);
    const funcs = Object.fromEntries(
      ext.funcInfo.map((sec) => [sec.section, sec.records.map((r) => btf.type(r.typeId).name)]),
    );
    assert.deepEqual(funcs, { '.text': ['helper'], xdp: ['prog'] });
    const lines = SOURCE.split('\n');
    let n = 0;
    for (const sec of ext.lineInfo) {
      for (const r of sec.records) {
        assert.match(r.fileName, /btf_all\.c$/);
        assert.equal(r.line, lines[r.lineNum - 1], `line ${r.lineNum}`);
        n++;
      }
    }
    assert.ok(n >= 4);
    assert.ok(
      ext.lineInfo.find((sec) => sec.section === 'xdp')?.records.some((r) => r.line.includes('helper(n, 3)')),
    );
    const relos = ext.coreRelos.flatMap((sec) => sec.records.map((r) => ({ sec: sec.section, ...r })));
    assert.ok(relos.length >= 1);
    const r = relos[0];
    assert.equal(r.sec, 'xdp');
    assert.equal(btf.type(r.typeId).name, 'node');
    assert.equal(r.kindName, 'BPF_CORE_FIELD_BYTE_OFFSET');
    assert.match(r.accessStr, /^0:10:1:2$/);
  });
});

// ---------------------------------------------------------------- malformed input

/** Hand-assembled little-endian BTF: types as u32 words, strings as a list. */
function blob(words: number[], strs: string[] = []): Uint8Array {
  const str = Buffer.from(`\0${strs.map((s) => `${s}\0`).join('')}`, 'latin1');
  const out = Buffer.alloc(24 + words.length * 4 + str.length);
  out.writeUInt16LE(0xeb9f, 0);
  out[2] = 1;
  out.writeUInt32LE(24, 4);
  out.writeUInt32LE(0, 8);
  out.writeUInt32LE(words.length * 4, 12);
  out.writeUInt32LE(words.length * 4, 16);
  out.writeUInt32LE(str.length, 20);
  words.forEach((w, i) => {
    out.writeUInt32LE(w >>> 0, 24 + 4 * i);
  });
  str.copy(out, 24 + words.length * 4);
  return out;
}
const info = (kind: number, vlen = 0, kflag = 0) => ((kflag << 31) | (kind << 24) | vlen) >>> 0;
const INT32 = [1, info(1), 4, (1 << 24) | 32]; // [1] INT 'a' (name offset 1)

describe('btf: malformed input is refused with TsbpfError', () => {
  test('header, sections and strings', () => {
    expectBtfError(() => parseBtf(new Uint8Array(10)), /truncated/);
    const good = blob(INT32, ['a']);
    assert.equal(parseBtf(good).typeCount, 2);
    const badMagic = Buffer.from(good);
    badMagic[0] = 0;
    expectBtfError(() => parseBtf(badMagic), /bad BTF magic/);
    const badVersion = Buffer.from(good);
    badVersion[2] = 2;
    expectBtfError(() => parseBtf(badVersion), /version/);
    expectBtfError(() => parseBtf(good.subarray(0, good.length - 1)), /runs past the end/);
    const longTypes = Buffer.from(good);
    longTypes.writeUInt32LE(100, 12);
    expectBtfError(() => parseBtf(longTypes), /type section/);
    expectBtfError(() => parseBtf(blob(INT32.slice(0, 3), ['a'])), /truncated in type \[1\]/);
    expectBtfError(() => parseBtf(blob([99, info(1), 4, 32], ['a'])), /string offset 99 out of range/);
    expectBtfError(() => parseBtf(blob([0, info(25), 0])), /unknown kind 25/);
    expectBtfError(
      () => parseBtf(blob([1, info(4, 1000), 4], ['a'])),
      /truncated in type \[1\].*1000 members/,
    );
  });

  test('type ids out of range and loops', () => {
    expectBtfError(() => parseBtf(blob([0, info(2), 7])), /refers to type id 7, out of range/);
    // typedef a -> typedef a
    expectBtfError(() => parseBtf(blob([1, info(8), 1], ['a'])), /cycle/);
    // struct a { struct a x; }
    expectBtfError(
      () => parseBtf(blob([1, info(4, 1), 4, 1, 1, 0], ['a'])),
      /cycle that does not pass through a pointer/,
    );
    // ptr -> const -> ptr
    expectBtfError(() => parseBtf(blob([0, info(2), 2, 0, info(10), 1])), /named struct/);
    // struct a { struct a *next; } is fine
    const list = parseBtf(blob([1, info(4, 1), 8, 3, 2, 0, 0, info(2), 1], ['a', 'next']));
    assert.match(dumpBtfC(list, { bare: true }), /struct a \{\n\tstruct a \*next;\n\};/);
    // FUNC must point at a FUNC_PROTO
    expectBtfError(() => parseBtf(blob([...INT32, 1, info(12), 1], ['a'])), /not a FUNC_PROTO/);
  });

  test('.BTF.ext', () => {
    const btf = parseBtf(blob(INT32, ['a']));
    const ok = Buffer.alloc(32 + 20);
    ok.writeUInt16LE(0xeb9f, 0);
    ok[2] = 1;
    // hdr_len, func_info off/len, line_info off/len, core_relo off/len
    [32, 0, 20, 20, 0, 20, 0].forEach((v, i) => {
      ok.writeUInt32LE(v, 4 + 4 * i);
    });
    // rec_size 8; section "a" with one record {insn_off 0, type_id 1}
    [8, 1, 1, 0, 1].forEach((v, i) => {
      ok.writeUInt32LE(v, 32 + 4 * i);
    });
    assert.deepEqual(parseBtfExt(ok, btf).funcInfo, [{ section: 'a', records: [{ insnOff: 0, typeId: 1 }] }]);
    const badType = Buffer.from(ok);
    badType.writeUInt32LE(9, 48);
    expectBtfError(() => parseBtfExt(badType, btf), /type id 9 out of range/);
    const badName = Buffer.from(ok);
    badName.writeUInt32LE(500, 36);
    expectBtfError(() => parseBtfExt(badName, btf), /string offset 500/);
    const badCount = Buffer.from(ok);
    badCount.writeUInt32LE(1000, 40);
    expectBtfError(() => parseBtfExt(badCount, btf), /run past the end/);
    const badRec = Buffer.from(ok);
    badRec.writeUInt32LE(3, 32);
    expectBtfError(() => parseBtfExt(badRec, btf), /record size 3/);
    expectBtfError(() => parseBtfExt(ok.subarray(0, 10), btf), /truncated/);
  });
});

// ---------------------------------------------------------------- fuzz

/** xorshift32: deterministic, seeded. */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

function mutate(src: Uint8Array, rnd: (n: number) => number): Uint8Array {
  let b = Uint8Array.from(src);
  const rounds = 1 + rnd(4);
  for (let r = 0; r < rounds; r++) {
    const dv = new DataView(b.buffer);
    const at = (width: number) => {
      // bias towards the header and the type section
      const lim = rnd(3) === 0 ? Math.min(b.length, 64) : b.length;
      return Math.max(0, rnd(Math.max(1, lim - width)) & ~(rnd(2) ? 3 : 0));
    };
    switch (rnd(7)) {
      case 0: {
        const i = at(1);
        b[i] ^= 1 << rnd(8);
        break;
      }
      case 1:
        b[at(1)] = rnd(256);
        break;
      case 2: {
        const vals = [0, 1, 2, 0xffffffff, 0x7fffffff, 0x80000000, 0xffff, rnd(200), rnd(1 << 20), b.length];
        if (b.length >= 4) dv.setUint32(at(4), vals[rnd(vals.length)], true);
        break;
      }
      case 3:
        b = b.slice(0, rnd(b.length + 1));
        break;
      case 4: {
        // change a type's kind byte (info's high byte) somewhere in the type section
        const i = 24 + rnd(Math.max(1, b.length - 24));
        if (i < b.length) b[i] = rnd(2) ? rnd(20) : rnd(20) | 0x80;
        break;
      }
      case 5: {
        // duplicate a chunk
        const i = rnd(b.length + 1);
        const len = rnd(48);
        const c = b.slice(i, i + len);
        const nb = new Uint8Array(b.length + c.length);
        nb.set(b.subarray(0, i));
        nb.set(c, i);
        nb.set(b.subarray(i), i + c.length);
        b = nb;
        break;
      }
      default: {
        // small u32 in a random aligned slot: retargets type ids, vlens, offsets
        if (b.length >= 28)
          dv.setUint32(Math.min(b.length - 4, 24 + 4 * rnd((b.length - 24) >> 2)), rnd(120), true);
      }
    }
  }
  return b;
}

describe('btf: fuzz', () => {
  test('mutated BTF and .BTF.ext: only TsbpfError escapes', async (t) => {
    // corpus: our own object (when clang-19 exists) and the committed fixtures (one is big-endian)
    const corpus: { btf: Uint8Array; ext: Uint8Array; base: Btf }[] = [];
    const objs = [...(HAVE_CLANG ? [compileOwn()] : []), ...fixtureObjects()];
    for (const obj of objs) {
      const s = await btfSections(obj);
      if (s?.ext) corpus.push({ btf: s.btf, ext: s.ext, base: parseBtf(s.btf) });
    }
    if (corpus.length === 0) return t.skip('no BTF objects (no fixtures and no clang-19)');
    const seed = Number(process.env.TSBPF_SEED ?? 0x5eed);
    const rnd = prng(seed);
    const budgetMs = LONG ? 60000 : 1500;
    const maxIter = LONG ? 1_000_000 : 4000;
    const t0 = performance.now();
    let n = 0;
    let parsed = 0;
    for (; n < maxIter && performance.now() - t0 < budgetMs; n++) {
      const useExt = rnd(4) === 0;
      // our own object first: it has every kind
      const c = corpus[rnd(2) === 0 ? 0 : rnd(corpus.length)];
      const base = c.base;
      const input = mutate(useExt ? c.ext : c.btf, rnd);
      try {
        if (useExt) {
          parseBtfExt(input, base);
        } else {
          const btf = parseBtf(input);
          parsed++;
          dumpBtfRaw(btf);
          dumpBtfJson(btf);
          dumpBtfC(btf, { maxLength: 1 << 20 });
          for (let id = 1; id < btf.typeCount; id++) {
            try {
              btf.sizeof(id);
            } catch (e) {
              if (!(e instanceof TsbpfError)) throw e;
            }
            btf.alignof(id);
            btf.resolve(id);
          }
          parseBtf(encodeBtf(btf));
        }
      } catch (e) {
        if (!(e instanceof TsbpfError)) {
          writeFileSync(join(tmpdir(), 'tsbpf-btf-fuzz-crash.bin'), input);
          assert.fail(`iteration ${n} (seed ${seed}): ${(e as Error).stack}`);
        }
      }
    }
    t.diagnostic(
      `${n} mutated inputs (seed ${seed}), ${parsed} of them parsed as BTF and went through every dumper`,
    );
    assert.ok(n >= 500, `only ${n} iterations ran`);
    assert.ok(parsed > 0);
  });
});
