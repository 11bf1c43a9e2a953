import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';

// The samples of docs/bgp.md, applied and read back through tortiectl.
const DOC = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'bgp.md'), 'utf8');
const SAMPLES = [...DOC.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);

t.test('docs/bgp.md samples apply and read back as written', async (t) => {
  t.ok(SAMPLES.length >= 4, 'the doc has its samples');
  const cli = cliFor(t);
  for (const text of SAMPLES) {
    const doc = YAML.parse(text);
    const r = await cli.run(['apply', '-f', '-'], { stdin: text });
    t.same(r, { code: 0, stdout: `Successfully applied 1 '${doc.kind}' resource(s)\n`, stderr: '' }, doc.metadata.name);
    const got = await cli.run(['get', doc.kind.toLowerCase(), doc.metadata.name, '-o', 'yaml']);
    t.equal(got.code, 0, got.stderr);
    const back = YAML.parse(got.stdout);
    t.same(back.spec, doc.spec, `${doc.metadata.name}: spec read back`);
  }
  t.same(await cli.run(['get', 'bgpPeers']), {
    code: 0, stderr: '',
    stdout: 'NAME                         PEERIP                      NODE       ASN     \n' +
            'peer-with-route-reflectors   route-reflector == \'true\'   all()              \n' +
            'rack1-tor                    198.18.1.1                  node-1     65001   \n' +
            'tor-global                   198.18.0.1                  (global)   65001   \n\n',
  });
  t.same(await cli.run(['get', 'bgpconfig']), {
    code: 0, stderr: '',
    stdout: 'NAME      LOGSEVERITY   MESHENABLED   ASNUMBER   \ndefault   Info          true          64512      \n\n',
  });
});

t.test('fields tortie does not implement are refused at apply, by name; nothing stored', async (t) => {
  const cli = cliFor(t);
  const r = await cli.run(['apply', '-f', '-'], {
    stdin: 'apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 198.18.0.1, asNumber: 65001, ttlSecurity: 1}\n',
  });
  t.equal(r.code, 1);
  t.match(r.stderr, /spec.ttlSecurity: is a Calico field tortie does not implement/);
  const c = await cli.run(['apply', '-f', '-'], {
    stdin: 'apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {communities: [{name: a, value: "1:2"}]}\n',
  });
  t.equal(c.code, 1);
  t.match(c.stderr, /spec.communities: is a Calico field tortie does not implement/);
  t.same((await cli.run(['get', 'bgppeers', '-o', 'yaml'])).stdout.includes('items: []'), true);
});

t.test('node run: --backend=bird given explicitly starts the agent with --bgp; gobgp refused', async (t) => {
  const cli = cliFor(t);
  const env = { ...cli.env, TORTIE_NODE_BIN: '/nonexistent/tortie-node' };
  const bird = await cli.run(['node', 'run', '--name=n1', '--dryrun', '--backend=bird'], { env });
  t.equal(bird.code, 0, bird.stderr);
  t.match(bird.stdout, / --bgp /);
  const dflt = await cli.run(['node', 'run', '--name=n1', '--dryrun'], { env });
  t.notMatch(dflt.stdout, /--bgp/, 'BGP stays opt-in');
  const gobgp = await cli.run(['node', 'run', '--name=n1', '--dryrun', '--backend=gobgp'], { env });
  t.equal(gobgp.code, 1);
  t.match(gobgp.stderr, /backend 'gobgp' is not implemented by tortie \(bird or none\)/);
});
