// The lab with its pool in vxlanMode CrossSubnet (`tortie-lab --vxlan`): the same matrix as the
// IPIP lab, with the cross-subnet cells classified VXLAN from the router's capture (UDP 4789),
// the same-subnet ones direct, every policy verdict and NAT outgoing source as before.
import t from 'tap';
import { Lab, formatMatrix } from '../../src/lab/lab';
import { leftoverNamespaces } from '../../src/util/netns';

t.test('lab --vxlan: VXLAN across subnets, direct within, policy and NAT as with IPIP', async (t) => {
  const lab = new Lab({ vxlan: true });
  t.teardown(() => lab.destroy());
  await lab.build();
  await lab.setUpScenario();
  const cells = await lab.matrix();
  t.comment('\n' + formatMatrix(cells));
  for (const c of cells) {
    t.ok(c.ok, `${c.from} → ${c.to} ${c.what}: expected ${JSON.stringify(c.expect)}, got ${JSON.stringify(c.got)}`);
  }
  t.ok(cells.some((c) => c.got.path === 'VXLAN'), 'the path column shows VXLAN');
  t.notOk(cells.some((c) => c.got.path === 'IPIP'), 'and never IPIP');
  const pools = await lab.tortiectl(['get', 'ippool', '-o', 'wide']);
  t.match(pools.stdout, /192\.168\.0\.0\/16\s+true\s+Never\s+CrossSubnet/, 'tortiectl shows the VXLAN pool');
  const prefix = lab.topo.prefix;
  await lab.destroy();
  t.same(leftoverNamespaces(prefix), [], 'lab namespaces removed');
});
