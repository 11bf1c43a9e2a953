/** stdin/stdout plumbing shared by the two CNI entry points. */
import { CniError } from './errors';

/** All of stdin (empty when it is a TTY or closed). */
export function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

/** The spec's error object on stdout. */
export function writeError(err: CniError, cniVersion: string): void {
  process.stdout.write(JSON.stringify(err.toJSON(cniVersion)) + '\n');
}
