/**
 * Test helpers for tortiectl: run `main()` in-process with captured output and a private
 * embedded store, or spawn the real bin/tortiectl.js.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { main } from '../../../src/cli/tortiectl';
import { SEED_POOL_YAML } from '../../../src/lab/lab';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..');
export const TORTIECTL = path.join(REPO_ROOT, 'bin', 'tortiectl.js');

export class Cli {
  readonly dir: string;
  readonly storeDir: string;
  env: NodeJS.ProcessEnv;

  constructor(prefix = 'tortiectl-test-') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.storeDir = path.join(this.dir, 'store');
    this.env = { PATH: process.env.PATH, TORTIE_STORE_DIR: this.storeDir };
  }

  /** Runs main() in-process; `stdin` is what `-f -` reads. */
  async run(args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
    let stdout = '';
    let stderr = '';
    const code = await main(args, {
      stdout: { write: (s: string) => { stdout += s; return true; } },
      stderr: { write: (s: string) => { stderr += s; return true; } },
      stdin: Readable.from([opts.stdin ?? '']),
      env: opts.env ?? this.env,
      cwd: opts.cwd ?? this.dir,
      hostname: 'testhost',
    });
    return { code, stdout, stderr };
  }

  /** Spawns the real launcher, as a user's shell would. */
  spawn(args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
    return runCaptured(process.execPath, [TORTIECTL, ...args], { cwd: this.dir, env: opts.env ?? this.env }, opts.stdin ?? '');
  }

  file(name: string, text: string): string {
    const p = path.join(this.dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
    return p;
  }

  read(name: string): string {
    return fs.readFileSync(path.join(this.dir, name), 'utf8');
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs a command to its end, capturing its output; `stdin` is written to it (else it gets none). */
export function runCaptured(cmd: string, args: string[], opts: SpawnOptions, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A Cli torn down when the tap test ends. */
export function cliFor(t: { teardown(fn: () => void): void }, prefix?: string): Cli {
  const c = new Cli(prefix);
  t.teardown(() => c.cleanup());
  return c;
}

/** The docs' seed pool: v1 ipPool, IPIP cross-subnet, NAT outgoing (the lab applies the same). */
export const V1_POOL = SEED_POOL_YAML;
