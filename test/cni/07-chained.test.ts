/**
 * Policy-only chaining (the EKS arrangement): Debian's `ptp` or `bridge` plugin (with host-local
 * IPAM) does the networking for real podman containers, `tortie` chained after it with
 * `policy_only: true` records the workload endpoint on the host interface that plugin made, and
 * tortie-node (FELIX_INTERFACEPREFIX "cali,veth") enforces policy on it. Same harness as
 * 06-podman (private mount namespace, nothing in the root namespace).
 */
import t from 'tap';
import { PodmanHost } from './helpers/podman';
import { eventually } from '../../src/testbed';
import { CONTAINER_NAME_LABEL } from '../../src/model/wep-labels';
import type { Resource } from '../../src/model';
import type { WorkloadEndpoint } from '../../src/model/types';

const CASES: [string, string, Record<string, unknown>][] = [
  ['ptp', '192.168.70', { type: 'ptp', ipMasq: false, mtu: 1500 }],
  ['bridge', '192.168.71', { type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, hairpinMode: false }],
];

for (const [plugin, net, entry] of CASES) {
  t.test(`tortie chained after ${plugin}`, async (t) => {
    const h = new PodmanHost(`chain${plugin}`);
    t.teardown(() => h.destroy());
    const conflist = {
      cniVersion: '1.0.0', name: h.network,
      plugins: [
        { ...entry, ipam: { type: 'host-local', ranges: [[{ subnet: `${net}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'tortie', policy_only: true, nodename: h.nodeName, datastore_type: 'embedded', datastore_path: h.storeDir, log_level: 'warn' },
      ],
    };
    await h.start(conflist);
    await h.rc.create({
      apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: h.network },
      spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
    } as Resource);
    h.startAgent();
    await h.waitAgentReady();

    const srvId = await h.runDetached(['--name', 'srv'], ['nc', '-ll', '-p', '8080', '-e', '/bin/hello']);
    await h.runDetached(['--name', 'good'], ['sleep', '3600']);
    await h.runDetached(['--name', 'bad'], ['sleep', '3600']);
    const srv = await h.inspect('srv');
    t.match(srv.ip, new RegExp(`^${net.replace(/\./g, '\\.')}\\.\\d+$`), `address from ${plugin}'s host-local: ${srv.ip}`);

    // The endpoint names the veth the other plugin made (the peer of the container's eth0).
    const weps = (await h.rc.list('WorkloadEndpoint', 'default')).items as WorkloadEndpoint[];
    t.equal(weps.length, 3);
    const srvWep = weps.find((w) => w.spec.containerID === srvId)!;
    const iface = srvWep.spec.interfaceName!;
    t.match(iface, /^veth[0-9a-f]{8}$/, `host interface from ${plugin}: ${iface}`);
    const contLink = JSON.parse((await h.exec(['nsenter', `--net=${srv.sandbox}`, 'ip', '-j', 'link', 'show', 'eth0'])).stdout)[0];
    const hostLink = JSON.parse((await h.exec(['ip', '-j', 'link', 'show', iface])).stdout)[0];
    t.equal(contLink.link_index, hostLink.ifindex, 'it is the peer of eth0');
    t.same(srvWep.spec.ipNetworks, [`${srv.ip}/32`]);
    t.equal(srvWep.metadata.labels?.[CONTAINER_NAME_LABEL], 'srv');
    t.notMatch((await h.exec(['ip', '-o', 'link'])).stdout, /cali[0-9a-f]{11}/, 'tortie made no interface of its own');

    const srvHost = (await h.podman(['exec', 'srv', 'hostname'])).stdout.trim();
    t.ok(await eventually(async () => (await h.probe('good', srv.ip)) === `hello from ${srvHost}`, true, 20_000), 'good reaches srv');
    t.ok(await eventually(async () => (await h.probe('bad', srv.ip)) !== '', true, 20_000), 'bad reaches srv before the policy');
    await h.rc.create({
      apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'srv-from-good', namespace: 'default' },
      spec: {
        selector: `${CONTAINER_NAME_LABEL} == 'srv'`, types: ['Ingress'],
        ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: `${CONTAINER_NAME_LABEL} == 'good'` } }],
      },
    } as Resource);
    t.ok(await eventually(async () => (await h.probe('bad', srv.ip)) === '', true, 20_000), 'policy: bad refused');
    t.not(await h.probe('good', srv.ip), '', 'policy: good still allowed');

    // stop → DEL through the chain: the endpoint goes, the other plugin removes its veth.
    t.equal((await h.podman(['stop', '-t', '0', 'srv'])).code, 0);
    t.ok(await eventually(async () => (await h.rc.list('WorkloadEndpoint', 'default')).items.every((w) => (w as WorkloadEndpoint).spec.containerID !== srvId), true, 20_000),
      'endpoint deleted on stop');
    t.not((await h.exec(['ip', 'link', 'show', iface], { allowFail: true })).code, 0, `${plugin} removed ${iface}`);
    t.equal((await h.podman(['rm', '-af', '-t', '0'])).code, 0);
    t.same((await h.rc.list('WorkloadEndpoint', 'default')).items, [], 'no endpoint left');
  });
}
