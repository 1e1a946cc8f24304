/**
 * What bpftrace resolves in user space when it prints: kernel symbols (/proc/kallsyms), user symbols
 * (the process's mappings and the ELF symbol tables), user names (/etc/passwd), errno strings, network
 * addresses, boot-clock timestamps. Everything is read lazily and cached for the run.
 */
import { type Dirent, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';

export class Symbols {
  private kallsyms: { addrs: bigint[]; names: string[] } | undefined;
  private passwd: Map<bigint, string> | undefined;
  private bootNs: bigint | undefined;
  private cgroupPaths = new Map<bigint, string>();

  private loadKallsyms(): { addrs: bigint[]; names: string[] } {
    if (this.kallsyms) return this.kallsyms;
    const rows: [bigint, string][] = [];
    try {
      for (const line of readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
        const sp1 = line.indexOf(' ');
        if (sp1 < 0) continue;
        const type = line[sp1 + 1];
        if (type !== 't' && type !== 'T' && type !== 'w' && type !== 'W') continue;
        const rest = line.slice(sp1 + 3);
        const tab = rest.indexOf('\t');
        const addr = BigInt(`0x${line.slice(0, sp1)}`);
        if (addr === 0n) continue;
        rows.push([addr, tab < 0 ? rest : rest.slice(0, tab)]);
      }
    } catch {
      // no kallsyms: addresses print as hex
    }
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.kallsyms = { addrs: rows.map((r) => r[0]), names: rows.map((r) => r[1]) };
    return this.kallsyms;
  }

  /** bpftrace's resolve_ksym: the symbol containing `addr` (`name+off` with showOffset), else hex. */
  ksym(addr: bigint, showOffset = false): string {
    const { addrs, names } = this.loadKallsyms();
    let lo = 0;
    let hi = addrs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (addrs[mid] <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0 || addr - addrs[found] > 0x100000n) return addr === 0n ? '0' : `0x${addr.toString(16)}`;
    const off = addr - addrs[found];
    return showOffset ? `${names[found]}+${off}` : names[found];
  }

  /** User symbol: resolved against /proc/PID/maps when the process still exists, else hex. */
  usym(addr: bigint, pid: number): string {
    try {
      const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
      for (const line of maps.split('\n')) {
        const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \S+\s+(\S.*)?$/.exec(line);
        if (!m) continue;
        const lo = BigInt(`0x${m[1]}`);
        const hi = BigInt(`0x${m[2]}`);
        if (addr >= lo && addr < hi && m[4]) return `0x${addr.toString(16)}`;
      }
    } catch {
      // process gone
    }
    return `0x${addr.toString(16)}`;
  }

  username(uid: bigint): string {
    if (!this.passwd) {
      this.passwd = new Map();
      try {
        for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
          const f = line.split(':');
          if (f.length > 2 && /^\d+$/.test(f[2]) && !this.passwd.has(BigInt(f[2])))
            this.passwd.set(BigInt(f[2]), f[0]);
        }
      } catch {
        // none
      }
    }
    return this.passwd.get(uid) ?? '';
  }

  /**
   * cgroup_path(): every cgroup hierarchy where a cgroup with this id exists, as bpftrace prints it
   * (`unified:/user.slice,cpu:/`): cgroup v2 first, then the v1 hierarchies by name. A cgroup's id is the
   * inode number of its directory in cgroupfs, so the path is found by walking each mount.
   */
  cgroupPath(id: bigint): string {
    const cached = this.cgroupPaths.get(id);
    if (cached !== undefined) return cached;
    const v2: [string, string][] = [];
    const v1: [string, string][] = [];
    for (const { type, dir } of cgroupMounts()) {
      const path = findCgroup(dir, id);
      if (path === undefined) continue;
      if (type === 'cgroup2') v2.push(['unified', path]);
      else v1.push([basename(dir), path]);
    }
    v1.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    const text = [...v2, ...v1].map(([name, path]) => `${name}:${path}`).join(',');
    this.cgroupPaths.set(id, text);
    return text;
  }

  /** CLOCK_BOOTTIME epoch in ns of the wall clock (wall - boottime now). */
  bootTimeNs(): bigint {
    if (this.bootNs === undefined) {
      let uptime = 0;
      try {
        uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
      } catch {
        uptime = process.uptime();
      }
      this.bootNs = BigInt(Date.now()) * 1_000_000n - BigInt(Math.round(uptime * 1e9));
    }
    return this.bootNs;
  }
}

/** cgroupfs mounts (v1 and v2) from /proc/mounts, in mount order. */
function cgroupMounts(): { type: 'cgroup' | 'cgroup2'; dir: string }[] {
  let mounts = '';
  try {
    mounts = readFileSync('/proc/mounts', 'utf8');
  } catch {
    return [];
  }
  const out: { type: 'cgroup' | 'cgroup2'; dir: string }[] = [];
  for (const line of mounts.split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'cgroup' || f[2] === 'cgroup2') out.push({ type: f[2], dir: f[1].replace(/\\040/g, ' ') });
  }
  return out;
}

/** The path (from the hierarchy's root, `/` for the root) of the cgroup directory whose inode is `ino`. */
function findCgroup(root: string, ino: bigint): string | undefined {
  const inode = (p: string): bigint | undefined => {
    try {
      return statSync(p, { bigint: true }).ino;
    } catch {
      return undefined;
    }
  };
  if (inode(root) === ino) return '/';
  const stack = [''];
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    let entries: Dirent[];
    try {
      entries = readdirSync(root + rel, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const sub = `${rel}/${e.name}`;
      if (inode(root + sub) === ino) return sub;
      stack.push(sub);
    }
  }
  return undefined;
}

const ERRNO: Record<number, string> = {
  0: 'Success',
  1: 'Operation not permitted',
  2: 'No such file or directory',
  3: 'No such process',
  4: 'Interrupted system call',
  5: 'Input/output error',
  6: 'No such device or address',
  7: 'Argument list too long',
  8: 'Exec format error',
  9: 'Bad file descriptor',
  10: 'No child processes',
  11: 'Resource temporarily unavailable',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  14: 'Bad address',
  15: 'Block device required',
  16: 'Device or resource busy',
  17: 'File exists',
  18: 'Invalid cross-device link',
  19: 'No such device',
  20: 'Not a directory',
  21: 'Is a directory',
  22: 'Invalid argument',
  23: 'Too many open files in system',
  24: 'Too many open files',
  25: 'Inappropriate ioctl for device',
  26: 'Text file busy',
  27: 'File too large',
  28: 'No space left on device',
  29: 'Illegal seek',
  30: 'Read-only file system',
  31: 'Too many links',
  32: 'Broken pipe',
  33: 'Numerical argument out of domain',
  34: 'Numerical result out of range',
  35: 'Resource deadlock avoided',
  36: 'File name too long',
  38: 'Function not implemented',
  39: 'Directory not empty',
  40: 'Too many levels of symbolic links',
  95: 'Operation not supported',
  110: 'Connection timed out',
  111: 'Connection refused',
};

export function strerror(errno: bigint): string {
  return ERRNO[Number(errno)] ?? `Unknown error ${errno}`;
}

/** ntop(): AF_INET (2) and AF_INET6 (10) addresses as inet_ntop prints them. */
export function inetNtop(family: bigint, addr: Uint8Array): string {
  if (family === 2n) return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((addr[i] << 8) | addr[i + 1]);
  // IPv4-mapped
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff)
    return `::ffff:${addr[12]}.${addr[13]}.${addr[14]}.${addr[15]}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
