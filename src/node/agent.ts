/**
 * The tortie-node agent: the composition root of the control plane.
 *
 *   datastore ──Syncer(list+watch, in-sync)──> validate ──> PolicyCalc.onUpdate/onDelete
 *                                                               │ flush (coalesced, bounded)
 *                                                               v
 *                                     Dataplane.apply(delta) / .reconcile(full state)
 *
 * Contract:
 * - Nothing is written to the kernel before the syncer is in sync; then the first apply is a
 *   reconcile of the complete compiled state against what the kernel already holds (pinned maps
 *   from a previous run), which writes only differences and sweeps the rest.
 * - After that, updates are coalesced: a flush happens `flushDelayMs` after the first pending
 *   change (never later than `maxFlushDelayMs` under a continuous stream), and applies run one
 *   at a time. A failed apply is retried with backoff as a full reconcile, so nothing is lost.
 * - Invalid resources in the datastore are logged and treated as absent (fail closed).
 * - stop() stops watching and closes the datastore but leaves every program and map in place:
 *   the datapath keeps enforcing the last state while the agent is down.
 */
import type { Server } from 'node:http';
import { Syncer, RESOURCE_ROOT, parseResourceKey, type Datastore, type SyncUpdate } from '../datastore';
import { checkResource, type FelixConfigurationSpec, type Resource, type ResourceKind } from '../model';
import { kindOfPlural, resourceViewOfKv } from '../client/resources';
import type { CalcDelta, CompiledState } from '../calc/types';
import type { Logger } from '../util/log';
import { BACKOFF, backoffMs } from '../util/retry';
import type { CalcStats, NodeMetrics, StartupPhase } from './metrics';
import { startHttp, type HealthSource } from './http';
import { withoutIpv6 } from '../model/ipv6-off';

/** The calculation graph as the agent drives it (src/calc). */
export interface PolicyCalc {
  onUpdate(resource: Resource): void;
  onDelete(kind: ResourceKind, name: string, namespace?: string): void;
  /** Changes since the last flush, ordered for atomic application. */
  flush(): CalcDelta;
  /** The complete current output (for reconciles). */
  snapshot(): CompiledState;
  /** A flush before snapshot(): the same state change, no delta built (optional for test doubles). */
  flushForSnapshot?(): void;
  /** Figures for felix_active_local_* / felix_cluster_* (optional for test doubles). */
  activityStats?(): CalcStats;
}

/** The kernel side as the agent drives it (src/dataplane). */
export interface Dataplane {
  /**
   * Resolves once the kernel side can be written (programs loaded and attached; optional): the
   * first reconcile waits for it before the calc graph's first flush, so that a dataplane still
   * opening (mostly kernel time) overlaps the datastore list instead of the flush, and is not
   * held up by it — unless lastLoad() says only its last load is left.
   */
  ready?(): Promise<void>;
  /**
   * Resolves when the kernel side, still opening, has only its last load left, running off the
   * main thread (optional; never resolving is fine): if that comes before ready(), the first
   * reconcile compiles its snapshot meanwhile — the compile and the load overlap, and what the
   * open still needs of the main thread afterwards is short. Nothing is written before ready().
   */
  lastLoad?(): Promise<void>;
  /** Brings the kernel to exactly `state` (writes differences, removes what is not wanted). */
  reconcile(state: CompiledState): Promise<void>;
  /** Applies one ordered delta. */
  apply(delta: CalcDelta): Promise<void>;
  /** Periodic housekeeping (conntrack sweep, counters → metrics); called every few seconds. */
  housekeeping?(): Promise<void>;
  close(): Promise<void>;
}

export interface AgentOptions {
  nodeName: string;
  datastore: Datastore;
  calc: PolicyCalc;
  dataplane: Dataplane;
  log: Logger;
  metrics: NodeMetrics;
  health?: { host: string; port: number };
  /** Where /metrics is served: its own listener, or on the health port when the ports are equal. Absent = not served. */
  metricsListen?: { host: string; port: number };
  flushDelayMs?: number;
  maxFlushDelayMs?: number;
  housekeepingMs?: number;
  /**
   * FelixConfiguration while running (src/node/felix-live.ts): every update or delete of one
   * (validated; an invalid one is undefined, i.e. absent), and the moment the syncer is in sync.
   */
  felix?: { update(name: string, spec: FelixConfigurationSpec | undefined): void; inSync(): void };
  /** Felix's ipv6Support (default true); false: resources are compiled without their IPv6 parts (src/model/ipv6-off.ts). */
  ipv6?: boolean;
  /**
   * Called once, half a second after the first successful reconcile (the agent is ready and has
   * answered its health checks), queued like a flush so that none runs meanwhile, with nothing of that reconcile (list, snapshot) referenced any
   * more: run.ts compacts the heap there (src/node/heap.ts). Returns its duration (ms; logged
   * and exported as tortie_node_heap_compact_seconds) or undefined if nothing was done.
   */
  afterFirstSync?: () => number | undefined;
}

/** `Kind namespace/name` (or `Kind name`) of the policy or profile a rule belongs to. */
function policyName(r: CalcDelta['rulesUpserted'][number]): string | undefined {
  if (!r.policy) return undefined;
  return `${r.policy.kind} ${r.policy.namespace ? `${r.policy.namespace}/` : ''}${r.policy.name}`;
}

function isEmptyDelta(d: CalcDelta): boolean {
  return d.classesAdded.length === 0 && d.classesRemoved.length === 0 && d.prefixesUpserted.length === 0 &&
    d.prefixesRemoved.length === 0 && d.tablesAdded.length === 0 && d.tablesRemoved.length === 0 &&
    d.projectionAdded.length === 0 && d.projectionRemoved.length === 0 && d.endpointsUpserted.length === 0 &&
    d.endpointsRemoved.length === 0 && d.rulesUpserted.length === 0 && d.rulesRemoved.length === 0 &&
    !d.prefilterChanged && !d.routingChanged && d.workloadRoutesUpserted.length === 0 && d.workloadRoutesRemoved.length === 0;
}

/** From the first successful reconcile to the after-sync step (AgentOptions.afterFirstSync). */
const AFTER_SYNC_DELAY_MS = 500;

export class Agent implements HealthSource {
  private syncer?: Syncer;
  private servers: Server[] = [];
  private inSync = false;
  private needReconcile = true;
  private firstSyncDone = false;
  private dirtySince?: number;
  /** When the current batch of datastore updates began (performance.now()). */
  private batchStart?: number;
  /** Oldest change (hrtime ms) not yet in the kernel, for the programming-latency histogram. */
  private flushTimer?: NodeJS.Timeout;
  private housekeepingTimer?: NodeJS.Timeout;
  private applying: Promise<void> = Promise.resolve();
  private lastApplyOk = false;
  private lastApplyError?: string;
  private lastLoopAt = Date.now();
  /** Consecutive failed applies: the retry delay (BACKOFF.dataplaneApply) grows with them. */
  private applyFailures = 0;
  private stopped = false;
  private stopping?: Promise<void>;
  private readonly log: Logger;
  private health?: { host: string; port: number };
  private metricsListen?: { host: string; port: number };

  constructor(private readonly o: AgentOptions) {
    this.log = o.log.child({ component: 'agent' });
    this.health = o.health;
    this.metricsListen = o.metricsListen;
  }

  private async listen(): Promise<void> {
    const h = this.health;
    const m = this.metricsListen;
    const shared = h && m && h.port !== 0 && h.port === m.port;
    if (h) this.servers.push(await startHttp(h.host, h.port, shared ? this.o.metrics.registry : undefined, this));
    if (m && !shared) this.servers.push(await startHttp(m.host, m.port, this.o.metrics.registry, undefined));
  }

  /** New health / metrics listeners (FelixConfiguration changed them): the old ones close first. */
  async relisten(health: { host: string; port: number } | undefined, metricsListen: { host: string; port: number } | undefined): Promise<void> {
    const old = this.servers;
    this.servers = [];
    await Promise.all(old.map((srv) => new Promise<void>((r) => srv.close(() => r()))));
    this.health = health;
    this.metricsListen = metricsListen;
    if (!this.stopped) await this.listen();
  }

  /** The end of a start-up phase: recorded in the metrics (first time only) and logged. */
  phase(phase: StartupPhase, extra?: Record<string, unknown>): void {
    const at = this.o.metrics.startupPhase(phase);
    if (at) this.log.info({ phase, wallS: Number(at.wallS.toFixed(3)), cpuS: Number(at.cpuS.toFixed(3)), jsCpuS: at.jsCpuS, ...extra }, 'start-up phase done');
  }

  async start(): Promise<void> {
    await this.listen();
    this.phase('http_up');
    this.syncer = new Syncer(this.o.datastore, RESOURCE_ROOT, {
      onUpdate: (u) => this.onSyncUpdate(u),
      onBatchEnd: (n) => this.onBatchEnd(n),
      onListed: (items) => this.phase('listed', { items }),
      onInSync: (rev) => {
        this.phase('in_sync');
        this.log.info({ revision: rev }, 'datastore in sync');
        this.inSync = true;
        this.o.felix?.inSync();
        this.o.metrics.resyncs.inc();
        this.o.metrics.felix.resyncsStarted.inc();
        this.schedule(0);
      },
      onResync: (rev, reason) => {
        this.log.warn({ revision: rev, reason: reason.message }, 'resynced with the datastore');
        this.o.metrics.resyncs.inc();
        this.o.metrics.felix.resyncsStarted.inc();
        this.schedule(0);
      },
      onStatus: (status, err) => {
        if (status === 'resyncing') this.o.metrics.datastoreReconnects.inc();
        this.log.debug({ status, err: err?.message }, 'syncer status');
      },
    }, { logger: this.log });
    await this.syncer.start();
    this.housekeepingTimer = setInterval(() => void this.housekeeping(), this.o.housekeepingMs ?? 5000);
    this.housekeepingTimer.unref();
  }

  private onSyncUpdate(u: SyncUpdate): void {
    const parsed = parseResourceKey(u.key);
    const kind = parsed && kindOfPlural(parsed.plural);
    if (!parsed || !kind) return;
    this.batchStart ??= performance.now();
    this.feedCalc(u, kind, parsed);
    this.markDirty();
  }

  /**
   * The end of one batch of datastore updates (a slice of the first list, one watch response):
   * felix_calc_graph_update_time_seconds gets one observation per batch, as Felix's calculation
   * graph has per OnUpdates call (one per update cost ~1 s of summary upkeep in a 100,000-item
   * first list).
   */
  private onBatchEnd(updates: number): void {
    this.o.metrics.felix.calcGraphUpdatesProcessed.inc(updates);
    if (this.batchStart === undefined) return;
    this.o.metrics.felix.calcGraphUpdateTime.observe((performance.now() - this.batchStart) / 1000);
    this.batchStart = undefined;
  }

  private feedCalc(u: SyncUpdate, kind: ResourceKind, parsed: { name: string; namespace?: string }): void {
    if (u.type === 'delete') {
      this.o.calc.onDelete(kind, parsed.name, parsed.namespace);
      if (kind === 'FelixConfiguration') this.o.felix?.update(parsed.name, undefined);
    } else {
      const checked = checkResource(resourceViewOfKv(u.kv));
      if (checked.problems !== undefined) {
        this.log.error({ key: u.key, problems: checked.problems }, 'invalid resource in the datastore; treating it as absent');
        this.o.calc.onDelete(kind, parsed.name, parsed.namespace);
      } else {
        const r = this.o.ipv6 === false ? withoutIpv6(checked.resource) : checked.resource;
        if (r === undefined) this.o.calc.onDelete(kind, parsed.name, parsed.namespace);
        else this.o.calc.onUpdate(r);
      }
      if (kind === 'FelixConfiguration') this.o.felix?.update(parsed.name, checked.resource?.kind === 'FelixConfiguration' ? checked.resource.spec : undefined);
      return;
    }
  }

  private markDirty(): void {
    if (this.dirtySince === undefined) this.dirtySince = performance.now();
    if (this.inSync) this.schedule(this.o.flushDelayMs ?? 5);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const maxDelay = this.o.maxFlushDelayMs ?? 100;
    const since = this.dirtySince === undefined ? 0 : performance.now() - this.dirtySince;
    const wait = Math.max(0, Math.min(delayMs, maxDelay - since));
    if (this.flushTimer) {
      if (wait > 0) return; // an earlier flush is already due
      clearTimeout(this.flushTimer);
    }
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.applying = this.applying.then(() => this.flushOnce());
    }, wait);
  }

  private async flushOnce(): Promise<void> {
    if (this.stopped || !this.inSync) return;
    this.lastLoopAt = Date.now();
    const dirtySince = this.dirtySince;
    this.dirtySince = undefined;
    const end = this.o.metrics.applySeconds.startTimer();
    const endFelix = this.o.metrics.felix.intDataplaneApplyTime.startTimer();
    try {
      if (this.needReconcile) {
        let state: CompiledState | undefined;
        if (this.o.dataplane.ready) {
          const ready = this.o.dataplane.ready();
          if (this.o.dataplane.lastLoad) {
            const first = await Promise.race([ready.then(() => 'ready' as const), this.o.dataplane.lastLoad().then(() => 'last load' as const)]);
            if (first === 'last load' && !this.stopped) state = this.compileAll();
          }
          await ready;
          this.phase('dataplane_open');
          if (this.stopped) return;
        }
        await this.reconcileAll(state);
        this.needReconcile = false;
        if (!this.firstSyncDone) {
          this.firstSyncDone = true;
          const after = this.o.afterFirstSync;
          // A moment after ready (the health endpoints answer first), between flushes.
          if (after) {
            setTimeout(() => {
              this.applying = this.applying.then(() => {
                if (this.stopped) return;
                const ms = after();
                this.phase('heap_compacted');
                if (ms === undefined) return;
                this.o.metrics.heapCompactSeconds.set(ms / 1000);
                this.log.info({ ms: Math.round(ms) }, 'heap compacted after the initial sync');
              });
            }, AFTER_SYNC_DELAY_MS).unref();
          }
        }
      } else {
        const delta = this.o.calc.flush();
        if (!isEmptyDelta(delta)) {
          await this.o.dataplane.apply(delta);
          this.logProgrammed(delta);
        }
      }
      if (this.o.calc.activityStats) this.o.metrics.setCalcStats(this.o.calc.activityStats());
      if (dirtySince !== undefined) this.o.metrics.policyProgrammingSeconds.observe((performance.now() - dirtySince) / 1000);
      this.lastApplyOk = true;
      this.lastApplyError = undefined;
      this.applyFailures = 0;
    } catch (e) {
      this.lastApplyOk = false;
      this.lastApplyError = (e as Error).message;
      this.needReconcile = true;
      this.o.metrics.applyFailures.inc({ manager: 'dataplane' });
      this.o.metrics.felix.intDataplaneFailures.inc();
      const wait = backoffMs(BACKOFF.dataplaneApply, this.applyFailures++);
      this.log.error({ err: e, retryMs: wait }, 'dataplane apply failed; will reconcile');
      this.dirtySince = dirtySince ?? performance.now();
      setTimeout(() => this.schedule(0), wait).unref();
    } finally {
      end();
      endFelix();
    }
  }

  /**
   * The whole compiled state: a flush (its delta not built: the snapshot covers it) and the
   * snapshot. Changes arriving after it are flushed as deltas after the reconcile that writes it.
   */
  private compileAll(): CompiledState {
    if (this.o.calc.flushForSnapshot) this.o.calc.flushForSnapshot();
    else this.o.calc.flush();
    const state = this.o.calc.snapshot();
    this.phase('compiled');
    return state;
  }

  /**
   * The whole compiled state (`compiled`, or compiled now) into the kernel (a separate frame:
   * nothing of it outlives the call).
   */
  private async reconcileAll(compiled?: CompiledState): Promise<void> {
    const state = compiled ?? this.compileAll();
    await this.o.dataplane.reconcile(state);
    this.phase('kernel_written');
    this.o.metrics.endpoints.set(state.endpoints.length);
    this.o.metrics.inSync.set(1);
    this.log.info({ endpoints: state.endpoints.length, tables: state.tables.length, policies: new Set(state.rules.map(policyName).filter(Boolean)).size }, 'kernel reconciled with the datastore');
  }

  /** Info lines for what a delta put into (or took out of) the kernel, as Felix logs its updates. */
  private logProgrammed(d: CalcDelta): void {
    for (const ep of d.endpointsUpserted) {
      this.log.info({ endpoint: ep.key, interface: ep.interfaceName, ipNetworks: ep.ipNetworks, tables: ep.tables }, 'endpoint programmed');
    }
    for (const key of d.endpointsRemoved) this.log.info({ endpoint: key }, 'endpoint removed');
    const policies = new Map<string, number>();
    for (const r of d.rulesUpserted) {
      const name = policyName(r);
      if (name) policies.set(name, (policies.get(name) ?? 0) + 1);
    }
    for (const [policy, rules] of policies) this.log.info({ policy, rules }, 'policy programmed');
  }

  private async housekeeping(): Promise<void> {
    this.lastLoopAt = Date.now();
    try {
      await this.o.dataplane.housekeeping?.();
    } catch (e) {
      this.log.warn({ err: e }, 'housekeeping failed');
    }
  }

  /** Resolves when every change received so far has been applied (for tests and benchmarks). */
  async settled(): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      await this.applying;
      if (this.dirtySince === undefined && !this.flushTimer) return;
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** The listeners: health first (when configured), then metrics (tests use port 0). */
  get listeners(): readonly Server[] { return this.servers; }

  live(): { ok: boolean; detail: string } {
    const age = Date.now() - this.lastLoopAt;
    const limit = Math.max(60_000, (this.o.housekeepingMs ?? 5000) * 6);
    return { ok: age < limit, detail: `last loop ${age} ms ago` };
  }

  ready(): { ok: boolean; detail: string } {
    if (!this.inSync) return { ok: false, detail: 'not yet in sync with the datastore' };
    if (this.needReconcile && !this.lastApplyOk) return { ok: false, detail: this.lastApplyError ?? 'first apply pending' };
    if (!this.lastApplyOk) return { ok: false, detail: `last apply failed: ${this.lastApplyError}` };
    return { ok: true, detail: 'in sync, kernel programmed' };
  }

  /** Graceful stop: the datapath keeps enforcing the last state. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer);
    await this.syncer?.stop();
    await this.applying.catch(() => undefined);
    await Promise.all(this.servers.map((srv) => new Promise<void>((r) => srv.close(() => r()))));
    await this.o.dataplane.close();
    await this.o.datastore.close();
  }
}
