import t from 'tap';
import { formatProblem, parseResources, toV3, toYaml, validateResource, ValidationError, type Resource } from '../../src/model';

// Robustness: random mutations of valid inputs must give either a valid resource (which
// then re-validates to itself and survives a YAML round trip) or a ValidationError with at
// least one problem — never any other exception. Replay a failure with
// TORTIE_FUZZ_SEED=<seed printed in the failing assertion>.
const SEED = Number(process.env.TORTIE_FUZZ_SEED ?? 20261121);
const ROUNDS = Number(process.env.TORTIE_FUZZ_ROUNDS ?? 4000);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const V3 = 'projectcalico.org/v3';
const CORPUS: unknown[] = [
  { apiVersion: V3, kind: 'IPPool', metadata: { name: 'p1' }, spec: { cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', natOutgoing: true, blockSize: 26, nodeSelector: "zone == 'a'" } },
  { apiVersion: V3, kind: 'Node', metadata: { name: 'n1', labels: { a: 'b' } }, spec: { bgp: { ipv4Address: '10.0.2.10/24', asNumber: 64512, ipv6Address: 'fd00::1/64' }, addresses: [{ address: '10.0.2.10', type: 'InternalIP' }] } },
  {
    apiVersion: V3,
    kind: 'WorkloadEndpoint',
    metadata: { namespace: 'prod', labels: { app: 'web' } },
    spec: { node: 'n1', orchestrator: 'k8s', pod: 'web-1', endpoint: 'eth0', interfaceName: 'cali12345', ipNetworks: ['192.168.0.9/32'], mac: 'ee:ee:ee:ee:ee:ee', profiles: ['kns.prod'], ports: [{ name: 'http', protocol: 'TCP', port: 80 }], serviceAccountName: 'web' },
  },
  { apiVersion: V3, kind: 'Profile', metadata: { name: 'kns.prod' }, spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply: { 'pcns.env': 'prod' } } },
  { apiVersion: V3, kind: 'Tier', metadata: { name: 'security' }, spec: { order: 100, defaultAction: 'Pass' } },
  {
    apiVersion: V3,
    kind: 'NetworkPolicy',
    metadata: { name: 'allow-web', namespace: 'prod' },
    spec: {
      tier: 'security',
      order: 10,
      selector: "app == 'web'",
      ingress: [
        { action: 'Allow', protocol: 'TCP', source: { selector: "role == 'fe'", namespaceSelector: 'all()', nets: ['10.0.0.0/8'] }, destination: { ports: [80, '8000:8080', 'http'] } },
        { action: 'Deny', protocol: 'ICMP', icmp: { type: 8, code: 0 }, ipVersion: 4 },
        { action: 'Log', notProtocol: 'UDP', source: { notNets: ['10.1.0.0/16'], serviceAccounts: { names: ['a'], selector: 'has(x)' } } },
      ],
      egress: [{ action: 'Pass', destination: { notSelector: 'has(y)', notPorts: ['dns'] } }],
      types: ['Ingress', 'Egress'],
    },
  },
  { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'pre' }, spec: { preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny', source: { nets: ['198.18.0.0/15'] } }], namespaceSelector: "env == 'x'" } },
  { apiVersion: V3, kind: 'Namespace', metadata: { name: 'prod', labels: { env: 'prod' } } },
  { apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: '192.168.0.0/16' }, spec: { ipip: { enabled: true, mode: 'cross-subnet' }, 'nat-outgoing': true } },
  { apiVersion: 'v1', kind: 'node', metadata: { name: 'node2' }, spec: { bgp: { asNumber: 12345, ipv4Address: '1.2.3.4/24' } } },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'k', namespace: 'prod' },
    spec: {
      podSelector: { matchLabels: { role: 'db' }, matchExpressions: [{ key: 'x', operator: 'In', values: ['a'] }] },
      ingress: [{ from: [{ ipBlock: { cidr: '172.17.0.0/16', except: ['172.17.1.0/24'] } }, { namespaceSelector: {}, podSelector: {} }], ports: [{ protocol: 'TCP', port: 6379, endPort: 6380 }, { port: 'http' }] }],
      egress: [{}],
      policyTypes: ['Ingress', 'Egress'],
    },
  },
];

const WEIRD: unknown[] = [
  null, true, false, 0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, Infinity, -Infinity, NaN, -0,
  '', ' ', 'all()', '!', "a == 'b", 'global()', '0.0.0.0/0', '::/0', '10.0.0.1/8', '80:70', '65536', 'x'.repeat(5000),
  'TCP', 'tcp', 'ICMPv6', 'Allow', 'Ingress', '__proto__', 'constructor', '\u0000', 'é', '😀',
  [], [null], [{}], [[]], {}, { __proto__: 'x' }, { constructor: 1 }, { toString: 'y' }, JSON.parse('{"__proto__": {"polluted": 1}}'),
];

type Json = unknown;

function clone(v: Json): Json {
  if (Array.isArray(v)) return v.map(clone);
  if (typeof v === 'object' && v !== null) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) Object.defineProperty(o, k, { value: clone((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}

/** Every (container, key) pair in the tree, for picking a mutation site. */
function sites(v: Json, out: [Record<string, unknown> | unknown[], string | number][] = []) {
  if (Array.isArray(v)) v.forEach((e, i) => { out.push([v, i]); sites(e, out); });
  else if (typeof v === 'object' && v !== null) for (const k of Object.keys(v)) { out.push([v as Record<string, unknown>, k]); sites((v as Record<string, unknown>)[k], out); }
  return out;
}

function mutate(v: Json, rand: () => number): Json {
  const root = clone(v);
  const n = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < n; i++) {
    const all = sites(root);
    if (all.length === 0) return root;
    const [container, key] = all[Math.floor(rand() * all.length)]!;
    const choice = rand();
    const weird = clone(WEIRD[Math.floor(rand() * WEIRD.length)]);
    if (choice < 0.5) (container as Record<string | number, unknown>)[key] = weird;
    else if (choice < 0.7) {
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete container[key as string];
    } else if (choice < 0.85 && !Array.isArray(container)) {
      Object.defineProperty(container, ['__proto__', 'extra', 'constructor', 'spec', 'name'][Math.floor(rand() * 5)]!, { value: weird, enumerable: true, writable: true, configurable: true });
    } else {
      const inner = (container as Record<string | number, unknown>)[key];
      (container as Record<string | number, unknown>)[key] = rand() < 0.5 ? [inner, inner] : { v: inner };
    }
  }
  return root;
}

function checkOne(input: unknown, label: string): string | null {
  let r;
  try {
    r = toV3(input);
  } catch (e) {
    return `${label}: toV3 threw ${(e as Error)?.stack ?? String(e)}`;
  }
  if (r.problems !== undefined) {
    if (r.problems.length === 0) return `${label}: invalid with no problems`;
    try {
      validateResource(input);
      if ((input as { apiVersion?: unknown })?.apiVersion === V3) return `${label}: validateResource accepted what checkResource refused`;
    } catch (e) {
      if (!(e instanceof ValidationError)) return `${label}: validateResource threw ${(e as Error)?.stack ?? String(e)}`;
    }
    return null;
  }
  const res: Resource = r.resource;
  try {
    const again = validateResource(JSON.parse(JSON.stringify(res)));
    if (JSON.stringify(again) !== JSON.stringify(res)) return `${label}: not idempotent:\n${JSON.stringify(res)}\n${JSON.stringify(again)}`;
    const back = parseResources(toYaml(res));
    if (JSON.stringify(back[0]) !== JSON.stringify(res)) return `${label}: YAML round trip changed it:\n${JSON.stringify(res)}\n${JSON.stringify(back[0])}`;
  } catch (e) {
    return `${label}: re-validating a valid result failed: ${(e as Error)?.message ?? String(e)}\n${JSON.stringify(res)}`;
  }
  return null;
}

t.test('the corpus itself is valid', async (t) => {
  for (const [i, c] of CORPUS.entries()) t.equal(toV3(c).problems, undefined, `corpus[${i}]`);
});

t.test(`random structural mutations (seed ${SEED}, ${ROUNDS} rounds)`, async (t) => {
  const rand = rng(SEED);
  const failures: string[] = [];
  let valid = 0;
  for (let i = 0; i < ROUNDS && failures.length < 5; i++) {
    const base = CORPUS[i % CORPUS.length];
    const input = mutate(base, rand);
    const f = checkOne(input, `round ${i} (seed ${SEED})`);
    if (f !== null) failures.push(f + `\ninput: ${JSON.stringify(input)?.slice(0, 2000)}`);
    else if (toV3(input).problems === undefined) valid++;
  }
  t.same(failures, [], 'no crash, no inconsistency');
  t.ok(valid > 0 && valid < ROUNDS, `both outcomes occur (${valid} of ${ROUNDS} mutants valid)`);
});

t.test('top-level junk', async (t) => {
  for (const w of WEIRD) t.equal(checkOne(w, `junk ${JSON.stringify(w)?.slice(0, 40)}`), null);
});

t.test(`random text mutations of YAML documents (seed ${SEED})`, async (t) => {
  const rand = rng(SEED + 1);
  const texts = CORPUS.map((c) => toYaml(toV3(c).resource!));
  const alphabet = [':', '-', ' ', '\n', '{', '}', '[', ']', '"', "'", '#', '&a', '*a', '!!str', '---', '\t', 'x', '0', '|', '>'];
  const failures: string[] = [];
  for (let i = 0; i < ROUNDS / 2 && failures.length < 5; i++) {
    let s = texts[i % texts.length]!;
    const edits = 1 + Math.floor(rand() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * (s.length + 1));
      if (rand() < 0.5) s = s.slice(0, at) + alphabet[Math.floor(rand() * alphabet.length)] + s.slice(at);
      else s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 5));
    }
    try {
      parseResources(s);
    } catch (e) {
      if (!(e instanceof ValidationError) || e.problems.length === 0) failures.push(`round ${i}: ${String((e as Error)?.stack ?? e)}\n${s}`);
    }
  }
  t.same(failures, []);
});

t.test('hostile documents: deep nesting, alias bombs, non-text', async (t) => {
  t.same(thrownProblems(() => parseResources('['.repeat(100000))), ['document 1: brackets are nested more than 100 deep']);
  t.same(thrownProblems(() => parseResources(Array.from({ length: 1200 }, (_, i) => ' '.repeat(i) + '- x').join('\n'))), [
    'document 1: a line is indented more than 1000 columns',
  ]);
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]'];
  for (const [p, c] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['e', 'f'], ['f', 'g']]) bomb.push(`${c}: &${c} [*${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}]`);
  const ps = thrownProblems(() => parseResources(bomb.join('\n') + '\n'));
  t.equal(ps.length, 1);
  t.match(ps[0], /^document 1: YAML error: .*alias/i);
  t.same(thrownProblems(() => parseResources(42 as unknown as string)), ['input must be text, got number']);
  const deepJson = '{"a":'.repeat(50000) + '1' + '}'.repeat(50000);
  t.ok(thrownProblems(() => parseResources(deepJson)).length > 0, 'deep JSON is just invalid');
});

function thrownProblems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ValidationError) return e.problems.map((p) => formatProblem(p));
    throw e;
  }
  throw new Error('nothing thrown');
}
