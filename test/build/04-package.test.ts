// The package as an operator gets it: `npm pack`, then `npm install -g` of the tarball into a
// temporary prefix (offline: everything it needs is in the tarball), and every command run from
// there — no build step, no devDependencies, nothing test-only. Then `tortie-node install` from
// the installed copy into a temporary root, its unit checked by `systemd-analyze verify`, and
// `tortie-node uninstall`.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SEED_POOL_YAML } from '../../src/lab/lab';

const ROOT = resolve(__dirname, '../../..');
const ENV = { ...process.env, NODE_OPTIONS: '' };

t.test('packed tarball installs globally and every command runs from the install', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-pkg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // --ignore-scripts: prepack would rebuild; the test runs on the build it was compiled with.
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, env: ENV, encoding: 'utf8' })) as { filename: string; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path);
  const own = files.filter((f) => !f.startsWith('node_modules/'));
  t.ok(own.some((f) => f === 'build/Release/tortie_native.node'), 'the addon (N-API 8) is in the package');
  for (const o of ['tortie_wep', 'tortie_xdp', 'tortie_uplink', 'tortie_probe']) t.ok(own.includes(`bpf/out/${o}.bpf.o`), `${o}.bpf.o is in the package`);
  t.ok(own.includes('packaging/systemd/tortie-node.service') && own.includes('packaging/tortie-node.env'), 'unit and env file template');
  t.same(own.filter((f) => (/^(test|bench|src|native|dist\/test|dist\/bench|scripts)\//.test(f) && f !== 'src/cni/tortie-cni-client.c') || /\.ts$|tnative/.test(f)), [], 'nothing test-only, no sources (but the CNI client\'s C source)');
  t.same(files.filter((f) => /^node_modules\/(tap|typescript|@tapjs|cmake-js|node-addon-api)\//.test(f)), [], 'no devDependencies bundled');

  const prefix = join(dir, 'prefix');
  execFileSync('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', join(dir, packed[0]!.filename)], { env: ENV, encoding: 'utf8', stdio: 'pipe' });
  const bin = (n: string) => join(prefix, 'bin', n);
  const pkg = join(prefix, 'lib', 'node_modules', 'tortie');
  t.notOk(existsSync(join(pkg, 'node_modules', 'typescript')), 'typescript is not installed');
  const sh = (argv: string[], env: NodeJS.ProcessEnv = {}, input?: string) => spawnSync(argv[0]!, argv.slice(1), { env: { ...ENV, ...env }, encoding: 'utf8', input, cwd: dir });

  const help = sh([bin('tortie-node'), '--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /`run` is assumed/, 'tortie-node --help says run is the default');
  t.match(sh([bin('tortie-node'), 'version']).stdout, /^tortie-node \d+\.\d+\.\d+/);
  t.match(sh([bin('tortie-lab'), '--help']).stdout, /^Usage: tortie-lab/, 'tortie-lab --help prints help (starts nothing)');
  const doctor = sh([bin('tortie-node'), 'doctor', '--bpffs-root', '/sys/fs/bpf']);
  t.equal(doctor.status, 0, `doctor from the install loads the addon and the BPF objects:\n${doctor.stdout}${doctor.stderr}`);
  for (const plugin of ['tortie', 'tortie-ipam']) {
    const v = sh([bin(plugin)], { CNI_COMMAND: 'VERSION' });
    t.equal(v.status, 0, `${plugin} VERSION: ${v.stderr}`);
    t.match(JSON.parse(v.stdout), { supportedVersions: Array }, `${plugin} answers VERSION`);
  }
  const store = { DATASTORE_TYPE: 'embedded', TORTIE_DATASTORE_DIR: join(dir, 'store') };
  const apply = sh([bin('tortiectl'), 'apply', '-f', '-'], store, SEED_POOL_YAML);
  t.equal(apply.status, 0, apply.stderr);
  t.match(sh([bin('tortiectl'), 'get', 'ippools'], store).stdout, /192\.168\.0\.0\/16/, 'tortiectl from the install reads back what it wrote');

  // tortie-node install into a temporary root, from the installed copy.
  const root = join(dir, 'root');
  const inst = sh([bin('tortie-node'), 'install', '--root', root, '--nodename', 'node-x', '--etcd-endpoints', 'http://198.18.0.1:2379']);
  t.equal(inst.status, 0, inst.stderr);
  const unit = join(root, 'etc/systemd/system/tortie-node.service');
  const unitText = readFileSync(unit, 'utf8');
  t.match(unitText, new RegExp(`^ExecStart=${process.execPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} --max-semi-space-size=8 ${pkg}/bin/tortie-node\\.js run$`, 'm'), 'ExecStart runs this installation');
  t.match(unitText, /^EnvironmentFile=-\/etc\/tortie\/tortie-node\.env$/m);
  t.match(unitText, /^CapabilityBoundingSet=.*CAP_BPF.*CAP_NET_ADMIN/m);
  t.match(unitText, /^Restart=always$/m);
  t.match(unitText, /^RequiresMountsFor=\/sys\/fs\/bpf$/m);
  const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  t.equal(verify.status, 0, `systemd-analyze verify accepts the unit: ${verify.stderr}`);
  t.equal(verify.stderr.trim(), '', 'without warnings');
  const env = readFileSync(join(root, 'etc/tortie/tortie-node.env'), 'utf8');
  t.match(env, /^NODENAME=node-x$/m);
  t.match(env, /^DATASTORE_TYPE=etcdv3$/m);
  t.match(env, /^ETCD_ENDPOINTS=http:\/\/198\.18\.0\.1:2379$/m);
  t.match(env, /^FELIX_PROMETHEUSMETRICSPORT=9091$/m);
  t.match(readFileSync(join(root, 'opt/cni/bin/tortie'), 'utf8'), `exec '${process.execPath}' '${join(pkg, 'bin', 'tortie.js')}'`, 'CNI plugin wraps the installation');
  t.match(readFileSync(join(root, 'opt/cni/bin/tortie-ipam'), 'utf8'), `'${join(pkg, 'bin', 'tortie-ipam.js')}'`);
  const conf = JSON.parse(readFileSync(join(root, 'etc/cni/net.d/10-tortie.conflist'), 'utf8'));
  t.match(conf, { name: 'k8s-pod-network', plugins: [{ type: 'tortie', nodename: 'node-x', datastore_type: 'etcdv3', etcd_endpoints: 'http://198.18.0.1:2379', ipam: { type: 'tortie-ipam' } }] });
  const cniVersion = sh([join(root, 'opt/cni/bin/tortie')], { CNI_COMMAND: 'VERSION' });
  t.equal(cniVersion.status, 0, 'the placed plugin runs');

  // An operator's edit of the env file survives a second install; uninstall keeps it unless --purge.
  writeFileSync(join(root, 'etc/tortie/tortie-node.env'), env + 'FELIX_LOGSEVERITYSCREEN=debug\n');
  t.match(sh([bin('tortie-node'), 'install', '--root', root]).stdout, /kept .*tortie-node\.env/);
  const un = sh([bin('tortie-node'), 'uninstall', '--root', root]);
  t.equal(un.status, 0, un.stderr);
  t.notOk(existsSync(unit), 'unit removed');
  t.same(readdirSync(join(root, 'opt/cni/bin')), [], 'CNI plugins removed');
  t.same(readdirSync(join(root, 'etc/cni/net.d')), [], 'conflist removed');
  t.ok(existsSync(join(root, 'etc/tortie/tortie-node.env')), 'settings kept');
  t.equal(sh([bin('tortie-node'), 'uninstall', '--root', root]).status, 1, 'a second uninstall says there is nothing to uninstall');
});
