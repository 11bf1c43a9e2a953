// The uplink XDP prefilter is attached only while it has something to enforce (at least one
// deny-list entry, either family), on the three-node cluster with in-process agents:
//   - no doNotTrack deny: no XDP on node A's uplink, and the router's veth towards A keeps GSO
//     (TCP to A leaves the router's port in packets longer than the 1500-byte MTU);
//   - a doNotTrack deny of wc's address selecting node A: attached once the reconcile resolves,
//     wc's echo requests (IPIP from node C) dropped by XDP (counted as dnt_deny), wb still
//     passes, and the router's port towards A sends MTU-sized packets only (the veth gave up GSO);
//   - agent restarts adopt the state: with the entry the program stays (and keeps dropping); a
//     restart whose snapshot has no entry any more detaches what the previous run left;
//   - the policy removed: detached, wc reaches wa again, GSO is back;
//   - an IPv6 deny entry alone attaches it as well (either family counts).
import t from 'tap';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InProcessCluster } from '../../src/testbed';
import { gnp, node } from '../../src/testbed/fixtures';
import { Capture, until, waitListening } from '../../src/testbed/probes';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { xdpQuery } from '../../src/dataplane/native';
import { loadPrefilter } from '../../src/dataplane/bpf/loader';
import type { Netns } from '../../src/util/netns';

async function pings(from: Netns, ip: string): Promise<boolean> {
  const r = await from.exec(['ping', '-c', '2', '-i', '0.2', '-W', '1', ip], { allowFail: true, timeoutMs: 10_000 });
  return r.code === 0;
}


t.test('uplink XDP attached iff the prefilter has entries', async (t) => {
  const c = await InProcessCluster.create('xdpon');
  t.teardown(() => c.destroy());
  c.setPool();
  const A = c.nodes.get('node-a')!;
  const wa = await c.addWorkload('wa', 'node-a', '192.168.1.10', 1500);
  const wb = await c.addWorkload('wb', 'node-b', '192.168.1.74', 1500);
  const wc = await c.addWorkload('wc', 'node-c', '192.168.3.10');
  c.put(node('node-a', { prefilter: 'on' }, A.subnet));
  await c.sync();
  const xdp = () => xdpQuery({ iface: 'eth0', netns: A.ns.path });
  // Node A's counters (pinned; a second load shares them, its program is never attached).
  const pf = await loadPrefilter({ pinRoot: A.pinRoot });
  t.teardown(() => pf.close());
  const dntDrops = () => readCounters(pf.cnt).filter((r) => r.dir === Dir.UPLINK && r.reason === R.DNT_DENY).reduce((s, r) => s + r.packets, 0n);
  const deny = gnp('deny-wc', { selector: "prefilter == 'on'", doNotTrack: true, applyOnForward: true, types: ['Ingress'],
    ingress: [{ action: 'Deny', source: { nets: [`${wc.ip}/32`] } }] });
  const DENY_KEY = 'GlobalNetworkPolicy//deny-wc';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-xdpon-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const data = path.join(dir, 'data');
  fs.writeFileSync(data, crypto.randomBytes(4 * 1024 * 1024));

  /** 4 MiB over TCP from `from` to wa (wb: same subnet, routed directly), as the router's port
   *  towards A sends it: the IPv4 lengths tcpdump sees there, where a GSO packet is one capture. */
  let port = 5300;
  const lengths = async (from: Netns, proto: 'TCP'): Promise<number[]> => {
    const p = port++;
    const filter = `tcp and dst host ${wa.ip} and dst port ${p}`;
    const cap = await Capture.start(c.router, filter, { iface: 'pa', direction: 'out' });
    try {
      const recv = wa.ns.exec(['sh', '-c', `socat -u TCP-LISTEN:${p},reuseaddr - | wc -c`], { timeoutMs: 30_000 });
      await waitListening(wa.ns, p);
      await from.exec(['socat', '-u', `FILE:${data}`, `TCP:${wa.ip}:${p}`], { timeoutMs: 30_000 });
      t.equal((await recv).stdout.trim(), String(4 * 1024 * 1024), 'the stream arrived whole');
      await until(() => cap.ipLengths(proto).length >= 100, 5000);
      return cap.ipLengths(proto);
    } finally {
      cap.stop();
    }
  };
  const over = (l: number[]) => `${l.filter((n) => n > 1500).length} of ${l.length} over the MTU, largest ${Math.max(0, ...l)}`;

  t.test('no entries: no XDP on the uplink, the underlay veth keeps GSO', async (t) => {
    t.match(xdp(), { attachMode: 'none', progId: 0 }, 'nothing attached to A\'s uplink');
    t.equal(A.dp!.uplinkXdpMode, undefined);
    t.equal(A.dp!.prefilterEntries, 0);
    t.ok(await pings(wb.ns, wa.ip), 'wb → wa');
    const l = await lengths(wb.ns, 'TCP');
    t.ok(l.filter((n) => n > 1500).length >= 10, `GSO packets leave the router towards A: ${over(l)}`);
  });

  t.test('a doNotTrack deny: attached, enforced, and the veth towards A segments', async (t) => {
    c.put(deny);
    await c.sync();
    t.equal(A.dp!.prefilterEntries, 1, 'one deny entry');
    t.equal(xdp().attachMode, 'native', 'XDP attached once the reconcile resolved');
    t.equal(A.dp!.uplinkXdpMode, 'native');
    t.match(xdpQuery({ iface: 'eth0', netns: c.nodes.get('node-b')!.ns.path }), { attachMode: 'none' }, 'node B (not selected) has no XDP');
    const d0 = dntDrops();
    t.notOk(await pings(wc.ns, wa.ip), 'wc → wa (IPIP from node C, judged by its inner source) denied');
    t.ok(dntDrops() >= d0 + 2n, `dropped by XDP as dnt_deny (${dntDrops() - d0})`);
    t.ok(await pings(wb.ns, wa.ip), 'wb → wa still passes');
    const l = await lengths(wb.ns, 'TCP');
    t.equal(l.filter((n) => n > 1500).length, 0, `with XDP on A's uplink the router segments: ${over(l)}`);
  });

  t.test('restart with the entry: the program stays and keeps dropping', async (t) => {
    await A.close();
    A.dp = undefined;
    t.equal(xdp().attachMode, 'native', 'a stopped agent leaves the prefilter enforcing');
    await A.sync(c.resources.values());
    t.equal(xdp().attachMode, 'native', 'still attached after the restart');
    t.equal(A.dp!.uplinkXdpMode, 'native', 'adopted');
    t.notOk(await pings(wc.ns, wa.ip), 'wc → wa still denied');
  });

  t.test('restart after the policy went: the previous run\'s program is detached', async (t) => {
    await A.close();
    A.dp = undefined;
    c.resources.delete(DENY_KEY);
    await A.sync(c.resources.values());
    t.match(xdp(), { attachMode: 'none', progId: 0 }, 'detached');
    t.equal(A.dp!.prefilterEntries, 0, 'the stale pinned entry was removed');
    t.equal(pf.pf4.keys().length, 0, 'tortie_pf4_v1 is empty');
    t.ok(await pings(wc.ns, wa.ip), 'wc → wa passes');
  });

  t.test('add then remove the policy on a running agent', async (t) => {
    c.put(deny);
    await c.sync();
    t.equal(xdp().attachMode, 'native', 'attached');
    t.notOk(await pings(wc.ns, wa.ip), 'denied');
    c.resources.delete(DENY_KEY);
    await c.sync();
    t.match(xdp(), { attachMode: 'none', progId: 0 }, 'detached with the last entry');
    t.equal(A.dp!.uplinkXdpMode, undefined);
    t.ok(await pings(wc.ns, wa.ip), 'wc → wa passes again');
    const l = await lengths(wb.ns, 'TCP');
    t.ok(l.filter((n) => n > 1500).length >= 10, `GSO again on the router's port towards A: ${over(l)}`);
  });

  t.test('an IPv6 entry alone attaches it too', async (t) => {
    c.put(gnp('deny-v6', { selector: "prefilter == 'on'", doNotTrack: true, applyOnForward: true, types: ['Ingress'],
      ingress: [{ action: 'Deny', source: { nets: ['fd00:99::/64'] } }] }));
    await c.sync();
    t.equal(pf.pf4.keys().length, 0, 'no IPv4 entry');
    t.equal(pf.pf6.keys().length, 1, 'one IPv6 entry');
    t.equal(xdp().attachMode, 'native', 'attached');
    c.resources.delete('GlobalNetworkPolicy//deny-v6');
    await c.sync();
    t.match(xdp(), { attachMode: 'none', progId: 0 }, 'detached with it');
  });
});
