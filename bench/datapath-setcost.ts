/**
 * Per-packet cost of a rule whose source selector matches a 100,000-CIDR GlobalNetworkSet,
 * against the same rule matching the same 100,000 addresses as workload endpoints (today's
 * selectors at the same scale) and matching one endpoint, measured in the same
 * run with BPF_PROG_TEST_RUN on the workload tc program (the kernel times the program only).
 * Both configurations compile through src/calc to the same shape (the set is one address class
 * with 100,000 LPM prefixes); the ratio says whether the set costs anything per packet.
 * Prints figures; asserts nothing. Packets are synthetic test runs: nothing is sent anywhere.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/datapath-setcost.js [repeat] [set size]
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadWep, mapOps } from '../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../src/dataplane/bpf/policy-sync';
import { flowPacket } from '../src/dataplane/bpf/packet';
import { CalcGraph } from '../src/calc';
import type { GlobalNetworkPolicy, GlobalNetworkSet, Resource } from '../src/model';
import { ns, wep } from './datapath-policies';
import { median } from './lib/stats';
import { u32ToIpv4 } from '../src/primitives';

const REPEAT = Number(process.argv[2] ?? 1_000_000);
const SET_SIZE = Number(process.argv[3] ?? 100_000);
const SERVER = '192.168.20.1';
const CLIENT = '192.168.20.2';
const V3 = 'projectcalico.org/v3' as const;

const policy: GlobalNetworkPolicy = {
  apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'server-from-trusted' },
  spec: { selector: "app == 'server'", types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "role == 'trusted'" }, destination: { ports: [80] } }] },
};

/** SET_SIZE distinct host routes from 198.18.0.0 up (198.18.0.0/15 holds 131,072). */
function bigSet(): GlobalNetworkSet {
  const nets: string[] = [];
  for (let i = 0; i < SET_SIZE; i++) {
    const a = (198 << 24 | 18 << 16) + i;
    nets.push(`${u32ToIpv4(a)}/32`);
  }
  return { apiVersion: V3, kind: 'GlobalNetworkSet', metadata: { name: 'trusted', labels: { role: 'trusted' } }, spec: { nets } };
}

/** The same addresses as SET_SIZE remote workload endpoints labelled role=trusted (today's selectors at the set's scale). */
function manyEndpoints(): Resource[] {
  return bigSet().spec.nets!.map((n, i) => ({
    apiVersion: V3, kind: 'WorkloadEndpoint',
    metadata: { name: `r${i}`, namespace: 'bench', labels: { role: 'trusted' } },
    spec: { orchestrator: 'k8s', node: 'node2', ipNetworks: [n], interfaceName: `calir${i}`.slice(0, 15), profiles: [] },
  }) as Resource);
}

interface Figures { compileMs: number; prefixes: number; classes: number; allowNew: number; deny: number; memberDeny: number; established: number }

async function measure(resources: Resource[], allowedSrc: string, deniedSrc: string): Promise<Figures> {
  const root = `/sys/fs/bpf/tortie-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
  fs.mkdirSync(root);
  const dp = await loadWep({ pinRoot: root, events: false, ctMaxEntries: 65536 });
  try {
    const t0 = process.hrtime.bigint();
    const graph = new CalcGraph({ nodeName: 'node1' });
    for (const r of resources) graph.onUpdate(r);
    graph.flush();
    const snap = graph.snapshot();
    const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const pd = new PolicyDataplane({ ...dp.policyMaps, cls4: mapOps(dp.maps.cls4!), cls6: mapOps(dp.maps.cls6!) }, (e) => (e.key === 'bench/server' ? 1 : undefined));
    pd.applySnapshot(snap);
    const r = (p: Buffer) => median([0, 1, 2].map(() => dp.toWep.testRun(p, { repeat: REPEAT }).durationNs));
    const deny = r(flowPacket({ src: deniedSrc, dst: SERVER, proto: 6, sport: 40000, dport: 80 }));
    // From a member address to a port no rule allows: the full policy path including the LPM
    // walk down to the member's prefix, repeatable (a denied packet creates no conntrack state).
    const memberDeny = r(flowPacket({ src: allowedSrc, dst: SERVER, proto: 6, sport: 40000, dport: 81 }));
    const established = r(flowPacket({ src: allowedSrc, dst: SERVER, proto: 6, sport: 40001, dport: 80 }));
    const samples: number[] = [];
    for (let i = 0; i < 2000; i++) {
      samples.push(dp.toWep.testRun(flowPacket({ src: allowedSrc, dst: SERVER, proto: 6, sport: 1024 + i, dport: 80 }), { repeat: 1 }).durationNs);
    }
    return { compileMs, prefixes: snap.classes.prefixes.length, classes: snap.classes.classes.length, allowNew: median(samples), deny, memberDeny, established };
  } finally {
    dp.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`rule selector matching a ${SET_SIZE.toLocaleString('en')}-CIDR GlobalNetworkSet vs endpoints (BPF_PROG_TEST_RUN, repeat ${REPEAT}, median of 3)`);
  const base = await measure(
    [ns('bench'), wep('server', SERVER, 'server', 'caliserver'), { ...wep('client', CLIENT, 'client', 'caliclient'), metadata: { name: 'client', namespace: 'bench', labels: { app: 'client', role: 'trusted' } } }, policy],
    CLIENT, '198.19.200.1');
  const set = await measure([ns('bench'), wep('server', SERVER, 'server', 'caliserver'), bigSet(), policy], '198.18.50.7', '198.19.200.1');
  const many = await measure([ns('bench'), wep('server', SERVER, 'server', 'caliserver'), ...manyEndpoints(), policy], '198.18.50.7', '198.19.200.1');
  const row = (name: string, f: Figures) => console.log(
    `${name.padEnd(28)} compile ${f.compileMs.toFixed(0).padStart(6)} ms, ${String(f.prefixes).padStart(6)} LPM prefixes, ${String(f.classes).padStart(3)} classes | ` +
    `denied: non-member ${f.deny} ns/pkt, member to port 81 ${f.memberDeny} ns/pkt; new flow allowed ${f.allowNew} ns/pkt (single runs), established ${f.established} ns/pkt`);
  row('selector → 1 endpoint', base);
  row(`selector → ${SET_SIZE.toLocaleString('en')} endpoints`, many);
  row(`selector → ${SET_SIZE.toLocaleString('en')}-CIDR set`, set);
  console.log(`ratio set / ${SET_SIZE.toLocaleString('en')} endpoints (same addresses): denied non-member ${(set.deny / many.deny).toFixed(2)}×, denied member ${(set.memberDeny / many.memberDeny).toFixed(2)}×, allowed new flow ${(set.allowNew / many.allowNew).toFixed(2)}×, established ${(set.established / many.established).toFixed(2)}×`);
  console.log(`ratio set / 1 endpoint: denied non-member ${(set.deny / base.deny).toFixed(2)}×, denied member ${(set.memberDeny / base.memberDeny).toFixed(2)}×, allowed new flow ${(set.allowNew / base.allowNew).toFixed(2)}×, established ${(set.established / base.established).toFixed(2)}×`);
}

main().catch((e) => { console.error(e); process.exit(1); });
