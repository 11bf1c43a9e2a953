/**
 * The project's import boundaries, checked over the TypeScript compiler API's view of every
 * import in src/, bench/ and test/ (static imports, `export … from`, `import x = require()`,
 * `require()` and `import()` calls, type-only imports included: a type import is a dependency too).
 *
 * Rules (STYLE.md "Our conventions"):
 *  1. src/ areas sit in three tiers and import downward only: top (cli, cni, node, lab, testbed) →
 *     domain (datastore, calc, dataplane, ipam, bgp, client, net) → base (model, selector, util,
 *     version, primitives). An import inside a tier is allowed only where LATERAL lists it (that list must
 *     stay acyclic); an area not in TIERS is itself a violation, so a new area must be placed.
 *  2. Only src/dataplane loads the native addon: anywhere else in src/ and bench/, a `require()`
 *     of a computed path, a `require()` of a `.node` file or `process.dlopen` is a violation.
 *  3. Production (src/) never imports test/ or bench/, nor the test runner (`tap`).
 *  4. bench/ does not import test/: what tests and benchmarks share lives in src/testbed.
 *  5. Production does not import the test infrastructure inside src/: the namespace harness
 *     (src/util/netns) and src/testbed are for HARNESS_AREAS (the lab, the testbed) and the files
 *     HARNESS_USERS lists with a reason; production runs commands through src/util/exec.
 */
import ts from 'typescript';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

export const TIERS: Record<string, 'top' | 'domain' | 'base'> = {
  cli: 'top', cni: 'top', node: 'top', lab: 'top', testbed: 'top',
  datastore: 'domain', calc: 'domain', dataplane: 'domain', ipam: 'domain', bgp: 'domain', client: 'domain', net: 'domain',
  model: 'base', selector: 'base', util: 'base', version: 'base', primitives: 'base',
};
const RANK = { top: 2, domain: 1, base: 0 } as const;

/** Imports inside a tier, area → the areas of its own tier it may import, with why. */
export const LATERAL: Record<string, Record<string, string>> = {
  cli: { node: 'tortiectl node run/status/diags start and find the agent (node/launch, node/agents)' },
  node: { cni: 'the agent installs the CNI config and binaries on the host (cni/install)' },
  lab: { cni: 'the lab installs the CNI plugin', node: 'the lab starts agents (node/launch)', testbed: 'the lab is built on the testbed' },
  testbed: { cni: 'workloads are wired by the plugin\'s own steps (cni/netlink) or by the installed plugin', node: 'agents start and are awaited as tortiectl node run does (node/launch)' },
  client: { datastore: 'the resource client is a typed view over a datastore' },
  ipam: { datastore: 'IPAM blocks and handles live in the datastore' },
  dataplane: { calc: 'the dataplane writes what calc compiled (its program/map types)' },
  bgp: { client: 'reads BGP resources', datastore: 'watches the datastore', ipam: 'advertises IPAM blocks' },
  model: {
    selector: 'resources carry selectors and validate them',
    util: 'its errors derive from the one error base (util/errors)',
    primitives: 'addresses, CIDRs, Calico labels, protocols, pool defaults',
  },
  selector: { util: 'its errors derive from the one error base (util/errors)', primitives: 'the namespace label the selector rewriting adds' },
  primitives: { util: 'its errors derive from the one error base (util/errors)' },
};


/** src/ areas built on the namespace harness (rule 5). */
export const HARNESS_AREAS = new Set(['lab', 'testbed']);
/** Production files allowed to use the namespace harness (rule 5): file (repo-relative, no extension) → reason. */
export const HARNESS_USERS: Record<string, string> = {
  'src/node/doctor': 'its interface checks run in a throwaway namespace pair, under the harness\'s safety contract (a second harness is what the rule prevents)',
};
/** The test infrastructure inside src/ (rule 5), as repo-relative paths without extension. */
const isHarness = (target: string) => target === 'src/util/netns' || target === 'src/testbed' || target.startsWith('src/testbed/');

export interface Import { from: string; spec: string; line: number }

function walk(dir: string, acc: string[] = []): string[] {
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return acc; }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, acc);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) acc.push(p);
  }
  return acc;
}

/** Every module specifier a file uses, plus the places that load native code. */
export function scan(file: string, text: string): { imports: Import[]; loads: Import[] } {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const imports: Import[] = [];
  const loads: Import[] = [];
  const at = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      imports.push({ from: file, spec: n.moduleSpecifier.text, line: at(n) });
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)
      && ts.isStringLiteral(n.moduleReference.expression)) {
      imports.push({ from: file, spec: n.moduleReference.expression.text, line: at(n) });
    } else if (ts.isCallExpression(n)) {
      const callee = n.expression;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const arg = n.arguments[0];
      if ((isRequire || isImport) && arg) {
        // require(require.resolve('pkg', …)) loads a package found from elsewhere: an import of 'pkg'.
        const resolved = ts.isCallExpression(arg) && ts.isPropertyAccessExpression(arg.expression)
          && ts.isIdentifier(arg.expression.expression) && arg.expression.expression.text === 'require'
          && arg.expression.name.text === 'resolve' && arg.arguments[0] && ts.isStringLiteralLike(arg.arguments[0])
          ? arg.arguments[0] : undefined;
        if (resolved && !resolved.text.endsWith('.node')) {
          imports.push({ from: file, spec: resolved.text, line: at(n) });
        } else if (ts.isStringLiteralLike(arg)) {
          imports.push({ from: file, spec: arg.text, line: at(n) });
          if (arg.text.endsWith('.node')) loads.push({ from: file, spec: arg.text, line: at(n) });
        } else {
          loads.push({ from: file, spec: `${isRequire ? 'require' : 'import'}(${arg.getText(sf)})`, line: at(n) });
        }
      }
      if (ts.isPropertyAccessExpression(callee) && callee.name.text === 'dlopen'
        && ts.isIdentifier(callee.expression) && callee.expression.text === 'process') {
        loads.push({ from: file, spec: 'process.dlopen', line: at(n) });
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return { imports, loads };
}

const noExt = (p: string) => p.replace(/\.(ts|js)$/, '').replace(/\/index$/, '');

/** Checks the tree under `root`; returns one line per violation (empty when clean). */
export function checkBoundaries(root: string): string[] {
  const out: string[] = [];
  const rel = (p: string) => relative(root, p).split(sep).join('/');
  for (const top of ['src', 'bench', 'test']) {
    for (const file of walk(join(root, top))) {
      const from = rel(file);
      const { imports, loads } = scan(from, readFileSync(file, 'utf8'));
      const fromArea = top === 'src' ? from.split('/')[1]!.replace(/\.ts$/, '') : undefined;
      if (fromArea !== undefined && !(fromArea in TIERS)) out.push(`${from}: src/${fromArea} is not placed in a tier (add it to TIERS)`);
      if (top !== 'test' && !(top === 'src' && fromArea === 'dataplane')) {
        for (const l of loads) out.push(`${from}:${l.line}: loads native code (${l.spec}); only src/dataplane loads the addon`);
      }
      for (const i of imports) {
        const where = `${from}:${i.line}: imports '${i.spec}'`;
        if (!i.spec.startsWith('.')) {
          if (top === 'src' && (i.spec === 'tap' || i.spec.startsWith('tap/') || i.spec.startsWith('@tapjs/'))) {
            out.push(`${where}: production code does not import the test runner`);
          }
          continue;
        }
        const target = noExt(rel(resolve(dirname(file), i.spec)));
        const toTop = target.split('/')[0];
        if (top === 'src' && (toTop === 'test' || toTop === 'bench')) {
          out.push(`${where}: production code (src/) does not import ${toTop}/`);
          continue;
        }
        if (top === 'bench' && toTop === 'test') {
          out.push(`${where}: bench/ does not import test/ (move the helper to src/testbed or bench/lib)`);
          continue;
        }
        if (top === 'src' && fromArea !== undefined && isHarness(target) && !HARNESS_AREAS.has(fromArea)
          && !(noExt(from) in HARNESS_USERS)) {
          out.push(`${where}: production code does not import the test harness (${target}); run commands through src/util/exec`);
          continue;
        }
        if (top === 'src' && toTop === 'src' && fromArea !== undefined) {
          const toArea = target.split('/')[1]!;
          if (toArea === fromArea) continue;
          const a = TIERS[fromArea], b = TIERS[toArea];
          if (!a || !b) { if (!b) out.push(`${where}: src/${toArea} is not placed in a tier`); continue; }
          if (RANK[a] > RANK[b]) continue;
          if (RANK[a] === RANK[b] && LATERAL[fromArea]?.[toArea]) continue;
          out.push(`${where}: ${a} layer src/${fromArea} must not import ${RANK[a] === RANK[b] ? 'sideways from' : 'upward from'} ${b} layer src/${toArea}`);
        }
      }
    }
  }
  return out;
}

/** A cycle in LATERAL, as "a -> b -> a", or undefined. */
export function lateralCycle(): string | undefined {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const dfs = (a: string): string | undefined => {
    state.set(a, 1); stack.push(a);
    for (const b of Object.keys(LATERAL[a] ?? {})) {
      if (state.get(b) === 1) return [...stack.slice(stack.indexOf(b)), b].join(' -> ');
      if (!state.has(b)) { const c = dfs(b); if (c) return c; }
    }
    state.set(a, 2); stack.pop();
    return undefined;
  };
  for (const a of Object.keys(LATERAL)) if (!state.has(a)) { const c = dfs(a); if (c) return c; }
  return undefined;
}
