// Event budgets (docs/security.md) with real traffic: a workload floods another with new denied UDP flows (one new
// 4-tuple per datagram, bounded in time and rate) on a node running tortie's dataplane. Asserted
// on the mechanism, never on a time threshold:
//   - every denied datagram is counted as a drop; ring-buffer events stay within the endpoint's
//     budget (token bucket per endpoint and CPU); the rest is counted as suppressed, per endpoint;
//   - the agent logs at most its flow-log rate, aggregates the rest (counted), loses nothing;
//   - a policy change made during the flood is applied to the kernel while the flood still runs
//     (the reconcile resolves and a connection the change allows goes through).
// One body for IPv4 and IPv6: dual-stack workloads, one flood of each family in turn (figures of
// the kernel's counters and the agent's taken as differences across each flood).
import t from 'tap';
import { join } from 'node:path';
import { InProcessCluster } from '../../src/testbed';
import { pool } from '../../src/testbed/fixtures';
import { readCounters, readEventBudgets } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { possibleCpus } from '../../src/dataplane/native';
import { DEFAULT_EVENT_BUDGET } from '../../src/dataplane/bpf/loader';
import { DEFAULT_FLOW_LOG_LIMITS } from '../../src/dataplane/bpf/observe';
import type { Resource } from '../../src/model';

const FLOODER = join(__dirname, '../../bench/lib-agent/flooder.js');
const V3 = 'projectcalico.org/v3' as const;
const PORT = 8080;

function probePolicy(action: 'Allow' | 'Deny'): Resource {
  return { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'probe' },
    spec: { order: 1, selector: "app == 'wt'", types: ['Ingress'], ingress: [{ action, protocol: 'TCP', destination: { ports: [PORT] } }] } } as Resource;
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

t.test('a flood of new denied flows: bounded events, counted aggregates, policy changes still applied', async (t) => {
  const c = await InProcessCluster.create('evflood');
  t.teardown(() => c.destroy());
  c.setPool();
  await c.addIpv6();
  c.put(pool('default-ipv6-ippool', 'fd00:10::/48', { vxlanMode: 'Never', blockSize: 122, natOutgoing: false }));
  const wa = await c.addWorkload6('wa', 'node-a', '192.168.1.10', 'fd00:10::a');
  const wt = await c.addWorkload6('wt', 'node-a', '192.168.1.11', 'fd00:10::b');
  c.put({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'flood-deny' },
    spec: { order: 0, selector: "app == 'wt'", types: ['Ingress'], ingress: [{ action: 'Deny', protocol: 'UDP', source: { selector: "app == 'wa'" } }] } } as Resource);
  c.put(probePolicy('Deny'));
  await c.sync();
  const A = c.nodes.get('node-a')!;
  const dp = A.dp!;
  const wtIf = await A.ns.ifindex(wt.hostIf);
  wt.ns.spawn(['socat', `TCP6-LISTEN:${PORT},fork,reuseaddr,ipv6only=0`, 'SYSTEM:true'], { stdio: 'ignore' });
  const denied = () => readCounters(dp.maps.cnt!, dp.maps).filter((r) => r.ifindex === wtIf && r.dir === Dir.INGRESS && r.reason === R.POLICY_DENY)
    .reduce((s, r) => s + r.packets, 0n);
  const budget = () => readEventBudgets(dp.maps.evbud!).find((r) => r.ifindex === wtIf) ?? { emitted: 0n, suppressed: 0n, lost: 0n };

  for (const v of [4, 6] as const) t.test(`IPv${v}`, async (t) => {
    const target = v === 4 ? wt.ip : wt.ip6!;
    c.put(probePolicy('Deny'));
    await c.sync();
    const connects = async () => (await wa.ns.exec(['nc', `-${v}`, '-z', '-w', '2', target, String(PORT)], { allowFail: true, timeoutMs: 8000 })).code === 0;
    const received0 = dp.housekeeping().events.received;
    t.notOk(await connects(), 'the probe connection is denied before the change');
    await until(() => dp.housekeeping().events.received > received0, 5000); // the denied probe's event
    const ev0 = dp.housekeeping().events;
    const bud0 = budget();
    const drops0 = denied();

    // The flood: at most 20,000 datagrams/s for at most 20 s; stopped (stdin closed) below.
    const t0 = performance.now();
    const flood = wa.ns.spawn([process.execPath, FLOODER, target, '20', '20000'], { stdio: ['pipe', 'pipe', 'ignore'] });
    let floodOut = '';
    flood.stdout!.on('data', (d) => { floodOut += String(d); });
    const floodDone = new Promise<void>((r) => flood.once('exit', () => r()));
    t.teardown(() => { if (flood.exitCode === null) flood.kill('SIGKILL'); });
    // (2,000: well under any per-workload conntrack quota, which would stop the flooder's new flows
    // at its own egress before they reach the target.)
    t.ok(await until(() => denied() > drops0 + 2000n, 15_000), `the flood is on (${denied() - drops0} denied so far)`);

    // A policy change in the middle of it.
    c.put(probePolicy('Allow'));
    await c.sync();
    t.equal(flood.exitCode, null, 'the change was applied to the kernel while the flood still ran');
    t.ok(await connects(), 'and the connection it allows goes through');

    flood.stdin!.end();
    await floodDone;
    const seconds = (performance.now() - t0) / 1000;
    const sent = Number(/sent (\d+)/.exec(floodOut)?.[1] ?? NaN);
    t.ok(sent > 2000, `flooder sent ${sent} datagrams, each a new flow`);

    // Kernel: drops all counted; events bounded; the rest counted as suppressed, for this endpoint.
    const drops = denied() - drops0;
    let bud = budget();
    const emitted = bud.emitted - bud0.emitted, suppressed = bud.suppressed - bud0.suppressed;
    const perCpu = DEFAULT_EVENT_BUDGET.burst + Math.ceil(seconds * DEFAULT_EVENT_BUDGET.perSec) + 1;
    t.ok(emitted <= BigInt(possibleCpus() * perCpu), `events emitted during the flood ${emitted} ≤ ${possibleCpus()} CPUs × ${perCpu} (budget over ${seconds.toFixed(1)} s)`);
    t.ok(suppressed > 0n, `suppressed (counted, not emitted): ${suppressed}`);
    t.equal(emitted + suppressed, drops, 'every denied new flow is an event or a counted suppression');
    t.equal(bud.lost, 0n, 'no event lost to a full ring');

    // Agent: received what was emitted; logged within its rate; the rest aggregated, counted.
    let got = 0;
    t.ok(await until(() => {
      got = dp.housekeeping().events.received - ev0.received;
      return got >= Number(emitted);
    }, 10_000), `the agent received every event emitted during the flood (${got} of ${emitted})`);
    const ev = dp.housekeeping().events;
    bud = budget();
    const logBound = DEFAULT_FLOW_LOG_LIMITS.burst + Math.ceil(((performance.now() - t0) / 1000 + 1) * DEFAULT_FLOW_LOG_LIMITS.perSec);
    t.ok(ev.logged - ev0.logged <= logBound, `flow logs written: ${ev.logged - ev0.logged} ≤ ${logBound}`);
    t.equal(ev.logged + ev.aggregated, ev.received, 'every received event is logged or aggregated');
    t.ok(ev.suppressed >= Number(bud.suppressed), 'the kernel suppressions reach the agent\'s status (metrics)');
  });
});
