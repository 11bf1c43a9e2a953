import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../../..');

t.test('Vagrantfile validates and describes the lab layout', async (t) => {
  const out = execFileSync('vagrant', ['validate', '--ignore-provider'], { cwd: root, encoding: 'utf8' });
  t.match(out, /Vagrantfile validated successfully/);
  const text = readFileSync(resolve(root, 'Vagrantfile'), 'utf8');
  for (const n of ['node-a', 'node-b', 'node-c']) t.match(text, new RegExp(`"${n}"`));
  t.match(text, /debian\/bookworm64/);
  t.match(text, /scripts\/setup\.sh/, 'provisioned by the README set-up script');
});
