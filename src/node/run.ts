/** Composition of the running agent (datastore, calc, dataplane); completed with issue 5. */
import type { NodeConfig } from './config';

export async function runAgent(_config: NodeConfig): Promise<number> {
  process.stderr.write('tortie-node run: not implemented yet (issue 5); try `tortie-node doctor`\n');
  return 1;
}
