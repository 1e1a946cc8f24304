/**
 * Extern symbols of an eBPF object (libbpf's bpf_object__collect_externs): `__kconfig` variables the
 * loader fills from the kernel configuration (laid out in the `.kconfig` map), and `__ksym` kernel
 * symbols: typeless addresses, typed variables (BTF ids) and kfuncs.
 */
import type { Btf } from '../btf/btf.js';
import { BTF_INT_BOOL, BTF_INT_SIGNED, type BtfType } from '../btf/types.js';
import { objectError } from './maps.js';

/** How the loader fills a `.kconfig` extern (libbpf's enum kcfg_type). */
export type KconfigType = 'bool' | 'char' | 'int' | 'tristate' | 'char_array';

export interface ExternSpec {
  name: string;
  kind: 'kconfig' | 'ksym';
  /** Declared `__weak`: loaders leave it zero when the kernel lacks it instead of failing. */
  weak: boolean;
  /** The extern's BTF VAR or FUNC id. */
  btfId: number;
  /** Index of its ELF symbol. */
  symbol: number;
  kconfig?: {
    type: KconfigType;
    signed: boolean;
    size: number;
    align: number;
    /** Offset of the value in the `.kconfig` map. */
    offset: number;
  };
  ksym?: {
    /** A kernel function called with BPF_PSEUDO_KFUNC_CALL. */
    func: boolean;
    /** BTF id of the (variable's or function's) type after modifiers; 0 for a typeless `const void` ksym. */
    typeId: number;
  };
}

/** libbpf's find_kcfg_type. */
function kcfgType(btf: Btf, id: number, signed: { v: boolean } | undefined): KconfigType | undefined {
  const t = btf.type(btf.resolve(id));
  switch (t.kind) {
    case 'INT': {
      if (t.encoding & BTF_INT_BOOL) return t.size === 1 ? 'bool' : undefined;
      if (signed) signed.v = (t.encoding & BTF_INT_SIGNED) !== 0;
      if (t.size === 1) return 'char';
      if (t.size < 1 || t.size > 8 || (t.size & (t.size - 1)) !== 0) return undefined;
      return 'int';
    }
    case 'ENUM':
      return t.size === 4 && t.name === 'libbpf_tristate' ? 'tristate' : undefined;
    case 'ENUM64':
      return t.name === 'libbpf_tristate' ? 'tristate' : undefined;
    case 'ARRAY':
      if (t.nelems === 0) return undefined;
      return kcfgType(btf, t.type, undefined) === 'char' ? 'char_array' : undefined;
    default:
      return undefined;
  }
}

const EXT_ORDER = { kconfig: 1, ksym: 2 } as const;

const cmpStr = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Reads the externs (symbols undefined in the object, global or weak, of no type) and lays the
 * `.kconfig` ones out as libbpf does: sorted by descending alignment, ascending size, then name.
 * Returns them in libbpf's order (kconfig first) and the `.kconfig` map size (0 when there are none).
 */
export function collectExterns(
  symbols: readonly { index: number; name: string; weak: boolean }[],
  btf: Btf | undefined,
): { externs: ExternSpec[]; kconfigSize: number } {
  const externs: ExternSpec[] = [];
  for (const sym of symbols) {
    if (sym.name === '') continue;
    if (!btf)
      throw objectError(`extern '${sym.name}' needs BTF, but the object has none (or it is corrupted)`);
    let btfId = -1;
    for (let id = 1; id < btf.typeCount; id++) {
      const t = btf.types[id];
      if ((t.kind !== 'VAR' && t.kind !== 'FUNC') || t.name !== sym.name) continue;
      if (t.kind === 'VAR' && t.linkage !== 2)
        throw objectError(`extern '${sym.name}': BTF VAR is not extern`);
      if (t.kind === 'FUNC' && t.linkage !== 2)
        throw objectError(`extern '${sym.name}': BTF FUNC is not extern`);
      btfId = id;
      break;
    }
    if (btfId < 0) throw objectError(`failed to find BTF for extern '${sym.name}'`);
    const t = btf.types[btfId] as BtfType & { type: number };
    let secName: string | undefined;
    for (let id = 1; id < btf.typeCount && secName === undefined; id++) {
      const s = btf.types[id];
      if (s.kind === 'DATASEC' && s.vars.some((v) => v.type === btfId)) secName = s.name;
    }
    if (secName === undefined)
      throw objectError(`failed to find BTF for extern '${sym.name}' [${btfId}] section`);
    const base = { name: sym.name, weak: sym.weak, btfId, symbol: sym.index };
    const what = `extern (kcfg) '${sym.name}'`;
    if (secName === '.kconfig') {
      if (t.kind === 'FUNC')
        throw objectError(`extern function ${sym.name} is unsupported under .kconfig section`);
      let size: number;
      let align: number;
      try {
        size = btf.sizeof(t.type);
        align = btf.alignof(t.type);
      } catch (e) {
        throw objectError(`${what}: ${(e as Error).message}`);
      }
      if (size <= 0) throw objectError(`failed to resolve size of ${what}`);
      if (align <= 0) throw objectError(`failed to determine alignment of ${what}`);
      const signed = { v: false };
      const type = kcfgType(btf, t.type, signed);
      if (type === undefined) throw objectError(`${what}: type is unsupported`);
      externs.push({ ...base, kind: 'kconfig', kconfig: { type, signed: signed.v, size, align, offset: 0 } });
    } else if (secName === '.ksyms') {
      const typeId = btf.skipModifiers(t.type);
      externs.push({ ...base, kind: 'ksym', ksym: { func: t.kind === 'FUNC', typeId } });
    } else {
      throw objectError(`unrecognized extern section '${secName}' (extern '${sym.name}')`);
    }
  }
  externs.sort((a, b) => {
    if (a.kind !== b.kind) return EXT_ORDER[a.kind] - EXT_ORDER[b.kind];
    if (a.kconfig && b.kconfig) {
      if (a.kconfig.align !== b.kconfig.align) return b.kconfig.align - a.kconfig.align;
      if (a.kconfig.size !== b.kconfig.size) return a.kconfig.size - b.kconfig.size;
    }
    return cmpStr(a.name, b.name);
  });
  let off = 0;
  for (const e of externs) {
    if (!e.kconfig) continue;
    e.kconfig.offset = Math.ceil(off / e.kconfig.align) * e.kconfig.align;
    off = e.kconfig.offset + e.kconfig.size;
  }
  return { externs, kconfigSize: off };
}
