/**
 * BpfObject: a compiled .bpf.o opened with libbpf, configured, loaded off the event loop.
 *
 *   const obj = BpfObject.open('bpf/out/x.bpf.o', { pinRoot: '/sys/fs/bpf/tortie' });
 *   obj.setConstant('cfg_flags', 3);              // `const volatile` globals, before load
 *   obj.setMapMaxEntries('x_ct', 1 << 18);
 *   await obj.load();                             // verifier runs on a worker thread
 *   const prog = obj.program('x_tc');             // own fd: survives obj.close()
 *   const map = obj.map('x_ct');
 *
 * Pinning: maps declared with `__uint(pinning, LIBBPF_PIN_BY_NAME)` are reused from, or created
 * and pinned at, `<pinRoot>/<map name>` during load (pinRoot defaults to libbpf's /sys/fs/bpf;
 * pass tortie's root explicitly). A pinned map whose definition differs makes load fail.
 * The object owns the fds it lists; program()/map() return independent handles (dup'ed fds).
 */
import { endianness } from 'node:os';
import { native, type NativeBpfObject, type NativeConstant, type NativeObjMap, type NativeObjProgram } from './addon';
import { BpfError, invalidOption } from './errors';
import { BpfMap } from './map';
import { BpfProgram } from './program';
import { U32_MAX, checkAbsPath, checkBool, checkInt, checkOneOf, checkString, show } from './validate';

export interface OpenOptions {
  /** bpffs directory for LIBBPF_PIN_BY_NAME maps; required when the object has such maps. */
  pinRoot?: string;
  /** Object name (prefix of internal map names); default from the file name. */
  name?: string;
  /**
   * Verifier log for successful loads too (failed loads always carry theirs): 'stats' gives
   * per-program instruction counts and timing cheaply; 'normal'/'verbose' the full log (large).
   */
  verifierLog?: 'none' | 'stats' | 'normal' | 'verbose';
}

/** Per-program verifier figures from a load with `verifierLog` set. */
export interface ProgramLoadStats {
  program: string;
  /** Instructions the verifier processed (the complexity budget is 1,000,000). */
  insnsProcessed: number;
  totalStates?: number;
  peakStates?: number;
  verificationTimeUs?: number;
}

export interface LoadResult {
  /** libbpf's output during load (warnings; verifier logs when requested). */
  log: string;
  stats: ProgramLoadStats[];
}

const LOG_LEVEL = { none: 0, stats: 4, normal: 1 | 4, verbose: 2 | 4 } as const;

/** Parses the per-program verifier logs libbpf printed. */
export function parseLoadStats(log: string): ProgramLoadStats[] {
  const out: ProgramLoadStats[] = [];
  const re = /prog '([^']+)': -- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/g;
  for (let m = re.exec(log); m; m = re.exec(log)) {
    const body = m[2]!;
    const p = /processed (\d+) insns \(limit \d+\)(?: max_states_per_insn \d+ total_states (\d+) peak_states (\d+))?/.exec(body);
    if (!p) continue;
    const s: ProgramLoadStats = { program: m[1]!, insnsProcessed: Number(p[1]) };
    if (p[2] !== undefined) s.totalStates = Number(p[2]);
    if (p[3] !== undefined) s.peakStates = Number(p[3]);
    const v = /verification time (\d+) usec/.exec(body);
    if (v) s.verificationTimeUs = Number(v[1]);
    out.push(s);
  }
  return out;
}

export type ConstantValue = Buffer | number | bigint | boolean | number[];
export type ConstantInfo = NativeConstant;
export type ObjectProgram = NativeObjProgram;
export type ObjectMap = NativeObjMap;

/** Encodes a scalar in host byte order for a constant of `size` bytes. */
function encodeConstant(name: string, size: number, v: ConstantValue): Buffer {
  if (Buffer.isBuffer(v)) return v;
  const le = endianness() === 'LE';
  const b = Buffer.alloc(size);
  if (Array.isArray(v)) {
    // An array of bytes, e.g. a bitmap.
    if (v.length !== size) throw invalidOption(`constant ${name}`, `is ${size} bytes; got an array of ${v.length}`);
    v.forEach((x, i) => { b[i] = checkInt(`constant ${name}[${i}]`, x, 0, 255); });
    return b;
  }
  const n = typeof v === 'boolean' ? BigInt(v ? 1 : 0) : typeof v === 'number' ? BigInt(checkInt(`constant ${name}`, v, -(2 ** 53), 2 ** 53)) : v;
  if (![1, 2, 4, 8].includes(size)) throw invalidOption(`constant ${name}`, `is ${size} bytes; pass a Buffer for non-scalar constants`);
  const bits = BigInt(size * 8);
  if (n >= 1n << bits || n < -(1n << (bits - 1n))) throw invalidOption(`constant ${name}`, `value ${show(v)} does not fit in ${size} bytes`);
  const u = BigInt.asUintN(size * 8, n);
  if (size === 8) { if (le) b.writeBigUInt64LE(u); else b.writeBigUInt64BE(u); }
  else if (le) b.writeUIntLE(Number(u), 0, size);
  else b.writeUIntBE(Number(u), 0, size);
  return b;
}

export class BpfObject {
  #obj: NativeBpfObject;
  #loaded = false;
  #closed = false;
  readonly #explicitPinRoot: boolean;
  readonly path: string;

  private constructor(path: string, obj: NativeBpfObject, explicitPinRoot: boolean) {
    this.path = path;
    this.#obj = obj;
    this.#explicitPinRoot = explicitPinRoot;
  }

  static open(path: string, opts: OpenOptions = {}): BpfObject {
    checkString('object path', path);
    const pinRoot = opts.pinRoot === undefined ? null : checkAbsPath('pinRoot', opts.pinRoot);
    const name = opts.name === undefined ? null : checkString('object name', opts.name);
    const level = LOG_LEVEL[checkOneOf('verifierLog', opts.verifierLog ?? 'none', ['none', 'stats', 'normal', 'verbose'] as const)];
    const A = native().BpfObject;
    return new BpfObject(path, new A(path, pinRoot, name, level), pinRoot !== null);
  }

  /** Global variables that setConstant can write (name, section, offset, size). */
  constants(): ConstantInfo[] {
    return this.#obj.constants();
  }

  /** Sets a `const volatile` global (or .data/.bss global) before load. Numbers are host order. */
  setConstant(name: string, value: ConstantValue): this {
    checkString('constant name', name);
    const c = this.#obj.constants().find((x) => x.name === name);
    const bytes = c ? encodeConstant(name, c.size, value) : Buffer.isBuffer(value) ? value : Buffer.alloc(0);
    this.#obj.setConstant(name, bytes); // unknown names / wrong sizes: the addon names them
    return this;
  }

  /** Pin path for one map (null: do not pin); before load. */
  setMapPinPath(map: string, path: string | null): this {
    this.#obj.setMapPinPath(checkString('map name', map), path === null ? null : checkAbsPath('pin path', path));
    return this;
  }

  setMapMaxEntries(map: string, maxEntries: number): this {
    this.#obj.setMapMaxEntries(checkString('map name', map), checkInt('maxEntries', maxEntries, 1, U32_MAX));
    return this;
  }

  /** Use an existing map (e.g. shared with another object) instead of creating one; before load. */
  reuseMap(map: string, existing: BpfMap): this {
    this.#obj.reuseMapFd(checkString('map name', map), existing.fd);
    return this;
  }

  setAutoload(program: string, autoload: boolean): this {
    this.#obj.setProgramAutoload(checkString('program name', program), checkBool('autoload', autoload));
    return this;
  }

  /** Loads (maps created/reused and pinned, programs verified) on a worker thread. */
  async load(): Promise<LoadResult> {
    // libbpf's default root for pin-by-name maps is the bpffs root itself; never pin there by
    // accident (per-map pin paths set with setMapPinPath are explicit and allowed).
    if (!this.#explicitPinRoot) {
      const byName = this.#obj.maps().filter((m) => m.pinPath !== null && m.pinPath === `/sys/fs/bpf/${m.name}`);
      if (byName.length > 0) {
        throw invalidOption(`BPF object ${this.path}`, `pins maps by name (${byName.map((m) => m.name).join(', ')}); pass OpenOptions.pinRoot (e.g. /sys/fs/bpf/tortie) or clear their pin paths`);
      }
    }
    const log = await this.#obj.load();
    this.#loaded = true;
    return { log, stats: parseLoadStats(log) };
  }

  get loaded(): boolean { return this.#loaded; }

  programs(): ObjectProgram[] { return this.#obj.programs(); }
  maps(): ObjectMap[] { return this.#obj.maps(); }

  /** An independent handle on a loaded program. */
  program(name: string): BpfProgram {
    const p = this.programs().find((x) => x.name === name);
    if (!p) throw new BpfError('ERR_BPF_OBJECT_PROGRAMS', 'lookup', 2, `no program named ${show(name)} in ${this.path} (programs: ${this.programs().map((x) => x.name).join(', ')})`);
    if (p.fd < 0) throw new BpfError('ERR_BPF_OBJECT_PROGRAMS', 'lookup', 22, `program ${name} of ${this.path} is not loaded`);
    return BpfProgram.adopt(native().fdDup(p.fd), p.name);
  }

  /** An independent handle on a map of the loaded object. */
  map(name: string): BpfMap {
    const m = this.maps().find((x) => x.name === name);
    if (!m) throw new BpfError('ERR_BPF_OBJECT_MAPS', 'lookup', 2, `no map named ${show(name)} in ${this.path} (maps: ${this.maps().map((x) => x.name).join(', ')})`);
    if (m.fd < 0) throw new BpfError('ERR_BPF_OBJECT_MAPS', 'lookup', 22, `map ${name} of ${this.path} is not created yet (load first)`);
    return BpfMap.fromFd(m.fd);
  }

  /** Pins every map under `dir` (or at each map's pin path when dir is omitted). */
  pinMaps(dir?: string): void { this.#obj.pinMaps(dir === undefined ? null : checkAbsPath('pin dir', dir)); }
  unpinMaps(dir?: string): void { this.#obj.unpinMaps(dir === undefined ? null : checkAbsPath('pin dir', dir)); }
  pinMap(map: string, path?: string): void { this.#obj.pinMap(checkString('map name', map), path === undefined ? null : checkAbsPath('pin path', path)); }
  unpinMap(map: string, path?: string): void { this.#obj.unpinMap(checkString('map name', map), path === undefined ? null : checkAbsPath('pin path', path)); }
  pinProgram(program: string, path: string): void { this.#obj.pinProgram(checkString('program name', program), checkAbsPath('pin path', path)); }
  unpinProgram(program: string, path: string): void { this.#obj.unpinProgram(checkString('program name', program), checkAbsPath('pin path', path)); }

  /** Frees the object and its fds (attached programs and pinned maps stay in the kernel). */
  close(): void {
    if (this.#closed) return;
    this.#obj.close();
    this.#closed = true;
  }
}
