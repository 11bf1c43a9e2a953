/**
 * The resident CNI server: keeps the plugins' code loaded and answers the installed `tortie` /
 * `tortie-ipam` wrappers over a unix socket, so an ADD or DEL costs the work itself instead of a
 * Node start plus module loading (runtimes start one plugin process per container and command;
 * Cilium's plugin talks to its agent the same way). tortie-node serves it in the agent process
 * by default (src/node/run.ts, `--cni-socket`); `tortie-cni-server [--socket PATH]` runs the
 * same code alone.
 *
 * Contract:
 * - It must run where the plugins would: in the node's network and mount namespaces (as
 *   tortie-node does); every request is handled exactly as the plugin process would handle it,
 *   with the caller's environment (CNI_*, NODENAME, DATASTORE_TYPE, ETCD_*, …) and stdin.
 * - Wire format (one request per connection): `<plugin>\n`, then the caller's environment as
 *   `KEY=VALUE\0` entries ended by an empty entry (`\0`), then stdin to the end (the client
 *   half-closes). Answer: `<exit status>\n` then the plugin's stdout (a result, or the spec's
 *   error object with its code). A request larger than MAX_REQUEST_BYTES is refused (code 4).
 * - Requests for the same CNI_CONTAINERID run one after the other, in arrival order (a DEL
 *   never overtakes the ADD it undoes); others run concurrently (IPAM and the datastore are
 *   safe under concurrency: compare-and-swap writes, the embedded store's writer lock).
 * - Every request is answered within `timeoutMs` (default 60 s): past it the caller gets
 *   code 11 (try again later) and the work goes on to its end in the background, still
 *   holding its container's turn, so the runtime's next call for that container (its DEL after
 *   the failed ADD) sees what that work left and undoes it. No request can stop the server or
 *   its host process: every failure becomes an error answer.
 * - What a request does on the host is asynchronous (netlink through `ip` child processes,
 *   started by a helper process in the agent: src/util/spawner.ts), so a host process's event loop (the
 *   agent's) keeps running. The one synchronous step is the embedded datastore's commit
 *   (fdatasync of a batch of writes), as for the agent's own writes; etcd has none.
 * - The socket's directory is made 0700 and the socket 0600 (root's, like the plugins). A stale
 *   socket file (nobody listening) is replaced; a live one is refused. Closing the server
 *   removes the socket file if it is still the one it made.
 * - When no server listens, the wrappers run the plugin as a process: the server is optional.
 */
import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { DatastoreConfig } from '../datastore';
import type { Datastore } from '../datastore/types';
import { keepStoresOpen, releaseStores } from './context';
import { CNI_ERR } from './errors';
import { DEFAULT_SOCKET } from './install';
import { handle as handleIpam } from './ipam-plugin';
import { handle as handleTortie } from './plugin';
import { startSpawner, stopSpawner } from '../util/spawner';

export const DEFAULT_TIMEOUT_MS = 60_000;
/** A request is an environment and a network configuration: a few KiB; anything near this is not one. */
export const MAX_REQUEST_BYTES = 4 << 20;

type Handler = (vars: NodeJS.ProcessEnv, stdin: string) => Promise<{ code: number; stdout: string }>;

const HANDLERS: Record<string, Handler> = {
  'tortie': handleTortie,
  'tortie-ipam': handleIpam,
};

/** Splits a request into plugin name, environment and stdin; undefined when malformed. */
export function parseRequest(buf: Buffer): { plugin: string; vars: NodeJS.ProcessEnv; stdin: string } | undefined {
  const nl = buf.indexOf(0x0a);
  if (nl <= 0) return undefined;
  const plugin = buf.subarray(0, nl).toString('utf8');
  const vars: NodeJS.ProcessEnv = {};
  let pos = nl + 1;
  for (;;) {
    const end = buf.indexOf(0, pos);
    if (end < 0) return undefined;
    if (end === pos) { pos = end + 1; break; }
    const entry = buf.subarray(pos, end).toString('utf8');
    const eq = entry.indexOf('=');
    if (eq > 0) vars[entry.slice(0, eq)] = entry.slice(eq + 1);
    pos = end + 1;
  }
  return { plugin, vars, stdin: buf.subarray(pos).toString('utf8') };
}

/** The cniVersion of a configuration, for error objects written before it is parsed. */
function versionOf(stdin: string): string {
  const m = /"cniVersion"\s*:\s*"([0-9A-Za-z.+-]{1,20})"/.exec(stdin);
  return m ? m[1]! : '1.0.0';
}

function errorAnswer(cniVersion: string, code: number, msg: string): string {
  return `1\n${JSON.stringify({ cniVersion, code, msg: `tortie CNI server: ${msg}` })}\n`;
}

export interface CniServerOptions {
  /** Answer with code 11 after this long (the work itself goes on). */
  timeoutMs?: number;
  /**
   * Datastores already open in the host process (the agent's), by configuration: a request whose
   * configuration names the same store uses that connection instead of opening another.
   */
  stores?: [DatastoreConfig, Datastore][];
  /**
   * Start the requests' commands (`ip`, `nsenter`) through a small helper process (src/util/spawner.ts):
   * for a host process with a big heap (the agent), whose own fork/exec would block its event
   * loop for several ms per command.
   */
  spawnHelper?: boolean;
  /** Where failures that are the server's own (not a request's answer) are reported. */
  onError?: (err: unknown, what: string) => void;
}

class CniServer {
  /** The tail of each busy container's queue of requests. */
  private readonly turns = new Map<string, Promise<unknown>>();

  constructor(private readonly timeoutMs: number, private readonly onError: (err: unknown, what: string) => void) {}

  serve(conn: Socket): void {
    const chunks: Buffer[] = [];
    let size = 0;
    conn.on('error', () => conn.destroy());
    conn.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        conn.removeAllListeners('data');
        conn.end(errorAnswer('1.0.0', CNI_ERR.INVALID_ENV, `request larger than ${MAX_REQUEST_BYTES} bytes refused`));
        conn.resume();
        return;
      }
      chunks.push(c);
    });
    conn.on('end', () => {
      if (size > MAX_REQUEST_BYTES) return;
      try {
        this.answer(conn, Buffer.concat(chunks));
      } catch (err) {
        this.onError(err, 'answering a CNI request');
        if (!conn.destroyed) conn.end(errorAnswer('1.0.0', CNI_ERR.INTERNAL, err instanceof Error ? err.message : String(err)));
      }
    });
  }

  private answer(conn: Socket, buf: Buffer): void {
    const req = parseRequest(buf);
    const handler = req ? HANDLERS[req.plugin] : undefined;
    if (!req || !handler) {
      conn.end(errorAnswer('1.0.0', CNI_ERR.INVALID_ENV, `malformed request or unknown plugin ${JSON.stringify(req?.plugin ?? '')}`));
      return;
    }
    const version = versionOf(req.stdin);
    const key = req.vars.CNI_CONTAINERID ?? '';
    const prev = this.turns.get(key);
    // VERSION and calls without a container id need no turn.
    const work = (prev && key !== '' ? prev.then(() => undefined, () => undefined) : Promise.resolve())
      .then(() => handler(req.vars, req.stdin))
      .then((r) => `${r.code}\n${r.stdout}`, (err: unknown) => errorAnswer(version, CNI_ERR.INTERNAL, err instanceof Error ? err.message : String(err)));
    if (key !== '') {
      this.turns.set(key, work);
      void work.finally(() => { if (this.turns.get(key) === work) this.turns.delete(key); });
    }
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      conn.end(errorAnswer(version, CNI_ERR.TRY_AGAIN_LATER,
        `${req.vars.CNI_COMMAND ?? '?'} of container ${JSON.stringify(key)} not finished after ${this.timeoutMs} ms; it goes on in the background and the container's next call waits for it`));
    }, this.timeoutMs);
    void work.then((text) => {
      clearTimeout(timer);
      if (!done && !conn.destroyed) conn.end(text);
    });
  }
}

const connections = new WeakMap<Server, Set<Socket>>();

function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export async function startCniServer(path: string = DEFAULT_SOCKET, opts: CniServerOptions = {}): Promise<Server> {
  keepStoresOpen(opts.stores);
  if (opts.spawnHelper) startSpawner();
  // A directory made here is root's alone; an existing one is left as it is (the socket's own
  // mode, and the umask's before that, keep others out: connecting needs write permission).
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (await someoneListens(path)) throw new Error(`a tortie CNI server already listens on ${path}`);
  rmSync(path, { force: true });
  const srv = new CniServer(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, opts.onError ?? (() => undefined));
  // Half-open: the client ends its side after the request and reads the answer.
  const conns = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (conn) => {
    conns.add(conn);
    conn.once('close', () => conns.delete(conn));
    srv.serve(conn);
  });
  connections.set(server, conns);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => { server.off('error', reject); resolve(); });
  });
  chmodSync(path, 0o600);
  const ino = lstatSync(path).ino;
  server.on('error', (err) => (opts.onError ?? (() => undefined))(err, `CNI socket ${path}`));
  server.once('close', () => {
    try { if (lstatSync(path).ino === ino) rmSync(path, { force: true }); } catch { /* gone */ }
  });
  return server;
}

/**
 * Stops accepting, gives requests in progress up to `graceMs` to be answered, then cuts them,
 * and closes the datastore connections opened for requests (not the host process's own).
 */
export async function stopCniServer(server: Server, graceMs = 5_000): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      for (const c of connections.get(server) ?? []) c.destroy();
      resolve();
    }, graceMs);
    server.close(() => { clearTimeout(timer); resolve(); });
  });
  stopSpawner();
  await releaseStores();
}

const SERVER_USAGE = `usage: tortie-cni-server [--socket PATH] [--timeout-ms N]

Serves tortie's CNI plugins (ADD, DEL, CHECK) on a unix socket for the installed wrappers, the
same server tortie-node runs itself (see --cni-socket there). Runs until SIGINT or SIGTERM.
  --socket PATH     socket to listen on (default ${DEFAULT_SOCKET})
  --timeout-ms N    answer a call with CNI error 11 after N ms (default ${DEFAULT_TIMEOUT_MS})
`;

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(SERVER_USAGE);
    return 0;
  }
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] !== '--socket' && argv[i] !== '--timeout-ms') {
      process.stderr.write(`tortie-cni-server: unknown argument ${JSON.stringify(argv[i])}\n${SERVER_USAGE}`);
      return 2;
    }
    if (argv[i + 1] === undefined) {
      process.stderr.write(`tortie-cni-server: ${argv[i]} needs a value\n`);
      return 2;
    }
  }
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const path = flag('--socket') || DEFAULT_SOCKET;
  const timeoutText = flag('--timeout-ms');
  const timeoutMs = timeoutText === undefined ? DEFAULT_TIMEOUT_MS : Number(timeoutText);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    process.stderr.write(`tortie-cni-server: --timeout-ms ${JSON.stringify(timeoutText)} is not a positive integer (milliseconds)\n`);
    return 2;
  }
  let server: Server;
  try {
    server = await startCniServer(path, { timeoutMs, onError: (err, what) => process.stderr.write(`tortie-cni-server: ${what}: ${err instanceof Error ? err.message : String(err)}\n`) });
  } catch (err) {
    process.stderr.write(`tortie-cni-server: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  process.stdout.write(`tortie-cni-server: listening on ${path}\n`);
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  await stopCniServer(server);
  return 0;
}
