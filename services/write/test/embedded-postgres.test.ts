import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StartupError } from '@titanbot/service-kit/process';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';

describe('the embedded PostgreSQL for a newcomer', () => {
  // PostgreSQL refuses root; the library runs it as "postgres", which a private folder keeps out.
  it.runIf(process.getuid?.() === 0)('as root in a private (0700) folder, says what to change instead of failing in initdb', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'titanbot-private-'));
    try {
      await chmod(home, 0o700);
      const started = startEmbeddedPostgres(path.join(home, '.data', 'postgres'), 0, pino({ level: 'silent' }));
      await expect(started).rejects.toBeInstanceOf(StartupError);
      await expect(started).rejects.toThrow(`cannot enter ${home} (mode 0700)`);
      await expect(started).rejects.toThrow(/run as a non-root user.*chmod o\+x.*DATABASE_URL/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
