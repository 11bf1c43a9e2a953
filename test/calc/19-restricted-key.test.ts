/**
 * ClassIndex.restrictedKey (a class's fingerprint restricted to a set of atoms, walking its
 * members) and ClassIndex.restrictor (the same, walking the atoms
 * instead when the class has more members than the set has atoms) against ClassIndex.accumulate (the same fingerprint summed
 * atom by atom over the classes of each atom, from the index's own hash cache): on random
 * scenarios and random atom subsets, every class with one of the atoms has the accumulated
 * fingerprint and every other class -1. Both are used for the same table (a full build
 * accumulates, an edit built from a predecessor and single class changes use restrictedKey), so
 * a difference would put a class in the wrong group.
 *
 *   TORTIE_CALC_SEED=<n>  base seed (default 20261207)
 */
import t from 'tap';
import { CalcGraph } from '../../src/calc';
import { type ClassIndex, atomsOfMembers, sigNumber } from '../../src/calc/classes';
import { Gen, rng, scenario } from '../../src/testbed/fuzz/random';

const SEED = Number(process.env.TORTIE_CALC_SEED ?? 20261207);
const SCENARIOS = 120;

t.test('restrictedKey equals the fingerprint accumulated atom by atom', async (t) => {
  let checked = 0;
  let withNamedPorts = 0;
  let atomWalks = 0;
  const problems: string[] = [];
  for (let sc = 0; sc < SCENARIOS && problems.length === 0; sc++) {
    const g0 = new Gen(rng(SEED + 7919 * sc));
    const s = scenario(g0);
    const g = new CalcGraph({ nodeName: 'node1' });
    for (const r of s.resources) g.onUpdate(r);
    g.flush();
    const ci = (g as unknown as { classIndex: ClassIndex }).classIndex;
    const classes = [...ci.classes.values()];
    const allAtoms = [...new Set(classes.flatMap((c) => atomsOfMembers(c.members)))];
    withNamedPorts += classes.filter((c) => c.npHash !== undefined).length;
    for (let k = 0; k < 20 && problems.length === 0; k++) {
      // All atoms, about 30 % of them, or a handful (fewer than most classes' members: the
      // restrictor then walks the atoms).
      const atoms = new Set(allAtoms.filter(() => g0.chance(k === 0 ? 1 : k % 2 === 1 ? 0.3 : 3 / allAtoms.length)));
      const restrict = ci.restrictor(atoms);
      const touched = new Map(ci.accumulate(atoms).map((c) => [c.id, sigNumber(ci.acc1[c.slot]!, ci.acc2[c.slot]!)]));
      for (const c of classes) {
        const want = touched.get(c.id) ?? -1;
        const got = ci.restrictedKey(atoms, c);
        const viaRestrictor = restrict(c);
        checked++;
        // More members than the set has atoms: the restrictor walked the atoms.
        if (c.members.length > atoms.size) atomWalks++;
        if (viaRestrictor !== want) {
          problems.push(`scenario ${sc}: class ${c.id} (${c.members.join(' ')}) restrictor of ${[...atoms].join(' ')}: ${viaRestrictor}, accumulated ${want}`);
          break;
        }
        if (got !== want) {
          problems.push(`scenario ${sc}: class ${c.id} (${c.members.join(' ')}) restricted to ${[...atoms].join(' ')}: ${got}, accumulated ${want}`);
          break;
        }
      }
    }
  }
  t.same(problems, []);
  t.ok(checked > 5_000, `${checked} class restrictions checked`);
  t.ok(atomWalks > 1_000, `${atomWalks} of them walked atom by atom`);
  t.ok(withNamedPorts > 0, `${withNamedPorts} classes with named-port members among them`);
});
