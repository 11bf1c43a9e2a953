import t from 'tap';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';

t.test('FelixConfiguration: honoured fields apply and read back, hints are warned, the rest is refused by field', async (t) => {
  const cli = cliFor(t);
  cli.file('ok.yaml', `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Warning
  logSeverityFile: Debug
  healthPort: 9199
  healthHost: 127.0.0.1
  prometheusMetricsEnabled: true
  prometheusMetricsPort: 9191
  prometheusMetricsHost: 127.0.0.1
  interfacePrefix: cali,tap
  natPortRange: 32768:40000
  natOutgoingAddress: 198.18.9.1
  ipipMTU: 8981
  mtuIfacePattern: ^eth
  bpfMapSizeConntrack: 262144
  bpfConntrackTimeouts:
    tcpEstablished: 2h
    udpTimeout: 30s
    icmpTimeout: Auto
  ipv6Support: false
  bpfEnabled: true
  chainInsertMode: Insert
  defaultEndpointToHostAction: accept
  failsafeInboundHostPorts:
  - {protocol: TCP, port: 2222}
  failsafeOutboundHostPorts: []
  routeRefreshInterval: 90s
  iptablesRefreshInterval: 60s
`);
  const r = await cli.run(['apply', '-f', 'ok.yaml']);
  t.same([r.code, r.stdout], [0, "Successfully applied 1 'FelixConfiguration' resource(s)\n"]);
  t.same(r.stderr.split('\n').filter(Boolean), [
    'Warning: FelixConfiguration default: spec.routeRefreshInterval: accepted but ignored: tortie reconciles routes on events and on every resync, not on a timer',
    'Warning: FelixConfiguration default: spec.iptablesRefreshInterval: accepted but ignored: tortie programs no iptables rules',
    "Warning: FelixConfiguration default: spec.bpfConntrackTimeouts.icmpTimeout: Auto means tortie's default (Calico's fixed default), not the Linux conntrack sysctl",
    'Note: tortie-node restarts itself to apply interfacePrefix, natPortRange, bpfMapSizeConntrack, bpfConntrackTimeouts, ipv6Support, defaultEndpointToHostAction, failsafeInboundHostPorts, failsafeOutboundHostPorts (as Felix does); the other fields apply while it runs',
  ], 'hints warned by field; the restart fields named');
  const y = YAML.parse((await cli.run(['get', 'felixconfiguration', 'default', '-o', 'yaml'])).stdout);
  t.same(y.spec, {
    logSeverityScreen: 'Warning', logSeverityFile: 'Debug', healthPort: 9199, healthHost: '127.0.0.1', prometheusMetricsEnabled: true,
    prometheusMetricsPort: 9191, prometheusMetricsHost: '127.0.0.1', interfacePrefix: 'cali,tap', natPortRange: '32768:40000',
    natOutgoingAddress: '198.18.9.1', ipipMTU: 8981, mtuIfacePattern: '^eth', bpfMapSizeConntrack: 262144,
    bpfConntrackTimeouts: { tcpEstablished: '2h', udpTimeout: '30s', icmpTimeout: 'Auto' }, ipv6Support: false, bpfEnabled: true,
    chainInsertMode: 'Insert', defaultEndpointToHostAction: 'Accept', failsafeInboundHostPorts: [{ protocol: 'TCP', port: 2222 }],
    failsafeOutboundHostPorts: [], routeRefreshInterval: '90s', iptablesRefreshInterval: '60s',
  });

  cli.file('live.yaml', 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n1}\nspec: {logSeverityScreen: Debug, ipipMTU: 1400}\n');
  t.same(await cli.run(['apply', '-f', 'live.yaml']), { code: 0, stdout: "Successfully applied 1 'FelixConfiguration' resource(s)\n", stderr: '' },
    'live fields only: no note, no warning');

  cli.file('rep0.yaml', 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n3}\nspec: {reportingInterval: 0s}\n');
  t.same((await cli.run(['apply', '-f', 'rep0.yaml'])).stderr, '', "reportingInterval 0s (what calico/node writes): what tortie does, silently");
  cli.file('rep30.yaml', 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n3}\nspec: {reportingInterval: 30s}\n');
  t.same((await cli.run(['apply', '-f', 'rep30.yaml'])).stderr,
    'Warning: FelixConfiguration node.n3: spec.reportingInterval: accepted but ignored: tortie-node writes no Felix status reports\n', 'another value: warned');

  // The Calico docs' own sample: ipipMTU is honoured now; chainInsertMode Append is not what tortie does.
  cli.file('docs.yaml', `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  ipv6Support: false
  ipipMTU: 1400
  chainInsertMode: Append
`);
  const d = await cli.run(['apply', '-f', 'docs.yaml']);
  t.equal(d.code, 1);
  t.match(d.stderr, /FelixConfiguration default: spec\.chainInsertMode: only "Insert" is supported: tortie's tc programs see every packet before any iptables rule/);
  t.notMatch(d.stderr, /ipipMTU/, 'ipipMTU is honoured');

  cli.file('refused.yaml', 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n1}\nspec: {wireguardEnabled: true, vxlanMTUV6: 1430, ipv6Support: true, logSeveritySys: Info}\n');
  const f = await cli.run(['apply', '-f', 'refused.yaml']);
  t.equal(f.code, 1);
  t.match(f.stderr, /spec\.wireguardEnabled: is not supported by tortie \(README, "FelixConfiguration fields", lists what tortie-node honours\)/);
  t.notMatch(f.stderr, /vxlanMTUV6/, 'vxlanMTUV6 is honoured (VXLAN over IPv6)');
  t.notMatch(f.stderr, /vxlanVNI/);
  t.notMatch(f.stderr, /ipv6Support/, 'ipv6Support is honoured (true: IPv6 programmed; false: none)');
  t.match(f.stderr, /spec\.logSeveritySys: only "None" is supported/);

  cli.file('bad.yaml', `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: node.n1}
spec:
  logSeverityScreen: Loud
  ipipMTU: 100
  vxlanMTU: 100
  vxlanMTUV6: 1200
  vxlanPort: 70000
  vxlanVNI: 0
  natOutgoingAddress: not-an-ip
  mtuIfacePattern: "(eth"
  defaultEndpointToHostAction: Allow
  bpfConntrackTimeouts: {tcpEstablished: forever, tcpSomething: 10s}
`);
  const b = await cli.run(['apply', '-f', 'bad.yaml']);
  t.equal(b.code, 1);
  t.match(b.stderr, /spec\.logSeverityScreen: must be one of Debug, Info, Warning, Error, Fatal, got "Loud"/);
  t.match(b.stderr, /spec\.ipipMTU: must be 0 \(detect\) or at least 576/);
  t.match(b.stderr, /spec\.vxlanMTU: must be 0 \(detect\) or at least 576/);
  t.match(b.stderr, /spec\.vxlanMTUV6: must be 0 \(detect\) or at least 1280/);
  t.match(b.stderr, /spec\.vxlanPort: 70000 is out of range \(1 to 65535\)/);
  t.match(b.stderr, /spec\.vxlanVNI: 0 is out of range \(1 to 16777215\)/);
  t.match(b.stderr, /spec\.natOutgoingAddress: must be an IP address, got "not-an-ip"/);
  t.match(b.stderr, /spec\.mtuIfacePattern: "\(eth" is not a regular expression/);
  t.match(b.stderr, /spec\.defaultEndpointToHostAction: must be one of Drop, Accept, Return, got "Allow"/);
  t.match(b.stderr, /spec\.bpfConntrackTimeouts\.tcpEstablished: must be "Auto" or a duration/);
  t.match(b.stderr, /spec\.bpfConntrackTimeouts\.tcpSomething: is not a conntrack timer/);
  cli.file('v6.yaml', 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n2}\nspec: {natOutgoingAddress: "fd00::1"}\n');
  t.match((await cli.run(['apply', '-f', 'v6.yaml'])).stderr, /spec\.natOutgoingAddress: fd00::1 is not an IPv4 address: natOutgoingAddress is IPv4 only, as in Calico/);
  t.equal((await cli.run(['get', 'felixconfiguration', 'node.n2'])).code, 1, 'nothing written');
});
