// FelixConfiguration read by tortie-node at start-up, under flags and environment (Felix's
// precedence: environment > node.<name> > default > built-in), over the real embedded store.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatastore } from '../../src/datastore';
import { ResourceClient } from '../../src/client/resources';
import { resolveConfig, withFelixConfiguration } from '../../src/node/config';
import { effectiveConfig } from '../../src/node/run';
import { createLogger, silentLogger } from '../../src/util/log';
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
