import t from 'tap';
import { valid, problems, res } from './helpers/util';
import { builtinProfile } from '../../src/model';

t.test('Profile: rules and labelsToApply', async (t) => {
  const r = valid(
    res('Profile', 'kns.default', {
      ingress: [{ action: 'Allow', source: { selector: "role == 'web'" } }],
      egress: [{ action: 'Allow' }],
      labelsToApply: { 'pcns.team': 'blue' },
    }),
  );
  t.same(r.spec, {
    ingress: [{ action: 'Allow', source: { selector: "role == 'web'" } }],
    egress: [{ action: 'Allow' }],
    labelsToApply: { 'pcns.team': 'blue' },
  });
  t.same(valid(res('Profile', 'empty', undefined)).spec, {});
  t.same(problems(res('Profile', 'p', { labelsToApply: { a: 'b c' } })), [
    `Profile p: spec.labelsToApply["a"]: value "b c" must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit`,
  ]);
  t.same(problems(res('Profile', 'p', { ingress: [{ action: 'allow' }] })), [
    'Profile p: spec.ingress[0].action: must be one of Allow, Deny, Log, Pass, got a string ("allow")',
  ]);
});

t.test("Profile: Calico's built-in projectcalico-default-allow is read, never written", async (t) => {
  const expected = ["Profile projectcalico-default-allow: metadata.name: projectcalico-default-allow is Calico's built-in profile (allow all ingress and egress); it cannot be created, replaced or deleted"];
  t.same(problems(res('Profile', 'projectcalico-default-allow', { ingress: [{ action: 'Deny' }] })), expected, 'a different spec refused');
  t.same(problems(res('Profile', 'projectcalico-default-allow', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] })), expected,
    'its own spec too (as `get -o yaml | apply` would write it)');
  const b = builtinProfile('projectcalico-default-allow')!;
  t.same(b, { apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'projectcalico-default-allow' },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] } }, "libcalico-go's DefaultAllowProfile");
  t.not(builtinProfile('projectcalico-default-allow'), b, 'a new object each call (callers may annotate it)');
  t.equal(builtinProfile('projectcalico-default-deny'), undefined, 'no other built-in profile');
  t.equal(builtinProfile('kns.default'), undefined, 'kns profiles are derived from namespaces, not built in');
});

t.test('Tier: order, defaultAction default Deny, built-in tiers', async (t) => {
  t.same(valid(res('Tier', 'security', { order: 100 })).spec, { order: 100, defaultAction: 'Deny' });
  t.same(valid(res('Tier', 'security', { defaultAction: 'Pass' })).spec, { defaultAction: 'Pass' });
  t.same(valid(res('Tier', 'default', {})).spec, { order: 1000000, defaultAction: 'Deny' });
  t.same(valid(res('Tier', 'kube-admin', {})).spec, { order: 1000, defaultAction: 'Pass' });
  t.same(problems(res('Tier', 'default', { order: 5 })), ["Tier default: spec.order: the default tier's order must be 1000000"]);
  t.same(problems(res('Tier', 'kube-baseline', { defaultAction: 'Deny' })), [
    "Tier kube-baseline: spec.defaultAction: the kube-baseline tier's defaultAction must be Pass",
  ]);
  t.same(problems(res('Tier', 't', { defaultAction: 'Allow' })), ['Tier t: spec.defaultAction: must be Deny or Pass, got a string ("Allow")']);
  t.same(problems(res('Tier', 't', { order: 'first' })), ['Tier t: spec.order: must be a finite number, got a string ("first")']);
  t.same(problems(res('Tier', 'a.b', {})), [
    `Tier a.b: metadata.name: "a.b" must consist of lower-case letters, digits and '-', and start and end with a letter or digit`,
  ]);
  t.same(problems(res('Tier', 'x'.repeat(64), {})), [`Tier ${'x'.repeat(64)}: metadata.name: "${'x'.repeat(64)}" is longer than 63 characters`]);
});

t.test('Namespace: labels only', async (t) => {
  const r = valid(res('Namespace', 'prod', undefined, { labels: { env: 'prod' } }));
  t.same(r, { apiVersion: 'projectcalico.org/v3', kind: 'Namespace', metadata: { name: 'prod', labels: { env: 'prod' } } });
  t.same(problems(res('Namespace', 'prod', { finalizers: [] })), ['Namespace prod: spec.finalizers: unknown field']);
  t.same(problems(res('Namespace', 'prod.x', undefined)), [
    `Namespace prod.x: metadata.name: "prod.x" must consist of lower-case letters, digits and '-', and start and end with a letter or digit`,
  ]);
});
