/**
 * How tortie wires a workload, where more than one layer relies on it: the CNI plugin creates
 * every workload veth's host side (cali*) with this MAC, and BPF host routing writes it as the
 * source MAC of packets it forwards into a workload (src/dataplane/bpf/apply.ts, tortie_epdst_v1).
 */
export const WORKLOAD_HOST_MAC = 'ee:ee:ee:ee:ee:ee';
