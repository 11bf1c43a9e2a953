/**
 * calicoctl's in-place edits: `label KIND NAME key=value [--overwrite]` / `label KIND NAME key
 * --remove`, and `patch KIND NAME --patch=JSON [--type=strategic|merge]`.
 *
 * Both are read-modify-write with compare-and-swap on the version read, retried from the read
 * when someone else wrote in between; the result is validated as a whole (src/model) and goes
 * through the same cross-resource checks as replace. Patches are JSON merge patches
 * (RFC 7386: objects merge, null removes, lists are replaced), which is what Kubernetes'
 * strategic merge does for Calico's types, whose lists carry no merge keys.
 */
import { ResourceClient } from '../client/resources';
import { casLoop } from '../datastore/cas';
import { validateResource, ValidationError, type Resource, type ResourceKind } from '../model';
import { CNI_OWNED_LABELS_HELP, cniOwned } from '../model/wep-labels';
import { DATASTORE_OPTIONS, invalidOption, parseArgs, type ParsedArgs } from './args';
import { openConfiguredDatastore, resolveDatastoreConfig } from './datastore-config';
import { CliError, type CliIO } from './io';
import { isNamespacedKind, lookupKind, unknownKindMessage } from './kinds';
import { CONFLICT_RETRIES, preflight } from './resource-commands';

function target(args: ParsedArgs, binary: string, argv: readonly string[], count: number): { kind: ResourceKind; typed: string; name: string; namespace?: string } {
  if (args.positionals.length !== count) throw invalidOption(binary, argv);
  const typed = args.positionals[0];
  const kind = lookupKind(typed);
  if (!kind) throw new CliError(unknownKindMessage(typed), 'ERR_CLI_KIND');
  const ns = args.get('namespace');
  if (ns !== undefined && !isNamespacedKind(kind)) throw new CliError(`${kind} is not namespaced`, 'ERR_CLI_NAMESPACE');
  return { kind, typed, name: args.positionals[1], namespace: isNamespacedKind(kind) ? ns ?? 'default' : undefined };
}

/**
 * Reads the resource, lets `edit` produce the new one (or throw), validates, checks and writes
 * it with CAS on the version read; a concurrent write restarts from the read.
 */
async function editResource(
  args: ParsedArgs, io: CliIO, t: { kind: ResourceKind; name: string; namespace?: string },
  edit: (current: Resource) => unknown, notFound: () => CliError,
): Promise<Resource> {
  const ds = openConfiguredDatastore(resolveDatastoreConfig(args, io));
  try {
    const client = new ResourceClient(ds);
    return await casLoop(async () => {
      const current = await client.get(t.kind, t.name, t.namespace);
      if (!current) throw notFound();
      const next = validateResource(edit(structuredClone(current)));
      if (next.kind !== current.kind || next.metadata.name !== current.metadata.name || (next.metadata.namespace ?? '') !== (current.metadata.namespace ?? '')) {
        throw new CliError('the kind, name and namespace of a resource cannot be changed', 'ERR_CLI_IDENTITY');
      }
      await preflight(client, 'replace', [next]);
      const meta = { ...next.metadata, resourceVersion: current.metadata.resourceVersion };
      delete meta.uid;
      delete meta.creationTimestamp;
      if (current.metadata.uid !== undefined) meta.uid = current.metadata.uid;
      if (current.metadata.creationTimestamp !== undefined) meta.creationTimestamp = current.metadata.creationTimestamp;
      next.metadata = meta;
      return client.update(next);
    }, { attempts: CONFLICT_RETRIES });
  } finally {
    await ds.close().catch(() => undefined);
  }
}

export async function runLabel(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 1, [...DATASTORE_OPTIONS, { long: 'namespace', short: 'n', value: true }, { long: 'overwrite' }, { long: 'remove' }]);
  if (args.flag('help')) {
    io.stdout.write(`Usage:
  ${binary} label <KIND> <NAME> ( <key>=<value> [--overwrite] | <key> --remove ) [--namespace=<NS>] [options]

Add, change (--overwrite) or remove (--remove) one label of a resource.
`);
    return 0;
  }
  const t = target(args, binary, argv, 3);
  const remove = args.flag('remove');
  const overwrite = args.flag('overwrite');
  if (remove && overwrite) throw invalidOption(binary, argv);
  const spec = args.positionals[2];
  let key = spec;
  let value = '';
  if (!remove) {
    const parts = spec.split('=');
    if (parts.length !== 2) throw new CliError(`invalid label ${spec}`, 'ERR_CLI_LABEL');
    [key, value] = parts;
  }
  const result: { outcome: 'set' | 'updated' | 'removed' } = { outcome: remove ? 'removed' : 'set' };
  try {
    await editResource(args, io, t, (r) => {
      if (r.kind === 'WorkloadEndpoint' && cniOwned(r)) {
        throw new CliError(`cannot change labels of ${t.typed} ${t.name}: ${CNI_OWNED_LABELS_HELP}`, 'ERR_CLI_LABEL');
      }
      const labels = { ...(r.metadata.labels ?? {}) };
      if (remove) {
        if (!(key in labels)) throw new CliError(`cannot remove label of ${t.typed} ${t.name}, key ${key} does not exist`, 'ERR_CLI_LABEL');
        delete labels[key];
      } else if (key in labels) {
        if (!overwrite && labels[key] !== value) {
          throw new CliError(`failed to update label of ${t.typed} ${t.name}, key ${key} is already present. please use '--overwrite' to set a new value.`, 'ERR_CLI_LABEL');
        }
        labels[key] = value;
        result.outcome = 'updated';
      } else {
        labels[key] = value;
      }
      r.metadata.labels = labels;
      return r;
    }, () => new CliError(`${t.typed} ${t.name} not found`, 'ERR_CLI_NOT_FOUND'));
  } catch (e) {
    if (e instanceof ValidationError) throw new CliError(`failed to update ${t.typed} ${t.name}, label not changed: ${e.message}`, 'ERR_CLI_LABEL');
    throw e;
  }
  const verb = result.outcome === 'removed' ? `removed label ${key} from` : result.outcome === 'updated' ? `updated label ${key} on` : `set label ${key} on`;
  io.stdout.write(`Successfully ${verb} ${t.typed} ${t.name}\n`);
  return 0;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else Object.defineProperty(out, k, { value: mergePatch(out[k], v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export async function runPatch(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 1, [
    ...DATASTORE_OPTIONS, { long: 'namespace', short: 'n', value: true }, { long: 'patch', short: 'p', value: true }, { long: 'type', short: 't', value: true },
  ]);
  if (args.flag('help')) {
    io.stdout.write(`Usage:
  ${binary} patch <KIND> <NAME> --patch=<PATCH> [--type=strategic|merge] [--namespace=<NS>] [options]

Change part of a resource in place: PATCH is a JSON object merged into it (null removes a
field, lists are replaced).
`);
    return 0;
  }
  const t = target(args, binary, argv, 2);
  const patchText = args.get('patch');
  if (patchText === undefined) throw invalidOption(binary, argv);
  const type = args.get('type') ?? 'strategic';
  if (type !== 'strategic' && type !== 'merge') {
    throw new CliError(`Hit error: patch type '${type}' is not supported (strategic or merge)`, 'ERR_CLI_PATCH');
  }
  let patch: unknown;
  try {
    patch = JSON.parse(patchText);
  } catch (e) {
    throw new CliError(`Hit error: the patch is not valid JSON: ${(e as Error).message}`, 'ERR_CLI_PATCH');
  }
  if (!isObj(patch)) throw new CliError('Hit error: the patch must be a JSON object', 'ERR_CLI_PATCH');
  const id = `${t.kind}(${t.namespace ? `${t.namespace}/` : ''}${t.name})`;
  try {
    await editResource(args, io, t, (r) => mergePatch(r, patch), () => new CliError(`resource does not exist: ${id}`, 'ERR_CLI_NOT_FOUND'));
  } catch (e) {
    if (e instanceof CliError && e.code === 'ERR_CLI_NOT_FOUND') throw new CliError(`Failed to patch '${t.kind}' resource: ${e.message}`, e.code);
    if (e instanceof ValidationError || e instanceof CliError) throw new CliError(`Hit error: ${e.message}`, 'ERR_CLI_PATCH');
    throw e;
  }
  io.stdout.write(`Successfully patched 1 '${t.kind}' resource\n`);
  return 0;
}
