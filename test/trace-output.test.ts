/**
 * bpftrace's output formats, byte for byte. Each case is a BEGIN-only script whose maps are filled
 * deterministically, the maps it leaves (built here by hand, as the runtime would decode them) and the
 * stdout Debian's bpftrace v0.17 printed for it (recorded here, so the test runs without bpftrace). When
 * bpftrace is installed and BPF usable, the recorded text is also checked against a live run.
 *
 * Entries with equal values (two counts of 1) print in key order here; bpftrace prints them in the kernel
 * hash map's iteration order, which depends on a random per-map seed, so no test relies on it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  formatPrintf,
  histToText,
  int,
  type MapEntry,
  type MapValue,
  mapToJson,
  mapToText,
  Output,
  type PrintableMap,
  str,
  strftime,
  uint,
  type Value,
} from '../src/trace/output/index.js';

const run = promisify(execFile);

function liveBpftrace(): boolean {
  if (process.env.TSBPF_NO_BPFTRACE) return false;
  return process.getuid?.() === 0 && existsSync('/usr/bin/bpftrace');
}

const scalar = (v: Value): MapValue => ({ kind: 'scalar', value: v });
const entry = (key: Value[], value: MapValue): MapEntry => ({ key, value });
const hist = (pairs: [number, number][], size = 65): MapValue => {
  const b = new Array<bigint>(size).fill(0n);
  for (const [i, n] of pairs) b[i] = BigInt(n);
  return { kind: 'buckets', buckets: b };
};
const stats = (count: number, total: number): MapValue => ({
  kind: 'stats',
  count: BigInt(count),
  total: BigInt(total),
});

/** Renders what bpftrace prints for a BEGIN { ...; exit(); } script: header, blank pair, maps. */
function render(maps: PrintableMap[], probes = 1, before = ''): string {
  let out = '';
  const o = new Output('text', (t) => {
    out += t;
  });
  o.attachedProbes(probes);
  out += before;
  o.exitMaps(maps);
  return out;
}

interface Case {
  name: string;
  script: string;
  maps: PrintableMap[];
  before?: string;
  expected: string;
}

const BAR = '@'.repeat(52);
const EMPTY = ' '.repeat(52);

const CASES: Case[] = [
  {
    name: 'hist, lhist, stats, avg, tuple keys, strings, tuples, min/max/sum',
    script:
      'BEGIN { @h = hist(5); @h = hist(100); @h=hist(0); @h=hist(-3); @h=hist(1); @h = hist(3000); @l = lhist(3, 0, 10, 1); @l = lhist(-1, 0, 10, 1); @l = lhist(12, 0, 10, 1); @s = stats(7); @s=stats(10); @a = avg(7); @a=avg(8); @c[1, "a"] = count(); @c[2, "b"] = count(); @c[2, "b"] = count(); @x = 5; @str = "hello"; @t = (1, "two", 3); @m = min(-5); @mx=max(3); @su[comm]=sum(7); exit(); }',
    maps: [
      { name: '@a', kind: 'avg', keyed: false, entries: [entry([], stats(2, 15))] },
      {
        name: '@c',
        kind: 'count',
        keyed: true,
        entries: [entry([int(2), str('b')], scalar(uint(2))), entry([int(1), str('a')], scalar(uint(1)))],
      },
      {
        name: '@h',
        kind: 'hist',
        keyed: false,
        entries: [
          entry(
            [],
            hist([
              [0, 1],
              [1, 1],
              [2, 1],
              [4, 1],
              [8, 1],
              [13, 1],
            ]),
          ),
        ],
      },
      {
        name: '@l',
        kind: 'lhist',
        keyed: false,
        lhist: { min: 0, max: 10, step: 1 },
        entries: [
          entry(
            [],
            hist(
              [
                [0, 1],
                [4, 1],
                [11, 1],
              ],
              12,
            ),
          ),
        ],
      },
      { name: '@m', kind: 'min', keyed: false, entries: [entry([], scalar(int(-5)))] },
      { name: '@mx', kind: 'max', keyed: false, entries: [entry([], scalar(int(3)))] },
      { name: '@s', kind: 'stats', keyed: false, entries: [entry([], stats(2, 17))] },
      { name: '@str', kind: 'plain', keyed: false, entries: [entry([], scalar(str('hello')))] },
      { name: '@su', kind: 'sum', keyed: true, entries: [entry([str('bpftrace')], scalar(int(7)))] },
      {
        name: '@t',
        kind: 'plain',
        keyed: false,
        entries: [entry([], scalar({ kind: 'tuple', elems: [int(1), str('two'), int(3)] }))],
      },
      { name: '@x', kind: 'plain', keyed: false, entries: [entry([], scalar(int(5)))] },
    ],
    expected: `Attaching 1 probe...


@a: 7

@c[1, a]: 1
@c[2, b]: 2
@h: 
(..., 0)               1 |${BAR}|
[0]                    1 |${BAR}|
[1]                    1 |${BAR}|
[2, 4)                 0 |${EMPTY}|
[4, 8)                 1 |${BAR}|
[8, 16)                0 |${EMPTY}|
[16, 32)               0 |${EMPTY}|
[32, 64)               0 |${EMPTY}|
[64, 128)              1 |${BAR}|
[128, 256)             0 |${EMPTY}|
[256, 512)             0 |${EMPTY}|
[512, 1K)              0 |${EMPTY}|
[1K, 2K)               0 |${EMPTY}|
[2K, 4K)               1 |${BAR}|

@l: 
(..., 0)               1 |${BAR}|
[0, 1)                 0 |${EMPTY}|
[1, 2)                 0 |${EMPTY}|
[2, 3)                 0 |${EMPTY}|
[3, 4)                 1 |${BAR}|
[4, 5)                 0 |${EMPTY}|
[5, 6)                 0 |${EMPTY}|
[6, 7)                 0 |${EMPTY}|
[7, 8)                 0 |${EMPTY}|
[8, 9)                 0 |${EMPTY}|
[9, 10)                0 |${EMPTY}|
[10, ...)              1 |${BAR}|

@m: -5
@mx: 3
@s: count 2, average 8, total 17

@str: hello
@su[bpftrace]: 7
@t: (1, two, 3)
@x: 5
`,
  },
  {
    name: 'sorting: by value, by average, by bucket totals, keys unsigned',
    script:
      'BEGIN { @x[-1]="a"; @x[2]="b"; @x[0]="c"; @y[(uint32)4294967295]=1; @p[(int8)-3]=(int8)-3; @u=(uint8)255; @r = (1, (2,"x")); @neg[1]=-5; @neg[2]=-1; @neg[3]=4; @mn[1]=min(10); @mn[2]=min(-3); @su[1]=sum(-5); @su[2]=sum(3); @st[1]=stats(10); @st[2]=stats(1); @st[3]=stats(-4); @av[1]=avg(-3); @hh[1]=hist(1); @hh[2]=hist(1);@hh[2]=hist(1); @hh[0]=hist(2); exit(); }',
    maps: [
      { name: '@av', kind: 'avg', keyed: true, entries: [entry([int(1)], stats(1, -3))] },
      {
        name: '@hh',
        kind: 'hist',
        keyed: true,
        entries: [
          entry([int(2)], hist([[2, 2]])),
          entry([int(1)], hist([[2, 1]])),
          entry([int(0)], hist([[3, 1]])),
        ],
      },
      {
        name: '@mn',
        kind: 'min',
        keyed: true,
        entries: [entry([int(1)], scalar(int(10))), entry([int(2)], scalar(int(-3)))],
      },
      {
        name: '@neg',
        kind: 'plain',
        keyed: true,
        entries: [
          entry([int(3)], scalar(int(4))),
          entry([int(1)], scalar(int(-5))),
          entry([int(2)], scalar(int(-1))),
        ],
      },
      { name: '@p', kind: 'plain', keyed: true, entries: [entry([int(-3)], scalar(int(-3, 8)))] },
      {
        name: '@r',
        kind: 'plain',
        keyed: false,
        entries: [
          entry([], scalar({ kind: 'tuple', elems: [int(1), { kind: 'tuple', elems: [int(2), str('x')] }] })),
        ],
      },
      {
        name: '@st',
        kind: 'stats',
        keyed: true,
        entries: [entry([int(1)], stats(1, 10)), entry([int(2)], stats(1, 1)), entry([int(3)], stats(1, -4))],
      },
      {
        name: '@su',
        kind: 'sum',
        keyed: true,
        entries: [entry([int(2)], scalar(int(3))), entry([int(1)], scalar(int(-5)))],
      },
      { name: '@u', kind: 'plain', keyed: false, entries: [entry([], scalar(uint(255, 8)))] },
      {
        name: '@x',
        kind: 'plain',
        keyed: true,
        entries: [
          entry([int(-1)], scalar(str('a'))),
          entry([int(2)], scalar(str('b'))),
          entry([int(0)], scalar(str('c'))),
        ],
      },
      { name: '@y', kind: 'plain', keyed: true, entries: [entry([uint(4294967295)], scalar(int(1)))] },
    ],
    expected: `Attaching 1 probe...


@av[1]: -3

@hh[0]: 
[2, 4)                 1 |${BAR}|

@hh[1]: 
[1]                    1 |${BAR}|

@hh[2]: 
[1]                    2 |${BAR}|

@mn[2]: -3
@mn[1]: 10
@neg[1]: -5
@neg[2]: -1
@neg[3]: 4
@p[-3]: -3
@r: (1, (2, x))
@st[3]: count 1, average -4, total -4
@st[2]: count 1, average 1, total 1
@st[1]: count 1, average 10, total 10

@su[1]: -5
@su[2]: 3
@u: 255
@x[0]: c
@x[2]: b
@x[-1]: a
@y[4294967295]: 1
`,
  },
  {
    name: 'printf conversions',
    script:
      'BEGIN { printf("%d|%5d|%-5d|%05d|%u|%x|%X|%08x|%lu|%ld|%llu|%c|%s|%-10s|%10s|%.2s|%%|%p|%-8x|%5.3d\\n", -5, 42, 42, 42, -1, 255, 255, 255, 12345678901, -3, 5, 65, "str", "ab", "cd", "xyz", 4096,255, 7); printf("%hd|%hhu|%hx|\\n", 70000, 300, -1); printf("%d %x %p %p %c|%5c|%-3s|\\n", 12345678901, 12345678901, 0, -1, 256+66, 67, "toolong"); printf("%lld %llx %lx %zd\\n", -12345678901, -1, 12345678901, 5); exit(); }',
    maps: [],
    before: [
      formatPrintf('%d|%5d|%-5d|%05d|%u|%x|%X|%08x|%lu|%ld|%llu|%c|%s|%-10s|%10s|%.2s|%%|%p|%-8x|%5.3d\n', [
        int(-5),
        int(42),
        int(42),
        int(42),
        int(-1),
        int(255),
        int(255),
        int(255),
        int(12345678901),
        int(-3),
        int(5),
        int(65),
        str('str'),
        str('ab'),
        str('cd'),
        str('xyz'),
        int(4096),
        int(255),
        int(7),
      ]),
      formatPrintf('%hd|%hhu|%hx|\n', [int(70000), int(300), int(-1)]),
      formatPrintf('%d %x %p %p %c|%5c|%-3s|\n', [
        int(12345678901),
        int(12345678901),
        int(0),
        int(-1),
        int(256 + 66),
        int(67),
        str('toolong'),
      ]),
      formatPrintf('%lld %llx %lx %zd\n', [int(-12345678901), int(-1), int(12345678901), int(5)]),
    ].join(''),
    expected: `Attaching 1 probe...
-5|   42|42   |00042|4294967295|ff|FF|000000ff|12345678901|-3|5|A|str|ab        |        cd|xy|%|0x1000|ff      |  007
4464|44|ffff|
-539222987 dfdc1c35 (nil) 0xffffffffffffffff B|    C|toolong|
-12345678901 ffffffffffffffff 2dfdc1c35 5


`,
  },
];

describe('trace output: text, as bpftrace v0.17 prints it', () => {
  for (const c of CASES) {
    it(c.name, () => {
      assert.equal(render(c.maps, 1, c.before ?? ''), c.expected);
    });
  }

  it('print(@map, top, div), empty maps, print(value)', () => {
    const counts: PrintableMap = {
      name: '@c',
      kind: 'count',
      keyed: true,
      entries: [
        entry([int(1)], scalar(uint(1))),
        entry([int(2)], scalar(uint(2))),
        entry([int(3)], scalar(uint(1))),
      ],
    };
    assert.equal(mapToText(counts), '@c[1]: 1\n@c[3]: 1\n@c[2]: 2\n');
    assert.equal(mapToText(counts, { top: 2 }), '@c[3]: 1\n@c[2]: 2\n');
    assert.equal(mapToText(counts, { div: 2 }), '@c[1]: 0\n@c[3]: 0\n@c[2]: 1\n');
    assert.equal(mapToText({ ...counts, entries: [] }), '\n');
    assert.equal(mapToText({ name: '@s', kind: 'stats', keyed: false, entries: [] }), '\n\n');
    let out = '';
    const o = new Output('text', (t) => {
      out += t;
    });
    o.value(int(5));
    o.value(str('str'));
    o.value({ kind: 'tuple', elems: [int(1), str('a')] });
    assert.equal(out, '5\nstr\n(1, a)\n');
  });

  it('hist labels up to T, bars scaled as single-precision floats', () => {
    const b = new Array<bigint>(65).fill(0n);
    b[2 + 40] = 3n;
    b[2 + 41] = 7n;
    const text = histToText(b);
    assert.match(text, /^\[1T, 2T\) {15}3 \|@{22} {30}\|\n\[2T, 4T\) {15}7 \|@{52}\|\n$/);
  });

  it('hist(x, k) sub-buckets', () => {
    const b = new Array<bigint>(200).fill(0n);
    b[1] = 1n; // 0
    b[5] = 1n; // k=2: 4..4
    b[6] = 1n; // [5]
    b[9] = 1n; // [8, 10)
    const text = histToText(b, 1, 2);
    assert.equal(
      text.split('\n')[0].slice(0, 16).trim() +
        text
          .split('\n')
          .slice(1, -1)
          .map((l) => `|${l.slice(0, 16).trim()}`)
          .join(''),
      '[0]|[1]|[2]|[3]|[4]|[5]|[6]|[7]|[8, 10)',
    );
  });

  it('strftime conversions', () => {
    const d = new Date(2024, 0, 2, 3, 4, 5);
    assert.equal(
      strftime('%Y-%m-%d %H:%M:%S %a %b %e %j %y %I%p %%', d),
      '2024-01-02 03:04:05 Tue Jan  2 002 24 03AM %',
    );
    assert.equal(strftime('%f', d, 123456789), '123456');
  });
});

describe('trace output: -f json', () => {
  it('maps, hists, stats, values, messages', () => {
    let out = '';
    const o = new Output('json', (t) => {
      out += t;
    });
    o.attachedProbes(1);
    o.message('printf', 'hello 5\n');
    o.map({ name: '@x', kind: 'plain', keyed: false, entries: [entry([], scalar(int(5)))] });
    o.value({ kind: 'tuple', elems: [int(1), str('x')] });
    o.message('printf', 'q"\t\n');
    o.exitMaps([
      { name: '@a', kind: 'avg', keyed: false, entries: [entry([], stats(1, 3))] },
      {
        name: '@c',
        kind: 'count',
        keyed: true,
        entries: [entry([int(2), str('b')], scalar(uint(1))), entry([int(1), str('a')], scalar(uint(1)))],
      },
      {
        name: '@h',
        kind: 'hist',
        keyed: false,
        entries: [
          entry(
            [],
            hist([
              [0, 1],
              [4, 1],
              [8, 1],
            ]),
          ),
        ],
      },
      { name: '@hk', kind: 'hist', keyed: true, entries: [entry([int(1)], hist([[3, 1]]))] },
      { name: '@k', kind: 'plain', keyed: true, entries: [entry([str('x')], scalar(int(1)))] },
      {
        name: '@l',
        kind: 'lhist',
        keyed: false,
        lhist: { min: 0, max: 10, step: 1 },
        entries: [
          entry(
            [],
            hist(
              [
                [4, 1],
                [11, 1],
              ],
              12,
            ),
          ),
        ],
      },
      { name: '@s', kind: 'stats', keyed: false, entries: [entry([], stats(1, 7))] },
      { name: '@str', kind: 'plain', keyed: false, entries: [entry([], scalar(str('hi')))] },
      { name: '@e', kind: 'plain', keyed: true, entries: [] },
      {
        name: '@t',
        kind: 'plain',
        keyed: false,
        entries: [entry([], scalar({ kind: 'tuple', elems: [int(1), str('a')] }))],
      },
    ]);
    assert.equal(
      out,
      `{"type": "attached_probes", "data": {"probes": 1}}
{"type": "printf", "data": "hello 5\\n"}
{"type": "map", "data": {"@x": 5}}
{"type": "value", "data": [1,"x"]}
{"type": "printf", "data": "q\\"\\t\\n"}


{"type": "stats", "data": {"@a": 3}}
{"type": "map", "data": {"@c": {"1,a": 1, "2,b": 1}}}
{"type": "hist", "data": {"@h": [{"max": -1, "count": 1}, {"min": 0, "max": 0, "count": 0}, {"min": 1, "max": 1, "count": 0}, {"min": 2, "max": 3, "count": 0}, {"min": 4, "max": 7, "count": 1}, {"min": 8, "max": 15, "count": 0}, {"min": 16, "max": 31, "count": 0}, {"min": 32, "max": 63, "count": 0}, {"min": 64, "max": 127, "count": 1}]}}
{"type": "hist", "data": {"@hk": {"1": [{"min": 2, "max": 3, "count": 1}]}}}
{"type": "map", "data": {"@k": {"x": 1}}}
{"type": "hist", "data": {"@l": [{"min": 3, "max": 3, "count": 1}, {"min": 4, "max": 4, "count": 0}, {"min": 5, "max": 5, "count": 0}, {"min": 6, "max": 6, "count": 0}, {"min": 7, "max": 7, "count": 0}, {"min": 8, "max": 8, "count": 0}, {"min": 9, "max": 9, "count": 0}, {"min": 10, "count": 1}]}}
{"type": "stats", "data": {"@s": {"count": 1, "average": 7, "total": 7}}}
{"type": "map", "data": {"@str": "hi"}}
{"type": "map", "data": {"@t": [1,"a"]}}
`,
    );
    assert.equal(mapToJson({ name: '@e', kind: 'plain', keyed: true, entries: [] }), '');
  });
});

describe('trace output: recorded text matches live bpftrace', {
  skip: !liveBpftrace() && 'bpftrace not installed or not root',
}, () => {
  it('every recorded case', async () => {
    const results = await Promise.all(
      CASES.map((c) => run('bpftrace', ['-e', c.script], { encoding: 'utf8' }).then((r) => r.stdout)),
    );
    CASES.forEach((c, i) => {
      // @su[comm] is keyed by the process name: bpftrace's own.
      assert.equal(results[i], c.expected, c.name);
    });
  });
});
