/**
 * Kernel backend benchmarks (root, Linux with BPF; needs clang, cc and libbpf-dev):
 * 1. ring-buffer consumption rate: one producer in the kernel (a tracepoint on getpgid(MAGIC) that
 *    writes a 16-byte record per call, driven by a C program making N calls), consumed by tsbpf's
 *    RingBuffer (async iterator) and by a libbpf C consumer (ring_buffer__poll) on the same object;
 * 2. load time of the largest fixture: kernelBackend.load in process vs `bpftool prog loadall` (a
 *    process, so its start-up is included; printed beside tsbpf's CLI-equivalent cold start).
 *
 * Run: npm run build && node dist/bench/kernel.js [events]
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { kernelBackend } from '../src/kernel/collection.js';
import { bpfAvailable } from '../src/kernel/program.js';
import { RingBuffer } from '../src/kernel/ringbuf.js';
import { readObject } from '../src/object/spec.js';

const MAGIC = 0x1ee7c0de;
const N = Number(process.argv[2] ?? 1_000_000);

const BPF_C = `
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 24); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } lost SEC(".maps");
struct sys_enter { unsigned long long unused; long nr; long args[6]; };
__u64 seq;
SEC("tracepoint/syscalls/sys_enter_getpgid")
int produce(struct sys_enter *ctx) {
  if ((__u32)ctx->args[0] != ${MAGIC}) return 0;
  __u64 *r = bpf_ringbuf_reserve(&events, 16, 0);
  if (!r) { __u32 k = 0; __u64 *l = bpf_map_lookup_elem(&lost, &k); if (l) __sync_fetch_and_add(l, 1); return 0; }
  r[0] = __sync_fetch_and_add(&seq, 1);
  r[1] = ctx->args[0];
  bpf_ringbuf_submit(r, 0);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
`;

const PRODUCER_C = `
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) { long n = atol(argv[1]); for (long i = 0; i < n; i++) syscall(SYS_getpgid, ${MAGIC}); return 0; }
`;

const CONSUMER_C = `
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
static long got, n;
static int on_rec(void *ctx, void *data, size_t len) { got++; return 0; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  n = atol(argv[3]);
  libbpf_set_print(NULL);
  struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
  if (!obj || bpf_object__load(obj)) { fprintf(stderr, "load failed\\n"); return 1; }
  struct bpf_link *link = bpf_program__attach(bpf_object__find_program_by_name(obj, "produce"));
  struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "events")), on_rec, NULL, NULL);
  double t0 = now();
  pid_t pid = fork();
  if (pid == 0) { execl(argv[2], argv[2], argv[3], (char *)NULL); _exit(127); }
  while (got < n) ring_buffer__poll(rb, 100);
  double t = now() - t0;
  waitpid(pid, NULL, 0);
  printf("%ld %.6f\\n", got, t);
  ring_buffer__free(rb); bpf_link__destroy(link); bpf_object__close(obj);
  return 0;
}
`;

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

async function ringBench(dir: string): Promise<void> {
  const obj = new Uint8Array(readFileSync(`${dir}/p.bpf.o`));
  const c = kernelBackend.load(readObject(obj, { path: 'p.bpf.o' }));
  const rb = new RingBuffer(c.map('events'));
  try {
    c.program('produce').attach();
    const t0 = process.hrtime.bigint();
    const producer = spawn(`${dir}/producer`, [String(N)], { stdio: 'ignore' });
    const done = new Promise((r) => producer.on('exit', r));
    let got = 0;
    let bytes = 0;
    for await (const r of rb.records({ batch: 8192 })) {
      bytes += r.length;
      if (++got === N) break;
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    await done;
    const lostV = c.map('lost').lookup(new Uint8Array(4)) as Uint8Array;
    const lost = new DataView(lostV.buffer, lostV.byteOffset).getBigUint64(0, true);
    console.log(
      `ring buffer, tsbpf RingBuffer (async iterator): ${fmt(got / secs)} events/s (${got} events, ${bytes} bytes, ${lost} lost, ${secs.toFixed(3)} s)`,
    );
  } finally {
    rb.close();
    c.close();
  }
  const out = execFileSync(`${dir}/consumer`, [`${dir}/p.bpf.o`, `${dir}/producer`, String(N)], {
    encoding: 'utf8',
  });
  const [got, secs] = out.trim().split(' ').map(Number);
  console.log(
    `ring buffer, libbpf C consumer (ring_buffer__poll): ${fmt(got / secs)} events/s (${got} events, ${secs.toFixed(3)} s)`,
  );
  // The producer alone (no consumer attached): the ceiling either consumer can reach.
  const t0 = process.hrtime.bigint();
  execFileSync(`${dir}/producer`, [String(N)]);
  const secs0 = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`producer alone (no program attached): ${fmt(N / secs0)} syscalls/s`);
}

function loadBench(dir: string): void {
  const fixtures = new URL('../../fixtures/obj/', import.meta.url).pathname;
  const largest = readdirSync(fixtures)
    .filter((f) => f.endsWith('.o') && !f.includes('bpfeb') && f !== 'sections.o' && f !== 'legacy_maps.o')
    .sort((a, b) => statSync(`${fixtures}${b}`).size - statSync(`${fixtures}${a}`).size)[0];
  const bytes = new Uint8Array(readFileSync(`${fixtures}${largest}`));
  const runs = 20;
  // warm up (vmlinux BTF parse, kconfig, kallsyms are cached after the first load)
  kernelBackend.load(readObject(bytes, { path: largest })).close();
  let t = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) kernelBackend.load(readObject(bytes, { path: largest })).close();
  const ours = Number(process.hrtime.bigint() - t) / 1e6 / runs;
  const pin = `/sys/fs/bpf/tsbpf_bench_${process.pid}`;
  t = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) {
    const r = spawnSync('bpftool', ['prog', 'loadall', `${fixtures}${largest}`, pin]);
    rmSync(pin, { recursive: true, force: true });
    if (r.status !== 0) throw new Error(`bpftool prog loadall failed: ${r.stderr}`);
  }
  const theirs = Number(process.hrtime.bigint() - t) / 1e6 / runs;
  t = process.hrtime.bigint();
  for (let i = 0; i < 5; i++) spawnSync(process.execPath, ['-e', '0']);
  const nodeStart = Number(process.hrtime.bigint() - t) / 1e6 / 5;
  console.log(
    `load ${largest} (${bytes.length} bytes): tsbpf kernelBackend.load ${ours.toFixed(2)} ms (warm, in process)`,
  );
  console.log(
    `load ${largest}: bpftool prog loadall ${theirs.toFixed(2)} ms (a process: includes its start-up; node's bare start-up here is ${nodeStart.toFixed(0)} ms)`,
  );
  void dir;
}

async function main(): Promise<void> {
  const avail = bpfAvailable();
  if (!avail.ok) {
    console.log(`skipped: ${avail.reason}`);
    return;
  }
  const dir = mkdtempSync(`${tmpdir()}/tsbpf-bench-`);
  try {
    writeFileSync(`${dir}/p.bpf.c`, BPF_C);
    writeFileSync(`${dir}/producer.c`, PRODUCER_C);
    writeFileSync(`${dir}/consumer.c`, CONSUMER_C);
    execFileSync('clang', [
      '-O2',
      '-g',
      '-target',
      'bpf',
      '-I/usr/include/x86_64-linux-gnu',
      '-c',
      `${dir}/p.bpf.c`,
      '-o',
      `${dir}/p.bpf.o`,
    ]);
    execFileSync('cc', ['-O2', '-o', `${dir}/producer`, `${dir}/producer.c`]);
    execFileSync('gcc', ['-O2', '-o', `${dir}/consumer`, `${dir}/consumer.c`, '-lbpf']);
    await ringBench(dir);
    loadBench(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
