// End to end in network namespaces: a Calico-shaped node (cali* veths, proxy ARP, /32 routes,
// 169.254.1.1 gateway) with three workloads, policies compiled by src/calc, encoded and applied
// by PolicyDataplane, programs attached with tc on every cali*. Real ping/TCP/UDP, allowed and
// denied as policy says; replies admitted by conntrack; a spoofed source dropped; a policy change
// under a running iperf3 flow, in IPv4 and in IPv6 (one body; the workloads are dual stack): the
// flow never sees a drop, new connections get the new policy. (The rest in IPv6: datapath/27.)
import t from 'tap';
import { namespace, wep as fixtureWep } from '../../src/testbed/fixtures';
import { SingleNode, type Workload } from '../../src/testbed';
import { uniquePinRoot, removePinRoot, testHostRouting } from '../../src/testbed/wep-harness';
import { loadWep, type WepDatapath } from '../../src/dataplane/bpf/loader';
import { readCounters, counterPackets, decodeEvent, type FlowEvent } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir, dropReasonLabel } from '../../src/dataplane/bpf/drop-reasons';
import { RingBuffer } from '../../src/dataplane/native';
import { until } from '../../src/testbed/probes';
import { FAMILIES } from '../../src/testbed/family';
import { CtState } from '../../src/dataplane/bpf/codecs';
import type { WepHarness } from '../../src/testbed/wep-harness';

const PROTO_TCP = 6;
import type { GlobalNetworkPolicy, Namespace, WorkloadEndpoint, Rule } from '../../src/model';

const V3 = 'projectcalico.org/v3' as const;
const IP = { web: '192.168.10.1', client: '192.168.10.2', other: '192.168.10.3' };
const IP6 = { web: 'fd00:10:8::1', client: 'fd00:10:8::2', other: 'fd00:10:8::3' };

const wep = (name: keyof typeof IP, app: string): WorkloadEndpoint => fixtureWep(`ns1/${name}`, { ip: [IP[name], IP6[name]], labels: { app } });

function webIngress(allowIperf: boolean): GlobalNetworkPolicy {
  const from = { selector: "app == 'client'" };
  const ingress: Rule[] = [
    { action: 'Allow', protocol: 'TCP', source: from, destination: { ports: [8080] } },
    { action: 'Allow', protocol: 'UDP', source: from, destination: { ports: [9000] } },
    { action: 'Allow', protocol: 'ICMP', source: from },
  ];
  if (allowIperf) ingress.push({ action: 'Allow', protocol: 'TCP', source: from, destination: { ports: [5201] } });
  return { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'web-ingress' },
    spec: { selector: "app == 'web'", types: ['Ingress'], ingress } };
}

const egressAll: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'egress-all' },
  spec: { selector: 'all()', types: ['Egress'], egress: [{ action: 'Allow' }] } };
const ns1: Namespace = namespace('ns1');

t.test('netns end to end', async (t) => {
  const topo = await SingleNode.create('dpe2e', { outsideRoutesPools: true });
  const pinRoot = uniquePinRoot('e2e');
  let dp: WepDatapath | undefined;
  let rb: RingBuffer | undefined;
  t.teardown(async () => { rb?.close(); dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });

  const w: Record<'web' | 'client' | 'other', Workload> = {
    web: await topo.addWorkload('web', IP.web, { ip6: IP6.web }),
    client: await topo.addWorkload('client', IP.client, { ip6: IP6.client }),
    other: await topo.addWorkload('other', IP.other, { ip6: IP6.other }),
  };
  dp = await loadWep({ pinRoot, hostRouting: testHostRouting(), ctMaxEntries: 65536 });
  const { pd, graph } = topo.program(dp, [ns1, wep('web', 'web'), wep('client', 'client'), wep('other', 'other'), webIngress(true), egressAll]);
  t.same(pd.pendingEndpoints, [], 'every endpoint bound to its interface');
  const events: FlowEvent[] = [];
  rb = RingBuffer.open(dp.maps.events!, (rec) => events.push(decodeEvent(rec)));

  const count = (x: Workload, dir: number, reason: number) => counterPackets(readCounters(dp!.maps.cnt!, dp!.maps), x.ifindex, dir, reason);
  const ping = (from: Workload, to: string, extra: string[] = []) =>
    from.ns.exec(['ping', '-c', '2', '-W', '1', '-i', '0.2', ...extra, to], { allowFail: true, timeoutMs: 10_000 });

  await w.web.ns.spawn(['socat', 'TCP-LISTEN:8080,fork,reuseaddr', 'EXEC:cat']);
  await w.web.ns.spawn(['socat', 'UDP-RECVFROM:9000,fork', 'EXEC:cat']);
  await w.web.ns.spawn(['iperf3', '-s', '-p', '5201']);
  // Listening (TCP 8080 and 5201, UDP 9000) before the first probe.
  await w.web.ns.sh('for i in $(seq 100); do [ $(ss -ltn | grep -cE ":(8080|5201) ") = 2 ] && ss -lun | grep -q ":9000 " && exit 0; sleep 0.05; done; exit 1');

  const tcp = (from: Workload, port: number) => from.ns.sh(
    `echo hello-${port} | timeout 4 socat -T2 - TCP:${IP.web}:${port},connect-timeout=2`, { allowFail: true, timeoutMs: 10_000 });
  const udp = (from: Workload) => from.ns.sh(`echo hello-udp | timeout 3 socat -T1 - UDP:${IP.web}:9000`, { allowFail: true, timeoutMs: 10_000 });

  t.test('ICMP', async (t) => {
    t.equal((await ping(w.client, IP.web)).code, 0, 'client -> web allowed (and the reply comes back)');
    const before = count(w.web, Dir.INGRESS, R.POLICY_DENY);
    t.not((await ping(w.other, IP.web)).code, 0, 'other -> web denied');
    t.ok(count(w.web, Dir.INGRESS, R.POLICY_DENY) > before, 'counted as policy deny on web\'s ingress');
    t.not((await ping(w.web, IP.client)).code, 0, 'web -> client denied by client\'s ingress (no policy, no profile)');
  });

  t.test('TCP and UDP, replies through conntrack', async (t) => {
    const ok = await tcp(w.client, 8080);
    t.equal(ok.stdout.trim(), 'hello-8080', 'client -> web:8080 echoed back');
    const no = await tcp(w.other, 8080);
    t.not(no.stdout.trim(), 'hello-8080', 'other -> web:8080 gets nothing');
    t.not((await tcp(w.client, 8081)).stdout.trim(), 'hello-8081', 'client -> web:8081 (no rule) gets nothing');
    t.equal((await udp(w.client)).stdout.trim(), 'hello-udp', 'client -> web udp/9000 echoed back');
    t.not((await udp(w.other)).stdout.trim(), 'hello-udp', 'other -> web udp/9000 gets nothing');
    const deny = events.find((e) => e.kind === 'deny' && e.src === IP.other && e.dst === IP.web && e.protocol === 6 && e.dstPort === 8080);
    t.ok(deny, 'a deny event for other -> web:8080');
    t.equal(deny?.direction, 'ingress');
    t.ok((deny?.ruleId ?? 0) > 0, 'naming the deciding rule');
  });

  t.test('spoofed source', async (t) => {
    await w.client.ns.sh('ip addr add 192.168.10.99/32 dev eth0');
    const before = count(w.client, Dir.EGRESS, R.SPOOFED_SRC);
    t.not((await ping(w.client, IP.web, ['-I', '192.168.10.99'])).code, 0, 'ping from an address that is not the endpoint\'s fails');
    t.ok(count(w.client, Dir.EGRESS, R.SPOOFED_SRC) >= before + 2n, 'both echo requests counted as spoofed');
    await w.client.ns.sh('ip addr del 192.168.10.99/32 dev eth0');
  });

  // Bulk TCP at full speed (windows as large as the kernel grows them) through tortie's sequence
  // checks: not one segment dropped (no ct_invalid), the flow completes, and its close passes
  // tortie's window check. iperf3 ends a data stream that is still sending with a RST (its
  // server closes with unread data; sent exceeds received by what was in flight), so the entry
  // ends in RST, or CLOSING after FINs both ways.
  for (const F of FAMILIES) t.test(`${F.label}: bulk TCP at full speed completes and closes cleanly`, async (t) => {
    graph.onUpdate(webIngress(true));
    pd.applyDelta(graph.flush());
    const webIp = F.v === 4 ? IP.web : IP6.web;
    const dropRows = () => readCounters(dp!.maps.cnt!).filter((r) => r.reason < 0);
    const drops = () => dropRows().reduce((a, r) => a + r.packets, 0n);
    const byReason = () => new Map(dropRows().map((r) => [`${dropReasonLabel(r.reason)} ${r.dir === Dir.EGRESS ? 'egress' : 'ingress'} if${r.ifindex}`, r.packets]));
    const drops0 = drops();
    const reasons0 = byReason();
    const run = await w.client.ns.exec(['timeout', '20', 'iperf3', `-${F.v}`, '-c', webIp, '-p', '5201', '-t', '2', '-J'], { allowFail: true, timeoutMs: 30_000 });
    t.equal(run.code, 0, 'iperf3 finished normally');
    const res = JSON.parse(run.stdout) as { start: { connected: { local_port: number }[] }; end: { sum_sent: { bytes: number; retransmits: number }; sum_received: { bytes: number } } };
    t.ok(res.end.sum_received.bytes > 100_000_000, 'more than 100 MB received');
    t.comment(`iperf3 -${F.v} unlimited: ${(res.end.sum_received.bytes / 1e6).toFixed(1)} MB received in 2 s, ${res.end.sum_sent.retransmits} retransmits`);
    const moved = [...byReason()].filter(([k, n]) => n !== (reasons0.get(k) ?? 0n)).map(([k, n]) => `${k}: +${n - (reasons0.get(k) ?? 0n)}`);
    t.equal(drops(), drops0, `not one packet dropped by tortie (no ct_invalid)${moved.length ? `; dropped: ${moved.join(', ')}` : ''}`);
    const port = res.start.connected[0]!.local_port;
    const entry = () => F.ctEntry({ dp } as unknown as WepHarness, [F.v === 4 ? IP.client : IP6.client, port], [webIp, 5201], PROTO_TCP);
    const closed = (st?: number) => st === CtState.RST || st === CtState.CLOSING;
    t.ok(await until(() => closed(entry()?.state), 5000), 'the data connection\'s close passed (RST or FIN both ways)');
  });

  // Each family in turn: web allows 5201 again, an iperf3 flow starts, the policy stops allowing
  // 5201 while the flow runs.
  for (const v of [4, 6] as const) t.test(`IPv${v}: policy change under a running iperf3 flow`, async (t) => {
    const webIp = v === 4 ? IP.web : IP6.web;
    graph.onUpdate(webIngress(true));
    pd.applyDelta(graph.flush());
    // Every tortie drop on any interface (both families: nothing of the workloads' own IPv6
    // chatter, neighbour or router messages, is dropped).
    const drops = () => readCounters(dp!.maps.cnt!, dp!.maps).filter((r) => r.reason < 0).reduce((a, r) => a + r.packets, 0n);
    const fwdBytes = () => readCounters(dp!.maps.cnt!, dp!.maps).find((r) => r.ifindex === w.web.ifindex && r.dir === Dir.INGRESS && r.reason === 0)?.bytes ?? 0n;
    const fwd0 = fwdBytes();
    const client = w.client.ns.spawn(['iperf3', `-${v}`, '-c', webIp, '-p', '5201', '-t', '3', '-b', '200M', '-J'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    client.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    // Bounded even if the flow stalls (iperf3 would wait on its control connection for ever).
    const stop = setTimeout(() => client.kill('SIGKILL'), 20_000);
    const done = new Promise<number>((r) => client.on('exit', (code) => { clearTimeout(stop); r(code ?? -1); }));

    t.ok(await until(() => fwdBytes() > fwd0 + 1_000_000n, 5000), 'flow running (1 MB forwarded to web)');
    const dropsAtStart = drops();
    const snap0 = readCounters(dp!.maps.cnt!, dp!.maps);
    graph.onUpdate(webIngress(false));
    const delta = graph.flush();
    t.ok(delta.endpointsUpserted.some((e) => e.key === 'ns1/web'), 'the compiler switched web to a new table');
    const bytesAtFlip = fwdBytes();
    const before = pd.writer.current(w.web.ifindex)!;
    pd.applyDelta(delta);
    const after = pd.writer.current(w.web.ifindex)!;
    t.equal(after.version, before.version + 1, 'web flipped once');
    t.not(after.table[Dir.INGRESS], before.table[Dir.INGRESS], 'to a new ingress table');
    t.ok(await until(() => fwdBytes() > bytesAtFlip + 5_000_000n, 5000), 'and it kept flowing (5 MB forwarded after the flip)');
    t.equal(drops(), dropsAtStart, 'not one packet dropped by tortie while the flow ran across the flip');
    if (drops() !== dropsAtStart) t.comment(JSON.stringify(readCounters(dp!.maps.cnt!, dp!.maps).filter((r) => r.reason < 0).map((r) => [r.ifindex, r.dir, r.reason, Number(r.packets - (snap0.find((x) => x.ifindex === r.ifindex && x.dir === r.dir && x.reason === r.reason)?.packets ?? 0n))])));
    const denyBeforeProbe = count(w.web, Dir.INGRESS, R.POLICY_DENY);
    const addr = v === 4 ? webIp : `[${webIp}]`;
    const probe = await w.client.ns.sh(`timeout 3 socat -T1 /dev/null TCP:${addr}:5201,connect-timeout=1`, { allowFail: true, timeoutMs: 10_000 });
    t.not(probe.code, 0, 'a new connection to 5201 is refused by the new policy');
    t.ok(count(w.web, Dir.INGRESS, R.POLICY_DENY) > denyBeforeProbe, 'its SYN counted as policy deny');

    const code = await done;
    t.equal(code, 0, 'iperf3 finished normally');
    const res = JSON.parse(out) as { intervals: { sum: { bytes: number } }[]; end: { sum_sent: { retransmits: number; bytes: number }; sum_received: { bytes: number } } };
    t.ok(res.intervals.length >= 3 && res.intervals.every((i) => i.sum.bytes > 0), 'bytes in every interval');
    // TCP retransmissions can come from the kernel's own queues on a busy 2-core machine; what
    // tortie did is in the drop counters above. Reported for the record.
    t.comment(`iperf3 -${v}: ${(res.end.sum_sent.bytes / 1e6).toFixed(1)} MB sent, ${res.end.sum_sent.retransmits} retransmits`);
    // A timed iperf3 run stops counting at its time limit: what was still in flight then (socket
    // buffers) is missing from its received total, so that total may fall a little short of the
    // sent one (131 KB of ~75 MB seen once) without any loss. Loss would show as tortie drops
    // above, or as a missing interval or a short total here.
    const short = res.end.sum_sent.bytes - res.end.sum_received.bytes;
    t.ok(short >= 0 && short <= res.end.sum_sent.bytes / 100, `received all but what was in flight at the end (${short} of ${res.end.sum_sent.bytes} bytes)`);
  });
});
