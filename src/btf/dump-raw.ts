import type { Btf } from './btf.js';
import type { BtfType } from './types.js';

/**
 * `bpftool btf dump file X` (format raw) and `bpftool -j btf dump file X`, from a parsed graph.
 */

function intEncoding(e: number): string {
  switch (e) {
    case 0:
      return '(none)';
    case 1:
      return 'SIGNED';
    case 2:
      return 'CHAR';
    case 4:
      return 'BOOL';
    default:
      return 'UNKN';
  }
}

function funcLinkage(l: number): string {
  return l === 0 ? 'static' : l === 1 ? 'global' : l === 2 ? 'extern' : '(unknown)';
}

function varLinkage(l: number): string {
  return l === 0 ? 'static' : l === 1 ? 'global' : l === 2 ? 'extern' : '(unknown)';
}

const anon = (name: string, nameOff: number | undefined) =>
  nameOff === 0 || (nameOff === undefined && name === '') ? '(anon)' : name;

export interface RawDumpOptions {
  /** First id to print (default: 1, or the first split id for split BTF). */
  startId?: number;
  /** Only these ids (bpftool's root types). */
  ids?: number[];
}

function idsToDump(btf: Btf, options: RawDumpOptions): Iterable<number> {
  if (options.ids) return options.ids;
  const start = options.startId ?? btf.startId;
  return {
    *[Symbol.iterator]() {
      for (let id = start; id < btf.types.length; id++) yield id;
    },
  };
}

/** One type as bpftool prints it in raw format (no trailing newline; may span several lines). */
export function formatRawType(btf: Btf, t: BtfType): string {
  let s = `[${t.id}] ${t.kind === 'UNKN' ? 'UNKNOWN' : t.kind} '${anon(t.name, t.nameOff)}'`;
  switch (t.kind) {
    case 'INT':
      s += ` size=${t.size} bits_offset=${t.bitsOffset} nr_bits=${t.bits} encoding=${intEncoding(t.encoding)}`;
      break;
    case 'PTR':
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT':
    case 'TYPEDEF':
    case 'TYPE_TAG':
      s += ` type_id=${t.type}`;
      break;
    case 'ARRAY':
      s += ` type_id=${t.type} index_type_id=${t.indexType} nr_elems=${t.nelems}`;
      break;
    case 'STRUCT':
    case 'UNION':
      s += ` size=${t.size} vlen=${t.members.length}`;
      for (const m of t.members) {
        s += `\n\t'${anon(m.name, m.nameOff)}' type_id=${m.type} bits_offset=${m.bitOffset}`;
        if (m.bitfieldSize) s += ` bitfield_size=${m.bitfieldSize}`;
      }
      break;
    case 'ENUM':
      s += ` encoding=${t.signed ? 'SIGNED' : 'UNSIGNED'} size=${t.size} vlen=${t.values.length}`;
      for (const v of t.values) s += `\n\t'${anon(v.name, v.nameOff)}' val=${v.value}`;
      break;
    case 'ENUM64':
      s += ` encoding=${t.signed ? 'SIGNED' : 'UNSIGNED'} size=${t.size} vlen=${t.values.length}`;
      for (const v of t.values) {
        // bpftool prints the value with %lld / %llu
        const val = t.signed ? BigInt.asIntN(64, v.value) : BigInt.asUintN(64, v.value);
        s += `\n\t'${anon(v.name, v.nameOff)}' val=${val}${t.signed ? 'LL' : 'ULL'}`;
      }
      break;
    case 'FWD':
      s += ` fwd_kind=${t.fwdKind}`;
      break;
    case 'FUNC':
      s += ` type_id=${t.type} linkage=${funcLinkage(t.linkage)}`;
      break;
    case 'FUNC_PROTO':
      s += ` ret_type_id=${t.returnType} vlen=${t.params.length}`;
      for (const p of t.params) s += `\n\t'${anon(p.name, p.nameOff)}' type_id=${p.type}`;
      break;
    case 'VAR':
      s += ` type_id=${t.type}, linkage=${varLinkage(t.linkage)}`;
      break;
    case 'DATASEC':
      s += ` size=${t.size} vlen=${t.vars.length}`;
      for (const v of t.vars) {
        s += `\n\ttype_id=${v.type} offset=${v.offset} size=${v.size}`;
        const vt = btf.types[v.type];
        if (vt) s += ` (${vt.kind === 'UNKN' ? 'UNKNOWN' : vt.kind} '${anon(vt.name, vt.nameOff)}')`;
      }
      break;
    case 'FLOAT':
      s += ` size=${t.size}`;
      break;
    case 'DECL_TAG':
      s += ` type_id=${t.type} component_idx=${t.componentIdx}`;
      break;
    default:
      break;
  }
  return s;
}

/** The whole text of `bpftool btf dump file X` (raw format), newline-terminated. */
export function dumpBtfRaw(btf: Btf, options: RawDumpOptions = {}): string {
  const out: string[] = [];
  for (const id of idsToDump(btf, options)) out.push(formatRawType(btf, btf.type(id)));
  out.push('');
  return out.join('\n');
}

/** JSON string literal the way bpftool's json_writer escapes it. */
function jstr(s: string): string {
  let r = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    switch (c) {
      case '\t':
        r += '\\t';
        break;
      case '\n':
        r += '\\n';
        break;
      case '\r':
        r += '\\r';
        break;
      case '\f':
        r += '\\f';
        break;
      case '\b':
        r += '\\b';
        break;
      case '\\':
        r += '\\\\';
        break;
      case '"':
        r += '\\"';
        break;
      default:
        r += c;
    }
  }
  return `${r}"`;
}

/** One type as an object of bpftool's JSON output, serialized (64-bit values stay exact). */
export function formatJsonType(t: BtfType): string {
  const f: string[] = [
    `"id":${t.id}`,
    `"kind":${jstr(t.kind === 'UNKN' ? 'UNKNOWN' : t.kind)}`,
    `"name":${jstr(anon(t.name, t.nameOff))}`,
  ];
  switch (t.kind) {
    case 'INT':
      f.push(
        `"size":${t.size}`,
        `"bits_offset":${t.bitsOffset}`,
        `"nr_bits":${t.bits}`,
        `"encoding":${jstr(intEncoding(t.encoding))}`,
      );
      break;
    case 'PTR':
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT':
    case 'TYPEDEF':
    case 'TYPE_TAG':
      f.push(`"type_id":${t.type}`);
      break;
    case 'ARRAY':
      f.push(`"type_id":${t.type}`, `"index_type_id":${t.indexType}`, `"nr_elems":${t.nelems}`);
      break;
    case 'STRUCT':
    case 'UNION': {
      const ms = t.members.map((m) => {
        let o = `{"name":${jstr(anon(m.name, m.nameOff))},"type_id":${m.type},"bits_offset":${m.bitOffset}`;
        if (m.bitfieldSize) o += `,"bitfield_size":${m.bitfieldSize}`;
        return `${o}}`;
      });
      f.push(`"size":${t.size}`, `"vlen":${t.members.length}`, `"members":[${ms.join(',')}]`);
      break;
    }
    case 'ENUM':
    case 'ENUM64': {
      const vs = t.values.map((v) => {
        const val =
          t.kind === 'ENUM64'
            ? t.signed
              ? BigInt.asIntN(64, v.value as bigint)
              : BigInt.asUintN(64, v.value as bigint)
            : t.signed
              ? v.value
              : // bpftool passes the __s32 field to a u64 printer: values >= 2^31 come out sign-extended
                BigInt.asUintN(64, BigInt((v.value as number) | 0));
        return `{"name":${jstr(anon(v.name, v.nameOff))},"val":${val}}`;
      });
      f.push(
        `"encoding":${jstr(t.signed ? 'SIGNED' : 'UNSIGNED')}`,
        `"size":${t.size}`,
        `"vlen":${t.values.length}`,
        `"values":[${vs.join(',')}]`,
      );
      break;
    }
    case 'FWD':
      f.push(`"fwd_kind":${jstr(t.fwdKind)}`);
      break;
    case 'FUNC':
      f.push(`"type_id":${t.type}`, `"linkage":${jstr(funcLinkage(t.linkage))}`);
      break;
    case 'FUNC_PROTO': {
      const ps = t.params.map((p) => `{"name":${jstr(anon(p.name, p.nameOff))},"type_id":${p.type}}`);
      f.push(`"ret_type_id":${t.returnType}`, `"vlen":${t.params.length}`, `"params":[${ps.join(',')}]`);
      break;
    }
    case 'VAR':
      f.push(`"type_id":${t.type}`, `"linkage":${jstr(varLinkage(t.linkage))}`);
      break;
    case 'DATASEC': {
      const vs = t.vars.map((v) => `{"type_id":${v.type},"offset":${v.offset},"size":${v.size}}`);
      f.push(`"size":${t.size}`, `"vlen":${t.vars.length}`, `"vars":[${vs.join(',')}]`);
      break;
    }
    case 'FLOAT':
      f.push(`"size":${t.size}`);
      break;
    case 'DECL_TAG':
      f.push(`"type_id":${t.type}`, `"component_idx":${t.componentIdx}`);
      break;
    default:
      break;
  }
  return `{${f.join(',')}}`;
}

/** The text of `bpftool -j btf dump file X`: `{"types":[...]}` plus a newline. */
export function dumpBtfJson(btf: Btf, options: RawDumpOptions = {}): string {
  const out: string[] = [];
  for (const id of idsToDump(btf, options)) out.push(formatJsonType(btf.type(id)));
  return `{"types":[${out.join(',')}]}\n`;
}
