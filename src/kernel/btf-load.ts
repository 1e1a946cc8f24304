/**
 * BTF into the kernel (BPF_BTF_LOAD), after the fix-ups libbpf makes to an object's BTF before loading it
 * (bpf_object__sanitize_and_load_btf and the extern handling of bpf_object__collect_externs):
 * - DATASEC sizes and variable offsets come from the ELF (readObject already did btf_fixup_datasec);
 *   variables are sorted by offset, as the kernel requires;
 * - `.kconfig` externs become allocated global variables at their offsets in the `.kconfig` map;
 * - `.ksyms` externs become 4-byte allocated `int` variables, and kfunc FUNCs get global linkage (the
 *   kernel refuses BTF_FUNC_EXTERN) with unnamed parameters named, their DATASEC entries pointing at a
 *   dummy variable;
 * - any other extern VAR or FUNC left is made static/global so that the kernel accepts the BTF.
 * Also the kernel's own BTF (/sys/kernel/btf/vmlinux), read once, for CO-RE, kfuncs and ksyms.
 */

import { Btf } from '../btf/btf.js';
import { encodeBtf } from '../btf/encode.js';
import type { BtfType } from '../btf/types.js';
import { vmlinuxBtf } from '../btf/vmlinux.js';
import { ENOSPC, EPERM } from '../errno.js';
import { TsbpfError } from '../errors.js';
import type { ObjectSpec } from '../object/spec.js';
import { mapFile } from './perf.js';
import { addressOf, BPF_CMD, bpfRaw, explainErrno, kernelBuffer, toKernelBuffer } from './syscall.js';

const BTF_ATTR = {
  btf: 0,
  btf_log_buf: 8,
  btf_size: 16,
  btf_log_size: 20,
  btf_log_level: 24,
  size: 32,
} as const;

/** BPF_BTF_LOAD of raw BTF bytes: the BTF object's fd. Errors carry the kernel's BTF log. */
export function loadRawBtf(bytes: Uint8Array): number {
  const data = toKernelBuffer(bytes);
  const attempt = (logSize: number) => {
    const attr = kernelBuffer(BTF_ATTR.size);
    const v = new DataView(attr.buffer);
    const log = logSize > 0 ? kernelBuffer(logSize) : undefined;
    v.setBigUint64(BTF_ATTR.btf, addressOf(data), true);
    v.setUint32(BTF_ATTR.btf_size, data.byteLength, true);
    if (log) {
      v.setBigUint64(BTF_ATTR.btf_log_buf, addressOf(log), true);
      v.setUint32(BTF_ATTR.btf_log_size, log.byteLength, true);
      v.setUint32(BTF_ATTR.btf_log_level, 1, true);
    }
    const r = bpfRaw(BPF_CMD.BTF_LOAD, attr, [data, log]);
    const text = log ? new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0)))) : '';
    return { ...r, log: text };
  };
  let r = attempt(0);
  if (r.result >= 0) return r.result;
  if (r.errno === EPERM) throw new TsbpfError('kernel', `BPF_BTF_LOAD failed: ${explainErrno(r.errno)}`, r);
  for (let size = 64 * 1024; size <= 16 * 1024 * 1024; size *= 4) {
    r = attempt(size);
    if (r.result >= 0) return r.result;
    if (r.errno !== ENOSPC) break;
  }
  const last = r.log
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .pop();
  throw new TsbpfError('kernel', `BPF_BTF_LOAD failed: ${explainErrno(r.errno)}${last ? `: ${last}` : ''}`, {
    errno: r.errno,
    log: r.log,
  });
}

/** A deep copy of the object's BTF with libbpf's load-time fix-ups applied (the object is not changed). */
export function prepareObjectBtf(spec: ObjectSpec): Btf | undefined {
  const src = spec.btf;
  if (!src) return undefined;
  const types = structuredClone(src.types) as BtfType[];
  // biome-ignore lint/suspicious/noExplicitAny: a type record without its id
  const add = (t: any): number => {
    const id = types.length;
    types.push({ ...t, id } as BtfType);
    return id;
  };
  let intId = 0;
  const intType = (): number => {
    if (intId) return intId;
    const found = types.find((t) => t.kind === 'INT' && t.size === 4 && t.bitsOffset === 0 && t.bits === 32);
    intId = found
      ? found.id
      : add({ kind: 'INT', name: 'int', size: 4, encoding: 1, bitsOffset: 0, bits: 32 });
    return intId;
  };
  const kconfigSize = spec.maps.find((m) => m.kind === 'kconfig')?.valueSize ?? 0;
  const externByBtfId = new Map(spec.externs.map((e) => [e.btfId, e]));
  for (const t of types) {
    if (t.kind !== 'DATASEC') continue;
    if (t.name === '.kconfig') {
      for (const vs of t.vars) {
        const v = types[vs.type];
        const ext = externByBtfId.get(vs.type);
        if (v?.kind === 'VAR') v.linkage = 1;
        if (ext?.kconfig) vs.offset = ext.kconfig.offset;
      }
      t.size = kconfigSize;
    } else if (t.name === '.ksyms') {
      let dummy = 0;
      let off = 0;
      for (const vs of t.vars) {
        const vt = types[vs.type];
        if (vt?.kind === 'FUNC') {
          if (!dummy) dummy = add({ kind: 'VAR', name: 'dummy_ksym', type: intType(), linkage: 1 });
          const proto = types[vt.type];
          if (proto?.kind === 'FUNC_PROTO')
            for (const p of proto.params) if (p.type !== 0 && p.name === '') p.name = 'dummy_ksym';
          vt.linkage = 1;
          vs.type = dummy;
        } else if (vt?.kind === 'VAR') {
          vt.linkage = 1;
          vt.type = intType();
        }
        vs.offset = off;
        vs.size = 4;
        off += 4;
      }
      t.size = off;
    }
    t.vars.sort((a, b) => a.offset - b.offset);
  }
  for (const t of types) {
    if (t.kind === 'VAR' && t.linkage === 2) t.linkage = 1;
    if (t.kind === 'FUNC' && t.linkage === 2) t.linkage = 1;
  }
  return new Btf({ types, endianness: src.endianness, strings: src.strings });
}

/** Loads the object's BTF (fixed up) into the kernel: the fd, or undefined when the object has none. */
export function loadObjectBtf(spec: ObjectSpec): { fd: number; btf: Btf } | undefined {
  const btf = prepareObjectBtf(spec);
  if (!btf) return undefined;
  return { fd: loadRawBtf(encodeBtf(btf)), btf };
}

/**
 * The running kernel's BTF (/sys/kernel/btf/vmlinux), read once; undefined when the kernel has none. The
 * one btf/vmlinux.ts keeps, so the VM backend, the kernel backend and the bpftrace front end share it.
 */
export function kernelBtf(): Btf | undefined {
  return vmlinuxBtf(mapFile);
}
