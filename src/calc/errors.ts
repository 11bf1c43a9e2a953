/** Errors of the calc layer; each has a stable `code`. */
export class CalcError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'CalcError';
    this.code = code;
  }
}

export class UnknownEndpointError extends CalcError {
  constructor(key: string) {
    super('ERR_CALC_UNKNOWN_ENDPOINT', `endpoint "${key}": no such WorkloadEndpoint`);
    this.name = 'UnknownEndpointError';
  }
}

export class BadPacketError extends CalcError {
  constructor(field: string, value: unknown, reason: string) {
    super('ERR_CALC_BAD_PACKET', `packet.${field}: ${JSON.stringify(value)} ${reason}`);
    this.name = 'BadPacketError';
  }
}
