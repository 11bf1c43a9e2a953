/**
 * TORTIE_BENCH_OBJECTS="name=<dir>,name=<dir>,…": the builds of one BPF object a per-packet bench
 * compares, alternated case by case (each directory holds that object, as bpf/out does). Unset:
 * one variant, "tortie", from bpf/out. Used by datapath-hrcost, datapath-runtime (the workload
 * object) and networking-pktcost (the uplink object).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface ObjectVariant { name: string; dir?: string }

export function objectVariants(object: string, spec = process.env.TORTIE_BENCH_OBJECTS): ObjectVariant[] {
  if (!spec) return [{ name: 'tortie' }];
  const seen = new Set<string>();
  return spec.split(',').map((kv) => {
    const eq = kv.indexOf('=');
    const name = eq > 0 ? kv.slice(0, eq) : '';
    const dir = eq > 0 ? kv.slice(eq + 1) : '';
    if (!name || !dir) throw new Error(`TORTIE_BENCH_OBJECTS: "${kv}" is not name=<directory with ${object}>`);
    if (!existsSync(join(dir, object))) throw new Error(`TORTIE_BENCH_OBJECTS: "${kv}": ${join(dir, object)} does not exist`);
    if (seen.has(name)) throw new Error(`TORTIE_BENCH_OBJECTS: the name "${name}" is given twice`);
    seen.add(name);
    return { name, dir };
  });
}
