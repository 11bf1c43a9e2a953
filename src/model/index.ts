/**
 * src/model — Calico projectcalico.org/v3 resources: types, validation with defaults,
 * v1 / Kubernetes NetworkPolicy conversions, and document parsing for tortiectl.
 *
 * Contract: every exported function is pure (no I/O) and either returns a validated v3
 * resource or throws a `ValidationError` (code ERR_MODEL_INVALID) listing every problem;
 * no input, however malformed, makes it throw anything else.
 */
export * from './types';
export { ValidationError, formatProblem, type Problem } from './errors';
export {
  validateResource,
  checkResource,
  nameProblem,
  workloadEndpointName,
  parseAsNumber,
  BUILTIN_TIERS,
  DEFAULT_TIER,
  LABEL_TIER,
  LABEL_NAMESPACE,
  LABEL_ORCHESTRATOR,
  LABEL_SERVICE_ACCOUNT,
  MAX_RULES,
  type CheckResult,
} from './validate';
export { parsePort, parseProtocol, protocolNumber, protocolSupportsPorts, parseCidr, formatCidr } from './values';
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
} from './documents';
export { checkUpdate, checkPoolOverlaps } from './changes';
