/**
 * The resident CNI server: `tortie-cni-server [--socket PATH]` keeps the plugins' code loaded and
 * answers the installed `tortie` / `tortie-ipam` wrappers over a unix socket, so an ADD or DEL
 * costs the work itself instead of a Node start plus module loading (runtimes start one plugin
 * process per container and command; Cilium's plugin talks to its agent the same way).
 *
 * Contract:
 * - It must run where the plugins would: in the node's network and mount namespaces (as
 *   tortie-node does); every request is handled exactly as the plugin process would handle it,
 *   with the caller's environment (CNI_*, NODENAME, DATASTORE_TYPE, ETCD_*, …) and stdin.
 * - Wire format (one request per connection): `<plugin>\n`, then the caller's environment as
 *   `KEY=VALUE\0` entries ended by an empty entry (`\0`), then stdin to the end (the client
 *   half-closes). Answer: `<exit status>\n` then the plugin's stdout.
 * - The socket's directory is made 0700 and the socket 0600 (root's, like the plugins). A stale
 *   socket file (nobody listening) is replaced; a live one is refused.
 * - When no server listens, the wrappers run the plugin as a process: the server is optional.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { keepStoresOpen } from './context';
import { DEFAULT_SOCKET } from './install';
import { handle as handleIpam } from './ipam-plugin';
import { handle as handleTortie } from './plugin';


const HANDLERS: Record<string, (vars: NodeJS.ProcessEnv, stdin: string) => Promise<{ code: number; stdout: string }>> = {
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

function serve(conn: Socket): void {
  const chunks: Buffer[] = [];
  conn.on('data', (c: Buffer) => chunks.push(c));
  conn.on('error', () => conn.destroy());
  conn.on('end', () => {
    const req = parseRequest(Buffer.concat(chunks));
    const handler = req ? HANDLERS[req.plugin] : undefined;
    if (!req || !handler) {
      conn.end(`1\n${JSON.stringify({ cniVersion: '1.0.0', code: 4, msg: `tortie CNI server: malformed request or unknown plugin ${JSON.stringify(req?.plugin ?? '')}` })}\n`);
      return;
    }
    handler(req.vars, req.stdin).then(
      (r) => conn.end(`${r.code}\n${r.stdout}`),
      (err: unknown) => conn.end(`1\n${JSON.stringify({ cniVersion: '1.0.0', code: 100, msg: `tortie CNI server: ${err instanceof Error ? err.message : String(err)}` })}\n`),
    );
  });
}

function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export async function startCniServer(path: string = DEFAULT_SOCKET): Promise<Server> {
  keepStoresOpen();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (await someoneListens(path)) throw new Error(`a tortie CNI server already listens on ${path}`);
  rmSync(path, { force: true });
  // Half-open: the client ends its side after the request and reads the answer.
  const server = createServer({ allowHalfOpen: true }, serve);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => { server.off('error', reject); resolve(); });
  });
  chmodSync(path, 0o600);
  server.once('close', () => rmSync(path, { force: true }));
  return server;
}

export async function main(argv: string[]): Promise<number> {
  const i = argv.indexOf('--socket');
  const path = i >= 0 && argv[i + 1] ? argv[i + 1]! : DEFAULT_SOCKET;
  let server: Server;
  try {
    server = await startCniServer(path);
  } catch (err) {
    process.stderr.write(`tortie-cni-server: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  process.stdout.write(`tortie-cni-server: listening on ${path}\n`);
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => server.close(() => resolve()));
  });
  return 0;
}
