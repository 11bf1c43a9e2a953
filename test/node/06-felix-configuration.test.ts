// FelixConfiguration read by tortie-node at start-up, under flags and environment (Felix's
// precedence: environment > node.<name> > default > built-in), over the real embedded store.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatastore } from '../../src/datastore';
import { ResourceClient } from '../../src/client/resources';
import { resolveConfig, withFelixConfiguration } from '../../src/node/config';
import { CALICO_CT_TIMEOUTS } from '../../src/dataplane/bpf/conntrack';
import { effectiveConfig } from '../../src/node/run';
import { FelixLive } from '../../src/node/felix-live';
import { createAgentLogger, createLogger, setAgentLogLevels, silentLogger } from '../../src/util/log';
import type { Resource } from '../../src/model';

const felix = (name: string, spec: Record<string, unknown>): Resource =>
  ({ apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name }, spec } as Resource);

t.test('precedence: environment over node.<name> over default over built-in', async (t) => {
  const base = resolveConfig({ nodeName: 'n1' }, {});
  t.same(base.explicit, []);
  const def = { logSeverityScreen: 'Warning', healthPort: 9100, interfacePrefix: 'tap', healthHost: '127.0.0.2' };
  const node = { healthPort: 9200 };
  const r = withFelixConfiguration(base, [node, def]);
  t.same([r.config.logLevel, r.config.healthPort, r.config.interfacePrefix, r.config.healthHost], ['warn', 9200, 'tap', '127.0.0.2']);
  t.same(r.from, { logLevel: 'FelixConfiguration default', healthHost: 'FelixConfiguration default', healthPort: 'FelixConfiguration node.n1', interfacePrefix: 'FelixConfiguration default' });

  const env = resolveConfig({ nodeName: 'n1' }, { FELIX_HEALTHPORT: '9300', FELIX_LOGSEVERITYSCREEN: 'Error', FELIX_INTERFACEPREFIX: 'veth' });
  t.same(env.explicit.sort(), ['healthPort', 'interfacePrefix', 'logLevel']);
  const e = withFelixConfiguration(env, [node, def]);
  t.same([e.config.logLevel, e.config.healthPort, e.config.interfacePrefix, e.config.healthHost], ['error', 9300, 'veth', '127.0.0.2'], 'the environment wins');
  t.equal(withFelixConfiguration(base, [undefined, { healthEnabled: false }]).config.healthPort, 0, 'healthEnabled: false turns the endpoints off');
  t.equal(withFelixConfiguration(base, [undefined, undefined]).config.healthPort, base.healthPort, 'nothing stored: built-in defaults');
  const nat = withFelixConfiguration(base, [{ bpfMapSizeConntrack: 524288 }, { natPortRange: '32768:40000' }]).config;
  t.same([nat.nat.portMin, nat.nat.portMax, nat.ct.maxEntries], [32768, 40000, 524288], 'natPortRange and the conntrack table size');
  const natEnv = resolveConfig({ nodeName: 'n1' }, { FELIX_NATPORTRANGE: '1000:2000', TORTIE_CT_MAX_ENTRIES: '65536' });
  const ne = withFelixConfiguration(natEnv, [{ bpfMapSizeConntrack: 524288 }, { natPortRange: '32768:40000' }]).config;
  t.same([ne.nat.portMin, ne.nat.portMax, ne.ct.maxEntries], [1000, 2000, 65536], 'the environment wins for those too');
});

t.test('defaultEndpointToHostAction: Drop by default, FelixConfiguration, FELIX_DEFAULTENDPOINTTOHOSTACTION wins', async (t) => {
  const base = resolveConfig({ nodeName: 'n1' }, {});
  t.equal(base.endpointToHostAction, 'Drop', "Calico's default");
  const r = withFelixConfiguration(base, [{ defaultEndpointToHostAction: 'Return' }, { defaultEndpointToHostAction: 'Accept' }]);
  t.same([r.config.endpointToHostAction, r.from.endpointToHostAction], ['Return', 'FelixConfiguration node.n1'], 'node.<name> over default');
  t.equal(withFelixConfiguration(base, [undefined, { defaultEndpointToHostAction: 'Accept' }]).config.endpointToHostAction, 'Accept');
  const env = resolveConfig({ nodeName: 'n1' }, { FELIX_DEFAULTENDPOINTTOHOSTACTION: 'accept' });
  t.equal(env.endpointToHostAction, 'Accept', 'any case, as Felix');
  t.equal(withFelixConfiguration(env, [{ defaultEndpointToHostAction: 'Drop' }, undefined]).config.endpointToHostAction, 'Accept', 'the environment wins');
  t.equal(resolveConfig({ nodeName: 'n1', defaultEndpointToHostAction: 'Return' }, { FELIX_DEFAULTENDPOINTTOHOSTACTION: 'Accept' }).endpointToHostAction, 'Return', 'the flag over the environment');
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { FELIX_DEFAULTENDPOINTTOHOSTACTION: 'Allow' }),
    /FELIX_DEFAULTENDPOINTTOHOSTACTION: "Allow" is not one of Drop, Accept, Return/);
  t.throws(() => resolveConfig({ nodeName: 'n1', defaultEndpointToHostAction: 'drop!' }, {}), /--default-endpoint-to-host-action: "drop!" is not one of/);
});

t.test('failsafe ports: Calico\'s defaults, FelixConfiguration, FELIX_FAILSAFE*HOSTPORTS wins', async (t) => {
  const base = resolveConfig({ nodeName: 'n1' }, {});
  t.same(base.failsafe.inbound.slice(0, 3), [{ protocol: 'TCP', port: 22 }, { protocol: 'UDP', port: 68 }, { protocol: 'TCP', port: 179 }], "Calico's inbound default");
  t.same(base.failsafe.outbound[0], { protocol: 'UDP', port: 53 }, "Calico's outbound default");
  const r = withFelixConfiguration(base, [{ failsafeInboundHostPorts: [{ protocol: 'TCP', port: 2222 }] }, { failsafeInboundHostPorts: [], failsafeOutboundHostPorts: [] }]);
  t.same(r.config.failsafe, { inbound: [{ protocol: 'TCP', port: 2222 }], outbound: [] }, 'node.<name> over default, per field');
  t.same([r.from.failsafeInbound, r.from.failsafeOutbound], ['FelixConfiguration node.n1', 'FelixConfiguration default']);
  const env = resolveConfig({ nodeName: 'n1' }, { FELIX_FAILSAFEINBOUNDHOSTPORTS: 'tcp:10.0.0.0/8:22,udp:68', FELIX_FAILSAFEOUTBOUNDHOSTPORTS: 'none' });
  t.same(env.failsafe, { inbound: [{ protocol: 'TCP', port: 22, net: '10.0.0.0/8' }, { protocol: 'UDP', port: 68 }], outbound: [] });
  t.same(withFelixConfiguration(env, [{ failsafeInboundHostPorts: [] }, undefined]).config.failsafe.inbound.length, 2, 'the environment wins');
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { FELIX_FAILSAFEINBOUNDHOSTPORTS: 'tcp:22,icmp:1' }),
    /FELIX_FAILSAFEINBOUNDHOSTPORTS: "icmp:1": protocol "icmp" is not tcp, udp or sctp/);
});

t.test('tortie-node reads default and node.<name> from the datastore', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-felix-'));
  const ds = new EmbeddedDatastore({ dir });
  t.teardown(async () => { await ds.close(); rmSync(dir, { recursive: true, force: true }); });
  const client = new ResourceClient(ds);
  await client.create(felix('default', { logSeverityScreen: 'Debug', healthPort: 9111 }));
  await client.create(felix('node.n1', { healthPort: 9222 }));
  await client.create(felix('node.n2', { healthPort: 9333 }));
  const log = createLogger({ level: 'info', name: 'test', destination: '/dev/null' });
  const c = await effectiveConfig(client, resolveConfig({ nodeName: 'n1' }, {}), log);
  t.same([c.logLevel, c.healthPort], ['debug', 9222], "n1 gets its own port and the default's severity, not n2's");
  t.equal(log.level, 'debug', 'the running logger follows');
  const other = await effectiveConfig(client, resolveConfig({ nodeName: 'n3' }, {}), silentLogger);
  t.equal(other.healthPort, 9111, 'a node without its own: the default');
});

t.test('failsafe ports changed while running: a restart naming the field (read at start-up); the environment fixes them', async (t) => {
  const watch = (env: Record<string, string>) => {
    const restarts: string[] = [];
    const base = resolveConfig({ nodeName: 'n1' }, env);
    const live = new FelixLive(base, base, { setLogLevels: () => true, relisten: async () => {}, restart: (why) => { restarts.push(why); } }, silentLogger);
    live.inSync();
    return { live, restarts };
  };
  const a = watch({});
  a.live.update('default', { logSeverityScreen: 'Info' });
  t.same(a.restarts, [], 'no failsafe change: no restart');
  a.live.update('node.n1', { failsafeOutboundHostPorts: [] });
  t.same(a.restarts, ['FelixConfiguration changed failsafeOutboundHostPorts'], 'outbound list changed: restart naming it');
  const b = watch({});
  b.live.update('default', { failsafeInboundHostPorts: [{ protocol: 'TCP', port: 2222 }] });
  t.same(b.restarts, ['FelixConfiguration changed failsafeInboundHostPorts']);
  const c = watch({ FELIX_FAILSAFEINBOUNDHOSTPORTS: 'tcp:22' });
  c.live.update('default', { failsafeInboundHostPorts: [{ protocol: 'TCP', port: 2222 }] });
  t.same(c.restarts, [], 'FELIX_FAILSAFEINBOUNDHOSTPORTS wins: nothing to restart for');
});

t.test('MTU, natOutgoingAddress, metrics, log file and conntrack timeouts: the same precedence', async (t) => {
  const base = resolveConfig({ nodeName: 'n1' }, {});
  t.same([base.ipipMtu, base.natOutgoingAddress, base.ct.timeouts], [0, '', CALICO_CT_TIMEOUTS], "built-in: detect, the node's address, Calico's timers");
  const def = { ipipMTU: 1400, natOutgoingAddress: '198.18.9.1', prometheusMetricsPort: 9191, logSeverityFile: 'Debug', bpfConntrackTimeouts: { udpTimeout: '10s', tcpEstablished: '2h' } };
  const node = { ipipMTU: 8981, bpfConntrackTimeouts: { icmpTimeout: '1s' }, prometheusMetricsEnabled: false };
  const r = withFelixConfiguration(base, [node, def]);
  t.same([r.config.ipipMtu, r.config.natOutgoingAddress, r.config.metricsPort, r.config.metricsEnabled, r.config.logLevelFile], [8981, '198.18.9.1', 9191, false, 'debug']);
  t.same(r.config.ct.timeouts, { ...CALICO_CT_TIMEOUTS, icmpSec: 1 }, "node.<name>'s timer map wins whole (one Felix parameter), over Calico's defaults");
  t.same(withFelixConfiguration(base, [undefined, def]).config.ct.timeouts, { ...CALICO_CT_TIMEOUTS, udpSec: 10, establishedSec: 7200 });
  t.same(withFelixConfiguration(base, [{ bpfConntrackTimeouts: { udpTimeout: 'Auto', creationGracePeriod: '5s' } }, undefined]).config.ct.timeouts, CALICO_CT_TIMEOUTS,
    'Auto and creationGracePeriod leave the defaults');

  const env = resolveConfig({ nodeName: 'n1' }, {
    FELIX_IPIPMTU: '1440', FELIX_NATOUTGOINGADDRESS: '198.18.9.2', FELIX_PROMETHEUSMETRICSPORT: '9300', FELIX_BPFCONNTRACKTIMEOUTS: 'UDPTimeout=5s, TCPEstablished=30m',
    FELIX_MTUIFACEPATTERN: '^ens',
  });
  const e = withFelixConfiguration(env, [node, def]).config;
  t.same([e.ipipMtu, e.natOutgoingAddress, e.metricsPort, e.mtuIfacePattern], [1440, '198.18.9.2', 9300, '^ens'], 'the environment wins');
  t.same(e.ct.timeouts, { ...CALICO_CT_TIMEOUTS, udpSec: 5, establishedSec: 1800 }, "Felix's keyvaluelist form, any case");
  t.equal(resolveConfig({ nodeName: 'n1', ipipMtu: '1300' }, { FELIX_IPIPMTU: '1440' }).ipipMtu, 1300, 'a flag over the environment');
  for (const [envv, re] of [
    [{ FELIX_IPIPMTU: '100' }, /FELIX_IPIPMTU: "100" is not 0 \(detect\) or an MTU in 576–65515/],
    [{ FELIX_NATOUTGOINGADDRESS: 'fd00::1' }, /FELIX_NATOUTGOINGADDRESS: "fd00::1" is not an IPv4 address/],
    [{ FELIX_MTUIFACEPATTERN: '(eth' }, /FELIX_MTUIFACEPATTERN: "\(eth" is not a regular expression/],
    [{ FELIX_BPFCONNTRACKTIMEOUTS: 'UDPTimeout' }, /FELIX_BPFCONNTRACKTIMEOUTS: "UDPTimeout" is not name=duration/],
    [{ FELIX_BPFCONNTRACKTIMEOUTS: 'Forever=10s' }, /FELIX_BPFCONNTRACKTIMEOUTS: "Forever" is not a conntrack timer/],
    [{ FELIX_BPFCONNTRACKTIMEOUTS: 'UDPTimeout=soon' }, /FELIX_BPFCONNTRACKTIMEOUTS: UDPTimeout="soon" is not a duration/],
  ] as const) t.throws(() => resolveConfig({ nodeName: 'n1' }, envv), re);
  t.equal(resolveConfig({ nodeName: 'n1', runDir: '/tmp/x' }, {}).mtuFile, '/tmp/x/mtu', 'the MTU file lives in the run dir');
  t.equal(resolveConfig({ nodeName: 'n1' }, { TORTIE_MTU_FILE: 'none' }).mtuFile, '', 'or nowhere');
});

t.test('log levels change while running, for child loggers made before the change too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-loglevels-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'agent.log');
  const log = createAgentLogger({ name: 'test', screen: { level: 'silent', format: 'json' }, file: { path: file, level: 'info' } });
  const child = log.child({ component: 'dataplane' });
  const lines = () => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string });
  child.debug('before');
  child.info('info before');
  t.same(lines().map((l) => l.msg), ['info before'], 'file at info: no debug line');
  t.ok(setAgentLogLevels(log, 'silent', 'debug'), 'applies in place');
  child.debug('after');
  t.same(lines().map((l) => [l.level, l.msg]), [[30, 'info before'], [20, 'after']], "the existing child's debug line reaches the file");
  t.ok(setAgentLogLevels(log, 'silent', 'warn'));
  child.info('quiet');
  t.equal(lines().length, 2, 'back up to warn: info dropped');
  t.notOk(setAgentLogLevels(log, 'trace', 'warn'), 'trace needs a logger made at trace: a restart');
  const noFile = createAgentLogger({ name: 'test', screen: { level: 'silent', format: 'json' } });
  t.notOk(setAgentLogLevels(noFile, 'silent', 'debug'), 'a file the agent was started without needs a restart');
});

t.test('vxlanMTU (live), vxlanPort and vxlanVNI (restart): Calico\'s defaults, FelixConfiguration, FELIX_VXLAN* wins', async (t) => {
  const base = resolveConfig({ nodeName: 'n1' }, {});
  t.same([base.vxlanMtu, base.vxlanPort, base.vxlanVni], [0, 4789, 4096], "built-in: detect, Calico's port and VNI");
  const r = withFelixConfiguration(base, [{ vxlanMTU: 8950 }, { vxlanMTU: 1400, vxlanPort: 8472, vxlanVNI: 77 }]);
  t.same([r.config.vxlanMtu, r.config.vxlanPort, r.config.vxlanVni], [8950, 8472, 77], 'node.<name> over default, per field');
  t.same([r.from.vxlanMtu, r.from.vxlanPort], ['FelixConfiguration node.n1', 'FelixConfiguration default']);
  const env = resolveConfig({ nodeName: 'n1' }, { FELIX_VXLANMTU: '1410', FELIX_VXLANPORT: '4790', FELIX_VXLANVNI: '9' });
  t.same(withFelixConfiguration(env, [{ vxlanMTU: 8950, vxlanPort: 8472, vxlanVNI: 77 }, undefined]).config.vxlanVni, 9, 'the environment wins');
  t.same([env.vxlanMtu, env.vxlanPort], [1410, 4790]);
  for (const [envv, re] of [
    [{ FELIX_VXLANMTU: '100' }, /FELIX_VXLANMTU: "100" is not 0 \(detect\) or an MTU in 576–65485/],
    [{ FELIX_VXLANPORT: '0' }, /FELIX_VXLANPORT: "0" is not a port in 1–65535/],
    [{ FELIX_VXLANVNI: '16777216' }, /FELIX_VXLANVNI: "16777216" is not a VNI in 1–16777215/],
  ] as const) t.throws(() => resolveConfig({ nodeName: 'n1' }, envv), re);

  const restarts: string[] = [];
  const mtus: unknown[] = [];
  const live = new FelixLive(base, base, {
    setLogLevels: () => true, relisten: async () => {}, restart: (why) => { restarts.push(why); },
    routes: { setMtu: (m) => { mtus.push(m); }, setNatOutgoingAddress: () => {}, apply: async () => {} },
  }, silentLogger);
  live.inSync();
  live.update('default', { vxlanMTU: 1400 });
  t.same(restarts, [], 'vxlanMTU is live');
  t.match(mtus, [{ vxlanMtu: 1400, ipipMtu: 0 }], 'handed to the route manager with the IPIP MTU');
  live.update('default', { vxlanMTU: 1400, vxlanVNI: 5000 });
  t.same(restarts, ['FelixConfiguration changed vxlanVNI'], 'vxlanVNI: a restart naming it (the programs are told at start-up)');
});
