/**
 * CNI plugin latency, tortie beside the Go reference plugins in one run and one topology:
 *
 *   node dist/bench/cni-bench.js [--n 30] [--concurrent 20] [--json] [--agent-cpu-prof DIR]
 *
 * --agent-cpu-prof DIR: the agent runs with `node --cpu-prof` and writes its profile into DIR when
 * it stops (open it in Chrome's DevTools) — to see what sits on an agent-hosted ADD's path.
 *
 * - VERSION: the installed `tortie` (as a runtime finds it on CNI_PATH) vs `portmap`.
 * - ADD and DEL of one workload: `tortie` + tortie-ipam (embedded store, one pool) three ways —
 *   through tortie-node's own CNI socket (the default install: a running agent in the node
 *   namespace that also programs each new workload's BPF, as it would in production), through
 *   the standalone `tortie-cni-server`, and as a process per call (the wrappers' fallback) —
 *   vs `ptp` + `host-local` (state in a temp dir), interleaved sample by sample, each workload in
 *   its own namespace, every plugin run with `nsenter --net=<node>` by the same installed
 *   wrapper a runtime finds on CNI_PATH.
 * - 20 concurrent ADDs on one node: no failure and no duplicate address, for each.
 * Goals: VERSION ≤ 2× portmap; ADD and DEL p50 ≤ 2× ptp+host-local; concurrency clean.
 * Prints figures and the ratios; exits 0 whether goals are met or not (a benchmark, not a test).
 * Everything runs in namespaces it creates (src/util/netns.ts) and is removed at the end.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatastore } from '../src/datastore';
import { ResourceClient } from '../src/client/resources';
import { installCni } from '../src/cni/install';
import type { Resource } from '../src/model';
import { agentCommand } from '../src/node/launch';
import { SingleNode, childEnv, pinRoot as newPinRoot, removePinRoot, type Netns } from '../src/testbed';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : NaN;
  return Number.isInteger(v) && v > 0 ? v : dflt;
};
const N = opt('n', 30);
const profIdx = args.indexOf('--agent-cpu-prof');
const AGENT_PROF = profIdx >= 0 ? args[profIdx + 1] : undefined;
if (profIdx >= 0 && !AGENT_PROF) throw new Error('--agent-cpu-prof needs a directory');
const CONC = opt('concurrent', 20);
const GO = '/usr/lib/cni';
const CHILD_ENV = childEnv();

interface Run { code: number; stdout: string; ms: number }

function runPlugin(node: Netns, exe: string, env: Record<string, string>, stdin: string): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('nsenter', [`--net=${node.path}`, '--', exe], { env: { ...CHILD_ENV, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => { stdout += String(d); });
    child.stderr.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
    child.stdin.on('error', () => undefined); // a plugin may exit without reading stdin (VERSION)
    child.stdin.end(stdin);
  });
}

const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const fmt = (xs: number[]): string => `p50 ${q(xs, 0.5).toFixed(1)} ms  p90 ${q(xs, 0.9).toFixed(1)} ms  max ${Math.max(...xs).toFixed(1)} ms`;

function addressOf(r: Run): string {
  try { return (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!; } catch { return ''; }
}

async function main(): Promise<void> {
  const bed = await SingleNode.create('cnibench');
  const topo = bed.topo;
  const tmp = mkdtempSync(join(tmpdir(), 'tortie-cnibench-'));
  const storeDir = join(tmp, 'store');
  const ds = new EmbeddedDatastore({ dir: storeDir });
  const pinRoot = newPinRoot('cnibench', { create: false });
  const cleanup = async (): Promise<void> => {
    topo.destroySync(); // kills what runs in its namespaces (the agent, the server)
    removePinRoot(pinRoot);
    await ds.close().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await new ResourceClient(ds).create({
      apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'bench-pool' },
      spec: { cidr: '192.168.0.0/16', ipipMode: 'Never', natOutgoing: false, blockSize: 26 },
    } as Resource);
    const cniBin = join(tmp, 'bin');
    const sock = join(tmp, 'cni.sock');
    installCni({ binDir: cniBin, socket: join(tmp, 'no-server.sock') });
    const tortie = join(cniBin, 'tortie');
    const srvBin = join(tmp, 'srvbin');
    installCni({ binDir: srvBin, socket: sock });
    const tortieSrv = join(srvBin, 'tortie');
    const agentSock = join(tmp, 'agent-cni.sock');
    const agentBin = join(tmp, 'agentbin');
    installCni({ binDir: agentBin, socket: agentSock });
    const tortieAgent = join(agentBin, 'tortie');
    const node = bed.node;
    const server = node.spawn([process.execPath, join(__dirname, '..', '..', 'bin', 'tortie-cni-server.js'), '--socket', sock], { netOnly: true, env: CHILD_ENV });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (d) => { out += String(d); if (out.includes('listening')) resolve(); });
      server.stderr!.on('data', (d) => { out += String(d); });
      server.once('exit', (c) => reject(new Error(`tortie-cni-server exited (${c}): ${out}`)));
    });
    // tortie-node as installed: the agent, serving the CNI plugins on its socket.
    const agent = node.spawn(agentCommand(['run', '--nodename', 'node-a', '--ip', `${bed.nodeIp}/24`, '--store-dir', storeDir,
      '--bpffs-root', pinRoot, '--run-dir', join(tmp, 'run'), '--health-port', '0', '--metrics-port', '0', '--log-level', 'warn', '--cni-socket', agentSock],
      AGENT_PROF ? ['--cpu-prof', '--cpu-prof-dir', AGENT_PROF] : []), { netOnly: true, env: CHILD_ENV });
    let agentLog = '';
    agent.stdout!.on('data', (d) => { agentLog += String(d); });
    agent.stderr!.on('data', (d) => { agentLog += String(d); });
    for (const deadline = Date.now() + 60_000; !existsSync(agentSock);) {
      if (agent.exitCode !== null || Date.now() > deadline) throw new Error(`tortie-node did not serve ${agentSock}: ${agentLog}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const tortieConf = JSON.stringify({
      cniVersion: '1.0.0', name: 'bench', type: 'tortie', nodename: 'node-a', mtu: 1500,
      datastore_type: 'embedded', datastore_path: storeDir, ipam: { type: 'tortie-ipam' },
    });
    const ptpConf = JSON.stringify({
      cniVersion: '1.0.0', name: 'benchptp', type: 'ptp', ipMasq: false, mtu: 1500,
      ipam: { type: 'host-local', dataDir: join(tmp, 'host-local'), ranges: [[{ subnet: '198.19.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] },
    });
    const env = (cmd: string, id: string, ns: Netns | undefined, path: string): Record<string, string> => ({
      CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: ns ? ns.path : '', CNI_IFNAME: 'eth0', CNI_PATH: path,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAME=bench_${id}`,
    });

    // VERSION, interleaved.
    const vT: number[] = [];
    const vP: number[] = [];
    for (let i = 0; i < N; i++) {
      const a = await runPlugin(node, tortie, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
      const b = await runPlugin(node, join(GO, 'portmap'), { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
      if (a.code !== 0 || b.code !== 0) throw new Error(`VERSION failed: tortie ${a.stdout} portmap ${b.stdout}`);
      vT.push(a.ms); vP.push(b.ms);
    }

    // ADD then DEL, one workload namespace per sample and plugin, interleaved.
    type V = 't' | 's' | 'a' | 'p';
    const wrapper: Record<Exclude<V, 'p'>, [string, string]> = { t: [tortie, cniBin], s: [tortieSrv, srvBin], a: [tortieAgent, agentBin] };
    const call = (v: V, cmd: string, id: string, ns: Netns): Promise<Run> => v === 'p'
      ? runPlugin(node, join(GO, 'ptp'), env(cmd, id, ns, GO), ptpConf)
      : runPlugin(node, wrapper[v][0], env(cmd, id, ns, wrapper[v][1]), tortieConf);
    const add: Record<V, number[]> = { t: [], s: [], a: [], p: [] };
    const del: Record<V, number[]> = { t: [], s: [], a: [], p: [] };
    const orders: V[][] = [['a', 't', 's', 'p'], ['p', 'a', 't', 's'], ['s', 'p', 'a', 't'], ['t', 's', 'p', 'a']];
    for (let i = 0; i < N; i++) {
      const ns = {} as Record<V, Netns>;
      for (const v of ['t', 's', 'a', 'p'] as const) ns[v] = await topo.addNetns(`${v}${i}`);
      const order = orders[i % orders.length]!;
      for (const [cmd, into] of [['ADD', add], ['DEL', del]] as const) {
        for (const v of order) {
          const r = await call(v, cmd, `${v}${i}`, ns[v]);
          if (r.code !== 0) throw new Error(`${v} ${cmd} failed: ${r.stdout}`);
          into[v].push(r.ms);
        }
      }
    }
    const [addT, addS, addA, addP, delT, delS, delA, delP] = [add.t, add.s, add.a, add.p, del.t, del.s, del.a, del.p];

    // Concurrent ADDs on one node.
    const concurrent = async (which: V): Promise<{ ok: number; distinct: number; wallMs: number; failures: string[] }> => {
      const ns = await Promise.all(Array.from({ length: CONC }, (_, i) => topo.addNetns(`c${which}${i}`)));
      const t0 = Date.now();
      const rs = await Promise.all(ns.map((w, i) => call(which, 'ADD', `c${which}${i}`, w)));
      const wallMs = Date.now() - t0;
      const ok = rs.filter((r) => r.code === 0);
      const distinct = new Set(ok.map(addressOf).filter(Boolean)).size;
      await Promise.all(ns.map((w, i) => call(which, 'DEL', `c${which}${i}`, w)));
      return { ok: ok.length, distinct, wallMs, failures: rs.filter((r) => r.code !== 0).map((r) => r.stdout.trim()) };
    };
    const cT = await concurrent('t');
    const cS = await concurrent('s');
    const cA = await concurrent('a');
    const cP = await concurrent('p');
    if (agent.exitCode !== null) throw new Error(`tortie-node exited during the run (${agent.exitCode}): ${agentLog}`);
    if (AGENT_PROF) { // the profile is written when the agent stops on its own
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }

    const ratio = (a: number[], b: number[]): number => q(a, 0.5) / q(b, 0.5);
    const out = {
      samples: N,
      version: { tortie: q(vT, 0.5), portmap: q(vP, 0.5), ratio: ratio(vT, vP) },
      add: { tortieAgent: q(addA, 0.5), tortie: q(addT, 0.5), tortieServer: q(addS, 0.5), ptpHostLocal: q(addP, 0.5), ratioAgent: ratio(addA, addP), ratio: ratio(addT, addP), ratioServer: ratio(addS, addP) },
      del: { tortieAgent: q(delA, 0.5), tortie: q(delT, 0.5), tortieServer: q(delS, 0.5), ptpHostLocal: q(delP, 0.5), ratioAgent: ratio(delA, delP), ratio: ratio(delT, delP), ratioServer: ratio(delS, delP) },
      concurrent: { n: CONC, tortieAgent: cA, tortie: cT, tortieServer: cS, ptpHostLocal: cP },
    };
    if (args.includes('--json')) {
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    } else {
      const goal = (r: number): string => (r <= 2 ? 'goal met (≤ 2×)' : 'GOAL MISSED (> 2×)');
      process.stdout.write([
        `CNI latency, ${N} interleaved samples each (node ${process.version}, ${new Date().toISOString()})`,
        `VERSION  tortie        ${fmt(vT)}`,
        `         portmap       ${fmt(vP)}`,
        `         ratio p50 ${out.version.ratio.toFixed(2)}×  ${goal(out.version.ratio)}`,
        `ADD      tortie agent   ${fmt(addA)}   ratio p50 ${out.add.ratioAgent.toFixed(2)}×  ${goal(out.add.ratioAgent)}`,
        `         tortie process ${fmt(addT)}   ratio p50 ${out.add.ratio.toFixed(2)}×  ${goal(out.add.ratio)}`,
        `         tortie server  ${fmt(addS)}   ratio p50 ${out.add.ratioServer.toFixed(2)}×  ${goal(out.add.ratioServer)}`,
        `         ptp+host-local ${fmt(addP)}`,
        `DEL      tortie agent   ${fmt(delA)}   ratio p50 ${out.del.ratioAgent.toFixed(2)}×  ${goal(out.del.ratioAgent)}`,
        `         tortie process ${fmt(delT)}   ratio p50 ${out.del.ratio.toFixed(2)}×  ${goal(out.del.ratio)}`,
        `         tortie server  ${fmt(delS)}   ratio p50 ${out.del.ratioServer.toFixed(2)}×  ${goal(out.del.ratioServer)}`,
        `         ptp+host-local ${fmt(delP)}`,
        ...([['tortie agent', cA], ['tortie process', cT], ['tortie server', cS], ['ptp+host-local', cP]] as const).map(([n, c]) =>
          `${CONC} concurrent ADDs, ${n}: ${c.ok}/${CONC} ok, ${c.distinct} distinct addresses, ${c.wallMs} ms wall${c.failures.length ? `; failures: ${c.failures.join(' | ')}` : ''}`),
        '',
      ].join('\n'));
    }
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`cni-bench: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
