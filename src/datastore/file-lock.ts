/**
 * Inter-process writer lock for the embedded store: a lock file created with O_EXCL that holds
 * "<pid> <starttime>" of its owner (starttime = field 22 of /proc/<pid>/stat, so a recycled pid
 * is not mistaken for the owner).
 *
 * Contract:
 * - `acquire()` resolves once this process holds the lock; it waits (polling with a short,
 *   growing sleep) while a live process holds it, and throws UnavailableError after `timeoutMs`.
 * - A lock whose owner is dead is stale and is removed. Removal is itself guarded by a second
 *   O_EXCL file (`<lock>.break`) and re-checks the owner under it, so two processes breaking the
 *   same stale lock cannot remove each other's fresh lock. The break guard is held for
 *   microseconds; one left behind by a process killed inside that window is removed after
 *   `breakStaleMs` (the only residual race: two breakers both judging that guard stale at once).
 * - Several FileLocks on one path in one process exclude each other like separate processes
 *   (the owner tag is shared, so this process's held paths are tracked to tell them apart).
 */
import * as fs from 'node:fs';
import { UnavailableError } from './errors';

function readStartTime(pid: number | 'self'): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and ')' — fields after the last ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19]; // field 22 overall: starttime
  } catch {
    return undefined;
  }
}

const OWN_START = readStartTime('self') ?? '0';

/**
 * Lock paths held by this process. Several store instances in one process (an agent and its
 * IPAM client, tests) share the owner tag, so "owned by this pid" alone does not mean stale.
 */
const heldHere = new Set<string>();

function isAlive(pid: number, startTime: string, path: string): boolean {
  if (pid === process.pid && startTime === OWN_START) return heldHere.has(path); // another instance here, or our own leftover
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const actual = readStartTime(pid);
  return actual === undefined ? true : actual === startTime;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class FileLock {
  private held = false;
  readonly ownerTag = `${process.pid} ${OWN_START}\n`;
  constructor(
    readonly path: string,
    private readonly opts: { timeoutMs?: number; breakStaleMs?: number } = {},
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  /** One non-blocking attempt; true when the lock is now ours. */
  tryAcquire(): boolean {
    let fd: number;
    try {
      fd = fs.openSync(this.path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      this.breakIfStale();
      return false;
    }
    try {
      fs.writeSync(fd, this.ownerTag);
    } finally {
      fs.closeSync(fd);
    }
    this.held = true;
    heldHere.add(this.path);
    return true;
  }

  async acquire(): Promise<void> {
    const deadline = Date.now() + (this.opts.timeoutMs ?? 10_000);
    let wait = 1;
    for (;;) {
      if (this.tryAcquire()) return;
      if (Date.now() > deadline) {
        throw new UnavailableError(`timed out waiting for the store lock ${this.path} (held by ${this.describeOwner()})`);
      }
      await sleep(wait + Math.random() * wait);
      wait = Math.min(wait * 2, 8);
    }
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    heldHere.delete(this.path);
    try {
      fs.unlinkSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  private describeOwner(): string {
    try {
      return `pid ${fs.readFileSync(this.path, 'utf8').trim().split(' ')[0] || '?'}`;
    } catch {
      return 'nobody';
    }
  }

  /** Reads the lock's owner; undefined when the file vanished, '' while it is being written. */
  private readOwner(): { tag: string; mtimeMs: number } | undefined {
    try {
      const tag = fs.readFileSync(this.path, 'utf8');
      const { mtimeMs } = fs.statSync(this.path);
      return { tag, mtimeMs };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  private isStale(owner: { tag: string; mtimeMs: number }): boolean {
    const m = /^(\d+) (\d+)\n$/.exec(owner.tag);
    // Empty or partial content: the owner is between creating and writing the file, or died there.
    if (!m) return Date.now() - owner.mtimeMs > (this.opts.breakStaleMs ?? 2_000);
    return !isAlive(Number(m[1]), m[2], this.path);
  }

  private breakIfStale(): void {
    const owner = this.readOwner();
    if (!owner || !this.isStale(owner)) return;
    const guard = `${this.path}.break`;
    let fd: number;
    try {
      fd = fs.openSync(guard, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - fs.statSync(guard).mtimeMs > (this.opts.breakStaleMs ?? 2_000)) fs.unlinkSync(guard);
      } catch {
        /* someone else removed it */
      }
      return;
    }
    fs.closeSync(fd);
    try {
      const again = this.readOwner();
      if (again && again.tag === owner.tag && this.isStale(again)) fs.unlinkSync(this.path);
    } finally {
      fs.unlinkSync(guard);
    }
  }
}
