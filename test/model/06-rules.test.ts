import t from 'tap';
import { valid, problems, gnp } from './helpers/util';

const P = 'GlobalNetworkPolicy p1';
const ingress = (...rules: unknown[]) => gnp({ ingress: rules });
const ruleOf = (rule: unknown) => (valid(ingress(rule)).spec as any).ingress[0];

t.test('the example from the issue: a reversed port range', async (t) => {
  t.same(
    problems(ingress({ action: 'Allow' }, { action: 'Allow' }, { action: 'Allow', protocol: 'TCP', destination: { ports: ['80:70'] } })),
    [`${P}: spec.ingress[2].destination.ports[0]: range "80:70" has min > max`],
  );
});

t.test('ports: canonical forms', async (t) => {
  const r = ruleOf({ action: 'Allow', protocol: 'TCP', destination: { ports: [80, '443', '8000:8080', '9000:9000', 'http-alt'] } });
  t.same(r.destination.ports, [80, 443, '8000:8080', 9000, 'http-alt']);
  t.same(ruleOf({ action: 'Allow', protocol: 'UDP', source: { notPorts: [53] } }).source.notPorts, [53]);
  t.same(ruleOf({ action: 'Allow', protocol: 6, destination: { ports: [22] } }).protocol, 6);
  t.same(ruleOf({ action: 'Allow', protocol: '17', destination: { ports: [53] } }).protocol, 17, 'numeric string → number');
});

t.test('ports: errors', async (t) => {
  const d = (ports: unknown[], protocol: unknown = 'TCP') => problems(ingress({ action: 'Allow', protocol, destination: { ports } }));
  t.same(d([0]), [`${P}: spec.ingress[0].destination.ports[0]: port 0 is invalid (must be 1 to 65535)`]);
  t.same(d([65536]), [`${P}: spec.ingress[0].destination.ports[0]: port 65536 is invalid (must be 1 to 65535)`]);
  t.same(d(['0:10']), [`${P}: spec.ingress[0].destination.ports[0]: range "0:10" is invalid (ports must be 1 to 65535)`]);
  t.same(d([1.5]), [`${P}: spec.ingress[0].destination.ports[0]: port 1.5 is invalid (must be 1 to 65535)`]);
  t.same(d([null]), [`${P}: spec.ingress[0].destination.ports[0]: port must be a number or a string, got null`]);
  t.same(d(['Http']), [
    `${P}: spec.ingress[0].destination.ports[0]: "Http" is neither a port number, a "min:max" range nor a valid named port: port name "Http" may contain only lower-case letters, digits and '-'`,
  ]);
  t.same(d(['80-90']), [
    `${P}: spec.ingress[0].destination.ports[0]: "80-90" is neither a port number, a "min:max" range nor a valid named port: port name "80-90" must contain at least one letter`,
  ]);
  t.same(d([80], 'ICMP'), [`${P}: spec.ingress[0].destination.ports: ports can only be used with protocol TCP, UDP or SCTP, not ICMP`]);
  t.same(d([80], 'UDPLite'), [`${P}: spec.ingress[0].destination.ports: ports can only be used with protocol TCP, UDP or SCTP, not UDPLite`]);
  t.same(problems(ingress({ action: 'Allow', destination: { ports: [80] } })), [
    `${P}: spec.ingress[0].destination.ports[0]: numeric port "80" requires protocol TCP, UDP or SCTP`,
  ]);
  t.same(problems(ingress({ action: 'Allow', destination: { ports: ['http'] } })), [], 'named ports need no protocol');
  t.same(d(Array.from({ length: 51 }, (_, i) => i + 1)), [`${P}: spec.ingress[0].destination.ports: has 51 entries, more than the 50 allowed`]);
});

t.test('protocols', async (t) => {
  for (const p of ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite', 1, 255]) {
    t.same(problems(ingress({ action: 'Allow', protocol: p })), [], `protocol ${p}`);
  }
  t.same(problems(ingress({ action: 'Allow', protocol: 'tcp' })), [
    `${P}: spec.ingress[0].protocol: protocol "tcp" is invalid (expected one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1 to 255); did you mean TCP?`,
  ]);
  t.same(problems(ingress({ action: 'Allow', protocol: 0 })), [`${P}: spec.ingress[0].protocol: protocol number 0 is invalid (must be 1 to 255)`]);
  t.same(problems(ingress({ action: 'Allow', notProtocol: 256 })), [`${P}: spec.ingress[0].notProtocol: protocol number 256 is invalid (must be 1 to 255)`]);
  t.same(problems(ingress({ action: 'Allow', protocol: 'ICMP', ipVersion: 6 })), [`${P}: spec.ingress[0].protocol: ICMP requires ipVersion 4, not 6`]);
  t.same(problems(ingress({ action: 'Allow', notProtocol: 58, ipVersion: 4 })), [`${P}: spec.ingress[0].notProtocol: ICMPv6 requires ipVersion 6, not 4`]);
  t.same(problems(ingress({ action: 'Allow', ipVersion: 5 })), [`${P}: spec.ingress[0].ipVersion: must be 4 or 6, got a number (5)`]);
});

t.test('icmp / notICMP', async (t) => {
  t.same(ruleOf({ action: 'Allow', protocol: 'ICMP', icmp: { type: 8, code: 0 } }).icmp, { type: 8, code: 0 });
  t.same(ruleOf({ action: 'Deny', protocol: 'ICMPv6', notICMP: { type: 128 } }).notICMP, { type: 128 });
  t.same(problems(ingress({ action: 'Allow', protocol: 'ICMP', icmp: { code: 1 } })), [
    `${P}: spec.ingress[0].icmp.code: an ICMP code requires an ICMP type`,
  ]);
  t.same(problems(ingress({ action: 'Allow', protocol: 'ICMP', icmp: { type: 255 } })), [`${P}: spec.ingress[0].icmp.type: 255 is out of range (0 to 254)`]);
  t.same(problems(ingress({ action: 'Allow', protocol: 'ICMP', icmp: { type: 3, code: 256 } })), [`${P}: spec.ingress[0].icmp.code: 256 is out of range (0 to 255)`]);
  t.same(problems(ingress({ action: 'Allow', protocol: 'TCP', icmp: { type: 8 } })), [`${P}: spec.ingress[0].icmp: requires protocol ICMP or ICMPv6`]);
  t.same(problems(ingress({ action: 'Allow', icmp: { type: 8 } })), [`${P}: spec.ingress[0].icmp: requires protocol ICMP or ICMPv6`]);
});

t.test('nets / notNets', async (t) => {
  t.same(ruleOf({ action: 'Allow', source: { nets: ['10.0.0.0/8', '192.168.1.1/32'], notNets: ['10.1.0.0/16'] } }).source, {
    nets: ['10.0.0.0/8', '192.168.1.1/32'],
    notNets: ['10.1.0.0/16'],
  });
  t.same(ruleOf({ action: 'Allow', source: { nets: ['FD00::/8'] } }).source.nets, ['fd00::/8'], 'IPv6 normalised');
  t.same(problems(ingress({ action: 'Allow', source: { nets: ['10.0.0.1/8'] } })), [
    `${P}: spec.ingress[0].source.nets[0]: "10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)`,
  ]);
  t.same(problems(ingress({ action: 'Allow', source: { nets: ['10.0.0.1'] } })), [
    `${P}: spec.ingress[0].source.nets[0]: "10.0.0.1" is not a valid CIDR (e.g. 10.0.0.0/8)`,
  ]);
  t.same(problems(ingress({ action: 'Allow', source: { notNets: ['0.0.0.0/0'] } })), [
    `${P}: spec.ingress[0].source.notNets[0]: "0.0.0.0/0" in a negated match excludes every address, so the rule could never match`,
  ]);
  t.same(problems(ingress({ action: 'Allow', source: { nets: ['10.0.0.0/8'] }, destination: { nets: ['fd00::/8'] } })), [
    `${P}: spec.ingress[0].destination.nets: a rule cannot mix IPv4 and IPv6 CIDRs`,
  ]);
  t.same(problems(ingress({ action: 'Allow', ipVersion: 6, source: { nets: ['10.0.0.0/8'] } })), [
    `${P}: spec.ingress[0].source.nets: CIDR version does not match the rule's ipVersion 6`,
  ]);
  t.same(problems(ingress({ action: 'Allow', source: { nets: '10.0.0.0/8' } })), [
    `${P}: spec.ingress[0].source.nets: must be a list, got a string ("10.0.0.0/8")`,
  ]);
});

t.test('selectors, service accounts, unsupported http/services, metadata', async (t) => {
  const r = ruleOf({
    action: 'Log',
    source: { selector: "app == 'a'", notSelector: 'has(debug)', namespaceSelector: "env in {'a','b'}", serviceAccounts: { names: ['web'], selector: "team == 'x'" } },
    metadata: { annotations: { 'example.com/why': 'audit' } },
  });
  t.same(r, {
    action: 'Log',
    source: { selector: "app == 'a'", notSelector: 'has(debug)', namespaceSelector: "env in {'a','b'}", serviceAccounts: { names: ['web'], selector: "team == 'x'" } },
    metadata: { annotations: { 'example.com/why': 'audit' } },
  });
  t.same(problems(ingress({ action: 'Allow', http: { methods: ['GET'] } })), [
    `${P}: spec.ingress[0].http: HTTP (application-layer) matches are not supported by tortie; remove the http field`,
  ]);
  t.same(problems(ingress({ action: 'Allow', source: { services: { name: 'x', namespace: 'y' } } })), [
    `${P}: spec.ingress[0].source.services: Kubernetes Service matches are not supported by tortie; use selector or nets`,
  ]);
  t.same(problems(ingress({ action: 'Allow', source: { serviceAccounts: { names: ['Web'] } } })), [
    `${P}: spec.ingress[0].source.serviceAccounts.names[0]: service account name "Web" must consist of lower-case letters, digits, '-' and '.', and start and end with a letter or digit`,
  ]);
  t.same(problems(ingress({ action: 'Allow', sauce: {} })), [`${P}: spec.ingress[0].sauce: unknown field`]);
  t.same(problems(ingress({})), [`${P}: spec.ingress[0].action: is required (one of Allow, Deny, Log, Pass)`]);
  t.same(problems(ingress(null)), [`${P}: spec.ingress[0]: must be an object, got null`]);
  t.same(ruleOf({ action: 'Allow', source: {}, destination: { nets: [] } }), { action: 'Allow' }, 'empty parts omitted');
});

t.test('every problem of a resource is reported at once', async (t) => {
  const ps = problems(
    gnp({
      order: 'x',
      ingress: [
        { action: 'Permit' },
        { action: 'Allow', protocol: 'TCP', destination: { ports: ['80:70', 0] } },
      ],
      egress: [{ action: 'Deny', source: { nets: ['bad'] } }],
    }),
  );
  t.same(ps, [
    `${P}: spec.order: must be a finite number, got a string ("x")`,
    `${P}: spec.ingress[0].action: must be one of Allow, Deny, Log, Pass, got a string ("Permit")`,
    `${P}: spec.ingress[1].destination.ports[0]: range "80:70" has min > max`,
    `${P}: spec.ingress[1].destination.ports[1]: port 0 is invalid (must be 1 to 65535)`,
    `${P}: spec.egress[0].source.nets[0]: "bad" is not a valid CIDR (e.g. 10.0.0.0/8)`,
  ]);
});
