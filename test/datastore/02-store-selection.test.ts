/**
 * One environment, one store: the real tortiectl (spawned), tortie-node's config loader and the
 * CNI plugin's loader resolve the datastore through src/datastore/config.ts and must open the
 * same store — or refuse alike with the same message. Two embedded stores each hold a Profile
 * named after the store; each entry point lists the Profiles of the store it opened.
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { DATASTORE_OPTIONS, parseArgs } from '../../src/cli/args';
import { resolveDatastoreConfig } from '../../src/cli/datastore-config';
import { ResourceClient } from '../../src/client/resources';
import { parseNetConf } from '../../src/cni/config';
import { datastoreConfig as cniDatastoreConfig, openStore } from '../../src/cni/context';
import { CNI_ERR, CniError } from '../../src/cni/errors';
import { openDatastore, type DatastoreConfig } from '../../src/datastore';
import { resolveConfig } from '../../src/node/config';
import { datastoreConfig as nodeDatastoreConfig } from '../../src/node/run';
import { Cli } from '../cli/helpers/cli';

const cli = new Cli('tortie-store-select-');
t.teardown(() => fs.rmSync(cli.dir, { recursive: true, force: true }));
const A = path.join(cli.dir, 'store-a');
const B = path.join(cli.dir, 'store-b');
const netConf = parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'tortie', ipam: { type: 'tortie-ipam' } }));
const base = { PATH: process.env.PATH, HOME: os.tmpdir() };

async function profilesIn(config: DatastoreConfig): Promise<string[]> {
  const ds = openDatastore(config);
  try {
    return (await new ResourceClient(ds).list('Profile')).items.map((p) => p.metadata.name).sort();
  } finally {
    await ds.close();
  }
}

/** What each entry point sees with `env`: the Profiles of the store it opened, or its error message. */
async function seenBy(t: Test, env: NodeJS.ProcessEnv): Promise<{ tortiectl: string; node: string; cni: string }> {
  const r = await cli.spawn(['get', 'profiles', '-o', 'yaml'], { env: { ...base, ...env } });
  const tortiectl = r.code === 0
    ? [...r.stdout.matchAll(/^ {4}name: (\S+)$/gm)].map((m) => m[1]).sort().join(',')
    : `error: ${r.stderr.trim()}`;
  let node: string;
  try {
    node = (await profilesIn(nodeDatastoreConfig(resolveConfig({ nodeName: 'n1' }, env)))).join(',');
  } catch (e) {
    node = `error: ${(e as Error).message}`;
  }
  let cni: string;
  try {
    const ds = openStore(netConf, env);
    try {
      cni = (await new ResourceClient(ds).list('Profile')).items.map((p) => p.metadata.name).sort().join(',');
    } finally {
      await ds.close();
    }
  } catch (e) {
    t.equal((e as CniError).cniCode, CNI_ERR.INVALID_CONFIG, 'the CNI plugin reports a bad datastore setting as an invalid configuration');
    cni = `error: ${(e as Error).message.replace(/^opening the datastore: /, '')}`;
  }
  return { tortiectl, node, cni };
}

t.before(async () => {
  for (const [dir, name] of [[A, 'in-a'], [B, 'in-b']]) {
    const r = await cli.spawn(['apply', '-f', '-', `--store-dir=${dir}`], {
      stdin: `apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: ${name}\nspec: {}\n`,
    });
    if (r.code !== 0) throw new Error(`seeding ${dir}: ${r.stderr}`);
  }
});

t.test('each variable alone, and both naming one directory, select that store everywhere', async (t) => {
  for (const env of [
    { TORTIE_DATASTORE_DIR: A },
    { TORTIE_STORE_DIR: B },
    { TORTIE_DATASTORE_DIR: A, TORTIE_STORE_DIR: `${A}/` },
    { DATASTORE_TYPE: 'embedded', TORTIE_STORE_DIR: B, ETCD_ENDPOINTS: 'http://198.18.0.1:2379' },
  ]) {
    // Every store also has Calico's built-in projectcalico-default-allow profile.
    const want = `${env.TORTIE_DATASTORE_DIR === A ? 'in-a' : 'in-b'},projectcalico-default-allow`;
    t.same(await seenBy(t, env), { tortiectl: want, node: want, cni: want }, JSON.stringify(env));
  }
});

t.test('both variables naming different stores: every entry point refuses, naming both', async (t) => {
  const seen = await seenBy(t, { TORTIE_DATASTORE_DIR: A, TORTIE_STORE_DIR: B });
  const msg = `error: TORTIE_DATASTORE_DIR=${A} and TORTIE_STORE_DIR=${B} name different embedded stores (TORTIE_STORE_DIR is an alias of TORTIE_DATASTORE_DIR): set only one of them`;
  t.same(seen, { tortiectl: msg, node: msg, cni: msg });
});

t.test('a higher layer naming the directory settles it: flags for the agent, datastore_path for the plugin', async (t) => {
  const env = { TORTIE_DATASTORE_DIR: A, TORTIE_STORE_DIR: B };
  t.same(nodeDatastoreConfig(resolveConfig({ nodeName: 'n1', storeDir: B }, env)), { type: 'embedded', dir: B });
  t.same(cniDatastoreConfig(parseNetConf(JSON.stringify({ ...netConf.raw, datastore_path: A })), env), { type: 'embedded', dir: A });
  const r = await cli.spawn(['get', 'profiles', '-o', 'yaml', `--store-dir=${B}`], { env: { ...base, ...env } });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /name: in-b/);
});

t.test('etcd: the same endpoints and TLS files everywhere; the embedded directories are then not used', async (t) => {
  const ca = path.join(cli.dir, 'ca.pem');
  fs.writeFileSync(ca, 'PEM\n');
  const env = { ETCD_ENDPOINTS: 'http://198.18.0.1:2379, http://198.18.0.2:2379', ETCD_CA_CERT_FILE: ca, TORTIE_DATASTORE_DIR: A, TORTIE_STORE_DIR: B };
  const want = { type: 'etcdv3', endpoints: ['http://198.18.0.1:2379', 'http://198.18.0.2:2379'], caFile: ca, certFile: undefined, keyFile: undefined };
  t.same(nodeDatastoreConfig(resolveConfig({ nodeName: 'n1' }, env)), want, 'agent');
  t.same(cniDatastoreConfig(netConf, env), want, 'CNI plugin');
  // tortiectl's resolver in-process (spawned, it would try to reach these addresses).
  const io = { stdout: { write: () => true }, stderr: { write: () => true }, stdin: Readable.from(['']), env, cwd: cli.dir, hostname: 'h' };
  t.same(resolveDatastoreConfig(parseArgs('tortiectl', ['get', 'profiles'], 1, DATASTORE_OPTIONS), io), want, 'tortiectl');
  const bad = await cli.spawn(['get', 'profiles'], { env: { ...base, ...env, DATASTORE_TYPE: 'zk' } });
  t.equal(bad.stderr, 'DATASTORE_TYPE: datastore type "zk" is not supported (expected "etcdv3" or "embedded")\n');
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { ...env, DATASTORE_TYPE: 'zk' }), { message: 'DATASTORE_TYPE: datastore type "zk" is not supported (expected "etcdv3" or "embedded")' });
  t.throws(() => cniDatastoreConfig(netConf, { ...env, DATASTORE_TYPE: 'zk' }), { message: 'DATASTORE_TYPE: datastore type "zk" is not supported (expected "etcdv3" or "embedded")' });
});
