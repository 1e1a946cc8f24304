/** This process's open bpf objects, read from /proc/self/fd: lets tests prove they closed what they opened. */
import { readdirSync, readlinkSync } from 'node:fs';

export type BpfObjectKind = 'prog' | 'map' | 'link' | 'btf';

/** The fds of this process that are bpf objects of `kind` (`anon_inode:bpf-prog`...), or undefined without /proc. */
export function openBpfFds(kind: BpfObjectKind = 'prog'): number[] | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  const fds: number[] = [];
  for (const e of entries) {
    try {
      if (readlinkSync(`/proc/self/fd/${e}`) === `anon_inode:bpf-${kind}`) fds.push(Number(e));
    } catch {
      // gone while we looked (the fd of the directory listing itself)
    }
  }
  return fds.sort((a, b) => a - b);
}
