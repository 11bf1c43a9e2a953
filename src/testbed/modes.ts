/**
 * Modes the test suite can switch for a whole run by environment (kept apart from the test-only
 * harnesses so that packaged testbed parts, the lab's agents, can read them).
 */
import type { HostRoutingMode } from '../dataplane/bpf/host-routing';

/** The host-routing mode the netns tests load tortie_wep with: TORTIE_TEST_HOST_ROUTING=auto
 *  runs them over the host-routed path (bpf/lib/host_route.h), default off (the kernel path). */
export function testHostRouting(): HostRoutingMode {
  const v = process.env.TORTIE_TEST_HOST_ROUTING ?? 'off';
  if (v !== 'auto' && v !== 'off') throw new Error(`TORTIE_TEST_HOST_ROUTING=${v}: need auto or off`);
  return v;
}
