/**
 * `tortiectl node run` and `tortiectl node status`: calicoctl's node verbs for a tortie-node
 * agent running as a host process instead of a calico/node container.
 *
 * node run: checks the flags as calicoctl does (--ip=autodetect|ADDR[/PREFIX], the IP
 * autodetection methods), stops an agent already running under the same node name (as
 * calicoctl removes the old container), starts `tortie-node run …` detached with output to
 * <log-dir>/<node>.log, then waits until its /readyz answers 200, the agent exits, or the
 * timeout passes. --dryrun prints the command; --init-system runs it in the foreground.
 *
 * node status: for each agent of the host (pid files in the run directory, or the one named
 * with --name) says whether its process is running and what its /readyz reports.
 *
 * Files (run directory default /run/tortie, TORTIE_RUN_DIR or --run-dir):
 *   <node>.pid              written by tortie-node: its pid (first line; JSON {"pid",…} also read)
 *   <node>.tortiectl.json   written by node run: {pid, healthPort, logFile, command}
 *
 * Contract: exit 0 when the agent started and became ready (run) / at least one agent is
 * running (status, as calicoctl: readiness is reported, not turned into the exit status);
 * 1 otherwise, with the reason on stderr.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { renderTable } from '../ipam';
import { tryParseCidr, tryParseCidrOrIp } from '../primitives';
import { DATASTORE_OPTIONS, invalidOption, parseArgs, type ParsedArgs } from './args';
import { resolveDatastoreConfig } from './datastore-config';
import { CliError, type CliIO } from './io';
import { agentCommand, agentExit, waitForReady } from '../node/launch';
import { birdDir } from '../node/bird-dir';
import { parseBirdProtocols, renderBgpStatus } from '../bgp/status';
import { run } from '../util/exec';
import { discoverRunDirs, isAgentAlive, liveAgents, readAgent, type AgentRecord } from '../node/agents';

export { DEFAULT_RUN_DIR } from '../node/agents';
import { DEFAULT_RUN_DIR } from '../node/agents';
export const DEFAULT_LOG_DIR = '/var/log/tortie';
export const DEFAULT_HEALTH_PORT = 9099;

function usage(binary: string): string {
  return `Usage:
  ${binary} node run [--ip=<IP>] [--ip6=<IP6>] [--name=<NAME>] [--ip-autodetection-method=<METHOD>]
                    [--ip6-autodetection-method=<METHOD>]
                    [--log-dir=<DIR>] [--health-port=<PORT>] [--metrics-port=<PORT>]
                    [--log-level=<LEVEL>] [--backend=(bird|none)] [--no-default-ippools]
                    [--timeout=<SECONDS>] [--dryrun] [--init-system] [options]
  ${binary} node status [--name=<NAME>] [options]
  ${binary} node diags [--output=<FILE>] [--log-dir=<DIR>] [--run-dir=<DIR>] [--bpffs-root=<DIR>]
  ${binary} node checksystem [--ip=<IP>] [--ip-autodetection-method=<METHOD>] [options]

node run starts the tortie-node agent on this host, detached, logging to <log-dir>/<name>.log,
and waits until it reports ready (in sync with the datastore, kernel programmed).
node status lists the agents running on this host (stale pid files are named, not listed).
node diags collects logs, configuration, metrics, BPF and network state into one archive.
node checksystem checks the kernel, the datastore and the node address autodetection.

Options:
     --name=<NAME>         Node name (default: the host name).
     --ip=<IP>             autodetect, or this node's IPv4 address with its subnet
                           (e.g. 10.0.2.10/24; a bare address means /32).
     --ip-autodetection-method=<METHOD>
                           first-found | can-reach=<IP or name> | interface=<regex>[,<regex>...]
                           | skip-interface=<regex>[,<regex>...] | cidr=<CIDR>[,<CIDR>...]
                           [default: first-found]
     --ip6=<IP6>           autodetect, or this node's IPv6 address with its subnet (e.g.
                           fd00:2::10/64). By default the node has no IPv6 address.
     --ip6-autodetection-method=<METHOD>
                           as --ip-autodetection-method, over IPv6 addresses [default: first-found]
     --log-dir=<DIR>       [default: ${DEFAULT_LOG_DIR}]
     --health-port=<PORT>  Port of the agent's /livez and /readyz on 127.0.0.1 [default: ${DEFAULT_HEALTH_PORT}].
     --metrics-port=<PORT> Prometheus port of the agent.
     --log-level=<LEVEL>   Agent log level (trace, debug, info, warn, error).
     --backend=<BACKEND>   bird (default: routing, IPIP and NAT; given explicitly, it also
                           runs bird2 for BGP) or none (policy only).
     --timeout=<SECONDS>   How long to wait for readiness [default: 60].
     --run-dir=<DIR>       Where pid files live [default: ${DEFAULT_RUN_DIR}].
     --bpffs-root=<DIR>    bpffs directory for the agent's pins (several agents on one kernel).
     --dryrun              Print the command instead of running it.
     --init-system         Run the agent in the foreground (for systemd and the like).
     --no-default-ippools  Accepted for calicoctl compatibility (tortie creates no pools).
  -c --config=<CONFIG>, --store-dir, --datastore-type, --etcd-endpoints, --etcd-ca,
  --etcd-cert, --etcd-key
                           Datastore the agent uses, resolved as for every command.
`;
}

const COMMON: { long: string; short?: string; value?: boolean }[] = [
  ...DATASTORE_OPTIONS,
  { long: 'name', value: true },
  { long: 'run-dir', value: true },
  { long: 'health-port', value: true },
];

export async function runNode(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const sub = argv[1];
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.stdout.write(usage(binary));
    return sub === undefined ? 1 : 0;
  }
  if (sub === 'run') return nodeRun(binary, argv, io);
  if (sub === 'status') return nodeStatus(binary, argv, io);
  if (sub === 'diags') return (await import('./node-diags')).nodeDiags(binary, argv, io);
  if (sub === 'checksystem') return (await import('./node-diags')).nodeChecksystem(binary, argv, io);
  throw invalidOption(binary, argv, `(tortiectl supports 'node run', 'node status', 'node diags' and 'node checksystem'; ${JSON.stringify(sub)} is not implemented)`);
}

// ---------------------------------------------------------------- shared

function runDirOf(args: ParsedArgs, io: CliIO): string {
  return path.resolve(io.cwd, args.get('run-dir') ?? io.env.TORTIE_RUN_DIR ?? DEFAULT_RUN_DIR);
}

function parsePort(v: string, flag: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new CliError(`Error executing command: ${flag}: "${v}" is not a port number (1-65535)`, 'ERR_CLI_FLAG');
  return n;
}

const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function nodeNameOf(args: ParsedArgs, io: CliIO): string {
  const name = (args.get('name') ?? io.env.NODENAME ?? io.hostname).trim();
  if (!NODE_NAME_RE.test(name)) {
    throw new CliError(`Error executing command: node name "${name}" is not a valid DNS subdomain (lower-case letters, digits, '-', '.'); give one with --name`, 'ERR_CLI_FLAG');
  }
  return name;
}

/** GET http://127.0.0.1:<port>/readyz. */
function probeReady(port: number, timeoutMs = 2000): Promise<{ status: number; body: string } | { error: string }> {
  return httpGet(port, '/readyz', timeoutMs);
}

/** GET http://<host>:<port><path> → status and (trimmed) body, or the connection error; never rejects. */
export function httpGet(port: number, urlPath: string, timeoutMs = 2000, host = '127.0.0.1'): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    // agent: false — one connection per probe, closed after it (no keep-alive socket left behind).
    const req = http.get({ host, port, path: urlPath, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
  });
}

function healthPortOf(args: ParsedArgs, io: CliIO, rec?: AgentRecord): number {
  const flag = args.get('health-port');
  if (flag !== undefined) return parsePort(flag, '--health-port');
  if (rec?.healthPort) return rec.healthPort;
  if (io.env.FELIX_HEALTHPORT) return parsePort(io.env.FELIX_HEALTHPORT, 'FELIX_HEALTHPORT');
  return DEFAULT_HEALTH_PORT;
}

// ---------------------------------------------------------------- status

async function nodeStatus(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 2, COMMON);
  if (args.flag('help')) {
    io.stdout.write(usage(binary));
    return 0;
  }
  if (args.positionals.length > 0) throw invalidOption(binary, argv);
  // Given a run directory (--run-dir, TORTIE_RUN_DIR): that one. Otherwise the default one and
  // those of every tortie-node running on this host (an agent started with another run dir).
  const explicit = args.get('run-dir') !== undefined || !!io.env.TORTIE_RUN_DIR;
  const runDirs = explicit ? [runDirOf(args, io)] : [...new Set([runDirOf(args, io), ...discoverRunDirs()])];
  const named = args.get('name') !== undefined ? [nodeNameOf(args, io)] : undefined;
  const live: AgentRecord[] = [];
  const stale: AgentRecord[] = [];
  for (const dir of runDirs) {
    const r = liveAgents(dir, named);
    live.push(...r.live);
    if (dir === runDirOf(args, io)) stale.push(...r.stale);
  }
  const staleNote = stale.length > 0 ? ` (stale pid file${stale.length > 1 ? 's' : ''}: ${stale.map((r) => r.pidFile).join(', ')})` : '';
  if (live.length === 0) {
    throw new CliError(`tortie process is not running.${staleNote}`, 'ERR_CLI_NOT_RUNNING');
  }
  io.stdout.write('tortie process is running.\n\n');
  const rows: string[][] = [];
  for (const r of live) {
    const port = healthPortOf(args, io, r);
    const probe = await probeReady(port);
    if ('error' in probe) {
      rows.push([r.node, String(r.pid), 'running', `health endpoint 127.0.0.1:${port} not answering (${probe.error})`]);
    } else {
      const detail = probe.body.replace(/^(not ok|ok):\s*/, '');
      rows.push([r.node, String(r.pid), probe.status === 200 ? 'ready' : 'not ready', detail]);
    }
    const dir = path.dirname(r.pidFile);
    if (dir !== runDirOf(args, io)) rows[rows.length - 1]![3] += ` (run dir ${dir})`;
  }
  io.stdout.write('Agent status\n');
  io.stdout.write(renderTable(['NODE', 'PID', 'STATE', 'INFO'], rows, ['left', 'right', 'left', 'left']));
  io.stdout.write('\n');
  for (const r of live) io.stdout.write(await bgpStatusOf(path.dirname(r.pidFile), r.node, live.length > 1));
  if (staleNote) io.stderr.write(`note: not listed, not running${staleNote}\n`);
  return 0;
}

/**
 * Calico's BGP sections for one node, from its bird's `show protocols` (src/bgp/status.ts); empty
 * when the node runs no bird (no socket in <run dir>/<node>.bird).
 */
async function bgpStatusOf(runDir: string, node: string, named: boolean): Promise<string> {
  const socket = path.join(birdDir(runDir, node), 'bird.ctl');
  if (!fs.existsSync(socket)) return '';
  const head = named ? `Node ${node}\n` : '';
  const r = await run(['birdc', '-s', socket, 'show', 'protocols'], { allowFail: true, timeoutMs: 5000 });
  if (r.code !== 0 || !/Name\s+Proto/.test(r.stdout)) {
    return `${head}BIRD is not ready: ${(r.stdout + r.stderr).trim().split('\n').pop()}\n\n`;
  }
  return head + renderBgpStatus(parseBirdProtocols(r.stdout));
}

// ---------------------------------------------------------------- run

/** calicoctl's checks of --ip-autodetection-method / --ip6-autodetection-method (syntax only; the agent resolves names). */
export function checkAutodetectionMethod(method: string, family: 4 | 6 = 4): void {
  const fam = family === 4 ? 'IPv4' : 'IPv6';
  const bad = (why: string): CliError => new CliError(`Error executing command: invalid IP${family === 6 ? 'v6' : ''} autodetection method: ${method}${why ? ` (${why})` : ''}`, 'ERR_CLI_FLAG');
  if (method === 'first-found') return;
  const eq = method.indexOf('=');
  const kind = eq < 0 ? method : method.slice(0, eq + 1);
  const value = eq < 0 ? '' : method.slice(eq + 1);
  switch (kind) {
    case 'can-reach=': {
      if (value === '') throw bad('can-reach needs an IP address or a host name');
      const asIp = tryParseCidrOrIp(value);
      if (asIp !== undefined) {
        if (value.includes('/') || asIp.ip.version !== family) throw bad(`can-reach takes an ${fam} address or a host name, not a CIDR or an address of the other family`);
        return;
      }
      if (/^\d+(\.\d+){0,3}$/.test(value) || value.includes(':')) throw bad(`"${value}" is not a valid ${fam} address`);
      if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(value)) throw bad(`"${value}" is not a valid host name`);
      return;
    }
    case 'interface=':
    case 'skip-interface=': {
      if (value === '') throw bad(`${kind.slice(0, -1)} needs at least one interface-name regex`);
      for (const re of value.split(',')) {
        try {
          new RegExp(re);
        } catch {
          throw new CliError(`Error executing command: invalid interface regex specified for IP autodetection: ${re}`, 'ERR_CLI_FLAG');
        }
      }
      return;
    }
    case 'cidr=': {
      if (value === '') throw bad('cidr needs at least one CIDR');
      for (const c of value.split(',')) {
        const p = tryParseCidr(c.trim());
        if (p === undefined || p.ip.version !== family) throw bad(`"${c}" is not an ${fam} CIDR`);
      }
      return;
    }
    default:
      throw bad('');
  }
}

function checkIp(ip: string): string {
  if (ip === 'autodetect') return ip;
  const c = tryParseCidrOrIp(ip);
  if (c === undefined) throw new CliError(`Error executing command: invalid IP address specified with --ip: ${ip} (expected autodetect or an IPv4 address with optional /prefix, e.g. 10.0.2.10/24)`, 'ERR_CLI_FLAG');
  if (c.ip.version !== 4) throw new CliError('Error executing command: --ip is wrong IP version', 'ERR_CLI_FLAG');
  return ip;
}

function checkIp6(ip: string): string {
  if (ip === 'autodetect') return ip;
  const c = tryParseCidrOrIp(ip);
  if (c === undefined) throw new CliError(`Error executing command: invalid IP address specified with --ip6: ${ip} (expected autodetect or an IPv6 address with optional /prefix, e.g. fd00:2::10/64)`, 'ERR_CLI_FLAG');
  if (c.ip.version !== 6) throw new CliError('Error executing command: --ip6 is wrong IP version', 'ERR_CLI_FLAG');
  return ip;
}

/** The agent launcher: bin/tortie-node.js of this checkout (TORTIE_NODE_BIN overrides, for packaging and tests). */
function agentLauncher(io: CliIO): string[] {
  const override = io.env.TORTIE_NODE_BIN;
  if (override) return override.split(' ').filter(Boolean);
  return agentCommand([]);
}

function shellQuote(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

function tailLines(file: string, n: number): string[] {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').filter((l) => l !== '').slice(-n);
  } catch {
    return [];
  }
}

async function stopAgent(rec: AgentRecord, io: CliIO): Promise<void> {
  const pid = rec.pid as number;
  io.stdout.write(`Stopping the running tortie-node for ${rec.node} (pid ${pid}).\n`);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (!isAgentAlive(pid)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new CliError(`Error executing command: tortie-node pid ${pid} for ${rec.node} did not stop within 15 s after SIGTERM`, 'ERR_CLI_STOP');
}

async function nodeRun(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 2, [
    ...COMMON,
    { long: 'ip', value: true },
    { long: 'ip-autodetection-method', value: true },
    { long: 'ip6', value: true },
    { long: 'ip6-autodetection-method', value: true },
    { long: 'log-dir', value: true },
    { long: 'metrics-port', value: true },
    { long: 'log-level', value: true },
    { long: 'backend', value: true },
    { long: 'timeout', value: true },
    { long: 'dryrun' },
    { long: 'init-system' },
    { long: 'no-default-ippools' },
    { long: 'bpffs-root', value: true },
  ]);
  if (args.flag('help')) {
    io.stdout.write(usage(binary));
    return 0;
  }
  if (args.positionals.length > 0) throw invalidOption(binary, argv);

  const ip = args.get('ip');
  if (ip !== undefined) checkIp(ip);
  const method = args.get('ip-autodetection-method') ?? 'first-found';
  checkAutodetectionMethod(method);
  const ip6 = args.get('ip6');
  if (ip6 !== undefined) checkIp6(ip6);
  const method6 = args.get('ip6-autodetection-method');
  if (method6 !== undefined) checkAutodetectionMethod(method6, 6);
  const backend = args.get('backend') ?? 'bird';
  if (backend === 'gobgp') throw new CliError("Error executing command: backend 'gobgp' is not implemented by tortie (bird or none)", 'ERR_CLI_FLAG');
  if (!['bird', 'none'].includes(backend)) throw new CliError(`Error executing command: unknown backend '${backend}'`, 'ERR_CLI_FLAG');
  const timeoutS = Number(args.get('timeout') ?? '60');
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new CliError(`Error executing command: --timeout: "${args.get('timeout')}" is not a positive number of seconds`, 'ERR_CLI_FLAG');
  const name = nodeNameOf(args, io);
  const healthPort = healthPortOf(args, io);
  const metricsPort = args.get('metrics-port');
  if (metricsPort !== undefined) parsePort(metricsPort, '--metrics-port');
  const runDir = runDirOf(args, io);
  const logDir = path.resolve(io.cwd, args.get('log-dir') ?? DEFAULT_LOG_DIR);
  const logFile = path.join(logDir, `${name}.log`);

  // The agent gets the datastore this CLI resolved (flags, -c file, env), spelled as its flags.
  const ds = resolveDatastoreConfig(args, io);
  const agentArgs = ['run', `--nodename=${name}`, `--ip-autodetection-method=${method}`, `--health-port=${healthPort}`];
  if (ip !== undefined) agentArgs.push(`--ip=${ip}`);
  if (ip6 !== undefined) agentArgs.push(`--ip6=${ip6}`);
  if (method6 !== undefined) agentArgs.push(`--ip6-autodetection-method=${method6}`);
  if (metricsPort !== undefined) agentArgs.push(`--metrics-port=${metricsPort}`);
  if (args.get('log-level') !== undefined) agentArgs.push(`--log-level=${args.get('log-level')}`);
  if (backend === 'none') agentArgs.push('--policy-only');
  // BGP stays opt-in: bird runs when --backend=bird is given explicitly (calicoctl's default
  // would start it always), or when CALICO_NETWORKING_BACKEND=bird reaches the agent.
  if (args.get('backend') === 'bird') agentArgs.push('--bgp');
  if (args.get('bpffs-root') !== undefined) agentArgs.push(`--bpffs-root=${path.resolve(io.cwd, args.get('bpffs-root') as string)}`);
  if (ds.type === 'embedded') {
    agentArgs.push('--datastore-type=embedded', `--store-dir=${ds.dir}`);
  } else {
    agentArgs.push('--datastore-type=etcdv3', `--etcd-endpoints=${ds.endpoints.join(',')}`);
    if (ds.caFile) agentArgs.push(`--etcd-ca=${ds.caFile}`);
    if (ds.certFile) agentArgs.push(`--etcd-cert=${ds.certFile}`);
    if (ds.keyFile) agentArgs.push(`--etcd-key=${ds.keyFile}`);
  }
  const cmd = [...agentLauncher(io), ...agentArgs];
  const cmdText = cmd.map(shellQuote).join(' ');

  if (args.flag('dryrun')) {
    io.stdout.write(`Use the following command to start tortie-node:\n\n${cmdText}\n\n`);
    if (!args.flag('init-system')) io.stdout.write('If you are running tortie-node from an init system, use the --init-system flag\nto run it in the foreground.\n');
    return 0;
  }

  const existing = readAgent(runDir, name);
  if (isAgentAlive(existing.pid)) await stopAgent(existing, io);
  // Something else answering on the health port would make us report the wrong process ready.
  const busy = await probeReady(healthPort, 1000);
  if (!('error' in busy) || busy.error !== 'ECONNREFUSED') {
    throw new CliError(`Error executing command: 127.0.0.1:${healthPort} is already in use (another tortie-node?); choose a free one with --health-port`, 'ERR_CLI_PORT');
  }

  if (args.flag('init-system')) {
    // Foreground: the init system supervises the agent; its output goes where ours goes.
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: io.env });
    child.stdout.on('data', (d: Buffer) => io.stdout.write(d.toString()));
    child.stderr.on('data', (d: Buffer) => io.stderr.write(d.toString()));
    return await new Promise<number>((resolve) => {
      child.on('error', (e) => {
        io.stderr.write(`Error executing command: cannot start ${cmd[0]}: ${e.message}\n`);
        resolve(1);
      });
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
  }

  try {
    fs.mkdirSync(logDir, { recursive: true });
    fs.mkdirSync(runDir, { recursive: true });
  } catch (e) {
    throw new CliError(`Error executing command: ${(e as Error).message}`, 'ERR_CLI_RUN');
  }
  const logFd = fs.openSync(logFile, 'a');
  io.stdout.write(`Running the following command to start tortie-node:\n\n${cmdText}\n\n`);
  const child = spawn(cmd[0], cmd.slice(1), {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...io.env, TORTIE_RUN_DIR: runDir },
  });
  fs.closeSync(logFd);
  const exited = agentExit(child);
  child.unref();
  if (child.pid === undefined) {
    const r = await exited;
    throw new CliError(`Error executing command: cannot start ${cmd[0]}: ${r.error?.message ?? 'unknown error'}`, 'ERR_CLI_RUN');
  }
  fs.writeFileSync(path.join(runDir, `${name}.tortiectl.json`), JSON.stringify({ pid: child.pid, healthPort, logFile, command: cmd }) + '\n');
  io.stdout.write(`tortie-node started (pid ${child.pid}), logging to ${logFile}; waiting for it to become ready.\n`);

  const outcome = await waitForReady(() => probeReady(healthPort, 1000), exited, timeoutS * 1000);
  if (outcome.ready) {
    io.stdout.write('tortie node started successfully\n');
    return 0;
  }
  const { exited: done, last } = outcome;
  if (done) {
    const how = done.signal ? `signal ${done.signal}` : `exit status ${done.code}`;
    const tail = tailLines(logFile, 15);
    const tailText = tail.length ? `\nLast lines of ${logFile}:\n  | ${tail.join('\n  | ')}` : '';
    throw new CliError(`Error executing command: tortie-node has terminated (${how}), check logs for details: ${logFile}${tailText}`, 'ERR_CLI_RUN');
  }
  throw new CliError(`Error executing command: tortie-node (pid ${child.pid}) did not become ready within ${timeoutS} s (last /readyz: ${last}); it keeps running, check ${logFile}`, 'ERR_CLI_TIMEOUT');
}
