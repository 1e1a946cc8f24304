/**
 * The running kernel's BTF (/sys/kernel/btf/vmlinux), read and parsed on first use and kept for the
 * process; undefined where there is none (not Linux, a kernel without CONFIG_DEBUG_INFO_BTF, no
 * permission). For layers below kernel/ that need the kernel's types: the VM's verifier gate resolves
 * tp_btf/fentry attach points, kfuncs and CO-RE targets against it, as `tsbpf verify` does.
 * Not re-exported from btf/index.ts: it reads a file (node:fs).
 */
import { readFileSync } from 'node:fs';
import type { Btf } from './btf.js';
import { parseBtf } from './parse.js';

export const VMLINUX_BTF_PATH = '/sys/kernel/btf/vmlinux';

let vmlinux: Btf | null | undefined;

/** The running kernel's BTF, parsed once; undefined when the kernel has none. */
export function vmlinuxBtf(): Btf | undefined {
  if (vmlinux === undefined) {
    try {
      vmlinux = parseBtf(new Uint8Array(readFileSync(VMLINUX_BTF_PATH)));
    } catch {
      vmlinux = null;
    }
  }
  return vmlinux ?? undefined;
}
