/**
 * Interface programming: tc (clsact ingress/egress filters) and XDP attach/detach/query, and
 * ifname -> ifindex. Every call takes `netns`, the path of a network namespace
 * (`/run/netns/<name>` or `/proc/<pid>/ns/net`): the addon enters it for the duration of the
 * call on the calling thread and always returns to its own namespace, so a process in the root
 * namespace can program a test namespace's interfaces without touching its own. Without
 * `netns` the call acts on the caller's namespace.
 *
 * tc filters are identified by (ifindex, direction, handle, priority); tortie uses fixed values so
 * that after a restart it can query what is attached where.
 */
import { native } from './addon';
import { invalidOption } from './errors';
import { BpfProgram } from './program';
import { checkAbsPath, checkBool, checkInt, checkOneOf, checkString } from './validate';

export type TcDirection = 'ingress' | 'egress';
export type XdpMode = 'native' | 'generic' | 'offload' | 'auto';

export interface IfaceRef {
  /** Interface name (resolved inside `netns`) or ifindex. */
  iface: string | number;
  /** Network namespace path; omitted = the caller's namespace. */
  netns?: string;
}

export interface TcFilterRef extends IfaceRef {
  direction: TcDirection;
  /** Filter handle (default 1). */
  handle?: number;
  /** Filter priority (default 1). */
  priority?: number;
}

export interface TcAttachOptions extends TcFilterRef {
  program: BpfProgram | number;
  /** Replace a filter already at (handle, priority) instead of failing with EEXIST. */
  replace?: boolean;
}

export interface TcFilter {
  ifindex: number;
  direction: TcDirection;
  handle: number;
  priority: number;
  /** Id of the attached program (compare with BpfProgram.id). */
  progId: number;
}

export interface XdpAttachOptions extends IfaceRef {
  program: BpfProgram | number;
  /** native (driver), generic (skb), offload or auto; default native. */
  mode?: XdpMode;
  /** Replace whatever is attached in that mode (default false: fail if one is). */
  replace?: boolean;
  /** Atomically replace only if this program is the one attached. */
  expected?: BpfProgram | number;
}

export interface XdpStatus {
  ifindex: number;
  attachMode: 'none' | 'native' | 'generic' | 'offload' | 'multi';
  /** The single attached program's id (0 if none or several). */
  progId: number;
  nativeProgId: number;
  genericProgId: number;
  offloadProgId: number;
}

function ns(netns: string | undefined): string | null {
  return netns === undefined ? null : checkAbsPath('netns', netns);
}

function iface(v: unknown): string | number {
  if (typeof v === 'number') return checkInt('iface', v, 1, 0x7fffffff);
  const s = checkString('iface', v);
  if (s.length > 15) throw invalidOption('iface', `name ${JSON.stringify(s)} is longer than 15 characters`);
  return s;
}

function progFd(what: string, p: unknown): number {
  if (p instanceof BpfProgram) return p.fd;
  return checkInt(what, p, 0, 0x7fffffff);
}

function tcIds(o: TcFilterRef, defaults: boolean): [TcDirection, number, number] {
  const dir = checkOneOf('direction', o.direction, ['ingress', 'egress'] as const);
  const handle = checkInt('handle', o.handle ?? (defaults ? 1 : undefined), 1, 0xffffffff);
  const priority = checkInt('priority', o.priority ?? (defaults ? 1 : undefined), 1, 0xffff);
  return [dir, handle, priority];
}

/** ifindex of `name` inside `netns` (BpfError ENODEV if absent). */
export function ifindex(name: string, opts: { netns?: string } = {}): number {
  return native().ifindex(ns(opts.netns), checkString('interface name', name));
}

/** Attaches to clsact ingress/egress, creating the clsact qdisc if needed. */
export function tcAttach(o: TcAttachOptions): TcFilter {
  const [direction, handle, priority] = tcIds(o, true);
  const r = native().tcAttach(ns(o.netns), iface(o.iface), direction, progFd('program', o.program), handle, priority,
    checkBool('replace', o.replace ?? false));
  return { ifindex: r.ifindex, direction, handle: r.handle, priority: r.priority, progId: r.progId };
}

/** Removes the filter at (direction, handle, priority); BpfError ENOENT if none. */
export function tcDetach(o: TcFilterRef): void {
  const [direction, handle, priority] = tcIds(o, true);
  native().tcDetach(ns(o.netns), iface(o.iface), direction, handle, priority);
}

/** The filter at (direction, handle, priority), or undefined if none (or no clsact qdisc). */
export function tcQuery(o: TcFilterRef): TcFilter | undefined {
  const [direction, handle, priority] = tcIds(o, true);
  const r = native().tcQuery(ns(o.netns), iface(o.iface), direction, handle, priority);
  return r ? { ifindex: r.ifindex, direction, handle: r.handle, priority: r.priority, progId: r.progId } : undefined;
}

/** Removes the clsact qdisc and every tc filter on it; false if there was none. */
export function tcDestroyHook(o: IfaceRef): boolean {
  return native().tcHookDestroy(ns(o.netns), iface(o.iface));
}

export function xdpAttach(o: XdpAttachOptions): { ifindex: number } {
  const mode = checkOneOf('mode', o.mode ?? 'native', ['native', 'generic', 'offload', 'auto'] as const);
  const expected = o.expected === undefined ? -1 : progFd('expected', o.expected);
  return native().xdpAttach(ns(o.netns), iface(o.iface), progFd('program', o.program), mode,
    checkBool('replace', o.replace ?? false), expected);
}

/** Detaches the program of `mode`; detaching where nothing is attached is not an error. */
export function xdpDetach(o: IfaceRef & { mode?: XdpMode }): void {
  const mode = checkOneOf('mode', o.mode ?? 'native', ['native', 'generic', 'offload', 'auto'] as const);
  native().xdpDetach(ns(o.netns), iface(o.iface), mode);
}

export function xdpQuery(o: IfaceRef): XdpStatus {
  const r = native().xdpQuery(ns(o.netns), iface(o.iface));
  return { ...r, attachMode: r.attachMode as XdpStatus['attachMode'] };
}
