/**
 * src/dataplane/native: the project's only door to the native addon (libbpf over N-API).
 *
 * Contract: everything here is a thin typed layer over kernel objects. BpfObject opens/loads
 * .bpf.o files (load runs off the event loop); BpfMap/BpfProgram own fds; RingBuffer streams
 * ring-buffer records; the tc and xdp functions program interfaces inside a given network namespace; every
 * failure is a BpfError (stable code, errno, op, libbpf log). defineStruct/checkStructLayout
 * describe fixed-layout C structs and check them against the BTF of compiled objects.
 * No policy, no datastore, no logging: callers decide what failures mean.
 */
export { BpfError, isBpfError, errnoName, verifierSummary } from './errors';
export { native, addonPath } from './addon';
export { BpfMap, MapType, MapFlag, UpdateFlag, mapTypeName, possibleCpus } from './map';
export type { MapInfo, CreateMapOptions, MapEntries, PackedEntries, MapTypeName } from './map';
export { BpfProgram, ProgType, XdpAction, TcAction } from './program';
export type { ProgInfo, TestRunOptions, TestRunResult, BatchRunOptions, BatchRunResult } from './program';
export { BpfObject, parseLoadStats } from './object';
export type { OpenOptions, ConstantValue, ConstantInfo, ObjectProgram, ObjectMap, LoadResult, ProgramLoadStats } from './object';
export { ifindex, tcAttach, tcDetach, tcQuery, tcDestroyHook, xdpAttach, xdpDetach, xdpQuery } from './netif';
export type { TcDirection, XdpMode, IfaceRef, TcFilterRef, TcAttachOptions, TcFilter, XdpAttachOptions, XdpStatus } from './netif';
export { RingBuffer } from './ringbuf';
export type { RingBufferOptions } from './ringbuf';
export { StructCodec, defineStruct } from './codec';
export type { FieldDef, FieldType, ScalarType, FieldValue, StructValue, ResolvedField } from './codec';
export { btfStruct, compareLayout, checkStructLayout } from './btf';
export type { LayoutLike, BtfMember, BtfStruct } from './btf';
