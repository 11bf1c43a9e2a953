import t from 'tap';
import { valid, problems, res } from './helpers/util';
import { parseDuration, parsePeerIP } from '../../src/model';

const cfg = (spec: unknown, name = 'default') => res('BGPConfiguration', name, spec);
const peer = (spec: unknown, name = 'tor1') => res('BGPPeer', name, spec);

t.test('BGPConfiguration: fields kept as written (absent = Calico default)', async (t) => {
  const r = valid(cfg({
    logSeverityScreen: 'Info', nodeToNodeMeshEnabled: false, asNumber: '1.10',
    serviceClusterIPs: [{ cidr: '10.96.0.0/12' }], serviceExternalIPs: [{ cidr: '198.18.200.0/24' }],
    listenPort: 1179, nodeMeshPassword: { secretKeyRef: { name: 'bgp-secrets', key: 'mesh' } },
    nodeMeshMaxRestartTime: '2m', bindMode: 'None',
  }));
  t.same(r.spec, {
    logSeverityScreen: 'Info', nodeToNodeMeshEnabled: false, asNumber: 65546,
    serviceClusterIPs: [{ cidr: '10.96.0.0/12' }], serviceExternalIPs: [{ cidr: '198.18.200.0/24' }],
    listenPort: 1179, nodeMeshPassword: { secretKeyRef: { name: 'bgp-secrets', key: 'mesh' } },
    nodeMeshMaxRestartTime: '2m', bindMode: 'None',
  });
  t.same(valid(cfg(undefined)).spec, {}, 'no spec is an empty spec');
  t.same(valid(cfg({ logSeverityScreen: 'Debug' }, 'node.node-1')).spec, { logSeverityScreen: 'Debug' });
});

t.test('BGPConfiguration: problems named', async (t) => {
  t.same(problems(cfg({ asNumber: 64513, nodeToNodeMeshEnabled: true }, 'node.n1')), [
    'BGPConfiguration node.n1: spec.nodeToNodeMeshEnabled: can only be set on the BGPConfiguration named "default"',
    'BGPConfiguration node.n1: spec.asNumber: can only be set on the BGPConfiguration named "default"',
  ]);
  t.match(problems(cfg({}, 'mine')), [/metadata.name: "mine" must be "default" or "node.<node name>"/]);
  t.match(problems(cfg({ logSeverityScreen: 'info' })), [/logSeverityScreen: must be one of Debug, Info, Warning, Error, Fatal/]);
  t.match(problems(cfg({ listenPort: 0 })), [/listenPort: 0 is out of range \(1 to 65535\)/]);
  t.match(problems(cfg({ serviceClusterIPs: [{ cidr: '10.96.0.1/12' }] })), [/serviceClusterIPs\[0\].cidr: "10.96.0.1\/12" has host bits set/]);
  t.match(problems(cfg({ nodeMeshMaxRestartTime: '5000s' })), [/out of range \(1s to 4095s/]);
  t.match(problems(cfg({ nodeMeshMaxRestartTime: 'soon' })), [/"soon" is not a duration/]);
  t.match(problems(cfg({ nodeMeshPassword: { secretKeyRef: { name: 'x' } } })), [/nodeMeshPassword.secretKeyRef.key: must be a string/]);
  t.match(problems(cfg({ bindMode: 'NodeIP' })), [/spec.bindMode: NodeIP is a Calico field tortie does not implement/]);
  for (const f of ['serviceLoadBalancerIPs', 'communities', 'prefixAdvertisements', 'ignoredInterfaces', 'programClusterRoutes']) {
    t.same(problems(cfg({ [f]: [] })), [`BGPConfiguration default: spec.${f}: is a Calico field tortie does not implement`], f);
  }
  t.match(problems(cfg({ meshEnabled: true })), [/spec.meshEnabled: unknown field/]);
});

t.test('BGPPeer: global, node-specific and selector peers', async (t) => {
  t.same(valid(peer({ peerIP: '198.18.0.1', asNumber: 65001 })).spec, { peerIP: '198.18.0.1', asNumber: 65001 });
  t.same(valid(peer({ node: 'node-1', peerIP: '198.18.0.1:1179', asNumber: 65001, keepOriginalNextHop: true,
    password: { secretKeyRef: { name: 'bgp-secrets', key: 'tor' } }, sourceAddress: 'None', maxRestartTime: '300s',
    numAllowedLocalASNumbers: 2 })).spec, {
    node: 'node-1', peerIP: '198.18.0.1:1179', asNumber: 65001, keepOriginalNextHop: true,
    password: { secretKeyRef: { name: 'bgp-secrets', key: 'tor' } }, sourceAddress: 'None', maxRestartTime: '300s',
    numAllowedLocalASNumbers: 2 });
  t.same(valid(peer({ nodeSelector: '!has(route-reflector)', peerSelector: 'has(route-reflector)' })).spec,
    { nodeSelector: '!has(route-reflector)', peerSelector: 'has(route-reflector)' });
  t.same((valid(peer({ peerIP: '[fd00::0001]:179', asNumber: 1 })) as { spec: { peerIP?: string } }).spec.peerIP, '[fd00::1]:179');
});

t.test('BGPPeer: libcalico-go cross-field rules and refused fields', async (t) => {
  t.same(problems(peer({ node: 'a', nodeSelector: 'all()', peerIP: '198.18.0.1', asNumber: 1 })),
    ['BGPPeer tor1: spec: node and nodeSelector cannot both be set']);
  t.same(problems(peer({ peerIP: '198.18.0.1', peerSelector: 'all()' })), [
    'BGPPeer tor1: spec: peerIP and peerSelector cannot both be set',
    'BGPPeer tor1: spec.asNumber: is required with peerIP',
  ]);
  t.same(problems(peer({ peerSelector: 'all()', asNumber: 5 })),
    ["BGPPeer tor1: spec.asNumber: must not be set with peerSelector (the selected nodes' AS numbers are used)"]);
  t.same(problems(peer({ node: 'a' })), ['BGPPeer tor1: spec: one of peerIP or peerSelector is required']);
  t.same(problems(peer(undefined)), ['BGPPeer tor1: spec: is required']);
  t.match(problems(peer({ peerIP: '198.18.0.1:70000', asNumber: 1 })), [/peerIP: "198.18.0.1:70000" is not an IP address/]);
  t.match(problems(peer({ peerIP: 'tor.example', asNumber: 1 })), [/peerIP: "tor.example" is not an IP address/]);
  t.match(problems(peer({ peerSelector: 'has(' })), [/spec.peerSelector: /]);
  t.match(problems(peer({ peerIP: '198.18.0.1', asNumber: 1, sourceAddress: 'Node' })), [/sourceAddress: must be UseNodeIP or None/]);
  t.match(problems(peer({ peerIP: '198.18.0.1', asNumber: 1, password: { secretKeyRef: { name: 'a', key: 'b/c' } } })),
    [/password.secretKeyRef.key: "b\/c" is not a valid secret key/]);
  for (const f of ['ttlSecurity', 'reachableBy', 'filters', 'localWorkloadSelector', 'nextHopMode', 'keepaliveTime']) {
    t.same(problems(peer({ peerIP: '198.18.0.1', asNumber: 1, [f]: 1 })),
      [`BGPPeer tor1: spec.${f}: is a Calico field tortie does not implement`], f);
  }
  t.match(problems(res('BGPPeer', 'x', { peerIP: '198.18.0.1', asNumber: 1 }, { namespace: 'prod' })),
    [/metadata.namespace: BGPPeer is not namespaced/]);
});

t.test('durations and peer addresses', async (t) => {
  t.equal(parseDuration('2m30s'), 150);
  t.equal(parseDuration('1h'), 3600);
  t.equal(parseDuration('1500ms'), 1.5);
  t.equal(parseDuration('0'), 0);
  t.equal(parseDuration('5'), undefined);
  t.equal(parseDuration('m5'), undefined);
  t.same(parsePeerIP('198.18.0.1:179'), { ip: '198.18.0.1', port: 179 });
  t.same(parsePeerIP('fd00::1'), { ip: 'fd00::1', port: undefined });
  t.equal(parsePeerIP('[198.18.0.1]:179'), undefined);
  t.equal(parsePeerIP('198.18.0.1:0'), undefined);
});
