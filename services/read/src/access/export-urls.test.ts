import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import { FileSecretStore } from '@titanbot/service-kit/secrets/file-secret-store';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExportUrlSigner } from './export-urls.js';

const SHA = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);
const TTL_MS = 5 * 60_000;

let dir: string;
let now = 1_800_000_000_000;
/** Two replicas' keyrings over one secret store, as every replica of a fleet shares the data keys. */
let writer: DataKeyring;
let replica: DataKeyring;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-urls-'));
  writer = new DataKeyring(new FileSecretStore(dir), pino({ level: 'silent' }));
  await writer.init(true);
  replica = new DataKeyring(new FileSecretStore(dir), pino({ level: 'silent' }));
  await replica.init(false);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const signer = (keyring: DataKeyring): ExportUrlSigner => new ExportUrlSigner(keyring, 'https://cdn.example.com', TTL_MS, () => now);
/** The path and query of a signed URL, as the origin receives them. */
const parts = (url: string): [string, URLSearchParams] => {
  const parsed = new URL(url);
  return [parsed.pathname, parsed.searchParams];
};

describe('ExportUrlSigner', () => {
  it('signs a path under the base URL with expires, key and signature in the query string; another replica accepts it', async () => {
    const signed = signer(writer).sign(`/exports/${SHA}`);
    expect(signed.url).toMatch(new RegExp(`^https://cdn\\.example\\.com/exports/${SHA}\\?expires=\\d+&key=[^&]+&signature=[A-Za-z0-9_-]{43}$`));
    expect(signed.expireTimeMs).toBeGreaterThanOrEqual(now + TTL_MS);
    expect(signed.expireTimeMs).toBeLessThan(now + TTL_MS + 1000);
    expect(await signer(replica).verify(...parts(signed.url))).toBeUndefined();
  });

  it('refuses an expired URL, and accepts it until the second it expires', async () => {
    const signed = signer(writer).sign(`/exports/${SHA}`);
    const at = now;
    try {
      now = signed.expireTimeMs - 1;
      expect(await signer(replica).verify(...parts(signed.url))).toBeUndefined();
      now = signed.expireTimeMs;
      expect(await signer(replica).verify(...parts(signed.url))).toBe('expired');
    } finally {
      now = at;
    }
  });

  it('refuses a forged signature, a changed expiry, a URL used for another path, and missing parameters', async () => {
    const [pathname, query] = parts(signer(writer).sign(`/deltas/${SHA}/${OTHER}`).url);
    const v = signer(replica);
    const flipped = new URLSearchParams(query);
    const signature = query.get('signature')!;
    flipped.set('signature', `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`);
    expect(await v.verify(pathname, flipped)).toBe('forged');
    const later = new URLSearchParams(query);
    later.set('expires', String(Number(query.get('expires')) + 3600));
    expect(await v.verify(pathname, later)).toBe('forged');
    expect(await v.verify(`/deltas/${OTHER}/${SHA}`, query)).toBe('forged');
    expect(await v.verify(`/exports/${OTHER}`, query)).toBe('forged');
    const unknownKey = new URLSearchParams(query);
    unknownKey.set('key', 'no-such-key');
    expect(await v.verify(pathname, unknownKey)).toBe('forged');
    for (const name of ['expires', 'key', 'signature']) {
      const without = new URLSearchParams(query);
      without.delete(name);
      expect(await v.verify(pathname, without)).toBe('missing');
    }
  });

  it('signs with a rotated key at once; a replica that has not seen the rotation learns it from the store; older URLs stay valid', async () => {
    const before = signer(writer).sign(`/exports/${SHA}`);
    const rotated = await writer.rotate();
    const after = signer(writer).sign(`/exports/${SHA}`);
    expect(parts(after.url)[1].get('key')).toBe(rotated);
    expect(parts(before.url)[1].get('key')).not.toBe(rotated);
    expect(await signer(replica).verify(...parts(after.url))).toBeUndefined();
    expect(await signer(replica).verify(...parts(before.url))).toBeUndefined();
  });
});
