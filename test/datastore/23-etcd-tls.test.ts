import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import { openDatastore, type Datastore } from '../../src/datastore';
import { Collector, until, withTimeout } from './helpers/conformance';
import { EtcdCluster, makeTls } from '../../src/testbed/etcd';

const tls = makeTls();
t.teardown(() => fs.rmSync(tls.dir, { recursive: true, force: true }));

async function roundTrip(t: Test, ds: Datastore, label: string): Promise<void> {
  const col = new Collector();
  const w = ds.watch(`/tls/${label}/`, col);
  await withTimeout(w.ready, 5000, `${label}: watch established`);
  const kv = await ds.create(`/tls/${label}/k`, { secure: true });
  t.same((await ds.get(`/tls/${label}/k`))?.value, { secure: true }, `${label}: read back`);
  await until(() => col.events.length === 1, 5000, 'watch over TLS');
  t.equal(col.events[0].revision, kv.modRevision, `${label}: watch works`);
  await w.close();
}

t.test('mTLS: client certificate required', async (t) => {
  const cluster = await EtcdCluster.start(1, { tls, clientCertAuth: true });
  t.teardown(() => cluster.stop());
  const endpoints = cluster.endpoints();
  t.ok(endpoints[0].startsWith('https://'));
  // The --etcd-ca / --etcd-cert / --etcd-key options map onto these fields.
  const ds = openDatastore({ type: 'etcdv3', endpoints, caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey });
  t.teardown(() => ds.close());
  await roundTrip(t, ds, 'mtls');

  const noCert = openDatastore({ type: 'etcdv3', endpoints, caFile: tls.ca, requestTimeoutMs: 1500 });
  t.teardown(() => noCert.close());
  const e1 = (await noCert.get('/tls/mtls/k').catch((e: unknown) => e)) as { code?: string };
  t.equal(e1?.code, 'ERR_DATASTORE_UNAVAILABLE', 'without a client certificate: refused');

  const wrongCa = openDatastore({ type: 'etcdv3', endpoints, caFile: tls.clientCert, certFile: tls.clientCert, keyFile: tls.clientKey, requestTimeoutMs: 1500 });
  t.teardown(() => wrongCa.close());
  const e2 = (await wrongCa.get('/tls/mtls/k').catch((e: unknown) => e)) as { code?: string };
  t.equal(e2?.code, 'ERR_DATASTORE_UNAVAILABLE', 'server not signed by the given CA: refused');

  t.throws(() => openDatastore({ type: 'etcdv3', endpoints, caFile: tls.ca, certFile: tls.clientCert }),
    { code: 'ERR_DATASTORE_CONFIG', message: /certificate and a client key must be given together/ });
  t.throws(() => openDatastore({ type: 'etcdv3', endpoints, caFile: '/nonexistent/ca.pem' }),
    { code: 'ERR_DATASTORE_CONFIG', message: /cannot read the CA \/nonexistent\/ca.pem/ });
});

t.test('TLS without client certificates', async (t) => {
  const cluster = await EtcdCluster.start(1, { tls });
  t.teardown(() => cluster.stop());
  const ds = openDatastore({ type: 'etcdv3', endpoints: cluster.endpoints(), caFile: tls.ca });
  t.teardown(() => ds.close());
  await roundTrip(t, ds, 'tls');
  const plain = openDatastore({ type: 'etcdv3', endpoints: cluster.endpoints().map((e) => e.replace('https', 'http')), requestTimeoutMs: 1500 });
  t.teardown(() => plain.close());
  const e = (await plain.get('/tls/tls/k').catch((x: unknown) => x)) as { code?: string };
  t.equal(e?.code, 'ERR_DATASTORE_UNAVAILABLE', 'plaintext client to a TLS server: refused');
});
