import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { generateDaemonToken } from '@titanbot/service-kit/daemon-token';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, parseCliArgs, quietRetries, UsageError } from './cli.js';

afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs `main` with stdout and stderr captured. */
async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const code = await main(argv);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('parseCliArgs', () => {
  it('parses sync --once with the default server and a patience of 5 minutes', () => {
    expect(parseCliArgs(['sync', '--once', '--token-file', '/t', '--db', '/d.sqlite'])).toEqual({
      command: 'sync',
      mode: 'once',
      server: '127.0.0.1:50052',
      tokenFile: '/t',
      dbPath: '/d.sqlite',
      timeoutMs: 300_000,
    });
    expect(parseCliArgs(['sync', '--once', '--token-file', '/t', '--db', 'd', '--timeout', '30s'])).toMatchObject({ timeoutMs: 30_000 });
    // TLS: with the system's trust store, or with a given CA; plaintext when neither is asked for.
    expect(parseCliArgs(['sync', '--once', '--token-file', '/t', '--db', 'd', '--tls'])).toMatchObject({ tls: {} });
    expect(parseCliArgs(['sync', '--once', '--token-file', '/t', '--db', 'd', '--ca-file', '/ca.pem'])).toMatchObject({ tls: { caFile: '/ca.pem' } });
  });

  it('parses sync --watch with a server and logical id', () => {
    expect(parseCliArgs(['sync', '--watch', '--server', 'read:9', '--token-file=/t', '--db', 'd', '--logical-id', '42'])).toEqual({
      command: 'sync',
      mode: 'watch',
      server: 'read:9',
      tokenFile: '/t',
      dbPath: 'd',
      logicalId: 42,
      timeoutMs: 300_000,
    });
    expect(parseCliArgs(['--help'])).toEqual({ command: 'help' });
  });

  it.each([
    [['--once', '--token-file', 't', '--db', 'd'], /missing command/],
    [['pull', '--once', '--token-file', 't', '--db', 'd'], /unknown command: pull/],
    [['sync', '--token-file', 't', '--db', 'd'], /exactly one of --once and --watch/],
    [['sync', '--once', '--token-file', 't', '--db', 'd', '--timeout', 'soon'], /--timeout must be a duration/],
    [['sync', '--once', '--watch', '--token-file', 't', '--db', 'd'], /exactly one of --once and --watch/],
    [['sync', '--once', '--db', 'd'], /--token-file is required/],
    [['sync', '--once', '--token-file', 't'], /--db is required/],
    [['sync', '--once', '--token-file', 't', '--db', 'd', '--logical-id=-3'], /--logical-id must be an integer/],
    [['sync', '--once', '--token-file', 't', '--db', 'd', '--logical-id', '-3'], /argument is ambiguous\. Did you forget/],
    [['sync', '--once', '--token-file', 't', '--db', 'd', '--logical-id', '1.5'], /--logical-id must be an integer/],
    [['sync', '--once', '--token-file', 't', '--db', 'd', '--logical-id', '2147483648'], /--logical-id must be an integer/],
    [['sync', '--once', '--token-file', 't', '--db', 'd', '--verbose'], /--verbose/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseCliArgs(argv)).toThrow(UsageError);
    expect(() => parseCliArgs(argv)).toThrow(message);
  });
});

describe('main', () => {
  it('exits 2 with the usage text on a usage error', async () => {
    const { code, stdout, stderr } = await run(['sync', '--once']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^titanbot-daemon: --token-file is required\n\nUsage: titanbot-daemon sync/);
  });

  it('exits 1 with one stderr line for a malformed token and for a failed call', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'daemon-cli-'));
    try {
      const tokenFile = path.join(dir, 'token');
      const db = path.join(dir, 'db.sqlite');
      await writeFile(tokenFile, 'tbd_not-a-token\n');
      const malformed = await run(['sync', '--once', '--token-file', tokenFile, '--db', db]);
      expect(malformed).toEqual({ code: 1, stdout: '', stderr: `titanbot-daemon: token file ${tokenFile} does not hold a well-formed daemon token (one line, tbd_..., valid checksum)\n` });

      await writeFile(tokenFile, `${generateDaemonToken()}\n`);
      // --timeout 0: one try, no waiting for a replica that will not come.
      const unreachable = await run(['sync', '--once', '--timeout', '0', '--server', `127.0.0.1:${await closedPort()}`, '--token-file', tokenFile, '--db', db]);
      expect(unreachable.code).toBe(1);
      expect(unreachable.stdout).toBe('');
      expect(unreachable.stderr).toMatch(/^titanbot-daemon: UNAVAILABLE: [^\n]+\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('quietRetries', () => {
  it('prints the loss, the regain and every other event, and at most one reconnect attempt per 30 s with how many it held back', () => {
    let now = 0;
    const printed: [string, Record<string, unknown>][] = [];
    const log = quietRetries((event, fields) => printed.push([event, fields]), () => now);
    log('watching', {});
    log('watch-lost', { retryInMs: 200 });
    for (let i = 0; i < 29; i++) {
      now += 1_000;
      log('watch-retry', { attempt: i + 2 });
    }
    now += 1_000;
    log('watch-retry', { attempt: 31 });
    log('watch-restored', { attempts: 31 });
    log('installed', { version: 'v2' });
    expect(printed).toEqual([
      ['watching', {}],
      ['watch-lost', { retryInMs: 200 }],
      ['watch-retry', { attempt: 31, suppressed: 29 }],
      ['watch-restored', { attempts: 31 }],
      ['installed', { version: 'v2' }],
    ]);
  });
});
