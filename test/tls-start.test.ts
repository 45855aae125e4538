/**
 * The README's TLS set-up, as a newcomer runs it: `scripts/dev-ca.sh certs`, then `npm start`'s
 * entry point with TLS_CERT_FILE and TLS_KEY_FILE only. Both services must turn SERVING (the
 * replica trusts the CA beside the certificate), the console must serve HTTPS with HSTS, the
 * banner must say how to call them with `--ca-file`, and titanctl and titanbot-daemon must work
 * with it.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, inject, it, vi } from 'vitest';
import { freePort } from '@titanbot/service-kit/free-port';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

let dir: string;
let started: ReturnType<typeof spawn> | undefined;

beforeAll(async () => {
  // The services and CLIs run from their built output, as `npm start` runs them.
  await run('npx', ['tsc', '-b', 'services/write', 'services/read', 'services/console', 'packages/titanctl', 'packages/daemon-client'], { cwd: ROOT });
  await run(process.execPath, ['services/console/dist/web-build.js'], { cwd: ROOT });
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-tls-start-'));
}, 120_000);
afterAll(async () => {
  if (started && started.exitCode === null) {
    process.kill(-started.pid!, 'SIGTERM');
    await once(started, 'exit');
  }
  await rm(dir, { recursive: true, force: true });
});

it('starts both services SERVING under TLS from the development CA, and says how to reach them', async () => {
  const certs = path.join(dir, 'certs');
  await run(path.join(ROOT, 'scripts/dev-ca.sh'), [certs]);
  const dataDir = path.join(dir, 'data');
  // The test database is shared with the other suites: use the run's data key.
  await mkdir(path.join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
  await copyFile(path.join(inject('dataKeyDir'), 'data-key.json'), path.join(dataDir, 'secrets', 'data-key.json'));
  const writeAddress = `127.0.0.1:${await freePort()}`;
  const readAddress = `127.0.0.1:${await freePort()}`;
  const consoleAddress = `127.0.0.1:${await freePort()}`;
  const env = {
    ...process.env,
    DATABASE_URL: inject('databaseUrl'),
    DATA_DIR: dataDir,
    WRITE_GRPC_ADDR: writeAddress,
    READ_GRPC_ADDR: readAddress,
    CONSOLE_HTTP_ADDR: consoleAddress,
    DEV_OIDC_ISSUER: `http://127.0.0.1:${await freePort()}`,
    TLS_CERT_FILE: path.join(certs, 'server.pem'),
    TLS_KEY_FILE: path.join(certs, 'server-key.pem'),
    LOG_LEVEL: 'warn',
  };
  started = spawn(process.execPath, ['services/write/dist/start.js'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let banner = '';
  started.stdout!.on('data', (chunk: Buffer) => (banner += chunk.toString('utf8')));
  started.stderr!.resume();

  const ca = path.join(certs, 'ca.pem');
  const healthy = (address: string) =>
    run(process.execPath, ['packages/service-kit/dist/health-probe.js', address], { cwd: ROOT, env: { ...process.env, TLS_CERT_FILE: env.TLS_CERT_FILE, HEALTH_CA_FILE: ca } }).then(
      () => true,
      () => false,
    );
  await vi.waitFor(async () => expect(await healthy(writeAddress)).toBe(true), { timeout: 30_000, interval: 200 });
  await vi.waitFor(async () => expect(await healthy(readAddress)).toBe(true), { timeout: 30_000, interval: 200 });

  // The console: HTTPS with the same certificate, HSTS, and signing in starts at the development provider.
  const consoleAnswer = await vi.waitFor(
    () => new Promise<IncomingMessage>((resolve, reject) => https.get(`https://${consoleAddress}/`, { ca: readFileSync(ca) }, resolve).on('error', reject)),
    { timeout: 30_000, interval: 200 },
  );
  consoleAnswer.resume();
  expect(consoleAnswer.statusCode).toBe(303);
  expect(consoleAnswer.headers['strict-transport-security']).toMatch(/^max-age=31536000/);
  expect(consoleAnswer.headers.location).toBe('/auth/login?return_to=%2F');
  expect(banner).toContain(`Operator console:                          https://${consoleAddress}`);
  expect(banner).toMatch(/sign in as "operator" with password \S{20}/);
  expect(banner).toContain(`Trusted CA:   ${ca}`);
  expect(banner).toContain(`DATA_DIR=${dataDir} npx titanctl devices create --physical-id 7 --server ${writeAddress} --ca-file ${ca}`);
  expect(banner).toContain(`npx titanbot-daemon sync --watch --server ${readAddress} --ca-file ${ca}`);
  expect(banner).not.toContain('-plaintext');

  // titanctl with --ca-file and the admin token file under DATA_DIR; then a daemon with --ca-file.
  const ctl = (...args: string[]) => run(process.execPath, ['packages/titanctl/bin/titanctl.js', ...args, '--server', writeAddress, '--ca-file', ca], { cwd: ROOT, env: { ...process.env, DATA_DIR: dataDir } });
  const created = await ctl('devices', 'create', '--physical-id', String(1 + Math.floor(Math.random() * 2e9)));
  // No DEP0123 ("TLS ServerName to an IP address") in the middle of the output.
  expect(created.stderr).toBe('');
  const device = JSON.parse(created.stdout) as { uuid: string };
  const issued = JSON.parse((await ctl('tokens', 'issue', '--device', device.uuid)).stdout) as { token: string };
  const tokenFile = path.join(dir, 'token.txt');
  await writeFile(tokenFile, issued.token, { mode: 0o600 });
  const db = path.join(dir, 'titanbotd.sqlite');
  await vi.waitFor(
    () => run(process.execPath, ['packages/daemon-client/bin/titanbot-daemon.js', 'sync', '--once', '--server', readAddress, '--ca-file', ca, '--token-file', tokenFile, '--db', db], { cwd: ROOT }),
    { timeout: 15_000, interval: 200 },
  );
  expect((await run('ls', [db])).stdout.trim()).toBe(db);
}, 120_000);
