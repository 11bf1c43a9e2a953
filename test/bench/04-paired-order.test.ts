// The same-node groups' order (bench/run.ts, pairedOrder): every dataplane measures every
// workload once per repeat; bare and tortie, whose ratio is the goal, measure each workload back
// to back, the first of the pair alternating (neither favoured over an even number of repeats);
// iptables and nftables keep whole blocks, and orderFor's rotation still moves every dataplane
// through the positions.
import t from 'tap';
import { pairedOrder } from '../../bench/run';
import { DATAPLANES, orderFor } from '../../bench/lib/results';

t.test('pairedOrder', async (t) => {
  const W = 5;
  const firsts = { bare: 0, tortie: 0 };
  for (let rep = 0; rep < 4; rep++) {
    const steps = pairedOrder(rep, W);
    t.equal(steps.length, DATAPLANES.length * W, `repeat ${rep}: one step per dataplane and workload`);
    for (const dp of DATAPLANES) {
      t.same(steps.filter((x) => x.dp === dp).map((x) => x.workload).sort(), [0, 1, 2, 3, 4], `repeat ${rep}: ${dp} measures every workload once`);
    }
    for (let w = 0; w < W; w++) {
      const i = steps.findIndex((x) => x.workload === w && (x.dp === 'bare' || x.dp === 'tortie'));
      const pair = [steps[i]!.dp, steps[i + 1]!.dp];
      t.same([...pair].sort(), ['bare', 'tortie'], `repeat ${rep}, workload ${w}: bare and tortie back to back`);
      t.equal(steps[i + 1]!.workload, w);
      firsts[pair[0] as 'bare' | 'tortie']++;
    }
    for (const dp of ['iptables', 'nftables'] as const) {
      const at = steps.map((x, i) => (x.dp === dp ? i : -1)).filter((i) => i >= 0);
      t.equal(at[at.length - 1]! - at[0]!, W - 1, `repeat ${rep}: ${dp} in one block`);
    }
    // The blocks follow orderFor's rotation (the pair at the place of its first member).
    const blocks = steps.map((x) => (x.dp === 'bare' || x.dp === 'tortie' ? 'pair' : x.dp)).filter((x, i, a) => i === 0 || a[i - 1] !== x);
    const rot = orderFor(rep).map((x) => (x === 'bare' || x === 'tortie' ? 'pair' : x)).filter((x, i, a) => a.indexOf(x) === i);
    t.same(blocks, rot, `repeat ${rep}: blocks in orderFor's order`);
  }
  t.same(firsts, { bare: 10, tortie: 10 }, 'over four repeats bare and tortie go first equally often');
});
