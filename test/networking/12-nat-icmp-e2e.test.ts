// A workload address never leaves through nat-outgoing in an ICMP message (docs/security.md), with
// real packets in the three-node cluster: a workload's own kernel answers a reply of its SNATed
// UDP flow with port unreachable, and the outside host receives it from the node's address,
// quoting the datagram as the outside sent it; a forged error and an ICMP timestamp request
// from the workload never arrive and are counted (nat_icmp). The outside host's capture never
// shows the workload's address.
import t from 'tap';
import { InProcessCluster } from '../../src/testbed';
import { Capture, scapy, ipId } from '../../src/testbed/probes';

t.test('ICMP from a nat-outgoing workload leaves translated or not at all', async (t) => {
  const c = await InProcessCluster.create('naticmp');
  const caps: Capture[] = [];
  t.teardown(async () => { for (const x of caps) x.stop(); await c.destroy(); });
  c.setPool();
  const wa = await c.addWorkload('wa', 'node-a', '192.168.1.10', 1500);
  await c.sync();
  const A = c.nodes.get('node-a')!;
  const cap = await Capture.start(c.outside, 'udp or icmp');
  caps.push(cap);
  const WL = 'ee:ee:ee:ee:ee:ee';
  const OUT = c.outsideIp.replace(/\./g, '\\.');

  await scapy(wa.ns, [`IP(src='${wa.ip}', dst='${c.outsideIp}', id=2001)/UDP(sport=41234, dport=9999)/Raw(b'q')`], WL);
  t.ok(await cap.waitFor(ipId(2001)), 'the workload\'s datagram reaches the outside host');
  const m = new RegExp(`198\\.18\\.1\\.10\\.(\\d+) > ${OUT}\\.9999: UDP`).exec(cap.text());
  t.ok(m, 'from the node address (SNAT)');
  const natPort = Number(m?.[1]);
  // The outside answers; nothing listens on the workload's port, so its kernel sends port unreachable.
  await scapy(c.outside, [`IP(src='${c.outsideIp}', dst='198.18.1.10', id=2002)/UDP(sport=9999, dport=${natPort})/Raw(b'r')`]);
  t.ok(await cap.waitFor(new RegExp(`198\\.18\\.1\\.10 > ${OUT}: ICMP 198\\.18\\.1\\.10 udp port ${natPort} unreachable`)),
    'the workload kernel\'s port unreachable arrives from the node, about the node\'s port');

  const dropsBefore = A.dp!.housekeeping().drops.nat_icmp ?? 0n;
  await scapy(wa.ns, [
    `IP(src='${wa.ip}', dst='${c.outsideIp}', id=2003)/ICMP(type=3, code=3)/IP(src='${c.outsideIp}', dst='${wa.ip}')/UDP(sport=9999, dport=6000)/Raw(b'x' * 900)`,
    `IP(src='${wa.ip}', dst='${c.outsideIp}', id=2004)/ICMP(type=13)`,
    `IP(src='${wa.ip}', dst='${c.outsideIp}', id=2099)/UDP(sport=41234, dport=9999)/Raw(b'sentinel')`,
  ], WL);
  t.ok(await cap.waitFor(ipId(2099)), 'sentinel arrives');
  t.notOk(cap.has(ipId(2003)), 'an error quoting no SNATed flow does not leave');
  t.notOk(cap.has(ipId(2004)), 'an ICMP timestamp request does not leave');
  t.equal((A.dp!.housekeeping().drops.nat_icmp ?? 0n) - dropsBefore, 2n, 'both counted as nat_icmp on node A');
  t.notOk(cap.text().includes('192.168.1.10'), 'the workload address appears nowhere in the outside host\'s capture');
});
