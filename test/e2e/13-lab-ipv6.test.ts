// The dual-stack lab (`tortie-lab`, dual stack by default): a ULA underlay next to the IPv4 one, the pool
// fd00:10::/48 with NAT outgoing, every workload given an IPv4 and an IPv6 address by the real CNI
// plugin's IPAM (assign_ipv6), the IPv6 pool in vxlanMode CrossSubnet. Every cell holds: the IPv4
// matrix as before, IPv6 policy on one node, directly between the two nodes of one subnet and over
// VXLAN in outer IPv6 to node-c in the other subnet (allowed and denied by policy, the path seen
// on the router), and the outside host seeing each node's IPv6 address (NAT66).
import t from 'tap';
import { Lab, formatMatrix } from '../../src/lab/lab';
import { leftoverNamespaces } from '../../src/util/netns';
import { labIpv6, main } from '../../src/lab/main';
import ipaddr from 'ipaddr.js';

/** The /122 an IPv6 address is in, as its first address. */
const blockOf122 = (ip: string) => ipaddr.IPv6.networkAddressFromCIDR(`${ip}/122`).toString();

t.test('tortie-lab is dual stack by default; --ipv4-only and --bgp leave IPv6 out; contradictions refused', async (t) => {
  t.equal(labIpv6([]), true, 'no flags: dual stack');
  t.equal(labIpv6(['--once', '--vxlan']), true);
  t.equal(labIpv6(['--ipv4-only']), false);
  t.equal(labIpv6(['--bgp']), false, '--bgp: IPv4 only (its ToR and cells)');
  t.equal(await main(['--ipv6', '--bgp', '--once']), 2);
  t.equal(await main(['--ipv6', '--ipv4-only', '--once']), 2);
});

t.test('lab --ipv6: dual-stack workloads, the IPv6 cells', async (t) => {
  const logs: string[] = [];
  const lab = new Lab({ ipv6: true, log: (s) => logs.push(s) });
  t.teardown(() => lab.destroy());
  await lab.build();
  await lab.setUpScenario();
  t.notMatch(logs.join('\n'), /experimental|TORTIE_EXPERIMENTAL/i, 'IPv6 is not gated any more');
  for (const n of lab.nodes.values()) t.match(n.ip6, /^fd00:198:18:\d::\d+$/, `${n.name}: a ULA underlay address`);
  for (const w of lab.workloads.values()) {
    t.match(w.ip, /^192\.168\./, `${w.name}: IPv4 from the seed pool`);
    t.match(w.ip6, /^fd00:10:/, `${w.name}: IPv6 from the ULA pool`);
  }
  const cells = await lab.matrix();
  t.comment('\n' + formatMatrix(cells));
  for (const c of cells) {
    t.ok(c.ok, `${c.from} → ${c.to} ${c.what}: expected ${JSON.stringify(c.expect)}, got ${JSON.stringify(c.got)}`);
  }
  const v6 = cells.filter((c) => c.what.startsWith('tcp6/') || c.to.includes('IPv6'));
  const find = (from: string, to: string, what: string) => v6.find((c) => c.from === from && c.to === to && c.what === what);
  t.match(find('b-web', 'b-db', 'tcp6/5432')?.got, { allowed: true, path: 'local' }, 'same node: policy allows web → db');
  t.match(find('b-web', 'b-db', 'tcp6/8080')?.got, { allowed: false }, 'same node: policy denies tcp/8080 to db');
  t.match(find('a-web', 'b-db', 'tcp6/5432')?.got, { allowed: true, path: 'direct' }, 'across nodes in one subnet: direct');
  t.match(find('a-web', 'b-db', 'tcp6/8080')?.got, { allowed: false }, 'across nodes: denied by policy');
  t.match(find('c-web', 'b-db', 'tcp6/5432')?.got, { allowed: true, path: 'VXLAN' }, 'across subnets: over VXLAN (outer IPv6, seen on the router)');
  t.match(find('b-db', 'c-client', 'tcp6/8080')?.got, { allowed: true, path: 'VXLAN' }, 'and the other way');
  t.match(find('c-web', 'b-db', 'tcp6/8080')?.got, { allowed: false }, 'across subnets: denied by policy');
  t.notOk(cells.some((c) => c.expect.unsupported), 'no cell is marked not supported');
  t.notMatch(formatMatrix(cells), /not supported/);
  const nat = v6.filter((c) => c.what === 'http (NAT66 outgoing)');
  t.same(nat.map((c) => c.got.seenSource), [lab.nodes.get('node-a')!.ip6, lab.nodes.get('node-c')!.ip6], 'NAT66: the outside host sees each node\'s IPv6 address');
  const pools = await lab.tortiectl(['get', 'ippool', '-o', 'wide']);
  t.match(pools.stdout, /fd00:10::\/48\s+true\s+Never\s+CrossSubnet/, 'tortiectl shows the IPv6 pool with NAT outgoing and VXLAN across subnets');
  const b = (n: string) => lab.workloads.get(n)!.ip6!;
  t.equal(blockOf122(b('b-web')), blockOf122(b('b-db')), 'node-b\'s two workloads share one /122 block');
  t.not(blockOf122(b('a-web')), blockOf122(b('b-db')), 'node-a\'s block is another');
  const prefix = lab.topo.prefix;
  await lab.destroy();
  t.same(leftoverNamespaces(prefix), [], 'lab namespaces removed');
});
