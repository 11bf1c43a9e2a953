// The IPv6 same-node group compares real IPv6 policy on every dataplane, not IPv4 rules that let
// IPv6 through untouched: on the benchmark topology built dual stack, the scenario's IPv6
// rendering is loaded through the bench's own DataplaneSwitch and decides real ICMPv6 echoes.
//   - tortie: the client (a member) reaches the server's ULA address; a non-member source (a ULA
//     on the node, which tortie judges as host → workload) is denied by the server's policy.
//   - ip6tables (inet6 ipset) and nftables (`table ip6 calico`): the client reaches the server;
//     taken out of the member set it is denied, and the endpoint chain's drop moves.
//   - bare: nothing filters.
// And the suite's IPv6 latency tool (bench/tools/udp-pingpong.c, built by the bench) runs against
// its echo server there, every echo on tortie peer-redirected (none through the fib, none lost).
import t from 'tap';
import { BenchTopology } from '../../bench/lib/topology';
import { DataplaneSwitch } from '../../bench/lib/dataplanes';
import { CLIENT, MEMBER_SET6, NFT_MEMBER_SET, NFT_TABLE, SERVER } from '../../bench/lib/scenarios';
import { pingPongTool, startServers, udpPingPong } from '../../bench/lib/tools';
import type { Netns } from '../../src/util/netns';

const NODE_SRC6 = 'fd00:255::100';

async function ping6(from: Netns, src?: string): Promise<boolean> {
  const r = await from.exec(['ping', '-6', '-n', '-q', '-c', '1', '-W', '1', ...(src ? ['-I', src] : []), SERVER.ip6], { allowFail: true, timeoutMs: 10_000 });
  return r.code === 0;
}

/** Answered within `tries` attempts (the first may wait for neighbour discovery). */
async function reaches6(from: Netns, src?: string, tries = 10): Promise<boolean> {
  for (let i = 0; i < tries; i++) if (await ping6(from, src)) return true;
  return false;
}

t.test('the IPv6 scenario is enforced by tortie, ip6tables and nftables on real packets', async (t) => {
  const topo = await BenchTopology.create('b6', { v6: true });
  t.teardown(() => topo.destroy());
  const sw = new DataplaneSwitch(topo, 'nft');
  t.teardown(() => sw.close());
  await sw.open();
  t.equal(topo.server.ip6, SERVER.ip6, 'the server is dual stack');
  await topo.node.sh(`ip -6 addr add ${NODE_SRC6}/128 dev lo nodad`);

  t.ok(await reaches6(topo.client.ns), 'bare: the client reaches the server over IPv6');
  t.ok(await reaches6(topo.node, NODE_SRC6), 'bare: so does a non-member source on the node');

  const tm = await sw.program({ rules: 5, members: 20 }, { family: 6 });
  t.ok(tm.prefixes > 0 && tm.iptablesRules > 0 && tm.nftablesRules > 0, 'programmed for every dataplane');

  await sw.use('tortie');
  const hr0 = sw.hostRouteStats(6);
  t.ok(await reaches6(topo.client.ns), 'tortie: the member client reaches the server');
  // The endpoints name their workloads' MACs (as the CNI plugin writes them), so host routing
  // finds the server by its address (tortie_epdst_v1), not by a fib lookup per packet, which
  // is what the suite measured while its endpoints had no MAC.
  const hr1 = sw.hostRouteStats(6);
  t.ok(hr1.peer > hr0.peer, 'tortie: the echoes were peer-redirected');
  t.equal(hr1.peerFib, hr0.peerFib, 'tortie: none of them through the fib');
  t.notOk(await ping6(topo.node, NODE_SRC6), 'tortie: the non-member source is denied by the server\'s policy');

  // The ping-pong tool of the IPv6 latency figures, on the path they measure.
  t.equal(pingPongTool().name, 'udp-pingpong', `the bench built bench/tools/udp-pingpong.c (${pingPongTool().why ?? ''})`);
  t.teardown(await startServers(topo.server.ns, [SERVER.ip, SERVER.ip6]));
  const hr2 = sw.hostRouteStats(6);
  let pp: Awaited<ReturnType<typeof udpPingPong>> | undefined;
  for (let i = 0; i < 50 && !pp; i++) {
    // The echo server may still be starting: the first datagrams then come back refused.
    const r = await udpPingPong(topo.client.ns, SERVER.ip6, 0.3).catch(() => undefined);
    if (r && r.lost === 0) pp = r;
    else await new Promise((res) => setTimeout(res, 100));
  }
  t.ok(pp && pp.tool === 'udp-pingpong' && pp.summary.observations > 0, 'tortie: udp-pingpong measured round trips over IPv6');
  const hr3 = sw.hostRouteStats(6);
  t.ok(pp && hr3.peer - hr2.peer >= 2 * pp.summary.observations, 'tortie: both datagrams of every round trip peer-redirected');
  t.equal(hr3.peerFib, hr2.peerFib, 'tortie: none of them through the fib');

  await sw.use('iptables');
  t.ok(await reaches6(topo.client.ns), 'ip6tables: the member client reaches the server');
  const list = await topo.node.exec(['ipset', 'list', MEMBER_SET6]);
  t.match(list.stdout, /Header: family inet6/, 'the member set is an inet6 ipset');
  await topo.node.exec(['ipset', 'del', MEMBER_SET6, CLIENT.ip6]);
  t.notOk(await ping6(topo.client.ns), 'ip6tables: out of the set, the client is denied');
  const chain = await topo.node.exec(['ip6tables-nft', '-L', 'cali-tw-benchsrv', '-v', '-x', '-n']);
  t.match(chain.stdout, /^\s*[1-9]\d*\s+\d+\s+DROP\s+.*\n?$/m, 'by the server endpoint chain\'s DROP');

  await sw.use('nftables');
  const tables = await topo.node.exec(['nft', 'list', 'tables']);
  t.equal(tables.stdout.trim(), `table ip6 ${NFT_TABLE}`, 'nftables: one ip6 table, nothing of iptables left');
  t.ok(await reaches6(topo.client.ns), 'nftables: the member client reaches the server');
  await topo.node.exec(['nft', 'delete', 'element', 'ip6', NFT_TABLE, NFT_MEMBER_SET, `{ ${CLIENT.ip6} }`]);
  t.notOk(await ping6(topo.client.ns), 'nftables: out of the set, the client is denied');
  const tw = await topo.node.exec(['nft', 'list', 'chain', 'ip6', NFT_TABLE, 'filter-cali-tw-benchsrv']);
  const drops = [...tw.stdout.matchAll(/counter packets (\d+) bytes \d+ drop/g)].map((m) => Number(m[1]));
  t.ok((drops[drops.length - 1] ?? 0) > 0, 'by the endpoint chain\'s last drop');

  await sw.use('bare');
  t.ok(await reaches6(topo.client.ns), 'bare again: the client reaches the server');
  t.equal((await topo.node.exec(['nft', 'list', 'tables'])).stdout.trim(), '', 'and no table is left');
});
