import { status, type ServiceError } from '@grpc/grpc-js';
import { RolloutServiceClient, RolloutState, type Rollout, type RolloutChange } from '@titanbot/contracts/titanbot/admin/v1/rollout_service';
import type { Habit, Pixel } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { inCohort, type CohortStep } from '@titanbot/service-kit/cohort';
import { errorReason } from '@titanbot/service-kit/status';
import { call } from '@titanbot/write/test-support/harness';
import { prng } from '@titanbot/write/test-support/prng';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { adminApi, uniquePixel } from './support/admin.js';
import { checkVersion } from './support/daemon.js';
import { exportOf, follow, replayFeed, scopeKey, type Download } from './support/feed-model.js';
import { startSystem, type System } from './support/system.js';

/**
 * Model-based, randomized (as sync-randomized): ordinary admin writers and a rollout driver
 * (create, start, advance, pause, abort, complete, global and per account) run concurrently; a
 * replica serves from the start and one joins late from a snapshot; every device watches its scope
 * on both and downloads every version it is told. Checked against PostgreSQL's feed replayed here
 * (support/feed-model.ts): every file a device ever held is its scope's stable content at some
 * committed transaction or, while the device was in the cohort of a running or paused rollout's
 * current step, that rollout's candidate content at some committed transaction; cohorts never
 * shrink from one step to the next; once every rollout has ended (the last one aborted or completed)
 * every device holds its scope's stable version on both replicas; one content has one version on
 * every replica and a version names one content. `ROLLOUT_SEEDS=20` runs seeds 1..20 (default 2),
 * `ROLLOUT_SEED=n` seed n alone.
 */
const SEEDS = process.env.ROLLOUT_SEED ? [Number(process.env.ROLLOUT_SEED)] : Array.from({ length: Number(process.env.ROLLOUT_SEEDS ?? 2) }, (_, i) => i + 1);
const WRITERS = 2;
const OPS_PER_WRITER = 25;
const ROLLOUT_ACTIONS = 24;
const DEVICES_PER_ACCOUNT = 4;

let sys: System;
beforeAll(async () => {
  // Its own database: it replays the feed from revision 1 and opens global rollouts (which hold every scope).
  sys = await startSystem({ DATABASE_URL: inject('rolloutModelDatabaseUrl'), FEED_BATCH_EVENTS: '7' });
});
afterAll(async () => {
  await sys?.stop();
});

/** Calls that race with the other tasks may be refused; anything else fails the test. */
const RACES = new Set(['ROLLOUT_IN_PROGRESS', 'ROLLOUT_STATE_MISMATCH', 'NOT_FOUND', 'ETAG_MISMATCH', 'CONCURRENT_MODIFICATION']);
const tolerated = (err: ServiceError): undefined => {
  if (!RACES.has(errorReason(err)) && err.code !== status.NOT_FOUND) throw err;
  return undefined;
};

/** A candidate content a device may hold while in the cohort of `rollout`'s step `step`. */
interface Candidate {
  rollout: string;
  steps: CohortStep[];
  step: number;
}

describe('staged rollouts, model-based and randomized', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: every file a device holds is its scope's stable content or, in a cohort, the candidate; cohorts never shrink; all converge when rollouts end`, async () => {
      const random = prng(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
      const start = Number((await sys.db.query('select head_revision from feed_state')).rows[0].head_revision);
      const api = adminApi(sys.write);
      const rollouts = sys.write.client(RolloutServiceClient);
      const key = sys.write.adminToken;
      const accounts = [(await api.createAccount()).logicalId, (await api.createAccount()).logicalId];
      const devices: { uuid: string; token: string; logicalId: number }[] = [];
      for (const logicalId of accounts) {
        for (let i = 0; i < DEVICES_PER_ACCOUNT; i++) {
          const device = await api.createDevice();
          await api.bind(device.uuid, logicalId);
          devices.push({ uuid: device.uuid, token: (await api.issueToken(device.uuid)).token, logicalId });
        }
      }
      const owners: (number | undefined)[] = [undefined, ...accounts];
      const pixelPool: Pixel[] = Array.from({ length: 6 }, () => uniquePixel());
      const habits: Habit[] = [];
      for (const owner of [...owners, ...owners]) habits.push(await api.createHabit({ accountLogicalId: owner, action: `seed ${seed}`, pixels: [pick(pixelPool)] }));

      const a = await sys.startReplica();
      await a.service.consumer.caughtUp;
      await a.synced();
      const downloads: Download[] = [];
      const followers = devices.map((d) => follow(a, 'a', d.token, d.logicalId, downloads, d.uuid));

      // Ordinary writes: creates, updates and deletes of random habits; those a rollout holds are refused.
      let writes = 0;
      let startLate = (): void => undefined;
      const halfway = new Promise<void>((resolve) => (startLate = resolve));
      const ordinary = async (): Promise<void> => {
        const target = pick(habits);
        const roll = random();
        if (roll < 0.2) habits.push(await api.createHabit({ accountLogicalId: pick(owners), comment: `w${writes}`, pixels: [pick(pixelPool)] }));
        else if (roll < 0.85) await api.updateHabit({ uuid: target.uuid, comment: `w${writes}`, priority: pick([1, 5, 9]) }, ['comment', 'priority']).catch(tolerated);
        else if (habits.length > 4) {
          habits.splice(habits.indexOf(target), 1);
          await api.deleteHabit(target.uuid).catch(tolerated);
        }
      };
      const writers = Array.from({ length: WRITERS }, async () => {
        for (let i = 0; i < OPS_PER_WRITER; i++) {
          await ordinary();
          if (++writes === (WRITERS * OPS_PER_WRITER) / 2) startLate();
        }
      });

      // The rollout driver: one open rollout at a time, moved at random; the first names a watching device as canary.
      const r = {
        create: (changes: RolloutChange[]) => call(rollouts, rollouts.createRollout, { changes, description: `seed ${seed}`, requestId: '', validateOnly: false }, key),
        start: (uuid: string, percents: number[], canary: string[]) =>
          call(rollouts, rollouts.startRollout, { uuid, etag: '', gates: undefined, steps: percents.map((percent, i) => ({ percent, deviceUuids: i === 0 ? canary : [], minDuration: undefined })) }, key),
        advance: (uuid: string) => call(rollouts, rollouts.advanceRollout, { uuid, etag: '' }, key),
        pause: (uuid: string) => call(rollouts, rollouts.pauseRollout, { uuid, etag: '' }, key),
        abort: (uuid: string) => call(rollouts, rollouts.abortRollout, { uuid, etag: '' }, key),
      };
      let open: Rollout | undefined;
      const outcomes = { started: 0, completed: 0, aborted: 0 };
      const changeFor = (habit: Habit): RolloutChange =>
        random() < 0.15
          ? { change: { $case: 'delete', value: { uuid: habit.uuid } } }
          : { change: { $case: 'update', value: { habit: { uuid: habit.uuid, comment: `rolled ${seed}`, pixels: [pick(pixelPool)], shapes: [], etag: '' }, updateMask: ['comment', 'pixels'] } } };
      const driver = (async () => {
        for (let i = 0; i < ROLLOUT_ACTIONS; i++) {
          if (!open) {
            const owner = pick(owners);
            const inScope = habits.filter((h) => h.accountLogicalId === owner);
            const changes: RolloutChange[] = [...new Set([pick(inScope), pick(inScope)].filter(Boolean))].map(changeFor);
            if (random() < 0.3) changes.push({ change: { $case: 'create', value: { habit: { accountLogicalId: owner, comment: `new ${seed}`, pixels: [pick(pixelPool)], shapes: [], uuid: '', etag: '' }, requestId: '', habitId: '', validateOnly: false } } });
            const created = changes.length ? await r.create(changes).catch(tolerated) : undefined;
            if (!created) continue;
            const percents = [...new Set([Math.floor(random() * 30), 30 + Math.floor(random() * 60), 100])];
            const canary = outcomes.started === 0 ? [pick(devices.filter((d) => owner === undefined || d.logicalId === owner)).uuid] : [];
            open = await r.start(created.uuid, percents, canary);
            outcomes.started++;
            continue;
          }
          const roll = random();
          const moved = await (roll < 0.55 ? r.advance(open.uuid) : roll < 0.75 ? r.pause(open.uuid) : r.abort(open.uuid)).catch(tolerated);
          if (moved) open = moved;
          if (open.state === RolloutState.ROLLOUT_STATE_COMPLETED || open.state === RolloutState.ROLLOUT_STATE_ABORTED) {
            outcomes[open.state === RolloutState.ROLLOUT_STATE_COMPLETED ? 'completed' : 'aborted']++;
            open = undefined;
          }
        }
      })();

      // The late replica starts from a snapshot while the others go on.
      await halfway;
      const b = await sys.startReplica();
      await b.service.consumer.caughtUp;
      followers.push(...devices.map((d) => follow(b, 'b', d.token, d.logicalId, downloads, d.uuid)));
      await Promise.all([...writers, driver]);
      // The last rollout ends: aborted or completed, at random.
      if (open) {
        if (random() < 0.5) await r.abort(open.uuid);
        else while ((open = await r.advance(open.uuid)).state !== RolloutState.ROLLOUT_STATE_COMPLETED);
      }
      await a.synced();
      await b.synced();

      // Every device holds its scope's stable version on both replicas, and its watchers downloaded it.
      const finals = new Map<string, string>();
      for (const d of devices) {
        const onA = (await checkVersion(a.daemon(), d.token, d.logicalId)).version;
        expect((await checkVersion(b.daemon(), d.token, d.logicalId)).version, `device ${d.uuid} on both replicas`).toBe(onA);
        const scope = scopeKey(d.logicalId);
        expect(finals.get(scope) ?? onA, `every device of scope ${scope} converges to one version`).toBe(onA);
        finals.set(scope, onA);
      }
      await vi.waitFor(
        () => {
          for (const d of devices) {
            for (const replica of ['a', 'b']) {
              expect(downloads.some((x) => x.replica === replica && x.device === d.uuid && x.version === finals.get(scopeKey(d.logicalId))), `${replica} ${d.uuid}`).toBe(true);
            }
          }
        },
        { timeout: 30_000, interval: 50 },
      );
      for (const f of followers) await f.stop();
      await b.stop();
      await a.stop();

      // The model: per scope, every stable content and every candidate content (with the cohort that may hold it) at every commit.
      const stable = new Map(accounts.map((s) => [scopeKey(s), new Set<string>()]));
      const candidates = new Map(accounts.map((s) => [scopeKey(s), new Map<string, Candidate[]>()]));
      const seenSteps = new Map<string, { steps: CohortStep[]; step: number }[]>();
      let finalStable = new Map<string, string>();
      await replayFeed(sys.db, start, (tables) => {
        const active = [...(tables.get('rollouts')?.values() ?? [])].filter((row) => row['state'] === 'running' || row['state'] === 'paused');
        for (const logicalId of accounts) {
          const scope = scopeKey(logicalId);
          stable.get(scope)!.add(exportOf(tables, logicalId));
          for (const row of active) {
            if (row['account_logical_id'] !== null && row['account_logical_id'] !== logicalId) continue;
            const uuid = String(row['uuid']);
            const steps = (row['steps'] as { percent: number; deviceUuids: string[] }[]).map(({ percent, deviceUuids }) => ({ percent, deviceUuids }));
            const step = Number(row['current_step']);
            const content = exportOf(tables, logicalId, uuid);
            const byContent = candidates.get(scope)!;
            byContent.set(content, [...(byContent.get(content) ?? []), { rollout: uuid, steps, step }]);
            const seen = seenSteps.get(uuid) ?? [];
            if (seen.at(-1)?.step !== step) seenSteps.set(uuid, [...seen, { steps, step }]);
          }
        }
        finalStable = new Map(accounts.map((s) => [scopeKey(s), exportOf(tables, s)]));
      });
      let candidateFiles = 0;
      const versionsOf = new Map<string, Set<string>>();
      const contentsOf = new Map<string, Set<string>>();
      for (const d of downloads) {
        const asCandidate = candidates.get(d.scope)!.get(d.content)?.some((c) => inCohort(c.rollout, c.steps, c.step, d.device)) ?? false;
        const asStable = stable.get(d.scope)!.has(d.content);
        expect(asStable || asCandidate, `device ${d.device} (replica ${d.replica}, ${d.version}) held a file that is neither a committed stable content of scope ${d.scope} nor a candidate of a cohort it was in`).toBe(true);
        if (!asStable) candidateFiles++;
        for (const [map, k, v] of [[versionsOf, `${d.scope} ${d.content}`, d.version], [contentsOf, `${d.scope} ${d.version}`, d.content]] as const) {
          if (!map.has(k)) map.set(k, new Set());
          map.get(k)!.add(v);
        }
      }
      for (const [, versions] of versionsOf) expect(versions.size, 'one content, one version on both replicas').toBe(1);
      for (const [, contents] of contentsOf) expect(contents.size, 'one version, one content').toBe(1);
      // The final files are the final stable contents.
      for (const d of downloads.filter((x) => x.version === finals.get(x.scope))) expect(d.content).toBe(finalStable.get(d.scope));
      // Cohorts never shrink: a device in one step's cohort is in every later step's.
      for (const [rollout, seen] of seenSteps) {
        for (const d of devices) {
          const membership = seen.map(({ steps, step }) => inCohort(rollout, steps, step, d.uuid));
          expect(membership.indexOf(true) === -1 || membership.slice(membership.indexOf(true)).every(Boolean), `cohort of ${rollout} shrank for ${d.uuid}`).toBe(true);
        }
      }
      // Not vacuous: rollouts ran, cohort devices held candidates, both replicas served.
      expect(outcomes.started).toBeGreaterThan(0);
      expect(candidateFiles).toBeGreaterThan(0);
      expect(new Set(downloads.map((d) => d.replica))).toEqual(new Set(['a', 'b']));
      if (process.env.ROLLOUT_SEEDS || process.env.ROLLOUT_SEED) {
        process.stdout.write(`seed ${seed}: ${writes} writes, rollouts ${JSON.stringify(outcomes)}, ${downloads.length} downloads (${candidateFiles} candidates)\n`);
      }
    }, 120_000);
  }
});
