/**
 * calicoctl's resource-management verbs over the datastore: apply, create, replace, delete, get.
 *
 * Semantics (calicoctl's, through ResourceClient):
 * - apply = create, or when the resource exists, replace it. With metadata.resourceVersion the
 *   replace is a compare-and-swap against it; without, against the version just read
 *   (retried on a concurrent change). create fails on an existing resource unless
 *   --skip-exists; replace fails on a missing one; delete fails on a missing one unless
 *   --skip-not-exists, and is conditional when the input carries a resourceVersion.
 * - uid and creationTimestamp are set on create and kept on replace (input values ignored).
 * - Input from -f is loaded and validated completely before the first write (documents.ts):
 *   one invalid document → nothing written.
 * - Writes then happen in input order and stop at the first failure (as calicoctl's apply,
 *   create and replace do), so "Partial success: applied the first N out of M" is exactly what
 *   was written: documents 1..N, nothing after. delete carries on and reports each failure.
 *
 * Output wording and exit status follow calicoctl: results on stdout, errors on stderr,
 * status 1 on any failure.
 */
import { randomUUID } from 'node:crypto';
import { ResourceClient, ResourceNotFoundError } from '../client/resources';
import { casLoop } from '../datastore/cas';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../datastore/errors';
import type { Datastore } from '../datastore/types';
import {
  API_VERSION_V3, checkPolicyTier, checkPoolOverlaps, checkUpdate, formatProblem, unenforcedWarnings, FELIX_HONOURED,
  type IPPool, type Problem, type Resource, type ResourceKind, type ResourceList,
} from '../model';
import { metaTimestamp } from '../model/values';
import { DATASTORE_OPTIONS, invalidOption, parseArgs, type OptionSpec, type ParsedArgs } from './args';
import { openConfiguredDatastore, resolveDatastoreConfig } from './datastore-config';
import { EmptyInputError, InputError, loadResources } from './documents';
import { CliError, type CliIO } from './io';
import { isNamespacedKind, kindList, lookupKind, unknownKindMessage } from './kinds';
import { parseOutputFormat, render, type Printable } from './output';

export type WriteVerb = 'apply' | 'create' | 'replace';

const FILE_OPTIONS: OptionSpec[] = [
  { long: 'filename', short: 'f', value: true },
  { long: 'recursive', short: 'R' },
  { long: 'skip-empty' },
  { long: 'namespace', short: 'n', value: true },
];

const PAST: Record<WriteVerb | 'delete', string> = { apply: 'applied', create: 'created', replace: 'replaced', delete: 'deleted' };

function identifier(kind: string, name: string, namespace?: string): string {
  return `${kind}(${namespace ? `${namespace}/` : ''}${name})`;
}

function idOf(r: Resource): string {
  return identifier(r.kind, r.metadata.name, isNamespacedKind(r.kind) ? r.metadata.namespace ?? 'default' : undefined);
}

/** Go's `%v` of a []error: `[e1 e2]`. */
function goErrList(errs: readonly Error[]): string {
  return `[${errs.map((e) => e.message).join(' ')}]`;
}

class ResourceExistsError extends CliError {
  constructor(id: string) {
    super(`resource already exists: ${id}`, 'ERR_CLI_EXISTS');
  }
}

class ResourceMissingError extends CliError {
  constructor(id: string) {
    super(`resource does not exist: ${id}`, 'ERR_CLI_NOT_FOUND');
  }
}

class UpdateConflictError extends CliError {
  constructor(id: string, detail: string) {
    super(`update conflict: ${id}: ${detail}`, 'ERR_CLI_CONFLICT');
  }
}

async function withDatastore<T>(args: ParsedArgs, io: CliIO, fn: (client: ResourceClient) => Promise<T>): Promise<T> {
  const ds: Datastore = openConfiguredDatastore(resolveDatastoreConfig(args, io));
  try {
    return await fn(new ResourceClient(ds));
  } finally {
    await ds.close().catch(() => undefined);
  }
}

function nsOf(r: Resource): string | undefined {
  return isNamespacedKind(r.kind) ? r.metadata.namespace || 'default' : undefined;
}

function translate(e: unknown, r: Resource): Error {
  if (e instanceof AlreadyExistsError) return new ResourceExistsError(idOf(r));
  if (e instanceof NotFoundError || e instanceof ResourceNotFoundError) return new ResourceMissingError(idOf(r));
  if (e instanceof ConflictError) {
    return new UpdateConflictError(idOf(r), `the resource was modified concurrently (expected resourceVersion ${e.expectedRevision}, found ${e.actualRevision}); get it again and retry`);
  }
  return e instanceof Error ? e : new Error(String(e));
}

async function createOne(client: ResourceClient, r: Resource): Promise<Resource> {
  const meta = { ...r.metadata, uid: randomUUID(), creationTimestamp: metaTimestamp() };
  delete meta.resourceVersion;
  return client.create({ ...r, metadata: meta } as Resource);
}

/** How often a write without the user's resourceVersion is retried after a concurrent change. */
export const CONFLICT_RETRIES = 20;

/** Replace an existing resource, CAS on the input's resourceVersion or, failing that, on the one read. */
async function replaceOne(client: ResourceClient, r: Resource): Promise<Resource> {
  const wanted = r.metadata.resourceVersion;
  // Someone wrote between our read and our write: with an explicit resourceVersion that is the
  // user's conflict; without one, read again after a short wait (src/datastore/cas.ts).
  return casLoop(async () => {
    const current = await client.get(r.kind, r.metadata.name, nsOf(r));
    if (!current) throw new ResourceMissingError(idOf(r));
    const currentRv = current.metadata.resourceVersion as string;
    if (wanted && wanted !== currentRv) {
      throw new UpdateConflictError(idOf(r), `resourceVersion '${wanted}' is out of date (current: ${currentRv}); get the resource again, edit it and retry`);
    }
    const meta = { ...r.metadata, resourceVersion: currentRv };
    if (current.metadata.uid !== undefined) meta.uid = current.metadata.uid;
    else delete meta.uid;
    if (current.metadata.creationTimestamp !== undefined) meta.creationTimestamp = current.metadata.creationTimestamp;
    else delete meta.creationTimestamp;
    return client.update({ ...r, metadata: meta } as Resource);
  }, { attempts: wanted ? 1 : CONFLICT_RETRIES + 1 });
}

async function applyOne(client: ResourceClient, r: Resource): Promise<Resource> {
  try {
    return await createOne(client, r);
  } catch (e) {
    if (!(e instanceof AlreadyExistsError)) throw e;
  }
  return replaceOne(client, r);
}

function usageFor(verb: WriteVerb | 'delete' | 'get', binary: string): string {
  const kinds = kindList().map((k) => `    * ${k}`).join('\n');
  const ds = `  -c --config=<CONFIG>         calicoctl's client configuration file (CalicoAPIConfig, YAML or JSON).
     --store-dir=<DIR>         Embedded datastore directory (default /var/lib/tortie/store).
     --etcd-endpoints=<URLS>   etcd v3 endpoints (selects etcdv3 unless a datastore type is given).
     --etcd-ca=<FILE> --etcd-cert=<FILE> --etcd-key=<FILE>
                               TLS files for etcd.`;
  const common = `  -f --filename=<FILENAME>     File with the resources ("-" for stdin; a directory means its
                               .yaml, .yml and .json files).
  -R --recursive               Walk the directory given with -f recursively.
     --skip-empty              Do not fail when the input holds no resources.
  -n --namespace=<NS>          Namespace of namespaced resources (networkPolicy, workloadEndpoint).`;
  const heads: Record<string, string> = {
    apply: `Usage:\n  ${binary} apply --filename=<FILENAME> [--recursive] [--skip-empty] [--namespace=<NS>] [options]\n\nCreate the resources that do not exist and replace those that do.`,
    create: `Usage:\n  ${binary} create --filename=<FILENAME> [--recursive] [--skip-empty] [--skip-exists] [--namespace=<NS>] [options]\n\nCreate resources; an existing one is an error unless --skip-exists.\n  --skip-exists                Skip (and count as created) resources that already exist.`,
    replace: `Usage:\n  ${binary} replace --filename=<FILENAME> [--recursive] [--skip-empty] [--namespace=<NS>] [options]\n\nReplace existing resources. With metadata.resourceVersion (as printed by get -o yaml) the\nreplace only succeeds if nobody changed the resource since.`,
    delete: `Usage:\n  ${binary} delete ( (<KIND> [<NAME>...]) | --filename=<FILENAME> [--recursive] [--skip-empty] )\n                  [--skip-not-exists] [--namespace=<NS>] [options]\n\nDelete resources by kind and name, or those named in a file.\n  -s --skip-not-exists         Skip (and count as deleted) resources that do not exist.`,
    get: `Usage:\n  ${binary} get ( (<KIND> [<NAME>...]) | --filename=<FILENAME> [--recursive] [--skip-empty] )\n               [--output=<OUTPUT>] [--namespace=<NS>] [--all-namespaces] [--export] [options]\n\nShow resources.\n  -o --output=<OUTPUT>         ps (default), wide, yaml, json or custom-columns=<HEADING>,...\n  -A --all-namespaces          List namespaced resources of every namespace.\n     --export                  Strip uid, resourceVersion, creationTimestamp and namespace.`,
  };
  return `${heads[verb]}\n\nOptions:\n${common}\n${ds}\n\nResource types (case-insensitive, singular or plural, calicoctl's short names):\n${kinds}\n`;
}

interface Outcome {
  handled: number;
  total: number;
  singleKind: string;
  /** The error that stopped the writes (resources after it were not attempted). */
  fatal?: Error;
}

function singleKindOf(rs: readonly Resource[]): string {
  const kinds = new Set(rs.map((r) => r.kind));
  return kinds.size === 1 ? rs[0].kind : '';
}

function handleInputError(e: unknown): never {
  if (e instanceof InputError) throw new CliError(`Failed to execute command: ${e.message}`, e.code);
  throw e;
}

export async function runWrite(verb: WriteVerb, binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const specs = [...FILE_OPTIONS, ...DATASTORE_OPTIONS, ...(verb === 'create' ? [{ long: 'skip-exists' }] : [])];
  const args = parseArgs(binary, argv, 1, specs);
  if (args.flag('help')) {
    io.stdout.write(usageFor(verb, binary));
    return 0;
  }
  const filename = args.get('filename');
  if (filename === undefined || args.positionals.length > 0) throw invalidOption(binary, argv);

  let resources: Resource[];
  try {
    resources = await loadResources(filename, { recursive: args.flag('recursive'), skipEmpty: args.flag('skip-empty'), namespace: args.get('namespace') }, io);
  } catch (e) {
    if (e instanceof EmptyInputError) throw e;
    handleInputError(e);
  }
  checkNamespaceFlags(resources, args);
  if (resources.length === 0) {
    io.stdout.write('No resources specified\n');
    return 0;
  }

  const out: Outcome = { handled: 0, total: resources.length, singleKind: singleKindOf(resources) };
  await withDatastore(args, io, async (client) => {
    try {
      await preflight(client, verb, resources);
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`Failed to ${verb} any resources: cannot read the datastore: ${(e as Error).message}`, 'ERR_CLI_DATASTORE');
    }
    for (const r of resources) {
      try {
        if (verb === 'apply') await applyOne(client, r);
        else if (verb === 'replace') await replaceOne(client, r);
        else {
          try {
            await createOne(client, r);
          } catch (e) {
            if (!(e instanceof AlreadyExistsError && args.flag('skip-exists'))) throw e;
          }
        }
        out.handled++;
      } catch (e) {
        out.fatal = translate(e, r);
        break;
      }
    }
  });
  writeFelixNotes(resources.slice(0, out.handled), io);
  return report(verb, out, io);
}

/**
 * What was written of FelixConfiguration: the hint fields accepted without effect (warnings), and
 * which honoured fields make tortie-node restart itself (the others apply while it runs).
 */
function writeFelixNotes(written: readonly Resource[], io: CliIO): void {
  const restart = new Set<string>();
  for (const r of written) {
    if (r.kind !== 'FelixConfiguration') continue;
    for (const w of unenforcedWarnings(r)) io.stderr.write(`Warning: ${formatProblem(w)}\n`);
    for (const k of Object.keys(r.spec)) if (FELIX_HONOURED[k] === 'restart') restart.add(k);
  }
  if (restart.size > 0) {
    io.stderr.write(`Note: tortie-node restarts itself to apply ${[...restart].join(', ')} (as Felix does); the other fields apply while it runs\n`);
  }
}

/** Above this many resources of a kind in one input, preflight lists the kind instead of reading each. */
const LIST_THRESHOLD = 20;

/**
 * What Calico's clientv3 refuses across resources (src/model's checks), for the whole input
 * before the first write: an IPPool overlapping another pool, a policy in a tier that does not
 * exist (nor is in the input), an update changing what cannot change (a pool's CIDR or block
 * size). Any problem: nothing is written.
 */
export async function preflight(client: ResourceClient, verb: WriteVerb, resources: readonly Resource[]): Promise<void> {
  const keyOf = (r: Resource) => `${r.kind}/${nsOf(r) ?? ''}/${r.metadata.name}`;
  const kinds = new Set<ResourceKind>(resources.map((r) => r.kind));
  const needTiers = resources.some((r) => (r.kind === 'NetworkPolicy' || r.kind === 'GlobalNetworkPolicy') && (r.spec.tier ?? 'default') !== 'default');
  if (needTiers) kinds.add('Tier');
  const stored = new Map<string, Resource>();
  for (const kind of kinds) {
    const mine = resources.filter((r) => r.kind === kind);
    // Overlaps need every pool, tier checks every tier; otherwise only the input's own
    // resources matter, read one by one unless there are many (a store may hold 10,000 WEPs).
    if (kind === 'IPPool' || kind === 'Tier' || mine.length > LIST_THRESHOLD) {
      for (const r of (await client.list(kind)).items as Resource[]) stored.set(keyOf(r), r);
    } else {
      for (const r of mine) {
        const cur = await client.get(r.kind, r.metadata.name, nsOf(r));
        if (cur) stored.set(keyOf(cur), cur);
      }
    }
  }
  const inputKeys = new Set(resources.map(keyOf));
  const problems: Problem[] = [];
  const tiers = new Set<string>([...stored.values(), ...resources].filter((r) => r.kind === 'Tier').map((r) => r.metadata.name));
  const storedPools = [...stored.values()].filter((r): r is IPPool => r.kind === 'IPPool' && !inputKeys.has(keyOf(r)));
  const inputPools: IPPool[] = [];
  for (const r of resources) {
    const current = stored.get(keyOf(r));
    if (current && verb !== 'create') problems.push(...checkUpdate(current, r));
    if (r.kind === 'IPPool') {
      // Against stored pools the input does not replace, and the input's earlier pools.
      problems.push(...checkPoolOverlaps(r, [...storedPools, ...inputPools]));
      inputPools.push(r);
    }
    if (r.kind === 'NetworkPolicy' || r.kind === 'GlobalNetworkPolicy') problems.push(...checkPolicyTier(r, tiers));
  }
  if (problems.length > 0) {
    const lines = problems.map(formatProblem);
    throw new CliError(`Failed to execute command: ${lines.length === 1 ? '' : `${lines.length} problems, nothing was written:\n  `}${lines.join('\n  ')}`, 'ERR_CLI_REFUSED');
  }
}

/** calicoctl's wording of the per-resource results. */
function report(verb: WriteVerb, o: Outcome, io: CliIO): number {
  const past = PAST[verb];
  const kindText = o.singleKind ? ` '${o.singleKind}'` : '';
  const errs = o.fatal ? [o.fatal] : [];
  if (errs.length === 0) {
    io.stdout.write(`Successfully ${past} ${o.handled}${kindText} resource(s)\n`);
    return 0;
  }
  const errText = verb === 'replace' ? errs[0].message : goErrList(errs);
  if (o.handled === 0) {
    const what = o.total === 1 ? `${kindText} resource` : ` any${kindText} resources`;
    io.stderr.write(`Failed to ${verb}${what}: ${errText}\n`);
    return 1;
  }
  io.stdout.write(`Partial success: ${past} the first ${o.handled} out of ${o.total}${kindText} resources:\n`);
  io.stderr.write(`Hit error${verb === 'apply' ? '(s)' : ''}: ${errText}\n`);
  return 1;
}

/** calicoctl's namespace checks for resources given in a file, before anything is written. */
function checkNamespaceFlags(resources: readonly Resource[], args: ParsedArgs): void {
  const ns = args.get('namespace');
  if (ns === undefined) return;
  for (const r of resources) {
    if (!isNamespacedKind(r.kind)) throw new CliError(`Failed to execute command: ${r.kind} is not namespaced`, 'ERR_CLI_NAMESPACE');
  }
}

// ---------------------------------------------------------------- delete

interface Target {
  kind: ResourceKind;
  name: string;
  namespace?: string;
  resourceVersion?: string;
}

function targetsFromArgs(kindArg: string, names: readonly string[], args: ParsedArgs): Target[] {
  const kind = lookupKind(kindArg);
  if (!kind) throw new CliError(unknownKindMessage(kindArg), 'ERR_CLI_KIND');
  const ns = args.get('namespace');
  if (!isNamespacedKind(kind) && (ns !== undefined || args.flag('all-namespaces'))) {
    throw new CliError(`${kind} is not namespaced`, 'ERR_CLI_NAMESPACE');
  }
  if (names.some((n) => n === '')) throw new CliError('resource name may not be empty', 'ERR_CLI_NAME');
  return names.map((name) => ({ kind, name, namespace: isNamespacedKind(kind) ? ns ?? 'default' : undefined }));
}

function targetOf(r: Resource): Target {
  return { kind: r.kind, name: r.metadata.name, namespace: nsOf(r), resourceVersion: r.metadata.resourceVersion };
}

export async function runDelete(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 1, [...FILE_OPTIONS, ...DATASTORE_OPTIONS, { long: 'skip-not-exists', short: 's' }]);
  if (args.flag('help')) {
    io.stdout.write(usageFor('delete', binary));
    return 0;
  }
  const filename = args.get('filename');
  let targets: Target[];
  let singleKind: string;
  if (filename !== undefined) {
    if (args.positionals.length > 0) throw invalidOption(binary, argv);
    let rs: Resource[];
    try {
      rs = await loadResources(filename, { recursive: args.flag('recursive'), skipEmpty: args.flag('skip-empty'), namespace: args.get('namespace'), identities: true }, io);
    } catch (e) {
      if (e instanceof EmptyInputError) throw e;
      handleInputError(e);
    }
    checkNamespaceFlags(rs, args);
    if (rs.length === 0) {
      io.stdout.write('No resources specified\n');
      return 0;
    }
    targets = rs.map(targetOf);
    singleKind = singleKindOf(rs);
  } else {
    if (args.positionals.length < 2) throw invalidOption(binary, argv);
    targets = targetsFromArgs(args.positionals[0], args.positionals.slice(1), args);
    singleKind = targets[0].kind;
  }

  let handled = 0;
  const errors: Error[] = [];
  await withDatastore(args, io, async (client) => {
    for (const t of targets) {
      try {
        await client.delete(t.kind, t.name, t.namespace, t.resourceVersion);
        handled++;
      } catch (e) {
        const id = identifier(t.kind, t.name, t.namespace);
        if (e instanceof ResourceNotFoundError || e instanceof NotFoundError) {
          if (args.flag('skip-not-exists')) {
            handled++;
            continue;
          }
          errors.push(new ResourceMissingError(id));
        } else if (e instanceof ConflictError) {
          errors.push(new UpdateConflictError(id, `resourceVersion '${t.resourceVersion}' is out of date (current: ${e.actualRevision}); get the resource again and retry`));
        } else {
          errors.push(e instanceof Error ? e : new Error(String(e)));
        }
      }
    }
  });
  const kindText = singleKind ? ` '${singleKind}'` : '';
  if (handled > 0) io.stdout.write(`Successfully deleted ${handled}${kindText} resource(s)\n`);
  for (const e of errors) io.stderr.write(`Failed to delete${kindText} resource: ${e.message}\n`);
  return errors.length > 0 ? 1 : 0;
}

// ---------------------------------------------------------------- get

function sortForKind(kind: ResourceKind, items: Resource[]): Resource[] {
  if (kind !== 'Tier') return items;
  // calicoctl lists tiers by order, unordered ones last.
  return [...items].sort((a, b) => {
    const oa = (a as { spec: { order?: number } }).spec.order;
    const ob = (b as { spec: { order?: number } }).spec.order;
    if (oa === undefined) return ob === undefined ? 0 : 1;
    if (ob === undefined) return -1;
    return oa - ob;
  });
}

function exported(r: Resource): Resource {
  const meta = { ...r.metadata };
  delete meta.uid;
  delete meta.resourceVersion;
  delete meta.creationTimestamp;
  delete meta.namespace;
  return { ...r, metadata: meta } as Resource;
}

export async function runGet(binary: string, rawArgv: readonly string[], io: CliIO): Promise<number> {
  // calicoctl still accepts the old `-a` for --all-namespaces.
  const argv = rawArgv.map((a) => (a === '-a' ? '-A' : a));
  const args = parseArgs(binary, argv, 1, [
    ...FILE_OPTIONS, ...DATASTORE_OPTIONS,
    { long: 'output', short: 'o', value: true },
    { long: 'all-namespaces', short: 'A' },
    { long: 'export' },
  ]);
  if (args.flag('help')) {
    io.stdout.write(usageFor('get', binary));
    return 0;
  }
  const fmt = parseOutputFormat(args.get('output') ?? 'ps');
  const allNs = args.flag('all-namespaces');
  const ns = args.get('namespace');
  if (allNs && ns !== undefined) throw new CliError('Failed to get resources: cannot use both --namespace and --all-namespaces flags at the same time', 'ERR_CLI_NAMESPACE');
  const printNamespace = allNs || ns !== undefined;

  const filename = args.get('filename');
  let list: { kind: ResourceKind } | undefined;
  let targets: Target[] = [];
  if (filename !== undefined) {
    if (args.positionals.length > 0) throw invalidOption(binary, argv);
    let rs: Resource[];
    try {
      rs = await loadResources(filename, { recursive: args.flag('recursive'), skipEmpty: args.flag('skip-empty'), namespace: ns, identities: true }, io);
    } catch (e) {
      if (e instanceof EmptyInputError) throw e;
      handleInputError(e);
    }
    targets = rs.map((r) => ({ ...targetOf(r), resourceVersion: undefined }));
  } else {
    if (args.positionals.length < 1) throw invalidOption(binary, argv);
    const kind = lookupKind(args.positionals[0]);
    if (!kind) throw new CliError(`Failed to get resources: ${unknownKindMessage(args.positionals[0])}`, 'ERR_CLI_KIND');
    if (!isNamespacedKind(kind) && printNamespace) throw new CliError(`Failed to get resources: ${kind} is not namespaced`, 'ERR_CLI_NAMESPACE');
    const names = args.positionals.slice(1);
    if (names.length === 0) list = { kind };
    else {
      if (allNs && isNamespacedKind(kind)) throw new CliError('Failed to get resources: cannot use --all-namespace flag for getting a single resource', 'ERR_CLI_NAMESPACE');
      targets = targetsFromArgs(args.positionals[0], names, args);
    }
  }

  const found: Printable[] = [];
  const errors: Error[] = [];
  await withDatastore(args, io, async (client) => {
    if (list) {
      const namespace = isNamespacedKind(list.kind) ? (allNs ? undefined : ns ?? 'default') : undefined;
      const { items, revision } = await client.list(list.kind, namespace);
      const l: ResourceList = {
        apiVersion: API_VERSION_V3,
        kind: `${list.kind}List`,
        metadata: { resourceVersion: String(revision) },
        items: sortForKind(list.kind, items as Resource[]),
      };
      found.push(l);
      return;
    }
    for (const t of targets) {
      const r = await client.get(t.kind, t.name, t.namespace);
      if (r) found.push(args.flag('export') ? exported(r) : r);
      else errors.push(new ResourceMissingError(identifier(t.kind, t.name, t.namespace)));
    }
  });
  io.stdout.write(render(found, fmt, printNamespace));
  for (const e of errors) io.stderr.write(`${e.message}\n`);
  return errors.length > 0 ? 1 : 0;
}
