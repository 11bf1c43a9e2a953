import { join } from 'node:path';

/** The directory of a node's bird (socket, pid, configuration): `<run dir>/<node>.bird`. */
export function birdDir(runDir: string, nodeName: string): string {
  return join(runDir, `${nodeName}.bird`);
}
