/**
 * Felix's failsafe ports: traffic to/from the host on these ports passes host endpoint policy
 * whatever it says (so a policy cannot lock the operator out of ssh, etcd, BGP or the API
 * server). FelixConfiguration `failsafeInboundHostPorts` / `failsafeOutboundHostPorts` (lists of
 * {protocol, port, net?}) and FELIX_FAILSAFEINBOUNDHOSTPORTS / FELIX_FAILSAFEOUTBOUNDHOSTPORTS
 * (Felix's text form: `[protocol:][net:]port,...`, protocol defaulting to tcp; `none` or `[]` for
 * no port). Defaults are Calico's.
 *
 * Contract: parseFailsafeText / failsafeListProblems accept exactly what Felix accepts (TCP, UDP,
 * SCTP; ports 0–65535; an IPv4 or IPv6 CIDR or address as net) and return the canonical form
 * (protocol upper case, net masked CIDR) or a message naming the bad entry. Pure.
 */
import { formatCidr, maskCidr, tryParseCidrOrIp } from '../primitives';

export interface FailsafePort {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  /** Remote addresses the exception is for (source inbound, destination outbound); absent = any. */
  net?: string;
}

const fp = (protocol: FailsafePort['protocol'], port: number): FailsafePort => ({ protocol, port });

/** Calico's FailsafeInboundHostPorts default: ssh, DHCP, BGP, etcd, Typha, the API server. */
export const DEFAULT_FAILSAFE_INBOUND: readonly FailsafePort[] = [
  fp('TCP', 22), fp('UDP', 68), fp('TCP', 179), fp('TCP', 2379), fp('TCP', 2380), fp('TCP', 5473), fp('TCP', 6443), fp('TCP', 6666), fp('TCP', 6667),
];
/** Calico's FailsafeOutboundHostPorts default: DNS, DHCP, BGP, etcd, Typha, the API server. */
export const DEFAULT_FAILSAFE_OUTBOUND: readonly FailsafePort[] = [
  fp('UDP', 53), fp('UDP', 67), fp('TCP', 179), fp('TCP', 2379), fp('TCP', 2380), fp('TCP', 5473), fp('TCP', 6443), fp('TCP', 6666), fp('TCP', 6667),
];

function protocolOf(s: string): FailsafePort['protocol'] | undefined {
  const u = s.trim().toUpperCase();
  return u === 'TCP' || u === 'UDP' || u === 'SCTP' ? u : undefined;
}

function netOf(s: string): string | undefined {
  const c = tryParseCidrOrIp(s.trim());
  return c === undefined ? undefined : formatCidr(maskCidr(c));
}

/** Felix's text form; returns the list or an error naming the entry. */
export function parseFailsafeText(raw: string): FailsafePort[] | { error: string } {
  const t = raw.trim();
  if (t.toLowerCase() === 'none' || t === '[]' || t === '') return [];
  const out: FailsafePort[] = [];
  for (const entryRaw of t.split(',')) {
    const entry = entryRaw.trim();
    if (entry === '') continue;
    let rest = entry;
    let net: string | undefined;
    // IPv6 nets are bracketed: tcp:[fd00::/8]:22
    const v6 = /^(?:([A-Za-z]+):)?\[([^\]]+)\]:(\d+)$/.exec(entry);
    let protoText = 'tcp';
    let portText: string;
    if (v6) {
      protoText = v6[1] ?? 'tcp';
      net = v6[2];
      portText = v6[3]!;
    } else {
      const parts = rest.split(':');
      if (parts.length > 3) return { error: `${JSON.stringify(entry)}: expected [protocol:][net:]port` };
      if (parts.length === 3) [protoText, net, portText] = parts as [string, string, string];
      else if (parts.length === 2) [protoText, portText] = parts as [string, string];
      else portText = parts[0]!;
      rest = '';
    }
    const protocol = protocolOf(protoText);
    if (protocol === undefined) return { error: `${JSON.stringify(entry)}: protocol ${JSON.stringify(protoText)} is not tcp, udp or sctp` };
    if (!/^\d{1,5}$/.test(portText.trim()) || Number(portText) > 65535) return { error: `${JSON.stringify(entry)}: port ${JSON.stringify(portText)} is not 0–65535` };
    const p: FailsafePort = { protocol, port: Number(portText) };
    if (net !== undefined) {
      const n = netOf(net);
      if (n === undefined) return { error: `${JSON.stringify(entry)}: ${JSON.stringify(net)} is not a CIDR or address` };
      p.net = n;
    }
    out.push(p);
  }
  return out;
}

/** A FelixConfiguration list: problems (path, reason) and the canonical list. */
export function failsafeListProblems(v: unknown, path: string): { list?: FailsafePort[]; problems: { path: string; reason: string }[] } {
  const problems: { path: string; reason: string }[] = [];
  if (!Array.isArray(v)) return { problems: [{ path, reason: 'must be a list of {protocol, port, net}' }] };
  const list: FailsafePort[] = [];
  v.forEach((e, i) => {
    const p = `${path}[${i}]`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) {
      problems.push({ path: p, reason: 'must be an object {protocol, port, net}' });
      return;
    }
    const o = e as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['protocol', 'port', 'net'].includes(k)) problems.push({ path: `${p}.${k}`, reason: 'is not a field of a failsafe port (protocol, port, net)' });
    const protocol = o.protocol === undefined ? 'TCP' : typeof o.protocol === 'string' ? protocolOf(o.protocol) : undefined;
    if (protocol === undefined) problems.push({ path: `${p}.protocol`, reason: `must be TCP, UDP or SCTP, got ${JSON.stringify(o.protocol)}` });
    const port = o.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) problems.push({ path: `${p}.port`, reason: `must be an integer 0–65535, got ${JSON.stringify(port)}` });
    let net: string | undefined;
    if (o.net !== undefined && o.net !== '') {
      net = typeof o.net === 'string' ? netOf(o.net) : undefined;
      if (net === undefined) problems.push({ path: `${p}.net`, reason: `${JSON.stringify(o.net)} is not a CIDR or address` });
    }
    if (protocol !== undefined && typeof port === 'number') list.push(net === undefined ? { protocol, port } : { protocol, port, net });
  });
  return problems.length > 0 ? { problems } : { list, problems };
}
