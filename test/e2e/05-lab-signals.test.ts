// The lab as an operator runs it (`node bin/tortie-lab.js`, a real process), stopped by Ctrl-C
// (SIGINT) once it stays up, and by SIGTERM while its agents are up: nothing may be left behind —
// namespaces, bpffs pins, pid files, temporary directories.
import t from 'tap';
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { leftoverNamespaces } from '../../src/util/netns';

const ROOT = resolve(__dirname, '../../..');

interface Seen { prefix: string; pins: string; runDir: string; pidFiles: string[]; code: number | null; signal: NodeJS.Signals | null; out: string }

/** Starts the lab, sends `sig` once a line matching `when` is printed, returns what it saw. */
function labUntil(when: RegExp, sig: NodeJS.Signals): Promise<Seen> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'tortie-lab.js')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let out = '';
    const seen: Partial<Seen> = { pidFiles: [] };
    const guard = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`lab never printed ${when}:\n${out}`)); }, 90_000);
    let sent = false;
    const onData = (d: Buffer) => {
      out += String(d);
      const m = /namespaces (\S+)-\*, pins (\S+), agent run dir (\S+)/.exec(out);
      if (m) [seen.prefix, seen.pins, seen.runDir] = [m[1], m[2], m[3]];
      if (!sent && when.test(out)) {
        sent = true;
        // What the signal has to remove, observed just before sending it.
        seen.pidFiles = existsSync(seen.runDir!) ? readdirSync(seen.runDir!).filter((f) => f.endsWith('.pid')) : [];
        seen.out = `${existsSync(seen.pins!) ? readdirSync(seen.pins!).join(',') : ''}`;
        child.kill(sig);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      resolvePromise({ ...(seen as Seen), code, signal, out: `${seen.out}\n${out}` });
    });
  });
}

const hostRunDir = (): string[] => (existsSync('/run/tortie') ? readdirSync('/run/tortie') : []);

function assertClean(t: Test, s: Seen, hostBefore: string[]): void {
  t.ok(s.prefix && s.pins && s.runDir, 'the lab says which names it uses');
  t.same(leftoverNamespaces(s.prefix), [], 'no lab namespaces left');
  t.notOk(existsSync(s.pins), `no pins left under ${s.pins}`);
  t.notOk(existsSync(s.runDir), `the agents' run dir ${s.runDir} is gone`);
  const added = hostRunDir().filter((f) => !hostBefore.includes(f) && /^node-[abc]\./.test(f));
  t.same(added, [], 'nothing of the lab\'s agents in the host\'s /run/tortie');
}

t.test('Ctrl-C (SIGINT) after the matrix removes everything', async (t) => {
  const before = hostRunDir();
  const s = await labUntil(/press Ctrl-C/, 'SIGINT');
  t.match(s.out.split('\n')[0], /node-a/, 'the pins existed before the signal');
  t.ok(s.pidFiles.length >= 3, `the agents had pid files in the lab's run dir (${s.pidFiles.join(' ')})`);
  t.ok(s.code === 130 || s.signal === 'SIGINT', `exited by the signal (code ${s.code}, signal ${s.signal})`);
  assertClean(t, s, before);
});

t.test('SIGTERM while the agents are up removes everything', async (t) => {
  const before = hostRunDir();
  const s = await labUntil(/agents ready/, 'SIGTERM');
  t.match(s.out.split('\n')[0], /node-a/, 'the pins existed before the signal');
  t.ok(s.code === 143 || s.signal === 'SIGTERM', `exited by the signal (code ${s.code}, signal ${s.signal})`);
  assertClean(t, s, before);
});
