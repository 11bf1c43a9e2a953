/**
 * `npm start` → the lab (see lab.ts): builds the cluster, prints what works, stays up until
 * Ctrl-C (or exits at once with --once), and removes everything on the way out.
 */
import { Lab, formatMatrix } from './lab';

export const LAB_USAGE = `Usage: tortie-lab [--once] [--bgp] [--vxlan] [--ipv4-only]

Builds a three-node tortie cluster in network namespaces on this machine (a tortie-node per node,
workloads through the tortie CNI plugin, the Calico docs' pool and an example policy), prints its
connectivity matrix measured with real traffic, then stays up until Ctrl-C or SIGTERM. On the way
out it removes every namespace, process, bpffs pin and temporary file it made. Needs root.

Options:
  --once      exit (and tear down) right after printing the matrix
  --bgp       BGP mode: agents run bird2 (routes from BGP), the router runs FRR as the ToR
  --vxlan     the pools use vxlanMode CrossSubnet instead of ipipMode (VXLAN across subnets)
  --ipv4-only IPv4 only. By default the lab is dual stack: a ULA underlay (fd00:198:18::/48)
              beside the IPv4 one, the pool fd00:10::/48 (NAT outgoing, VXLAN across subnets),
              an IPv4 and an IPv6 address per workload, and the IPv6 cells in the matrix.
              --bgp implies it (the ToR and the BGP cells are IPv4 only)
  --ipv6      dual stack (the default; not with --bgp)
  -h, --help  print this help
`;

/** Dual stack unless --ipv4-only or --bgp (whose ToR and cells are IPv4 only). */
export function labIpv6(argv: readonly string[]): boolean {
  return !argv.includes('--ipv4-only') && !argv.includes('--bgp');
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(LAB_USAGE);
    return 0;
  }
  const unknown = argv.filter((a) => !['--once', '--bgp', '--vxlan', '--ipv6', '--ipv4-only'].includes(a));
  if (unknown.length > 0) {
    process.stderr.write(`tortie-lab: unknown argument ${JSON.stringify(unknown[0])}\n\n${LAB_USAGE}`);
    return 2;
  }
  if (argv.includes('--ipv6') && argv.includes('--bgp')) {
    process.stderr.write('tortie-lab: --ipv6 with --bgp is not supported (the ToR and the BGP cells are IPv4 only)\n');
    return 2;
  }
  if (argv.includes('--ipv6') && argv.includes('--ipv4-only')) {
    process.stderr.write('tortie-lab: --ipv6 and --ipv4-only exclude each other\n');
    return 2;
  }
  if (process.geteuid?.() !== 0) {
    process.stderr.write('tortie-lab: must run as root (namespaces, BPF and tc need CAP_SYS_ADMIN/CAP_NET_ADMIN); e.g. sudo npm start\n');
    return 1;
  }
  const once = argv.includes('--once');
  const say = (s: string) => process.stdout.write(`lab: ${s}\n`);
  const lab = new Lab({ log: say, bgp: argv.includes('--bgp'), vxlan: argv.includes('--vxlan'), ipv6: labIpv6(argv) });
  let code = 0;
  try {
    say(`namespaces ${lab.topo.prefix}-*, pins ${lab.pinBase}, agent run dir ${lab.runDir}`);
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
