/**
 * `get`'s output formats, shaped as calicoctl prints them:
 * - ps / wide / custom-columns: one table per printed object (a resource or a `*List`),
 *   columns laid out like Go's tabwriter(minwidth 5, padding 3) with every cell, the last
 *   included, padded — then an empty line after each table;
 * - yaml / json: src/model's printers (calicoctl's key order and list shapes); a single printed
 *   object is printed alone, several (`get kind a b`) as a YAML sequence / JSON array.
 *
 * Contract: pure functions from data to text; `parseOutputFormat` throws CliError for a format
 * calicoctl would reject or tortie does not implement (Go templates).
 */
import { toJson, toYaml, type Resource, type ResourceKind, type ResourceList } from '../model';
import { CliError } from './io';
import { cellOf, columnsOf, headingsOf, isNamespacedKind } from './kinds';

export type OutputFormat =
  | { type: 'table'; wide: boolean; headings?: string[] }
  | { type: 'yaml' }
  | { type: 'json' };

export type Printable = Resource | ResourceList;

export function parseOutputFormat(output: string): OutputFormat {
  switch (output) {
    case 'yaml':
    case 'yml':
      return { type: 'yaml' };
    case 'json':
      return { type: 'json' };
    case 'ps':
      return { type: 'table', wide: false };
    case 'wide':
      return { type: 'table', wide: true };
  }
  const eq = output.indexOf('=');
  const key = eq < 0 ? output : output.slice(0, eq);
  const value = eq < 0 ? '' : output.slice(eq + 1);
  if (key === 'custom-columns') {
    if (value === '') throw new CliError('need to specify at least one column', 'ERR_CLI_OUTPUT');
    return { type: 'table', wide: false, headings: value.split(',').map((h) => h.trim().toUpperCase()) };
  }
  if (key === 'go-template' || key === 'go-template-file') {
    throw new CliError(`output format '${key}' is not supported by tortiectl (use yaml, json, ps, wide or custom-columns=...)`, 'ERR_CLI_OUTPUT');
  }
  throw new CliError(`unrecognized output format '${output}'`, 'ERR_CLI_OUTPUT');
}

/** Go text/tabwriter with minwidth 5, tabwidth 1, padding 3, pad ' ', every cell tab-terminated. */
export function formatTable(headings: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headings, ...rows];
  const widths = headings.map((_, c) => Math.max(5, ...all.map((r) => (r[c] ?? '').length + 3)));
  return all.map((r) => headings.map((_, c) => (r[c] ?? '').padEnd(widths[c])).join('') + '\n').join('');
}

function isList(p: Printable): p is ResourceList {
  return (p as ResourceList).items !== undefined && p.kind.endsWith('List');
}

function kindOf(p: Printable): ResourceKind {
  return (isList(p) ? p.kind.slice(0, -'List'.length) : p.kind) as ResourceKind;
}

function tableFor(p: Printable, fmt: Extract<OutputFormat, { type: 'table' }>, printNamespace: boolean): string {
  const kind = kindOf(p);
  let headings = fmt.headings ?? columnsOf(kind, fmt.wide);
  const valid = headingsOf(kind);
  for (const h of headings) {
    if (!valid.includes(h)) throw new CliError(`Unknown heading ${h}, valid values are: ${valid.join(', ')}`, 'ERR_CLI_OUTPUT');
  }
  if (printNamespace && isNamespacedKind(kind) && valid.includes('NAMESPACE') && !headings.includes('NAMESPACE')) {
    headings = ['NAMESPACE', ...headings];
  }
  const items = isList(p) ? p.items : [p];
  return formatTable(headings, items.map((r) => headings.map((h) => cellOf(r, h) ?? '')));
}

/** YAML or JSON of one printed object: a resource as itself, a list in calicoctl's `*List` shape. */
function serialise(p: Printable, type: 'yaml' | 'json'): string {
  const print = type === 'yaml' ? toYaml : toJson;
  if (!isList(p)) return print(p);
  return print(p.items, { resourceVersion: p.metadata.resourceVersion, listKind: kindOf(p) });
}

/** Several printed objects (`get kind a b`): a YAML sequence / JSON array of them, as Go marshals a slice. */
function sequence(texts: readonly string[], type: 'yaml' | 'json'): string {
  if (texts.length === 0) return type === 'yaml' ? '[]\n' : '[]\n';
  if (type === 'yaml') {
    return texts.map((t) => t.trimEnd().split('\n').map((l, i) => (i === 0 ? '- ' : '  ') + l).join('\n') + '\n').join('');
  }
  return '[\n' + texts.map((t) => t.trimEnd().split('\n').map((l) => '  ' + l).join('\n')).join(',\n') + '\n]\n';
}

/** The text `get` prints for the objects it found (possibly none). */
export function render(objects: readonly Printable[], fmt: OutputFormat, printNamespace = false): string {
  switch (fmt.type) {
    case 'yaml':
    case 'json':
      return objects.length === 1 ? serialise(objects[0], fmt.type) : sequence(objects.map((o) => serialise(o, fmt.type)), fmt.type);
    case 'table':
      return objects.map((p) => tableFor(p, fmt, printNamespace) + '\n').join('');
  }
}
