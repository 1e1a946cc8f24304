/**
 * BTF-formatted values the way bpftool prints them (tools/bpf/bpftool/btf_dumper.c, json_writer.c):
 * a streaming JSON writer with bpftool's exact layout (its `-p` indentation, where array items stay on
 * one line and the closing bracket goes on its own line), and the value printer that walks a BTF type
 * over raw bytes — ints by width and signedness, bitfields and 128-bit ints as hex, `char` arrays as
 * strings when NUL-terminated and printable, structs and unions as objects, enums as their names (or
 * numbers), pointers, VAR/DATASEC as `{ "name": value }` / `{ ".data": [...] }`. Also the C-like type
 * signature bpftool prints above each function of `prog dump xlated` (btf_dumper_type_only).
 * Pure: no kernel, no I/O.
 */
import type { Btf } from './btf.js';
import { BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, type BtfType } from './types.js';

/**
 * bpftool's json_writer: the same separators, indentation and escapes (including its quirk of writing a
 * backslash in a string as `\n`). `raw` is jsonw_printf.
 */
export class JsonWriter {
  private out = '';
  private depth = 0;
  private sep = '';

  constructor(readonly pretty: boolean) {}

  private eol(): void {
    if (this.pretty) this.out += `\n${'    '.repeat(this.depth)}`;
  }

  private eor(): void {
    this.out += this.sep;
    this.sep = ',';
  }

  private puts(s: string): void {
    let o = '"';
    for (const ch of s) {
      if (ch === '\0') break;
      switch (ch) {
        case '\t':
          o += '\\t';
          break;
        case '\n':
          o += '\\n';
          break;
        case '\r':
          o += '\\r';
          break;
        case '\f':
          o += '\\f';
          break;
        case '\b':
          o += '\\b';
          break;
        case '\\':
          o += '\\n';
          break;
        case '"':
          o += '\\"';
          break;
        default:
          o += ch;
      }
    }
    this.out += `${o}"`;
  }

  private begin(c: string): void {
    this.eor();
    this.out += c;
    this.depth++;
    this.sep = '';
  }

  private end(c: string): void {
    this.depth--;
    if (this.sep !== '') this.eol();
    this.out += c;
    this.sep = ',';
  }

  startObject(): void {
    this.begin('{');
  }
  endObject(): void {
    this.end('}');
  }
  startArray(): void {
    this.begin('[');
  }
  endArray(): void {
    this.end(']');
  }

  name(n: string): void {
    this.eor();
    this.eol();
    this.sep = '';
    this.puts(n);
    this.out += this.pretty ? ': ' : ':';
  }

  /** jsonw_printf: a value written as is. */
  raw(text: string): void {
    this.eor();
    this.out += text;
  }

  string(s: string): void {
    this.eor();
    this.puts(s);
  }

  bool(b: boolean): void {
    this.raw(b ? 'true' : 'false');
  }

  null(): void {
    this.raw('null');
  }

  /** A JS value, in the writer's layout (objects in key order; numbers and bigints as decimals). */
  value(v: unknown): void {
    if (v === null || v === undefined) this.null();
    else if (typeof v === 'boolean') this.bool(v);
    else if (typeof v === 'number' || typeof v === 'bigint') this.raw(String(v));
    else if (typeof v === 'string') this.string(v);
    else if (typeof v === 'function') (v as (w: JsonWriter) => void)(this);
    else if (Array.isArray(v)) {
      this.startArray();
      for (const x of v) this.value(x);
      this.endArray();
    } else {
      this.startObject();
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (x === undefined) continue;
        this.name(k);
        this.value(x);
      }
      this.endObject();
    }
  }

  /** Text written straight to the output stream, past the writer (bpftool's printf beside its writer). */
  passthrough(text: string): void {
    this.out += text;
  }

  /** The text so far, with the newline jsonw_destroy ends with. */
  finish(): string {
    return `${this.out}\n`;
  }

  /** The text so far. */
  get text(): string {
    return this.out;
  }
}

/** bpftool's print_hex_data_json: `["0x01","0x02"]`. */
export function hexDataJson(w: JsonWriter, bytes: Uint8Array): void {
  w.startArray();
  for (const b of bytes) w.raw(`"0x${b.toString(16).padStart(2, '0')}"`);
  w.endArray();
}

export interface DumpValueOptions {
  /** bpftool's is_plain_text (the plain-text dump): pointers as `%p`, 128-bit ints and bitfields unquoted. */
  plainText: boolean;
}

const EINVAL = -22;

/**
 * Writes the value of BTF type `typeId` held in `data` at `offset` to `w`, as btf_dumper_type does.
 * Returns 0, or a negative errno when bpftool's dumper stops (unsupported kinds); what was written so
 * far stays written, as in bpftool.
 */
export function dumpBtfValue(
  w: JsonWriter,
  btf: Btf,
  typeId: number,
  data: Uint8Array,
  offset: number,
  options: DumpValueOptions,
): number {
  return new Dumper(w, btf, data, options.plainText).type(typeId, 0, offset);
}

/** isprint() in the C locale. */
const isPrint = (c: number) => c >= 0x20 && c <= 0x7e;

class Dumper {
  private readonly dv: DataView;

  constructor(
    private readonly w: JsonWriter,
    private readonly btf: Btf,
    private readonly data: Uint8Array,
    private readonly plain: boolean,
  ) {
    this.dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  /** `n` bytes at `off` as a little-endian unsigned bigint (bytes past the buffer read as 0). */
  private bytesLE(off: number, n: number): bigint {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.data[off + i] ?? 0);
    return v;
  }

  type(id: number, bitOffset: number, off: number): number {
    const t = this.btf.type(id);
    switch (t.kind) {
      case 'INT':
        return this.int(t, bitOffset, off);
      case 'STRUCT':
      case 'UNION':
        return this.struct(t, off);
      case 'ARRAY':
        return this.array(t, off);
      case 'ENUM': {
        let v: number;
        if (t.size === 8) v = Number(BigInt.asIntN(64, this.bytesLE(off, 8)));
        else if (t.size === 4) v = this.dv.getInt32(off, true);
        else if (t.size === 2) v = this.dv.getInt16(off, true);
        else if (t.size === 1) v = this.dv.getInt8(off);
        else return EINVAL;
        const hit = t.values.find((e) => (e.value | 0) === v);
        if (hit) this.w.string(hit.name);
        else if (t.size === 8) this.w.raw(BigInt.asIntN(64, this.bytesLE(off, 8)).toString());
        else this.w.raw(String(v));
        return 0;
      }
      case 'ENUM64': {
        const v = this.bytesLE(off, 8);
        const hit = t.values.find((e) => BigInt.asUintN(64, e.value) === v);
        if (hit) this.w.string(hit.name);
        else this.w.raw(BigInt.asIntN(64, v).toString());
        return 0;
      }
      case 'PTR': {
        const v = this.bytesLE(off, 8);
        if (this.plain) this.w.raw(v === 0n ? '(nil)' : `0x${v.toString(16)}`);
        else this.w.raw(v.toString());
        return 0;
      }
      case 'UNKN':
        this.w.raw('(unknown)');
        return 0;
      case 'FWD':
        this.w.raw('(fwd-kind-invalid)');
        return EINVAL;
      case 'TYPEDEF':
      case 'VOLATILE':
      case 'CONST':
      case 'RESTRICT':
        return this.type(this.btf.resolve(id), bitOffset, off);
      case 'VAR':
        this.w.startObject();
        this.w.name(t.name);
        {
          const r = this.type(t.type, bitOffset, off);
          this.w.endObject();
          return r;
        }
      case 'DATASEC': {
        this.w.startObject();
        this.w.name(t.name);
        this.w.startArray();
        let r = 0;
        for (const v of t.vars) {
          r = this.type(v.type, 0, off + v.offset);
          if (r) break;
        }
        this.w.endArray();
        this.w.endObject();
        return r;
      }
      default:
        this.w.raw('(unsupported-kind');
        return EINVAL;
    }
  }

  /** btf_dumper_bitfield: `nrBits` bits from `bitOffset` (0-7) of the bytes at `off`, as hex. */
  private bitfield(nrBits: number, bitOffset: number, off: number): void {
    const bytes = Math.ceil((bitOffset + nrBits) / 8);
    const v = (this.bytesLE(off, Math.min(bytes, 16)) >> BigInt(bitOffset)) & ((1n << BigInt(nrBits)) - 1n);
    this.int128(v);
  }

  private int128(v: bigint): void {
    const upper = v >> 64n;
    const lower = v & 0xffffffffffffffffn;
    const text =
      upper === 0n
        ? `0x${lower.toString(16)}`
        : `0x${upper.toString(16)}${lower.toString(16).padStart(16, '0')}`;
    this.w.raw(this.plain ? text : `"${text}"`);
  }

  private intBits(t: Extract<BtfType, { kind: 'INT' }>, bitOffset: number, off: number): void {
    const total = bitOffset + t.bitsOffset;
    this.bitfield(t.bits, total & 7, off + (total >> 3));
  }

  private int(t: Extract<BtfType, { kind: 'INT' }>, bitOffset: number, off: number): number {
    const bits = t.bits;
    if (bitOffset || t.bitsOffset || bits & 7) {
      this.intBits(t, bitOffset, off);
      return 0;
    }
    if (bits === 128) {
      this.int128(this.bytesLE(off, 16));
      return 0;
    }
    const w = this.w;
    switch (t.encoding) {
      case 0:
        if (bits === 64) w.raw(this.bytesLE(off, 8).toString());
        else if (bits === 32) w.raw(String(this.dv.getUint32(off, true)));
        else if (bits === 16) w.raw(String(this.dv.getUint16(off, true)));
        else if (bits === 8) w.raw(String(this.dv.getUint8(off)));
        else this.intBits(t, bitOffset, off);
        return 0;
      case BTF_INT_SIGNED:
        if (bits === 64) w.raw(BigInt.asIntN(64, this.bytesLE(off, 8)).toString());
        else if (bits === 32) w.raw(String(this.dv.getInt32(off, true)));
        else if (bits === 16) w.raw(String(this.dv.getInt16(off, true)));
        else if (bits === 8) w.raw(String(this.dv.getInt8(off)));
        else this.intBits(t, bitOffset, off);
        return 0;
      case BTF_INT_CHAR: {
        const c = this.data[off] ?? 0;
        if (isPrint(c)) w.raw(`"${String.fromCharCode(c)}"`);
        else if (this.plain) w.raw(`0x${c.toString(16)}`);
        else w.raw(`"\\u00${c.toString(16).padStart(2, '0')}"`);
        return 0;
      }
      case BTF_INT_BOOL:
        // bpftool reads an int here, whatever the bool's size
        w.bool(this.bytesLE(off, 4) !== 0n);
        return 0;
      default:
        return EINVAL;
    }
  }

  private struct(t: Extract<BtfType, { kind: 'STRUCT' | 'UNION' }>, off: number): number {
    this.w.startObject();
    let r = 0;
    for (const m of t.members) {
      this.w.name(m.name);
      const at = off + (m.bitOffset >> 3);
      if (m.bitfieldSize) this.bitfield(m.bitfieldSize, m.bitOffset & 7, at);
      else {
        r = this.type(m.type, m.bitOffset & 7, at);
        if (r) break;
      }
    }
    this.w.endObject();
    return r;
  }

  private isStrArray(t: Extract<BtfType, { kind: 'ARRAY' }>, off: number): boolean {
    if (!t.nelems) return false;
    let e = this.btf.type(t.type);
    while (e.kind === 'CONST' || e.kind === 'VOLATILE' || e.kind === 'RESTRICT' || e.kind === 'TYPE_TAG')
      e = this.btf.type(e.type);
    if (e.kind !== 'INT' || e.size !== 1) return false;
    if (e.encoding !== BTF_INT_CHAR && e.name !== 'char') return false;
    for (let i = 0; i < t.nelems; i++) {
      const c = this.data[off + i] ?? 0;
      if (c === 0) return true;
      if (c <= 0x1f || c >= 0x7f) return false;
    }
    return false;
  }

  private array(t: Extract<BtfType, { kind: 'ARRAY' }>, off: number): number {
    if (this.isStrArray(t, off)) {
      const end = this.data.indexOf(0, off);
      this.w.string(String.fromCharCode(...this.data.subarray(off, end)));
      return 0;
    }
    let size: number;
    try {
      size = this.btf.sizeof(t.type);
    } catch {
      return EINVAL;
    }
    this.w.startArray();
    let r = 0;
    for (let i = 0; i < t.nelems; i++) {
      r = this.type(t.type, 0, off + i * size);
      if (r) break;
    }
    this.w.endArray();
    return r;
  }
}

/**
 * btf_dumper_type_only: the C-like text of a type as bpftool prints it above each function of
 * `prog dump xlated` (`int xdp_prog(struct xdp_md * ctx)`); '' when bpftool prints nothing.
 */
export function btfTypeSignature(btf: Btf, typeId: number): string {
  try {
    return typeOnly(btf, typeId);
  } catch {
    return '';
  }
}

function typeOnly(btf: Btf, id: number): string {
  if (!id) return 'void ';
  const t = btf.type(id);
  switch (t.kind) {
    case 'INT':
    case 'TYPEDEF':
    case 'FLOAT':
      return `${t.name} `;
    case 'STRUCT':
      return `struct ${t.name} `;
    case 'UNION':
      return `union ${t.name} `;
    case 'ENUM':
    case 'ENUM64':
      return `enum ${t.name} `;
    case 'ARRAY':
      return `${typeOnly(btf, t.type)}[${t.nelems}]`;
    case 'PTR':
      return `${typeOnly(btf, t.type)}* `;
    case 'FWD':
      return `${t.fwdKind} ${t.name} `;
    case 'VOLATILE':
      return `volatile ${typeOnly(btf, t.type)}`;
    case 'CONST':
      return `const ${typeOnly(btf, t.type)}`;
    case 'RESTRICT':
      return `restrict ${typeOnly(btf, t.type)}`;
    case 'FUNC_PROTO':
      return funcSig(btf, t, undefined);
    case 'FUNC': {
      const proto = btf.type(t.type);
      if (proto.kind !== 'FUNC_PROTO') throw new Error('not a proto');
      return funcSig(btf, proto, t.name);
    }
    case 'VAR':
      return `${t.linkage === 0 ? 'static ' : ''}${typeOnly(btf, t.type)} ${t.name}`;
    case 'DATASEC':
      return `section ("${t.name}") `;
    default:
      throw new Error('unsupported');
  }
}

function funcSig(
  btf: Btf,
  proto: Extract<BtfType, { kind: 'FUNC_PROTO' }>,
  name: string | undefined,
): string {
  let s = `${typeOnly(btf, proto.returnType)}${name !== undefined ? `${name}(` : '('}`;
  proto.params.forEach((p, i) => {
    if (i) s += ', ';
    if (p.type) {
      s += typeOnly(btf, p.type);
      if (p.name) s += p.name;
      else if (s.endsWith(' ')) s = s.slice(0, -1);
    } else s += '...';
  });
  return `${s})`;
}
