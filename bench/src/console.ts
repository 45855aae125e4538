import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { startDevProvider } from '@titanbot/console/dev-provider';
import { buildWeb } from '@titanbot/console/web-build';
import { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { freePort } from '@titanbot/service-kit/free-port';
import { unaryCall } from '@titanbot/service-kit/grpc-client';
import pg from 'pg';
import { chromium } from 'playwright-core';
import type { Benchmark, BenchContext } from './lib/context.js';
import { runLoad, type LoadResult } from './lib/peer.js';
import { printJson, printTable } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import { startNode, type ServiceProcess } from './lib/system.js';
import type { AdminCallsConfig } from './load/admin-calls.js';
import type { ConsoleCallsConfig } from './load/console-calls.js';

const AUDIENCE = 'urn:titanbot:admin';
const SECRET = 'bench-console-secret';
const PASSWORD = 'bench-operator-password';
/** Each path is measured this many times, alternating, so drift on a shared machine hits both alike. */
const ROUNDS = 5;
/** Devices whose statuses the fleet page reads. */
const DEVICES = 10_000;
/** The fleet page's table size (services/console/web/fleet.tsx). */
const PAGE_SIZE = 50;
/** Times the fleet page's data calls are made, after one cold call. */
const PAGE_LOADS = 30;
/** Habits of the scope whose list is rendered in Chromium, and that scope (clear of the fixture's 1..1,000). */
const HABITS = 2_000;
const HABIT_SCOPE = 424_242;

/**
 * Signs in at the console as a browser would, without one: follows the redirects to the
 * development provider, posts its sign-in form, and follows the redirects back. Returns the
 * session cookie (`name=value`).
 */
async function signIn(origin: string, login: string, password: string): Promise<string> {
  const jar = new Map<string, string>();
  let url = `${origin}/auth/login?return_to=%2F`;
  let form: URLSearchParams | undefined;
  for (let step = 0; step < 12; step++) {
    const res = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form?.toString(),
    });
    form = undefined;
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0]!;
      jar.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
    }
    const session = jar.get('__Host-titanbot-session');
    if (session && new URL(url).origin === origin) return `__Host-titanbot-session=${session}`;
    const location = res.headers.get('location');
    if (location) {
      url = new URL(location, url).href;
      continue;
    }
    const action = /<form method="post" action="([^"]+)"/.exec(await res.text())?.[1];
    if (!action) throw new Error(`sign-in stopped at ${url} (${res.status})`);
    url = new URL(action, url).href;
    form = new URLSearchParams({ login, password });
  }
  throw new Error('sign-in did not finish');
}

/** 10,000 devices with a status each, as replicas report them (the fleet page's worst case for paging). */
async function reportDevices(ctx: BenchContext): Promise<void> {
  const db = new pg.Client({ connectionString: ctx.system.databaseUrl });
  await db.connect();
  const uuids: string[] = (await db.query(`insert into devices (uuid, physical_id) select gen_random_uuid(), 900000000 + g from generate_series(1, $1) g returning uuid`, [DEVICES])).rows.map(
    (r: { uuid: string }) => r.uuid,
  );
  await db.end();
  const feed = new ChangeFeedServiceClient(ctx.system.write.address, credentials.createInsecure(), { 'grpc.max_send_message_length': 16 * 1024 * 1024 });
  const md = new Metadata();
  md.set('x-api-key', ctx.system.readerToken);
  const now = new Date();
  const statuses = uuids.map((deviceUuid, i) => ({ deviceUuid, logicalId: 1, heldVersion: i % 10 ? 'v2' : 'v1', heldSha256: 'ab'.repeat(32), failure: 0, failureMessage: '', lastContactTime: now }));
  await unaryCall(feed, feed.reportDeviceStatuses, { replica: 'bench', statuses, scopeVersions: [{ logicalId: 1, version: 'v2', since: now }], rolloutVersions: [] }, md, { deadline: Date.now() + 60_000 });
  feed.close();
}

/** HABITS habits of HABIT_SCOPE with 3 of the fixture's pixels each, straight into PostgreSQL (as the fixture loads). */
async function insertScopeHabits(ctx: BenchContext): Promise<void> {
  const db = new pg.Client({ connectionString: ctx.system.databaseUrl });
  await db.connect();
  try {
    await db.query('begin');
    const { rows } = await db.query(
      `insert into habits (uuid, account_logical_id, priority, action, comment, is_interruption, is_active, updated_at)
       select gen_random_uuid(), $2, g % 100, 'tap ' || g, 'bench habit', true, g % 7 <> 0, now() from generate_series(1, $1) g returning uuid`,
      [HABITS, HABIT_SCOPE],
    );
    await db.query(
      `insert into habit_pixels (habit_uuid, pixel_uuid, position)
       select h.uuid, p.uuid, k from unnest($1::uuid[]) with ordinality h(uuid, n)
       cross join generate_series(0, 2) k
       join (select uuid, row_number() over (order by uuid) - 1 as n from pixels) p on p.n = (h.n * 7 + k * 1013) % (select count(*) from pixels)`,
      [rows.map((r: { uuid: string }) => r.uuid)],
    );
    await db.query('commit');
  } finally {
    await db.end();
  }
}

/**
 * The habits list of HABIT_SCOPE in Chromium (Debian's, through playwright-core), signed in as
 * `login`: ms from the last ListHabits answer to the frame after the list is on screen (the page's
 * `habits-list-shown` User Timing mark), then the long tasks (> 50 ms, Long Tasks API) while the
 * page is scrolled to its end one wheel step per frame.
 */
async function habitsListInChromium(origin: string, login: string, password: string): Promise<{ renderMs: number; listCalls: number; longTasks: number; longestTaskMs: number; scrolledPx: number }> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${origin}/habits?scope=${HABIT_SCOPE}`);
    await page.getByLabel('Login').fill(login);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.habit-list li').first().waitFor({ timeout: 120_000 });
    // Browser-side snippets are strings: this package is typed for Node, not the DOM.
    await page.waitForFunction("performance.getEntriesByName('habits-list-shown').length > 0");
    const render = await page.evaluate<{ renderMs: number; listCalls: number }>(`(() => {
      const answers = performance.getEntriesByType('resource').filter((e) => e.name.includes('HabitService/ListHabits')).map((e) => e.responseEnd);
      return { renderMs: performance.getEntriesByName('habits-list-shown')[0].startTime - Math.max(...answers), listCalls: answers.length };
    })()`);
    await page.evaluate("window.longTasks = []; new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' })");
    await page.mouse.move(640, 400);
    const atEnd = "scrollY + innerHeight >= document.documentElement.scrollHeight - 1";
    while (!(await page.evaluate<boolean>(atEnd))) {
      await page.mouse.wheel(0, 400);
      await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => resolve(null)))');
    }
    const tasks = await page.evaluate<number[]>('window.longTasks');
    return { ...render, longTasks: tasks.length, longestTaskMs: Math.max(0, ...tasks), scrolledPx: await page.evaluate<number>('scrollY') };
  } finally {
    await browser.close();
  }
}

/** One Connect call to the console (JSON), timed (ms). */
async function consoleCall(origin: string, cookie: string, method: string, body: unknown): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${origin}/titanbot.admin.v1.${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'connect-protocol-version': '1', origin, cookie },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${method}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return performance.now() - started;
}

/**
 * Benchmark: what the operator console costs and weighs. (1) One admin call (GetDevice, one at a
 * time) straight to the write service with a bearer token, and the same call through the console
 * (Connect JSON from a session, forwarded over gRPC with the operator's token): the latency the
 * console adds (target: at most 1 ms at p50 on loopback) and its CPU per call; ROUNDS alternating
 * rounds. (2) The fleet page's data calls (GetFleetSummary and the first page of
 * ListDeviceStatuses, together, as the page makes them) through the console with 10,000 devices
 * reported (target: under 200 ms). (3) The frontend's JavaScript and CSS, gzip (target: at most
 * 300 KB). (4) The habits list of a scope with 2,000 habits in Chromium: its first screen after the
 * data arrives (target: under 300 ms) and long tasks while scrolling (target: none over 50 ms).
 */
export const consoleBench: Benchmark = {
  name: 'console',
  async run(ctx) {
    const origin = `http://127.0.0.1:${await freePort()}`;
    const idp = await startDevProvider({
      issuer: 'http://127.0.0.1:0',
      audience: AUDIENCE,
      rolesClaim: 'roles',
      people: { bench: { password: PASSWORD, roles: ['admin'] } },
      clients: [{ clientId: 'titanbot-console', clientSecret: SECRET, redirectUri: `${origin}/auth/callback`, postLogoutRedirectUri: `${origin}/auth/signed-out` }],
      machines: { bench: { secret: SECRET, roles: ['admin'] } },
    });
    const started: ServiceProcess[] = [];
    const webDir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-bench-web-'));
    try {
      const write = await ctx.system.startWriteService({ OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE });
      started.push(write);
      const consoleProcess = startNode('services/console/dist/main.js', {
        CONSOLE_HTTP_ADDR: new URL(origin).host,
        WRITE_SERVICE_URL: write.address,
        OIDC_ISSUER: idp.issuer,
        OIDC_AUDIENCE: AUDIENCE,
        CONSOLE_OIDC_CLIENT_SECRET: SECRET,
        LOG_LEVEL: 'warn',
      });
      const consoleExited = new Promise((resolve) => consoleProcess.once('exit', resolve));
      started.push({
        address: origin,
        pid: consoleProcess.pid!,
        child: consoleProcess,
        async stop() {
          consoleProcess.kill('SIGTERM');
          await consoleExited;
        },
      });
      for (let i = 0; !(await fetch(`${origin}/healthz`).then((r) => r.ok, () => false)); i++) {
        if (i > 300) throw new Error('the console did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      const cookie = await signIn(origin, 'bench', PASSWORD);
      const tokenRes = await fetch(`${idp.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`bench:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'titanbot.api', resource: AUDIENCE }).toString(),
      });
      const jwt = ((await tokenRes.json()) as { access_token: string }).access_token;

      // (1) The same call, direct and through the console, one at a time, alternating.
      const window = { concurrency: 1, warmupMs: 1_000, durationMs: 4_000, deviceUuid: ctx.fleet.deviceUuid };
      const direct: { load: LoadResult; cpuSeconds: number }[] = [];
      const forwarded: { load: LoadResult; cpuSeconds: number }[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        direct.push(await runLoad('bench/dist/load/admin-calls.js', { ...window, target: write.address, header: ['authorization', `Bearer ${jwt}`] } satisfies AdminCallsConfig, [write.pid], false));
        forwarded.push(await runLoad('bench/dist/load/console-calls.js', { ...window, origin, cookie } satisfies ConsoleCallsConfig, [consoleProcess.pid!], false));
      }
      const median = (xs: number[]) => percentile(Float64Array.from(xs), 50);
      const side = (runs: typeof direct) => ({
        p50Ms: round(median(runs.map((r) => r.load.p50Ms)), 3),
        p99Ms: round(median(runs.map((r) => r.load.p99Ms)), 3),
        rps: Math.round(median(runs.map((r) => r.load.rps))),
        cpuUsPerCall: round((runs.reduce((n, r) => n + r.cpuSeconds, 0) * 1e6) / Math.max(1, runs.reduce((n, r) => n + r.load.calls, 0)), 1),
        clientCpuUsPerCall: round((runs.reduce((n, r) => n + r.load.generatorCpuSeconds, 0) * 1e6) / Math.max(1, runs.reduce((n, r) => n + r.load.calls, 0)), 1),
        errors: runs.reduce((n, r) => n + r.load.errors, 0),
      });
      const d = side(direct);
      const f = side(forwarded);
      for (const r of [...direct, ...forwarded]) if (r.load.firstError) process.stderr.write(`console: ${r.load.firstError}\n`);

      // (2) The fleet page's data with 10,000 devices reported.
      await reportDevices(ctx);
      const pageData = () =>
        Promise.all([consoleCall(origin, cookie, 'FleetService/GetFleetSummary', {}), consoleCall(origin, cookie, 'FleetService/ListDeviceStatuses', { pageSize: PAGE_SIZE })]).then((t) => Math.max(...t));
      const cold = await pageData();
      const warm: number[] = [];
      for (let i = 0; i < PAGE_LOADS; i++) warm.push(await pageData());

      // (4) A scope of 2,000 habits, listed in Chromium.
      await insertScopeHabits(ctx);
      const habits = await habitsListInChromium(origin, 'bench', PASSWORD);

      // (3) The frontend as `npm run build` makes it.
      const files = await buildWeb(webDir);
      const gzip = files.reduce((n, file) => n + file.gzipBytes, 0);

      printTable(`console (1): DeviceService.GetDevice one call at a time, direct (bearer JWT) and through the console (Connect JSON from a session), ${ROUNDS} alternating rounds of 4 s; medians of the rounds`, [
        { path: 'direct to the write service (grpc-js client)', 'p50 ms': d.p50Ms, 'p99 ms': d.p99Ms, 'calls/s': d.rps, 'server CPU µs/call': `${d.cpuUsPerCall} (write)`, 'client CPU µs/call': d.clientCpuUsPerCall, errors: d.errors },
        { path: 'through the console (fetch client)', 'p50 ms': f.p50Ms, 'p99 ms': f.p99Ms, 'calls/s': f.rps, 'server CPU µs/call': `${f.cpuUsPerCall} (console)`, 'client CPU µs/call': f.clientCpuUsPerCall, errors: f.errors },
        { path: 'added by the console (target ≤ 1 ms p50)', 'p50 ms': round(f.p50Ms - d.p50Ms, 3), 'p99 ms': round(f.p99Ms - d.p99Ms, 3), 'calls/s': '', 'server CPU µs/call': '', 'client CPU µs/call': '', errors: '' },
      ]);
      printTable(`console (2): the fleet page's data calls through the console (summary and first ${PAGE_SIZE} devices, together) with ${DEVICES} devices reported`, [
        { call: 'first (cold)', ms: round(cold, 1) },
        { call: `p50 of ${PAGE_LOADS}`, ms: round(median(warm), 1) },
        { call: `max of ${PAGE_LOADS} (target < 200 ms)`, ms: round(Math.max(...warm), 1) },
      ]);
      printTable('console (3): the frontend (target ≤ 300 KB gzip)', [...files.map((file) => ({ file: file.path, bytes: file.bytes, 'gzip bytes': file.gzipBytes })), { file: 'total', bytes: files.reduce((n, x) => n + x.bytes, 0), 'gzip bytes': gzip }]);
      printTable(`console (4): the habits list of a scope with ${HABITS} habits in Chromium (1280 x 800)`, [
        { figure: 'first screen after the data (target < 300 ms)', value: `${round(habits.renderMs, 1)} ms (${habits.listCalls} ListHabits calls)` },
        { figure: 'long tasks while scrolling to the end (target: none over 50 ms)', value: `${habits.longTasks}, longest ${round(habits.longestTaskMs, 1)} ms, over ${habits.scrolledPx} px` },
      ]);
      printJson('console', {
        direct: d,
        throughConsole: f,
        addedP50Ms: round(f.p50Ms - d.p50Ms, 3),
        fleetPage: { devices: DEVICES, coldMs: round(cold, 1), p50Ms: round(median(warm), 1), maxMs: round(Math.max(...warm), 1) },
        frontend: { files, gzipBytes: gzip },
        habitsList: { habits: HABITS, ...habits },
      });
    } finally {
      for (const s of started.reverse()) await s.stop();
      await idp.stop();
      await rm(webDir, { recursive: true, force: true });
    }
  },
};
