/**
 * Fixed-layout C struct codec: a struct is described once (C name, size, fields with offset,
 * width and byte order) and gets encode/decode for Buffers. The same description is what the
 * BTF layout test compares with the compiled objects (test/datapath/01-layouts), so the TS and C
 * sides of every map cannot silently disagree.
 *
 * Field kinds: u8/u16/u32/u64 host order (little-endian here, x86_64), s16/s32 signed host order,
 * be16/be32 network order, bytes (raw, `size` bytes), u32array (`size / 4` host-order u32s).
 * Encoding zero-fills the whole buffer first, so padding is always zero (LPM and hash keys
 * compare padding bytes too).
 */

export type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 's16' | 's32' | 'be16' | 'be32' | 'bytes' | 'u32array';

export interface FieldSpec {
  name: string;
  kind: FieldKind;
  offset: number;
  /** Bytes; implied by the kind except for bytes/u32array. */
  size?: number;
}

export interface StructLayout {
  /** The C struct tag in bpf/shared/maps.h (`tortie_endpoint`). */
  cName: string;
  size: number;
  fields: Required<FieldSpec>[];
}

const KIND_SIZE: Record<Exclude<FieldKind, 'bytes' | 'u32array'>, number> = {
  u8: 1, u16: 2, u32: 4, u64: 8, s16: 2, s32: 4, be16: 2, be32: 4,
};

export type FieldValue = number | bigint | Buffer | number[];

export class StructCodec<T extends object> {
  readonly layout: StructLayout;

  constructor(cName: string, size: number, fields: FieldSpec[]) {
    const full = fields.map((f) => {
      const sz = f.kind === 'bytes' || f.kind === 'u32array' ? f.size : KIND_SIZE[f.kind];
      if (sz === undefined) throw new TypeError(`struct ${cName}.${f.name}: ${f.kind} needs a size`);
      if (f.offset + sz > size) throw new TypeError(`struct ${cName}.${f.name}: ends past the struct size ${size}`);
      return { ...f, size: sz };
    });
    this.layout = { cName, size, fields: full };
  }

  get size(): number { return this.layout.size; }

  encode(v: Partial<T>): Buffer {
    const b = Buffer.alloc(this.layout.size);
    const obj = v as Record<string, FieldValue | undefined>;
    for (const f of this.layout.fields) {
      const x = obj[f.name];
      if (x === undefined) continue;
      writeField(b, f, x, this.layout.cName);
    }
    return b;
  }

  decode(b: Buffer): T {
    if (b.length < this.layout.size) {
      throw new RangeError(`struct ${this.layout.cName}: ${b.length} bytes, need ${this.layout.size}`);
    }
    const out: Record<string, FieldValue> = {};
    for (const f of this.layout.fields) out[f.name] = readField(b, f);
    return out as T;
  }
}

function writeField(b: Buffer, f: Required<FieldSpec>, x: FieldValue, cName: string): void {
  const where = `struct ${cName}.${f.name}`;
  const num = (): number => {
    if (typeof x !== 'number' || !Number.isInteger(x)) throw new TypeError(`${where}: expected an integer, got ${String(x)}`);
    return x;
  };
  switch (f.kind) {
    case 'u8': b.writeUInt8(num(), f.offset); break;
    case 'u16': b.writeUInt16LE(num(), f.offset); break;
    case 'u32': b.writeUInt32LE(num() >>> 0, f.offset); break;
    case 's16': b.writeInt16LE(num(), f.offset); break;
    case 's32': b.writeInt32LE(num(), f.offset); break;
    case 'be16': b.writeUInt16BE(num(), f.offset); break;
    case 'be32': b.writeUInt32BE(num() >>> 0, f.offset); break;
    case 'u64': b.writeBigUInt64LE(typeof x === 'bigint' ? x : BigInt(num()), f.offset); break;
    case 'bytes': {
      if (!Buffer.isBuffer(x) || x.length > f.size) throw new TypeError(`${where}: expected a Buffer of at most ${f.size} bytes`);
      x.copy(b, f.offset);
      break;
    }
    case 'u32array': {
      if (!Array.isArray(x) || x.length > f.size / 4) throw new TypeError(`${where}: expected at most ${f.size / 4} numbers`);
      x.forEach((n, i) => b.writeUInt32LE(n >>> 0, f.offset + 4 * i));
      break;
    }
  }
}

function readField(b: Buffer, f: Required<FieldSpec>): FieldValue {
  switch (f.kind) {
    case 'u8': return b.readUInt8(f.offset);
    case 'u16': return b.readUInt16LE(f.offset);
    case 'u32': return b.readUInt32LE(f.offset);
    case 's16': return b.readInt16LE(f.offset);
    case 's32': return b.readInt32LE(f.offset);
    case 'be16': return b.readUInt16BE(f.offset);
    case 'be32': return b.readUInt32BE(f.offset);
    case 'u64': return b.readBigUInt64LE(f.offset);
    case 'bytes': return Buffer.from(b.subarray(f.offset, f.offset + f.size));
    case 'u32array': {
      const out: number[] = [];
      for (let i = 0; i < f.size / 4; i++) out.push(b.readUInt32LE(f.offset + 4 * i));
      return out;
    }
  }
}
