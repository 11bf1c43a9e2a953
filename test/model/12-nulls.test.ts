import t from 'tap';
import { parseResources } from '../../src/model';
import { problems, res } from './helpers/util';

// calicoctl decodes `field:` (null) as the field's zero value; so does tortie.
t.test('null fields count as absent', async (t) => {
  const [p] = parseResources(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: p
  labels:
spec:
  selector:
  types:
  ingress:
  egress:
  - action: Allow
    source:
    destination:
      ports:
`);
  t.same(p!.spec, { tier: 'default', egress: [{ action: 'Allow' }], selector: 'all()', types: ['Egress'] });
  t.same(problems(res('IPPool', 'x', { cidr: null })), ['IPPool x: spec.cidr: is required']);
  t.same(problems(res('IPPool', null as unknown as string, { cidr: '10.0.0.0/16' })), ['IPPool (no name): metadata.name: is required']);
  t.same(problems(res('GlobalNetworkPolicy', 'p', { ingress: [null] })), ['GlobalNetworkPolicy p: spec.ingress[0]: must be an object, got null']);
});
