/** Errors of src/primitives; each has a stable `code` and names the input it refused. */

/** An address or CIDR text that is not one, under the rules of src/primitives/ip.ts. */
export class IpParseError extends Error {
  readonly code = 'ERR_IP_INVALID' as const;
  /** What was expected: `IPv4 address`, `IP address`, `IPv4 CIDR`, `CIDR`, … */
  readonly expected: string;
  /** The refused text, as given. */
  readonly input: string;
  /** Why, for a human (`octet "010" has a leading zero`). */
  readonly reason: string;

  constructor(expected: string, input: string, reason: string) {
    super(`${JSON.stringify(input.length > 80 ? input.slice(0, 77) + '...' : input)} is not ${/^[aeiouAEIO]/.test(expected) ? 'an' : 'a'} ${expected}: ${reason}`);
    this.name = 'IpParseError';
    this.expected = expected;
    this.input = input;
    this.reason = reason;
  }
}
