import type { ServiceError } from '@grpc/grpc-js';
import { WatchVersionRequest, type WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { errorReason } from '@titanbot/service-kit/status';
import { withKey } from '@titanbot/write/test-support/harness';
import type pg from 'pg';
import { expect } from 'vitest';
import { download, openExport, sha256 } from './daemon.js';
import { exportRows } from './expected.js';
import type { Replica } from './system.js';

// What the model-based tests share: watchers that download every version they are told, and a
// replay of PostgreSQL's feed that gives each scope's daemon database at every committed
// transaction, computed from the feed alone (not from the read service).

/** A downloaded file: which replica, device and scope, its version, and its rows as one canonical string. */
export interface Download {
  replica: string;
  device: string;
  scope: string;
  version: string;
  content: string;
}

export const scopeKey = (logicalId: number | undefined): string => (logicalId === undefined ? 'global' : String(logicalId));

/** Watches one scope on one replica as `device` (its token) and downloads every version it is told, pinned to that version. */
export function follow(replica: Replica, label: string, token: string, logicalId: number | undefined, into: Download[], device = '') {
  const client = replica.daemon();
  const call = client.watchVersion(WatchVersionRequest.fromPartial({ logicalId, knownVersion: '' }), withKey(token));
  const pending: Promise<void>[] = [];
  let gone = 0;
  call.on('data', (message: WatchVersionResponse) => {
    pending.push(
      download(client, token, { logicalId, version: message.version }).then(
        (got) => {
          expect(sha256(got.bytes)).toBe(got.header.sha256);
          const file = openExport(got.bytes);
          try {
            into.push({ replica: label, device, scope: scopeKey(logicalId), version: got.header.version, content: JSON.stringify(exportRows(file)) });
          } finally {
            file.close();
          }
        },
        (err: ServiceError) => {
          // Superseded before it was built here: the next announcement covers it.
          if (errorReason(err) !== 'EXPORT_VERSION_GONE') throw err;
          gone++;
        },
      ),
    );
  });
  call.on('error', () => undefined);
  return {
    gone: () => gone,
    async stop(): Promise<void> {
      call.cancel();
      await Promise.all(pending);
    },
  };
}

export type Row = Record<string, unknown>;
/** The fed tables replayed so far, by table and primary key. */
export type Tables = Map<string, Map<string, Row>>;

const hex = (uuid: unknown): string => String(uuid).replace(/-/g, '').toUpperCase();
const sortRows = (rows: unknown[][]): unknown[][] => rows.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
const rows = (tables: Tables, name: string): Row[] => [...(tables.get(name)?.values() ?? [])];

/**
 * A scope's daemon database rows (exportRows' form) from the replayed tables; with `rollout`, its
 * candidate content: that rollout's candidate rows in place of the habits it changes.
 */
export function exportOf(tables: Tables, logicalId: number | undefined, rollout?: string): string {
  const overlay = rollout === undefined ? [] : rows(tables, 'rollout_habits').filter((r) => r['rollout_uuid'] === rollout);
  const changed = new Set(overlay.map((r) => String(r['habit_uuid'])));
  const all: Row[] = [
    ...rows(tables, 'habits').filter((h) => !changed.has(String(h['uuid']))),
    ...overlay.filter((r) => r['deleted'] === false).map((r) => ({ ...r, uuid: r['habit_uuid'] })),
  ];
  const habits = all.filter((h) => h['is_active'] === true && (h['account_logical_id'] === null || (logicalId !== undefined && h['account_logical_id'] === logicalId)));
  habits.sort((a, b) => {
    const pa = a['priority'] as number | null;
    const pb = b['priority'] as number | null;
    if (pa !== pb) return pa === null ? 1 : pb === null ? -1 : pb - pa;
    return String(a['uuid']) < String(b['uuid']) ? -1 : 1;
  });
  const ids = new Set(habits.map((h) => String(h['uuid'])));
  const links = (table: string, column: string) =>
    [
      ...rows(tables, table).filter((l) => !changed.has(String(l['habit_uuid']))),
      ...rows(tables, `rollout_${table}`).filter((l) => l['rollout_uuid'] === rollout),
    ]
      .filter((l) => ids.has(String(l['habit_uuid'])))
      .map((l) => [String(l['habit_uuid']), String(l[column])]);
  const pixelLinks = links('habit_pixels', 'pixel_uuid');
  const shapeLinks = links('habit_shapes', 'shape_uuid');
  const byUuid = (table: string, uuids: Iterable<string>): Row[] => [...new Set(uuids)].map((u) => tables.get(table)?.get(u)).filter((r): r is Row => r !== undefined);
  const pixels = byUuid('pixels', pixelLinks.map(([, p]) => p!));
  const updatedAt = (v: unknown): string => new Date(String(v)).toISOString().slice(0, 19).replace('T', ' ');
  return JSON.stringify({
    habits: habits.map((h) => [
      hex(h['uuid']), 1, h['account_logical_id'], h['priority'], h['trigger_shell'], h['log_template'], h['post_timeout_ms'],
      h['action'], h['comment'], h['sequence'], h['context'], h['is_interruption'] ? 1 : 0, updatedAt(h['updated_at']),
    ]),
    habit_pixels: sortRows(pixelLinks.map(([h, p]) => [hex(h), hex(p)])),
    pixels: sortRows(pixels.map((p) => [hex(p['uuid']), hex(p['dot_uuid']), hex(p['color_uuid'])])),
    dots: sortRows(byUuid('dots', pixels.map((p) => String(p['dot_uuid']))).map((d) => [hex(d['uuid']), d['x'], d['y']])),
    colors: sortRows(byUuid('colors', pixels.map((p) => String(p['color_uuid']))).map((c) => [hex(c['uuid']), c['rgb_hex'], c['deviation']])),
    habit_shapes: sortRows(shapeLinks.map(([h, s]) => [hex(h), hex(s)])),
    shapes: sortRows(
      byUuid('shapes', shapeLinks.map(([, s]) => s!)).map((s) => [hex(s['uuid']), s['type'], s['x'], s['y'], s['width'], s['height'], s['rgb_hex'], s['size']]),
    ),
  });
}

const PRIMARY_KEYS: Record<string, string[]> = {
  habit_pixels: ['habit_uuid', 'pixel_uuid'],
  habit_shapes: ['habit_uuid', 'shape_uuid'],
  rollout_habits: ['rollout_uuid', 'habit_uuid'],
  rollout_habit_pixels: ['rollout_uuid', 'habit_uuid', 'pixel_uuid'],
  rollout_habit_shapes: ['rollout_uuid', 'habit_uuid', 'shape_uuid'],
};
/** Tables that decide a daemon database (the rollout tables decide a candidate's). */
const EXPORTED = new Set(['habits', 'habit_pixels', 'pixels', 'dots', 'colors', 'habit_shapes', 'shapes', 'rollouts', 'rollout_habits', 'rollout_habit_pixels', 'rollout_habit_shapes']);

/**
 * Replays PostgreSQL's feed from revision 1 and calls `atCommit` with the tables at the end of every
 * transaction from revision `from` on that touched an exported table (the state before `from` is
 * needed, its contents are not).
 */
export async function replayFeed(db: pg.Client, from: number, atCommit: (tables: Tables) => void): Promise<void> {
  const { rows: events } = await db.query<{ revision: string; table_name: string; operation: string; row: Row; txid: string | null }>(
    'select revision, table_name, operation, row, txid::text as txid from feed_events order by revision',
  );
  expect(Number(events[0]?.revision ?? 1)).toBe(1);
  const tables: Tables = new Map();
  let touched = true;
  events.forEach((event, i) => {
    if (EXPORTED.has(event.table_name)) {
      touched = true;
      let table = tables.get(event.table_name);
      if (!table) tables.set(event.table_name, (table = new Map()));
      const key = (PRIMARY_KEYS[event.table_name] ?? ['uuid']).map((c) => String(event.row[c])).join('|');
      if (event.operation === 'delete') table.delete(key);
      else table.set(key, event.row);
    }
    const next = events[i + 1];
    const endsTransaction = event.txid === null || next?.txid !== event.txid;
    // A transaction that touched no exported table leaves every content as it was.
    if (!endsTransaction || !touched || Number(event.revision) < from) return;
    touched = false;
    atCommit(tables);
  });
}
