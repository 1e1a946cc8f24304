/**
 * The tracing code generator: every generated program is checked by the KERNEL verifier (one-liners and
 * the bpftrace runtime corpus), and expression semantics are checked by running BEGIN programs in the VM
 * (and in the kernel with BPF_PROG_TEST_RUN when available) against bpftrace's formulas.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Backend } from '../src/backend.js';
import { kernelBackend } from '../src/kernel/collection.js';
import { bpfAvailable, closeFd, loadProgram } from '../src/kernel/program.js';
import { programOptionsHelp } from '../src/trace/analyse.js';
import { KernelTypes } from '../src/trace/btf-types.js';
import { compileScript } from '../src/trace/codegen/compile.js';
import {
  type CompiledScript,
  decodeValue,
  histBucket,
  histBucketLow,
  lhistBucket,
  perCpuSlices,
  readInt,
  reduceTseries,
} from '../src/trace/codegen/records.js';
import { compileFrontEnd } from '../src/trace/index.js';
import { vmBackend } from '../src/vm/backend.js';

const bpf = bpfAvailable();
const skipKernel = bpf.ok ? false : `BPF unavailable: ${bpf.reason}`;
const types = new KernelTypes();

function compile(
  text: string,
  positionalArgs?: string[],
  namedArgs?: Record<string, string | true>,
): CompiledScript {
  const an = compileFrontEnd(text, {
    types,
    unsafe: true,
    ...(positionalArgs ? { positionalArgs } : {}),
    ...(namedArgs ? { namedArgs } : {}),
  });
  return compileScript(an, { types, ...(positionalArgs ? { positionalArgs } : {}) });
}

/** Loads the whole collection in the kernel (maps + every program at log level 1). */
function kernelAccepts(cs: CompiledScript): { ok: true } | { ok: false; why: string } {
  try {
    const col = kernelBackend.load(cs.spec, { logLevel: 1 });
    col.close();
    return { ok: true };
  } catch (e) {
    const msg = (e as Error).message;
    const log = (e as { details?: { log?: string } }).details?.log ?? '';
    const lines = log.trim().split('\n');
    return { ok: false, why: `${msg.split('\n')[0]} :: ${lines.slice(-3).join(' | ')}` };
  }
}

const ONE_LINERS = [
  'BEGIN { printf("hello world\\n"); exit(); }',
  'BEGIN { printf("%d %u %x %s %-10s|\\n", -1, 2, 255, "str", "pad"); }',
  'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }',
  'tracepoint:syscalls:sys_enter_openat /pid > 100 && uid == 0/ { printf("%s %s\\n", comm, str(args.filename)); }',
  'tracepoint:syscalls:sys_enter_read { @bytes[pid, comm] = sum(args.count); }',
  'tracepoint:syscalls:sys_exit_read /args.ret > 0/ { @ = hist(args.ret); }',
  'tracepoint:syscalls:sys_exit_read { @l = lhist(args.ret, 0, 1000, 100); @h2 = hist(args.ret, 2); }',
  'tracepoint:syscalls:sys_enter_read { @mn = min(args.count); @mx = max(args.count); @a = avg(args.count); @s = stats(args.count); }',
  'tracepoint:sched:sched_switch { @[args.prev_comm, args.next_comm] = count(); }',
  'tracepoint:sched:sched_process_exec { printf("%s\\n", str(args.filename)); }',
  'tracepoint:sched:sched_switch { @p[curtask->real_parent->pid] = count(); @t = curtask->pid; }',
  'tracepoint:sched:sched_wakeup { @[kstack] = count(); }',
  'tracepoint:sched:sched_wakeup { @k[kstack(perf, 10)] = count(); @u[ustack] = count(); }',
  'rawtracepoint:sched_switch { @[arg0 != 0] = count(); }',
  'uprobe:/bin/bash:readline { printf("%d %d\\n", arg0, arg1); @u[usym(arg0)] = count(); }',
  'uretprobe:/bin/bash:readline { printf("%s\\n", str(retval)); @f[func] = count(); }',
  'uprobe:/bin/bash:readline { @x = sarg0; @r = reg("ip"); }',
  'kprobe:do_nanosleep { @[ksym(reg("ip"))] = count(); }',
  'interval:s:1 { print(@x); clear(@x); zero(@y); time("%H:%M:%S\\n"); } BEGIN { @x = 1; @y = count(); }',
  'interval:ms:100 { @ticks++; if (@ticks > 10) { exit(); } }',
  'profile:hz:99 { @[cpu] = count(); }',
  'software:cpu-clock:1000000 { @c = count(); }',
  'BEGIN { $x = 5; while ($x > 0) { $x--; } printf("%d\\n", $x); }',
  'BEGIN { $i = 0; unroll(5) { $i += 2; } @i = $i; }',
  'BEGIN { @a[1] = 1; @a[2] = 2; for ($kv : @a) { printf("%d %d\\n", $kv.0, $kv.1); } }',
  'BEGIN { @a[1] = 1; @a[2] = 2; @n = len(@a); delete(@a, 1); delete(@a[2]); @h = has_key(@a, 2); }',
  'BEGIN { $t = (1, "two", 3); printf("%d %s %d\\n", $t.0, $t.1, $t.2); @t = $t; }',
  'BEGIN { $r = (a=1, b="x"); @r = $r.a; printf("%s\\n", $r.b); }',
  'BEGIN { $s = "abc"; if ($s == "abc") { printf("eq\\n"); } else { printf("ne\\n"); } }',
  'BEGIN { @x = strncmp("abcd", "abce", 3); @y = strcontains("hello world", "wor"); }',
  'BEGIN { @x = 1 ? 2 : 3; @y = (int8)-1; @z = (uint16)0x12345; @w = 7 / 2; @v = -7 % 3; }',
  'BEGIN { printf("%s\\n", strftime("%H:%M", nsecs)); print((1, 2)); print(@m); @m = 5; }',
  'BEGIN { @e = elapsed; @n = nsecs; @c = cpu; @r = rand; @g = cgroup; @nc = ncpus; @p = probe; }',
  'BEGIN { printf("%s %s\\n", ntop(0x0100007f), ntop(2, 0x0100007f)); }',
  'tracepoint:syscalls:sys_enter_execve { join(args.argv); }',
  'tracepoint:syscalls:sys_enter_write { printf("%r\\n", buf(args.buf, args.count)); }',
  'BEGIN { @ = sizeof(struct task_struct); @o = offsetof(struct task_struct, pid); }',
  'struct Foo { int a; char b[8]; } BEGIN { $f = (struct Foo *)0; @a = $f->a; }',
  'tracepoint:syscalls:sys_enter_kill { signal("SIGUSR1"); }',
  'BEGIN { system("echo %d", 1); cat("/proc/%d/status", 1); }',
  'END { printf("bye\\n"); }',
  'tracepoint:syscalls:sys_enter_openat { @[str(args.filename)] = count(); } END { print(@, 10); }',
  'BEGIN { @s = bswap((uint32)1); }',
  'BEGIN { $a = 1; $b = 2; @r = $a < $b && $b > 1 || !($a == 1); }',
  'BEGIN { for ($i : 0..5) { @x += $i; } }',
  'tracepoint:syscalls:sys_enter_open,tracepoint:syscalls:sys_enter_openat { printf("%s\\n", str(args->filename)); }',
  'BEGIN { $a = 1; $b = &$a; print(($b, *$b)); $t = (1, "x"); print(*(&$t)); }',
  'BEGIN { $a = "hello"; @n = strlen($a); printf("%s\\n", ntop(pton("::1"))); }',
  'tracepoint:syscalls:sys_enter_read { @c = count(); @s = sum(args.count); @m = max(args.count); @a = avg(args.count); @x = @c + @s + @m + @a; }',
  'interval:ms:10 { @t = tseries(rand % 10, 10ms, 100, "avg"); @k[cpu, comm] = tseries(-1, 1s, 5, "min"); @l = tseries(1, 1s, 5); }',
];

describe('trace codegen: kernel verifier', { skip: skipKernel }, () => {
  it('accepts every one-liner', () => {
    const bad: string[] = [];
    for (const text of ONE_LINERS) {
      let cs: CompiledScript;
      try {
        cs = compile(text);
      } catch (e) {
        bad.push(`${text}\n  codegen: ${(e as Error).message.split('\n')[0]}`);
        continue;
      }
      const r = kernelAccepts(cs);
      if (!r.ok) bad.push(`${text}\n  kernel: ${r.why}`);
    }
    console.log(`one-liners: ${ONE_LINERS.length - bad.length}/${ONE_LINERS.length} accepted`);
    for (const b of bad) console.log(`  ✗ ${b}`);
    assert.ok(ONE_LINERS.length - bad.length >= RATCHET_ONE_LINERS, bad.join('\n'));
  });

  it('accepts the corpus programs the front end accepts (ratchet)', () => {
    const corpus = '../shared/corpora/bpftrace/tests/runtime';
    const root = existsSync(corpus) ? corpus : '/work/shared/corpora/bpftrace/tests/runtime';
    if (!existsSync(root)) return;
    const programs = corpusPrograms(root);
    let front = 0;
    let generated = 0;
    let accepted = 0;
    const reasons = new Map<string, number>();
    const note = (why: string) => {
      const k = why.replace(/\d+/g, 'N').slice(0, 120);
      reasons.set(k, (reasons.get(k) ?? 0) + 1);
    };
    for (const p of programs) {
      let an: ReturnType<typeof compileFrontEnd>;
      try {
        an = compileFrontEnd(p.text, { types, positionalArgs: p.args, unsafe: true, childCommand: true });
      } catch {
        continue;
      }
      front++;
      let cs: CompiledScript;
      try {
        cs = compileScript(an, { types, positionalArgs: p.args });
      } catch (e) {
        note(`codegen: ${(e as Error).message.split('\n')[0]?.replace(/^[^:]*:\d+:\d+-\d+: /, '')}`);
        continue;
      }
      generated++;
      const r = kernelAccepts(cs);
      if (r.ok) accepted++;
      else note(`kernel: ${r.why}`);
    }
    const pct = (n: number) => ((100 * n) / Math.max(1, front)).toFixed(1);
    console.log(
      `corpus: ${programs.length} programs, front end accepts ${front}, codegen ${generated} (${pct(generated)}%), kernel verifier accepts ${accepted} (${pct(accepted)}%)`,
    );
    for (const [k, n] of [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${n} × ${k}`);
    assert.ok(
      accepted / Math.max(1, front) >= RATCHET_CORPUS,
      `acceptance ${pct(accepted)}% fell below the ratchet`,
    );
  });

  it('loads each program with loadProgram directly and closes its fd', () => {
    const cs = compile('tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }');
    // Maps must exist for MAP_IDX: load the collection, then also one program standalone with fdArray.
    const col = kernelBackend.load(cs.spec);
    try {
      const prog = cs.spec.programs[0];
      assert.ok(prog);
      const fds = cs.spec.maps.map((m) => (col.map(m.name) as unknown as { fd: number }).fd);
      const r = loadProgram({
        type: prog.typeId,
        insns: prog.insns,
        logLevel: 1,
        fdArray: fds,
        expectedAttachType: prog.attachTypeId,
      });
      assert.match(r.log, /processed \d+ insns/);
      closeFd(r.fd);
    } finally {
      col.close();
    }
  });
});

/** Lower bounds: raise them as the code generator grows. */
const RATCHET_ONE_LINERS = 45;
const RATCHET_CORPUS = 0.85;

interface CorpusProgram {
  text: string;
  args: string[];
}

/** PROG lines and `-e '...'` RUN lines of bpftrace's runtime tests. */
function corpusPrograms(root: string): CorpusProgram[] {
  const out: CorpusProgram[] = [];
  for (const f of readdirSync(root)) {
    const path = join(root, f);
    if (!statSync(path).isFile()) continue;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (line.startsWith('PROG ')) out.push({ text: line.slice(5), args: [] });
      else if (line.startsWith('RUN ')) {
        const m = /-e '((?:[^'\\]|\\.)*)'(.*)$/.exec(line);
        if (m?.[1]) {
          const rest = (m[2] ?? '').replace(/-c\s+"[^"]*"|-c\s+\S+/g, '').trim();
          const args = rest.split(/\s+/).filter((x) => x && !x.startsWith('-') && !x.includes('{{'));
          out.push({ text: m[1], args });
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Semantics in the VM (and the kernel): BEGIN programs storing results in maps.

function runBegin(
  backend: Backend,
  text: string,
  positionalArgs?: string[],
  namedArgs?: Record<string, string | true>,
): Map<string, Uint8Array> & { cs: CompiledScript } {
  const cs = compile(text, positionalArgs, namedArgs);
  const col = backend.load(cs.spec);
  try {
    for (const p of cs.probes.filter((x) => x.attach.kind === 'begin'))
      col.program(p.program).testRun(backend.name === 'kernel' ? { repeat: 0 } : { ctx: new Uint8Array(8) });
    const out = new Map<string, Uint8Array>() as Map<string, Uint8Array> & { cs: CompiledScript };
    out.cs = cs;
    for (const m of cs.maps) {
      const bm = col.map(m.mapName);
      for (const [k, v] of bm.entries()) out.set(`${m.name}|${Buffer.from(k).toString('hex')}`, v);
    }
    return out;
  } finally {
    col.close();
  }
}

/** The scalar value of a scalar map (key 0). */
function scalarOf(res: ReturnType<typeof runBegin>, name: string): bigint | undefined {
  const m = res.cs.maps.find((x) => x.name === name);
  assert.ok(m, `no map ${name}`);
  const v = res.get(`${name}|${'00'.repeat(8)}`);
  if (!v) return undefined;
  const lay = m.value;
  if (lay.kind === 'int') return readInt(v, 0, 8, lay.signed);
  return decodeValue(lay, v) as bigint;
}

const backends: [string, () => Backend, string | false][] = [
  ['vm', () => vmBackend(), false],
  ['kernel', () => kernelBackend, skipKernel],
];

for (const [name, make, skip] of backends) {
  describe(`trace codegen semantics (${name})`, { skip }, () => {
    it('integer arithmetic, casts and comparisons', () => {
      const r = runBegin(
        make(),
        `BEGIN {
          @add = 2 + 3 * 4; @sub = 3 - 10; @div = 7 / 2; @mod = 7 % 3; @sdiv = -7 / 2;
          @shl = 1 << 40; @shr = -16 >> 2; @and = 0xf0 & 0x3c; @or = 1 | 6; @xor = 5 ^ 3; @not = ~0;
          @neg = -(5); @i8 = (int8)255; @u8 = (uint8)-1; @u16 = (uint16)0x12345; @i32 = (int32)0xffffffff;
          @lt = 1 < 2; @gt = 1 > 2; @le = -1 <= 0; @ult = (uint64)-1 > 1; @eq = 3 == 3; @ne = 3 != 3;
          @land = 1 && 0; @lor = 0 || 2; @lnot = !5; @tern = 0 ? 10 : 20; @elvis = 0 ?: 7;
          $x = 10; $x += 5; $x *= 2; $x -= 1; @var = $x; $y = 1; $y++; ++$y; @inc = $y;
          $w = 0; while ($w < 10) { $w += 3; } @while = $w;
          $u = 0; unroll(4) { $u += 1; } @unroll = $u;
          $s = 0; for ($i : 1..5) { $s += $i; } @range = $s;
        }`,
      );
      const want: Record<string, bigint> = {
        '@add': 14n,
        '@sub': -7n,
        '@div': 3n,
        '@mod': 1n,
        '@sdiv': -3n,
        '@shl': 1n << 40n,
        '@shr': -4n,
        '@and': 0x30n,
        '@or': 7n,
        '@xor': 6n,
        '@not': -1n,
        '@neg': -5n,
        '@i8': -1n,
        '@u8': 255n,
        '@u16': 0x2345n,
        '@i32': -1n,
        '@var': 29n,
        '@inc': 3n,
        '@while': 12n,
        '@unroll': 4n,
        '@range': 10n,
        '@tern': 20n,
        '@elvis': 7n,
      };
      for (const [k, v] of Object.entries(want)) assert.equal(scalarOf(r, k), v, k);
      const bools: Record<string, boolean> = {
        '@lt': true,
        '@gt': false,
        '@le': true,
        '@ult': true,
        '@eq': true,
        '@ne': false,
        '@land': false,
        '@lor': true,
        '@lnot': false,
      };
      for (const [k, v] of Object.entries(bools)) {
        const got = scalarOf(r, k);
        assert.equal(Boolean(got) && got !== 0n, v, k);
      }
    });

    it('strings: literals, comparison, strncmp, strcontains, str()', () => {
      const r = runBegin(
        make(),
        `BEGIN { $s = "abc"; @eq = $s == "abc"; @ne = $s != "abd"; @pre = "ab" == "abc";
          @cmp = strncmp("abcd", "abce", 3); @cmp2 = strncmp("abcd", "abce", 4);
          @has = strcontains("hello world", "wor"); @hasnt = strcontains("hello", "xyz");
          @str = "xyz"; @k["key"] = 1; }`,
      );
      assert.ok(scalarOf(r, '@eq'));
      assert.ok(scalarOf(r, '@ne'));
      assert.ok(!scalarOf(r, '@pre'));
      assert.equal(scalarOf(r, '@cmp'), 0n);
      assert.notEqual(scalarOf(r, '@cmp2'), 0n);
      assert.ok(scalarOf(r, '@has'));
      assert.ok(!scalarOf(r, '@hasnt'));
      const str = r.cs.maps.find((m) => m.name === '@str');
      assert.ok(str);
      const v = r.get(`@str|${'00'.repeat(8)}`);
      assert.ok(v);
      assert.equal(decodeValue(str.value, v), 'xyz');
      const k = [...r.keys()].find((x) => x.startsWith('@k|'));
      assert.ok(k?.startsWith(`@k|${Buffer.from('key').toString('hex')}00`));
    });

    it('hist() and lhist() buckets match bpftrace formulas', () => {
      const values = [-5n, 0n, 1n, 2n, 3n, 4n, 7n, 8n, 1000n, 1n << 33n, 123456789n];
      const lines = values.map(
        (v, i) => `@h${i} = hist(${v}); @k${i} = hist(${v}, 2); @l${i} = lhist(${v}, 0, 100, 10);`,
      );
      const r = runBegin(make(), `BEGIN { ${lines.join(' ')} }`);
      values.forEach((v, i) => {
        for (const [name, want] of [
          [`@h${i}`, histBucket(v, 0)],
          [`@k${i}`, histBucket(v, 2)],
          [`@l${i}`, lhistBucket(v, 0n, 100n, 10n)],
        ] as const) {
          const m = r.cs.maps.find((x) => x.name === name);
          assert.ok(m);
          const keys = [...r.keys()].filter((k) => k.startsWith(`${name}|`));
          assert.equal(keys.length, 1, name);
          const bucket = readInt(
            Buffer.from((keys[0] as string).split('|')[1] as string, 'hex'),
            m.bucketOffset ?? 0,
            8,
            false,
          );
          assert.equal(bucket, want, `${name} (${v})`);
        }
      });
    });

    it('aggregations: count, sum, min, max, avg', () => {
      const r = runBegin(
        make(),
        `BEGIN { @c = count(); @c = count(); @s = sum(5); @s = sum(-2); @mn = min(9); @mn = min(4); @mx = max(-3); @mx = max(-8); @a = avg(4); @a = avg(8); }`,
      );
      // Per-CPU maps: the kernel returns one value per possible CPU; BEGIN ran on one of them.
      const per = (n: string) => {
        const v = r.get(`${n}|${'00'.repeat(8)}`);
        const m = r.cs.maps.find((x) => x.name === n);
        assert.ok(v && m, n);
        const size = Math.ceil(m.valueSize / 8) * 8;
        for (let o = 0; o + size <= v.length; o += size) {
          const slice = v.subarray(o, o + size);
          if (slice.some((b) => b !== 0)) return slice;
        }
        return v;
      };
      assert.equal(readInt(per('@c'), 0, 8, false), 2n);
      assert.equal(readInt(per('@s'), 0, 8, true), 3n);
      assert.equal(readInt(per('@mn'), 0, 8, true), 4n);
      assert.equal(readInt(per('@mx'), 0, 8, true), -3n);
      assert.equal(readInt(per('@a'), 0, 8, true), 12n);
      assert.equal(readInt(per('@a'), 8, 8, false), 2n);
    });

    it('aggregations read in expressions combine every CPU', () => {
      const r = runBegin(
        make(),
        `BEGIN { @c = count(); @c = count(); @s = sum(5); @s = sum(-2); @mn = min(9); @mn = min(4);
          @mx = max(-3); @mx = max(-8); @a = avg(4); @a = avg(8);
          @rc = @c + 0; @rs = @s + 0; @rmn = @mn + 0; @rmx = @mx + 0; @ra = @a + 0; @rz = @none + 0;
          @none = count(); }`,
      );
      const want: Record<string, bigint> = {
        '@rc': 2n,
        '@rs': 3n,
        '@rmn': 4n,
        '@rmx': -3n,
        '@ra': 6n,
        '@rz': 0n,
      };
      for (const [k, v] of Object.entries(want)) assert.equal(scalarOf(r, k), v, k);
    });

    it('address-of, strlen, pton, getopt and positional parameters', () => {
      const r = runBegin(
        make(),
        `BEGIN { $a = 41; $b = &$a; @deref = *$b + 1; $s = "hello"; $p = (int8 *)&$s; @c = *($p + 1);
          @len = strlen($s); @len0 = strlen(""); $ip = pton("10.1.2.3"); @ip = $ip[3];
          @o1 = getopt("num", 5); @o2 = getopt("flag"); @o3 = getopt("neg", 1); @o4 = getopt("off", true);
          @pos = $2 + 1; @missing = $3 + 2; @pstr = str($2); @tail = str($1 + 1); }`,
        ['xyz', '17'],
        { num: '0x10', flag: true, neg: '-3', off: 'False' },
      );
      const want: Record<string, bigint> = {
        '@deref': 42n,
        '@c': BigInt('e'.charCodeAt(0)),
        '@len': 5n,
        '@len0': 0n,
        '@ip': 3n,
        '@o1': 16n,
        '@o3': -3n,
        '@pos': 18n,
        '@missing': 2n,
      };
      for (const [k, v] of Object.entries(want)) assert.equal(scalarOf(r, k), v, k);
      assert.ok(scalarOf(r, '@o2'));
      assert.ok(!scalarOf(r, '@o4'));
      const strOf = (name: string) => {
        const m = r.cs.maps.find((x) => x.name === name);
        const v = r.get(`${name}|${'00'.repeat(8)}`);
        assert.ok(m && v, name);
        return decodeValue(m.value, v);
      };
      assert.equal(strOf('@pstr'), '17');
      assert.equal(strOf('@tail'), 'yz');
    });
  });
}

/**
 * Runs BEGIN with tseries()'s clock taken from @ts (BPFTRACE_DUMMY_TS_MAP) and returns each map's buckets
 * reduced as the runtime reduces them: epoch → value, by map name.
 */
function tseriesBuckets(backend: Backend, text: string): Map<string, Map<bigint, bigint>> {
  const an = compileFrontEnd(text, { types });
  const cs = compileScript(an, { types, dummyTsMap: '@ts' });
  const col = backend.load(cs.spec);
  try {
    for (const p of cs.probes.filter((x) => x.attach.kind === 'begin'))
      col.program(p.program).testRun(backend.name === 'kernel' ? { repeat: 0 } : { ctx: new Uint8Array(8) });
    const out = new Map<string, Map<bigint, bigint>>();
    for (const m of cs.maps.filter((x) => x.kind === 'tseries')) {
      assert.ok(m.tseries && m.bucketOffset !== undefined, m.name);
      const bm = col.map(m.mapName);
      const points = new Map<bigint, bigint>();
      for (const [k, v] of bm.entries()) {
        const bucket = readInt(k, m.bucketOffset, 8, false);
        const p = reduceTseries(perCpuSlices(v, m.valueSize, bm.cpus), m.tseries.agg, m.signed);
        assert.equal(
          p.epoch % m.tseries.numIntervals,
          bucket,
          `${m.name}: epoch ${p.epoch} in bucket ${bucket}`,
        );
        points.set(p.epoch, p.value);
      }
      out.set(m.name, points);
    }
    return out;
  } finally {
    col.close();
  }
}

for (const [name, make, skip] of backends) {
  describe(`trace codegen: tseries() buckets (${name})`, { skip }, () => {
    it('last value, avg, min, max and sum per interval; a stale bucket starts over', () => {
      // Two calls per 100ms interval (epochs 1, 2, 3 in buckets 1, 2, 0), then epoch 4 reuses bucket 1.
      const r = tseriesBuckets(
        make(),
        `BEGIN {
          @ts = (uint64)100ms; $i = 0;
          while ($i < 6) {
            @n = tseries($i, 100ms, 3); @v = tseries($i, 100ms, 3, "avg"); @lo = tseries($i, 100ms, 3, "min");
            @hi = tseries(-$i, 100ms, 3, "max"); @s = tseries($i, 100ms, 3, "sum");
            @ts += 50ms; $i++;
          }
          @ts = 450ms; @s = tseries(100, 100ms, 3, "sum"); @n = tseries(7, 100ms, 3);
        }`,
      );
      const want: Record<string, [bigint, bigint][]> = {
        '@n': [
          [4n, 7n],
          [2n, 3n],
          [3n, 5n],
        ],
        '@v': [
          [1n, 0n],
          [2n, 2n],
          [3n, 4n],
        ],
        '@lo': [
          [1n, 0n],
          [2n, 2n],
          [3n, 4n],
        ],
        '@hi': [
          [1n, 0n],
          [2n, -2n],
          [3n, -4n],
        ],
        '@s': [
          [4n, 100n],
          [2n, 5n],
          [3n, 9n],
        ],
      };
      for (const [map, points] of Object.entries(want)) assert.deepEqual(r.get(map), new Map(points), map);
    });

    it('keys get their own buckets; bucket writes at epoch 0 read back as epoch 0, value 0', () => {
      const r = tseriesBuckets(
        make(),
        `BEGIN {
          @ts = (uint64)0; @k["a", 1] = tseries(5, 1s, 2); @k["b", 2] = tseries(6, 1s, 2);
          @ts = 1s; @k["a", 1] = tseries(8, 1s, 2);
        }`,
      );
      // Per key: bucket 0 (epoch 0, never counted) and, for ("a", 1), bucket 1 at epoch 1.
      assert.deepEqual(
        r.get('@k'),
        new Map([
          [0n, 0n],
          [1n, 8n],
        ]),
      );
    });
  });
}

describe('trace codegen: per attach point args and program options', () => {
  it('resolves args per tracepoint when the formats differ', () => {
    const cs = compile(
      'tracepoint:syscalls:sys_enter_open,tracepoint:syscalls:sys_enter_openat { printf("%s\\n", str(args->filename)); }',
    );
    const progs = cs.spec.programs.filter((p) => p.name.includes('sys_enter_open'));
    assert.equal(progs.length, 2);
    // filename: offset 16 in sys_enter_open's format, 24 in sys_enter_openat's (after dfd).
    const ctxLoads = progs.map((p) =>
      p.insns.filter((i) => (i.code & 0x07) === 0x01 && i.src === 6).map((i) => i.off),
    );
    assert.ok(ctxLoads[0]?.includes(16), `open: ${ctxLoads[0]}`);
    assert.ok(ctxLoads[1]?.includes(24), `openat: ${ctxLoads[1]}`);
  });

  it('getopt: bad values and unknown options are errors; --help lists the options', () => {
    const prog = 'BEGIN { print((getopt("aa", 10, "Description of aa"), getopt("bb", 1), getopt("cc"))); }';
    assert.throws(
      () => compile(prog, [], { aa: 'False' }),
      /program command line option --aa invalid integer \(value: False\)/,
    );
    assert.throws(
      () => compile(prog, [], { zz: true }),
      /unexpected program command line options: --zz\nHINT: expected program options: --aa, --bb, --cc/,
    );
    const an = compileFrontEnd(prog, { types, namedArgs: { help: true } });
    assert.equal(
      programOptionsHelp(an),
      'HINT: expected program options:\n--cc\n--bb\n--aa: Description of aa',
    );
  });
});

describe('trace codegen: bucket math', () => {
  it('histBucket / histBucketLow round-trip', () => {
    for (const k of [0, 1, 2, 5]) {
      for (const v of [0n, 1n, 2n, 3n, 5n, 17n, 1000n, 65536n, 1n << 40n]) {
        const b = histBucket(v, k);
        const low = histBucketLow(b, k);
        assert.ok(low !== undefined && low <= v, `k=${k} v=${v} b=${b} low=${low}`);
        const next = histBucketLow(b + 1n, k);
        assert.ok(next !== undefined && next > v, `k=${k} v=${v}`);
      }
    }
    assert.equal(histBucket(-1n), 0n);
    assert.equal(histBucket(0n), 1n);
    assert.equal(histBucket(1n), 2n);
    assert.equal(histBucket(4n), 4n);
    assert.equal(lhistBucket(-1n, 0n, 100n, 10n), 0n);
    assert.equal(lhistBucket(55n, 0n, 100n, 10n), 6n);
    assert.equal(lhistBucket(101n, 0n, 100n, 10n), 11n);
  });
});
