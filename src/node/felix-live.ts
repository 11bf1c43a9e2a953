/**
 * FelixConfiguration while tortie-node runs: `default` and `node.<name>` are watched (the
 * agent's syncer hands every update here) and each change is applied the way its setting allows.
 *
 *   Agent syncer ──update(name, spec)──> FelixLive ──withFelixConfiguration(base, [node, default])
 *                 ──inSync()────────────>     │ compare with the settings in force
 *                                             ├─ live: log levels, health/metrics listeners,
 *                                             │        IPIP MTU (routes, netcfg, MTU file), natOutgoingAddress
 *                                             └─ restart: restart(reason) → tortie-node exits 129
 *
 * Contract:
 * - Precedence is Felix's (src/node/config.ts): flags and environment (`base`, fixed at start-up)
 *   over `node.<name>` over `default` over tortie's defaults; a change to a setting the
 *   environment fixes changes nothing.
 * - Nothing is evaluated before the syncer is in sync (the initial listing would otherwise
 *   show `default` alone for a moment); then every update is evaluated at once.
 * - Live settings are applied in place and logged with the old and new value. Felix restarts
 *   itself for every changed field (daemon.go: exit code 129, its init restarts it); tortie does
 *   so only for the settings that are load-time constants of the BPF programs or sizes of pinned
 *   maps (FELIX_HONOURED's `restart` ones): the change is logged naming the field, then
 *   `restart` is called once. tortie-node then stops gracefully (the datapath keeps enforcing)
 *   and exits 129; systemd's Restart=always starts it with the new value.
 * - A value that cannot be applied (a bad log level written by another tool, a port in use) is
 *   logged as an error and the previous setting stays in force.
 */
import { FELIX_HONOURED, unenforcedProblems, type FelixConfigurationSpec } from '../model';
import type { MtuOptions } from '../dataplane/routing';
import type { Logger } from '../util/log';
import { withFelixConfiguration, type NodeConfig } from './config';

/** Felix's exit code for "configuration changed, restart me" (SIGHUP's). */
export const CONFIG_CHANGED_EXIT_CODE = 129;

export interface LiveTargets {
  setLogLevels(screen: string, file: string): boolean;
  relisten(health: { host: string; port: number } | undefined, metrics: { host: string; port: number } | undefined): Promise<void>;
  routes?: { setMtu(m: MtuOptions): void; setNatOutgoingAddress(ip: string): void; apply(): Promise<void> };
  restart(reason: string): void;
}

/** A NodeConfig setting FelixConfiguration reaches, its FelixConfiguration field(s), and how it changes. */
interface Setting { field: string; fields: readonly string[]; value(c: NodeConfig): unknown; live: boolean }

/** Live when every one of its fields is, as src/model/felix-fields.ts says. */
const group = (field: string, fields: readonly string[], value: (c: NodeConfig) => unknown): Setting =>
  ({ field, fields, value, live: fields.every((f) => FELIX_HONOURED[f] === 'live') });
const one = (field: string, value: (c: NodeConfig) => unknown): Setting => group(field, [field], value);

const SETTINGS: readonly Setting[] = [
  one('logSeverityScreen', (c) => c.logLevel),
  one('logSeverityFile', (c) => c.logLevelFile),
  group('health', ['healthEnabled', 'healthPort', 'healthHost'], (c) => `${c.healthHost}:${c.healthPort}`),
  group('metrics', ['prometheusMetricsEnabled', 'prometheusMetricsPort', 'prometheusMetricsHost'], (c) => (c.metricsEnabled ? `${c.metricsHost}:${c.metricsPort}` : 'off')),
  one('ipipMTU', (c) => c.ipipMtu),
  one('mtuIfacePattern', (c) => c.mtuIfacePattern),
  one('natOutgoingAddress', (c) => c.natOutgoingAddress),
  one('vxlanMTU', (c) => c.vxlanMtu),
  one('vxlanMTUV6', (c) => c.vxlanMtuV6),
  one('vxlanPort', (c) => c.vxlanPort),
  one('vxlanVNI', (c) => c.vxlanVni),
  one('ipv6Support', (c) => c.ipv6Support),
  one('interfacePrefix', (c) => c.interfacePrefix),
  one('natPortRange', (c) => `${c.nat.portMin}:${c.nat.portMax}`),
  one('bpfMapSizeConntrack', (c) => c.ct.maxEntries),
  one('bpfConntrackTimeouts', (c) => JSON.stringify(c.ct.timeouts)),
  one('defaultEndpointToHostAction', (c) => c.endpointToHostAction),
  one('failsafeInboundHostPorts', (c) => JSON.stringify(c.failsafe.inbound)),
  one('failsafeOutboundHostPorts', (c) => JSON.stringify(c.failsafe.outbound)),
];
// Every honoured field has its row; a row's fields change the same way (all live or all restart).
for (const [f, how] of Object.entries(FELIX_HONOURED)) {
  const s = SETTINGS.find((x) => x.fields.includes(f));
  if (!s || s.live !== (how === 'live')) throw new Error(`felix-live: ${f} is ${how} in src/model/felix-fields.ts but ${s ? 'not here' : 'missing here'}`);
}

/** The health and metrics listeners a config asks for (as runAgent starts them). */
export function listenersOf(c: NodeConfig): { health?: { host: string; port: number }; metrics?: { host: string; port: number } } {
  return {
    health: c.healthPort ? { host: c.healthHost, port: c.healthPort } : undefined,
    metrics: c.metricsEnabled && c.metricsPort ? { host: c.metricsHost, port: c.metricsPort } : undefined,
  };
}

export class FelixLive {
  private node?: FelixConfigurationSpec;
  private default?: FelixConfigurationSpec;
  private synced = false;
  private restarting = false;
  private readonly log: Logger;
  private chain: Promise<void> = Promise.resolve();

  /** base: flags and environment only (resolveConfig); current: what is in force (effectiveConfig). */
  constructor(private readonly base: NodeConfig, private current: NodeConfig, private readonly targets: LiveTargets, log: Logger) {
    this.log = log.child({ component: 'felix-config' });
  }

  /** The settings in force. */
  get config(): NodeConfig { return this.current; }

  update(name: string, spec: FelixConfigurationSpec | undefined): void {
    if (name === 'default') this.default = spec;
    else if (name === `node.${this.base.nodeName}`) this.node = spec;
    else return;
    if (spec && this.synced) { // the initial listing was checked by effectiveConfig at start-up
      const ignored = unenforcedProblems({ apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name }, spec });
      if (ignored.length > 0) this.log.warn({ name, fields: ignored.map((p) => p.path) }, 'FelixConfiguration fields tortie does not implement are ignored');
    }
    if (this.synced) this.evaluate();
  }

  inSync(): void {
    this.synced = true;
    this.evaluate();
  }

  /** Resolves when the live changes scheduled so far are applied (tests). */
  settled(): Promise<void> { return this.chain; }

  private evaluate(): void {
    if (this.restarting) return;
    let next: NodeConfig;
    try {
      next = withFelixConfiguration(this.base, [this.node, this.default]).config;
    } catch (e) {
      this.log.error({ err: e }, 'FelixConfiguration cannot be applied; the settings in force stay');
      return;
    }
    const prev = this.current;
    const changed = SETTINGS.filter((s) => s.value(prev) !== s.value(next));
    if (changed.length === 0) return;
    const restart = changed.filter((s) => !s.live);
    if (restart.length > 0) {
      this.restarting = true;
      for (const s of restart) {
        this.log.warn({ field: s.field, from: s.value(prev), to: s.value(next) }, 'FelixConfiguration changed a setting the BPF programs are loaded with: tortie-node restarts to apply it (exit 129, as Felix)');
      }
      this.targets.restart(`FelixConfiguration changed ${restart.map((s) => s.field).join(', ')}`);
      return;
    }
    this.current = next;
    for (const s of changed) this.log.info({ field: s.field, from: s.value(prev), to: s.value(next) }, 'FelixConfiguration change applied without restart');
    const has = (f: string) => changed.some((s) => s.field === f);
    if (has('logSeverityScreen') || has('logSeverityFile')) {
      if (!this.targets.setLogLevels(next.logLevel, next.logLevelFile)) {
        this.log.warn({ screen: next.logLevel, file: next.logLevelFile }, 'this log level needs a restart (trace, or a file the agent was started without)');
      }
    }
    const work: (() => Promise<void>)[] = [];
    if (has('health') || has('metrics')) {
      const l = listenersOf(next);
      work.push(() => this.targets.relisten(l.health, l.metrics));
    }
    const routes = this.targets.routes;
    if (routes && (has('ipipMTU') || has('vxlanMTU') || has('vxlanMTUV6') || has('mtuIfacePattern') || has('natOutgoingAddress'))) {
      routes.setMtu({ ipipMtu: next.ipipMtu, vxlanMtu: next.vxlanMtu, vxlanMtuV6: next.vxlanMtuV6, ifacePattern: next.mtuIfacePattern, file: next.mtuFile || undefined });
      routes.setNatOutgoingAddress(next.natOutgoingAddress);
      work.push(() => routes.apply());
    }
    for (const w of work) {
      this.chain = this.chain.then(w).catch((e: unknown) => { this.log.error({ err: e }, 'applying a FelixConfiguration change failed'); });
    }
  }
}
