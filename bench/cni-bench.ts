/**
 * CNI plugin latency, tortie beside the Go reference plugins in one run and one topology:
 *
 *   node dist/bench/cni-bench.js [--n 30] [--concurrent 20] [--json]
 *
 * - VERSION: the installed `tortie` (as a runtime finds it on CNI_PATH) vs `portmap`.
 * - ADD and DEL of one workload: `tortie` + tortie-ipam (embedded store, one pool) vs `ptp` +
 *   `host-local` (state in a temp dir), interleaved sample by sample, each workload in its own
 *   namespace, every plugin run with `nsenter --net=<node>` exactly as the other.
 * - 20 concurrent ADDs on one node: no failure and no duplicate address, for both.
 * Goals (issue 13): VERSION ≤ 2× portmap; ADD and DEL p50 ≤ 2× ptp+host-local; concurrency clean.
 * Prints figures and the ratios; exits 0 whether goals are met or not (a benchmark, not a test).
 * Everything runs in namespaces it creates (src/util/netns.ts) and is removed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatastore } from '../src/datastore';
import { ResourceClient } from '../src/client/resources';
import { installCni } from '../src/cni/install';
import type { Resource } from '../src/model';
import { Topology, type Netns } from '../src/util/netns';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : NaN;
  return Number.isInteger(v) && v > 0 ? v : dflt;
};
const N = opt('n', 30);
const CONC = opt('concurrent', 20);
const GO = '/usr/lib/cni';
const CHILD_ENV = { ...process.env, NODE_OPTIONS: '' };

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
  const topo = Topology.create('cnibench');
  const tmp = mkdtempSync(join(tmpdir(), 'tortie-cnibench-'));
  const storeDir = join(tmp, 'store');
  const ds = new EmbeddedDatastore({ dir: storeDir });
  const cleanup = async (): Promise<void> => {
    topo.destroySync();
    await ds.close().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await new ResourceClient(ds).create({
      apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'bench-pool' },
      spec: { cidr: '192.168.0.0/16', ipipMode: 'Never', natOutgoing: false, blockSize: 26 },
    } as Resource);
    const cniBin = join(tmp, 'bin');
    installCni({ binDir: cniBin });
    const tortie = join(cniBin, 'tortie');
    const node = await topo.addNetns('node');
    const up = await topo.addNetns('up');
    await topo.addVeth(node, 'eth0', up, 'eth0');
    await node.sh('ip addr add 198.18.0.2/24 dev eth0 && ip route add default via 198.18.0.1');
    await up.sh('ip addr add 198.18.0.1/24 dev eth0');

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
    const addT: number[] = []; const addP: number[] = []; const delT: number[] = []; const delP: number[] = [];
    for (let i = 0; i < N; i++) {
      const [wt, wp] = [await topo.addNetns(`t${i}`), await topo.addNetns(`p${i}`)];
      const order = i % 2 === 0 ? ['t', 'p'] : ['p', 't'];
      for (const o of order) {
        const r = o === 't'
          ? await runPlugin(node, tortie, env('ADD', `t${i}`, wt, cniBin), tortieConf)
          : await runPlugin(node, join(GO, 'ptp'), env('ADD', `p${i}`, wp, GO), ptpConf);
        if (r.code !== 0) throw new Error(`${o} ADD failed: ${r.stdout}`);
        (o === 't' ? addT : addP).push(r.ms);
      }
      for (const o of order) {
        const r = o === 't'
          ? await runPlugin(node, tortie, env('DEL', `t${i}`, wt, cniBin), tortieConf)
          : await runPlugin(node, join(GO, 'ptp'), env('DEL', `p${i}`, wp, GO), ptpConf);
        if (r.code !== 0) throw new Error(`${o} DEL failed: ${r.stdout}`);
        (o === 't' ? delT : delP).push(r.ms);
      }
    }

    // Concurrent ADDs on one node.
    const concurrent = async (which: 't' | 'p'): Promise<{ ok: number; distinct: number; wallMs: number; failures: string[] }> => {
      const ns = await Promise.all(Array.from({ length: CONC }, (_, i) => topo.addNetns(`c${which}${i}`)));
      const t0 = Date.now();
      const rs = await Promise.all(ns.map((w, i) => which === 't'
        ? runPlugin(node, tortie, env('ADD', `ct${i}`, w, cniBin), tortieConf)
        : runPlugin(node, join(GO, 'ptp'), env('ADD', `cp${i}`, w, GO), ptpConf)));
      const wallMs = Date.now() - t0;
      const ok = rs.filter((r) => r.code === 0);
      const distinct = new Set(ok.map(addressOf).filter(Boolean)).size;
      await Promise.all(ns.map((w, i) => which === 't'
        ? runPlugin(node, tortie, env('DEL', `ct${i}`, w, cniBin), tortieConf)
        : runPlugin(node, join(GO, 'ptp'), env('DEL', `cp${i}`, w, GO), ptpConf)));
      return { ok: ok.length, distinct, wallMs, failures: rs.filter((r) => r.code !== 0).map((r) => r.stdout.trim()) };
    };
    const cT = await concurrent('t');
    const cP = await concurrent('p');

    const ratio = (a: number[], b: number[]): number => q(a, 0.5) / q(b, 0.5);
    const out = {
      samples: N,
      version: { tortie: q(vT, 0.5), portmap: q(vP, 0.5), ratio: ratio(vT, vP) },
      add: { tortie: q(addT, 0.5), ptpHostLocal: q(addP, 0.5), ratio: ratio(addT, addP) },
      del: { tortie: q(delT, 0.5), ptpHostLocal: q(delP, 0.5), ratio: ratio(delT, delP) },
      concurrent: { n: CONC, tortie: cT, ptpHostLocal: cP },
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
        `ADD      tortie        ${fmt(addT)}`,
        `         ptp+host-local ${fmt(addP)}`,
        `         ratio p50 ${out.add.ratio.toFixed(2)}×  ${goal(out.add.ratio)}`,
        `DEL      tortie        ${fmt(delT)}`,
        `         ptp+host-local ${fmt(delP)}`,
        `         ratio p50 ${out.del.ratio.toFixed(2)}×  ${goal(out.del.ratio)}`,
        `${CONC} concurrent ADDs  tortie: ${cT.ok}/${CONC} ok, ${cT.distinct} distinct addresses, ${cT.wallMs} ms wall${cT.failures.length ? `; failures: ${cT.failures.join(' | ')}` : ''}`,
        `                     ptp+host-local: ${cP.ok}/${CONC} ok, ${cP.distinct} distinct addresses, ${cP.wallMs} ms wall`,
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
