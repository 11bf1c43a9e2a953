import t from 'tap';
import { parseArgs } from '../../src/cli/args';
import { UsageError } from '../../src/cli/io';

const SPECS = [
  { long: 'output', short: 'o', value: true },
  { long: 'namespace', short: 'n', value: true },
  { long: 'all-namespaces', short: 'A' },
  { long: 'skip-not-exists', short: 's' },
  { long: 'recursive', short: 'R' },
];

t.test('options anywhere among positionals, in every spelling docopt accepts', async (t) => {
  const a = parseArgs('tortiectl', ['get', 'nodes', '--output=wide', 'n1', '-n', 'ns1', '-A'], 1, SPECS);
  t.same(a.positionals, ['nodes', 'n1']);
  t.equal(a.get('output'), 'wide');
  t.equal(a.get('namespace'), 'ns1');
  t.ok(a.flag('all-namespaces'));
  t.notOk(a.flag('recursive'));
  t.equal(parseArgs('x', ['get', '-oyaml', 'ipp'], 1, SPECS).get('output'), 'yaml');
  t.equal(parseArgs('x', ['get', '-o=json', 'ipp'], 1, SPECS).get('output'), 'json');
  t.equal(parseArgs('x', ['get', '--output', 'ps', 'ipp'], 1, SPECS).get('output'), 'ps');
  const cluster = parseArgs('x', ['delete', '-sR', 'a'], 1, SPECS);
  t.ok(cluster.flag('skip-not-exists'));
  t.ok(cluster.flag('recursive'));
  t.same(parseArgs('x', ['get', '--', '-weird-name'], 1, SPECS).positionals, ['-weird-name']);
  t.ok(parseArgs('x', ['get', '-h'], 1, SPECS).flag('help'));
});

t.test('unknown or incomplete options are calicoctl usage errors quoting the command line', async (t) => {
  const cases: string[][] = [
    ['get', 'ippool', '--bogus'],
    ['get', 'ippool', '-x'],
    ['get', 'ippool', '-o'],
    ['get', 'ippool', '--all-namespaces=yes'],
  ];
  for (const argv of cases) {
    try {
      parseArgs('tortiectl', argv, 1, SPECS);
      t.fail(`accepted ${argv.join(' ')}`);
    } catch (e) {
      t.ok(e instanceof UsageError, argv.join(' '));
      t.equal((e as UsageError).code, 'ERR_CLI_USAGE');
      t.equal((e as Error).message, `Invalid option: 'tortiectl ${argv.join(' ')}'. Use flag '--help' to read about a specific subcommand.`);
    }
  }
});
