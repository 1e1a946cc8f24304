/**
 * BTF objects already in the kernel, by id (what bpftool's btf__load_from_kernel_by_id does):
 * BPF_BTF_GET_FD_BY_ID, then BPF_OBJ_GET_INFO_BY_FD for the raw bytes, parsed with parseBtf. Module
 * BTF (split on top of vmlinux) is parsed against /sys/kernel/btf/vmlinux.
 */
import type { Btf } from '../btf/btf.js';
import { parseBtf } from '../btf/parse.js';
import { kernelBtf } from './btf-load.js';
import { btfBytesByFd, btfInfoByFd, withFdById } from './info.js';

/** The raw bytes and facts of the kernel BTF object `id`. */
export function btfObjectById(id: number): { bytes: Uint8Array; name: string; kernelBtf: boolean } {
  return withFdById('btf', id, (fd) => {
    const info = btfInfoByFd(fd);
    return { bytes: btfBytesByFd(fd), name: info.name, kernelBtf: info.kernelBtf };
  });
}

/** The kernel BTF object `id`, parsed (split BTF of a kernel module gets vmlinux as its base). */
export function loadBtfById(id: number): Btf {
  const o = btfObjectById(id);
  if (o.kernelBtf && o.name !== 'vmlinux') {
    const base = kernelBtf();
    if (base) return parseBtf(o.bytes, { base });
  }
  return parseBtf(o.bytes);
}
