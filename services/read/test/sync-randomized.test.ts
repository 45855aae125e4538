import { status, type ServiceError } from '@grpc/grpc-js';
import type { Habit, Pixel, Shape } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { WatchVersionRequest, type WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { errorReason } from '@titanbot/service-kit/status';
import { uniqueInt, withKey } from '@titanbot/write/test-support/harness';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { adminApi, provisionDevice, uniquePixel, uniqueShape } from './support/admin.js';
import { checkVersion, download, openExport, sha256 } from './support/daemon.js';
import { exportRows } from './support/expected.js';
import { startSystem, type Replica, type System } from './support/system.js';
import { prng } from '@titanbot/write/test-support/prng';

/**
 * Model-based, randomized: concurrent admin writers, a replica from the start and one that joins
 * late (from a snapshot), and watchers on both that download every version they are told. Every
 * downloaded file must equal its scope's content at some committed transaction, computed here from
 * PostgreSQL's feed alone (not from the read service); equal content must carry equal versions on
 * both replicas, and a version must never name two contents. Seeded: `SYNC_SEEDS=20` runs seeds
 * 1..20 (default 3, about 20 s), `SYNC_SEED=n` runs seed n alone.
 */
const SEEDS = process.env.SYNC_SEED ? [Number(process.env.SYNC_SEED)] : Array.from({ length: Number(process.env.SYNC_SEEDS ?? 3) }, (_, i) => i + 1);
const WRITERS = 3;
const OPS_PER_WRITER = 40;

let sys: System;
beforeAll(async () => {
  // Its own database: the check replays the feed from revision 1, which other suites prune. Small
  // feed messages, so most transactions span several and a torn one would be served.
  sys = await startSystem({ DATABASE_URL: inject('isolatedDatabaseUrl'), FEED_BATCH_EVENTS: '7' });
});
afterAll(async () => {
  await sys?.stop();
});

/** A downloaded file: which replica and scope, its version, and its rows as one canonical string. */
interface Download {
  replica: string;
  scope: string;
  version: string;
  content: string;
}

const scopeKey = (logicalId: number | undefined): string => (logicalId === undefined ? 'global' : String(logicalId));

/** Watches one scope on one replica and downloads every version it is told, pinned to that version. */
function follow(replica: Replica, label: string, token: string, logicalId: number | undefined, into: Download[]) {
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
            into.push({ replica: label, scope: scopeKey(logicalId), version: got.header.version, content: JSON.stringify(exportRows(file)) });
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

type Row = Record<string, unknown>;
const hex = (uuid: unknown): string => String(uuid).replace(/-/g, '').toUpperCase();
const sortRows = (rows: unknown[][]): unknown[][] => rows.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

/** A scope's daemon database rows (exportRows' form) from the replayed tables. */
function exportOf(tables: Map<string, Map<string, Row>>, logicalId: number | undefined): string {
  const t = (name: string): Row[] => [...(tables.get(name)?.values() ?? [])];
  const habits = t('habits').filter((h) => h['is_active'] === true && (h['account_logical_id'] === null || (logicalId !== undefined && h['account_logical_id'] === logicalId)));
  habits.sort((a, b) => {
    const pa = a['priority'] as number | null;
    const pb = b['priority'] as number | null;
    if (pa !== pb) return pa === null ? 1 : pb === null ? -1 : pb - pa;
    return String(a['uuid']) < String(b['uuid']) ? -1 : 1;
  });
  const ids = new Set(habits.map((h) => String(h['uuid'])));
  const links = (table: string, column: string) => t(table).filter((l) => ids.has(String(l['habit_uuid']))).map((l) => [String(l['habit_uuid']), String(l[column])]);
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

const PRIMARY_KEYS: Record<string, string[]> = { habit_pixels: ['habit_uuid', 'pixel_uuid'], habit_shapes: ['habit_uuid', 'shape_uuid'] };
const EXPORTED = new Set(['habits', 'habit_pixels', 'pixels', 'dots', 'colors', 'habit_shapes', 'shapes']);

/**
 * Every content each scope had at the end of a transaction from revision `from` on, replaying
 * PostgreSQL's feed from revision 1 (the state before `from` is needed, its contents are not).
 */
async function committedContents(scopes: (number | undefined)[], from: number): Promise<Map<string, Set<string>>> {
  const { rows } = await sys.db.query<{ revision: string; table_name: string; operation: string; row: Row; txid: string | null }>(
    'select revision, table_name, operation, row, txid::text as txid from feed_events order by revision',
  );
  expect(Number(rows[0]?.revision ?? 1)).toBe(1);
  const tables = new Map<string, Map<string, Row>>();
  const contents = new Map(scopes.map((s) => [scopeKey(s), new Set<string>()]));
  let touched = true;
  rows.forEach((event, i) => {
    if (EXPORTED.has(event.table_name)) {
      touched = true;
      let table = tables.get(event.table_name);
      if (!table) tables.set(event.table_name, (table = new Map()));
      const key = (PRIMARY_KEYS[event.table_name] ?? ['uuid']).map((c) => String(event.row[c])).join('|');
      if (event.operation === 'delete') table.delete(key);
      else table.set(key, event.row);
    }
    const next = rows[i + 1];
    const endsTransaction = event.txid === null || next?.txid !== event.txid;
    // A transaction that touched no exported table leaves every content as it was.
    if (!endsTransaction || !touched || Number(event.revision) < from) return;
    touched = false;
    for (const s of scopes) contents.get(scopeKey(s))!.add(exportOf(tables, s));
  });
  return contents;
}

describe('sync core, model-based and randomized', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: every downloaded file is a committed state of its scope, equal content has equal versions on both replicas, a version names one content`, async () => {
      const random = prng(seed);
      const start = Number((await sys.db.query('select head_revision from feed_state')).rows[0].head_revision);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
      const api = adminApi(sys.write);
      const fleet = await provisionDevice(api);
      const more = [await api.createAccount(), await api.createAccount()];
      for (const account of more) await api.bind(fleet.device.uuid, account.logicalId);
      const accounts = [fleet.logicalId, ...more.map((a) => a.logicalId)];
      const scopes: (number | undefined)[] = [undefined, ...accounts];
      // Where a habit may belong: the device's accounts, global, a logical id no account has, 0.
      const owners: (number | undefined)[] = [...accounts, undefined, undefined, 2_000_000_000 - (uniqueInt() % 100_000), 0];
      // Small pools, so pixels and shapes are shared between habits and lists repeat.
      const pixelPool: Pixel[] = Array.from({ length: 8 }, () => uniquePixel());
      const shapePool: Shape[] = Array.from({ length: 4 }, () => uniqueShape());
      const sample = <T>(pool: readonly T[], max: number): T[] => pool.filter(() => random() < max / pool.length);

      const a = await sys.startReplica();
      await a.service.consumer.caughtUp;
      await a.synced();
      const downloads: Download[] = [];
      const followers = scopes.map((s) => follow(a, 'a', fleet.token, s, downloads));

      const habits: Habit[] = [];
      let done = 0;
      let startLate = (): void => undefined;
      const halfway = new Promise<void>((resolve) => (startLate = resolve));
      const tolerated = (err: ServiceError): void => {
        // Writers race: another may have deleted the habit or changed it meanwhile.
        if (err.code !== status.NOT_FOUND && err.code !== status.ABORTED) throw err;
      };
      const operation = async (): Promise<void> => {
        const target = habits.length ? pick(habits) : undefined;
        const roll = random();
        if (!target || roll < 0.25) {
          // Now and then one transaction larger than a Subscribe batch (500 events).
          const big = random() < 0.04;
          habits.push(
            await api.createHabit({
              accountLogicalId: pick(owners),
              action: `op-${seed}`,
              priority: pick([null, 1, 5, 9]) ?? undefined,
              isActive: random() < 0.85,
              pixels: big ? Array.from({ length: 150 }, () => uniquePixel()) : sample(pixelPool, 3),
              shapes: sample(shapePool, 2),
            }),
          );
          return;
        }
        const update = (habit: Partial<Habit>, mask: string[]): Promise<unknown> => api.updateHabit({ uuid: target.uuid, ...habit }, mask).catch(tolerated);
        if (roll < 0.4) await update({ comment: `c${Math.floor(random() * 3)}`, priority: pick([1, 5, 9]) }, ['comment', 'priority']);
        else if (roll < 0.55) await update({ pixels: random() < 0.3 ? target.pixels : sample(pixelPool, 3) }, ['pixels']);
        else if (roll < 0.62) await update({ shapes: sample(shapePool, 2) }, ['shapes']);
        else if (roll < 0.72) await update({ isActive: random() < 0.5 }, ['is_active']);
        else if (roll < 0.82) await update({ accountLogicalId: pick(owners) }, ['account_logical_id']);
        else if (roll < 0.9) await update({ action: target.action, pixels: target.pixels }, ['action', 'pixels']);
        else {
          habits.splice(habits.indexOf(target), 1);
          await api.deleteHabit(target.uuid).catch(tolerated);
        }
      };
      const writers = Array.from({ length: WRITERS }, async () => {
        for (let i = 0; i < OPS_PER_WRITER; i++) {
          await operation();
          if (++done === (WRITERS * OPS_PER_WRITER) / 2) startLate();
        }
      });

      // The late replica starts from a snapshot while the writers go on.
      await halfway;
      const b = await sys.startReplica();
      await b.service.consumer.caughtUp;
      followers.push(...scopes.map((s) => follow(b, 'b', fleet.token, s, downloads)));
      await Promise.all(writers);
      await a.synced();
      await b.synced();

      // Both replicas agree on every scope's final version, and each watcher downloads it.
      const finals = new Map<string, string>();
      for (const s of scopes) {
        const onA = (await checkVersion(a.daemon(), fleet.token, s)).version;
        expect((await checkVersion(b.daemon(), fleet.token, s)).version, `final version of scope ${scopeKey(s)}`).toBe(onA);
        finals.set(scopeKey(s), onA);
      }
      await vi.waitFor(
        () => {
          for (const [scope, version] of finals) {
            for (const replica of ['a', 'b']) expect(downloads.some((d) => d.replica === replica && d.scope === scope && d.version === version), `${replica} ${scope}`).toBe(true);
          }
        },
        { timeout: 30_000, interval: 50 },
      );
      for (const f of followers) await f.stop();
      await b.stop();
      await a.stop();

      const committed = await committedContents(scopes, start);
      const versionsOf = new Map<string, Set<string>>();
      const contentsOf = new Map<string, Set<string>>();
      for (const d of downloads) {
        expect(committed.get(d.scope)!.has(d.content), `a file of scope ${d.scope} (replica ${d.replica}, ${d.version}) that PostgreSQL never committed`).toBe(true);
        const byContent = `${d.scope} ${d.content}`;
        const byVersion = `${d.scope} ${d.version}`;
        if (!versionsOf.has(byContent)) versionsOf.set(byContent, new Set());
        if (!contentsOf.has(byVersion)) contentsOf.set(byVersion, new Set());
        versionsOf.get(byContent)!.add(d.version);
        contentsOf.get(byVersion)!.add(d.content);
      }
      for (const [, versions] of versionsOf) expect(versions.size, 'one content, one version on both replicas').toBe(1);
      for (const [, contents] of contentsOf) expect(contents.size, 'one version, one content').toBe(1);
      // Not vacuous: both replicas downloaded, and more than one content per scope.
      expect(new Set(downloads.map((d) => d.replica))).toEqual(new Set(['a', 'b']));
      expect(contentsOf.size).toBeGreaterThan(scopes.length);
      if (process.env.SYNC_SEEDS || process.env.SYNC_SEED) {
        process.stdout.write(`seed ${seed}: ${done} operations, ${downloads.length} downloads, ${versionsOf.size} contents, ${followers.reduce((n, f) => n + f.gone(), 0)} versions gone before download\n`);
      }
    }, 120_000);
  }
});
