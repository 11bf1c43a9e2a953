import t from 'tap';
import { CalcGraph, evaluate, TableIndex, validateCompiled, type PolicyPacket } from '../../src/calc';
import { gnp, wep } from '../../src/testbed/fixtures';

t.test('reference evaluator rejects bad packets with precise errors', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  g.onUpdate(wep('ns1/a', { ip: '192.168.0.1' }));
  g.flush();
  const p: PolicyPacket = { endpoint: 'ns1/a', direction: 'ingress', remoteIP: '10.0.0.1', protocol: 6, srcPort: 1, dstPort: 2 };
  t.throws(() => evaluate({ ...p, endpoint: 'ns1/zz' }, g.resources), { code: 'ERR_CALC_UNKNOWN_ENDPOINT', message: /ns1\/zz/ });
  t.throws(() => evaluate({ ...p, remoteIP: '10.0.0' }, g.resources), { code: 'ERR_CALC_BAD_PACKET', message: /remoteIP/ });
  t.throws(() => evaluate({ ...p, dstPort: 70000 }, g.resources), { code: 'ERR_CALC_BAD_PACKET', message: /dstPort: 70000/ });
  t.throws(() => evaluate({ ...p, protocol: 300 }, g.resources), { code: 'ERR_CALC_BAD_PACKET', message: /protocol/ });
  const idx = new TableIndex(g.snapshot());
  t.throws(() => idx.lookup({ ...p, endpoint: 'ns1/zz' }), { code: 'ERR_CALC_UNKNOWN_ENDPOINT' });
  t.equal(idx.lookup(p).action, 'deny');
});

t.test('hand-built resources with bad selectors, ports or CIDRs fail closed and never throw', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  g.onUpdate(wep('ns1/a', { ip: '192.168.0.1', labels: { app: 'x' } }));
  g.onUpdate(wep('ns1/b', { ip: 'not-an-ip', labels: { app: 'x' }, node: 'node2' }));
  g.onUpdate(gnp('bad-sel', { selector: 'app == ', ingress: [{ action: 'Allow' }] }));
  g.onUpdate(
    gnp('bad-rules', {
      selector: 'app == "x"',
      ingress: [
        { action: 'Allow', source: { selector: '((' } },
        { action: 'Allow', protocol: 'TCP', destination: { ports: ['99999', '80:70', ''] } },
        { action: 'Allow', source: { nets: ['garbage'] } },
        { action: 'Allow', protocol: 'NOPE' },
      ],
    }),
  );
  t.doesNotThrow(() => g.flush());
  const idx = new TableIndex(g.snapshot());
  for (const dstPort of [80, 75, 99]) {
    const p: PolicyPacket = { endpoint: 'ns1/a', direction: 'ingress', remoteIP: '192.168.0.9', protocol: 6, srcPort: 1, dstPort };
    t.equal(idx.lookup(p).action, 'deny');
    t.equal(evaluate(p, g.resources).action, 'deny');
  }
});

t.test('validateCompiled finds holes, overlaps and dangling references', async (t) => {
  const g = new CalcGraph({ nodeName: 'node1' });
  g.onUpdate(wep('ns1/a', { ip: '192.168.0.1', labels: { app: 'x' } }));
  g.onUpdate(wep('ns1/b', { ip: '192.168.0.2', labels: { app: 'y' }, node: 'node2' }));
  g.onUpdate(gnp('p', { selector: 'app == "x"', ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: 'app == "y"' }, destination: { ports: ['80:90'] } }] }));
  g.flush();
  const good = g.snapshot();
  t.same(validateCompiled(good), []);
  const holed = structuredClone(good);
  const tb = holed.tables.find((x) => x.cells.length > 3)!;
  tb.cells.splice(1, 1);
  t.match(validateCompiled(holed).join('\n'), /gap or overlap|no cells for|does not reach/);
  const dangling = structuredClone(good);
  dangling.tables[0]!.cells[0]!.ruleId = 1;
  t.match(validateCompiled(dangling).join('\n'), /unknown rule 1/);
  const noTable = structuredClone(good);
  noTable.tables.pop();
  t.match(validateCompiled(noTable).join('\n'), /missing table/);
});
