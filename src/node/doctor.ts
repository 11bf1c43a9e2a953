/**
 * `tortie-node doctor`: checks, one by one, the kernel features tortie needs, and says what to do
 * about each failure. Interface checks run in a throwaway pair of network namespaces joined by a
 * veth (198.18.0.0/30), removed afterwards; nothing in the root namespace is touched.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BpfMap, BpfObject, XdpAction, TcAction, possibleCpus, tcAttach, xdpAttach, xdpQuery, tcQuery } from '../dataplane/native';
import { Topology } from '../util/netns';
import { flowPacket, PROTO } from '../dataplane/bpf/packet';
import { loadWep } from '../dataplane/bpf/loader';
import { sumPerCpuCounters } from '../dataplane/bpf/net-codecs';
import type { HostRoutingMode } from '../dataplane/bpf/host-routing';

export interface CheckResult { name: string; ok: boolean; detail: string; fix?: string }

const PROBE_OBJECT = resolve(__dirname, '../../../bpf/out/tortie_probe.bpf.o');

/** The bpffs mount point `dir` is at or below, if any. */
function bpffsMountOf(dir: string): string | undefined {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' '));
  return mounts.find((m) => m[2] === 'bpf' && (dir === m[1] || dir.startsWith(`${m[1]}/`)))?.[1];
}

/** `dir` is on a bpf filesystem (at or below a bpffs mount point). */
export function isBpffsMounted(dir: string): boolean {
  return bpffsMountOf(dir) !== undefined;
}

function ipv4Udp(): Buffer {
  return flowPacket({ src: '198.18.0.1', dst: '198.18.0.2', proto: PROTO.UDP, sport: 1000, dport: 2000 });
}

/**
 * `hostRouting`: the mode the agent is configured with (--bpf-host-routing,
 * TORTIE_BPF_HOST_ROUTING); the check loads the real workload object with it and reports the
 * mode the agent would run in, and why.
 */
export async function runDoctor(opts: { bpffsRoot: string; hostRouting?: HostRoutingMode }): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const check = async (name: string, fix: string, fn: () => Promise<string> | string): Promise<boolean> => {
    try {
      results.push({ name, ok: true, detail: await fn() });
      return true;
    } catch (e) {
      results.push({ name, ok: false, detail: (e as Error).message.split('\n')[0]!, fix });
      return false;
    }
  };

  const root = await check('running as root', 'run as root (sudo): BPF, tc and namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN', () => {
    if (process.geteuid?.() !== 0) throw new Error(`effective uid is ${process.geteuid?.()}`);
    return 'uid 0';
  });
  await check('BTF (/sys/kernel/btf/vmlinux)', 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian 12 kernels are)', () => {
    if (!existsSync('/sys/kernel/btf/vmlinux')) throw new Error('missing');
    return 'present';
  });
  await check(`bpffs mounted (${opts.bpffsRoot})`, 'mount it: mount -t bpf bpf /sys/fs/bpf (npm start does this)', () => {
    if (!isBpffsMounted(opts.bpffsRoot)) throw new Error(`no bpf filesystem at or above ${opts.bpffsRoot}`);
    return 'mounted';
  });
  if (!root) return results;

  const syscall = await check('bpf() syscall (create a map)', 'enable CONFIG_BPF_SYSCALL; check kernel.unprivileged_bpf_disabled is not the issue (we run as root) and that no LSM blocks bpf()', () => {
    const m = BpfMap.create({ type: 'ARRAY', keySize: 4, valueSize: 8, maxEntries: 1, name: 'tortie_doctor' });
    m.close();
    return `ok (${possibleCpus()} possible CPUs)`;
  });
  if (!syscall) return results;

  let obj: BpfObject | undefined;
  const loaded = await check('load BPF programs (verifier)', 'run `npm run build` (needs clang); if the verifier rejects, the log above says why', async () => {
    if (!existsSync(PROBE_OBJECT)) throw new Error(`${PROBE_OBJECT} not built`);
    obj = BpfObject.open(PROBE_OBJECT);
    await obj.load();
    return 'probe object loaded';
  });
  if (!loaded || !obj) return results;
  await check('BPF host routing, IPv4 and IPv6 (bpf_redirect_peer, bpf_redirect_neigh, bpf_check_mtu)', 'run `npm run build`; the kernel path needs nothing more', async () => {
    // Its own pins in a throwaway directory at the bpffs mount (maps are pinned by name at load).
    const mount = bpffsMountOf(opts.bpffsRoot);
    if (!mount) throw new Error(`${opts.bpffsRoot} is not on a bpf filesystem`);
    const pins = mkdtempSync(join(mount, 'tortie-doctor-'));
    try {
      const wep = await loadWep({ pinRoot: pins, hostRouting: opts.hostRouting, ctMaxEntries: 1024, events: false });
      const hr = wep.hostRouting;
      wep.close();
      if (hr.mode === 'off') {
        const avail = await loadWep({ pinRoot: pins, hostRouting: 'auto', ctMaxEntries: 1024, events: false });
        const can = avail.hostRouting.active;
        avail.close();
        return `off (${hr.reason}); ${can ? 'this kernel has the helpers: --bpf-host-routing=auto would turn it on' : 'this kernel could not use it either'}`;
      }
      return `${hr.active ? 'on' : 'off'} (mode ${hr.mode}: ${hr.reason})`;
    } finally {
      rmSync(pins, { recursive: true, force: true });
    }
  });
  const probe = obj;
  try {
    await check('BPF_PROG_TEST_RUN (XDP and tc)', 'needs a kernel with BPF_PROG_TEST_RUN for XDP and sched_cls (4.12+)', () => {
      const x = probe.program('probe_xdp').testRun(ipv4Udp());
      const c = probe.program('probe_tc').testRun(ipv4Udp());
      if (x.retval !== XdpAction.PASS) throw new Error(`XDP returned ${x.retval}, expected XDP_PASS`);
      if (c.retval !== TcAction.OK) throw new Error(`tc returned ${c.retval}, expected TC_ACT_OK`);
      return `XDP ${x.durationNs} ns, tc ${c.durationNs} ns per run`;
    });

    const topo = Topology.create('doctor');
    try {
      const a = await topo.addNetns('a');
      const b = await topo.addNetns('b');
      await topo.addVeth(a, 'veth0', b, 'veth0');
      await a.exec(['ip', 'addr', 'add', '198.18.0.1/30', 'dev', 'veth0']);
      await b.exec(['ip', 'addr', 'add', '198.18.0.2/30', 'dev', 'veth0']);
      const counters = probe.map('tortie_probe_v1');
      /** tortie_probe_v1: slot 0 counts what probe_xdp saw, slot 1 probe_tc. */
      const seenBy = (prog: 'xdp' | 'tc') => sumPerCpuCounters(counters, ['xdp', 'tc'] as const)[prog];
      const ping = () => a.exec(['ping', '-c', '3', '-i', '0.05', '-W', '1', '198.18.0.2'], { allowFail: true });

      await check('tc clsact on veth (attach, traffic, query)', 'needs CONFIG_NET_CLS_ACT and CONFIG_NET_SCH_INGRESS (clsact qdisc)', async () => {
        const before = seenBy('tc');
        const f = tcAttach({ iface: 'veth0', netns: b.path, direction: 'ingress', program: probe.program('probe_tc') });
        await ping();
        const seen = seenBy('tc') - before;
        if (seen < 3n) throw new Error(`tc program saw ${seen} packets, expected at least 3`);
        const q = tcQuery({ iface: 'veth0', netns: b.path, direction: 'ingress' });
        if (!q || q.progId !== f.progId) throw new Error('query did not find the attached program');
        return `${seen} packets counted on ingress`;
      });
      await check('XDP on veth (native mode)', 'needs a 5.9+ kernel for native XDP on veth; generic mode works on older ones but slower', async () => {
        const before = seenBy('xdp');
        xdpAttach({ iface: 'veth0', netns: b.path, program: probe.program('probe_xdp'), mode: 'native' });
        await ping();
        const seen = seenBy('xdp') - before;
        if (seen < 3n) throw new Error(`XDP program saw ${seen} packets, expected at least 3`);
        const q = xdpQuery({ iface: 'veth0', netns: b.path });
        if (q.attachMode !== 'native') throw new Error(`attach mode is ${q.attachMode}`);
        return `${seen} packets counted`;
      });
    } catch (e) {
      results.push({ name: 'test namespaces', ok: false, detail: (e as Error).message.split('\n')[0]!, fix: 'needs iproute2 and network namespace support' });
    } finally {
      topo.destroySync();
    }
  } finally {
    probe.close();
  }
  return results;
}

export function formatResults(results: CheckResult[]): string {
  const lines = results.map((r) => `${r.ok ? '[ ok ]' : '[FAIL]'} ${r.name}: ${r.detail}${r.ok || !r.fix ? '' : `\n       → ${r.fix}`}`);
  const failed = results.filter((r) => !r.ok).length;
  lines.push(failed === 0 ? `all ${results.length} checks passed: this host can run tortie` : `${failed} of ${results.length} checks failed`);
  return lines.join('\n') + '\n';
}
