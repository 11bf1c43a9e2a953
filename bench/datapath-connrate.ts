/**
 * New-connection rate (wrk against nginx, `Connection: close`, so every request is a new TCP
 * connection that takes the policy path) on the same node:
 *   - no programs (baseline for the iptables comparison),
 *   - tortie with 1 rule allowing the client,
 *   - tortie with 10,000 rules (1,000 policies × 10, none matching) before that allow,
 *   - no tortie, an iptables FORWARD chain of 10,000 non-matching rules before the allow
 *     (ESTABLISHED accepted first, as any sane chain), in the node namespace.
 * Ratios: tortie 10,000 / tortie 1 (goal ≥ 0.95×), iptables 10,000 / no programs.
 * Configurations alternate within each round (see main); ratios are medians of per-round
 * ratios. Prints figures; asserts nothing.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/datapath-connrate.js [seconds] [rounds] [connections]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BenchNode, SERVER_IP, CLIENT_IP } from './datapath-netns';
import { median } from './lib/stats';
import { nginxConfig, parseWrk } from './lib/tools';

const SECONDS = Number(process.argv[2] ?? 3);
const ROUNDS = Number(process.argv[3] ?? 7);
const CONNS = Number(process.argv[4] ?? 16);

async function wrk(node: BenchNode): Promise<number> {
  const r = await node.client.ns.exec(['wrk', '-t1', `-c${CONNS}`, `-d${SECONDS}s`, '-H', 'Connection: close', `http://${SERVER_IP}/`],
    { timeoutMs: (SECONDS + 30) * 1000 });
  return parseWrk(r.stdout).requestsPerSecond;
}

async function iptablesOn(node: BenchNode, rules: number): Promise<number> {
  const t0 = Date.now();
  const lines = ['*filter', ':FORWARD DROP [0:0]', '-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'];
  let seed = 99;
  const int = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return Math.floor((seed / 4294967296) * n); };
  for (let i = 0; i < rules; i++) {
    lines.push(`-A FORWARD -s 10.${int(256)}.${int(256)}.${int(256)}/32 -d ${SERVER_IP}/32 -p tcp -m tcp --dport ${1000 + int(50000)} -j ACCEPT`);
  }
  lines.push(`-A FORWARD -s ${CLIENT_IP}/32 -d ${SERVER_IP}/32 -p tcp -m tcp --dport 80 -j ACCEPT`);
  lines.push(`-A FORWARD -s ${SERVER_IP}/32 -j ACCEPT`, `-A FORWARD -s ${CLIENT_IP}/32 -j ACCEPT`, 'COMMIT', '');
  await node.topo.node.exec(['iptables-restore'], { input: lines.join('\n'), timeoutMs: 120_000 });
  return Date.now() - t0;
}

async function iptablesOff(node: BenchNode): Promise<void> {
  await node.topo.node.exec(['iptables-restore'], { input: '*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n' });
}

async function main(): Promise<void> {
  const node = await BenchNode.create('bench-conn');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-bench-nginx-'));
  try {
    fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir, `${SERVER_IP}:80`));
    await node.client.ns.sh('sysctl -qw net.ipv4.tcp_tw_reuse=1 && sysctl -qw net.ipv4.ip_local_port_range="1024 65000"');
    node.server.ns.spawn(['nginx', '-c', path.join(dir, 'nginx.conf')]);
    await new Promise((r) => setTimeout(r, 700));
    // Load the 10,000-rule state once, keep the 1-rule server tables loaded beside it, and
    // switch between configurations within each round (a table flip, a detach, an
    // iptables-restore) so that every round compares measurements taken seconds apart: the
    // machine is shared, and its load drifts far more than the effects measured here.
    const setup10k = await node.tortieOn(1000, 10, [80]);
    const t10k = node.preloadServerTables(node.compile(1000, 10, [80]).snap);
    const t1 = node.preloadServerTables(node.compile(0, 0, [80]).snap);
    const res: Record<'none' | 't1' | 't10k' | 'ipt10k', number[]> = { none: [], t1: [], t10k: [], ipt10k: [] };
    const ratios: Record<'t10k_t1' | 't1_none' | 'ipt_none', number[]> = { t10k_t1: [], t1_none: [], ipt_none: [] };
    let iptMs = 0;
    for (let i = 0; i < ROUNDS; i++) {
      node.detach();
      res.none.push(await wrk(node));
      node.attach();
      node.useServerTables(t1);
      res.t1.push(await wrk(node));
      node.useServerTables(t10k);
      res.t10k.push(await wrk(node));
      node.detach();
      iptMs = await iptablesOn(node, 10_000);
      res.ipt10k.push(await wrk(node));
      await iptablesOff(node);
      ratios.t10k_t1.push(res.t10k[i] / res.t1[i]);
      ratios.t1_none.push(res.t1[i] / res.none[i]);
      ratios.ipt_none.push(res.ipt10k[i] / res.none[i]);
      console.log(`round ${i + 1}: none ${res.none[i].toFixed(0)}, tortie 1 rule ${res.t1[i].toFixed(0)}, tortie 10,000 rules ${res.t10k[i].toFixed(0)}, ` +
        `iptables 10,000 rules ${res.ipt10k[i].toFixed(0)} conn/s`);
    }
    const m = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)])) as Record<keyof typeof res, number>;
    const r = Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, median(v)])) as Record<keyof typeof ratios, number>;
    console.log(`setup: tortie with 10,000 rules loaded + attached in ${setup10k.ms} ms (${setup10k.cells} cells; compile excluded); iptables-restore 10,000 rules ${iptMs} ms`);
    console.log(`new connections/s (wrk -c${CONNS}, ${SECONDS} s phases × ${ROUNDS} rounds, medians): none ${m.none.toFixed(0)}, tortie 1 rule ${m.t1.toFixed(0)}, ` +
      `tortie 10,000 rules ${m.t10k.toFixed(0)}, iptables 10,000 rules ${m.ipt10k.toFixed(0)}`);
    console.log(`median per-round ratios: tortie 10,000/1 = ${r.t10k_t1.toFixed(3)}× (goal ≥ 0.95×); tortie 1 rule/none = ${r.t1_none.toFixed(3)}×; ` +
      `iptables 10,000/none = ${r.ipt_none.toFixed(3)}×; tortie 10,000 vs iptables 10,000 (medians) = ${(m.t10k / m.ipt10k).toFixed(2)}×`);
  } finally {
    await node.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
