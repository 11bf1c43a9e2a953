/**
 * Node address autodetection, Calico's `--ip` / `--ip-autodetection-method` (IPv4) and `IP6` /
 * `IP6_AUTODETECTION_METHOD` (IPv6): the same methods and rules in each family (`family`
 * argument, default 4), each looking only at addresses of its own family.
 *
 * Contract
 * - `detectNodeAddress(ip, method)` returns the node address WITH the prefix of the subnet it
 *   sits in on its interface (`10.0.2.10/24`), which decides "same subnet" for CrossSubnet:
 *     ip = "10.0.2.10/24"   taken as given (validated);
 *     ip = "10.0.2.10"      the prefix is read from the interface holding that address
 *                           (/32 when no interface has it, as Calico does);
 *     ip = "autodetect"     by `method`:
 *       first-found            first global-unicast address on the first interface not matching
 *                              Calico's default exclusions (docker.*, cbr.*, dummy.*, virbr.*,
 *                              lxcbr.*, veth.*, lo, cali.*, tunl.*, flannel.*, kube-ipvs.*,
 *                              cni.*, vxlan.calico.*, vxlan-v6.calico.*, wireguard.cali.*,
 *                              wg-v6.cali.*, nodelocaldns.*);
 *       interface=RE[,RE…]     first address on the first interface matching any RE;
 *       skip-interface=RE[,…]  first address on the first interface matching none of them;
 *       cidr=CIDR[,CIDR…]      first address inside any of the CIDRs;
 *       can-reach=DEST         the source address the kernel would use towards DEST
 *                              (`ip route get`; no packet is sent), DEST an address of the
 *                              family or a host name (resolved with the system resolver).
 *   Interfaces are taken in ifindex order and addresses in the order the kernel lists them;
 *   regular expressions are matched unanchored, as Calico's Go regexps are (the defaults are
 *   anchored with ^). "Global unicast" (Go's IP.IsGlobalUnicast) excludes 0.0.0.0/8, 127/8,
 *   169.254/16, multicast and 255.255.255.255; in IPv6 ::, ::1, fe80::/10 and ff00::/8 (a ULA,
 *   fc00::/7, is global unicast, as in Go). An IPv6 address whose duplicate address detection
 *   failed (`dadfailed`) is never chosen.
 * - It acts in the calling process's network namespace (run it in a child under
 *   `ip netns exec` to look at another).
 * - Selection is pure (`selectAddress`, `parseAutodetectMethod`) over `ip -j` JSON so it is
 *   tested on captured output; only `readInterfaces` / `routeSource` do I/O.
 * - Failures are `AutodetectError` (ERR_AUTODETECT_METHOD for a bad method text,
 *   ERR_AUTODETECT_ADDRESS for a bad explicit address, ERR_AUTODETECT_NOT_FOUND when nothing
 *   qualifies, ERR_AUTODETECT_SYSTEM when `ip` fails), each naming the method and why.
 */
import { lookup } from 'node:dns/promises';
import { TortieError } from '../util/errors';
import { cidrContains, formatIP, tryIpv4ToU32, tryParseCidr, tryParseCidrOrIp, tryParseIP, type Cidr, type IpFamily } from '../primitives';
import { ipJson as ipJsonRun, type CommandError } from '../util/exec';

export type AutodetectErrorCode = 'ERR_AUTODETECT_METHOD' | 'ERR_AUTODETECT_ADDRESS' | 'ERR_AUTODETECT_NOT_FOUND' | 'ERR_AUTODETECT_SYSTEM';

export class AutodetectError extends TortieError {
  declare readonly code: AutodetectErrorCode;
  constructor(code: AutodetectErrorCode, message: string) {
    super(code, message);
  }
}

export const DEFAULT_INTERFACES_TO_EXCLUDE: readonly string[] = [
  '^docker.*', '^cbr.*', '^dummy.*', '^virbr.*', '^lxcbr.*', '^veth.*', '^lo',
  '^cali.*', '^tunl.*', '^flannel.*', '^kube-ipvs.*', '^cni.*',
  '^vxlan\\.calico.*', '^vxlan-v6\\.calico.*', '^wireguard\\.cali.*', '^wg-v6\\.cali.*',
  '^nodelocaldns.*',
];

export type AutodetectMethod =
  | { kind: 'first-found' }
  | { kind: 'interface'; patterns: string[] }
  | { kind: 'skip-interface'; patterns: string[] }
  | { kind: 'cidr'; cidrs: string[] }
  | { kind: 'can-reach'; dest: string };

/** One entry of `ip -j addr show` (the fields we use). */
export interface IpAddrEntry {
  ifindex: number;
  ifname: string;
  flags?: string[];
  operstate?: string;
  addr_info: { family: string; local: string; prefixlen: number; scope?: string; label?: string; dadfailed?: boolean }[];
}

export interface DetectedAddress {
  /** With its subnet prefix, e.g. "10.0.2.10/24". */
  address: string;
  ip: string;
  prefixLength: number;
  /** Interface holding it ('' for an explicit address found on no interface). */
  ifname: string;
  /** How it was found: "explicit" or the method text. */
  method: string;
}

function compile(patterns: string[], method: string): RegExp[] {
  return patterns.map((p) => {
    try {
      return new RegExp(p);
    } catch (err) {
      throw new AutodetectError('ERR_AUTODETECT_METHOD', `${method}: ${JSON.stringify(p)} is not a valid regular expression (${(err as Error).message})`);
    }
  });
}

function splitList(s: string): string[] {
  return s.split(/\s*,\s*/).map((x) => x.trim()).filter((x) => x !== '');
}

const FAMILY_NAME = { 4: 'IPv4', 6: 'IPv6' } as const;

export function parseAutodetectMethod(text: string, family: IpFamily = 4): AutodetectMethod {
  const m = text.trim();
  if (m === '' || m === 'first-found') return { kind: 'first-found' };
  const eq = m.indexOf('=');
  const name = eq < 0 ? m : m.slice(0, eq);
  const arg = eq < 0 ? '' : m.slice(eq + 1).trim();
  const need = (): void => {
    if (arg === '') throw new AutodetectError('ERR_AUTODETECT_METHOD', `IP autodetection method ${JSON.stringify(m)}: ${name} needs a value (${name}=…)`);
  };
  switch (name) {
    case 'interface':
    case 'skip-interface': {
      need();
      const patterns = splitList(arg);
      compile(patterns, m);
      return { kind: name, patterns };
    }
    case 'cidr': {
      need();
      const cidrs = splitList(arg);
      for (const c of cidrs) {
        const p = tryParseCidr(c);
        if (p === undefined || p.ip.version !== family) throw new AutodetectError('ERR_AUTODETECT_METHOD', `IP autodetection method ${JSON.stringify(m)}: ${JSON.stringify(c)} is not an ${FAMILY_NAME[family]} CIDR`);
      }
      return { kind: 'cidr', cidrs };
    }
    case 'can-reach':
      need();
      const asIp = tryParseIP(arg);
      // A host name has no ':' or '/'; an address must be of the method's family.
      if (/[\s/]/.test(arg) || (asIp !== undefined && asIp.version !== family) || (asIp === undefined && arg.includes(':'))) {
        throw new AutodetectError('ERR_AUTODETECT_METHOD', `IP autodetection method ${JSON.stringify(m)}: ${JSON.stringify(arg)} is not an ${FAMILY_NAME[family]} address or host name`);
      }
      return { kind: 'can-reach', dest: arg };
    case 'kubernetes-internal-ip':
      throw new AutodetectError('ERR_AUTODETECT_METHOD', 'IP autodetection method kubernetes-internal-ip needs the Kubernetes API, which tortie does not use; use can-reach=, interface= or cidr=');
    default:
      throw new AutodetectError('ERR_AUTODETECT_METHOD',
        `unknown IP autodetection method ${JSON.stringify(m)} (expected first-found, can-reach=DEST, interface=REGEX, skip-interface=REGEX or cidr=CIDR[,CIDR])`);
  }
}

function inCidr(ip: string, c: Cidr): boolean {
  const a = tryParseIP(ip);
  return a !== undefined && a.version === c.ip.version && cidrContains(c, { ip: a, prefix: a.version === 4 ? 32 : 128 });
}

/** Go's IP.IsGlobalUnicast for IPv6 (and ULAs count, as there). */
export function isGlobalUnicastV6(ip: string): boolean {
  const a = tryParseIP(ip);
  if (a === undefined || a.version !== 6) return false;
  const b = a.bytes;
  if (b.every((x) => x === 0)) return false;                         // ::
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return false; // ::1
  if (b[0] === 0xff) return false;                                   // multicast
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return false;         // fe80::/10 link-local
  return true;
}

function isGlobalUnicast(ip: string, family: IpFamily): boolean {
  return family === 4 ? isGlobalUnicastV4(ip) : isGlobalUnicastV6(ip);
}

/** Go's IP.IsGlobalUnicast for IPv4. */
export function isGlobalUnicastV4(ip: string): boolean {
  const n = tryIpv4ToU32(ip);
  if (n === undefined) return false;
  const first = n >>> 24;
  if (first === 0 || first === 127 || first >= 224) return false; // unspecified/"this network", loopback, multicast+reserved+broadcast
  if ((n >>> 16) === ((169 << 8) | 254)) return false;            // link-local
  return true;
}

interface Candidate { ifname: string; ifindex: number; ip: string; prefixLength: number }

function candidates(entries: readonly IpAddrEntry[], family: IpFamily = 4): Candidate[] {
  const out: Candidate[] = [];
  const fam = family === 4 ? 'inet' : 'inet6';
  for (const e of [...entries].sort((a, b) => a.ifindex - b.ifindex)) {
    for (const a of e.addr_info ?? []) {
      if (a.family !== fam || a.dadfailed === true) continue;
      const ip = tryParseIP(a.local);
      // IPv6 in Go's text form (`ip` prints it so already; normalised for equality).
      out.push({ ifname: e.ifname, ifindex: e.ifindex, ip: ip === undefined ? a.local : formatIP(ip), prefixLength: a.prefixlen });
    }
  }
  return out;
}

function detected(c: Candidate, method: string): DetectedAddress {
  return { address: `${c.ip}/${c.prefixLength}`, ip: c.ip, prefixLength: c.prefixLength, ifname: c.ifname, method };
}

/**
 * Pure selection over `ip -j addr` output for every method but can-reach (which needs the
 * kernel's route lookup: pass its source address as `reachSource`).
 */
export function selectAddress(method: AutodetectMethod, entries: readonly IpAddrEntry[], reachSource?: string, family: IpFamily = 4): DetectedAddress | undefined {
  const all = candidates(entries, family);
  const label = methodText(method);
  switch (method.kind) {
    case 'first-found':
    case 'interface':
    case 'skip-interface': {
      const include = method.kind === 'interface' ? compile(method.patterns, label) : undefined;
      const exclude = compile(method.kind === 'skip-interface' ? method.patterns : method.kind === 'first-found' ? [...DEFAULT_INTERFACES_TO_EXCLUDE] : [], label);
      const c = all.find((x) => isGlobalUnicast(x.ip, family)
        && (include === undefined || include.some((r) => r.test(x.ifname)))
        && !exclude.some((r) => r.test(x.ifname)));
      return c && detected(c, label);
    }
    case 'cidr': {
      const cidrs = method.cidrs.map((s) => tryParseCidr(s)!);
      const c = all.find((x) => cidrs.some((cc) => inCidr(x.ip, cc)));
      return c && detected(c, label);
    }
    case 'can-reach': {
      if (reachSource === undefined) return undefined;
      const src = tryParseIP(reachSource);
      const want = src === undefined ? reachSource : formatIP(src);
      const c = all.find((x) => x.ip === want);
      return c && detected(c, label);
    }
  }
}

export function methodText(m: AutodetectMethod): string {
  switch (m.kind) {
    case 'first-found': return 'first-found';
    case 'interface':
    case 'skip-interface': return `${m.kind}=${m.patterns.join(',')}`;
    case 'cidr': return `cidr=${m.cidrs.join(',')}`;
    case 'can-reach': return `can-reach=${m.dest}`;
  }
}

// ---------------------------------------------------------------- I/O (this namespace)

async function ipJson(args: string[]): Promise<unknown> {
  try {
    return await ipJsonRun<unknown>(args, { timeoutMs: 10_000 });
  } catch (e) {
    if (e instanceof SyntaxError) throw new AutodetectError('ERR_AUTODETECT_SYSTEM', `ip -j ${args.join(' ')} printed invalid JSON`);
    const stderr = (e as CommandError).result?.stderr.trim();
    throw new AutodetectError('ERR_AUTODETECT_SYSTEM', `ip -j ${args.join(' ')} failed: ${stderr || (e as Error).message}`);
  }
}

export async function readInterfaces(family: IpFamily = 4): Promise<IpAddrEntry[]> {
  return (await ipJson([`-${family}`, 'addr', 'show'])) as IpAddrEntry[];
}

/** The source address the kernel would pick towards `dest` (no packet is sent). */
export async function routeSource(dest: string, family: IpFamily = 4): Promise<string> {
  let ip = dest;
  if (tryParseIP(dest)?.version !== family) {
    try {
      ip = (await lookup(dest, { family })).address;
    } catch (err) {
      throw new AutodetectError('ERR_AUTODETECT_NOT_FOUND', `can-reach=${dest}: cannot resolve ${dest} (${(err as Error).message})`);
    }
  }
  let routes: { prefsrc?: string }[];
  try {
    routes = (await ipJson([`-${family}`, 'route', 'get', ip])) as { prefsrc?: string }[];
  } catch (err) {
    throw new AutodetectError('ERR_AUTODETECT_NOT_FOUND', `can-reach=${dest}: no route to ${ip} (${(err as Error).message})`);
  }
  const src = routes[0]?.prefsrc;
  if (!src) throw new AutodetectError('ERR_AUTODETECT_NOT_FOUND', `can-reach=${dest}: the route to ${ip} has no source address`);
  return src;
}

export interface DetectOptions {
  /** Replace the system reads (tests). */
  readInterfaces?: (family: IpFamily) => Promise<IpAddrEntry[]>;
  routeSource?: (dest: string, family: IpFamily) => Promise<string>;
  /** Address family (default 4): IP/IP_AUTODETECTION_METHOD or IP6/IP6_AUTODETECTION_METHOD. */
  family?: IpFamily;
}

/** See the module contract. */
export async function detectNodeAddress(ip: string, method = 'first-found', opts: DetectOptions = {}): Promise<DetectedAddress> {
  const family = opts.family ?? 4;
  const read = opts.readInterfaces ?? readInterfaces;
  const name = FAMILY_NAME[family];
  const text = ip.trim();
  if (text !== '' && text.toLowerCase() !== 'autodetect') {
    const c = tryParseCidrOrIp(text);
    if (c === undefined || c.ip.version !== family) {
      const eg = family === 4 ? '10.0.2.10/24' : 'fd00:2::10/64';
      throw new AutodetectError('ERR_AUTODETECT_ADDRESS', `node address ${JSON.stringify(ip)} is not "autodetect" or an ${name} address with optional /prefix (e.g. ${eg})`);
    }
    const addr = formatIP(c.ip);
    const full = family === 4 ? 32 : 128;
    if (text.includes('/')) return { address: `${addr}/${c.prefix}`, ip: addr, prefixLength: c.prefix, ifname: '', method: 'explicit' };
    const found = candidates(await read(family), family).find((x) => x.ip === addr);
    return found ? detected(found, 'explicit') : { address: `${addr}/${full}`, ip: addr, prefixLength: full, ifname: '', method: 'explicit' };
  }
  const m = parseAutodetectMethod(method, family);
  const src = m.kind === 'can-reach' ? await (opts.routeSource ?? routeSource)(m.dest, family) : undefined;
  const entries = await read(family);
  const res = selectAddress(m, entries, src, family);
  if (!res) {
    const seen = candidates(entries, family).map((c) => `${c.ifname}:${c.ip}/${c.prefixLength}`).join(', ') || 'none';
    const why = m.kind === 'can-reach' ? `source address ${src} is on no interface` : 'no interface address qualifies';
    throw new AutodetectError('ERR_AUTODETECT_NOT_FOUND', `${family === 6 ? 'IPv6 ' : ''}IP autodetection (${methodText(m)}): ${why} (${name} addresses seen: ${seen})`);
  }
  return res;
}
