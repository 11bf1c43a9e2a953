/**
 * src/calc — the pure policy calculation of a tortie node.
 *
 * Public surface:
 *   - `CalcGraph` (graph.ts): onUpdate(resource) / onDelete(kind, key) / flush() → CalcDelta /
 *     snapshot() → CompiledState; incremental, output a function of current state only; a facade
 *     over the calc graph's nodes (graph.ts shows the wiring, each node's file its contract);
 *   - `RouteCalculator` (routes.ts): the routing inputs (pools, nodes, remote workload routes),
 *     a node of its own that CalcGraph runs in its flush;
 *   - the compiled form (types.ts): address classes, verdict tables, rule table, prefilter,
 *     routing inputs, and the per-packet lookup contract;
 *   - `evaluate(packet, state)` (reference.ts): Calico semantics straight from the resources;
 *   - `TableIndex` (lookup.ts): the datapath's lookup over a CompiledState, in TypeScript;
 *   - `ResourceState` (store.ts): the resource store both read.
 * No I/O anywhere in this package.
 */
export * from './types';
export { CalcGraph, type CalcGraphOptions } from './graph';
export { RouteCalculator, type RouteDelta } from './routes';
export { evaluate } from './reference';
export { compiledJson, hostStageTable, packProjection, portValues, projectionEntries, TableIndex, validateCompiled, type LookupResult } from './lookup';
export { ResourceState, resourceKey } from './store';
export { CalcError, UnknownEndpointError, BadPacketError } from './errors';
