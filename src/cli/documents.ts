/**
 * Loading resources for `-f FILE|DIR|-`: reading (a file, every .yaml/.yml/.json file of a
 * directory — recursively with -R — or stdin), splitting multi-document YAML/JSON, expanding
 * `*List` documents and top-level arrays, converting v1 / Kubernetes input and validating
 * every resource (src/model's `toV3`).
 *
 * Contract:
 * - All or nothing: `loadResources` either returns every resource of the input, validated, in
 *   input order, or throws ONE InputError listing every problem of every document (file,
 *   document number, kind and name, field path, reason). Nothing is written by this module.
 * - `identities` mode (get/delete -f) needs only kind, name and namespace: a document that fails
 *   full validation but names a known kind and a name is still accepted, as calicoctl only
 *   decodes the file for those commands.
 * - For namespaced kinds, a document without metadata.namespace gets `-n NS` (or `default`);
 *   one whose namespace differs from `-n` is a problem, as in calicoctl.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { formatProblem, type Problem } from '../model/errors';
import { toV3 } from '../model/convert';
import type { Resource } from '../model/types';
import { CliError, readAll, type CliIO } from './io';
import { isNamespacedKind, lookupKind } from './kinds';

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
  /** `-n NS`, applied to namespaced resources without a namespace. */
  namespace?: string;
  /** Accept documents that only identify a resource (get, delete). */
  identities?: boolean;
}

interface Source {
  name: string;
  text: string;
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

function listDir(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) {
      if (recursive) out.push(...listDir(p, true));
    } else if (EXTENSIONS.has(path.extname(ent.name).toLowerCase())) {
      out.push(p);
    }
  }
  return out;
}

async function readSources(filename: string, opts: LoadOptions, io: CliIO): Promise<{ sources: Source[]; isDir: boolean }> {
  if (filename === '-') return { sources: [{ name: '-', text: await readAll(io.stdin) }], isDir: false };
  const p = path.resolve(io.cwd, filename);
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw new InputError(`open ${filename}: ${errnoText(e)}`);
  }
  if (!st.isDirectory()) {
    try {
      return { sources: [{ name: filename, text: fs.readFileSync(p, 'utf8') }], isDir: false };
    } catch (e) {
      throw new InputError(`open ${filename}: ${errnoText(e)}`);
    }
  }
  const files = listDir(p, opts.recursive ?? false);
  return {
    sources: files.map((f) => ({ name: path.relative(io.cwd, f) || f, text: fs.readFileSync(f, 'utf8') })),
    isDir: true,
  };
}

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return (e as Error).message;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Pre-validation namespace handling (the model defaults a missing namespace to `default`). */
function applyNamespace(raw: unknown, opts: LoadOptions, problems: Problem[], where: Omit<Problem, 'path' | 'reason'>): unknown {
  if (!isObj(raw) || typeof raw.kind !== 'string') return raw;
  const kind = lookupKind(raw.kind);
  if (!kind || !isNamespacedKind(kind) || raw.apiVersion === 'v1') return raw;
  const meta = isObj(raw.metadata) ? raw.metadata : undefined;
  const ns = meta && typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : undefined;
  if (ns === undefined && opts.namespace !== undefined) {
    return { ...raw, metadata: { ...(meta ?? {}), namespace: opts.namespace } };
  }
  if (ns !== undefined && opts.namespace !== undefined && ns !== opts.namespace) {
    problems.push({ ...where, path: 'metadata.namespace', reason: `resource namespace does not match client namespace. ${ns} != ${opts.namespace}` });
  }
  return raw;
}

/** Only what get/delete need: a known kind and a name (v3 spelling). */
function identityOf(raw: unknown): Resource | undefined {
  if (!isObj(raw) || typeof raw.kind !== 'string' || !isObj(raw.metadata)) return undefined;
  if (raw.apiVersion !== 'projectcalico.org/v3') return undefined;
  const kind = lookupKind(raw.kind);
  const name = raw.metadata.name;
  if (!kind || typeof name !== 'string' || name === '') return undefined;
  const meta: Record<string, unknown> = { name };
  if (isNamespacedKind(kind)) meta.namespace = typeof raw.metadata.namespace === 'string' && raw.metadata.namespace ? raw.metadata.namespace : 'default';
  if (typeof raw.metadata.resourceVersion === 'string') meta.resourceVersion = raw.metadata.resourceVersion;
  return { apiVersion: 'projectcalico.org/v3', kind, metadata: meta, spec: {} } as unknown as Resource;
}

/**
 * Parses the text of one source into resources, appending problems (with 1-based document
 * numbers) instead of throwing.
 */
export function parseText(text: string, opts: LoadOptions, problems: Problem[]): Resource[] {
  const out: Resource[] = [];
  const docs = YAML.parseAllDocuments(text, { prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  let docNo = 0;
  for (const doc of list) {
    docNo++;
    const base: Omit<Problem, 'path' | 'reason'> = { document: docNo };
    if (doc.errors.length > 0) {
      problems.push({ document: docNo, path: '', reason: `not valid YAML or JSON: ${doc.errors[0].message.split('\n')[0]}` });
      continue;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue; // empty document (e.g. a trailing `---`)
    // A top-level array or a `*List` holds several resources; their problems name items[i].
    let items: { raw: unknown; prefix: string }[];
    if (Array.isArray(value)) {
      items = value.map((raw, i) => ({ raw, prefix: `[${i}]` }));
    } else if (isObj(value) && typeof value.kind === 'string' && value.kind.endsWith('List') && value.kind !== 'List' && Array.isArray(value.items)) {
      items = (value.items as unknown[]).map((raw, i) => ({ raw, prefix: `items[${i}]` }));
    } else if (isObj(value) && value.kind === 'List' && Array.isArray(value.items)) {
      items = (value.items as unknown[]).map((raw, i) => ({ raw, prefix: `items[${i}]` }));
    } else {
      items = [{ raw: value, prefix: '' }];
    }
    for (const { raw, prefix } of items) {
      const before = problems.length;
      const prepared = applyNamespace(raw, opts, problems, base);
      const res = toV3(prepared);
      if (res.problems === undefined && problems.length === before) {
        out.push(res.resource);
        continue;
      }
      if (opts.identities) {
        const id = identityOf(prepared);
        if (id && problems.length === before) {
          out.push(id);
          continue;
        }
      }
      for (const p of res.problems ?? []) {
        const pathWithPrefix = prefix === '' ? p.path : p.path === '' ? prefix : p.path.startsWith('[') ? prefix + p.path : `${prefix}.${p.path}`;
        problems.push({ ...p, document: docNo, path: pathWithPrefix });
      }
      for (let i = before; i < problems.length; i++) {
        if (problems[i].kind === undefined && problems[i].name === undefined && isObj(prepared)) {
          const k = prepared.kind;
          const m = isObj(prepared.metadata) ? prepared.metadata : {};
          problems[i] = { ...problems[i], kind: typeof k === 'string' ? k : undefined, name: typeof m.name === 'string' ? m.name : undefined };
        }
      }
    }
  }
  return out;
}

/** Resources of `-f FILENAME`, all validated, or an InputError / EmptyInputError. */
export async function loadResources(filename: string, opts: LoadOptions, io: CliIO): Promise<Resource[]> {
  const { sources, isDir } = await readSources(filename, opts, io);
  const problems: { file: string; p: Problem }[] = [];
  const all: Resource[] = [];
  for (const src of sources) {
    const ps: Problem[] = [];
    const rs = parseText(src.text, opts, ps);
    for (const p of ps) problems.push({ file: src.name, p });
    if (ps.length === 0 && rs.length === 0 && !opts.skipEmpty) {
      throw new EmptyInputError(`No resources specified in file ${src.name}`);
    }
    all.push(...rs);
  }
  if (problems.length > 0) {
    const multi = sources.length > 1 || isDir;
    const lines = problems.map(({ file, p }) => (multi ? `${file}: ` : '') + formatProblem(p));
    const head = lines.length === 1 ? '' : `${lines.length} problems, nothing was written:\n  `;
    throw new InputError(head + lines.join('\n  '), problems.map((x) => x.p));
  }
  if (all.length === 0 && isDir && !opts.skipEmpty) throw new EmptyInputError(`No resources specified in directory ${filename}`);
  return all;
}
