/**
 * `tortie-node run`: composes the agent from its configuration and runs it until SIGTERM/SIGINT.
 *
 *   config ─> logger, metrics ─> datastore ─> Node registration (address with its subnet)
 *          ─> CalcGraph (src/calc) + BpfDataplane (src/dataplane) ─> Agent.start() ─> wait
 *
 * A signal stops the agent gracefully: the datapath keeps enforcing the last state.
 */
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { compactHeap } from './heap';
import { AlreadyExistsError, ConflictError, assertNoPreCalicoLayout, openDatastore, type Datastore, type DatastoreConfig } from '../datastore';
import { casLoop } from '../datastore/cas';
import { ResourceClient } from '../client/resources';
import { CalcGraph } from '../calc/graph';
import { unenforcedProblems, type Node } from '../model';
import { BpfDataplane } from '../dataplane/dataplane';
import { createAgentLogger, createFlowLogger, setAgentLogLevels, type Logger } from '../util/log';
import { CONFIG_CHANGED_EXIT_CODE, FelixLive, listenersOf, type LiveTargets } from './felix-live';
import { Agent, type Dataplane } from './agent';
import type { NodeConfig } from './config';
import { ConfigError, withFelixConfiguration } from './config';
import { NodeMetrics } from './metrics';
import { birdDir } from './bird-dir';
import { BirdDaemon } from '../bgp/bird';
import { BgpDriver } from '../bgp/driver';
import { LearnedRoutes, showLearnedTables } from '../bgp/learned';
import { ensureClusterInformation } from './cluster-info';
import { VERSION } from '../version';
import { detectNodeAddress, readInterfaces, AutodetectError, type DetectedAddress } from '../net/autodetect';

export function datastoreConfig(c: NodeConfig): DatastoreConfig {
  return c.datastoreType === 'etcdv3'
    ? { type: 'etcdv3', endpoints: c.etcd.endpoints, caFile: c.etcd.caFile, certFile: c.etcd.certFile, keyFile: c.etcd.keyFile }
    : { type: 'embedded', dir: c.storeDir };
}

/**
 * The agent's view of a BpfDataplane that may still be opening: writes wait for it (`ready`
 * before the first reconcile), housekeeping skips until it is open, close waits for the open to
 * settle (a failed open has nothing to close).
 */
export function dataplaneAdapter(opening: Promise<BpfDataplane>, metrics: NodeMetrics, lastLoad?: Promise<void>): Dataplane {
  let dp: BpfDataplane | undefined;
  void opening.then((d) => { dp = d; }, () => undefined);
  return {
    ready: async () => { await opening; },
    ...(lastLoad ? { lastLoad: () => lastLoad } : {}),
    reconcile: async (s) => (await opening).reconcile(s),
    apply: async (d) => (await opening).apply(d),
    housekeeping: async () => {
      if (dp === undefined) return;
      const st = dp.housekeeping();
      metrics.recordConntrackSweep({ live: st.conntrackEntries, ...st.conntrackSweep });
      metrics.endpoints.set(st.endpointsProgrammed);
      for (const [reason, n] of Object.entries(st.drops)) metrics.drops.set({ reason }, Number(n));
      for (const [map, n] of Object.entries(st.mapEntries)) metrics.mapEntries.set({ map }, n);
      for (const [outcome, n] of Object.entries(st.events)) metrics.flowEvents.set({ outcome }, n);
      if (st.nat) metrics.recordNat(st.nat);
      if (st.nat6) metrics.recordNat(st.nat6, 6);
      metrics.recordConntrack(st.conntrack);
      metrics.recordHostRouting(st.hostRouting);
    },
    close: async () => {
      const d = await opening.catch(() => undefined);
      await d?.close();
    },
  };
}

/** FelixLive's route target before the dataplane is open: each call goes to the route manager, in order, once it is. */
function routesOnceOpen(opening: Promise<BpfDataplane>): NonNullable<LiveTargets['routes']> {
  const routes = opening.then((d) => d.routing);
  const later = (f: (r: NonNullable<BpfDataplane['routing']>) => void): void => void routes.then((r) => { if (r) f(r); }, () => undefined);
  return {
    setMtu: (m) => later((r) => r.setMtu(m)),
    setNatOutgoingAddress: (ip) => later((r) => r.setNatOutgoingAddress(ip)),
    apply: async () => { await (await routes)?.apply(); },
  };
}

/**
 * Creates or updates this node's Node resource: keeps everything else a user set, writes the
 * addresses (with their subnets; `spec.bgp.ipv4Address`, `spec.bgp.ipv6Address`, as calico/node)
 * when they changed. An address not given (IP=none, IP6 none or unset) leaves the stored one as
 * it is. Retries on a concurrent update.
 */
export async function registerNode(client: ResourceClient, name: string, ipv4: string | undefined, log: Logger, ipv6?: string): Promise<Node> {
  const addrs: { ipv4Address?: string; ipv6Address?: string } = {};
  if (ipv4) addrs.ipv4Address = ipv4;
  if (ipv6) addrs.ipv6Address = ipv6;
  return casLoop(async () => {
    const cur = await client.get('Node', name);
    if (!cur) {
      const node: Node = { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name }, spec: ipv4 || ipv6 ? { bgp: addrs } : {} } as Node;
      const created = await client.create(node);
      log.info({ node: name, ipv4, ipv6 }, 'registered node');
      return created;
    }
    const bgp = cur.spec?.bgp;
    if ((!ipv4 || bgp?.ipv4Address === ipv4) && (!ipv6 || bgp?.ipv6Address === ipv6)) return cur;
    const next = structuredClone(cur);
    next.spec = { ...(next.spec ?? {}), bgp: { ...(next.spec?.bgp ?? {}), ...addrs } };
    const updated = await client.update(next);
    log.info({ node: name, ipv4, ipv6, previous: { ipv4: bgp?.ipv4Address, ipv6: bgp?.ipv6Address } }, 'updated node address');
    return updated;
  }, { attempts: 6, conflicts: [AlreadyExistsError, ConflictError] });
}

export interface RunningAgent {
  agent: Agent;
  bgp?: BgpDriver;
  learned?: LearnedRoutes;
  datastore: Datastore;
  dataplane: BpfDataplane;
  metrics: NodeMetrics;
  /** FelixConfiguration while running: the settings in force. */
  felix: FelixLive;
  stop(): Promise<void>;
}

/** The node address with its subnet and the interface holding it (none in policy-only mode). */
export async function resolveNodeAddress(c: NodeConfig): Promise<DetectedAddress | undefined> {
  if (c.ip === 'none' || c.policyOnly) return undefined;
  try {
    return await detectAddressAndInterface(c.ip, c.ipAutodetectionMethod);
  } catch (e) {
    if (e instanceof AutodetectError) throw new ConfigError(e.message);
    throw e;
  }
}

/** The node's IPv6 address per IP6 / IP6_AUTODETECTION_METHOD (undefined with IP6 none, or in policy-only mode). */
export async function resolveNodeAddress6(c: NodeConfig): Promise<DetectedAddress | undefined> {
  if (c.ip6 === 'none' || c.policyOnly) return undefined;
  try {
    return await detectNodeAddress(c.ip6, c.ip6AutodetectionMethod, { family: 6 });
  } catch (e) {
    if (e instanceof AutodetectError) throw new ConfigError(`IP6: ${e.message}`);
    throw e;
  }
}

/** detectNodeAddress, plus the interface holding an explicit ADDR/PREFIX (the uplink), if any. */
export async function detectAddressAndInterface(ip: string, method: string): Promise<DetectedAddress> {
  const d = await detectNodeAddress(ip, method);
  if (d.ifname !== '') return d;
  const holder = (await readInterfaces()).find((e) => e.addr_info.some((a) => a.family === 'inet' && a.local === d.ip));
  return holder ? { ...d, ifname: holder.ifname } : d;
}

/** FelixConfiguration node.<name> and default, applied under flags and environment (Felix's precedence). */
export async function effectiveConfig(client: ResourceClient, c: NodeConfig, log: Logger): Promise<NodeConfig> {
  const nodeSpec = (await client.get('FelixConfiguration', `node.${c.nodeName}`))?.spec;
  const defaultSpec = (await client.get('FelixConfiguration', 'default'))?.spec;
  for (const r of [nodeSpec, defaultSpec]) {
    if (r === undefined) continue;
    // Written by something other than tortie (Calico's own tools on a shared etcd): say what is ignored.
    const ignored = unenforcedProblems({ apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'x' }, spec: r });
    if (ignored.length > 0) log.warn({ fields: ignored.map((p) => p.path) }, 'FelixConfiguration fields tortie does not implement are ignored');
  }
  const { config, from } = withFelixConfiguration(c, [nodeSpec, defaultSpec]);
  if (Object.keys(from).length > 0) log.info({ from }, 'settings from FelixConfiguration');
  if (config.logLevel !== c.logLevel || config.logLevelFile !== c.logLevelFile) setAgentLogLevels(log, config.logLevel, c.logFile ? config.logLevelFile : undefined);
  return config;
}

export interface AgentHooks {
  /** A FelixConfiguration change needs a restart (runAgent exits 129); absent: only logged. */
  restart?(reason: string): void;
  /** Once the first sync is written, before the heap is compacted (runAgent: the steady heap headroom). */
  afterFirstSync?(): void;
}

export async function startAgent(given: NodeConfig, log: Logger, hooks: AgentHooks = {}): Promise<RunningAgent> {
  let c = given;
  const metrics = new NodeMetrics();
  const datastore = openDatastore(datastoreConfig(c), log);
  try {
    await assertNoPreCalicoLayout(datastore);
    const client = new ResourceClient(datastore);
    const detected = await resolveNodeAddress(c);
    if (detected) log.info({ address: detected.address, interface: detected.ifname, method: detected.method }, 'node address');
    const detected6 = await resolveNodeAddress6(c);
    if (detected6) log.info({ address: detected6.address, interface: detected6.ifname, method: detected6.method }, 'node IPv6 address');
    await registerNode(client, c.nodeName, detected?.address, log, detected6?.address);
    await ensureClusterInformation(client, `v${VERSION}`, c.clusterType, log);
    c = await effectiveConfig(client, c, log);
    if (!c.ipv6Support) log.warn({ ipv6Support: false }, "IPv6 is not programmed (ipv6Support false): workloads' IPv6 traffic is dropped, no IPv6 routes, NAT66 or BGP");
    const graph = new CalcGraph({ nodeName: c.nodeName, logger: log.child({ component: 'calc' }) });
    // Flow logs: their own file or stdout when configured, else in the main log.
    const flowLog = c.flowLogFile ? createFlowLogger(c.flowLogFile) : log;
    // The programs load and attach (BPF verification and tc: kernel time, off the main thread)
    // while the agent lists the datastore and feeds the calc graph; its first reconcile waits for
    // them (dataplaneAdapter's ready) and nothing is written to the kernel before. A failed open
    // stops the agent below.
    // Its last BPF load started (verification on a worker thread, ~5 s at start-up under load):
    // the agent's first compile may overlap it (Dataplane.lastLoad).
    let lastLoadStarted!: () => void;
    const lastLoad = new Promise<void>((r) => { lastLoadStarted = r; });
    const opening = BpfDataplane.open({
      pinRoot: c.bpffsRoot, interfacePrefix: c.interfacePrefix, uplink: c.uplink || detected?.ifname || undefined, log,
      routing: {
        nat: c.nat, ...(c.bgp ? { routeSource: c.routeSource } : {}), natOutgoingAddress: c.natOutgoingAddress,
        mtu: { ipipMtu: c.ipipMtu, vxlanMtu: c.vxlanMtu, vxlanMtuV6: c.vxlanMtuV6, ifacePattern: c.mtuIfacePattern, file: c.mtuFile || undefined },
        vxlan: { vni: c.vxlanVni, port: c.vxlanPort },
      },
      ctMaxEntries: c.ct.maxEntries, mapSizes: c.mapSizes, ctQuota: c.ct.quota, ctTimeouts: c.ct.timeouts,
      endpointToHostAction: c.endpointToHostAction, hostRouting: c.hostRouting,
      failsafe: c.failsafe,
      onFlow: (flow) => flowLog.info({ flow }, flow.kind === 'log' ? 'policy log' : 'flow denied'),
      onLastLoad: () => lastLoadStarted(),
    });
    opening.catch(() => undefined); // awaited below
    const listeners = listenersOf(c);
    let agent: Agent | undefined;
    const felix = new FelixLive(given, c, {
      setLogLevels: (screen, file) => setAgentLogLevels(log, screen, c.logFile ? file : undefined),
      relisten: (h, m) => agent!.relisten(h, m),
      routes: routesOnceOpen(opening),
      restart: (reason) => (hooks.restart ? hooks.restart(reason) : log.warn({ reason }, 'restart tortie-node to apply this change')),
    }, log);
    agent = new Agent({
      nodeName: c.nodeName, datastore, calc: graph, dataplane: dataplaneAdapter(opening, metrics, lastLoad), log, metrics,
      health: listeners.health, metricsListen: listeners.metrics, felix, ipv6: c.ipv6Support,
      afterFirstSync: () => { hooks.afterFirstSync?.(); return compactHeap(); },
    });
    // When the programs are loaded and attached (beside the list; the agent's first reconcile waits for it).
    opening.then(() => agent?.phase('dataplane_open'), () => undefined);
    try {
      await agent.start();
    } catch (e) {
      await opening.then((d) => d.close(), () => undefined).catch(() => undefined);
      throw e;
    }
    let dataplane: BpfDataplane;
    try {
      dataplane = await opening;
    } catch (e) {
      await agent.stop().catch(() => undefined);
      throw e;
    }
    let started: Awaited<ReturnType<typeof startBgp>> | undefined;
    try {
      started = c.bgp ? await startBgp(c, datastore, dataplane, log) : undefined;
    } catch (e) {
      await agent.stop();
      throw e;
    }
    const { bgp, learned } = started ?? {};
    const stop = async (): Promise<void> => {
      learned?.stop();
      // bird shuts down for a graceful restart: peers keep this node's routes, the kernel keeps
      // bird's, and the next agent's bird (-R) picks the sessions up again.
      await bgp?.stop('graceful');
      await agent.stop();
    };
    return { agent, bgp, learned, datastore, dataplane, metrics, felix, stop };
  } catch (e) {
    await datastore.close().catch(() => undefined);
    throw e;
  }
}

/** bird2 driven from the datastore; with routeSource bgp, its learned routes feed the route manager. */
async function startBgp(c: NodeConfig, datastore: Datastore, dataplane: BpfDataplane, log: Logger): Promise<{ bgp: BgpDriver; learned?: LearnedRoutes }> {
  const bird = new BirdDaemon({ dir: birdDir(process.env.TORTIE_RUN_DIR || '/run/tortie', c.nodeName), log });
  let learned: LearnedRoutes | undefined;
  const bgp = new BgpDriver({ nodeName: c.nodeName, datastore, bird, log, secretsDir: c.bgpSecretsDir, onRender: () => learned?.kick(), ipv6: c.ipv6Support });
  await bgp.start();
  const routes = dataplane.routing;
  if (c.routeSource === 'bgp' && routes) {
    learned = new LearnedRoutes({
      showRoutes: () => showLearnedTables((args) => bird.birdc(args)),
      nodeOfAddress: (ip) => bgp.nodeOfAddress(ip),
      onRoutes: (learnt) => {
        // ipv6Support false: no IPv6 routes, learnt ones included.
        const m = c.ipv6Support ? learnt : new Map([...learnt].filter(([cidr]) => !cidr.includes(':')));
        routes.setLearnedRoutes(m);
        routes.apply().catch(() => undefined); // logged and retried by the route manager
        log.debug({ routes: m.size }, 'learned routes');
      },
      log,
    });
    await learned.start();
  }
  return { bgp, learned };
}

/**
 * Bounds the V8 heap's headroom (NodeConfig.heapGrowingPercent). V8 reads this flag each time it
 * sets the next full-collection limit, so setting it at run time takes effect (runAgent: after the
 * first sync); NODE_OPTIONS or a command-line --heap-growing-percent given to node itself wins.
 */
export function applyHeapGrowing(percent: number, execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  if (percent <= 0) return false;
  if ([...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return false;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  return true;
}

/**
 * The CNI plugins' server in this process (src/cni/server.ts; Cilium's agent serves its plugin
 * the same way): the installed wrappers hand it ADD/DEL/CHECK instead of starting a plugin
 * process each, and calls naming the agent's own datastore share its connection. Optional: a
 * socket that cannot be served (another server listens there, a bad directory) is logged and
 * the wrappers keep starting plugin processes.
 */
export async function startCni(c: NodeConfig, running: Pick<RunningAgent, 'datastore'>, log: Logger): Promise<{ stop(): Promise<void> } | undefined> {
  if (!c.cniSocket) return undefined;
  const cniLog = log.child({ component: 'cni-server' });
  try {
    const { startCniServer, stopCniServer } = await import('../cni/server');
    const server = await startCniServer(c.cniSocket, {
      stores: [[datastoreConfig(c), running.datastore]],
      spawnHelper: true,
      onError: (err, what) => cniLog.warn({ err }, what),
    });
    cniLog.info({ socket: c.cniSocket }, 'serving the CNI plugins');
    return { stop: () => stopCniServer(server) };
  } catch (e) {
    cniLog.warn({ err: e, socket: c.cniSocket }, 'not serving the CNI plugins (the installed wrappers start a plugin process per call)');
    return undefined;
  }
}

export async function runAgent(c: NodeConfig): Promise<number> {
  const log = createAgentLogger({
    name: 'tortie-node', screen: { level: c.logLevel, format: c.logFormat },
    file: c.logFile ? { path: c.logFile, level: c.logLevelFile } : undefined,
  });
  // The configured headroom applies once the first sync is written (AgentHooks.afterFirstSync),
  // before the compaction after it; until then V8's own. The first build grows the heap from
  // nothing to its working set (~400 MiB live at 100,000 endpoints × 2,000 policies), and under a
  // 20 % headroom each step of that growth was a full collection (25 until ready there, marked on
  // V8's helper threads: ~5 s of the agent's CPU to ready, docs/benchmarks.md "Sync pipeline
  // (8 Dec)", session 2). The compaction leaves the heap at its live size, so the RSS after the
  // sync is the same; the peak during it is higher.
  const runDir = c.runDir;
  const pidFile = `${runDir}/${c.nodeName}.pid`;
  // What operators' tools need to find this agent (tortiectl node status / diags).
  const stateFile = `${runDir}/${c.nodeName}.state.json`;
  let running: RunningAgent;
  let restartFor: (reason: string) => void = () => undefined;
  const restart = new Promise<string>((resolve) => { restartFor = resolve; });
  try {
    running = await startAgent(c, log, {
      restart: (reason) => restartFor(reason),
      afterFirstSync: () => { applyHeapGrowing(c.heapGrowingPercent); },
    });
  } catch (e) {
    log.fatal({ err: e }, 'agent failed to start');
    return 1;
  }
  try {
    mkdirSync(runDir, { recursive: true });
    writeFileSync(pidFile, `${process.pid}\n`);
    writeFileSync(stateFile, JSON.stringify({
      pid: process.pid, node: c.nodeName, healthHost: c.healthHost, healthPort: c.healthPort,
      metricsHost: c.metricsHost, metricsPort: c.metricsEnabled ? c.metricsPort : 0, bpffsRoot: c.bpffsRoot,
      logFile: c.logFile || undefined, flowLogFile: c.flowLogFile || undefined, datastoreType: c.datastoreType,
    }) + '\n');
  } catch (e) {
    log.warn({ err: e, pidFile }, 'could not write the pid file');
  }
  const cni = await startCni(c, running, log);
  log.info({ node: c.nodeName }, 'tortie-node running');
  const stopFor = await Promise.race([
    new Promise<{ signal: NodeJS.Signals }>((resolve) => {
      process.once('SIGTERM', () => resolve({ signal: 'SIGTERM' }));
      process.once('SIGINT', () => resolve({ signal: 'SIGINT' }));
    }),
    restart.then((reason) => ({ restart: reason })),
  ]);
  log.info(stopFor, 'stopping; the datapath keeps enforcing the last state');
  if (cni) await cni.stop();
  await running.stop();
  rmSync(pidFile, { force: true });
  rmSync(stateFile, { force: true });
  // Felix's code for "configuration changed": its init (here systemd, Restart=always) starts it again.
  return 'restart' in stopFor ? CONFIG_CHANGED_EXIT_CODE : 0;
}
