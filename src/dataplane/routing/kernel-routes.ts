/**
 * Kernel routes of tortie (`proto <routeProtocol>`, default 122) in the node's namespace, through
 * `ip` (util/exec), and the underlay facts the plan needs from the kernel.
 *
 * Contract:
 * - `read()` loads what the kernel holds with tortie's protocol (a previous run's routes too);
 *   `sync(want, dev)` writes only the differences against that view in one `ip -batch`
 *   (replace what changed, delete what is not wanted — other protocols' routes are never touched)
 *   and returns the error instead of throwing: a route the kernel refuses does not keep the others
 *   from being written. After a refused batch the view is stale: `stale` says so, and the next
 *   sync must be preceded by a read().
 * - One instance per family (`family`, default 4): the IPv6 instance reads and writes `ip -6`
 *   routes only, so the two never sweep each other's.
 * - `nextHop(nodeIp)` asks the kernel (`ip route get`) for the underlay next hop towards a node
 *   outside this node's subnet; answers are cached until `forgetNextHops()`. `prefetchNextHops`
 *   asks for many in one `ip -batch` (one process instead of one per node: at 500 nodes the
 *   agent spent ~2 s of CPU starting `ip`), with the same answers; what it got no answer for is
 *   left to nextHop(), which reports the error.
 */
import { ipJson, run } from '../../util/exec';
import type { Logger } from '../../util/log';
import type { KernelRoute } from './plan';
import { RouteError } from './errors';

function routeSpec(r: KernelRoute): string { return `${r.via}|${r.mtu ?? ''}`; }

export class KernelRoutes {
  /** cidr → routeSpec, as last read or written. */
  private have = new Map<string, string>();
  /**
   * One string per distinct routeSpec (a few per remote node, against one route per remote
   * workload: 99,900 routes over 500 nodes hold 500 specs, not 99,900 copies).
   */
  private readonly specs = new Map<string, string>();

  private spec(r: KernelRoute): string {
    const s = routeSpec(r);
    const own = this.specs.get(s);
    if (own !== undefined) return own;
    if (this.specs.size > 2 * this.have.size + 1024) this.specs.clear();
    this.specs.set(s, s);
    return s;
  }
  private readonly gateways = new Map<string, string>(); // node address → underlay next hop
  /** The view may differ from the kernel (a batch was partly refused): read() before sync(). */
  stale = true;
  /** Route lines written since creation (add/replace/del). */
  writes = 0;

  private readonly family: 4 | 6;

  constructor(private readonly o: { proto: number; netns?: string; log: Logger; family?: 4 | 6 }) {
    this.family = o.family ?? 4;
  }

  private ip(args: string[]): string[] { return this.o.netns ? ['ip', '-n', this.o.netns, ...args] : ['ip', ...args]; }

  async read(): Promise<void> {
    const rows = await ipJson<{ dst: string; gateway?: string; metrics?: { mtu?: number }[] }[]>(
      [`-${this.family}`, 'route', 'show', 'proto', String(this.o.proto)], { netns: this.o.netns });
    this.have = new Map();
    const [any, full] = this.family === 6 ? ['::/0', 128] : ['0.0.0.0/0', 32];
    for (const r of rows) {
      const cidr = r.dst === 'default' ? any : r.dst.includes('/') ? r.dst : `${r.dst}/${full}`;
      const mtu = r.metrics?.find((m) => m.mtu !== undefined)?.mtu;
      this.have.set(cidr, this.spec({ via: r.gateway ?? '', mtu }));
    }
    this.stale = false;
  }

  async sync(want: ReadonlyMap<string, KernelRoute>, dev: string | undefined): Promise<RouteError | undefined> {
    const lines: string[] = [];
    const next = new Map<string, string>();
    for (const [cidr, r] of want) {
      const spec = this.spec(r);
      next.set(cidr, spec);
      if (this.have.get(cidr) === spec) continue;
      // IPv6 forwarding ignores a route MTU unless it is locked (ip6_dst_mtu_maybe_forward): locked,
      // the kernel answers Packet Too Big for what exceeds it, as IPv4 answers frag-needed.
      const mtu = r.mtu ? ` mtu ${this.family === 6 ? 'lock ' : ''}${r.mtu}` : '';
      lines.push(`route replace ${cidr} via ${r.via} dev ${dev} proto ${this.o.proto}${mtu}`);
    }
    for (const cidr of this.have.keys()) {
      if (!want.has(cidr)) lines.push(`route del ${cidr} proto ${this.o.proto}`);
    }
    if (lines.length === 0) return undefined;
    this.writes += lines.length;
    const r = await run(this.ip([`-${this.family}`, '-force', '-batch', '-']), { input: lines.join('\n') + '\n', allowFail: true });
    if (r.code !== 0) {
      this.stale = true; // partly applied
      const err = new RouteError('ERR_ROUTES_KERNEL', `${lines.length} route change(s), some refused by the kernel: ${r.stderr.trim().split('\n').slice(0, 5).join('; ')}`);
      this.o.log.error({ err }, 'kernel routes');
      return err;
    }
    this.have = next;
    this.o.log.debug({ changes: lines.length }, 'kernel routes written');
    return undefined;
  }

  /** Cached underlay next hops (node address → next hop). */
  get nextHops(): ReadonlyMap<string, string> { return this.gateways; }

  forgetNextHops(): void { this.gateways.clear(); }

  /**
   * The next hops of every address not cached yet, in one `ip -j -force -batch -` of `route get`
   * lines (-force: an unreachable address does not stop the others). Each answer names its
   * address (`dst`); an address without an answer stays uncached.
   */
  async prefetchNextHops(nodeIps: readonly string[]): Promise<void> {
    const todo = [...new Set(nodeIps)].filter((ip) => !this.gateways.has(ip));
    if (todo.length < 2) return;
    const r = await run(this.ip(['-j', '-force', '-batch', '-']), { input: todo.map((ip) => `route get ${ip}`).join('\n') + '\n', allowFail: true });
    const asked = new Set(todo);
    for (const line of r.stdout.split('\n')) {
      if (line.trim() === '') continue;
      let rows: unknown;
      try { rows = JSON.parse(line); } catch { continue; }
      if (!Array.isArray(rows)) continue;
      for (const row of rows as { dst?: unknown; gateway?: unknown }[]) {
        if (typeof row?.dst !== 'string' || !asked.has(row.dst)) continue;
        this.gateways.set(row.dst, typeof row.gateway === 'string' ? row.gateway : row.dst);
      }
    }
  }

  /** The underlay next hop towards a node outside this node's subnet (cached). */
  async nextHop(nodeIp: string): Promise<string> {
    const known = this.gateways.get(nodeIp);
    if (known !== undefined) return known;
    let rows: { gateway?: string; dev?: string }[];
    try {
      rows = await ipJson<{ gateway?: string; dev?: string }[]>(['route', 'get', nodeIp], { netns: this.o.netns });
    } catch (e) {
      throw new RouteError('ERR_ROUTES_UNREACHABLE', `no underlay route to node address ${nodeIp}: ${(e as Error).message.split('\n').pop()}`);
    }
    const [r] = rows;
    if (!r) throw new RouteError('ERR_ROUTES_UNREACHABLE', `no underlay route to node address ${nodeIp}`);
    const via = r.gateway ?? nodeIp;
    this.gateways.set(nodeIp, via);
    return via;
  }
}
