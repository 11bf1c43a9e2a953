/** Errors of the calc layer; each has a stable `code`. */
import { TortieError } from '../util/errors';

export class CalcError extends TortieError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

export class UnknownEndpointError extends CalcError {
  constructor(key: string) {
    super('ERR_CALC_UNKNOWN_ENDPOINT', `endpoint "${key}": no such WorkloadEndpoint`);
  }
}

export class BadPacketError extends CalcError {
  constructor(field: string, value: unknown, reason: string) {
    super('ERR_CALC_BAD_PACKET', `packet.${field}: ${JSON.stringify(value)} ${reason}`);
  }
}
