/**
 * Where a V8 heap snapshot's memory is: retained sizes from the dominator tree, shown as the
 * biggest retainers with the path that holds them, and self size by constructor.
 *
 *   node --max-old-space-size=8192 dist/bench/heap-summary.js FILE.heapsnapshot [--top N] [--depth D]
 *        [--under NAME [--levels L]]
 *
 * --under NAME: for every object whose constructor is NAME (e.g. CalcGraph), what it retains
 * broken down by the path of field names below it (L levels, default 3; element and Map
 * indices shown as *), summed over all such objects.
 *
 * Snapshots come from `node --heapsnapshot-signal=SIGUSR2` (bench/agent-latency.js
 * --heap-snapshot DIR) or v8.writeHeapSnapshot(). Weak edges do not retain. The dominator tree
 * is Lengauer–Tarjan over the strong edges from the snapshot's root.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/**
 * Reads a snapshot without making the whole file one string (V8 refuses strings over ~512 MiB;
 * the agent's snapshot at 100,000 endpoints is ~630 MB): the metadata and the string table are
 * parsed as JSON, the node and edge arrays (non-negative integers) straight from the bytes.
 */
export function loadSnapshot(file: string): Snapshot {
  const buf = readFileSync(file);
  const at = (pat: string, from = 0): number => {
    const i = buf.indexOf(pat, from);
    if (i < 0) throw new Error(`${file}: no ${pat} (not a V8 heap snapshot?)`);
    return i;
  };
  const nodesAt = at('"nodes":');
  const head = JSON.parse(`${buf.toString('utf8', 0, nodesAt).replace(/,\s*$/, '')}}`) as Pick<Snapshot, 'snapshot'>;
  const ints = (from: number): number[] => {
    const out: number[] = [];
    let i = buf.indexOf(0x5b, from) + 1; // [
    let v = 0;
    let inNum = false;
    for (; i < buf.length; i++) {
      const c = buf[i]!;
      if (c >= 0x30 && c <= 0x39) {
        v = v * 10 + c - 0x30;
        inNum = true;
        continue;
      }
      if (inNum) out.push(v);
      v = 0;
      inNum = false;
      if (c === 0x5d) return out; // ]
    }
    throw new Error(`${file}: unterminated array`);
  };
  const nodes = ints(nodesAt);
  const edges = ints(at('"edges":', nodesAt));
  const stringsAt = buf.indexOf(0x5b, at('"strings":', nodesAt));
  const stringsEnd = buf.lastIndexOf(0x5d);
  const strings = JSON.parse(buf.toString('utf8', stringsAt, stringsEnd + 1)) as string[];
  return { snapshot: head.snapshot, nodes, edges, strings };
}

export interface HeapNode { index: number; type: string; name: string; selfSize: number; retained: number }

export class HeapGraph {
  readonly n: number;
  readonly type: Uint8Array;
  readonly name: Uint32Array;
  readonly selfSize: Float64Array;
  /** CSR of strong edges: targets and names of node i are [edgeStart[i], edgeStart[i+1]). */
  readonly edgeStart: Uint32Array;
  readonly edgeTo: Uint32Array;
  readonly edgeName: string[];
  readonly dom: Int32Array;
  readonly retained: Float64Array;

  constructor(private readonly s: Snapshot) {
    const m = s.snapshot.meta;
    const nf = m.node_fields.length;
    const ef = m.edge_fields.length;
    const [fType, fName, fSelf, fEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => m.node_fields.indexOf(f)) as [number, number, number, number];
    const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => m.edge_fields.indexOf(f)) as [number, number, number];
    const edgeTypes = m.edge_types[0];
    const weak = edgeTypes.indexOf('weak');
    const named = new Set(['context', 'property', 'internal', 'shortcut'].map((t) => edgeTypes.indexOf(t)));
    this.n = s.nodes.length / nf;
    this.type = new Uint8Array(this.n);
    this.name = new Uint32Array(this.n);
    this.selfSize = new Float64Array(this.n);
    this.edgeStart = new Uint32Array(this.n + 1);
    const to: number[] = [];
    this.edgeName = [];
    let e = 0;
    for (let i = 0; i < this.n; i++) {
      const base = i * nf;
      this.type[i] = s.nodes[base + fType]!;
      this.name[i] = s.nodes[base + fName]!;
      this.selfSize[i] = s.nodes[base + fSelf]!;
      this.edgeStart[i] = to.length;
      const count = s.nodes[base + fEdges]!;
      for (let k = 0; k < count; k++, e++) {
        const eb = e * ef;
        const t = s.edges[eb + eType]!;
        if (t === weak) continue;
        const nm = s.edges[eb + eName]!;
        to.push(s.edges[eb + eTo]! / nf);
        this.edgeName.push(named.has(t) ? s.strings[nm]! : `[${nm}]`);
      }
    }
    this.edgeStart[this.n] = to.length;
    this.edgeTo = Uint32Array.from(to);
    this.dom = this.dominators();
    this.retained = Float64Array.from(this.selfSize);
    this.order.slice().reverse().forEach((v) => { if (v !== 0 && this.dom[v]! >= 0) this.retained[this.dom[v]!]! += this.retained[v]!; });
  }

  /** Nodes in DFS preorder from the root (reachable only). */
  private order: number[] = [];

  private dominators(): Int32Array {
    const n = this.n;
    const dfn = new Int32Array(n).fill(-1);
    const parent: number[] = [];
    const vert: number[] = [];
    // Iterative DFS.
    const stack: number[] = [0];
    const iter: number[] = [this.edgeStart[0]!];
    dfn[0] = 0;
    vert.push(0);
    parent.push(-1);
    while (stack.length > 0) {
      const v = stack[stack.length - 1]!;
      const it = iter[iter.length - 1]!;
      if (it >= this.edgeStart[v + 1]!) { stack.pop(); iter.pop(); continue; }
      iter[iter.length - 1] = it + 1;
      const w = this.edgeTo[it]!;
      if (dfn[w] === -1) {
        dfn[w] = vert.length;
        vert.push(w);
        parent.push(dfn[v]!);
        stack.push(w);
        iter.push(this.edgeStart[w]!);
      }
    }
    this.order = vert;
    const r = vert.length;
    // Predecessors in DFS-number space.
    const predCount = new Uint32Array(r + 1);
    for (let i = 0; i < r; i++) {
      const v = vert[i]!;
      for (let k = this.edgeStart[v]!; k < this.edgeStart[v + 1]!; k++) predCount[dfn[this.edgeTo[k]!]! + 1]!++;
    }
    for (let i = 0; i < r; i++) predCount[i + 1]! += predCount[i]!;
    const preds = new Int32Array(predCount[r]!);
    const fill = predCount.slice(0, r);
    for (let i = 0; i < r; i++) {
      const v = vert[i]!;
      for (let k = this.edgeStart[v]!; k < this.edgeStart[v + 1]!; k++) preds[fill[dfn[this.edgeTo[k]!]!]!++] = i;
    }
    const semi = Int32Array.from({ length: r }, (_, i) => i);
    const idom = new Int32Array(r).fill(-1);
    const ancestor = new Int32Array(r).fill(-1);
    const label = Int32Array.from({ length: r }, (_, i) => i);
    const bucketHead = new Int32Array(r).fill(-1);
    const bucketNext = new Int32Array(r).fill(-1);
    const chain: number[] = [];
    const evalNode = (v: number): number => {
      if (ancestor[v] === -1) return v;
      chain.length = 0;
      let x = v;
      while (ancestor[ancestor[x]!] !== -1) { chain.push(x); x = ancestor[x]!; }
      for (let k = chain.length - 1; k >= 0; k--) {
        const y = chain[k]!;
        const a = ancestor[y]!;
        if (semi[label[a]!]! < semi[label[y]!]!) label[y] = label[a]!;
        ancestor[y] = ancestor[a]!;
      }
      return label[v]!;
    };
    for (let w = r - 1; w >= 1; w--) {
      for (let k = predCount[w]!; k < predCount[w + 1]!; k++) {
        const u = evalNode(preds[k]!);
        if (semi[u]! < semi[w]!) semi[w] = semi[u]!;
      }
      const sw = semi[w]!;
      bucketNext[w] = bucketHead[sw]!;
      bucketHead[sw] = w;
      const p = parent[w]!;
      ancestor[w] = p;
      for (let v = bucketHead[p]!; v !== -1; v = bucketNext[v]!) {
        const u = evalNode(v);
        idom[v] = semi[u]! < semi[v]! ? u : p;
      }
      bucketHead[p] = -1;
    }
    for (let w = 1; w < r; w++) if (idom[w] !== semi[w]) idom[w] = idom[idom[w]!]!;
    const dom = new Int32Array(n).fill(-1);
    for (let w = 1; w < r; w++) dom[vert[w]!] = vert[idom[w]!]!;
    return dom;
  }

  label(i: number): string {
    const t = this.s.snapshot.meta.node_types[0][this.type[i]!]!;
    const nm = this.s.strings[this.name[i]!] ?? '';
    if (t === 'object' || t === 'closure') return nm || t;
    if (t === 'string' || t === 'concatenated string' || t === 'sliced string') return `(string)`;
    return `(${t}${nm ? ` ${nm.slice(0, 40)}` : ''})`;
  }

  /** The name of an edge from a to b, if any. */
  edgeBetween(a: number, b: number): string | undefined {
    for (let k = this.edgeStart[a]!; k < this.edgeStart[a + 1]!; k++) if (this.edgeTo[k] === b) return this.edgeName[k];
    return undefined;
  }

  /** "Root … > CalcGraph .ctxs > Map .table > …": the dominator chain, at most `depth` steps. */
  path(i: number, depth: number): string {
    const parts: string[] = [];
    let v = i;
    for (let k = 0; k < depth && v > 0; k++) {
      const d = this.dom[v]!;
      if (d < 0) break;
      const e = this.edgeBetween(d, v);
      parts.unshift(`${this.label(v)}${e === undefined ? '' : ` ←${e}`}`);
      v = d;
    }
    return parts.join(' / ');
  }
}

/** Retained size below every `anchor` object, by the first `levels` field names of the dominator path. */
function breakdown(g: HeapGraph, anchor: string, levels: number, top: number): void {
  // Children lists of the dominator tree.
  const head = new Int32Array(g.n).fill(-1);
  const next = new Int32Array(g.n).fill(-1);
  for (let v = 1; v < g.n; v++) { const d = g.dom[v]!; if (d >= 0) { next[v] = head[d]!; head[d] = v; } }
  const sums = new Map<string, number>();
  let anchors = 0;
  const stack: { v: number; key: string; depth: number }[] = [];
  for (let a = 0; a < g.n; a++) {
    if (g.label(a) !== anchor || (g.dom[a]! < 0 && a !== 0)) continue;
    anchors++;
    sums.set('(self)', (sums.get('(self)') ?? 0) + g.selfSize[a]!);
    for (let c = head[a]!; c !== -1; c = next[c]!) stack.push({ v: c, key: '', depth: 0 });
    while (stack.length > 0) {
      const { v, key, depth } = stack.pop()!;
      const d = g.dom[v]!;
      const e = g.edgeBetween(d, v);
      const step = e === undefined ? '~' : /^\[\d+\]$/.test(e) || /^\d+$/.test(e) ? '*' : e;
      const k = depth < levels ? (key ? `${key}.${step}` : step) : key;
      sums.set(k, (sums.get(k) ?? 0) + g.selfSize[v]!);
      for (let c = head[v]!; c !== -1; c = next[c]!) stack.push({ v: c, key: k, depth: depth + 1 });
    }
  }
  // Totals per prefix (a key's figure includes everything below it).
  const totals = new Map<string, number>();
  for (const [k, s] of sums) {
    const parts = k.split('.');
    for (let i = 1; i <= parts.length; i++) { const p = parts.slice(0, i).join('.'); totals.set(p, (totals.get(p) ?? 0) + s); }
  }
  process.stdout.write(`${anchors} × ${anchor}; retained MiB by field path (each line includes the lines below it)\n`);
  for (const [k, s] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${mib(s).padStart(8)}  ${k}\n`);
}

function mib(x: number): string {
  return (x / 1048576).toFixed(1);
}

function main(argv: string[]): void {
  const file = argv[0];
  if (!file) throw new Error('usage: heap-summary FILE.heapsnapshot [--top N] [--depth D]');
  const opt = (flag: string, def: number) => {
    const i = argv.indexOf(flag);
    const v = i >= 0 ? Number(argv[i + 1]) : def;
    if (!Number.isFinite(v) || v < 1) throw new Error(`${flag}: "${argv[i + 1]}" is not a number ≥ 1`);
    return v;
  };
  const top = opt('--top', 40);
  const depth = opt('--depth', 6);
  const g = new HeapGraph(loadSnapshot(file));
  const under = argv.indexOf('--under');
  if (under >= 0) {
    const anchor = argv[under + 1];
    if (!anchor) throw new Error('--under: needs a constructor name');
    breakdown(g, anchor, opt('--levels', 3), top);
    return;
  }
  let total = 0;
  for (let i = 0; i < g.n; i++) total += g.selfSize[i]!;
  process.stdout.write(`${g.n} nodes, ${mib(total)} MiB self size in all, ${mib(g.retained[0]!)} MiB reachable from the root\n\n`);

  // Biggest retainers that are not just the sum of one child: a node is shown when no child
  // retains more than 80 % of it.
  const idx = Array.from({ length: g.n }, (_, i) => i).filter((i) => i !== 0 && g.retained[i]! > 256 * 1024);
  const biggestChild = new Float64Array(g.n);
  for (const i of idx) { const d = g.dom[i]!; if (d >= 0 && g.retained[i]! > biggestChild[d]!) biggestChild[d] = g.retained[i]!; }
  const shown = idx.filter((i) => biggestChild[i]! < 0.8 * g.retained[i]!).sort((a, b) => g.retained[b]! - g.retained[a]!).slice(0, top);
  process.stdout.write(`retained MiB  self MiB  holder (dominator chain, innermost last)\n`);
  for (const i of shown) process.stdout.write(`${mib(g.retained[i]!).padStart(12)}  ${mib(g.selfSize[i]!).padStart(8)}  ${g.path(i, depth)}\n`);

  const byCtor = new Map<string, { self: number; count: number }>();
  for (let i = 0; i < g.n; i++) {
    if (g.dom[i]! < 0 && i !== 0) continue;
    const k = g.label(i);
    const e = byCtor.get(k) ?? { self: 0, count: 0 };
    e.self += g.selfSize[i]!;
    e.count++;
    byCtor.set(k, e);
  }
  process.stdout.write(`\nself MiB      count  type or constructor\n`);
  for (const [k, e] of [...byCtor].sort((a, b) => b[1].self - a[1].self).slice(0, top)) {
    process.stdout.write(`${mib(e.self).padStart(8)} ${String(e.count).padStart(10)}  ${k}\n`);
  }
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`heap-summary: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
