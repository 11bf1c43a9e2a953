/**
 * The frame both CNI entry points share: read the CNI_* environment and stdin, answer VERSION,
 * parse and version-check the configuration, run the command, print the result (in the
 * configuration's cniVersion) or the spec's error object, and give the exit status.
 */
import { formatResult, parseEnv, parseNetConf, type CniEnv, type CniResult, type NetConf } from './config';
import { CNI_ERR, CniError } from './errors';
import { versionAnswer } from './version';

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

/**
 * Runs one plugin invocation. `run` gets the checked inputs and returns the ADD result (printed)
 * or nothing (DEL, CHECK); any error becomes a CNI error object via `toError`.
 */
export async function cniMain(run: (env: CniEnv, conf: NetConf) => Promise<CniResult | void>,
  toError: (err: unknown) => CniError): Promise<number> {
  let cniVersion = '1.0.0';
  try {
    const env = parseEnv(process.env);
    const stdin = await readStdin();
    if (env.command === 'VERSION') {
      process.stdout.write(versionAnswer(stdin));
      return 0;
    }
    const conf = parseNetConf(stdin);
    cniVersion = conf.cniVersion;
    if (env.command === 'CHECK' && !['0.4.0', '1.0.0'].includes(conf.cniVersion)) {
      throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `CHECK needs cniVersion 0.4.0 or later, the configuration says ${conf.cniVersion}`);
    }
    const res = await run(env, conf);
    if (res) process.stdout.write(JSON.stringify(formatResult(res, conf.cniVersion)) + '\n');
    return 0;
  } catch (err) {
    process.stdout.write(JSON.stringify(toError(err).toJSON(cniVersion)) + '\n');
    return 1;
  }
}
