// Ordinary sockets held open inside a namespace across test steps: one Python process per
// namespace (Debian's /usr/bin/python3, no privileges used) executes the snippets it is sent in a
// persistent scope and answers with the JSON of the variable `_`. Killed with its topology.
import { createInterface } from 'node:readline';
import type { Netns } from '../../../src/util/netns';

const AGENT = `
import sys, json, socket, time, traceback
g = {'socket': socket, 'time': time}
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
