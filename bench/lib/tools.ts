/**
 * Load generators and servers used by the suite (iperf3, sockperf, wrk + nginx), run inside the
 * benchmark's namespaces, and the parsers of their output (pure; tested on captured output).
 *
 * Contract: every client run is bounded (its own duration flag plus an exec timeout of
 * duration + 15 s); servers are spawned through the namespace handle, so the topology's teardown
 * kills them. A parser throws ToolOutputError naming the tool and what it could not find.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Netns } from '../../src/util/netns';

export class ToolOutputError extends Error {
  readonly code = 'ERR_BENCH_TOOL_OUTPUT';
  constructor(readonly tool: string, message: string, readonly output?: string) {
    super(`${tool}: ${message}`);
    this.name = 'ToolOutputError';
  }
}

// ------------------------------------------------------------------ parsers

export interface IperfTcp { bitsPerSecond: number; retransmits: number; seconds: number }
export interface IperfUdp { packetsPerSecond: number; sentPackets: number; lostPackets: number; seconds: number }

interface IperfJson {
  error?: string;
  end?: {
    sum_sent?: { bits_per_second?: number; retransmits?: number; seconds?: number };
    sum_received?: { bits_per_second?: number; seconds?: number };
    sum?: { packets?: number; lost_packets?: number; seconds?: number; bits_per_second?: number };
  };
}

function iperfJson(out: string): IperfJson {
  let j: IperfJson;
  try { j = JSON.parse(out) as IperfJson; } catch { throw new ToolOutputError('iperf3', 'output is not JSON', out.slice(0, 500)); }
  if (j.error) throw new ToolOutputError('iperf3', `reported error: ${j.error}`);
  return j;
}

/** Receiver-side throughput of a TCP test (`iperf3 -J`). */
export function parseIperfTcp(out: string): IperfTcp {
  const j = iperfJson(out);
  const r = j.end?.sum_received;
  if (typeof r?.bits_per_second !== 'number') throw new ToolOutputError('iperf3', 'no end.sum_received.bits_per_second');
  return { bitsPerSecond: r.bits_per_second, retransmits: j.end?.sum_sent?.retransmits ?? 0, seconds: r.seconds ?? 0 };
}

/** Packets per second that reached the receiver in a UDP test (`iperf3 -u -J`). */
export function parseIperfUdp(out: string): IperfUdp {
  const j = iperfJson(out);
  const s = j.end?.sum;
  if (typeof s?.packets !== 'number' || typeof s.seconds !== 'number' || s.seconds <= 0) {
    throw new ToolOutputError('iperf3', 'no end.sum.packets/seconds in a UDP result');
  }
  const lost = Math.max(0, s.lost_packets ?? 0);
  return { packetsPerSecond: (s.packets - lost) / s.seconds, sentPackets: s.packets, lostPackets: lost, seconds: s.seconds };
}

export interface SockperfSummary { p50: number; p99: number; p999: number; min: number; max: number; avg: number; observations: number }

/** sockperf ping-pong summary (µs). */
export function parseSockperf(out: string): SockperfSummary {
  // eslint-disable-next-line no-control-regex
  const text = out.replace(/\x1b\[[0-9;]*m/g, '');
  const num = (re: RegExp, what: string): number => {
    const m = re.exec(text);
    if (!m) throw new ToolOutputError('sockperf', `no ${what} in the output`, text.slice(-800));
    return Number(m[1]);
  };
  return {
    p50: num(/percentile 50\.000 =\s*([\d.]+)/, 'p50'),
    p99: num(/percentile 99\.000 =\s*([\d.]+)/, 'p99'),
    p999: num(/percentile 99\.900 =\s*([\d.]+)/, 'p99.9'),
    min: num(/<MIN> observation =\s*([\d.]+)/, 'min'),
    max: num(/<MAX> observation =\s*([\d.]+)/, 'max'),
    avg: num(/avg-latency=([\d.]+)/, 'avg-latency'),
    observations: num(/Total (\d+) observations/, 'observation count'),
  };
}

/** The per-message latencies (µs) of a sockperf `--full-log` file. */
export function parseSockperfFullLog(csv: string): number[] {
  const out: number[] = [];
  let inData = false;
  for (const line of csv.split('\n')) {
    if (line.startsWith('packet, txTime')) { inData = true; continue; }
    if (!inData) continue;
    const parts = line.split(',');
    if (parts.length !== 4) continue;
    const v = Number(parts[3]);
    if (Number.isFinite(v)) out.push(v);
  }
  if (out.length === 0) throw new ToolOutputError('sockperf', 'full log has no samples', csv.slice(0, 300));
  return out;
}

export interface WrkResult {
  requestsPerSecond: number; requests: number; errors: number; non2xx: number;
  /** Latency percentiles (µs) from `--latency`, when printed. */
  latency: { p50?: number; p75?: number; p90?: number; p99?: number };
}

/** "812.00us", "1.23ms", "2.00s" → µs. */
export function wrkDuration(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) throw new ToolOutputError('wrk', `unparseable duration "${s}"`);
  const v = Number(m[1]);
  return m[2] === 'us' ? v : m[2] === 'ms' ? v * 1e3 : m[2] === 's' ? v * 1e6 : v * 60e6;
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s*([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  if (!rps || !total) throw new ToolOutputError('wrk', 'no "Requests/sec" summary', out.slice(-500));
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = se ? se.slice(1).reduce((a, x) => a + Number(x), 0) : 0;
  const n2 = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const latency: WrkResult['latency'] = {};
  const dist = /Latency Distribution([\s\S]*?)(?:\n\s*\d+ requests in)/.exec(out);
  if (dist) {
    for (const m of dist[1]!.matchAll(/^\s*(50|75|90|99)%\s+(\S+)/gm)) latency[`p${m[1]}` as keyof WrkResult['latency']] = wrkDuration(m[2]!);
  }
  return { requestsPerSecond: Number(rps[1]), requests: Number(total[1]), errors, non2xx: n2 ? Number(n2[1]) : 0, latency };
}

// ------------------------------------------------------------------ runners

const tempDirs = new Set<string>();
let exitHook = false;

/** A temp directory removed by `done()`, or on process exit if the run is interrupted first. */
export function tempDir(prefix: string): { path: string; done: () => void } {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const d of tempDirs) rmSync(d, { recursive: true, force: true }); });
  }
  const path = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(path);
  return { path, done: () => { rmSync(path, { recursive: true, force: true }); tempDirs.delete(path); } };
}

export const PORTS = { iperf: 5201, sockperf: 11111, http: 80 } as const;

/** `ip:port`, an IPv6 address in brackets (URLs, nginx's listen). */
export const hostPort = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

async function must(ns: Netns, argv: string[], timeoutMs: number): Promise<string> {
  const r = await ns.exec(argv, { timeoutMs, allowFail: true });
  if (r.code !== 0) throw new ToolOutputError(argv[0]!, `exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(-600)}`);
  return r.stdout;
}

export async function iperfTcp(client: Netns, ip: string, seconds: number, streams: number): Promise<IperfTcp> {
  const out = await must(client, ['iperf3', '-c', ip, '-p', String(PORTS.iperf), '-t', String(seconds), '-P', String(streams), '-J', '--connect-timeout', '3000'],
    (seconds + 15) * 1000);
  return parseIperfTcp(out);
}

/** UDP packet rate with small (64-byte payload) datagrams, unlimited offered rate. */
export async function iperfUdp(client: Netns, ip: string, seconds: number): Promise<IperfUdp> {
  const out = await must(client, ['iperf3', '-c', ip, '-p', String(PORTS.iperf), '-u', '-b', '0', '-l', '64', '-t', String(seconds), '-J', '--connect-timeout', '3000'],
    (seconds + 15) * 1000);
  return parseIperfUdp(out);
}

/**
 * TORTIE_BENCH_PINGPONG_CPU=<n> (opt-in, unset by default): the ping-pong's client and echo
 * server (sockperf, udp-pingpong or python3) both run on CPU n (taskset), so every round trip is
 * one CPU's and the scheduler's one-CPU-or-two choice stays out of the figure
 * (docs/benchmarks.md, IPv6 on one node, 8 Dec session 2).
 */
export function pinPingPong(argv: string[]): string[] {
  const cpu = process.env.TORTIE_BENCH_PINGPONG_CPU;
  if (cpu === undefined || cpu === '') return argv;
  if (!/^\d+$/.test(cpu)) throw new Error(`TORTIE_BENCH_PINGPONG_CPU must be a CPU number, got "${cpu}"`);
  return ['taskset', '-c', cpu, ...argv];
}

export async function sockperfPingPong(client: Netns, ip: string, seconds: number): Promise<{ summary: SockperfSummary; latencies: number[] }> {
  const tmp = tempDir('tortie-bench-sp-');
  const log = join(tmp.path, 'full.csv');
  try {
    const out = await must(client, pinPingPong(['sockperf', 'ping-pong', '-i', ip, '-p', String(PORTS.sockperf), '-t', String(seconds), '-m', '64', '--full-log', log]),
      (seconds + 15) * 1000);
    return { summary: parseSockperf(out), latencies: parseSockperfFullLog(readFileSync(log, 'utf8')) };
  } finally {
    tmp.done();
  }
}

const FLOOD = `import socket,sys,time
ip,port,secs=sys.argv[1],int(sys.argv[2]),float(sys.argv[3])
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);b=b'x'*64;a=(ip,port);n=0;end=time.monotonic()+secs
while time.monotonic()<end:
  for i in range(256):
    try: s.sendto(b,a)
    except OSError: pass
  n+=256
print(n)`;

/**
 * UDP flood of 64-byte datagrams (no server needed), bounded by `seconds`: a python3 sendto loop,
 * which starts in milliseconds (sockperf's client spends ~2 s on its own start and stop).
 * Returns the datagrams sent.
 */
export async function udpFlood(client: Netns, ip: string, port: number, seconds: number): Promise<number> {
  const out = await must(client, ['python3', '-c', FLOOD, ip, String(port), String(seconds)], (seconds + 15) * 1000);
  const n = Number(out.trim());
  if (!Number.isFinite(n)) throw new ToolOutputError('udp flood', `unexpected output "${out.trim().slice(0, 100)}"`);
  return n;
}

// sockperf 3.7 (Debian 12's) takes IPv4 addresses only, so the IPv6 ping-pong is done by
// bench/tools/udp-pingpong.c, which the bench compiles itself (pingPongTool): one 64-byte datagram
// in flight, the next sent when the echo arrives, blocking calls, half of each round trip taken as
// the latency (as sockperf reports it), the first 0.2 s left out as warm-up. Where it cannot be
// built (no C compiler) or TORTIE_BENCH_PINGPONG=python3 asks for it, a python3 client and echo
// server do the same; python3's own time per message (a few µs per side) is then inside each
// figure, so those latencies are higher than sockperf's and a ratio between two dataplanes is
// diluted towards 1 (docs/benchmarks.md, IPv6 on one node).
const PINGPONG_CLIENT = `import socket,sys,time
ip,port,secs,size=sys.argv[1],int(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4])
s=socket.socket(socket.AF_INET6 if ':' in ip else socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(1.0);s.connect((ip,port))
b=b'x'*size;pc=time.perf_counter_ns;mono=time.monotonic;out=[];lost=0;warm=mono()+0.2;end=warm+secs
while True:
  now=mono()
  if now>=end: break
  keep=now>=warm
  for i in range(64):
    t0=pc();s.send(b)
    try: s.recv(2048)
    except socket.timeout: lost+=1; continue
    if keep: out.append(pc()-t0)
print('lost',lost)
print(' '.join(str(x) for x in out))`;

const PINGPONG_SERVER = `import socket,sys
ip,port=sys.argv[1],int(sys.argv[2])
s=socket.socket(socket.AF_INET6 if ':' in ip else socket.AF_INET,socket.SOCK_DGRAM);s.bind((ip,port))
while True:
  d,a=s.recvfrom(2048);s.sendto(d,a)`;

/** The python3 ping-pong client's output: "lost N", then round trips in ns → half-round-trip latencies (µs). */
export function parsePingPong(out: string): { latencies: number[]; lost: number } {
  const [head, body] = out.split('\n');
  const m = /^lost (\d+)$/.exec(head?.trim() ?? '');
  if (!m) throw new ToolOutputError('udp ping-pong', 'no "lost N" line', out.slice(0, 300));
  const latencies = (body ?? '').trim().split(/\s+/).filter((x) => x !== '').map((x) => Number(x) / 2000);
  if (latencies.length === 0 || latencies.some((x) => !Number.isFinite(x))) throw new ToolOutputError('udp ping-pong', 'no round trips measured', out.slice(0, 300));
  return { latencies, lost: Number(m[1]) };
}

/**
 * UDP ping-pong latency without sockperf (IPv6: bench/tools/udp-pingpong.c, or python3: see
 * pingPongTool), bounded by `seconds`; the summary in sockperf's shape, from the same
 * per-message latencies.
 */
export async function udpPingPong(client: Netns, ip: string, seconds: number): Promise<{ summary: SockperfSummary; latencies: number[]; lost: number; tool: PingPongTool['name'] }> {
  const tool = pingPongTool();
  const args = [ip, String(PORTS.sockperf), String(seconds), '64'];
  const out = await must(client, pinPingPong(tool.path ? [tool.path, 'client', ...args] : ['python3', '-c', PINGPONG_CLIENT, ...args]), (seconds + 15) * 1000);
  const { latencies, lost } = parsePingPong(out);
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return {
    summary: { p50: at(0.5), p99: at(0.99), p999: at(0.999), min: sorted[0]!, max: sorted[sorted.length - 1]!,
      avg: latencies.reduce((a, x) => a + x, 0) / latencies.length, observations: latencies.length },
    latencies, lost, tool: tool.name,
  };
}

export interface PingPongTool {
  /** 'udp-pingpong': bench/tools/udp-pingpong.c, built; 'python3': the fallback. */
  name: 'udp-pingpong' | 'python3';
  path?: string;
  /** Why the fallback, when it is used. */
  why?: string;
}

let pingPong: PingPongTool | undefined;

/**
 * The UDP ping-pong client and echo server for addresses sockperf does not take (IPv6):
 * bench/tools/udp-pingpong.c compiled once per process with `cc -O2` (else gcc, else clang, which
 * scripts/setup.sh installs) into a temp directory (removed on exit), else python3 (no compiler,
 * a failed build, or TORTIE_BENCH_PINGPONG=python3).
 */
export function pingPongTool(): PingPongTool {
  if (pingPong) return pingPong;
  if (process.env.TORTIE_BENCH_PINGPONG === 'python3') return (pingPong = { name: 'python3', why: 'TORTIE_BENCH_PINGPONG=python3' });
  const src = resolve(__dirname, '../../../bench/tools/udp-pingpong.c');
  const dir = tempDir('tortie-bench-pp-');
  const path = join(dir.path, 'udp-pingpong');
  let why = '';
  for (const cc of ['cc', 'gcc', 'clang']) {
    try {
      execFileSync(cc, ['-O2', '-o', path, src], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
      return (pingPong = { name: 'udp-pingpong', path });
    } catch (e) {
      why ||= `${cc} could not build ${src}: ${String((e as Error).message).split('\n')[0]}`;
    }
  }
  dir.done();
  return (pingPong = { name: 'python3', why });
}

/** New connections per second: one request per connection (`Connection: close`). */
export async function wrkConnRate(client: Netns, ip: string, seconds: number, connections = 16): Promise<WrkResult> {
  const out = await must(client, ['wrk', '-t', '1', '-c', String(connections), '-d', `${seconds}s`, '--timeout', '2s', '--latency', '-H', 'Connection: close', `http://${hostPort(ip, PORTS.http)}/`],
    (seconds + 15) * 1000);
  return parseWrk(out);
}

/** A root-less nginx answering 200 "ok" on `listen` (ip:port, or several), all state under `dir`. */
export function nginxConfig(dir: string, listen: string | readonly string[]): string {
  const listens = (typeof listen === 'string' ? [listen] : listen).map((l) => `listen ${l} reuseport backlog=4096;`).join(' ');
  return [
    'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log;`, 'daemon off;',
    'events { worker_connections 4096; }',
    'http {', '  access_log off;', `  client_body_temp_path ${dir};`, `  proxy_temp_path ${dir};`, `  fastcgi_temp_path ${dir};`,
    `  uwsgi_temp_path ${dir};`, `  scgi_temp_path ${dir};`, '  keepalive_timeout 0;',
    `  server { ${listens} location / { return 200 "ok\\n"; } }`, '}', '',
  ].join('\n');
}

/** Servers of every workload in the server namespace, on each of `ips`; returns a cleanup for
 *  nginx's temp dir. sockperf (3.7 here) listens on IPv4 only: an IPv6 address gets the echo
 *  server of `udpPingPong` (pingPongTool) on the same port instead. iperf3 listens on both families. */
export async function startServers(server: Netns, ips: string | readonly string[]): Promise<() => void> {
  const all = typeof ips === 'string' ? [ips] : [...ips];
  const tmp = tempDir('tortie-bench-nginx-');
  const dir = tmp.path;
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, all.map((ip) => hostPort(ip, PORTS.http))));
  server.spawn(['nginx', '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  server.spawn(['iperf3', '-s', '-p', String(PORTS.iperf)], { stdio: 'ignore' });
  for (const ip of all) {
    if (!ip.includes(':')) server.spawn(pinPingPong(['sockperf', 'server', '-i', ip, '-p', String(PORTS.sockperf)]), { stdio: 'ignore' });
    else {
      const pp = pingPongTool();
      server.spawn(pinPingPong(pp.path ? [pp.path, 'server', ip, String(PORTS.sockperf)] : ['python3', '-c', PINGPONG_SERVER, ip, String(PORTS.sockperf)]), { stdio: 'ignore' });
    }
  }
  await server.sh('sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096');
  return tmp.done;
}

/** Waits until every server answers (TCP ports open on each of `ips`) in the server namespace. */
export async function waitServers(server: Netns, ips: string | readonly string[], timeoutMs = 10_000): Promise<void> {
  const all = typeof ips === 'string' ? [ips] : [...ips];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await server.sh(all.map((ip) => `nc -z -w1 ${ip} ${PORTS.http} && nc -z -w1 ${ip} ${PORTS.iperf}`).join(' && '), { allowFail: true });
    if (r.code === 0) return;
    if (Date.now() > deadline) throw new ToolOutputError('servers', `nginx/iperf3 not listening on ${all.join(', ')} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
