/**
 * The one error base (src/util/errors.ts): every error class in src/ derives from TortieError,
 * class names are unique, and `code`, `recoverable`, `cause` and `name` hold what callers and
 * users rely on.
 */
import t from 'tap';
import ts from 'typescript';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ConfigFileError } from '../../src/cli/datastore-config';
import { CliError, UsageError } from '../../src/cli/io';
import { CNI_ERR, CniError } from '../../src/cni/errors';
import { BpfError } from '../../src/dataplane/native/errors';
import { ConflictError, DatastoreConfigError, NotFoundError, UnavailableError, isRecoverable as isDatastoreRecoverable } from '../../src/datastore/errors';
import { IpamError } from '../../src/ipam/errors';
import { ConfigError, resolveConfig } from '../../src/node/config';
import { TortieError, isRecoverable } from '../../src/util/errors';

const SRC = resolve(__dirname, '../../../src');

function tsFiles(dir: string, acc: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) tsFiles(p, acc);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) acc.push(p);
  }
  return acc;
}

t.test('every error class in src/ derives from TortieError, and class names are unique', async (t) => {
  const base = new Map<string, { extends: string; file: string }[]>();
  for (const file of tsFiles(SRC)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node): void => {
      if (ts.isClassDeclaration(n) && n.name) {
        const ext = n.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression.getText(sf) ?? '';
        const list = base.get(n.name.text) ?? [];
        list.push({ extends: ext, file: relative(SRC, file) });
        base.set(n.name.text, list);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  const errorClasses = [...base.keys()].filter((name) => {
    for (let c: string | undefined = name, i = 0; c && i < 20; i++) {
      if (c === 'Error' || c === 'TortieError') return true;
      c = base.get(c)?.[0]?.extends;
    }
    return false;
  });
  t.ok(errorClasses.length >= 35, `found the error classes (${errorClasses.length})`);
  for (const name of errorClasses) {
    t.equal(base.get(name)!.length, 1, `${name}: one class of that name (${base.get(name)!.map((c) => c.file).join(', ')})`);
    if (name === 'TortieError') continue;
    let c = name;
    while (base.has(c) && c !== 'TortieError') c = base.get(c)![0]!.extends;
    t.equal(c, 'TortieError', `${name} (${base.get(name)![0]!.file}) derives from TortieError`);
  }
});

t.test('code, name, recoverable and cause', async (t) => {
  const cause = new Error('ECONNREFUSED');
  const u = new UnavailableError('etcd unreachable', cause);
  t.match(u, { code: 'ERR_DATASTORE_UNAVAILABLE', name: 'UnavailableError', recoverable: true, cause });
  t.ok(u instanceof TortieError);
  t.ok(isRecoverable(u) && isDatastoreRecoverable(u));
  const conflict = new ConflictError('/k', 1, 2);
  t.match(conflict, { code: 'ERR_DATASTORE_CONFLICT', name: 'ConflictError', recoverable: false });
  t.notOk(isRecoverable(conflict), 'a conflict is for the caller to re-read, not to retry blindly');
  t.notOk(isRecoverable(new NotFoundError('/k')));
  t.match(new IpamError('ERR_IPAM_CONTENTION', 'busy', { recoverable: true }), { name: 'IpamError', recoverable: true });
  t.match(new DatastoreConfigError('bad'), { code: 'ERR_DATASTORE_CONFIG', name: 'DatastoreConfigError' });
  t.match(new ConfigError('bad'), { code: 'ERR_CONFIG_INVALID', name: 'ConfigError' }, "tortie-node's ConfigError keeps its name");
  t.match(new CliError('x'), { code: 'ERR_CLI_FAILED', name: 'CliError', exitCode: 1 });
  t.match(new UsageError('x'), { code: 'ERR_CLI_USAGE', name: 'UsageError' });
  t.match(new CniError(CNI_ERR.TRY_AGAIN_LATER, 'later'), { code: 'ERR_CNI', name: 'CniError', recoverable: true });
  t.match(new CniError(CNI_ERR.INVALID_CONFIG, 'bad'), { recoverable: false });
  t.match(new BpfError('ERR_BPF_MAP_UPDATE', 'bpf_map_update_elem', 11, 'map x'), { name: 'BpfError', errnoName: 'EAGAIN', recoverable: true });
  t.match(new BpfError('ERR_BPF_MAP_UPDATE', 'bpf_map_update_elem', 22, 'map x'), { errnoName: 'EINVAL', recoverable: false });
  t.notOk(isRecoverable(new Error('plain')), 'an error that does not say so is not recoverable');
  t.notOk(isRecoverable(undefined));
  t.notOk(isRecoverable({ recoverable: 'yes' }), 'only recoverable === true counts');
  for (const e of [u, conflict, new ConfigError('x'), new BpfError('ERR_BPF_X', 'op', 1, 'd')]) {
    t.match(e.code, /^ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/, `${e.name}: ERR_<AREA>_<WHAT>`);
  }
});

t.test('a wrapped datastore setting keeps its cause', async (t) => {
  try {
    resolveConfig({ nodeName: 'n1' }, { DATASTORE_TYPE: 'zk' });
    t.fail('accepted');
  } catch (e) {
    t.match(e, { name: 'ConfigError', code: 'ERR_CONFIG_INVALID' });
    t.match((e as Error).cause, { name: 'DatastoreConfigError', code: 'ERR_DATASTORE_CONFIG' });
  }
  const f = new ConfigFileError('m', new DatastoreConfigError('m'));
  t.match(f, { name: 'ConfigFileError', code: 'ERR_CLI_CONFIG', cause: { code: 'ERR_DATASTORE_CONFIG' } });
});
