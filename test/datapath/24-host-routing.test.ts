// BPF host routing (bpf/lib/host_route.h) in network namespaces: with it on, a packet between two
// workloads of the node is judged by the destination's to-workload point inside the source's
// program and redirected into the destination's namespace (bpf_redirect_peer), so the
// destination cali* never transmits it. Shown by the hrst counter and by the cali*'s own tx
// counter staying still; a destination's ingress deny still drops, at the source, counted and
// reported for the destination endpoint; a reply path opens only after the receiver's ingress
// allowed the request; TTL 1 and the mode "off" keep the kernel's path. A workload whose MAC the
// endpoint names is found by its address (tortie_epdst_v1) without a fib lookup; an address entry
// that no longer agrees with the endpoint map is never followed (the fib answers instead), and
// one an endpoint's deletion or an address moving rewrites is followed only as rewritten. A local
// workload's address inside a block routed to another node through IPIP is delivered here (found
// by address before the tunnel's route), never encapsulated.
import t from 'tap';
import { SingleNode, Capture, type Workload } from '../../src/testbed';
import { netcfgCodec, readNetStats, routeCodec, rt4KeyCodec, RT_F } from '../../src/dataplane/bpf/net-codecs';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { loadWep, readHostRouteStats, type WepDatapath } from '../../src/dataplane/bpf/loader';
import { readCounters, counterPackets, decodeEvent, type FlowEvent } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { AF_INET, CTF, CtState, cntValueCodec, ct4KeyCodec, ctValueCodec, endpointCodec, epDstCodec, epDstKeyCodec, u32Key, type Ct4Key, type CtValue } from '../../src/dataplane/bpf/codecs';
import { EndpointPolicyWriter } from '../../src/dataplane/bpf/apply';
import { EpCounterSlots } from '../../src/dataplane/bpf/counters';
import { RingBuffer } from '../../src/dataplane/native';
import { until, waitListening } from '../../src/testbed/probes';
import type { GlobalNetworkPolicy, Namespace, WorkloadEndpoint } from '../../src/model';

const V3 = 'projectcalico.org/v3' as const;
const IP = { web: '192.168.12.1', client: '192.168.12.2', other: '192.168.12.3' };

function wep(name: string, ip: string | string[], app: string, mac?: string): WorkloadEndpoint {
  return {
    apiVersion: V3, kind: 'WorkloadEndpoint',
    metadata: { name, namespace: 'ns1', labels: { app } },
    spec: { orchestrator: 'k8s', node: 'node1', ipNetworks: [ip].flat().map((a) => `${a}/32`), interfaceName: `cali${name}`, profiles: [],
      ...(mac ? { mac } : {}) },
  };
}
/** The MAC of a workload's eth0 (what the CNI plugin writes into its WorkloadEndpoint). */
async function macOf(w: Workload): Promise<string> {
  return (await w.ns.exec(['cat', '/sys/class/net/eth0/address'])).stdout.trim();
}
const webIngress: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'web-ingress' },
  spec: { selector: "app == 'web'", types: ['Ingress'], ingress: [
    { action: 'Allow', protocol: 'TCP', source: { selector: "app == 'client'" }, destination: { ports: [8080] } },
    { action: 'Allow', protocol: 'ICMP', source: { selector: "app == 'client'" } },
  ] } };
const egressAll: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'egress-all' },
  spec: { selector: 'all()', types: ['Egress'], egress: [{ action: 'Allow' }] } };
const ns1: Namespace = { apiVersion: V3, kind: 'Namespace', metadata: { name: 'ns1', labels: {} } };

t.test('host routing on: peer redirect, policy of the destination at the source', async (t) => {
  const topo = await SingleNode.create('dphr', { outsideRoutesPools: true });
  const pinRoot = uniquePinRoot('hr');
  let dp: WepDatapath | undefined;
  let rb: RingBuffer | undefined;
  t.teardown(async () => { rb?.close(); dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });

  const w: Record<'web' | 'client' | 'other', Workload> = {
    web: await topo.addWorkload('web', IP.web),
    client: await topo.addWorkload('client', IP.client),
    other: await topo.addWorkload('other', IP.other),
  };
  dp = await loadWep({ pinRoot, ctMaxEntries: 65536, hostRouting: 'auto' });
  t.same(dp.hostRouting, { mode: 'auto', active: true, reason: 'bpf_redirect_peer, bpf_redirect_neigh and bpf_check_mtu verified' }, 'this kernel verifies the peer-redirect variant');
  const mac = { web: await macOf(w.web), client: await macOf(w.client), other: await macOf(w.other) };
  const weps = {
    web: wep('web', IP.web, 'web', mac.web), client: wep('client', IP.client, 'client', mac.client), other: wep('other', IP.other, 'other', mac.other),
  };
  const prog = topo.program(dp, [ns1, weps.web, weps.client, weps.other, webIngress, egressAll]);
  const dstKey = (ip: string) => epDstKeyCodec.encode({ family: AF_INET, addr: ip });
  const dstOf = (ip: string) => { const v = dp!.maps.epdst!.lookup(dstKey(ip)); return v ? epDstCodec.decode(v) : undefined; };
  const events: FlowEvent[] = [];
  rb = RingBuffer.open(dp.maps.events!, (rec) => events.push(decodeEvent(rec)));

  const count = (x: Workload, dir: number, reason: number) => counterPackets(readCounters(dp!.maps.cnt!, dp!.maps), x.ifindex, dir, reason);
  const hr = () => readHostRouteStats(dp!.maps.hrst!);
  const ping = (from: Workload, to: string, n: number, extra: string[] = []) =>
    from.ns.exec(['ping', '-c', String(n), '-W', '1', '-i', '0.05', ...extra, to], { allowFail: true, timeoutMs: 15_000 });

  t.test('allowed flow: redirected into both workloads, the cali*s transmit nothing', async (t) => {
    const epWeb = prog.pd.ifindexOf('ns1/web');
    t.equal(epWeb, w.web.ifindex, 'web bound to its cali*');
    t.same(dstOf(IP.web), { ifindex: w.web.ifindex, ep_id: dstOf(IP.web)?.ep_id, mac: mac.web, host_mac: 'ee:ee:ee:ee:ee:ee' },
      'web\'s address names its cali* and both MACs in tortie_epdst_v1');
    const hr0 = hr();
    // What the cali*s transmit of IPv4 (the node's own IPv6 MLD reports on a new link do not count).
    const capWeb = await Capture.start(topo.node, 'ip', { iface: w.web.hostIf, direction: 'out' });
    const capCli = await Capture.start(topo.node, 'ip', { iface: w.client.hostIf, direction: 'out' });
    const webFwd0 = count(w.web, Dir.INGRESS, 0), cliFwd0 = count(w.client, Dir.INGRESS, 0);
    // No neighbour entry needed first: the address entry has the MACs the fib would have taken from it.
    t.equal((await ping(w.client, IP.web, 20)).code, 0, 'client -> web: 20 echoes answered');
    capWeb.stop();
    capCli.stop();
    const hr1 = hr();
    t.ok(hr1.peer - hr0.peer >= 40n, `>= 40 packets peer-redirected (requests and replies): ${hr1.peer - hr0.peer}`);
    t.equal(hr1.peerFib - hr0.peerFib, 0n, 'none of them needed a fib lookup (both found by address)');
    t.equal(hr1.declined - hr0.declined, 0n, 'none declined');
    t.notOk(capWeb.has(/ICMP/), 'caliweb transmitted none of them: its tc egress never ran for them');
    t.notOk(capCli.has(/ICMP/), 'caliclient neither (the replies)');
    t.ok(count(w.web, Dir.INGRESS, 0) - webFwd0 >= 20n, 'the requests counted as forwarded on web\'s ingress point');
    t.ok(count(w.client, Dir.INGRESS, 0) - cliFwd0 >= 20n, 'the replies on client\'s ingress point');
    await w.web.ns.spawn(['socat', 'TCP-LISTEN:8080,fork,reuseaddr', 'EXEC:cat']);
    await waitListening(w.web.ns, 8080);
    const echo = await w.client.ns.sh(`echo hello-hr | timeout 4 socat -T2 - TCP:${IP.web}:8080,connect-timeout=2`, { allowFail: true, timeoutMs: 10_000 });
    t.equal(echo.stdout.trim(), 'hello-hr', 'TCP through the peer path');
  });

  t.test('per-interface counters under host routing: each forwarded packet once, in the endpoint\'s slot; kept when it goes', async (t) => {
    const epOf = (x: Workload) => { const v = dp!.maps.ep!.lookup(u32Key(x.ifindex)); return v ? endpointCodec.decode(v) : undefined; };
    const hashFwd = (x: Workload, dir: number) => readCounters(dp!.maps.cnt!).find((r) => r.ifindex === x.ifindex && r.dir === dir && r.reason === 0);
    const fwd = (x: Workload, dir: number) => readCounters(dp!.maps.cnt!, dp!.maps).find((r) => r.ifindex === x.ifindex && r.dir === dir && r.reason === 0)
      ?? { packets: 0n, bytes: 0n };
    const slotSum = (slot: number, dir: number) => dp!.maps.epcnt!.splitPerCpu(dp!.maps.epcnt!.lookup(u32Key(slot * 2 + dir))!)
      .map((b) => cntValueCodec.decode(b)).reduce((a, c) => ({ packets: a.packets + c.packets, bytes: a.bytes + c.bytes }), { packets: 0n, bytes: 0n });
    const sWeb = epOf(w.web)!.slot, sCli = epOf(w.client)!.slot;
    t.ok(sWeb > 0 && sCli > 0 && sWeb !== sCli, `web and client have counter slots of their own (${sWeb}, ${sCli})`);
    // Echoes of a size nothing else here has (1,000 bytes of data: 1,042-byte frames at the
    // points); whatever else crosses the points meanwhile (ARP, IPv6 neighbour discovery) is small.
    const N = 20n, FRAME = 1042n;
    const hash0 = { web: hashFwd(w.web, Dir.INGRESS), cli: hashFwd(w.client, Dir.EGRESS) };
    const web0 = fwd(w.web, Dir.INGRESS), cli0 = fwd(w.client, Dir.EGRESS), back0 = fwd(w.client, Dir.INGRESS);
    t.equal((await ping(w.client, IP.web, Number(N), ['-s', '1000'])).code, 0, 'client -> web: 20 big echoes answered');
    for (const [what, d] of [
      ['requests on web\'s ingress point', { a: web0, b: fwd(w.web, Dir.INGRESS) }],
      ['requests on client\'s egress point', { a: cli0, b: fwd(w.client, Dir.EGRESS) }],
      ['replies on client\'s ingress point', { a: back0, b: fwd(w.client, Dir.INGRESS) }],
    ] as const) {
      const pk = d.b.packets - d.a.packets, by = d.b.bytes - d.a.bytes;
      t.ok(pk >= N && by >= N * FRAME, `${what}: all ${N} counted (${pk} packets, ${by} bytes)`);
      t.ok(by - N * FRAME < (pk - N) * 200n || (pk === N && by === N * FRAME), `${what}: none counted twice (${by - N * FRAME} bytes beyond them in ${pk - N} other packets)`);
    }
    t.same(hashFwd(w.web, Dir.INGRESS), hash0.web, 'web\'s forwarded packets went to its slot, not the hash');
    t.same(hashFwd(w.client, Dir.EGRESS), hash0.cli, 'client\'s too');
    t.ok(slotSum(sWeb, Dir.INGRESS).packets >= N, 'web\'s slot holds them');

    // The endpoint goes: what its slot counted moves to tortie_cnt_v1, the slot is zeroed for the next.
    const before = fwd(w.web, Dir.INGRESS), beforeOut = fwd(w.web, Dir.EGRESS);
    prog.graph.onDelete('WorkloadEndpoint', 'web', 'ns1');
    prog.pd.applyDelta(prog.graph.flush());
    t.equal(epOf(w.web), undefined, 'web\'s endpoint entry deleted');
    const after = fwd(w.web, Dir.INGRESS), afterOut = fwd(w.web, Dir.EGRESS);
    t.ok(after.packets >= before.packets && after.bytes >= before.bytes, `web's ingress counter kept (${before.packets} -> ${after.packets})`);
    t.ok(afterOut.packets >= beforeOut.packets, `and its egress counter (${beforeOut.packets} -> ${afterOut.packets})`);
    t.same(hashFwd(w.web, Dir.INGRESS), { ifindex: w.web.ifindex, dir: Dir.INGRESS, reason: 0, ...after }, 'now all in the hash');
    t.same(slotSum(sWeb, Dir.INGRESS), { packets: 0n, bytes: 0n }, 'the slot zeroed');
    t.same(slotSum(sWeb, Dir.EGRESS), { packets: 0n, bytes: 0n }, 'both directions');
    prog.update(weps.web);
    const sWeb2 = epOf(w.web)!.slot;
    t.ok(sWeb2 > 0 && sWeb2 !== sWeb, `back with another slot (freed ones are reused last): ${sWeb2}`);
    t.same(fwd(w.web, Dir.INGRESS), after, 'its counter continues from where it was');
    const again0 = fwd(w.web, Dir.INGRESS);
    t.equal((await ping(w.client, IP.web, 5, ['-s', '1000'])).code, 0, 'client -> web answered again');
    t.ok(fwd(w.web, Dir.INGRESS).packets - again0.packets >= 5n, 'counted in the new slot');

    // A restarted agent keeps each endpoint's slot (recover), so the counters do not move.
    const slots = new EpCounterSlots(dp!.maps.cnt!, dp!.maps.epcnt!);
    const writer = new EndpointPolicyWriter({ ...dp!.policyMaps, counterSlots: slots });
    const held = fwd(w.web, Dir.INGRESS);
    t.ok(writer.recover().includes(w.web.ifindex), 'a new writer finds web');
    t.notOk(slots.adopt(sWeb2), 'and holds web\'s slot as in use (it would not hand it out)');
    t.notOk(slots.adopt(sCli), 'client\'s too');
    t.ok(slots.adopt(sWeb), 'the freed one is free');
    t.ok(fwd(w.web, Dir.INGRESS).packets >= held.packets, 'web\'s counter untouched by the recovery');
  });

  t.test('the destination\'s ingress deny drops at the source, attributed to the destination', async (t) => {
    const hr0 = hr();
    const deny0 = count(w.web, Dir.INGRESS, R.POLICY_DENY), otherFwd0 = count(w.other, Dir.EGRESS, 0);
    // What caliweb transmits (IPv4 from other; the node's own IPv6 MLD reports on a new link do not count).
    const cap = await Capture.start(topo.node, `ip and src ${IP.other}`, { iface: w.web.hostIf, direction: 'out' });
    t.not((await ping(w.other, IP.web, 5)).code, 0, 'other -> web denied by web\'s ingress policy');
    cap.stop();
    t.ok(count(w.web, Dir.INGRESS, R.POLICY_DENY) - deny0 >= 5n, 'counted as policy deny on web\'s ingress');
    t.ok(count(w.other, Dir.EGRESS, 0) - otherFwd0 >= 5n, 'other\'s own egress point allowed them');
    t.equal(hr().peer, hr0.peer, 'none redirected');
    t.notOk(cap.has(/ICMP/), 'none reached caliweb either: dropped in other\'s program');
    const denied = (e: FlowEvent) => e.kind === 'deny' && e.src === IP.other && e.dst === IP.web && e.protocol === 1;
    await until(() => events.some(denied));
    const ev = events.find(denied);
    t.ok(ev, 'a deny event');
    t.equal(ev?.ifindex, w.web.ifindex, 'for web\'s interface');
    t.equal(ev?.direction, 'ingress', 'in web\'s ingress direction');
    t.ok((ev?.ruleId ?? -1) >= 0, 'with its deciding rule');
  });

  t.test('a reply path opens only after the receiver allowed the request', async (t) => {
    // client has no ingress policy: web -> client is denied by client's ingress, so client's
    // answers never exist; other -> client likewise. web's egress allowed it (egress-all).
    const deny0 = count(w.client, Dir.INGRESS, R.POLICY_DENY);
    t.not((await ping(w.web, IP.client, 3)).code, 0, 'web -> client denied by client\'s ingress');
    t.ok(count(w.client, Dir.INGRESS, R.POLICY_DENY) - deny0 >= 3n, 'on client\'s ingress point');
    // other -> web was denied above by web's ingress: web's echo answering it would be a new
    // flow at other's ingress point, and is denied there too.
    const deny1 = count(w.other, Dir.INGRESS, R.POLICY_DENY);
    t.not((await ping(w.web, IP.other, 2)).code, 0, 'web -> other denied by other\'s ingress');
    t.ok(count(w.other, Dir.INGRESS, R.POLICY_DENY) - deny1 >= 2n, 'on other\'s ingress point');
  });

  // The destination's point takes the source point's conntrack entry (no second lookup): the
  // entry must still carry each point's own approval, and TCP tracking must see every packet.
  t.test('one conntrack entry per flow, each point approving for itself', async (t) => {
    const tcpTo = (a: string, port: number): [Ct4Key, CtValue][] => {
      const { keys, values } = dp!.maps.ct4!.lookupBatch();
      return keys.map((k, i) => [ct4KeyCodec.decode(k), ctValueCodec.decode(values[i]!)] as [Ct4Key, CtValue])
        .filter(([k]) => k.proto === 6 && [k.addr_a, k.addr_b].includes(a) && [k.addr_a, k.addr_b].includes(IP.web) &&
          (k.port_a === port || k.port_b === port));
    };
    const has = (v: CtValue, f: number) => (Number(v.flags) & f) === f;
    // Allowed (client -> web:8080, the echo of the first subtest): both points approved, the
    // responder's point saw it, replies seen, and the close tracked (FIN both ways).
    const ok = tcpTo(IP.client, 8080);
    t.equal(ok.length, 1, 'the echo connection has one entry');
    const [, v] = ok[0]!;
    t.ok(has(v, CTF.SRC_OK) && has(v, CTF.DST_OK), 'approved by client\'s egress and web\'s ingress point');
    t.ok(has(v, CTF.DST_LOCAL | CTF.REPLY), 'web\'s point saw it and its replies went back');
    t.ok(v.state === CtState.FIN_WAIT || v.state === CtState.CLOSING, `the close was tracked (state ${v.state})`);
    // Denied (other -> web:8080): other's egress allows and commits on the first SYN; web's ingress
    // denies it, and again each retransmitted SYN, which finds the entry at other's point and
    // hands it to web's point.
    const deny0 = count(w.web, Dir.INGRESS, R.POLICY_DENY);
    const r = await w.other.ns.sh(`echo x | timeout 5 socat -T1 - TCP:${IP.web}:8080,connect-timeout=3`, { allowFail: true, timeoutMs: 10_000 });
    t.not(r.code, 0, 'other -> web:8080 does not connect');
    t.ok(count(w.web, Dir.INGRESS, R.POLICY_DENY) - deny0 >= 2n, 'the SYN and its retransmission both denied at web\'s point');
    const denied = tcpTo(IP.other, 8080);
    t.equal(denied.length, 1, 'one entry for the refused connection');
    const [, d] = denied[0]!;
    t.ok(has(d, CTF.SRC_OK | CTF.DST_LOCAL), 'approved by other\'s egress point, seen by web\'s');
    t.notOk(Number(d.flags) & CTF.DST_OK, 'never approved by web\'s ingress point');
    t.equal(d.state, CtState.SYN_SENT, 'still a SYN that was never answered');
  });

  t.test('an address entry that no longer agrees with the endpoint map is never followed', async (t) => {
    const good = dstOf(IP.web)!;
    const otherIn0 = count(w.other, Dir.INGRESS, 0) + count(w.other, Dir.INGRESS, R.POLICY_DENY);
    try {
      // Pointing at other's cali* with web's endpoint id (an interface reused, an entry written
      // for another endpoint), then at an interface without an endpoint (deleted): the fib's path.
      for (const [what, ifindex] of [['other\'s cali* under web\'s id', w.other.ifindex], ['an interface without endpoint', 0x7ffffff0]] as const) {
        dp!.maps.epdst!.update(dstKey(IP.web), epDstCodec.encode({ ...good, ifindex }));
        const hr0 = hr(), webFwd0 = count(w.web, Dir.INGRESS, 0);
        t.equal((await ping(w.client, IP.web, 10)).code, 0, `${what}: client -> web still answered`);
        const hr1 = hr();
        t.ok(hr1.peerFib - hr0.peerFib >= 10n, `${what}: the requests found web by the fib (${hr1.peerFib - hr0.peerFib})`);
        t.ok(count(w.web, Dir.INGRESS, 0) - webFwd0 >= 10n, `${what}: judged and delivered by web's point`);
      }
      t.equal(count(w.other, Dir.INGRESS, 0) + count(w.other, Dir.INGRESS, R.POLICY_DENY), otherIn0, 'nothing reached other\'s point');
    } finally {
      dp!.maps.epdst!.update(dstKey(IP.web), epDstCodec.encode(good));
    }
  });

  t.test('endpoint churn: a deleted endpoint\'s address leaves the map, a moving address follows its claims', async (t) => {
    const webEntry = dstOf(IP.web)!;
    // Deleted mid-flow: its entries go with it; what still arrives for its address fails closed
    // on the kernel's path (the cali* has no endpoint), never redirected anywhere.
    const hr0 = hr();
    prog.graph.onDelete('WorkloadEndpoint', 'web', 'ns1');
    prog.pd.applyDelta(prog.graph.flush());
    t.equal(dstOf(IP.web), undefined, 'web\'s address entry removed with the endpoint');
    const unknown0 = count(w.web, Dir.INGRESS, R.UNKNOWN_IFACE);
    t.not((await ping(w.client, IP.web, 3)).code, 0, 'client -> deleted web: no answer');
    t.equal(hr().peer, hr0.peer, 'nothing peer-redirected');
    t.ok(count(w.web, Dir.INGRESS, R.UNKNOWN_IFACE) - unknown0 >= 3n, 'dropped on caliweb as an interface without endpoint');
    prog.update(weps.web);
    t.same(dstOf(IP.web), webEntry, 'back with the endpoint');
    // Moving: other claims web's address too (latest claim wins), then gives it up.
    prog.update(wep('other', [IP.other, IP.web], 'other', mac.other));
    t.equal(dstOf(IP.web)?.ifindex, w.other.ifindex, 'claimed by other: the entry names other\'s cali*');
    t.equal(dstOf(IP.other)?.ifindex, w.other.ifindex, 'other\'s own address unchanged');
    prog.update(weps.other);
    t.same(dstOf(IP.web), webEntry, 'other gave it up: back to web, the remaining claimant');
    // And the other way round: web gives it up while other still claims it, then other too.
    prog.update(wep('other', [IP.other, IP.web], 'other', mac.other));
    prog.update(wep('web', '192.168.12.9', 'web', mac.web));
    t.equal(dstOf(IP.web)?.ifindex, w.other.ifindex, 'web withdrew: other\'s claim stays');
    prog.update(weps.other);
    t.equal(dstOf(IP.web), undefined, 'the last claim withdrawn: no entry');
    prog.update(weps.web);
    t.same(dstOf(IP.web), webEntry, 'web claims it again');
    // Without a MAC there is no entry: the fib finds the workload (its neighbour entry).
    prog.update(wep('web', IP.web, 'web'));
    t.equal(dstOf(IP.web), undefined, 'no MAC, no entry');
    const hr1 = hr();
    t.equal((await ping(w.client, IP.web, 5)).code, 0, 'client -> web answered');
    t.ok(hr().peerFib - hr1.peerFib >= 3n, 'through the fib (the first request may wait for the neighbour entry)');
    prog.update(weps.web);
    t.same(dstOf(IP.web), webEntry, 'with its MAC again');
  });

  t.test('over the destination cali*\'s MTU: left to the kernel, which answers frag needed', async (t) => {
    await topo.node.exec(['ip', 'link', 'set', w.web.hostIf, 'mtu', '1000']);
    try {
      const hr0 = hr(), webFwd0 = count(w.web, Dir.INGRESS, 0);
      const r = await ping(w.client, IP.web, 2, ['-M', 'do', '-s', '1200']);
      t.not(r.code, 0, 'no answer to a 1228-byte echo with DF');
      t.match(r.stdout + r.stderr, /Frag needed|mtu ?= ?1000/i, 'the node answered frag needed with caliweb\'s MTU');
      t.equal(hr().peer, hr0.peer, 'not redirected (the address path checked the MTU, the fib said FRAG_NEEDED)');
      t.equal(count(w.web, Dir.INGRESS, 0), webFwd0, 'nor judged by web\'s point');
      t.equal((await ping(w.client, IP.web, 2, ['-M', 'do', '-s', '900'])).code, 0, 'a 928-byte echo still passes');
    } finally {
      await topo.node.exec(['ip', 'link', 'set', w.web.hostIf, 'mtu', '1500']);
    }
  });

  t.test('leaving through the uplink: redirected to its egress, TTL decremented', async (t) => {
    // What the RouteManager writes: this node's address and uplink.
    dp!.obj.map('tortie_netcfg_v1').update(Buffer.alloc(4), netcfgCodec.encode({ node_ip: topo.nodeIp, uplink_ifindex: await topo.node.ifindex('eth0'), ipip_mtu: 0, snat_ip: '0.0.0.0' }));
    await topo.node.exec(['ip', 'neigh', 'flush', 'dev', 'eth0']);
    const cap = await Capture.start(topo.outside, `icmp and src ${IP.client}`);
    try {
      const hr0 = hr();
      t.equal((await ping(w.client, topo.outsideIp, 5)).code, 0, 'client -> outside answered');
      const hr1 = hr();
      t.ok(hr1.uplinkNeigh - hr0.uplinkNeigh >= 1n, 'the first packet, next hop unresolved: bpf_redirect_neigh');
      t.ok(hr1.uplink - hr0.uplink >= 3n, 'the others with the fib\'s MACs');
      t.ok(await cap.waitFor(/ttl 63\b/), 'the outside host sees TTL 63: decremented once, as the kernel forwards');
      t.notOk(cap.has(/ttl 64\b/), 'never 64');
    } finally {
      cap.stop();
    }
  });

  t.test('TTL 1 is left to the kernel (time exceeded from the node)', async (t) => {
    const hr0 = hr();
    const r = await ping(w.client, IP.web, 2, ['-t', '1']);
    t.not(r.code, 0, 'no echo reply with TTL 1');
    t.match(r.stdout, /Time to live exceeded/i, 'the kernel answered time exceeded');
    t.ok(hr().declined - hr0.declined >= 2n, 'declined by the host-routed path');
  });

  t.test('a local workload inside a route to another node through IPIP: delivered here, found by its address, never encapsulated', async (t) => {
    // A borrowed address: the block around web's is routed to another node (here the outside
    // host) through IPIP, as the RouteManager writes a remote block, while web's /32 lives on
    // this node (the kernel's route says so too). The address lookup runs before the IPIP fast
    // path's remote-route lookup, so the tunnel never sees it. Needs the uplink set (netcfg).
    dp!.obj.map('tortie_netcfg_v1').update(Buffer.alloc(4), netcfgCodec.encode({ node_ip: topo.nodeIp, uplink_ifindex: await topo.node.ifindex('eth0'), ipip_mtu: 0, snat_ip: '0.0.0.0' }));
    const rt = dp!.obj.map('tortie_rt4_v1');
    const block = rt4KeyCodec.encode({ prefixlen: 24, addr: '192.168.12.0' });
    const ipipTo = (ip: string) => { rt.update(block, routeCodec.encode({ next_hop: ip, flags: RT_F.WORKLOAD | RT_F.ENCAP })); };
    // The tunnel's next hop resolved (the fast path leaves unresolved ones to the kernel).
    t.equal((await ping(w.client, topo.outsideIp, 1)).code, 0, 'client -> outside answered');
    const cap = await Capture.start(topo.outside, 'ip proto 4');
    try {
      ipipTo(topo.outsideIp);
      const net0 = readNetStats(dp!.obj.map('tortie_netstat_v1')), hr0 = hr(), webFwd0 = count(w.web, Dir.INGRESS, 0);
      t.equal((await ping(w.client, IP.web, 10)).code, 0, 'client -> web answered');
      const net1 = readNetStats(dp!.obj.map('tortie_netstat_v1')), hr1 = hr();
      t.ok(hr1.peer - hr0.peer >= 20n, `requests and replies peer-redirected (${hr1.peer - hr0.peer})`);
      t.equal(hr1.peerFib - hr0.peerFib, 0n, 'found by address, no fib lookup');
      t.ok(count(w.web, Dir.INGRESS, 0) - webFwd0 >= 10n, 'judged and delivered by web\'s point');
      t.equal(net1.encapFast - net0.encapFast, 0n, 'nothing encapsulated by the fast path');
      t.equal(net1.encapUplink - net0.encapUplink, 0n, 'nor on the uplink');
      // A workload address of the block with no endpoint here still takes the tunnel: the route
      // is live (the fast path's counter moves), only local addresses are taken out of it.
      await w.client.ns.exec(['ping', '-c', '1', '-W', '1', '192.168.12.77'], { allowFail: true, timeoutMs: 5_000 });
      t.ok(readNetStats(dp!.obj.map('tortie_netstat_v1')).encapFast - net1.encapFast >= 1n, 'an address of the block without a local workload is encapsulated');
      t.ok(await cap.waitFor(/192\.168\.12\.77/), 'the outside host receives it in IPIP');
      t.notOk(cap.has(new RegExp(`> ${IP.web.replace(/\./g, '\\.')}:`)), 'never one for web');
    } finally {
      cap.stop();
      rt.delete(block);
    }
  });
});

t.test('host routing off: the kernel path, nothing redirected', async (t) => {
  const topo = await SingleNode.create('dphroff', { outsideRoutesPools: true });
  const pinRoot = uniquePinRoot('hroff');
  let dp: WepDatapath | undefined;
  t.teardown(async () => { dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });
  const web = await topo.addWorkload('web', IP.web), client = await topo.addWorkload('client', IP.client);
  dp = await loadWep({ pinRoot, ctMaxEntries: 65536, hostRouting: 'off' });
  t.same(dp.hostRouting, { mode: 'off', active: false, reason: 'off by configuration' });
  topo.program(dp, [ns1, wep('web', IP.web, 'web'), wep('client', IP.client, 'client'), webIngress, egressAll]);
  const tx0 = BigInt((await topo.node.exec(['cat', `/sys/class/net/${web.hostIf}/statistics/tx_packets`])).stdout.trim());
  const r = await client.ns.exec(['ping', '-c', '10', '-W', '1', '-i', '0.05', IP.web], { allowFail: true, timeoutMs: 15_000 });
  t.equal(r.code, 0, 'client -> web answered');
  const tx1 = BigInt((await topo.node.exec(['cat', `/sys/class/net/${web.hostIf}/statistics/tx_packets`])).stdout.trim());
  t.ok(tx1 - tx0 >= 10n, 'caliweb transmitted the requests (its tc egress judged them)');
  t.equal(readHostRouteStats(dp.maps.hrst!).peer, 0n, 'nothing peer-redirected');
});

t.test('a bad mode is refused by name', async (t) => {
  await t.rejects(loadWep({ hostRouting: 'on' as never }), /hostRouting on: need auto or off/);
});
