/**
 * The frame both CNI entry points share: read the CNI_* environment and stdin, answer VERSION,
 * parse and version-check the configuration, run the command, print the result (in the
 * configuration's cniVersion) or the spec's error object, and give the exit status.
 */
import { SUPPORTED_VERSIONS, formatResult, parseEnv, parseNetConf, type CniEnv, type CniResult, type NetConf } from './config';
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

export type CniRun = (env: CniEnv, conf: NetConf, vars: NodeJS.ProcessEnv) => Promise<CniResult | void>;

/**
 * Runs one plugin invocation from its environment `vars` and stdin text, returning the exit
 * status and what goes to stdout. `run` gets the checked inputs and returns the ADD result or
 * nothing (DEL, CHECK); any error becomes a CNI error object via `toError`. Used by the process
 * entry (cniMain) and by the resident server (server.ts) alike.
 */
export async function cniRun(vars: NodeJS.ProcessEnv, stdin: string, run: CniRun,
  toError: (err: unknown) => CniError): Promise<{ code: number; stdout: string }> {
  let cniVersion = '1.0.0';
  try {
    const env = parseEnv(vars);
    if (env.command === 'VERSION') return { code: 0, stdout: versionAnswer(stdin) };
    const conf = parseNetConf(stdin);
    cniVersion = conf.cniVersion;
    if (env.command === 'CHECK' && !['0.4.0', '1.0.0'].includes(conf.cniVersion)) {
      throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `CHECK needs cniVersion 0.4.0 or later, the configuration says ${conf.cniVersion}`);
    }
    const res = await run(env, conf, vars);
    return { code: 0, stdout: res ? JSON.stringify(formatResult(res, conf.cniVersion)) + '\n' : '' };
  } catch (err) {
    // An error found while checking the configuration still answers in its cniVersion when it
    // names a supported one (a 0.4.0 runtime decodes a 0.4.0 error object).
    if (cniVersion === '1.0.0') cniVersion = declaredVersion(stdin) ?? cniVersion;
    return { code: 1, stdout: JSON.stringify(toError(err).toJSON(cniVersion)) + '\n' };
  }
}

function declaredVersion(stdin: string): string | undefined {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The process entry: this process's environment and stdin; prints to stdout, returns the status. */
export async function cniMain(run: CniRun, toError: (err: unknown) => CniError): Promise<number> {
  const r = await cniRun(process.env, await readStdin(), run, toError);
  process.stdout.write(r.stdout);
  return r.code;
}
