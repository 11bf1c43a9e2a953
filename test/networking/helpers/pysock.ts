// Ordinary sockets held open inside a namespace across test steps: one Python process per
// namespace (Debian's /usr/bin/python3, no privileges used) executes the snippets it is sent in a
// persistent scope and answers with the JSON of the variable `_`. Killed with its topology.
import { createInterface } from 'node:readline';
import type { Netns } from '../../../src/util/netns';

// Echo servers every snippet can start: each answers b'echo:' + what it got, on a daemon thread;
// tcp_echo appends each accepted connection to the list `conns` when given one (to push data later).
const PRELUDE = `
import threading
def udp_echo(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, port))
    def loop():
        while True:
            d, a = s.recvfrom(2000)
            s.sendto(b'echo:' + d, a)
    threading.Thread(target=loop, daemon=True).start()
def tcp_echo(host, port, conns=None):
    l = socket.socket()
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
