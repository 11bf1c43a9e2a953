/**
 * The one bpffs pin-root naming scheme for everything the testbed runs (tests, lab, benchmarks):
 * `/sys/fs/bpf/tortie-<label>-<pid>-<6 hex>` — unique per process and call, recognisable by the
 * test run's leak check (`/sys/fs/bpf/tortie*`), never the agent's production root
 * `/sys/fs/bpf/tortie`. Roots not removed by their owner are removed when the process exits
 * (also after SIGINT/SIGTERM, whose handlers in src/util/netns end the process with exit()).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

const BPFFS = '/sys/fs/bpf';
const ROOT_RE = /^\/sys\/fs\/bpf\/tortie-[a-z0-9-]{1,24}-\d+-[0-9a-f]{6}$/;
const live = new Set<string>();
let hooked = false;

/** A fresh pin root for `label` (created unless `create` is false: the agent makes its own). */
export function pinRoot(label: string, opts: { create?: boolean } = {}): string {
  const clean = label.toLowerCase().replace(/[^a-z0-9-]/g, '').slice(0, 24) || 't';
  const dir = `${BPFFS}/tortie-${clean}-${process.pid}-${randomBytes(3).toString('hex')}`;
  if (opts.create ?? true) mkdirSync(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => { for (const d of [...live]) removePinRoot(d); });
  }
  live.add(dir);
  return dir;
}

/** Removes a root made by pinRoot() with everything pinned under it; refuses any other path. */
export function removePinRoot(dir: string): void {
  if (!ROOT_RE.test(dir)) throw new Error(`refusing to remove ${dir}: not a testbed pin root`);
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
}
