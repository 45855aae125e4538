import { status, type ServiceError } from '@grpc/grpc-js';
import type { Habit, Pixel, Shape } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { uniqueInt } from '@titanbot/write/test-support/harness';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { adminApi, provisionDevice, uniquePixel, uniqueShape } from './support/admin.js';
import { checkVersion } from './support/daemon.js';
import { exportOf, follow, replayFeed, scopeKey, type Download } from './support/feed-model.js';
import { startSystem, type System } from './support/system.js';
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

/** Every content each scope had at the end of a transaction from revision `from` on (support/feed-model.ts). */
async function committedContents(scopes: (number | undefined)[], from: number): Promise<Map<string, Set<string>>> {
  const contents = new Map(scopes.map((s) => [scopeKey(s), new Set<string>()]));
  await replayFeed(sys.db, from, (tables) => {
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
