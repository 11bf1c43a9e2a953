// Calico-etcd fixtures (test/fixtures/calico-etcd*): one JSON file per etcd key, loaded in the
// compact form Go's json.Marshal writes.
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * A fixture file's text in the form Go's json.Marshal writes it: compact, same key order, and
 * `<`, `>`, `&` escaped inside strings. Done on the text itself (not with the code under test).
 */
export function goJson(file: string): string {
  const text = fs.readFileSync(file, 'utf8');
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') { out += c + text[++i]; continue; }
      if (c === '"') inString = false;
      out += c === '&' ? '\\u0026' : c === '<' ? '\\u003c' : c === '>' ? '\\u003e' : c;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (!/\s/.test(c)) {
      out += c;
    }
  }
  return out;
}

/** key → stored bytes of every fixture under `root` (the key is the file's path under it). */
export function fixtureKeys(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json')) out.set('/' + path.relative(root, p).slice(0, -'.json'.length), goJson(p));
    }
  };
  walk(root);
  return out;
}

