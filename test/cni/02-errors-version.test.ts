/**
 * VERSION, and every malformed input producing the spec's error object on stdout with the right
 * code and a message naming the culprit; tortie-ipam on its own (ADD/CHECK/DEL, exhaustion).
 * The plugins run inside a test namespace; none of these inputs gets as far as creating links.
 */
import t from 'tap';
import { cniBed, runPlugin } from '../../src/testbed';

t.test('errors and VERSION', async (t) => {
  const bed = await cniBed('cnierr', '192.168.77.0/32', { blockSize: 32 });
  t.teardown(() => bed.destroy());
  const pod = await bed.addWorkload('pod');
  const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c0ffee', CNI_NETNS: `/run/netns/${pod.name}`, CNI_IFNAME: 'eth0' };
  const run = (env: Record<string, string>, stdin: string | object, plugin: 'tortie' | 'tortie-ipam' = 'tortie') =>
    runPlugin(bed.node, plugin, env, stdin, bed.cniPath);

  for (const plugin of ['tortie', 'tortie-ipam'] as const) {
    const v = await run({ CNI_COMMAND: 'VERSION' }, '', plugin);
    t.equal(v.code, 0);
    t.same(v.out, { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] }, `${plugin} VERSION`);
    const v4 = await run({ CNI_COMMAND: 'VERSION' }, { cniVersion: '0.4.0' }, plugin);
    t.equal(v4.out?.cniVersion, '0.4.0', 'VERSION answers in the version it was asked with');
  }

  const cases: [string, Record<string, string>, string | object, number, RegExp][] = [
    ['no CNI_COMMAND', { CNI_COMMAND: '' }, bed.conf(), 4, /CNI_COMMAND is not set/],
    ['bad CNI_COMMAND', { ...base, CNI_COMMAND: 'UPDATE' }, bed.conf(), 4, /CNI_COMMAND="UPDATE"/],
    ['no CNI_CONTAINERID', { ...base, CNI_CONTAINERID: '' }, bed.conf(), 4, /CNI_CONTAINERID is required/],
    ['bad CNI_CONTAINERID', { ...base, CNI_CONTAINERID: '../x' }, bed.conf(), 4, /CNI_CONTAINERID="\.\.\/x"/],
    ['no CNI_NETNS on ADD', { ...base, CNI_NETNS: '' }, bed.conf(), 4, /CNI_NETNS is required/],
    ['CNI_NETNS missing', { ...base, CNI_NETNS: '/run/netns/tortie-no-such-ns' }, bed.conf(), 4, /CNI_NETNS="\/run\/netns\/tortie-no-such-ns" does not exist/],
    ['long CNI_IFNAME', { ...base, CNI_IFNAME: 'averyveryverylongname' }, bed.conf(), 4, /CNI_IFNAME="averyveryverylongname"/],
    ['bad CNI_ARGS', { ...base, CNI_ARGS: 'K8S_POD_NAME' }, bed.conf(), 4, /CNI_ARGS: "K8S_POD_NAME" is not KEY=VALUE/],
    ['stdin not JSON', base, '{"cniVersion": ', 6, /not valid JSON/],
    ['stdin an array', base, '[]', 6, /must be a JSON object/],
    ['no cniVersion', base, { name: 'n', type: 'tortie', ipam: { type: 'tortie-ipam' } }, 1, /no cniVersion; supported versions are 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0/],
    ['old cniVersion', base, bed.conf({ cniVersion: '0.2.0' }), 1, /cniVersion "0\.2\.0" is not supported/],
    ['CHECK on 0.3.1', { ...base, CNI_COMMAND: 'CHECK' }, bed.conf({ cniVersion: '0.3.1' }), 1, /CHECK needs cniVersion 0\.4\.0/],
    ['no name', base, bed.conf({ name: undefined }), 7, /field name: is required/],
    ['no ipam', base, bed.conf({ ipam: undefined }), 7, /field ipam: is required unless policy_only/],
    ['bad mtu', base, bed.conf({ mtu: 'big' }), 7, /field mtu: "big" must be an integer/],
    ['bad datastore_type', base, bed.conf({ datastore_type: 'kubernetes' }), 7, /datastore_type: "kubernetes" is not supported/],
    ['bad port', base, bed.conf({ args: { cni: { ports: [{ name: 'http', port: 70000 }] } } }), 7, /args\.cni\.ports\[0\]\.port: 70000/],
    ['bad policy_only', base, bed.conf({ policy_only: 'yes' }), 7, /policy_only: must be true or false/],
    ['bad interface_prefix', base, bed.conf({ interface_prefix: 'toolong' }), 7, /interface_prefix: "toolong"/],
    ['ipam plugin not on CNI_PATH', base, bed.conf({ ipam: { type: 'host-local' } }), 7, /IPAM plugin "host-local" not found on CNI_PATH/],
  ];
  for (const [what, env, stdin, code, msg] of cases) {
    const r = await run(env, stdin);
    t.equal(r.code, 1, `${what}: exit status 1`);
    t.equal(r.out?.code, code, `${what}: code ${code} (${String(r.out?.msg)})`);
    t.match(String(r.out?.msg), msg, `${what}: message`);
    t.type(r.out?.cniVersion, 'string', `${what}: error object carries cniVersion`);
  }
  const r031 = await run({ ...base, CNI_NETNS: '/run/netns/tortie-no-such-ns' }, bed.conf({ cniVersion: '0.3.1' }));
  t.equal(r031.out?.cniVersion, '0.3.1', 'errors answer in the configuration\'s version');
  t.same(await bed.store.ds.list('/calico/ipam/'), { items: [], revision: (await bed.store.ds.list('/calico/ipam/')).revision }, 'no failed ADD touched IPAM');

  // tortie-ipam alone, on a one-address pool.
  const ipamEnv = { ...base, CNI_CONTAINERID: 'ipam1' };
  const a = await run(ipamEnv, bed.conf({ cniVersion: '0.4.0' }), 'tortie-ipam');
  t.equal(a.code, 0, a.stdout);
  t.same(a.out, { cniVersion: '0.4.0', ips: [{ address: '192.168.77.0/32', version: '4' }], routes: [] }, '0.4.0 result shape');
  const again = await run(ipamEnv, bed.conf(), 'tortie-ipam');
  t.same(again.out, { cniVersion: '1.0.0', ips: [{ address: '192.168.77.0/32' }], routes: [] }, 'repeat ADD: same address, 1.0.0 shape');
  const full = await run({ ...base, CNI_CONTAINERID: 'ipam2' }, bed.conf(), 'tortie-ipam');
  t.equal(full.out?.code, 101, 'pool exhausted: IPAM failure');
  t.match(String(full.out?.msg), /no free address left in the IP pools usable by node "node-a" \(192\.168\.77\.0\/32\)/);
  const fullViaTortie = await run({ ...base, CNI_CONTAINERID: 'ipam3' }, bed.conf());
  t.equal(fullViaTortie.out?.code, 101, 'delegated IPAM error code passes through tortie');
  t.match(String(fullViaTortie.out?.msg), /assigning an IPv4 address: no free address/, 'tortie-ipam runs in-process: its message, unwrapped');
  const chk = await run({ ...ipamEnv, CNI_COMMAND: 'CHECK' }, bed.conf({ prevResult: again.out }), 'tortie-ipam');
  t.equal(chk.code, 0, `ipam CHECK: ${chk.stdout}`);
  const chkBad = await run({ ...ipamEnv, CNI_COMMAND: 'CHECK' }, bed.conf({ prevResult: { cniVersion: '1.0.0', ips: [{ address: '192.168.77.9/32' }] } }), 'tortie-ipam');
  t.equal(chkBad.out?.code, 103);
  t.match(String(chkBad.out?.msg), /owns \[192\.168\.77\.0\] but prevResult lists \[192\.168\.77\.9\]/);
  t.equal((await run({ ...ipamEnv, CNI_COMMAND: 'DEL' }, bed.conf(), 'tortie-ipam')).code, 0);
  t.equal((await run({ ...ipamEnv, CNI_COMMAND: 'DEL' }, bed.conf(), 'tortie-ipam')).code, 0, 'repeat DEL');
  const after = await run({ ...base, CNI_CONTAINERID: 'ipam2' }, bed.conf(), 'tortie-ipam');
  t.equal(after.code, 0, 'the released address is assignable again');

  const wrongPool = await run({ ...base, CNI_CONTAINERID: 'ipam4' }, bed.conf({ ipam: { type: 'tortie-ipam', ipv4_pools: ['other-pool'] } }), 'tortie-ipam');
  t.equal(wrongPool.out?.code, 101, 'ipam.ipv4_pools restricts the pools');
  t.match(String(wrongPool.out?.msg), /requested IP pool "other-pool" does not exist/);

  const noPool = await cniBed('cnierr2', '192.168.78.0/24', { disabled: true });
  t.teardown(() => noPool.destroy());
  const np = await runPlugin(noPool.node, 'tortie-ipam', base, noPool.conf(), noPool.cniPath);
  t.equal(np.out?.code, 101);
  t.match(String(np.out?.msg), /no enabled IPv4 pool is usable by node "node-a"/);
});
