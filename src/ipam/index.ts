/**
 * src/ipam — Calico's block IPAM over the tortie datastore.
 *
 * Contract
 * - `new IpamClient(ds).assign({handleId, node, attrs, family})` hands out an address of `family`
 *   (4, the default, or 6; Calico's Num4 / Num6: a dual-stack workload asks once per family under
 *   one handle) from a pool of that family
 *   the node may use (enabled, nodeSelector matching the Node's labels), claiming a block
 *   (pool blockSize, default /26 or /122) by compare-and-swap when the node's blocks are full and
 *   borrowing from other nodes' blocks when no unclaimed block is left. Every address of a
 *   pool is usable. Repeating an assign for the same handle returns the same addresses.
 * - `releaseByHandle(handleId)` frees them; releasing an unknown handle is a no-op.
 * - Concurrent use from any number of processes and nodes never hands one address to two
 *   handles and never loses an address (test/ipam/03-concurrency).
 * - `ipamShow(ds)` / `renderIpamShow(data)` / `renderBorrowed(data)` back `tortiectl ipam show`.
 * - For routing: every block is a key under `blockPrefix(family)` (`/calico/ipam/v2/assignment/ipv4/block/`,
 *   `…/ipv6/block/`) whose
 *   value (`checkBlock`) names its node in `affinity` (`host:<node>`); an allocation's
 *   attributes name the node using it (`secondary.node`), which differs for borrowed addresses.
 * - `ipamCheck(ds)` / `renderIpamCheck`: leaks and inconsistencies against endpoints and nodes.
 * - Errors are `IpamError` with codes ERR_IPAM_*; `recoverable` ones may succeed on retry.
 * - Keys and values are Calico's own (records.ts, block.ts): Calico and tortie share one IPAM.
 */
export { IpamClient, blockKey, blockPrefix, affinityKey, affinityPrefix, handleKey, poolFromResource, checkHandle } from './client';
export { parseNet, tryParseNet, formatNet, netContains, tryParseAddr, formatAddr, type IpNet, type IpNum } from './net';
export type { AssignArgs, AssignResult, AssignedIp, PoolInfo, IpamClientOptions } from './client';
export { IpamError, type IpamErrorCode } from './errors';
export { ipamShow, renderIpamShow, renderBorrowed, renderTable, type IpamShow, type PoolUsage, type BlockUsage, type NodeUsage, type BorrowedIp } from './show';
export { checkBlock, handleOf, secondaryOf, type BlockRecord, type AllocationAttribute } from './block';
export {
  IPAM_CONFIG_KEY, DEFAULT_IPAM_CONFIG, decodeHandle, encodeHandle, decodeIpamConfig, encodeIpamConfig, handlePrefix, type HandleRecord, type IpamConfig,
} from './records';
export { ipamCheck, renderIpamCheck, type IpamCheckReport, type IpamAllocation } from './check';
