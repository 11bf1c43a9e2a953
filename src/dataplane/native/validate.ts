/** Option checks shared by the wrappers: precise messages naming the option and the value. */
import { invalidOption } from './errors';

export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Buffer.isBuffer(v)) return `Buffer(${v.length})`;
  if (typeof v === 'bigint') return `${v}n`;
  try { return JSON.stringify(v) ?? String(v); } catch { return String(v); }
}

export function checkInt(what: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidOption(what, `must be an integer in ${min}..${max}, got ${show(v)}`);
  }
  return v;
}

export function checkBuffer(what: string, v: unknown): Buffer {
  if (!Buffer.isBuffer(v)) throw invalidOption(what, `must be a Buffer, got ${show(v)}`);
  return v;
}

export function checkString(what: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw invalidOption(what, `must be a non-empty string, got ${show(v)}`);
  return v;
}

export function checkBool(what: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalidOption(what, `must be a boolean, got ${show(v)}`);
  return v;
}

export function checkAbsPath(what: string, v: unknown): string {
  const s = checkString(what, v);
  if (!s.startsWith('/')) throw invalidOption(what, `must be an absolute path, got ${show(v)}`);
  if (s.includes('\0')) throw invalidOption(what, 'must not contain NUL');
  return s;
}

export function checkOneOf<T extends string>(what: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalidOption(what, `must be one of ${allowed.join(', ')}, got ${show(v)}`);
  }
  return v as T;
}

export const U32_MAX = 0xffffffff;
