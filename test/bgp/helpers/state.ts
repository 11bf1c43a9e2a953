import { validateResource, type BGPConfiguration, type BGPPeer, type IPPool, type Node } from '../../../src/model';
import type { BgpState } from '../../../src/bgp/render';

const V3 = 'projectcalico.org/v3';

export function node(name: string, bgp: Record<string, unknown>, labels?: Record<string, string>): Node {
  return validateResource({ apiVersion: V3, kind: 'Node', metadata: { name, labels }, spec: { bgp } }) as Node;
}
export function pool(name: string, spec: Record<string, unknown>): IPPool {
  return validateResource({ apiVersion: V3, kind: 'IPPool', metadata: { name }, spec }) as IPPool;
}
export function peer(name: string, spec: Record<string, unknown>): BGPPeer {
  return validateResource({ apiVersion: V3, kind: 'BGPPeer', metadata: { name }, spec }) as BGPPeer;
}
export function bgpConfig(name: string, spec: Record<string, unknown>): BGPConfiguration {
  return validateResource({ apiVersion: V3, kind: 'BGPConfiguration', metadata: { name }, spec }) as BGPConfiguration;
}

/** Three nodes in 198.18.1.0/24, one direct-routed pool; node-1 has two blocks and a borrowed address. */
export function baseState(over: Partial<BgpState> = {}): BgpState {
  return {
    nodeName: 'node-1',
    nodes: [
      node('node-1', { ipv4Address: '198.18.1.11/24' }),
      node('node-2', { ipv4Address: '198.18.1.12/24' }),
      node('node-3', { ipv4Address: '198.18.1.3/24' }),
    ],
    bgpConfigurations: [],
    bgpPeers: [],
    pools: [pool('pods', { cidr: '192.168.0.0/16', natOutgoing: false })],
    blocks: ['192.168.1.64/26', '192.168.1.0/26'],
    borrowed: ['192.168.7.5'],
    ...over,
  };
}
