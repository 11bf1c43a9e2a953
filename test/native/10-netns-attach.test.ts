// tc and XDP on a veth pair between two namespaces this test creates, programmed from this
// (root-namespace) process through the netns-path option; real ping traffic; counters; query;
// replace/drop; detach; and a check that the thread is back in its own namespace and nothing is
// left behind. Addresses are 198.18.0.0/15, only inside the test's namespaces.
import * as fs from 'node:fs';
import t, { type Test } from 'tap';
import {
  BpfObject, ifindex, tcAttach, tcDestroyHook, tcDetach, tcQuery, xdpAttach, xdpDetach, xdpQuery,
  type BpfMap, type BpfProgram,
} from '../../src/dataplane/native';
import { Topology, leftoverNamespaces, type Netns } from '../../src/util/netns';
import { IPPROTO, OBJ, expectBpfError, requireRoot, tempPinRoot } from './helpers/env';
import { tnFlowKey, tnFlowVal } from './helpers/layouts';

requireRoot(t);

const A_IP = '198.18.0.1';
const B_IP = '198.18.0.2';

function packets(counts: BpfMap, proto: number): bigint {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(proto);
  return counts.splitPerCpu(counts.get(k)).reduce((s, v) => s + v.readBigUInt64LE(0), 0n);
}

async function ping(ns: Netns, dst: string, count: number): Promise<{ received: number }> {
  const r = await ns.exec(['ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', dst], { allowFail: true, timeoutMs: 20_000 });
  const m = /(\d+) received/.exec(r.stdout);
  return { received: m ? Number(m[1]) : 0 };
}

async function loadPair(t: Test, pinRoot: string, dropIcmp: boolean): Promise<{ tc: BpfProgram; xdp: BpfProgram; counts: BpfMap; flows: BpfMap }> {
  const obj = BpfObject.open(OBJ, { pinRoot });
  if (dropIcmp) { const b = Buffer.alloc(32); b[0] = 1 << IPPROTO.ICMP; obj.setConstant('tn_drop_protos', b); }
  await obj.load();
  const r = { tc: obj.program('tn_tc'), xdp: obj.program('tn_xdp'), counts: obj.map('tn_counts'), flows: obj.map('tn_flows') };
  obj.close();
  t.teardown(() => { for (const h of Object.values(r)) h.close(); });
  return r;
}

t.test('attach, traffic, query, replace, detach inside namespaces', async (t) => {
  const myNs = fs.readlinkSync('/proc/thread-self/ns/net');
  const topo = Topology.create('tnative');
  t.teardown(() => topo.destroy());
  const a = await topo.addNetns('a');
  const b = await topo.addNetns('b');
  await topo.addVeth(a, 'tn-a', b, 'tn-b');
  await a.exec(['ip', 'addr', 'add', `${A_IP}/24`, 'dev', 'tn-a']);
  await b.exec(['ip', 'addr', 'add', `${B_IP}/24`, 'dev', 'tn-b']);
  t.equal((await ping(a, B_IP, 1)).received, 1, 'baseline: the pair forwards');

  const pinRoot = tempPinRoot(t, 'netns');
  const tcSide = await loadPair(t, pinRoot, false);
  const xdpSide = await loadPair(t, pinRoot, false);
  const dropper = await loadPair(t, pinRoot, true);

  // Names resolve inside the namespace, not here.
  t.equal(ifindex('tn-b', { netns: b.path }), await b.ifindex('tn-b'));
  expectBpfError(t, () => ifindex('tn-b'), { code: 'ERR_BPF_IFINDEX', errnoName: 'ENODEV', message: /no interface 'tn-b' in the current network namespace/ });
  expectBpfError(t, () => ifindex('tn-a', { netns: b.path }), { errnoName: 'ENODEV', message: new RegExp(`no interface 'tn-a' in ${b.path}`) });
  expectBpfError(t, () => ifindex('lo', { netns: '/run/netns/tortie-no-such-ns' }), { code: 'ERR_BPF_NETNS', errnoName: 'ENOENT' });

  // tc ingress + egress on tn-b (namespace b), XDP generic on tn-a (namespace a).
  const tcId = tcSide.tc.id;
  const ing = tcAttach({ netns: b.path, iface: 'tn-b', direction: 'ingress', program: tcSide.tc });
  const egr = tcAttach({ netns: b.path, iface: 'tn-b', direction: 'egress', program: tcSide.tc, handle: 2, priority: 3 });
  t.match(ing, { direction: 'ingress', handle: 1, priority: 1, progId: tcId });
  t.match(egr, { direction: 'egress', handle: 2, priority: 3, progId: tcId });
  t.match(tcQuery({ netns: b.path, iface: 'tn-b', direction: 'ingress' }), { progId: tcId, handle: 1, priority: 1 });
  t.match(tcQuery({ netns: b.path, iface: ing.ifindex, direction: 'egress', handle: 2, priority: 3 }), { progId: tcId });
  t.equal(tcQuery({ netns: b.path, iface: 'tn-b', direction: 'egress' }), undefined, 'nothing at (1, 1) on egress');
  t.equal(tcQuery({ netns: a.path, iface: 'tn-a', direction: 'ingress' }), undefined, 'no clsact on tn-a');
  expectBpfError(t, () => tcAttach({ netns: b.path, iface: 'tn-b', direction: 'ingress', program: xdpSide.tc }), { code: 'ERR_BPF_TC_ATTACH', errnoName: 'EEXIST', message: /use replace/ });

  xdpAttach({ netns: a.path, iface: 'tn-a', program: xdpSide.xdp, mode: 'generic' });
  t.match(xdpQuery({ netns: a.path, iface: 'tn-a' }), { attachMode: 'generic', genericProgId: xdpSide.xdp.id, nativeProgId: 0 });
  t.match(xdpQuery({ netns: b.path, iface: 'tn-b' }), { attachMode: 'none', progId: 0 });

  t.equal((await ping(a, B_IP, 5)).received, 5, 'traffic flows through the programs');
  t.equal(packets(tcSide.counts, IPPROTO.ICMP), 10n, 'tc on tn-b: 5 requests in + 5 replies out');
  t.equal(packets(xdpSide.counts, IPPROTO.ICMP), 5n, 'XDP on tn-a: the 5 replies');
  // tn_flows is pinned by name under the same root: one map shared by all three objects.
  const req = tcSide.flows.lookup(tnFlowKey.encode({ saddr: A_IP, daddr: B_IP, proto: IPPROTO.ICMP }));
  const rep = tcSide.flows.lookup(tnFlowKey.encode({ saddr: B_IP, daddr: A_IP, proto: IPPROTO.ICMP }));
  t.equal(req && tnFlowVal.decode(req).packets, 5n, 'requests seen once (tc ingress on b)');
  t.equal(rep && tnFlowVal.decode(rep).packets, 10n, 'replies seen twice (tc egress on b, XDP on a)');
  t.equal(dropper.flows.info.id, tcSide.flows.info.id, 'shared pinned map');

  // Native XDP on the veth, an ICMP-dropping program: real drops. Replace is explicit.
  xdpDetach({ netns: a.path, iface: 'tn-a', mode: 'generic' });
  xdpAttach({ netns: a.path, iface: 'tn-a', program: xdpSide.xdp, mode: 'native' });
  t.match(xdpQuery({ netns: a.path, iface: 'tn-a' }), { attachMode: 'native', nativeProgId: xdpSide.xdp.id, genericProgId: 0 });
  expectBpfError(t, () => xdpAttach({ netns: a.path, iface: 'tn-a', program: dropper.xdp, mode: 'native' }), { code: 'ERR_BPF_XDP_ATTACH', errnoName: 'EBUSY' }, 'no silent replace');
  expectBpfError(t, () => xdpAttach({ netns: a.path, iface: 'tn-a', program: dropper.xdp, mode: 'native', expected: tcSide.xdp }), { code: 'ERR_BPF_XDP_ATTACH', errnoName: 'EEXIST' }, 'replace only if the expected program is attached');
  xdpAttach({ netns: a.path, iface: 'tn-a', program: dropper.xdp, mode: 'native', expected: xdpSide.xdp });
  t.equal(xdpQuery({ netns: a.path, iface: 'tn-a' }).nativeProgId, dropper.xdp.id, 'atomically replaced');
  t.equal((await ping(a, B_IP, 3)).received, 0, 'native XDP drops the replies');
  t.equal(packets(dropper.counts, IPPROTO.ICMP), 3n, 'and counted them');

  // Replace the tc ingress filter in place, then detach everything.
  t.match(tcAttach({ netns: b.path, iface: 'tn-b', direction: 'ingress', program: dropper.tc, replace: true }), { progId: dropper.tc.id });
  xdpDetach({ netns: a.path, iface: 'tn-a', mode: 'native' });
  t.equal((await ping(a, B_IP, 2)).received, 0, 'tc ingress on b now drops the requests');
  tcDetach({ netns: b.path, iface: 'tn-b', direction: 'ingress' });
  tcDetach({ netns: b.path, iface: 'tn-b', direction: 'egress', handle: 2, priority: 3 });
  expectBpfError(t, () => tcDetach({ netns: b.path, iface: 'tn-b', direction: 'egress', handle: 2, priority: 3 }), { code: 'ERR_BPF_TC_DETACH', errnoName: 'ENOENT' });
  t.equal(tcQuery({ netns: b.path, iface: 'tn-b', direction: 'ingress' }), undefined);
  t.match(xdpQuery({ netns: a.path, iface: 'tn-a' }), { attachMode: 'none', progId: 0 });
  xdpDetach({ netns: a.path, iface: 'tn-a', mode: 'native' }); // nothing attached: not an error
  t.equal(tcDestroyHook({ netns: b.path, iface: 'tn-b' }), true, 'clsact removed');
  t.equal(tcDestroyHook({ netns: b.path, iface: 'tn-b' }), false, 'already gone');
  const qdisc = await b.exec(['tc', 'qdisc', 'show', 'dev', 'tn-b']);
  t.notMatch(qdisc.stdout, /clsact/, 'tc agrees: no clsact');
  t.equal((await ping(a, B_IP, 2)).received, 2, 'traffic flows again without programs');

  t.equal(fs.readlinkSync('/proc/thread-self/ns/net'), myNs, 'the calling thread is back in its own namespace');
  await topo.destroy();
  t.same(leftoverNamespaces(topo.prefix), [], 'namespaces removed');
});

t.test('test runs inside a namespace see its devices', async (t) => {
  const topo = Topology.create('tnrun');
  t.teardown(() => topo.destroy());
  const a = await topo.addNetns('a');
  // A device whose ifindex exists only in this namespace.
  const IDX = 40123;
  await a.exec(['ip', 'link', 'add', 'tn-x', 'index', String(IDX), 'type', 'veth', 'peer', 'name', 'tn-y']);
  await a.exec(['ip', 'link', 'set', 'tn-x', 'up']);
  await a.exec(['ip', 'link', 'set', 'tn-y', 'up']);
  const { xdp } = await loadPair(t, tempPinRoot(t, 'nsrun'), false);
  const pkt = Buffer.alloc(64);
  pkt.writeUInt16BE(0x0800, 12);
  pkt[14] = 0x45;
  pkt[23] = IPPROTO.UDP;
  const ctx = Buffer.alloc(24); // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
  ctx.writeUInt32LE(pkt.length, 4);
  ctx.writeUInt32LE(IDX, 12);
  const r = xdp.testRun(pkt, { ctx, netns: a.path });
  t.equal(r.retval, 2, 'runs with the namespace\'s device as ingress');
  t.equal(r.ctx?.readUInt32LE(12), IDX);
  expectBpfError(t, () => xdp.testRun(pkt, { ctx }), { code: 'ERR_BPF_PROG_TEST_RUN', errnoName: 'ENODEV' }, 'the same ifindex does not exist here');
  const b = xdp.testRunBatch([pkt, pkt], { netns: a.path });
  t.same([...b.retvals], [2, 2], 'batched runs take netns too');
  const c = await xdp.testRunBatchAsync([pkt], { netns: a.path });
  t.same([...c.retvals], [2], 'and off-loop ones');
  t.equal(fs.readlinkSync('/proc/thread-self/ns/net'), fs.readlinkSync('/proc/self/ns/net'), 'back in our namespace');
});

t.test('option validation happens before entering a namespace', async (t) => {
  expectBpfError(t, () => tcAttach({ netns: 'run/netns/x', iface: 'x', direction: 'ingress', program: 3 }), { code: 'ERR_BPF_INVALID_OPTION', message: /netns must be an absolute path/ });
  expectBpfError(t, () => tcAttach({ netns: '/run/netns/x', iface: 'x', direction: 'sideways' as 'ingress', program: 3 }), { message: /direction must be one of ingress, egress, got "sideways"/ });
  expectBpfError(t, () => tcQuery({ netns: '/run/netns/x', iface: 'x', direction: 'egress', priority: 70000 }), { message: /priority must be an integer in 1\.\.65535/ });
  expectBpfError(t, () => xdpAttach({ netns: '/run/netns/x', iface: 'a-very-long-interface-name', program: 3 }), { message: /longer than 15 characters/ });
  expectBpfError(t, () => xdpDetach({ iface: 'x', mode: 'turbo' as 'native' }), { message: /mode must be one of native, generic, offload, auto/ });
});
