/**
 * The console as operators do their daily work in it, in Debian's Chromium: habits edited by sight
 * (placed, dragged, typed; validated and conflict-checked by the write service), tokens issued once
 * and revoked, the other resources, logs, roles, and every page at a desktop and a phone width.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import pixelmatch from 'pixelmatch';
import { PNG } from 'pngjs';
import { PEOPLE, startTestConsole, startTestProvider, type TestProvider } from '@titanbot/console/test-support/console';
import { launchChromium, seriousViolations, signIn } from '@titanbot/console/test-support/browser';
import { AccountServiceClient } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { EmpireDateServiceClient } from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import { HabitServiceClient, ShapeType } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { LegionServiceClient } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { RolloutServiceClient, RolloutState } from '@titanbot/contracts/titanbot/admin/v1/rollout_service';
import { DaemonSync } from '@titanbot/daemon-client';
import { SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import { adminApi } from '@titanbot/read/test-support/admin';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { call, uniqueInt } from '@titanbot/write/test-support/harness';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DAEMON_BIN = path.join(ROOT, 'packages/daemon-client/bin/titanbot-daemon.js');
/** The drawn habit as Chromium renders it: compared pixel by pixel (UPDATE_REFERENCE_IMAGES=1 writes it anew). */
const REFERENCE = path.join(ROOT, 'test/fixtures/console-habit-drawn.png');
/** Screenshots of each page at each width, kept by CI as artifacts. */
const ARTIFACTS = path.resolve('test-results/console-admin');
/** The habit canvas's width on a habit's page (px): the daemon's 1080 px screen at a third. */
const SCALE = 3;

const clock = new TestClock();
let provider: TestProvider;
let sys: System;
let replica: Replica;
let api: ReturnType<typeof adminApi>;
let consoleUrl: string;
let stopConsole: () => Promise<void>;
let browser: Browser;
let dir: string;
let logicalId: number;
let device: { uuid: string; physicalId: number };
let daemon: DaemonSync;
let tokenFile: string;

const admin = <C extends object>(Ctor: new (...args: never[]) => C) => sys.write.client(Ctor as never) as C;
const getHabit = (uuid: string) => {
  const habits = admin(HabitServiceClient);
  return call(habits, habits.getHabit, { uuid }, sys.write.adminToken);
};
const scopeHabitCount = async () => {
  const habits = admin(HabitServiceClient);
  return (await call(habits, habits.listHabits, { accountLogicalId: logicalId, pageSize: 1000, pageToken: '', globalOnly: false }, sys.write.adminToken)).habits.length;
};

/** Runs `titanbot-daemon sync --once` with the token in `tokenFile`; resolves with its exit code. */
function daemonSyncOnce(): Promise<number> {
  const args = [DAEMON_BIN, 'sync', '--once', '--timeout', '0', '--server', replica.service.address, '--token-file', tokenFile, '--db', path.join(dir, 'cli.sqlite'), '--logical-id', String(logicalId)];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'ignore' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
}

/** Every admin API answer the page receives from now on, as text (Connect's JSON). */
function recordAnswers(page: Page): string[] {
  const bodies: string[] = [];
  page.on('response', (res) => {
    if (res.url().includes('/titanbot.admin.v1.')) void res.text().then((t) => bodies.push(t), () => undefined);
  });
  return bodies;
}

/** A new browser context signed in as `login` at `url`. */
async function signedIn(login: keyof typeof PEOPLE, url: string, viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await signIn(page, url, login, PEOPLE[login].password);
  return { context, page };
}

/** The message shown under the input labelled `label` (its aria-describedby). */
async function errorAt(page: Page, label: string): Promise<string> {
  const input = page.getByLabel(label, { exact: true });
  expect(await input.getAttribute('aria-invalid')).toBe('true');
  const id = await input.getAttribute('aria-describedby');
  return (await page.locator(`#${id}`).textContent()) ?? '';
}

/** Saves through the review dialog, after its preview has counted the devices. */
async function reviewAndSave(page: Page, button: RegExp, confirm: 'Save' | 'Create'): Promise<string> {
  await page.getByRole('button', { name: button }).click();
  const impact = page.getByTestId('impact');
  await impact.waitFor();
  const text = (await impact.textContent()) ?? '';
  await page.getByRole('dialog').getByRole('button', { name: confirm, exact: true }).click();
  return text;
}

beforeAll(async () => {
  provider = await startTestProvider();
  sys = await startSystem({ OIDC_ISSUER: provider.provider.issuer, OIDC_AUDIENCE: 'urn:titanbot:admin' });
  replica = await sys.startReplica({ STATUS_REPORT_INTERVAL: '100ms' });
  api = adminApi(sys.write);
  logicalId = uniqueInt();
  await api.createAccount(logicalId);
  device = await api.createDevice();
  await api.bind(device.uuid, logicalId);
  const other = await api.createDevice();
  await api.bind(other.uuid, logicalId);
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-console-admin-'));
  tokenFile = path.join(dir, 'token');
  await writeFile(tokenFile, `${(await api.issueToken(device.uuid)).token}\n`, { mode: 0o600 });
  daemon = new DaemonSync({ server: replica.service.address, tokenFile, dbPath: path.join(dir, 'titanbotd.sqlite'), logicalId });
  const otherToken = path.join(dir, 'other-token');
  await writeFile(otherToken, `${(await api.issueToken(other.uuid)).token}\n`, { mode: 0o600 });
  const otherDaemon = new DaemonSync({ server: replica.service.address, tokenFile: otherToken, dbPath: path.join(dir, 'other.sqlite'), logicalId });
  await replica.synced();
  await daemon.syncOnce();
  await otherDaemon.syncOnce();
  otherDaemon.close();
  const service = await startTestConsole(provider, sys.write.address, clock.now);
  consoleUrl = service.url;
  stopConsole = () => service.stop();
  browser = await launchChromium();
  await mkdir(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stopConsole?.();
  daemon?.close();
  await sys?.stop();
  await provider?.provider.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('habits, edited by sight', () => {
  it('creates a habit of three pixels and a circle placed on the canvas: read back exactly, held by a daemon of the scope, drawn as the reference image', { timeout: 60_000 }, async () => {
    const { context, page } = await signedIn('ada', `${consoleUrl}/habits?scope=${logicalId}`);
    await page.getByRole('button', { name: `New habit in scope ${logicalId}` }).click();
    await page.getByLabel('Action', { exact: true }).fill('tap three dots');
    await page.getByLabel('Priority', { exact: true }).fill('40');
    const canvas = page.getByRole('img', { name: /on the daemon's screen/ });
    const placed = [
      { at: { x: 40, y: 100 }, rgbHex: 'FF0000' },
      { at: { x: 180, y: 320 }, rgbHex: '00AA00' },
      { at: { x: 300, y: 560 }, rgbHex: '0000FF' },
    ];
    await page.getByLabel('Place pixel').check();
    for (const p of placed) {
      await page.getByLabel('Colour of new elements').fill(p.rgbHex);
      await canvas.click({ position: p.at });
    }
    // One more, taken away again from the keyboard.
    await canvas.click({ position: { x: 200, y: 200 } });
    await page.getByLabel('Select and move').check();
    await canvas.focus();
    await page.keyboard.press('Delete');
    await page.getByLabel('Place circle').check();
    await page.getByLabel('Colour of new elements').fill('FFAA00');
    await canvas.click({ position: { x: 100, y: 450 } });

    const impact = await reviewAndSave(page, /Review and create/, 'Create');
    expect(impact).toBe(`Scope ${logicalId}’s daemon database changes: 2 devices hold it.`);
    await page.waitForURL(/\/habits\/[0-9a-f-]{36}$/);
    await page.getByRole('status').filter({ hasText: 'Created habit tap three dots' }).waitFor();
    const uuid = new URL(page.url()).pathname.split('/')[2]!;

    const saved = await getHabit(uuid);
    expect(saved.pixels).toEqual(placed.map((p) => ({ x: p.at.x * SCALE, y: p.at.y * SCALE, rgbHex: p.rgbHex, deviation: 0 })));
    expect(saved.shapes).toEqual([{ type: ShapeType.SHAPE_TYPE_CIRCLE, x: 100 * SCALE - 100, y: 450 * SCALE - 100, width: 200, height: 200, size: 1, rgbHex: 'FFAA00' }]);
    expect([saved.accountLogicalId, saved.priority, saved.isActive]).toEqual([logicalId, 40, true]);

    await replica.synced();
    await daemon.syncOnce();
    const db = new Database(path.join(dir, 'titanbotd.sqlite'), { readonly: true });
    const held = db
      .prepare(
        `select d.x, d.y, c.rgb_hex from habits h join habit_pixels hp on hp.habit_uuid = h.uuid join pixels p on p.uuid = hp.pixel_uuid
         join dots d on d.uuid = p.dot_uuid join colors c on c.uuid = p.color_uuid where h.action = ? order by d.x`,
      )
      .all('tap three dots');
    const heldShapes = db.prepare(`select s.type, s.x, s.y, s.rgb_hex from habits h join habit_shapes hs on hs.habit_uuid = h.uuid join shapes s on s.uuid = hs.shape_uuid where h.action = ?`).all('tap three dots');
    db.close();
    expect(held).toEqual(saved.pixels.map((p) => ({ x: p.x, y: p.y, rgb_hex: p.rgbHex })));
    expect(heldShapes).toEqual([{ type: 'circle', x: 200, y: 1250, rgb_hex: 'FFAA00' }]);

    const shot = PNG.sync.read(await canvas.screenshot());
    await page.screenshot({ path: path.join(ARTIFACTS, 'habit-drawn.png'), fullPage: true });
    if (process.env.UPDATE_REFERENCE_IMAGES === '1' || !existsSync(REFERENCE)) {
      await writeFile(REFERENCE, PNG.sync.write(shot));
      throw new Error(`wrote ${REFERENCE}: look at it, commit it and run again`);
    }
    const reference = PNG.sync.read(await readFile(REFERENCE));
    expect([shot.width, shot.height]).toEqual([reference.width, reference.height]);
    const differing = pixelmatch(shot.data, reference.data, undefined, shot.width, shot.height, { threshold: 0.1 });
    // Anti-aliasing may differ at a few edges; a misplaced or recoloured element differs in hundreds.
    expect(differing).toBeLessThan(shot.width * shot.height * 0.002);
    await context.close();
  });

  it('an edit conflict: a change made through the API while the page holds the habit is shown, and saving keeps both', async () => {
    const created = await api.createHabit({ accountLogicalId: logicalId, action: 'conflict me', priority: 10, pixels: [{ x: 120, y: 300, rgbHex: 'FF0000', deviation: 0 }] });
    const { context, page } = await signedIn('ada', `${consoleUrl}/habits/${created.uuid}`);
    const canvas = page.getByRole('img', { name: /on the daemon's screen/ });
    const box = (await canvas.boundingBox())!;
    // Dragged by the pointer from (120, 300) to (180, 360) on the daemon's screen.
    await page.mouse.move(box.x + 40, box.y + 100);
    await page.mouse.down();
    await page.mouse.move(box.x + 50, box.y + 110);
    await page.mouse.move(box.x + 60, box.y + 120);
    await page.mouse.up();
    expect(await page.getByLabel('Pixel 1 x', { exact: true }).inputValue()).toBe('180');
    expect(await page.getByLabel('Pixel 1 y', { exact: true }).inputValue()).toBe('360');

    await api.updateHabit({ uuid: created.uuid, priority: 77 }, ['priority']);
    await reviewAndSave(page, /Review and save 1 change/, 'Save');
    const conflict = page.locator('.conflict');
    await conflict.waitFor();
    expect(await conflict.textContent()).toContain('They changed Priority: 10 → 77');
    expect(await conflict.textContent()).toContain('You changed Pixels: pixel at 120, 300');
    const meanwhile = await getHabit(created.uuid);
    expect([meanwhile.priority, meanwhile.pixels[0]]).toEqual([77, { x: 120, y: 300, rgbHex: 'FF0000', deviation: 0 }]);

    await page.getByRole('button', { name: 'Keep both: apply my changes to their version' }).click();
    expect(await page.getByLabel('Priority', { exact: true }).inputValue()).toBe('77');
    await reviewAndSave(page, /Review and save 1 change/, 'Save');
    await page.getByRole('status').filter({ hasText: 'Saved habit conflict me' }).waitFor();
    const both = await getHabit(created.uuid);
    expect([both.priority, both.pixels]).toEqual([77, [{ x: 180, y: 360, rgbHex: 'FF0000', deviation: 0 }]]);
    await context.close();
  });

  it("validation: an out-of-range coordinate, a bad colour and an unknown shape type are shown at their fields with the write service's messages, and nothing is saved", async () => {
    const before = await scopeHabitCount();
    const { context, page } = await signedIn('ada', `${consoleUrl}/habits/new?scope=${logicalId}`);
    await page.getByLabel('Action', { exact: true }).fill('never saved');
    await page.getByRole('button', { name: 'Add pixel' }).click();
    await page.getByLabel('Pixel 1 x', { exact: true }).fill('0');
    await page.getByLabel('Pixel 1 colour', { exact: true }).fill('GG00ZZ');
    await page.getByRole('button', { name: 'Add shape' }).click();
    await reviewAndSave(page, /Review and create/, 'Create');
    await page.getByRole('alert').filter({ hasText: 'must be >= 1' }).waitFor();
    expect(await errorAt(page, 'Pixel 1 x')).toBe('must be >= 1');
    expect(await errorAt(page, 'Pixel 1 colour')).toBe('must be six hex digits');
    expect(await errorAt(page, 'Shape 1 type')).toBe('must be one of rectangle, circle, triangle, irregular');
    expect(new URL(page.url()).pathname).toBe('/habits/new');
    expect(await scopeHabitCount()).toBe(before);
    await context.close();
  });
});

describe('daemon tokens', () => {
  it('a token issued on the page is shown once, works for titanbot-daemon sync --once, is in no later page or answer; revoked on the page, the daemon is refused', async () => {
    const { context, page } = await signedIn('ada', `${consoleUrl}/devices/${device.uuid}`);
    await page.getByRole('button', { name: 'Issue a token' }).click();
    const token = await page.getByRole('textbox', { name: 'Token', exact: true }).inputValue();
    expect(token).toMatch(/^tbd_/);
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    await replica.synced();
    expect(await daemonSyncOnce()).toBe(0);

    await page.getByRole('button', { name: 'Done' }).click();
    const answers = recordAnswers(page);
    await page.reload();
    await page.getByRole('heading', { name: 'Daemon tokens' }).waitFor();
    await page.getByRole('cell', { name: 'issued' }).first().waitFor();
    expect(await page.content()).not.toContain(token);
    await page.goto(`${consoleUrl}/tokens?device_uuid=${device.uuid}`);
    // Its row names it by its shown prefix alone.
    const row = page.getByRole('row').filter({ hasText: token.slice(0, SHOWN_PREFIX_CHARS) });
    await row.waitFor();
    expect(await page.content()).not.toContain(token);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.join('\n')).not.toContain(token);

    await row.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke' }).filter({ visible: true });
    expect(await dialog.textContent()).toContain(`of device ${device.uuid}`);
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('status').filter({ hasText: /^Revoked token/ }).waitFor();
    await replica.synced();
    expect(await daemonSyncOnce()).toBe(1);
    await context.close();
  });

  it('a token-issuer is offered the tokens page alone, issues there, and is refused anything else', async () => {
    const { context, page } = await signedIn('tia', `${consoleUrl}/`);
    await page.waitForURL(`${consoleUrl}/tokens`);
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents()).toEqual(['Tokens']);
    await page.getByText('Issue a daemon token', { exact: true }).click();
    await page.getByLabel('Device (uuid)').first().fill(device.uuid);
    await page.getByRole('button', { name: 'Issue a token', exact: true }).click();
    expect(await page.getByRole('textbox', { name: 'Token', exact: true }).inputValue()).toMatch(/^tbd_/);
    const forged = await page.evaluate(async (uuid) => {
      const res = await fetch('/titanbot.admin.v1.DeviceService/UpdateDevice', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'connect-protocol-version': '1' },
        body: JSON.stringify({ device: { uuid, isActive: false }, updateMask: 'isActive' }),
      });
      return res.status;
    }, device.uuid);
    expect(forged).toBe(403);
    await context.close();
  });
});

describe('secrets', () => {
  it("a viewer never receives an account's Google password or a device's private key, in any answer of any page", async () => {
    const password = `pw-${randomUUID()}`;
    const account = await api.createAccount(uniqueInt(), password);
    const devices = admin(DeviceServiceClient);
    const ssh = await call(devices, devices.getDeviceSsh, { deviceUuid: device.uuid }, sys.write.adminToken);
    const keyBody = ssh.privateKey.split('\n')[1]!;
    expect(keyBody.length).toBeGreaterThan(20);

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const answers = recordAnswers(page);
    await signIn(page, `${consoleUrl}/accounts?logical_id=${account.logicalId}`, 'vic', PEOPLE.vic.password);
    await page.getByRole('cell', { name: account.googleLogin }).waitFor();
    expect(await page.getByText('New account').count()).toBe(0);
    await page.getByRole('link', { name: String(account.logicalId) }).click();
    await page.getByRole('heading', { name: new RegExp(`^${account.logicalId}`) }).waitFor();
    expect(await page.getByLabel('Google password').inputValue()).toBe('');
    expect(await page.getByLabel('First name').isDisabled()).toBe(true);
    await page.goto(`${consoleUrl}/devices/${device.uuid}`);
    await page.getByText(ssh.publicKey.slice(0, 40)).waitFor();
    await page.goto(`${consoleUrl}/devices?physical_id=${device.physicalId}`);
    await page.getByRole('cell').first().waitFor();

    const all = answers.join('\n');
    // The pages did receive the account and the device's keys: the check looks at real answers.
    expect(all).toContain(account.googleLogin);
    expect(all).toContain(ssh.publicKey.split(' ')[1]);
    expect(all).not.toContain(password);
    expect(all).not.toContain(keyBody);
    expect(await page.getByRole('button').allTextContents()).toEqual(['Sign out', 'Filter']);
    await context.close();
  });

  it("an admin types an account's Google password on its page: it is stored, and never sent back to the browser", async () => {
    const account = await api.createAccount();
    const { context, page } = await signedIn('ada', `${consoleUrl}/accounts/${account.uuid}`);
    const answers = recordAnswers(page);
    const password = `typed-${randomUUID()}`;
    await page.getByLabel('Google password').fill(password);
    await page.getByRole('button', { name: 'Save 1 change' }).click();
    await page.getByRole('status').filter({ hasText: `Saved account ${account.logicalId}` }).waitFor();
    const accounts = admin(AccountServiceClient);
    expect((await call(accounts, accounts.getAccount, { uuid: account.uuid }, sys.write.adminToken)).googlePassword).toBe(password);
    await page.reload();
    await page.getByLabel('Google password').waitFor();
    expect(await page.getByLabel('Google password').inputValue()).toBe('');
    expect(answers.join('\n')).not.toContain(password);
    await context.close();
  });
});

describe('the other resources', () => {
  it('legions: created from the form, edited with a conflict kept both ways, deleted after a confirmation naming it, each with a toast', async () => {
    const { context, page } = await signedIn('ada', `${consoleUrl}/legions`);
    await page.getByText('New legion', { exact: true }).click();
    const title = `Legion ${uniqueInt()}`;
    await page.getByLabel('Title', { exact: true }).fill(title);
    await page.getByLabel('Pay day of month').fill('15');
    await page.getByRole('button', { name: 'Create legion' }).click();
    await page.getByRole('status').filter({ hasText: `Created legion ${title}` }).waitFor();
    await page.getByRole('heading', { name: title, level: 1 }).waitFor();
    const uuid = new URL(page.url()).pathname.split('/')[2]!;

    await page.getByLabel('Title', { exact: true }).fill(`${title} renamed`);
    const legions = admin(LegionServiceClient);
    await call(legions, legions.updateLegion, { legion: { uuid, title, extTitle: 'set elsewhere', etag: '' }, updateMask: ['ext_title'] }, sys.write.adminToken);
    await page.getByRole('button', { name: 'Save 1 change' }).click();
    const conflict = page.locator('.conflict');
    await conflict.waitFor();
    expect(await conflict.textContent()).toContain('They changed Extended title: (empty) → set elsewhere');
    await page.getByRole('button', { name: 'Keep both: apply my changes to their version' }).click();
    await page.getByRole('button', { name: 'Save 1 change' }).click();
    await page.getByRole('status').filter({ hasText: `Saved legion ${title} renamed` }).waitFor();
    await page.getByRole('heading', { name: `${title} renamed`, level: 1 }).waitFor();
    expect(await call(legions, legions.getLegion, { uuid }, sys.write.adminToken)).toMatchObject({ title: `${title} renamed`, extTitle: 'set elsewhere', payDayOfMonth: 15 });

    await page.getByRole('button', { name: 'Delete legion' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete legion' });
    expect(await dialog.textContent()).toContain(`Delete legion ${title} renamed? Its accounts keep their data and belong to no legion.`);
    await dialog.getByRole('button', { name: 'Delete legion' }).click();
    await page.getByRole('status').filter({ hasText: `Deleted legion ${title} renamed` }).waitFor();
    await page.waitForURL(`${consoleUrl}/legions`);
    await context.close();
  });

  it('logs: searched by device and text, newest first, and cleared after a confirmation naming what goes', async () => {
    const replicaDaemon = replica.daemon();
    const token = (await api.issueToken(device.uuid)).token;
    await replica.synced();
    const lines = ['console line 1', 'console line 2', 'console line 3'];
    await call(replicaDaemon, replicaDaemon.writeLogs, { lines: lines.map((line, i) => ({ line, logTime: new Date(Date.now() - (3 - i) * 1000) })), requestId: randomUUID() }, token);
    const { context, page } = await signedIn('ada', `${consoleUrl}/logs?device_uuid=${device.uuid}`);
    const cells = page.locator('.logs tbody td code');
    await vi.waitFor(async () => expect(await cells.allTextContents()).toEqual([...lines].reverse()), { timeout: 10_000, interval: 100 });
    await page.getByLabel('Line contains').fill('line 2');
    await page.getByRole('button', { name: 'Filter' }).click();
    await vi.waitFor(async () => expect(await cells.allTextContents()).toEqual(['console line 2']));
    expect(new URL(page.url()).searchParams.get('contains')).toBe('line 2');

    await page.getByRole('button', { name: 'Clear logs' }).click();
    const dialog = page.getByRole('dialog', { name: 'Clear logs' });
    expect(await dialog.textContent()).toContain(`Delete every log line of device ${device.uuid}?`);
    await dialog.getByRole('button', { name: 'Clear logs' }).click();
    await page.getByRole('status').filter({ hasText: `Deleted 3 log lines of device ${device.uuid}` }).waitFor();
    await page.locator('main p', { hasText: 'No log line matches.' }).waitFor();
    await context.close();
  });
});

describe('every page', () => {
  it('a rollout: each changed habit drawn before and after, the steps with their figures; an admin advances and aborts it, a viewer only looks', { timeout: 60_000 }, async () => {
    const habit = await api.createHabit({ accountLogicalId: logicalId, action: 'tap before', pixels: [{ x: 100, y: 100, rgbHex: 'FF0000', deviation: 1 }] });
    const rollouts = admin(RolloutServiceClient);
    const key = sys.write.adminToken;
    const created = await call(
      rollouts,
      rollouts.createRollout,
      {
        changes: [{ change: { $case: 'update', value: { habit: { uuid: habit.uuid, action: 'tap after', pixels: [{ x: 900, y: 1500, rgbHex: '00FF00', deviation: 2 }], shapes: [], etag: '' }, updateMask: ['action', 'pixels'] } } }],
        description: 'move the tap',
        requestId: '',
        validateOnly: false,
      },
      key,
    );
    await call(rollouts, rollouts.startRollout, { uuid: created.uuid, etag: '', gates: undefined, steps: [{ percent: 50, deviceUuids: [], minDuration: undefined }, { percent: 100, deviceUuids: [], minDuration: undefined }] }, key);

    const { context, page } = await signedIn('ada', `${consoleUrl}/rollouts`);
    await page.getByRole('link', { name: 'move the tap' }).click();
    await page.waitForURL(`${consoleUrl}/rollouts/${created.uuid}`);
    await expect.poll(() => page.getByTestId('rollout-state').textContent()).toContain('Running');
    // The preview: the habit drawn before and after, the field that changes, what a daemon of the scope downloads.
    await page.getByRole('img', { name: `before: habit ${habit.uuid}` }).waitFor();
    await page.getByRole('img', { name: `after: habit ${habit.uuid}` }).waitFor();
    const actionRow = page.getByRole('row', { name: /^action/ });
    expect(await actionRow.locator('del').textContent()).toBe('tap before');
    expect(await actionRow.locator('ins').textContent()).toBe('tap after');
    await page.getByRole('region', { name: 'Scopes' }).getByRole('row', { name: new RegExp(`^account ${logicalId} 2 `) }).waitFor();
    // The steps, the first current with its live figures (two devices of the scope reported).
    const steps = page.getByRole('region', { name: 'Steps' }).getByRole('row');
    expect(await steps.count()).toBe(3);
    expect(await steps.nth(1).getAttribute('aria-current')).toBe('step');

    // A viewer sees the same page without a control.
    const viewer = await signedIn('vic', `${consoleUrl}/rollouts/${created.uuid}`);
    await expect.poll(() => viewer.page.getByTestId('rollout-state').textContent()).toContain('Running');
    expect(await viewer.page.getByRole('group', { name: 'Rollout actions' }).getByRole('button').count()).toBe(0);
    await viewer.context.close();

    await page.getByRole('button', { name: 'Advance to 100 %' }).click();
    await page.getByRole('status').filter({ hasText: 'Rollout advanced' }).waitFor();
    await expect.poll(async () => steps.nth(2).getAttribute('aria-current')).toBe('step');
    await page.getByRole('button', { name: 'Abort', exact: true }).click();
    await page.getByRole('dialog', { name: 'Abort' }).getByRole('button', { name: 'Abort' }).click();
    await page.getByRole('status').filter({ hasText: 'Rollout aborted' }).waitFor();
    expect((await call(rollouts, rollouts.getRollout, { uuid: created.uuid }, key)).state).toBe(RolloutState.ROLLOUT_STATE_ABORTED);
    await expect.poll(() => page.getByTestId('rollout-state').textContent()).toContain('Aborted');
    await context.close();
  });

  it('passes the accessibility check and fits at 1280 x 800 and at a 390 px wide phone', { timeout: 120_000 }, async () => {
    const account = await api.createAccount();
    const habit = await api.createHabit({ accountLogicalId: logicalId, action: 'every page', pixels: [{ x: 500, y: 500, rgbHex: '123456', deviation: 3 }] });
    const legions = admin(LegionServiceClient);
    const legion = await call(legions, legions.createLegion, { legion: { title: 'Every page', etag: '', uuid: '' }, requestId: '', legionId: '', validateOnly: false }, sys.write.adminToken);
    const dates = admin(EmpireDateServiceClient);
    const empireDate = await call(dates, dates.createEmpireDate, { empireDate: { uuid: '', date: new Date(Date.UTC(3000 + (uniqueInt() % 5000), 0, 1)), etag: '' }, requestId: '', empireDateId: '', validateOnly: false }, sys.write.adminToken);
    const rollouts = admin(RolloutServiceClient);
    const rollout = await call(
      rollouts,
      rollouts.createRollout,
      { changes: [{ change: { $case: 'update', value: { habit: { uuid: habit.uuid, comment: 'every page', pixels: [], shapes: [], etag: '' }, updateMask: ['comment'] } } }], description: 'every page', requestId: '', validateOnly: false },
      sys.write.adminToken,
    );
    const pages = {
      fleet: '/',
      devices: '/devices',
      device: `/devices/${device.uuid}`,
      accounts: '/accounts',
      account: `/accounts/${account.uuid}`,
      habits: `/habits?scope=${logicalId}`,
      habit: `/habits/${habit.uuid}`,
      'new-habit': `/habits/new?scope=${logicalId}`,
      legions: '/legions',
      legion: `/legions/${legion.uuid}`,
      'empire-dates': '/empire-dates',
      'empire-date': `/empire-dates/${empireDate.uuid}`,
      tokens: '/tokens',
      logs: '/logs',
      audit: '/audit',
      keys: '/keys',
      rollouts: '/rollouts',
      rollout: `/rollouts/${rollout.uuid}`,
    };
    for (const viewport of [
      { width: 1280, height: 800 },
      { width: 390, height: 844 },
    ]) {
      const { context, page } = await signedIn('ada', `${consoleUrl}/`, viewport);
      for (const [name, url] of Object.entries(pages)) {
        await page.goto(`${consoleUrl}${url}`);
        await page.locator('main h1').first().waitFor();
        await vi.waitFor(async () => expect([name, await page.locator('main [aria-busy="true"]').count()]).toEqual([name, 0]), { timeout: 10_000, interval: 100 });
        await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${viewport.width}.png`), fullPage: true });
        expect([name, await seriousViolations(page)]).toEqual([name, []]);
        expect([name, (await page.locator('html').evaluate((html) => html.scrollWidth)) <= viewport.width]).toEqual([name, true]);
      }
      await context.close();
    }
  });
});
