/**
 * Child process for test/net: runs detectNodeAddress in whatever namespace it was started in
 * (`ip netns exec <ns> node detect.js <ip> <method> [<family 4|6>]`), prints the result or the error as JSON.
 */
import { detectNodeAddress } from '../../../src/net/autodetect';

detectNodeAddress(process.argv[2] ?? 'autodetect', process.argv[3] ?? 'first-found', { family: process.argv[4] === '6' ? 6 : 4 }).then(
  (r) => { process.stdout.write(JSON.stringify(r) + '\n'); },
  (err: { code?: string; message?: string }) => {
    process.stdout.write(JSON.stringify({ error: { code: err.code, message: err.message } }) + '\n');
    process.exitCode = 2;
  });
