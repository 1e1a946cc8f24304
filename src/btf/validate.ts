import { TsbpfError } from '../errors.js';
import type { BtfType } from './types.js';

function refCount(t: BtfType): number {
  switch (t.kind) {
    case 'PTR':
    case 'TYPEDEF':
    case 'VOLATILE':
    case 'CONST':
    case 'RESTRICT':
    case 'TYPE_TAG':
    case 'FUNC':
    case 'VAR':
    case 'DECL_TAG':
      return 1;
    case 'ARRAY':
      return 2;
    case 'STRUCT':
    case 'UNION':
      return t.members.length;
    case 'FUNC_PROTO':
      return 1 + t.params.length;
    case 'DATASEC':
      return t.vars.length;
    default:
      return 0;
  }
}

function ref(t: BtfType, i: number): number {
  switch (t.kind) {
    case 'PTR':
    case 'TYPEDEF':
    case 'VOLATILE':
    case 'CONST':
    case 'RESTRICT':
    case 'TYPE_TAG':
    case 'FUNC':
    case 'VAR':
    case 'DECL_TAG':
      return t.type;
    case 'ARRAY':
      return i === 0 ? t.type : t.indexType;
    case 'STRUCT':
    case 'UNION':
      return t.members[i].type;
    case 'FUNC_PROTO':
      return i === 0 ? t.returnType : t.params[i - 1].type;
    case 'DATASEC':
      return t.vars[i].type;
    default:
      return 0;
  }
}

const isNamedComposite = (t: BtfType) => (t.kind === 'STRUCT' || t.kind === 'UNION') && t.name !== '';

/**
 * Checks a type graph so that every walk over it terminates: every referenced id exists, ids match
 * positions, and every cycle passes both through a pointer and through a named struct/union (the
 * only cycles C can express, e.g. `struct list { struct list *next; }`). Throws TsbpfError('btf').
 * Types below `startId` (a split BTF's base) are trusted.
 */
export function validateTypes(types: readonly BtfType[], startId = 1): void {
  const n = types.length;
  for (let id = startId; id < n; id++) {
    const t = types[id];
    if (t.id !== id) throw new TsbpfError('btf', `type at index ${id} has id ${t.id}`);
    const c = refCount(t);
    for (let i = 0; i < c; i++) {
      const r = ref(t, i);
      if (!Number.isInteger(r) || r < 0 || r >= n) {
        throw new TsbpfError(
          'btf',
          `type [${id}] ${t.kind} refers to type id ${r}, out of range (${n} types)`,
        );
      }
    }
    if (t.kind === 'FUNC' && types[t.type].kind !== 'FUNC_PROTO') {
      throw new TsbpfError(
        'btf',
        `type [${id}] FUNC refers to [${t.type}] ${types[t.type].kind}, not a FUNC_PROTO`,
      );
    }
    if (t.kind === 'DATASEC') {
      for (const v of t.vars) {
        if (types[v.type].kind !== 'VAR' && types[v.type].kind !== 'FUNC') {
          throw new TsbpfError('btf', `DATASEC [${id}] entry refers to [${v.type}] ${types[v.type].kind}`);
        }
      }
    }
  }
  // 1. Without the edges leaving pointers, the graph must be acyclic (no struct contains itself,
  //    no typedef/modifier/array loop).
  findCycle(
    types,
    startId,
    (t) => t.kind !== 'PTR',
    () => true,
    'a cycle that does not pass through a pointer',
  );
  // 2. Without named structs/unions, the graph must be acyclic (no pointer-only loop, no loop
  //    through anonymous types, which C cannot declare).
  findCycle(
    types,
    startId,
    () => true,
    (t) => !isNamedComposite(t),
    'a cycle that does not pass through a named struct or union',
  );
}

function findCycle(
  types: readonly BtfType[],
  startId: number,
  followsEdges: (t: BtfType) => boolean,
  included: (t: BtfType) => boolean,
  what: string,
): void {
  const n = types.length;
  // 0 white, 1 on stack, 2 done
  const color = new Uint8Array(n);
  for (let i = 0; i < startId && i < n; i++) color[i] = 2;
  const stackIds = new Int32Array(n);
  const stackEdge = new Int32Array(n);
  for (let root = startId; root < n; root++) {
    if (color[root] !== 0 || !included(types[root])) continue;
    let sp = 0;
    stackIds[0] = root;
    stackEdge[0] = 0;
    color[root] = 1;
    while (sp >= 0) {
      const id = stackIds[sp];
      const t = types[id];
      const c = followsEdges(t) ? refCount(t) : 0;
      const e = stackEdge[sp];
      if (e >= c) {
        color[id] = 2;
        sp--;
        continue;
      }
      stackEdge[sp] = e + 1;
      const next = ref(t, e);
      if (next === 0 || color[next] === 2 || !included(types[next])) continue;
      if (color[next] === 1) {
        throw new TsbpfError(
          'btf',
          `type graph has ${what}, at type id ${next} (reached from [${id}] ${t.kind})`,
        );
      }
      color[next] = 1;
      sp++;
      stackIds[sp] = next;
      stackEdge[sp] = 0;
    }
  }
}
