// IPv6 on one node with real packets in network namespaces: dual-stack workloads wired by the CNI
// plugin's steps (host MAC ee:ee:…, default route via fe80::ecee:eeff:feee:eeee, no DAD), policy
// compiled by src/calc for both families (selectors, IPv6 nets, ipVersion), the IPv6 datapath in
// tortie_wep: allow/deny, a dual-stack workload allowed in IPv4 and denied in IPv6, replies and
// ICMPv6 errors through conntrack, neighbour discovery before any policy, anti-spoofing, extension
// header chains and malformed headers dropped with their reason, fragments.
import t from 'tap';
import { namespace, wep as fixtureWep } from '../../src/testbed/fixtures';
import { SingleNode, type Workload } from '../../src/testbed';
import { uniquePinRoot, removePinRoot, testHostRouting } from '../../src/testbed/wep-harness';
import { loadWep, type WepDatapath } from '../../src/dataplane/bpf/loader';
import { readCounters, counterPackets } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { Capture, eventually, scapy, until } from '../../src/testbed/probes';
import type { GlobalNetworkPolicy, Rule } from '../../src/model';

const V3 = 'projectcalico.org/v3' as const;
const IP = {
  web: ['192.168.20.1', 'fd00:20::1'], cli: ['192.168.20.2', 'fd00:20::2'], oth: ['192.168.20.3', 'fd00:20::3'], lone: ['192.168.20.4', 'fd00:20::4'],
} as const;
const GW6 = 'fe80::ecee:eeff:feee:eeee';

const fromCli = { selector: "app == 'cli'" };
const webIngress: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'web-in' }, spec: {
  selector: "app == 'web'", types: ['Ingress'], ingress: [
    { action: 'Allow', protocol: 'TCP', source: fromCli, destination: { ports: [8080] } },
    { action: 'Allow', protocol: 'TCP', source: { nets: [`${IP.cli[1]}/128`] }, destination: { ports: [8081] } },
    { action: 'Deny', ipVersion: 6, protocol: 'TCP', source: fromCli, destination: { ports: [8082] } },
    { action: 'Allow', protocol: 'TCP', source: fromCli, destination: { ports: [8082] } },
    { action: 'Allow', protocol: 'ICMPv6', source: fromCli, icmp: { type: 128 } },
    { action: 'Allow', protocol: 'UDP', source: fromCli, destination: { ports: [9999] } },
  ] as Rule[] } };
// Everyone may send anything; only `lone` has no policy at all (default deny both ways).
const egressAll: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'egress-all' },
  spec: { selector: "app != 'lone'", types: ['Egress'], egress: [{ action: 'Allow' }] } };

t.test('IPv6 on one node, real packets', async (t) => {
  const topo = await SingleNode.create('v6e2e');
  const pinRoot = uniquePinRoot('v6e2e');
  let dp: WepDatapath | undefined;
  const caps: Capture[] = [];
  t.teardown(async () => { for (const c of caps) c.stop(); dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });

  const w: Record<keyof typeof IP, Workload> = {} as Record<keyof typeof IP, Workload>;
  for (const k of Object.keys(IP) as (keyof typeof IP)[]) w[k] = await topo.addWorkload(k, IP[k][0], { ip6: IP[k][1] });
  dp = await loadWep({ pinRoot, hostRouting: testHostRouting(), ctMaxEntries: 65536 });
  const weps = (Object.keys(IP) as (keyof typeof IP)[]).map((k) => fixtureWep(`ns1/${k}`, { ip: [...IP[k]], labels: { app: k } }));
  const { pd } = topo.program(dp, [namespace('ns1'), ...weps, webIngress, egressAll]);
  t.same(pd.pendingEndpoints, [], 'every endpoint bound');
  const count = (x: Workload, dir: number, reason: number) => counterPackets(readCounters(dp!.maps.cnt!, dp!.maps), x.ifindex, dir, reason);
  await w.web.ns.spawn(['socat', 'TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=0', 'EXEC:echo ok8080']);
  await w.web.ns.spawn(['socat', 'TCP6-LISTEN:8081,fork,reuseaddr,ipv6only=0', 'EXEC:echo ok8081']);
  await w.web.ns.spawn(['socat', 'TCP6-LISTEN:8082,fork,reuseaddr,ipv6only=0', 'EXEC:echo ok8082']);
  const tcp = async (from: Workload, ip: string, port: number) => {
    const addr = ip.includes(':') ? `[${ip}]` : ip;
    const r = await from.ns.sh(`timeout 4 socat -T2 - TCP:${addr}:${port},connect-timeout=2 </dev/null`, { allowFail: true, timeoutMs: 10_000 });
    return r.stdout.trim() === `ok${port}`;
  };
  const ping6 = async (from: Workload, ip: string, extra: string[] = []) =>
    (await from.ns.exec(['ping', '-6', '-c', '2', '-W', '1', '-i', '0.2', ...extra, ip], { allowFail: true, timeoutMs: 10_000 })).code === 0;
  // Listeners up (the workload's own sockets, no policy involved).
  await w.web.ns.sh('for i in $(seq 50); do ss -ltn | grep -q :8082 && exit 0; sleep 0.1; done; exit 1');

  t.test('neighbour discovery works before any policy', async (t) => {
    // `lone` is denied everything by default, yet resolves its IPv6 gateway.
    t.notOk(await ping6(w.lone, IP.web[1]), 'lone\'s ping is denied (default deny)');
    const resolved = new RegExp(`${GW6} lladdr ee:ee:ee:ee:ee:ee`);
    t.ok(await eventually(async () => resolved.test((await w.lone.ns.exec(['ip', '-6', 'neigh', 'show', 'dev', 'eth0'])).stdout), true, 3000),
      'its gateway fe80::ecee:eeff:feee:eeee resolved to ee:ee:ee:ee:ee:ee');
    t.ok(count(w.lone, Dir.EGRESS, R.POLICY_DENY) > 0n, 'its echo requests were denied by policy');
    const route = await w.lone.ns.exec(['ip', '-6', 'route', 'show', 'default']);
    t.match(route.stdout, new RegExp(`default via ${GW6} dev eth0`), 'default route via the host side\'s link-local address');
    // The workload's own addresses are added without DAD (usable at once). Its kernel-made
    // link-local address may still be tentative for a moment: nothing of the workload's
    // traffic uses it as a source before DAD ends (its solicitations go from its own address).
    const addr = await w.lone.ns.exec(['ip', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    t.match(addr.stdout, /inet6 \S+\/128 scope global nodad/, 'the workload\'s /128 is added without DAD');
    t.notMatch(addr.stdout, /tentative/, 'so it never waits for duplicate address detection');
    const hostLl = await topo.node.exec(['ip', '-6', 'addr', 'show', 'dev', w.lone.hostIf, 'scope', 'link']);
    t.match(hostLl.stdout, /inet6 fe80::ecee:eeff:feee:eeee\/64 scope link/, 'the host side has the gateway link-local address');
    t.notMatch(hostLl.stdout, /tentative/, 'and it answers at once (accept_dad=0 before the link came up)');
    const sys = await topo.node.exec(['sysctl', '-n', `net.ipv6.conf.${w.lone.hostIf}.accept_ra`, `net.ipv6.conf.${w.lone.hostIf}.proxy_ndp`]);
    t.same(sys.stdout.trim().split('\n'), ['0', '1'], 'host side: accept_ra=0, proxy_ndp=1');
  });

  t.test('allow and deny by selector, by IPv6 nets, by ipVersion', async (t) => {
    t.ok(await tcp(w.cli, IP.web[1], 8080), 'cli -> web:8080 over IPv6 (selector)');
    t.ok(await tcp(w.cli, IP.web[0], 8080), 'and over IPv4');
    const deny0 = count(w.web, Dir.INGRESS, R.POLICY_DENY);
    t.notOk(await tcp(w.oth, IP.web[1], 8080), 'oth -> web:8080 over IPv6 denied');
    t.ok(count(w.web, Dir.INGRESS, R.POLICY_DENY) > deny0, 'counted as policy deny on web\'s ingress');
    t.ok(await tcp(w.cli, IP.web[1], 8081), 'cli -> web:8081 from the allowed IPv6 /128 (nets)');
    t.notOk(await tcp(w.oth, IP.web[1], 8081), 'oth -> web:8081 denied (not in nets)');
    t.notOk(await tcp(w.cli, IP.web[0], 8081), 'cli -> web:8081 over IPv4 denied (an IPv6-only nets rule)');
    t.ok(await tcp(w.cli, IP.web[0], 8082), 'dual stack: cli -> web:8082 over IPv4 allowed');
    t.notOk(await tcp(w.cli, IP.web[1], 8082), 'dual stack: the same over IPv6 denied by an ipVersion 6 rule');
    t.ok(await ping6(w.cli, IP.web[1]), 'cli pings web over IPv6 (echo allowed, the reply through conntrack)');
    t.notOk(await ping6(w.oth, IP.web[1]), 'oth may not');
  });

  t.test('fragments: a big ping is fragmented and follows its first fragment', async (t) => {
    t.ok(await ping6(w.cli, IP.web[1], ['-s', '3000']), 'cli -> web with 3000-byte echoes (fragments both ways)');
    t.notOk(await ping6(w.oth, IP.web[1], ['-s', '3000']), 'oth -> web fragmented: denied');
    const before = count(w.oth, Dir.EGRESS, R.FRAG_UNKNOWN) + count(w.web, Dir.INGRESS, R.FRAG_UNKNOWN);
    await scapy(w.oth.ns, [`IPv6(src='${IP.oth[1]}', dst='${IP.web[1]}')/IPv6ExtHdrFragment(offset=100, m=0, id=77, nh=17)/Raw(b'x' * 32)`], 'ee:ee:ee:ee:ee:ee');
    t.ok(await until(() => count(w.oth, Dir.EGRESS, R.FRAG_UNKNOWN) + count(w.web, Dir.INGRESS, R.FRAG_UNKNOWN) > before, 3000),
      'a later fragment with no first fragment is frag_unknown');
  });

  t.test('ICMPv6 errors: about a tracked flow they pass, forged ones are policy\'s', async (t) => {
    // cli -> web udp/9999 (allowed, nothing listens): web's kernel answers port unreachable,
    // which cli's ingress (no policy: default deny) passes only as related to the flow.
    const r = await w.cli.ns.sh(`echo q | timeout 3 socat -T2 - UDP6:[${IP.web[1]}]:9999`, { allowFail: true, timeoutMs: 10_000 });
    t.match(r.stderr, /Connection refused/, 'cli\'s socket gets the port unreachable (a genuine error passed)');
    const before = count(w.cli, Dir.INGRESS, R.POLICY_DENY);
    const quote = `IPv6(src='${IP.cli[1]}', dst='${IP.web[1]}')/UDP(sport=40404, dport=9999)`;
    await scapy(w.web.ns, [`IPv6(src='${IP.web[1]}', dst='${IP.cli[1]}')/ICMPv6DestUnreach(code=4)/${quote}`], 'ee:ee:ee:ee:ee:ee');
    t.ok(await until(() => count(w.cli, Dir.INGRESS, R.POLICY_DENY) > before, 3000), 'an error quoting no live flow is denied by cli\'s policy');
  });

  t.test('spoofed IPv6 source, header chains beyond the bound, malformed headers', async (t) => {
    await w.cli.ns.sh(`ip -6 addr add fd00:20::99/128 dev eth0 nodad`);
    const spoof0 = count(w.cli, Dir.EGRESS, R.SPOOFED_SRC);
    t.notOk(await ping6(w.cli, IP.web[1], ['-I', 'fd00:20::99']), 'ping from an address not the endpoint\'s fails');
    t.ok(count(w.cli, Dir.EGRESS, R.SPOOFED_SRC) >= spoof0 + 2n, 'counted as spoofed_src');
    await w.cli.ns.sh('ip -6 addr del fd00:20::99/128 dev eth0');
    const cap = await Capture.start(w.web.ns, 'ip6 and tcp');
    caps.push(cap);
    const c = (r: number) => count(w.cli, Dir.EGRESS, r);
    const before = { chain: c(R.IP6_EXT_CHAIN), bad: c(R.IP6_BAD_EXT), route: c(R.IP6_SRCROUTE), trunc: c(R.TRUNC_L4) };
    const base = `IPv6(src='${IP.cli[1]}', dst='${IP.web[1]}')`;
    await scapy(w.cli.ns, [
      `${base}/${'IPv6ExtHdrDestOpt()/'.repeat(9)}TCP(sport=1111, dport=8080, flags='S')`,
      `${base}/IPv6ExtHdrDestOpt()/IPv6ExtHdrHopByHop()/TCP(sport=1112, dport=8080, flags='S')`,
      `${base}/IPv6ExtHdrRouting(type=0, addresses=['${IP.oth[1]}'], segleft=1)/TCP(sport=1113, dport=8080, flags='S')`,
      `IPv6(src='${IP.cli[1]}', dst='${IP.web[1]}', nh=6, plen=10)/Raw(b'\\x00' * 10)`,
      `${base}/${'IPv6ExtHdrDestOpt()/'.repeat(3)}TCP(sport=1119, dport=8080, flags='S')`,
    ], 'ee:ee:ee:ee:ee:ee');
    t.ok(await cap.waitFor(/\.1119 > /), 'a SYN behind three destination options headers arrives (sentinel)');
    t.notOk(cap.has(/\.111[1-3] > /), 'none of the malformed ones does');
    t.equal(c(R.IP6_EXT_CHAIN), before.chain + 1n, 'nine extension headers: ip6_ext_chain');
    t.equal(c(R.IP6_BAD_EXT), before.bad + 1n, 'hop-by-hop after another header: ip6_bad_ext');
    t.equal(c(R.IP6_SRCROUTE), before.route + 1n, 'routing header with a segment left: ip6_srcroute');
    t.equal(c(R.TRUNC_L4), before.trunc + 1n, 'a 10-byte TCP header: trunc_l4');
  });
});
