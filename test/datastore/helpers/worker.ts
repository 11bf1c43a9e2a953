/**
 * Child process used by the datastore tests (run with `node worker.js '<json>'`):
 *   {"mode":"cas-inc","config":…,"key":"/k","n":50}  n compare-and-swap increments of a counter
 *   {"mode":"append","config":…,"prefix":"/p/"}      create /p/<i> forever; prints "ack <i>" after
 *                                                    each acknowledged create (for kill -9 tests)
 * Prints "done <conflicts>" and exits 0 when finished; exits 1 with the error on stderr otherwise.
 */
import { openDatastore, ConflictError, type DatastoreConfig } from '../../../src/datastore';

interface Job {
  mode: 'cas-inc' | 'append';
  config: DatastoreConfig;
  key?: string;
  n?: number;
  prefix?: string;
}

// The reader went away (EPIPE): nothing left to report to.
process.stdout.on('error', () => process.exit(0));

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as Job;
  const ds = openDatastore(job.config);
  if (job.mode === 'cas-inc') {
    let conflicts = 0;
    for (let i = 0; i < job.n!; ) {
      const cur = await ds.get(job.key!);
      const count = (cur?.value as { count: number }).count;
      try {
        await ds.update(job.key!, { count: count + 1 }, { expectedRevision: cur!.modRevision });
        i++;
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
        conflicts++;
      }
    }
    await ds.close();
    process.stdout.write(`done ${conflicts}\n`);
    return;
  }
  for (let i = 0; ; i++) {
    await ds.create(`${job.prefix}${i}`, { i, pad: 'x'.repeat(i % 200) });
    process.stdout.write(`ack ${i}\n`);
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
