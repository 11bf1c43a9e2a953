/** Test helper: a fresh embedded datastore in a temp directory, removed at teardown. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatastore } from '../../../src/datastore/embedded';
import type { Datastore } from '../../../src/datastore/types';
import { ResourceClient } from '../../../src/client/resources';
import type { IPPool } from '../../../src/model/types';

export interface TestStore { ds: Datastore; dir: string; rc: ResourceClient; close(): Promise<void> }

export function openTestStore(label: string): TestStore {
  const dir = mkdtempSync(join(tmpdir(), `tortie-${label}-`));
  const ds = new EmbeddedDatastore({ dir });
  return {
    ds, dir, rc: new ResourceClient(ds),
    async close() { await ds.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

export function pool(name: string, cidr: string, spec: Partial<IPPool['spec']> = {}): IPPool {
  return { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr, ...spec } };
}
