// Under a flood the prefilter counts every drop but emits at most `prefilter_events_per_sec`
// flow events per CPU per second: events are a sample for flow logs, the counters the record.
import t from 'tap';
import { loadPrefilter } from '../../src/dataplane/bpf/loader';
import { encodePrefilter } from '../../src/dataplane/bpf/encode';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { Dir } from '../../src/dataplane/bpf/drop-reasons';
import { flowPacket, PROTO } from '../../src/dataplane/bpf/packet';
import { RingBuffer, XdpAction } from '../../src/dataplane/native';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';

t.test('prefilter drops are all counted, events are budgeted', async (t) => {
  const pinRoot = uniquePinRoot('pfbudget');
  const dp = await loadPrefilter({ pinRoot });
  t.teardown(() => { dp.close(); removePinRoot(pinRoot); });
  for (const e of encodePrefilter({ deny: [], skipped: [] }, ['198.19.0.0/16'])) dp.pf4.update(e.key, e.value);

  let events = 0;
  const rb = RingBuffer.open(dp.obj.map('tortie_evt_v1'), () => { events++; });
  t.teardown(() => rb.close());
  const r = dp.prog.testRun(flowPacket({ src: '198.19.3.3', dst: '198.18.0.10', proto: PROTO.TCP, sport: 1, dport: 443 }), { repeat: 1000 });
  t.equal(r.retval, XdpAction.DROP);
  const dropped = readCounters(dp.cnt).filter((c) => c.dir === Dir.UPLINK && c.reason < 0).reduce((s, c) => s + c.packets, 0n);
  t.equal(dropped, 1000n, 'every dropped packet counted');
  await new Promise((res) => setTimeout(res, 300));
  t.ok(events >= 1, `events delivered: ${events}`);
  t.ok(events <= 100, `at most the per-second budget of 100 events (got ${events})`);
});
