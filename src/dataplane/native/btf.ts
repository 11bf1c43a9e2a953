/**
 * BTF layout checker: reads a struct's layout from a compiled .bpf.o (`bpftool -j btf dump file`)
 * and compares it with a TypeScript layout, so every map codec can be tested against the C it
 * mirrors. Accepts any layout shaped { size, fields: [{ name, offset, size }] } (StructCodec's
 * `.layout`, or another codec's). Anonymous struct/union members are flattened; bitfields are
 * reported, not compared.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { BpfError } from './errors';

export interface LayoutLike {
  size: number;
  fields: readonly { name: string; offset: number; size: number }[];
}

export interface BtfMember { name: string; offset: number; size: number; bitfield?: number }
export interface BtfStruct { name: string; kind: 'struct' | 'union'; size: number; members: BtfMember[] }

interface RawType {
  id: number; kind: string; name: string; size?: number; type_id?: number; nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
}

const cache = new Map<string, { mtimeMs: number; types: Map<number, RawType> }>();

function loadTypes(objectPath: string): Map<number, RawType> {
  let st: fs.Stats;
  try { st = fs.statSync(objectPath); } catch {
    throw new BpfError('ERR_BPF_BTF_READ', 'stat', 2, `BPF object ${objectPath} does not exist`);
  }
  const hit = cache.get(objectPath);
  if (hit && hit.mtimeMs === st.mtimeMs) return hit.types;
  let out: string;
  try {
    out = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', objectPath], { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; code?: string };
    throw new BpfError('ERR_BPF_BTF_READ', 'bpftool btf dump', err.code === 'ENOENT' ? 2 : 22,
      `cannot read BTF of ${objectPath}${err.code === 'ENOENT' ? ' (bpftool not installed)' : ''}: ${(err.stderr ?? '').trim()}`);
  }
  const types = new Map<number, RawType>();
  for (const t of (JSON.parse(out) as { types: RawType[] }).types) types.set(t.id, t);
  cache.set(objectPath, { mtimeMs: st.mtimeMs, types });
  return types;
}

function sizeOf(types: Map<number, RawType>, id: number, depth = 0): number {
  const t = types.get(id);
  if (!t || depth > 32) throw new BpfError('ERR_BPF_BTF_READ', 'btf', 22, `BTF type id ${id} cannot be sized`);
  switch (t.kind) {
    case 'INT': case 'ENUM': case 'ENUM64': case 'STRUCT': case 'UNION': case 'FLOAT': case 'DATASEC': return t.size ?? 0;
    case 'PTR': return 8;
    case 'ARRAY': return (t.nr_elems ?? 0) * sizeOf(types, t.type_id as number, depth + 1);
    case 'TYPEDEF': case 'CONST': case 'VOLATILE': case 'RESTRICT': case 'TYPE_TAG': case 'VAR':
      return sizeOf(types, t.type_id as number, depth + 1);
    default: throw new BpfError('ERR_BPF_BTF_READ', 'btf', 22, `BTF type id ${id} (${t.kind}) cannot be sized`);
  }
}

function resolve(types: Map<number, RawType>, id: number): RawType | undefined {
  let t = types.get(id);
  for (let i = 0; t && i < 32 && ['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind); i++) t = types.get(t.type_id as number);
  return t;
}

function members(types: Map<number, RawType>, t: RawType, base: number, out: BtfMember[]): void {
  for (const m of t.members ?? []) {
    const offBits = base * 8 + m.bits_offset;
    const inner = resolve(types, m.type_id);
    if ((m.name === '(anon)' || m.name === '') && inner && (inner.kind === 'STRUCT' || inner.kind === 'UNION')) {
      members(types, inner, offBits / 8, out);
      continue;
    }
    if (m.bitfield_size) {
      out.push({ name: m.name, offset: Math.floor(offBits / 8), size: Math.ceil(m.bitfield_size / 8), bitfield: m.bitfield_size });
      continue;
    }
    out.push({ name: m.name, offset: offBits / 8, size: sizeOf(types, m.type_id) });
  }
}

/** The named struct (or union) as the object's BTF describes it. */
export function btfStruct(objectPath: string, name: string): BtfStruct {
  const types = loadTypes(objectPath);
  for (const t of types.values()) {
    if ((t.kind === 'STRUCT' || t.kind === 'UNION') && t.name === name) {
      const out: BtfMember[] = [];
      members(types, t, 0, out);
      return { name, kind: t.kind === 'STRUCT' ? 'struct' : 'union', size: t.size ?? 0, members: out };
    }
  }
  throw new BpfError('ERR_BPF_BTF_NO_TYPE', 'btf', 2,
    `struct ${name} is not in the BTF of ${objectPath} (types only used through pointers need an anchor variable)`);
}

/** Differences between a TS layout and a BTF struct; empty when they agree. */
export function compareLayout(layout: LayoutLike, s: BtfStruct, opts: { ignore?: readonly string[] } = {}): string[] {
  const problems: string[] = [];
  const ignore = new Set(opts.ignore ?? []);
  if (layout.size !== s.size) problems.push(`${s.name}: size is ${s.size} in BTF but ${layout.size} in TS`);
  const ts = new Map(layout.fields.map((f) => [f.name, f]));
  for (const m of s.members) {
    if (ignore.has(m.name)) continue;
    if (m.bitfield !== undefined) { problems.push(`${s.name}.${m.name}: bitfield of ${m.bitfield} bits is not supported by the checker`); continue; }
    const f = ts.get(m.name);
    if (!f) { problems.push(`${s.name}.${m.name}: in BTF (offset ${m.offset}, size ${m.size}) but not in TS`); continue; }
    if (f.offset !== m.offset) problems.push(`${s.name}.${m.name}: offset is ${m.offset} in BTF but ${f.offset} in TS`);
    if (f.size !== m.size) problems.push(`${s.name}.${m.name}: size is ${m.size} in BTF but ${f.size} in TS`);
  }
  const inBtf = new Set(s.members.map((m) => m.name));
  for (const f of layout.fields) {
    if (!inBtf.has(f.name) && !ignore.has(f.name)) problems.push(`${s.name}.${f.name}: in TS (offset ${f.offset}) but not in BTF`);
  }
  return problems;
}

/** Reads `structName` from the object's BTF and compares; returns the problems (empty = match). */
export function checkStructLayout(objectPath: string, structName: string, layout: LayoutLike, opts: { ignore?: readonly string[] } = {}): string[] {
  return compareLayout(layout, btfStruct(objectPath, structName), opts);
}
