/**
 * The generated WebAssembly as text: a small printer over the function bodies the compiler wrote
 * (folded-free, one instruction per line, indented by block depth), with each eBPF instruction in
 * a comment where its code starts — what `bpftool prog dump jited` shows for native code.
 */
import { formatInsn } from '../../isa/disasm.js';
import type { Insn } from '../../isa/insn.js';
import { type CompiledProgram, GLOBAL_NAMES } from './compile.js';
import { I32, I64, Op } from './wasm.js';

const NAMES: Record<number, string> = {};
for (const [k, v] of Object.entries(Op)) NAMES[v] = k.replace(/^(i32|i64|f64|local|global)_/, '$1.');

const TYPE: Record<number, string> = { [I32]: 'i32', [I64]: 'i64', 124: 'f64' };

class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  u8(): number {
    return this.b[this.pos++];
  }
  u32(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      const byte = this.b[this.pos++];
      result += (byte & 0x7f) * mul;
      mul *= 128;
      if ((byte & 0x80) === 0) return result;
    }
  }
  s64(): bigint {
    let result = 0n;
    let shift = 0n;
    let byte: number;
    do {
      byte = this.b[this.pos++];
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
    } while (byte & 0x80);
    if (byte & 0x40) result -= 1n << shift;
    return result;
  }
}

/** Renders the module's functions. */
export function renderWat(compiled: CompiledProgram, source: readonly Insn[]): string {
  const slotInsn = new Map<number, Insn>();
  let pc = 0;
  for (const insn of source) {
    slotInsn.set(pc, insn);
    pc += insn.code === 0x18 ? 2 : 1;
  }
  const funcName = new Map<number, string>();
  for (let i = 0; i < compiled.importNames.length; i++) funcName.set(i, `$host.${compiled.importNames[i]}`);
  for (const f of compiled.functions) funcName.set(f.index, `$${f.name}`);
  for (const [index, name] of compiled.extraNames) funcName.set(index, name);
  const out: string[] = [];
  out.push(
    `;; tsbpf JIT: ${compiled.stats.insns} eBPF insns -> ${compiled.bytes.length} bytes of WebAssembly, ` +
      `${compiled.functions.length} function(s), ${compiled.stats.blocks} basic blocks`,
  );
  out.push('(module');
  out.push('  (import "host" "memory" (memory 0))');
  for (const f of compiled.functions) {
    const params = f.params.map((t) => TYPE[t]).join(' ');
    const results = f.kind === 'entry' ? 'i64 f64' : 'i64';
    out.push(`  (func $${f.name} (param ${params}) (result ${results})  ;; entry pc ${f.entryPc}, ${f.mode}`);
    out.push(`    (local ${f.locals.map((t) => TYPE[t]).join(' ')})`);
    const marks = new Map<number, number[]>();
    for (let i = 0; i < f.marks.length; i += 2) {
      const list = marks.get(f.marks[i]) ?? [];
      list.push(f.marks[i + 1]);
      marks.set(f.marks[i], list);
    }
    const r = new Reader(f.body);
    let depth = 2;
    while (r.pos < f.body.length) {
      const at = r.pos;
      for (const p of marks.get(at) ?? []) {
        const insn = slotInsn.get(p);
        out.push(`${'  '.repeat(depth)};; ${String(p).padStart(4)}: ${insn ? formatInsn(insn) : '?'}`);
      }
      const o = r.u8();
      let text = NAMES[o] ?? `0x${o.toString(16)}`;
      switch (o) {
        case Op.block:
        case Op.loop:
        case Op.if: {
          const t = r.u8();
          if (t !== 0x40) text += ` (result ${TYPE[t]})`;
          out.push(`${'  '.repeat(depth)}${text}`);
          depth++;
          continue;
        }
        case Op.else:
          out.push(`${'  '.repeat(depth - 1)}else`);
          continue;
        case Op.end:
          depth--;
          if (r.pos === f.body.length) {
            out.push('  )');
            continue;
          }
          out.push(`${'  '.repeat(depth)}end`);
          continue;
        case Op.br:
        case Op.br_if:
        case Op.local_get:
        case Op.local_set:
        case Op.local_tee:
          text += ` ${r.u32()}`;
          break;
        case Op.global_get:
        case Op.global_set: {
          const g = r.u32();
          text += ` $${GLOBAL_NAMES[g] ?? g}`;
          break;
        }
        case Op.call:
          text += ` ${funcName.get(r.u32()) ?? '?'}`;
          break;
        case Op.call_indirect:
          text += ` (type ${r.u32()}) (table ${r.u32()})`;
          break;
        case Op.br_table: {
          const n = r.u32();
          const targets: number[] = [];
          for (let i = 0; i <= n; i++) targets.push(r.u32());
          text += ` ${targets.slice(0, 16).join(' ')}${n > 15 ? ` ... (${n + 1} targets)` : ''}`;
          break;
        }
        case Op.i32_const:
        case Op.i64_const:
          text += ` ${r.s64()}`;
          break;
        case Op.prefix_fc: {
          const sub = r.u32();
          if (sub === 11) {
            r.u8();
            text = 'memory.fill';
          } else text = `0xfc ${sub}`;
          break;
        }
        default:
          if (o >= Op.i32_load && o <= Op.i64_store32) {
            const align = r.u32();
            const offset = r.u32();
            text += `${offset ? ` offset=${offset}` : ''}${align ? ` align=${1 << align}` : ''}`;
          }
      }
      out.push(`${'  '.repeat(depth)}${text}`);
    }
  }
  out.push(')');
  return `${out.join('\n')}\n`;
}
