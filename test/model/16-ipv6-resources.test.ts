// IPv6 in the resources of dual-stack Calico, as the model takes them: GlobalNetworkSet and
// NetworkSet v6 nets, IPReservation v6 entries, Kubernetes NetworkPolicy ipBlocks in v6.
import t from 'tap';
import { convertToV3, type NetworkPolicy } from '../../src/model';
import { problems, res, valid } from './helpers/util';

const knp = (spec: unknown) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'np', namespace: 'prod' }, spec });

t.test('v6 nets, reservations and ipBlocks as Calico takes them', async (t) => {
  const g = valid(res('GlobalNetworkSet', 'g', { nets: ['198.18.0.0/15', 'FD00:10:0::1/64', 'fd00:20::7'] })) as { spec: { nets: string[] } };
  t.same(g.spec.nets, ['198.18.0.0/15', 'fd00:10::/64', 'fd00:20::7/128'], 'both families; v6 normalised to its network, a bare address to /128');
  const n = valid(res('NetworkSet', 'n', { nets: ['fd00:30::/48'] }, { namespace: 'prod' })) as { spec: { nets: string[] } };
  t.same(n.spec.nets, ['fd00:30::/48']);
  t.match(problems(res('GlobalNetworkSet', 'g', { nets: ['fd00::zz/64'] })), [/spec\.nets\[0\]/]);
  const r = valid(res('IPReservation', 'r', { reservedCIDRs: ['fd00:44::/127', 'fd00:44::5', '192.168.44.0/24'] })) as { spec: { reservedCIDRs: string[] } };
  t.equal(r.spec.reservedCIDRs.length, 3, 'v6 entries kept beside v4 ones');
  const p = convertToV3(knp({ podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: 'fd00:50::/48', except: ['fd00:50:0:1::/64'] } }] }] })) as NetworkPolicy;
  t.same(p.spec.egress?.[0]?.destination, { nets: ['fd00:50::/48'], notNets: ['fd00:50:0:1::/64'] }, 'a v6 ipBlock becomes nets / notNets');
  t.same(problems(p), [], 'and the converted policy is valid');
});
