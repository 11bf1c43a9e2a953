/**
 * Test helper: real etcd members (/usr/bin/etcd) on 127.0.0.1 of the run's private network
 * namespace (scripts/private-netns.sh; refused outside it) with free ports and temp data
 * dirs. Every member is SIGKILLed and every dir removed on stop(), on process exit and on
 * SIGINT/SIGTERM, whatever the test outcome.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

export interface TlsFiles {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  proc?: ChildProcess;
  log: string[];
}

const liveClusters = new Set<EtcdCluster>();
let hooks = false;
function installHooks(): void {
  if (hooks) return;
  hooks = true;
  process.on('exit', () => { for (const c of liveClusters) c.stopSync(); });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const c of liveClusters) c.stopSync();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * `n` distinct free ports: every listener stays open until all are taken, so the kernel cannot
 * hand one port out twice (freePort() called twice in a row may return the same one).
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      s.unref();
      servers.push(s);
      ports.push(await new Promise<number>((resolve, reject) => {
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port));
      }));
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** A CA, a server cert for IP 127.0.0.1 and a client cert, made with openssl. */
export function makeTls(): TlsFiles {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-etcd-tls-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=tortie-test-ca',
    '-keyout', 'ca.key', '-out', 'ca.crt');
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  fs.writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=tortie-test-${who}`, '-keyout', `${who}.key`, '-out', `${who}.csr`);
    run('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-extfile', `${who}.ext`, '-out', `${who}.crt`);
  }
  const p = (f: string) => path.join(dir, f);
  return { dir, ca: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key') };
}

export interface ClusterOptions {
  tls?: TlsFiles;
  /** Require client certificates (mTLS). */
  clientCertAuth?: boolean;
}

export class EtcdCluster {
  readonly members: EtcdMember[] = [];
  readonly root: string;
  private readonly token = `tortie-${randomBytes(4).toString('hex')}`;

  private watchdog?: ChildProcess;

  private constructor(readonly opts: ClusterOptions) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-etcd-'));
    // If this process dies without running its exit hooks (SIGKILL, e.g. a test-runner
    // timeout), the watchdog kills the members listed in <root>/pids and removes the root.
    const script = 'while kill -0 "$0" 2>/dev/null; do sleep 0.5; done; ' +
      'for p in $(cat "$1/pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; rm -rf "$1"';
    this.watchdog = spawn('/bin/sh', ['-c', script, String(process.pid), this.root], { stdio: 'ignore', detached: true });
    this.watchdog.unref();
  }

  private writePids(): void {
    const pids = this.members.map((m) => m.proc?.pid).filter((p) => p !== undefined).join(' ');
    try {
      fs.writeFileSync(path.join(this.root, 'pids'), pids);
    } catch {
      /* root already removed */
    }
  }

  static async start(size = 1, opts: ClusterOptions = {}): Promise<EtcdCluster> {
    // Members listen on 127.0.0.1: only inside the private network namespace npm test and npm
    // run bench run in (scripts/private-netns.sh), never on the host's own loopback.
    if (process.env.TORTIE_PRIVATE_NETNS !== '1') {
      throw new Error('etcd test members listen on 127.0.0.1 and must not use the host\'s network stack: run this through ' +
        'scripts/private-netns.sh (npm test and npm run bench do), e.g. bash scripts/private-netns.sh node node_modules/tap/dist/esm/run.mjs <files>');
    }
    installHooks();
    const c = new EtcdCluster(opts);
    liveClusters.add(c);
    try {
      const ports = await freePorts(2 * size);
      for (let i = 0; i < size; i++) {
        c.members.push({ name: `m${i}`, clientPort: ports[2 * i]!, peerPort: ports[2 * i + 1]!, dataDir: path.join(c.root, `m${i}`), log: [] });
      }
      await Promise.all(c.members.map((_, i) => c.startMember(i)));
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  private get scheme(): string {
    return this.opts.tls ? 'https' : 'http';
  }

  endpoints(): string[] {
    return this.members.map((m) => `${this.scheme}://127.0.0.1:${m.clientPort}`);
  }

  /** Starts (or restarts, same data dir and ports) member i; resolves when it serves clients. */
  startMember(i: number, timeoutMs = 20_000): Promise<void> {
    const m = this.members[i];
    const cluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    const url = `${this.scheme}://127.0.0.1:${m.clientPort}`;
    const args = [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', this.token,
      '--heartbeat-interval', '50', '--election-timeout', '500',
      '--logger', 'zap', '--log-level', 'info', '--log-outputs', 'stderr',
      '--snapshot-count', '100000', '--quota-backend-bytes', String(512 * 1024 * 1024),
    ];
    if (this.opts.tls) {
      args.push('--cert-file', this.opts.tls.serverCert, '--key-file', this.opts.tls.serverKey);
      // etcd requires client certificates whenever --trusted-ca-file is set.
      if (this.opts.clientCertAuth) args.push('--trusted-ca-file', this.opts.tls.ca, '--client-cert-auth');
    }
    const proc = spawn('/usr/bin/etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    m.proc = proc;
    this.writePids();
    m.log = [];
    return new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`etcd ${m.name} not ready after ${timeoutMs} ms:\n${m.log.slice(-20).join('\n')}`)), timeoutMs);
      proc.stderr!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          m.log.push(line);
          if (m.log.length > 500) m.log.shift();
          if (/ready to serve client requests|serving client traffic/.test(line)) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
      proc.on('exit', (code, sig) => {
        clearTimeout(timer);
        if (m.proc === proc) m.proc = undefined;
        reject(new Error(`etcd ${m.name} exited (${code ?? sig}):\n${m.log.slice(-20).join('\n')}`));
      });
    });
  }

  /** SIGKILL member i and wait for it to be gone. */
  async killMember(i: number): Promise<void> {
    const p = this.members[i].proc;
    if (!p) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await gone;
  }

  /** Index of the current leader, asked with etcdctl. */
  leaderIndex(): number {
    const alive = this.members.map((m, i) => ({ m, i })).filter((x) => x.m.proc);
    for (const { i } of alive) {
      try {
        const out = execFileSync('/usr/bin/etcdctl', ['--endpoints', this.endpoints()[i], ...this.ctlTls(), 'endpoint', 'status', '-w', 'json'],
          { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'pipe', timeout: 5000 }).toString();
        const st = JSON.parse(out)[0] as { Status: { header: { member_id: number }; leader: number } };
        if (st.Status.leader === st.Status.header.member_id) return i;
        // Not the leader itself: find which member id is, by asking each.
      } catch {
        /* try the next */
      }
    }
    return -1;
  }

  ctlTls(): string[] {
    const t = this.opts.tls;
    return t ? ['--cacert', t.ca, '--cert', t.clientCert, '--key', t.clientKey] : [];
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.killMember(i)));
    fs.rmSync(this.root, { recursive: true, force: true });
    this.stopWatchdog();
    liveClusters.delete(this);
  }

  private stopWatchdog(): void {
    try { if (this.watchdog?.pid) process.kill(this.watchdog.pid, 'SIGKILL'); } catch { /* gone */ }
    this.watchdog = undefined;
  }

  stopSync(): void {
    for (const m of this.members) {
      try { m.proc?.kill('SIGKILL'); } catch { /* gone */ }
    }
    fs.rmSync(this.root, { recursive: true, force: true });
    this.stopWatchdog();
    liveClusters.delete(this);
  }
}
