/**
 * `tortiectl node diags` and `tortiectl node checksystem`: what an operator runs on a node
 * before asking for help, and before (or instead of) starting the agent.
 *
 * node diags: one archive, `tortie-diags-<time>.tar.gz` (default in the temp directory; --output
 * names the file), with
 *   agents.txt                 live agents and stale records of the run directory
 *   config/                    the agents' state and tortiectl records, /etc/tortie/*.env, the
 *                              tortie CNI conflists, the resolved datastore (no key material)
 *   logs/                      each agent's log file (state or tortiectl record), <log-dir>/*.log,
 *                              and the tortie-node unit's journal when systemd runs
 *   metrics/<node>.prom        /metrics of each live agent; health/<node>.txt its /readiness
 *   bpf/pins.txt               the pins under the bpffs root
 *   bpf/programs.json          bpftool's view of the pinned programs and of those attached here
 *   bpf/maps/<name>.json       bpftool dump of each pinned map (bounded, truncation is said)
 *   net/attachments.json       bpftool net show (tc and XDP on every interface); net/tc.txt
 *   net/routes.txt, links.txt, addresses.txt, rules.txt; sysctls.txt; versions.txt
 * Each collector that fails leaves `<file>.error` saying why; the archive is still written.
 *
 * node checksystem: `tortie-node doctor`'s kernel checks, plus: the datastore answers (a read
 * within 5 s), and the node address autodetection finds an address with the given method.
 * Exit 0 when every check passes, 1 otherwise (each failure says what to do).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DATASTORE_OPTIONS, invalidOption, parseArgs } from './args';
import { openConfiguredDatastore, resolveDatastoreConfig } from './datastore-config';
import { CliError, type CliIO } from './io';
import { liveAgents, DEFAULT_RUN_DIR } from '../node/agents';
import { httpGet } from './node-commands';
import { VERSION } from '../version';
import { resourcePrefix } from '../datastore/keys';
import { run } from '../util/exec';

const DUMP_LIMIT = 8 << 20;

/** A command's output, its exit code and, when it failed without saying why on stderr, why. */
async function sh(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await run(argv, { allowFail: true, maxBuffer: DUMP_LIMIT });
  const why = r.error ?? `Command failed: ${argv.join(' ')}\n`;
  return { code: r.code, out: r.stdout, err: r.code === 1 && !r.stderr ? why : r.stderr };
}

async function get(host: string, port: number, p: string): Promise<string> {
  const r = await httpGet(port, p, 5000, host);
  if ('error' in r) throw new Error(`GET http://${host}:${port}${p}: ${r.error}`);
  return `${r.status}\n${r.body}\n`;
}

function walk(dir: string, out: string[] = []): string[] {
  let entries: fs.Dirent[];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return out; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

function diagsUsage(binary: string): string {
  return `Usage:
  ${binary} node diags [--output=<FILE>] [--log-dir=<DIR>] [--run-dir=<DIR>] [--bpffs-root=<DIR>] [options]

Collects this node's diagnostics into one .tar.gz: agent logs, configuration, metrics, bpftool
dumps of tortie's pinned maps and programs, tc/XDP attachments, routes, sysctls.

Options:
     --output=<FILE>       Archive to write [default: <tmp>/tortie-diags-<time>.tar.gz].
     --log-dir=<DIR>       Agent logs written by node run [default: /var/log/tortie].
     --run-dir=<DIR>       Agents' run directory [default: ${DEFAULT_RUN_DIR}].
     --bpffs-root=<DIR>    Pins to dump when no live agent says [default: /sys/fs/bpf/tortie].
`;
}

export async function nodeDiags(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 2, [...DATASTORE_OPTIONS, { long: 'output', value: true }, { long: 'log-dir', value: true },
    { long: 'run-dir', value: true }, { long: 'bpffs-root', value: true }]);
  if (args.flag('help')) { io.stdout.write(diagsUsage(binary)); return 0; }
  if (args.positionals.length > 0) throw invalidOption(binary, argv);
  const runDir = path.resolve(io.cwd, args.get('run-dir') ?? io.env.TORTIE_RUN_DIR ?? DEFAULT_RUN_DIR);
  const logDir = path.resolve(io.cwd, args.get('log-dir') ?? '/var/log/tortie');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const output = path.resolve(io.cwd, args.get('output') ?? path.join(os.tmpdir(), `tortie-diags-${stamp}.tar.gz`));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-diags-'));
  const top = `tortie-diags-${stamp}`;
  const base = path.join(work, top);
  const put = (rel: string, text: string) => {
    const p = path.join(base, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  };
  const collect = async (rel: string, fn: () => Promise<string> | string) => {
    try { put(rel, await fn()); } catch (e) { put(`${rel}.error`, `${(e as Error).message}\n`); }
  };
  const cmd = async (rel: string, argv2: string[]) => collect(rel, async () => {
    const r = await sh(argv2);
    if (r.code !== 0) throw new Error(`${argv2.join(' ')}: exit ${r.code}: ${r.err.trim()}`);
    return r.out;
  });
  io.stdout.write(`Collecting diagnostics into ${output}\n`);
  try {
    const { live, stale } = liveAgents(runDir);
    put('agents.txt', [`run dir ${runDir}`, ...live.map((a) => `live  ${a.node} pid ${a.pid} health ${a.healthPort ?? '-'} metrics ${a.metricsPort ?? '-'} pins ${a.bpffsRoot ?? '-'}`),
      ...stale.map((a) => `stale ${a.node} pid ${a.pid} (${a.pidFile})`)].join('\n') + '\n');

    // config
    for (const f of walk(runDir).filter((f) => f.endsWith('.json'))) await collect(`config/run/${path.basename(f)}`, () => fs.readFileSync(f, 'utf8'));
    for (const f of walk('/etc/tortie').filter((f) => f.endsWith('.env') || f.endsWith('.cfg'))) await collect(`config/etc-tortie/${path.basename(f)}`, () => fs.readFileSync(f, 'utf8'));
    for (const f of walk('/etc/cni/net.d').filter((f) => /tortie/.test(path.basename(f)))) await collect(`config/cni/${path.basename(f)}`, () => fs.readFileSync(f, 'utf8'));
    await collect('config/datastore.json', () => JSON.stringify(resolveDatastoreConfig(args, io), null, 2) + '\n');

    // logs
    const logs = new Set<string>(walk(logDir).filter((f) => f.endsWith('.log')));
    for (const a of [...live, ...stale]) if (a.logFile) logs.add(a.logFile);
    for (const f of logs) await collect(`logs/${path.basename(f)}`, () => fs.readFileSync(f, 'utf8'));
    // Under systemd the agent's screen log is in the journal.
    if (fs.existsSync('/run/systemd/system')) await cmd('logs/journal-tortie-node.txt', ['journalctl', '-u', 'tortie-node', '--no-pager', '-n', '20000']);

    // metrics and health of the live agents
    for (const a of live) {
      if (a.metricsPort) await collect(`metrics/${a.node}.prom`, async () => (await get(a.metricsHost ?? '127.0.0.1', a.metricsPort!, '/metrics')).replace(/^\d+\n/, ''));
      if (a.healthPort) await collect(`health/${a.node}.txt`, () => get(a.healthHost ?? '127.0.0.1', a.healthPort!, '/readiness'));
    }

    // BPF: pins of the agents (or --bpffs-root), their maps and programs
    const roots = new Set<string>(live.map((a) => a.bpffsRoot).filter((r): r is string => !!r));
    if (roots.size === 0 || args.get('bpffs-root') !== undefined) roots.add(path.resolve(io.cwd, args.get('bpffs-root') ?? '/sys/fs/bpf/tortie'));
    const pins = [...roots].flatMap((r) => walk(r));
    put('bpf/pins.txt', pins.join('\n') + '\n');
    const programs: unknown[] = [];
    for (const pin of pins) {
      const show = await sh(['bpftool', '-j', 'map', 'show', 'pinned', pin]);
      if (show.code === 0) {
        const info = JSON.parse(show.out) as { name?: string; id: number; type?: string };
        if (info.type === 'ringbuf') { put(`bpf/maps/${info.name ?? info.id}-${info.id}.json`, JSON.stringify({ info, entries: 'a ring buffer has no entries to dump' }) + '\n'); continue; }
        await collect(`bpf/maps/${info.name ?? info.id}-${info.id}.json`, async () => {
          const d = await sh(['bpftool', '-j', 'map', 'dump', 'pinned', pin]);
          if (d.code !== 0) throw new Error(d.err.includes('maxBuffer') ? `dump larger than ${DUMP_LIMIT} bytes: not included` : d.err.trim());
          return JSON.stringify({ info, entries: JSON.parse(d.out) as unknown }, null, 1) + '\n';
        });
        continue;
      }
      const prog = await sh(['bpftool', '-j', 'prog', 'show', 'pinned', pin]);
      if (prog.code === 0) programs.push({ pin, ...(JSON.parse(prog.out) as object) });
    }
    const net = await sh(['bpftool', '-j', 'net', 'show']);
    if (net.code === 0) {
      put('net/attachments.json', net.out);
      const ids = new Set<number>();
      const scan = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(scan);
        else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { if (k === 'id' && typeof x === 'number') ids.add(x); else scan(x); }
      };
      scan(JSON.parse(net.out));
      for (const id of ids) {
        const p = await sh(['bpftool', '-j', 'prog', 'show', 'id', String(id)]);
        if (p.code === 0) {
          const info = JSON.parse(p.out) as { name?: string };
          if (info.name?.startsWith('tortie_')) programs.push({ attachedHere: true, ...info });
        }
      }
    } else put('net/attachments.json.error', net.err);
    put('bpf/programs.json', JSON.stringify(programs, null, 1) + '\n');

    // network state and sysctls of this namespace
    await collect('net/tc.txt', async () => {
      const links = JSON.parse((await sh(['ip', '-j', 'link', 'show'])).out) as { ifname: string }[];
      const parts: string[] = [];
      for (const l of links) {
        parts.push(`== ${l.ifname}`, (await sh(['tc', 'qdisc', 'show', 'dev', l.ifname])).out.trimEnd());
        for (const d of ['ingress', 'egress']) parts.push((await sh(['tc', 'filter', 'show', 'dev', l.ifname, d])).out.trimEnd());
      }
      return parts.filter(Boolean).join('\n') + '\n';
    });
    await cmd('net/routes.txt', ['ip', '-4', 'route', 'show', 'table', 'all']);
    await cmd('net/rules.txt', ['ip', 'rule', 'show']);
    await cmd('net/links.txt', ['ip', '-d', 'link', 'show']);
    await cmd('net/addresses.txt', ['ip', 'addr', 'show']);
    await collect('sysctls.txt', async () => {
      const r = await sh(['sysctl', '-a']);
      return r.out.split('\n').filter((l) => /^(net\.ipv4\.|net\.core\.bpf|kernel\.unprivileged_bpf|net\.netfilter\.nf_conntrack_max)/.test(l)).join('\n') + '\n';
    });
    await collect('versions.txt', async () => [`tortie ${VERSION}`, `node ${process.version}`, `kernel ${os.release()}`,
      (await sh(['bpftool', 'version'])).out.trim(), (await sh(['ip', '-V'])).out.trim()].join('\n') + '\n');

    fs.mkdirSync(path.dirname(output), { recursive: true });
    const tar = await sh(['tar', '-czf', output, '-C', work, top]);
    if (tar.code !== 0) throw new CliError(`Error executing command: could not write ${output}: ${tar.err.trim()}`, 'ERR_CLI_DIAGS');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  io.stdout.write(`Diags saved to ${output}\n`);
  return 0;
}

// ---------------------------------------------------------------- checksystem

function checksystemUsage(binary: string): string {
  return `Usage:
  ${binary} node checksystem [--ip=<IP>] [--ip-autodetection-method=<METHOD>] [--bpffs-root=<DIR>] [options]

Checks that this host can run tortie-node: the kernel features (as tortie-node doctor), the
datastore answering, and the node address autodetection (--ip, --ip-autodetection-method as for
node run; IP and IP_AUTODETECTION_METHOD from the environment otherwise).
`;
}

export async function nodeChecksystem(binary: string, argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(binary, argv, 2, [...DATASTORE_OPTIONS, { long: 'ip', value: true }, { long: 'ip-autodetection-method', value: true },
    { long: 'bpffs-root', value: true }]);
  if (args.flag('help')) { io.stdout.write(checksystemUsage(binary)); return 0; }
  if (args.positionals.length > 0) throw invalidOption(binary, argv);
  const { runDoctor, formatResults } = await import('../node/doctor');
  const { detectAddressAndInterface } = await import('../node/run');
  const results = await runDoctor({ bpffsRoot: path.resolve(io.cwd, args.get('bpffs-root') ?? '/sys/fs/bpf/tortie') });

  const ds = resolveDatastoreConfig(args, io);
  const where = ds.type === 'embedded' ? `embedded store ${ds.dir}` : `etcd ${ds.endpoints.join(',')}`;
  try {
    const store = openConfiguredDatastore(ds);
    try {
      let timer: NodeJS.Timeout | undefined;
      const listed = await Promise.race([
        store.list(resourcePrefix('nodes')),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5000); }),
      ]).finally(() => clearTimeout(timer));
      results.push({ name: `datastore reachable (${where})`, ok: true, detail: `${listed.items.length} node(s) registered, revision ${listed.revision}` });
    } finally {
      await store.close().catch(() => undefined);
    }
  } catch (e) {
    results.push({ name: `datastore reachable (${where})`, ok: false, detail: (e as Error).message.split('\n')[0]!,
      fix: ds.type === 'embedded' ? 'check the directory exists and is writable (TORTIE_DATASTORE_DIR, --store-dir)' : 'check ETCD_ENDPOINTS, the certificates, and that etcd is up (etcdctl endpoint health)' });
  }

  const ip = args.get('ip') ?? io.env.IP ?? 'autodetect';
  const method = args.get('ip-autodetection-method') ?? io.env.IP_AUTODETECTION_METHOD ?? 'first-found';
  try {
    const d = await detectAddressAndInterface(ip, method);
    results.push({ name: `node address (${ip === 'autodetect' ? method : 'explicit'})`, ok: true, detail: `${d.address}${d.ifname ? ` on ${d.ifname}` : ''}` });
  } catch (e) {
    results.push({ name: `node address (${ip === 'autodetect' ? method : ip})`, ok: false, detail: (e as Error).message,
      fix: 'give the address with --ip=ADDR/PREFIX (IP) or another --ip-autodetection-method (IP_AUTODETECTION_METHOD)' });
  }
  io.stdout.write(formatResults(results).replace(/this host can run tortie$/m, 'this host can run tortie-node'));
  return results.every((r) => r.ok) ? 0 : 1;
}
