import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataKeyring, UnknownDataKeyError } from './data-keys.js';
import { FileSecretStore } from './file-secret-store.js';
import { CasConflictError } from './secret-store.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-keys-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const keyring = (sub: string) => new DataKeyring(new FileSecretStore(path.join(dir, sub)), pino({ level: 'silent' }));

describe('DataKeyring', () => {
  it('seals with AES-256-GCM-SIV so the plaintext is not in the sealed value, and opens it again', async () => {
    const k = keyring('a');
    await k.init(true);
    const sealed = k.seal('hunter2-password', 'accounts.google_password');
    expect(sealed).toMatch(/^tbenc2\.[0-9a-f]{12}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('hunter2');
    // Deterministic (GCM-SIV under a fixed nonce): equal only for the same plaintext in the same column.
    expect(k.seal('hunter2-password', 'accounts.google_password')).toBe(sealed);
    expect(k.seal('hunter2-passwore', 'accounts.google_password').split('.')[2]!.slice(0, 16)).not.toBe(sealed.split('.')[2]!.slice(0, 16));
    expect(k.seal('hunter2-password', 'sshes.private_key')).not.toBe(sealed);
    expect(k.open(sealed, 'accounts.google_password')).toBe('hunter2-password');
  });

  it('opens values of the earlier tbenc1 format (AES-256-GCM) and counts them as not current, so RotateDataKey re-seals them', async () => {
    const dirName = 'legacy';
    const k = keyring(dirName);
    await k.init(true);
    const stored = JSON.parse(await readFile(path.join(dir, dirName, 'data-key.json'), 'utf8')) as { data: Record<string, string> };
    const keyId = k.currentKeyId;
    const key = Buffer.from(stored.data[`key.${keyId}`]!, 'base64');
    // tbenc1 as the earlier code wrote it: iv | AES-256-GCM ciphertext | tag, AAD `tbenc1.<keyId>.<context>`.
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(`tbenc1.${keyId}.accounts.google_password`));
    const body = Buffer.concat([iv, cipher.update('old-password', 'utf8'), cipher.final(), cipher.getAuthTag()]);
    const legacy = `tbenc1.${keyId}.${body.toString('base64url')}`;

    expect(k.open(legacy, 'accounts.google_password')).toBe('old-password');
    expect(() => k.open(legacy, 'sshes.private_key')).toThrow();
    expect(k.isCurrent(legacy)).toBe(false);
    expect(k.currentPattern()).toBe(`tbenc2.${keyId}.%`);
    expect(k.isCurrent(k.seal('old-password', 'accounts.google_password'))).toBe(true);
  });

  it('refuses a value moved to another column, a tampered value, and a value that is not sealed', async () => {
    const k = keyring('b');
    await k.init(true);
    const sealed = k.seal('secret', 'accounts.google_password');
    expect(() => k.open(sealed, 'sshes.private_key')).toThrow();
    // One character inside the ciphertext changed (the last ones may only carry base64 padding bits).
    const at = sealed.length - 8;
    const tampered = sealed.slice(0, at) + (sealed[at] === 'A' ? 'B' : 'A') + sealed.slice(at + 1);
    expect(() => k.open(tampered, 'accounts.google_password')).toThrow();
    expect(() => k.open('secret', 'accounts.google_password')).toThrow(/not a sealed/);
  });

  it('rotates by adding a key: old values still open, new ones use the new key; another replica learns it on refresh', async () => {
    const a = keyring('c');
    const b = keyring('c');
    await a.init(true);
    await b.init(true); // finds a's key instead of creating another
    expect(b.currentKeyId).toBe(a.currentKeyId);
    const old = a.seal('v1', 'ctx');
    const first = a.currentKeyId;
    const second = await a.rotate();
    expect(second).not.toBe(first);
    const fresh = a.seal('v2', 'ctx');
    expect(a.isCurrent(fresh) && !a.isCurrent(old)).toBe(true);
    expect(a.open(old, 'ctx')).toBe('v1');
    expect(() => b.open(fresh, 'ctx')).toThrow(UnknownDataKeyError);
    await b.refresh();
    expect(b.open(fresh, 'ctx')).toBe('v2');
  });

  it('lets one of two concurrent rotations win (check-and-set)', async () => {
    const a = keyring('d');
    const b = keyring('d');
    await a.init(true);
    await b.init(false);
    const results = await Promise.allSettled([a.rotate(), b.rotate()]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(CasConflictError);
    expect(a.currentKeyId).toBe(b.currentKeyId);
  });
});
