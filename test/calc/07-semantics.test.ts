/**
 * The Calico semantics shared by the compiler and the reference evaluator (so the differential
 * test cannot catch a mistake in them): selector composition as libcalico-go's
 * getEndpointSelector, effective labels, ordering, defaults, protocol and port parsing.
 */
import t from 'tap';
import {
  comparePolicies,
  compareTiers,
  effectiveLabels,
  entityNotSelector,
  entitySelector,
  parsePorts,
  policyEndpointSelector,
  policyTypes,
  protocolNumber,
  tierInfo,
} from '../../src/calc/semantics';
import { gnp, namespace, np, profile, tier, wep } from '../../src/testbed/fixtures';

t.test('entity selectors compose namespace, service accounts and selector like Calico', async (t) => {
  t.equal(entitySelector({ selector: 'app == "a"' }, 'ns1')?.canonical, '(projectcalico.org/namespace == "ns1" && app == "a")');
  t.equal(entitySelector({ selector: 'app == "a"' }, undefined)?.canonical, 'app == "a"');
  t.equal(entitySelector({ notSelector: 'app == "a"' }, 'ns1')?.canonical, 'projectcalico.org/namespace == "ns1"', 'notSelector alone scopes to the namespace');
  t.equal(entitySelector({ notSelector: 'app == "a"' }, undefined), undefined);
  t.equal(entityNotSelector({ notSelector: 'app == "a"' })?.canonical, 'app == "a"', 'notSelector is not namespaced');
  t.equal(entitySelector({ nets: ['10.0.0.0/8'] }, 'ns1'), undefined, 'nets only: no selector');
  t.equal(entitySelector({ namespaceSelector: 'all()' }, 'ns1')?.canonical, 'has(projectcalico.org/namespace)');
  t.equal(entitySelector({ namespaceSelector: 'global()' }, undefined)?.canonical, '!has(projectcalico.org/namespace)');
  t.equal(
    entitySelector({ namespaceSelector: 'team == "x"', selector: 'app == "a"' }, 'ns1')?.canonical,
    '(pcns.team == "x" && app == "a")',
    'namespaceSelector replaces the own-namespace restriction',
  );
  t.equal(
    entitySelector({ serviceAccounts: { names: ['b', 'a'], selector: 'role == "x"' } }, undefined)?.canonical,
    '(pcsa.role == "x" && projectcalico.org/serviceaccount in {"a", "b"})',
  );
});

t.test('policy endpoint selectors fold in the namespace and service accounts', async (t) => {
  t.equal(policyEndpointSelector(np('ns1/p', { selector: 'app == "a"' })).canonical, '(projectcalico.org/namespace == "ns1" && app == "a")');
  t.equal(policyEndpointSelector(gnp('g', { selector: 'app == "a"' })).canonical, 'app == "a"');
  t.equal(policyEndpointSelector(gnp('g', {})).canonical, 'all()');
  t.equal(
    policyEndpointSelector(gnp('g', { selector: 'all()', namespaceSelector: 'env == "prod"', serviceAccountSelector: 'role == "x"' })).canonical,
    '(pcns.env == "prod" && pcsa.role == "x" && all())',
  );
  t.equal(policyEndpointSelector(gnp('g', { selector: 'app ==' })).evaluate({ app: 'x' }), false, 'unparseable selector matches nothing');
});

t.test('effective labels: profiles, namespace, own labels, Calico labels', async (t) => {
  const w = wep('ns1/a', { labels: { app: 'own', tier: 'own' }, profiles: ['p1', 'p2'], sa: 'sa1' });
  const profs = new Map([
    ['p1', profile('p1', { labelsToApply: { tier: 'p1', x: 'p1' } })],
    ['p2', profile('p2', { labelsToApply: { x: 'p2', y: 'p2' } })],
  ]);
  const l = effectiveLabels(
    w,
    (n) => profs.get(n),
    (n) => (n === 'ns1' ? namespace('ns1', { env: 'prod' }) : undefined),
  );
  t.same(
    { ...l },
    {
      tier: 'own',
      x: 'p1',
      y: 'p2',
      'pcns.env': 'prod',
      'pcns.projectcalico.org/name': 'ns1',
      app: 'own',
      'projectcalico.org/namespace': 'ns1',
      'projectcalico.org/orchestrator': 'k8s',
      'projectcalico.org/serviceaccount': 'sa1',
      'pcsa.projectcalico.org/name': 'sa1',
    },
  );
});

t.test('ordering and defaults', async (t) => {
  const tiers = [tierInfo('b', tier('b', 10)), tierInfo('default', undefined), tierInfo('a', tier('a', 10)), tierInfo('z', tier('z')), tierInfo('c', tier('c', 2_000_000))];
  t.same(
    tiers.sort(compareTiers).map((x) => x.name),
    ['a', 'b', 'default', 'c', 'z'],
    'order, then name; default tier at 1,000,000; unset last',
  );
  t.equal(tierInfo('t', tier('t', 1, 'Pass')).defaultAction, 'Pass');
  t.equal(tierInfo('t', undefined).defaultAction, 'Deny');
  const pols = [gnp('b', { order: 5 }), gnp('a', {}), np('ns1/a', { order: 5 }), gnp('c', { order: 1 })];
  t.same(
    pols.sort(comparePolicies).map((p) => `${p.kind === 'NetworkPolicy' ? 'np' : 'gnp'}:${p.metadata.name}`),
    ['gnp:c', 'np:a', 'gnp:b', 'gnp:a'],
  );
  t.same(policyTypes(gnp('x', { ingress: [{ action: 'Allow' }] })), { ingress: true, egress: false });
  t.same(policyTypes(gnp('x', { egress: [{ action: 'Allow' }] })), { ingress: false, egress: true });
  t.same(policyTypes(gnp('x', {})), { ingress: true, egress: false });
  t.same(policyTypes(gnp('x', { types: ['Egress'], ingress: [{ action: 'Allow' }] })), { ingress: false, egress: true });
});

t.test('protocols and ports', async (t) => {
  t.same(['TCP', 'udp', 'ICMPv6', 'SCTP', 'UDPLite', 'icmp', 47, '47', 256, 'GRE'].map(protocolNumber), [6, 17, 58, 132, 136, 1, 47, 47, undefined, undefined]);
  t.same(parsePorts([80, '8080:8090', 'http', '443', '90:85', 'dns', 'http', 81]), {
    ranges: [
      [80, 81],
      [443, 443],
      [8080, 8090],
    ],
    named: ['dns', 'http'],
  });
  t.equal(parsePorts([]), undefined);
});
