/**
 * BpfProgram: a handle on one loaded BPF program through an fd this process owns (duplicated
 * from a BpfObject, opened from a pin, or by id). Runs BPF_PROG_TEST_RUN singly or batched:
 * testRunBatch pushes many packets through in one native call (10^5 small packets take well
 * under a second); testRunBatchAsync does the same off the event loop.
 */
import { native, type NativeBatchRun, type NativeProgInfo } from './addon';
import { invalidOption } from './errors';
import { FdHandle, adoptFd } from './handle';
import { U32_MAX, checkAbsPath, checkBuffer, checkInt } from './validate';

/** Program types (linux/bpf.h enum bpf_prog_type), the ones tortie meets. */
export const ProgType = { SOCKET_FILTER: 1, KPROBE: 2, SCHED_CLS: 3, SCHED_ACT: 4, TRACEPOINT: 5, XDP: 6 } as const;

/** Verdicts, for reading test-run results. */
export const XdpAction = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;
export const TcAction = { UNSPEC: -1, OK: 0, RECLASSIFY: 1, SHOT: 2, PIPE: 3, STOLEN: 4, QUEUED: 5, REPEAT: 6, REDIRECT: 7 } as const;

export type ProgInfo = NativeProgInfo;

export interface TestRunOptions {
  /** Runs of the same packet; duration is the average (default 1). */
  repeat?: number;
  /** Context in (struct __sk_buff / xdp_md bytes); the context out is returned. */
  ctx?: Buffer;
  /** Room for the output packet (default input length + 256). */
  dataOutSize?: number;
  /** Room for the output context (default ctx length). */
  ctxOutSize?: number;
  /** Run inside this network namespace (FIB lookups, ctx ifindex resolve there). */
  netns?: string;
}

export interface TestRunResult {
  /** The program's return value (XDP action / tc verdict). */
  retval: number;
  data: Buffer;
  ctx?: Buffer;
  /** Average ns per run as measured by the kernel. */
  durationNs: number;
}

export interface BatchRunOptions {
  repeat?: number;
  /** Return each output packet (costs a copy per packet; default false). */
  wantData?: boolean;
  /** Output room beyond each input packet (default 256). */
  outExtra?: number;
  /** Run inside this network namespace. */
  netns?: string;
}

export interface BatchRunResult {
  /** Verdict per packet. */
  retvals: Uint32Array;
  /** Average ns per run per packet. */
  durationsNs: Uint32Array;
  /** Output packets when wantData. */
  data?: Buffer[];
}

function batchArgs(packets: Buffer[], opts: BatchRunOptions): [Buffer, Uint32Array, number, boolean, number, string | null] {
  if (!Array.isArray(packets)) throw invalidOption('packets', 'must be an array of Buffers');
  const lengths = new Uint32Array(packets.length);
  packets.forEach((p, i) => {
    checkBuffer(`packets[${i}]`, p);
    lengths[i] = p.length;
  });
  return [Buffer.concat(packets), lengths, checkInt('repeat', opts.repeat ?? 1, 1, 1 << 30),
    opts.wantData ?? false, checkInt('outExtra', opts.outExtra ?? 256, 0, 1 << 16),
    opts.netns === undefined ? null : checkAbsPath('netns', opts.netns)];
}

function batchResult(r: NativeBatchRun): BatchRunResult {
  const out: BatchRunResult = { retvals: r.retvals, durationsNs: r.durations };
  if (r.data && r.dataLengths) {
    const data: Buffer[] = [];
    let off = 0;
    for (const len of r.dataLengths) { data.push(r.data.subarray(off, off + len)); off += len; }
    out.data = data;
  }
  return out;
}

export class BpfProgram extends FdHandle {
  readonly name: string;

  private constructor(fd: number, name?: string) {
    super(fd, 'ERR_BPF_PROG_CLOSED');
    this.name = name ?? native().progInfo(fd).name;
  }

  protected describe(): string { return `program ${this.name}`; }

  /** @internal used by BpfObject: takes ownership of an addon-owned fd. */
  static adopt(fd: number, name?: string): BpfProgram {
    return adoptFd(fd, (f) => new BpfProgram(f, name));
  }

  static openPinned(path: string): BpfProgram {
    return BpfProgram.adopt(native().objGet(checkAbsPath('pin path', path), 'prog'));
  }

  static fromId(id: number): BpfProgram {
    return BpfProgram.adopt(native().progFdById(checkInt('program id', id, 1, U32_MAX)));
  }

  /** Duplicates `fd` (which stays the caller's). */
  static fromFd(fd: number): BpfProgram {
    return BpfProgram.adopt(native().fdDup(checkInt('program fd', fd, 0, 0x7fffffff)));
  }

  info(): ProgInfo { return native().progInfo(this.fd); }
  get id(): number { return this.info().id; }

  testRun(data: Buffer, opts: TestRunOptions = {}): TestRunResult {
    checkBuffer('data', data);
    const repeat = checkInt('repeat', opts.repeat ?? 1, 1, 1 << 30);
    const outCap = checkInt('dataOutSize', opts.dataOutSize ?? data.length + 256, 0, 1 << 24);
    if (opts.ctx !== undefined) checkBuffer('ctx', opts.ctx);
    const ctxCap = checkInt('ctxOutSize', opts.ctxOutSize ?? opts.ctx?.length ?? 0, 0, 1 << 16);
    const netns = opts.netns === undefined ? null : checkAbsPath('netns', opts.netns);
    const r = native().progTestRun(this.fd, data, repeat, opts.ctx ?? null, outCap, ctxCap, netns);
    const res: TestRunResult = { retval: r.retval, data: r.data, durationNs: r.duration };
    if (r.ctx) res.ctx = r.ctx;
    return res;
  }

  /** Many packets, one native call, on the calling thread. */
  testRunBatch(packets: Buffer[], opts: BatchRunOptions = {}): BatchRunResult {
    return batchResult(native().progTestRunBatch(this.fd, ...batchArgs(packets, opts)));
  }

  /** Many packets, one native call, on a libuv worker thread. */
  async testRunBatchAsync(packets: Buffer[], opts: BatchRunOptions = {}): Promise<BatchRunResult> {
    return batchResult(await native().progTestRunBatchAsync(this.fd, ...batchArgs(packets, opts)));
  }

}
