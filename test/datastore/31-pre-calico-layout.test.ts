// An agent must not read a store still in tortie's pre-Calico layout as if it were empty (it
// would program an empty policy over its workloads): it refuses to start, naming the keys.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EmbeddedDatastore, assertNoPreCalicoLayout, resourceKey } from '../../src/datastore';

const root = resolve(__dirname, '../../..');

t.test('a store with /tortie/ keys is refused; a Calico-layout store passes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-oldlayout-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ds = new EmbeddedDatastore({ dir });
  await ds.put(resourceKey('ippools', 'p1'), { kind: 'IPPool' });
  await assertNoPreCalicoLayout(ds);
  t.pass('Calico layout only: accepted');
  await ds.put('/tortie/v3/ippools/old', { kind: 'IPPool' });
  await t.rejects(assertNoPreCalicoLayout(ds), { code: 'ERR_DATASTORE_CONFIG', message: /1 key\(s\) under \/tortie\/ \(e\.g\. \/tortie\/v3\/ippools\/old\)/ });
  await ds.close();

  // The real agent stops before touching the node (no address detection, no BPF, no routes).
  const r = spawnSync(process.execPath, [join(root, 'bin/tortie-node.js'), 'run', '--store-dir', dir, '--nodename', 'n1', '--ip', '198.18.0.1/24'],
    { env: { ...process.env, TORTIE_RUN_DIR: join(dir, 'run') }, encoding: 'utf8', timeout: 60_000 });
  t.not(r.status, 0, 'tortie-node exits with an error');
  t.match(r.stderr + r.stdout, /ERR_DATASTORE_CONFIG/, 'a datastore configuration error');
  t.match(r.stderr + r.stdout, /\/tortie\/v3\/ippools\/old/, 'with one of its keys');
});
