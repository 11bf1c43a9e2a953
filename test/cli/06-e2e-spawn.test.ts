import t from 'tap';
import * as fs from 'node:fs';
import { cliFor, V1_POOL } from './helpers/cli';

// The real launcher, as a user's shell runs it: stdin heredocs, exit statuses, stdout/stderr.
t.test('bin/tortiectl.js end to end', async (t) => {
  const cli = cliFor(t, 'tortiectl-e2e-');

  const applied = await cli.spawn(['apply', '-f', '-'], { stdin: V1_POOL });
  t.same(applied, { code: 0, stdout: "Successfully applied 1 'IPPool' resource(s)\n", stderr: '' }, 'tortiectl apply -f - << EOF');

  const wide = await cli.spawn(['get', 'ippool', '-o', 'wide']);
  t.equal(wide.code, 0);
  t.match(wide.stdout, /^NAME +CIDR +NAT +IPIPMODE +VXLANMODE +DISABLED +DISABLEBGPEXPORT +SELECTOR +\n192-168-0-0-16 +192\.168\.0\.0\/16 +true +CrossSubnet +Never +false +false +all\(\) +\n\n$/);

  const yaml = await cli.spawn(['get', 'ipPool', '-o', 'yaml']);
  t.equal(yaml.code, 0);
  fs.writeFileSync(`${cli.dir}/pool.yaml`, yaml.stdout.replace('natOutgoing: true', 'natOutgoing: false'));
  t.same(await cli.spawn(['replace', '-f', 'pool.yaml']), { code: 0, stdout: "Successfully replaced 1 'IPPool' resource(s)\n", stderr: '' });
  const stale = await cli.spawn(['replace', '-f', 'pool.yaml']);
  t.equal(stale.code, 1, 'a stale resourceVersion is a failure exit');
  t.match(stale.stderr, /^Failed to replace 'IPPool' resource: update conflict: IPPool\(192-168-0-0-16\)/);

  const invalid = await cli.spawn(['create', '-f', '-'], { stdin: 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: x}\nspec: {cidr: nonsense}\n' });
  t.equal(invalid.code, 1);
  t.match(invalid.stderr, /^Failed to execute command: document 1: IPPool x: spec\.cidr: "nonsense"/);

  t.same(await cli.spawn(['frobnicate']), { code: 1, stdout: '', stderr: (await cli.run(['frobnicate'])).stderr }, 'unknown verb');
  t.equal((await cli.spawn(['frobnicate'])).stderr.split('\n')[0], 'unknown command: "frobnicate"');
  t.same(await cli.spawn(['get', 'ippool', '--bogus']), {
    code: 1, stdout: '', stderr: "Invalid option: 'tortiectl get ippool --bogus'. Use flag '--help' to read about a specific subcommand.\n",
  });
  const help = await cli.spawn(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage:\n  tortiectl \[options\] <command> \[<args>\.\.\.\]/);
  const version = await cli.spawn(['version']);
  t.equal(version.code, 0);
  t.match(version.stdout, /^Client Version: +v\d+\.\d+\.\d+\nGit commit: +\S+\nUnable to retrieve Cluster Version or Type: (no datastore at |resource does not exist: ClusterInformation\(default\))/);

  // The datastore named by flags placed before the verb, as calicoctl's global options.
  const other = `${cli.dir}/other-store`;
  t.equal((await cli.spawn(['--store-dir', other, 'apply', '-f', '-'], { stdin: V1_POOL })).code, 0);
  t.ok(fs.existsSync(other), 'the --store-dir store was used');
  t.equal((await cli.spawn(['delete', 'ippool', '192-168-0-0-16', `--store-dir=${other}`])).code, 0);
  t.equal((await cli.spawn(['delete', 'ippool', '192-168-0-0-16', `--store-dir=${other}`])).code, 1);
  const unreachable = await cli.spawn(['get', 'nodes'], { env: { ...cli.env, DATASTORE_TYPE: 'kubernetes' } });
  t.same(unreachable, { code: 1, stdout: '', stderr: 'DATASTORE_TYPE: datastore type "kubernetes" is not supported by tortie (expected "etcdv3" or "embedded")\n' });
});
