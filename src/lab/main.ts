/**
 * `npm start` → the lab (see lab.ts): builds the cluster, prints what works, stays up until
 * Ctrl-C (or exits at once with --once), and removes everything on the way out.
 */
import { Lab, formatMatrix } from './lab';

export async function main(argv: string[]): Promise<number> {
  const once = argv.includes('--once');
  const say = (s: string) => process.stdout.write(`lab: ${s}\n`);
  const lab = new Lab({ log: say, bgp: argv.includes('--bgp') });
  let code = 0;
  try {
    await lab.build();
    await lab.setUpScenario();
    say('measuring the connectivity matrix (real traffic; captures on the router)');
    const cells = [...await lab.matrix(), ...(lab.bgp ? await lab.bgpMatrix() : [])];
    process.stdout.write('\n' + formatMatrix(cells) + '\n');
    const failed = cells.filter((c) => !c.ok).length;
    say(failed === 0 ? `all ${cells.length} cells as expected` : `${failed} of ${cells.length} cells not as expected`);
    code = failed === 0 ? 0 : 1;
    if (!once) {
      say(`the cluster stays up; namespaces: ${lab.topo.all.map((n) => n.name).join(' ')}`);
      say(`try: ip netns exec ${lab.workloads.get('a-web')!.ns.name} ping ${lab.workloads.get('c-client')!.ip}`);
      say('press Ctrl-C to tear everything down');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
  } catch (e) {
    process.stderr.write(`lab: ${(e as Error).message}\n`);
    code = 1;
  } finally {
    await lab.destroy();
    say('torn down');
  }
  return code;
}
