import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../../..');

t.test('Vagrantfile validates and describes the lab layout', async (t) => {
  const out = execFileSync('vagrant', ['validate', '--ignore-provider'], { cwd: root, encoding: 'utf8' });
  t.match(out, /Vagrantfile validated successfully/);
  const text = readFileSync(resolve(root, 'Vagrantfile'), 'utf8');
  for (const n of ['node-a', 'node-b', 'node-c']) t.match(text, new RegExp(`"${n}"`));
  t.match(text, /debian\/bookworm64/);
  t.match(text, /scripts\/setup\.sh/, 'provisioned by the README set-up script');
  for (const m of text.matchAll(/\b(docs\/[\w.-]+\.md)/g)) t.ok(existsSync(resolve(root, m[1]!)), `${m[1]} it points at exists`);
  t.match(text, /apt-get install -y -qq etcd-server[\s\S]*ETCD_LISTEN_CLIENT_URLS=http:\/\/#\{n\[:ip\]\}:2379/, 'node-a runs the etcd the agents use');
  t.match(text, /tortie-node\.js install --nodename #\{name\} --etcd-endpoints http:\/\/198\.18\.1\.10:2379[\s\S]*systemctl enable --now tortie-node/, 'agents run as the installed service');
});
