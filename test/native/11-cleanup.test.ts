// Native handles are tracked: when an env goes away (here a worker thread, which shares this
// process's fd table) the addon's cleanup hooks close every BPF fd, ring buffer thread and
// object it created, without crashing. Also: a missing addon build gives a clear error.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { OBJ, requireRoot, tempPinRoot } from './helpers/env';

requireRoot(t);

/** Open fds of this process that refer to BPF objects, epoll instances or eventfds. */
function bpfFds(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const l = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (/anon_inode:(bpf|\[eventpoll\]|\[eventfd\])/.test(l)) out.push(`${fd}:${l}`);
    } catch { /* closed meanwhile */ }
  }
  return out.sort();
}

t.test('terminating a worker closes everything it opened', async (t) => {
  const pinRoot = tempPinRoot(t, 'leak');
  const before = bpfFds();
  const w = new Worker(path.join(__dirname, 'helpers', 'leaky-worker.js'), { workerData: { obj: OBJ, pinRoot } });
  const msg = await new Promise<{ ready?: boolean; got?: number; error?: string }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  t.equal(msg.error, undefined, 'worker set up its handles');
  t.ok((msg.got ?? 0) >= 1, 'its ring buffer was delivering');
  const during = bpfFds();
  t.ok(during.length >= before.length + 8, `worker holds BPF fds (${during.length - before.length} more)`);
  const code = await w.terminate();
  t.equal(code, 1, 'terminated');
  t.same(bpfFds(), before, 'every BPF fd, epoll and eventfd the worker opened is closed');
});

t.test('a process that exits with open handles exits cleanly', async (t) => {
  const pinRoot = tempPinRoot(t, 'exit');
  const script = `
    const n = require(${JSON.stringify(path.resolve(__dirname, '../../src/dataplane/native'))});
    (async () => {
      const o = n.BpfObject.open(${JSON.stringify(OBJ)}, { pinRoot: ${JSON.stringify(pinRoot)} });
      o.setConstant('tn_events_on', true);
      await o.load();
      const rb = n.RingBuffer.open(o.map('tn_events'), () => {});
      o.program('tn_xdp').testRunBatch([Buffer.alloc(64)]);
      n.BpfMap.create({ type: 'HASH', keySize: 4, valueSize: 4, maxEntries: 1 });
      rb.unref();
      setTimeout(() => process.exit(0), 50);
    })().catch((e) => { console.error(e); process.exit(3); });`;
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  t.equal(out, '', 'exit code 0, nothing printed');
});

t.test('a missing addon build is a clear BpfError', async (t) => {
  const script = `
    const n = require(${JSON.stringify(path.resolve(__dirname, '../../src/dataplane/native'))});
    try { n.possibleCpus(); } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, errno: e.errnoName, msg: e.message })); }`;
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, TORTIE_NATIVE_ADDON: '/nonexistent/tortie_native.node' } });
  const e = JSON.parse(out) as { name: string; code: string; errno: string; msg: string };
  t.equal(e.name, 'BpfError');
  t.equal(e.code, 'ERR_BPF_ADDON_MISSING');
  t.equal(e.errno, 'ENOENT');
  t.match(e.msg, /\/nonexistent\/tortie_native\.node is not built; run `npm run build`/);
});
