import t from 'tap';
import { resolveConfig } from '../../src/node/config';

t.test('Calico environment names are honoured, flags win over them', async (t) => {
  const env = {
    NODENAME: 'node2', IP: '10.0.2.10/24', IP_AUTODETECTION_METHOD: 'can-reach=198.18.0.1',
    DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://127.0.0.1:2379,https://127.0.0.2:2379',
    ETCD_CA_CERT_FILE: '/ca.pem', ETCD_CERT_FILE: '/c.pem', ETCD_KEY_FILE: '/k.pem', FELIX_LOGSEVERITYSCREEN: 'Warning',
  };
  const c = resolveConfig({}, env);
  t.equal(c.nodeName, 'node2');
  t.equal(c.ip, '10.0.2.10/24', 'address keeps its subnet');
  t.equal(c.ipAutodetectionMethod, 'can-reach=198.18.0.1');
  t.equal(c.datastoreType, 'etcdv3');
  t.same(c.etcd, { endpoints: ['http://127.0.0.1:2379', 'https://127.0.0.2:2379'], caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' });
  t.equal(c.logLevel, 'warn');
  const f = resolveConfig({ nodeName: 'node3', ip: '198.18.1.2', logLevel: 'debug', datastoreType: 'embedded' }, env);
  t.equal(f.nodeName, 'node3');
  t.equal(f.ip, '198.18.1.2', 'a bare address is kept (its prefix comes from the interface)');
  t.equal(f.logLevel, 'debug');
  t.equal(f.datastoreType, 'embedded');
});

t.test('defaults', async (t) => {
  const c = resolveConfig({ nodeName: 'n1' }, {});
  t.equal(c.ip, 'autodetect');
  t.equal(c.ipAutodetectionMethod, 'first-found');
  t.equal(c.datastoreType, 'embedded');
  t.equal(c.bpffsRoot, '/sys/fs/bpf/tortie');
  t.equal(c.interfacePrefix, 'cali');
  t.equal(c.metricsPort, 9091);
  t.equal(c.healthPort, 9099);
  t.equal(c.policyOnly, false);
});

t.test('bad values name the flag or variable and the value', async (t) => {
  const bad: [Record<string, string>, Record<string, string>, RegExp][] = [
    [{}, { DATASTORE_TYPE: 'kubernetes' }, /DATASTORE_TYPE: datastore type "kubernetes" is not supported/],
    [{ ip: '10.0.2.300/24' }, {}, /--ip: "10.0.2.300\/24" is not/],
    [{}, { IP: '1.2.3.4/33' }, /IP: "1.2.3.4\/33"/],
    [{}, { ETCD_ENDPOINTS: 'not a url' }, /ETCD_ENDPOINTS: etcd endpoint "not a url" is not a URL/],
    [{}, { ETCD_ENDPOINTS: 'ftp://x:1' }, /must use http or https/],
    [{ metricsPort: '70000' }, {}, /--metrics-port: port "70000"/],
    [{}, { FELIX_HEALTHPORT: 'abc' }, /FELIX_HEALTHPORT: port "abc"/],
    [{ logLevel: 'loud' }, {}, /--log-level: log level "loud"/],
    [{ nodeName: 'Bad_Name' }, {}, /node name "Bad_Name"/],
    [{}, { ETCD_CERT_FILE: '/c.pem' }, /must be given together/],
    [{ maxBatch: '0' }, {}, /--max-batch: "0" is not a positive integer/],
  ];
  for (const [opts, env, re] of bad) {
    t.throws(() => resolveConfig({ nodeName: 'n1', ...opts }, env), { name: 'ConfigError', code: 'ERR_CONFIG_INVALID', message: re }, re.source);
  }
});
