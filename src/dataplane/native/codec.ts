/**
 * Fixed-layout C struct codecs. Describe a struct once (fields in C order, each with a type and
 * optionally an explicit offset) and get encode/decode for Buffers plus the resolved layout that
 * checkStructLayout (btf.ts) compares with the compiled object's BTF.
 *
 *   const flowKey = defineStruct('tn_flow_key', [
 *     { name: 'saddr', type: 'ipv4' }, { name: 'daddr', type: 'ipv4' },
 *     { name: 'proto', type: 'u8' }, { name: 'pad', type: 'pad', length: 3 },
 *   ] as const);
 *   flowKey.encode({ saddr: '198.18.0.1', daddr: '198.18.0.2', proto: 6 })   // 12 bytes
 *
 * Rules: offsets default to C natural alignment (as clang lays out structs for x86_64 and BPF);
 * the size rounds up to the largest alignment unless given. uN and iN are host byte order
 * (little-endian here), be* and addresses are network order. 64-bit fields are bigint. Encoding
 * zero-fills first, so padding is always zero (hash and LPM keys compare padding bytes too).
 * `count` makes a fixed array of a scalar or nested struct. Values out of range are errors
 * naming struct.field, never silently truncated.
 *
 * Addresses cross this boundary in one convention, as text: `ipv4` (4 bytes, dotted quad),
 * `ipv6` (16 bytes, RFC 5952 text on decode, any valid form on encode) and `ip` (16 bytes whose
 * family another field of the struct names, `family: '<field>'`: 4 → IPv4 in the first 4 bytes,
 * anything else → IPv6). Numbers (`be32`) are for values that are not addresses.
 */
import { endianness } from 'node:os';
import ipaddr from 'ipaddr.js';
import { invalidOption } from './errors';
import { tryIpv4ToU32, u32ToIpv4 } from '../../primitives';

export type ScalarType = 'u8' | 'u16' | 'u32' | 'u64' | 'i8' | 'i16' | 'i32' | 'i64' | 'be16' | 'be32' | 'be64';
export type FieldType = ScalarType | 'ipv4' | 'ipv6' | 'ip' | 'mac' | 'bytes' | 'pad' | 'struct';

export interface FieldDef {
  readonly name: string;
  readonly type: FieldType;
  /** Byte offset; default: next naturally aligned offset. */
  readonly offset?: number;
  /** Bytes, for 'bytes' and 'pad'. */
  readonly length?: number;
  /** Fixed array of this many elements (scalars, ipv4, structs). */
  readonly count?: number;
  /** Nested struct, for type 'struct'. */
  readonly struct?: StructCodec<object>;
  /** For type 'ip': the field holding the address family (4 = IPv4, 6 = IPv6). */
  readonly family?: string;
}

type ScalarValue<T> = T extends 'u64' | 'i64' | 'be64' ? bigint : number;
type ElemValue<F> =
  F extends { type: 'struct'; struct: StructCodec<infer V> } ? V :
  F extends { type: 'ipv4' | 'ipv6' | 'ip' | 'mac' } ? string :
  F extends { type: 'bytes' } ? Buffer :
  F extends { type: infer T } ? ScalarValue<T> : never;
export type FieldValue<F> = F extends { count: number } ? ElemValue<F>[] : ElemValue<F>;
/** The JS value type of a struct described by `Fs` (pad fields excluded). */
export type StructValue<Fs extends readonly FieldDef[]> = {
  [F in Exclude<Fs[number], { type: 'pad' }> as F['name']]: FieldValue<F>;
};

export interface ResolvedField {
  name: string;
  type: FieldType;
  offset: number;
  /** Total bytes (all elements). */
  size: number;
  /** Bytes per element. */
  elemSize: number;
  count: number | undefined;
  struct: StructCodec<object> | undefined;
  /** For type 'ip': the field naming the family. */
  family?: ResolvedField;
}

const SCALAR: Record<ScalarType | 'ipv4', number> = {
  u8: 1, i8: 1, u16: 2, i16: 2, be16: 2, u32: 4, i32: 4, be32: 4, ipv4: 4, u64: 8, i64: 8, be64: 8,
};
const LE = endianness() === 'LE';

export class StructCodec<T extends object> {
  readonly name: string;
  readonly size: number;
  readonly align: number;
  readonly fields: readonly ResolvedField[];

  constructor(name: string, defs: readonly FieldDef[], opts: { size?: number } = {}) {
    this.name = name;
    let end = 0;
    let align = 1;
    const fields: ResolvedField[] = [];
    for (const d of defs) {
      const where = `struct ${name}.${d.name}`;
      let elemSize: number;
      let elemAlign: number;
      if (d.type === 'struct') {
        if (!(d.struct instanceof StructCodec)) throw invalidOption(where, 'has type struct but no struct codec');
        elemSize = d.struct.size;
        elemAlign = d.struct.align;
      } else if (d.type === 'bytes' || d.type === 'pad') {
        if (!Number.isInteger(d.length) || (d.length as number) <= 0) throw invalidOption(where, `needs a positive length, got ${String(d.length)}`);
        elemSize = d.length as number;
        elemAlign = 1;
      } else if (d.type === 'mac') {
        elemSize = 6;
        elemAlign = 1;
      } else if (d.type === 'ipv6' || d.type === 'ip') {
        elemSize = 16;
        elemAlign = 1;
      } else if (d.type in SCALAR) {
        elemSize = SCALAR[d.type as ScalarType];
        elemAlign = elemSize;
      } else {
        throw invalidOption(where, `has unknown type ${JSON.stringify(d.type)}`);
      }
      if (d.count !== undefined && (!Number.isInteger(d.count) || d.count <= 0)) throw invalidOption(where, `count must be a positive integer, got ${d.count}`);
      const size = elemSize * (d.count ?? 1);
      const offset = d.offset ?? Math.ceil(end / elemAlign) * elemAlign;
      if (!Number.isInteger(offset) || offset < 0) throw invalidOption(where, `offset must be a non-negative integer, got ${offset}`);
      if (offset < end) throw invalidOption(where, `at offset ${offset} overlaps the previous field (ends at ${end})`);
      let family: ResolvedField | undefined;
      if (d.type === 'ip') {
        family = fields.find((f) => f.name === d.family);
        if (!family || !(family.type in SCALAR) || family.type === 'ipv4' || family.count !== undefined) {
          throw invalidOption(where, `has type ip and needs family: the name of an earlier integer field, got ${JSON.stringify(d.family)}`);
        }
      }
      fields.push({ name: d.name, type: d.type, offset, size, elemSize, count: d.count, struct: d.struct, family });
      end = offset + size;
      align = Math.max(align, elemAlign);
    }
    const natural = Math.ceil(end / align) * align;
    if (opts.size !== undefined && opts.size < end) throw invalidOption(`struct ${name}`, `size ${opts.size} is smaller than its fields (${end} bytes)`);
    this.size = opts.size ?? natural;
    this.align = align;
    this.fields = fields;
  }

  /** The layout the BTF checker compares: name, size, and each field's offset/size. */
  get layout(): { name: string; size: number; fields: { name: string; offset: number; size: number }[] } {
    return { name: this.name, size: this.size, fields: this.fields.map((f) => ({ name: f.name, offset: f.offset, size: f.size })) };
  }

  encode(value: T, into?: Buffer, at = 0): Buffer {
    const b = into ?? Buffer.alloc(this.size);
    if (b.length - at < this.size) throw invalidOption(`struct ${this.name}`, `needs ${this.size} bytes at offset ${at}; buffer has ${b.length}`);
    b.fill(0, at, at + this.size);
    const v = value as Record<string, unknown>;
    for (const f of this.fields) {
      if (f.type === 'pad') continue;
      const x = v[f.name];
      const where = `struct ${this.name}.${f.name}`;
      if (x === undefined) throw invalidOption(where, 'is missing');
      const fam = f.family ? v[f.family.name] : undefined;
      if (f.count !== undefined) {
        if (!Array.isArray(x) || x.length !== f.count) throw invalidOption(where, `must be an array of ${f.count}`);
        x.forEach((e, i) => writeElem(b, at + f.offset + i * f.elemSize, f, e, `${where}[${i}]`, fam));
      } else {
        writeElem(b, at + f.offset, f, x, where, fam);
      }
    }
    return b;
  }

  decode(buf: Buffer, at = 0): T {
    if (buf.length - at < this.size) throw invalidOption(`struct ${this.name}`, `needs ${this.size} bytes at offset ${at}; buffer has ${buf.length}`);
    const out: Record<string, unknown> = {};
    for (const f of this.fields) {
      if (f.type === 'pad') continue;
      if (f.count !== undefined) {
        out[f.name] = Array.from({ length: f.count }, (_, i) => readElem(buf, at + f.offset + i * f.elemSize, f, at));
      } else {
        out[f.name] = readElem(buf, at + f.offset, f, at);
      }
    }
    return out as T;
  }

  encodeMany(values: readonly T[]): Buffer {
    const b = Buffer.alloc(values.length * this.size);
    values.forEach((v, i) => this.encode(v, b, i * this.size));
    return b;
  }

  decodeMany(buf: Buffer): T[] {
    if (buf.length % this.size !== 0) throw invalidOption(`struct ${this.name}`, `buffer of ${buf.length} bytes is not a multiple of ${this.size}`);
    return Array.from({ length: buf.length / this.size }, (_, i) => this.decode(buf, i * this.size));
  }
}

/** Defines a codec; pass the field list `as const` so the value type is inferred. */
export function defineStruct<const Fs extends readonly FieldDef[]>(name: string, fields: Fs, opts: { size?: number } = {}): StructCodec<StructValue<Fs>> {
  return new StructCodec<StructValue<Fs>>(name, fields, opts);
}

/** Dotted quad into 4 bytes (src/primitives' one IPv4 parser); false when `x` is not one. */
function writeIpv4(b: Buffer, off: number, x: unknown): boolean {
  const v = typeof x === 'string' ? tryIpv4ToU32(x) : undefined;
  if (v === undefined) return false;
  b.writeUInt32BE(v, off);
  return true;
}

function writeIpv6(b: Buffer, off: number, x: unknown): boolean {
  if (typeof x !== 'string' || x.includes('%') || !ipaddr.IPv6.isValid(x)) return false;
  Buffer.from(ipaddr.IPv6.parse(x).toByteArray()).copy(b, off);
  return true;
}

function readIpv4(b: Buffer, off: number): string { return u32ToIpv4(b.readUInt32BE(off)); }
function readIpv6(b: Buffer, off: number): string { return ipaddr.fromByteArray([...b.subarray(off, off + 16)]).toString(); }

function writeElem(b: Buffer, off: number, f: ResolvedField, x: unknown, where: string, family?: unknown): void {
  switch (f.type) {
    case 'struct': (f.struct as StructCodec<object>).encode(x as object, b, off); return;
    case 'bytes': {
      if (!Buffer.isBuffer(x) || x.length !== f.elemSize) throw invalidOption(where, `must be a Buffer of ${f.elemSize} bytes`);
      x.copy(b, off);
      return;
    }
    case 'ipv4': {
      if (!writeIpv4(b, off, x)) throw invalidOption(where, `must be a dotted IPv4 address, got ${JSON.stringify(x)}`);
      return;
    }
    case 'ipv6': {
      if (!writeIpv6(b, off, x)) throw invalidOption(where, `must be an IPv6 address, got ${JSON.stringify(x)}`);
      return;
    }
    case 'ip': {
      const ok = family === 4 ? writeIpv4(b, off, x) : writeIpv6(b, off, x);
      if (!ok) throw invalidOption(where, `must be an ${family === 4 ? 'IPv4' : 'IPv6'} address (${f.family!.name} is ${String(family)}), got ${JSON.stringify(x)}`);
      return;
    }
    case 'mac': {
      const m = typeof x === 'string' ? /^([0-9a-f]{2})(?::([0-9a-f]{2})){5}$/i.test(x) : false;
      if (!m) throw invalidOption(where, `must be a MAC address aa:bb:cc:dd:ee:ff, got ${JSON.stringify(x)}`);
      Buffer.from((x as string).replace(/:/g, ''), 'hex').copy(b, off);
      return;
    }
    default: writeScalar(b, off, f.type as ScalarType, x, where);
  }
}

function readElem(b: Buffer, off: number, f: ResolvedField, structAt = 0): unknown {
  switch (f.type) {
    case 'ipv6': return readIpv6(b, off);
    case 'ip': return readScalar(b, structAt + f.family!.offset, f.family!.type as ScalarType) === 4 ? readIpv4(b, off) : readIpv6(b, off);
    case 'struct': return (f.struct as StructCodec<object>).decode(b, off);
    case 'bytes': return Buffer.from(b.subarray(off, off + f.elemSize));
    case 'ipv4': return readIpv4(b, off);
    case 'mac': return Array.from(b.subarray(off, off + 6), (o) => o.toString(16).padStart(2, '0')).join(':');
    default: return readScalar(b, off, f.type as ScalarType);
  }
}

function writeScalar(b: Buffer, off: number, t: ScalarType, x: unknown, where: string): void {
  const size = SCALAR[t];
  const signed = t.startsWith('i');
  if (size === 8) {
    if (typeof x !== 'bigint') throw invalidOption(where, `must be a bigint (64-bit), got ${typeof x}`);
    const ok = signed ? x >= -(1n << 63n) && x < 1n << 63n : x >= 0n && x < 1n << 64n;
    if (!ok) throw invalidOption(where, `value ${x} out of range for ${t}`);
    if (t === 'be64') b.writeBigUInt64BE(x, off);
    else if (signed) { if (LE) b.writeBigInt64LE(x, off); else b.writeBigInt64BE(x, off); }
    else if (LE) b.writeBigUInt64LE(x, off);
    else b.writeBigUInt64BE(x, off);
    return;
  }
  if (typeof x !== 'number' || !Number.isInteger(x)) throw invalidOption(where, `must be an integer, got ${JSON.stringify(x)}`);
  const bits = size * 8;
  const ok = signed ? x >= -(2 ** (bits - 1)) && x < 2 ** (bits - 1) : x >= 0 && x < 2 ** bits;
  if (!ok) throw invalidOption(where, `value ${x} out of range for ${t}`);
  if (t.startsWith('be')) b.writeUIntBE(x, off, size);
  else if (signed) { if (LE) b.writeIntLE(x, off, size); else b.writeIntBE(x, off, size); }
  else if (LE) b.writeUIntLE(x, off, size);
  else b.writeUIntBE(x, off, size);
}

function readScalar(b: Buffer, off: number, t: ScalarType): number | bigint {
  const size = SCALAR[t];
  const signed = t.startsWith('i');
  if (size === 8) {
    if (t === 'be64') return b.readBigUInt64BE(off);
    if (signed) return LE ? b.readBigInt64LE(off) : b.readBigInt64BE(off);
    return LE ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off);
  }
  if (t.startsWith('be')) return b.readUIntBE(off, size);
  if (signed) return LE ? b.readIntLE(off, size) : b.readIntBE(off, size);
  return LE ? b.readUIntLE(off, size) : b.readUIntBE(off, size);
}
