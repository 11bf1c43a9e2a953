/**
 * The label and tier names Calico itself gives meaning to (libcalico-go's apiv3 constants), one
 * copy for the validator, the selector rewriting, the compiler and the CNI plugin.
 */

/** Set on every namespaced endpoint / network set: its namespace. */
export const LABEL_NAMESPACE = 'projectcalico.org/namespace';
/** Set on every workload endpoint with an orchestrator (`k8s`, `cni`, …). */
export const LABEL_ORCHESTRATOR = 'projectcalico.org/orchestrator';
/** Set on a workload endpoint with a service account: its name. */
export const LABEL_SERVICE_ACCOUNT = 'projectcalico.org/serviceaccount';
/** Set on every policy: its tier. */
export const LABEL_TIER = 'projectcalico.org/tier';
/** The name label of a namespace / service account, copied under the prefixes below. */
export const LABEL_NAME = 'projectcalico.org/name';
/** Prefix of a namespace's labels copied onto its endpoints (`pcns.<key>`). */
export const NAMESPACE_LABEL_PREFIX = 'pcns.';
/** Prefix of a service account's labels copied onto its endpoints (`pcsa.<key>`). */
export const SERVICE_ACCOUNT_LABEL_PREFIX = 'pcsa.';
/** The tier that always exists. */
export const DEFAULT_TIER = 'default';
/** Calico's order of the implicit `default` tier. */
export const DEFAULT_TIER_ORDER = 1_000_000;
/** Calico's built-in profile allowing all ingress and egress (libcalico-go DefaultAllowProfileName). */
export const DEFAULT_ALLOW_PROFILE = 'projectcalico-default-allow';
