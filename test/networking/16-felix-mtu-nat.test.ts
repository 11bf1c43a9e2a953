// Felix's MTU and natOutgoingAddress with real packets, on the three-node cluster with a jumbo
// underlay (the AWS case: 9001 on every uplink):
//   - detection: the smallest MTU of the interfaces matching mtuIfacePattern (eth0: 9001) less
//     the IPIP header → IPIP routes carry mtu 8981, the workload program's fast path knows it
//     (netcfg), and the MTU file the CNI plugin reads says 8981;
//   - an 8981-byte DF packet crosses the tunnel, an 8982-byte one gets frag-needed with mtu 8981;
//   - the uplink's MTU changed with ip link: routes and the MTU file follow by themselves;
//   - ipipMTU 1400 set while running: routes, netcfg and the MTU file follow; a 1401-byte DF
//     packet gets frag-needed with mtu 1400 (the fast path would otherwise have encapsulated it);
//   - natOutgoingAddress set while running: the outside host's capture and socket see that
//     address, replies come back; unset: the node address again.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessCluster } from '../../src/testbed';
import type { Netns } from '../../src/util/netns';
import { netcfgCodec, NETCFG_KEY } from '../../src/dataplane/bpf/net-codecs';
import { DEFAULT_MTU_PATTERN } from '../../src/dataplane/routing';

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One DF echo of `total` bytes (IP header included); the ping output, for frag-needed. */
async function dfPing(from: Netns, ip: string, total: number): Promise<{ ok: boolean; out: string }> {
  const r = await from.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', String(total - 28), ip], { allowFail: true });
  return { ok: r.code === 0, out: r.stdout + r.stderr };
}

/** ping until an answer (the first DF ping after a frag-needed may meet the error the kernel caches). */
async function dfPingPasses(from: Netns, ip: string, total: number): Promise<boolean> {
  return eventually(async () => (await dfPing(from, ip, total)).ok, 5000);
}

async function routeTo(ns: Netns, ip: string): Promise<string> {
  return (await ns.exec(['ip', '-4', 'route', 'show', ip, 'proto', '122'])).stdout.trim();
}

t.test('MTU detection on a jumbo underlay, ipipMTU and natOutgoingAddress while running', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-mtu-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mtuFile = (node: string) => join(dir, `${node}.mtu`);
  const c = await InProcessCluster.create('flxmtu', {
    underlayMtu: 9001,
    routing: (node) => ({ mtu: { ipipMtu: 0, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile(node) } }),
  });
  t.teardown(() => c.destroy());
  c.setPool();
  // wa's veth is bigger than the tunnel so that it can send what must be refused.
  const wa = await c.addWorkload('wa', 'node-a', '192.168.1.10', 9001);
  const wc = await c.addWorkload('wc', 'node-c', '192.168.3.10', 8981);
  await c.sync();
  const A = c.nodes.get('node-a')!;
  const routesA = A.dp!.routing!;
  const netcfg = () => netcfgCodec.decode(routesA.maps.netcfg.lookup(NETCFG_KEY)!);

  t.test('detected: 9001 on eth0 → IPIP MTU 8981 in routes, netcfg and the MTU file', async (t) => {
    t.same(routesA.mtuInForce && { host: routesA.mtuInForce.host, ipip: routesA.mtuInForce.ipip }, { host: 9001, ipip: 8981 });
    t.equal(await routeTo(A.ns, wc.ip), '192.168.3.10 via 198.18.1.1 dev eth0 mtu 8981');
    t.equal(netcfg().ipip_mtu, 8981, 'the fast path knows the tunnel MTU');
    t.equal(readFileSync(mtuFile('node-a'), 'utf8'), '8981\n', 'what the CNI plugin gives new workloads');
    t.equal(readFileSync(mtuFile('node-c'), 'utf8'), '8981\n');
  });

  t.test('8981 bytes cross the tunnel; 8982 with DF get frag-needed mtu 8981', async (t) => {
    // A first small echo makes the router a known neighbour (without one the fast path leaves
    // packets to the kernel, which encapsulates them on the uplink instead).
    t.ok(await dfPingPasses(wa.ns, wc.ip, 100), 'a small echo crosses');
    const a0 = c.stats('node-a');
    t.ok(await dfPingPasses(wa.ns, wc.ip, 8981), 'an 8981-byte DF echo and its reply cross');
    const a1 = c.stats('node-a');
    t.ok(a1.encapFast > a0.encapFast, `encapsulated in the fast path (${JSON.stringify({ fast: String(a1.encapFast - a0.encapFast), uplink: String(a1.encapUplink - a0.encapUplink), fallback: String(a1.encapFallback - a0.encapFallback) })})`);
    const big = await dfPing(wa.ns, wc.ip, 8982);
    t.notOk(big.ok, 'an 8982-byte DF echo does not pass');
    t.match(big.out, /mtu ?= ?8981/i, 'node A answered frag-needed with mtu 8981');
  });

  t.test('ipipMTU 1400 while running: routes, netcfg, MTU file and frag-needed follow', async (t) => {
    routesA.setMtu({ ipipMtu: 1400, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile('node-a') });
    await routesA.apply();
    t.equal(await routeTo(A.ns, wc.ip), '192.168.3.10 via 198.18.1.1 dev eth0 mtu 1400');
    t.equal(netcfg().ipip_mtu, 1400);
    t.equal(readFileSync(mtuFile('node-a'), 'utf8'), '1400\n');
    t.ok(await dfPingPasses(wa.ns, wc.ip, 1400), 'a 1400-byte DF echo crosses');
    const over = await dfPing(wa.ns, wc.ip, 1401);
    t.notOk(over.ok, 'a 1401-byte DF echo does not pass (1421 bytes would fit the 9001 uplink)');
    t.match(over.out, /mtu ?= ?1400/i, 'frag-needed with mtu 1400');
    routesA.setMtu({ ipipMtu: 0, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile('node-a') });
    await routesA.apply();
    t.equal(await routeTo(A.ns, wc.ip), '192.168.3.10 via 198.18.1.1 dev eth0 mtu 8981', 'back to detection');
    t.equal(readFileSync(mtuFile('node-a'), 'utf8'), '8981\n');
  });

  t.test('the uplink\'s MTU changed while running: detected again without any apply from outside', async (t) => {
    await A.ns.exec(['ip', 'link', 'set', 'eth0', 'mtu', '9000']);
    t.ok(await eventually(async () => (await routeTo(A.ns, wc.ip)).endsWith('mtu 8980'), 10_000), 'the route follows (9000 - 20)');
    t.equal(readFileSync(mtuFile('node-a'), 'utf8'), '8980\n', 'and the MTU file');
    await A.ns.exec(['ip', 'link', 'set', 'eth0', 'mtu', '9001']);
    t.ok(await eventually(async () => (await routeTo(A.ns, wc.ip)).endsWith('mtu 8981'), 10_000), 'back to 8981');
  });

  t.test('mtuIfacePattern matching nothing: the uplink\'s MTU', async (t) => {
    routesA.setMtu({ ipipMtu: 0, ifacePattern: '^nomatch$', file: mtuFile('node-a') });
    await A.ns.exec(['ip', 'link', 'set', 'eth0', 'mtu', '9000']);
    t.teardown(() => A.ns.exec(['ip', 'link', 'set', 'eth0', 'mtu', '9001']));
    await routesA.apply();
    t.equal(routesA.mtuInForce?.ipip, 8980);
    t.match(routesA.mtuInForce?.from, /uplink eth0/);
    routesA.setMtu({ ipipMtu: 0, ifacePattern: DEFAULT_MTU_PATTERN, file: mtuFile('node-a') });
  });

  t.test('natOutgoingAddress while running: the outside host sees it, replies come back', async (t) => {
    await A.ns.exec(['ip', 'addr', 'add', '198.18.1.100/32', 'dev', 'eth0']);
    c.outside.spawn(['socat', 'TCP-LISTEN:7000,fork,reuseaddr', 'SYSTEM:read x; echo $SOCAT_PEERADDR']);
    await eventually(async () => (await c.outside.exec(['ss', '-ltnH', 'sport = :7000'])).stdout.trim() !== '', 5000);
    const seen = async () => (await wa.ns.exec(['sh', '-c', `echo hi | nc -w 3 ${c.outsideIp} 7000`], { allowFail: true, timeoutMs: 8000 })).stdout.trim();
    t.equal(await seen(), '198.18.1.10', 'before: the node address');

    routesA.setNatOutgoingAddress('198.18.1.100');
    await routesA.apply();
    t.equal(netcfg().snat_ip, '198.18.1.100');
    const cap = c.outside.spawn(['tcpdump', '-nli', 'eth0', '-c', '1', 'tcp dst port 7000 and src host 198.18.1.100'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let captured = '', capErr = '';
    cap.stdout!.on('data', (d) => { captured += String(d); });
    cap.stderr!.on('data', (d) => { capErr += String(d); });
    await eventually(async () => capErr.includes('listening on'), 5000);
    t.equal(await seen(), '198.18.1.100', 'the outside socket saw natOutgoingAddress, and its answer came back');
    t.ok(await eventually(async () => new RegExp(`198\\.18\\.1\\.100\\.\\d+ > ${c.outsideIp.replace(/\./g, '\\.')}\\.7000`).test(captured), 5000), 'the outside capture saw natOutgoingAddress');
    cap.kill('SIGINT');
    t.ok((await wa.ns.exec(['ping', '-c', '1', '-W', '2', c.outsideIp], { allowFail: true })).code === 0, 'ping through the new address and back');

    routesA.setNatOutgoingAddress('');
    await routesA.apply();
    t.equal(netcfg().snat_ip, '0.0.0.0');
    t.equal(await seen(), '198.18.1.10', 'unset: the node address again');
  });
});
