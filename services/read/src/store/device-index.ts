import type Database from 'better-sqlite3';
import type { FeedEvent } from './feed-event.js';
import { GLOBAL_SCOPE } from '@titanbot/service-kit/daemon-database';

/** A daemon token as the read side knows it: never the secret, only its hash (the map key). */
export interface TokenRecord {
  uuid: string;
  deviceUuid: string;
  prefix: string;
  /** Milliseconds since the epoch. */
  createTime: number;
  /** Milliseconds since the epoch; Infinity for a legacy token imported without an expiry. */
  expireTime: number;
  revoked: boolean;
  /** An imported token of the original system: accepted on the legacy HTTP API only. */
  legacy: boolean;
}

type Row = Record<string, unknown>;

/**
 * What the hot paths ask without touching SQLite: daemon tokens by SHA-256, each account's logical
 * id and each device's accounts. Changed only by `effectOf` effects, which the read model runs
 * right after the transaction that applied their events commits, so memory and SQLite describe the
 * same revision.
 */
export class DeviceIndex {
  private readonly tokensByHash = new Map<string, TokenRecord>();
  private readonly accountLogicalIds = new Map<string, number>();
  private readonly deviceAccounts = new Map<string, Set<string>>();
  /** Callbacks per token uuid, run after every change of that token (arrival, revocation, rotation, deletion). */
  private readonly tokenListeners = new Map<string, Set<() => void>>();

  /** The token with SHA-256 `hash` whatever its state (revoked, expired), or undefined if unknown. */
  tokenByHash(hash: string): TokenRecord | undefined {
    return this.tokensByHash.get(hash);
  }

  /**
   * The scope key of a daemon's request for `logicalId` (none = the global scope), or undefined
   * when that logical id is not an account of the device.
   */
  scopeFor(deviceUuid: string, logicalId: number | undefined): number | undefined {
    if (logicalId === undefined) return GLOBAL_SCOPE;
    for (const account of this.deviceAccounts.get(deviceUuid) ?? []) {
      if (this.accountLogicalIds.get(account) === logicalId) return logicalId;
    }
    return undefined;
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

  /** What `event` does to the in-memory indexes, run after its transaction commits. */
  effectOf(event: FeedEvent): (() => void) | undefined {
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

  /** Rebuilds every index from the mirror (start-up, after a snapshot) and tells every token listener. */
  load(db: Database.Database): void {
    this.tokensByHash.clear();
    for (const row of db.prepare('select * from daemon_tokens').all() as Row[]) {
      this.tokensByHash.set(String(row['token_hash']), tokenRecord(row));
    }
    this.accountLogicalIds.clear();
    for (const row of db.prepare('select uuid, logical_id from accounts').all() as Row[]) {
      this.accountLogicalIds.set(String(row['uuid']), Number(row['logical_id']));
    }
    this.deviceAccounts.clear();
    for (const row of db.prepare('select device_uuid, account_uuid from device_accounts').all() as Row[]) {
      const device = String(row['device_uuid']);
      let set = this.deviceAccounts.get(device);
      if (!set) this.deviceAccounts.set(device, (set = new Set()));
      set.add(String(row['account_uuid']));
    }
    // A snapshot may have changed any token.
    for (const listeners of this.tokenListeners.values()) for (const listener of listeners) listener();
  }
}

function tokenRecord(row: Row): TokenRecord {
  return {
    uuid: String(row['uuid']),
    deviceUuid: String(row['device_uuid']),
    prefix: String(row['prefix'] ?? ''),
    createTime: Date.parse(String(row['create_time'])),
    expireTime: row['expire_time'] === null || row['expire_time'] === undefined ? Number.POSITIVE_INFINITY : Date.parse(String(row['expire_time'])),
    revoked: row['revoke_time'] !== null && row['revoke_time'] !== undefined,
    legacy: row['kind'] === 'legacy',
  };
}
