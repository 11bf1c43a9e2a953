/**
 * Test harness: Debian's podman 4.3 (CNI backend) networking containers with tortie's plugins.
 *
 * Layout: a namespace acting as the host (uplink 198.18.0.10/24 to an "outside" namespace, default
 * route through it) and, entered with nsenter, a private mount namespace held by a `sleep`
 * started with `unshare -m --propagation private`. In that mount namespace: tmpfs over
 * /run/netns (podman's container namespaces), /var/lib/cni (libcni's cache), /run/containers
 * and /var/lib/containers when they exist, and a private bpffs for tortie-node's pins. podman,
 * conmon, runc, the plugins and tortie-node all run there, with the test's own containers.conf
 * (runc, cgroupfs, ulimits the machine allows, network_config_dir and cni_plugin_dirs in the
 * temp dir) and storage.conf (vfs, graph and run roots in the temp dir). Containers run from a
 * busybox-static rootfs (`--rootfs`; no registry).
 *
 * Teardown (also on process exit): `podman rm -af -t 0` (CNI DEL for each), then anything still
 * running in a container network namespace of ours, the agent, the holder, the namespaces and the
 * temp dir.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResourceClient } from '../../../src/client/resources';
import { EmbeddedDatastore } from '../../../src/datastore';
import { installCni } from '../../../src/cni/install';
import { Topology, run, type ExecOptions, type ExecResult, type Netns } from '../../../src/util/netns';
import { AgentProcess, NODE_IP, SingleNode, childEnv, eventually } from '../../../src/testbed';

const APPLETS = ['sh', 'nc', 'ip', 'sleep', 'cat', 'echo', 'hostname', 'ls', 'ps', 'true', 'kill'];
const live = new Set<PodmanHost>();
process.on('exit', () => { for (const h of live) h.destroySync(); });

export class PodmanHost {
  readonly dir = mkdtempSync(join(tmpdir(), 'tortie-podman-'));
  readonly topo: Topology;
  readonly network = 'tortienet';
  readonly nodeName = 'node-a';
  readonly storeDir = join(this.dir, 'store');
  readonly rootfs = join(this.dir, 'rootfs');
  readonly cniBin = join(this.dir, 'cnibin');
  readonly netDir = join(this.dir, 'net.d');
  readonly bpffs = join(this.dir, 'bpffs');
  readonly healthPort = 20000 + Math.floor(Math.random() * 20000);
  readonly ds: EmbeddedDatastore;
  readonly rc: ResourceClient;
  host!: Netns;
  outside!: Netns;
  agent?: AgentProcess;
  private holder?: ChildProcess;
  private destroyed = false;

  constructor(readonly label: string) {
    this.topo = Topology.create(label);
    mkdirSync(this.storeDir);
    this.ds = new EmbeddedDatastore({ dir: this.storeDir });
    this.rc = new ResourceClient(this.ds);
    live.add(this);
  }

  get mntNs(): string {
    if (!this.holder?.pid) throw new Error('podman host not started');
    return `/proc/${this.holder.pid}/ns/mnt`;
  }

  /** The podman environment: configuration files of our own, no test-runner hooks in Node. */
  get env(): NodeJS.ProcessEnv {
    return {
      ...childEnv(),
      CONTAINERS_CONF: join(this.dir, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(this.dir, 'storage.conf'),
      CONTAINERS_REGISTRIES_CONF: join(this.dir, 'registries.conf'),
    };
  }

  /** Where tortie-node serves the CNI plugins (startAgent) and the installed wrappers look. */
  readonly agentSocket = join(this.dir, 'agent-cni.sock');

  /**
   * opts.noFallback: the wrappers cannot start a plugin process, so every ADD/DEL/CHECK must be
   * answered by the agent on agentSocket.
   */
  async start(conflist?: Record<string, unknown>, opts: { noFallback?: boolean } = {}): Promise<void> {
    const bed = await SingleNode.create(this.label, { topo: this.topo });
    this.host = bed.node;
    this.outside = bed.outside;
    this.writeRootfs();
    this.writeConfig(conflist, opts.noFallback === true);
    for (const d of ['bpffs', 'storage', 'run', 'tmp', 'volumes']) mkdirSync(join(this.dir, d), { recursive: true });
    const script = [
      'set -e',
      'mount -t tmpfs tmpfs /run/netns',
      // libcni's cache; never create the directory on the host's filesystem to mount over it.
      'if [ -d /var/lib/cni ]; then mount -t tmpfs tmpfs /var/lib/cni; else mount -t tmpfs tmpfs /var/lib && mkdir /var/lib/cni; fi',
      'for d in /run/containers /var/lib/containers /run/libpod; do [ -d $d ] && mount -t tmpfs tmpfs $d; done; true',
      `mount -t bpf bpf ${this.bpffs}`,
      'echo ready',
      'exec sleep 86400',
    ].join('\n');
    this.holder = this.host.spawn(['unshare', '-m', '--propagation', 'private', 'sh', '-c', script], { netOnly: true, env: childEnv() });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mount namespace holder not ready: ${out}`)), 10_000);
      this.holder!.stdout!.on('data', (d) => { out += String(d); if (out.includes('ready')) { clearTimeout(timer); resolve(); } });
      this.holder!.stderr!.on('data', (d) => { out += String(d); });
      this.holder!.once('exit', (c) => { clearTimeout(timer); reject(new Error(`mount namespace holder exited (${c}): ${out}`)); });
    });
  }

  private writeRootfs(): void {
    for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run', 'var']) mkdirSync(join(this.rootfs, d), { recursive: true });
    copyFileSync('/bin/busybox', join(this.rootfs, 'bin', 'busybox'));
    chmodSync(join(this.rootfs, 'bin', 'busybox'), 0o755);
    for (const a of APPLETS) symlinkSync('busybox', join(this.rootfs, 'bin', a));
    // The probe server's reply: who answered.
    writeFileSync(join(this.rootfs, 'bin', 'hello'), '#!/bin/sh\necho "hello from $(hostname)"\n', { mode: 0o755 });
  }

  private writeConfig(conflist: Record<string, unknown> | undefined, noFallback: boolean): void {
    installCni({
      binDir: this.cniBin, confDir: this.netDir, socket: this.agentSocket,
      ...(noFallback ? { nodePath: '/nonexistent/node' } : {}),
      network: { name: this.network, nodename: this.nodeName, datastore: { type: 'embedded', dir: this.storeDir } },
    });
    if (conflist) writeFileSync(join(this.netDir, '10-tortie.conflist'), JSON.stringify(conflist, null, 2));
    writeFileSync(join(this.dir, 'containers.conf'), `[containers]
# podman's defaults (1048576) exceed this machine's hard limits; runc then cannot set them.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
log_driver = "k8s-file"

[network]
network_backend = "cni"
network_config_dir = "${this.netDir}"
cni_plugin_dirs = ["${this.cniBin}", "/usr/lib/cni"]
default_network = "${this.network}"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${join(this.dir, 'events.log')}"
tmp_dir = "${join(this.dir, 'tmp')}"
volume_path = "${join(this.dir, 'volumes')}"
`);
    writeFileSync(join(this.dir, 'storage.conf'), `[storage]
driver = "vfs"
runroot = "${join(this.dir, 'run')}"
graphroot = "${join(this.dir, 'storage')}"
`);
    writeFileSync(join(this.dir, 'registries.conf'), 'unqualified-search-registries = []\n');
  }

  /** Runs argv in the host namespace and our mount namespace, with podman's environment. */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(['nsenter', `--net=${this.host.path}`, `--mount=${this.mntNs}`, '--', ...argv], { env: this.env, timeoutMs: 60_000, ...opts });
  }

  podman(args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return this.exec(['podman', ...args], opts);
  }

  /** `podman run -d` of the rootfs on our network; returns the container id. */
  async runDetached(args: string[], cmd: string[]): Promise<string> {
    const r = await this.podman(['run', '-d', '--network', this.network, ...args, '--rootfs', this.rootfs, ...cmd]);
    return r.stdout.trim().split('\n').pop()!;
  }

  async inspect(name: string): Promise<{ id: string; name: string; ip: string; gateway: string; pid: number; sandbox: string; running: boolean }> {
    const r = await this.podman(['inspect', '--type', 'container', name]);
    const c = JSON.parse(r.stdout)[0];
    const net = c.NetworkSettings?.Networks?.[this.network] ?? {};
    return {
      id: c.Id, name: c.Name, ip: net.IPAddress ?? '', gateway: net.Gateway ?? '', pid: c.State?.Pid ?? 0,
      sandbox: c.NetworkSettings?.SandboxKey ?? '', running: c.State?.Running === true,
    };
  }

  /** A TCP probe from inside container `from` (busybox nc): the server's reply, or '' on failure. */
  async probe(from: string, ip: string, port = 8080): Promise<string> {
    const r = await this.podman(['exec', from, 'nc', '-w', '2', ip, String(port)], { allowFail: true, timeoutMs: 15_000, input: '' });
    return r.code === 0 ? r.stdout.trim() : '';
  }

  /** opts.cniSocket false: the agent does not serve the CNI plugins (`--cni-socket none`). */
  startAgent(opts: { cniSocket?: boolean } = {}): AgentProcess {
    // In the holder's mount namespace: the agent pins into the private bpffs mounted there.
    this.agent = new AgentProcess(this.host, {
      args: ['run', '--cni-socket', opts.cniSocket === false ? 'none' : this.agentSocket, '--nodename', this.nodeName, '--ip', `${NODE_IP}/24`, '--store-dir', this.storeDir,
        '--bpffs-root', join(this.bpffs, 'tortie'), '--run-dir', join(this.dir, 'agent-run'), '--metrics-port', '0', '--log-level', 'info', '--interface-prefix', 'cali,veth'],
      healthPort: this.healthPort, env: childEnv(), wrap: ['nsenter', `--mount=${this.mntNs}`, '--'],
    });
    this.agentServesCni = opts.cniSocket !== false;
    return this.agent;
  }

  get agentLog(): string { return this.agent?.log ?? ''; }

  private agentServesCni = false;

  /** Ready: /readyz answers 200 and, when the agent serves the CNI plugins, its socket listens. */
  async waitAgentReady(timeoutMs = 30_000): Promise<void> {
    if (!this.agent) throw new Error('no agent started');
    const t0 = Date.now();
    await this.agent.waitReady(timeoutMs);
    if (this.agentServesCni && !(await eventually(async () => /serving the CNI plugins/.test(this.agentLog), true, Math.max(0, timeoutMs - (Date.now() - t0))))) {
      throw new Error(`agent not serving the CNI plugins after ${timeoutMs} ms:\n${this.agentLog}`);
    }
  }

  /** Processes whose network namespace is one of podman's (in our /run/netns). */
  private containerPids(): number[] {
    if (!this.holder?.pid) return [];
    let inodes: string[] = [];
    try {
      inodes = execFileSync('nsenter', [`--mount=${this.mntNs}`, '--', 'sh', '-c', 'for f in /run/netns/*; do [ -e "$f" ] && stat -L -c %i "$f"; done; true'],
        { encoding: 'utf8', timeout: 10_000 }).split('\n').filter(Boolean);
    } catch { return []; }
    const want = new Set(inodes.map((i) => `net:[${i}]`));
    const pids: number[] = [];
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try { if (want.has(readlinkSync(`/proc/${p}/ns/net`))) pids.push(Number(p)); } catch { /* gone */ }
    }
    return pids;
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    if (this.holder?.pid && this.holder.exitCode === null) {
      try {
        execFileSync('nsenter', [`--net=${this.host.path}`, `--mount=${this.mntNs}`, '--', 'podman', 'rm', '-af', '-t', '0'],
          { env: this.env, stdio: 'ignore', timeout: 60_000 });
      } catch { /* best effort; the sweep below remains */ }
      for (const pid of this.containerPids()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    this.topo.destroySync();
    void this.ds.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    this.destroySync();
  }

  /** What the plugin's own log said (stderr of podman carries plugin errors). */
  readEvents(): string {
    try { return readFileSync(join(this.dir, 'events.log'), 'utf8'); } catch { return ''; }
  }
}
