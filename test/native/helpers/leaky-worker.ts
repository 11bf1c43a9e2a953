// Worker body for 11-cleanup: opens native handles of every kind, never closes them, reports
// ready and waits to be terminated. The addon's env cleanup hooks must close everything.
import { parentPort, workerData } from 'node:worker_threads';
import { BpfMap, BpfObject, RingBuffer } from '../../../src/dataplane/native';

async function main(): Promise<void> {
  const { obj: objPath, pinRoot } = workerData as { obj: string; pinRoot: string };
  const m = BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 4, maxEntries: 4, name: 'tt_leak' });
  m.update(Buffer.alloc(4), Buffer.alloc(4));
  const obj = BpfObject.open(objPath, { pinRoot });
  obj.setConstant('tn_events_on', true);
  await obj.load();
  const prog = obj.program('tn_tc');
  const events = obj.map('tn_events');
  let got = 0;
  RingBuffer.open(events, () => { got++; });
  prog.testRunBatch([Buffer.alloc(64)]);
  const unloaded = BpfObject.open(objPath, { pinRoot }); // opened, never loaded
  void unloaded;
  const wait = Date.now() + 2000;
  while (got === 0 && Date.now() < wait) await new Promise((r) => setTimeout(r, 5));
  parentPort?.postMessage({ ready: true, got, mapId: m.info.id });
  setInterval(() => undefined, 1000); // stay alive until terminated
}

main().catch((e: unknown) => parentPort?.postMessage({ error: String(e) }));
