import t from 'tap';
import * as fs from 'node:fs';
import YAML from 'yaml';
import { EtcdCluster } from '../../src/testbed/etcd';
import { cliFor, V1_POOL } from './helpers/cli';

// The same CLI against a real etcd (single member on 127.0.0.1, started and removed here),
// selected the three calicoctl ways: environment, flags, and a CalicoAPIConfig file.
t.test('tortiectl on etcd v3', { skip: fs.existsSync('/usr/bin/etcd') ? false : 'no /usr/bin/etcd on this machine' }, async (t) => {
  const cluster = await EtcdCluster.start(1);
  t.teardown(() => cluster.stop());
  const endpoints = cluster.endpoints().join(',');
  const cli = cliFor(t, 'tortiectl-etcd-');
  const env = { PATH: process.env.PATH, DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: endpoints };

  t.same(await cli.run(['apply', '-f', '-'], { stdin: V1_POOL, env }), { code: 0, stdout: "Successfully applied 1 'IPPool' resource(s)\n", stderr: '' });
  t.notOk(fs.existsSync(cli.storeDir), 'the embedded store was not touched');

  const dumped = await cli.run(['get', 'ipPool', '-o', 'yaml'], { env });
  t.equal(dumped.code, 0);
  cli.file('pool.yaml', dumped.stdout.replace('natOutgoing: true', 'natOutgoing: false'));
  t.equal((await cli.run(['replace', '-f', 'pool.yaml'], { env })).code, 0);
  const stale = await cli.run(['replace', '-f', 'pool.yaml'], { env });
  t.equal(stale.code, 1);
  t.match(stale.stderr, /^Failed to replace 'IPPool' resource: update conflict: IPPool\(192-168-0-0-16\): resourceVersion '\d+' is out of date \(current: \d+\)/);

  const viaFlags = await cli.run(['get', 'ippool', '-o', 'wide', '--datastore-type=etcdv3', `--etcd-endpoints=${endpoints}`], { env: { PATH: process.env.PATH } });
  t.match(viaFlags.stdout, /192-168-0-0-16 +192\.168\.0\.0\/16 +false +CrossSubnet/);

  const cfg = cli.file('calicoctl.cfg', `apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  datastoreType: "etcdv3"\n  etcdEndpoints: "${endpoints}"\n`);
  const viaFile = await cli.run(['get', 'ippool', '192-168-0-0-16', '-o', 'yaml', '-c', cfg], { env: { PATH: process.env.PATH } });
  t.equal(YAML.parse(viaFile.stdout).spec.cidr, '192.168.0.0/16');

  t.same(await cli.run(['delete', 'ippool', '192-168-0-0-16'], { env }), { code: 0, stdout: "Successfully deleted 1 'IPPool' resource(s)\n", stderr: '' });
  t.equal((await cli.run(['get', 'ippool', '192-168-0-0-16'], { env })).code, 1);

  // An unreachable etcd fails with a message, not a hang.
  const down = await cli.run(['get', 'nodes'], { env: { PATH: process.env.PATH, DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://127.0.0.1:9' } });
  t.equal(down.code, 1);
  t.match(down.stderr, /etcd/i);
  const downApply = await cli.run(['apply', '-f', '-'], { stdin: V1_POOL, env: { PATH: process.env.PATH, DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://127.0.0.1:9' } });
  t.equal(downApply.code, 1);
  t.match(downApply.stderr, /^Failed to apply any resources: cannot read the datastore: etcd /);
});
