/**
 * Shared by the datapath benchmarks: a policy set of N GlobalNetworkPolicies (rules each) that
 * all select the benchmark's server workload, built so that none of them matches the
 * benchmark's traffic (random /32 sources from 10.0.0.0/8, random ports, some ICMP and UDP),
 * plus one policy that allows the client to the served port. Compiled by src/calc like real
 * policy, so the tables are what the agent would program.
 */
import type { GlobalNetworkPolicy, Namespace, Rule, WorkloadEndpoint } from '../src/model';

const V3 = 'projectcalico.org/v3' as const;

let seed = 4242;
function rand(): number { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 4294967296; }
const int = (n: number): number => Math.floor(rand() * n);

export function ns(name: string): Namespace {
  return { apiVersion: V3, kind: 'Namespace', metadata: { name, labels: {} } };
}

/** `mac`: the workload's, as the CNI plugin writes it (host routing then finds it by address). */
export function wep(name: string, ip: string, app: string, iface: string, ip6?: string, mac?: string): WorkloadEndpoint {
  return {
    apiVersion: V3, kind: 'WorkloadEndpoint',
    metadata: { name, namespace: 'bench', labels: { app } },
    spec: { orchestrator: 'k8s', node: 'node1', ipNetworks: [`${ip}/32`, ...(ip6 ? [`${ip6}/128`] : [])], interfaceName: iface, profiles: [],
      ...(mac ? { mac } : {}) },
  };
}

/** `policies` filler policies of `rulesEach` ingress rules selecting app=server, plus the allow. */
export function policySet(policies: number, rulesEach: number, servePorts: number[], udpPorts: number[] = []): GlobalNetworkPolicy[] {
  const out: GlobalNetworkPolicy[] = [];
  for (let p = 0; p < policies; p++) {
    const ingress: Rule[] = [];
    for (let r = 0; r < rulesEach; r++) {
      const src = `10.${int(256)}.${int(256)}.${int(256)}/32`;
      const kind = int(10);
      if (kind < 7) ingress.push({ action: 'Allow', protocol: 'TCP', source: { nets: [src] }, destination: { ports: [1000 + int(50000)] } });
      else if (kind < 9) ingress.push({ action: 'Allow', protocol: 'UDP', source: { nets: [src] }, destination: { ports: [`${2000 + int(1000)}:${3000 + int(1000)}`] } });
      else ingress.push({ action: 'Deny', protocol: 'ICMP', source: { nets: [src] } });
    }
    out.push({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: `filler-${p}` },
      spec: { order: 100 + p, selector: "app == 'server'", types: ['Ingress'], ingress } });
  }
  out.push({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'allow-client' },
    spec: { order: 1_000_000, selector: "app == 'server'", types: ['Ingress'],
      ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "app == 'client'" }, destination: { ports: servePorts } },
        ...(udpPorts.length ? [{ action: 'Allow' as const, protocol: 'UDP' as const, source: { selector: "app == 'client'" }, destination: { ports: udpPorts } }] : []),
        { action: 'Allow', protocol: 'ICMP', source: { selector: "app == 'client'" } }] } });
  out.push({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'egress-all' },
    spec: { selector: 'all()', types: ['Egress'], egress: [{ action: 'Allow' }] } });
  return out;
}
