import t from 'tap';
import { EtcdDatastore } from '../../src/datastore/etcd';
import { conformance } from './helpers/conformance';
import { EtcdCluster } from '../../src/testbed/etcd';

void (async () => {
  const cluster = await EtcdCluster.start(1);
  t.teardown(() => cluster.stop());
  const endpoints = cluster.endpoints();
  await conformance(t, {
    name: 'etcdv3',
    open: () => new EtcdDatastore({ endpoints }),
    config: { type: 'etcdv3', endpoints },
    crashLoops: 3,
  });
})();
