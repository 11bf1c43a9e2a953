import { checkResource, toV3, ValidationError, formatProblem, type Resource } from '../../../src/model';

export const V3 = 'projectcalico.org/v3';

/** Validates and returns the resource, failing loudly with the problems if invalid. */
export function valid(input: unknown): Resource {
  const r = toV3(input);
  if (r.problems !== undefined) throw new Error('unexpectedly invalid:\n' + r.problems.map(formatProblem).join('\n'));
  return r.resource;
}

/** The formatted problems of an invalid input (empty list if it was valid). */
export function problems(input: unknown): string[] {
  const r = toV3(input);
  return r.problems === undefined ? [] : r.problems.map(formatProblem);
}

/** Runs fn, which must throw a ValidationError; returns its formatted problems. */
export function thrown(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return e.problems.map(formatProblem);
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

export function res(kind: string, name: string | undefined, spec: unknown, extraMeta: Record<string, unknown> = {}): unknown {
  const metadata: Record<string, unknown> = { ...extraMeta };
  if (name !== undefined) metadata.name = name;
  const r: Record<string, unknown> = { apiVersion: V3, kind, metadata };
  if (spec !== undefined) r.spec = spec;
  return r;
}

export function gnp(spec: unknown, name = 'p1'): unknown {
  return res('GlobalNetworkPolicy', name, spec);
}

export { checkResource };
