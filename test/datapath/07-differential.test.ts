/**
 * Differential: the compiler's tables, encoded into the maps and run in the real BPF programs
 * (batched BPF_PROG_TEST_RUN), agree with the reference evaluator from src/calc on random policy
 * sets and packets.
 *
 *   TORTIE_DP_SEED=<n>       base seed (default 20261121)
 *   TORTIE_DP_SCENARIOS=<n>  random policy sets (default 500; × 200 packets ≥ 100,000)
 *   TORTIE_DP_DUAL=<n>       dual-stack policy sets (default 60) : endpoints with IPv4 and IPv6
 *                            addresses, IPv6 nets/sets/ipVersion/ICMPv6 rules, IPv6 frames through
 *                            tortie_cls6_v1 and the same tables
 *   TORTIE_DP_FAMILY=4|dual  only that family's run
 *   TORTIE_DP_CASE=<s>:<p>   replay one case (scenario s, packet p) and print it
 *
 * Conntrack is part of the datapath: within one batch, a packet whose flow an earlier packet
 * of the batch already opened is established and passes. The expectation models exactly that
 * (ICMP ids are unique per packet so only real repeats of a 5-tuple count); conntrack is
 * cleared between batches.
 */
import t from 'tap';
import { CalcGraph, evaluate, type CompiledState, type PolicyPacket, type VerdictTable } from '../../src/calc';
import { Gen, packet, rng, scenario, type Family } from '../../src/testbed/fuzz/random';
import { WepHarness, TC_ACT_OK } from '../../src/testbed/wep-harness';
import { flowPacket } from '../../src/dataplane/bpf/packet';
import { encodeClassPrefix } from '../../src/dataplane/bpf/encode';

const SEED = Number(process.env.TORTIE_DP_SEED ?? 20261121);
const SCENARIOS = Number(process.env.TORTIE_DP_SCENARIOS ?? 500);
const PACKETS = 200;
const DUAL = Number(process.env.TORTIE_DP_DUAL ?? 60);
const ONLY = process.env.TORTIE_DP_CASE;
const FAMILIES = ([4, 'dual'] as Family[]).filter((f) => (process.env.TORTIE_DP_FAMILY ?? String(f)) === String(f));

interface Case { s: number; p: number; pkt: PolicyPacket; frame: Buffer; flow: string; want: 'allow' | 'deny' }

function firstOfFamily(cidrs: string[], v6: boolean): string | undefined {
  const c = cidrs.find((x) => x.includes(':') === v6);
  return c?.split('/')[0];
}

function flowKey(src: string, dst: string, proto: number, sp: number, dp: number): string {
  const a = `${src}:${sp}`, b = `${dst}:${dp}`;
  return `${proto}|${a < b ? a : b}|${a < b ? b : a}`;
}

for (const fam of FAMILIES) t.test(`${fam === 4 ? 'IPv4' : 'dual stack'}: encoded tables in BPF agree with the reference (seed ${SEED})`, async (t) => {
  const scenarios = fam === 4 ? SCENARIOS : DUAL;
  const h = await WepHarness.create('diff', { events: false });
  t.teardown(() => h.close());
  const cls = h.dp.maps.cls4!;
  const [onlyS, onlyP] = ONLY ? ONLY.split(':').map(Number) : [undefined, undefined];
  let cases = 0, failures = 0, icmpId = 1, skippedNoFamily = 0;
  const outcome = { allow: 0, deny: 0, established: 0, v6: 0 };
  const started = Date.now();

  for (let s = 0; s < scenarios; s++) {
    if (onlyS !== undefined && s !== onlyS) continue;
    const g = new Gen(rng((SEED ^ Math.imul(s + 1, 0x9e3779b1)) >>> 0));
    const sc = scenario(g, fam);
    const graph = new CalcGraph({ nodeName: 'node1' });
    for (const r of sc.resources) graph.onUpdate(r);
    graph.flush();
    const snap: CompiledState = graph.snapshot();
    const tables = new Map<string, VerdictTable>(snap.tables.map((x) => [x.id, x]));
    const eps = new Map(snap.endpoints.map((e) => [e.key, e]));

    for (const k of cls.keys()) cls.tryDelete(k);
    for (const k of h.dp.maps.cls6!.keys()) h.dp.maps.cls6!.tryDelete(k);
    for (const p of snap.classes.prefixes) {
      const e = encodeClassPrefix(p);
      if (e) (p.family === 6 ? h.dp.maps.cls6! : cls).update(e.key, e.value);
    }

    // Packets for this scenario, grouped by (endpoint, direction) = one batch each.
    const groups = new Map<string, Case[]>();
    for (let p = 0; p < PACKETS; p++) {
      const pkt = packet(g, sc, fam);
      if (onlyP !== undefined && p !== onlyP) continue;
      const ep = eps.get(pkt.endpoint);
      const v6 = pkt.remoteIP.includes(':');
      // The endpoint's address of the packet's family; without one, no such packet is its own.
      const local = ep ? firstOfFamily(ep.ipNetworks, v6) : undefined;
      if (!ep || !local) { skippedNoFamily++; continue; }
      pkt.localIP = local;
      const isIcmp = pkt.protocol === 1 || pkt.protocol === 58;
      const id = isIcmp ? (icmpId++ & 0xffff) : 0;
      const [src, dst] = pkt.direction === 'egress' ? [local, pkt.remoteIP] : [pkt.remoteIP, local];
      const frame = flowPacket({
        src, dst, proto: pkt.protocol, sport: pkt.srcPort, dport: pkt.dstPort, flags: 'S',
        icmpType: pkt.icmpType, icmpCode: pkt.icmpCode, icmpId: id,
        payload: isIcmp && pkt.protocol === 58 ? Buffer.alloc(4) : undefined,
      });
      if (pkt.protocol === 58 && !v6) {
        // ICMPv6 numbering: type and code in the first two bytes after the IPv4 header.
        frame[14 + 20] = pkt.icmpType ?? 0;
        frame[14 + 21] = pkt.icmpCode ?? 0;
      }
      // Conntrack ports as the datapath builds them: TCP/UDP/SCTP/UDPLite ports, ICMP echo id
      // (ICMPv4 echo in IPv4, ICMPv6 echo in IPv6; the other family's ICMP is untracked), else 0.
      const ported = [6, 17, 132, 136].includes(pkt.protocol);
      const echo = v6 ? pkt.protocol === 58 && (pkt.icmpType === 128 || pkt.icmpType === 129)
        : pkt.protocol === 1 && (pkt.icmpType === 0 || pkt.icmpType === 8);
      const sp = ported ? pkt.srcPort ?? 0 : echo ? id : 0;
      const dp = ported ? pkt.dstPort ?? 0 : echo ? id : 0;
      // ICMP other than echo is not tracked: every such packet is judged by policy.
      const tracked = !(isIcmp && !echo);
      const want = evaluate(pkt, graph.resources).action;
      const gk = `${pkt.endpoint}|${pkt.direction}`;
      if (!groups.has(gk)) groups.set(gk, []);
      groups.get(gk)!.push({ s, p, pkt, frame, flow: tracked ? flowKey(src, dst, pkt.protocol, sp, dp) : '', want });
    }

    for (const [gk, batch] of groups) {
      const [epKey, dir] = gk.split('|');
      const ep = eps.get(epKey)!;
      h.setEndpoint(ep.ipNetworks, tables.get(ep.tables.ingress)!, tables.get(ep.tables.egress)!);
      h.clearConntrack();
      const prog = dir === 'egress' ? h.dp.fromWep : h.dp.toWep;
      const res = prog.testRunBatch(batch.map((c) => c.frame));
      const open = new Set<string>();
      batch.forEach((c, i) => {
        cases++;
        const established = c.flow !== '' && open.has(c.flow);
        const expectPass = established || c.want === 'allow';
        const pass = res.retvals[i] === TC_ACT_OK;
        if (established) outcome.established++; else outcome[c.want]++;
        if (c.pkt.remoteIP.includes(':')) outcome.v6++;
        if (pass && c.flow !== '') open.add(c.flow);
        if (ONLY) t.comment(JSON.stringify({ packet: c.pkt, want: c.want, established, retval: res.retvals[i] }));
        if (pass !== expectPass) {
          failures++;
          if (failures <= 5) {
            t.fail(`case ${c.s}:${c.p} differs (replay: TORTIE_DP_SEED=${SEED} TORTIE_DP_FAMILY=${fam} TORTIE_DP_CASE=${c.s}:${c.p})`,
              { packet: c.pkt, reference: c.want, established, bpf: res.retvals[i] });
          }
        }
      });
    }
  }
  t.equal(failures, 0, `${cases} cases, ${failures} disagreements`);
  t.comment(`outcomes ${JSON.stringify(outcome)}; ${skippedNoFamily} packets skipped (endpoint without an address of the family); ${Date.now() - started} ms`);
  if (!ONLY) {
    t.ok(outcome.allow >= cases * 0.05 && outcome.deny >= cases * 0.05, 'both verdicts well represented');
    if (fam === 4) t.ok(cases >= 100_000 || SCENARIOS < 500, `at least 100,000 packets (${cases})`);
    else t.ok(outcome.v6 >= cases * 0.3, `IPv6 frames well represented (${outcome.v6} of ${cases})`);
  }
});
