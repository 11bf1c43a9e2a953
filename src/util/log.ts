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

/** The agent's root logger: the screen and an optional file, each with its own level (Felix's LogSeverityScreen/File). */
export function createAgentLogger(o: AgentLogOptions): Logger {
  const screenDest = loadPino().destination({ dest: 2, sync: true });
  const screen = o.screen.format === 'text'
    ? { write: (line: string) => { screenDest.write(formatTextLine(line)); } }
    : screenDest;
  const streams: pino.StreamEntry[] = [];
  if (o.screen.level !== 'silent') streams.push({ level: o.screen.level as pino.Level, stream: screen });
  if (o.file && o.file.level !== 'silent') {
    mkdirSync(dirname(o.file.path), { recursive: true });
    streams.push({ level: o.file.level as pino.Level, stream: loadPino().destination({ dest: o.file.path, sync: true, append: true }) });
  }
  const levels = [o.screen.level, ...(o.file ? [o.file.level] : [])];
  const lowest = levels.reduce((a, b) => ((LEVEL_VALUES[a] ?? 30) <= (LEVEL_VALUES[b] ?? 30) ? a : b));
  if (streams.length === 0) return loadPino()({ level: 'silent' });
  return loadPino()({ level: lowest, name: o.name, base: { pid: process.pid } }, loadPino().multistream(streams));
}

/** Flow logs in their own stream: a file of JSON lines, or stdout for '-'. */
export function createFlowLogger(path: string): Logger {
  if (path !== '-') mkdirSync(dirname(path), { recursive: true });
  const dest = loadPino().destination({ dest: path === '-' ? 1 : path, sync: true, append: true });
  return loadPino()({ level: 'info', name: 'tortie-flows', base: { pid: process.pid } }, dest);
}
