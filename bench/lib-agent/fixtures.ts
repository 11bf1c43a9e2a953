/**
 * The agent benchmark's datastore contents. Pure and deterministic (seeded PRNG).
 *
 * Contract:
 * - `generateFixtures(scale)` returns a cluster of `scale.endpoints` WorkloadEndpoints: the
 *   first `scale.localEndpoints` on BENCH_NODE (the probe client and server, then fillers with
 *   the interface names `localInterfaceName(i)`), the rest spread over `scale.remoteNodes`
 *   remote Nodes; `scale.policies` GlobalNetworkPolicies of `scale.rulesPerPolicy` rules each
 *   (mixed selectors, nets, notNets, port ranges, protocols, Ingress/Egress), a Profile that
 *   allows everything (on every endpoint) and the Namespaces the endpoints live in.
 * - Addresses: pools are 192.168.0.0/16 (node k's endpoints are 192.168.k.1…), node addresses
 *   and rule nets come from 198.18.0.0/15. Nothing here is ever configured or sent to except the
 *   local endpoints' addresses, inside the benchmark's namespaces.
 * - The probe policy (`probePolicy`) has order 1, so it decides the probe flow (client → server
 *   TCP/PROBE_PORT) before any filler. No filler selects the probe client (its labels satisfy
 *   no filler selector), so its egress is decided by the profile alone; fillers do select the
 *   probe server (ingress), so toggling the probe policy recompiles a table that also holds
 *   filler policies, as it would in a real cluster.
 */
import {
  type GlobalNetworkPolicy, type Namespace, type Node, type Profile, type Rule,
  type WorkloadEndpoint,
} from '../../src/model';
import { k8sWep } from '../../src/testbed/fixtures';

const V3 = 'projectcalico.org/v3' as const;

export const BENCH_NODE = 'bench-node';
/** The node's uplink address (with its subnet), as the agent is told with --ip. */
export const NODE_ADDRESS = '198.18.0.10/24';
export const PROBE_PORT = 8080;
export const PROFILE_NAME = 'bench-allow-all';
export const PROBE_POLICY_NAME = 'bench-probe';
export const APP_VALUES = 200;
export const TEAM_VALUES = 20;
export const NAMESPACE_COUNT = 10;

export interface LocalEndpoint { name: string; ip: string; hostIf: string; labels: Record<string, string> }

export const PROBE_CLIENT: LocalEndpoint = {
  name: 'lat-client', ip: '192.168.0.1', hostIf: 'calilatcli',
  labels: { app: 'bench-client', 'bench-role': 'client' },
};
export const PROBE_SERVER: LocalEndpoint = {
  name: 'lat-server', ip: '192.168.0.2', hostIf: 'calilatsrv',
  // app-3 / t-3: values the fillers' selectors target (see fillerSelector).
  labels: { app: 'app-3', team: 't-3', tier: 'backend', env: 'prod', 'bench-role': 'server' },
};

export interface FixtureScale {
  endpoints: number;
  policies: number;
  rulesPerPolicy: number;
  /** Endpoints on BENCH_NODE, the probe pair included (≥ 2). */
  localEndpoints: number;
  remoteNodes: number;
  seed: number;
}

export const FULL_SCALE: FixtureScale = { endpoints: 10_000, policies: 1_000, rulesPerPolicy: 5, localEndpoints: 100, remoteNodes: 99, seed: 20261121 };
/** Felix's design target: 100,000 endpoints, 100 local, 2,000 policies; 500 remote nodes of 200 endpoints. */
export const FELIX_SCALE: FixtureScale = { endpoints: 100_000, policies: 2_000, rulesPerPolicy: 5, localEndpoints: 100, remoteNodes: 500, seed: 20261121 };
export const QUICK_SCALE: FixtureScale = { endpoints: 1_000, policies: 100, rulesPerPolicy: 5, localEndpoints: 20, remoteNodes: 9, seed: 20261121 };

export class FixtureError extends Error {
  readonly code = 'ERR_BENCH_FIXTURE';
  constructor(message: string) {
    super(message);
    this.name = 'FixtureError';
  }
}

export interface Fixtures {
  namespaces: Namespace[];
  nodes: Node[];
  profile: Profile;
  endpoints: WorkloadEndpoint[];
  policies: GlobalNetworkPolicy[];
  /** The local endpoints in order: probe client, probe server, fillers. */
  local: LocalEndpoint[];
}

/** Host-side interface name of local filler i (i ≥ 2; 0 and 1 are the probes): `calilat0002`. */
export function localInterfaceName(i: number): string {
  return `calilat${String(i).padStart(4, '0')}`;
}

/** xorshift32: a small, fast, seedable generator; the sequence is fixed by the seed. */
export function prng(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

export function checkScale(s: FixtureScale): void {
  const intIn = (v: number, lo: number, hi: number, what: string) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new FixtureError(`${what} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  intIn(s.localEndpoints, 2, 250, 'localEndpoints');
  intIn(s.endpoints, s.localEndpoints, 130_000, 'endpoints');
  intIn(s.policies, 0, 20_000, 'policies');
  intIn(s.rulesPerPolicy, 1, 50, 'rulesPerPolicy');
  intIn(s.remoteNodes, s.endpoints > s.localEndpoints ? 1 : 0, MAX_REMOTE_NODES, 'remoteNodes');
  const perNode = s.remoteNodes === 0 ? 0 : Math.ceil((s.endpoints - s.localEndpoints) / s.remoteNodes);
  if (perNode > 254) throw new FixtureError(`${s.endpoints - s.localEndpoints} remote endpoints over ${s.remoteNodes} nodes is ${perNode} per node; at most 254 fit a node's /24`);
}

/** Remote node k's /24 block: 192.168.k.0 for k ≤ 250, then 198.19.(k − 250).0 (the pool /16 holds 250 nodes' blocks). */
const MAX_REMOTE_NODES = 500;
export function remoteBlock(k: number): string {
  return k <= 250 ? `192.168.${k}` : `198.19.${k - 250}`;
}

/**
 * Remote node k's own address (k ≥ 1): 198.18.0.11–198.18.0.255 for the first 245, then
 * 198.18.2.1… (198.18.1.0/24 is left alone: the benchmark topologies put the outside host's
 * flood source there).
 */
export function remoteNodeAddress(k: number): string {
  if (k <= 245) return `198.18.0.${10 + k}`;
  const n = k - 246;
  return `198.18.${2 + Math.floor(n / 254)}.${1 + (n % 254)}`;
}

const wep = (node: string, pod: string, namespace: string, ip: string, labels: Record<string, string>, iface: string): WorkloadEndpoint =>
  k8sWep({ node, pod, ip, iface, namespace, labels, profiles: [PROFILE_NAME] });

function fillerLabels(rand: () => number): Record<string, string> {
  const app = Math.floor(rand() * APP_VALUES);
  const labels: Record<string, string> = {
    app: `app-${app}`, team: `t-${app % TEAM_VALUES}`,
    tier: ['frontend', 'backend', 'db'][Math.floor(rand() * 3)]!,
    env: rand() < 0.8 ? 'prod' : 'staging',
  };
  if (rand() < 0.05) labels.canary = 'true';
  return labels;
}

const nsOf = (labels: Record<string, string>): string => `ns-${Number(labels.app?.slice(4) ?? 0) % NAMESPACE_COUNT}`;

/**
 * The policy selector of filler p and its types. Every form requires `app`, `team`, `tier` or
 * `canary`, which the probe client lacks (tested).
 */
export function fillerSelector(p: number): { selector: string; types: ('Ingress' | 'Egress')[] } {
  const k = p % 10;
  const app = (x: number) => `app-${x % APP_VALUES}`;
  const team = (x: number) => `t-${x % TEAM_VALUES}`;
  if (k <= 3) return { selector: `app == '${app(p)}'`, types: ['Ingress'] };
  if (k <= 5) return { selector: `team == '${team(p)}' && env == 'prod'`, types: ['Ingress'] };
  if (k === 6) return { selector: `tier == 'db' && app in {'${app(p)}', '${app(p + 1)}'}`, types: ['Ingress', 'Egress'] };
  if (k === 7) return { selector: `has(canary) && team == '${team(p)}'`, types: ['Egress'] };
  if (k === 8) return { selector: `app == '${app(p)}' && env == 'staging'`, types: ['Ingress', 'Egress'] };
  return { selector: `team in {'${team(p)}', '${team(p + 7)}'} && !has(canary)`, types: ['Ingress'] };
}

function fillerRule(rand: () => number, dir: 'Ingress' | 'Egress'): Rule {
  const n = (m: number) => Math.floor(rand() * m);
  const peer = dir === 'Ingress' ? 'source' : 'destination';
  const lo = 1024 + n(50_000);
  switch (n(6)) {
    case 0: return { action: 'Allow', protocol: 'TCP', [peer]: { selector: `app == 'app-${n(APP_VALUES)}'` }, destination: { ports: [lo, `${lo + 10}:${lo + 10 + n(200)}`] } } as Rule;
    case 1: return { action: 'Allow', protocol: 'UDP', [peer]: { nets: [`192.168.${n(256)}.0/24`] }, destination: { ports: [53, 5353] } } as Rule;
    case 2: return { action: 'Deny', protocol: 'TCP', [peer]: { nets: [`198.18.${n(256)}.0/24`, `198.19.${n(256)}.${n(64) * 4}/30`] }, destination: { ports: [`${lo}:${lo + n(1000)}`] } } as Rule;
    case 3: return { action: 'Allow', protocol: 'ICMP', [peer]: { selector: `team == 't-${n(TEAM_VALUES)}' && tier != 'db'` } } as Rule;
    case 4: return { action: 'Allow', protocol: 'TCP', [peer]: { notNets: [`192.168.${n(256)}.0/24`] }, destination: { notPorts: [22, `${lo}:${lo + 5}`] } } as Rule;
    default: return { action: 'Allow', [peer]: { selector: `tier == 'frontend' && env == 'prod'`, notSelector: `app == 'app-${n(APP_VALUES)}'` } } as Rule;
  }
}

export function generateFixtures(scale: FixtureScale): Fixtures {
  checkScale(scale);
  const rand = prng(scale.seed);
  const namespaces: Namespace[] = [];
  for (let i = 0; i < NAMESPACE_COUNT; i++) {
    namespaces.push({ apiVersion: V3, kind: 'Namespace', metadata: { name: `ns-${i}`, labels: { 'bench-ns': String(i) } } });
  }
  const nodes: Node[] = [];
  for (let k = 1; k <= scale.remoteNodes; k++) {
    nodes.push({ apiVersion: V3, kind: 'Node', metadata: { name: `bench-remote-${k}` }, spec: { bgp: { ipv4Address: `${remoteNodeAddress(k)}/24` } } } as Node);
  }
  const profile: Profile = {
    apiVersion: V3, kind: 'Profile', metadata: { name: PROFILE_NAME },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
  };

  const local: LocalEndpoint[] = [PROBE_CLIENT, PROBE_SERVER];
  for (let i = 2; i < scale.localEndpoints; i++) {
    local.push({ name: `lat-local-${i}`, ip: `192.168.0.${i + 1}`, hostIf: localInterfaceName(i), labels: fillerLabels(rand) });
  }
  const endpoints: WorkloadEndpoint[] = local.map((l) =>
    wep(BENCH_NODE, l.name, l.labels['bench-role'] ? 'default' : nsOf(l.labels), l.ip, l.labels, l.hostIf));
  const remote = scale.endpoints - scale.localEndpoints;
  for (let e = 0; e < remote; e++) {
    const k = 1 + (e % scale.remoteNodes);
    const j = 1 + Math.floor(e / scale.remoteNodes);
    const labels = fillerLabels(rand);
    endpoints.push(wep(`bench-remote-${k}`, `pod-${k}-${j}`, nsOf(labels), `${remoteBlock(k)}.${j}`, labels, `calir${String(e).padStart(8, '0')}`));
  }

  const policies: GlobalNetworkPolicy[] = [];
  for (let p = 0; p < scale.policies; p++) {
    const { selector, types } = fillerSelector(p);
    const spec: GlobalNetworkPolicy['spec'] = { order: 100 + p, selector, types };
    const dirs = types.length === 2 ? (['Ingress', 'Egress'] as const) : types;
    for (let r = 0; r < scale.rulesPerPolicy; r++) {
      const dir = dirs[r % dirs.length]!;
      const rule = fillerRule(rand, dir);
      if (dir === 'Ingress') (spec.ingress ??= []).push(rule);
      else (spec.egress ??= []).push(rule);
    }
    policies.push({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: `bench-filler-${p}` }, spec });
  }
  return { namespaces, nodes, profile, endpoints, policies, local };
}

/** The toggled policy: order 1, decides client → server TCP/PROBE_PORT as `action`. */
export function probePolicy(action: 'Allow' | 'Deny'): GlobalNetworkPolicy {
  return {
    apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: PROBE_POLICY_NAME },
    spec: {
      order: 1, selector: "bench-role == 'server'", types: ['Ingress'],
      ingress: [{ action, protocol: 'TCP', source: { selector: "bench-role == 'client'" }, destination: { ports: [PROBE_PORT] } }],
    },
  };
}

export const FLOOD_POLICY_NAME = 'bench-flood-deny';

/**
 * The flood run's extra policy (agent-latency --flood): order 0, denies all UDP from the probe
 * client to the probe server, so every flooder datagram (a new tuple each) is a new denied flow
 * at the server's ingress. TCP falls through to the probe policy, so the probe flow is unchanged.
 */
export function floodPolicy(): GlobalNetworkPolicy {
  return {
    apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: FLOOD_POLICY_NAME },
    spec: {
      order: 0, selector: "bench-role == 'server'", types: ['Ingress'],
      ingress: [{ action: 'Deny', protocol: 'UDP', source: { selector: "bench-role == 'client'" } }],
    },
  };
}
