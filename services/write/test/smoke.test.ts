import { createRequire } from 'node:module';
import { credentials, loadPackageDefinition, status, type ClientDuplexStream, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { CreateDeviceRequest, DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { call, failure, startHarness, uniqueInt, type Harness } from './support/harness.js';

const require = createRequire(import.meta.url);

/** A grpc-js client for a service described by a .proto file shipped in node_modules. */
function protoClient(protoFile: string, service: string, address: string): InstanceType<ServiceClientConstructor> {
  const pkg = loadPackageDefinition(loadSync(require.resolve(protoFile), { keepCase: true, enums: String })) as GrpcObject;
  const Ctor = service.split('.').reduce<unknown>((o, k) => (o as GrpcObject)[k], pkg) as ServiceClientConstructor;
  return new Ctor(address, credentials.createInsecure());
}

describe('write service operations', () => {
  let h: Harness;
  let devices: DeviceServiceClient;
  beforeAll(async () => {
    h = await startHarness();
    devices = h.client(DeviceServiceClient);
  });
  afterAll(() => h.stop());

  it('serves a device created with only physical_id', async () => {
    const physicalId = uniqueInt();
    const created = await call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId } }), h.adminToken);
    const got = await call(devices, devices.getDevice, { uuid: created.uuid }, h.adminToken);
    expect(got).toMatchObject({ physicalId, goTimeLimitSeconds: 100 });
  });

  it('rejects a call without a key with UNAUTHENTICATED', async () => {
    const err = await failure(call(devices, devices.getDevice, { uuid: 'x' }, undefined));
    expect(err.code).toBe(status.UNAUTHENTICATED);
  });

  it('answers grpc.health.v1 Check with SERVING once migrations ran', async () => {
    const health = protoClient('grpc-health-check/proto/health/v1/health.proto', 'grpc.health.v1.Health', h.address);
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      health.Check!({ service: '' }, (err: Error | null, r: { status: string }) => (err ? reject(err) : resolve(r))),
    );
    expect(res.status).toBe('SERVING');
    health.close();
  });

  it('says where its database is, by host and name, never with its credentials', () => {
    const line = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'write service listening');
    const url = new URL(inject('databaseUrl'));
    expect(line?.database).toBe(`${url.host}${url.pathname}`);
  });

  it('lists every admin and feed service through server reflection', async () => {
    const reflection = protoClient(
      '@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto',
      'grpc.reflection.v1.ServerReflection',
      h.address,
    );
    const stream = reflection.ServerReflectionInfo!() as ClientDuplexStream<object, { list_services_response: { service: { name: string }[] } }>;
    const names = await new Promise<string[]>((resolve, reject) => {
      stream.on('data', (msg) => resolve(msg.list_services_response.service.map((s: { name: string }) => s.name)));
      stream.on('error', reject);
      stream.write({ list_services: '' });
    });
    stream.end();
    reflection.close();
    expect(names).toEqual(
      expect.arrayContaining([
        'titanbot.admin.v1.DeviceService',
        'titanbot.admin.v1.AccountService',
        'titanbot.admin.v1.LegionService',
        'titanbot.admin.v1.HabitService',
        'titanbot.admin.v1.EmpireDateService',
        'titanbot.admin.v1.DaemonTokenService',
        'titanbot.admin.v1.LogService',
        'titanbot.admin.v1.AdminTokenService',
        'titanbot.feed.v1.ChangeFeedService',
      ]),
    );
  });
});
