/**
 * The real `tortie` plugin wiring a dual-stack workload as Calico's CNI plugin does: the IPv6
 * address as a /128 without duplicate address detection, the container's IPv6 default route via
 * fe80::ecee:eeff:feee:eeee (the host side's link-local from its MAC ee:ee:…), accept_ra=0,
 * proxy_ndp=1 and forwarding on the host side, a /128 host route; the result names both default
 * routes; CHECK verifies both families' wiring and fails when the IPv6 part is missing; the node
 * answers the container's neighbour solicitation for the gateway.
 */
import t from 'tap';
import { cniBed, runPlugin } from '../../src/testbed';
import { pool } from '../../src/testbed/fixtures';
import { eventually } from '../../src/testbed/probes';


t.test('a dual-stack ADD wires IPv6 as Calico does; CHECK covers it', async (t) => {
  const bed = await cniBed('cniv6wire', '192.168.81.0/24');
  t.teardown(() => bed.destroy());
  await bed.node.sh('sysctl -qw net.ipv6.conf.all.forwarding=1');
  await bed.store.rc.create(pool('default-ipv6-ippool', 'fd00:81::/120'));
  const pod = await bed.addWorkload('pod');
  const env = {
    CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'w6a', CNI_NETNS: `/run/netns/${pod.name}`, CNI_IFNAME: 'eth0',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod6',
  };
  const conf = bed.conf({ ipam: { type: 'tortie-ipam', assign_ipv4: 'true', assign_ipv6: 'true' } });
  const a = await runPlugin(bed.node, 'tortie', env, conf, bed.cniPath);
  t.equal(a.code, 0, `ADD: ${a.stdout} ${a.stderr}`);
  const res = a.out as { ips: { address: string }[]; interfaces: { name: string }[]; routes: { dst: string; gw: string }[] };
  const ip6 = res.ips.map((i) => i.address).find((x) => x.includes(':'))!;
  t.match(ip6, /^fd00:81::[0-9a-f]+\/128$/, 'the IPv6 address as a /128');
  t.same(res.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }, { dst: '::/0', gw: 'fe80::ecee:eeff:feee:eeee' }], 'both default routes in the result');
  const bare6 = ip6.split('/')[0]!;
  const hostIf = res.interfaces[0]!.name;

  const caddr = (await pod.exec(['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
  t.match(caddr, new RegExp(`inet6 ${bare6}/128 scope global nodad`), 'container: the /128 without DAD');
  t.notMatch(caddr, new RegExp(`${bare6}/128 .*tentative`), 'not tentative');
  t.match((await pod.exec(['ip', '-6', 'route', 'show', 'default'])).stdout, /^default via fe80::ecee:eeff:feee:eeee dev eth0/m, 'container: default via the link-local gateway');
  t.match((await bed.node.exec(['ip', '-6', 'route', 'show', 'dev', hostIf])).stdout, new RegExp(`^${bare6} `, 'm'), 'host: a /128 route to the workload');
  const sysctl = async (k: string) => (await bed.node.exec(['cat', `/proc/sys/net/ipv6/conf/${hostIf}/${k}`])).stdout.trim();
  t.equal(await sysctl('accept_ra'), '0', 'host: accept_ra=0');
  t.equal(await sysctl('proxy_ndp'), '1', 'host: proxy_ndp=1');
  t.equal(await sysctl('forwarding'), '1', 'host: forwarding=1');
  t.equal(await sysctl('accept_dad'), '0', 'host: no DAD on its link-local');
  t.match((await bed.node.exec(['ip', '-6', 'addr', 'show', 'dev', hostIf])).stdout, /inet6 fe80::ecee:eeff:feee:eeee\/64 scope link/, 'host: the gateway address');
  // The node answers the container's neighbour solicitation for its gateway (no programs here).
  await pod.exec(['ping', '-6', '-c', '1', '-W', '1', 'fe80::ecee:eeff:feee:eeee%eth0'], { allowFail: true, timeoutMs: 5000 });
  t.ok(await eventually(async () => /fe80::ecee:eeff:feee:eeee .*lladdr ee:ee:ee:ee:ee:ee/.test((await pod.exec(['ip', '-6', 'neigh', 'show', 'dev', 'eth0'])).stdout), true, 3000),
    'the gateway resolves to ee:ee:ee:ee:ee:ee');

  const check = (prevResult: unknown) => runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'CHECK' }, bed.conf({ ...conf, prevResult }), bed.cniPath);
  const ok = await check(a.out);
  t.equal(ok.code, 0, `CHECK passes: ${ok.stdout}`);
  await pod.exec(['ip', '-6', 'route', 'del', 'default']);
  const broken = await check(a.out);
  t.equal(broken.out?.code, 103, 'CHECK fails without the IPv6 default route');
  t.match(String(broken.out?.msg), /default route via fe80::ecee:eeff:feee:eeee dev eth0 missing/);
  t.equal((await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'DEL' }, conf, bed.cniPath)).code, 0, 'DEL');
});
