/**
 * Command-line parsing in calicoctl's (docopt's) manner: options may appear anywhere among the
 * positionals, long options as `--name=value` or `--name value`, short ones as `-o yaml` or
 * `-oyaml`; `--` ends the options. Anything not in the command's option table is a usage
 * error worded as calicoctl words it.
 *
 * Contract: `parseArgs` never throws anything but UsageError; a value-taking option given
 * twice keeps the last value (docopt does the same for single-valued options).
 */
import { UsageError } from './io';

export interface OptionSpec {
  /** Long name without dashes, e.g. `output`. The parsed value is stored under this name. */
  long: string;
  /** One letter, e.g. `o`. */
  short?: string;
  /** True when the option takes a value (`--output=yaml`); false for flags. */
  value?: boolean;
}

export class ParsedArgs {
  constructor(
    readonly positionals: string[],
    private readonly values: ReadonlyMap<string, string | true>,
  ) {}

  /** Value of a value-taking option, or undefined when absent. */
  get(long: string): string | undefined {
    const v = this.values.get(long);
    return typeof v === 'string' ? v : undefined;
  }

  has(long: string): boolean {
    return this.values.has(long);
  }

  flag(long: string): boolean {
    return this.values.get(long) === true;
  }
}

/** The options every datastore-using command accepts (calicoctl's plus tortie's store flags). */
export const DATASTORE_OPTIONS: readonly OptionSpec[] = [
  { long: 'config', short: 'c', value: true },
  { long: 'store-dir', value: true },
  { long: 'datastore-type', value: true },
  { long: 'etcd-endpoints', value: true },
  { long: 'etcd-ca', value: true },
  { long: 'etcd-cert', value: true },
  { long: 'etcd-key', value: true },
  // Accepted for calicoctl compatibility; tortie has no cluster-version check and no kubeconfig.
  { long: 'allow-version-mismatch' },
  { long: 'context', value: true },
];

export const HELP_OPTION: OptionSpec = { long: 'help', short: 'h' };

/** calicoctl's usage error, quoting the command line; `note` adds a line saying what tortiectl lacks. */
export function invalidOption(binary: string, args: readonly string[], note?: string): UsageError {
  return new UsageError(`Invalid option: '${binary} ${args.join(' ')}'. Use flag '--help' to read about a specific subcommand.${note ? `\n${note}` : ''}`);
}

/**
 * Parses `args` (the words after the binary name, the command words included so that the
 * error message can quote the whole command line) against `specs`. `skip` words at the start
 * are command words and are not returned as positionals.
 */
export function parseArgs(binary: string, args: readonly string[], skip: number, specs: readonly OptionSpec[]): ParsedArgs {
  const all = [...specs, HELP_OPTION];
  const byLong = new Map(all.map((s) => [s.long, s]));
  const byShort = new Map(all.filter((s) => s.short).map((s) => [s.short as string, s]));
  const values = new Map<string, string | true>();
  const positionals: string[] = [];
  const fail = (): UsageError => invalidOption(binary, args);

  for (let i = skip; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw fail();
      if (spec.value) {
        if (eq >= 0) values.set(spec.long, a.slice(eq + 1));
        else if (i + 1 < args.length) values.set(spec.long, args[++i]);
        else throw fail();
      } else {
        if (eq >= 0) throw fail();
        values.set(spec.long, true);
      }
    } else if (a.startsWith('-') && a.length > 1) {
      // A cluster of short flags (`-sR`), the last of which may take a value (`-oyaml`, `-o yaml`).
      for (let j = 1; j < a.length; j++) {
        const spec = byShort.get(a[j]);
        if (!spec) throw fail();
        if (spec.value) {
          const rest = a.slice(j + 1);
          if (rest !== '') values.set(spec.long, rest.startsWith('=') ? rest.slice(1) : rest);
          else if (i + 1 < args.length) values.set(spec.long, args[++i]);
          else throw fail();
          break;
        }
        values.set(spec.long, true);
      }
    } else {
      positionals.push(a);
    }
  }
  return new ParsedArgs(positionals, values);
}
