/**
 * Loads the tortie datapath objects through the native addon and exposes their maps through
 * the narrow interfaces the rest of src/dataplane/bpf uses.
 *
 *   loadWep(opts)       bpf/out/tortie_wep.bpf.o: tortie_from_wep / tortie_to_wep (tc on cali*)
 *   loadPrefilter(opts) bpf/out/tortie_xdp.bpf.o: tortie_xdp_prefilter (XDP on the uplink)
 *
 * Maps are pinned by name under `pinRoot` (default /sys/fs/bpf/tortie); a second load with the
 * same root reuses the pinned maps, so several objects and a restarted agent share one state.
 * Load-time constants: conntrack timeouts (the same object is given to the sweep), events on/off;
 * conntrack size = `ctMaxEntries` (default derived from memory).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { BpfObject, type BpfMap, type BpfProgram } from '../native';
import { CALICO_CT_TIMEOUTS, ctTimeoutConstants, defaultCtMaxEntries, type CtMapOps, type CtTimeouts } from './conntrack';
import { MAP } from './codecs';
import type { MapOps, PolicyMaps } from './apply';

export interface LoadOptions {
  /** bpffs directory for the pinned maps. */
  pinRoot?: string;
  /** Directory of the compiled objects (default <project>/bpf/out). */
  objectDir?: string;
  ctMaxEntries?: number;
  ctTimeouts?: CtTimeouts;
  /** Ring-buffer events (default true). */
  events?: boolean;
}

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/tortie';

export function defaultObjectDir(): string {
  // dist/src/dataplane/bpf → project root is four levels up; src/... (ts-node) three.
  const up = __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../../..' : '../../..';
  return path.resolve(__dirname, up, 'bpf', 'out');
}

/** MapOps over a native map: delete ignores a missing key. */
export function mapOps(m: BpfMap): MapOps {
  return {
    lookup: (k) => m.lookup(k),
    update: (k, v) => m.update(k, v),
    delete: (k) => { m.tryDelete(k); },
  };
}

export function ctMapOps(m: BpfMap): CtMapOps {
  return {
    entries: function* () {
      const { keys, values } = m.lookupBatch();
      for (let i = 0; i < keys.length; i++) yield [keys[i], values[i]] as [Buffer, Buffer];
    },
    deleteMany: (keys) => {
      if (keys.length === 0) return;
      try { m.deleteBatch(keys); } catch { for (const k of keys) m.tryDelete(k); }
    },
  };
}

export interface WepDatapath {
  obj: BpfObject;
  fromWep: BpfProgram;
  toWep: BpfProgram;
  maps: Record<keyof typeof MAP, BpfMap | undefined>;
  policyMaps: PolicyMaps;
  ct: CtMapOps;
  ctTimeouts: CtTimeouts;
  close(): void;
}

function applyConstants(obj: BpfObject, opts: LoadOptions, hasCt: boolean): CtTimeouts {
  const timeouts = opts.ctTimeouts ?? CALICO_CT_TIMEOUTS;
  if (hasCt) {
    for (const [k, v] of Object.entries(ctTimeoutConstants(timeouts))) obj.setConstant(k, v);
    obj.setMapMaxEntries(MAP.ct4, opts.ctMaxEntries ?? defaultCtMaxEntries(os.totalmem()));
  }
  obj.setConstant('events_enabled', opts.events === false ? 0 : 1);
  return timeouts;
}

function mapsOf(obj: BpfObject): Record<keyof typeof MAP, BpfMap | undefined> {
  const names = new Set(obj.maps().map((m) => m.name));
  const out = {} as Record<keyof typeof MAP, BpfMap | undefined>;
  for (const [k, name] of Object.entries(MAP) as [keyof typeof MAP, string][]) {
    out[k] = names.has(name) ? obj.map(name) : undefined;
  }
  return out;
}

export async function loadWep(opts: LoadOptions = {}): Promise<WepDatapath> {
  const obj = BpfObject.open(path.join(opts.objectDir ?? defaultObjectDir(), 'tortie_wep.bpf.o'),
    { pinRoot: opts.pinRoot ?? DEFAULT_PIN_ROOT });
  try {
    const ctTimeouts = applyConstants(obj, opts, true);
    await obj.load();
    const maps = mapsOf(obj);
    const need = (k: keyof typeof MAP): BpfMap => maps[k]!;
    return {
      obj,
      fromWep: obj.program('tortie_from_wep'),
      toWep: obj.program('tortie_to_wep'),
      maps,
      policyMaps: {
        ep: mapOps(need('ep')), epaddr: mapOps(need('epaddr')), tbl: mapOps(need('tbl')),
        proj: mapOps(need('proj')), spc: mapOps(need('spc')), pol: mapOps(need('pol')),
      },
      ct: ctMapOps(need('ct4')),
      ctTimeouts,
      close: () => obj.close(),
    };
  } catch (e) {
    obj.close();
    throw e;
  }
}

export interface PrefilterDatapath {
  obj: BpfObject;
  prog: BpfProgram;
  pf4: BpfMap;
  cnt: BpfMap;
  close(): void;
}

export async function loadPrefilter(opts: LoadOptions & { countPassed?: boolean } = {}): Promise<PrefilterDatapath> {
  const obj = BpfObject.open(path.join(opts.objectDir ?? defaultObjectDir(), 'tortie_xdp.bpf.o'),
    { pinRoot: opts.pinRoot ?? DEFAULT_PIN_ROOT });
  try {
    applyConstants(obj, opts, false);
    obj.setConstant('count_passed', opts.countPassed === false ? 0 : 1);
    await obj.load();
    return {
      obj, prog: obj.program('tortie_xdp_prefilter'), pf4: obj.map(MAP.pf4), cnt: obj.map(MAP.cnt),
      close: () => obj.close(),
    };
  } catch (e) {
    obj.close();
    throw e;
  }
}
