/**
 * The networking maps the workload and uplink programs read (bpf/lib/route.h): tortie_node4_v1,
 * tortie_pool4_v1, tortie_rt4_v1, tortie_netcfg_v1 and tortie_vxcfg_v1 (bpf/lib/vxlan.h), and
 * NAT66's (bpf/lib/nat6.h) tortie_node6_v1, tortie_pool6_v1 and tortie_netcfg6_v1, and the IPv6
 * routes of bpf/lib/vxlan6.h (tortie_rt6_v1), kept equal to
 * a DesiredNetworking.
 *
 * Contract:
 * - `read()` loads the pinned maps' current entries (a previous run's too) into a mirror; each
 *   `write*` call then updates only entries whose bytes differ and deletes the entries the desired
 *   state lacks (mark-and-sweep; netcfg has one slot and is only overwritten).
 * - The caller orders the calls (manager.ts): nodes and pools — what the programs consult to
 *   decide, and vxcfg (the VXLAN parameters an encapsulating route needs) — before the routes that
 *   make them act, netcfg last so nothing acts on a half-written
 *   state.
 * - The mirror holds hex strings, not Buffers: ~10k routes as Buffers cost several times the heap.
 *   Equal values share one string (a route's value is its node's next hop and flags: 99,900
 *   routes to 500 nodes hold ~500 distinct values).
 */
import { BpfError, type BpfMap } from '../native';
import type { UplinkDatapath } from '../bpf/loader';
import {
  lpm4Key, lpm6Key, route6Codec, netcfgCodec, netcfg6Codec, nodeInfoCodec, nodeKeyCodec, node6KeyCodec, poolCodec, routeCodec, vxcfgCodec, NETCFG_KEY,
} from '../bpf/net-codecs';
import type { DesiredNetworking } from './plan';

function hex(b: Buffer): string { return b.toString('hex'); }

/** Entries per BPF_MAP_UPDATE_BATCH call. */
const ROUTE_MAP_BATCH = 8192;

/**
 * A route's value is its node's next hop and flags: one encoding (one Buffer) per distinct value,
 * shared by the routes (99,900 routes to 500 nodes at Felix's scale; RouteMaps.sync hexes each
 * shared Buffer once).
 */
function sharedValues(encode: (nextHop: string, flags: number) => Buffer): (nextHop: string, flags: number) => Buffer {
  const seen = new Map<string, Buffer>();
  return (nextHop, flags) => {
    const k = `${nextHop} ${flags}`;
    let v = seen.get(k);
    if (v === undefined) seen.set(k, (v = encode(nextHop, flags)));
    return v;
  };
}

export class RouteMaps {
  private readonly mirror = new Map<BpfMap, Map<string, string>>(); // map → hex(key) → hex(value)
  /** Map updates and deletes since creation. */
  writes = 0;
  private readonly values = new Map<string, string>();

  /** hex(v), one string per distinct value (a cache, cleared when it outgrows the mirror). */
  private hexValue(v: Buffer): string {
    const h = hex(v);
    const own = this.values.get(h);
    if (own !== undefined) return own;
    if (this.values.size > 1024 + 2 * (this.mirror.get(this.maps.rt4)?.size ?? 0)) this.values.clear();
    this.values.set(h, h);
    return h;
  }

  constructor(private readonly maps: UplinkDatapath['maps']) {}

  read(): void {
    for (const m of [this.maps.node4, this.maps.pool4, this.maps.rt4, this.maps.netcfg, this.maps.vxcfg, this.maps.node6, this.maps.pool6, this.maps.netcfg6, this.maps.rt6]) {
      const { keys, values } = m.entries();
      this.mirror.set(m, new Map(keys.map((k, i) => [hex(k), this.hexValue(values[i]!)])));
    }
  }

  writeNodes(d: DesiredNetworking): void {
    this.sync(this.maps.node4, new Map(d.nodes.map((n) => [hex(nodeKeyCodec.encode({ addr: n.addr })), nodeInfoCodec.encode({ flags: n.flags })])));
    this.sync(this.maps.node6, new Map(d.nodes6.map((n) => [hex(node6KeyCodec.encode({ addr: n.addr })), nodeInfoCodec.encode({ flags: n.flags })])));
  }

  writePools(d: DesiredNetworking): void {
    this.sync(this.maps.pool4, new Map(d.pools.map((p) => [hex(lpm4Key(p.cidr)), poolCodec.encode({ flags: p.flags })])));
    this.sync(this.maps.pool6, new Map(d.pools6.map((p) => [hex(lpm6Key(p.cidr)), poolCodec.encode({ flags: p.flags })])));
  }

  writeRoutes(d: DesiredNetworking): void {
    const value4 = sharedValues((next_hop, flags) => routeCodec.encode({ next_hop, flags }));
    const value6 = sharedValues((next_hop, flags) => route6Codec.encode({ next_hop, flags }));
    this.sync(this.maps.rt4, new Map(d.routes.map((r) => [hex(lpm4Key(r.cidr)), value4(r.nextHop, r.flags)])));
    this.sync(this.maps.rt6, new Map(d.routes6.map((r) => [hex(lpm6Key(r.cidr)), value6(r.nextHop, r.flags)])));
  }

  writeNetcfg(d: DesiredNetworking): void {
    this.sync(this.maps.netcfg, new Map([[hex(NETCFG_KEY), netcfgCodec.encode(d.netcfg)]]), false);
    this.sync(this.maps.netcfg6, new Map([[hex(NETCFG_KEY), netcfg6Codec.encode(d.netcfg6)]]), false);
  }

  writeVxcfg(d: DesiredNetworking): void {
    this.sync(this.maps.vxcfg, new Map([[hex(NETCFG_KEY), vxcfgCodec.encode(d.vxcfg)]]), false);
  }

  /** Entries per map as of the last write (metrics). */
  size(m: BpfMap): number { return this.mirror.get(m)?.size ?? 0; }

  private sync(m: BpfMap, want: Map<string, Buffer>, sweep = true): void {
    const have = this.mirror.get(m) ?? new Map<string, string>();
    // Changed entries in batches (BPF_MAP_UPDATE_BATCH: ~100,000 remote workload routes at
    // start-up); a batch the kernel refuses is redone entry by entry, so that the mirror holds
    // exactly what was written when an update throws.
    let keys: Buffer[] = [];
    let values: Buffer[] = [];
    let hexes: [string, string][] = [];
    const flush = (): void => {
      if (keys.length === 0) return;
      let batched = false;
      if (keys.length > 1) {
        try { m.updateBatch(keys, values); batched = true; } catch { /* entry by entry below */ }
      }
      if (batched) {
        for (const [h, hv] of hexes) have.set(h, hv);
        this.writes += keys.length;
      } else {
        for (let i = 0; i < keys.length; i++) {
          m.update(keys[i]!, values[i]!);
          have.set(hexes[i]![0], hexes[i]![1]);
          this.writes++;
        }
      }
      keys = [];
      values = [];
      hexes = [];
    };
    // hex of each value Buffer once (writeRoutes shares one Buffer among the routes of a value).
    const hexOf = new Map<Buffer, string>();
    const writeAll = (): void => {
      keys = [];
      values = [];
      hexes = [];
      try {
        for (const [h, v] of want) {
          let hv = hexOf.get(v);
          if (hv === undefined) hexOf.set(v, (hv = this.hexValue(v)));
          if (have.get(h) === hv) continue;
          keys.push(Buffer.from(h, 'hex'));
          values.push(v);
          hexes.push([h, hv]);
          if (keys.length >= ROUTE_MAP_BATCH) flush();
        }
        flush();
      } finally {
        this.mirror.set(m, have);
      }
    };
    const sweepStale = (): void => {
      for (const h of [...have.keys()]) {
        if (want.has(h)) continue;
        m.tryDelete(Buffer.from(h, 'hex'));
        have.delete(h);
        this.writes++;
      }
      this.mirror.set(m, have);
    };
    // Writes before the sweep: a prefix that stays never leaves the map, and a more specific one
    // replacing a broader one is in place before the broader one goes. A full map (E2BIG from a
    // hash, ENOSPC from an LPM trie) cannot take the new entries first: then the entries the
    // desired state drops make room, and the writes run again.
    try {
      writeAll();
    } catch (e) {
      if (!sweep || !(e instanceof BpfError) || (e.errnoName !== 'E2BIG' && e.errnoName !== 'ENOSPC')) throw e;
      sweepStale();
      writeAll();
    }
    if (sweep) sweepStale();
  }
}
