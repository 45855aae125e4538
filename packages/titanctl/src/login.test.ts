/**
 * `titanctl login` against a real OpenID Provider (oidc-provider, in this process) and a write
 * service that accepts OAuth 2.0 only: the device authorization grant approved by the test playing
 * the person at a browser, client credentials for automation, renewal before expiry, log-out.
 */
import { chmod, mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startHarness, uniqueInt, type Harness } from '@titanbot/write/test-support/harness';
import { startOpenIdProvider, type TestProvider } from '@titanbot/write/test-support/openid-provider';
import { runCaptured } from './run-captured.test-support.js';
import type { Session } from './login.js';

const AUDIENCE = 'https://titanbot-admin.example';
let idp: TestProvider;
let h: Harness;
let configDir: string;

beforeAll(async () => {
  idp = await startOpenIdProvider({ audience: AUDIENCE, clients: { 'ci-bot': { roles: ['admin'], scope: 'titanbot.api' } }, people: { alice: ['admin'] } });
  h = await startHarness({ OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE, ADMIN_TOKEN_ENABLED: 'false' });
});
afterAll(async () => {
  await h?.stop();
  await idp?.stop();
});
beforeEach(async () => {
  configDir = await mkdtemp(path.join(tmpdir(), 'titanctl-login-'));
  vi.stubEnv('TITANBOT_CONFIG_DIR', configDir);
  vi.stubEnv('TITANBOT_ADMIN_TOKEN', '');
  vi.stubEnv('TITANBOT_CLIENT_SECRET', '');
  // No admin token file to fall back on: only the login's session can authenticate.
  vi.stubEnv('DATA_DIR', configDir);
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

const run = runCaptured;

const sessionFile = (): string => path.join(configDir, 'session.json');
const saved = async (): Promise<Session> => JSON.parse(await readFile(sessionFile(), 'utf8')) as Session;
const createDevice = (now?: () => number) => run(['devices', 'create', '--physical-id', String(uniqueInt()), '--server', h.address], { now });

describe('titanctl login', () => {
  it('signs a person in by device authorization, calls with the token, renews it before expiry, and logs out', async () => {
    let approval: Promise<void> | undefined;
    const login = await run(['login', '--issuer', idp.issuer, '--audience', AUDIENCE], {
      onStderr: (text) => {
        const url = /open (\S+) \(or/.exec(text)?.[1];
        if (url) approval = idp.approveDevice(url, 'alice');
      },
    });
    await approval;
    expect(login.code).toBe(0);
    expect(JSON.parse(login.out)).toMatchObject({ issuer: idp.issuer, subject: 'alice', grant: 'device_code', sessionFile: sessionFile() });
    expect(login.err).toMatch(/and enter [A-Z]{4}-[A-Z]{4}\); the code expires in 10 min\.\n$/);
    expect((await stat(sessionFile())).mode & 0o777).toBe(0o600);
    const first = await saved();
    expect(first.refreshToken).toBeTruthy();
    for (const secret of [first.accessToken, first.refreshToken!]) expect(login.out + login.err).not.toContain(secret);

    const created = await createDevice();
    expect(created).toMatchObject({ code: 0, err: '' });
    const trail = await run(['audit', 'list', '--resource', JSON.parse(created.out).uuid, '--server', h.address]);
    expect(JSON.parse(trail.out).auditEvents).toEqual([expect.objectContaining({ actorSubject: 'alice', actorClientId: 'titanctl' })]);
    expect(await saved()).toEqual(first);

    // Thirty seconds before expiry the session is renewed with the refresh token, then used.
    const nearExpiry = () => first.expiresAt - 30_000;
    expect(await createDevice(nearExpiry)).toMatchObject({ code: 0, err: '' });
    const renewed = await saved();
    expect(renewed.accessToken).not.toBe(first.accessToken);
    expect(renewed.expiresAt).toBeGreaterThan(first.expiresAt - 30_000);
    expect((await stat(sessionFile())).mode & 0o777).toBe(0o600);

    expect(JSON.parse((await run(['logout'])).out)).toEqual({ loggedOut: true, sessionFile: sessionFile() });
    await expect(stat(sessionFile())).rejects.toMatchObject({ code: 'ENOENT' });
    const after = await createDevice();
    expect(after.code).toBe(1);
    expect(after.err).toMatch(/not logged in: run titanctl login/);
  });

  it('signs automation in by client credentials, renewing with the secret from the environment only', async () => {
    expect((await run(['login', '--issuer', idp.issuer, '--audience', AUDIENCE, '--client-credentials', '--client-id', 'ci-bot'])).code).toBe(2);
    vi.stubEnv('TITANBOT_CLIENT_SECRET', 'secret');
    const login = await run(['login', '--issuer', idp.issuer, '--audience', AUDIENCE, '--client-credentials', '--client-id', 'ci-bot']);
    expect(login.code).toBe(0);
    expect(JSON.parse(login.out)).toMatchObject({ subject: 'ci-bot', grant: 'client_credentials' });
    const first = await saved();
    expect(JSON.stringify(first)).not.toContain('secret"');
    expect(await createDevice()).toMatchObject({ code: 0, err: '' });

    const afterExpiry = () => first.expiresAt + 1_000;
    vi.stubEnv('TITANBOT_CLIENT_SECRET', '');
    const refused = await createDevice(afterExpiry);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/has expired; set TITANBOT_CLIENT_SECRET to renew it, or log in again/);
    vi.stubEnv('TITANBOT_CLIENT_SECRET', 'secret');
    expect(await createDevice(afterExpiry)).toMatchObject({ code: 0, err: '' });
    expect((await saved()).accessToken).not.toBe(first.accessToken);
  });

  it('refuses a session file others can read, and a provider that refuses the client', async () => {
    vi.stubEnv('TITANBOT_CLIENT_SECRET', 'wrong');
    const refused = await run(['login', '--issuer', idp.issuer, '--client-credentials', '--client-id', 'ci-bot']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^titanctl: login failed: the OpenID Provider refused: invalid_client/);

    vi.stubEnv('TITANBOT_CLIENT_SECRET', 'secret');
    expect((await run(['login', '--issuer', idp.issuer, '--audience', AUDIENCE, '--client-credentials', '--client-id', 'ci-bot'])).code).toBe(0);
    await chmod(sessionFile(), 0o644);
    const exposed = await createDevice();
    expect(exposed.code).toBe(1);
    expect(exposed.err).toContain('is readable by others; remove it and log in again');
  });
});
