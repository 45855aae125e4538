import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { HabitElements } from './habit-elements.js';
import { habitsTouchedBy } from './habits-touched.js';
import { LtHash } from './lt-hash.js';
import { GLOBAL_SCOPE, sqlValue } from '@titanbot/service-kit/daemon-database';
import { ScopeVersions, type ActiveRollout } from './versions.js';
import { DeviceIndex, type TokenRecord } from './device-index.js';
import type { FeedEvent } from './feed-event.js';
import { dropOutdatedMirror, mirroredValues, MIRRORED_TABLES, READ_MODEL_DDL } from './schema.js';

/** Where the mirror stands on the feed. */
export interface Checkpoint {
  epoch: string;
  revision: number;
}

/** Thrown when a batch does not continue the checkpoint: the consumer must resync. */
export class FeedGapError extends Error {
  constructor(expected: number, got: number) {
    super(`feed gap: expected revision ${expected}, got ${got}`);
    this.name = 'FeedGapError';
  }
}

type Row = Record<string, unknown>;

/**
 * The read replica's state: a SQLite mirror of the fed tables (WAL; one connection writes, one
 * reads) plus the in-memory indexes the hot paths use without touching SQLite: per-scope
 * versions, daemon tokens by hash, and each device's accounts. Memory changes only after the
 * SQLite transaction that caused it commits, so both always describe the same revision.
 */
export class ReadModel {
  readonly versions: ScopeVersions;
  /** Feed events applied by `applyBatch` since this process started (snapshots not included), for metrics. */
  eventsApplied = 0;
  /** Connection for queries and export builds; sees committed state only. */
  readonly reader: Database.Database;
  private readonly writer: Database.Database;
  private checkpointValue: Checkpoint | null = null;
  /** A feed transaction applied to the open SQLite transaction, continuing in the next batch. */
  private pending: PendingTransaction | undefined;
  /** Export elements of habits, read on the writer (inside an open feed transaction). */
  private readonly elements: HabitElements;
  /** Daemon tokens and each device's accounts, in memory for authentication and scope checks. */
  private readonly index = new DeviceIndex();
  private readonly upserts = new Map<string, Database.Statement>();
  private readonly deletes = new Map<string, Database.Statement>();
  private readonly statements = new Map<string, Database.Statement>();
  /** Habits the active rollouts change: a transaction touching one reloads the rollouts. */
  private readonly rolloutHabits = new Set<string>();
  /** `sql`, bound once for the per-event helpers. */
  private readonly sqlOf = (text: string): Database.Statement => this.sql(text);

  /**
   * Opens (creating if needed) `dir/read-model.sqlite` and loads the in-memory indexes and scope
   * versions. `exportFormat` names everything besides the rows that changes an export's bytes
   * (service-kit/daemon-database.ts `exportFormat`): it is part of every version.
   */
  constructor(dir: string, exportFormat: string) {
    this.versions = new ScopeVersions(exportFormat);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'read-model.sqlite');
    this.writer = new Database(file);
    this.writer.pragma('journal_mode = WAL');
    // A crash may lose the last transactions, never corrupt: the checkpoint is rolled back with them.
    this.writer.pragma('synchronous = NORMAL');
    dropOutdatedMirror(this.writer);
    this.writer.exec(READ_MODEL_DDL);
    this.reader = new Database(file);
    this.elements = new HabitElements(this.writer);
    for (const [table, t] of Object.entries(MIRRORED_TABLES)) {
      const where = t.primaryKey.map((c) => `${c} = ?`).join(' and ');
      this.upserts.set(table, this.writer.prepare(`insert or replace into ${table} (${t.columns.join(', ')}) values (${t.columns.map(() => '?').join(', ')})`));
      this.deletes.set(table, this.writer.prepare(`delete from ${table} where ${where}`));
    }
    this.loadMemory();
  }

  /** The last applied (epoch, revision); null before the first snapshot. */
  get checkpoint(): Checkpoint | null {
    return this.checkpointValue;
  }

  /**
   * Applies `events` (consecutive revisions right after the last one applied; ones at or below it
   * are skipped as already applied). A feed transaction is applied in one SQLite transaction even
   * when it spans several batches: everything up to the last event that ends a transaction is
   * committed together with the new checkpoint, then memory is updated and WatchVersion listeners
   * are told; events of a transaction that continues in the next batch stay in an open SQLite
   * transaction (readers never see them). Throws FeedGapError when a revision is missing; any
   * throw rolls back what is not committed.
   */
  applyBatch(epoch: string, events: readonly FeedEvent[]): void {
    const current = this.checkpointValue;
    if (!current || current.epoch !== epoch) throw new Error('applyBatch on another epoch: rebuild from a snapshot first');
    const after = this.pending?.revision ?? current.revision;
    const fresh = events.filter((e) => e.revision > after);
    if (fresh.length === 0) return;
    let lastEnd = -1;
    fresh.forEach((e, i) => {
      if (!e.transactionContinues) lastEnd = i;
    });
    try {
      if (lastEnd >= 0) {
        this.applyPending(fresh.slice(0, lastEnd + 1));
        this.commitPending(epoch);
      }
      if (lastEnd < fresh.length - 1) this.applyPending(fresh.slice(lastEnd + 1));
    } catch (err) {
      this.abortPending();
      throw err;
    }
  }

  /** Rolls back a feed transaction applied only in part (its stream broke); the checkpoint stays. */
  abortPending(): void {
    if (!this.pending) return;
    this.pending = undefined;
    this.writer.exec('rollback');
  }

  /** Writes `events` into the open SQLite transaction (opening it first), collecting their effects. */
  private applyPending(events: readonly FeedEvent[]): void {
    if (!this.pending) {
      this.writer.exec('begin immediate');
      this.pending = { revision: this.checkpointValue!.revision, touched: new Set(), rollouts: new Set(), deltas: new Map(), effects: [], events: 0 };
    }
    const p = this.pending;
    for (const event of events) {
      if (event.revision !== p.revision + 1) throw new FeedGapError(p.revision + 1, event.revision);
      // Before the write: a habit's old element leaves its part once per transaction.
      for (const habit of habitsTouchedBy(this.sqlOf, event)) {
        if (p.touched.has(habit)) continue;
        p.touched.add(habit);
        const old = this.elements.of(habit);
        if (old) delta(p.deltas, old.part).add(old.lanes, -1);
      }
      this.write(event);
      if (event.table === 'rollouts') p.rollouts.add(String(event.row.uuid));
      else if (event.table.startsWith('rollout_')) p.rollouts.add(String(event.row.rollout_uuid));
      const effect = this.index.effectOf(event);
      if (effect) p.effects.push(effect);
      p.revision = event.revision;
      p.events++;
    }
  }

  /**
   * Commits the open SQLite transaction with the checkpoint, then updates memory: the touched
   * habits' new elements join their parts, the active rollouts are reloaded when the transaction
   * touched one (or a habit one changes), and listeners of every scope whose content changed are told.
   */
  private commitPending(epoch: string): void {
    const p = this.pending!;
    for (const habit of p.touched) {
      const now = this.elements.of(habit);
      if (now) delta(p.deltas, now.part).add(now.lanes);
    }
    this.sql('update checkpoint set revision = ?').run(p.revision);
    this.writer.exec('commit');
    this.pending = undefined;
    this.checkpointValue = { epoch, revision: p.revision };
    this.eventsApplied += p.events;
    for (const effect of p.effects) effect();
    const rolloutsTouched = p.rollouts.size > 0 || [...p.touched].some((habit) => this.rolloutHabits.has(habit));
    const rolloutParts = rolloutsTouched ? this.versions.setRollouts(this.loadRollouts(p.rollouts, p.revision)) : [];
    this.versions.apply(p.deltas, p.revision, rolloutParts);
  }

  /**
   * The running and paused rollouts as the committed mirror holds them, each with its candidate
   * delta; `touched` rollouts take `revision` as theirs, the others keep the one they had.
   */
  private loadRollouts(touched: ReadonlySet<string>, revision: number): ActiveRollout[] {
    const previous = new Map(this.versions.activeRollouts.map((r) => [r.uuid, r.revision]));
    const rows = this.sql(`select uuid, account_logical_id, steps, current_step from rollouts where state in ('running', 'paused') order by uuid`).all() as {
      uuid: string;
      account_logical_id: number | null;
      steps: string;
      current_step: number;
    }[];
    this.rolloutHabits.clear();
    return rows.map((r) => {
      const habits = this.sql('select habit_uuid from rollout_habits where rollout_uuid = ?').pluck().all(r.uuid) as string[];
      for (const habit of habits) this.rolloutHabits.add(habit);
      const steps = (JSON.parse(r.steps) as { percent: number; deviceUuids: string[] }[]).map(({ percent, deviceUuids }) => ({ percent, deviceUuids }));
      return {
        uuid: r.uuid,
        part: r.account_logical_id === null ? GLOBAL_SCOPE : Number(r.account_logical_id),
        steps,
        currentStep: Number(r.current_step),
        delta: this.elements.rolloutDelta(r.uuid, habits),
        revision: touched.has(r.uuid) ? revision : (previous.get(r.uuid) ?? revision),
      };
    });
  }

  /**
   * Starts replacing the whole mirror with a snapshot at (epoch, revision). Rows go in with
   * `rows`; `commit` swaps them in atomically (readers see the old mirror until then) and resets
   * every version to the snapshot's revision; `abort` leaves the mirror as it was.
   */
  beginSnapshot(epoch: string, revision: number): SnapshotLoad {
    this.abortPending();
    this.writer.exec('begin immediate');
    for (const table of Object.keys(MIRRORED_TABLES)) this.writer.exec(`delete from ${table}`);
    this.writer.exec('delete from checkpoint');
    let open = true;
    return {
      rows: (table, rows) => {
        const insert = this.upserts.get(table);
        if (!insert) return; // a table the read side does not use
        for (const row of rows) insert.run(...mirroredValues(table, row));
      },
      commit: () => {
        this.writer.prepare('insert into checkpoint (singleton, epoch, revision) values (1, ?, ?)').run(epoch, revision);
        this.writer.exec('commit');
        open = false;
        this.loadMemory();
      },
      abort: () => {
        if (open) this.writer.exec('rollback');
        open = false;
      },
    };
  }

  /** The token with SHA-256 `hash` whatever its state (revoked, expired), or undefined if unknown. */
  tokenByHash(hash: string): TokenRecord | undefined {
    return this.index.tokenByHash(hash);
  }

  /** See DeviceIndex.scopeFor. */
  scopeFor(deviceUuid: string, logicalId: number | undefined): number | undefined {
    return this.index.scopeFor(deviceUuid, logicalId);
  }

  /** Runs `listener` after every change of token `uuid`; returns the function that removes it. */
  onTokenChange(uuid: string, listener: () => void): () => void {
    return this.index.onTokenChange(uuid, listener);
  }

  /** Resolves true once token `uuid` is in memory, false after `timeoutMs` (ms). */
  waitForToken(uuid: string, timeoutMs: number): Promise<boolean> {
    return this.index.waitForToken(uuid, timeoutMs);
  }

  /** A prepared statement of the writer connection, prepared once. */
  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) this.statements.set(text, (statement = this.writer.prepare(text)));
    return statement;
  }

  close(): void {
    this.abortPending();
    this.reader.close();
    this.writer.close();
  }

  private write(event: FeedEvent): void {
    const t = MIRRORED_TABLES[event.table];
    if (!t) return;
    if (event.operation === 'upsert') this.upserts.get(event.table)!.run(...mirroredValues(event.table, event.row));
    else this.deletes.get(event.table)!.run(...t.primaryKey.map((c) => sqlValue(event.row[c])));
  }

  /** Rebuilds the checkpoint, versions and every in-memory index from SQLite (start-up, after a snapshot). */
  private loadMemory(): void {
    const checkpoint = this.writer.prepare('select epoch, revision from checkpoint').get() as Checkpoint | undefined;
    this.checkpointValue = checkpoint ?? null;
    this.index.load(this.writer);
    const { global, parts } = this.elements.sums();
    const revision = checkpoint?.revision ?? 0;
    this.versions.setRollouts(this.loadRollouts(new Set(), revision));
    this.versions.reset(global, parts, revision);
  }
}

/** Loads a snapshot's rows; see ReadModel.beginSnapshot. */
export interface SnapshotLoad {
  rows(table: string, rows: readonly Row[]): void;
  commit(): void;
  abort(): void;
}

/** A feed transaction applied to the open SQLite transaction and not yet committed. */
interface PendingTransaction {
  /** The last revision applied. */
  revision: number;
  /** Habits whose old element has been taken out. */
  touched: Set<string>;
  /** Rollouts whose row or candidate rows it wrote. */
  rollouts: Set<string>;
  /** Per part (GLOBAL_SCOPE or a logical id): new elements minus old ones. */
  deltas: Map<number, LtHash>;
  effects: (() => void)[];
  events: number;
}

function delta(deltas: Map<number, LtHash>, part: number): LtHash {
  let sum = deltas.get(part);
  if (!sum) deltas.set(part, (sum = new LtHash()));
  return sum;
}
