/**
 * Child process for test/ipam/03-concurrency: hammers one datastore with assign/release as one
 * node, then prints {held: {handle: ip}, ...counters} as the last stdout line.
 * argv: <datastore JSON config> <node> <worker id> <ops> <max held> [<family 4|6|dual, default 4>]
 * dual: each handle takes an IPv4 and then an IPv6 address (as the CNI's assign_ipv6 does; when
 * the second fails, the first is released by address) and `held` lists both, space-separated.
 */
import { openDatastore, type DatastoreConfig } from '../../../src/datastore';
import { IpamClient, IpamError } from '../../../src/ipam';

async function main(): Promise<void> {
  const [cfgJson, node, id, opsText, maxHeldText, familyText] = process.argv.slice(2);
  const families: (4 | 6)[] = familyText === '6' ? [6] : familyText === 'dual' ? [4, 6] : [4];
  const ds = openDatastore(JSON.parse(cfgJson!) as DatastoreConfig);
  const ipam = new IpamClient(ds);
  const held = new Map<string, string>();
  const stats = { assigned: 0, released: 0, repeats: 0, exhausted: 0, mismatches: [] as string[] };
  const ops = Number(opsText);
  const maxHeld = Number(maxHeldText);
  const sorted = (ips: string[]): string => [...ips].sort().join(' ');
  let seq = 0;
  for (let i = 0; i < ops; i++) {
    const r = Math.random();
    if (held.size > 0 && (held.size >= maxHeld || r < 0.35)) {
      const handles = [...held.keys()];
      const h = handles[Math.floor(Math.random() * handles.length)]!;
      const freed = await ipam.releaseByHandle(h);
      if (sorted(freed) !== sorted(held.get(h)!.split(' '))) stats.mismatches.push(`release ${h}: expected [${held.get(h)}], got [${freed.join(',')}]`);
      held.delete(h);
      stats.released++;
    } else if (held.size > 0 && r < 0.45) {
      const handles = [...held.keys()];
      const h = handles[Math.floor(Math.random() * handles.length)]!;
      const again: string[] = [];
      for (const family of families) again.push(...(await ipam.assign({ handleId: h, node, family })).ips.map((x) => x.ip));
      if (sorted(again) !== sorted(held.get(h)!.split(' '))) stats.mismatches.push(`repeat ${h}: expected ${held.get(h)}, got ${again.join(',')}`);
      stats.repeats++;
    } else {
      const h = `stress.${node}.${id}.${seq++}`;
      const got: string[] = [];
      try {
        for (const family of families) got.push((await ipam.assign({ handleId: h, node, attrs: { node, worker: String(id) }, family })).ips[0]!.ip);
        held.set(h, got.join(' '));
        stats.assigned++;
      } catch (err) {
        if (!(err instanceof IpamError && err.code === 'ERR_IPAM_EXHAUSTED')) throw err;
        if (got.length > 0) {
          const back = await ipam.releaseAddresses(h, got);
          if (sorted(back) !== sorted(got)) stats.mismatches.push(`rollback ${h}: expected [${got}], got [${back}]`);
        }
        stats.exhausted++;
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
