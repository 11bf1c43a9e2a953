// Crafted packets and captures for the real-packet hardening tests: scapy (Debian's, at
// /usr/bin/python3) sends inside a namespace; tcpdump in the receiving namespace records what
// arrived. Verdicts are read once an allowed sentinel probe has arrived, never after a fixed sleep.
import type { Netns } from '../../../src/util/netns';

const PY = '/usr/bin/python3';

/** Sends scapy packets (expressions) in order: at layer 2 to `mac` on eth0, or at layer 3 when mac is undefined. */
export async function scapy(ns: Netns, pkts: string[], mac?: string): Promise<void> {
  const send = mac === undefined ? `send([${pkts.join(', ')}])` : `sendp([${pkts.map((p) => `Ether(dst='${mac}')/${p}`).join(', ')}], iface='eth0')`;
  await ns.exec([PY, '-c', ['from scapy.all import *', 'conf.verb = 0', send].join('\n')], { timeoutMs: 30_000 });
}

/** Packets arriving on eth0 of a namespace (incoming only), as `tcpdump -v` prints them. */
export class Capture {
  private out = '';
  private constructor(private readonly proc: ReturnType<Netns['spawn']>) {
    proc.stdout!.on('data', (d: Buffer) => { this.out += d.toString(); });
  }
  static async start(ns: Netns, filter = 'ip'): Promise<Capture> {
    const proc = ns.spawn(['tcpdump', '-nl', '-v', '-Q', 'in', '-i', 'eth0', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
    let ready = false;
    proc.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('listening on')) ready = true; });
    if (!(await until(() => ready))) { proc.kill('SIGKILL'); throw new Error('tcpdump did not start'); }
    return new Capture(proc);
  }
  waitFor(re: RegExp, ms = 10_000): Promise<boolean> { return until(() => re.test(this.out), ms); }
  has(re: RegExp): boolean { return re.test(this.out); }
  text(): string { return this.out; }
  stop(): void { this.proc.kill('SIGKILL'); }
}

/** Polls `cond` every 25 ms until it holds or `ms` pass. */
export async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 25) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

/** Matches a packet with this IPv4 id in `tcpdump -v` output. */
export const ipId = (n: number) => new RegExp(`\\bid ${n},`);
