/**
 * CNI errors: what the plugins print on stdout (the spec's error object) and exit non-zero with.
 *
 * Well-known codes are the spec's (1.0.0 §"Error"): 1 incompatible version, 2 unsupported field,
 * 3 unknown container, 4 invalid environment variables, 5 I/O failure, 6 decoding failure,
 * 7 invalid network config, 11 try again later. 100+ are tortie's own (listed below), stable
 * across releases so a runtime's logs can be searched for them.
 */
import { TortieError } from '../util/errors';
export const CNI_ERR = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** Unexpected internal failure. */
  INTERNAL: 100,
  /** IPAM could not assign (no usable pool, pool exhausted) or the delegated IPAM plugin failed. */
  IPAM_FAILURE: 101,
  /** Creating or configuring the interfaces, addresses, routes or sysctls failed. */
  INTERFACE_FAILURE: 102,
  /** CHECK found the container's networking not as ADD left it. */
  CHECK_FAILED: 103,
  /** The datastore rejected a write (e.g. the WorkloadEndpoint failed validation). */
  DATASTORE_FAILURE: 104,
} as const;

/** `recoverable` when the runtime is told to try again later (CNI error 11). */
export class CniError extends TortieError {
  declare readonly code: 'ERR_CNI';
  constructor(readonly cniCode: number, message: string, readonly details = '') {
    super('ERR_CNI', message, { recoverable: cniCode === CNI_ERR.TRY_AGAIN_LATER });
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    const out: { cniVersion: string; code: number; msg: string; details?: string } = { cniVersion, code: this.cniCode, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}
