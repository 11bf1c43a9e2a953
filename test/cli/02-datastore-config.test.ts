import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { DATASTORE_OPTIONS, parseArgs } from '../../src/cli/args';
import { ConfigFileError, resolveDatastoreConfig } from '../../src/cli/datastore-config';
import type { CliIO } from '../../src/cli/io';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortiectl-cfg-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
for (const f of ['ca.pem', 'cert.pem', 'key.pem']) fs.writeFileSync(path.join(dir, f), 'PEM\n');

function io(env: NodeJS.ProcessEnv): CliIO {
  const sink = { write: () => true };
  return { stdout: sink, stderr: sink, stdin: Readable.from(['']), env, cwd: dir, hostname: 'h' };
}

function resolve(argv: string[], env: NodeJS.ProcessEnv = {}) {
  return resolveDatastoreConfig(parseArgs('tortiectl', ['get', ...argv], 1, DATASTORE_OPTIONS), io(env));
}

function configFile(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

t.test('nothing configured: the embedded store in its default directory', async (t) => {
  t.same(resolve([]), { type: 'embedded', dir: '/var/lib/tortie/store' });
});

t.test('etcd endpoints without a type select etcdv3, from the environment or a flag', async (t) => {
  t.same(resolve([], { ETCD_ENDPOINTS: 'http://127.0.0.9:2379' }), { type: 'etcdv3', endpoints: ['http://127.0.0.9:2379'], caFile: undefined, certFile: undefined, keyFile: undefined });
  t.same(resolve(['--etcd-endpoints=http://127.0.0.8:2379']), { type: 'etcdv3', endpoints: ['http://127.0.0.8:2379'], caFile: undefined, certFile: undefined, keyFile: undefined });
  t.same(resolve([], { ETCD_ENDPOINTS: 'http://127.0.0.9:2379', DATASTORE_TYPE: 'embedded' }), { type: 'embedded', dir: '/var/lib/tortie/store' }, 'an explicit type wins');
});

t.test('environment: calicoctl names, embedded directory, etcd TLS files', async (t) => {
  t.same(resolve([], { TORTIE_STORE_DIR: 'st' }), { type: 'embedded', dir: path.join(dir, 'st') });
  t.same(resolve([], { TORTIE_DATASTORE_DIR: '/x/y' }), { type: 'embedded', dir: '/x/y' });
  t.same(resolve([], {
    DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://127.0.0.1:2379, https://127.0.0.2:2379',
    ETCD_CA_CERT_FILE: 'ca.pem', ETCD_CERT_FILE: 'cert.pem', ETCD_KEY_FILE: 'key.pem',
  }), {
    type: 'etcdv3', endpoints: ['http://127.0.0.1:2379', 'https://127.0.0.2:2379'],
    caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem'),
  });
  t.same(resolve([], { DATASTORE_TYPE: 'etcdv3' }), { type: 'etcdv3', endpoints: ['http://127.0.0.1:2379'], caFile: undefined, certFile: undefined, keyFile: undefined });
});

t.test('flags win over the config file, which wins over the environment', async (t) => {
  const cfg = configFile('calicoctl.cfg', `apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
metadata:
spec:
  datastoreType: "etcdv3"
  etcdEndpoints: "http://127.0.0.9:2379"
  etcdCACertFile: ca.pem
`);
  const env = { DATASTORE_TYPE: 'embedded', ETCD_ENDPOINTS: 'http://127.0.0.7:2379' };
  const fromFile = resolve(['-c', cfg], env);
  t.same(fromFile, { type: 'etcdv3', endpoints: ['http://127.0.0.9:2379'], caFile: path.join(dir, 'ca.pem'), certFile: undefined, keyFile: undefined },
    'file beats env; relative cert paths are relative to the file');
  const flagged = resolve(['-c', cfg, '--etcd-endpoints=http://127.0.0.5:2379'], env);
  t.same((flagged as { endpoints: string[] }).endpoints, ['http://127.0.0.5:2379']);
  t.same(resolve(['--config', cfg, '--datastore-type=embedded', '--store-dir=/s'], env), { type: 'embedded', dir: '/s' });
  const jsonCfg = configFile('c.json', JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'CalicoAPIConfig', spec: { etcdEndpoints: 'http://127.0.0.3:2379' } }));
  t.equal(resolve(['-c', jsonCfg]).type, 'etcdv3', 'a calicoctl file naming endpoints means etcdv3');
});

t.test('every bad setting names where it came from and what was expected', async (t) => {
  const bad = (argv: string[], env: NodeJS.ProcessEnv, re: RegExp, what: string) => {
    try {
      resolve(argv, env);
      t.fail(`${what}: accepted`);
    } catch (e) {
      t.ok(e instanceof ConfigFileError, `${what}: a ConfigFileError`);
      t.equal((e as ConfigFileError).code, 'ERR_CLI_CONFIG');
      t.match((e as Error).message, re, what);
    }
  };
  bad([], { DATASTORE_TYPE: 'kubernetes' }, /^DATASTORE_TYPE: datastore type "kubernetes" is not supported by tortie/, 'kubernetes');
  bad(['--datastore-type=zk'], {}, /^--datastore-type: datastore type "zk" is not supported \(expected "etcdv3" or "embedded"\)/, 'unknown type');
  bad([], { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'localhost:2379' }, /^ETCD_ENDPOINTS: etcd endpoint "localhost:2379" must use http or https/, 'scheme');
  bad([], { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'not a url' }, /is not a URL/, 'not a url');
  bad(['--datastore-type=etcdv3', '--etcd-cert=cert.pem'], {}, /^--etcd-cert: an etcd client certificate and key must be given together/, 'cert without key');
  bad(['--datastore-type=etcdv3', '--etcd-ca=missing.pem'], {}, /^--etcd-ca: cannot read .*missing\.pem: ENOENT/, 'unreadable CA');
  bad(['-c', path.join(dir, 'nope.cfg')], {}, /^cannot read config file .*nope\.cfg: ENOENT/, 'missing config file');
  bad(['-c', configFile('k.cfg', 'kind: CalicoAPIConfig\nspec:\n  datastoreType: kubernetes\n  kubeconfig: /root/.kube/config\n')], {},
    /spec\.kubeconfig: not supported by tortie/, 'kubeconfig');
  bad(['-c', configFile('u.cfg', 'kind: CalicoAPIConfig\nspec:\n  etcdEndpoint: http://x:1\n')], {}, /u\.cfg: spec\.etcdEndpoint: unknown field/, 'typo');
  bad(['-c', configFile('w.cfg', 'kind: BGPPeer\n')], {}, /kind: expected "CalicoAPIConfig", got "BGPPeer"/, 'kind');
  bad(['-c', configFile('y.cfg', 'spec: [\n')], {}, /is not valid YAML or JSON/, 'syntax');
});
