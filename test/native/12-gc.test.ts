// Objects and handles dropped without close() are freed by the garbage collector (the native
// finalizer closes the libbpf object and its fds) without disturbing live ones.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import t from 'tap';
import { OBJ, requireRoot, tempPinRoot } from './helpers/env';

requireRoot(t);

t.test('unreferenced BpfObjects are closed by GC', async (t) => {
  const pinRoot = tempPinRoot(t, 'gc');
  const script = `
    const fs = require('node:fs');
    const n = require(${JSON.stringify(path.resolve(__dirname, '../../src/dataplane/native'))});
    const bpfFds = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
      try { return /anon_inode:bpf/.test(fs.readlinkSync('/proc/self/fd/' + fd)); } catch { return false; }
    }).length;
    (async () => {
      const keep = n.BpfObject.open(${JSON.stringify(OBJ)}, { pinRoot: ${JSON.stringify(pinRoot)} });
      await keep.load();
      const base = bpfFds();
      // In a function of its own: a suspended async frame can keep its last loop value alive.
      // Held in an array until counted, then dropped.
      const makeGarbage = async () => {
        const held = [];
        for (let i = 0; i < 20; i++) {
          const o = n.BpfObject.open(${JSON.stringify(OBJ)}, { pinRoot: ${JSON.stringify(pinRoot)} });
          await o.load();
          held.push(o);
        }
        return bpfFds();
      };
      const mid = await makeGarbage();
      for (let i = 0; i < 20 && bpfFds() > base; i++) {
        global.gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      const after = bpfFds();
      const p = keep.program('tn_xdp');
      const alive = p.testRun(Buffer.alloc(64)).retval;
      console.log(JSON.stringify({ base, mid, after, alive }));
    })().catch((e) => { console.error(e); process.exit(3); });`;
  const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  const r = JSON.parse(out) as { base: number; mid: number; after: number; alive: number };
  t.ok(r.mid >= r.base + 20 * 5, `20 loaded objects hold fds (${r.mid - r.base})`);
  t.equal(r.after, r.base, 'all freed after GC');
  t.equal(r.alive, 2, 'the object still referenced keeps working (XDP_PASS)');
});
