/** Errors of src/primitives; each names the input it refused. */
import { TortieError } from '../util/errors';

/** An address or CIDR text that is not one, under the rules of src/primitives/ip.ts. */
export class IpParseError extends TortieError {
  declare readonly code: 'ERR_IP_INVALID';
  /** What was expected: `IPv4 address`, `IP address`, `IPv4 CIDR`, `CIDR`, … */
  readonly expected: string;
  /** The refused text, as given. */
  readonly input: string;
  /** Why, for a human (`octet "010" has a leading zero …`). */
  readonly reason: string;

  constructor(expected: string, input: string, reason: string) {
    const shown = JSON.stringify(input.length > 80 ? input.slice(0, 77) + '...' : input);
    super('ERR_IP_INVALID', `${shown} is not ${/^[aeiouAEIO]/.test(expected) ? 'an' : 'a'} ${expected}: ${reason}`);
    this.expected = expected;
    this.input = input;
    this.reason = reason;
  }
}
