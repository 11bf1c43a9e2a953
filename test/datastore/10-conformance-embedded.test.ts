import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedDatastore } from '../../src/datastore';
import { conformance } from './helpers/conformance';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-store-conf-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

void conformance(t, {
  name: 'embedded',
  open: () => new EmbeddedDatastore({ dir }),
  config: { type: 'embedded', dir },
  crashLoops: 8,
});
