import { ServerCredentials } from '@grpc/grpc-js';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { DaemonServiceService, ExportEncoding, type DownloadExportRequest, type DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DEFAULT_STREAM_LIMITS, startGrpcServer, stopGrpcServer } from '@titanbot/service-kit/grpc-server';
import { send } from '@titanbot/service-kit/stream';
import Database from 'better-sqlite3';
import pg from 'pg';

/** The daemon database schema (DOMAIN.md), as the original system wrote it. */
const DDL = `
create table habits(uuid BLOB NOT NULL PRIMARY KEY, is_active INTEGER NOT NULL CHECK (is_active IN (0,1)),
  account_logical_id INTEGER, priority INTEGER, trigger_shell TEXT, log_template TEXT,
  post_timeout_ms INTEGER, action TEXT, comment TEXT, sequence INTEGER, context TEXT,
  is_interruption INTEGER NOT NULL DEFAULT 1, updated_at TEXT NOT NULL);
create table habit_pixels(habit_uuid BLOB NOT NULL, pixel_uuid BLOB NOT NULL, PRIMARY KEY (habit_uuid, pixel_uuid));
create table pixels(uuid BLOB NOT NULL PRIMARY KEY, dot_uuid BLOB NOT NULL, color_uuid BLOB NOT NULL);
create table dots(uuid BLOB NOT NULL PRIMARY KEY, x INTEGER NOT NULL, y INTEGER NOT NULL);
create table colors(uuid BLOB NOT NULL PRIMARY KEY, rgb_hex TEXT NOT NULL, deviation INTEGER);
create table habit_shapes(habit_uuid BLOB NOT NULL, shape_uuid BLOB NOT NULL, PRIMARY KEY (habit_uuid, shape_uuid));
create table shapes(uuid BLOB NOT NULL PRIMARY KEY, type TEXT NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL,
  width INTEGER NOT NULL, height INTEGER NOT NULL, rgb_hex TEXT NOT NULL, size INTEGER NOT NULL);`;

const IN_SCOPE = 'h.is_active and (h.account_logical_id = $1 or h.account_logical_id is null)';

/** Each table's rows for the scope ($1), uuids as text, in the export's order. */
const QUERIES: { table: string; sql: string }[] = [
  {
    table: 'habits',
    sql: `select h.uuid::text, h.is_active::int as is_active, h.account_logical_id, h.priority, h.trigger_shell, h.log_template, h.post_timeout_ms,
                 h.action, h.comment, h.sequence, h.context, h.is_interruption::int as is_interruption,
                 to_char(h.updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') as updated_at
          from habits h where ${IN_SCOPE} order by h.priority desc nulls last, h.uuid`,
  },
  { table: 'habit_pixels', sql: `select hp.habit_uuid::text, hp.pixel_uuid::text from habit_pixels hp join habits h on h.uuid = hp.habit_uuid where ${IN_SCOPE} order by 1, 2` },
  {
    table: 'pixels',
    sql: `select p.uuid::text, p.dot_uuid::text, p.color_uuid::text from pixels p
          where p.uuid in (select hp.pixel_uuid from habit_pixels hp join habits h on h.uuid = hp.habit_uuid where ${IN_SCOPE}) order by 1`,
  },
  {
    table: 'dots',
    sql: `select d.uuid::text, d.x, d.y from dots d where d.uuid in (select p.dot_uuid from pixels p join habit_pixels hp on hp.pixel_uuid = p.uuid
          join habits h on h.uuid = hp.habit_uuid where ${IN_SCOPE}) order by 1`,
  },
  {
    table: 'colors',
    sql: `select c.uuid::text, c.rgb_hex, c.deviation from colors c where c.uuid in (select p.color_uuid from pixels p join habit_pixels hp on hp.pixel_uuid = p.uuid
          join habits h on h.uuid = hp.habit_uuid where ${IN_SCOPE}) order by 1`,
  },
  { table: 'habit_shapes', sql: `select hs.habit_uuid::text, hs.shape_uuid::text from habit_shapes hs join habits h on h.uuid = hs.habit_uuid where ${IN_SCOPE} order by 1, 2` },
  {
    table: 'shapes',
    sql: `select s.uuid::text, s.type, s.x, s.y, s.width, s.height, s.rgb_hex, s.size from shapes s
          where s.uuid in (select hs.shape_uuid from habit_shapes hs join habits h on h.uuid = hs.habit_uuid where ${IN_SCOPE}) order by 1`,
  },
];

/** Columns holding a uuid, stored as 16 raw bytes. */
const UUID_COLUMNS = new Set(['uuid', 'habit_uuid', 'pixel_uuid', 'dot_uuid', 'color_uuid', 'shape_uuid']);
const toBlob = (uuid: string): Buffer => Buffer.from(uuid.replaceAll('-', ''), 'hex');

/**
 * `node naive-download-server.js` with NAIVE_ADDR=host:port, DATABASE_URL and CHUNK_BYTES: the
 * original system's way, as a DaemonService.DownloadExport that per call queries PostgreSQL for
 * the scope's rows, writes a fresh SQLite file in a temp dir, hashes it, streams it (header, then
 * chunks, with backpressure) and deletes it. No token check (the reference measures the work).
 */
async function main(): Promise<void> {
  const address = process.env['NAIVE_ADDR'];
  const databaseUrl = process.env['DATABASE_URL'];
  const chunkBytes = Number(process.env['CHUNK_BYTES'] ?? 128 * 1024);
  if (!address || !databaseUrl) throw new Error('NAIVE_ADDR and DATABASE_URL are required');
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'titanbot-naive-'));

  const build = async (scope: number): Promise<string> => {
    const results: { table: string; rows: Record<string, unknown>[] }[] = [];
    for (const q of QUERIES) results.push({ table: q.table, rows: (await pool.query<Record<string, unknown>>(q.sql, [scope])).rows });
    const file = path.join(dir, `${randomUUID()}.sqlite`);
    const db = new Database(file);
    try {
      db.exec(DDL);
      db.transaction(() => {
        for (const { table, rows } of results) {
          const first = rows[0];
          if (!first) continue;
          const columns = Object.keys(first);
          const insert = db.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`);
          for (const row of rows) insert.run(columns.map((c) => (UUID_COLUMNS.has(c) ? toBlob(String(row[c])) : row[c])));
        }
      })();
    } finally {
      db.close();
    }
    return file;
  };

  const downloadExport = async (call: ServerWritableStream<DownloadExportRequest, DownloadExportResponse>): Promise<void> => {
    let file: string | undefined;
    try {
      file = await build(call.request.logicalId ?? 0);
      const data = readFileSync(file);
      const header = {
        version: String(Date.now()),
        sizeBytes: data.length,
        sha256: createHash('sha256').update(data).digest('hex'),
        schemaVersion: 1,
        fileName: 'titanbotd.sqlite',
        mediaType: 'application/vnd.sqlite3',
        revision: 0,
        encoding: ExportEncoding.EXPORT_ENCODING_UNSPECIFIED,
        payloadSizeBytes: data.length,
        baseSha256: '',
        publicUrl: '',
        publicUrlExpireTime: undefined,
      };
      if (!(await send(call, { kind: { $case: 'header', value: header } }))) return;
      for (let offset = 0; offset < data.length; offset += chunkBytes) {
        if (!(await send(call, { kind: { $case: 'chunk', value: { offset, data: data.subarray(offset, offset + chunkBytes) } } }))) return;
      }
      call.end();
    } catch (err) {
      call.destroy(err as Error);
    } finally {
      if (file) rmSync(file, { force: true });
    }
  };

  const grpc = await startGrpcServer(address, ServerCredentials.createInsecure(), ['titanbot/daemon/v1/daemon_service.proto'], [{ definition: DaemonServiceService, implementation: { downloadExport } }], DEFAULT_STREAM_LIMITS);
  grpc.health.setStatus('', 'SERVING');
  process.once('SIGTERM', () =>
    void stopGrpcServer(grpc.server, 1_000).then(async () => {
      await pool.end();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
