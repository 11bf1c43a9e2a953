/**
 * `tortiectl ipam show [--show-blocks] [--ip=<IP>]`: pool (and block) usage from src/ipam, or
 * who holds one address, in calicoctl's wording.
 * `tortiectl ipam check [--show-problem-ips]`: IPAM against the endpoints and nodes using it
 * (leaks, unknown and duplicate addresses, tunnel addresses); reads only.
 * `tortiectl ipam release --ip=<IP>`: frees one address whoever holds it (for leaks that
 * `ipam check` found); does not touch any endpoint still using it.
 *
 * Contract: show and check read only and exit 0 when the data could be read (an unassigned
 * --ip for show, or problems found by check, are not errors, as in calicoctl), 1 otherwise;
 * release exits 0 after freeing the address, 1 when it was not assigned.
 */
import { ipamCheck, ipamShow, renderIpamCheck, renderIpamShow, IpamClient } from '../ipam';
import { blockSize, ipToOrdinal } from '../ipam/block';
import { tryParseAddr, type IpNum } from '../ipam/net';
import { DATASTORE_OPTIONS, invalidOption, parseArgs } from './args';
import { openConfiguredDatastore, resolveDatastoreConfig } from './datastore-config';
import { CliError, type CliIO } from './io';

const DATASTORE_HELP = `  -c --config=<CONFIG>, --store-dir, --etcd-endpoints, --etcd-ca, --etcd-cert, --etcd-key
                     Datastore selection, as for every command.
`;

function usage(binary: string): string {
  return `Usage:
  ${binary} ipam show [--show-blocks] [--ip=<IP>] [options]
  ${binary} ipam check [--show-problem-ips] [options]
  ${binary} ipam release --ip=<IP> [options]

  show      IP address usage per IP pool; with --show-blocks also per allocation block and
            the blocks each node holds; with --ip, whether that address is in use and by what.
  check     Compare IPAM with the workload endpoints and nodes: addresses allocated but used
            by no endpoint (leaks), used but not allocated, used twice, tunnel addresses.
  release   Release one address from IPAM (a leak found by check). It does not remove the
            address from an endpoint still using it.

Options:
  -h --help              Show this screen.
     --show-blocks       (show) One row per allocation block as well.
     --ip=<IP>           (show) The allocation of this address; (release) the address.
     --show-problem-ips  (check) List each problem address, not only the counts.
${DATASTORE_HELP}`;
}

export async function runIpam(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const sub = argv[1];
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.stdout.write(usage(binary));
    return sub === undefined ? 1 : 0;
  }
  if (sub === 'check') return runCheck(binary, argv, io);
  if (sub === 'release') return runRelease(binary, argv, io);
  if (sub !== 'show') {
    throw invalidOption(binary, argv, `(tortiectl supports 'ipam show', 'ipam check' and 'ipam release'; ${JSON.stringify(sub)} is not implemented)`);
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
  const ipInt = ipArg === undefined ? undefined : parseIp(ipArg);
  const ds = openConfiguredDatastore(resolveDatastoreConfig(args, io));
  try {
    if (ipInt !== undefined) return await showIp(ds, ipArg as string, ipInt, io);
    io.stdout.write(renderIpamShow(await ipamShow(ds), { showBlocks: args.flag('show-blocks') }));
    return 0;
  } finally {
    await ds.close().catch(() => undefined);
  }
}

function parseIp(arg: string): IpNum {
  const ip = tryParseAddr(arg);
  if (ip === undefined) throw new CliError(`invalid IP address: ${arg} (expected an IPv4 or IPv6 address)`, 'ERR_CLI_IP');
  return ip;
}

async function runCheck(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 2, [...DATASTORE_OPTIONS, { long: 'show-problem-ips' }, { long: 'show-all-ips' }, { long: 'output', short: 'o', value: true }]);
  if (args.flag('help')) {
    io.stdout.write(usage(binary));
    return 0;
  }
  if (args.positionals.length > 0) throw invalidOption(binary, argv);
  if (args.flag('show-all-ips') || args.get('output') !== undefined) {
    throw new CliError(`${args.flag('show-all-ips') ? '--show-all-ips' : '--output'} is not supported by tortiectl ipam check (use --show-problem-ips)`, 'ERR_CLI_UNSUPPORTED');
  }
  const ds = openConfiguredDatastore(resolveDatastoreConfig(args, io));
  try {
    // Without --show-problem-ips only the counts, as calicoctl prints them.
    io.stdout.write(renderIpamCheck(await ipamCheck(ds), { showIps: args.flag('show-problem-ips') }));
    return 0;
  } finally {
    await ds.close().catch(() => undefined);
  }
}

async function runRelease(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 2, [...DATASTORE_OPTIONS, { long: 'ip', value: true }, { long: 'from-report', value: true }, { long: 'force' }]);
  if (args.flag('help')) {
    io.stdout.write(usage(binary));
    return 0;
  }
  if (args.get('from-report') !== undefined) throw new CliError('--from-report is not supported by tortiectl ipam release (release leaks one --ip at a time)', 'ERR_CLI_UNSUPPORTED');
  const ipArg = args.get('ip');
  if (ipArg === undefined || args.positionals.length > 0) throw invalidOption(binary, argv, 'ipam release needs --ip=<IP>');
  parseIp(ipArg);
  const ds = openConfiguredDatastore(resolveDatastoreConfig(args, io));
  try {
    const handle = await new IpamClient(ds).releaseIp(ipArg);
    if (handle === undefined) throw new CliError(`IP address ${ipArg} is not assigned`, 'ERR_CLI_NOT_ASSIGNED');
    io.stdout.write(`Successfully released IP address ${ipArg}\n`);
    return 0;
  } finally {
    await ds.close().catch(() => undefined);
  }
}

async function showIp(ds: ConstructorParameters<typeof IpamClient>[0], ip: string, ipInt: IpNum, io: CliIO): Promise<number> {
  const blocks = await new IpamClient(ds).listBlocks(ipInt.family);
  for (const b of blocks) {
    const ord = ipToOrdinal(b, ipInt);
    if (ord === undefined) continue;
    const attrIdx = b.allocations[ord];
    if (attrIdx === null || attrIdx === undefined) break;
    const attr = b.attributes[attrIdx];
    if (typeof attr?.releasedAt === 'string') {
      io.stdout.write(`IP ${ip} was released at ${attr.releasedAt} and is in its cooldown (Calico's ipCooldownSeconds)\n`);
      return 0;
    }
    io.stdout.write(`IP ${ip} is in use\n`);
    io.stdout.write(`Handle ID: ${attr?.handle_id || '<none>'}\n`);
    const entries = Object.entries(attr?.secondary ?? {}).sort(([a], [b2]) => (a < b2 ? -1 : a > b2 ? 1 : 0));
    if (entries.length === 0) io.stdout.write('No attributes defined\n');
    else {
      io.stdout.write('Attributes:\n');
      for (const [k, v] of entries) io.stdout.write(`  ${k}: ${v}\n`);
    }
    io.stdout.write(`Block: ${b.cidr} (${blockSize(b)} addresses, affinity ${b.affinity ?? '<none>'})\n`);
    return 0;
  }
  io.stdout.write(`${ip} is not assigned\n`);
  return 0;
}
