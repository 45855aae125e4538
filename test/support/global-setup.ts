import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../services/write/src/db/embedded-postgres.js';
import { initOrm, migrate } from '../../services/write/src/db/orm.js';
import { DataKeyring } from '../../packages/service-kit/src/secrets/data-keys.js';
import { FileSecretStore } from '../../packages/service-kit/src/secrets/file-secret-store.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A freshly created and migrated database for this test run. */
    databaseUrl: string;
    /**
     * A file secret store holding this run's data key. Every write service a test starts shares
     * the one database, so, like replicas of one deployment, they share its data key too.
     */
    dataKeyDir: string;
    /**
     * A second migrated database that only the randomized sync test uses: it replays the whole
     * feed history, which other suites prune.
     */
    isolatedDatabaseUrl: string;
    /**
     * A third one for the fuzz test: its random calls rotate the data key and re-seal rows under
     * it, which the write services of other suites (each with its own secret store) could not open.
     */
    fuzzDatabaseUrl: string;
    /**
     * A fourth one for the rollout suites: an open rollout holds its scope (a global one every
     * scope), and their assertions name every habit a daemon database holds.
     */
    rolloutDatabaseUrl: string;
    /** A fifth one for the randomized rollout test: it replays the whole feed history, and opens global rollouts. */
    rolloutModelDatabaseUrl: string;
  }
}

// One database per run, so runs on one server (a developer's and CI's, or parallel helpers) never collide.
const TEST_DATABASE = `titanbot_test_${process.pid}`;
const ISOLATED_DATABASE = `titanbot_test_${process.pid}_isolated`;
const FUZZ_DATABASE = `titanbot_test_${process.pid}_fuzz`;
const ROLLOUT_DATABASE = `titanbot_test_${process.pid}_rollouts`;
const ROLLOUT_MODEL_DATABASE = `titanbot_test_${process.pid}_rollout_model`;

/**
 * Uses the PostgreSQL server of DATABASE_URL when set (creating a fresh database for this run and
 * dropping it afterwards, so the server's own databases are untouched), else starts an embedded
 * PostgreSQL.
 * Migrates once; suites share the database and use unique keys.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let embedded: EmbeddedDatabase | undefined;
  let tempDir: string | undefined;
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-pg-'));
    embedded = await startEmbeddedPostgres(tempDir, 0, pino({ level: 'warn' }));
    serverUrl = embedded.url;
  }
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  const createDatabase = async (name: string): Promise<string> => {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    const orm = await initOrm(url.toString());
    await migrate(orm);
    await orm.close();
    return url.toString();
  };
  project.provide('databaseUrl', await createDatabase(TEST_DATABASE));
  project.provide('isolatedDatabaseUrl', await createDatabase(ISOLATED_DATABASE));
  project.provide('fuzzDatabaseUrl', await createDatabase(FUZZ_DATABASE));
  project.provide('rolloutDatabaseUrl', await createDatabase(ROLLOUT_DATABASE));
  project.provide('rolloutModelDatabaseUrl', await createDatabase(ROLLOUT_MODEL_DATABASE));
  const dataKeyDir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-data-key-'));
  await new DataKeyring(new FileSecretStore(dataKeyDir), pino({ level: 'silent' })).init(true);
  project.provide('dataKeyDir', dataKeyDir);
  return async () => {
    await admin.query(`drop database if exists ${TEST_DATABASE} with (force)`);
    await admin.query(`drop database if exists ${ISOLATED_DATABASE} with (force)`);
    await admin.query(`drop database if exists ${FUZZ_DATABASE} with (force)`);
    for (const name of [ROLLOUT_DATABASE, ROLLOUT_MODEL_DATABASE]) await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
    await embedded?.stop();
    await rm(dataKeyDir, { recursive: true, force: true });
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  };
}
