import t from 'tap';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../../..');

t.test('tsc --noEmit passes on the whole project (strict)', async (t) => {
  const out = await new Promise<{ code: number; text: string }>((res) => {
    execFile(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [root] }), '--noEmit', '-p', 'tsconfig.json'],
      { cwd: root, maxBuffer: 16 << 20 }, (err, stdout, stderr) => res({ code: err ? 1 : 0, text: stdout + stderr }));
  });
  t.equal(out.code, 0, out.text.split('\n').slice(0, 40).join('\n'));
});
