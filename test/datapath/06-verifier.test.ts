// Verifier: every tortie program in every load-time variant passes the kernel verifier
// (events on/off, prefilter counting on/off, conntrack sizes and timeouts), and the uplink stub.
import t from 'tap';
import * as path from 'node:path';
import { loadWep, loadPrefilter, loadHep, defaultObjectDir } from '../../src/dataplane/bpf/loader';
import { BpfObject, ProgType } from '../../src/dataplane/native';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';

t.test('workload programs, all variants', async (t) => {
  for (const events of [true, false]) {
    for (const ctMaxEntries of [1024, 262144]) {
      const pinRoot = uniquePinRoot('verif');
      try {
        const dp = await loadWep({ pinRoot, events, ctMaxEntries, ctTimeouts: { synSec: 1, establishedSec: 7200, finSec: 1, rstSec: 1, udpSec: 1, icmpSec: 1, otherSec: 1 } });
        t.equal(dp.fromWep.info().type, ProgType.SCHED_CLS, `from_wep loads (events=${events}, ct=${ctMaxEntries})`);
        t.equal(dp.toWep.info().type, ProgType.SCHED_CLS, `to_wep loads (events=${events}, ct=${ctMaxEntries})`);
        t.equal(dp.maps.ct4!.info.maxEntries, ctMaxEntries);
        dp.close();
      } finally {
        removePinRoot(pinRoot);
      }
    }
  }
});

t.test('XDP prefilter, all variants', async (t) => {
  for (const events of [true, false]) {
    for (const countPassed of [true, false]) {
      const pinRoot = uniquePinRoot('verif');
      try {
        const dp = await loadPrefilter({ pinRoot, events, countPassed });
        t.equal(dp.prog.info().type, ProgType.XDP, `prefilter loads (events=${events}, countPassed=${countPassed})`);
        dp.close();
      } finally {
        removePinRoot(pinRoot);
      }
    }
  }
});

t.test('uplink tc stub', async (t) => {
  const pinRoot = uniquePinRoot('verif');
  const obj = BpfObject.open(path.join(defaultObjectDir(), 'tortie_uplink.bpf.o'), { pinRoot });
  try {
    await obj.load();
    t.equal(obj.program('tortie_uplink_in').info().type, ProgType.SCHED_CLS);
  } finally {
    obj.close();
    removePinRoot(pinRoot);
  }
});

t.test('host endpoint programs load and share their maps with the uplink object', async (t) => {
  const pinRoot = uniquePinRoot('verif');
  const up = BpfObject.open(path.join(defaultObjectDir(), 'tortie_uplink.bpf.o'), { pinRoot });
  try {
    const hep = await loadHep({ pinRoot });
    t.equal(hep.ingress.info().type, ProgType.SCHED_CLS);
    t.equal(hep.egress.info().type, ProgType.SCHED_CLS);
    await up.load();
    t.equal(up.map('tortie_hep_v1').info.id, hep.maps.hep.info.id, 'tortie_hep_v1 is one map');
    t.equal(up.map('tortie_fs4_v1').info.id, hep.maps.fs4.info.id, 'tortie_fs4_v1 is one map');
    hep.close();
  } finally {
    up.close();
    removePinRoot(pinRoot);
  }
});

t.test('map sizes are load-time options', async (t) => {
  const pinRoot = uniquePinRoot('verif');
  try {
    const dp = await loadWep({ pinRoot, mapSizes: { pol: 2_000_000, cls4: 4096 } });
    t.equal(dp.maps.pol!.info.maxEntries, 2_000_000);
    t.equal(dp.maps.cls4!.info.maxEntries, 4096);
    dp.close();
  } finally {
    removePinRoot(pinRoot);
  }
});

t.test('objects loaded under one pin root share their maps', async (t) => {
  const pinRoot = uniquePinRoot('verif');
  try {
    const a = await loadWep({ pinRoot });
    const b = await loadWep({ pinRoot });
    const pf = await loadPrefilter({ pinRoot });
    t.equal(a.maps.ep!.info.id, b.maps.ep!.info.id, 'second load reuses tortie_ep_v1');
    t.equal(a.maps.cnt!.info.id, pf.cnt.info.id, 'prefilter and workload programs share tortie_cnt_v1');
    a.close(); b.close(); pf.close();
  } finally {
    removePinRoot(pinRoot);
  }
});
