/**
 * Logging: one pino root logger per process, child loggers with bound context per component.
 * Library code receives a Logger; only entry points (src/node, src/cli, src/cni) create roots.
 * pino is loaded on first use, not on import: short-lived processes (the CNI plugins, started
 * for every container) that log nothing at their level never load it (lazyLogger).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type pino from 'pino';

export type Logger = pino.Logger;

let pinoModule: typeof pino | undefined;
function loadPino(): typeof pino {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (pinoModule ??= require('pino') as typeof pino);
}

export function createLogger(opts: { level?: string; name?: string; destination?: number | string } = {}): Logger {
  const p = loadPino();
  const dest = p.destination({ dest: opts.destination ?? 2, sync: true });
  return p({ level: opts.level ?? 'info', name: opts.name, base: { pid: process.pid } }, dest);
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const noop = (): void => undefined;

/**
 * A Logger that builds the real one (`make`) only when something at or above `level` is logged
 * or a property other than the level methods, `child`, `level` and `isLevelEnabled` is used.
 */
export function lazyLogger(make: () => Logger, level: string): Logger {
  const threshold = level === 'silent' ? Infinity : (LEVELS[level] ?? LEVELS.info!);
  let real: Logger | undefined;
  const get = (): Logger => (real ??= make());
  return new Proxy({} as Logger, {
    get(_t, prop) {
      if (typeof prop === 'string' && prop in LEVELS) {
        if (real === undefined && LEVELS[prop]! < threshold) return noop;
        const l = get();
        return (l[prop as keyof Logger] as (...a: unknown[]) => void).bind(l);
      }
      if (prop === 'child' && real === undefined) {
        return (bindings: pino.Bindings, o?: pino.ChildLoggerOptions) => lazyLogger(() => get().child(bindings, o), level);
      }
      if (prop === 'level' && real === undefined) return level;
      if (prop === 'isLevelEnabled' && real === undefined) return (l: string) => (LEVELS[l] ?? Infinity) >= threshold;
      const l = get();
      const v = (l as unknown as Record<string | symbol, unknown>)[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(l) : v;
    },
  });
}

/** A logger that discards everything (tests and library defaults). */
export const silentLogger: Logger = lazyLogger(() => loadPino()({ level: 'silent' }), 'silent');

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'FATAL' };
const RESERVED = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'component']);

/** One pino JSON line as a Felix-like text line: `<time> [LEVEL][pid] <component>: <msg> k=v …`. */
export function formatTextLine(json: string): string {
  let o: Record<string, unknown>;
  try { o = JSON.parse(json) as Record<string, unknown>; } catch { return json; }
  const time = new Date(typeof o.time === 'number' ? o.time : Date.now()).toISOString().replace('T', ' ').replace('Z', '');
  const level = LEVEL_NAMES[o.level as number] ?? String(o.level);
  const where = typeof o.component === 'string' ? `${o.component}: ` : typeof o.name === 'string' ? `${o.name}: ` : '';
  const fields = Object.entries(o).filter(([k]) => !RESERVED.has(k)).map(([k, v]) => {
    if (k === 'err' && v && typeof v === 'object' && 'message' in v) return `error=${JSON.stringify((v as { message: unknown }).message)}`;
    return `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`;
  });
  return `${time} [${level}][${String(o.pid ?? process.pid)}] ${where}${String(o.msg ?? '')}${fields.length ? ' ' + fields.join(' ') : ''}\n`;
}

export interface AgentLogOptions {
  name: string;
  /** stderr: level and format (JSON lines, or text for people reading a terminal or journal). */
  screen: { level: string; format: 'json' | 'text' };
  /** A log file (JSON lines), appended to. */
  file?: { path: string; level: string };
}

const LEVEL_VALUES: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** The level gates of an agent logger's streams (screen, file), changed by setAgentLogLevels. */
const GATES = new WeakMap<Logger, { screen: { level: number }; file?: { level: number } }>();

/** A stream that passes lines at or above gate.level: multistream tells it each line's level (pino's metadata protocol). */
function gated(inner: { write(line: string): unknown }, gate: { level: number }): pino.DestinationStream {
  const s = {
    [Symbol.for('pino.metadata')]: true,
    lastLevel: 0,
    write(line: string) { if (s.lastLevel >= gate.level) inner.write(line); },
  };
  return s as unknown as pino.DestinationStream;
}

/**
 * The agent's root logger: the screen and an optional file, each with its own level (Felix's
 * LogSeverityScreen/File). The levels are gates on the streams, so setAgentLogLevels changes them
 * for every child logger at once (a child's own level is fixed at creation): the loggers log at
 * debug (or trace when asked) and the gates drop what is below each stream's level.
 */
export function createAgentLogger(o: AgentLogOptions): Logger {
  const screenDest = loadPino().destination({ dest: 2, sync: true });
  const screen = o.screen.format === 'text'
    ? { write: (line: string) => { screenDest.write(formatTextLine(line)); } }
    : screenDest;
  const gates: { screen: { level: number }; file?: { level: number } } = { screen: { level: LEVEL_VALUES[o.screen.level] ?? 30 } };
  const streams: pino.StreamEntry[] = [{ level: 'trace', stream: gated(screen, gates.screen) }];
  if (o.file) {
    mkdirSync(dirname(o.file.path), { recursive: true });
    gates.file = { level: LEVEL_VALUES[o.file.level] ?? 30 };
    streams.push({ level: 'trace', stream: gated(loadPino().destination({ dest: o.file.path, sync: true, append: true }), gates.file) });
  }
  const trace = o.screen.level === 'trace' || o.file?.level === 'trace';
  const log = loadPino()({ level: trace ? 'trace' : 'debug', name: o.name, base: { pid: process.pid } }, loadPino().multistream(streams));
  GATES.set(log, gates);
  return log;
}

/**
 * Changes the screen (and file) level of a running logger: the gates of an agent logger, else
 * the logger's own level. Returns false when a level cannot take effect without a new logger
 * (trace on an agent logger made at debug, or a file it was made without).
 */
export function setAgentLogLevels(log: Logger, screen: string, file?: string): boolean {
  const g = GATES.get(log);
  if (!g) {
    log.level = screen;
    return true;
  }
  let ok = true;
  g.screen.level = LEVEL_VALUES[screen] ?? 30;
  if (file !== undefined) {
    if (g.file) g.file.level = LEVEL_VALUES[file] ?? 30;
    else if (file !== 'silent') ok = false;
  }
  if ((screen === 'trace' || file === 'trace') && log.level !== 'trace') ok = false;
  return ok;
}

/** Flow logs in their own stream: a file of JSON lines, or stdout for '-'. */
export function createFlowLogger(path: string): Logger {
  if (path !== '-') mkdirSync(dirname(path), { recursive: true });
  const dest = loadPino().destination({ dest: path === '-' ? 1 : path, sync: true, append: true });
  return loadPino()({ level: 'info', name: 'tortie-flows', base: { pid: process.pid } }, dest);
}
