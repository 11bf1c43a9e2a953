import t from 'tap';
import YAML from 'yaml';
import { cliFor } from './helpers/cli';

const SEED = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: default-ipv4-ippool}
spec: {cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: edge}
spec: {cidr: 10.99.0.0/24, nodeSelector: "zone == 'edge'", disabled: true}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node1}
spec: {bgp: {ipv4Address: 10.0.2.10/24, asNumber: 64600}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node2}
spec: {bgp: {ipv4Address: 10.0.3.20/24}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node3}
spec: {}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p-default}
spec: {selector: all(), order: 10}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p-prod, namespace: prod}
spec: {selector: "app == 'db'"}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: late}
spec: {order: 500}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: early}
spec: {order: 50}
`;

t.test('get', async (t) => {
  const cli = cliFor(t);
  t.equal((await cli.run(['apply', '-f', '-'], { stdin: SEED })).code, 0);

  t.test('ps and wide tables, calicoctl headings and cells', async (t) => {
    t.same(await cli.run(['get', 'ippool']), {
      code: 0, stderr: '',
      stdout: 'NAME                  CIDR             SELECTOR         \n' +
              'default-ipv4-ippool   192.168.0.0/16   all()            \n' +
              "edge                  10.99.0.0/24     zone == 'edge'   \n\n",
    });
    t.same((await cli.run(['get', 'ippools', '--output=wide'])).stdout,
      'NAME                  CIDR             NAT     IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR         \n' +
      'default-ipv4-ippool   192.168.0.0/16   true    Always     Never       false      false              all()            \n' +
      "edge                  10.99.0.0/24     false   Never      Never       true       false              zone == 'edge'   \n\n");
    t.same(await cli.run(['get', 'nodes', '--output=wide']), {
      code: 0, stderr: '',
      stdout: 'NAME    ASN       IPV4           IPV6   \n' +
              'node1   64600     10.0.2.10/24          \n' +
              'node2   (64512)   10.0.3.20/24          \n' +
              'node3                                   \n\n',
    }, 'the IPv4 address with its subnet; an unset ASN is the default in parentheses');
    t.equal((await cli.run(['get', 'nodes'])).stdout, 'NAME    \nnode1   \nnode2   \nnode3   \n\n');
    t.equal((await cli.run(['get', 'tiers'])).stdout, 'NAME      ORDER     \nearly     50        \nlate      500       \ndefault   1000000   \n\n', 'tiers by order, the built-in default tier included');
    t.equal((await cli.run(['get', 'ippool', '-o', 'custom-columns=name,ipipmode'])).stdout,
      'NAME                  IPIPMODE   \ndefault-ipv4-ippool   Always     \nedge                  Never      \n\n');
    t.equal((await cli.run(['get', 'node', 'node2', 'node1'])).stdout, 'NAME    \nnode2   \n\nNAME    \nnode1   \n\n', 'one table per named resource');
  });

  t.test('kind names and aliases, any case', async (t) => {
    const want = (await cli.run(['get', 'IPPool'])).stdout;
    for (const k of ['ipPool', 'ippools', 'ipp', 'IPPS', 'pool', 'pools', 'ippools.projectcalico.org', 'ippools.crd.projectcalico.org']) {
      t.equal((await cli.run(['get', k])).stdout, want, k);
    }
    const nodes = (await cli.run(['get', 'node'])).stdout;
    for (const k of ['nodes', 'no', 'NOS', 'Node']) t.equal((await cli.run(['get', k])).stdout, nodes, k);
    for (const k of ['networkpolicy', 'networkPolicies', 'np', 'policy', 'pol']) {
      t.match((await cli.run(['get', k])).stdout, /p-default/, k);
    }
    for (const k of ['globalnetworkpolicy', 'gnp', 'workloadendpoint', 'wep', 'profile', 'pro', 'tier', 'namespaces']) {
      t.equal((await cli.run(['get', k])).code, 0, k);
    }
    t.same(await cli.run(['get', 'bgppeerz']), { code: 1, stdout: '', stderr: "Failed to get resources: resource type 'bgppeerz' is not supported\n" });
    t.same(await cli.run(['get', 'kubecontrollersconfiguration']), {
      code: 1, stdout: '',
      stderr: "Failed to get resources: resource type 'kubecontrollersconfiguration' is not supported: KubeControllersConfiguration is a Calico resource tortie does not implement: " +
        'it configures calico-kube-controllers, which runs against the Kubernetes API; tortie has no Kubernetes API datastore and runs no kube-controllers ' +
        '(tortie has: bgpConfiguration, bgpPeer, clusterInformation, felixConfiguration, globalNetworkPolicy, globalNetworkSet, hostEndpoint, ipPool, ipReservation, namespace, networkPolicy, networkSet, node, profile, tier, workloadEndpoint)\n',
    });
  });

  t.test('yaml and json: one named resource alone, a kind as a *List, several names as a sequence', async (t) => {
    const one = YAML.parse((await cli.run(['get', 'node', 'node1', '-o', 'yaml'])).stdout);
    t.equal(one.kind, 'Node');
    t.equal(one.apiVersion, 'projectcalico.org/v3');
    t.same(one.spec, { bgp: { ipv4Address: '10.0.2.10/24', asNumber: 64600 } });
    t.match(one.metadata.resourceVersion, /^\d+$/);
    const list = YAML.parse((await cli.run(['get', 'nodes', '-o', 'yaml'])).stdout);
    t.equal(list.kind, 'NodeList');
    t.same(list.items.map((n: { metadata: { name: string } }) => n.metadata.name), ['node1', 'node2', 'node3']);
    t.match(list.metadata.resourceVersion, /^\d+$/);
    const two = YAML.parse((await cli.run(['get', 'node', 'node1', 'node3', '-o', 'yaml'])).stdout);
    t.ok(Array.isArray(two));
    t.same(two.map((n: { kind: string }) => n.kind), ['Node', 'Node']);
    const text = (await cli.run(['get', 'node', 'node1', '-o', 'yaml'])).stdout;
    t.match(text, /^apiVersion: projectcalico\.org\/v3\nkind: Node\nmetadata:\n  creationTimestamp: /, 'keys sorted as calicoctl prints them');
    const json = (await cli.run(['get', 'ippool', 'edge', '-o', 'json'])).stdout;
    t.match(json, /^\{\n  "kind": "IPPool",\n  "apiVersion": "projectcalico\.org\/v3",\n  "metadata": \{\n    "name": "edge",/);
    t.equal(JSON.parse(json).spec.disabled, true);
    const jl = JSON.parse((await cli.run(['get', 'gnp', '-o', 'json'])).stdout);
    t.same(jl, { kind: 'GlobalNetworkPolicyList', apiVersion: 'projectcalico.org/v3', metadata: { resourceVersion: jl.metadata.resourceVersion }, items: [] });
    const exported = YAML.parse((await cli.run(['get', 'node', 'node1', '-o', 'yaml', '--export'])).stdout);
    t.same(exported.metadata, { name: 'node1' }, '--export strips cluster-specific metadata');
  });

  t.test('namespaces: default, -n, -A (and the old -a)', async (t) => {
    t.equal((await cli.run(['get', 'np'])).stdout, 'NAME        TIER      \np-default   default   \n\n');
    t.equal((await cli.run(['get', 'np', '-n', 'prod'])).stdout, 'NAMESPACE   NAME     TIER      \nprod        p-prod   default   \n\n');
    const all = 'NAMESPACE   NAME        TIER      \ndefault     p-default   default   \nprod        p-prod      default   \n\n';
    t.equal((await cli.run(['get', 'np', '-A'])).stdout, all);
    t.equal((await cli.run(['get', 'np', '-a'])).stdout, all);
    t.equal((await cli.run(['get', 'np', '--all-namespaces', '-o', 'wide'])).stdout,
      'NAMESPACE   NAME        TIER      ORDER   SELECTOR      \ndefault     p-default   default   10      all()         \nprod        p-prod      default           app == \'db\'   \n\n');
    t.same(await cli.run(['get', 'np', 'p-prod', '-A']), { code: 1, stdout: '', stderr: 'Failed to get resources: cannot use --all-namespace flag for getting a single resource\n' });
    t.same(await cli.run(['get', 'np', '-A', '-n', 'prod']), { code: 1, stdout: '', stderr: 'Failed to get resources: cannot use both --namespace and --all-namespaces flags at the same time\n' });
    t.same(await cli.run(['get', 'ippool', '-n', 'prod']), { code: 1, stdout: '', stderr: 'Failed to get resources: IPPool is not namespaced\n' });
  });

  t.test('missing names: found ones printed, each missing one on stderr, exit 1', async (t) => {
    t.same(await cli.run(['get', 'node', 'node1', 'ghost', 'node3']), {
      code: 1, stdout: 'NAME    \nnode1   \n\nNAME    \nnode3   \n\n', stderr: 'resource does not exist: Node(ghost)\n',
    });
    t.same(await cli.run(['get', 'np', 'ghost', '-o', 'yaml']), { code: 1, stdout: '[]\n', stderr: 'resource does not exist: NetworkPolicy(default/ghost)\n' });
  });

  t.test('get -f: the resources a file names', async (t) => {
    cli.file('ids.yaml', 'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node2}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: edge}\n');
    const r = await cli.run(['get', '-f', 'ids.yaml', '-o', 'yaml']);
    t.equal(r.code, 0);
    t.same(YAML.parse(r.stdout).map((x: { kind: string; metadata: { name: string } }) => `${x.kind}/${x.metadata.name}`), ['Node/node2', 'IPPool/edge']);
  });

  t.test('bad output formats and usage', async (t) => {
    t.same(await cli.run(['get', 'ippool', '-o', 'xml']), { code: 1, stdout: '', stderr: "unrecognized output format 'xml'\n" });
    t.match((await cli.run(['get', 'ippool', '-o', 'custom-columns=NAME,BOGUS'])).stderr, /^Unknown heading BOGUS, valid values are: NAME, CIDR, /);
    t.match((await cli.run(['get', 'ippool', '-o', 'go-template={{.}}'])).stderr, /not supported by tortiectl/);
    t.same(await cli.run(['get']), { code: 1, stdout: '', stderr: "Invalid option: 'tortiectl get'. Use flag '--help' to read about a specific subcommand.\n" });
    const help = await cli.run(['get', '--help']);
    t.equal(help.code, 0);
    t.match(help.stdout, /^Usage:\n  tortiectl get /);
    t.match(help.stdout, /\* ipPool\n/);
  });
});

t.test('a malformed stored resource does not break a listing', async (t) => {
  const cli = cliFor(t);
  const { EmbeddedDatastore } = await import('../../src/datastore/embedded');
  const ds = new EmbeddedDatastore({ dir: cli.storeDir });
  await ds.put('/calico/resources/v3/projectcalico.org/ippools/odd', { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'odd' } });
  await ds.close();
  const r = await cli.run(['get', 'ippools', '-o', 'wide']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^NAME +CIDR +NAT +IPIPMODE .*\nodd +\n\n$/, "the row is there, cells it cannot fill are empty");
});
