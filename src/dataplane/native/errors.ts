/**
 * BpfError: the one error type of the native layer. The addon is handed this class at init and
 * constructs it as `new BpfError(code, op, errno, detail, log)`; the TypeScript wrappers throw it
 * for invalid options too (code ERR_BPF_INVALID_OPTION, errno EINVAL).
 *
 * - `code`: stable `ERR_BPF_<OP>` (e.g. ERR_BPF_MAP_LOOKUP, ERR_BPF_OBJECT_LOAD, ERR_BPF_TC_ATTACH)
 * - `op`: the syscall / libbpf call that failed
 * - `errno` / `errnoName`: positive errno and its name (ENOENT, EINVAL, EBADF, EACCES, ...)
 * - `log`: libbpf output captured during the call; on a failed load it holds the verifier log,
 *   and `verifierSummary` its verdict line, which is also put in the message.
 */
import { getSystemErrorMap } from 'node:util';
import { TortieError } from '../../util/errors';

const KERNEL_ONLY_ERRNO: Record<number, [string, string]> = {
  512: ['ERESTARTSYS', 'restart syscall'],
  524: ['ENOTSUPP', 'operation not supported by this kernel object'],
};

export function errnoName(errno: number): string {
  if (errno === 0) return '';
  const e = getSystemErrorMap().get(-errno) ?? KERNEL_ONLY_ERRNO[errno];
  return e ? e[0] : `errno ${errno}`;
}

function errnoText(errno: number): string {
  const e = getSystemErrorMap().get(-errno) ?? KERNEL_ONLY_ERRNO[errno];
  return e ? `${e[0]}, ${e[1]}` : `errno ${errno}`;
}

/** The verifier's verdict: the last informative line of the last program load log in `log`. */
export function verifierSummary(log: string): string | undefined {
  const end = log.lastIndexOf('-- END PROG LOAD LOG --');
  if (end < 0) return undefined;
  const begin = log.lastIndexOf('-- BEGIN PROG LOAD LOG --', end);
  const body = log.slice(begin < 0 ? 0 : begin + '-- BEGIN PROG LOAD LOG --'.length, end);
  const lines = body.split('\n').map((l) => l.trim()).filter((l) =>
    l !== '' && !/^processed \d+ insns/.test(l) && !/^verification time/.test(l) && !/^stack depth/.test(l));
  const prog = /prog '([^']+)': (?:BPF program load )?failed/.exec(log.slice(end));
  const last = lines[lines.length - 1];
  if (last === undefined) return prog ? `program ${prog[1]} rejected` : undefined;
  return prog ? `program ${prog[1]}: ${last}` : last;
}

/** Transient conditions a caller may retry: `recoverable` (util/retry.ts decides by it). */
const RECOVERABLE_ERRNOS = ['EAGAIN', 'EBUSY', 'EINTR', 'ENOMEM', 'ENOBUFS'];

export class BpfError extends TortieError {
  readonly errnoName: string;
  readonly verifierSummary: string | undefined;

  constructor(
    code: string,
    readonly op: string,
    readonly errno: number,
    readonly detail: string,
    readonly log: string = '',
  ) {
    const summary = verifierSummary(log);
    super(code, `${detail}: ${op}${errno ? ` failed (${errnoText(errno)})` : ' failed'}${summary ? `; verifier: ${summary}` : ''}`,
      { recoverable: RECOVERABLE_ERRNOS.includes(errnoName(errno)) });
    this.errnoName = errnoName(errno);
    this.verifierSummary = summary;
  }
}

export function isBpfError(e: unknown, errnoNameWanted?: string): e is BpfError {
  return e instanceof BpfError && (errnoNameWanted === undefined || e.errnoName === errnoNameWanted);
}

/** Option validation failure, in the same error type (errno EINVAL). */
export function invalidOption(what: string, why: string): BpfError {
  return new BpfError('ERR_BPF_INVALID_OPTION', 'validate', 22, `${what} ${why}`);
}
