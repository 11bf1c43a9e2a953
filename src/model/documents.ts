/**
 * Documents in and out, for tortiectl: parsing files of resources, resolving kind names
 * typed on the command line, and printing in calicoctl's formats.
 *
 * Contract:
 *  - `parseResources(text)` reads JSON or (multi-document) YAML; a document may be one
 *    resource or a list (`kind: List` or `kind: <Kind>List` with `items`). Every resource is
 *    converted (v1, networking.k8s.io/v1) and validated. All or nothing: either every
 *    resource is returned, in input order, or ONE ValidationError lists every problem of
 *    every document (1-based document number, item index, kind, name, field, reason).
 *    Empty documents are skipped; an input with no resources at all is an error.
 *  - `resolveKind(text)` maps the names and aliases calicoctl accepts (case-insensitive)
 *    to a kind, or undefined.
 *  - `toYaml` / `toJson` print one resource as itself and an array as calicoctl's list
 *    shape (`kind: <Kind>List`, or `kind: List` when kinds are mixed). YAML keys are
 *    sorted and sequences not indented, as calicoctl's YAML printer does; JSON keeps
 *    calicoctl's field order (kind, apiVersion, metadata, spec) with 2-space indent.
 */
import { parseAllDocuments, stringify } from 'yaml';
import { ValidationError, type Problem } from './errors';
import { toV3 } from './convert';
import { API_VERSION_V3, type Resource, type ResourceKind } from './types';
import { isObject, own, setOwn } from './values';

/** Inputs larger than this are refused outright (a resource file is kilobytes). */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

export interface ParseOptions {
  /** More problems per valid resource (e.g. `unenforcedProblems`), reported like validation's. */
  check?: (r: Resource) => Problem[];
}

export function parseResources(text: string, opts: ParseOptions = {}): Resource[] {
  const problems: Problem[] = [];
  const resources: Resource[] = [];
  if (typeof text !== 'string') {
    throw new ValidationError([{ path: '', reason: `input must be text, got ${typeof text}` }]);
  }
  if (text.length > MAX_INPUT_BYTES) {
    throw new ValidationError([{ path: '', reason: `input is larger than ${MAX_INPUT_BYTES} bytes` }]);
  }

  const docs = readDocuments(text, problems);
  docs.forEach((doc, i) => {
    const docNo = i + 1;
    if (doc === null || doc === undefined) return;
    if (isList(doc)) {
      const items = own(doc as Record<string, unknown>, 'items');
      if (!Array.isArray(items)) {
        problems.push({ document: docNo, path: 'items', reason: `a ${String(own(doc as Record<string, unknown>, 'kind'))} needs an items list` });
        return;
      }
      items.forEach((item, j) => {
        const r = toV3(item);
        const extra = r.problems === undefined && opts.check !== undefined ? opts.check(r.resource) : [];
        if (r.problems !== undefined) problems.push(...r.problems.map((p) => ({ ...p, document: docNo, item: j })));
        else if (extra.length > 0) problems.push(...extra.map((p) => ({ ...p, document: docNo, item: j })));
        else resources.push(r.resource);
      });
      return;
    }
    const r = toV3(doc);
    const extra = r.problems === undefined && opts.check !== undefined ? opts.check(r.resource) : [];
    if (r.problems !== undefined) problems.push(...r.problems.map((p) => ({ ...p, document: docNo })));
    else if (extra.length > 0) problems.push(...extra.map((p) => ({ ...p, document: docNo })));
    else resources.push(r.resource);
  });
  // Syntax problems are found before the documents are checked; report in input order.
  problems.sort((a, b) => (a.document ?? 0) - (b.document ?? 0));
  if (problems.length > 0) throw new ValidationError(problems);
  if (resources.length === 0) throw new ValidationError([{ path: '', reason: 'no resources found in the input' }]);
  return resources;
}

function isList(doc: unknown): boolean {
  if (!isObject(doc)) return false;
  const kind = own(doc, 'kind');
  return typeof kind === 'string' && (kind === 'List' || (kind.endsWith('List') && own(doc, 'items') !== undefined));
}

/** JSON first (a JSON document is also YAML, but JSON.parse is exact and fast). */
function readDocuments(text: string, problems: Problem[]): unknown[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      const v: unknown = JSON.parse(trimmed);
      // A top-level JSON array is a list of resources, as calicoctl accepts.
      return Array.isArray(v) ? [{ kind: 'List', items: v }] : [v];
    } catch {
      // Not strict JSON; fall through to YAML, which also reports errors with positions.
    }
  }
  const guard = nestingProblem(text);
  if (guard !== null) {
    problems.push({ document: 1, path: '', reason: guard });
    return [];
  }
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  list.forEach((d, i) => {
    if (d.errors.length > 0) {
      // The first few errors say what is wrong; later ones are mostly consequences.
      for (const e of d.errors.slice(0, MAX_SYNTAX_ERRORS_PER_DOCUMENT)) {
        const pos = e.linePos?.[0];
        const where = pos !== undefined ? ` at line ${pos.line}, column ${pos.col}` : '';
        const msg = e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? 'syntax error';
        problems.push({ document: i + 1, path: '', reason: `YAML syntax error${where}: ${msg}` });
      }
      out.push(undefined);
      return;
    }
    try {
      const v: unknown = d.toJS({ maxAliasCount: 100 });
      out.push(Array.isArray(v) ? { kind: 'List', items: v } : v);
    } catch (e) {
      problems.push({ document: i + 1, path: '', reason: `YAML error: ${e instanceof Error ? e.message : String(e)}` });
      out.push(undefined);
    }
  });
  return out;
}

const MAX_SYNTAX_ERRORS_PER_DOCUMENT = 3;
const MAX_FLOW_DEPTH = 100;
const MAX_INDENT = 1000;

/**
 * Resource files are shallow. Refusing absurd nesting up front keeps the YAML parser (which
 * recurses) away from stack and memory exhaustion on hostile input. Brackets inside quoted
 * strings are counted too; only pathological strings could trip that.
 */
function nestingProblem(text: string): string | null {
  let depth = 0;
  let indent = 0;
  let atLineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      atLineStart = true;
      indent = 0;
      continue;
    }
    if (atLineStart) {
      if (c === 32 || c === 9) {
        indent += 1;
        if (indent > MAX_INDENT) return `a line is indented more than ${MAX_INDENT} columns`;
        continue;
      }
      atLineStart = false;
    }
    if (c === 91 || c === 123) {
      depth += 1;
      if (depth > MAX_FLOW_DEPTH) return `brackets are nested more than ${MAX_FLOW_DEPTH} deep`;
    } else if ((c === 93 || c === 125) && depth > 0) depth -= 1;
  }
  return null;
}

// ---------------------------------------------------------------- kinds on the command line

/** calicoctl's names for each kind (plus tortie's Namespace), all lower-case. */
export const KIND_ALIASES: Readonly<Record<ResourceKind, readonly string[]>> = {
  IPPool: ['ippool', 'ippools', 'ipp', 'ipps', 'pool', 'pools'],
  Node: ['node', 'nodes', 'no', 'nos'],
  WorkloadEndpoint: ['workloadendpoint', 'workloadendpoints', 'wep', 'weps'],
  Profile: ['profile', 'profiles', 'pro', 'pros'],
  Tier: ['tier', 'tiers'],
  NetworkPolicy: ['networkpolicy', 'networkpolicies', 'policy', 'np', 'policies', 'pol', 'pols'],
  GlobalNetworkPolicy: ['globalnetworkpolicy', 'globalnetworkpolicies', 'gnp', 'gnps'],
  Namespace: ['namespace', 'namespaces', 'ns'],
  BGPConfiguration: ['bgpconfiguration', 'bgpconfigurations', 'bgpconfig', 'bgpconfigs'],
  BGPPeer: ['bgppeer', 'bgppeers', 'bgpp', 'bgpps', 'bp', 'bps'],
  GlobalNetworkSet: ['globalnetworkset', 'globalnetworksets'],
  NetworkSet: ['networkset', 'networksets', 'netsets'],
  HostEndpoint: ['hostendpoint', 'hostendpoints', 'hep', 'heps'],
  IPReservation: ['ipreservation', 'ipreservations'],
  ClusterInformation: ['clusterinformation', 'clusterinformations', 'clusterinfo', 'clusterinfos'],
  FelixConfiguration: ['felixconfiguration', 'felixconfigurations', 'felixconfig', 'felixconfigs'],
};

export function resolveKind(text: string): ResourceKind | undefined {
  if (typeof text !== 'string') return undefined;
  const t = text.trim().toLowerCase();
  for (const [kind, aliases] of Object.entries(KIND_ALIASES) as [ResourceKind, readonly string[]][]) {
    if (aliases.includes(t)) return kind;
  }
  return undefined;
}

// ---------------------------------------------------------------- output

interface ListShape {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown>;
  items: Resource[];
}

function listOf(resources: readonly Resource[], opts: OutputOptions): ListShape {
  const kinds = new Set(resources.map((r) => r.kind));
  const single = kinds.size === 1 ? [...kinds][0] : kinds.size === 0 ? opts.listKind : undefined;
  const metadata: Record<string, unknown> = {};
  if (opts.resourceVersion !== undefined) metadata.resourceVersion = opts.resourceVersion;
  return single !== undefined
    ? { apiVersion: API_VERSION_V3, kind: `${single}List`, metadata, items: [...resources] }
    : { apiVersion: 'v1', kind: 'List', metadata, items: [...resources] };
}

export interface OutputOptions {
  /** Put into the list's metadata (calicoctl shows the datastore revision there). */
  resourceVersion?: string;
  /** The kind listed, so that an empty result still prints as `<Kind>List` (calicoctl get). */
  listKind?: ResourceKind;
}

export function toYaml(value: Resource | readonly Resource[], opts: OutputOptions = {}): string {
  const v = Array.isArray(value) ? listOf(value as readonly Resource[], opts) : value;
  return yamlStringify(sortDeep(v));
}

export function toJson(value: Resource | readonly Resource[], opts: OutputOptions = {}): string {
  const v = Array.isArray(value) ? listOf(value as readonly Resource[], opts) : value;
  return JSON.stringify(kindFirst(v), null, 2) + '\n';
}

function yamlStringify(v: unknown): string {
  return stringify(v, { indentSeq: false, lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false });
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (isObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      setOwn(out, k, sortDeep(v[k]));
    }
    return out;
  }
  return v;
}

/** Go's TypeMeta order: kind before apiVersion, then the rest as built. */
function kindFirst(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(kindFirst);
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  const keys = Object.keys(v);
  const ordered = [...keys.filter((k) => k === 'kind'), ...keys.filter((k) => k === 'apiVersion'), ...keys.filter((k) => k !== 'kind' && k !== 'apiVersion')];
  for (const k of ordered) {
    setOwn(out, k, k === 'items' ? kindFirst(v[k]) : v[k]);
  }
  return out;
}
