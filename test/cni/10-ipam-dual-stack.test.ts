/**
 * The real `tortie-ipam` binary (exec'd as a runtime or the `tortie` plugin would) with Calico's
 * dual-stack IPAM configuration: `assign_ipv4` / `assign_ipv6` strings, `ipv4_pools` /
 * `ipv6_pools`, CNI_ARGS IP= with one address per family; results with both families, CHECK
 * and DEL over both, and the rollback of one family when the other fails.
 */
import t from 'tap';
import { cniBed, runPlugin } from '../../src/testbed';
import { pool } from '../../src/testbed/fixtures';
import { handleKey } from '../../src/ipam';

t.test('tortie-ipam: dual-stack ADD, repeat, CHECK, DEL; assign_ipv4 false; pools per family', async (t) => {
  const bed = await cniBed('cniv6', '192.168.79.0/24');
  t.teardown(() => bed.destroy());
  await bed.store.rc.create(pool('default-ipv6-ippool', 'fd00:79::/120'));
  await bed.store.rc.create(pool('other-ipv6-ippool', 'fd00:7a::/120'));
  const pod = await bed.addWorkload('pod');
  const base = { CNI_COMMAND: 'ADD', CNI_NETNS: `/run/netns/${pod.name}`, CNI_IFNAME: 'eth0' };
  const run = (env: Record<string, string>, conf: Record<string, unknown>) => runPlugin(bed.node, 'tortie-ipam', { ...base, ...env }, conf, bed.cniPath);
  const dual = { type: 'tortie-ipam', assign_ipv4: 'true', assign_ipv6: 'true' };

  const a = await run({ CNI_CONTAINERID: 'd1' }, bed.conf({ ipam: dual }));
  t.equal(a.code, 0, a.stdout);
  const ips = (a.out?.ips as { address: string }[]).map((x) => x.address);
  t.equal(ips.length, 2, 'one address per family');
  t.match(ips[0]!, /^192\.168\.79\.\d+\/26$/, 'IPv4 first, with its block\'s prefix (libcalico-go\'s AutoAssign)');
  t.match(ips[1]!, /^fd00:79::[0-9a-f]*\/122$/, 'then IPv6 in Go\'s text form, with its /122 block\'s prefix');
  const again = await run({ CNI_CONTAINERID: 'd1' }, bed.conf({ ipam: dual }));
  t.same((again.out?.ips as { address: string }[]).map((x) => x.address), ips, 'a repeated ADD returns the same two');
  const old = await run({ CNI_CONTAINERID: 'd1' }, bed.conf({ cniVersion: '0.4.0', ipam: dual }));
  t.same(old.out?.ips, [{ address: ips[0], version: '4' }, { address: ips[1], version: '6' }], '0.4.0 result: version per address');
  const h = (await bed.store.ds.get(handleKey('k8s-pod-network.d1')))?.value as { block: Record<string, number> };
  t.equal(Object.keys(h.block).length, 2, 'one handle, a block of each family');

  const chk = await run({ CNI_CONTAINERID: 'd1', CNI_COMMAND: 'CHECK' }, bed.conf({ ipam: dual, prevResult: again.out }));
  t.equal(chk.code, 0, `CHECK over both families: ${chk.stdout}`);
  const chkV4 = await run({ CNI_CONTAINERID: 'd1', CNI_COMMAND: 'CHECK' }, bed.conf({ ipam: dual, prevResult: { cniVersion: '1.0.0', ips: [{ address: ips[0] }] } }));
  t.equal(chkV4.out?.code, 103, 'CHECK fails when prevResult lacks the IPv6 address');
  t.match(String(chkV4.out?.msg), /fd00:79::/);

  // Default (no assign_* fields): IPv4 only, as Calico's.
  const v4only = await run({ CNI_CONTAINERID: 'd2' }, bed.conf());
  t.same((v4only.out?.ips as { address: string }[]).map((x) => x.address.includes(':')), [false], 'without assign_ipv6: IPv4 only');
  // assign_ipv4 "false": IPv6 only, from the pool ipv6_pools names.
  const v6only = await run({ CNI_CONTAINERID: 'd3' }, bed.conf({ ipam: { type: 'tortie-ipam', assign_ipv4: 'false', assign_ipv6: 'true', ipv6_pools: ['other-ipv6-ippool'] } }));
  t.equal(v6only.code, 0, v6only.stdout);
  t.match((v6only.out?.ips as { address: string }[]).map((x) => x.address), [/^fd00:7a::[0-9a-f]*\/122$/]);

  // An IPv6 failure after the IPv4 success gives the IPv4 address back.
  const bad6 = await run({ CNI_CONTAINERID: 'd4' }, bed.conf({ ipam: { ...dual, ipv6_pools: ['default-ipv4-ippool'] } }));
  t.equal(bad6.out?.code, 101);
  t.match(String(bad6.out?.msg), /assigning an IPv6 address: requested IP pool "default-ipv4-ippool" \(192\.168\.79\.0\/24\) is not an IPv6 pool/);
  t.equal(await bed.store.ds.get(handleKey('k8s-pod-network.d4')), undefined, 'the IPv4 address taken first was released: no handle left');

  // CNI_ARGS IP=: one address per family, exactly those.
  const exact = await run({ CNI_CONTAINERID: 'd5', CNI_ARGS: 'IP=192.168.79.200,fd00:79:0::c8' }, bed.conf({ ipam: dual }));
  t.equal(exact.code, 0, exact.stdout);
  t.same(exact.out?.ips, [{ address: '192.168.79.200/32' }, { address: 'fd00:79::c8/128' }], 'requested addresses: /32 and /128, as Calico\'s AssignIP path');
  const two6 = await run({ CNI_CONTAINERID: 'd6', CNI_ARGS: 'IP=fd00:79::c9,fd00:79::ca' }, bed.conf({ ipam: dual }));
  t.equal(two6.out?.code, 4);
  t.match(String(two6.out?.msg), /names more than one IPv6 address/);
  const taken = await run({ CNI_CONTAINERID: 'd7', CNI_ARGS: 'IP=192.168.79.201,fd00:79::c8' }, bed.conf({ ipam: dual }));
  t.equal(taken.out?.code, 101, 'an address another container holds');
  t.match(String(taken.out?.msg), /fd00:79::c8 is already assigned/);
  t.equal(await bed.store.ds.get(handleKey('k8s-pod-network.d7')), undefined, 'and the IPv4 address it took first is released');

  // DEL releases both families.
  t.equal((await run({ CNI_CONTAINERID: 'd1', CNI_COMMAND: 'DEL' }, bed.conf({ ipam: dual }))).code, 0);
  t.equal(await bed.store.ds.get(handleKey('k8s-pod-network.d1')), undefined, 'handle gone');
  const reuse6 = await run({ CNI_CONTAINERID: 'd8', CNI_ARGS: `IP=${ips[1]!.split('/')[0]}` }, bed.conf({ ipam: dual }));
  t.equal(reuse6.code, 0, `the released IPv6 address is free again: ${reuse6.stdout}`);

  // Calico's strings, checked.
  for (const [ipam, field, msg] of [
    [{ type: 'tortie-ipam', assign_ipv6: true }, 'ipam.assign_ipv6', /must be the string "true" or "false", got true/],
    [{ type: 'tortie-ipam', assign_ipv4: 'no' }, 'ipam.assign_ipv4', /got "no"/],
    [{ type: 'tortie-ipam', assign_ipv4: 'false' }, 'ipam.assign_ipv4', /leaves no address to assign/],
    [{ type: 'tortie-ipam', ipv6_pools: 'fd00::/64' }, 'ipam.ipv6_pools', /must be a list of pool names or CIDRs/],
  ] as const) {
    const r = await run({ CNI_CONTAINERID: 'bad' }, bed.conf({ ipam }));
    t.equal(r.out?.code, 7, `${field}: invalid configuration`);
    t.match(String(r.out?.msg), field);
    t.match(String(r.out?.msg), msg);
  }
});

t.test('assign_ipv6 "true" with no IPv6 pool fails naming the family, and gives the IPv4 address back', async (t) => {
  const bed = await cniBed('cniv6none', '192.168.80.0/24');
  t.teardown(() => bed.destroy());
  const pod = await bed.addWorkload('pod');
  const env = { CNI_COMMAND: 'ADD', CNI_NETNS: `/run/netns/${pod.name}`, CNI_IFNAME: 'eth0', CNI_CONTAINERID: 'none1' };
  const r = await runPlugin(bed.node, 'tortie-ipam', env, bed.conf({ ipam: { type: 'tortie-ipam', assign_ipv6: 'true' } }), bed.cniPath);
  t.not(r.code, 0, 'the ADD fails');
  t.match(String(r.out?.msg), /IPv6/, `the error names the family: ${r.out?.msg}`);
  t.equal(await bed.store.ds.get(handleKey('k8s-pod-network.none1')), undefined, 'the IPv4 address taken first was released: no handle left');
});

t.test('the tortie plugin records both families in the WorkloadEndpoint (policy_only: no wiring involved)', async (t) => {
  const bed = await cniBed('cniv6pol');
  t.teardown(() => bed.destroy());
  const pod = await bed.addWorkload('pod');
  const hostIf = 'enidual0';
  await bed.topo.addVeth(bed.node, hostIf, pod, 'eth0');
  const prevResult = {
    cniVersion: '1.0.0',
    interfaces: [{ name: hostIf }, { name: 'eth0', sandbox: `/run/netns/${pod.name}` }],
    ips: [{ address: 'FD00:41:0::7/128', interface: 1 }, { address: '198.18.41.7/32', interface: 1 }],
  };
  const conf = bed.conf({ policy_only: true, interface_prefix: 'eni', ipam: undefined, prevResult });
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'dual01', CNI_NETNS: `/run/netns/${pod.name}`, CNI_IFNAME: 'eth0', CNI_ARGS: 'K8S_POD_NAMESPACE=shop;K8S_POD_NAME=dual-1' };
  const add = await runPlugin(bed.node, 'tortie', env, conf, bed.cniPath);
  t.equal(add.code, 0, add.stdout);
  const weps = (await bed.store.rc.list('WorkloadEndpoint', 'shop')).items;
  t.same(weps[0]?.spec.ipNetworks, ['198.18.41.7/32', 'fd00:41::7/128'], 'IPv4 first, then the IPv6 /128 in Go\'s text form');
  const chk = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'CHECK' }, conf, bed.cniPath);
  t.equal(chk.code, 0, `CHECK compares both families: ${chk.stdout}`);
  const v4only = { ...prevResult, ips: [prevResult.ips[1]!] };
  const chkBad = await runPlugin(bed.node, 'tortie', { ...env, CNI_COMMAND: 'CHECK' }, { ...conf, prevResult: v4only }, bed.cniPath);
  t.equal(chkBad.out?.code, 103);
  t.match(String(chkBad.out?.msg), /ipNetworks \[198\.18\.41\.7\/32, fd00:41::7\/128\] differ from prevResult \[198\.18\.41\.7\/32\]/);
});
