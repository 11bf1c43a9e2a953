// scripts/setup.sh installs for each command only what it needs and never touches the host's
// services; without root it says which sudo command to run.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');
const SETUP = resolve(ROOT, 'scripts/setup.sh');
const packages = (purpose: string): string[] => {
  const r = spawnSync('bash', [SETUP, purpose, '--packages'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim().split('\n');
};

t.test('package groups: the main job gets the toolchain and kernel tools only', async (t) => {
  const main = packages('main');
  for (const p of ['clang', 'llvm', 'libbpf-dev', 'bpftool', 'iproute2', 'tcpdump', 'netcat-openbsd', 'iputils-ping']) t.ok(main.includes(p), `main: ${p}`);
  for (const p of ['vagrant', 'etcd-server', 'nginx-light', 'podman', 'frr', 'bird2', 'iperf3', 'wrk']) t.notOk(main.includes(p), `main: no ${p}`);
  const test = packages('test');
  for (const p of [...main, 'etcd-server', 'vagrant', 'python3-scapy', 'nftables', 'podman', 'containernetworking-plugins', 'runc', 'busybox-static', 'bird2', 'frr', 'systemd']) t.ok(test.includes(p), `test: ${p}`);
  const bench = packages('bench');
  for (const p of [...main, 'nftables', 'iptables', 'ipset', 'iperf3', 'wrk', 'sockperf', 'nginx-light', 'etcd-server']) t.ok(bench.includes(p), `bench: ${p}`);
  t.notOk(bench.includes('vagrant'), 'bench: no vagrant');
});

t.test('no host service is started, stopped or reconfigured', async (t) => {
  const text = readFileSync(SETUP, 'utf8').split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
  t.notMatch(text, /\b(systemctl|service|invoke-rc\.d|update-rc\.d)\b/, 'no service management commands');
  t.match(text, /policy-rc\.d[\s\S]*exit 101/, 'packages it installs may not start their services');
  t.match(readFileSync(resolve(ROOT, 'package.json'), 'utf8'), /"bench": "bash scripts\/setup\.sh bench && /, 'npm run bench sets up what it uses');
});

t.test('without root: the sudo command for that purpose; a bad purpose is named', async (t) => {
  for (const [purpose, cmd] of [['main', 'npm start'], ['test', 'npm test'], ['bench', 'npm run bench']]) {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', SETUP, purpose], { encoding: 'utf8' });
    t.equal(r.status, 1);
    t.match(r.stderr, new RegExp(`re-run with sudo, e\\.g\\.: sudo ${cmd}\\n`), `${purpose}: says sudo ${cmd}`);
  }
  const bad = spawnSync('bash', [SETUP, 'everything'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /unknown purpose "everything"/);
});
