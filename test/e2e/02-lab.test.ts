// The lab (the README's main job) as a test: every cell of the connectivity matrix asserted.
import t from 'tap';
import { Lab, formatMatrix } from '../../src/lab/lab';
import { leftoverNamespaces } from '../../src/util/netns';

t.test('lab: policy verdicts, direct vs IPIP paths, NAT outgoing source — every cell', async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  await lab.build();
  await lab.setUpScenario();
  const cells = await lab.matrix();
  t.comment('\n' + formatMatrix(cells));
  for (const c of cells) {
    t.ok(c.ok, `${c.from} → ${c.to} ${c.what}: expected ${JSON.stringify(c.expect)}, got ${JSON.stringify(c.got)}`);
  }
  t.ok(cells.length >= 8, 'matrix covers policy, paths and NAT');
  const ipam = await lab.tortiectl(['ipam', 'show']);
  t.equal(ipam.code, 0, ipam.stderr);
  t.match(ipam.stdout, /192\.168\.0\.0\/16/);
  const nodes = await lab.tortiectl(['get', 'nodes', '-o', 'wide']);
  t.match(nodes.stdout, /node-c\s+.*198\.18\.2\.10\/24/, 'node address kept with its subnet');
  const prefix = lab.topo.prefix;
  await lab.destroy();
  t.same(leftoverNamespaces(prefix), [], 'lab namespaces removed');
});
