/**
 * Kubernetes NetworkPolicy semantics end to end through the model's conversion: a selected pod
 * is isolated in the policy's directions (end of the default tier denies), allowed peers get in,
 * ipBlock `except` carves holes, unselected pods keep the namespace profile's allow-all.
 */
import t from 'tap';
import { CalcGraph, evaluate, TableIndex, type PolicyPacket } from '../../src/calc';
import { convertToV3, type Resource } from '../../src/model';
import { namespace, profile, wep } from '../../src/testbed/fixtures';

t.test('converted Kubernetes NetworkPolicy isolates selected pods only', async (t) => {
  const knp = convertToV3({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'db-in', namespace: 'prod' },
    spec: {
      podSelector: { matchLabels: { app: 'db' } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { team: 'web' } }, podSelector: { matchLabels: { app: 'front' } } }, { ipBlock: { cidr: '198.18.0.0/16', except: ['198.18.9.0/24'] } }],
          ports: [{ protocol: 'TCP', port: 5432, endPort: 5440 }],
        },
      ],
    },
  });
  const allowAll = (ns: string): Resource => profile(`kns.${ns}`, { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] });
  const g = new CalcGraph({ nodeName: 'node1' });
  for (const r of [
    knp,
    namespace('prod', { team: 'data' }),
    namespace('webns', { team: 'web' }),
    namespace('other', { team: 'x' }),
    allowAll('prod'),
    allowAll('webns'),
    allowAll('other'),
    wep('prod/db', { ip: '192.168.0.10', labels: { app: 'db' }, profiles: ['kns.prod'] }),
    wep('prod/cache', { ip: '192.168.0.11', labels: { app: 'cache' }, profiles: ['kns.prod'] }),
    wep('webns/front', { ip: '192.168.1.10', labels: { app: 'front' }, node: 'node2', profiles: ['kns.webns'] }),
    wep('other/front', { ip: '192.168.2.10', labels: { app: 'front' }, node: 'node2', profiles: ['kns.other'] }),
  ]) {
    g.onUpdate(r);
  }
  g.flush();
  const idx = new TableIndex(g.snapshot());
  const cases: [PolicyPacket, 'allow' | 'deny'][] = [
    [{ endpoint: 'prod/db', direction: 'ingress', remoteIP: '192.168.1.10', protocol: 6, srcPort: 40000, dstPort: 5432 }, 'allow'],
    [{ endpoint: 'prod/db', direction: 'ingress', remoteIP: '192.168.1.10', protocol: 6, srcPort: 40000, dstPort: 5440 }, 'allow'],
    [{ endpoint: 'prod/db', direction: 'ingress', remoteIP: '192.168.1.10', protocol: 6, srcPort: 40000, dstPort: 5441 }, 'deny'],
    [{ endpoint: 'prod/db', direction: 'ingress', remoteIP: '192.168.1.10', protocol: 17, srcPort: 40000, dstPort: 5432 }, 'deny'],
    [{ endpoint: 'prod/db', direction: 'ingress', remoteIP: '192.168.2.10', protocol: 6, srcPort: 40000, dstPort: 5432 }, 'deny'],
    [{ endpoint: 'prod/db', direction: 'ingress', remoteIP: '198.18.3.3', protocol: 6, srcPort: 40000, dstPort: 5432 }, 'allow'],
    [{ endpoint: 'prod/db', direction: 'ingress', remoteIP: '198.18.9.3', protocol: 6, srcPort: 40000, dstPort: 5432 }, 'deny'],
    [{ endpoint: 'prod/db', direction: 'egress', remoteIP: '8.8.8.8', protocol: 17, srcPort: 40000, dstPort: 53 }, 'allow'],
    [{ endpoint: 'prod/cache', direction: 'ingress', remoteIP: '192.168.2.10', protocol: 6, srcPort: 40000, dstPort: 6379 }, 'allow'],
  ];
  for (const [p, want] of cases) {
    t.equal(evaluate(p, g.resources).action, want, `reference ${p.endpoint} ${p.direction} ${p.remoteIP}:${p.dstPort}/${p.protocol}`);
    t.equal(idx.lookup(p).action, want, `tables ${p.endpoint} ${p.direction} ${p.remoteIP}:${p.dstPort}/${p.protocol}`);
  }
});
