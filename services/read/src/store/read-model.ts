import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { GLOBAL_SCOPE, ScopeVersions } from './versions.js';
import { MIRRORED_TABLES, READ_MODEL_DDL } from './schema.js';

/** Where the mirror stands on the feed. */
export interface Checkpoint {
  epoch: string;
  revision: number;
}

/** One feed event as the consumer hands it over (row values as JSON: text, number, boolean, null). */
export interface FeedEvent {
  revision: number;
  table: string;
  operation: 'upsert' | 'delete';
  row: Record<string, unknown>;
}

/** A daemon token as the read side knows it: never the secret, only its hash (the map key). */
export interface TokenRecord {
  uuid: string;
  deviceUuid: string;
  prefix: string;
  /** Milliseconds since the epoch. */
  createTime: number;
  /** Milliseconds since the epoch. */
  expireTime: number;
  revoked: boolean;
}

/** Thrown when a batch does not continue the checkpoint: the consumer must resync. */
export class FeedGapError extends Error {
  constructor(expected: number, got: number) {
    super(`feed gap: expected revision ${expected}, got ${got}`);
    this.name = 'FeedGapError';
  }
}

type Row = Record<string, unknown>;
type SqlValue = string | number | bigint | Buffer | null;

/**
 * The read replica's state: a SQLite mirror of the fed tables (WAL; one connection writes, one
 * reads) plus the in-memory indexes the hot paths use without touching SQLite: per-scope
 * versions, daemon tokens by hash, and each device's accounts. Memory changes only after the
 * SQLite transaction that caused it commits, so both always describe the same revision.
 */
export class ReadModel {
  readonly versions = new ScopeVersions();
  /** Feed events applied by `applyBatch` since this process started (snapshots not included), for metrics. */
  eventsApplied = 0;
  /** Connection for queries and export builds; sees committed state only. */
  readonly reader: Database.Database;
  private readonly writer: Database.Database;
  private checkpointValue: Checkpoint | null = null;
  private readonly tokensByHash = new Map<string, TokenRecord>();
  private readonly accountLogicalIds = new Map<string, number>();
  private readonly deviceAccounts = new Map<string, Set<string>>();
  /** Callbacks per token uuid, run after every change of that token (arrival, revocation, rotation, deletion). */
  private readonly tokenListeners = new Map<string, Set<() => void>>();
  private readonly upserts = new Map<string, Database.Statement>();
  private readonly deletes = new Map<string, Database.Statement>();
  private readonly statements = new Map<string, Database.Statement>();

  /** Opens (creating if needed) `dir/read-model.sqlite` and loads the in-memory indexes. */
  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'read-model.sqlite');
    this.writer = new Database(file);
    this.writer.pragma('journal_mode = WAL');
    // A crash may lose the last transactions, never corrupt: the checkpoint is rolled back with them.
    this.writer.pragma('synchronous = NORMAL');
    this.writer.exec(READ_MODEL_DDL);
    this.reader = new Database(file);
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
   * Applies `events` (consecutive revisions right after the checkpoint; ones at or below it are
   * skipped as already applied) and the new checkpoint in one SQLite transaction, then updates
   * memory and wakes WatchVersion listeners. Throws FeedGapError when a revision is missing.
   */
  applyBatch(epoch: string, events: readonly FeedEvent[]): void {
    const current = this.checkpointValue;
    if (!current || current.epoch !== epoch) throw new Error('applyBatch on another epoch: rebuild from a snapshot first');
    const fresh = events.filter((e) => e.revision > current.revision);
    if (fresh.length === 0) return;
    const bumps = new Map<number, number>();
    const memoryEffects: (() => void)[] = [];
    this.writer.transaction(() => {
      let expected = current.revision + 1;
      for (const event of fresh) {
        if (event.revision !== expected) throw new FeedGapError(expected, event.revision);
        expected++;
        for (const scope of this.scopesChangedBy(event)) bumps.set(scope, event.revision);
        this.write(event);
        const effect = this.memoryEffect(event);
        if (effect) memoryEffects.push(effect);
      }
      const upsertScope = this.sql('insert or replace into scope_versions (scope, revision) values (?, ?)');
      for (const [scope, revision] of bumps) upsertScope.run(scope, revision);
      this.sql('update checkpoint set revision = ?').run(expected - 1);
    })();
    this.checkpointValue = { epoch, revision: fresh.at(-1)!.revision };
    this.eventsApplied += fresh.length;
    for (const effect of memoryEffects) effect();
    this.versions.bump(bumps);
  }

  /**
   * Starts replacing the whole mirror with a snapshot at (epoch, revision). Rows go in with
   * `rows`; `commit` swaps them in atomically (readers see the old mirror until then) and resets
   * every version to the snapshot's revision; `abort` leaves the mirror as it was.
   */
  beginSnapshot(epoch: string, revision: number): SnapshotLoad {
    this.writer.exec('begin immediate');
    for (const table of Object.keys(MIRRORED_TABLES)) this.writer.exec(`delete from ${table}`);
    this.writer.exec('delete from checkpoint; delete from scope_versions');
    let open = true;
    return {
      rows: (table, rows) => {
        const insert = this.upserts.get(table);
        if (!insert) return; // a table the read side does not use
        for (const row of rows) insert.run(...values(table, row));
      },
      commit: () => {
        this.writer.prepare('insert into checkpoint (singleton, epoch, revision) values (1, ?, ?)').run(epoch, revision);
        // Every scope may differ from before the rebuild: all take the snapshot's revision.
        this.writer.prepare('insert into scope_versions (scope, revision) values (?, ?)').run(GLOBAL_SCOPE, revision);
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
    return this.tokensByHash.get(hash);
  }

  /** Whether `logicalId` is the logical id of one of the device's accounts. */
  /**
   * The scope key of a daemon's request for `logicalId` (none = the global scope), or undefined
   * when that logical id is not an account of the device.
   */
  scopeFor(deviceUuid: string, logicalId: number | undefined): number | undefined {
    if (logicalId === undefined) return GLOBAL_SCOPE;
    return this.deviceHasAccount(deviceUuid, logicalId) ? logicalId : undefined;
  }

  private deviceHasAccount(deviceUuid: string, logicalId: number): boolean {
    for (const account of this.deviceAccounts.get(deviceUuid) ?? []) {
      if (this.accountLogicalIds.get(account) === logicalId) return true;
    }
    return false;
  }

  /** Runs `listener` after every change of token `uuid`; returns the function that removes it. */
  onTokenChange(uuid: string, listener: () => void): () => void {
    let set = this.tokenListeners.get(uuid);
    if (!set) this.tokenListeners.set(uuid, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.tokenListeners.get(uuid) === set) this.tokenListeners.delete(uuid);
    };
  }

  /** Resolves true once token `uuid` is in memory, false after `timeoutMs` (ms). */
  waitForToken(uuid: string, timeoutMs: number): Promise<boolean> {
    const known = (): boolean => [...this.tokensByHash.values()].some((t) => t.uuid === uuid);
    if (known()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (arrived: boolean): void => {
        clearTimeout(timer);
        off();
        resolve(arrived);
      };
      const off = this.onTokenChange(uuid, () => known() && finish(true));
      const timer = setTimeout(() => finish(false), timeoutMs);
    });
  }

  /** A prepared statement of the writer connection, prepared once. */
  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) this.statements.set(text, (statement = this.writer.prepare(text)));
    return statement;
  }

  close(): void {
    this.reader.close();
    this.writer.close();
  }

  /**
   * The scopes whose export `event` changes (DESIGN.md "Versions and exports"): a habit that was
   * or becomes exported (insert, update, delete, deactivation, move between accounts), a change
   * to an exported habit's pixel or shape list, and a changed pixel, dot, color or shape in use.
   * Read before the event is written, so the old row is still there.
   */
  private scopesChangedBy(event: FeedEvent): number[] {
    const { table, row } = event;
    switch (table) {
      case 'habits': {
        const old = this.sql('select account_logical_id, is_active from habits where uuid = ?').get(row['uuid']) as Row | undefined;
        const scopes: number[] = [];
        if (old && old['is_active']) scopes.push(scopeOf(old['account_logical_id']));
        if (event.operation === 'upsert' && row['is_active']) scopes.push(scopeOf(row['account_logical_id']));
        return scopes;
      }
      case 'habit_pixels':
      case 'habit_shapes': {
        const habit = this.sql('select account_logical_id from habits where uuid = ? and is_active = 1').get(row['habit_uuid']) as Row | undefined;
        return habit ? [scopeOf(habit['account_logical_id'])] : [];
      }
      case 'pixels':
      case 'dots':
      case 'colors':
      case 'shapes': {
        // Shared value rows are created and deleted, not edited; should one change in place,
        // every habit using it is re-exported.
        if (event.operation === 'delete' || !this.changesExistingRow(table, row)) return [];
        const users: Record<string, string> = {
          pixels: 'select h.account_logical_id s from habit_pixels hp join habits h on h.uuid = hp.habit_uuid where hp.pixel_uuid = ? and h.is_active = 1',
          dots: 'select h.account_logical_id s from pixels p join habit_pixels hp on hp.pixel_uuid = p.uuid join habits h on h.uuid = hp.habit_uuid where p.dot_uuid = ? and h.is_active = 1',
          colors: 'select h.account_logical_id s from pixels p join habit_pixels hp on hp.pixel_uuid = p.uuid join habits h on h.uuid = hp.habit_uuid where p.color_uuid = ? and h.is_active = 1',
          shapes: 'select h.account_logical_id s from habit_shapes hs join habits h on h.uuid = hs.habit_uuid where hs.shape_uuid = ? and h.is_active = 1',
        };
        return (this.sql(users[table]!).all(row['uuid']) as Row[]).map((r) => scopeOf(r['s']));
      }
      default:
        return [];
    }
  }

  private changesExistingRow(table: string, row: Row): boolean {
    const columns = MIRRORED_TABLES[table]!.columns;
    const old = this.sql(`select ${columns.join(', ')} from ${table} where uuid = ?`).raw().get(row['uuid']) as SqlValue[] | undefined;
    if (!old) return false;
    const next = values(table, row);
    return old.some((v, i) => v !== next[i]);
  }

  private write(event: FeedEvent): void {
    const t = MIRRORED_TABLES[event.table];
    if (!t) return;
    if (event.operation === 'upsert') this.upserts.get(event.table)!.run(...values(event.table, event.row));
    else this.deletes.get(event.table)!.run(...t.primaryKey.map((c) => sqlValue(event.row[c])));
  }

  /** What `event` does to the in-memory indexes, run after its transaction commits. */
  private memoryEffect(event: FeedEvent): (() => void) | undefined {
    const { row } = event;
    const remove = event.operation === 'delete';
    switch (event.table) {
      case 'daemon_tokens': {
        const hash = String(row['token_hash']);
        const uuid = String(row['uuid']);
        const token = tokenRecord(row);
        return () => {
          if (remove) this.tokensByHash.delete(hash);
          else this.tokensByHash.set(hash, token);
          for (const listener of this.tokenListeners.get(uuid) ?? []) listener();
        };
      }
      case 'accounts': {
        const uuid = String(row['uuid']);
        if (remove) return () => this.accountLogicalIds.delete(uuid);
        const logicalId = Number(row['logical_id']);
        return () => this.accountLogicalIds.set(uuid, logicalId);
      }
      case 'device_accounts': {
        const device = String(row['device_uuid']);
        const account = String(row['account_uuid']);
        if (remove) return () => this.deviceAccounts.get(device)?.delete(account);
        return () => {
          let set = this.deviceAccounts.get(device);
          if (!set) this.deviceAccounts.set(device, (set = new Set()));
          set.add(account);
        };
      }
      default:
        return undefined;
    }
  }

  /** Rebuilds every in-memory index from SQLite (start-up, after a snapshot). */
  private loadMemory(): void {
    const checkpoint = this.writer.prepare('select epoch, revision from checkpoint').get() as Checkpoint | undefined;
    this.checkpointValue = checkpoint ?? null;
    this.tokensByHash.clear();
    for (const row of this.writer.prepare('select * from daemon_tokens').all() as Row[]) {
      this.tokensByHash.set(String(row['token_hash']), tokenRecord(row));
    }
    this.accountLogicalIds.clear();
    for (const row of this.writer.prepare('select uuid, logical_id from accounts').all() as Row[]) {
      this.accountLogicalIds.set(String(row['uuid']), Number(row['logical_id']));
    }
    this.deviceAccounts.clear();
    for (const row of this.writer.prepare('select device_uuid, account_uuid from device_accounts').all() as Row[]) {
      const device = String(row['device_uuid']);
      let set = this.deviceAccounts.get(device);
      if (!set) this.deviceAccounts.set(device, (set = new Set()));
      set.add(String(row['account_uuid']));
    }
    const scopes = this.writer.prepare('select scope, revision from scope_versions').raw().all() as [number, number][];
    this.versions.reset(checkpoint?.epoch ?? '', scopes);
    // A snapshot may have changed any token.
    for (const listeners of this.tokenListeners.values()) for (const listener of listeners) listener();
  }
}

/** Loads a snapshot's rows; see ReadModel.beginSnapshot. */
export interface SnapshotLoad {
  rows(table: string, rows: readonly Row[]): void;
  commit(): void;
  abort(): void;
}

const scopeOf = (accountLogicalId: unknown): number => (accountLogicalId === null || accountLogicalId === undefined ? GLOBAL_SCOPE : Number(accountLogicalId));

/** JSON booleans become 0/1 (SQLite has no boolean); absent columns NULL. */
function sqlValue(v: unknown): SqlValue {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' || typeof v === 'string') return v;
  return JSON.stringify(v);
}

const values = (table: string, row: Row): SqlValue[] => MIRRORED_TABLES[table]!.columns.map((c) => sqlValue(row[c]));

function tokenRecord(row: Row): TokenRecord {
  return {
    uuid: String(row['uuid']),
    deviceUuid: String(row['device_uuid']),
    prefix: String(row['prefix'] ?? ''),
    createTime: Date.parse(String(row['create_time'])),
    expireTime: Date.parse(String(row['expire_time'])),
    revoked: row['revoke_time'] !== null && row['revoke_time'] !== undefined,
  };
}
