import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileSecretStore } from '@titanbot/service-kit/secrets/file-secret-store';
import { RotatingCredential, type RotatingCredentialOptions } from '../src/secrets/rotating-credential.js';
import { CasConflictError, type SecretStore, SecretStoreUnavailableError } from '@titanbot/service-kit/secrets/secret-store';
import { VaultSecretStore } from '@titanbot/service-kit/secrets/vault-secret-store';
import { openSecretStore } from '@titanbot/service-kit/secrets/open';
import { startVaultKv2Server } from './support/vault-kv2-server.js';

/** One storage backend, reachable through any number of store instances (one per "replica"). */
interface Backend {
  newStore(): SecretStore;
  /** Makes the backend unreachable until recover(). */
  outage(): Promise<void>;
  recover(): Promise<void>;
  teardown(): Promise<void>;
  /** Strings that must never be logged besides the credential values (e.g. the Vault token). */
  secrets: string[];
}

async function fileBackend(): Promise<Backend & { dir: string }> {
  const root = await mkdtemp(join(tmpdir(), 'secret-store-'));
  const dir = join(root, 'secrets');
  return {
    dir,
    newStore: () => new FileSecretStore(dir),
    // A regular file where the directory was makes every access fail (ENOTDIR/EEXIST), even for root.
    outage: async () => {
      await rename(dir, `${dir}.away`);
      await writeFile(dir, '');
    },
    recover: async () => {
      await rm(dir);
      await rename(`${dir}.away`, dir);
    },
    teardown: () => rm(root, { recursive: true, force: true }),
    secrets: [],
  };
}

async function vaultBackend(): Promise<Backend & { url: string; token: string }> {
  const token = `hvs.${randomBytes(12).toString('hex')}`;
  const server = await startVaultKv2Server({ token });
  return {
    url: server.url,
    token,
    newStore: () => new VaultSecretStore({ endpoint: server.url, token }),
    outage: () => server.stop(),
    recover: () => server.restart(),
    teardown: () => server.close(),
    secrets: [token],
  };
}

/** A pino logger whose output lines land in `lines`. */
function captureLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }), lines };
}

const generate = (): string => `tok_${randomBytes(16).toString('hex')}`;

function credential(store: SecretStore, options: Partial<RotatingCredentialOptions> = {}): RotatingCredential {
  return new RotatingCredential({
    store,
    name: 'admin-token',
    generate,
    graceMs: 60_000,
    refreshIntervalMs: 60_000,
    logger: captureLogger().logger,
    ...options,
  });
}

/** Delegates to a real store, counting reads (to observe single flight and rate limiting). */
class CountingStore implements SecretStore {
  reads = 0;
  constructor(private readonly inner: SecretStore) {}
  describe(name: string): string {
    return this.inner.describe(name);
  }
  read(name: string): ReturnType<SecretStore['read']> {
    this.reads++;
    return this.inner.read(name);
  }
  write(name: string, data: Record<string, string>, expectedVersion: number): Promise<number> {
    return this.inner.write(name, data, expectedVersion);
  }
}

describe.each([
  { kind: 'file', setup: fileBackend },
  { kind: 'Vault KV v2', setup: vaultBackend },
])('$kind secret store', ({ setup }) => {
  let backend: Backend;
  let store: SecretStore;

  beforeEach(async () => {
    backend = await setup();
    store = backend.newStore();
  });
  afterEach(() => backend.teardown());

  it('returns null when reading a secret that was never written', async () => {
    await expect(store.read('admin-token')).resolves.toBeNull();
  });

  it('creates version 1 with expectedVersion 0, then version 2 with expectedVersion 1', async () => {
    await expect(store.write('admin-token', { current: 'one' }, 0)).resolves.toBe(1);
    await expect(store.read('admin-token')).resolves.toEqual({ data: { current: 'one' }, version: 1 });
    await expect(store.write('admin-token', { current: 'two' }, 1)).resolves.toBe(2);
    await expect(store.read('admin-token')).resolves.toEqual({ data: { current: 'two' }, version: 2 });
  });

  it('rejects a stale expectedVersion with CasConflictError and leaves the data unchanged', async () => {
    await store.write('admin-token', { current: 'one' }, 0);
    await store.write('admin-token', { current: 'two' }, 1);
    await expect(store.write('admin-token', { current: 'late' }, 1)).rejects.toBeInstanceOf(CasConflictError);
    await expect(store.write('admin-token', { current: 'late' }, 0)).rejects.toBeInstanceOf(CasConflictError);
    await expect(store.read('admin-token')).resolves.toEqual({ data: { current: 'two' }, version: 2 });
  });

  it('rejects names that could escape the store location', async () => {
    await expect(store.read('../admin-token')).rejects.toThrow(/invalid secret name/);
  });

  it('bootstraps from bootstrapValue, logs where the credential is kept, and never logs the value', async () => {
    const { logger, lines } = captureLogger();
    const bootstrapValue = generate();
    const admin = credential(store, { bootstrapValue, logger });
    await admin.init();

    expect(admin.version).toBe(1);
    expect(admin.matches(bootstrapValue)).toBe(true);
    await expect(store.read('admin-token')).resolves.toEqual({ data: { current: bootstrapValue, rotateTime: expect.any(String) }, version: 1 });
    expect(lines.map((line) => JSON.parse(line) as object)).toContainEqual(
      expect.objectContaining({ source: 'environment', location: store.describe('admin-token'), version: 1 }),
    );

    const { value } = await admin.rotate();
    for (const secret of [bootstrapValue, value, ...backend.secrets]) {
      expect(lines.join('')).not.toContain(secret);
    }
  });

  it('generates the value when no bootstrapValue is given and logs that it was generated', async () => {
    const { logger, lines } = captureLogger();
    const admin = credential(store, { logger });
    await admin.init();

    const stored = await store.read('admin-token');
    expect(stored?.data.current).toMatch(/^tok_/);
    expect(lines.join('')).toContain('"source":"generated"');
    expect(lines.join('')).not.toContain(stored?.data.current);
  });

  it('keeps the stored value when a later replica starts with a different bootstrapValue', async () => {
    await credential(store, { bootstrapValue: 'first-value' }).init();
    const later = credential(backend.newStore(), { bootstrapValue: 'other-value' });
    await later.init();

    expect(later.matches('first-value')).toBe(true);
    expect(later.matches('other-value')).toBe(false);
  });

  it('makes two replicas bootstrapping at once agree on one value', async () => {
    const a = credential(store, { bootstrapValue: 'value-a' });
    const b = credential(backend.newStore(), { bootstrapValue: 'value-b' });
    await Promise.all([a.init(), b.init()]);

    const stored = await store.read('admin-token');
    expect(stored?.version).toBe(1);
    const winner = stored?.data.current ?? '';
    expect([a.matches(winner), b.matches(winner)]).toEqual([true, true]);
  });

  it('lets exactly one of two replicas rotating at once win; the other gets CasConflictError and the new value', async () => {
    const a = credential(store);
    const b = credential(backend.newStore());
    await a.init();
    await b.init();

    const results = await Promise.allSettled([a.rotate(), b.rotate()]);

    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toBeInstanceOf(CasConflictError);
    expect((await store.read('admin-token'))?.version).toBe(2);
    const newValue = won[0]?.value.value ?? '';
    expect([a.version, b.version]).toEqual([2, 2]);
    expect([a.matches(newValue), b.matches(newValue)]).toEqual([true, true]);
  });

  it('accepts the previous value during the grace period and rejects it after', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const admin = credential(store, { bootstrapValue: 'old-value', graceMs: 10_000, now: () => now });
    await admin.init();

    const { value, version, previousValidUntil } = await admin.rotate();

    expect(version).toBe(2);
    expect(previousValidUntil.toISOString()).toBe('2030-01-01T00:00:10.000Z');
    now += 9_999;
    expect([admin.matches(value), admin.matches('old-value'), admin.matches('never-valid')]).toEqual([true, true, false]);
    now += 1;
    expect([admin.matches(value), admin.matches('old-value')]).toEqual([true, false]);
    await expect(admin.verify('old-value')).resolves.toBe(false);
  });

  it('verify() accepts a value that another replica rotated in, which matches() does not know yet', async () => {
    const a = credential(store);
    const b = credential(backend.newStore());
    await a.init();
    await b.init();

    const { value } = await b.rotate();

    expect(a.matches(value)).toBe(false);
    await expect(a.verify(value)).resolves.toBe(true);
    expect(a.version).toBe(2);
  });

  it('shares one store read between concurrent verify() misses and refreshes at most once per second', async () => {
    let now = 0;
    const counting = new CountingStore(store);
    const admin = credential(counting, { now: () => now });
    await admin.init();
    const readsAfterInit = counting.reads;

    const answers = await Promise.all(Array.from({ length: 10 }, () => admin.verify('garbage')));
    await admin.verify('more-garbage');

    expect(answers.every((ok) => !ok)).toBe(true);
    expect(counting.reads - readsAfterInit).toBe(1);
    now += 1_000;
    await admin.verify('garbage');
    expect(counting.reads - readsAfterInit).toBe(2);
  });

  it('answers matches() and verify() from the last good value while the store is down, and read() throws SecretStoreUnavailableError', async () => {
    const { logger, lines } = captureLogger();
    const admin = credential(store, { bootstrapValue: 'good-value', logger });
    await admin.init();

    await backend.outage();

    await expect(store.read('admin-token')).rejects.toBeInstanceOf(SecretStoreUnavailableError);
    await expect(store.write('admin-token', { current: 'x' }, 1)).rejects.toBeInstanceOf(SecretStoreUnavailableError);
    expect(admin.matches('good-value')).toBe(true);
    await expect(admin.verify('good-value')).resolves.toBe(true);
    await expect(admin.verify('wrong-value')).resolves.toBe(false);
    expect(lines.join('')).toContain('credential refresh failed');
    for (const secret of ['good-value', ...backend.secrets]) expect(lines.join('')).not.toContain(secret);

    await backend.recover();
    await expect(store.read('admin-token')).resolves.toMatchObject({ version: 1 });
  });

  it('refreshes in the background, and keeps serving the cached value with a warning while the store is down', async () => {
    const { logger, lines } = captureLogger();
    const a = credential(store, { refreshIntervalMs: 20, logger });
    const b = credential(backend.newStore());
    await a.init();
    await b.init();
    a.start();
    try {
      const { value } = await b.rotate();
      await vi.waitFor(() => expect(a.version).toBe(2));

      await backend.outage();
      await vi.waitFor(() => expect(lines.join('')).toContain('credential refresh failed'));
      expect(a.matches(value)).toBe(true);
      expect(lines.join('')).not.toContain(value);
    } finally {
      a.stop();
    }
  });
});

describe('FileSecretStore', () => {
  let backend: Awaited<ReturnType<typeof fileBackend>>;
  beforeEach(async () => {
    backend = await fileBackend();
  });
  afterEach(() => backend.teardown());

  it('lets exactly one of several instances on one directory win a write race with the same expectedVersion', async () => {
    const stores = Array.from({ length: 8 }, () => backend.newStore());

    const results = await Promise.allSettled(stores.map((s, i) => s.write('admin-token', { current: `v${i}` }, 0)));

    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(CasConflictError);
    await expect(stores[0]?.read('admin-token')).resolves.toEqual({ data: { current: `v${won[0]}` }, version: 1 });
  });

  it('keeps secrets in 0600 files inside a 0700 directory and leaves no temp or lock files behind', async () => {
    await backend.newStore().write('admin-token', { current: 'x' }, 0);

    expect((await stat(backend.dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(backend.dir, 'admin-token.json'))).mode & 0o777).toBe(0o600);
    expect(await readdir(backend.dir)).toEqual(['admin-token.json']);
  });

  it('takes over a lock not refreshed for 30 s, left by a crashed writer', async () => {
    const store = backend.newStore();
    await store.write('admin-token', { current: 'x' }, 0);
    const lock = join(backend.dir, 'admin-token.lock');
    await mkdir(lock);
    const aMinuteAgo = new Date(Date.now() - 60_000);
    await utimes(lock, aMinuteAgo, aMinuteAgo);

    await expect(store.write('admin-token', { current: 'y' }, 1)).resolves.toBe(2);
  });
});

describe('openSecretStore', () => {
  const open = (settings: Partial<Parameters<typeof openSecretStore>[0]>) => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const store = openSecretStore({ VAULT_MOUNT: 'secret', VAULT_PATH_PREFIX: 'titanbot', SECRETS_DIR: join(tmpdir(), 'unused'), ...settings }, logger);
    return { store, warnings: lines.filter((l) => l.includes('file secret store')) };
  };

  it('warns when the file store stands in for Vault unasked, and not when SECRET_STORE=file says so (npm start says it once)', () => {
    const unasked = open({});
    expect(unasked.store).toBeInstanceOf(FileSecretStore);
    expect(unasked.warnings).toHaveLength(1);
    const asked = open({ SECRET_STORE: 'file', VAULT_ADDR: 'http://127.0.0.1:1' });
    expect(asked.store).toBeInstanceOf(FileSecretStore);
    expect(asked.warnings).toHaveLength(0);
    expect(open({ VAULT_ADDR: 'http://127.0.0.1:1', VAULT_TOKEN: 't' }).store).toBeInstanceOf(VaultSecretStore);
  });
});

describe('VaultSecretStore', () => {
  let backend: Awaited<ReturnType<typeof vaultBackend>>;
  beforeEach(async () => {
    backend = await vaultBackend();
  });
  afterEach(() => backend.teardown());

  it('throws SecretStoreUnavailableError when Vault accepts the connection but never answers', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const store = new VaultSecretStore({ endpoint: `http://127.0.0.1:${port}`, token: backend.token, timeoutMs: 200 });
    try {
      await expect(store.read('admin-token')).rejects.toBeInstanceOf(SecretStoreUnavailableError);
    } finally {
      silent.close();
    }
  });

  it('reports a rejected token as a plain error, neither a conflict nor an outage', async () => {
    const store = new VaultSecretStore({ endpoint: backend.url, token: 'wrong-token' });

    const error = await store.read('admin-token').catch((err: unknown) => err);

    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(SecretStoreUnavailableError);
    expect(error).not.toBeInstanceOf(CasConflictError);
    expect((error as Error).message).toMatch(/403.*permission denied/);
  });

  it('stores secrets under <mount>/data/<prefix>/<name> with readable past versions', async () => {
    const store = new VaultSecretStore({ endpoint: backend.url, token: backend.token, mount: 'kv', prefix: 'app' });
    await store.write('admin-token', { current: 'one' }, 0);
    await store.write('admin-token', { current: 'two' }, 1);

    const response = await fetch(`${backend.url}/v1/kv/data/app/admin-token?version=1`, {
      headers: { 'X-Vault-Token': backend.token },
    });

    expect(store.describe('admin-token')).toBe(`Vault KV v2 ${backend.url} kv/app/admin-token`);
    expect(await response.json()).toMatchObject({ data: { data: { current: 'one' }, metadata: { version: 1 } } });
  });
});
