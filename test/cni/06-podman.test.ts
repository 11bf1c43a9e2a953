/**
 * Real podman 4.3 (CNI backend) on tortie's plugins, with tortie-node enforcing policy: plain
 * `podman run` (K8S_POD_NAME without a namespace) and podman's generated names, the address from
 * the pool behind 169.254.1.1, policy between containers selected by container name, labels
 * owned by the runtime, stop → DEL, CHECK/DEL/VERSION as podman drives them, and 5 concurrent
 * `podman run`s getting distinct addresses, all through tortie-node's CNI socket; and the same
 * with the socket disabled, through the wrappers' plugin-process fallback. Harness:
 * helpers/podman.ts (private mount namespace, nothing in the root namespace).
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PodmanHost } from './helpers/podman';
import { pool } from '../../src/testbed/fixtures';
import { IpamClient } from '../../src/ipam/client';
import { eventually } from '../../src/testbed';
import { CONTAINER_NAME_LABEL, OWNER_ANNOTATION } from '../../src/model/wep-labels';
import type { Resource } from '../../src/model';
import type { WorkloadEndpoint } from '../../src/model/types';

const POOL = '192.168.60.0/24';
const TORTIECTL = resolve(__dirname, '..', '..', '..', 'bin', 'tortiectl.js');

t.test('podman run on tortie, through the agent\'s CNI socket', async (t) => {
  const h = new PodmanHost('podman');
  t.teardown(() => h.destroy());
  // The wrappers cannot start the plugin process (no fallback): every ADD, DEL and CHECK below
  // is answered by tortie-node on its CNI socket.
  await h.start(undefined, { noFallback: true });
  await h.rc.create(pool('default-ipv4-ippool', POOL, { ipipMode: 'Never' }));
  // The network's profile (named after the network): allow, and a label every workload inherits.
  await h.rc.create({
    apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: h.network },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply: { net: h.network } },
  } as Resource);
  h.startAgent();
  await h.waitAgentReady();

  const srvId = await h.runDetached(['--name', 'srv'], ['nc', '-ll', '-p', '8080', '-e', '/bin/hello']);
  // No --name: podman generates one like blissful_raman ('_' is not a DNS label character).
  const anonId = await h.runDetached([], ['sleep', '3600']);
  await h.runDetached(['--name', 'good_client'], ['sleep', '3600']);
  const srv = await h.inspect('srv');
  const anon = await h.inspect(anonId);
  const good = await h.inspect('good_client');
  t.equal(srv.id, srvId);
  t.match(anon.name, /^[a-z]+_[a-z]+$/, `podman generated a name with '_': ${anon.name}`);
  for (const c of [srv, anon, good]) t.match(c.ip, /^192\.168\.60\.\d+$/, `${c.name} has an address from the pool: ${c.ip}`);
  t.equal(new Set([srv.ip, anon.ip, good.ip]).size, 3, 'distinct addresses');

  // Inside the container: the /32, 169.254.1.1 as the gateway, Calico's MAC on the other side.
  const routes = (await h.podman(['exec', 'srv', 'ip', 'route'])).stdout;
  t.match(routes, /default via 169\.254\.1\.1 dev eth0/);
  t.match((await h.podman(['exec', 'srv', 'ip', '-4', 'addr', 'show', 'eth0'])).stdout, new RegExp(`inet ${srv.ip.replace(/\./g, '\\.')}/32`));

  // The endpoints: plain CNI workloads named after the container id, labelled with its name.
  const weps = (await h.rc.list('WorkloadEndpoint', 'default')).items as WorkloadEndpoint[];
  t.equal(weps.length, 3);
  const wepOf = (id: string) => weps.find((w) => w.spec.containerID === id)!;
  const srvWep = wepOf(srvId);
  t.equal(srvWep.metadata.name, `node--a-cni-${srvId}-eth0`, 'Calico\'s name for a plain CNI workload');
  t.equal(srvWep.spec.orchestrator, 'cni');
  t.equal(srvWep.metadata.labels?.[CONTAINER_NAME_LABEL], 'srv');
  t.equal(srvWep.metadata.annotations?.[OWNER_ANNOTATION], 'cni');
  t.same(srvWep.spec.ipNetworks, [`${srv.ip}/32`]);
  t.equal(wepOf(anon.id).metadata.labels?.[CONTAINER_NAME_LABEL], anon.name, 'generated name kept as a label value');
  const hostIf = srvWep.spec.interfaceName!;
  t.match(hostIf, /^cali[0-9a-f]{11}$/);
  t.match((await h.exec(['ip', 'link', 'show', hostIf])).stdout, /ee:ee:ee:ee:ee:ee/);

  // Traffic through tortie's datapath; then policy by container name.
  const srvHost = (await h.podman(['exec', 'srv', 'hostname'])).stdout.trim();
  t.ok(await eventually(async () => (await h.probe('good_client', srv.ip)) === `hello from ${srvHost}`, true, 20_000),
    'good_client reaches srv through tortie\'s datapath');
  t.ok(await eventually(async () => (await h.probe(anon.name, srv.ip)) !== '', true, 10_000), `${anon.name} reaches srv`);
  await h.rc.create({
    apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'srv-from-good', namespace: 'default' },
    spec: {
      selector: `${CONTAINER_NAME_LABEL} == 'srv'`, types: ['Ingress'],
      ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: `${CONTAINER_NAME_LABEL} == 'good_client' && net == '${h.network}'` } }],
    },
  } as Resource);
  t.ok(await eventually(async () => (await h.probe(anon.name, srv.ip)) === '', true, 20_000), `policy: ${anon.name} refused`);
  t.not(await h.probe('good_client', srv.ip), '', 'policy: good_client still allowed');

  // podman network reload: tortie's ADD again for the same container: same address, same endpoint.
  const reload = await h.podman(['network', 'reload', 'srv'], { allowFail: true });
  t.equal(reload.code, 0, `podman network reload: ${reload.stderr}`);
  t.equal((await h.inspect('srv')).ip, srv.ip, 'reload keeps the address');
  t.ok(await eventually(async () => (await h.probe('good_client', srv.ip)) !== '', true, 20_000), 'still reachable after reload');
  t.ok(await eventually(async () => (await h.probe(anon.name, srv.ip)) === '', true, 20_000), 'still refused after reload');

  // Labels are the runtime's: tortiectl refuses to edit the endpoint's, naming the durable sources.
  const label = await h.exec(['env', 'NODE_OPTIONS=', 'DATASTORE_TYPE=embedded', `TORTIE_DATASTORE_DIR=${h.storeDir}`, process.execPath, TORTIECTL,
    'label', 'workloadendpoints', srvWep.metadata.name, '--namespace=default', 'role=db'], { allowFail: true });
  t.equal(label.code, 1, label.stdout);
  t.match(label.stderr, /cannot change labels of workloadendpoints .*written by the CNI plugin on every ADD.*labelsToApply of its Profile/);

  // CHECK as a runtime runs it, from libcni's cached result; it notices proxy_arp=0 and a
  // missing container route; DEL is idempotent.
  const cache = JSON.parse((await h.exec(['cat', `/var/lib/cni/results/${h.network}-${srvId}-eth0`])).stdout);
  const conflist = JSON.parse((await h.exec(['cat', `${h.netDir}/10-tortie.conflist`])).stdout);
  const conf = { ...conflist.plugins[0], cniVersion: conflist.cniVersion, name: conflist.name, prevResult: cache.result };
  const cni = (command: string, extra: Record<string, string> = {}) => h.exec(['env', ...Object.entries({
    CNI_COMMAND: command, CNI_CONTAINERID: srvId, CNI_NETNS: srv.sandbox, CNI_IFNAME: 'eth0', CNI_PATH: h.cniBin,
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=srv', ...extra,
  }).map(([k, v]) => `${k}=${v}`), `${h.cniBin}/tortie`], { allowFail: true, input: JSON.stringify(conf) });
  const ok = await cni('CHECK');
  t.equal(ok.code, 0, `CHECK of a healthy container: ${ok.stdout}`);
  await h.exec(['sysctl', '-qw', `net.ipv4.conf.${hostIf}.proxy_arp=0`]);
  const noArp = await cni('CHECK');
  t.equal(JSON.parse(noArp.stdout).code, 103);
  t.match(JSON.parse(noArp.stdout).msg, /proxy_arp is 0, expected 1/);
  await h.exec(['sysctl', '-qw', `net.ipv4.conf.${hostIf}.proxy_arp=1`]);
  await h.exec(['nsenter', `--net=${srv.sandbox}`, 'ip', 'route', 'del', 'default']);
  const noRoute = await cni('CHECK');
  t.match(JSON.parse(noRoute.stdout).msg, /default route via 169\.254\.1\.1 dev eth0 missing/);
  await h.exec(['nsenter', `--net=${srv.sandbox}`, 'ip', 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
  const version = await h.exec(['env', 'CNI_COMMAND=VERSION', `${h.cniBin}/tortie`], { input: '{"cniVersion":"0.4.0"}' });
  t.same(JSON.parse(version.stdout), { cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });

  // stop → DEL: the endpoint, the veth and the address go.
  const stop = await h.podman(['stop', '-t', '0', anon.name]);
  t.equal(stop.code, 0);
  t.ok(await eventually(async () => (await h.rc.list('WorkloadEndpoint', 'default')).items.every((w) => (w as WorkloadEndpoint).spec.containerID !== anon.id), true, 20_000),
    'endpoint deleted on stop');
  const ipam = new IpamClient(h.ds);
  t.same(await ipam.ipsByHandle(`${h.network}.${anon.id}`), [], 'address released on stop');
  const delAgain = await h.exec(['env', 'CNI_COMMAND=DEL', `CNI_CONTAINERID=${anon.id}`, 'CNI_NETNS=', 'CNI_IFNAME=eth0', `CNI_PATH=${h.cniBin}`,
    'CNI_ARGS=IgnoreUnknown=1', `${h.cniBin}/tortie`], { allowFail: true, input: JSON.stringify({ ...conf, prevResult: undefined }) });
  t.equal(delAgain.code, 0, `DEL again after stop is a no-op: ${delAgain.stdout}`);

  // 5 concurrent podman runs: distinct addresses, all reachable.
  const ids = await Promise.all([0, 1, 2, 3, 4].map((i) => h.runDetached(['--name', `par_${i}`], ['nc', '-ll', '-p', '8080', '-e', '/bin/hello'])));
  const par = await Promise.all(ids.map((id) => h.inspect(id)));
  const ips = par.map((c) => c.ip);
  t.equal(new Set(ips).size, 5, `5 concurrent runs, 5 distinct addresses: ${ips.join(' ')}`);
  for (const ip of ips) {
    t.match(ip, /^192\.168\.60\.\d+$/);
    t.ok(await eventually(async () => (await h.probe('good_client', ip)) !== '', true, 20_000), `${ip} reachable`);
  }

  // DEL of everything: no endpoint, no address, no cali interface left.
  t.equal((await h.podman(['rm', '-af', '-t', '0'])).code, 0);
  t.same((await h.rc.list('WorkloadEndpoint', 'default')).items, [], 'no endpoint left');
  t.same((await h.ds.list('/calico/ipam/v2/handle/')).items.length, 0, 'no IPAM handle left');
  t.notMatch((await h.exec(['ip', '-o', 'link'])).stdout, /cali[0-9a-f]{11}/, 'no cali interface left');
});

t.test('podman run with the agent\'s CNI socket disabled: the wrappers start the plugin process', async (t) => {
  const h = new PodmanHost('podmanproc');
  t.teardown(() => h.destroy());
  await h.start();
  await h.rc.create(pool('default-ipv4-ippool', POOL, { ipipMode: 'Never' }));
  await h.rc.create({
    apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: h.network },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
  } as Resource);
  h.startAgent({ cniSocket: false });
  await h.waitAgentReady();
  t.notOk(existsSync(h.agentSocket), 'tortie-node --cni-socket none serves no socket');
  const ids = await Promise.all(['srv', 'a', 'b', 'c', 'd'].map((n) => h.runDetached(['--name', n],
    n === 'srv' ? ['nc', '-ll', '-p', '8080', '-e', '/bin/hello'] : ['sleep', '3600'])));
  const cs = await Promise.all(ids.map((id) => h.inspect(id)));
  t.equal(new Set(cs.map((c) => c.ip)).size, 5, `5 concurrent runs through plugin processes, distinct addresses: ${cs.map((c) => c.ip).join(' ')}`);
  t.ok(await eventually(async () => (await h.probe('a', cs[0]!.ip)) !== '', true, 20_000), 'a reaches srv');
  t.equal((await h.podman(['stop', '-t', '0', 'b'])).code, 0);
  t.ok(await eventually(async () => (await h.rc.list('WorkloadEndpoint', 'default')).items.length === 4, true, 20_000), 'DEL on stop');
  t.equal((await h.podman(['rm', '-af', '-t', '0'])).code, 0);
  t.same((await h.rc.list('WorkloadEndpoint', 'default')).items, [], 'no endpoint left');
  t.same((await h.ds.list('/calico/ipam/v2/handle/')).items.length, 0, 'no IPAM handle left');
});
