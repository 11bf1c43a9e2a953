import t from 'tap';
import { valid, problems, res } from './helpers/util';

const pool = (spec: unknown, name = 'pool1') => res('IPPool', name, spec);

t.test('defaults: modes Never, blockSize 26/122, nodeSelector all(), uses, assignment', async (t) => {
  const r = valid(pool({ cidr: '192.168.0.0/16' }));
  t.same(r.spec, {
    cidr: '192.168.0.0/16',
    vxlanMode: 'Never',
    ipipMode: 'Never',
    blockSize: 26,
    nodeSelector: 'all()',
    allowedUses: ['Workload', 'Tunnel'],
    assignmentMode: 'Automatic',
  });
  const v6 = valid(pool({ cidr: 'fd00:10::/48' }));
  t.equal((v6.spec as { blockSize: number }).blockSize, 122);
});

t.test('cidr with host bits is masked, as Calico stores the network address', async (t) => {
  t.equal((valid(pool({ cidr: '192.168.7.9/16' })).spec as { cidr: string }).cidr, '192.168.0.0/16');
  t.equal((valid(pool({ cidr: 'fd00:0:0:0::1/64' })).spec as { cidr: string }).cidr, 'fd00::/64');
});

t.test('cidr errors', async (t) => {
  t.same(problems(pool({})), ['IPPool pool1: spec.cidr: is required']);
  t.same(problems(pool({ cidr: '192.168.0.0' })), [
    'IPPool pool1: spec.cidr: "192.168.0.0" is not a valid CIDR (e.g. 192.168.0.0/16)',
  ]);
  t.same(problems(pool({ cidr: '300.1.0.0/16' })), [
    'IPPool pool1: spec.cidr: "300.1.0.0/16" is not a valid CIDR (e.g. 192.168.0.0/16)',
  ]);
  t.same(problems(pool({ cidr: 42 })), ['IPPool pool1: spec.cidr: must be a string, got a number (42)']);
  t.same(problems(pool({ cidr: '169.254.0.0/24' })), [
    'IPPool pool1: spec.cidr: 169.254.0.0/24 overlaps the link-local range 169.254.0.0/16',
  ]);
  t.same(problems(pool({ cidr: '10.0.0.0/8', blockSize: 26 })).length, 0, 'large pools are fine');
  t.same(problems(pool({ cidr: '160.0.0.0/4' })), [
    'IPPool pool1: spec.cidr: 160.0.0.0/4 overlaps the link-local range 169.254.0.0/16',
  ]);
  t.same(problems(pool({ cidr: 'fe80::/64' })), ['IPPool pool1: spec.cidr: fe80::/64 overlaps the link-local range fe80::/10']);
});

t.test('blockSize range and pool-size check', async (t) => {
  t.same(problems(pool({ cidr: '10.0.0.0/16', blockSize: 19 })), ['IPPool pool1: spec.blockSize: 19 is out of range (20 to 32)']);
  t.same(problems(pool({ cidr: '10.0.0.0/16', blockSize: 33 })), ['IPPool pool1: spec.blockSize: 33 is out of range (20 to 32)']);
  t.same(problems(pool({ cidr: 'fd00::/64', blockSize: 26 })), ['IPPool pool1: spec.blockSize: 26 is out of range (116 to 128)']);
  t.same(problems(pool({ cidr: '10.0.0.0/16', blockSize: 26.5 })), ['IPPool pool1: spec.blockSize: must be an integer, got 26.5']);
  t.same(problems(pool({ cidr: '10.0.0.0/16', blockSize: '26' })), [
    'IPPool pool1: spec.blockSize: must be an integer, got a string ("26")',
  ]);
  t.equal((valid(pool({ cidr: '10.0.0.0/16', blockSize: 0 })).spec as { blockSize: number }).blockSize, 26, '0 = default');
  t.same(problems(pool({ cidr: '10.0.0.0/28' })), [
    'IPPool pool1: spec.cidr: /28 is smaller than one block (/26); use a pool of at least the block size or a larger blockSize',
  ]);
  t.same(problems(pool({ cidr: '10.0.0.0/28', disabled: true })), [], 'disabled pools may be small');
  t.same(problems(pool({ cidr: '10.0.0.0/28', blockSize: 30 })), []);
});

t.test('encapsulation modes', async (t) => {
  for (const m of ['Never', 'Always', 'CrossSubnet']) {
    t.equal((valid(pool({ cidr: '10.0.0.0/16', ipipMode: m })).spec as { ipipMode: string }).ipipMode, m);
  }
  t.same(problems(pool({ cidr: '10.0.0.0/16', ipipMode: 'always' })), [
    'IPPool pool1: spec.ipipMode: must be one of Never, Always, CrossSubnet, got a string ("always")',
  ]);
  t.same(problems(pool({ cidr: '10.0.0.0/16', ipipMode: 'Always', vxlanMode: 'CrossSubnet' })), [
    'IPPool pool1: spec: ipipMode and vxlanMode cannot both be enabled',
  ]);
  t.same(problems(pool({ cidr: '10.0.0.0/16', ipipMode: 'Always', vxlanMode: 'Never' })), []);
  t.same(problems(pool({ cidr: 'fd00::/64', ipipMode: 'Always' })), ['IPPool pool1: spec.ipipMode: IPIP is not supported on IPv6 pools']);
});

t.test('booleans, selectors, v1 fields in v3, unknown fields', async (t) => {
  const r = valid(pool({ cidr: '10.0.0.0/16', natOutgoing: true, disabled: false, nodeSelector: "zone == 'a'" }));
  t.same(r.spec, {
    cidr: '10.0.0.0/16',
    vxlanMode: 'Never',
    ipipMode: 'Never',
    natOutgoing: true,
    blockSize: 26,
    nodeSelector: "zone == 'a'",
    allowedUses: ['Workload', 'Tunnel'],
    assignmentMode: 'Automatic',
  });
  t.same(problems(pool({ cidr: '10.0.0.0/16', natOutgoing: 'yes' })), [
    'IPPool pool1: spec.natOutgoing: must be true or false, got a string ("yes")',
  ]);
  t.match(problems(pool({ cidr: '10.0.0.0/16', nodeSelector: 'a ==' }))[0], /^IPPool pool1: spec\.nodeSelector: .*a ==/);
  t.same(problems(pool({ cidr: '10.0.0.0/16', nodeSelector: 'global()' })), [
    "IPPool pool1: spec.nodeSelector: global() is only allowed in a rule's namespaceSelector",
  ]);
  t.same(problems(pool({ cidr: '10.0.0.0/16', 'nat-outgoing': true, ipip: { enabled: true } })), [
    'IPPool pool1: spec.ipip: is the v1 form; in projectcalico.org/v3 use spec.ipipMode',
    'IPPool pool1: spec.nat-outgoing: is the v1 form; in projectcalico.org/v3 use spec.natOutgoing',
  ]);
  t.same(problems(pool({ cidr: '10.0.0.0/16', natOutGoing: true })), ['IPPool pool1: spec.natOutGoing: unknown field']);
});

t.test('allowedUses and LoadBalancer constraints', async (t) => {
  t.same(problems(pool({ cidr: '10.0.0.0/16', allowedUses: ['Workload', 'Bogus'] })), [
    'IPPool pool1: spec.allowedUses[1]: unknown use "Bogus" (expected Workload, Tunnel, LoadBalancer)',
  ]);
  t.same(problems(pool({ cidr: '10.0.0.0/16', allowedUses: ['LoadBalancer', 'Workload'] })), [
    'IPPool pool1: spec.allowedUses: LoadBalancer cannot be combined with Workload or Tunnel',
  ]);
  t.same(problems(pool({ cidr: '10.0.0.0/16', allowedUses: ['LoadBalancer'], ipipMode: 'Always' })), [
    'IPPool pool1: spec.allowedUses: a LoadBalancer pool cannot have IPIP or VXLAN enabled',
  ]);
  t.same((valid(pool({ cidr: '10.0.0.0/16', allowedUses: ['Workload'] })).spec as { allowedUses: string[] }).allowedUses, ['Workload']);
});

t.test('metadata: name rules, namespace not allowed, labels', async (t) => {
  t.same(problems(pool({ cidr: '10.0.0.0/16' }, 'Pool_1')), [
    `IPPool Pool_1: metadata.name: "Pool_1" must consist of lower-case letters, digits, '-' and '.', and start and end with a letter or digit`,
  ]);
  t.same(problems(res('IPPool', undefined, { cidr: '10.0.0.0/16' })), ['IPPool (no name): metadata.name: is required']);
  t.same(problems(res('IPPool', 'p', { cidr: '10.0.0.0/16' }, { namespace: 'x' })), [
    'IPPool p: metadata.namespace: IPPool is not namespaced; remove metadata.namespace',
  ]);
  t.same(problems(res('IPPool', 'p', { cidr: '10.0.0.0/16' }, { labels: { 'bad key!': 'v' } })), [
    `IPPool p: metadata.labels["bad key!"]: key "bad key!": name part must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit`,
  ]);
  const r = valid(res('IPPool', 'my.ippool-1', { cidr: '10.1.0.0/16' }, { labels: { 'example.com/env': 'prod' }, resourceVersion: '12' }));
  t.same(r.metadata, { name: 'my.ippool-1', labels: { 'example.com/env': 'prod' }, resourceVersion: '12' });
});
