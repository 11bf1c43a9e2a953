/**
 * tortiectl: calicoctl's command line for tortie. Every calicoctl example of the Calico docs
 * works with `tortiectl` in its place (apply/create/replace/delete/get with calicoctl's
 * tables, YAML/JSON shapes and messages; ipam show/check/release; node status / node run; version).
 *
 *   bin/tortiectl.js ─> main(argv) ─┬─ apply|create|replace|delete|get ─> resource-commands.ts
 *                                   ├─ label|patch                      ─> edit-commands.ts
 *                                   ├─ validate|convert                 ─> documents.ts
 *                                   ├─ ipam show|check|release          ─> ipam-commands.ts
 *                                   ├─ node status|run                  ─> node-commands.ts
 *                                   └─ version
 *   datastore selection for all of them: datastore-config.ts (flags > -c file > env > embedded)
 *
 * Contract: `main` never calls process.exit and never throws; it writes results to
 * `io.stdout`, errors to `io.stderr`, and resolves to the exit status (0 success, 1 any
 * failure, as calicoctl). `io` defaults to the process's streams and environment, and may be
 * replaced (fully or in part) so tests run commands in-process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VERSION } from '../version';
import { DATASTORE_OPTIONS, invalidOption, parseArgs, type ParsedArgs } from './args';
import { openConfiguredDatastore, resolveDatastoreConfig } from './datastore-config';
import { ResourceClient } from '../client/resources';
import type { Datastore } from '../datastore/types';
import { CLUSTER_INFORMATION_NAME, type ClusterInformation } from '../model';
import { EmptyInputError, InputError, loadResources } from './documents';
import { runLabel, runPatch } from './edit-commands';
import { runIpam } from './ipam-commands';
import { CliError, processIO, type CliIO } from './io';
import { runNode } from './node-commands';
import { parseOutputFormat, render } from './output';
import { runDelete, runGet, runWrite } from './resource-commands';

export const BINARY = 'tortiectl';

function usage(binary: string): string {
  return `Usage:
  ${binary} [options] <command> [<args>...]

    create       Create resources from a file, a directory or stdin.
    replace      Replace resources from a file, a directory or stdin.
    apply        Create resources that do not exist and replace those that do.
    patch        Change part of a resource in place (a JSON merge patch).
    delete       Delete resources named by kind and name, or in a file.
    get          Show resources by kind and name, or those named in a file.
    label        Add, change or remove a label of a resource.
    validate     Check resources in a file without writing them.
    convert      Print Calico v1 / Kubernetes resources as projectcalico.org/v3.
    ipam         IP address management (ipam show, check, release).
    node         tortie node management (node run, status, diags, checksystem).
    version      Show the version of this binary.

Options:
  -h --help                    Show this screen.
  -l --log-level=<level>       Accepted for calicoctl compatibility (panic, fatal, error, warn,
                               info, debug).
     --allow-version-mismatch  Accepted for calicoctl compatibility.

Datastore: the embedded store (/var/lib/tortie/store, or --store-dir / TORTIE_DATASTORE_DIR) unless
DATASTORE_TYPE=etcdv3 (ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE) or a
calicoctl configuration file (-c) says otherwise.

See '${binary} <command> --help' to read about a specific subcommand.
`;
}

const LOG_LEVELS = new Set(['panic', 'fatal', 'error', 'warn', 'warning', 'info', 'debug', 'trace']);

/** Git commit of the checkout this runs from, when there is one (best effort, no git binary). */
function gitRevision(): string {
  try {
    const root = path.resolve(__dirname, '..', '..', '..');
    const head = fs.readFileSync(path.join(root, '.git', 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 12);
    const ref = head.slice(5);
    const refFile = path.join(root, '.git', ref);
    if (fs.existsSync(refFile)) return fs.readFileSync(refFile, 'utf8').trim().slice(0, 12);
    const packed = fs.readFileSync(path.join(root, '.git', 'packed-refs'), 'utf8');
    const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
    return line ? line.slice(0, 12) : 'unknown';
  } catch {
    return 'unknown';
  }
}

async function runVersion(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 1, [...DATASTORE_OPTIONS, { long: 'poll', value: true }]);
  if (args.flag('help')) {
    io.stdout.write(`Usage:\n  ${binary} version\n\nShow the version of ${binary}.\n`);
    return 0;
  }
  io.stdout.write(`Client Version:    v${VERSION}\n`);
  io.stdout.write(`Git commit:        ${gitRevision()}\n`);
  const info = await clusterInformation(args, io);
  if (typeof info === 'string') {
    io.stdout.write(`Unable to retrieve Cluster Version or Type: ${info}\n`);
  } else {
    io.stdout.write(`Cluster Version:   ${info.spec.calicoVersion ?? ''}\n`);
    io.stdout.write(`Cluster Type:      ${info.spec.clusterType ?? ''}\n`);
  }
  return 0;
}

/** How long `version` waits for the datastore before saying the cluster's version is unknown. */
const VERSION_DATASTORE_TIMEOUT_MS = 5000;

/**
 * ClusterInformation `default` (written by tortie-node at start-up), or why it cannot be had.
 * An embedded store that does not exist yet is not created by asking.
 */
async function clusterInformation(args: ParsedArgs, io: CliIO): Promise<ClusterInformation | string> {
  let ds: Datastore | undefined;
  try {
    const config = resolveDatastoreConfig(args, io);
    if (config.type === 'embedded' && config.dir !== undefined && !fs.existsSync(config.dir)) return `no datastore at ${config.dir} (no tortie-node has run against it)`;
    ds = openConfiguredDatastore(config);
    const client = new ResourceClient(ds);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the datastore did not answer within ${VERSION_DATASTORE_TIMEOUT_MS / 1000} s`)), VERSION_DATASTORE_TIMEOUT_MS);
    });
    try {
      const r = await Promise.race([client.get('ClusterInformation', CLUSTER_INFORMATION_NAME), timeout]);
      return r ?? `resource does not exist: ClusterInformation(${CLUSTER_INFORMATION_NAME}) (no tortie-node has started against this datastore)`;
    } finally {
      clearTimeout(timer);
    }
  } catch (e) {
    return (e as Error).message;
  } finally {
    await ds?.close().catch(() => undefined);
  }
}

async function runValidate(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 1, [
    ...DATASTORE_OPTIONS, { long: 'filename', short: 'f', value: true }, { long: 'recursive', short: 'R' }, { long: 'skip-empty' },
  ]);
  if (args.flag('help')) {
    io.stdout.write(`Usage:\n  ${binary} validate --filename=<FILENAME> [--recursive] [--skip-empty]\n\nValidate resources (all of them, reporting every problem) without writing anything.\n`);
    return 0;
  }
  const filename = args.get('filename');
  if (filename === undefined || args.positionals.length > 0) {
    throw invalidOption(binary, argv);
  }
  try {
    const rs = await loadResources(filename, { recursive: args.flag('recursive'), skipEmpty: args.flag('skip-empty') }, io);
    io.stdout.write(`Successfully validated ${rs.length} resource(s)\n`);
    return 0;
  } catch (e) {
    if (e instanceof InputError) throw new CliError(`Failed to validate: ${e.message}`, e.code);
    if (e instanceof EmptyInputError) throw e;
    throw e;
  }
}

/** `convert -f FILE [-o yaml|json]`: v1 / Kubernetes input printed as validated v3 resources. */
async function runConvert(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 1, [{ long: 'filename', short: 'f', value: true }, { long: 'output', short: 'o', value: true }, { long: 'ignore-validation' }]);
  if (args.flag('help')) {
    io.stdout.write(`Usage:\n  ${binary} convert --filename=<FILENAME> [--output=<OUTPUT>]\n\nPrint Calico v1 (ipPool, node, policy, profile) and Kubernetes NetworkPolicy resources as projectcalico.org/v3,\nvalidated. Output yaml (default) or json.\n`);
    return 0;
  }
  const filename = args.get('filename');
  if (filename === undefined || args.positionals.length > 0) throw invalidOption(binary, argv);
  const output = args.get('output') ?? 'yaml';
  if (!['yaml', 'yml', 'json'].includes(output)) throw new CliError(`unrecognized output format '${output}'`, 'ERR_CLI_OUTPUT');
  let rs;
  try {
    rs = await loadResources(filename, { modelOnly: true }, io);
  } catch (e) {
    if (e instanceof InputError) throw new CliError(`Failed to execute command: ${e.message}`, e.code);
    throw e;
  }
  const stripped = rs.map((r) => {
    const meta = { ...r.metadata };
    delete meta.uid;
    delete meta.resourceVersion;
    delete meta.creationTimestamp;
    return { ...r, metadata: meta };
  });
  io.stdout.write(render(stripped, parseOutputFormat(output)));
  return 0;
}

export async function main(argv: string[], ioOverrides: Partial<CliIO> = {}): Promise<number> {
  const io: CliIO = { ...processIO(), ...ioOverrides };
  const binary = BINARY;
  try {
    // Options before the command (calicoctl's OptionsFirst): global ones, and datastore flags
    // which are handed on to the command.
    let i = 0;
    const forwarded: string[] = [];
    for (; i < argv.length && argv[i].startsWith('-'); i++) {
      const a = argv[i];
      if (a === '-h' || a === '--help') {
        io.stdout.write(usage(binary));
        return 0;
      }
      const [name, inline] = a.startsWith('--') ? [a.slice(2).split('=')[0], a.includes('=') ? a.slice(a.indexOf('=') + 1) : undefined] : [a.slice(1, 2), a.length > 2 ? a.slice(2) : undefined];
      if (name === 'l' || name === 'log-level') {
        const level = inline ?? argv[++i];
        if (level === undefined || !LOG_LEVELS.has(level.toLowerCase())) {
          io.stderr.write(`Unknown log level: ${level ?? ''}, expected one of: \npanic, fatal, error, warn, info, debug.\n`);
          return 1;
        }
        continue;
      }
      if (name === 'allow-version-mismatch') continue;
      if (name === 'context') {
        if (inline === undefined) i++;
        continue;
      }
      const ds = DATASTORE_OPTIONS.find((o) => o.long === name || o.short === name);
      if (ds) {
        if (ds.value && inline === undefined) {
          forwarded.push(a, argv[++i] ?? '');
        } else {
          forwarded.push(a);
        }
        continue;
      }
      throw invalidOption(binary, argv);
    }
    if (i >= argv.length) {
      io.stderr.write(usage(binary));
      return 1;
    }
    const command = argv[i];
    const sub = [...argv.slice(i), ...forwarded];
    switch (command) {
      case 'apply':
      case 'create':
      case 'replace':
        return await runWrite(command, binary, sub, io);
      case 'delete':
        return await runDelete(binary, sub, io);
      case 'get':
        return await runGet(binary, sub, io);
      case 'label':
        return await runLabel(binary, sub, io);
      case 'patch':
        return await runPatch(binary, sub, io);
      case 'validate':
        return await runValidate(binary, sub, io);
      case 'convert':
        return await runConvert(binary, sub, io);
      case 'ipam':
        return await runIpam(binary, sub, io);
      case 'node':
        return await runNode(binary, sub, io);
      case 'version':
        return await runVersion(binary, sub, io);
      default:
        io.stderr.write(`unknown command: ${JSON.stringify(command)}\n${usage(binary)}`);
        return 1;
    }
  } catch (e) {
    if (e instanceof CliError) {
      io.stderr.write(`${e.message}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    io.stderr.write(`${err?.message ?? String(e)}\n`);
    if (io.env.TORTIECTL_DEBUG && err?.stack) io.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
