/**
 * `tortiectl node status`'s BGP part: bird2's `show protocols` parsed, Calico's tables printed.
 *
 * Contract: `parseBirdProtocols(text)` reads bird2's table (heading `Name Proto Table State Since
 * Info`, capitalised unlike BIRD 1; Since is one token because the rendered configuration sets
 * `timeformat protocol iso short`) and returns one row per protocol; lines it does not
 * understand are ignored, never thrown on. `renderBgpStatus(rows)` keeps only BGP protocols
 * with Calico's names (Mesh_/Node_/Global_, see render.ts) and prints Calico's `IPv4 BGP status`
 * and `IPv6 BGP status` sections, with "No IPv4 peers found." / "No IPv6 peers found." when empty.
 */
import { renderTable } from '../ipam';
import { peerTypeOf, type PeerType } from './render';

export interface BirdProtocol {
  name: string;
  proto: string;
  table: string;
  state: string;
  since: string;
  info: string;
}

export interface BgpPeerStatus {
  address: string;
  version: 4 | 6;
  type: PeerType;
  state: string;
  since: string;
  info: string;
}

export function parseBirdProtocols(text: string): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  let inTable = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\d{4}[- ]/, '').trimEnd(); // birdc's reply codes, if any
    if (/^Name\s+Proto\s+Table\s+State\s+Since\s+Info/.test(line)) {
      inTable = true;
      continue;
    }
    if (!inTable || line.trim() === '') continue;
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (m === null) continue;
    out.push({ name: m[1], proto: m[2], table: m[3], state: m[4], since: m[5], info: (m[6] ?? '').trim() });
  }
  return out;
}

/** Mesh_198_18_1_12[_port_1179] → 198.18.1.12; Node_fd00__1 → fd00::1. */
export function peerAddressOf(protocol: string): { address: string; version: 4 | 6 } | undefined {
  const m = /^(?:Mesh|Node|Global)_(.+?)(?:_port_\d+)?$/.exec(protocol);
  if (m === null) return undefined;
  const id = m[1];
  if (/^\d+_\d+_\d+_\d+$/.test(id)) return { address: id.replace(/_/g, '.'), version: 4 };
  return { address: id.replace(/_/g, ':'), version: 6 };
}

export function bgpPeers(rows: readonly BirdProtocol[]): BgpPeerStatus[] {
  const out: BgpPeerStatus[] = [];
  for (const r of rows) {
    if (r.proto !== 'BGP') continue;
    const type = peerTypeOf(r.name);
    const addr = peerAddressOf(r.name);
    if (type === undefined || addr === undefined) continue;
    out.push({ ...addr, type, state: r.state, since: r.since, info: r.info });
  }
  return out;
}

export function renderBgpStatus(rows: readonly BirdProtocol[]): string {
  const peers = bgpPeers(rows);
  let s = '';
  for (const v of [4, 6] as const) {
    s += `IPv${v} BGP status\n`;
    const mine = peers.filter((p) => p.version === v);
    if (mine.length === 0) {
      s += `No IPv${v} peers found.\n`;
    } else {
      s += renderTable(
        ['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'],
        mine.map((p) => [p.address, p.type, p.state, p.since, p.info]),
        ['left', 'left', 'left', 'left', 'left'],
        'floor',
      );
    }
    s += '\n';
  }
  return s;
}
