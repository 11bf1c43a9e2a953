// The benchmark's nftables peer is a real policy, not a no-op: the ruleset rendered from a
// scenario passes `nft -c`, loads with `nft -f` in the benchmark topology's node namespace, and
// then decides real packets — members of the named set reach the server, a source outside it is
// dropped by the server's endpoint chain (its drop counter moves), and taking the client out of
// the set denies the client too. Removing the table restores the bare path.
import t from 'tap';
import { BenchTopology, FLOOD_SRC, OUT_IP } from '../../bench/lib/topology';
import { CLIENT, NFT_MEMBER_SET, NFT_TABLE, SERVER, nftablesRuleset } from '../../bench/lib/scenarios';
import type { Netns } from '../../src/util/netns';

/** One echo request (from source address `src` when given); true when answered. */
async function pingOnce(from: Netns, to: string, src?: string): Promise<boolean> {
  const r = await from.exec(['ping', '-n', '-q', '-c', '1', '-W', '1', ...(src ? ['-I', src] : []), to], { allowFail: true, timeoutMs: 10_000 });
  return r.code === 0;
}

/** Answered within `tries` attempts (the first packets may wait for neighbour resolution). */
async function reaches(from: Netns, to: string, src?: string, tries = 10): Promise<boolean> {
  for (let i = 0; i < tries; i++) if (await pingOnce(from, to, src)) return true;
  return false;
}

/** Packets counted by the last rule (`counter drop`) of the server's to-workload chain. */
async function serverDrops(node: Netns): Promise<number> {
  const r = await node.exec(['nft', 'list', 'chain', 'ip', NFT_TABLE, 'filter-cali-tw-benchsrv']);
  const drops = [...r.stdout.matchAll(/counter packets (\d+) bytes \d+ drop/g)].map((m) => Number(m[1]));
  // The chain has two drop rules: ct state invalid, then "no policy accepted"; the latter is last.
  return drops[drops.length - 1] ?? NaN;
}

t.test('the rendered nftables ruleset loads and enforces its policy on real packets', async (t) => {
  const topo = await BenchTopology.create('nft');
  t.teardown(() => topo.destroy());
  const { node, out, client } = topo;

  t.ok(await reaches(out, SERVER.ip, OUT_IP), 'bare: the outside host reaches the server (nothing filters yet)');
  t.ok(await reaches(out, SERVER.ip, FLOOD_SRC), 'bare: so does the prefilter source');
  t.ok(await reaches(client.ns, SERVER.ip), 'bare: the client reaches the server');

  const script = nftablesRuleset({ rules: 5, members: 20 }, { prefilterUplink: 'eth0' });
  const check = await node.exec(['nft', '-c', '-f', '-'], { input: script, allowFail: true });
  t.equal(check.code, 0, `nft -c accepts the ruleset${check.stderr ? `: ${check.stderr}` : ''}`);
  await node.exec(['nft', '-f', '-'], { input: script });
  const listed = await node.exec(['nft', 'list', 'set', 'ip', NFT_TABLE, NFT_MEMBER_SET]);
  t.match(listed.stdout, new RegExp(CLIENT.ip.replace(/\./g, '\\.')), 'the client is in the member set');

  t.ok(await reaches(client.ns, SERVER.ip), 'allow: a member (the client) reaches the server through the policy');
  const before = await serverDrops(node);
  t.notOk(await pingOnce(out, SERVER.ip, OUT_IP), `deny: the outside host's ${OUT_IP} (not a member) does not reach the server`);
  t.ok(await serverDrops(node) > before, 'and its packet was dropped by the server endpoint chain (counter moved)');

  // The prefilter rule drops the flood source before routing.
  t.notOk(await pingOnce(out, SERVER.ip, FLOOD_SRC), 'the prefilter source is dropped');
  const raw = await node.exec(['nft', 'list', 'chain', 'ip', NFT_TABLE, 'raw-PREROUTING']);
  t.match(raw.stdout, /counter packets [1-9]\d* bytes \d+ drop/, 'by the raw-priority prerouting rule');

  await node.exec(['nft', 'delete', 'element', 'ip', NFT_TABLE, NFT_MEMBER_SET, `{ ${CLIENT.ip} }`]);
  const mid = await serverDrops(node);
  t.notOk(await pingOnce(client.ns, SERVER.ip), 'the client, taken out of the named set, is denied');
  t.ok(await serverDrops(node) > mid, 'by the same chain');

  // Reloading the script replaces the table (the client is a member again), as the bench does between scales.
  await node.exec(['nft', '-f', '-'], { input: nftablesRuleset({ rules: 1, members: 1 }) });
  t.ok(await reaches(client.ns, SERVER.ip), 'a reload restores the rendered state');
  const tables = await node.exec(['nft', 'list', 'tables']);
  t.equal(tables.stdout.trim(), `table ip ${NFT_TABLE}`, 'one table, no leftovers of the previous load');

  await node.exec(['nft', 'flush', 'ruleset']);
  t.ok(await reaches(out, SERVER.ip, OUT_IP), 'flushed: bare again');
});
