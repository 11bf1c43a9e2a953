// Shared by test/native: object paths, a root check that fails loudly, a unique bpffs root that
// is removed at teardown, and a minimal IPv4 packet builder for BPF_PROG_TEST_RUN.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pinRoot, removePinRoot } from '../../../src/testbed/pins';
import { inetChecksum } from '../../../src/dataplane/bpf/packet';
import type { Test } from 'tap';
import { BpfError } from '../../../src/dataplane/native';
import { ipv4ToU32 } from '../../../src/primitives';

export const ROOT = path.resolve(__dirname, '../../../..');
export const OBJ = path.join(ROOT, 'bpf/out/tnative.bpf.o');
export const OBJ_REJECT = path.join(ROOT, 'bpf/out/tnative_reject.bpf.o');

/** These tests program the kernel: without root they fail with this message, never skip. */
export function requireRoot(t: Test): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('test/native needs root (BPF syscalls, bpffs, netns); run as root (CI is root)');
  for (const f of [OBJ, OBJ_REJECT]) {
    if (!fs.existsSync(f)) problems.push(`${f} missing: run \`node scripts/build.js bpf\``);
  }
  if (problems.length === 0) return;
  for (const p of problems) t.fail(p);
  // Stop this file here: every test below would only repeat the failure as EPERM/ENOENT noise.
  t.end();
  process.exit(1);
}

/** A fresh directory on bpffs, removed (with every pin in it) at teardown. */
export function tempPinRoot(t: Test, label: string): string {
  const dir = pinRoot(`test-${label}`);
  t.teardown(() => removePinRoot(dir));
  return dir;
}

/** The Internet checksum (the one implementation, src/dataplane/bpf/packet.ts). */
export const ipChecksum = inetChecksum;

export interface PacketSpec { proto: number; src?: string; dst?: string; payload?: number; tos?: number }

/** Ethernet + IPv4 (valid header checksum) + `payload` zero bytes of L4. */
export function ipv4Packet(p: PacketSpec): Buffer {
  const payload = p.payload ?? 32;
  const b = Buffer.alloc(14 + 20 + payload);
  Buffer.from('020000000002', 'hex').copy(b, 0);
  Buffer.from('020000000001', 'hex').copy(b, 6);
  b.writeUInt16BE(0x0800, 12);
  const ip = b.subarray(14, 34);
  ip[0] = 0x45;
  ip[1] = p.tos ?? 0;
  ip.writeUInt16BE(20 + payload, 2);
  ip[8] = 64;
  ip[9] = p.proto;
  ip.writeUInt32BE(ipv4ToU32(p.src ?? '198.18.0.1'), 12);
  ip.writeUInt32BE(ipv4ToU32(p.dst ?? '198.18.0.2'), 16);
  ip.writeUInt16BE(ipChecksum(ip), 10);
  return b;
}

/** A non-IP frame (ARP ethertype). */
export function arpFrame(): Buffer {
  const b = Buffer.alloc(42);
  b.writeUInt16BE(0x0806, 12);
  return b;
}

export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17 } as const;

export function randomSuffix(): string {
  return randomBytes(3).toString('hex');
}

export interface WantError { code?: string; errnoName?: string; message?: RegExp }

function checkError(t: Test, e: unknown, want: WantError, msg: string): BpfError {
  t.ok(e instanceof BpfError, `${msg}: is a BpfError`);
  const be = e as BpfError;
  if (want.code !== undefined) t.equal(be.code, want.code, `${msg}: code`);
  if (want.errnoName !== undefined) t.equal(be.errnoName, want.errnoName, `${msg}: errno`);
  if (want.message !== undefined) t.match(be.message, want.message, `${msg}: message`);
  return be;
}

/** Asserts fn throws a BpfError matching `want`; returns it for further checks. */
export function expectBpfError(t: Test, fn: () => unknown, want: WantError, msg = 'throws BpfError'): BpfError | undefined {
  try {
    fn();
  } catch (e) {
    return checkError(t, e, want, msg);
  }
  t.fail(`${msg}: did not throw`);
  return undefined;
}

/** Same for a promise. */
export async function expectBpfReject(t: Test, p: Promise<unknown>, want: WantError, msg = 'rejects with BpfError'): Promise<BpfError | undefined> {
  try {
    await p;
  } catch (e) {
    return checkError(t, e, want, msg);
  }
  t.fail(`${msg}: did not reject`);
  return undefined;
}
