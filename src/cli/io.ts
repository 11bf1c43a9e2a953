/**
 * The CLI's view of the outside world, injectable so tests can run `main()` in-process:
 * output streams, stdin, environment, working directory and a few host facts.
 *
 * Contract: no CLI module touches `process.stdout`, `process.stderr`, `process.stdin`,
 * `process.env` or `process.exit` directly; everything goes through a `CliIO`.
 */
import * as os from 'node:os';
import type { Readable } from 'node:stream';
import { TortieError, type TortieErrorOptions } from '../util/errors';

export interface OutStream {
  write(chunk: string): unknown;
}

export interface CliIO {
  stdout: OutStream;
  stderr: OutStream;
  /** Read when a command is given `-f -`. */
  stdin: Readable;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Host name, the default node name (as calicoctl). */
  hostname: string;
}

export function processIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    hostname: os.hostname(),
  };
}

/** Reads a whole stream as UTF-8 text. */
export async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * An error that ends a command: its message is printed on stderr as is (calicoctl prints its
 * errors the same way, one message, exit status 1).
 */
export class CliError extends TortieError {
  readonly exitCode: number;
  constructor(message: string, code = 'ERR_CLI_FAILED', exitCode = 1, opts: TortieErrorOptions = {}) {
    super(code, message, opts);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A command line calicoctl would reject (unknown verb, flag, missing argument). */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 'ERR_CLI_USAGE');
    this.name = 'UsageError';
  }
}
