/**
 * The testbed: the one way the lab, the tests and the benchmarks build what they run on.
 *
 *   layouts.ts   SingleNode (node + outside), ThreeNodeCluster (the lab's), FlatCluster (N nodes)
 *   wire.ts      node sysctls; workloads wired by the CNI plugin's own steps (cni/netlink wireSteps)
 *   cni.ts       the real CNI plugins, installed on a private CNI_PATH and run in a node
 *   agent.ts     agents as processes (start + wait ready, shared with tortiectl node run) or in-process
 *   pins.ts      the pin-root naming scheme (/sys/fs/bpf/tortie-<label>-<pid>-<hex>), removed on exit
 *   probes.ts    TCP/UDP/ICMP probes, scapy (any protocol, SCTP included), captures, held sockets
 *   store.ts     a temporary embedded datastore
 *   agent-bed.ts one node running the real agent process (store, pins, run dir)
 *   cni-bed.ts   one node for CNI plugin tests (store with a pool, plugins on CNI_PATH)
 *   cluster-bed.ts  the three-node cluster with in-process agents
 *   fixtures.ts  resource and packet builders (import it directly: testbed/fixtures)
 *   Imported by path, for BPF_PROG_TEST_RUN and external peers:
 *   wep-harness.ts, uplink-harness.ts  the workload / uplink programs under a pin root, one packet at a time
 *   tables.ts    hand-built verdict tables; fuzz/  seeded differential fuzzers (workload, NAT)
 *   family.ts    one address family for test bodies run in IPv4 and IPv6 (docs/testing.md)
 *   etcd.ts      a private etcd (single node, cluster, TLS) for datastore tests and benchmarks
 *
 * Namespaces themselves come from src/util/netns.ts, whose contract is the network-safety rules:
 * unique names, interfaces created inside namespaces, teardown on success, failure, exit, signals.
 */
export * from './layouts';
export * from './wire';
export * from './cni';
export * from './agent';
export * from './pins';
export * from './probes';
export * from './store';
export { Topology, Netns, run, type ExecResult } from '../util/netns';
export * from './agent-bed';
export * from './cni-bed';
export * from './cluster-bed';
