// The networking objects load (verifier) with their maps shared by pin name between the workload
// and uplink objects, and every networking codec matches its struct in the uplink object's BTF.
import t from 'tap';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { checkStructLayout } from '../../src/dataplane/native';
import { defaultObjectDir, loadUplink, loadWep } from '../../src/dataplane/bpf/loader';
import { NET_CODECS, NET_MAP, NETSTAT, VXSTAT, netcfgCodec, vxcfgCodec } from '../../src/dataplane/bpf/net-codecs';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';

const UPLINK = path.join(defaultObjectDir(), 'tortie_uplink.bpf.o');

t.test('codecs match the BTF of tortie_uplink.bpf.o', async (t) => {
  for (const c of NET_CODECS) t.same(checkStructLayout(UPLINK, c.name, c.layout), [], c.name);
});

t.test('uplink and workload objects load and share the networking maps', async (t) => {
  const pinRoot = uniquePinRoot('net-load');
  const up = await loadUplink({ pinRoot, nat: { portMin: 40000, portMax: 40010, retries: 4 } });
  const wep = await loadWep({ pinRoot, ctMaxEntries: 4096 });
  t.teardown(() => { up.close(); wep.close(); removePinRoot(pinRoot); });
  t.equal(up.ingress.name, 'tortie_uplink_in');
  t.equal(up.egress.name, 'tortie_uplink_out');
  up.maps.netcfg.update(Buffer.alloc(4), netcfgCodec.encode({ node_ip: '198.18.1.10', uplink_ifindex: 7, ipip_mtu: 0, snat_ip: '0.0.0.0' }));
  const seen = wep.obj.map(NET_MAP.netcfg).lookup(Buffer.alloc(4));
  t.same(netcfgCodec.decode(seen!), { node_ip: '198.18.1.10', uplink_ifindex: 7, ipip_mtu: 0, snat_ip: '0.0.0.0' }, 'one netcfg map for both objects');
  up.maps.vxcfg.update(Buffer.alloc(4), vxcfgCodec.encode({ vni: 4096, port: 4789, mtu: 1450 }));
  t.same(vxcfgCodec.decode(wep.obj.map(NET_MAP.vxcfg).lookup(Buffer.alloc(4))!), { vni: 4096, port: 4789, mtu: 1450 }, 'one VXLAN config for both objects');
  t.equal(wep.obj.map(NET_MAP.vxst).maxEntries, VXSTAT.length, 'tortie_vxst_v1 has one slot per VXSTAT name (TORTIE_VS_MAX)');
  t.equal(up.maps.netstat.maxEntries, NETSTAT.length, 'tortie_netstat_v1 has one slot per NETSTAT name (TORTIE_NS_MAX)');
  await t.rejects(loadUplink({ pinRoot, nat: { portMin: 5, portMax: 4 } }), /portMin <= portMax/);
  await t.rejects(loadUplink({ pinRoot, nat: { retries: 25 } }), /retries 25: need 0..24/);
});

t.test('the tables a previous version pinned (tortie_nat4_v1, tortie_ct4_v1, tortie_ct4_v2, tortie_frag4_v1, tortie_natfrag4_v1, tortie_hct4_v1) are unpinned on load', async (t) => {
  const pinRoot = uniquePinRoot('net-unpin');
  t.teardown(() => removePinRoot(pinRoot));
  for (const name of ['tortie_nat4_v1', 'tortie_ct4_v1', 'tortie_ct4_v2', 'tortie_frag4_v1', 'tortie_natfrag4_v1', 'tortie_hct4_v1']) {
    execFileSync('bpftool', ['map', 'create', path.join(pinRoot, name), 'type', 'lru_hash', 'key', '16', 'value', '24', 'entries', '16', 'name', name]);
    t.ok(existsSync(path.join(pinRoot, name)), `${name} pinned as an old version left it`);
  }
  const up = await loadUplink({ pinRoot });
  const wep = await loadWep({ pinRoot, ctMaxEntries: 4096 });
  up.close(); wep.close();
  t.notOk(existsSync(path.join(pinRoot, 'tortie_nat4_v1')), 'old NAT table unpinned');
  t.notOk(existsSync(path.join(pinRoot, 'tortie_ct4_v1')), 'old conntrack table unpinned');
  t.notOk(existsSync(path.join(pinRoot, 'tortie_ct4_v2')), 'conntrack table without TCP sequence state unpinned');
  t.notOk(existsSync(path.join(pinRoot, 'tortie_frag4_v1')), 'policy-only fragment table unpinned');
  t.notOk(existsSync(path.join(pinRoot, 'tortie_natfrag4_v1')), 'NAT-only fragment table unpinned');
  t.notOk(existsSync(path.join(pinRoot, 'tortie_hct4_v1')), 'host endpoint conntrack without TCP state unpinned');
  t.ok(existsSync(path.join(pinRoot, 'tortie_hct4_v2')), 'its successor pinned');
  t.ok(existsSync(path.join(pinRoot, 'tortie_frag4_v2')), 'the one fragment table (policy and NAT points) pinned');
  t.ok(existsSync(path.join(pinRoot, NET_MAP.nat4)) && existsSync(path.join(pinRoot, 'tortie_ct4_v3')), 'their successors pinned');
});
