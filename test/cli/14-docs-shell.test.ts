import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { cliFor, runCaptured, TORTIECTL } from './helpers/cli';

// The Calico docs' commands typed into a shell, verbatim but for the binary's name.
const SCRIPT = "set -e\ntortiectl apply -f - << EOF\napiVersion: v1\nkind: ipPool\nmetadata:\n  cidr: 192.168.0.0/16\nspec:\n  ipip:\n    enabled: true\n    mode: cross-subnet\n  nat-outgoing: true\nEOF\ntortiectl apply -f - << EOF\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: node2\nspec:\n  bgp:\n    ipv4Address: 10.0.2.10/24\nEOF\ntortiectl get ipPool -o yaml > pool.yaml\nsed -i 's/natOutgoing: true/natOutgoing: false/' pool.yaml\ntortiectl replace -f pool.yaml\ntortiectl get nodes --output=wide\ntortiectl get node node2 -o yaml > node2.yaml\nsed -i 's#10.0.2.10/24#10.0.2.11/24#' node2.yaml\ntortiectl apply -f node2.yaml\ntortiectl get nodes --output=wide\nif tortiectl replace -f pool.yaml; then echo \"stale replace succeeded\"; exit 9; else echo \"stale replace exit=$?\"; fi\n";

t.test('docs examples through bash, with tortiectl on PATH', async (t) => {
  const cli = cliFor(t, 'tortiectl-shell-');
  const binDir = path.join(cli.dir, 'bin');
  fs.mkdirSync(binDir);
  fs.symlinkSync(TORTIECTL, path.join(binDir, 'tortiectl'));
  const r = await runCaptured('bash', ['--norc', '--noprofile', '-c', SCRIPT], { cwd: cli.dir, env: { ...cli.env, PATH: `${binDir}:${process.env.PATH}` } });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout,
    "Successfully applied 1 'IPPool' resource(s)\n" +
    "Successfully applied 1 'Node' resource(s)\n" +
    "Successfully replaced 1 'IPPool' resource(s)\n" +
    'NAME    ASN       IPV4           IPV6   \nnode2   (64512)   10.0.2.10/24          \n\n' +
    "Successfully applied 1 'Node' resource(s)\n" +
    'NAME    ASN       IPV4           IPV6   \nnode2   (64512)   10.0.2.11/24          \n\n' +
    'stale replace exit=1\n');
  t.match(r.stderr, /^Failed to replace 'IPPool' resource: update conflict: IPPool\(192-168-0-0-16\)/);
  const pool = YAML.parse(fs.readFileSync(path.join(cli.dir, 'pool.yaml'), 'utf8'));
  t.equal(pool.kind, 'IPPoolList');
});
