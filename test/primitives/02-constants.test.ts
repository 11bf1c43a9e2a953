// src/primitives' protocol sets, Calico label names and IPPool defaults: each is defined once,
// and the layers that apply them (validator, IPAM reading stored pools, the compiler's routing
// inputs, the CNI plugin's endpoint labels) agree with that one definition.
import t from 'tap';
import {
  ICMP_PROTOCOLS,
  IPPOOL_DEFAULTS,
  IPPROTO,
  LABEL_NAMESPACE,
  LABEL_ORCHESTRATOR,
  PORT_PROTOCOLS,
  PROTOCOL_NAMES,
  RULE_PORT_PROTOCOLS,
  defaultBlockSize,
  isIcmpProtocol,
  isPortProtocol,
  protocolNumberOfName,
} from '../../src/primitives';
import { toV3, protocolNumber, protocolSupportsPorts, parseProtocol, type IPPool } from '../../src/model';
import { poolFromResource } from '../../src/ipam';
import { CalcGraph } from '../../src/calc/graph';
import { effectiveLabels } from '../../src/calc/semantics';

t.test('protocol sets and names', async (t) => {
  for (let p = -1; p <= 300; p++) {
    if (isPortProtocol(p) !== PORT_PROTOCOLS.includes(p)) t.fail(`isPortProtocol(${p})`);
    if (isIcmpProtocol(p) !== ICMP_PROTOCOLS.includes(p)) t.fail(`isIcmpProtocol(${p})`);
  }
  t.same([...PORT_PROTOCOLS].sort((a, b) => a - b), [6, 17, 132, 136], 'ports are read for TCP, UDP, SCTP, UDPLite');
  t.same([...RULE_PORT_PROTOCOLS].sort((a, b) => a - b), [6, 17, 132], 'a rule may name ports for TCP, UDP, SCTP (Calico)');
  t.same(PROTOCOL_NAMES, ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite']);
  for (const n of PROTOCOL_NAMES) {
    t.equal(protocolNumberOfName(n), protocolNumber(n), `${n}: one number in primitives and model`);
    t.equal(protocolNumberOfName(n.toUpperCase()), n === n.toUpperCase() ? protocolNumberOfName(n) : undefined, `${n}: exact case only by default`);
    t.equal(protocolNumberOfName(n.toLowerCase(), true), protocolNumberOfName(n), `${n}: any case when asked`);
  }
  t.equal(protocolNumberOfName('constructor'), undefined, 'an inherited property name is not a protocol');
  t.equal(protocolNumberOfName('__proto__', true), undefined);
  t.equal(IPPROTO.ICMPV6, 58);
  for (const p of [6, 17, 132, 'TCP', 'UDP', 'SCTP'] as const) t.ok(protocolSupportsPorts(p), `${p} supports ports`);
  for (const p of [1, 58, 136, 'ICMP', 'UDPLite'] as const) t.notOk(protocolSupportsPorts(p), `${p} has no rule ports in Calico`);
  t.same(parseProtocol('constructor'), { error: 'protocol "constructor" is invalid (expected one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1 to 255)' });
});

t.test('IPPool defaults: the validator, IPAM and the compiler fill in the same values', async (t) => {
  const r = toV3({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '192.168.0.0/16' } });
  if (r.problems !== undefined) throw new Error('invalid pool');
  const pool = r.resource as IPPool;
  t.equal(pool.spec.blockSize, IPPOOL_DEFAULTS.blockSizeV4);
  t.equal(pool.spec.ipipMode, IPPOOL_DEFAULTS.ipipMode);
  t.equal(pool.spec.vxlanMode, IPPOOL_DEFAULTS.vxlanMode);
  t.equal(pool.spec.nodeSelector, IPPOOL_DEFAULTS.nodeSelector);
  t.same(pool.spec.allowedUses, IPPOOL_DEFAULTS.allowedUses);
  t.equal(pool.spec.assignmentMode, IPPOOL_DEFAULTS.assignmentMode);
  t.equal(pool.spec.natOutgoing ?? false, IPPOOL_DEFAULTS.natOutgoing);
  const v6 = toV3({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p6' }, spec: { cidr: 'fd00:10::/48' } });
  t.equal((v6.resource as IPPool).spec.blockSize, defaultBlockSize(6));

  // A stored pool written before the defaults existed (only a cidr): IPAM reads the same values.
  const bare = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'old' }, spec: { cidr: '10.10.0.0/16' } };
  const info = poolFromResource(bare)!;
  t.equal(info.blockSize, IPPOOL_DEFAULTS.blockSizeV4);
  t.equal(info.ipipMode, IPPOOL_DEFAULTS.ipipMode);
  t.equal(info.natOutgoing, IPPOOL_DEFAULTS.natOutgoing);
  t.equal(info.nodeSelector, IPPOOL_DEFAULTS.nodeSelector);
  t.same(info.allowedUses, IPPOOL_DEFAULTS.allowedUses);

  // …and so does the compiler's routing input.
  const g = new CalcGraph({ nodeName: 'node1' });
  g.onUpdate(bare as unknown as IPPool);
  g.flush();
  const rp = g.snapshot().routing.pools.find((p) => p.name === 'old')!;
  t.same({ ipipMode: rp.ipipMode, vxlanMode: rp.vxlanMode, natOutgoing: rp.natOutgoing, blockSize: rp.blockSize },
    { ipipMode: IPPOOL_DEFAULTS.ipipMode, vxlanMode: IPPOOL_DEFAULTS.vxlanMode, natOutgoing: IPPOOL_DEFAULTS.natOutgoing, blockSize: IPPOOL_DEFAULTS.blockSizeV4 });
});

t.test('Calico labels: the validator and the compiler put the same names on an endpoint', async (t) => {
  const r = toV3({
    apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint',
    metadata: { name: 'node1-k8s-pod1-eth0', namespace: 'ns1' },
    spec: { orchestrator: 'k8s', node: 'node1', pod: 'pod1', endpoint: 'eth0', interfaceName: 'cali0123456789a', ipNetworks: ['192.168.0.1/32'] },
  });
  if (r.problems !== undefined) throw new Error('invalid endpoint');
  const labels = (r.resource.metadata as { labels?: Record<string, string> }).labels ?? {};
  t.equal(labels[LABEL_NAMESPACE], 'ns1');
  t.equal(labels[LABEL_ORCHESTRATOR], 'k8s');
  const eff = effectiveLabels(r.resource as never, () => undefined, () => undefined);
  t.equal(eff[LABEL_NAMESPACE], 'ns1');
  t.equal(eff[LABEL_ORCHESTRATOR], 'k8s');
});
