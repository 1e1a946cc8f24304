/**
 * A small WebAssembly binary writer: LEB128, the opcodes the JIT emits, and a module assembler
 * (types, imports, functions, table, globals, exports, elements, code). Just enough for
 * src/vm/jit; no validation beyond what the engine does when it compiles the bytes.
 */

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F64 = 0x7c;
export const FUNCREF = 0x70;
export const EMPTY = 0x40; // block type with no parameters and no results

/** Opcodes (the WebAssembly 2.0 binary format, section 5.4). */
export const Op = {
  unreachable: 0x00,
  nop: 0x01,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  br_table: 0x0e,
  return: 0x0f,
  call: 0x10,
  call_indirect: 0x11,
  drop: 0x1a,
  select: 0x1b,
  local_get: 0x20,
  local_set: 0x21,
  local_tee: 0x22,
  global_get: 0x23,
  global_set: 0x24,
  i32_load: 0x28,
  i64_load: 0x29,
  i32_load8_s: 0x2c,
  i32_load8_u: 0x2d,
  i32_load16_s: 0x2e,
  i32_load16_u: 0x2f,
  i64_load8_s: 0x30,
  i64_load8_u: 0x31,
  i64_load16_s: 0x32,
  i64_load16_u: 0x33,
  i64_load32_s: 0x34,
  i64_load32_u: 0x35,
  i32_store: 0x36,
  i64_store: 0x37,
  i32_store8: 0x3a,
  i32_store16: 0x3b,
  i64_store8: 0x3c,
  i64_store16: 0x3d,
  i64_store32: 0x3e,
  i32_const: 0x41,
  i64_const: 0x42,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_ne: 0x47,
  i32_lt_s: 0x48,
  i32_lt_u: 0x49,
  i32_gt_s: 0x4a,
  i32_gt_u: 0x4b,
  i32_le_s: 0x4c,
  i32_le_u: 0x4d,
  i32_ge_s: 0x4e,
  i32_ge_u: 0x4f,
  i64_eqz: 0x50,
  i64_eq: 0x51,
  i64_ne: 0x52,
  i64_lt_s: 0x53,
  i64_lt_u: 0x54,
  i64_gt_s: 0x55,
  i64_gt_u: 0x56,
  i64_le_s: 0x57,
  i64_le_u: 0x58,
  i64_ge_s: 0x59,
  i64_ge_u: 0x5a,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_mul: 0x6c,
  i32_div_s: 0x6d,
  i32_div_u: 0x6e,
  i32_rem_s: 0x6f,
  i32_rem_u: 0x70,
  i32_and: 0x71,
  i32_or: 0x72,
  i32_xor: 0x73,
  i32_shl: 0x74,
  i32_shr_s: 0x75,
  i32_shr_u: 0x76,
  i32_rotl: 0x77,
  i32_rotr: 0x78,
  i64_add: 0x7c,
  i64_sub: 0x7d,
  i64_mul: 0x7e,
  i64_div_s: 0x7f,
  i64_div_u: 0x80,
  i64_rem_s: 0x81,
  i64_rem_u: 0x82,
  i64_and: 0x83,
  i64_or: 0x84,
  i64_xor: 0x85,
  i64_shl: 0x86,
  i64_shr_s: 0x87,
  i64_shr_u: 0x88,
  i64_rotl: 0x89,
  i64_rotr: 0x8a,
  i32_wrap_i64: 0xa7,
  i64_extend_i32_s: 0xac,
  i64_extend_i32_u: 0xad,
  i64_trunc_f64_s: 0xb0,
  f64_add: 0xa0,
  f64_convert_i64_u: 0xba,
  i32_extend8_s: 0xc0,
  i32_extend16_s: 0xc1,
  i64_extend8_s: 0xc2,
  i64_extend16_s: 0xc3,
  i64_extend32_s: 0xc4,
  prefix_fc: 0xfc,
} as const;
/** Sub-opcodes after 0xfc. */
export const FC = { memory_fill: 11 } as const;

/** A growable byte buffer with LEB128 writers. */
export class ByteWriter {
  bytes: Uint8Array;
  length = 0;

  constructor(capacity = 256) {
    this.bytes = new Uint8Array(capacity);
  }

  private grow(need: number): void {
    let cap = this.bytes.length * 2;
    while (cap < this.length + need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }

  byte(b: number): void {
    if (this.length >= this.bytes.length) this.grow(1);
    this.bytes[this.length++] = b;
  }

  raw(src: Uint8Array): void {
    if (this.length + src.length > this.bytes.length) this.grow(src.length);
    this.bytes.set(src, this.length);
    this.length += src.length;
  }

  /** Unsigned LEB128 of a non-negative integer below 2^53. */
  u32(v: number): void {
    if (this.length + 8 > this.bytes.length) this.grow(8);
    const b = this.bytes;
    let n = this.length;
    for (;;) {
      const low = v % 128;
      v = Math.floor(v / 128);
      if (v === 0) {
        b[n++] = low;
        break;
      }
      b[n++] = low | 0x80;
    }
    this.length = n;
  }

  /** Signed LEB128 of a 32-bit integer. */
  s32(v: number): void {
    if (this.length + 5 > this.bytes.length) this.grow(5);
    const b = this.bytes;
    let n = this.length;
    v |= 0;
    for (;;) {
      const low = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (low & 0x40) === 0) || (v === -1 && (low & 0x40) !== 0)) {
        b[n++] = low;
        break;
      }
      b[n++] = low | 0x80;
    }
    this.length = n;
  }

  /** Signed LEB128 of a 64-bit integer given as (lo, hi) 32-bit halves. */
  s64(lo: number, hi: number): void {
    hi |= 0;
    lo >>>= 0;
    if ((hi === 0 && lo < 0x8000_0000) || (hi === -1 && lo >= 0x8000_0000)) {
      this.s32(lo | 0);
      return;
    }
    if (this.length + 10 > this.bytes.length) this.grow(10);
    const b = this.bytes;
    let n = this.length;
    // 64-bit arithmetic shift right by 7 on (hi, lo) pairs.
    for (;;) {
      const low = lo & 0x7f;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>= 7;
      const done =
        (hi === 0 && lo === 0 && (low & 0x40) === 0) ||
        (hi === -1 && lo === 0xffff_ffff && (low & 0x40) !== 0);
      if (done) {
        b[n++] = low;
        break;
      }
      b[n++] = low | 0x80;
    }
    this.length = n;
  }

  name(s: string): void {
    const enc = new TextEncoder().encode(s);
    this.u32(enc.length);
    this.raw(enc);
  }

  finish(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

/** Function body writer: the instruction helpers the compiler uses. */
export class CodeWriter extends ByteWriter {
  op(o: number): void {
    this.byte(o);
  }
  get(local: number): void {
    this.byte(Op.local_get);
    this.u32(local);
  }
  set(local: number): void {
    this.byte(Op.local_set);
    this.u32(local);
  }
  tee(local: number): void {
    this.byte(Op.local_tee);
    this.u32(local);
  }
  gget(g: number): void {
    this.byte(Op.global_get);
    this.u32(g);
  }
  gset(g: number): void {
    this.byte(Op.global_set);
    this.u32(g);
  }
  i32c(v: number): void {
    this.byte(Op.i32_const);
    this.s32(v);
  }
  i64c(lo: number, hi: number = lo >> 31): void {
    this.byte(Op.i64_const);
    this.s64(lo, hi);
  }
  /** A load or store with its memarg (align is log2 of the natural alignment; 0 is always valid). */
  mem(o: number, offset: number, align = 0): void {
    this.byte(o);
    this.u32(align);
    this.u32(offset);
  }
  call(f: number): void {
    this.byte(Op.call);
    this.u32(f);
  }
  br(depth: number): void {
    this.byte(Op.br);
    this.u32(depth);
  }
  brIf(depth: number): void {
    this.byte(Op.br_if);
    this.u32(depth);
  }
  block(kind: number = Op.block, type: number = EMPTY): void {
    this.byte(kind);
    this.byte(type);
  }
}

export interface FuncType {
  params: number[];
  results: number[];
}

export interface ImportFunc {
  module: string;
  name: string;
  type: number;
}

export interface ModuleSpec {
  types: FuncType[];
  imports: ImportFunc[];
  /** Imported memory (module "env", name "memory"), always memory 0. */
  memory: { module: string; name: string };
  /** Imported globals after the memory (index 0..). */
  importGlobals: { module: string; name: string; type: number; mutable: boolean }[];
  /** Defined globals (indices continue after imported ones). */
  globals: { type: number; mutable: boolean; init: number }[];
  /** Defined functions: type index and body (locals + code, without the size prefix). */
  funcs: { type: number; locals: number[]; body: Uint8Array }[];
  /**
   * An imported funcref table (module, name): table 0 when present, the module's own `table` then
   * being table 1.
   */
  importTable?: { module: string; name: string };
  /** A funcref table initialised with these function indices (for call_indirect). */
  table?: number[];
  exports: { name: string; kind: 'func' | 'global'; index: number }[];
}

function section(out: ByteWriter, id: number, content: ByteWriter): void {
  out.byte(id);
  out.u32(content.length);
  out.raw(content.bytes.subarray(0, content.length));
}

function valtypeList(w: ByteWriter, types: number[]): void {
  w.u32(types.length);
  for (const t of types) w.byte(t);
}

/** Writes a complete module. */
export function writeModule(spec: ModuleSpec): Uint8Array {
  let size = 64;
  for (const f of spec.funcs) size += f.body.length + 8;
  const out = new ByteWriter(size);
  out.raw(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));

  const types = new ByteWriter();
  types.u32(spec.types.length);
  for (const t of spec.types) {
    types.byte(0x60);
    valtypeList(types, t.params);
    valtypeList(types, t.results);
  }
  section(out, 1, types);

  const imports = new ByteWriter();
  imports.u32(spec.imports.length + 1 + (spec.importTable ? 1 : 0) + spec.importGlobals.length);
  for (const i of spec.imports) {
    imports.name(i.module);
    imports.name(i.name);
    imports.byte(0x00);
    imports.u32(i.type);
  }
  imports.name(spec.memory.module);
  imports.name(spec.memory.name);
  imports.byte(0x02);
  imports.byte(0x00); // limits: min only
  imports.u32(0);
  if (spec.importTable) {
    imports.name(spec.importTable.module);
    imports.name(spec.importTable.name);
    imports.byte(0x01);
    imports.byte(FUNCREF);
    imports.byte(0x00); // limits: min only
    imports.u32(0);
  }
  for (const g of spec.importGlobals) {
    imports.name(g.module);
    imports.name(g.name);
    imports.byte(0x03);
    imports.byte(g.type);
    imports.byte(g.mutable ? 1 : 0);
  }
  section(out, 2, imports);

  const funcs = new ByteWriter();
  funcs.u32(spec.funcs.length);
  for (const f of spec.funcs) funcs.u32(f.type);
  section(out, 3, funcs);

  if (spec.table) {
    const table = new ByteWriter();
    table.u32(1);
    table.byte(FUNCREF);
    table.byte(0x00);
    table.u32(spec.table.length);
    section(out, 4, table);
  }

  if (spec.globals.length > 0) {
    const globals = new ByteWriter();
    globals.u32(spec.globals.length);
    for (const g of spec.globals) {
      globals.byte(g.type);
      globals.byte(g.mutable ? 1 : 0);
      if (g.type === I64) {
        globals.byte(Op.i64_const);
        globals.s64(g.init, g.init >> 31);
      } else if (g.type === F64) {
        globals.byte(0x44);
        globals.raw(new Uint8Array(new Float64Array([g.init]).buffer));
      } else {
        globals.byte(Op.i32_const);
        globals.s32(g.init);
      }
      globals.byte(Op.end);
    }
    section(out, 6, globals);
  }

  const exports = new ByteWriter();
  exports.u32(spec.exports.length);
  for (const e of spec.exports) {
    exports.name(e.name);
    exports.byte(e.kind === 'func' ? 0x00 : 0x03);
    exports.u32(e.index);
  }
  section(out, 7, exports);

  if (spec.table && spec.table.length > 0) {
    const elems = new ByteWriter();
    elems.u32(1);
    if (spec.importTable) {
      elems.u32(2); // active, table 1: table index, expression offset, elemkind funcref, vec(funcidx)
      elems.u32(1);
    } else elems.u32(0); // active, table 0, expression offset, vec(funcidx)
    elems.byte(Op.i32_const);
    elems.s32(0);
    elems.byte(Op.end);
    if (spec.importTable) elems.byte(0x00);
    elems.u32(spec.table.length);
    for (const f of spec.table) elems.u32(f);
    section(out, 9, elems);
  }

  const code = new ByteWriter(size);
  code.u32(spec.funcs.length);
  const head = new ByteWriter(64);
  for (const f of spec.funcs) {
    head.length = 0;
    // locals, run-length encoded
    const runs: [number, number][] = [];
    for (const t of f.locals) {
      const last = runs[runs.length - 1];
      if (last && last[1] === t) last[0]++;
      else runs.push([1, t]);
    }
    head.u32(runs.length);
    for (const [n, t] of runs) {
      head.u32(n);
      head.byte(t);
    }
    code.u32(head.length + f.body.length);
    code.raw(head.bytes.subarray(0, head.length));
    code.raw(f.body);
  }
  section(out, 10, code);
  return out.finish();
}
