/**
 * Structured control flow from an arbitrary control-flow graph, for WebAssembly.
 *
 * Reducible graphs use Norman Ramsey's "Beyond Relooper" translation (ICFP 2022): walk the
 * dominator tree; a node with a back edge into it becomes a `loop`; the dominator-tree children
 * with two or more forward predecessors ("merge nodes") each get a `block` that ends just before
 * them, so every forward branch to them is a `br` out of a block and every back edge is a `br` to
 * a `loop`; any other successor is emitted inline. Irreducible graphs (a retreating edge whose
 * target does not dominate its source) fall back to a dispatcher: one `loop` around a `br_table`
 * over every node, with a label local saying where to go next; fall-through into the next node in
 * layout order needs no dispatch.
 *
 * Everything is iterative (explicit work stacks), so programs of any size and depth compile
 * without growing the JavaScript stack.
 */
import { type CodeWriter, Op } from './wasm.js';

export interface GraphEmitter {
  /**
   * Emits the code of node x. Nodes without successors must end the function or trap;
   * nodes with two successors [taken, fallthrough] are followed by cond(x).
   */
  body(x: number): void;
  /** Pushes an i32: non-zero to go to succ[x][0], zero to go to succ[x][1]. */
  cond(x: number): void;
  /**
   * How many copies of node x's code a loop of x alone (x is one of its own two successors) may
   * run per trip back to the loop's start: 1 (the default) or more, each copy with its own exit
   * test, so the semantics are exactly the loop's. Fewer back edges: fewer of the engine's
   * interrupt checks, more room for its scheduler.
   */
  unroll?(x: number): number;
}

export interface StructureResult {
  /** 'structured' (blocks and loops) or 'dispatch' (loop + br_table, for irreducible graphs). */
  mode: 'structured' | 'dispatch';
  loops: number;
}

/**
 * Writes the control flow of a graph (nodes 0..n-1, entry 0, all reachable from 0; each node has
 * 0, 1 or 2 distinct successors) into w, at the top level of a function body. `labelLocal` is a
 * zero-initialised i32 local the dispatcher may use.
 */
export function structure(
  w: CodeWriter,
  succ: readonly (readonly number[])[],
  em: GraphEmitter,
  labelLocal: number,
  forceDispatch = false,
): StructureResult {
  const n = succ.length;
  // Reverse postorder by iterative DFS.
  const rpo = new Int32Array(n).fill(-1);
  const order: number[] = new Array(n);
  {
    const visited = new Uint8Array(n);
    const stack: number[] = [0];
    const edge: number[] = [0];
    visited[0] = 1;
    let k = n;
    while (stack.length > 0) {
      const top = stack.length - 1;
      const x = stack[top];
      const e = edge[top];
      const s = succ[x];
      if (e < s.length) {
        edge[top] = e + 1;
        const y = s[e];
        if (!visited[y]) {
          visited[y] = 1;
          stack.push(y);
          edge.push(0);
        }
      } else {
        stack.pop();
        edge.pop();
        k--;
        rpo[x] = k;
        order[k] = x;
      }
    }
    if (k !== 0) throw new Error(`structure: ${k} nodes are unreachable`);
  }

  const preds: number[][] = Array.from({ length: n }, () => []);
  for (let x = 0; x < n; x++) for (const y of succ[x]) preds[y].push(x);

  // Dominators: Cooper, Harvey and Kennedy's iterative algorithm over reverse postorder.
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = 1; i < n; i++) {
      const b = order[i];
      let nd = -1;
      for (const p of preds[b]) {
        if (idom[p] === -1) continue;
        if (nd === -1) {
          nd = p;
          continue;
        }
        let a = p;
        let c = nd;
        while (a !== c) {
          while (rpo[a] > rpo[c]) a = idom[a];
          while (rpo[c] > rpo[a]) c = idom[c];
        }
        nd = a;
      }
      if (idom[b] !== nd) {
        idom[b] = nd;
        changed = true;
      }
    }
  }
  const dominates = (a: number, b: number): boolean => {
    for (;;) {
      if (b === a) return true;
      if (b === 0) return false;
      b = idom[b];
    }
  };

  const loopHeader = new Uint8Array(n);
  const forwardPreds = new Int32Array(n);
  let reducible = true;
  let loops = 0;
  for (let x = 0; x < n; x++) {
    for (const y of succ[x]) {
      if (rpo[y] <= rpo[x]) {
        if (!dominates(y, x)) reducible = false;
        if (!loopHeader[y]) loops++;
        loopHeader[y] = 1;
      } else forwardPreds[y]++;
    }
  }

  if (!reducible || forceDispatch) {
    dispatch(w, succ, em, labelLocal, order, rpo);
    return { mode: 'dispatch', loops };
  }

  // Merge children of each node in the dominator tree, highest reverse-postorder number first.
  const mergeKids: number[][] = Array.from({ length: n }, () => []);
  for (let i = n - 1; i >= 1; i--) {
    const y = order[i];
    if (forwardPreds[y] >= 2) mergeKids[idom[y]].push(y);
  }

  const loopPos = new Int32Array(n).fill(-1);
  const blockPos = new Int32Array(n).fill(-1);
  const work: (() => void)[] = [];
  const end = () => w.op(Op.end);

  const isBr = (x: number, y: number) => rpo[y] <= rpo[x] || forwardPreds[y] >= 2;
  const brIndex = (x: number, y: number, d: number) => d - 1 - (rpo[y] <= rpo[x] ? loopPos[y] : blockPos[y]);

  const branch = (x: number, y: number, d: number) => {
    if (isBr(x, y)) w.br(brIndex(x, y, d));
    else work.push(() => doTree(y, d));
  };

  const code = (x: number, d: number) => {
    em.body(x);
    const s = succ[x];
    if (s.length === 0) return;
    if (s.length === 1) {
      branch(x, s[0], d);
      return;
    }
    const [t, f] = s;
    const copies = (t === x) !== (f === x) && em.unroll ? em.unroll(x) : 1;
    if (copies > 1) {
      // body; (cond; exit if leaving; body) x (copies - 1); cond; br_if loop — then the exit
      const back = t === x;
      w.block();
      for (let k = 1; k < copies; k++) {
        em.cond(x);
        if (back) w.op(Op.i32_eqz);
        w.brIf(0);
        em.body(x);
      }
      em.cond(x);
      if (!back) w.op(Op.i32_eqz);
      w.brIf(brIndex(x, x, d + 1));
      w.op(Op.end);
      branch(x, back ? f : t, d);
      return;
    }
    em.cond(x);
    if (isBr(x, t)) {
      w.brIf(brIndex(x, t, d));
      branch(x, f, d);
    } else if (isBr(x, f)) {
      w.op(Op.i32_eqz);
      w.brIf(brIndex(x, f, d));
      branch(x, t, d);
    } else {
      w.block(Op.if);
      work.push(end);
      work.push(() => branch(x, f, d + 1));
      work.push(() => w.op(Op.else));
      work.push(() => branch(x, t, d + 1));
    }
  };

  const within = (x: number, ys: number[], i: number, d: number) => {
    if (i < ys.length) {
      const y = ys[i];
      w.block();
      blockPos[y] = d;
      work.push(() => doTree(y, d));
      work.push(end);
      work.push(() => within(x, ys, i + 1, d + 1));
    } else code(x, d);
  };

  const doTree = (x: number, d: number) => {
    if (loopHeader[x]) {
      w.block(Op.loop);
      loopPos[x] = d;
      work.push(end);
      within(x, mergeKids[x], 0, d + 1);
    } else within(x, mergeKids[x], 0, d);
  };

  work.push(() => doTree(0, 0));
  while (work.length > 0) (work.pop() as () => void)();
  return { mode: 'structured', loops };
}

/** The irreducible fallback: loop { block ... block { br_table } node0 } node1 ... }. */
function dispatch(
  w: CodeWriter,
  succ: readonly (readonly number[])[],
  em: GraphEmitter,
  label: number,
  order: number[],
  rpo: Int32Array,
): void {
  const m = order.length;
  // Node 0 (the entry) is first in reverse postorder, and the label local starts at 0.
  w.block(Op.loop);
  for (let i = 0; i < m; i++) w.block();
  w.get(label);
  w.op(Op.br_table);
  w.u32(m);
  for (let j = 0; j < m; j++) w.u32(j);
  w.u32(0);
  const go = (y: number, d: number) => {
    w.i32c(rpo[y]);
    w.set(label);
    w.br(d - 1); // the loop is label 0 of this construct
  };
  for (let i = 0; i < m; i++) {
    w.op(Op.end);
    const d = 1 + (m - 1 - i); // enclosing labels: the loop and blocks i+1..m-1
    const x = order[i];
    em.body(x);
    const s = succ[x];
    if (s.length === 0) continue;
    if (s.length === 1) {
      if (rpo[s[0]] !== i + 1) go(s[0], d);
      continue;
    }
    em.cond(x);
    w.block(Op.if);
    go(s[0], d + 1);
    w.op(Op.end);
    if (rpo[s[1]] !== i + 1) go(s[1], d);
  }
  w.op(Op.end); // loop
}
