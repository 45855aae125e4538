import { mkdtemp, rm } from 'node:fs/promises';
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
  it('seals with AES-256-GCM so the plaintext is not in the sealed value, and opens it again', async () => {
    const k = keyring('a');
    await k.init(true);
    const sealed = k.seal('hunter2-password', 'accounts.google_password');
    expect(sealed).toMatch(/^tbenc1\.[0-9a-f]{12}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('hunter2');
    // Deterministic (synthetic IV): equal only for the same plaintext in the same column.
    expect(k.seal('hunter2-password', 'accounts.google_password')).toBe(sealed);
    expect(k.seal('hunter2-passwore', 'accounts.google_password').split('.')[2]!.slice(0, 16)).not.toBe(sealed.split('.')[2]!.slice(0, 16));
    expect(k.seal('hunter2-password', 'sshes.private_key')).not.toBe(sealed);
    expect(k.open(sealed, 'accounts.google_password')).toBe('hunter2-password');
  });

  it('refuses a value moved to another column, a tampered value, and a value that is not sealed', async () => {
    const k = keyring('b');
    await k.init(true);
    const sealed = k.seal('secret', 'accounts.google_password');
    expect(() => k.open(sealed, 'sshes.private_key')).toThrow();
    const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
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
