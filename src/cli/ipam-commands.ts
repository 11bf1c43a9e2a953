/**
 * `tortiectl ipam show [--show-blocks] [--ip=<IP>]`: pool (and block) usage from src/ipam, or
 * who holds one address, in calicoctl's wording.
 *
 * Contract: reads only; exit 0 when the data could be read (an unassigned --ip is not an
 * error, as in calicoctl), 1 otherwise.
 */
import { ipamShow, renderIpamShow, IpamClient } from '../ipam';
import { blockNet, ipToOrdinal, ipv4ToInt } from '../ipam/block';
import { parseIPv4 } from '../model/values';
import { DATASTORE_OPTIONS, invalidOption, parseArgs } from './args';
import { openConfiguredDatastore, resolveDatastoreConfig } from './datastore-config';
import { CliError, type CliIO } from './io';

function usage(binary: string): string {
  return `Usage:
  ${binary} ipam show [--show-blocks] [--ip=<IP>] [options]

Show IP address usage per IP pool; with --show-blocks also per allocation block and the
blocks each node holds; with --ip, whether that address is in use and by what.

Options:
  -h --help          Show this screen.
     --show-blocks   Show one row per allocation block as well.
     --ip=<IP>       Show the allocation of this address.
  -c --config=<CONFIG>, --store-dir, --etcd-endpoints, --etcd-ca, --etcd-cert, --etcd-key
                     Datastore selection, as for every command.
`;
}

export async function runIpam(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const sub = argv[1];
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.stdout.write(usage(binary));
    return sub === undefined ? 1 : 0;
  }
  if (sub !== 'show') {
    throw invalidOption(binary, argv, `(tortiectl supports 'ipam show'; ${JSON.stringify(sub)} is not implemented)`);
  }
  const args = parseArgs(binary, argv, 2, [...DATASTORE_OPTIONS, { long: 'show-blocks' }, { long: 'ip', value: true }, { long: 'show-borrowed' }, { long: 'show-configuration' }]);
  if (args.flag('help')) {
    io.stdout.write(usage(binary));
    return 0;
  }
  if (args.positionals.length > 0) throw invalidOption(binary, argv);
  if (args.flag('show-borrowed') || args.flag('show-configuration')) {
    throw new CliError(`${args.flag('show-borrowed') ? '--show-borrowed' : '--show-configuration'} is not supported by tortiectl`, 'ERR_CLI_UNSUPPORTED');
  }
  const ipArg = args.get('ip');
  let ipInt: number | undefined;
  if (ipArg !== undefined) {
    const ip = parseIPv4(ipArg);
    if (ip === null) throw new CliError(`invalid IP address: ${ipArg} (expected an IPv4 address)`, 'ERR_CLI_IP');
    ipInt = ipv4ToInt(ip.bytes);
  }
  const ds = openConfiguredDatastore(resolveDatastoreConfig(args, io));
  try {
    if (ipInt !== undefined) return await showIp(ds, ipArg as string, ipInt, io);
    io.stdout.write(renderIpamShow(await ipamShow(ds), { showBlocks: args.flag('show-blocks') }));
    return 0;
  } finally {
    await ds.close().catch(() => undefined);
  }
}

async function showIp(ds: ConstructorParameters<typeof IpamClient>[0], ip: string, ipInt: number, io: CliIO): Promise<number> {
  const blocks = await new IpamClient(ds).listBlocks();
  for (const b of blocks) {
    const ord = ipToOrdinal(b, ipInt);
    if (ord === undefined) continue;
    const attrIdx = b.allocations[ord];
    if (attrIdx === null || attrIdx === undefined) break;
    const attr = b.attributes[attrIdx];
    io.stdout.write(`IP ${ip} is in use\n`);
    io.stdout.write(`Handle ID: ${attr?.handle_id ?? '<none>'}\n`);
    const entries = Object.entries(attr?.secondary ?? {}).sort(([a], [b2]) => (a < b2 ? -1 : a > b2 ? 1 : 0));
    if (entries.length === 0) io.stdout.write('No attributes defined\n');
    else {
      io.stdout.write('Attributes:\n');
      for (const [k, v] of entries) io.stdout.write(`  ${k}: ${v}\n`);
    }
    io.stdout.write(`Block: ${b.cidr} (${blockNet(b).size} addresses, affinity ${b.affinity ?? '<none>'})\n`);
    return 0;
  }
  io.stdout.write(`${ip} is not assigned\n`);
  return 0;
}
