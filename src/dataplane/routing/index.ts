/**
 * src/dataplane/routing: Calico networking on this host, one module per concern behind the
 * RouteManager (manager.ts shows the wiring and the apply order).
 */
export { RouteManager, DEFAULT_ROUTE_PROTOCOL, type RouteManagerOptions, type RouteStatus } from './manager';
export { RouteError } from './errors';
export { DEFAULT_MTU_PATTERN, smallestMatchingMtu, type MtuOptions, type MtuInForce } from './mtu';
export {
  planRoutes, planRoutes6, canonicalCidr6, planNetworking, poolOf, underlayTargets, IPIP_OVERHEAD,
  type PlannedRoute, type RoutePlan, type KernelRoute, type NetworkingInput, type DesiredNetworking,
} from './plan';
