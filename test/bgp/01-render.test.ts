import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { renderBird, effectiveBgpConfig, peerTypeOf, routerIdHash, type BgpState } from '../../src/bgp/render';
import { baseState, bgpConfig, node, peer, pool } from './helpers/state';

// Golden files live next to the test sources; TORTIE_UPDATE_GOLDEN=1 rewrites them (review the diff).
const GOLDEN = path.join(__dirname, '..', '..', '..', 'test', 'bgp', 'golden');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-bird-p-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** bird's own parser: `bird -p -c file` exits 0 only for a configuration bird would load. */
function birdParses(text: string): { ok: boolean; out: string } {
  const f = path.join(tmp, `c${Math.random().toString(36).slice(2)}.conf`);
  fs.writeFileSync(f, text);
  const r = spawnSync('bird', ['-p', '-c', f], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function golden(t: Test, name: string, state: BgpState): ReturnType<typeof renderBird> {
  const r = renderBird(state);
  const file = path.join(GOLDEN, `${name}.conf`);
  if (process.env.TORTIE_UPDATE_GOLDEN === '1') fs.writeFileSync(file, r.config);
  t.equal(r.config, fs.readFileSync(file, 'utf8'), `${name}: matches golden ${path.basename(file)}`);
  const p = birdParses(r.config);
  t.ok(p.ok, `${name}: bird -p accepts it ${p.out}`);
  t.equal(renderBird(state).config, r.config, `${name}: deterministic`);
  return r;
}

t.test('mesh: every other node, Calico passive rule, blocks and borrowed /32', async (t) => {
  const r = golden(t, 'mesh', baseState());
  t.same(r.problems, []);
  t.same(r.peers.map((p) => [p.protocol, p.type, p.passive]), [
    ['Mesh_198_18_1_12', 'node-to-node mesh', true], // "198.18.1.12" > "198.18.1.11": node-2 connects
    ['Mesh_198_18_1_3', 'node-to-node mesh', true], // string order, as Calico's template: "…1.3" > "…1.11"
  ]);
  // The other side of each pair is active: exactly one side connects.
  for (const other of ['node-2', 'node-3']) {
    const o = renderBird(baseState({ nodeName: other })).peers.find((p) => p.ip === '198.18.1.11');
    t.equal(o?.passive, false, `${other} connects to node-1`);
  }
  t.match(r.config, /route 192\.168\.1\.0\/26 blackhole;\n  route 192\.168\.1\.64\/26 blackhole;/);
  t.match(r.config, /protocol static tortie_borrowed \{\n  ipv4;\n  route 192\.168\.7\.5\/32 blackhole;/);
  t.match(r.config, /timeformat protocol iso short;/);
});

t.test('mesh off, route reflectors selected by labels', async (t) => {
  const nodes = [
    node('node-1', { ipv4Address: '198.18.1.11/24' }),
    node('node-2', { ipv4Address: '198.18.1.12/24' }),
    node('rr-1', { ipv4Address: '198.18.1.21/24', routeReflectorClusterID: '224.0.0.1' }, { 'route-reflector': 'true' }),
    node('rr-2', { ipv4Address: '198.18.1.22/24', routeReflectorClusterID: '224.0.0.1' }, { 'route-reflector': 'true' }),
  ];
  const base = {
    nodes,
    bgpConfigurations: [bgpConfig('default', { nodeToNodeMeshEnabled: false })],
    bgpPeers: [peer('to-rrs', { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" })],
  };
  const client = golden(t, 'rr-client', baseState(base));
  t.same(client.peers.map((p) => [p.protocol, p.type, p.rrClient]), [
    ['Node_198_18_1_21', 'node specific', false],
    ['Node_198_18_1_22', 'node specific', false],
  ]);
  const rr = golden(t, 'rr-reflector', baseState({ ...base, nodeName: 'rr-1', blocks: [], borrowed: [] }));
  // The RR peers with the other RR (same cluster: not a client) only: clients peer with it via
  // the same BGPPeer seen from their side; add the reverse peering for the RR.
  t.same(rr.peers.map((p) => [p.protocol, p.rrClient]), [['Node_198_18_1_22', false]]);
  const both = golden(t, 'rr-reflector-clients', baseState({
    ...base, nodeName: 'rr-1', blocks: [], borrowed: [],
    bgpPeers: [...base.bgpPeers, peer('rrs-to-clients', { nodeSelector: "route-reflector == 'true'", peerSelector: '!has(route-reflector)' })],
  }));
  t.same(both.peers.map((p) => [p.protocol, p.rrClient]), [
    ['Node_198_18_1_11', true], ['Node_198_18_1_12', true], ['Node_198_18_1_22', false],
  ]);
  t.match(both.config, /rr client;\n  rr cluster id 224\.0\.0\.1;/);
  t.match(both.config, /if source = RTS_BGP && net ~ TORTIE_POOLS then accept;/, 'a reflector passes learned routes on');
  t.match(client.config, /if source = RTS_BGP && net ~ TORTIE_POOLS then reject;/, 'a client does not');
});

t.test('ToR peers: global and node-specific, ports, AS, next hop, source address', async (t) => {
  const r = golden(t, 'tor', baseState({
    bgpConfigurations: [bgpConfig('default', { asNumber: 64600, nodeToNodeMeshEnabled: false, serviceClusterIPs: [{ cidr: '10.96.0.0/12' }] })],
    bgpPeers: [
      peer('tor', { peerIP: '198.18.1.1', asNumber: 65001 }),
      peer('rack', { node: 'node-1', peerIP: '198.18.1.2:1179', asNumber: 65002, keepOriginalNextHop: true, sourceAddress: 'None', numAllowedLocalASNumbers: 1 }),
      peer('other-rack', { node: 'node-2', peerIP: '198.18.2.2', asNumber: 65003 }),
      peer('zone', { nodeSelector: "zone == 'b'", peerIP: '198.18.2.3', asNumber: 65003 }),
    ],
    pools: [pool('pods', { cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet' }), pool('quiet', { cidr: '10.200.0.0/16', disableBGPExport: true })],
  }));
  t.same(r.peers.map((p) => [p.protocol, p.type, p.asNumber, p.port]), [
    ['Global_198_18_1_1', 'global', 65001, 179],
    ['Node_198_18_1_2_port_1179', 'node specific', 65002, 1179],
  ]);
  t.match(r.config, /protocol bgp Node_198_18_1_2_port_1179 from tortie_peer \{\n  neighbor 198\.18\.1\.2 port 1179 as 65002;\n  graceful restart time 120;\n  allow local as 1;\n  ipv4 \{ next hop keep on; \};/);
  t.match(r.config, /define TORTIE_AS = 64600;/);
  t.match(r.config, /route 10\.96\.0\.0\/12 blackhole;/);
  t.match(r.config, /define TORTIE_NO_EXPORT = \[ 10\.200\.0\.0\/16\+ \];/);
  t.match(r.config, /kernel table 122;\n  learn off;\n  persist;/);
});

t.test('route reflectors and the mesh (Calico: an RR skips the mesh, the mesh skips RRs); peerIP RR clients', async (t) => {
  const nodes = [
    node('node-1', { ipv4Address: '198.18.1.11/24' }),
    node('node-2', { ipv4Address: '198.18.1.12/24' }),
    node('rr-1', { ipv4Address: '198.18.1.21/24', routeReflectorClusterID: '224.0.0.1' }),
  ];
  const client = renderBird(baseState({ nodes }));
  t.same(client.peers.map((p) => p.protocol), ['Mesh_198_18_1_12'], 'mesh without the reflector');
  const rr = renderBird(baseState({ nodes, nodeName: 'rr-1', bgpPeers: [peer('n1', { peerIP: '198.18.1.11', asNumber: 64512 }), peer('ebgp', { peerIP: '198.18.1.1', asNumber: 65001, keepOriginalNextHop: true })] }));
  t.same(rr.peers.map((p) => [p.protocol, p.rrClient]), [['Global_198_18_1_1', false], ['Global_198_18_1_11', true]], 'no mesh on the reflector; an iBGP peerIP peer is its client');
  t.match(rr.config, /neighbor 198\.18\.1\.1 as 65001;[^}]*next hop keep on;/, 'keepOriginalNextHop on eBGP');
  const ibgpKeep = renderBird(baseState({ bgpPeers: [peer('i', { peerIP: '198.18.1.5', asNumber: 64512, keepOriginalNextHop: true })] }));
  t.notMatch(ibgpKeep.config, /next hop keep/, 'not on iBGP (as Calico)');
  t.ok(birdParses(rr.config).ok);
});

t.test('passwords from secrets; a missing or unusable secret leaves the peer out, named', async (t) => {
  const secrets: Record<string, string> = { 'bgp/tor': 's3cret-Tor!', 'bgp/mesh': 'mesh-pw', 'bgp/bad': 'a"b' };
  const state = baseState({
    bgpConfigurations: [bgpConfig('default', { nodeMeshPassword: { secretKeyRef: { name: 'bgp', key: 'mesh' } } })],
    bgpPeers: [
      peer('tor', { peerIP: '198.18.1.1', asNumber: 65001, password: { secretKeyRef: { name: 'bgp', key: 'tor' } } }),
      peer('gone', { peerIP: '198.18.1.5', asNumber: 65001, password: { secretKeyRef: { name: 'bgp', key: 'nope' } } }),
      peer('bad', { peerIP: '198.18.1.6', asNumber: 65001, password: { secretKeyRef: { name: 'bgp', key: 'bad' } } }),
    ],
    secret: (n, k) => secrets[`${n}/${k}`],
  });
  const r = golden(t, 'passwords', state);
  t.same(r.problems, [
    'Global_198_18_1_5: password secret bgp/nope not found; peer left out',
    'Global_198_18_1_6: password secret bgp/bad contains \'"\', a backslash or a control character, which bird\'s strings cannot hold; peer left out',
  ]);
  t.match(r.config, /neighbor 198\.18\.1\.1 as 65001;[^}]*password "s3cret-Tor!";/);
  t.equal((r.config.match(/password "mesh-pw";/g) ?? []).length, 2, 'both mesh peers');
});

t.test('restart times: mesh from BGPConfiguration, peers from maxRestartTime, default 120 s', async (t) => {
  const r = golden(t, 'restart-times', baseState({
    bgpConfigurations: [bgpConfig('default', { nodeMeshMaxRestartTime: '2m30s' }), bgpConfig('node.node-1', { listenPort: 1790, logSeverityScreen: 'Debug' })],
    bgpPeers: [peer('tor', { peerIP: '198.18.1.1', asNumber: 65001, maxRestartTime: '1h' }), peer('tor2', { peerIP: '198.18.1.2', asNumber: 65001 })],
  }));
  // node-1 listens on 1790 (its node.node-1 resource); its mesh neighbours still listen on 179.
  t.same(r.peers.map((p) => p.protocol), ['Global_198_18_1_1', 'Global_198_18_1_2', 'Mesh_198_18_1_12', 'Mesh_198_18_1_3']);
  const n2 = renderBird(baseState({ nodeName: 'node-2', bgpConfigurations: [bgpConfig('node.node-1', { listenPort: 1790 })] }));
  t.ok(n2.peers.some((p) => p.protocol === 'Mesh_198_18_1_11_port_1790' && p.port === 1790), 'node-2 connects to node-1 on 1790');
  t.match(r.config, /neighbor 198\.18\.1\.1 as 65001;[^}]*graceful restart time 3600;/);
  t.match(r.config, /neighbor 198\.18\.1\.2 as 65001;[^}]*graceful restart time 120;/);
  t.match(r.config, /neighbor 198\.18\.1\.12 as 64512;[^}]*graceful restart time 150;/);
  t.match(r.config, /local port 1790;/);
  t.match(r.config, /log stderr all;/);
});

t.test('effective config and edge cases', async (t) => {
  t.same(effectiveBgpConfig([], 'n'), {
    asNumber: 64512, nodeToNodeMeshEnabled: true, listenPort: 179, logSeverityScreen: 'Info', nodeMeshPassword: undefined,
    nodeMeshMaxRestartSeconds: 120, serviceClusterIPs: [], serviceExternalIPs: [],
  });
  const none = renderBird(baseState({ nodeName: 'node-9' }));
  t.same(none, { config: '', problems: ['node node-9 has neither spec.bgp.ipv4Address nor spec.bgp.ipv6Address: BGP is not configured on it'], peers: [] });
  const v6 = renderBird(baseState({ bgpPeers: [peer('v6', { peerIP: 'fd00::1', asNumber: 1 })] }));
  t.same(v6.problems, ['BGPPeer v6: peer fd00::1 is IPv6 and node node-1 has no spec.bgp.ipv6Address; peer left out']);
  t.notMatch(v6.config, /ipv6|tortie_peer6/, 'a node without an IPv6 address renders no IPv6 part');
  const empty = renderBird(baseState({ blocks: [], borrowed: [], pools: [] }));
  t.ok(birdParses(empty.config).ok, 'no blocks, no pools: still a valid config');
  // A peer at a node's own address (a BGPPeer pointing at this node) is skipped.
  const self = renderBird(baseState({ bgpPeers: [peer('me', { peerIP: '198.18.1.11', asNumber: 64512 })] }));
  t.notOk(self.peers.some((p) => p.ip === '198.18.1.11'));
  t.equal(peerTypeOf('Mesh_1_2_3_4'), 'node-to-node mesh');
  t.equal(peerTypeOf('Global_1_2_3_4'), 'global');
  t.equal(peerTypeOf('Node_1_2_3_4_port_1179'), 'node specific');
  t.equal(peerTypeOf('kernel1'), undefined);
  t.notOk(birdParses('protocol bgp { neighbor as; }').ok, 'bird -p rejects a broken config (the check can fail)');
});

// IPv6 as Calico's bird6 template: IPv6 sessions to IPv6 addresses carry the ipv6 channel only.
t.test('dual stack: IPv6 mesh, IPv6 peers, IPv6 blocks and pools beside the IPv4 ones', async (t) => {
  const nodes = [
    node('node-1', { ipv4Address: '198.18.1.11/24', ipv6Address: 'fd00:198:18:1::11/64' }),
    node('node-2', { ipv4Address: '198.18.1.12/24', ipv6Address: 'FD00:198:18:1:0::12/64' }),
    node('node-3', { ipv4Address: '198.18.1.3/24' }), // no IPv6 address: IPv4 mesh only
    node('node-4', { ipv6Address: 'fd00:198:18:1::4/64' }), // IPv6 only
  ];
  const state = baseState({
    nodes,
    pools: [pool('pods', { cidr: '192.168.0.0/16' }), pool('pods6', { cidr: 'fd00:10::/48' }), pool('quiet6', { cidr: 'fd00:11::/48', disableBGPExport: true })],
    blocks: ['192.168.1.0/26', 'fd00:10:0:1::/122', 'fd00:10:0:1::40/122'],
    borrowed: ['192.168.7.5', 'fd00:10:0:7::5'],
    bgpConfigurations: [bgpConfig('default', { serviceClusterIPs: [{ cidr: '10.96.0.0/12' }, { cidr: 'fd00:96::/108' }] })],
    bgpPeers: [
      peer('tor6', { peerIP: 'fd00:198:18:1::1', asNumber: 65001, keepOriginalNextHop: true }),
      peer('tor6-port', { node: 'node-1', peerIP: '[fd00:198:18:1::2]:1179', asNumber: 65002 }),
    ],
  });
  const r = golden(t, 'dual-stack', state);
  t.same(r.problems, []);
  t.same(r.peers.map((p) => [p.protocol, p.type, p.ip, p.passive]), [
    ['Global_fd00_198_18_1__1', 'global', 'fd00:198:18:1::1', false],
    ['Mesh_198_18_1_12', 'node-to-node mesh', '198.18.1.12', true],
    ['Mesh_198_18_1_3', 'node-to-node mesh', '198.18.1.3', true],
    ['Mesh_fd00_198_18_1__12', 'node-to-node mesh', 'fd00:198:18:1::12', true], // canonical form; "…::12" > "…::11"
    ['Mesh_fd00_198_18_1__4', 'node-to-node mesh', 'fd00:198:18:1::4', true],
    ['Node_fd00_198_18_1__2_port_1179', 'node specific', 'fd00:198:18:1::2', false],
  ]);
  t.match(r.config, /protocol bgp Mesh_fd00_198_18_1__12 from tortie_peer6 \{\n  neighbor fd00:198:18:1::12 as 64512;\n  source address fd00:198:18:1::11;/);
  t.match(r.config, /protocol bgp Mesh_198_18_1_12 from tortie_peer \{\n  neighbor 198\.18\.1\.12 as 64512;\n  source address 198\.18\.1\.11;/);
  t.match(r.config, /neighbor fd00:198:18:1::1 as 65001;[^}]*ipv6 \{ next hop keep on; \};/, 'keepOriginalNextHop on an IPv6 eBGP peer');
  t.match(r.config, /define TORTIE_POOLS6 = \[ fd00:10::\/48\+, fd00:11::\/48\+ \];/);
  t.match(r.config, /define TORTIE_NO_EXPORT6 = \[ fd00:11::\/48\+ \];/);
  t.match(r.config, /define TORTIE_POOLS = \[ 192\.168\.0\.0\/16\+ \];/, 'IPv4 pools apart');
  t.match(r.config, /protocol static tortie_blocks \{\n  ipv4;\n  route 192\.168\.1\.0\/26 blackhole;\n\}/, 'IPv4 blocks only in the IPv4 static');
  t.match(r.config, /protocol static tortie_blocks6 \{\n  ipv6;\n  route fd00:10:0:1::\/122 blackhole;\n  route fd00:10:0:1::40\/122 blackhole;\n\}/);
  t.match(r.config, /protocol static tortie_borrowed6 \{\n  ipv6;\n  route fd00:10:0:7::5\/128 blackhole;/);
  t.match(r.config, /protocol static tortie_services6 \{\n  ipv6;\n  route fd00:96::\/108 blackhole;/);
  t.notMatch(r.config, /route fd00[^;]*;[^}]*\n  ipv4/, 'no IPv6 route in an IPv4 protocol');
  // The other side connects: node-2 is active towards node-1 over IPv6 too.
  const n2 = renderBird({ ...state, nodeName: 'node-2' });
  t.equal(n2.peers.find((p) => p.protocol === 'Mesh_fd00_198_18_1__11')?.passive, false);
  t.ok(birdParses(n2.config).ok);
});

t.test('IPv6-only node: hashed router id (Calico\'s CALICO_ROUTER_ID=hash), IPv6 sessions only', async (t) => {
  const nodes = [node('node-4', { ipv6Address: 'fd00:198:18:1::4/64' }), node('node-1', { ipv4Address: '198.18.1.11/24', ipv6Address: 'fd00:198:18:1::11/64' })];
  const r = renderBird(baseState({ nodeName: 'node-4', nodes, pools: [pool('pods6', { cidr: 'fd00:10::/48' })], blocks: ['fd00:10:0:4::/122'], borrowed: [] }));
  t.same(r.problems, []);
  t.same(r.peers.map((p) => p.protocol), ['Mesh_fd00_198_18_1__11']);
  t.equal(routerIdHash('node-4'), routerIdHash('node-4'));
  t.match(r.config, new RegExp(`^router id ${routerIdHash('node-4').replace(/\./g, '\\.')};$`, 'm'));
  for (const name of ['node-4', 'a', 'kube-worker-17', 'x'.repeat(63)]) {
    const octets = routerIdHash(name).split('.').map(Number);
    t.ok(octets.length === 4 && octets.every((o) => o >= 0 && o <= 255) && octets[0]! <= 223, `${name}: ${routerIdHash(name)} is a unicast IPv4 id`);
  }
  t.equal(routerIdHash('a'), '202.151.129.18', 'sha256("a") = ca978112…');
  const p = birdParses(r.config);
  t.ok(p.ok, `bird -p accepts it ${p.out}`);
});
