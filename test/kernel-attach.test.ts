/**
 * The kernel backend's attachments and ring buffer, for real: a test BPF object and a small C program
 * are built with the system clang and cc; a syscall tracepoint counts this test's own syscalls; a
 * uprobe/uretprobe on a function of the C program and a uprobe on libc see the right arguments; XDP
 * and TC (tcx) programs on a veth pair into a network namespace drop the UDP port they should; a
 * socket filter on a Node UDP socket drops what it should; ring buffer records arrive in order with
 * none lost. Everything is detached and closed after (fds, links, netns, pins).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { type KernelCollection, kernelBackend } from '../src/kernel/collection.js';
import { openBpfFds } from '../src/kernel/fds.js';
import { openAttachments } from '../src/kernel/link.js';
import { bpfAvailable } from '../src/kernel/program.js';
import { RingBuffer } from '../src/kernel/ringbuf.js';
import { readObject } from '../src/object/spec.js';

const avail = bpfAvailable();
const has = (cmd: string, args: string[]) => spawnSync(cmd, args).status === 0;
const toolsOk = has('clang', ['--version']) && has('cc', ['--version']);
const skip = !avail.ok ? avail.reason : !toolsOk ? 'needs clang and cc to build the test programs' : false;

const MAGIC = 0x1ee7c0de;
const BPF_C = `
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 target_tgid = 0;
const volatile __u16 drop_port = 0;
const volatile __u16 pass_port = 0;

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 20); } events SEC(".maps");

static __always_inline void bump(__u32 k, __u64 v) { __u64 *p = bpf_map_lookup_elem(&counts, &k); if (p) __sync_fetch_and_add(p, v); }

struct sys_enter { unsigned long long unused; long nr; long args[6]; };

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_getppid(struct sys_enter *ctx) {
  if ((bpf_get_current_pid_tgid() >> 32) != target_tgid) return 0;
  bump(0, 1);
  return 0;
}

__u64 seq;
struct rec { __u64 seq; __u64 arg; };

SEC("tracepoint/syscalls/sys_enter_getpgid")
int tp_getpgid(struct sys_enter *ctx) {
  if ((__u32)ctx->args[0] != ${MAGIC}) return 0;
  struct rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
  if (!r) { bump(7, 1); return 0; }
  r->seq = __sync_fetch_and_add(&seq, 1);
  r->arg = ctx->args[0];
  bpf_ringbuf_submit(r, 0);
  return 0;
}

SEC("uprobe")
int up_target(struct pt_regs *ctx) { bump(1, 1); bump(2, PT_REGS_PARM1(ctx) + PT_REGS_PARM2(ctx)); return 0; }

SEC("uretprobe")
int ret_target(struct pt_regs *ctx) { bump(3, PT_REGS_RC(ctx)); return 0; }

SEC("uprobe")
int up_srand(struct pt_regs *ctx) { if (PT_REGS_PARM1(ctx) == 4242) bump(4, 1); return 0; }

static __always_inline int udp_port(void *data, void *end) {
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return -1;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5) return -1;
  struct udphdr *udp = (void *)(ip + 1);
  if ((void *)(udp + 1) > end) return -1;
  return bpf_ntohs(udp->dest);
}

SEC("xdp")
int xdp_drop(struct xdp_md *ctx) {
  int port = udp_port((void *)(long)ctx->data, (void *)(long)ctx->data_end);
  if (port == pass_port) bump(5, 1);
  if (port == drop_port) { bump(6, 1); return XDP_DROP; }
  return XDP_PASS;
}

SEC("tc/ingress")
int tc_drop(struct __sk_buff *skb) {
  int port = udp_port((void *)(long)skb->data, (void *)(long)skb->data_end);
  if (port == pass_port) bump(8, 1);
  if (port == drop_port) { bump(9, 1); return TC_ACT_SHOT; }
  return TC_ACT_OK;
}

SEC("socket")
int sock_drop(struct __sk_buff *skb) {
  __u8 first;
  bump(10, 1);
  if (bpf_skb_load_bytes(skb, 8, &first, 1) < 0) return skb->len;
  if (first == 'D') { bump(11, 1); return 0; }
  return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
`;

const TARGET_C = `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <time.h>
__attribute__((noinline)) long tsbpf_target(int a, long b) { __asm__ volatile(""); return a * 2 + b; }
int main(int argc, char **argv) {
  int mode = atoi(argv[1]); long n = atol(argv[2]); long s = 0;
  if (mode == 0) for (int i = 0; i < n; i++) s += tsbpf_target(i, 1000);
  if (mode == 1) { /* n calls at argv[3] calls per second (paced every 1000 calls) */
    double rate = argc > 3 ? atof(argv[3]) : 0; struct timespec t0, t; clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
      syscall(SYS_getpgid, ${MAGIC});
      if (rate > 0 && i % 1000 == 999) for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double el = (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
        if (el >= (i + 1) / rate) break;
        usleep(200);
      }
    }
  }
  if (mode == 2) for (long i = 0; i < n; i++) srand(4242);
  if (mode == 3) { char line[8]; if (fgets(line, sizeof line, stdin)) for (long i = 0; i < n; i++) srand(4242); }
  printf("%ld\\n", s);
  return 0;
}
`;

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

describe('kernel attach', { skip }, () => {
  let dir: string;
  let obj: Uint8Array;
  let bin: string;
  let fds: Record<string, number[] | undefined>;
  before(() => {
    fds = { prog: openBpfFds('prog'), map: openBpfFds('map'), link: openBpfFds('link') };
    dir = mkdtempSync(`${tmpdir()}/tsbpf-attach-`);
    writeFileSync(`${dir}/t.bpf.c`, BPF_C);
    writeFileSync(`${dir}/target.c`, TARGET_C);
    execFileSync('clang', [
      '-O2',
      '-g',
      '-target',
      'bpf',
      '-D__TARGET_ARCH_x86',
      '-I/usr/include/x86_64-linux-gnu',
      '-c',
      `${dir}/t.bpf.c`,
      '-o',
      `${dir}/t.bpf.o`,
    ]);
    execFileSync('cc', ['-O1', '-o', `${dir}/target`, `${dir}/target.c`]);
    obj = new Uint8Array(readFileSync(`${dir}/t.bpf.o`));
    bin = `${dir}/target`;
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    for (const k of ['prog', 'map', 'link'] as const)
      assert.deepEqual(openBpfFds(k), fds[k], `no ${k} fd left`);
    assert.equal(openAttachments(), 0, 'every link and collection closed');
    assert.deepEqual(
      readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('tsbpf_ka')),
      [],
    );
  });

  const load = (programs: string[], constants: Record<string, number> = {}): KernelCollection =>
    kernelBackend.load(readObject(obj, { path: 't.bpf.o' }), { programs, constants });
  const count = (c: KernelCollection, i: number): bigint => {
    const v = c.map('counts').lookup(u32(i)) as Uint8Array;
    return new DataView(v.buffer, v.byteOffset).getBigUint64(0, true);
  };

  it('a syscall tracepoint counts this process’s own syscalls', () => {
    const c = load(['tp_getppid'], { target_tgid: process.pid });
    try {
      const link = c.program('tp_getppid').attach();
      assert.equal(link.kind, 'tracepoint');
      // process.ppid calls getppid(2) each time it is read
      for (let i = 0; i < 25; i++) void process.ppid;
      link.close();
      for (let i = 0; i < 5; i++) void process.ppid;
      assert.equal(count(c, 0), 25n);
    } finally {
      c.close();
    }
  });

  it('a uprobe and a uretprobe on a function of a C program see its arguments and return values', () => {
    const c = load(['up_target', 'ret_target']);
    try {
      c.program('up_target').attach({ uprobe: { path: bin, func: 'tsbpf_target' } });
      c.program('ret_target').attach({ uprobe: { path: bin, func: 'tsbpf_target', retprobe: true } });
      const out = execFileSync(bin, ['0', '10'], { encoding: 'utf8' });
      assert.equal(count(c, 1), 10n);
      const expected = BigInt(Array.from({ length: 10 }, (_, i) => i + 1000).reduce((a, b) => a + b));
      assert.equal(count(c, 2), expected, 'sum of the two arguments');
      assert.equal(count(c, 3), BigInt(out.trim()), 'sum of the return values');
    } finally {
      c.close();
    }
  });

  it('a uprobe on a libc function, filtered by PID', async () => {
    const c = load(['up_srand']);
    try {
      // The child waits for a line on stdin before calling srand(4242) 7 times; only it is traced.
      const child = spawn(bin, ['3', '7'], { stdio: ['pipe', 'ignore', 'inherit'] });
      const exited = new Promise((r) => child.on('exit', r));
      const link = c
        .program('up_srand')
        .attach({ uprobe: { path: 'libc', func: 'srand' }, pid: child.pid as number });
      execFileSync(bin, ['2', '5']); // another process: filtered out
      child.stdin?.end('go\n');
      assert.equal(await exited, 0);
      assert.equal(count(c, 4), 7n);
      link.close();
    } finally {
      c.close();
    }
  });

  it('ring buffer records arrive in order, none lost, at 100k events/s (1 MiB ring: 43k records)', async () => {
    const c = load(['tp_getpgid']);
    const rb = new RingBuffer(c.map('events'));
    try {
      c.program('tp_getpgid').attach();
      const N = 200_000;
      const t0 = process.hrtime.bigint();
      const producer = spawn(bin, ['1', String(N), '100000'], { stdio: 'ignore' });
      let exited = false;
      const done = new Promise((r) =>
        producer.on('exit', (code) => {
          exited = true;
          r(code);
        }),
      );
      const ac = new AbortController();
      let got = 0;
      let outOfOrder = 0;
      for await (const r of rb.records({ batch: 4096, signal: ac.signal, pollMs: 50 })) {
        // seq is below 2^32 here: its low word is enough
        if (new DataView(r.buffer, r.byteOffset).getUint32(0, true) !== got) outOfOrder++;
        if (++got === N) break;
        if (exited && rb.available === 0) ac.abort();
      }
      assert.equal(outOfOrder, 0, 'in order');
      assert.equal(await done, 0);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      assert.equal(count(c, 7), 0n, 'no reserve failed');
      assert.equal(rb.stats.records, N);
      // the producer is paced at 100k/s; the whole run (spawn included) must have gone about that fast
      assert.ok(N / secs > 80_000, `${Math.round(N / secs)} events/s`);
    } finally {
      rb.close();
      c.close();
    }
  });

  it('a socket filter on a Node UDP socket drops what it should', async () => {
    const c = load(['sock_drop']);
    const rx = dgram.createSocket('udp4');
    const tx = dgram.createSocket('udp4');
    try {
      await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
      const fd = (rx as unknown as { _handle: { fd: number } })._handle.fd;
      const link = c.program('sock_drop').attach({ socketFd: fd });
      const got: string[] = [];
      rx.on('message', (m) => got.push(m.toString()));
      const port = rx.address().port;
      for (const m of ['keep1', 'Drop1', 'keep2', 'Drop2', 'keep3'])
        await new Promise<void>((r, j) => tx.send(m, port, '127.0.0.1', (e) => (e ? j(e) : r())));
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(got, ['keep1', 'keep2', 'keep3']);
      assert.equal(count(c, 11), 2n);
      link.close();
      await new Promise<void>((r, j) => tx.send('Dafter', port, '127.0.0.1', (e) => (e ? j(e) : r())));
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(got.at(-1), 'Dafter', 'detached: nothing dropped');
    } finally {
      rx.close();
      tx.close();
      c.close();
    }
  });

  describe('XDP and TC on a veth pair into a network namespace', {
    skip: has('ip', ['-V']) ? false : 'needs iproute2',
  }, () => {
    const ns = `tsbpf_ka${process.pid}`;
    const a = `tsk${process.pid}a`.slice(0, 15);
    const b = `tsk${process.pid}b`.slice(0, 15);
    const net = `10.${200 + (process.pid % 50)}.${(process.pid >> 6) % 250}`;
    const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
    before(() => {
      ip('netns', 'add', ns);
      ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      ip('link', 'set', b, 'netns', ns);
      ip('addr', 'add', `${net}.1/24`, 'dev', a);
      ip('link', 'set', a, 'up');
      ip('-n', ns, 'addr', 'add', `${net}.2/24`, 'dev', b);
      ip('-n', ns, 'link', 'set', b, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    });
    after(() => {
      spawnSync('ip', ['link', 'del', a]);
      spawnSync('ip', ['netns', 'del', ns]);
    });

    /** Sends `n` datagrams to each port from inside the namespace; resolves with what arrived here. */
    async function exchange(
      passPort: number,
      dropPort: number,
      rx: dgram.Socket,
      n: number,
    ): Promise<Map<number, number>> {
      const got = new Map<number, number>();
      const onMsg = (m: Buffer) => {
        const p = Number(m.toString());
        got.set(p, (got.get(p) ?? 0) + 1);
      };
      rx.on('message', onMsg);
      const script = `const s=require('dgram').createSocket('udp4');let k=0;const t=${2 * n};
        for(let i=0;i<${n};i++)for(const p of [${passPort},${dropPort}])s.send(String(p),p,'${net}.1',()=>{if(++k===t)s.close()});`;
      execFileSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script]);
      await new Promise((r) => setTimeout(r, 150));
      rx.off('message', onMsg);
      return got;
    }

    for (const kind of ['xdp', 'tc'] as const) {
      it(`${kind === 'xdp' ? 'XDP' : 'TC (tcx ingress)'} sees and drops the packets it should`, async () => {
        const rxPass = dgram.createSocket('udp4');
        const rxDrop = dgram.createSocket('udp4');
        await new Promise<void>((r) => rxPass.bind(0, `${net}.1`, r));
        await new Promise<void>((r) => rxDrop.bind(0, `${net}.1`, r));
        const passPort = rxPass.address().port;
        const dropPort = rxDrop.address().port;
        const prog = kind === 'xdp' ? 'xdp_drop' : 'tc_drop';
        const c = load([prog], { drop_port: dropPort, pass_port: passPort });
        try {
          const link = c.program(prog).attach({ interface: a });
          assert.equal(link.kind, kind === 'xdp' ? 'xdp' : 'tcx');
          const got = new Map<number, number>();
          const merge = (m: Map<number, number>) => {
            for (const [k, v] of m) got.set(k, (got.get(k) ?? 0) + v);
          };
          merge(await exchange(passPort, dropPort, rxPass, 5));
          merge(await exchange(passPort, dropPort, rxDrop, 0));
          assert.equal(got.get(passPort), 5, 'the passed port got every datagram');
          assert.equal(got.get(dropPort), undefined, 'the dropped port got none');
          assert.equal(count(c, kind === 'xdp' ? 5 : 8), 5n, 'saw the passed ones');
          assert.equal(count(c, kind === 'xdp' ? 6 : 9), 5n, 'dropped the others');
          link.close();
          const after = await exchange(passPort, dropPort, rxDrop, 3);
          assert.equal(after.get(dropPort), 3, 'detached: nothing dropped');
        } finally {
          rxPass.close();
          rxDrop.close();
          c.close();
        }
      });
    }
  });
});
