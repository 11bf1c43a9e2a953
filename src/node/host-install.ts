/**
 * `tortie-node install` / `uninstall`: puts this installation of tortie on the host the way
 * Calico's install-cni and calico-node packaging do, and takes it off again.
 *
 *   <root>/etc/systemd/system/tortie-node.service   the shipped unit, ExecStart = this installation
 *   <root>/etc/tortie/tortie-node.env                settings with Calico's names (kept if present)
 *   <root>/opt/cni/bin/tortie, tortie-ipam           the CNI plugins (wrappers of this installation)
 *   <root>/etc/cni/net.d/10-tortie.conflist          the network configuration list
 *   <root>/var/lib/tortie/install.json               what install wrote, for uninstall
 *
 * Contract: install never starts, enables or reloads a service (it prints the systemctl
 * commands); `root` (default /) prefixes every path so packaging and tests install into a
 * directory. uninstall removes only what install.json lists and still matches what install
 * wrote (a file someone replaced is left, and named); the env file stays unless `purge`.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { installCni, tortieConfList, type TortieNetworkOptions } from '../cni/install';
import { AGENT_BIN, AGENT_NODE_FLAGS } from './launch';
import type { NodeConfig } from './config';

const PACKAGE_ROOT = resolve(__dirname, '..', '..', '..');
export const UNIT_TEMPLATE = join(PACKAGE_ROOT, 'packaging', 'systemd', 'tortie-node.service');
export const ENV_TEMPLATE = join(PACKAGE_ROOT, 'packaging', 'tortie-node.env');

export interface InstallOptions {
  root: string;
  config: NodeConfig;
  cniBinDir?: string;
  cniNetDir?: string;
}

interface Manifest { version: 1; unit: string; envFile?: string; cniBinaries: string[]; confList: string; launcherDir: string }

export interface InstallResult { written: string[]; kept: string[]; manifest: string }

function under(root: string, p: string): string {
  return join(resolve(root), p);
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** The shipped unit with ExecStart pointing at this installation's node and launcher. */
export function renderUnit(template = readFileSync(UNIT_TEMPLATE, 'utf8')): string {
  const exec = [process.execPath, ...AGENT_NODE_FLAGS, AGENT_BIN, 'run'].join(' ');
  if (!/^ExecStart=.*$/m.test(template)) throw new Error(`${UNIT_TEMPLATE} has no ExecStart line`);
  return template.replace(/^ExecStart=.*$/m, `ExecStart=${exec}`);
}

function networkOf(c: NodeConfig): TortieNetworkOptions {
  return {
    nodename: c.nodeName,
    datastore: c.datastoreType === 'etcdv3' ? { type: 'etcdv3', endpoints: c.etcd.endpoints } : { type: 'embedded', dir: c.storeDir },
    policyOnly: c.policyOnly || undefined,
    interfacePrefix: c.interfacePrefix === 'cali' ? undefined : c.interfacePrefix,
  };
}

export function installOnHost(o: InstallOptions): InstallResult {
  const written: string[] = [];
  const kept: string[] = [];
  const unit = under(o.root, '/etc/systemd/system/tortie-node.service');
  writeAtomic(unit, renderUnit());
  written.push(unit);

  const envFile = under(o.root, '/etc/tortie/tortie-node.env');
  let envWritten = false;
  if (existsSync(envFile)) {
    kept.push(envFile);
  } else {
    let text = readFileSync(ENV_TEMPLATE, 'utf8').replace(/^#NODENAME=$/m, `NODENAME=${o.config.nodeName}`);
    if (o.config.datastoreType === 'etcdv3') {
      text = text.replace(/^#DATASTORE_TYPE=etcdv3$/m, 'DATASTORE_TYPE=etcdv3').replace(/^#ETCD_ENDPOINTS=.*$/m, `ETCD_ENDPOINTS=${o.config.etcd.endpoints.join(',')}`);
    }
    writeAtomic(envFile, text);
    written.push(envFile);
    envWritten = true;
  }

  const binDir = under(o.root, o.cniBinDir ?? '/opt/cni/bin');
  const confDir = under(o.root, o.cniNetDir ?? '/etc/cni/net.d');
  const cni = installCni({ binDir, confDir, network: networkOf(o.config) });
  written.push(...cni.binaries, cni.confList!);

  const manifestPath = under(o.root, '/var/lib/tortie/install.json');
  const m: Manifest = { version: 1, unit, envFile: envWritten ? envFile : undefined, cniBinaries: cni.binaries, confList: cni.confList!, launcherDir: dirname(AGENT_BIN) };
  writeAtomic(manifestPath, JSON.stringify(m, null, 2) + '\n');
  return { written, kept, manifest: manifestPath };
}

export interface UninstallResult { removed: string[]; left: { path: string; why: string }[] }

export function uninstallFromHost(o: { root: string; purge?: boolean }): UninstallResult {
  const manifestPath = under(o.root, '/var/lib/tortie/install.json');
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch {
    throw new Error(`nothing to uninstall: ${manifestPath} is missing or unreadable (written by tortie-node install)`);
  }
  const removed: string[] = [];
  const left: { path: string; why: string }[] = [];
  const remove = (p: string, ours: () => boolean, why: string) => {
    if (!existsSync(p) && !isLink(p)) return;
    if (!ours()) { left.push({ path: p, why }); return; }
    rmSync(p, { force: true });
    removed.push(p);
  };
  remove(m.unit, () => readFileSync(m.unit, 'utf8').includes(AGENT_BIN), 'no longer the unit install wrote (ExecStart changed)');
  // The plugins are wrappers that exec this installation's launchers (src/cni/install.ts).
  for (const b of m.cniBinaries) remove(b, () => readFileSync(b, 'utf8').includes(join(m.launcherDir, `${basename(b)}.js`)), 'no longer a wrapper of this installation');
  remove(m.confList, () => {
    try { return (JSON.parse(readFileSync(m.confList, 'utf8')) as { plugins?: { type?: string }[] }).plugins?.[0]?.type === tortieConfList({ nodename: 'x', datastore: { type: 'embedded', dir: '/' } }).plugins[0]!.type; } catch { return false; }
  }, 'not a tortie network configuration any more');
  if (m.envFile) {
    if (o.purge) remove(m.envFile, () => true, '');
    else left.push({ path: m.envFile, why: 'settings are kept (--purge removes them)' });
  }
  rmSync(manifestPath, { force: true });
  removed.push(manifestPath);
  return { removed, left };
}

function isLink(p: string): boolean {
  try { return lstatSync(p).isSymbolicLink(); } catch { return false; }
}
