// BPF_PROG_TEST_RUN on the tc and XDP test programs: verdicts, output bytes, repeat and duration,
// the context, and the batched runner (sync and off-loop) at 10^5 packets.
import t, { type Test } from 'tap';
import { BpfObject, TcAction, XdpAction, type BpfMap, type BpfProgram } from '../../src/dataplane/native';
import { IPPROTO, OBJ, arpFrame, expectBpfError, ipChecksum, ipv4Packet, requireRoot, tempPinRoot } from './helpers/env';

requireRoot(t);

interface Loaded { xdp: BpfProgram; tc: BpfProgram; counts: BpfMap }

async function load(t: Test, constants: Record<string, Buffer | number>): Promise<Loaded> {
  const obj = BpfObject.open(OBJ, { pinRoot: tempPinRoot(t, 'run') });
  for (const [k, v] of Object.entries(constants)) obj.setConstant(k, v);
  await obj.load();
  const l = { xdp: obj.program('tn_xdp'), tc: obj.program('tn_tc'), counts: obj.map('tn_counts') };
  obj.close();
  t.teardown(() => { l.xdp.close(); l.tc.close(); l.counts.close(); });
  return l;
}

/** Sum of the per-CPU packet counters for one protocol. */
function packets(counts: BpfMap, proto: number): bigint {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(proto);
  return counts.splitPerCpu(counts.get(k)).reduce((s, v) => s + v.readBigUInt64LE(0), 0n);
}

const dropIcmpUdp = (): Buffer => { const b = Buffer.alloc(32); b.writeBigUInt64LE((1n << 1n) | (1n << 17n)); return b; };

t.test('verdicts per protocol, XDP and tc', async (t) => {
  const { xdp, tc } = await load(t, { tn_drop_protos: dropIcmpUdp() });
  const cases: [string, Buffer, number, number][] = [
    ['icmp', ipv4Packet({ proto: IPPROTO.ICMP }), XdpAction.DROP, TcAction.SHOT],
    ['udp', ipv4Packet({ proto: IPPROTO.UDP }), XdpAction.DROP, TcAction.SHOT],
    ['tcp', ipv4Packet({ proto: IPPROTO.TCP }), XdpAction.PASS, TcAction.OK],
    ['arp', arpFrame(), XdpAction.PASS, TcAction.OK],
  ];
  for (const [name, pkt, x, c] of cases) {
    t.equal(xdp.testRun(pkt).retval, x, `xdp ${name}`);
    t.equal(tc.testRun(pkt).retval, c, `tc ${name}`);
  }
});

t.test('output bytes: TOS rewrite with a valid checksum', async (t) => {
  const { xdp, tc } = await load(t, { tn_set_tos: 0x28 });
  const inPkt = ipv4Packet({ proto: IPPROTO.TCP, payload: 40 });
  for (const [name, p] of [['xdp', xdp], ['tc', tc]] as const) {
    const r = p.testRun(inPkt);
    t.equal(r.data.length, inPkt.length, `${name}: same length`);
    t.equal(r.data[15], 0x28, `${name}: TOS rewritten`);
    t.equal(ipChecksum(r.data.subarray(14, 34)), 0, `${name}: IPv4 header checksum still valid`);
    const expect = Buffer.from(inPkt);
    expect[15] = 0x28;
    expect.writeUInt16BE(0, 24);
    expect.writeUInt16BE(ipChecksum(expect.subarray(14, 34)), 24);
    t.same(r.data, expect, `${name}: no other byte changed`);
  }
  t.same(xdp.testRun(inPkt, { dataOutSize: inPkt.length }).data.length, inPkt.length, 'exact output room is enough');
  expectBpfError(t, () => xdp.testRun(inPkt, { dataOutSize: 10 }), { code: 'ERR_BPF_PROG_TEST_RUN', errnoName: 'ENOSPC', message: /larger than dataOutCap 10/ });
});

t.test('repeat runs the program N times and reports an average duration', async (t) => {
  const { xdp, counts } = await load(t, {});
  const before = packets(counts, IPPROTO.UDP);
  const r = xdp.testRun(ipv4Packet({ proto: IPPROTO.UDP }), { repeat: 1000 });
  t.equal(r.retval, XdpAction.PASS);
  t.equal(packets(counts, IPPROTO.UDP) - before, 1000n, 'counter advanced by the repeat count');
  t.ok(r.durationNs > 0 && r.durationNs < 100_000, `plausible ns per run (${r.durationNs})`);
});

t.test('context in and out (tc: __sk_buff)', async (t) => {
  const { tc } = await load(t, {});
  const ctx = Buffer.alloc(192); // struct __sk_buff; mark at offset 8
  ctx.writeUInt32LE(0xabc, 8);
  const r = tc.testRun(ipv4Packet({ proto: IPPROTO.TCP }), { ctx });
  t.equal(r.retval, TcAction.OK);
  t.equal(r.ctx?.length, 192);
  t.equal(r.ctx?.readUInt32LE(8), 0xabc, 'mark round-trips through the context');
  expectBpfError(t, () => tc.testRun(Buffer.alloc(4)), { code: 'ERR_BPF_PROG_TEST_RUN', errnoName: 'EINVAL' }, 'tc needs at least an Ethernet header');
});

t.test('batched runs: 100,000 packets in one call, sync and async', async (t) => {
  const { xdp, tc, counts } = await load(t, { tn_drop_protos: dropIcmpUdp() });
  const protos = [IPPROTO.ICMP, IPPROTO.TCP, IPPROTO.UDP, IPPROTO.TCP];
  const templates = protos.map((p) => ipv4Packet({ proto: p, payload: 26 }));
  const N = 100_000;
  const pkts = Array.from({ length: N }, (_, i) => templates[i % 4]!);
  const tcpBefore = packets(counts, IPPROTO.TCP);

  const t0 = process.hrtime.bigint();
  const r = xdp.testRunBatch(pkts);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  t.equal(r.retvals.length, N);
  let wrong = 0;
  for (let i = 0; i < N; i++) {
    const want = protos[i % 4] === IPPROTO.TCP ? XdpAction.PASS : XdpAction.DROP;
    if (r.retvals[i] !== want) wrong++;
  }
  t.equal(wrong, 0, 'every verdict right');
  t.equal(packets(counts, IPPROTO.TCP) - tcpBefore, BigInt(N / 2), 'every packet counted');
  t.ok(ms < 5000, `100k packets in ${ms.toFixed(0)} ms (${Math.round(N / ms * 1000)} pkt/s)`);
  t.comment(`sync batch: ${N} packets in ${ms.toFixed(0)} ms = ${Math.round(N / ms * 1000)} pkt/s`);

  const t1 = process.hrtime.bigint();
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 1);
  const ra = await tc.testRunBatchAsync(pkts);
  clearInterval(timer);
  const msA = Number(process.hrtime.bigint() - t1) / 1e6;
  t.equal(ra.retvals.filter((v) => v === TcAction.SHOT).length, N / 2, 'async: half dropped');
  t.ok(ticks > 0, 'the event loop kept running during the async batch');
  t.comment(`async batch: ${N} packets in ${msA.toFixed(0)} ms`);
});

t.test('batched runs return output packets on request', async (t) => {
  const { xdp } = await load(t, { tn_set_tos: 4 });
  const pkts = [ipv4Packet({ proto: 6, payload: 10 }), arpFrame(), ipv4Packet({ proto: 17, payload: 50 })];
  const r = xdp.testRunBatch(pkts, { wantData: true });
  t.equal(r.data?.length, 3);
  t.same(r.data!.map((d) => d.length), pkts.map((p) => p.length));
  t.equal(r.data![0]![15], 4);
  t.same(r.data![1], pkts[1], 'non-IP frame untouched');
  t.equal(r.data![2]![15], 4);
  t.equal(r.durationsNs.length, 3);
  expectBpfError(t, () => xdp.testRunBatch([ipv4Packet({ proto: 6 }), Buffer.alloc(0)]), { code: 'ERR_BPF_PROG_TEST_RUN', message: /packet 1 \(0 bytes\)/ });
});
