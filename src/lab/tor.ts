/**
 * The lab's top-of-rack router: FRR (zebra + bgpd, Debian's), an independent BGP implementation
 * peering with every node's bird2 through BGPPeer resources.
 *
 * Contract: the daemons run inside the router's namespace, in a private mount namespace
 * (`unshare -m`, tmpfs on /run/frr), with every path (config, pid files, zserv and vty sockets,
 * logs) in a directory of the lab's own; nothing of the host's FRR set-up is read or touched.
 * The topology's teardown kills them with the namespace; `stop()` does it earlier.
 */
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type Netns } from '../util/netns';

/** A BGP neighbour of the ToR; an IPv6 `ip` makes an IPv6 session (ipv6 unicast only). */
export interface TorPeer { ip: string; asNumber: number }

export interface TorOptions {
  /** IPv6 prefixes the ToR announces to its IPv6 peers (without a route of its own for them). */
  networks6?: readonly string[];
  /**
   * The ToR only accepts sessions (FRR `passive`): started before the nodes, it makes no
   * connection collision with them, after which bird 2.0.12 started with -R was seen to keep
   * its graceful-restart recovery (every kernel export) waiting up to 240 s (docs/bgp.md).
   */
  passive?: boolean;
}

export class FrrTor {
  readonly dir = mkdtempSync(join(tmpdir(), 'tortie-lab-frr-'));

  constructor(readonly ns: Netns, readonly routerId: string, readonly asNumber: number) {}

  config(peers: readonly TorPeer[], o: TorOptions = {}): string {
    const v6 = peers.filter((p) => p.ip.includes(':'));
    const lines = [
      'frr defaults datacenter',
      'hostname tor',
      '!',
      `router bgp ${this.asNumber}`,
      ` bgp router-id ${this.routerId}`,
      // The lab's ToR takes whatever the nodes advertise (FRR otherwise wants a policy for eBGP).
      ' no bgp ebgp-requires-policy',
      // Announced prefixes need no route in the ToR's own table (the lab runs no staticd).
      ...(o.networks6?.length ? [' no bgp network import-check'] : []),
      ...peers.map((p) => ` neighbor ${p.ip} remote-as ${p.asNumber}`),
      ...peers.map((p) => ` neighbor ${p.ip} timers connect 2`),
      ...(o.passive ? peers.map((p) => ` neighbor ${p.ip} passive`) : []),
      // IPv6 neighbours stay active in ipv4 unicast too (FRR's default; bird's IPv6 sessions
      // negotiate ipv6 only, so nothing IPv4 crosses them): with it deactivated, bird 2.0.12
      // started with -R was seen to keep its graceful-restart recovery waiting (docs/bgp.md).
      ' address-family ipv4 unicast',
      ...peers.map((p) => `  neighbor ${p.ip} activate`),
      ' exit-address-family',
      ...(v6.length === 0 ? [] : [
        ' address-family ipv6 unicast',
        ...v6.map((p) => `  neighbor ${p.ip} activate`),
        ...(o.networks6 ?? []).map((n) => `  network ${n}`),
        ' exit-address-family',
      ]),
      '!',
    ];
    return lines.join('\n') + '\n';
  }

  async start(peers: readonly TorPeer[], o: TorOptions = {}): Promise<void> {
    const uid = Number(execFileSync('id', ['-u', 'frr'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'frr'], { encoding: 'utf8' }).trim());
    chownSync(this.dir, uid, gid);
    const conf = join(this.dir, 'frr.conf');
    writeFileSync(conf, this.config(peers, o));
    chownSync(conf, uid, gid);
    const d = this.dir;
    const common = `-f ${conf} -z ${d}/zserv.api --vty_socket ${d} -A 127.0.0.1 -P 0`;
    await this.ns.sh(
      'mkdir -p /run/frr && unshare -m sh -c "mount -t tmpfs tmpfs /run/frr && chown frr:frr /run/frr && ' +
        `/usr/lib/frr/zebra -d ${common} -i ${d}/zebra.pid --log file:${d}/zebra.log && ` +
        `/usr/lib/frr/bgpd -d ${common} -i ${d}/bgpd.pid --log file:${d}/bgpd.log"`,
    );
  }

  async vtysh(command: string): Promise<string> {
    const r = await run(['vtysh', '--vty_socket', this.dir, '-c', command], { timeoutMs: 10_000 });
    return r.stdout;
  }

  /** Configuration commands in order, as one `vtysh` session (`configure terminal` first). */
  async configure(commands: readonly string[]): Promise<void> {
    await run(['vtysh', '--vty_socket', this.dir, '-c', 'configure terminal', ...commands.flatMap((c) => ['-c', c])], { timeoutMs: 10_000 });
  }

  /** Neighbor address → BGP state (`Established`, `Active`, …), of the IPv4 or IPv6 unicast sessions. */
  async sessions(family: 4 | 6 = 4): Promise<Map<string, string>> {
    const j = JSON.parse(await this.vtysh(`show bgp ipv${family} unicast summary json`)) as { peers?: Record<string, { state: string }> };
    return new Map(Object.entries(j.peers ?? {}).map(([ip, p]) => [ip, p.state]));
  }

  /** BGP routes the ToR installed: prefix → next hop (IPv6: the global next hop). */
  async routes(family: 4 | 6 = 4): Promise<Map<string, string>> {
    const j = JSON.parse(await this.vtysh(`show ${family === 6 ? 'ipv6' : 'ip'} route bgp json`)) as Record<string, { selected?: boolean; nexthops: { ip?: string }[] }[]>;
    const out = new Map<string, string>();
    for (const [prefix, entries] of Object.entries(j)) {
      const sel = entries.find((e) => e.selected) ?? entries[0];
      if (sel?.nexthops[0]?.ip) out.set(prefix, sel.nexthops[0].ip);
    }
    return out;
  }

  async stop(): Promise<void> {
    for (const f of ['bgpd.pid', 'zebra.pid']) {
      await run(['sh', '-c', `kill $(cat ${join(this.dir, f)}) 2>/dev/null`], { allowFail: true });
    }
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
