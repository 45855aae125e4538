import { status } from '@grpc/grpc-js';
import { CreateDeviceRequest, DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, failure, startHarness, uniqueInt, type Harness } from './support/harness.js';

describe('write service smoke', () => {
  let h: Harness;
  let devices: DeviceServiceClient;
  beforeAll(async () => {
    h = await startHarness();
    devices = h.client(DeviceServiceClient);
  });
  afterAll(async () => {
    if (process.env.DUMP_LOGS) console.log(h.logs.filter((l) => l.includes('"level":50')).join(''));
    await h.stop();
  });

  it('creates a device with only physical_id and reads it back', async () => {
    const physicalId = uniqueInt();
    const created = await call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId } }), h.adminToken);
    expect(created.physicalId).toBe(physicalId);
    const got = await call(devices, devices.getDevice, { uuid: created.uuid }, h.adminToken);
    expect(got.goTimeLimitSeconds).toBe(100);
  });

  it('rejects a call without a key with UNAUTHENTICATED', async () => {
    const err = await failure(call(devices, devices.getDevice, { uuid: 'x' }, undefined));
    expect(err.code).toBe(status.UNAUTHENTICATED);
  });
});
