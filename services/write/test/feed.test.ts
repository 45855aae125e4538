import { performance } from 'node:perf_hooks';
import { status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import {
  CreateDeviceRequest,
  DeviceServiceClient,
} from '@titanbot/contracts/titanbot/admin/v1/device_service';
import {
  DaemonTokenServiceClient,
  IssueDaemonTokenRequest,
} from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import {
  CreateEmpireDateRequest,
  EmpireDateServiceClient,
} from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import {
  CreateHabitRequest,
  HabitServiceClient,
  ShapeType,
  UpdateHabitRequest,
} from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import {
  CreateLegionRequest,
  LegionServiceClient,
  UpdateLegionRequest,
} from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import {
  ChangeFeedServiceClient,
  Operation,
  SnapshotRequest,
  SubscribeRequest,
  type ChangeEvent,
  type SnapshotResponse,
  type SubscribeResponse,
} from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { FED_TABLES, FeedNotifier, pruneFeed } from '../src/db/feed-store.js';
import { FeedReads } from '../src/app/feed-subscription.js';
import { pino } from 'pino';
import { initOrm } from '../src/db/orm.js';
import { call, errorDetails, startHarness, uniqueInt, withKey, type Harness } from './support/harness.js';


/** Primary key columns of every fed table (default: uuid). */
const PRIMARY_KEYS: Record<string, string[]> = {
  sshes: ['device_uuid'],
  device_accounts: ['device_uuid', 'account_uuid'],
  habit_pixels: ['habit_uuid', 'pixel_uuid'],
  habit_shapes: ['habit_uuid', 'shape_uuid'],
  rollout_habits: ['rollout_uuid', 'habit_uuid'],
  rollout_habit_pixels: ['rollout_uuid', 'habit_uuid', 'pixel_uuid'],
  rollout_habit_shapes: ['rollout_uuid', 'habit_uuid', 'shape_uuid'],
};
/** The columns tables with an allow-list put on the feed (migrations 0002 and 0010); the others send every column. */
const FED_COLUMNS: Record<string, string[]> = {
  daemon_tokens: ['uuid', 'device_uuid', 'token_hash', 'prefix', 'create_time', 'expire_time', 'revoke_time', 'kind'],
  rollouts: ['uuid', 'state', 'account_logical_id', 'steps', 'current_step'],
};
const keyOf = (table: string, row: Record<string, unknown>): string =>
  (PRIMARY_KEYS[table] ?? ['uuid']).map((c) => String(row[c])).join('|');

/** A Subscribe stream that records everything it receives until cancelled. */
class Subscription {
  readonly events: ChangeEvent[] = [];
  readonly progress: { at: number; head: number }[] = [];
  readonly epochs = new Set<string>();
  error: ServiceError | undefined;
  ended = false;
  private recording = true;
  private readonly stream: ClientReadableStream<SubscribeResponse>;

  constructor(client: ChangeFeedServiceClient, key: string, req: { afterRevision?: number; epoch?: string }) {
    this.stream = client.subscribe(SubscribeRequest.fromPartial(req), withKey(key));
    this.stream.on('data', (m: SubscribeResponse) => {
      if (!this.recording) return;
      this.epochs.add(m.epoch);
      if (m.kind?.$case === 'batch') {
        this.events.push(...m.kind.value.events);
      } else if (m.kind?.$case === 'progress') {
        this.progress.push({ at: performance.now(), head: m.kind.value.headRevision });
      }
    });
    this.stream.on('error', (err: ServiceError) => {
      if (this.recording) this.error = err;
    });
    this.stream.on('end', () => (this.ended = true));
  }

  get lastRevision(): number | undefined {
    return this.events.at(-1)?.revision;
  }

  /** Resolves once `pred` holds; rejects with the stream's error, or after `timeoutMs` (a guard, not a latency bound). */
  async until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    await vi.waitFor(
      () => {
        if (this.error) throw new Error(`stream failed while waiting for ${what}: ${this.error.message}`);
        expect(pred(), what).toBe(true);
      },
      { timeout: timeoutMs, interval: 5 },
    );
  }

  /** Resolves with the stream's error (rejects if it ends without one, or after `timeoutMs`). */
  async failure(timeoutMs = 5_000): Promise<ServiceError & { reason: string }> {
    const error = await vi.waitFor(
      () => {
        expect(this.ended && !this.error, 'stream ended without an error').toBe(false);
        expect(this.error, 'the stream\'s error').toBeDefined();
        return this.error!;
      },
      { timeout: timeoutMs, interval: 5 },
    );
    return Object.assign(error, { reason: errorDetails(error).reason });
  }

  /** Caught up: a progress message at or beyond `head` (progress follows the history). */
  caughtUp(head: number, timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.progress.some((p) => p.head >= head), timeoutMs, `progress >= ${head}`);
  }

  cancel(): void {
    this.recording = false;
    this.stream.cancel();
  }
}

describe('change feed', () => {
  let h: Harness;
  let db: pg.Client;
  let feed: ChangeFeedServiceClient;
  let legions: LegionServiceClient;
  let habits: HabitServiceClient;
  let empireDates: EmpireDateServiceClient;
  let devices: DeviceServiceClient;
  let tokens: DaemonTokenServiceClient;
  const open: Subscription[] = [];

  const head = async (): Promise<number> =>
    Number((await db.query<{ head_revision: string }>('select head_revision from feed_state')).rows[0]!.head_revision);
  const epoch = async (): Promise<string> => (await db.query<{ epoch: string }>('select epoch from feed_state')).rows[0]!.epoch;
  const subscribe = (req: { afterRevision?: number; epoch?: string }, client = feed, key = h.readerToken): Subscription => {
    const s = new Subscription(client, key, req);
    open.push(s);
    return s;
  };
  const createLegion = (title: string) =>
    call(legions, legions.createLegion, CreateLegionRequest.fromPartial({ legion: { title } }), h.adminToken);

  beforeAll(async () => {
    h = await startHarness();
    db = new pg.Client({ connectionString: inject('databaseUrl') });
    await db.connect();
    feed = h.client(ChangeFeedServiceClient);
    legions = h.client(LegionServiceClient);
    habits = h.client(HabitServiceClient);
    empireDates = h.client(EmpireDateServiceClient);
    devices = h.client(DeviceServiceClient);
    tokens = h.client(DaemonTokenServiceClient);
  });
  afterAll(async () => {
    for (const s of open) s.cancel();
    await db?.end();
    await h?.stop();
  });

  it('shares one read among subscribers woken by the same notification, and never answers a later one with an older read', async () => {
    const orm = await initOrm(inject('databaseUrl'), { poolMax: 2 });
    const notifier = new FeedNotifier(inject('databaseUrl'), pino({ level: 'silent' }));
    try {
      await notifier.start();
      const reads = new FeedReads(orm.em.fork(), notifier, 100);
      await createLegion('feed-shared-read');
      const after = (await head()) - 1;
      const since = notifier.generation;
      const first = reads.read(after, since);
      // Woken by the same notification: the read in flight answers it.
      expect(reads.read(after, since)).toBe(first);
      // Woken by a later one: that read may have started before the commit it was told of.
      const later = reads.read(after, since + 1);
      expect(later).not.toBe(first);
      // Once settled, a read is not kept: the next one asks PostgreSQL again.
      expect((await first)[0]?.revision).toBe(after + 1);
      await later;
      expect(reads.read(after, since)).not.toBe(first);
    } finally {
      await notifier.stop();
      await orm.close(true);
    }
  });

  it('delivers every revision exactly once, gapless and in order, to 12 live subscribers (sharing reads) while 8 writers commit concurrently', async () => {
    const head0 = await head();
    const feedEpoch = await epoch();
    const subs = Array.from({ length: 12 }, () => subscribe({ afterRevision: head0, epoch: feedEpoch }));
    const sub = subs[0]!;
    const stopAt = performance.now() + 3_000;
    const created = new Set<string>();
    let calls = 0;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; performance.now() < stopAt; i++) {
        const legion = await createLegion(`feed-w${w}-${i}`);
        created.add(legion.uuid);
        await call(
          legions,
          legions.updateLegion,
          UpdateLegionRequest.fromPartial({
            legion: { uuid: legion.uuid, title: `feed-w${w}-${i}-renamed`, payDayOfMonth: 1 + (i % 28) },
            updateMask: ['title', 'pay_day_of_month'],
          }),
          h.adminToken,
        );
        if (i % 3 === 2) await call(legions, legions.deleteLegion, { uuid: legion.uuid }, h.adminToken);
        if (i % 2 === 0) {
          const days = 40_000 + Math.floor(Math.random() * 300_000);
          const date = new Date(Date.UTC(2000, 0, 1) + days * 86_400_000);
          const ed = await call(empireDates, empireDates.createEmpireDate, CreateEmpireDateRequest.fromPartial({ empireDate: { date } }), h.adminToken);
          await call(empireDates, empireDates.deleteEmpireDate, { uuid: ed.uuid }, h.adminToken);
        } else {
          const habit = await call(
            habits,
            habits.createHabit,
            CreateHabitRequest.fromPartial({
              habit: {
                comment: `feed-w${w}-${i}`,
                pixels: [{ x: 1 + (uniqueInt() % 5000), y: 1 + w, rgbHex: 'a1b2c3', deviation: i % 4 }],
                shapes: [{ type: ShapeType.SHAPE_TYPE_CIRCLE, x: uniqueInt() % 5000, y: w, width: 3, height: 3, size: 1, rgbHex: '00FF00' }],
              },
            }),
            h.adminToken,
          );
          await call(habits, habits.deleteHabit, { uuid: habit.uuid }, h.adminToken);
        }
        calls++;
      }
    };
    // One more subscriber joins mid-way, behind the others: it reads its own way up, then shares.
    const late = (async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      const from = await head();
      return { from, sub: subscribe({ afterRevision: from - 20, epoch: feedEpoch }) };
    })();
    await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
    const final = await head();
    const joined = await late;
    for (const s2 of [...subs, joined.sub]) await s2.caughtUp(final);
    const upTo = (s2: Subscription): number[] => s2.events.map((e) => e.revision).filter((r) => r <= final);
    for (const s2 of subs) expect(upTo(s2)).toEqual(upTo(sub));
    expect(upTo(joined.sub)).toEqual(Array.from({ length: final - joined.from + 20 }, (_, i) => joined.from - 19 + i));

    const revisions = sub.events.map((e) => e.revision).filter((r) => r <= final);
    expect(calls).toBeGreaterThan(8);
    expect(final - head0).toBeGreaterThan(100);
    expect(revisions).toEqual(Array.from({ length: final - head0 }, (_, i) => head0 + 1 + i));
    // Strictly increasing over everything received (including events after `final` from elsewhere).
    const all = sub.events.map((e) => e.revision);
    expect(all.every((r, i) => i === 0 || r === all[i - 1]! + 1)).toBe(true);
    expect([...sub.epochs]).toEqual([await epoch()]);
    expect(sub.events.every((e) => e.commitTime instanceof Date && e.operation !== Operation.OPERATION_UNSPECIFIED)).toBe(true);

    // Content: the last event of each legion equals its row (or its absence) in PostgreSQL.
    const last = new Map<string, ChangeEvent>();
    for (const e of sub.events) if (e.table === 'legions' && created.has(String(e.row!['uuid']))) last.set(String(e.row!['uuid']), e);
    expect(last.size).toBe(created.size);
    const rows = await db.query<{ doc: Record<string, unknown> }>('select to_jsonb(t) as doc from legions t where uuid = any($1::uuid[])', [
      [...created],
    ]);
    const inDb = new Map(rows.rows.map((r) => [String(r.doc['uuid']), r.doc]));
    let deletes = 0;
    for (const [uuid, e] of last) {
      if (e.operation === Operation.OPERATION_DELETE) {
        deletes++;
        expect(inDb.has(uuid)).toBe(false);
      } else {
        expect(e.operation).toBe(Operation.OPERATION_UPSERT);
        expect(e.row).toEqual(inDb.get(uuid));
        expect(String(e.row!['title'])).toMatch(/-renamed$/);
      }
    }
    expect(deletes).toBeGreaterThan(0);
    expect(inDb.size).toBe(created.size - deletes);
  }, 60_000);

  it('resumes after a cancelled stream from the last received revision and epoch with no gap and no duplicate', async () => {
    const head0 = await head();
    const ep = await epoch();
    let writing = true;
    const writes = (async () => {
      for (let i = 0; writing || i < 20; i++) await createLegion(`feed-reconnect-${i}`);
    })();
    let received: ChangeEvent[] = [];
    let resumeAt = 0;
    let second!: Subscription;
    try {
      const first = subscribe({ afterRevision: head0, epoch: ep });
      await first.until(() => first.events.length >= 10, 10_000, '10 events');
      first.cancel();
      received = [...first.events];
      resumeAt = received.at(-1)!.revision;
      // More commits while disconnected.
      await vi.waitFor(async () => expect(await head()).toBeGreaterThan(resumeAt + 5), { interval: 5 });
      second = subscribe({ afterRevision: resumeAt, epoch: ep });
      await second.until(() => second.events.length >= 10, 10_000, '10 more events');
    } finally {
      // Stop the writer even when a stream failed, so it never outlives the test.
      writing = false;
      await writes;
    }
    const final = await head();
    await second.caughtUp(final);

    expect([...second.epochs]).toEqual([ep]);
    expect(second.events[0]!.revision).toBe(resumeAt + 1);
    const revisions = [...received, ...second.events].map((e) => e.revision).filter((r) => r <= final);
    expect(revisions).toEqual(Array.from({ length: final - head0 }, (_, i) => head0 + 1 + i));
  }, 30_000);

  it('reproduces every fed table exactly from a Snapshot plus the events after its revision', async () => {
    // Make sure every kind of row exists: device with ssh, account binding, habit with pixels and shapes, token.
    const device = await call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), h.adminToken);
    await call(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: device.uuid }), h.adminToken);
    const habit = await call(
      habits,
      habits.createHabit,
      CreateHabitRequest.fromPartial({
        habit: {
          comment: 'snapshot',
          pixels: [{ x: 7, y: 8, rgbHex: 'ABCDEF', deviation: 2 }],
          shapes: [{ type: ShapeType.SHAPE_TYPE_RECTANGLE, x: 1, y: 2, width: 3, height: 4, size: 5, rgbHex: '123456' }],
        },
      }),
      h.adminToken,
    );

    const snap = feed.snapshot(SnapshotRequest.fromPartial({}), withKey(h.readerToken));
    let header: { epoch: string; revision: number; tables: string[] } | undefined;
    const state = new Map<string, Map<string, Record<string, unknown>>>();
    await new Promise<void>((resolve, reject) => {
      snap.on('data', (m: SnapshotResponse) => {
        if (m.kind?.$case === 'header') {
          expect(header).toBeUndefined();
          header = m.kind.value;
          for (const t of header.tables) state.set(t, new Map());
        } else if (m.kind?.$case === 'rows') {
          const rows = state.get(m.kind.value.table)!;
          for (const r of m.kind.value.rows) rows.set(keyOf(m.kind.value.table, r), r);
        }
      });
      snap.on('error', reject);
      snap.on('end', resolve);
    });
    expect(header).toBeDefined();
    expect(header!.tables).toEqual([...FED_TABLES]);
    expect(header!.epoch).toBe(await epoch());

    // More changes after the snapshot: updates, deletes, new rows in several tables.
    const legion = await createLegion('feed-after-snapshot');
    await call(legions, legions.updateLegion, UpdateLegionRequest.fromPartial({ legion: { uuid: legion.uuid, extTitle: 'x' }, updateMask: ['ext_title'] }), h.adminToken);
    await call(
      habits,
      habits.updateHabit,
      UpdateHabitRequest.fromPartial({
        habit: { uuid: habit.uuid, pixels: [{ x: 9, y: 9, rgbHex: '0000FF', deviation: 0 }], priority: 3 },
        updateMask: ['pixels', 'priority'],
      }),
      h.adminToken,
    );
    const gone = await createLegion('feed-deleted-after-snapshot');
    await call(legions, legions.deleteLegion, { uuid: gone.uuid }, h.adminToken);
    await call(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: device.uuid }), h.adminToken);

    // Read the tables and the head in one snapshot, so concurrent writers elsewhere cannot skew it.
    const expected = new Map<string, Map<string, Record<string, unknown>>>();
    let target: number;
    await db.query('begin isolation level repeatable read read only');
    try {
      target = Number((await db.query<{ head_revision: string }>('select head_revision from feed_state')).rows[0]!.head_revision);
      for (const table of FED_TABLES) {
        const columns = FED_COLUMNS[table];
        const project = columns ? `jsonb_build_object(${columns.map((c) => `'${c}', t.${c}`).join(', ')})` : 'to_jsonb(t)';
        const { rows } = await db.query<{ doc: Record<string, unknown> }>(`select ${project} as doc from ${table} t`);
        expected.set(table, new Map(rows.map((r) => [keyOf(table, r.doc), r.doc])));
      }
    } finally {
      await db.query('commit');
    }
    expect(target).toBeGreaterThan(header!.revision);

    const sub = subscribe({ afterRevision: header!.revision, epoch: header!.epoch });
    await sub.caughtUp(target);
    const events = sub.events.filter((e) => e.revision <= target);
    expect(events.map((e) => e.revision)).toEqual(Array.from({ length: target - header!.revision }, (_, i) => header!.revision + 1 + i));
    for (const e of events) {
      const rows = state.get(e.table);
      expect(rows, `table ${e.table} is in the snapshot`).toBeDefined();
      const k = keyOf(e.table, e.row!);
      if (e.operation === Operation.OPERATION_DELETE) rows!.delete(k);
      else rows!.set(k, e.row!);
    }
    for (const table of FED_TABLES) {
      const got = [...state.get(table)!.entries()].sort(([a], [b]) => a.localeCompare(b));
      const want = [...expected.get(table)!.entries()].sort(([a], [b]) => a.localeCompare(b));
      expect(got, `table ${table}`).toEqual(want);
    }
    expect(expected.get('legions')!.has(legion.uuid)).toBe(true);
    expect(state.get('legions')!.get(legion.uuid)!['ext_title']).toBe('x');
    expect(state.get('legions')!.has(gone.uuid)).toBe(false);
    expect(state.get('habit_pixels')!.size).toBeGreaterThan(0);
    expect(state.get('habit_shapes')!.size).toBeGreaterThan(0);
    expect(state.get('sshes')!.size + state.get('daemon_tokens')!.size).toBeGreaterThan(0);
  }, 30_000);

  it('sends periodic progress with the head revision on an idle stream', async () => {
    const head0 = await head();
    const sub = subscribe({ afterRevision: head0 });
    await sub.until(() => sub.progress.length >= 3, 10_000, '3 progress messages');
    // Paced by FEED_PROGRESS_INTERVAL (200 ms), not sent in a burst.
    const gaps = sub.progress.slice(1, 3).map((p, i) => p.at - sub.progress[i]!.at);
    for (const g of gaps) expect(g).toBeGreaterThan(100);
    // Each progress carries the head as of that moment: never behind what the stream delivered.
    const nowHead = await head();
    for (const p of sub.progress) {
      expect(p.head).toBeGreaterThanOrEqual(head0);
      expect(p.head).toBeLessThanOrEqual(nowHead);
    }
    expect(sub.progress.at(-1)!.head).toBe(sub.lastRevision ?? head0);
  });

  it('wakes an idle subscriber through LISTEN/NOTIFY: with a 1 h progress interval, only a notification can deliver the change', async () => {
    const slow = await startHarness({ FEED_PROGRESS_INTERVAL: '1h' });
    try {
      const client = slow.client(ChangeFeedServiceClient);
      const head0 = await head();
      const sub = subscribe({ afterRevision: head0 }, client, slow.readerToken);
      // The first progress follows the history; the server then waits for a notification (or 1 h).
      await sub.caughtUp(head0);
      for (let i = 0; i < 3; i++) {
        const legion = await createLegion(`feed-wakeup-${i}`);
        await sub.until(() => sub.events.some((e) => e.table === 'legions' && e.row!['uuid'] === legion.uuid), 10_000, 'the new legion on the feed');
      }
      sub.cancel();
    } finally {
      await slow.stop();
    }
  }, 30_000);

  it('publishes daemon tokens with only uuid, device_uuid, token_hash, prefix, create_time, expire_time, revoke_time, kind, including revocation and rotation grace', async () => {
    const head0 = await head();
    const sub = subscribe({ afterRevision: head0 });
    const device = await call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), h.adminToken);
    const issued = await call(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: device.uuid }), h.adminToken);
    expect(issued.token.startsWith('tbd_')).toBe(true);
    const toRevoke = issued.daemonToken!.uuid;
    await call(tokens, tokens.revokeDaemonToken, { uuid: toRevoke }, h.adminToken);

    const second = await call(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: device.uuid }), h.adminToken);
    const rotateStart = Date.now();
    const rotated = await call(feed, feed.rotateDaemonToken, { token: second.token }, h.readerToken);
    const rotateEnd = Date.now();
    expect(rotated.token.startsWith('tbd_')).toBe(true);
    expect(rotated.token).not.toBe(second.token);
    expect(rotated.deviceUuid).toBe(device.uuid);
    expect(rotated.uuid).not.toBe(second.daemonToken!.uuid);

    const final = await head();
    await sub.caughtUp(final);
    const tokenEvents = sub.events.filter((e) => e.table === 'daemon_tokens' && e.revision <= final);
    const mine = (uuid: string): ChangeEvent[] => tokenEvents.filter((e) => e.row!['uuid'] === uuid);
    for (const e of tokenEvents) expect(Object.keys(e.row!).sort()).toEqual([...FED_COLUMNS.daemon_tokens!].sort());
    // No plaintext token anywhere on the feed: only the shown prefix (`tbd_` + 6 characters).
    for (const e of tokenEvents) expect(String(e.row!['prefix'])).toMatch(/^tbd_[0-9A-Za-z]{6}$/);
    for (const plaintext of [issued.token, second.token, rotated.token]) {
      expect(JSON.stringify(sub.events.map((e) => e.row))).not.toContain(plaintext.slice(4));
    }

    // Issue, then revoke: the last event of the revoked token carries revoke_time.
    const revokedEvents = mine(toRevoke);
    expect(revokedEvents.length).toBeGreaterThanOrEqual(2);
    expect(revokedEvents[0]!.row!['revoke_time']).toBeNull();
    expect(revokedEvents.at(-1)!.operation).toBe(Operation.OPERATION_UPSERT);
    expect(revokedEvents.at(-1)!.row!['revoke_time']).toEqual(expect.any(String));

    // Rotation: the successor appears; the old token's expiry shrinks to about now + 10 min.
    const successor = mine(rotated.uuid);
    expect(successor).toHaveLength(1);
    expect(successor[0]!.row!['device_uuid']).toBe(device.uuid);
    expect(Date.parse(String(successor[0]!.row!['expire_time']))).toBe(rotated.expireTime!.getTime());
    const old = mine(second.daemonToken!.uuid);
    const originalExpiry = Date.parse(String(old[0]!.row!['expire_time']));
    expect(originalExpiry).toBe(second.daemonToken!.expireTime!.getTime());
    const shortened = Date.parse(String(old.at(-1)!.row!['expire_time']));
    expect(shortened).toBeLessThan(originalExpiry);
    expect(shortened).toBeGreaterThanOrEqual(rotateStart + 600_000 - 2_000);
    expect(shortened).toBeLessThanOrEqual(rotateEnd + 600_000 + 2_000);
    expect(shortened).toBe(rotated.previousExpireTime!.getTime());
    expect(old.at(-1)!.row!['revoke_time']).toBeNull();

    // The rotated token cannot be rotated again; a revoked one cannot be rotated.
    for (const token of [second.token, issued.token]) {
      const err = await call(feed, feed.rotateDaemonToken, { token }, h.readerToken).then(
        () => undefined,
        (e: ServiceError) => e,
      );
      expect(err?.code).toBe(status.UNAUTHENTICATED);
    }
  }, 30_000);

  // Last: pruning empties the retained history for every later subscriber in this file.
  it('fails with FAILED_PRECONDITION RESYNC_REQUIRED behind the retention floor, ahead of the head, or on a foreign epoch', async () => {
    // Some history to prune.
    await createLegion('feed-before-prune');
    const orm = await initOrm(inject('databaseUrl'), { poolMax: 2 });
    let pruned: number;
    try {
      pruned = await pruneFeed(orm.em.fork(), new Date(Date.now() + 1_000));
    } finally {
      await orm.close(true);
    }
    expect(pruned).toBeGreaterThan(0);
    const { rows } = await db.query<{ retained_from: string; head_revision: string; epoch: string }>(
      'select retained_from, head_revision, epoch from feed_state',
    );
    const floor = Number(rows[0]!.retained_from);
    const head1 = Number(rows[0]!.head_revision);
    const ep = rows[0]!.epoch;
    expect(floor).toBeGreaterThan(1);

    for (const req of [
      { afterRevision: 0 },
      { afterRevision: floor - 2, epoch: ep },
      { afterRevision: head1 + 1_000_000, epoch: ep }, // ahead of the head
      { afterRevision: floor - 1, epoch: '00000000-0000-4000-8000-000000000000' }, // foreign epoch
    ]) {
      const err = await subscribe(req).failure();
      expect(err.code, JSON.stringify(req)).toBe(status.FAILED_PRECONDITION);
      expect(err.reason, JSON.stringify(req)).toBe('RESYNC_REQUIRED');
    }

    // Exactly at the floor is still fine: nothing was lost after it.
    const ok = subscribe({ afterRevision: floor - 1, epoch: ep });
    await ok.caughtUp(floor - 1);
    const legion = await createLegion('feed-after-prune');
    await ok.until(() => ok.events.some((e) => e.row!['uuid'] === legion.uuid), 5_000, 'the post-prune legion');
    expect(ok.events[0]!.revision).toBe(floor);
    expect(ok.error).toBeUndefined();
  }, 30_000);
});
