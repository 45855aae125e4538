import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ACCESS_TOKEN_TTL_S, PEOPLE, SESSION_COOKIE, SESSION_IDLE_TIMEOUT_MS, startTestConsole, startTestProvider, type TestProvider } from '@titanbot/console/test-support/console';
import { launchChromium, seriousViolations, signIn } from '@titanbot/console/test-support/browser';
import { ShapeType } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { DaemonSync } from '@titanbot/daemon-client';
import { FleetServiceClient, ListDeviceStatusesRequest } from '@titanbot/contracts/titanbot/admin/v1/fleet_service';
import { adminApi, uniquePixel } from '@titanbot/read/test-support/admin';
import { checkVersion } from '@titanbot/read/test-support/daemon';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { call, uniqueInt } from '@titanbot/write/test-support/harness';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const DAEMONS = 50;
/** Screenshots of each page, kept by CI as artifacts. */
const ARTIFACTS = path.resolve('test-results/console');
/** The console's clock: sessions expire and access tokens are renewed by moving it. */
const clock = new TestClock();

let provider: TestProvider;
let sys: System;
let replicas: Replica[];
let api: ReturnType<typeof adminApi>;
let consoleUrl: string;
let stopConsole: () => Promise<void>;
let browser: Browser;
let dir: string;
let logicalId: number;
const daemons: { uuid: string; sync: DaemonSync }[] = [];

/** Every daemon syncs once, on its replica. */
const syncAll = () => Promise.all(daemons.map((d) => d.sync.syncOnce()));
/** The fleet page of the test's scope. */
const fleetUrl = () => `${consoleUrl}/?logical_id=${logicalId}`;
const count = (page: Page, state: string) => page.getByTestId(`count-${state}`).textContent();
/** The fleet page's first screen (the README shows it); other pages whole. */
const screenshot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: name !== 'fleet' });

beforeAll(async () => {
  provider = await startTestProvider();
  sys = await startSystem({ OIDC_ISSUER: provider.provider.issuer, OIDC_AUDIENCE: 'urn:titanbot:admin' });
  const replicaEnv = { STATUS_REPORT_INTERVAL: '100ms' };
  replicas = [await sys.startReplica(replicaEnv), await sys.startReplica(replicaEnv)];
  api = adminApi(sys.write);
  logicalId = uniqueInt();
  await api.createAccount(logicalId);
  await api.createHabit({ accountLogicalId: logicalId, action: 'first', pixels: [uniquePixel()] });
  await replicas[0]!.synced();
  await replicas[1]!.synced();
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-console-'));
  for (let i = 0; i < DAEMONS; i++) {
    const device = await api.createDevice();
    await api.bind(device.uuid, logicalId);
    const home = path.join(dir, `daemon-${i}`);
    await mkdir(home);
    const token = (await api.issueToken(device.uuid)).token;
    await writeFile(path.join(home, 'token'), `${token}\n`, { mode: 0o600 });
    if (i === 0) {
      // The first daemon's first contact, holding no file, is reported before it syncs: its
      // history (the device page's test) then starts with it whatever the timing of the reports.
      await replicas[0]!.synced();
      await checkVersion(replicas[0]!.daemon(), token, logicalId);
      const fleet = sys.write.client(FleetServiceClient);
      const reported = () => call(fleet, fleet.listDeviceStatuses, ListDeviceStatusesRequest.fromPartial({ deviceUuid: device.uuid }), sys.write.adminToken);
      await vi.waitFor(async () => expect((await reported()).deviceStatuses.map((d) => d.heldVersion)).toEqual(['']), { timeout: 10_000, interval: 50 });
    }
    daemons.push({ uuid: device.uuid, sync: new DaemonSync({ server: replicas[i % 2]!.service.address, tokenFile: path.join(home, 'token'), dbPath: path.join(home, 'titanbotd.sqlite'), logicalId }) });
  }
  await syncAll();
  const service = await startTestConsole(provider, sys.write.address, clock.now);
  consoleUrl = service.url;
  stopConsole = () => service.stop();
  browser = await launchChromium();
  await mkdir(ARTIFACTS, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stopConsole?.();
  for (const d of daemons) d.sync.close();
  await sys?.stop();
  await provider?.provider.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the operator console', () => {
  let admin: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    admin = await browser.newContext();
    page = await admin.newPage();
  });
  afterAll(() => admin.close());

  it(`signs in through the provider's pages and shows ${DAEMONS} daemons current, then behind and current again after a change, without a reload`, async () => {
    await signIn(page, fleetUrl(), 'ada', PEOPLE.ada.password);
    expect(await page.getByTestId('operator').textContent()).toBe('ada (admin)');
    await vi.waitFor(async () => expect(await count(page, 'current')).toBe(String(DAEMONS)), { timeout: 15_000, interval: 100 });
    expect(await count(page, 'devices')).toBe(String(DAEMONS));
    await screenshot(page, 'fleet');

    // The page is not reloaded from here on: the same document sees the change and its arrival.
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1));
    await api.createHabit({ accountLogicalId: logicalId, action: 'second', pixels: [uniquePixel()] });
    await vi.waitFor(async () => expect(await count(page, 'behind')).toBe(String(DAEMONS)), { timeout: 15_000, interval: 100 });
    await syncAll();
    await vi.waitFor(async () => expect(await count(page, 'current')).toBe(String(DAEMONS)), { timeout: 15_000, interval: 100 });
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(1);
    expect(await page.locator('tbody tr').count()).toBe(DAEMONS);
  });

  it('shows a device with its tokens and logs, issues a token for the admin, and passes an accessibility check on every page', async () => {
    const uuid = daemons[0]!.uuid;
    await page.goto(`${consoleUrl}/devices/${uuid}`);
    await page.getByRole('heading', { name: 'Daemon tokens' }).waitFor();
    await page.getByRole('cell', { name: 'issued' }).first().waitFor();
    // Its history: its first contact holding no file, the version it first installed, the one after the change.
    const history = page.getByRole('region', { name: 'Status history' }).locator('tbody tr');
    await vi.waitFor(async () => expect(await history.count()).toBe(3), { timeout: 10_000, interval: 100 });
    await page.getByRole('button', { name: 'Issue a token' }).click();
    const token = await page.getByRole('textbox', { name: 'Token', exact: true }).inputValue();
    expect(token).toMatch(/^tbd_/);
    await screenshot(page, 'device');
    expect(await seriousViolations(page)).toEqual([]);

    await page.goto(fleetUrl());
    await page.getByTestId('count-current').waitFor();
    expect(await seriousViolations(page)).toEqual([]);

    await page.goto(`${consoleUrl}/audit?actor=ada`);
    await page.getByRole('cell', { name: 'IssueDaemonToken' }).first().waitFor();
    await screenshot(page, 'audit');
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('renews the access token with the refresh token before it expires', async () => {
    const before = provider.provider.refreshGrants;
    clock.advance((ACCESS_TOKEN_TTL_S - 30) * 1000);
    await page.goto(fleetUrl());
    await vi.waitFor(async () => expect(await count(page, 'current')).toBe(String(DAEMONS)), { timeout: 15_000, interval: 100 });
    expect(provider.provider.refreshGrants).toBe(before + 1);
  });

  it('keeps the session in an encrypted HttpOnly, Secure, SameSite cookie and refuses whatever comes without it', async () => {
    const [session] = (await admin.cookies(consoleUrl)).filter((c) => c.name === SESSION_COOKIE);
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });
    // Not a token, nor anything readable: a JWE the console alone opens.
    expect(session!.value.split('.')).toHaveLength(5);
    expect(session!.value).not.toMatch(/^eyJhbGciOiJFUz/);
    const cookie = `${SESSION_COOKIE}=${session!.value}`;
    const rpc = (headers: Record<string, string>) =>
      fetch(`${consoleUrl}/titanbot.admin.v1.FleetService/GetFleetSummary`, { method: 'POST', headers: { 'content-type': 'application/json', 'connect-protocol-version': '1', ...headers }, body: '{}' });

    const served = await rpc({ cookie, origin: consoleUrl });
    expect(served.status).toBe(200);
    const otherOrigin = await rpc({ cookie, origin: 'https://evil.example' });
    expect([otherOrigin.status, ((await otherOrigin.json()) as { code: string }).code]).toEqual([403, 'permission_denied']);
    const noOrigin = await rpc({ cookie });
    expect(noOrigin.status).toBe(403);
    const noConnectHeader = await fetch(`${consoleUrl}/titanbot.admin.v1.FleetService/GetFleetSummary`, { method: 'POST', headers: { 'content-type': 'application/json', cookie, origin: consoleUrl }, body: '{}' });
    expect(noConnectHeader.status).toBe(400);
    const noCookie = await rpc({ origin: consoleUrl });
    expect([noCookie.status, ((await noCookie.json()) as { code: string }).code]).toEqual([401, 'unauthenticated']);
    const tampered = session!.value.slice(0, -3) + (session!.value.endsWith('A') ? 'BBB' : 'AAA');
    expect((await rpc({ cookie: `${SESSION_COOKIE}=${tampered}`, origin: consoleUrl })).status).toBe(401);
    const page = (c?: string) => fetch(`${consoleUrl}/audit`, { redirect: 'manual', headers: c ? { cookie: c } : {} });
    expect((await page(cookie)).status).toBe(200);
    for (const refused of [await page(), await page(`${SESSION_COOKIE}=${tampered}`)]) {
      expect(refused.status).toBe(303);
      expect(refused.headers.get('location')).toBe('/auth/login?return_to=%2Faudit');
    }
    // Security headers on every page.
    const headers = (await page(cookie)).headers;
    expect(headers.get('content-security-policy')).toMatch(/script-src 'self';/);
    expect(headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(headers.get('content-security-policy')).not.toMatch(/unsafe-inline/);
  });

  it("sends an expired session to sign-in", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, fleetUrl(), 'ada', PEOPLE.ada.password);
    expect((await context.request.get(`${consoleUrl}/audit`, { maxRedirects: 0 })).status()).toBe(200);
    clock.advance(SESSION_IDLE_TIMEOUT_MS);
    const expired = await context.request.get(`${consoleUrl}/audit`, { maxRedirects: 0 });
    expect([expired.status(), expired.headers().location]).toEqual([303, '/auth/login?return_to=%2Faudit']);
    await context.close();
  });

  it('signs out here and at the provider: the next request is sent to sign-in', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, fleetUrl(), 'ada', PEOPLE.ada.password);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.getByRole('heading', { name: 'Signed out' }).waitFor();
    expect(new URL(page.url()).origin).toBe(consoleUrl);
    expect((await context.cookies(consoleUrl)).map((c) => c.name)).not.toContain(SESSION_COOKIE);
    await page.goto(fleetUrl());
    // The provider's session ended too: it asks for the password again.
    await page.getByLabel('Password').waitFor();
    expect(page.url().startsWith(provider.provider.issuer)).toBe(true);
    await context.close();
  });
});

describe('a viewer', () => {
  it('sees the fleet and devices with no edit control, and a forged write from the session is PERMISSION_DENIED', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, `${consoleUrl}/devices/${daemons[1]!.uuid}`, 'vic', PEOPLE.vic.password);
    expect(await page.getByTestId('operator').textContent()).toBe('vic (viewer)');
    await page.getByRole('cell', { name: 'issued' }).first().waitFor();
    expect(await page.getByRole('button').allTextContents()).toEqual(['Sign out']);
    await page.goto(fleetUrl());
    await vi.waitFor(async () => expect(await count(page, 'current')).toBe(String(DAEMONS)), { timeout: 15_000, interval: 100 });

    const forged = await page.evaluate(async (logicalId) => {
      const res = await fetch('/titanbot.admin.v1.HabitService/CreateHabit', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'connect-protocol-version': '1' },
        body: JSON.stringify({ habit: { accountLogicalId: logicalId, action: 'forged', priority: 1 } }),
      });
      return { status: res.status, body: (await res.json()) as { code: string; details?: { type: string }[] } };
    }, logicalId);
    expect(forged.status).toBe(403);
    expect(forged.body.code).toBe('permission_denied');
    await context.close();
  });
});

describe('habits, drawn', () => {
  it("lists a scope's habits by priority with their drawings, and draws a habit's pixels and shapes to scale, naming each element's values", async () => {
    const pixels = [
      { x: 120, y: 300, rgbHex: 'FF0000', deviation: 4 },
      { x: 540, y: 960, rgbHex: '00AA00', deviation: 0 },
      { x: 900, y: 1700, rgbHex: '0000FF', deviation: 12 },
    ];
    const circle = { type: ShapeType.SHAPE_TYPE_CIRCLE, x: 200, y: 1200, width: 300, height: 300, size: 2, rgbHex: 'FFAA00' };
    const drawn = await api.createHabit({ accountLogicalId: logicalId, action: 'tap the red dot', priority: 50, pixels, shapes: [circle] });
    await api.createHabit({ accountLogicalId: logicalId, action: 'first in line', priority: 90, pixels: [uniquePixel()] });

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await signIn(page, `${consoleUrl}/habits?scope=${logicalId}`, 'ada', PEOPLE.ada.password);
    const cards = page.locator('.habit-list strong');
    await cards.first().waitFor();
    // Priority order, as daemons read them: 90, 50, then the ones without a priority.
    expect((await cards.allTextContents()).slice(0, 2)).toEqual(['first in line', 'tap the red dot']);
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel('Action contains').fill('red dot');
    await page.getByRole('button', { name: 'Filter' }).click();
    await vi.waitFor(async () => expect(await cards.allTextContents()).toEqual(['tap the red dot']));
    expect(new URL(page.url()).searchParams.get('action')).toBe('red dot');

    await page.getByRole('link', { name: /tap the red dot/ }).click();
    const canvas = page.getByRole('img', { name: '3 pixels and 1 shapes on the daemon\'s screen' });
    await canvas.waitFor();
    expect(await canvas.getAttribute('viewBox')).toBe('0 0 1080 1920');
    const dots = await page.locator('.habit-view circle.pixel').evaluateAll((els) => els.map((e) => [e.getAttribute('cx'), e.getAttribute('cy'), e.getAttribute('fill')]));
    expect(dots).toEqual(pixels.map((p) => [String(p.x), String(p.y), `#${p.rgbHex}`]));
    // Deviation drawn as a ring, only where there is one.
    expect(await page.locator('.habit-view circle.deviation').count()).toBe(2);
    const ellipse = page.locator('.habit-view ellipse');
    expect(await ellipse.evaluate((e) => ['cx', 'cy', 'rx', 'ry', 'stroke'].map((a) => e.getAttribute(a)))).toEqual(['350', '1350', '150', '150', '#FFAA00']);
    await page.locator('[data-element="pixel-2"]').click();
    expect(await page.locator('.habit-view figcaption').textContent()).toBe('pixel at 900, 1700: #0000FF, deviation ±12');
    await page.getByRole('button', { name: /^circle at 200, 1200/ }).click();
    expect(await page.locator('.habit-view figcaption').textContent()).toBe('circle at 200, 1200: 300 × 300, size 2, #FFAA00');
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'habit');
    expect(drawn.uuid).toBe(new URL(page.url()).pathname.split('/')[2]);

    // A phone: the page fits its width.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'habit-phone.png'), fullPage: true });
    expect(await page.locator('html').evaluate((html) => html.scrollWidth)).toBeLessThanOrEqual(390);
    await context.close();
  });
});
