/**
 * Device key pairs: every pair the write service makes can be read back, by ssh2 and by the
 * SSH wire format's rule that an ed25519 public key is 32 bytes. ssh2's generator alone gets about
 * 1 pair in 256 wrong (app/ssh-keys.ts), so 2,000 pairs would contain one with a probability of
 * 1 - (255/256)^2000, over 99.9 %. Pairs stored before that are named when the service starts.
 */
import pg from 'pg';
import ssh2 from 'ssh2';
import { describe, expect, inject, it, vi } from 'vitest';
import { CreateDeviceRequest, DeviceServiceClient, RotateDeviceSshRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { generateSshKeyPair } from '../src/app/ssh-keys.js';
import { call, startHarness, uniqueInt } from './support/harness.js';

/** The key bytes of an `ssh-ed25519 <base64> comment` line: the blob is string type, string key. */
function publicKeyBytes(line: string): Buffer {
  const blob = Buffer.from(line.split(' ')[1]!, 'base64');
  const typeLength = blob.readUInt32BE(0);
  return blob.subarray(4 + typeLength + 4, 4 + typeLength + 4 + blob.readUInt32BE(4 + typeLength));
}

/** `line` with its public key one byte short, as ssh2 1.17.0 wrote a key that began with a zero byte. */
function oneByteShort(line: string): string {
  const [type, , comment] = line.split(' ');
  const string = (bytes: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), bytes]);
  return `${type} ${Buffer.concat([string(Buffer.from(type!)), string(publicKeyBytes(line).subarray(1))]).toString('base64')} ${comment}`;
}

describe('generateSshKeyPair', () => {
  it('makes only pairs that parse, with 32-byte public keys and the comment asked for', () => {
    for (let i = 0; i < 2_000; i++) {
      const pair = generateSshKeyPair('titanbot7');
      expect(ssh2.utils.parseKey(pair.private)).not.toBeInstanceOf(Error);
      expect(ssh2.utils.parseKey(pair.public)).not.toBeInstanceOf(Error);
      expect(publicKeyBytes(pair.public)).toHaveLength(32);
      expect(pair.public.trim().endsWith(' titanbot7')).toBe(true);
    }
  });
});

describe('stored pairs no SSH client reads', () => {
  it('are named in a warning when the service starts, and rotating one gives it a readable pair', async () => {
    const first = await startHarness();
    const db = new pg.Client({ connectionString: inject('databaseUrl') });
    await db.connect();
    try {
      const devices = first.client(DeviceServiceClient);
      const device = await call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), first.adminToken);
      const stored = (await db.query('select public_key from sshes where device_uuid = $1', [device.uuid])).rows[0].public_key as string;
      const short = oneByteShort(stored);
      expect(ssh2.utils.parseKey(short)).toBeInstanceOf(Error);
      await db.query('update sshes set public_key = $2 where device_uuid = $1', [device.uuid, short]);

      const second = await startHarness();
      try {
        const warned = (): { count: number; devices: string[] } | undefined =>
          second.logs.map((l) => JSON.parse(l) as { msg: string; count: number; devices: string[] }).find((e) => e.msg.startsWith('devices whose SSH key pair no SSH client can read'));
        await vi.waitFor(() => expect(warned()?.devices ?? []).toContain(device.uuid), { timeout: 10_000 });
      } finally {
        await second.stop();
      }

      const rotated = await call(devices, devices.rotateDeviceSsh, RotateDeviceSshRequest.fromPartial({ deviceUuid: device.uuid }), first.adminToken);
      expect(ssh2.utils.parseKey(rotated.publicKey)).not.toBeInstanceOf(Error);
      expect(publicKeyBytes(rotated.publicKey)).toHaveLength(32);
    } finally {
      await db.end();
      await first.stop();
    }
  });
});
