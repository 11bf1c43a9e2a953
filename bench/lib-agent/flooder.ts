/**
 * The agent benchmark's hostile workload (docs/security.md, "Event budgets"), run inside the probe client's
 * namespace (`ip netns exec`):
 *
 *   node flooder.js <ip> <seconds> [maxPps]
 *       sends small UDP datagrams to <ip>, every one on a new 4-tuple (destination ports cycle
 *       through 1024…65535 on each of 8 source sockets in turn: 516 Ki distinct tuples before one
 *       repeats), as fast as it can or at
 *       most maxPps, for `seconds`; then prints `sent <n>` and exits. The benchmark's flood
 *       policy denies this UDP at the server, so each datagram is a new denied flow: the load
 *       that made the datapath emit one event per tuple.
 *
 * Bounded: exits (printing `sent <n>`) after `seconds`, or when stdin closes (the parent is done
 * or died). Sends only to <ip>, a
 * workload address inside the benchmark's namespaces: in the pool 192.168.0.0/16 or, IPv6, in the
 * ULA range fd00::/8.
 */
import * as dgram from 'node:dgram';
import { cidr4Contains, cidr6Contains, parseCidr4, tryIpv4ToU32, tryParseCidrOrIp6 } from '../../src/primitives';

function flood(ip: string, seconds: number, maxPps: number): void {
  const payload = Buffer.alloc(16);
  const socks = Array.from({ length: 8 }, () => dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4').on('error', () => undefined));
  let which = 0;
  let sent = 0;
  let port = 1024;
  let inFlight = 0;
  const t0 = performance.now();
  const endAt = t0 + seconds * 1000;
  const finish = (): void => {
    process.stdout.write(`sent ${sent}\n`);
    process.exit(0);
  };
  const burst = (): void => {
    const now = performance.now();
    if (now >= endAt) { finish(); return; }
    // Rate bound: never ahead of maxPps × elapsed.
    const allowed = maxPps > 0 ? Math.floor(((now - t0) / 1000) * maxPps) - sent : 256;
    const n = Math.max(0, Math.min(256, allowed, 1024 - inFlight));
    for (let i = 0; i < n; i++) {
      inFlight++;
      socks[which]!.send(payload, port, ip, () => { inFlight--; });
      sent++;
      if (++port > 65535) {
        port = 1024;
        which = (which + 1) % socks.length;
      }
    }
    if (n === 0) setTimeout(burst, 1); else setImmediate(burst);
  };
  process.stdin.on('end', finish);
  process.stdin.on('error', finish);
  process.stdin.resume();
  burst();
}

function main(argv: string[]): void {
  const num = (v: string | undefined, what: string, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`flooder: ${what} must be a number ≥ ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  const dst = tryIpv4ToU32(argv[0] ?? ''), dst6 = tryParseCidrOrIp6(argv[0] ?? '');
  const inPool = dst !== undefined ? cidr4Contains(parseCidr4('192.168.0.0/16'), dst)
    : dst6 !== undefined && dst6.len === 128 && cidr6Contains(tryParseCidrOrIp6('fd00::/8')!, dst6.addr6);
  if (!inPool) throw new Error(`flooder: ${JSON.stringify(argv[0])} is not a pool address (192.168.0.0/16 or fd00::/8)`);
  flood(argv[0]!, num(argv[1], 'seconds', 1), argv[2] === undefined ? 0 : num(argv[2], 'maxPps', 0));
}

if (require.main === module) main(process.argv.slice(2));
