import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { AccountServiceClient, CreateAccountRequest, Gender } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { DataKeyServiceClient, RotateDataKeyRequest } from '@titanbot/contracts/titanbot/admin/v1/data_key_service';
import { GetTokenRequest, ListAccountsRequest, GetSshRequest, RotateTokenRequest } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, uniqueInt } from '@titanbot/write/test-support/harness';
import { adminApi, provisionDevice, uniquePixel } from '@titanbot/read/test-support/admin';
import { download } from '@titanbot/read/test-support/daemon';
import { moreAdminApi } from '@titanbot/read/test-support/more';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { TestClock } from '@titanbot/write/test-support/test-clock';

let sys: System;
let replicas: Replica[];
/** Each replica's clock: a grace ends when the test moves them, not by sleeping. */
const clocks = [new TestClock(), new TestClock()];
let api: ReturnType<typeof adminApi>;
let more: ReturnType<typeof moreAdminApi>;

beforeAll(async () => {
  // A short daemon-token rotation grace, so superseded tokens can be seen expiring.
  sys = await startSystem({ TOKEN_ROTATION_GRACE: '1s' });
  api = adminApi(sys.write);
  more = moreAdminApi(sys.write);
  // The timing tests poll every few ms: lift the per-token rate limit (tested in abuse-limits.test.ts).
  const unlimited = { DAEMON_RPS: '100000', DAEMON_BURST: '100000' };
  replicas = [await sys.startReplica(unlimited, undefined, clocks[0]), await sys.startReplica(unlimited, undefined, clocks[1])];
  for (const r of replicas) await r.service.consumer.caughtUp;
});
afterAll(async () => {
  await sys?.stop();
});

/** Every byte a replica keeps on disk: the read model (with its WAL) and the export cache. */
async function replicaBytes(r: Replica): Promise<Buffer> {
  const files: Buffer[] = [];
  for (const dir of [path.join(r.dataDir, 'read', 'model'), path.join(r.dataDir, 'read', 'exports')]) {
    for (const name of await readdir(dir)) files.push(await readFile(path.join(dir, name)));
  }
  return Buffer.concat(files);
}

describe('secrets at rest', () => {
  it('keeps Google passwords and SSH private keys sealed in PostgreSQL, on the feed, in replicas and out of logs; only the owner and admins see them', async () => {
    const password = `pw-${randomUUID()}`;
    // Created with a request_id: the stored first response (replayed on retry) carries the password.
    const accounts = sys.write.client(AccountServiceClient);
    const requestId = randomUUID();
    const createAccount = () =>
      call(
        accounts,
        accounts.createAccount,
        CreateAccountRequest.fromPartial({
          account: { logicalId: uniqueInt(), firstName: 'S', lastName: 'C', birthDate: new Date('1991-02-03T00:00:00Z'), gender: Gender.GENDER_MALE, googleLogin: 'sc@example.com', googlePassword: password },
          requestId,
        }),
        sys.write.adminToken,
      );
    const account = await createAccount();
    expect((await createAccount()).googlePassword).toBe(password);
    const device = await api.createDevice();
    await api.bind(device.uuid, account.logicalId);
    const token = (await api.issueToken(device.uuid)).token;
    await api.createHabit({ accountLogicalId: account.logicalId, action: 'tap', pixels: [uniquePixel()] });
    const privateKey = (await more.getDeviceSsh(device.uuid)).privateKey;
    // The base64 body of the OpenSSH key, the part that is secret.
    const keyBody = privateKey.split('\n').slice(1, -2).join('');
    expect(keyBody.length).toBeGreaterThan(40);
    const secrets = [password, keyBody.slice(0, 40)];

    // Admins and the owning daemon (on every replica) get the plaintext.
    expect((await more.getAccount(account.uuid)).googlePassword).toBe(password);
    const other = await provisionDevice(api);
    for (const r of replicas) {
      await r.synced();
      const client = r.daemon();
      const listed = await call(client, client.listAccounts, ListAccountsRequest.fromPartial({}), token);
      expect(listed.accounts.map((a) => a.googlePassword)).toEqual([password]);
      expect((await call(client, client.getSsh, GetSshRequest.fromPartial({}), token)).privateKey).toBe(privateKey);
      // Another device's daemon never sees them.
      const foreign = await call(client, client.listAccounts, ListAccountsRequest.fromPartial({}), other.token);
      expect(foreign.accounts.map((a) => a.uuid)).toEqual([other.account.uuid]);
      await download(client, token, { logicalId: account.logicalId });
    }

    // A data-key rotation re-seals everything; replicas learn the new key and keep serving.
    const dataKeys = sys.write.client(DataKeyServiceClient);
    const rotated = await call(dataKeys, dataKeys.rotateDataKey, RotateDataKeyRequest.fromPartial({}), sys.write.adminToken);
    expect(rotated.resealedCount).toBeGreaterThanOrEqual(2);
    const sealedNow = await sys.db.query("select google_password from accounts where uuid = $1 union all select private_key from sshes where device_uuid = $2", [account.uuid, device.uuid]);
    for (const row of sealedNow.rows) expect(row.google_password).toMatch(new RegExp(`^tbenc2\\.${rotated.keyId}\\.`));
    for (const r of replicas) {
      await r.synced();
      const client = r.daemon();
      expect((await call(client, client.listAccounts, ListAccountsRequest.fromPartial({}), token)).accounts[0]!.googlePassword).toBe(password);
      expect((await call(client, client.getSsh, GetSshRequest.fromPartial({}), token)).privateKey).toBe(privateKey);
    }
    expect((await more.getAccount(account.uuid)).googlePassword).toBe(password);

    // PostgreSQL: the tables, the feed history and the stored request responses.
    for (const secret of secrets) {
      const found = await sys.db.query(
        `select (select count(*) from accounts where google_password like '%' || $1 || '%')
              + (select count(*) from sshes where private_key like '%' || $1 || '%')
              + (select count(*) from feed_events where row::text like '%' || $1 || '%')
              + (select count(*) from request_ids where encode(response, 'escape') like '%' || $1 || '%') as n`,
        [secret],
      );
      expect(Number(found.rows[0].n), secret === password ? 'password in PostgreSQL' : 'private key in PostgreSQL').toBe(0);
    }
    // Every replica's files (grep -a), and every log line of every service.
    for (const r of replicas) {
      const bytes = await replicaBytes(r);
      for (const secret of secrets) expect(bytes.includes(secret), 'secret in a replica file').toBe(false);
    }
    const logs = [...sys.write.logs, ...replicas.flatMap((r) => r.logs)].join('');
    expect(logs.length).toBeGreaterThan(1000);
    for (const secret of [...secrets, token, sys.write.adminToken]) expect(logs.includes(secret), 'secret in a log line').toBe(false);
  });
});

describe('daemon tokens across replicas', () => {
  it('rejects a revoked token with UNAUTHENTICATED on every replica once the revocation is applied', async () => {
    const fleet = await provisionDevice(api);
    const clients = replicas.map((r) => r.daemon());
    for (const r of replicas) await r.synced();
    for (const c of clients) await call(c, c.getToken, GetTokenRequest.fromPartial({}), fleet.token);

    await api.revokeToken(fleet.tokenUuid);
    for (const r of replicas) await r.synced();
    for (const c of clients) {
      const err = await call(c, c.getToken, GetTokenRequest.fromPartial({}), fleet.token).then(
        () => undefined,
        (e: ServiceError) => e,
      );
      expect(err?.code).toBe(status.UNAUTHENTICATED);
    }
  });

  it('accepts a rotated token everywhere at once and the superseded one only for the grace, on every replica', async () => {
    const fleet = await provisionDevice(api);
    const clients = replicas.map((r) => r.daemon());
    for (const r of replicas) await r.synced();
    const rotated = await call(clients[0]!, clients[0]!.rotateToken, RotateTokenRequest.fromPartial({}), fleet.token);
    // The new token works on the replica that rotated it at once, and on the other once the feed brings it.
    expect((await call(clients[0]!, clients[0]!.getToken, GetTokenRequest.fromPartial({}), rotated.token)).uuid).toBe(rotated.tokenInfo!.uuid);
    for (const r of replicas) await r.synced();
    const graceMs = rotated.previousExpireTime!.getTime() - Date.now();
    expect(graceMs).toBeGreaterThan(0);
    expect(graceMs).toBeLessThanOrEqual(1000);
    // Within the grace: both tokens, on every replica.
    for (const c of clients) {
      expect((await call(c, c.getToken, GetTokenRequest.fromPartial({}), fleet.token)).uuid).toBe(fleet.tokenUuid);
      expect((await call(c, c.getToken, GetTokenRequest.fromPartial({}), rotated.token)).uuid).toBe(rotated.tokenInfo!.uuid);
    }
    // Past the grace: only the new one.
    for (const clock of clocks) clock.advance(1_500);
    for (const c of clients) {
      const err = await call(c, c.getToken, GetTokenRequest.fromPartial({}), fleet.token).then(
        () => undefined,
        (e: ServiceError) => e,
      );
      expect(err?.code).toBe(status.UNAUTHENTICATED);
      expect((await call(c, c.getToken, GetTokenRequest.fromPartial({}), rotated.token)).uuid).toBe(rotated.tokenInfo!.uuid);
    }
  });
});

