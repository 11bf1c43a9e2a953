/**
 * Differential test: compiled tables, looked up the way the datapath does (TableIndex), agree with
 * the reference evaluator on verdict, deciding rule and Log hits for every random case.
 *
 *   TORTIE_CALC_SEED=<n>      base seed (default 20261121)
 *   TORTIE_CALC_SCENARIOS=<n> number of random policy sets (default 500; × 200 packets)
 *   TORTIE_CALC_DUAL=<n>      dual-stack policy sets (default 250): endpoints with IPv4 and IPv6
 *                             addresses, IPv6 nets and sets, ipVersion and ICMPv6 rules, packets
 *                             of both families
 *   TORTIE_CALC_FAMILY=4|dual only that family's run
 *   TORTIE_CALC_CASE=<s>:<p>  replay one case (scenario s, packet p) and print it
 */
import t from 'tap';
import { CalcGraph, evaluate, TableIndex, type EvalResult, type RuleInfo } from '../../src/calc';
import { Gen, packet, rng, scenario, type Family } from '../../src/testbed/fuzz/random';

const SEED = Number(process.env.TORTIE_CALC_SEED ?? 20261121);
const SCENARIOS = Number(process.env.TORTIE_CALC_SCENARIOS ?? 500);
const PACKETS = 200;
const DUAL = Number(process.env.TORTIE_CALC_DUAL ?? 250);
const ONLY = process.env.TORTIE_CALC_CASE;
const FAMILIES = ([4, 'dual'] as Family[]).filter((f) => (process.env.TORTIE_CALC_FAMILY ?? String(f)) === String(f));

function who(r: Omit<RuleInfo, 'id'> | undefined): string {
  if (r === undefined) return '(none)';
  const p = r.policy ? `${r.policy.kind}:${r.policy.namespace ?? ''}/${r.policy.name}` : '';
  return `${r.kind}|${r.direction}|${r.tier ?? ''}|${p}|${r.index ?? ''}`;
}

for (const fam of FAMILIES) t.test(`${fam === 4 ? 'IPv4' : 'dual stack'}: compiled tables agree with the reference (seed ${SEED})`, async (t) => {
  const scenarios = fam === 4 ? SCENARIOS : DUAL;
  let cases = 0;
  let failures = 0;
  const seen = new Map<string, number>();
  const bump = (k: string): void => void seen.set(k, (seen.get(k) ?? 0) + 1);
  const [onlyS, onlyP] = ONLY ? ONLY.split(':').map(Number) : [undefined, undefined];
  for (let s = 0; s < scenarios; s++) {
    if (onlyS !== undefined && s !== onlyS) continue;
    const g = new Gen(rng((SEED ^ Math.imul(s + 1, 0x9e3779b1)) >>> 0));
    const sc = scenario(g, fam);
    const graph = new CalcGraph({ nodeName: 'node1' });
    for (const r of sc.resources) graph.onUpdate(r);
    graph.flush();
    const snap = graph.snapshot();
    const idx = new TableIndex(snap);
    const rules = new Map(snap.rules.map((r) => [r.id, r]));
    for (let p = 0; p < PACKETS; p++) {
      const pkt = packet(g, sc, fam);
      if (onlyP !== undefined && p !== onlyP) continue;
      // A packet of a family the endpoint has no address of is never judged as its own (no route
      // leads to it, anti-spoofing stops it sending one): the compiler leaves that family's
      // local-side nets unconstrained there, the reference cannot match them. Not a case.
      const v6 = pkt.remoteIP.includes(':');
      if (!(graph.resources.endpoints.get(pkt.endpoint)?.spec.ipNetworks ?? []).some((n) => n.includes(':') === v6)) continue;
      cases++;
      const ref: EvalResult = evaluate(pkt, graph.resources);
      let got: { action: string; rule: string; logs: string[] };
      try {
        const l = idx.lookup(pkt);
        got = { action: l.action, rule: who(rules.get(l.ruleId)), logs: l.logRuleIds.map((id) => who(rules.get(id))) };
      } catch (e) {
        got = { action: 'error', rule: String(e), logs: [] };
      }
      const want = { action: ref.action, rule: who(ref.decidedBy), logs: ref.logs.map(who) };
      bump(ref.action);
      bump(ref.decidedBy.kind);
      if (ref.logs.length > 0) bump('logged');
      if (ref.decidedBy.policy?.kind === 'Profile') bump('profile');
      if (pkt.remoteIP.includes(':')) bump(`v6 ${ref.action}`);
      const same = JSON.stringify(got) === JSON.stringify(want);
      if (ONLY) {
        t.comment(JSON.stringify({ resources: sc.resources, packet: pkt }, null, 1));
        t.comment(`reference: ${JSON.stringify(want)}\ntables:    ${JSON.stringify(got)}`);
      }
      if (!same) {
        failures++;
        if (failures <= 5) {
          t.fail(`case ${s}:${p} differs (replay: TORTIE_CALC_SEED=${SEED} TORTIE_CALC_FAMILY=${fam} TORTIE_CALC_CASE=${s}:${p})`, { want, got, packet: pkt });
        }
      }
    }
  }
  t.equal(failures, 0, `${cases} cases, ${failures} disagreements`);
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
  if (!ONLY) {
    // The generator must exercise every kind of outcome, or agreement proves little.
    const kinds = ['allow', 'deny', 'rule', 'end-of-tier', 'no-profile-match', 'logged', 'profile'];
    for (const k of fam === 4 ? kinds : [...kinds, 'v6 allow', 'v6 deny']) {
      t.ok((seen.get(k) ?? 0) >= cases * 0.01, `outcome "${k}" in ≥ 1% of cases (${seen.get(k) ?? 0})`);
    }
  }
  if (!ONLY && fam === 4) t.ok(cases >= 100_000 || SCENARIOS < 500, `at least 100,000 cases (${cases})`);
  if (!ONLY && fam === 'dual') t.ok(cases >= 40_000 || DUAL < 250, `at least 40,000 cases (${cases})`);
});
