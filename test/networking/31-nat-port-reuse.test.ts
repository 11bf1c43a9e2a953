// NAT outgoing when the workload reuses its source ports, with real traffic through a node of the
// in-process cluster (its cali* programs keep the workload's conntrack with the TCP window check,
// its uplink translates), IPv4 and NAT66:
//   - a workload connects again and again from a small fixed set of source ports to ONE outside
//     address and port (the outside closes first and keeps TIME-WAIT; each connection closed, its
//     4-tuple then reopened), or ends each by a RST (SO_LINGER 0): every connection succeeds,
//     tortie drops nothing, the outside's TIME-WAIT refuses no SYN, and the workload's kernel
//     counts no SYN retransmission (nstat TcpExtTCPSynRetrans) and no retransmitted segment;
//   - a reconnection from the port of a flow that sent 128 MiB (timestamps off): the outside's
//     TIME-WAIT refuses the first SYN and answers with the old flow's ACK; the workload's RST
//     answering that must pass conntrack (far outside the new flow's window) so that exactly one
//     SYN retransmission opens the connection. Without conntrack's SYN_SENT rule each of these
//     connections stalls until the TIME-WAIT expires.
// The blind-ACK / blind-RST attacker tests are datapath/15-hardening and networking/28-nat-churn.
import t from 'tap';
import { InProcessCluster } from '../../src/testbed';
import { PySockets } from '../../src/testbed/probes';
import { NAT_DIR, readNatEntries, readNat6Entries } from '../../src/dataplane/bpf/net-codecs';
import type { Netns } from '../../src/util/netns';
import { pool } from '../../src/testbed/fixtures';

// The workload's source ports, reused round-robin: inside the NAT range, so that the node port
// tried first for each is its own (the tuple's earlier flow's, under that flow's TIME-WAIT).
const SPORTS = [20010, 20011, 20012, 20013];
const ROUNDS = Number(process.env.NATREUSE ?? 40); // connections from each port
const BULK = 128 << 20; // bytes the workload sends before the outside closes (its sequence runs ahead of its clock)
const BULK_N = 3;      // reconnections after a bulk flow, per family

/** Absolute values of the named SNMP/netstat counters in a namespace (nstat, history untouched). */
async function nstat(ns: Netns, names: string[]): Promise<Record<string, number>> {
  const r = await ns.sh(`nstat -asz ${names.join(' ')}`);
  const out: Record<string, number> = {};
  for (const n of names) out[n] = 0;
  for (const line of r.stdout.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && k in out) out[k] = Number(v);
  }
  return out;
}

const COUNTERS = ['TcpExtTCPSynRetrans', 'TcpRetransSegs', 'TcpActiveOpens', 'TcpExtTCPTimeouts'];
const OUTSIDE = ['TcpExtPAWSTimewait', 'TcpExtTW', 'TcpPassiveOpens', 'TcpExtListenDrops', 'TcpExtTCPChallengeACK', 'TcpOutRsts', 'TcpInErrs'];

t.test('source-port reuse through SNAT and NAT66: every connection opens at its first SYN', async (t) => {
  const c = await InProcessCluster.create('natreuse', {
    routing: () => ({ nat: { portMin: 20000, portMax: 20063, quota: 32 } }),
  });
  const socks: PySockets[] = [];
  t.teardown(async () => { for (const s of socks) s.close(); await c.destroy(); });
  await c.addIpv6();
  c.setPool();
  c.put(pool('default-ipv6-ippool', 'fd00:10::/48', { natOutgoing: true, blockSize: 122 }));
  const wa = await c.addWorkload6('wa', 'node-a', '192.168.1.10', 'fd00:10::10');
  await c.sync();
  const A = c.nodes.get('node-a')!;
  const out = new PySockets(c.outside), pa = new PySockets(wa.ns);
  socks.push(out, pa);
  const invalid = () => A.dp!.housekeeping().drops.ct_invalid ?? 0n;
  const drops = () => ({ ...A.dp!.housekeeping().drops });
  const dropsSince = (d0: Record<string, bigint>) => {
    const d1 = drops(), out: Record<string, string> = {};
    for (const k of new Set([...Object.keys(d0), ...Object.keys(d1)])) if ((d1[k] ?? 0n) !== (d0[k] ?? 0n)) out[k] = String((d1[k] ?? 0n) - (d0[k] ?? 0n));
    return out;
  };

  // The outside host: port 80 answers and closes first, on both families.
  t.equal(await out.run(`
import threading
def serve(fam, addr):
    srv = socket.socket(fam); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind((addr, 80)); srv.listen(512)
    def loop():
        while True:
            s, _a = srv.accept()
            s.sendall(b'hi'); s.close()
    threading.Thread(target=loop, daemon=True).start()
serve(socket.AF_INET, '${c.outsideIp}')
serve(socket.AF_INET6, '${c.outsideIp6}')
def sink(fam, addr):
    srv = socket.socket(fam); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind((addr, 81)); srv.listen(64)
    def loop():
        while True:
            s, _a = srv.accept()
            n = 0
            while n < ${BULK}:
                b = s.recv(1 << 20)
                if not b: break
                n += len(b)
            s.sendall(str(n).encode()); s.close()
    threading.Thread(target=loop, daemon=True).start()
sink(socket.AF_INET, '${c.outsideIp}')
sink(socket.AF_INET6, '${c.outsideIp6}')
_ = 'ready'`), 'ready');
  await pa.run(`
import errno, time
def reuse(fam, src, dst, rounds, rst):
    ok = 0; busy = 0
    for i in range(rounds):
        for p in ${JSON.stringify(SPORTS)}:
            while True:
                s = socket.socket(fam)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((src, p))
                    s.settimeout(10)
                    s.connect((dst, 80))
                    break
                except OSError as e:
                    s.close()
                    if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL): raise
                    busy += 1; time.sleep(0.001)  # the previous connection's LAST-ACK still holds the tuple
            d = b''
            while True:
                b = s.recv(10)
                if not b: break
                d += b
            if rst: s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            s.close()
            ok += d == b'hi'
    return ok
import struct
def bulk(fam, src, dst, p):
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, p)); s.settimeout(20); s.connect((dst, 81))
    s.sendall(b'x' * ${BULK})
    d = s.recv(20)
    while s.recv(10): pass
    s.close()
    return int(d)
def reconnect(fam, src, dst, p):
    t0 = time.monotonic()
    while True:
        s = socket.socket(fam)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((src, p)); s.settimeout(5); s.connect((dst, 81)); break
        except OSError as e:
            s.close()
            if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL) or time.monotonic() - t0 > 5: raise
            time.sleep(0.001)
    s.sendall(b'y'); s.shutdown(socket.SHUT_WR)
    d = s.recv(20)
    s.close()
    return int(d)
_ = 1`);

  const cases = [
    { fam: 4, name: 'IPv4 SNAT', src: wa.ip, dst: c.outsideIp, pyfam: 'socket.AF_INET' },
    { fam: 6, name: 'NAT66', src: wa.ip6!, dst: c.outsideIp6, pyfam: 'socket.AF_INET6' },
  ] as const;
  for (const k of cases) for (const rst of [false, true]) {
    await t.test(`${k.name}: ${ROUNDS} x ${SPORTS.length} connections from ${SPORTS.length} fixed source ports${rst ? ', each ended by a RST' : ''}`, async (t) => {
      const before = await nstat(wa.ns, COUNTERS), o0 = await nstat(c.outside, OUTSIDE), dr0 = drops();
      const t0 = Date.now();
      const ok = await pa.run<number>(`_ = reuse(${k.pyfam}, '${k.src}', '${k.dst}', ${ROUNDS}, ${rst ? 'True' : 'False'})`, 600_000);
      const ms = Date.now() - t0;
      const after = await nstat(wa.ns, COUNTERS);
      const d = Object.fromEntries(COUNTERS.map((n) => [n, after[n]! - before[n]!]));
      const o1 = await nstat(c.outside, OUTSIDE);
      t.comment(`${ok} connections in ${ms} ms; ${JSON.stringify(d)}; drops ${JSON.stringify(dropsSince(dr0))}; outside ${JSON.stringify(Object.fromEntries(OUTSIDE.map((n) => [n, o1[n]! - o0[n]!])))}`);
      t.equal(ok, ROUNDS * SPORTS.length, 'every connection succeeded');
      t.equal(d.TcpActiveOpens, ROUNDS * SPORTS.length, 'one active open per connection');
      t.same(dropsSince(dr0), {}, 'tortie dropped nothing (no INVALID, no NAT refusal)');
      t.equal(o1.TcpExtPAWSTimewait! - o0.TcpExtPAWSTimewait!, 0, 'the outside\'s TIME-WAIT refused no SYN');
      t.equal(d.TcpExtTCPSynRetrans, 0, 'no SYN was retransmitted: every connection opened at its first SYN');
      t.equal(d.TcpRetransSegs, 0, 'no segment was retransmitted at all');
      const fwd = k.fam === 6 ? readNat6Entries(A.dp!.routing!.maps.nat6).filter((e) => e.key.dir === NAT_DIR.FWD)
        : readNatEntries(A.dp!.routing!.maps.nat4).filter((e) => e.key.dir === NAT_DIR.FWD);
      t.comment(`FWD mappings left: ${fwd.length}`);
    });
  }

  // The outside's TIME-WAIT refuses a SYN on the tuple whose sequence number is not past the
  // closed flow's (no timestamps: the workload's namespace has them off here): it answers with
  // the old flow's ACK, the workload's stack answers that with a RST carrying exactly its ACK
  // number, which ends the TIME-WAIT, and the SYN's one retransmission opens the connection. The
  // workload's conntrack must pass that ACK without taking it for the new flow's and accept the
  // RST (it is far outside the new flow's window: the bulk flow's sequence ran 128 MiB ahead of
  // the clock that picks the next initial sequence number).
  for (const k of cases) {
    await t.test(`${k.name}: a SYN the outside's TIME-WAIT refuses costs one retransmission, not the TIME-WAIT`, async (t) => {
      await wa.ns.sh('sysctl -qw net.ipv4.tcp_timestamps=0');
      t.teardown(() => wa.ns.sh('sysctl -qw net.ipv4.tcp_timestamps=1').then(() => undefined));
      for (let i = 0; i < BULK_N; i++) {
        const p = 20060 + i; // inside the NAT range: the node port tried first is the workload's own, its tombstone
        t.equal(await pa.run<number>(`_ = bulk(${k.pyfam}, '${k.src}', '${k.dst}', ${p})`, 60_000), BULK, `bulk flow ${i + 1} delivered`);
        const before = await nstat(wa.ns, COUNTERS), inv0 = invalid();
        const got = await pa.run<number | string>(`
try:
    _ = reconnect(${k.pyfam}, '${k.src}', '${k.dst}', ${p})
except OSError as e:
    _ = str(e)`, 30_000);
        const after = await nstat(wa.ns, COUNTERS);
        const syn = after.TcpExtTCPSynRetrans! - before.TcpExtTCPSynRetrans!;
        t.equal(got, 1, `reconnection ${i + 1} from port ${p} succeeded`);
        t.equal(syn, 1, 'with exactly one SYN retransmission: the TIME-WAIT refused the first SYN, the RST ended it');
        t.equal(invalid() - inv0, 0n, 'nothing dropped as INVALID (the TIME-WAIT\'s ACK passed, the RST answering it too)');
      }
    });
  }
});
