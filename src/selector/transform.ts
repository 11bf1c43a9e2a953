/**
 * Calico's selector rewrites, on the AST.
 *
 * `global()` evaluates to true on any label set (as in Calico). It only means
 * something inside an EntityRule `namespaceSelector`, where Calico rewrites the
 * namespace selector into an endpoint selector before matching
 * (libcalico-go updateprocessors `getEndpointSelector`):
 *   - every label key k becomes `pcns.k` (namespace labels are copied onto each
 *     namespaced endpoint with that prefix, plus `pcns.projectcalico.org/name`);
 *   - `all()` becomes `has(projectcalico.org/namespace)`: any namespaced endpoint;
 *   - `global()` becomes `!has(projectcalico.org/namespace)`: only non-namespaced
 *     endpoints (host endpoints, global network sets).
 * Calico does the last two as text replacement on the canonical string and then
 * re-parses; we rewrite the AST and re-parse its canonical form, which gives the
 * same selector (double negations collapse the same way) without Calico's
 * corner case of rewriting `"all()"` inside quoted values.
 */
import type { SelectorNode } from './ast';
import { parseSelector, selectorFromAst, type Selector } from './selector';
import { LABEL_NAMESPACE, NAMESPACE_LABEL_PREFIX } from '../primitives';


/** Rebuilds the tree bottom-up, letting `leaf` replace non-boolean nodes. */
function mapLeaves(node: SelectorNode, leaf: (n: SelectorNode) => SelectorNode): SelectorNode {
  switch (node.kind) {
    case 'not':
      return { kind: 'not', operand: mapLeaves(node.operand, leaf) };
    case 'and':
    case 'or':
      return { kind: node.kind, operands: node.operands.map((op) => mapLeaves(op, leaf)) };
    default:
      return leaf(node);
  }
}

/** Re-reads a built tree through the parser so it is exactly what Calico would hold. */
function settle(root: SelectorNode): Selector {
  const built = selectorFromAst(root);
  try {
    return parseSelector(built.canonical);
  } catch {
    // e.g. a prefixed key now longer than 512 characters: keep the tree as built.
    return built;
  }
}

/** Calico's PrefixVisitor: prepends `prefix` to every label key. */
export function prefixLabels(sel: Selector, prefix: string): Selector {
  return settle(
    mapLeaves(sel.root, (n) => {
      switch (n.kind) {
        case 'all':
        case 'global':
          return n;
        case 'in':
        case 'notIn':
          return { ...n, label: prefix + n.label, values: [...n.values] };
        default:
          return { ...n, label: prefix + (n as { label: string }).label } as SelectorNode;
      }
    }),
  );
}

/**
 * The endpoint selector equivalent to a rule's `namespaceSelector` (see top of
 * file): evaluate it against an endpoint's labels (with its namespace's labels
 * copied in under `pcns.` and `projectcalico.org/namespace` set for namespaced
 * endpoints).
 *
 * Only for a namespaceSelector that is set: an empty or absent field is not
 * `all()` here — it means "the policy's own namespace" for a NetworkPolicy and
 * "no namespace restriction" for a GlobalNetworkPolicy, which the caller decides.
 */
export function namespaceSelectorToEndpointSelector(nsSelector: Selector): Selector {
  const prefixed = prefixLabels(nsSelector, NAMESPACE_LABEL_PREFIX);
  return settle(
    mapLeaves(prefixed.root, (n) => {
      if (n.kind === 'all') return { kind: 'has', label: LABEL_NAMESPACE };
      if (n.kind === 'global') return { kind: 'not', operand: { kind: 'has', label: LABEL_NAMESPACE } };
      return n;
    }),
  );
}
