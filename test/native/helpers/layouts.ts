// TS codecs for the structs of bpf/test/tnative.h; 09-codec-btf checks them against BTF.
import { defineStruct } from '../../../src/dataplane/native';

export const tnCounter = defineStruct('tn_counter', [
  { name: 'packets', type: 'u64' },
  { name: 'bytes', type: 'u64' },
] as const);

export const tnFlowKey = defineStruct('tn_flow_key', [
  { name: 'saddr', type: 'ipv4' },
  { name: 'daddr', type: 'ipv4' },
  { name: 'proto', type: 'u8' },
  { name: 'pad', type: 'pad', length: 3 },
] as const);

export const tnFlowVal = defineStruct('tn_flow_val', [
  { name: 'packets', type: 'u64' },
  { name: 'bytes', type: 'u64' },
  { name: 'last_len', type: 'u32' },
] as const);

export const tnEvent = defineStruct('tn_event', [
  { name: 'ifindex', type: 'u32' },
  { name: 'proto', type: 'u8' },
  { name: 'hook', type: 'u8' },
  { name: 'len', type: 'u16' },
  { name: 'saddr', type: 'ipv4' },
  { name: 'daddr', type: 'ipv4' },
  { name: 'seq', type: 'u64' },
] as const);
