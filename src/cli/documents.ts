/**
 * Loading resources for `-f FILE|DIR|-`: reading a file, every .yaml/.yml/.json file of a
 * directory (recursively with -R) or stdin, then src/model's `parseResources` (multi-document
 * YAML/JSON, lists, v1 / Kubernetes conversion, validation) on each, plus calicoctl's `-n`.
 *
 * Contract:
 * - All or nothing: `loadResources` either returns every resource of the input, validated, in
 *   input order, or throws ONE InputError listing every problem of every file and document
 *   (file when several, document number, kind and name, field path, reason).
 * - An input without resources is an EmptyInputError ("No resources specified in file X"),
 *   unless --skip-empty.
 * - `-n NS` moves namespaced resources that are in the default namespace (namespace absent or
 *   `default`: the model defaults it, so the two cannot be told apart) into NS; a resource
 *   explicitly in another namespace is a problem, as calicoctl's "resource namespace does not
 *   match client namespace".
 * - Resources to write must also be enforced by tortie: a field Calico accepts that tortie does
 *   not implement is a problem naming it (src/model's unenforcedProblems).
 * - `identities` (get/delete -f): when strict parsing fails, documents that still name a known
 *   kind and a name are accepted as bare identities, since calicoctl only decodes those files.
 * Nothing is written by this module.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { formatProblem, parseResources, resolveKind, unenforcedProblems, ValidationError, type Problem, type Resource } from '../model';
import { CliError, readAll, type CliIO } from './io';
import { isNamespacedKind } from './kinds';

/** The input could not be read or is invalid: calicoctl's "Failed to execute command: …". */
export class InputError extends CliError {
  constructor(message: string, readonly problems: readonly Problem[] = []) {
    super(message, 'ERR_CLI_INPUT');
    this.name = 'InputError';
  }
}

/** No resources in the input: calicoctl's "No resources specified in file …" (not a file error). */
export class EmptyInputError extends CliError {
  constructor(message: string) {
    super(message, 'ERR_CLI_EMPTY');
    this.name = 'EmptyInputError';
  }
}

export interface LoadOptions {
  recursive?: boolean;
  skipEmpty?: boolean;
  /** `-n NS`. */
  namespace?: string;
  /** Accept documents that only identify a resource (get, delete). */
  identities?: boolean;
  /** Calico's model only, without tortie's enforcement check (convert prints, never writes). */
  modelOnly?: boolean;
}

interface Source {
  name: string;
  text: string;
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

function listDir(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const ent of entries) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) {
      if (recursive) out.push(...listDir(p, true));
    } else if (EXTENSIONS.has(path.extname(ent.name).toLowerCase())) {
      out.push(p);
    }
  }
  return out;
}

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return (e as Error).message;
}

async function readSources(filename: string, opts: LoadOptions, io: CliIO): Promise<{ sources: Source[]; isDir: boolean }> {
  if (filename === '-') return { sources: [{ name: '-', text: await readAll(io.stdin) }], isDir: false };
  const p = path.resolve(io.cwd, filename);
  try {
    if (!fs.statSync(p).isDirectory()) return { sources: [{ name: filename, text: fs.readFileSync(p, 'utf8') }], isDir: false };
    const files = listDir(p, opts.recursive ?? false);
    return { sources: files.map((f) => ({ name: path.relative(io.cwd, f) || f, text: fs.readFileSync(f, 'utf8') })), isDir: true };
  } catch (e) {
    throw new InputError(`open ${filename}: ${errnoText(e)}`);
  }
}

/** Only blank lines, comments and document markers: nothing to parse. */
function isBlank(text: string): boolean {
  return text.split('\n').every((l) => /^\s*(#.*)?$/.test(l) || /^(---|\.\.\.)\s*(#.*)?$/.test(l));
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** get/delete -f of documents that do not validate: kind, name and namespace are enough. */
function identitiesOf(text: string, namespace: string | undefined): Resource[] | undefined {
  const out: Resource[] = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length > 0) return undefined;
    const v: unknown = doc.toJS({ maxAliasCount: 100 });
    if (v === null || v === undefined) continue;
    const items: unknown[] = Array.isArray(v) ? v : isObj(v) && Array.isArray(v.items) ? v.items : [v];
    for (const raw of items) {
      if (!isObj(raw) || raw.apiVersion !== 'projectcalico.org/v3' || typeof raw.kind !== 'string' || !isObj(raw.metadata)) return undefined;
      const kind = resolveKind(raw.kind);
      const name = raw.metadata.name;
      if (!kind || typeof name !== 'string' || name === '') return undefined;
      const meta: Record<string, unknown> = { name };
      if (isNamespacedKind(kind)) meta.namespace = typeof raw.metadata.namespace === 'string' && raw.metadata.namespace ? raw.metadata.namespace : namespace ?? 'default';
      if (typeof raw.metadata.resourceVersion === 'string') meta.resourceVersion = raw.metadata.resourceVersion;
      out.push({ apiVersion: 'projectcalico.org/v3', kind, metadata: meta, spec: {} } as unknown as Resource);
    }
  }
  return out;
}

/** calicoctl's -n for resources read from a file (see the contract above). */
function applyNamespace(rs: Resource[], namespace: string | undefined): Problem[] {
  if (namespace === undefined) return [];
  const problems: Problem[] = [];
  for (const r of rs) {
    if (!isNamespacedKind(r.kind)) continue;
    const ns = r.metadata.namespace ?? 'default';
    if (ns === 'default') r.metadata.namespace = namespace;
    else if (ns !== namespace) {
      problems.push({ kind: r.kind, name: `${ns}/${r.metadata.name}`, path: 'metadata.namespace', reason: `resource namespace does not match client namespace. ${ns} != ${namespace}` });
    }
  }
  return problems;
}

/** Resources of `-f FILENAME`, all validated, or an InputError / EmptyInputError. */
export async function loadResources(filename: string, opts: LoadOptions, io: CliIO): Promise<Resource[]> {
  const { sources, isDir } = await readSources(filename, opts, io);
  const problems: { file: string; p: Problem }[] = [];
  const all: Resource[] = [];
  for (const src of sources) {
    if (isBlank(src.text)) {
      if (!opts.skipEmpty) throw new EmptyInputError(`No resources specified in file ${src.name}`);
      continue;
    }
    let rs: Resource[];
    try {
      // Written resources must be enforced; get/delete only name them.
      rs = parseResources(src.text, opts.identities || opts.modelOnly ? {} : { check: unenforcedProblems });
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      const ids = opts.identities ? identitiesOf(src.text, opts.namespace) : undefined;
      if (ids === undefined) {
        for (const p of e.problems) problems.push({ file: src.name, p });
        continue;
      }
      rs = ids;
    }
    for (const p of applyNamespace(rs, opts.namespace)) problems.push({ file: src.name, p });
    all.push(...rs);
  }
  if (problems.length > 0) {
    const multi = sources.length > 1 || isDir;
    const lines = problems.map(({ file, p }) => (multi ? `${file}: ` : '') + formatProblem(p));
    const head = lines.length === 1 ? '' : `${lines.length} problems, nothing was written:\n  `;
    throw new InputError(head + lines.join('\n  '), problems.map((x) => x.p));
  }
  if (all.length === 0 && !opts.skipEmpty) {
    throw new EmptyInputError(isDir ? `No resources specified in directory ${filename}` : `No resources specified in file ${filename}`);
  }
  return all;
}
