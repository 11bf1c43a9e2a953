import t from 'tap';
import { IpamClient } from '../../src/ipam';
import type { Resource } from '../../src/model';
import { openTestStore } from '../../src/testbed/store';
import { pool } from '../../src/testbed/fixtures';

// IPReservation: IPAM never hands out a reserved address, automatically or on request; the
// rest of the pool is still used to the last address.

const reservation = (name: string, reservedCIDRs: string[]): Resource =>
  ({ apiVersion: 'projectcalico.org/v3', kind: 'IPReservation', metadata: { name }, spec: { reservedCIDRs } } as Resource);

t.test('automatic assignment skips reserved addresses and still exhausts the rest of the pool', async (t) => {
  const s = openTestStore('ipam-reserve');
  t.teardown(() => s.close());
  await s.rc.create(pool('p1', '192.168.0.0/27', { blockSize: 29 }));
  // Reserved: the first /30 (.0–.3), .9, and a whole block (.16/29), plus an IPv6 entry (the docs sample has one).
  await s.rc.create(reservation('r1', ['192.168.0.0/30', '192.168.0.9', '192.168.0.16/29', 'cafe:f00d::/123']));
  const reserved = new Set(['0', '1', '2', '3', '9', '16', '17', '18', '19', '20', '21', '22', '23'].map((x) => `192.168.0.${x}`));
  const ipam = new IpamClient(s.ds);
  const got = new Set<string>();
  for (let i = 0; i < 32 - reserved.size; i++) {
    const r = await ipam.assign({ handleId: `net.c${i}`, node: i % 2 ? 'node-a' : 'node-b' });
    got.add(r.ips[0]!.ip);
  }
  t.equal(got.size, 32 - reserved.size, 'every unreserved address handed out once');
  t.same([...got].filter((ip) => reserved.has(ip)), [], 'no reserved address among them');
  await t.rejects(ipam.assign({ handleId: 'net.extra', node: 'node-a' }), { code: 'ERR_IPAM_EXHAUSTED' }, 'then the pool is exhausted');

  // Lifting the reservation makes its addresses usable again.
  await s.rc.delete('IPReservation', 'r1');
  const r = await ipam.assign({ handleId: 'net.after', node: 'node-a' });
  t.ok(reserved.has(r.ips[0]!.ip), `a formerly reserved address is assigned once the reservation is gone (${r.ips[0]!.ip})`);
});

t.test('a reserved address asked for by address is refused', async (t) => {
  const s = openTestStore('ipam-reserve-ip');
  t.teardown(() => s.close());
  await s.rc.create(pool('p1', '192.168.1.0/24'));
  await s.rc.create(reservation('r', ['192.168.1.10/31']));
  const ipam = new IpamClient(s.ds);
  await t.rejects(ipam.assignIp({ ip: '192.168.1.11', handleId: 'net.x', node: 'node-a' }),
    { code: 'ERR_IPAM_RESERVED', message: 'requested address 192.168.1.11 is reserved (IPReservation range 192.168.1.10/31)' });
  const ok = await ipam.assignIp({ ip: '192.168.1.12', handleId: 'net.y', node: 'node-a' });
  t.equal(ok.ip, '192.168.1.12');
});
