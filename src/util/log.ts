/**
 * Logging: one pino root logger per process, child loggers with bound context per component.
 * Library code receives a Logger; only entry points (src/node, src/cli, src/cni) create roots.
 * pino is loaded on first use, not on import: short-lived processes (the CNI plugins, started
 * for every container) that log nothing at their level never load it (lazyLogger).
 */
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
