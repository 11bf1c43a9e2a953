// NAT outgoing under connection churn, with real traffic through a node of the in-process cluster
// (its cali* programs keep the workloads' conntrack, its uplink translates):
//   - one workload opens many more short TCP connections to ONE outside address and port than
//     its NAT quota and the NAT port range hold (the server closes first, as nginx with
//     `Connection: close`): every one succeeds, because a flow whose close the workload's
//     conntrack verified releases its mapping at once and its port is reused under TIME-WAIT rules;
//   - meanwhile another workload's connections to the same destination all succeed, and a
//     long-lived connection of the churning workload keeps its port and works;
//   - blind FIN, ACK and RST segments from outside (right addresses and ports, guessed sequence
//     numbers) release nothing, on an open flow and on one the workload half-closed;
//   - the quota counts equal the mappings in the table after the churn and after the sweep.
import t from 'tap';
import { InProcessCluster } from '../../src/testbed';
import { PySockets } from '../../src/testbed/probes';
import { NAT_DIR, QUOTA, readNatEntries } from '../../src/dataplane/bpf/net-codecs';
import { readNatQuota } from '../../src/dataplane/bpf/nat';
import { readQuotaCounter } from '../../src/dataplane/bpf/quota';
import { ct4KeyCodec, ctValueCodec } from '../../src/dataplane/bpf/codecs';
import { ipv4ToU32 } from '../../src/primitives';

const PORTS = 64;   // NAT ports 20000-20063
const NQUOTA = 32;  // mappings per workload
const CHURN = Number(process.env.NATCHURN ?? 3000); // connections of workload A, to one address and port
const OTHER = 300;  // connections of workload B meanwhile

t.test('connection churn to one destination, far beyond quota and ports, with blind segments from outside', async (t) => {
  const c = await InProcessCluster.create('natchurn', {
    routing: () => ({ nat: { portMin: 20000, portMax: 20000 + PORTS - 1, quota: NQUOTA } }),
  });
  const socks: PySockets[] = [];
  t.teardown(async () => { for (const s of socks) s.close(); await c.destroy(); });
  c.setPool();
  const wa = await c.addWorkload('wa', 'node-a', '192.168.1.10');
  const wb = await c.addWorkload('wb', 'node-a', '192.168.1.11');
  await c.sync();
  const A = c.nodes.get('node-a')!;
  const rm = A.dp!.routing!;
  const OUT = c.outsideIp;
  const NODE = A.ip;
  const out = new PySockets(c.outside), pa = new PySockets(wa.ns), pb = new PySockets(wb.ns);
  socks.push(out, pa, pb);

  const fwd = (addr: string) => readNatEntries(rm.maps.nat4).filter((e) => e.key.dir === NAT_DIR.FWD && e.key.saddr === addr);
  const natPortOf = (addr: string, sport: number) => fwd(addr).find((e) => e.key.sport === sport)?.value.port;
  const live = (addr: string) => readNatQuota(rm.maps.natq4).find((r) => r.addr === addr)?.live ?? 0;
  const moved = (addr: string) => readQuotaCounter(rm.maps.natq4, addr, QUOTA.MOVED);

  // The outside host: port 80 answers and closes first (every connection); port 7000 is held
  // open by the test (an echo of what it is told to send).
  t.equal(await out.run(`
import threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(('${OUT}', 80)); srv.listen(512)
def serve():
    while True:
        s, _a = srv.accept()
        s.sendall(b'hi'); s.close()
threading.Thread(target=serve, daemon=True).start()
held = socket.socket(); held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); held.bind(('${OUT}', 7000)); held.listen(8); held.settimeout(10)
_ = 'ready'`), 'ready');

  // A long-lived connection of A, opened before the churn.
  const longPort = await pa.run<number>(`
L = socket.create_connection(('${OUT}', 7000), timeout=10)
_ = L.getsockname()[1]`);
  await out.run(`Ls, _a = held.accept(); Ls.settimeout(10); _ = 1`);
  const longNat = natPortOf(wa.ip, longPort);
  t.ok(longNat !== undefined, `the long-lived flow has a mapping (port ${longNat})`);

  // What the workload's conntrack holds for a flow to the outside: the outside's sequence end
  // and highest ACK (side a is the smaller address, then port, as ct4_key_make).
  const ctRemote = (sport: number, dport: number) => {
    const a = ipv4ToU32(wa.ip) < ipv4ToU32(OUT);
    const key = a ? { addr_a: wa.ip, addr_b: OUT, port_a: sport, port_b: dport, proto: 6 } : { addr_a: OUT, addr_b: wa.ip, port_a: dport, port_b: sport, proto: 6 };
    const v = ctValueCodec.decode(A.dp!.maps.ct4!.lookup(ct4KeyCodec.encode(key))!);
    const r = a ? 1 : 0;
    return { seqEnd: v.seq_end[r]!, ackMax: v.ack_max[r]! };
  };
  // Wrong guesses of an off-path sender (right addresses and ports): FIN and RST outside the
  // conntrack window, ACKs behind what the outside sent (so they move no conntrack state).
  const blind = (natPort: number, sport: number) => {
    const { seqEnd, ackMax } = ctRemote(sport, 7000);
    const old = (x: number, d: number) => ((x - d) >>> 0);
    return `
for i in range(32):
    pk.append(IP(src='${OUT}', dst='${NODE}')/TCP(sport=7000, dport=${natPort}, flags='FA', seq=${old(seqEnd, 1 << 30)} + i, ack=${old(ackMax, 1 << 30)}))
    pk.append(IP(src='${OUT}', dst='${NODE}')/TCP(sport=7000, dport=${natPort}, flags='A', seq=${old(seqEnd, 1 << 30)} + i, ack=${old(ackMax, 1 << 30)} + i))
    pk.append(IP(src='${OUT}', dst='${NODE}')/TCP(sport=7000, dport=${natPort}, flags='R', seq=${(seqEnd + 2 ** 31) >>> 0} + i))`;
  };

  await t.test('blind FIN / ACK / RST from outside release nothing (open flow, half-closed flow)', async (t) => {
    // A second connection that the workload half-closes: FIN out, the outside keeps sending.
    const halfPort = await pa.run<number>(`
H = socket.create_connection(('${OUT}', 7000), timeout=10)
H.shutdown(socket.SHUT_WR)
_ = H.getsockname()[1]`);
    t.equal(await out.run(`Hs, _a = held.accept(); Hs.settimeout(10); _ = len(Hs.recv(10))`), 0, 'the outside sees the workload\'s FIN');
    const halfNat = natPortOf(wa.ip, halfPort)!;
    t.ok(halfNat !== undefined, 'the half-closed flow has a mapping');
    const m0 = moved(wa.ip);
    const drops0 = A.dp!.housekeeping().drops.ct_invalid ?? 0n;
    await out.run(`
from scapy.all import IP, TCP, send, conf
conf.verb = 0
pk = []
${blind(longNat!, longPort)}
${blind(halfNat, halfPort)}
send(pk)
_ = len(pk)`, 60_000);
    // The blind ACKs too: a sequence 1 GiB behind the flow is implausible (lib/ct_tcp.h).
    t.equal((A.dp!.housekeeping().drops.ct_invalid ?? 0n) - drops0, 192n, 'every blind FIN, ACK and RST reached the workload\'s conntrack and was dropped there');
    t.equal(natPortOf(wa.ip, longPort), longNat, 'the open flow keeps its mapping');
    t.equal(natPortOf(wa.ip, halfPort), halfNat, 'the half-closed flow keeps its mapping');
    t.equal(moved(wa.ip), m0, 'nothing released by the program');
    t.equal(await out.run(`Hs.sendall(b'late'); _ = 1`), 1);
    t.equal(await pa.run(`_ = H.recv(10).decode()`), 'late', 'the half-closed flow still delivers');
    t.equal(await out.run(`Ls.sendall(b'still'); _ = 1`), 1);
    t.equal(await pa.run(`_ = L.recv(10).decode()`), 'still', 'the open flow still delivers');
    // Now the real close (the outside's FIN, the workload's last ACK): released at once.
    await out.run(`Hs.close(); _ = 1`);
    t.equal(await pa.run(`_ = len(H.recv(10))`), 0, 'the workload sees the outside\'s FIN');
    await pa.run(`H.close(); _ = 1`);
    for (let i = 0; i < 100 && natPortOf(wa.ip, halfPort) !== undefined; i++) await new Promise((r) => setTimeout(r, 20));
    t.equal(natPortOf(wa.ip, halfPort), undefined, 'the verified close (the workload\'s last ACK leaving) releases the mapping');
    t.equal(moved(wa.ip), m0 + 1n, 'and credits the workload\'s quota once');
  });

  await t.test(`${CHURN} connections from A and ${OTHER} from B to one destination: all succeed`, async (t) => {
    const churn = (n: number) => `
def churn(n):
    ok = 0
    for i in range(n):
        s = socket.create_connection(('${OUT}', 80), timeout=10)
        d = b''
        while True:
            b = s.recv(10)
            if not b: break
            d += b
        s.close()
        ok += d == b'hi'
    return ok
res = {}
th = threading.Thread(target=lambda: res.__setitem__('ok', churn(${n})))
th.start()
_ = 1`;
    await pa.run(`import threading\n${churn(CHURN)}`);
    await pb.run(`import threading\n${churn(OTHER)}`);
    const okB = await pb.run<number>(`th.join(); _ = res['ok']`, 300_000);
    const okA = await pa.run<number>(`th.join(); _ = res['ok']`, 300_000);
    t.equal(okA, CHURN, `all ${CHURN} connections of A succeeded (${PORTS} NAT ports, quota ${NQUOTA})`);
    t.equal(okB, OTHER, `all ${OTHER} connections of B succeeded meanwhile`);
    t.equal(natPortOf(wa.ip, longPort), longNat, 'the long-lived flow kept its port');
    t.equal(await out.run(`Ls.sendall(b'after'); _ = 1`), 1);
    t.equal(await pa.run(`_ = L.recv(10).decode()`), 'after', 'and still works');
  });

  await t.test('quota counts equal the mappings, after the churn and after the sweep', async (t) => {
    for (const addr of [wa.ip, wb.ip]) t.equal(live(addr), fwd(addr).length, `${addr}: count = FWD mappings (${fwd(addr).length})`);
    t.ok(live(wa.ip) <= 2, 'only the long-lived flow (and none of the closed ones) is counted for A');
    await pa.run(`L.close(); _ = 1`);
    await out.run(`Ls.close(); _ = 1`);
    rm.sweepNat(process.hrtime.bigint() + 4n * 3600n * 1_000_000_000n);
    for (const addr of [wa.ip, wb.ip]) {
      t.equal(fwd(addr).length, 0, `${addr}: no mapping left after the sweep`);
      t.equal(live(addr), 0, `${addr}: count 0`);
    }
    t.equal(readNatEntries(rm.maps.nat4).length, 0, 'the table is empty (tombstones swept too)');
  });
});
