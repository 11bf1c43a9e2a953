/**
 * The benchmark's probe pair, run inside the workload namespaces (`ip netns exec`):
 *
 *   node prober.js serve <port>
 *       accepts connections and closes each after the client does (the client closes first, so
 *       its side holds TIME_WAIT and no 4-tuple is reused while the datapath may still track it).
 *   node prober.js probe <ip> <port> <intervalMs> <timeoutMs> <maxSeconds>
 *       opens a new TCP connection every intervalMs and prints one line per attempt when it is
 *       decided: `<sentUs> ok - <gapUs>` (connected) or `<sentUs> fail <why> <gapUs>` (timeout,
 *       or an error). sentUs is the wall-clock time (µs since the epoch) just after the connect
 *       syscall returned (the SYN has passed the host's tc hooks by then: veth transmit runs
 *       the receive path in the sender's context); gapUs is how long the process took from just
 *       before the call to then: the SYN was sent within [sentUs − gapUs, sentUs]. Run it with
 *       real-time priority (chrt) on a busy machine, or descheduling widens that interval.
 *
 * Both exit after maxSeconds (probe) or when stdin closes (the parent died), so they are bounded.
 * A timeout is only declared after pending I/O has been processed (setImmediate after the timer),
 * so a stalled event loop cannot turn a completed handshake into a "fail".
 */
import * as net from 'node:net';

const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

function exitWithParent(): void {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

function serve(port: number): void {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.resume();
  });
  server.listen({ port, host: '0.0.0.0', backlog: 4096 }, () => process.stdout.write(`listening ${port}\n`));
  exitWithParent();
}

function probe(ip: string, port: number, intervalMs: number, timeoutMs: number, maxSeconds: number): void {
  let out = '';
  let outstanding = 0;
  const flush = (): void => {
    if (out) { process.stdout.write(out); out = ''; }
  };
  const attempt = (): void => {
    if (outstanding > 512) return; // bounded: never more sockets than this in flight
    outstanding++;
    const before = nowUs();
    let sent = 0;
    let decided = false;
    const decide = (line: string, sock: net.Socket, graceful: boolean): void => {
      if (decided) return;
      decided = true;
      outstanding--;
      clearTimeout(timer);
      out += `${sent || nowUs()} ${line} ${sent ? sent - before : -1}\n`;
      if (graceful) sock.end(); else sock.destroy();
    };
    const sock = net.connect({ host: ip, port });
    // net.connect to an address issues connect(2) from a nextTick callback; this one is queued
    // after it, so it runs right after the syscall.
    process.nextTick(() => { sent = nowUs(); });
    sock.on('connect', () => decide('ok -', sock, true));
    sock.on('error', (e: NodeJS.ErrnoException) => decide(`fail ${e.code ?? 'error'}`, sock, false));
    sock.on('data', () => undefined);
    const timer = setTimeout(() => setImmediate(() => {
      if (!decided) decide('fail timeout', sock, false);
    }), timeoutMs);
  };
  const tick = setInterval(attempt, intervalMs);
  const flusher = setInterval(flush, 10);
  setTimeout(() => {
    clearInterval(tick);
    setTimeout(() => { clearInterval(flusher); flush(); process.exit(0); }, timeoutMs + 50);
  }, maxSeconds * 1000);
  exitWithParent();
}

function main(argv: string[]): void {
  const num = (v: string | undefined, what: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`prober: ${what} must be a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  if (argv[0] === 'serve') serve(num(argv[1], 'port'));
  else if (argv[0] === 'probe') probe(argv[1] ?? '', num(argv[2], 'port'), num(argv[3], 'intervalMs'), num(argv[4], 'timeoutMs'), num(argv[5], 'maxSeconds'));
  else throw new Error('usage: prober serve <port> | prober probe <ip> <port> <intervalMs> <timeoutMs> <maxSeconds>');
}

if (require.main === module) main(process.argv.slice(2));
