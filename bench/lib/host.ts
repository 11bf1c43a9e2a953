/**
 * What the run was measured on: machine, kernel, tool versions, git commit. Read-only probes
 * of this host (no namespace needed).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import type { RunMeta } from './results';

function tryRun(argv: string[], re?: RegExp): string {
  try {
    const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
    return pick(out, re);
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    const out = `${err.stdout ?? ''}${err.stderr ?? ''}`;
    return out ? pick(out, re) : 'unavailable';
  }
}

function pick(out: string, re?: RegExp): string {
  // eslint-disable-next-line no-control-regex
  const clean = out.replace(/\x1b\[[0-9;]*m/g, '');
  if (!re) return clean.trim().split('\n')[0] ?? '';
  const m = re.exec(clean);
  return m ? m[1]! : clean.trim().split('\n')[0] ?? '';
}

export function hostInfo(): RunMeta['host'] {
  let osName = os.type();
  try {
    const rel = readFileSync('/etc/os-release', 'utf8');
    osName = /PRETTY_NAME="([^"]+)"/.exec(rel)?.[1] ?? osName;
  } catch { /* keep os.type() */ }
  return {
    hostname: os.hostname(), cpus: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length,
    memoryBytes: os.totalmem(), kernel: os.release(), os: osName,
  };
}

export function toolVersions(repoRoot: string): { versions: Record<string, string>; gitCommit?: string } {
  let pkg = 'unknown';
  try { pkg = (JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as { version: string }).version; } catch { /* unknown */ }
  const versions: Record<string, string> = {
    tortie: pkg,
    node: process.version,
    iperf3: tryRun(['iperf3', '--version'], /iperf (\S+)/),
    sockperf: tryRun(['sockperf', '--version'], /version #?(\S+)/),
    wrk: tryRun(['wrk', '--version'], /wrk (\S+)/),
    nginx: tryRun(['nginx', '-v'], /nginx\/(\S+)/),
    iptables: tryRun(['iptables', '-V'], /iptables (v\S+ \(\S+\))/),
    ipset: tryRun(['ipset', '-v'], /(v\S+)/),
    clang: tryRun(['clang', '--version'], /version (\S+)/),
  };
  const commit = tryRun(['git', '-C', repoRoot, 'rev-parse', 'HEAD']);
  return { versions, gitCommit: /^[0-9a-f]{40}$/.test(commit) ? commit : undefined };
}
