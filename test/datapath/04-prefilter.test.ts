// Uplink XDP prefilter: deny-listed CIDRs and doNotTrack deny rules dropped before an skb
// exists, matched on source (and destination, for operator deny-list entries); everything else
// passes, including non-IP frames; malformed IPv4 is dropped with its reason.
import t from 'tap';
import { loadPrefilter } from '../../src/dataplane/bpf/loader';
import { encodePrefilter, prefix4 } from '../../src/dataplane/bpf/encode';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { pf4KeyCodec, pfValueCodec, PF_DST, PF_FIXED_BITS, PF_KIND_DENYLIST } from '../../src/dataplane/bpf/codecs';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { flowPacket, eth, ipv4, tcp, truncate, PROTO, ETH_P } from '../../src/dataplane/bpf/packet';
import { XdpAction } from '../../src/dataplane/native';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';

t.test('XDP prefilter', async (t) => {
  const pinRoot = uniquePinRoot('prefilter');
  const dp = await loadPrefilter({ pinRoot });
  t.teardown(() => { dp.close(); removePinRoot(pinRoot); });

  const entries = encodePrefilter({
    deny: [{ family: 4, cidr: '198.18.66.0/24', ruleId: 501 }, { family: 6, cidr: 'fd00::/8', ruleId: 502 }],
    skipped: [],
  }, ['198.19.0.0/16']);
  t.equal(entries.length, 2, 'IPv6 entries are not written to the IPv4 map');
  for (const e of entries) dp.pf4.update(e.key, e.value);
  // A destination-side operator entry.
  const d = prefix4('198.18.99.7/32');
  dp.pf4.update(pf4KeyCodec.encode({ prefixlen: PF_FIXED_BITS + d.len, side: PF_DST, addr: d.addr }),
    pfValueCodec.encode({ kind: PF_KIND_DENYLIST, rule: 0 }));

  const run = (pkt: Buffer): { action: number; reason: number } => {
    const count = () => readCounters(dp.cnt).filter((r) => r.dir === Dir.UPLINK);
    const before = count();
    const r = dp.prog.testRun(pkt);
    const moved = count().filter((a) => a.packets !== (before.find((b) => b.reason === a.reason && b.ifindex === a.ifindex)?.packets ?? 0n));
    t.equal(moved.length, 1, 'one counter moved');
    return { action: r.retval, reason: moved[0]?.reason ?? NaN };
  };
  const pkt = (src: string, dst: string) => flowPacket({ src, dst, proto: PROTO.TCP, sport: 1234, dport: 443 });

  t.same(run(pkt('198.18.66.9', '198.18.0.10')), { action: XdpAction.DROP, reason: R.DNT_DENY }, 'doNotTrack deny source');
  t.same(run(pkt('198.19.3.3', '198.18.0.10')), { action: XdpAction.DROP, reason: R.PREFILTER }, 'deny-listed source');
  t.same(run(pkt('198.18.0.10', '198.18.99.7')), { action: XdpAction.DROP, reason: R.PREFILTER }, 'deny-listed destination');
  t.same(run(pkt('198.18.67.1', '198.18.0.10')), { action: XdpAction.PASS, reason: R.FORWARD }, 'neighbour prefix passes');
  t.same(run(pkt('198.18.0.10', '198.18.66.9')), { action: XdpAction.PASS, reason: R.FORWARD }, 'doNotTrack source CIDR does not match destinations');
  const tagged = eth({ vlans: [10] }, ipv4({ src: '198.18.66.9', dst: '198.18.0.10', proto: PROTO.TCP }, tcp({ sport: 1, dport: 2 })));
  t.same(run(tagged), { action: XdpAction.DROP, reason: R.DNT_DENY }, 'a VLAN tag does not hide the source');
  const qinq = eth({ vlans: [10, 20] }, ipv4({ src: '198.19.0.1', dst: '198.18.0.10', proto: PROTO.UDP }, Buffer.alloc(8)));
  t.same(run(qinq), { action: XdpAction.DROP, reason: R.PREFILTER }, 'nor do two');
  const frag = eth({}, ipv4({ src: '198.18.66.9', dst: '198.18.0.10', proto: PROTO.UDP, fragOffset: 100 }, Buffer.alloc(40)));
  t.same(run(frag), { action: XdpAction.DROP, reason: R.DNT_DENY }, 'later fragments are matched on addresses too');
  t.same(run(eth({ ethertype: ETH_P.ARP }, Buffer.alloc(28))), { action: XdpAction.PASS, reason: R.FORWARD }, 'ARP passes');
  t.same(run(eth({ ethertype: ETH_P.IPV6 }, Buffer.alloc(40))), { action: XdpAction.PASS, reason: R.FORWARD }, 'IPv6 passes (not filtered yet)');
  // Parser edge cases reachable through XDP (the skb test run refuses these frames).
  const good = pkt('198.18.1.1', '198.18.0.10');
  t.same(run(truncate(good, 14 + 10)), { action: XdpAction.DROP, reason: R.TRUNC_IP }, 'short IPv4 header');
  t.same(run(truncate(eth({ vlans: [10] }, Buffer.alloc(0)), 16)), { action: XdpAction.DROP, reason: R.TRUNC_ETH }, 'cut VLAN tag');
  t.same(run(truncate(good, 14)), { action: XdpAction.DROP, reason: R.TRUNC_IP }, 'Ethernet header only');
});
