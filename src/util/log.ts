/**
 * Logging: one pino root logger per process, child loggers with bound context per component.
 * Library code receives a Logger; only entry points (src/node, src/cli, src/cni) create roots.
 */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(opts: { level?: string; name?: string; destination?: number | string } = {}): Logger {
  const dest = pino.destination({ dest: opts.destination ?? 2, sync: true });
  return pino({ level: opts.level ?? 'info', name: opts.name, base: { pid: process.pid } }, dest);
}

/** A logger that discards everything (tests and library defaults). */
export const silentLogger: Logger = pino({ level: 'silent' });
