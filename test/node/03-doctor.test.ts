import t from 'tap';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { leftoverNamespaces } from '../../src/util/netns';
import { formatResults } from '../../src/node/doctor';

const bin = resolve(__dirname, '../../../bin/tortie-node.js');

function runNode(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => execFile(process.execPath, [bin, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
    res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })));
}

t.test('doctor passes every check on this host and leaves nothing behind', async (t) => {
  const r = await runNode(['doctor']);
  t.equal(r.code, 0, r.stdout + r.stderr);
  for (const name of ['bpf() syscall', 'BTF', 'bpffs mounted', 'BPF_PROG_TEST_RUN', 'tc clsact on veth', 'XDP on veth']) {
    t.match(r.stdout, new RegExp(`\\[ ok \\] ${name.replace(/[()]/g, '\\$&')}`), name);
  }
  t.match(r.stdout, /all \d+ checks passed/);
  const mode = process.env.TORTIE_BPF_HOST_ROUTING?.trim().toLowerCase() === 'off' ? 'off' : 'auto';
  t.match(r.stdout, mode === 'auto'
    ? /\[ ok \] BPF host routing, IPv4 and IPv6 \(bpf_redirect_peer, bpf_redirect_neigh, bpf_check_mtu\): on \(mode auto: bpf_redirect_peer, bpf_redirect_neigh and bpf_check_mtu verified\)/
    : /\[ ok \] BPF host routing, IPv4 and IPv6 \(bpf_redirect_peer, bpf_redirect_neigh, bpf_check_mtu\): off \(off by configuration\); this kernel has the helpers/,
  'host routing: on by default (auto) where the kernel verifies its helpers');
  t.same(leftoverNamespaces('ttdoctor-'), [], 'doctor namespaces removed');
});

t.test('doctor reports the host-routing mode it is given, and refuses an unknown one', async (t) => {
  const r = await runNode(['doctor', '--bpf-host-routing', 'auto']);
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, /\[ ok \] BPF host routing, IPv4 and IPv6 \(bpf_redirect_peer, bpf_redirect_neigh, bpf_check_mtu\): on \(mode auto: bpf_redirect_peer, bpf_redirect_neigh and bpf_check_mtu verified\)/);
  const off = await runNode(['doctor', '--bpf-host-routing', 'off']);
  t.equal(off.code, 0, off.stdout + off.stderr);
  t.match(off.stdout, /\[ ok \] BPF host routing, IPv4 and IPv6 \(bpf_redirect_peer, bpf_redirect_neigh, bpf_check_mtu\): off \(off by configuration\); this kernel has the helpers/, 'off, and whether the kernel could run it');
  const bad = await runNode(['doctor', '--bpf-host-routing', 'on']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--bpf-host-routing: "on" is not one of auto, off/);
});

t.test('doctor output names the failure and the fix', async (t) => {
  const out = formatResults([
    { name: 'a', ok: true, detail: 'fine' },
    { name: 'XDP on veth (native mode)', ok: false, detail: 'attach mode is generic', fix: 'needs a 5.9+ kernel' },
  ]);
  t.match(out, /\[FAIL\] XDP on veth \(native mode\): attach mode is generic\n {7}→ needs a 5\.9\+ kernel/);
  t.match(out, /1 of 2 checks failed/);
});

t.test('tortie-node usage errors exit 2 with a message', async (t) => {
  const r = await runNode(['run', '--nodename', 'n1', '--ip', '300.1.1.1/24']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--ip: "300\.1\.1\.1\/24" is not/);
  const u = await runNode(['frobnicate']);
  t.not(u.code, 0);
  const v = await runNode(['version']);
  t.match(v.stdout, /^tortie-node \d+\.\d+\.\d+/);
});
