/**
 * The one error type of src/model.
 *
 * Contract: every problem found in an input is collected (validation does not stop at the
 * first); the error's message has one line per problem in the form
 * `[document N: ]<Kind> <name>: <field path>: <reason>`, and `problems` carries the same
 * facts as data so callers (tortiectl, the syncer) can format or log them.
 */
import { TortieError } from '../util/errors';

export interface Problem {
  /** 1-based index of the document in a multi-document input (parseResources only). */
  document?: number;
  /** 0-based index in the document's `items` when the document is a List. */
  item?: number;
  /** Resource kind as understood so far (may be the input's own spelling if unknown). */
  kind?: string;
  /** `name` or `namespace/name`, when known. */
  name?: string;
  /** Field path, e.g. `spec.ingress[2].destination.ports[0]`; empty for the whole input. */
  path: string;
  reason: string;
}

export function formatProblem(p: Problem): string {
  const parts: string[] = [];
  if (p.document !== undefined) {
    parts.push(p.item !== undefined ? `document ${p.document} items[${p.item}]` : `document ${p.document}`);
  }
  if (p.kind !== undefined || p.name !== undefined) {
    parts.push(`${p.kind ?? '(unknown kind)'} ${p.name ?? '(no name)'}`);
  }
  if (p.path !== '') parts.push(p.path);
  parts.push(p.reason);
  return parts.join(': ');
}

export class ValidationError extends TortieError {
  declare readonly code: 'ERR_MODEL_INVALID';
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[]) {
    const lines = problems.map(formatProblem);
    const head =
      problems.length === 1 ? 'invalid resource: ' : `invalid input (${problems.length} problems):\n  `;
    super('ERR_MODEL_INVALID', head + lines.join('\n  '));
    this.problems = problems;
  }
}

/**
 * Collects problems for one resource. Paths are passed explicitly by the walkers so that
 * every message names the exact field.
 */
export class Issues {
  readonly list: { path: string; reason: string }[] = [];

  add(path: string, reason: string): void {
    this.list.push({ path, reason });
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  toProblems(kind: string | undefined, name: string | undefined, document?: number): Problem[] {
    return this.list.map((i) => ({ document, kind, name, path: i.path, reason: i.reason }));
  }
}
