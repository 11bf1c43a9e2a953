import t from 'tap';
import { checkPolicyTier, checkPoolOverlaps, checkUpdate, formatProblem, type GlobalNetworkPolicy, type IPPool, type NetworkPolicy } from '../../src/model';
import { valid, res } from './helpers/util';

const pool = (name: string, spec: Record<string, unknown>) => valid(res('IPPool', name, spec)) as IPPool;

t.test('IPPool updates: cidr and blockSize are fixed, other fields may change', async (t) => {
  const a = pool('a', { cidr: '10.0.0.0/16' });
  t.same(checkUpdate(a, pool('a', { cidr: '10.0.0.0/16', natOutgoing: true, ipipMode: 'Always' })), []);
  t.same(checkUpdate(a, pool('a', { cidr: '10.1.0.0/16', blockSize: 24 })).map(formatProblem), [
    'IPPool a: spec.cidr: cannot be changed (was 10.0.0.0/16); create a new pool and migrate',
    'IPPool a: spec.blockSize: cannot be changed (was 26); create a new pool and migrate',
  ]);
  const lb = pool('lb', { cidr: '10.9.0.0/16', allowedUses: ['LoadBalancer'] });
  t.same(checkUpdate(lb, pool('lb', { cidr: '10.9.0.0/16' })).map(formatProblem), [
    'IPPool lb: spec.allowedUses: cannot change from LoadBalancer to Workload or Tunnel',
  ]);
  t.same(checkUpdate(a, valid(res('Tier', 'a', {}))).map(formatProblem), ['Tier a: kind: cannot change kind from IPPool to Tier']);
});

t.test('pool overlaps', async (t) => {
  const a = pool('a', { cidr: '192.168.0.0/16' });
  const b = pool('b', { cidr: '192.168.128.0/17' });
  const c = pool('c', { cidr: '10.0.0.0/8' });
  t.same(checkPoolOverlaps(b, [a, c]).map(formatProblem), ['IPPool b: spec.cidr: 192.168.128.0/17 overlaps IPPool a (192.168.0.0/16)']);
  t.same(checkPoolOverlaps(c, [a, b]), []);
  t.same(checkPoolOverlaps(a, [a]), [], 'its own stored version does not conflict');
  t.same(checkPoolOverlaps(pool('v6', { cidr: 'fd00::/64' }), [a, b, c]), []);
});

t.test('a policy needs its tier to exist; default always does', async (t) => {
  const np = valid(res('NetworkPolicy', 'p', { tier: 'security' }, { namespace: 'prod' })) as NetworkPolicy;
  t.same(checkPolicyTier(np, ['security', 'other']), []);
  t.same(checkPolicyTier(np, []).map(formatProblem), ['NetworkPolicy prod/p: spec.tier: tier security does not exist; create the Tier first']);
  const g = valid(res('GlobalNetworkPolicy', 'g', {})) as GlobalNetworkPolicy;
  t.same(checkPolicyTier(g, []), [], 'default tier');
});
