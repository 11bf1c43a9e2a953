/**
 * The ONLY place in the project that loads build/Release/tortie_native.node. Loaded lazily on
 * first use so that code needing only codecs or the BTF checker runs without a built addon.
 * TORTIE_NATIVE_ADDON may point at another build of the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BpfError } from './errors';

export interface NativeMapInfo {
  type: number; id: number; keySize: number; valueSize: number; maxEntries: number; flags: number; name: string;
}
export interface NativeProgInfo { type: number; id: number; name: string; tag: string; runCount: number; runTimeNs: number; mapIds: number[] }
export interface NativeObjProgram { name: string; section: string; type: number; autoload: boolean; fd: number; id: number }
export interface NativeObjMap {
  name: string; type: number; keySize: number; valueSize: number; maxEntries: number; fd: number; id: number;
  pinPath: string | null; pinned: boolean; internal: boolean;
}
export interface NativeConstant { name: string; section: string; offset: number; size: number }
export interface NativeTestRun { retval: number; duration: number; data: Buffer; ctx: Buffer | null }
export interface NativeBatchRun { retvals: Uint32Array; durations: Uint32Array; dataLengths?: Uint32Array; data?: Buffer }
export interface NativeTcFilter { ifindex: number; handle: number; priority: number; progId: number }
export interface NativeXdpQuery {
  ifindex: number; attachMode: string; progId: number; nativeProgId: number; genericProgId: number; offloadProgId: number;
}

export interface NativeBpfObject {
  setConstant(name: string, bytes: Buffer): void;
  constants(): NativeConstant[];
  setMapPinPath(map: string, path: string | null): void;
  setMapMaxEntries(map: string, n: number): void;
  reuseMapFd(map: string, fd: number): void;
  setProgramAutoload(prog: string, on: boolean): void;
  load(): Promise<string>;
  programs(): NativeObjProgram[];
  maps(): NativeObjMap[];
  pinMaps(dir: string | null): void;
  unpinMaps(dir: string | null): void;
  pinMap(map: string, path: string | null): void;
  unpinMap(map: string, path: string | null): void;
  pinProgram(prog: string, path: string): void;
  unpinProgram(prog: string, path: string): void;
  close(): void;
}
export interface NativeRingBuffer {
  close(): void; ref(): void; unref(): void; next(): void; stats(): { records: number; batches: number; open: boolean };
}

export interface NativeAddon {
  init(errorClass: typeof BpfError): void;
  mapLookup(fd: number, key: Buffer | null, flags: number, throwIfMissing: boolean): Buffer | null;
  mapUpdate(fd: number, key: Buffer | null, value: Buffer, flags: number): void;
  mapDelete(fd: number, key: Buffer | null, throwIfMissing: boolean): boolean;
  mapGetNextKey(fd: number, key: Buffer | null): Buffer | null;
  mapKeys(fd: number, limit: number): Buffer;
  mapLookupBatch(fd: number, chunk: number, andDelete: boolean): { keys: Buffer; values: Buffer; count: number };
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, elemFlags: number): number;
  mapUpdateBatchAsync(fd: number, keys: Buffer, values: Buffer, count: number, elemFlags: number): Promise<number>;
  mapDeleteBatch(fd: number, keys: Buffer, count: number): number;
  mapInfo(fd: number): NativeMapInfo;
  mapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, flags: number, name: string | null): number;
  objGet(path: string, kind: 'map' | 'prog' | 'any'): number;
  mapFdById(id: number): number;
  objPin(fd: number, path: string): void;
  fdDup(fd: number): number;
  fdClose(fd: number): void;
  ownedFdCount(): number;
  possibleCpus(): number;
  progTestRun(fd: number, data: Buffer, repeat: number, ctx: Buffer | null, dataOutCap: number, ctxOutCap: number, netns: string | null): NativeTestRun;
  progTestRunBatch(fd: number, packets: Buffer, lengths: Uint32Array, repeat: number, wantData: boolean, outExtra: number, netns: string | null): NativeBatchRun;
  progTestRunBatchAsync(fd: number, packets: Buffer, lengths: Uint32Array, repeat: number, wantData: boolean, outExtra: number, netns: string | null): Promise<NativeBatchRun>;
  progInfo(fd: number): NativeProgInfo;
  progFdById(id: number): number;
  ifindex(netns: string | null, name: string): number;
  tcAttach(netns: string | null, iface: string | number, direction: 'ingress' | 'egress', progFd: number, handle: number, priority: number, replace: boolean): NativeTcFilter;
  tcDetach(netns: string | null, iface: string | number, direction: 'ingress' | 'egress', handle: number, priority: number): void;
  tcQuery(netns: string | null, iface: string | number, direction: 'ingress' | 'egress', handle: number, priority: number): NativeTcFilter | null;
  tcHookDestroy(netns: string | null, iface: string | number): boolean;
  xdpAttach(netns: string | null, iface: string | number, progFd: number, mode: string, replace: boolean, expectedProgFd: number): { ifindex: number };
  xdpDetach(netns: string | null, iface: string | number, mode: string): void;
  xdpQuery(netns: string | null, iface: string | number): NativeXdpQuery;
  BpfObject: new (path: string, pinRoot: string | null, objectName: string | null, kernelLogLevel: number) => NativeBpfObject;
  RingBuffer: new (mapFd: number, cb: (records: Buffer[]) => void, maxBatch?: number) => NativeRingBuffer;
}

let loaded: NativeAddon | undefined;

function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tortie') return dir;
      } catch { /* not ours; keep walking */ }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new BpfError('ERR_BPF_ADDON_MISSING', 'require', 2, `cannot find the tortie project root above ${__dirname}`);
    dir = up;
  }
}

export function addonPath(): string {
  return process.env.TORTIE_NATIVE_ADDON ?? path.join(projectRoot(), 'build', 'Release', 'tortie_native.node');
}

/** The addon, loaded and initialised on first call. */
export function native(): NativeAddon {
  if (loaded) return loaded;
  const file = addonPath();
  if (!fs.existsSync(file)) {
    throw new BpfError('ERR_BPF_ADDON_MISSING', 'require', 2,
      `native addon ${file} is not built; run \`npm run build\` (or \`node scripts/build.js native\`)`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const a = require(file) as NativeAddon;
  a.init(BpfError);
  loaded = a;
  return a;
}
