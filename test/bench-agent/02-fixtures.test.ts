// The agent benchmark's datastore contents: valid, at the requested scale, deterministic, and
// shaped so that the probe policy alone decides the probe flow.
import t from 'tap';
import {
  BENCH_NODE, FELIX_SCALE, FULL_SCALE, NAMESPACE_COUNT, PROBE_CLIENT, PROBE_PORT, PROBE_SERVER, QUICK_SCALE, checkScale, fillerSelector, generateFixtures,
  localInterfaceName, probePolicy, prng, remoteBlock, remoteNodeAddress, type FixtureScale,
} from '../../bench/lib-agent/fixtures';
import { validateResource, type Rule } from '../../src/model';
import { parseSelector } from '../../src/selector';
import { measureCalc } from '../../bench/lib-agent/calc-cost';
import { cidr4Contains, cidr4Of, ipv4ToU32 } from '../../src/primitives';

function inCidr(ip: string, base: string, bits: number): boolean {
  return cidr4Contains(cidr4Of(ipv4ToU32(base), bits), ipv4ToU32(ip));
}

for (const [label, scale] of [['quick', QUICK_SCALE], ['full', FULL_SCALE]] as const) {
  t.test(`${label} scale: counts, validity, uniqueness`, async (t) => {
    const fx = generateFixtures(scale);
    t.equal(fx.endpoints.length, scale.endpoints);
    t.equal(fx.policies.length, scale.policies);
    t.equal(fx.local.length, scale.localEndpoints);
    t.equal(fx.nodes.length, scale.remoteNodes);
    for (const p of fx.policies) {
      const rules = (p.spec.ingress?.length ?? 0) + (p.spec.egress?.length ?? 0);
      if (rules !== scale.rulesPerPolicy) { t.fail(`${p.metadata.name} has ${rules} rules`); break; }
    }
    let invalid = 0;
    for (const r of [fx.profile, ...fx.namespaces, ...fx.nodes, ...fx.policies, ...fx.endpoints, probePolicy('Allow'), probePolicy('Deny')]) {
      try { validateResource(r); } catch (e) { if (invalid++ < 3) t.fail(`${r.kind} ${r.metadata.name}: ${(e as Error).message}`); }
    }
    t.equal(invalid, 0, 'every resource passes the model validation');
    const names = new Set(fx.endpoints.map((e) => `${e.metadata.namespace}/${e.metadata.name}`));
    const ips = new Set(fx.endpoints.map((e) => e.spec.ipNetworks![0]));
    const ifs = fx.endpoints.map((e) => e.spec.interfaceName!);
    t.equal(names.size, scale.endpoints, 'endpoint names unique');
    t.equal(ips.size, scale.endpoints, 'addresses unique');
    t.equal(new Set(ifs).size, scale.endpoints, 'interface names unique');
    t.ok(ifs.every((i) => i.length <= 15), 'interface names fit IFNAMSIZ');
    t.ok([...ips].every((c) => inCidr(c!.split('/')[0]!, '192.168.0.0', 16)), 'addresses from the 192.168.0.0/16 pool');
    const local = fx.endpoints.filter((e) => e.spec.node === BENCH_NODE);
    t.equal(local.length, scale.localEndpoints);
    t.same(local.map((e) => e.spec.interfaceName), fx.local.map((l) => l.hostIf), 'local endpoints carry the lab\'s interface names');
    t.same(fx.local.slice(0, 2), [PROBE_CLIENT, PROBE_SERVER]);
    t.ok(fx.local.slice(2).every((l, i) => l.hostIf === localInterfaceName(i + 2) && l.hostIf.startsWith('cali')));
    const nets = fx.policies.flatMap((p) => [...(p.spec.ingress ?? []), ...(p.spec.egress ?? [])])
      .flatMap((r: Rule) => [r.source, r.destination]).flatMap((e) => [...(e?.nets ?? []), ...(e?.notNets ?? [])]);
    t.ok(nets.length > 0);
    t.ok(nets.every((c) => inCidr(c.split('/')[0]!, '192.168.0.0', 16) || inCidr(c.split('/')[0]!, '198.18.0.0', 15)),
      'rule nets from the pool or the benchmarking range');
  });
}

t.test('selectors: fillers select subsets, never the probe client, and some select the server', async (t) => {
  const fx = generateFixtures(QUICK_SCALE);
  const labelsOf = fx.endpoints.map((e) => e.metadata.labels ?? {});
  let selectsServer = 0;
  let selectsSome = 0;
  for (const p of fx.policies) {
    const sel = parseSelector(p.spec.selector!);
    const n = labelsOf.filter((l) => sel.evaluate(l)).length;
    if (n > 0) selectsSome++;
    t.ok(n < fx.endpoints.length / 4, `${p.metadata.name} (${p.spec.selector}) selects a subset (${n} endpoints)`);
    t.notOk(sel.evaluate(PROBE_CLIENT.labels), `${p.metadata.name} does not select the probe client`);
    if (sel.evaluate(PROBE_SERVER.labels)) {
      selectsServer++;
      t.same(p.spec.types, ['Ingress'], `${p.metadata.name} selects the server for ingress only`);
    }
    t.ok(p.spec.order! > probePolicy('Allow').spec.order!, 'probe policy comes first');
  }
  t.ok(selectsSome >= 0.75 * fx.policies.length, `${selectsSome} of ${fx.policies.length} fillers select some endpoint`);
  t.ok(selectsServer >= 1, `${selectsServer} fillers apply to the probe server`);
  // Every selector form of fillerSelector, not just those the quick scale reaches.
  for (let p = 0; p < 20; p++) t.notOk(parseSelector(fillerSelector(p).selector).evaluate(PROBE_CLIENT.labels));
});

t.test('probe policy', async (t) => {
  for (const action of ['Allow', 'Deny'] as const) {
    const p = probePolicy(action);
    t.equal(p.spec.ingress![0]!.action, action);
    t.same(p.spec.ingress![0]!.destination!.ports, [PROBE_PORT]);
    t.ok(parseSelector(p.spec.selector!).evaluate(PROBE_SERVER.labels));
    t.notOk(parseSelector(p.spec.selector!).evaluate(PROBE_CLIENT.labels));
    t.ok(parseSelector(p.spec.ingress![0]!.source!.selector!).evaluate(PROBE_CLIENT.labels));
  }
});

t.test('deterministic per seed', async (t) => {
  t.same(generateFixtures(QUICK_SCALE), generateFixtures(QUICK_SCALE));
  const other = generateFixtures({ ...QUICK_SCALE, seed: QUICK_SCALE.seed + 1 });
  t.notSame(other.endpoints.map((e) => e.metadata.labels), generateFixtures(QUICK_SCALE).endpoints.map((e) => e.metadata.labels));
  const a = prng(1);
  const xs = Array.from({ length: 1000 }, a);
  t.ok(xs.every((x) => x >= 0 && x < 1));
  t.ok(new Set(xs).size > 990, 'no short cycle');
});

t.test('checkScale', async (t) => {
  const bad: [Partial<FixtureScale>, RegExp][] = [
    [{ localEndpoints: 1 }, /localEndpoints/],
    [{ endpoints: 10 }, /endpoints/],
    [{ rulesPerPolicy: 0 }, /rulesPerPolicy/],
    [{ remoteNodes: 0 }, /remoteNodes/],
    [{ endpoints: 5_000, remoteNodes: 2 }, /254/],
  ];
  for (const [patch, msg] of bad) t.throws(() => checkScale({ ...QUICK_SCALE, ...patch }), { code: 'ERR_BENCH_FIXTURE', message: msg }, JSON.stringify(patch));
  t.doesNotThrow(() => checkScale({ ...QUICK_SCALE, endpoints: QUICK_SCALE.localEndpoints, remoteNodes: 0 }), 'local-only is fine');
  t.doesNotThrow(() => checkScale(FELIX_SCALE), "Felix's design target fits");
  t.throws(() => checkScale({ ...FELIX_SCALE, remoteNodes: 501 }), /remoteNodes/);
});

t.test("Felix's scale: remote blocks and node addresses past the 192.168/16 pool stay distinct and in the allowed ranges", async (t) => {
  const blocks = Array.from({ length: FELIX_SCALE.remoteNodes }, (_, i) => remoteBlock(i + 1));
  t.equal(new Set(blocks).size, blocks.length, 'one /24 per remote node');
  t.ok(blocks.every((b) => /^192\.168\.(\d+)$/.test(b) || /^198\.19\.(\d+)$/.test(b)), '192.168.0.0/16, then the benchmarking range 198.19.0.0/16');
  t.ok(blocks.every((b) => Number(b.split('.')[2]) >= 1 && Number(b.split('.')[2]) <= 250), 'third octets 1–250');
  t.equal(remoteBlock(1), '192.168.1', 'small scales keep their addresses');
  t.equal(remoteBlock(250), '192.168.250');
  t.equal(remoteBlock(251), '198.19.1');
  const nodes = Array.from({ length: FELIX_SCALE.remoteNodes }, (_, i) => remoteNodeAddress(i + 1));
  t.equal(new Set(nodes).size, nodes.length, 'node addresses distinct');
  t.equal(remoteNodeAddress(1), '198.18.0.11', 'unchanged for the first nodes');
  t.ok(nodes.every((a) => a.split('.').every((o) => Number(o) <= 255) && a.startsWith('198.18.')), 'valid, inside 198.18.0.0/15');
  t.notOk(nodes.includes('198.18.1.2') || nodes.includes('198.18.0.10'), 'never an address the labs configure');
});

t.test('a probe toggle recompiles exactly the server\'s ingress table (src/calc on the quick fixtures)', async (t) => {
  const c = measureCalc(QUICK_SCALE, 2);
  t.equal(c.resources, 1 + 1 + NAMESPACE_COUNT + QUICK_SCALE.remoteNodes + QUICK_SCALE.policies + 1 + QUICK_SCALE.endpoints, 'own node, profile, namespaces, nodes, policies, probe, endpoints');
  t.equal(c.toggleDelta.endpointsUpserted, 1, 'only the probe server switches tables');
  t.equal(c.toggleDelta.tablesAdded, 1);
  t.equal(c.toggleDelta.tablesRemoved, 1);
  t.ok(c.toggleDelta.cellsAdded > 0);
  t.equal(c.toggleMs?.n, 2);
  t.ok(c.tables >= 2 && c.classes >= 2, `${c.tables} tables, ${c.classes} classes`);
});
