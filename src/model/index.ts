/**
 * src/model — Calico projectcalico.org/v3 resources: types, validation with Calico's
 * defaults, conversions (Calico v1 ipPool/node, Kubernetes NetworkPolicy and Namespace),
 * documents in and out for tortiectl, and cross-resource checks.
 *
 * Contract: pure (no I/O, no logging). Every entry point either returns validated v3
 * resources or reports a `ValidationError` (code ERR_MODEL_INVALID) listing every problem
 * as `[document N: ]<Kind> <name>: <field path>: <reason>`; no input, however malformed,
 * makes it throw anything else, and an invalid resource is rejected whole.
 *
 *   validateResource(json) → Resource           v3 only; throws ValidationError
 *   checkResource(json)    → {resource}|{problems}   the same, non-throwing
 *   toV3(json) / convertToV3(json)               v3, Calico v1 (ipPool, node), k8s
 *                                                NetworkPolicy / Namespace → validated v3
 *   parseResources(text)   → Resource[]          JSON or multi-doc YAML, Lists; all or nothing
 *   resolveKind(text)      → ResourceKind?       calicoctl's kind names and aliases
 *   toYaml / toJson(r | r[])                     calicoctl's output shapes (r[] → <Kind>List)
 *   checkUpdate(old, new), checkPoolOverlaps(pool, pools), checkPolicyTier(policy, tiers)
 *                                                what clientv3 refuses across resources
 *   unenforcedProblems(r)                        fields valid in Calico that tortie does not
 *                                                enforce (refused where resources are written)
 *   namespaceProfile(ns), builtinTier(name),
 *   builtinProfile(name)                         resources Calico has without them being written
 *
 *   types.ts      the resource types (stable; additive changes only)
 *   validate.ts   per-kind validation and defaults      rules.ts  Rule / EntityRule
 *   convert.ts    v1 and Kubernetes conversions         documents.ts  parsing and printing
 *   values.ts     IPs, CIDRs, names, labels, ports      selectors.ts  via src/selector
 *   enforced.ts   what tortie refuses as not enforced   derived.ts  kns.<ns> profiles, default tier,
 *                                                         projectcalico-default-allow
 */
export * from './types';
export {
  DEFAULT_AS_NUMBER,
  DEFAULT_BGP_PORT,
  DEFAULT_MAX_RESTART_SECONDS,
  parseDuration,
  parsePeerIP,
} from './bgp';
export { ValidationError, formatProblem, type Problem } from './errors';
export {
  validateResource,
  checkResource,
  nameProblem,
  workloadEndpointName,
  parseAsNumber,
  BUILTIN_TIERS,
  UNSUPPORTED_KINDS,
  FELIX_ENDPOINT_TO_HOST_ACTIONS,
  CLUSTER_INFORMATION_NAME,
  MAX_RULES,
  type CheckResult,
} from './validate';
export { parsePort, parseProtocol, protocolNumber, protocolSupportsPorts } from './values';
export {
  toV3,
  convertToV3,
  cidrToName,
  convertNodeName,
  simplifyPorts,
  K8S_NETWORKING_API,
  K8S_POLICY_PREFIX,
  K8S_POLICY_ORDER,
  type ConvertResult,
} from './convert';
export {
  parseResources,
  resolveKind,
  toYaml,
  toJson,
  KIND_ALIASES,
  MAX_INPUT_BYTES,
  type OutputOptions,
  type ParseOptions,
} from './documents';
export { unenforcedProblems, unenforcedWarnings, FELIX_HONOURED, FELIX_WARNED } from './enforced';
export { FELIX_FIELDS, FELIX_HONOURED_FIELDS, felixEnv, felixField, type FelixField, type FelixHonouredField, type FelixSettable } from './felix-fields';
export {
  namespaceProfile,
  namespaceOfProfile,
  builtinTier,
  builtinProfile,
  ALWAYS_PRESENT_TIERS,
  BUILTIN_PROFILES,
  DEFAULT_ALLOW_PROFILE,
  NAMESPACE_PROFILE_PREFIX,
} from './derived';
export { checkUpdate, checkPoolOverlaps, checkPolicyTier } from './changes';
export { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND, parseFailsafeText, type FailsafePort } from './failsafe';
