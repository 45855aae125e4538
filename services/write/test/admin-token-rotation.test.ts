import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { AdminTokenServiceClient, RotateAdminTokenRequest, type RotateAdminTokenResponse } from '@titanbot/contracts/titanbot/admin/v1/admin_token_service';
import { DeviceServiceClient, ListDevicesRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { FileSecretStore } from '@titanbot/service-kit/secrets/file-secret-store';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadWriteConfig } from '../src/config.js';
import { RotatingCredential } from '../src/secrets/rotating-credential.js';
import { call, errorDetails, failure, startHarness, type Harness } from './support/harness.js';
import { startVaultKv2Server, type VaultKv2Server } from './support/vault-kv2-server.js';

/** Where VaultSecretStore keeps the admin token with the default mount and prefix. */
const ADMIN_KEY = 'secret/titanbot/admin-token';

const rotate = (h: Harness, key: string): Promise<RotateAdminTokenResponse> => {
  const client = h.client(AdminTokenServiceClient);
  return call(client, client.rotateAdminToken, RotateAdminTokenRequest.fromPartial({}), key);
};

/** An admin call that only reads: resolves when `key` is accepted as the admin token. */
const adminCall = async (h: Harness, key: string): Promise<void> => {
  const client = h.client(DeviceServiceClient);
  await call(client, client.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1 }), key);
};

/** True when `key` is accepted for an admin call, false when it is UNAUTHENTICATED; other failures throw. */
const accepted = (h: Harness, key: string): Promise<boolean> =>
  adminCall(h, key).then(
    () => true,
    (err: ServiceError) => {
      if (err.code === status.UNAUTHENTICATED) return false;
      throw err;
    },
  );

/** Settles both calls and splits them: the one success and the one failure, in any order. */
async function race(calls: Promise<RotateAdminTokenResponse>[]): Promise<{ won: RotateAdminTokenResponse[]; lost: ServiceError[] }> {
  const results = await Promise.allSettled(calls);
  return {
    won: results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
    lost: results.flatMap((r) => (r.status === 'rejected' ? [r.reason as ServiceError] : [])),
  };
}

const newToken = (): string => randomBytes(24).toString('base64url');

describe('admin token rotation across two write replicas sharing one Vault KV v2', () => {
  let vault: VaultKv2Server;
  let vaultToken: string;
  let bootstrap: string;
  let replicas: Harness[];

  beforeEach(async () => {
    vaultToken = `hvs.${randomBytes(12).toString('hex')}`;
    vault = await startVaultKv2Server({ token: vaultToken });
    bootstrap = newToken();
    replicas = [];
  });
  afterEach(async () => {
    await Promise.all(replicas.map((h) => h.stop()));
    await vault.close();
  });

  /** Two write services on the test database, one Vault, the same bootstrap admin token. */
  async function startPair(env: Record<string, string>): Promise<[Harness, Harness]> {
    const shared = { VAULT_ADDR: vault.url, VAULT_TOKEN: vaultToken, ADMIN_TOKEN: bootstrap, READER_TOKEN: newToken(), ...env };
    replicas = await Promise.all([startHarness(shared), startHarness(shared)]);
    return [replicas[0]!, replicas[1]!];
  }

  it('lets one of two concurrent RotateAdminToken calls win, answers the other ABORTED, and writes one version both replicas accept', async () => {
    const [a, b] = await startPair({ ADMIN_TOKEN_ROTATE_EVERY: '0' });

    const { won, lost } = await race([rotate(a, bootstrap), rotate(b, bootstrap)]);

    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.code).toBe(status.ABORTED);
    expect(errorDetails(lost[0]!).reason).toBe('ROTATION_RACE');
    const versions = vault.versions(ADMIN_KEY);
    expect(versions).toHaveLength(2);
    expect(won[0]?.version).toBe(2);
    expect(versions[1]?.data.current).toBe(won[0]?.token);
    for (const h of [a, b]) {
      await expect(adminCall(h, won[0]!.token)).resolves.toBeUndefined();
      // The default 5 min grace still covers the bootstrap token.
      await expect(adminCall(h, bootstrap)).resolves.toBeUndefined();
    }

    // A rotation replica b has not seen yet: b learns the new value on the first miss (refresh-on-unknown-key).
    const next = await rotate(a, won[0]!.token);
    expect(next.version).toBe(3);
    await expect(adminCall(b, next.token)).resolves.toBeUndefined();
    expect(vault.versions(ADMIN_KEY)).toHaveLength(3);
  });

  it('rotates once per period between two replicas running the periodic job, and honours the old token for exactly the grace', async () => {
    const everyMs = 1_000;
    const graceMs = 1_000;
    const [a, b] = await startPair({ ADMIN_TOKEN_ROTATE_EVERY: '1s', ADMIN_TOKEN_GRACE: '1s' });

    // Probe the bootstrap token on both replicas until each rejects it; the window covers >= 3 periods.
    const probes = new Map<Harness, { sentAt: number; answeredAt: number; ok: boolean }[]>([
      [a, []],
      [b, []],
    ]);
    const probe = async (h: Harness): Promise<void> => {
      for (;;) {
        const sentAt = Date.now();
        const ok = await accepted(h, bootstrap);
        probes.get(h)!.push({ sentAt, answeredAt: Date.now(), ok });
        if (!ok) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const observeUntil = Date.parse(vault.versions(ADMIN_KEY)[0]!.created_time) + 3_500;
    await Promise.all([probe(a), probe(b), new Promise((resolve) => setTimeout(resolve, observeUntil - Date.now()))]);
    const end = Date.now();

    const versions = vault.versions(ADMIN_KEY);
    const rotateTimes = versions.map((v) => Date.parse(v.data.rotateTime!));
    const writtenAt = versions.map((v) => Date.parse(v.created_time));
    const periods = Math.floor((end - rotateTimes[0]!) / everyMs);
    const rotations = versions.length - 1;
    const gaps = rotateTimes.slice(1).map((t, i) => t - rotateTimes[i]!);
    const rotatedLines = [a, b].map((h) => h.logs.filter((l) => l.includes('"msg":"credential rotated"')).length);
    const casLosses = [a, b].map((h) => h.logs.filter((l) => l.includes('another replica rotated first')).length);
    // Never twice per period: each version is at least one period after the one it replaced.
    expect(rotations).toBeGreaterThanOrEqual(periods - 1);
    expect(rotations).toBeLessThanOrEqual(periods);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(everyMs);
    expect(rotatedLines[0]! + rotatedLines[1]!).toBe(rotations);
    for (const h of [a, b]) expect(h.logs.join('')).not.toContain(bootstrap);

    // The bootstrap token was replaced by version 2; each replica must accept it until version 2 + grace.
    const overlaps = [a, b].map((h) => {
      const seen = probes.get(h)!;
      const firstRejection = seen.find((p) => !p.ok)!;
      const lastAcceptance = seen.filter((p) => p.ok).at(-1)!;
      // The decision falls between a probe's send and its answer, so these bound it from the safe side.
      expect(lastAcceptance.sentAt - writtenAt[1]!).toBeGreaterThanOrEqual(graceMs - 150);
      expect(firstRejection.answeredAt - rotateTimes[1]!).toBeGreaterThanOrEqual(graceMs);
      expect(firstRejection.sentAt - writtenAt[1]!).toBeLessThanOrEqual(graceMs + 300);
      return { lastAcceptedMs: lastAcceptance.answeredAt - writtenAt[1]!, firstRejectedMs: firstRejection.answeredAt - writtenAt[1]! };
    });
    console.info(
      JSON.stringify({ observedMs: end - rotateTimes[0]!, periods, rotations, gaps, rotatedLinesPerReplica: rotatedLines, casLossesPerReplica: casLosses, overlapsAfterNewVersion: overlaps }),
    );
  });

  it('serves the last good admin token while Vault is down, answers RotateAdminToken UNAVAILABLE, and recovers', async () => {
    const [a, b] = await startPair({});

    await vault.stop();
    for (const h of [a, b]) {
      await expect(adminCall(h, bootstrap)).resolves.toBeUndefined();
      const err = await failure(rotate(h, bootstrap));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.reason).toBe('SECRET_STORE_UNAVAILABLE');
    }
    expect((await failure(adminCall(a, newToken()))).code).toBe(status.UNAUTHENTICATED);

    await vault.restart();
    const rotated = await rotate(a, bootstrap);
    expect(rotated.version).toBe(2);
    expect(vault.versions(ADMIN_KEY)).toHaveLength(2);
    await expect(adminCall(a, rotated.token)).resolves.toBeUndefined();
    // b learns the new value on its next refresh from the store (a miss refreshes at most once a second).
    await vi.waitFor(() => adminCall(b, rotated.token), { timeout: 3_000, interval: 200 });
    await expect(adminCall(b, bootstrap)).resolves.toBeUndefined();
  });
});

describe('admin token rotation across two write replicas sharing one file secret store', () => {
  let dataDir: string;
  let replicas: Harness[] = [];

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-shared-'));
  });
  afterEach(async () => {
    await Promise.all(replicas.map((h) => h.stop()));
    await rm(dataDir, { recursive: true, force: true });
  });

  it('lets one of two concurrent RotateAdminToken calls win, answers the other ABORTED, and writes one version both replicas accept', async () => {
    const bootstrap = newToken();
    const env = { DATA_DIR: dataDir, ADMIN_TOKEN: bootstrap, READER_TOKEN: newToken(), ADMIN_TOKEN_ROTATE_EVERY: '0' };
    replicas = await Promise.all([startHarness(env), startHarness(env)]);
    const [a, b] = replicas as [Harness, Harness];

    const { won, lost } = await race([rotate(a, bootstrap), rotate(b, bootstrap)]);

    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.code).toBe(status.ABORTED);
    const stored = JSON.parse(await readFile(path.join(dataDir, 'secrets', 'admin-token.json'), 'utf8')) as {
      version: number;
      data: Record<string, string>;
    };
    expect(stored.version).toBe(2);
    expect(stored.data.current).toBe(won[0]?.token);
    for (const h of [a, b]) await expect(adminCall(h, won[0]!.token)).resolves.toBeUndefined();
  });
});

describe('scheduled rotation settings and upgrades', () => {
  it('parses ADMIN_TOKEN_ROTATE_EVERY with a 24 h default and 0 meaning off', () => {
    expect(loadWriteConfig({}).ADMIN_TOKEN_ROTATE_EVERY).toBe(86_400_000);
    expect(loadWriteConfig({ ADMIN_TOKEN_ROTATE_EVERY: '0' }).ADMIN_TOKEN_ROTATE_EVERY).toBe(0);
    expect(loadWriteConfig({ ADMIN_TOKEN_ROTATE_EVERY: '90m' }).ADMIN_TOKEN_ROTATE_EVERY).toBe(5_400_000);
  });

  it('counts a version without rotateTime as written when first loaded, then rotates one period later and records the time', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-upgrade-'));
    try {
      const store = new FileSecretStore(dir);
      await store.write('admin-token', { current: 'written-by-an-older-version' }, 0);
      let now = Date.parse('2030-01-01T00:00:00Z');
      const admin = new RotatingCredential({
        store,
        name: 'admin-token',
        generate: newToken,
        graceMs: 1_000,
        refreshIntervalMs: 60_000,
        logger: pino({ level: 'silent' }),
        now: () => now,
      });
      await admin.init();
      expect(admin.rotatedAt.toISOString()).toBe('2030-01-01T00:00:00.000Z');

      admin.startRotation(1_000);
      try {
        now += 999;
        // Several checks (every 100 ms) at 999 ms of age, and a refresh that must keep the first-load time.
        await admin.verify('unknown');
        await new Promise((resolve) => setTimeout(resolve, 350));
        expect(admin.version).toBe(1);
        expect(admin.rotatedAt.toISOString()).toBe('2030-01-01T00:00:00.000Z');

        now += 1;
        await vi.waitFor(() => expect(admin.version).toBe(2), { timeout: 1_000, interval: 20 });
      } finally {
        await admin.stopRotation();
      }
      expect((await store.read('admin-token'))?.data.rotateTime).toBe('2030-01-01T00:00:01.000Z');
      expect(admin.rotatedAt.toISOString()).toBe('2030-01-01T00:00:01.000Z');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
