/**
 * Probes for testbed traffic, all run inside the testbed's namespaces:
 * - connectivity: `tcpConnects` (nc -z), `pings` (one ICMP echo), `httpSource` (an HTTP GET
 *   answered with the source address the server saw), `eventually` (retry until convergence);
 * - crafted packets: `scapy` (Debian's scapy at /usr/bin/python3: any protocol scapy builds —
 *   TCP, UDP, ICMP, SCTP, fragments, IPIP — at layer 2 or 3);
 * - captures: `Capture` (tcpdump on an interface, waited for by content, never by a fixed sleep);
 * - sockets held open across steps: `PySockets` (one Python process per namespace).
 */
import { createInterface } from 'node:readline';
import type { Netns } from '../util/netns';

const PY = '/usr/bin/python3';

/** Succeeds if a TCP connection from `from` to ip:port is accepted within the timeout. */
export async function tcpConnects(from: Netns, ip: string, port: number, timeoutS = 1): Promise<boolean> {
  const r = await from.exec(['nc', '-z', '-w', String(timeoutS), ip, String(port)], { allowFail: true, timeoutMs: (timeoutS + 3) * 1000 });
  return r.code === 0;
}

/** One ICMP echo from `from` to `ip`, answered within `timeoutS`. */
export async function pings(from: Netns, ip: string, timeoutS = 1): Promise<boolean> {
  const r = await from.exec(['ping', '-c', '1', '-W', String(timeoutS), ip], { allowFail: true });
  return r.code === 0;
}

/** Retries `check` until it returns `want` (policy convergence), up to `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, want: boolean, timeoutMs = 5000, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await check()) === want) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Waits until a TCP socket listens on `port` in `ns` (a server just spawned there); throws after `timeoutMs`. */
export async function waitListening(ns: Netns, port: number, timeoutMs = 5000): Promise<void> {
  if (!(await eventually(async () => (await ns.exec(['ss', '-ltnH', `sport = :${port}`], { allowFail: true })).stdout.trim() !== '', true, timeoutMs))) {
    throw new Error(`nothing listens on ${port}`);
  }
}

/** Polls `cond` every 25 ms until it holds or `ms` pass. */
export async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 25) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

/** Serves HTTP on ip:port in `ns`, answering each request with the source address it saw. */
export function serveSourceEcho(ns: Netns, ip: string, port = 80): void {
  ns.spawn([process.execPath, '-e', `require('http').createServer((q,s)=>s.end(q.socket.remoteAddress)).listen(${port},'${ip}')`],
    { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '' } });
}

/** HTTP GET from `from` to a serveSourceEcho server: the source address it saw, or undefined. */
export async function httpSource(from: Netns, ip: string, port = 80): Promise<string | undefined> {
  const r = await from.exec([process.execPath, '-e',
    `fetch('http://${ip.includes(':') ? `[${ip}]` : ip}:${port}/',{signal:AbortSignal.timeout(3000)}).then(async r=>process.stdout.write(await r.text()),()=>process.exit(1))`],
  { allowFail: true, timeoutMs: 10_000, env: { ...process.env, NODE_OPTIONS: '' } });
  return r.code === 0 ? r.stdout.trim().replace(/^::ffff:/, '') : undefined;
}

/** Sends scapy packets (expressions) in order: at layer 2 to `mac` on eth0, or at layer 3 when mac is undefined. */
export async function scapy(ns: Netns, pkts: string[], mac?: string): Promise<void> {
  const send = mac === undefined ? `send([${pkts.join(', ')}])` : `sendp([${pkts.map((p) => `Ether(dst='${mac}')/${p}`).join(', ')}], iface='eth0')`;
  await ns.exec([PY, '-c', ['from scapy.all import *', 'conf.verb = 0', send].join('\n')], { timeoutMs: 30_000 });
}

/** Packets on an interface of a namespace (incoming only by default), as `tcpdump -v` prints them. */
export class Capture {
  private out = '';
  private constructor(private readonly proc: ReturnType<Netns['spawn']>) {
    proc.stdout!.on('data', (d: Buffer) => { this.out += d.toString(); });
  }
  /** `linkHeaders`: print Ethernet addresses too (tcpdump -e), the inner ones of tunnels included. */
  static async start(ns: Netns, filter = 'ip', o: { iface?: string; direction?: 'in' | 'out' | 'inout'; linkHeaders?: boolean } = {}): Promise<Capture> {
    const proc = ns.spawn(['tcpdump', '-nl', '-v', ...(o.linkHeaders ? ['-e'] : []), '-Q', o.direction ?? 'in', '-i', o.iface ?? 'eth0', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
    let ready = false;
    proc.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('listening on')) ready = true; });
    if (!(await until(() => ready))) { proc.kill('SIGKILL'); throw new Error('tcpdump did not start'); }
    return new Capture(proc);
  }
  waitFor(re: RegExp, ms = 10_000): Promise<boolean> { return until(() => re.test(this.out), ms); }
  has(re: RegExp): boolean { return re.test(this.out); }
  text(): string { return this.out; }
  /** Total lengths of the captured IPv4 packets whose header says `proto` (tcpdump -v's
   *  "proto IPIP (4), length N"; an encapsulated packet's inner header has its own protocol). */
  ipLengths(proto: 'IPIP' | 'UDP' | 'TCP'): number[] {
    return [...this.out.matchAll(new RegExp(`proto ${proto} \\(\\d+\\), length (\\d+)`, 'g'))].map((m) => Number(m[1]));
  }
  stop(): void { this.proc.kill('SIGKILL'); }
}

/** Matches a packet with this IPv4 id in `tcpdump -v` output. */
export const ipId = (n: number) => new RegExp(`\\bid ${n},`);

/**
 * One address family in scapy expressions and `tcpdump -v` output, so a test body that crafts
 * packets runs in IPv4 and in IPv6 (`for (const F of SCAPY_FAMILIES)`). A probe is marked with a
 * number (IPv4: its id; IPv6: its flow label, and the fragment id of fragments) to find it again in
 * a capture.
 */
export interface ScapyFamily {
  v: 4 | 6;
  label: 'IPv4' | 'IPv6';
  /** tcpdump's filter for the family's packets. */
  filter: 'ip' | 'ip6';
  /** Calico's rule protocol for the family's ICMP, and its destination-unreachable type. */
  icmpProtocol: 'ICMP' | 'ICMPv6';
  unreachType: number;
  /** The IP header (scapy), marked with `mark` when given. */
  ip(src: string, dst: string, mark?: number): string;
  /** Matches the packet marked `mark`. */
  marked(mark: number): RegExp;
  echoRequest(id: number, seq: number): string;
  echoReply(id: number, seq: number): string;
  /** ICMP errors (scapy), to be followed by the quoted datagram. */
  portUnreach: string; timeExceeded: string; paramProblem: string;
  /** The fragments of `ip(src, dst, mark)/l4` (`l4` a scapy expression), `size` bytes of payload each at most. */
  fragments(src: string, dst: string, mark: number, l4: string, size: number): string[];
  /** Matches the first / a later fragment of the datagram marked `mark`. */
  firstFragment(mark: number): RegExp;
  laterFragment(mark: number): RegExp;
  /** Matches a port unreachable about a UDP datagram to `port`. */
  udpPortUnreachable(port: number): RegExp;
}

export const SCAPY_V4: ScapyFamily = {
  v: 4, label: 'IPv4', filter: 'ip', icmpProtocol: 'ICMP', unreachType: 3,
  ip: (src, dst, mark) => `IP(src='${src}', dst='${dst}'${mark === undefined ? '' : `, id=${mark}`})`,
  marked: ipId,
  echoRequest: (id, seq) => `ICMP(type=8, id=${id}, seq=${seq})`,
  echoReply: (id, seq) => `ICMP(type=0, id=${id}, seq=${seq})`,
  portUnreach: 'ICMP(type=3, code=3)', timeExceeded: 'ICMP(type=11, code=0)', paramProblem: 'ICMP(type=12, code=0)',
  fragments: (src, dst, mark, l4, size) => [0, 1].map((i) => `fragment(IP(src='${src}', dst='${dst}', id=${mark})/${l4}, fragsize=${size})[${i}]`),
  firstFragment: (mark) => new RegExp(`id ${mark}, offset 0, flags \\[\\+\\]`),
  laterFragment: (mark) => new RegExp(`id ${mark}, offset [1-9]`),
  udpPortUnreachable: (port) => new RegExp(`ICMP .*udp port ${port} unreachable`),
};

const flowLabel = (mark: number) => `0x${mark.toString(16).padStart(5, '0')}`;
const fragId = (mark: number) => `0x${mark.toString(16).padStart(8, '0')}`;
export const SCAPY_V6: ScapyFamily = {
  v: 6, label: 'IPv6', filter: 'ip6', icmpProtocol: 'ICMPv6', unreachType: 1,
  ip: (src, dst, mark) => `IPv6(src='${src}', dst='${dst}'${mark === undefined ? '' : `, fl=${mark}`})`,
  marked: (mark) => new RegExp(`flowlabel ${flowLabel(mark)},`),
  echoRequest: (id, seq) => `ICMPv6EchoRequest(id=${id}, seq=${seq})`,
  echoReply: (id, seq) => `ICMPv6EchoReply(id=${id}, seq=${seq})`,
  portUnreach: 'ICMPv6DestUnreach(code=4)', timeExceeded: 'ICMPv6TimeExceeded(code=0)', paramProblem: 'ICMPv6ParamProblem(code=0)',
  // fragment6's size counts the IPv6 and fragment headers (48 bytes).
  fragments: (src, dst, mark, l4, size) => [0, 1].map((i) =>
    `fragment6(IPv6(src='${src}', dst='${dst}', fl=${mark})/IPv6ExtHdrFragment(id=${mark})/${l4}, ${size + 48})[${i}]`),
  firstFragment: (mark) => new RegExp(`frag \\(${fragId(mark)}:0\\|`),
  laterFragment: (mark) => new RegExp(`frag \\(${fragId(mark)}:[1-9]`),
  udpPortUnreachable: (port) => new RegExp(`ICMP6, destination unreachable, unreachable port, \\S+ udp port ${port}`),
};

export const SCAPY_FAMILIES: readonly ScapyFamily[] = [SCAPY_V4, SCAPY_V6];

// Echo servers every snippet can start: each answers b'echo:' + what it got, on a daemon thread;
// tcp_echo appends each accepted connection to the list `conns` when given one (to push data later).
// An IPv6 host address gives an IPv6 socket (family(host)).
const PRELUDE = `
import threading
def family(host):
    return socket.AF_INET6 if ':' in host else socket.AF_INET
def udp_echo(host, port):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    def loop():
        while True:
            d, a = s.recvfrom(2000)
            s.sendto(b'echo:' + d, a)
    threading.Thread(target=loop, daemon=True).start()
def tcp_echo(host, port, conns=None):
    l = socket.socket(family(host))
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    l.bind((host, port))
    l.listen(64)
    def conn(c):
        if conns is not None:
            conns.append(c)
        while True:
            d = c.recv(2000)
            if not d:
                break
            c.sendall(b'echo:' + d)
    def loop():
        while True:
            c, a = l.accept()
            threading.Thread(target=conn, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
`;

const AGENT = `
import sys, json, socket, time, traceback
g = {'socket': socket, 'time': time}
exec(${JSON.stringify(PRELUDE)}, g)
for line in sys.stdin:
    g['_'] = None
    try:
        exec(json.loads(line), g)
        out = {'ok': g['_']}
    except Exception as e:
        out = {'error': '%s: %s' % (type(e).__name__, e)}
    print(json.dumps(out), flush=True)
`;

/** Ordinary sockets held open inside a namespace across test steps: one Python process per namespace
 * (no privileges used) runs the snippets it is sent in a persistent scope and answers with the JSON
 * of the variable `_`. Killed with its topology. */
export class PySockets {
  private readonly lines: string[] = [];
  private waiter?: (l: string) => void;
  private readonly child;

  constructor(readonly ns: Netns) {
    this.child = ns.spawn(['/usr/bin/python3', '-u', '-c', AGENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      if (this.waiter) { const w = this.waiter; this.waiter = undefined; w(l); } else this.lines.push(l);
    });
  }

  /** Runs `code` (Python; assign the answer to `_`) and returns `_`; rejects with Python's error. */
  async run<T = unknown>(code: string, timeoutMs = 15_000): Promise<T> {
    this.child.stdin!.write(JSON.stringify(code) + '\n');
    const line = this.lines.shift() ?? await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiter = undefined; reject(new Error(`python in ${this.ns.name}: no answer in ${timeoutMs} ms to ${code}`)); }, timeoutMs);
      this.waiter = (l) => { clearTimeout(timer); resolve(l); };
    });
    const r = JSON.parse(line) as { ok?: T; error?: string };
    if (r.error !== undefined) throw new Error(`python in ${this.ns.name}: ${r.error}\n${code}`);
    return r.ok as T;
  }

  close(): void { this.child.stdin?.end(); }
}
