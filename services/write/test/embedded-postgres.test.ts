import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SHARED_ROOT, startEmbeddedPostgres } from '../src/db/embedded-postgres.js';

describe('the embedded PostgreSQL for a newcomer', () => {
  // PostgreSQL refuses root and runs as "postgres", which a private folder keeps out: the most
  // common first run in a container (/root, a `mktemp -d` clone).
  it.runIf(process.getuid?.() === 0)('as root in a private (0700) folder, runs its cluster where "postgres" can reach it, and keeps it across restarts', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'titanbot-private-'));
    await chmod(home, 0o700);
    const asked = path.join(home, '.data', 'postgres');
    let dir = '';
    try {
      const first = await startEmbeddedPostgres(asked, 0, pino({ level: 'silent' }));
      dir = first.dir;
      expect(dir.startsWith(`${SHARED_ROOT}/clusters/`)).toBe(true);
      const client = new pg.Client({ connectionString: first.url });
      await client.connect();
      await client.query('create table kept (v text)');
      await client.query("insert into kept values ('across restarts')");
      await client.end();
      await first.stop();

      const again = await startEmbeddedPostgres(asked, 0, pino({ level: 'silent' }));
      expect(again.dir).toBe(dir);
      const reader = new pg.Client({ connectionString: again.url });
      await reader.connect();
      expect((await reader.query('select v from kept')).rows).toEqual([{ v: 'across restarts' }]);
      await reader.end();
      await again.stop();
    } finally {
      await rm(home, { recursive: true, force: true });
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  });
});
