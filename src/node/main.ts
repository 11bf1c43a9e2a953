/**
 * tortie-node: `run` (the agent; the default when no command is given), `doctor` (host feature
 * checks), `install` / `uninstall` (systemd unit, env file, CNI plugins and conflist),
 * `cleanup` (take the datapath off the host after the agent stopped), `version`.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version';
import { resolveConfig, ConfigError, type RawNodeOptions } from './config';
import { runDoctor, formatResults } from './doctor';
import { DEFAULT_HOST_ROUTING, HOST_ROUTING_MODES, type HostRoutingMode } from '../dataplane/bpf/host-routing';

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('tortie-node')
    .description('tortie node agent: keeps this host\'s eBPF dataplane matching the datastore.\n' +
      'With no command, `run` is assumed: `tortie-node` = `tortie-node run` (flags go after run).')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });

  program.command('doctor')
    .description('check the kernel features tortie needs, each with pass/fail and what to do')
    .option('--bpffs-root <dir>', 'bpffs directory for tortie pins', '/sys/fs/bpf/tortie')
    .option('--bpf-host-routing <mode>', 'the host-routing mode to report on: auto | off (TORTIE_BPF_HOST_ROUTING, auto)')
    .action(async (o: { bpffsRoot: string; bpfHostRouting?: string }) => {
      const mode = (o.bpfHostRouting ?? process.env.TORTIE_BPF_HOST_ROUTING ?? DEFAULT_HOST_ROUTING).trim().toLowerCase();
      if (!HOST_ROUTING_MODES.includes(mode as HostRoutingMode)) throw new ConfigError(`--bpf-host-routing: "${mode}" is not one of ${HOST_ROUTING_MODES.join(', ')}`);
      const results = await runDoctor({ bpffsRoot: o.bpffsRoot, hostRouting: mode as HostRoutingMode });
      process.stdout.write(formatResults(results));
      exitCode = results.every((r) => r.ok) ? 0 : 1;
    });

  program.command('version').description('print the version').action(() => {
    process.stdout.write(`tortie-node ${VERSION}\n`);
  });

  program.command('install')
    .description('place the systemd unit, /etc/tortie/tortie-node.env, the CNI plugins and conflist (starts nothing)')
    .option('--root <dir>', 'install under this directory instead of / (packaging, tests)', '/')
    .option('--cni-bin-dir <dir>', 'CNI plugin directory', '/opt/cni/bin')
    .option('--cni-net-dir <dir>', 'CNI network configuration directory', '/etc/cni/net.d')
    .option('--nodename <name>', 'node name for the conflist and env file (NODENAME, host name)')
    .option('--datastore-type <type>', 'embedded | etcdv3 (DATASTORE_TYPE)')
    .option('--store-dir <dir>', 'embedded datastore directory (TORTIE_DATASTORE_DIR, alias TORTIE_STORE_DIR)')
    .option('--etcd-endpoints <urls>', 'comma-separated etcd URLs (ETCD_ENDPOINTS)')
    .action(async (o: { root: string; cniBinDir: string; cniNetDir: string; nodename?: string; datastoreType?: string; storeDir?: string; etcdEndpoints?: string }) => {
      const { installOnHost } = await import('./host-install');
      const config = resolveConfig({ nodeName: o.nodename, datastoreType: o.datastoreType, storeDir: o.storeDir, etcdEndpoints: o.etcdEndpoints });
      const r = installOnHost({ root: o.root, config, cniBinDir: o.cniBinDir, cniNetDir: o.cniNetDir });
      for (const f of r.written) process.stdout.write(`wrote ${f}\n`);
      for (const f of r.kept) process.stdout.write(`kept ${f} (already there)\n`);
      process.stdout.write(`recorded in ${r.manifest}\n`);
      if (o.root === '/') process.stdout.write('next: edit /etc/tortie/tortie-node.env, then: systemctl daemon-reload && systemctl enable --now tortie-node\n');
    });

  program.command('uninstall')
    .description('remove what install placed (stop the service first: systemctl disable --now tortie-node)')
    .option('--root <dir>', 'the directory install used', '/')
    .option('--purge', 'also remove /etc/tortie/tortie-node.env')
    .action(async (o: { root: string; purge?: boolean }) => {
      const { uninstallFromHost } = await import('./host-install');
      let r: ReturnType<typeof uninstallFromHost>;
      try {
        r = uninstallFromHost({ root: o.root, purge: o.purge });
      } catch (e) {
        process.stderr.write(`tortie-node uninstall: ${(e as Error).message}\n`);
        exitCode = 1;
        return;
      }
      for (const f of r.removed) process.stdout.write(`removed ${f}\n`);
      for (const l of r.left) process.stdout.write(`left ${l.path}: ${l.why}\n`);
    });

  program.command('cleanup')
    .description('after the agent stopped: detach tortie\'s programs, delete its routes, then remove its pins')
    .option('--bpffs-root <dir>', 'bpffs directory of the pins (TORTIE_BPFFS_ROOT)')
    .option('--run-dir <dir>', 'agents\' run directory, to refuse while one runs (TORTIE_RUN_DIR)')
    .action(async (o: { bpffsRoot?: string; runDir?: string }) => {
      const { cleanupHost, formatCleanup, CleanupRefused } = await import('./cleanup');
      const opts = { bpffsRoot: o.bpffsRoot ?? process.env.TORTIE_BPFFS_ROOT ?? '/sys/fs/bpf/tortie', runDir: o.runDir ?? process.env.TORTIE_RUN_DIR ?? '/run/tortie' };
      try {
        process.stdout.write(formatCleanup(await cleanupHost(opts), opts));
      } catch (e) {
        if (!(e instanceof CleanupRefused)) throw e;
        process.stderr.write(`tortie-node cleanup: ${e.message}\n`);
        exitCode = 1;
      }
    });

  program.command('run', { isDefault: true })
    .description('run the agent (the default command; flags override Calico environment variables)')
    .option('--nodename <name>', 'this node\'s name (NODENAME)')
    .option('--ip <addr>', 'autodetect | none | ADDR/PREFIX (IP)')
    .option('--ip-autodetection-method <method>', 'first-found | can-reach=DEST | interface=RE | skip-interface=RE | cidr=CIDR')
    .option('--ip6 <addr>', 'none | autodetect | ADDR/PREFIX (IP6; default none)')
    .option('--ip6-autodetection-method <method>', 'as --ip-autodetection-method, over IPv6 addresses (IP6_AUTODETECTION_METHOD)')
    .option('--datastore-type <type>', 'embedded | etcdv3 (DATASTORE_TYPE; default etcdv3 when etcd endpoints are given, else embedded)')
    .option('--store-dir <dir>', 'embedded datastore directory (TORTIE_DATASTORE_DIR, alias TORTIE_STORE_DIR)')
    .option('--etcd-endpoints <urls>', 'comma-separated etcd URLs (ETCD_ENDPOINTS)')
    .option('--etcd-ca <file>', 'etcd CA certificate (ETCD_CA_CERT_FILE)')
    .option('--etcd-cert <file>', 'etcd client certificate (ETCD_CERT_FILE)')
    .option('--etcd-key <file>', 'etcd client key (ETCD_KEY_FILE)')
    .option('--log-level <level>', 'screen log level: trace | debug | info | warn | error | none (FELIX_LOGSEVERITYSCREEN, info)')
    .option('--log-format <format>', 'screen log format: json | text (TORTIE_LOGFORMAT, json)')
    .option('--log-file <path>', 'also log to this file as JSON lines, none = off (FELIX_LOGFILEPATH, off)')
    .option('--log-level-file <level>', 'log file level (FELIX_LOGSEVERITYFILE, info)')
    .option('--flow-log-file <path>', 'flow logs (denied flows, Log rules) to this file, - = stdout (TORTIE_FLOWLOGFILE, or FELIX_FLOWLOGSFILEDIRECTORY/flows.log; default: the main log)')
    .option('--bpffs-root <dir>', 'bpffs directory for pins (TORTIE_BPFFS_ROOT)')
    .option('--run-dir <dir>', 'where the pid and state files go (TORTIE_RUN_DIR, /run/tortie)')
    .option('--metrics-port <port>', 'Prometheus /metrics port, 0 = off (FELIX_PROMETHEUSMETRICSPORT, 9091)')
    .option('--metrics-host <host>', 'address for the metrics listener (FELIX_PROMETHEUSMETRICSHOST, the health host)')
    .option('--no-metrics', 'serve no metrics (FELIX_PROMETHEUSMETRICSENABLED=false)')
    .option('--health-port <port>', '/livez, /readyz, /liveness, /readiness port, 0 = off (FELIX_HEALTHPORT, 9099)')
    .option('--health-host <host>', 'address for the health listener (FELIX_HEALTHHOST, 127.0.0.1)')
    .option('--interface-prefix <prefix>', 'workload interface prefix (FELIX_INTERFACEPREFIX)')
    .option('--uplink <ifname>', 'host uplink interface (default: the one holding the node IP)')
    .option('--policy-only', 'enforce policy only: no IPAM, routes or encapsulation')
    .option('--bgp', 'run bird2 for BGP: node mesh, peers, per-block routes (CALICO_NETWORKING_BACKEND=bird)')
    .option('--route-source <source>', 'datastore | bgp: where remote routes come from (TORTIE_ROUTE_SOURCE; default bgp with --bgp)')
    .option('--bgp-secrets-dir <dir>', 'BGP password secrets, <dir>/<name>/<key> (TORTIE_BGP_SECRETS_DIR)')
    .option('--max-batch <n>', 'largest number of kernel writes per batch')
    .option('--heap-growing-percent <p>', 'V8 heap headroom over live data before a full GC, 0 = V8 default (TORTIE_HEAP_GROWING_PERCENT, 20)')
    .option('--nat-port-range <min:max>', 'ports NAT outgoing may use, outside ip_local_port_range (FELIX_NATPORTRANGE, 20000:29999)')
    .option('--nat-outgoing-address <ip>', 'SNAT source of natOutgoing pools instead of the node address (FELIX_NATOUTGOINGADDRESS)')
    .option('--ipip-mtu <mtu>', 'MTU of IPIP routes and workloads; 0 = smallest MTU of the --mtu-iface-pattern interfaces less 20 (FELIX_IPIPMTU, 0)')
    .option('--mtu-iface-pattern <regex>', 'host interfaces MTU detection considers (FELIX_MTUIFACEPATTERN, Calico\'s default)')
    .option('--mtu-file <path>', 'where the workload MTU is written for the CNI plugin; none = not written (TORTIE_MTU_FILE, <run dir>/mtu)')
    .option('--default-endpoint-to-host-action <action>', 'new flows from a workload to this node: Drop | Accept | Return (= Accept) (FELIX_DEFAULTENDPOINTTOHOSTACTION, Drop)')
    .option('--bpf-host-routing <mode>', 'BPF host routing: packets between local workloads redirected into the destination (bpf_redirect_peer), packets leaving through the uplink redirected to it: auto | off (TORTIE_BPF_HOST_ROUTING, auto)')
    .option('--nat-quota <n>', 'NAT mappings (flows) one workload may hold, 0 = no quota (TORTIE_NAT_QUOTA, 8192)')
    .option('--nat-max-entries <n>', 'NAT table size, two entries per flow (TORTIE_NAT_MAX_ENTRIES, 131072)')
    .option('--ct-max-entries <n>', 'conntrack table size (TORTIE_CT_MAX_ENTRIES, default from memory)')
    .option('--bpf-map-sizes <key=n,…>', 'max_entries of the maps sized for the cluster: policy maps cls4, tbl, proj, spc, pol and the route map rt4, e.g. proj=8388608,pol=4194304 (TORTIE_BPF_MAP_SIZES; defaults sized for 100,000 endpoints × 2,000 policies)')
    .option('--ct-quota <n>', 'conntrack entries one workload may own, 0 = no quota (TORTIE_CT_QUOTA, table size / 8)')
    .option('--cni-socket <path>', 'serve the CNI plugins on this unix socket, "none" = off (TORTIE_CNI_SOCKET; default <run dir>/cni.sock)')
    .action(async (o: RawNodeOptions & { nodename?: string }) => {
      // commander defaults a --no-x option to true: only an explicit --no-metrics overrides the environment.
      const config = resolveConfig({ ...o, nodeName: o.nodename, metrics: o.metrics === false ? false : undefined });
      const { runAgent } = await import('./run');
      exitCode = await runAgent(config);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof ConfigError) {
      process.stderr.write(`tortie-node: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  return exitCode;
}
