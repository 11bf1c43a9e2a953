import { TortieError } from '../../util/errors';

/** Codes: ERR_ROUTES_BAD_OPTION, _NO_UPLINK, _UNREACHABLE, _KERNEL, _NAT_PORT_RANGE. */
export class RouteError extends TortieError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}
