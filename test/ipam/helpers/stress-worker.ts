/**
 * Child process for test/ipam/03-concurrency: hammers one datastore with assign/release as one
 * node, then prints {held: {handle: ip}, ...counters} as the last stdout line.
 * argv: <datastore JSON config> <node> <worker id> <ops> <max held> [<family 4|6, default 4>]
 */
import { openDatastore, type DatastoreConfig } from '../../../src/datastore';
import { IpamClient, IpamError } from '../../../src/ipam';

async function main(): Promise<void> {
  const [cfgJson, node, id, opsText, maxHeldText, familyText] = process.argv.slice(2);
  const family = familyText === '6' ? 6 : 4;
  const ds = openDatastore(JSON.parse(cfgJson!) as DatastoreConfig);
  const ipam = new IpamClient(ds);
  const held = new Map<string, string>();
  const stats = { assigned: 0, released: 0, repeats: 0, exhausted: 0, mismatches: [] as string[] };
  const ops = Number(opsText);
  const maxHeld = Number(maxHeldText);
  let seq = 0;
  for (let i = 0; i < ops; i++) {
    const r = Math.random();
    if (held.size > 0 && (held.size >= maxHeld || r < 0.35)) {
      const handles = [...held.keys()];
      const h = handles[Math.floor(Math.random() * handles.length)]!;
      const freed = await ipam.releaseByHandle(h);
      if (freed.length !== 1 || freed[0] !== held.get(h)) stats.mismatches.push(`release ${h}: expected [${held.get(h)}], got [${freed.join(',')}]`);
      held.delete(h);
      stats.released++;
    } else if (held.size > 0 && r < 0.45) {
      const handles = [...held.keys()];
      const h = handles[Math.floor(Math.random() * handles.length)]!;
      const again = await ipam.assign({ handleId: h, node, family });
      if (again.ips.length !== 1 || again.ips[0]!.ip !== held.get(h)) stats.mismatches.push(`repeat ${h}: expected ${held.get(h)}, got ${again.ips.map((x) => x.ip).join(',')}`);
      stats.repeats++;
    } else {
      const h = `stress.${node}.${id}.${seq++}`;
      try {
        const res = await ipam.assign({ handleId: h, node, attrs: { node, worker: String(id) }, family });
        held.set(h, res.ips[0]!.ip);
        stats.assigned++;
      } catch (err) {
        if (err instanceof IpamError && err.code === 'ERR_IPAM_EXHAUSTED') stats.exhausted++;
        else throw err;
      }
    }
  }
  await ds.close();
  process.stdout.write(JSON.stringify({ held: Object.fromEntries(held), ...stats }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`stress worker failed: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
