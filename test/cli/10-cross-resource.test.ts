import t from 'tap';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';

const pool = (name: string, cidr: string, extra = '') => `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: ${name}}\nspec: {cidr: ${cidr}${extra}}\n`;

t.test("what Calico's client refuses across resources is refused before anything is written", async (t) => {
  const cli = cliFor(t, 'tortiectl-xres-');
  t.equal((await cli.run(['apply', '-f', '-'], { stdin: pool('p1', '192.168.0.0/16') })).code, 0);

  const overlap = await cli.run(['apply', '-f', '-'], { stdin: [pool('fresh', '10.1.0.0/16'), pool('p2', '192.168.128.0/17')].join('---\n') });
  t.same(overlap, { code: 1, stdout: '', stderr: 'Failed to execute command: IPPool p2: spec.cidr: 192.168.128.0/17 overlaps IPPool p1 (192.168.0.0/16)\n' });
  t.equal((await cli.run(['get', 'ippool', 'fresh'])).code, 1, 'the valid pool in the same input was not written either');

  const inInput = await cli.run(['create', '-f', '-'], { stdin: [pool('a', '10.2.0.0/16'), pool('b', '10.2.3.0/24')].join('---\n') });
  t.match(inInput.stderr, /IPPool b: spec\.cidr: 10\.2\.3\.0\/24 overlaps IPPool a \(10\.2\.0\.0\/16\)/, 'pools of one input against each other');

  t.equal((await cli.run(['apply', '-f', '-'], { stdin: pool('p1', '192.168.0.0/16', ', natOutgoing: true') })).code, 0, 'a pool does not overlap its own old version');
  const cidr = await cli.run(['apply', '-f', '-'], { stdin: pool('p1', '192.168.0.0/17') });
  t.equal(cidr.code, 1);
  t.match(cidr.stderr, /^Failed to execute command: IPPool p1: spec\.cidr: cannot be changed \(was 192\.168\.0\.0\/16\)/);
  t.equal(YAML.parse((await cli.run(['get', 'ippool', 'p1', '-o', 'yaml'])).stdout).spec.cidr, '192.168.0.0/16');

  const gnp = (tier: string) => `apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: ${tier}.deny}\nspec: {tier: ${tier}, selector: all()}\n`;
  const noTier = await cli.run(['apply', '-f', '-'], { stdin: gnp('security') });
  t.equal(noTier.code, 1);
  t.match(noTier.stderr, /GlobalNetworkPolicy security\.deny: spec\.tier: tier security does not exist/);
  const withTier = await cli.run(['apply', '-f', '-'], { stdin: 'apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 10}\n---\n' + gnp('security') });
  t.same(withTier, { code: 0, stdout: 'Successfully applied 2 resource(s)\n', stderr: '' }, 'the tier may come in the same input');
});
