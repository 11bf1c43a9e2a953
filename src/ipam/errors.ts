/**
 * IPAM errors. Each has a stable `code`; `recoverable` marks failures where the same call may
 * succeed later unchanged (contention that outlasted the retry budget, datastore unavailable),
 * which the CNI plugin reports as CNI error 11 ("try again later").
 */
import { TortieError, type TortieErrorOptions } from '../util/errors';

export type IpamErrorCode =
  | 'ERR_IPAM_INVALID_ARGUMENT'
  | 'ERR_IPAM_NO_POOLS'
  | 'ERR_IPAM_EXHAUSTED'
  | 'ERR_IPAM_IN_USE'
  | 'ERR_IPAM_CONTENTION'
  | 'ERR_IPAM_CORRUPT'
  | 'ERR_IPAM_NOT_FOUND'
  | 'ERR_IPAM_RESERVED';

export class IpamError extends TortieError {
  declare readonly code: IpamErrorCode;
  constructor(code: IpamErrorCode, message: string, opts: TortieErrorOptions = {}) {
    super(code, message, opts);
  }
}
