/**
 * The running kernel's BTF (/sys/kernel/btf/vmlinux), read on first use and kept for the process;
 * undefined where there is none (not Linux, a kernel without CONFIG_DEBUG_INFO_BTF, no permission).
 * For layers below kernel/ that need the kernel's types: the VM's verifier gate resolves tp_btf/fentry
 * attach points, kfuncs and CO-RE targets against it, as `tsbpf verify` does; kernel/ and the bpftrace
 * front end share the same one.
 *
 * It is parsed lazily (parseBtf's `lazy`): the kernel checked this BTF when it booted, and decoding all
 * of it (~130k types, ~200 ms) would be most of the start-up of a one-liner that reads one struct.
 * Not re-exported from btf/index.ts: it reads a file (node:fs).
 */
import { readFileSync } from 'node:fs';
import type { Btf } from './btf.js';
import { parseBtf } from './parse.js';

export const VMLINUX_BTF_PATH = '/sys/kernel/btf/vmlinux';

let vmlinux: Btf | null | undefined;

/**
 * The running kernel's BTF, read once; undefined when the kernel has none. `map`, from a layer that makes
 * system calls (kernel/perf.ts mapFile), maps the file instead of reading it; the first call decides, and a
 * failure to map falls back to reading.
 */
export function vmlinuxBtf(map?: (path: string) => Uint8Array): Btf | undefined {
  if (vmlinux === undefined) {
    try {
      let bytes: Uint8Array | undefined;
      try {
        bytes = map?.(VMLINUX_BTF_PATH);
      } catch {
        // read it instead
      }
      if (!bytes) {
        const file = readFileSync(VMLINUX_BTF_PATH);
        // A view, not a copy: a lazy Btf keeps decoding from these bytes.
        bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
      }
      vmlinux = parseBtf(bytes, { lazy: true });
    } catch {
      vmlinux = null;
    }
  }
  return vmlinux ?? undefined;
}
