import t from 'tap';
import { resolveConfig, ConfigError } from '../../src/node/config';

t.test('BGP options: off by default, CALICO_NETWORKING_BACKEND=bird or --bgp turns bird on', async (t) => {
  const d = resolveConfig({ nodeName: 'n1' }, {});
  t.same([d.bgp, d.routeSource, d.bgpSecretsDir], [false, 'datastore', '/etc/tortie/bgp-secrets']);
  const e = resolveConfig({ nodeName: 'n1' }, { CALICO_NETWORKING_BACKEND: 'bird', TORTIE_BGP_SECRETS_DIR: '/s' });
  t.same([e.bgp, e.routeSource, e.bgpSecretsDir], [true, 'bgp', '/s'], 'routes from BGP by default with bird');
  const f = resolveConfig({ nodeName: 'n1', bgp: true, routeSource: 'datastore' }, {});
  t.same([f.bgp, f.routeSource], [true, 'datastore'], 'bird advertising, routes still from the datastore');
  t.same(resolveConfig({ nodeName: 'n1' }, { CALICO_NETWORKING_BACKEND: 'none' }).policyOnly, true);
});

t.test('BGP options: bad combinations named', async (t) => {
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { CALICO_NETWORKING_BACKEND: 'vxlan' }),
    new ConfigError('CALICO_NETWORKING_BACKEND: "vxlan" is not implemented by tortie (expected bird or none)'));
  t.throws(() => resolveConfig({ nodeName: 'n1', routeSource: 'bgp' }, {}),
    new ConfigError('--route-source: route source "bgp" needs bird (--bgp or CALICO_NETWORKING_BACKEND=bird)'));
  t.throws(() => resolveConfig({ nodeName: 'n1', bgp: true }, { TORTIE_ROUTE_SOURCE: 'kernel' }),
    new ConfigError('TORTIE_ROUTE_SOURCE: "kernel" is not a route source (expected datastore or bgp)'));
  t.throws(() => resolveConfig({ nodeName: 'n1', bgp: true, policyOnly: true }, {}),
    new ConfigError('--policy-only and --bgp (CALICO_NETWORKING_BACKEND=bird) exclude each other'));
});
