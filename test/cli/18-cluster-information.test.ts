import t from 'tap';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';
import { EmbeddedDatastore } from '../../src/datastore';
import { ResourceClient } from '../../src/client/resources';
import { ensureClusterInformation } from '../../src/node/cluster-info';
import { silentLogger } from '../../src/util/log';
import { VERSION } from '../../src/version';

t.test('ClusterInformation: made by tortie-node at start, shown by tortiectl version as Cluster Version / Type', async (t) => {
  const cli = cliFor(t);
  const before = await cli.run(['version']);
  t.equal(before.code, 0);
  t.match(before.stdout, /^Client Version: +v\d+\.\d+\.\d+\nGit commit: +\S+\nUnable to retrieve Cluster Version or Type: no datastore at .*\/store \(no tortie-node has run against it\)\n$/);
  t.notOk(require('node:fs').existsSync(cli.storeDir), 'asking did not create the store');

  const ds = new EmbeddedDatastore({ dir: cli.storeDir });
  t.teardown(() => ds.close());
  const client = new ResourceClient(ds);
  const first = await ensureClusterInformation(client, 'v0.0.9', 'tortie,k8s', silentLogger);
  t.match(first.spec.clusterGUID, /^[0-9a-f]{32}$/);
  t.equal(first.spec.datastoreReady, true);
  const again = await ensureClusterInformation(client, `v${VERSION}`, 'tortie', silentLogger);
  t.equal(again.spec.clusterGUID, first.spec.clusterGUID, 'the GUID is made once');
  t.equal(again.spec.calicoVersion, `v${VERSION}`, 'the version follows the node software that last started');

  const v = await cli.run(['version']);
  t.match(v.stdout, new RegExp(`\\nCluster Version:   v${VERSION.replace(/\./g, '\\.')}\\nCluster Type:      tortie\\n$`));
  const y = YAML.parse((await cli.run(['get', 'clusterinformation', 'default', '-o', 'yaml'])).stdout);
  t.same(y.spec, { clusterGUID: first.spec.clusterGUID, clusterType: 'tortie', calicoVersion: `v${VERSION}`, datastoreReady: true });

  cli.file('ci.yaml', 'apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata: {name: default}\nspec: {datastoreReady: false}\n');
  const r = await cli.run(['apply', '-f', 'ci.yaml']);
  t.equal(r.code, 1);
  t.match(r.stderr, /ClusterInformation default: spec\.datastoreReady: false is not supported: tortie-node does not pause/);
  cli.file('ci2.yaml', 'apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata: {name: other}\nspec: {}\n');
  t.match((await cli.run(['apply', '-f', 'ci2.yaml'])).stderr, /metadata\.name: must be "default"/);
});
