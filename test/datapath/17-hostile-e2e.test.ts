// Hostile traffic with real packets (docs/security.md guarantees): scapy crafts packets inside a workload
// namespace and on an outside host; the verdict is read from a capture in the receiving namespace
// (incoming packets only) and from tortie's counters. A Calico-shaped node (src/testbed SingleNode),
// policies compiled by src/calc, programs attached with tc on every cali*.
//
// One body for both families: the workloads and the node–outside link are dual stack, and every
// probe is written once in scapy for IPv4 and IPv6 (src/testbed/probes.ts SCAPY_FAMILIES).
//
// Spoofed sources are refused at the sender.
//
// Every probe carries a unique mark (IPv4 id, IPv6 flow label); after the probes an allowed
// sentinel is sent the same way, and the capture is read once the sentinel has arrived (veth
// delivery keeps order), so nothing waits on a fixed sleep.
import t from 'tap';
import { namespace, wep as fixtureWep } from '../../src/testbed/fixtures';
import { SingleNode, type Workload, OUTSIDE_IP, OUTSIDE_IP6 } from '../../src/testbed';
import { uniquePinRoot, removePinRoot, testHostRouting } from '../../src/testbed/wep-harness';
import { loadWep, type WepDatapath } from '../../src/dataplane/bpf/loader';
import { readCounters, counterPackets } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { Capture, scapy, until, SCAPY_FAMILIES } from '../../src/testbed/probes';
import type { GlobalNetworkPolicy, Namespace, WorkloadEndpoint } from '../../src/model';

const V3 = 'projectcalico.org/v3' as const;
const IP4 = { atk: '192.168.40.1', vic: '192.168.40.2', cli: '192.168.40.3' };
const IP6 = { atk: 'fd00:10:40::1', vic: 'fd00:10:40::2', cli: 'fd00:10:40::3' };
const ROUTER = { 4: '198.18.0.3', 6: 'fd00:198:18::3' }; // another host on the outside link

const wep = (name: keyof typeof IP4, role: string): WorkloadEndpoint => fixtureWep(`ns1/${name}`, { ip: [IP4[name], IP6[name]], labels: { role } });
// Targets (atk, vic) accept TCP 8080 and ICMP(v6) destination-unreachable; nothing else, no echo.
const targetsIngress: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'targets' },
  spec: { selector: "role == 'target'", types: ['Ingress'], ingress: [
    { action: 'Allow', protocol: 'TCP', destination: { ports: [8080] } },
    { action: 'Allow', protocol: 'ICMP', icmp: { type: 3 } },
    { action: 'Allow', protocol: 'ICMPv6', icmp: { type: 1 } },
  ] } };
// The client accepts nothing (ingress policy without rules).
const clientIngress: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'client' },
  spec: { selector: "role == 'client'", types: ['Ingress'], ingress: [] } };
const egressAll: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'egress-all' },
  spec: { selector: 'all()', types: ['Egress'], egress: [{ action: 'Allow' }] } };
const ns1: Namespace = namespace('ns1');


t.test('hostile packets in namespaces', async (t) => {
  const topo = await SingleNode.create('hostile', { outsideRoutesPools: true, ipv6: true });
  const pinRoot = uniquePinRoot('hostile');
  let dp: WepDatapath | undefined;
  const caps: Capture[] = [];
  t.teardown(async () => { for (const c of caps) c.stop(); dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });

  const w: Record<'atk' | 'vic' | 'cli', Workload> = {
    atk: await topo.addWorkload('atk', IP4.atk, { ip6: IP6.atk }), vic: await topo.addWorkload('vic', IP4.vic, { ip6: IP6.vic }),
    cli: await topo.addWorkload('cli', IP4.cli, { ip6: IP6.cli }),
  };
  dp = await loadWep({ pinRoot, hostRouting: testHostRouting(), ctMaxEntries: 65536 });
  const { pd } = topo.program(dp, [ns1, wep('atk', 'target'), wep('vic', 'target'), wep('cli', 'client'), targetsIngress, clientIngress, egressAll]);
  t.same(pd.pendingEndpoints, [], 'every endpoint bound');
  const nodeMac = (await topo.node.exec(['cat', '/sys/class/net/eth0/address'])).stdout.trim();
  const count = (x: Workload, dir: number, reason: number) => counterPackets(readCounters(dp!.maps.cnt!, dp!.maps), x.ifindex, dir, reason);
  const fromWl = (x: Workload, pkts: string[]) => scapy(x.ns, pkts, 'ee:ee:ee:ee:ee:ee');
  const fromExt = (pkts: string[]) => scapy(topo.outside, pkts, nodeMac);

  for (const F of SCAPY_FAMILIES) {
    const IP = F.v === 4 ? IP4 : IP6;
    const OUT = F.v === 4 ? OUTSIDE_IP : OUTSIDE_IP6;
    const ip = F.ip, ipId = F.marked;
    const capture = async (x: Workload) => { const c = await Capture.start(x.ns, F.filter); caps.push(c); return c; };
    const sentinel = (src: string, dst: string, id: number) => `${ip(src, dst, id)}/TCP(sport=1, dport=8080, flags='S')`;

    t.test(`${F.label}: impossible TCP flags never reach a workload, even on an allowed port`, async (t) => {
      const cap = await capture(w.vic);
      const before = count(w.atk, Dir.EGRESS, R.TCP_BAD_FLAGS);
      const bad = ['SF', 'FPU', '', 'F', 'SR', 'SRAFPU'];
      await fromWl(w.atk, [...bad.map((f, i) => `${ip(IP.atk, IP.vic, 1100 + i)}/TCP(sport=40000, dport=8080, flags='${f}')`),
        sentinel(IP.atk, IP.vic, 1199)]);
      t.ok(await cap.waitFor(ipId(1199)), 'the valid SYN (sentinel) arrives');
      bad.forEach((f, i) => t.notOk(cap.has(ipId(1100 + i)), `flags "${f || 'NULL'}" not delivered`));
      t.equal(count(w.atk, Dir.EGRESS, R.TCP_BAD_FLAGS), before + BigInt(bad.length), 'each counted as tcp_bad_flags at the sender');
      cap.stop();
    });

    t.test(`${F.label}: a fragmented destination-unreachable opens no echo channel`, async (t) => {
      const cap = await capture(w.vic);
      const err = `${F.portUnreach}/${ip(IP.vic, IP.atk)}/UDP(sport=9, dport=9)/Raw(b'x' * 64)`;
      await fromWl(w.atk, [
        ...F.fragments(IP.atk, IP.vic, 1201, err, 64),
        `${ip(IP.atk, IP.vic, 1202)}/${F.echoRequest(0, 1)}`,
        `${ip(IP.atk, IP.vic, 1203)}/${F.echoReply(0, 1)}`,
        sentinel(IP.atk, IP.vic, 1299),
      ]);
      t.ok(await cap.waitFor(ipId(1299)), 'sentinel arrives');
      t.ok(cap.has(F.firstFragment(1201)), `first fragment of the unreachable arrives (policy allows type ${F.unreachType})`);
      t.ok(cap.has(F.laterFragment(1201)), 'and its later fragment');
      t.notOk(cap.has(ipId(1202)), 'echo request id 0 denied');
      t.notOk(cap.has(ipId(1203)), 'echo reply id 0 denied');
      cap.stop();
    });

    t.test(`${F.label}: an outgoing ping admits the reply, not the peer's echo requests`, async (t) => {
      const cap = await capture(w.vic);
      await fromWl(w.vic, [`${ip(IP.vic, OUT, 1301)}/${F.echoRequest(4242, 1)}/Raw(b'ping')`]);
      t.ok(await cap.waitFor(/echo reply, id 4242/), 'the outside host\'s echo reply arrives');
      const before = count(w.vic, Dir.INGRESS, R.POLICY_DENY);
      await fromExt([`${ip(OUT, IP.vic, 1302)}/${F.echoRequest(4242, 2)}`, sentinel(OUT, IP.vic, 1399)]);
      t.ok(await cap.waitFor(ipId(1399)), 'sentinel from outside arrives');
      t.notOk(cap.has(ipId(1302)), 'the outside host\'s echo request with the same id does not');
      t.ok(count(w.vic, Dir.INGRESS, R.POLICY_DENY) > before, 'counted as a policy deny on the victim\'s ingress');
      cap.stop();
    });

    t.test(`${F.label}: ICMP errors: genuine ones pass, forged ones are policy's`, async (t) => {
      const cap = await capture(w.vic);
      // A live flow vic:5555 -> ext:53 (UDP; nothing listens outside, ext's kernel answers port unreachable).
      await fromWl(w.vic, [`${ip(IP.vic, OUT, 1401)}/UDP(sport=5555, dport=53)/Raw(b'q')`]);
      t.ok(await cap.waitFor(F.udpPortUnreachable(53)), 'the outside\'s genuine port unreachable arrives (related)');
      const quoteLive = `${ip(IP.vic, OUT)}/UDP(sport=5555, dport=53)`;
      const quoteReversed = `${ip(OUT, IP.vic)}/UDP(sport=53, dport=5555)`;
      await fromExt([
        `${ip(ROUTER[F.v], IP.vic, 1402)}/${F.timeExceeded}/${quoteLive}`,
        `${ip(OUT, IP.vic, 1403)}/${F.timeExceeded}/${quoteReversed}/Raw(b'y' * 1000)`,
        `${ip(OUT, IP.vic, 1404)}/${F.paramProblem}/${ip(IP.vic, OUT)}/UDP(sport=5556, dport=53)/Raw(b'z' * 1000)`,
        sentinel(OUT, IP.vic, 1499),
      ]);
      t.ok(await cap.waitFor(ipId(1499)), 'sentinel arrives');
      t.ok(cap.has(ipId(1402)), 'time exceeded from a router about the live flow, to its source: related');
      t.notOk(cap.has(ipId(1403)), '1 KB error quoting the flow the other way round: denied');
      t.notOk(cap.has(ipId(1404)), '1 KB error quoting no flow: denied');

      // A workload quoting its own SYN that the victim's policy denied (port 9999).
      const before = count(w.vic, Dir.INGRESS, R.POLICY_DENY);
      await fromWl(w.atk, [
        `${ip(IP.atk, IP.vic, 1405)}/TCP(sport=41000, dport=9999, flags='S')`,
        `${ip(IP.atk, IP.vic, 1406)}/${F.timeExceeded}/${ip(IP.vic, IP.atk)}/TCP(sport=9999, dport=41000, flags='SA')/Raw(b'w' * 1000)`,
        sentinel(IP.atk, IP.vic, 1498),
      ]);
      t.ok(await cap.waitFor(ipId(1498)), 'sentinel arrives');
      t.notOk(cap.has(ipId(1405)), 'the SYN to 9999 is denied');
      t.notOk(cap.has(ipId(1406)), 'and an "error" quoting the victim\'s reply to it is denied too');
      t.ok(count(w.vic, Dir.INGRESS, R.POLICY_DENY) >= before + 2n, 'both counted as policy denies');
      cap.stop();
    });

    t.test(`${F.label}: a workload cannot send with another's source address`, async (t) => {
      const cap = await capture(w.vic);
      const before = count(w.atk, Dir.EGRESS, R.SPOOFED_SRC);
      // As the client (a neighbour workload), as the outside host, as the victim itself.
      await fromWl(w.atk, [
        `${ip(IP.cli, IP.vic, 1601)}/TCP(sport=42000, dport=8080, flags='S')`,
        `${ip(OUT, IP.vic, 1602)}/TCP(sport=42001, dport=8080, flags='S')`,
        `${ip(IP.vic, IP.vic, 1603)}/TCP(sport=42002, dport=8080, flags='S')`,
        sentinel(IP.atk, IP.vic, 1699),
      ]);
      t.ok(await cap.waitFor(ipId(1699)), 'sentinel (from its own address) arrives');
      [1601, 1602, 1603].forEach((id) => t.notOk(cap.has(ipId(id)), `spoofed SYN ${id} not delivered`));
      t.equal(count(w.atk, Dir.EGRESS, R.SPOOFED_SRC), before + 3n, 'each counted as spoofed_src at the sender');
      cap.stop();
    });

    t.test(`${F.label}: a request the receiver denied opens no reply path back to the sender`, async (t) => {
      const cap = await capture(w.cli);
      // cli -> atk:7000 is allowed by cli's egress, denied by atk's ingress; atk then "replies".
      await fromWl(w.cli, [`${ip(IP.cli, IP.atk, 1501)}/UDP(sport=6000, dport=7000)/Raw(b'hi')`]);
      const before = count(w.cli, Dir.INGRESS, R.POLICY_DENY);
      await fromWl(w.atk, [`${ip(IP.atk, IP.cli, 1502)}/UDP(sport=7000, dport=6000)/Raw(b'pwn')`]);
      // Control: a real reply from vic:8080 (allowed by vic's ingress) reaches cli.
      await fromWl(w.cli, [`${ip(IP.cli, IP.vic, 1503)}/TCP(sport=6001, dport=8080, flags='S')`]);
      const esc = (a: string) => a.replace(/\./g, '\\.');
      t.ok(await cap.waitFor(new RegExp(`${esc(IP.vic)}\\.8080 > ${esc(IP.cli)}\\.6001`)), 'the genuine reply from vic arrives');
      t.ok(await until(() => count(w.cli, Dir.INGRESS, R.POLICY_DENY) > before), 'the peer\'s "reply" judged (and denied) by the client\'s ingress policy');
      t.notOk(cap.has(ipId(1502)), 'and not delivered');
      cap.stop();
    });
  }
});
