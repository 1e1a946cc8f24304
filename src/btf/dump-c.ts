import { TsbpfError } from '../errors.js';
import type { Btf } from './btf.js';
import type { BtfComposite, BtfEnum, BtfEnum64, BtfType } from './types.js';

/**
 * C header from BTF, the way libbpf's btf_dump (as used by `bpftool btf dump file X format c`)
 * writes it: types in dependency order, forward declarations where a cycle needs them, anonymous
 * structs/unions/enums inline, explicit padding, `__attribute__((packed))`, and `___N` suffixes
 * for duplicate names.
 */

// order state 0: not ordered yet
const ORDERING = 1;
const ORDERED = 2;

const NOT_EMITTED = 0;
const EMITTING = 1;
const EMITTED = 2;

const TABS = '\t\t\t\t\t\t\t\t\t\t\t\t';
const pfx = (lvl: number) => (lvl >= TABS.length ? TABS : TABS.slice(0, lvl));

/** GCC-internal type names libbpf adds aliases for. */
const MISSING_BASE_TYPES: Record<string, string> = {
  __Poly8_t: 'unsigned char',
  __Poly16_t: 'unsigned short',
  __Poly64_t: 'unsigned long long',
  __Poly128_t: 'unsigned __int128',
};

export interface CDumpOptions {
  /** Dump only these ids (and what they need), like `bpftool btf dump ... root_id N`. */
  ids?: number[];
  /** Refuse (TsbpfError) to produce more characters than this (default 64 MiB + 64 per type). */
  maxLength?: number;
  /** Omit the `#ifndef __VMLINUX_H__` guard and pragmas bpftool prints around the types. */
  bare?: boolean;
}

const isMod = (t: BtfType) =>
  t.kind === 'CONST' || t.kind === 'VOLATILE' || t.kind === 'RESTRICT' || t.kind === 'TYPE_TAG';

class CDumper {
  private out = '';
  private readonly orderState: Uint8Array;
  private readonly emitState: Uint8Array;
  private readonly fwdEmitted: Uint8Array;
  private readonly referenced: Uint8Array;
  private readonly nameResolved: Uint8Array;
  private readonly cachedNames = new Map<number, string>();
  private readonly typeNames = new Map<string, number>();
  private readonly identNames = new Map<string, number>();
  private emitQueue: number[] = [];
  private readonly ptrSize: number;
  private readonly types: BtfType[];

  constructor(
    private readonly btf: Btf,
    private readonly limit: number,
  ) {
    this.types = btf.types;
    const n = this.types.length;
    this.orderState = new Uint8Array(n);
    this.emitState = new Uint8Array(n);
    this.fwdEmitted = new Uint8Array(n);
    this.referenced = new Uint8Array(n);
    this.nameResolved = new Uint8Array(n);
    // void is always defined
    this.orderState[0] = ORDERED;
    this.emitState[0] = EMITTED;
    this.ptrSize = btf.pointerSize;
    this.markReferenced();
  }

  private p(s: string) {
    this.out += s;
    if (this.out.length > this.limit) {
      // mutated or hostile BTF can ask for absurd padding or exponential inlining of anonymous types
      throw new TsbpfError(
        'btf',
        `C dump would exceed ${this.limit} characters; the type graph is not plausible`,
      );
    }
  }

  text(): string {
    // reading a character makes V8 flatten the rope of small pieces into one compact string
    this.out.charCodeAt(this.out.length >> 1);
    return this.out;
  }

  private markReferenced() {
    const r = this.referenced;
    for (let id = 1; id < this.types.length; id++) {
      const t = this.types[id];
      switch (t.kind) {
        case 'VOLATILE':
        case 'CONST':
        case 'RESTRICT':
        case 'PTR':
        case 'TYPEDEF':
        case 'FUNC':
        case 'VAR':
        case 'DECL_TAG':
        case 'TYPE_TAG':
          r[t.type] = 1;
          break;
        case 'ARRAY':
          r[t.indexType] = 1;
          r[t.type] = 1;
          break;
        case 'STRUCT':
        case 'UNION':
          for (const m of t.members) r[m.type] = 1;
          break;
        case 'FUNC_PROTO':
          for (const p of t.params) r[p.type] = 1;
          break;
        case 'DATASEC':
          for (const v of t.vars) r[v.type] = 1;
          break;
        default:
          break;
      }
    }
  }

  dumpType(id: number) {
    if (id >= this.types.length) throw new TsbpfError('btf', `type id ${id} out of range`);
    this.emitQueue = [];
    this.orderType(id, false);
    for (const q of this.emitQueue) this.emitType(q, 0);
  }

  // ---- ordering ----

  /** Returns true for a "strong" link (the referrer must come after this type), as btf_dump_order_type. */
  private orderType(id: number, throughPtr: boolean): boolean {
    if (this.orderState[id] === ORDERED) return true;
    const t = this.types[id];
    if (this.orderState[id] === ORDERING) {
      if ((t.kind === 'STRUCT' || t.kind === 'UNION') && throughPtr && t.name !== '') return false;
      throw new TsbpfError('btf', `unsatisfiable type cycle, id:[${id}]`);
    }
    switch (t.kind) {
      case 'INT':
      case 'FLOAT':
        this.orderState[id] = ORDERED;
        return false;
      case 'PTR': {
        const r = this.orderType(t.type, true);
        this.orderState[id] = ORDERED;
        return r;
      }
      case 'ARRAY':
        return this.orderType(t.type, false);
      case 'STRUCT':
      case 'UNION': {
        if (throughPtr && t.name !== '') return false;
        this.orderState[id] = ORDERING;
        for (const m of t.members) this.orderType(m.type, false);
        if (t.name !== '') this.emitQueue.push(id);
        this.orderState[id] = ORDERED;
        return true;
      }
      case 'ENUM':
      case 'ENUM64':
      case 'FWD':
        if (t.name !== '' || !this.referenced[id]) this.emitQueue.push(id);
        this.orderState[id] = ORDERED;
        return true;
      case 'TYPEDEF': {
        const strong = this.orderType(t.type, throughPtr);
        if (throughPtr && !strong) return false;
        this.emitQueue.push(id);
        this.orderState[id] = ORDERED;
        return true;
      }
      case 'VOLATILE':
      case 'CONST':
      case 'RESTRICT':
      case 'TYPE_TAG':
        return this.orderType(t.type, throughPtr);
      case 'FUNC_PROTO': {
        let strong = this.orderType(t.returnType, throughPtr);
        for (const p of t.params) if (this.orderType(p.type, throughPtr)) strong = true;
        return strong;
      }
      case 'FUNC':
      case 'VAR':
      case 'DATASEC':
      case 'DECL_TAG':
        this.orderState[id] = ORDERED;
        return false;
      default:
        throw new TsbpfError('btf', `unexpected type kind ${t.kind} at id [${id}]`);
    }
  }

  // ---- names ----

  private nameDups(map: Map<string, number>, name: string): number {
    const n = (map.get(name) ?? 0) + 1;
    map.set(name, n);
    return n;
  }

  private resolveName(id: number, map: Map<string, number>): string {
    const t = this.types[id];
    if (t.name === '') return '';
    if (this.nameResolved[id]) return this.cachedNames.get(id) ?? t.name;
    this.nameResolved[id] = 1;
    if (t.kind === 'FWD' || (t.kind === 'ENUM' && t.values.length === 0)) return t.name;
    const dups = this.nameDups(map, t.name);
    if (dups > 1) {
      const n = `${t.name}___${dups}`;
      this.cachedNames.set(id, n);
      return n;
    }
    return t.name;
  }

  private typeName(id: number): string {
    return this.resolveName(id, this.typeNames);
  }

  private identName(id: number): string {
    return this.resolveName(id, this.identNames);
  }

  // ---- emission ----

  private static isBlacklisted(t: BtfType): boolean {
    return t.name === '__builtin_va_list';
  }

  private emitType(id: number, contId: number) {
    if (this.emitState[id] === EMITTED) return;
    const t = this.types[id];
    const topLevel = contId === 0;
    if (this.emitState[id] === EMITTING) {
      if (this.fwdEmitted[id]) return;
      switch (t.kind) {
        case 'STRUCT':
        case 'UNION':
          if (id === contId) return;
          if (t.name === '') return; // anonymous struct/union loop
          this.emitStructFwd(id, t);
          this.p(';\n\n');
          this.fwdEmitted[id] = 1;
          break;
        case 'TYPEDEF':
          if (!CDumper.isBlacklisted(t)) {
            this.emitTypedefDef(id, t.type, 0);
            this.p(';\n\n');
          }
          this.fwdEmitted[id] = 1;
          break;
        default:
          break;
      }
      return;
    }
    switch (t.kind) {
      case 'INT': {
        const name = this.typeName(id);
        if (Object.hasOwn(MISSING_BASE_TYPES, name))
          this.p(`typedef ${MISSING_BASE_TYPES[name]} ${name};\n\n`);
        this.emitState[id] = EMITTED;
        break;
      }
      case 'ENUM':
      case 'ENUM64':
        if (topLevel) {
          this.emitEnumDef(id, t, 0);
          this.p(';\n\n');
        }
        this.emitState[id] = EMITTED;
        break;
      case 'PTR':
      case 'VOLATILE':
      case 'CONST':
      case 'RESTRICT':
      case 'TYPE_TAG':
      case 'ARRAY':
        this.emitType(t.type, contId);
        break;
      case 'FWD':
        this.emitFwdDef(id, t.fwdKind);
        this.p(';\n\n');
        this.emitState[id] = EMITTED;
        break;
      case 'TYPEDEF':
        this.emitState[id] = EMITTING;
        this.emitType(t.type, id);
        if (!this.fwdEmitted[id] && !CDumper.isBlacklisted(t)) {
          this.emitTypedefDef(id, t.type, 0);
          this.p(';\n\n');
        }
        this.emitState[id] = EMITTED;
        break;
      case 'STRUCT':
      case 'UNION':
        this.emitState[id] = EMITTING;
        if (topLevel || t.name === '') {
          const newCont = t.name === '' ? contId : id;
          for (const m of t.members) this.emitType(m.type, newCont);
        } else if (!this.fwdEmitted[id] && id !== contId) {
          this.emitStructFwd(id, t);
          this.p(';\n\n');
          this.fwdEmitted[id] = 1;
        }
        if (topLevel) {
          this.emitStructDef(id, t, 0);
          this.p(';\n\n');
          this.emitState[id] = EMITTED;
        } else {
          this.emitState[id] = NOT_EMITTED;
        }
        break;
      case 'FUNC_PROTO':
        this.emitType(t.returnType, contId);
        for (const p of t.params) this.emitType(p.type, contId);
        break;
      default:
        break;
    }
  }

  private emitStructFwd(id: number, t: BtfComposite) {
    const kw = t.kind === 'STRUCT' ? 'struct' : 'union';
    this.p(`${kw}${t.name !== '' ? ' ' : ''}${this.typeName(id)}`);
  }

  private emitFwdDef(id: number, fwdKind: 'struct' | 'union') {
    this.p(`${fwdKind} ${this.typeName(id)}`);
  }

  private emitTypedefDef(id: number, target: number, lvl: number) {
    const name = this.identName(id);
    if (target === 0 && name === '__gnuc_va_list') {
      this.p('typedef __builtin_va_list __gnuc_va_list');
      return;
    }
    this.p('typedef ');
    this.emitTypeDecl(target, name, lvl);
  }

  private isStructPacked(t: BtfComposite): boolean {
    let maxAlign = 1;
    for (const m of t.members) {
      const align = this.btf.alignof(m.type);
      if (align && m.bitfieldSize === 0 && m.bitOffset % (8 * align) !== 0) return true;
      if (align > maxAlign) maxAlign = align;
    }
    return t.size % maxAlign !== 0;
  }

  private emitStructDef(id: number, t: BtfComposite, lvl: number) {
    const isStruct = t.kind === 'STRUCT';
    const align = this.btf.alignof(id);
    const packed = isStruct ? this.isStructPacked(t) : false;
    this.p(`${isStruct ? 'struct' : 'union'}${t.name !== '' ? ' ' : ''}${this.typeName(id)} {`);
    let off = 0;
    let prevBitfield = false;
    for (const m of t.members) {
      let mSz = m.bitfieldSize;
      const mOff = m.bitOffset;
      const mAlign = packed ? 1 : this.btf.alignof(m.type);
      const inBitfield = prevBitfield && mSz !== 0;
      this.emitBitPadding(off, mOff, mAlign, inBitfield, lvl + 1);
      this.p(`\n${pfx(lvl + 1)}`);
      this.emitTypeDecl(m.type, m.name, lvl + 1);
      if (mSz) {
        this.p(`: ${mSz}`);
        off = mOff + mSz;
        prevBitfield = true;
      } else {
        mSz = Math.max(0, this.sizeOrZero(m.type));
        off = mOff + mSz * 8;
        prevBitfield = false;
      }
      this.p(';');
    }
    if (isStruct) this.emitBitPadding(off, t.size * 8, align, false, lvl + 1);
    if (t.members.length || t.size) this.p(`\n${pfx(lvl)}}`);
    else this.p('}');
    if (packed) this.p(' __attribute__((packed))');
  }

  private sizeOrZero(id: number): number {
    try {
      return this.btf.sizeof(id);
    } catch {
      return 0;
    }
  }

  private emitBitPadding(
    curOff: number,
    nextOff: number,
    nextAlign: number,
    inBitfield: boolean,
    lvl: number,
  ) {
    if (curOff >= nextOff) return;
    const pads: [string, number][] = [
      ['long', this.ptrSize * 8],
      ['int', 32],
      ['short', 16],
      ['char', 8],
    ];
    let newOff = 0;
    let padBits = 0;
    let padType = '';
    for (const [name, bits] of pads) {
      padBits = bits;
      padType = name;
      newOff = roundup(curOff, padBits);
      if (newOff <= nextOff) break;
    }
    if (newOff > curOff && newOff <= nextOff) {
      if (
        inBitfield ||
        (newOff === nextOff && roundup(curOff, nextAlign * 8) !== newOff) ||
        (newOff !== nextOff && nextOff - newOff <= newOff - curOff)
      ) {
        this.p(`\n${pfx(lvl)}${padType}: ${inBitfield ? newOff - curOff : 0};`);
      }
      curOff = newOff;
    }
    while (curOff !== nextOff) {
      const bits = Math.min(nextOff - curOff, padBits);
      if (bits === padBits) {
        this.p(`\n${pfx(lvl)}${padType}: ${padBits};`);
        curOff += bits;
        continue;
      }
      for (let i = pads.length - 1; i >= 0; i--) {
        padType = pads[i][0];
        padBits = pads[i][1];
        if (padBits < bits) continue;
        this.p(`\n${pfx(lvl)}${padType}: ${bits};`);
        curOff += bits;
        break;
      }
    }
  }

  private emitEnumDef(id: number, t: BtfEnum | BtfEnum64, lvl: number) {
    this.p(`enum${t.name !== '' ? ' ' : ''}${this.typeName(id)}`);
    if (t.values.length === 0) return;
    this.p(' {');
    for (const v of t.values) {
      // enumerators share a namespace with typedef identifiers
      const dups = this.nameDups(this.identNames, v.name);
      const name = dups > 1 ? `${v.name}___${dups}` : v.name;
      let val: string;
      if (t.kind === 'ENUM64') {
        const b = v.value as bigint;
        val = t.signed ? `${BigInt.asIntN(64, b)}LL` : `${BigInt.asUintN(64, b)}ULL`;
      } else {
        val = String(v.value);
      }
      this.p(`\n${pfx(lvl + 1)}${name} = ${val},`);
    }
    this.p(`\n${pfx(lvl)}}`);
  }

  // ---- declarations ----

  private emitTypeDecl(id: number, fname: string, lvl: number) {
    const stack: number[] = [];
    for (let n = 0; ; n++) {
      if (n > 100000) throw new TsbpfError('btf', `declaration chain too long at type id ${id}`);
      stack.push(id);
      if (id === 0) break;
      const t = this.types[id];
      switch (t.kind) {
        case 'PTR':
        case 'VOLATILE':
        case 'CONST':
        case 'RESTRICT':
        case 'TYPE_TAG':
        case 'ARRAY':
          id = t.type;
          continue;
        case 'FUNC_PROTO':
          id = t.returnType;
          continue;
        default:
          break;
      }
      break;
    }
    this.emitTypeChain(stack, fname, lvl);
  }

  private emitMods(stack: number[]) {
    while (stack.length) {
      const t = this.types[stack[stack.length - 1]];
      if (t.kind === 'VOLATILE') this.p('volatile ');
      else if (t.kind === 'CONST') this.p('const ');
      else if (t.kind === 'RESTRICT') this.p('restrict ');
      else return;
      stack.pop();
    }
  }

  private dropMods(stack: number[]) {
    while (stack.length && isMod(this.types[stack[stack.length - 1]])) stack.pop();
  }

  private emitName(name: string, lastWasPtr: boolean) {
    this.p(name !== '' && !lastWasPtr ? ` ${name}` : name);
  }

  private emitTypeChain(stack: number[], fname: string, lvl: number) {
    let lastWasPtr = true;
    while (stack.length) {
      const id = stack.pop() as number;
      if (id === 0) {
        this.emitMods(stack);
        this.p('void');
        lastWasPtr = false;
        continue;
      }
      const t = this.types[id];
      switch (t.kind) {
        case 'INT':
        case 'FLOAT':
          this.emitMods(stack);
          this.p(t.name);
          break;
        case 'STRUCT':
        case 'UNION':
          this.emitMods(stack);
          if (t.name === '') this.emitStructDef(id, t, lvl);
          else this.emitStructFwd(id, t);
          break;
        case 'ENUM':
        case 'ENUM64':
          this.emitMods(stack);
          if (t.name === '') this.emitEnumDef(id, t, lvl);
          else this.p(`enum ${this.typeName(id)}`);
          break;
        case 'FWD':
          this.emitMods(stack);
          this.emitFwdDef(id, t.fwdKind);
          break;
        case 'TYPEDEF':
          this.emitMods(stack);
          this.p(this.identName(id));
          break;
        case 'PTR':
          this.p(lastWasPtr ? '*' : ' *');
          break;
        case 'VOLATILE':
          this.p(' volatile');
          break;
        case 'CONST':
          this.p(' const');
          break;
        case 'RESTRICT':
          this.p(' restrict');
          break;
        case 'TYPE_TAG':
          this.emitMods(stack);
          this.p(` __attribute__((btf_type_tag("${t.name}")))`);
          break;
        case 'ARRAY': {
          this.dropMods(stack);
          if (stack.length === 0) {
            this.emitName(fname, lastWasPtr);
            this.p(`[${t.nelems}]`);
            return;
          }
          const next = this.types[stack[stack.length - 1]];
          const multidim = next.kind === 'ARRAY';
          if (fname !== '' && !lastWasPtr) this.p(' ');
          if (!multidim) this.p('(');
          this.emitTypeChain(stack, fname, lvl);
          if (!multidim) this.p(')');
          this.p(`[${t.nelems}]`);
          return;
        }
        case 'FUNC_PROTO': {
          this.dropMods(stack);
          if (stack.length) {
            this.p(' (');
            this.emitTypeChain(stack, fname, lvl);
            this.p(')');
          } else {
            this.emitName(fname, lastWasPtr);
          }
          this.p('(');
          const ps = t.params;
          if (ps.length === 0 || (ps.length === 1 && ps[0].type === 0)) {
            this.p('void)');
            return;
          }
          for (let i = 0; i < ps.length; i++) {
            if (i > 0) this.p(', ');
            if (i === ps.length - 1 && ps[i].type === 0) {
              this.p('...');
              break;
            }
            this.emitTypeDecl(ps[i].type, ps[i].name, lvl);
          }
          this.p(')');
          return;
        }
        default:
          // unexpected kind in a declaration chain (libbpf warns and stops)
          return;
      }
      lastWasPtr = t.kind === 'PTR';
    }
    this.emitName(fname, lastWasPtr);
  }
}

function roundup(x: number, y: number): number {
  return Math.ceil(x / y) * y;
}

/**
 * The C header `bpftool btf dump file X format c` prints (vmlinux.h), or with `bare` just the type
 * definitions.
 */
export function dumpBtfC(btf: Btf, options: CDumpOptions = {}): string {
  const d = new CDumper(btf, options.maxLength ?? 64 * 1024 * 1024 + 64 * btf.types.length);
  const head = options.bare
    ? ''
    : '#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n' +
      '#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n' +
      '#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n' +
      '#endif\n\n';
  try {
    if (options.ids) for (const id of options.ids) d.dumpType(id);
    else for (let id = 1; id < btf.types.length; id++) d.dumpType(id);
  } catch (e) {
    // a hand-made graph nested deeper than the JS stack: refuse it like any other bad input
    if (e instanceof RangeError)
      throw new TsbpfError('btf', `type graph nests too deeply to dump as C (${e.message})`);
    throw e;
  }
  const tail = options.bare
    ? ''
    : '#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n#endif /* __VMLINUX_H__ */\n';
  return head + d.text() + tail;
}
