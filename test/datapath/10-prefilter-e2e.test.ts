// The XDP prefilter on a node's uplink (a veth in a namespace this test made): traffic from a
// doNotTrack-denied source never reaches the node's stack, other traffic does; drops counted.
import t from 'tap';
import { SingleNode, NODE_IP, OUTSIDE_IP } from '../../src/testbed';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { loadPrefilter, type PrefilterDatapath } from '../../src/dataplane/bpf/loader';
import { encodePrefilter } from '../../src/dataplane/bpf/encode';
import { readCounters, counterPackets } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { xdpAttach, xdpDetach, xdpQuery } from '../../src/dataplane/native';

t.test('uplink XDP prefilter in a namespace', async (t) => {
  const topo = await SingleNode.create('dppf', { outsideRoutesPools: true });
  const pinRoot = uniquePinRoot('pfe2e');
  let dp: PrefilterDatapath | undefined;
  t.teardown(async () => { dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });
  dp = await loadPrefilter({ pinRoot });
  for (const e of encodePrefilter({ deny: [{ family: 4, cidr: '198.18.0.64/27', ruleId: 77 }], skipped: [] })) dp.pf4.update(e.key, e.value);
  const uplink = await topo.node.ifindex('eth0');
  xdpAttach({ iface: 'eth0', netns: topo.node.path, program: dp.prog, mode: 'native' });
  t.equal(xdpQuery({ iface: 'eth0', netns: topo.node.path }).attachMode, 'native', 'attached in native mode on the veth');
  await topo.outside.sh('ip addr add 198.18.0.66/32 dev eth0');

  const ping = (src: string) => topo.outside.exec(['ping', '-c', '3', '-W', '1', '-i', '0.2', '-I', src, NODE_IP], { allowFail: true, timeoutMs: 10_000 });
  t.equal((await ping(OUTSIDE_IP)).code, 0, 'allowed source reaches the node');
  const before = counterPackets(readCounters(dp.cnt), uplink, Dir.UPLINK, R.DNT_DENY);
  t.not((await ping('198.18.0.66')).code, 0, 'denied source does not');
  t.equal(counterPackets(readCounters(dp.cnt), uplink, Dir.UPLINK, R.DNT_DENY) - before, 3n, 'its three echo requests dropped by XDP');
  xdpDetach({ iface: 'eth0', netns: topo.node.path, mode: 'native' });
  t.equal((await ping('198.18.0.66')).code, 0, 'and pass once the prefilter is detached');
});
