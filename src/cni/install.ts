/**
 * Installing the plugins where a CNI runtime looks for them (Calico's install-cni, in small):
 * `tortie` and `tortie-ipam` executables in a bin directory (shell wrappers that answer VERSION
 * and exec this checkout's launchers) and a network configuration list in a conf directory. Also the runtime's step of
 * turning one plugin entry of a list into the configuration that plugin reads on stdin, for
 * harnesses (the lab) that invoke the plugin themselves.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { CniResult } from './config';
import { SUPPORTED_VERSIONS } from './version';

/** Where the resident CNI server listens by default (src/cni/server.ts; not imported from it, to keep install light). */
export const DEFAULT_SOCKET = '/run/tortie/cni.sock';

const LAUNCHERS = resolve(__dirname, '..', '..', '..', 'bin');

export interface TortieNetworkOptions {
  /** Network name; Calico's default is k8s-pod-network (it prefixes IPAM handle ids). */
  name?: string;
  nodename: string;
  datastore: { type: 'embedded'; dir: string } | { type: 'etcdv3'; endpoints: string[] };
  mtu?: number;
  ipv4Pools?: string[];
  policyOnly?: boolean;
  interfacePrefix?: string;
  logLevel?: string;
}

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
}

export function tortieConfList(o: TortieNetworkOptions): NetworkConfigList {
  const plugin: Record<string, unknown> = {
    type: 'tortie',
    log_level: o.logLevel ?? 'warn',
    nodename: o.nodename,
    datastore_type: o.datastore.type,
    ...(o.datastore.type === 'embedded' ? { datastore_path: o.datastore.dir } : { etcd_endpoints: o.datastore.endpoints.join(',') }),
    ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
    policy: { type: 'k8s' },
  };
  if (o.policyOnly) {
    plugin.policy_only = true;
    plugin.interface_prefix = o.interfacePrefix ?? 'cali';
  } else {
    plugin.ipam = { type: 'tortie-ipam', ...(o.ipv4Pools ? { ipv4_pools: o.ipv4Pools } : {}) };
    if (o.interfacePrefix) plugin.interface_prefix = o.interfacePrefix;
  }
  return { cniVersion: '1.0.0', name: o.name ?? 'k8s-pod-network', plugins: [plugin] };
}

/** What a runtime feeds plugin `index` of a list: its entry plus name, cniVersion and prevResult. */
export function pluginConfig(list: NetworkConfigList, index = 0, prevResult?: CniResult): Record<string, unknown> {
  const entry = list.plugins[index];
  if (!entry) throw new RangeError(`network configuration list ${list.name} has no plugin #${index}`);
  return { ...entry, cniVersion: list.cniVersion, name: list.name, ...(prevResult ? { prevResult } : {}) };
}

/**
 * The resident server's client, in Perl (perl-base is Essential on Debian, starts in a few ms):
 * connects to the socket or, when nobody listens, execs the plugin process instead (stdin still
 * unread); sends the plugin name, the environment and stdin (wire format in server.ts); prints
 * the answer and exits with its status. A server that dies mid-request, answers garbage or
 * nothing within 180 s gives code 11 (as the C client).
 */
const PERL_CLIENT = String.raw`use strict; use Socket;
my ($path, $plugin, @fallback) = @ARGV;
my $s; socket($s, PF_UNIX, SOCK_STREAM, 0) && connect($s, pack_sockaddr_un($path)) or exec { $fallback[0] } @fallback;
binmode $s; binmode STDIN; binmode STDOUT;
$SIG{ALRM} = sub { print qq({"cniVersion":"1.0.0","code":11,"msg":"tortie CNI server on $path gave no answer within 180 s"}\n); exit 1; }; alarm 180;
my $req = "$plugin\n" . join("", map { "$_=$ENV{$_}\0" } sort keys %ENV) . "\0";
{ local $/; my $in = <STDIN>; $req .= $in if defined $in; }
my $off = 0;
while ($off < length $req) { my $n = syswrite($s, $req, length($req) - $off, $off); last unless $n; $off += $n; }
shutdown($s, 1);
my $resp = do { local $/; <$s> };
if (!defined $resp || $resp !~ s/^(\d{1,3})\n// || $1 > 255) { print qq({"cniVersion":"1.0.0","code":11,"msg":"tortie CNI server on $path gave no answer"}\n); exit 1; }
my $code = $1; print $resp; exit $code;`;

/**
 * The executable a runtime finds on CNI_PATH: a POSIX shell wrapper that answers VERSION itself
 * (no Node start: runtimes ask it of every plugin on every command), hands other commands to the
 * resident server when one listens on `socket` (src/cni/server.ts), and otherwise execs this
 * Node with the launcher. The version list is SUPPORTED_VERSIONS, written in at install time.
 */
export function launcherScript(name: 'tortie' | 'tortie-ipam', opts: { nodePath?: string; socket?: string; client?: string } = {}): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const list = SUPPORTED_VERSIONS.map((v) => `"${v}"`).join(',');
  const node = q(opts.nodePath ?? process.execPath);
  const launcher = q(join(LAUNCHERS, `${name}.js`));
  const socket = opts.socket ?? DEFAULT_SOCKET;
  return `#!/bin/sh
# ${name} CNI plugin, installed by tortie (src/cni/install.ts); regenerate rather than edit.
if [ "$CNI_COMMAND" = VERSION ]; then
  conf=
  while IFS= read -r line || [ -n "$line" ]; do conf="$conf$line"; done
  v=1.0.0
  case "$conf" in
    *'"cniVersion"'*) r=\${conf#*'"cniVersion"'}; r=\${r#*'"'}; r=\${r%%'"'*}
      case "$r" in ''|*[!0-9A-Za-z.+-]*) ;; *) v=$r ;; esac ;;
  esac
  printf '{"cniVersion":"%s","supportedVersions":[${list}]}\\n' "$v"
  exit 0
fi
if [ -S ${q(socket)} ]; then${opts.client ? `
  [ -x ${q(opts.client)} ] && exec ${q(opts.client)} ${q(socket)} ${name} ${node} ${launcher} "$@"` : ''}
  [ -x /usr/bin/perl ] && exec /usr/bin/perl -e ${q(PERL_CLIENT)} ${q(socket)} ${name} ${node} ${launcher} "$@"
fi
exec ${node} ${launcher} "$@"
`;
}

const CLIENT_SOURCE = join(LAUNCHERS, '..', 'src', 'cni', 'tortie-cni-client.c');
const CLIENT_BINARY = join(LAUNCHERS, '..', 'build', 'tortie-cni-client');

/**
 * The C client of the resident server (src/cni/tortie-cni-client.c), built into build/ when
 * missing or older than its source; undefined when there is no C compiler (the wrappers then
 * use the Perl client).
 */
export function cniClient(): string | undefined {
  try {
    if (statSync(CLIENT_BINARY).mtimeMs >= statSync(CLIENT_SOURCE).mtimeMs) return CLIENT_BINARY;
  } catch { /* not built yet */ }
  const tmp = `${CLIENT_BINARY}.tmp-${process.pid}`;
  try {
    mkdirSync(dirname(CLIENT_BINARY), { recursive: true });
    execFileSync('cc', ['-O2', '-Wall', '-o', tmp, CLIENT_SOURCE], { stdio: 'ignore', timeout: 60_000 });
    renameSync(tmp, CLIENT_BINARY);
    return CLIENT_BINARY;
  } catch {
    rmSync(tmp, { force: true });
    return undefined;
  }
}

function writeExecutable(path: string, text: string): void {
  try {
    if (readFileSync(path, 'utf8') === text) return;
  } catch { /* absent */ }
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o755 });
  renameSync(tmp, path);
}

/**
 * Puts `tortie` and `tortie-ipam` into `binDir` and, with `confDir`, writes
 * `<confDir>/10-tortie.conflist` atomically. Returns the paths written.
 */
export function installCni(opts: { binDir: string; confDir?: string; network?: TortieNetworkOptions; socket?: string; nodePath?: string }): { binaries: string[]; confList?: string } {
  mkdirSync(opts.binDir, { recursive: true });
  const client = cniClient();
  const binaries = (['tortie', 'tortie-ipam'] as const).map((name) => {
    const p = join(opts.binDir, name);
    writeExecutable(p, launcherScript(name, { socket: opts.socket, client, nodePath: opts.nodePath }));
    return p;
  });
  if (!opts.confDir || !opts.network) return { binaries };
  mkdirSync(opts.confDir, { recursive: true });
  const confList = join(opts.confDir, '10-tortie.conflist');
  const tmp = `${confList}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(tortieConfList(opts.network), null, 2) + '\n');
  renameSync(tmp, confList);
  return { binaries, confList };
}
