/** A fresh embedded datastore in a temporary directory, for a testbed's agents, plugins and tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatastore } from '../datastore/embedded';
import { ResourceClient } from '../client/resources';

export interface TestStore { ds: EmbeddedDatastore; dir: string; rc: ResourceClient; close(): Promise<void> }

export function openTestStore(label: string): TestStore {
  const dir = mkdtempSync(join(tmpdir(), `tortie-${label}-`));
  const ds = new EmbeddedDatastore({ dir });
  return {
    ds, dir, rc: new ResourceClient(ds),
    async close() { await ds.close().catch(() => undefined); rmSync(dir, { recursive: true, force: true }); },
  };
}
