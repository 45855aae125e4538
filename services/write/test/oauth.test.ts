/**
 * OAuth 2.0 on the admin API against a real OpenID Provider (oidc-provider, in this process):
 * client-credentials access tokens in JWT form, verified through discovery and the JWKS, with
 * roles mapped to the one policy table.
 */
import { createServer as createNetServer } from 'node:net';
import { Metadata, status } from '@grpc/grpc-js';
import { AuditServiceClient, ListAuditEventsRequest } from '@titanbot/contracts/titanbot/admin/v1/audit_service';
import { DaemonTokenServiceClient, IssueDaemonTokenRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { AccountServiceClient, CreateAccountRequest, Gender, GetAccountRequest, ListAccountsRequest } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { CreateDeviceRequest, DeviceServiceClient, GetDeviceSshRequest, ListDevicesRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';

import { unaryCall } from '@titanbot/service-kit/grpc-client';
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, errorDetails, failure, startHarness, uniqueInt, type Harness } from './support/harness.js';
import { startOpenIdProvider, type TestClient, type TestProvider } from './support/openid-provider.js';
import { TestClock } from './support/test-clock.js';

const AUDIENCE = 'https://titanbot-admin.example';
/**
 * Clients of the test provider: the roles claim their tokens carry, and their scope (ops-scoped
 * gets its role from a `titanbot.<role>` scope instead).
 */
const CLIENTS: Record<string, TestClient> = {
  'ops-admin': { roles: ['admin'], scope: 'titanbot.api' },
  'ops-viewer': { roles: ['viewer'], scope: 'titanbot.api' },
  'ops-issuer': { roles: ['token-issuer'], scope: 'titanbot.api' },
  'ops-scoped': { roles: [], scope: 'titanbot.api titanbot.viewer' },
};

let idp: TestProvider;
let issuer: string;
const clock = new TestClock();
let h: Harness;

const accessToken = (clientId: string, resource?: string): Promise<string> => idp.accessToken(clientId, resource);

const bearer = (token: string): Metadata => {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
};

beforeAll(async () => {
  idp = await startOpenIdProvider({ audience: AUDIENCE, clients: CLIENTS });
  issuer = idp.issuer;
  h = await startHarness({ OIDC_ISSUER: issuer, OIDC_AUDIENCE: AUDIENCE }, clock);
});
afterAll(async () => {
  await h?.stop();
  await idp?.stop();
});

describe('OAuth 2.0 on the admin API', () => {
  it('lets each role do what the policy table gives it, and nothing else', async () => {
    const devices = h.client(DeviceServiceClient);
    const tokens = h.client(DaemonTokenServiceClient);
    const create = (token: string) => unaryCall(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), bearer(token));
    const list = (token: string) => unaryCall(devices, devices.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1 }), bearer(token));

    const admin = await accessToken('ops-admin');
    const device = await create(admin);
    // The audit trail names the operator by the token's subject and client id.
    const audit = h.client(AuditServiceClient);
    const trail = await unaryCall(audit, audit.listAuditEvents, ListAuditEventsRequest.fromPartial({ resource: device.uuid }), bearer(admin));
    expect(trail.auditEvents).toEqual([expect.objectContaining({ actorSubject: 'ops-admin', actorClientId: 'ops-admin', code: status.OK })]);
    const viewer = await accessToken('ops-viewer');
    expect((await list(viewer)).devices).toHaveLength(1);
    expect((await failure(create(viewer))).code).toBe(status.PERMISSION_DENIED);
    // The refusal names the operator: the actor filter finds it.
    const refusals = await unaryCall(audit, audit.listAuditEvents, ListAuditEventsRequest.fromPartial({ actor: 'ops-viewer', method: DeviceServiceClient.service.createDevice.path }), bearer(admin));
    expect(refusals.auditEvents).toEqual([expect.objectContaining({ actorSubject: 'ops-viewer', actorClientId: 'ops-viewer', code: status.PERMISSION_DENIED })]);
    const issuerToken = await accessToken('ops-issuer');
    expect((await unaryCall(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: device.uuid }), bearer(issuerToken))).token).toMatch(/^tbd_/);
    expect((await failure(list(issuerToken))).code).toBe(status.PERMISSION_DENIED);
    const scoped = await accessToken('ops-scoped');
    expect((await list(scoped)).devices).toHaveLength(1);
    expect((await failure(create(scoped))).code).toBe(status.PERMISSION_DENIED);
  });

  it("sends an account's Google password and a device's SSH private key to admins only: other roles get them empty", async () => {
    const accounts = h.client(AccountServiceClient);
    const devices = h.client(DeviceServiceClient);
    const logicalId = uniqueInt();
    const account = await unaryCall(
      accounts,
      accounts.createAccount,
      CreateAccountRequest.fromPartial({ account: { logicalId, firstName: 'Ann', lastName: 'Lee', birthDate: new Date('1990-05-17T00:00:00Z'), gender: Gender.GENDER_FEMALE, googleLogin: `ann${logicalId}@example.com`, googlePassword: 'secret-pw' } }),
      bearer(await accessToken('ops-admin')),
    );
    const device = await unaryCall(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), bearer(await accessToken('ops-admin')));
    const read = async (client: string) => {
      const md = bearer(await accessToken(client));
      const one = await unaryCall(accounts, accounts.getAccount, GetAccountRequest.fromPartial({ uuid: account.uuid }), md);
      const listed = (await unaryCall(accounts, accounts.listAccounts, ListAccountsRequest.fromPartial({ logicalId, pageSize: 10 }), md)).accounts;
      const ssh = await unaryCall(devices, devices.getDeviceSsh, GetDeviceSshRequest.fromPartial({ deviceUuid: device.uuid }), md);
      return { password: one.googlePassword, listed: listed.map((a) => a.googlePassword), login: one.googleLogin, privateKey: ssh.privateKey, publicKey: ssh.publicKey };
    };
    const admin = await read('ops-admin');
    expect(admin).toMatchObject({ password: 'secret-pw', listed: ['secret-pw'], privateKey: expect.stringContaining('PRIVATE KEY') });
    for (const client of ['ops-viewer', 'ops-scoped']) {
      expect(await read(client)).toEqual({ ...admin, password: '', listed: [''], privateKey: '' });
    }
    // The admin token is an admin.
    expect((await call(accounts, accounts.getAccount, GetAccountRequest.fromPartial({ uuid: account.uuid }), h.adminToken)).googlePassword).toBe('secret-pw');
  });

  it('refuses a token for another audience or issuer, tampered, signed by an unknown key, unsigned, signed with HMAC, or past its expiry', async () => {
    const devices = h.client(DeviceServiceClient);
    const list = (token: string) => unaryCall(devices, devices.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1 }), bearer(token));
    const claims = { sub: 'ops-admin', client_id: 'ops-admin', roles: ['admin'], scope: 'titanbot.api' };
    const { privateKey } = await generateKeyPair('RS256');
    const valid0 = await accessToken('ops-admin');
    const [header, payload, signature] = valid0.split('.');
    const tamperedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), roles: ['admin', 'viewer'] })).toString('base64url');
    const forged = [
      await accessToken('ops-admin', 'https://another-api.example'),
      // The provider's token with its claims changed: the signature no longer matches.
      `${header}.${tamperedPayload}.${signature}`,
      // Signed by a key the provider does not publish (unknown kid), and for another issuer.
      await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'not-a-provider-key' }).setIssuer(issuer).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('10m').sign(privateKey),
      await new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).setIssuer('https://elsewhere.example').setAudience(AUDIENCE).setIssuedAt().setExpirationTime('10m').sign(privateKey),
      new UnsecuredJWT(claims).setIssuer(issuer).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('10m').encode(),
      await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer(issuer).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode('a-guessable-secret-of-32-bytes!!')),
    ];
    for (const token of forged) expect(errorDetails(await failure(list(token)))).toMatchObject({ reason: 'UNAUTHENTICATED' });

    const valid = await accessToken('ops-admin');
    await list(valid);
    // Ten minutes' lifetime, 30 s of skew allowed: an hour later it is refused.
    clock.advance(3_600_000);
    expect((await failure(list(valid))).code).toBe(status.UNAUTHENTICATED);
  });

  it('picks up a rotated signing key, refetching the keys for an unknown kid at most once per 30 s', async () => {
    const rotating = await startOpenIdProvider({ audience: AUDIENCE, clients: CLIENTS });
    const rotationClock = new TestClock();
    const service = await startHarness({ OIDC_ISSUER: rotating.issuer, OIDC_AUDIENCE: AUDIENCE }, rotationClock);
    try {
      const devices = service.client(DeviceServiceClient);
      const list = (token: string) => unaryCall(devices, devices.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1 }), bearer(token));
      const before = await rotating.accessToken('ops-admin');
      await list(before);
      expect(rotating.jwksRequests).toBe(1);

      await rotating.rotateSigningKey();
      const after = await rotating.accessToken('ops-admin');
      expect(JSON.parse(Buffer.from(after.split('.')[0]!, 'base64url').toString()).kid).not.toBe(JSON.parse(Buffer.from(before.split('.')[0]!, 'base64url').toString()).kid);
      // Within 30 s of the last fetch an unknown kid is refused without asking the provider again.
      rotationClock.advance(29_000);
      expect(errorDetails(await failure(list(after)))).toMatchObject({ reason: 'UNAUTHENTICATED' });
      expect(rotating.jwksRequests).toBe(1);

      rotationClock.advance(1_000);
      await list(after);
      expect(rotating.jwksRequests).toBe(2);
      // The old key is no longer published, so what it signed is refused from now on.
      expect(errorDetails(await failure(list(before)))).toMatchObject({ reason: 'UNAUTHENTICATED' });
    } finally {
      await service.stop();
      await rotating.stop();
    }
  });

  it('can refuse the admin token altogether, and says UNAVAILABLE when the provider is down', async () => {
    const oauthOnly = await startHarness({ OIDC_ISSUER: issuer, OIDC_AUDIENCE: AUDIENCE, ADMIN_TOKEN_ENABLED: 'false' });
    const closed = createNetServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadIssuer = `http://127.0.0.1:${(closed.address() as { port: number }).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const providerDown = await startHarness({ OIDC_ISSUER: deadIssuer, OIDC_AUDIENCE: AUDIENCE });
    try {
      const devices = oauthOnly.client(DeviceServiceClient);
      const adminKey = new Metadata();
      adminKey.set('x-api-key', oauthOnly.adminToken);
      expect((await failure(unaryCall(devices, devices.listDevices, ListDevicesRequest.fromPartial({}), adminKey))).code).toBe(status.UNAUTHENTICATED);
      await unaryCall(devices, devices.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1 }), bearer(await accessToken('ops-admin')));

      const down = providerDown.client(DeviceServiceClient);
      const err = await failure(unaryCall(down, down.listDevices, ListDevicesRequest.fromPartial({}), bearer(await accessToken('ops-admin'))));
      expect(err).toMatchObject({ code: status.UNAVAILABLE, reason: 'IDENTITY_PROVIDER_UNAVAILABLE', retryDelayMs: 1000 });
    } finally {
      await oauthOnly.stop();
      await providerDown.stop();
    }
  });
});
