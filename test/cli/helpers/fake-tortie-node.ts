/**
 * A stand-in for `tortie-node run` in tortiectl's `node run` / `node status` tests (the real
 * agent needs BPF and network namespaces; it is tested in test/node). It records its argv,
 * serves /readyz on 127.0.0.1:--health-port and behaves as FAKE_AGENT_MODE says:
 *   ready  (default)  503 for FAKE_READY_DELAY_MS, then 200
 *   never             503 forever
 *   crash             writes an error and exits with status 3
 * SIGTERM ends it with status 0. It touches nothing but its listener and FAKE_AGENT_ARGS_FILE.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
if (process.env.FAKE_AGENT_ARGS_FILE) fs.appendFileSync(process.env.FAKE_AGENT_ARGS_FILE, JSON.stringify({ pid: process.pid, argv }) + '\n');
const mode = process.env.FAKE_AGENT_MODE ?? 'ready';
process.stdout.write(`fake tortie-node ${process.pid} starting for ${flag('nodename')}\n`);
if (mode === 'crash') {
  process.stderr.write('fatal: cannot open the datastore (simulated)\n');
  process.exit(3);
}
const readyAt = Date.now() + Number(process.env.FAKE_READY_DELAY_MS ?? '300');
const server = http.createServer((req, res) => {
  const ready = mode === 'ready' && Date.now() >= readyAt;
  if (req.url === '/readyz') {
    res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
    res.end(ready ? 'ok: in sync, kernel programmed\n' : 'not ok: not yet in sync with the datastore\n');
    return;
  }
  res.writeHead(404);
  res.end();
});
server.listen(Number(flag('health-port')), '127.0.0.1');
process.on('SIGTERM', () => {
  process.stdout.write('fake tortie-node stopping\n');
  server.close();
  process.exit(0);
});
