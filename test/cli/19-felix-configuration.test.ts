import t from 'tap';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';

t.test('FelixConfiguration: what tortie-node honours applies and reads back; the rest is refused by field', async (t) => {
  const cli = cliFor(t);
  cli.file('ok.yaml', `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Warning
  healthPort: 9199
  healthHost: 127.0.0.1
  interfacePrefix: cali
  natPortRange: 32768:40000
  bpfMapSizeConntrack: 262144
  ipv6Support: false
  bpfEnabled: true
  defaultEndpointToHostAction: accept
`);
  t.same(await cli.run(['apply', '-f', 'ok.yaml']), {
    code: 0, stdout: "Successfully applied 1 'FelixConfiguration' resource(s)\n", stderr: 'Note: FelixConfiguration takes effect when tortie-node (re)starts\n',
  });
  const y = YAML.parse((await cli.run(['get', 'felixconfiguration', 'default', '-o', 'yaml'])).stdout);
  t.same(y.spec, { logSeverityScreen: 'Warning', healthPort: 9199, healthHost: '127.0.0.1', interfacePrefix: 'cali', natPortRange: '32768:40000', bpfMapSizeConntrack: 262144, ipv6Support: false, bpfEnabled: true, defaultEndpointToHostAction: 'Accept' });

  // The Calico docs' own sample: ipipMTU and chainInsertMode have no tortie equivalent.
  cli.file('docs.yaml', `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  ipv6Support: false
  ipipMTU: 1400
  chainInsertMode: Append
`);
  const r = await cli.run(['apply', '-f', 'docs.yaml']);
  t.equal(r.code, 1);
  t.match(r.stderr, /FelixConfiguration default: spec\.ipipMTU: is not supported by tortie \(tortie-node honours logSeverityScreen, healthEnabled, healthPort, healthHost, interfacePrefix, natPortRange, bpfMapSizeConntrack, defaultEndpointToHostAction; see README\)/);
  t.match(r.stderr, /spec\.chainInsertMode: is not supported by tortie/);
  cli.file('bad.yaml', 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n1}\nspec: {interfacePrefix: "cali,tap", ipv6Support: true, defaultEndpointToHostAction: Drop, logSeverityScreen: Loud}\n');
  const b = await cli.run(['apply', '-f', 'bad.yaml']);
  t.match(b.stderr, /spec\.logSeverityScreen: must be one of Debug, Info, Warning, Error, Fatal, got "Loud"/);
  cli.file('bad3.yaml', 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n1}\nspec: {defaultEndpointToHostAction: Allow}\n');
  t.match((await cli.run(['apply', '-f', 'bad3.yaml'])).stderr, /spec\.defaultEndpointToHostAction: must be one of Drop, Accept, Return, got "Allow"/);
  cli.file('bad2.yaml', 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n1}\nspec: {interfacePrefix: "cali,tap", ipv6Support: true, defaultEndpointToHostAction: Drop, ipipMTU: 1400}\n');
  const b2 = await cli.run(['apply', '-f', 'bad2.yaml']);
  t.match(b2.stderr, /spec\.ipv6Support: only false is supported/);
  t.match(b2.stderr, /spec\.ipipMTU: is not supported by tortie/);
  t.notMatch(b2.stderr, /spec\.defaultEndpointToHostAction/, 'defaultEndpointToHostAction is honoured: not refused');
  t.match(b2.stderr, /spec\.interfacePrefix: "cali,tap": a list of prefixes is not supported/);
  t.equal((await cli.run(['get', 'felixconfiguration', 'node.n1'])).code, 1, 'nothing written');
});
