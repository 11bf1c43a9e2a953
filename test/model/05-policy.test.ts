import t from 'tap';
import { valid, problems, res, gnp } from './helpers/util';

const np = (spec: unknown, name = 'allow-web', ns = 'prod') => res('NetworkPolicy', name, spec, { namespace: ns });

t.test('defaults: tier default, selector all(), types from rule lists, tier label', async (t) => {
  const r = valid(np({ ingress: [{ action: 'Allow' }] }));
  t.same(r.metadata, { name: 'allow-web', namespace: 'prod', labels: { 'projectcalico.org/tier': 'default' } });
  t.same(r.spec, { tier: 'default', ingress: [{ action: 'Allow' }], selector: 'all()', types: ['Ingress'] });
  t.same((valid(np({ egress: [{ action: 'Allow' }] })).spec as any).types, ['Egress']);
  t.same((valid(np({ ingress: [{ action: 'Deny' }], egress: [{ action: 'Allow' }] })).spec as any).types, ['Ingress', 'Egress']);
  t.same((valid(np({})).spec as any).types, ['Ingress'], 'no rules → Ingress');
  t.same((valid(np({ ingress: [], egress: [{ action: 'Allow' }] })).spec as any).types, ['Egress'], '[] counts as absent');
  t.same((valid(np({ types: ['Egress'], ingress: [{ action: 'Allow' }] })).spec as any).types, ['Egress'], 'explicit types kept');
  t.same((valid(np({ types: [] , egress: [{ action: 'Allow' }] })).spec as any).types, ['Egress'], 'empty types defaulted');
  t.equal(valid(res('NetworkPolicy', 'p', {})).metadata.namespace, 'default', 'namespace defaults to default');
});

t.test('types errors', async (t) => {
  t.same(problems(np({ types: ['Ingress', 'Ingress'] })), ['NetworkPolicy prod/allow-web: spec.types[1]: Ingress is listed more than once']);
  t.same(problems(np({ types: ['ingress'] })), [
    'NetworkPolicy prod/allow-web: spec.types[0]: must be Ingress or Egress, got a string ("ingress")',
  ]);
});

t.test('tier, order, names', async (t) => {
  const r = valid(np({ tier: 'security', order: 10.5 }, 'security.allow-web'));
  t.equal((r.spec as any).tier, 'security');
  t.equal((r.spec as any).order, 10.5);
  t.same(r.metadata.labels, { 'projectcalico.org/tier': 'security' });
  t.same(problems(np({ tier: 'Security' })), [
    `NetworkPolicy prod/allow-web: spec.tier: "Security" must consist of lower-case letters, digits and '-', and start and end with a letter or digit`,
  ]);
  t.same(problems(np({ order: 'high' })), ['NetworkPolicy prod/allow-web: spec.order: must be a finite number, got a string ("high")']);
  t.same(problems(np({}, 'a.b.c')), [
    `NetworkPolicy prod/a.b.c: metadata.name: "a.b.c" must be a lower-case DNS label (letters, digits, '-') with at most one '.', or knp.default.<name>`,
  ]);
  t.same(problems(np({}, 'knp.default.a.b.c')), [], 'converted k8s policy names');
  t.same(problems(gnp({}, 'knp.default.x')), [
    `GlobalNetworkPolicy knp.default.x: metadata.name: "knp.default.x" must be a lower-case DNS label (letters, digits, '-') with at most one '.'`,
  ]);
});

t.test('NetworkPolicy rejects GNP-only fields; unknown fields', async (t) => {
  t.same(problems(np({ doNotTrack: true, namespaceSelector: 'all()' })), [
    'NetworkPolicy prod/allow-web: spec.doNotTrack: unknown field (it exists only on GlobalNetworkPolicy)',
    'NetworkPolicy prod/allow-web: spec.namespaceSelector: unknown field (it exists only on GlobalNetworkPolicy)',
  ]);
  t.same(problems(np({ selectr: 'all()' })), ['NetworkPolicy prod/allow-web: spec.selectr: unknown field']);
});

t.test('GNP: doNotTrack / preDNAT / applyOnForward constraints', async (t) => {
  t.same(problems(gnp({ preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny' }] })), []);
  t.same(problems(gnp({ preDNAT: true, ingress: [{ action: 'Deny' }] })), [
    'GlobalNetworkPolicy p1: spec.applyOnForward: must be true when preDNAT or doNotTrack is true',
  ]);
  t.same(problems(gnp({ doNotTrack: true, ingress: [{ action: 'Deny' }] })), [
    'GlobalNetworkPolicy p1: spec.applyOnForward: must be true when preDNAT or doNotTrack is true',
  ]);
  t.same(problems(gnp({ preDNAT: true, doNotTrack: true, applyOnForward: true })), [
    'GlobalNetworkPolicy p1: spec: preDNAT and doNotTrack cannot both be true',
  ]);
  t.same(problems(gnp({ preDNAT: true, applyOnForward: true, egress: [{ action: 'Deny' }] })), [
    'GlobalNetworkPolicy p1: spec.egress: a preDNAT policy cannot have egress rules',
    'GlobalNetworkPolicy p1: spec.types: a preDNAT policy cannot have type Egress',
  ]);
  t.same(problems(gnp({ preDNAT: true, applyOnForward: true, types: ['Ingress', 'Egress'] })), [
    'GlobalNetworkPolicy p1: spec.types: a preDNAT policy cannot have type Egress',
  ]);
  const r = valid(gnp({ doNotTrack: true, applyOnForward: true, preDNAT: false, namespaceSelector: "env == 'x'" }));
  t.same(r.spec, {
    tier: 'default',
    selector: 'all()',
    types: ['Ingress'],
    doNotTrack: true,
    applyOnForward: true,
    namespaceSelector: "env == 'x'",
  });
});

t.test('selectors: invalid, global() placement', async (t) => {
  t.match(problems(np({ selector: "role == 'db" })), [/^NetworkPolicy prod\/allow-web: spec\.selector: .+/]);
  t.same(problems(np({ selector: 'global()' })), [
    "NetworkPolicy prod/allow-web: spec.selector: global() is only allowed in a rule's namespaceSelector",
  ]);
  t.same(problems(gnp({ ingress: [{ action: 'Allow', source: { namespaceSelector: 'global()' } }] })), []);
  t.same(problems(gnp({ ingress: [{ action: 'Allow', source: { namespaceSelector: "global() && a == 'b'" } }] })), [
    'GlobalNetworkPolicy p1: spec.ingress[0].source.namespaceSelector: global() cannot be combined with other selector terms',
  ]);
  t.same(problems(gnp({ ingress: [{ action: 'Allow', source: { selector: 'global()' } }] })), [
    "GlobalNetworkPolicy p1: spec.ingress[0].source.selector: global() is only allowed in a rule's namespaceSelector",
  ]);
  t.same((valid(np({ selector: '' })).spec as any).selector, 'all()', 'empty selector is all()');
  t.same(problems(np({ selector: 'a == "' + 'x'.repeat(1030) + '"' })), [
    'NetworkPolicy prod/allow-web: spec.selector: selector is 1037 characters long, more than 1024',
  ]);
});

t.test('at most 1024 rules per direction', async (t) => {
  const rules = Array.from({ length: 1024 }, () => ({ action: 'Allow' }));
  t.same(problems(gnp({ ingress: rules })), []);
  t.same(problems(gnp({ egress: [...rules, { action: 'Deny' }] })), [
    'GlobalNetworkPolicy p1: spec.egress: has 1025 rules, more than the 1024 allowed',
  ]);
});
