/**
 * TLS on every connection: both services serve TLS from PEM files (scripts/dev-ca.sh makes them),
 * a replica proves itself to the write service with a client certificate (mutual TLS), a daemon
 * verifies its replica (and the server of a payload URL) against the CA, plaintext is refused off
 * loopback, and a certificate renewed on disk is served without a restart.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { credentials, status, type Client } from '@grpc/grpc-js';
import { DeviceServiceClient, ListDevicesRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { DaemonSync } from '@titanbot/daemon-client';
import { adminApi, provisionDevice } from '@titanbot/read/test-support/admin';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { StartupError } from '@titanbot/service-kit/process';
import { freePort } from '@titanbot/service-kit/free-port';
import { channelCredentials } from '@titanbot/service-kit/tls';
import { call, failure, startHarness } from '@titanbot/write/test-support/harness';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const devCa = (dir: string): Promise<unknown> => promisify(execFile)(path.join(ROOT, 'scripts/dev-ca.sh'), [dir]);

let dir: string;
let sys: System;
let replica: Replica;
const clients: Client[] = [];
/** A client of `Ctor` at `address` over TLS trusting the CA in `caDir`. */
function tlsClient<C extends Client>(Ctor: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => C, address: string, caDir = dir): C {
  const c = new Ctor(address, channelCredentials({ caFile: path.join(caDir, 'ca.pem') }));
  clients.push(c);
  return c;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-tls-'));
  await devCa(dir);
  const pem = (name: string): string => path.join(dir, name);
  sys = await startSystem({ TLS_CERT_FILE: pem('server.pem'), TLS_KEY_FILE: pem('server-key.pem'), TLS_CLIENT_CA_FILE: pem('ca.pem'), TLS_REFRESH_INTERVAL: '100ms' });
  replica = await sys.startReplica({
    TLS_CERT_FILE: pem('server.pem'),
    TLS_KEY_FILE: pem('server-key.pem'),
    WRITE_SERVICE_TLS_CA_FILE: pem('ca.pem'),
    WRITE_SERVICE_TLS_CERT_FILE: pem('client.pem'),
    WRITE_SERVICE_TLS_KEY_FILE: pem('client-key.pem'),
  });
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.close();
  await sys?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('TLS', () => {
  it('serves admins, replicas (mutual TLS) and daemons over TLS, end to end', async () => {
    const admin = adminApi({ client: (Ctor) => tlsClient(Ctor, sys.write.address), adminToken: sys.write.adminToken });
    const fleet = await provisionDevice(admin);
    // The replica follows the feed over mutual TLS.
    await replica.synced();
    const home = await mkdtemp(path.join(os.tmpdir(), 'titanbot-tls-daemon-'));
    try {
      await writeFile(path.join(home, 'token'), `${fleet.token}\n`, { mode: 0o600 });
      const sync = new DaemonSync({ server: replica.service.address, tls: { caFile: path.join(dir, 'ca.pem') }, tokenFile: path.join(home, 'token'), dbPath: path.join(home, 'db.sqlite'), logicalId: fleet.logicalId });
      try {
        expect(await sync.syncOnce()).toMatchObject({ changed: true });
      } finally {
        sync.close();
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('fetches a payload URL behind a certificate of the daemon\'s private CA, not falling back to DownloadExport', async () => {
    // The replica's own export origin serves HTTPS with the dev CA's certificate (TLS_* apply to it),
    // as a CDN or proxy with a certificate from the same private CA as the replica's would.
    const origin = `localhost:${await freePort()}`;
    const cdnReplica = await sys.startReplica({
      TLS_CERT_FILE: path.join(dir, 'server.pem'),
      TLS_KEY_FILE: path.join(dir, 'server-key.pem'),
      WRITE_SERVICE_TLS_CA_FILE: path.join(dir, 'ca.pem'),
      WRITE_SERVICE_TLS_CERT_FILE: path.join(dir, 'client.pem'),
      WRITE_SERVICE_TLS_KEY_FILE: path.join(dir, 'client-key.pem'),
      EXPORT_HTTP_ADDR: origin,
      EXPORT_PUBLIC_BASE_URL: `https://${origin}`,
    });
    const home = await mkdtemp(path.join(os.tmpdir(), 'titanbot-tls-cdn-'));
    try {
      const admin = adminApi({ client: (Ctor) => tlsClient(Ctor, sys.write.address), adminToken: sys.write.adminToken });
      const fleet = await provisionDevice(admin);
      await cdnReplica.synced();
      await writeFile(path.join(home, 'token'), `${fleet.token}\n`, { mode: 0o600 });
      const events: string[] = [];
      const sync = new DaemonSync({
        server: cdnReplica.service.address,
        tls: { caFile: path.join(dir, 'ca.pem') },
        tokenFile: path.join(home, 'token'),
        dbPath: path.join(home, 'db.sqlite'),
        logicalId: fleet.logicalId,
        logger: (event) => events.push(event),
      });
      try {
        expect(await sync.syncOnce()).toMatchObject({ changed: true });
      } finally {
        sync.close();
      }
      expect(events).not.toContain('public-url-failed');
      const served = cdnReplica.logs.map((line) => JSON.parse(line) as { msg: string; method?: string; path?: string; status?: number }).filter((e) => e.msg === 'export served');
      expect(served).toEqual([expect.objectContaining({ method: 'GET', status: 200, path: expect.stringMatching(/^\/exports\/[0-9a-f]{64}$/) })]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('refuses plaintext clients, and the reader credential without a replica\'s client certificate', async () => {
    const plain = new DeviceServiceClient(sys.write.address, credentials.createInsecure());
    clients.push(plain);
    expect((await failure(call(plain, plain.listDevices, ListDevicesRequest.fromPartial({}), sys.write.adminToken))).code).toBe(status.UNAVAILABLE);
    const feed = tlsClient(ChangeFeedServiceClient, sys.write.address);
    const err = await failure(call(feed, feed.ingestLogs, { deviceUuid: '00000000-0000-4000-8000-000000000000', lines: [], requestId: '' }, sys.write.readerToken));
    expect(err).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'UNAUTHENTICATED' });
    expect(err.details).toMatch(/client certificate/);
  });

  it('refuses to listen in plaintext off loopback unless ALLOW_PLAINTEXT is set', async () => {
    await expect(startHarness({ WRITE_GRPC_ADDR: '0.0.0.0:0' })).rejects.toBeInstanceOf(StartupError);
    const allowed = await startHarness({ WRITE_GRPC_ADDR: '0.0.0.0:0', ALLOW_PLAINTEXT: 'true' });
    try {
      expect(allowed.logs.some((l) => l.includes('ALLOW_PLAINTEXT'))).toBe(true);
    } finally {
      await allowed.stop();
    }
  });

  it('serves a certificate renewed on disk without a restart', async () => {
    const renewed = await mkdtemp(path.join(os.tmpdir(), 'titanbot-tls-renewed-'));
    try {
      await devCa(renewed);
      const trustsNewCa = tlsClient(DeviceServiceClient, sys.write.address, renewed);
      const list = () => call(trustsNewCa, trustsNewCa.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1 }), sys.write.adminToken);
      expect((await failure(list())).code).toBe(status.UNAVAILABLE);
      // Replace the files as cert-manager does: write beside, then rename over.
      for (const name of ['server.pem', 'server-key.pem']) {
        await copyFile(path.join(renewed, name), path.join(dir, `${name}.new`));
        await rename(path.join(dir, `${name}.new`), path.join(dir, name));
      }
      await vi.waitFor(() => list(), { timeout: 10_000, interval: 200 });
    } finally {
      await rm(renewed, { recursive: true, force: true });
    }
  });
});
