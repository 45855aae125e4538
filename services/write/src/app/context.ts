import { v7 as uuidv7, validate } from 'uuid';
import type { EntityName } from '@mikro-orm/core';
import type { Em } from '../db/orm.js';
import { DomainError, invalid } from '../domain/errors.js';

/** Settings use cases read; parsed once from the environment (config.ts). */
export interface DomainSettings {
  sshPortRangeStart: number;
  sshServerName: string;
  sshServerIp: string;
  sshServerCommonPort: number;
  /** Milliseconds. */
  tokenDefaultTtlMs: number;
  /** Milliseconds. */
  tokenMaxTtlMs: number;
  /** Milliseconds. */
  tokenRotationGraceMs: number;
  /** A daemon without contact for this long is offline in the fleet view (ms). */
  offlineAfterMs: number;
}

/**
 * What every use case receives: an EntityManager forked for this call (inside the call's
 * transaction for writes), the call's clock reading and the settings.
 */
export interface UseCaseContext {
  em: Em;
  now: Date;
  settings: DomainSettings;
}

/** New ids are UUID v7: time-ordered, so primary-key order is creation order. */
export const newId = (): string => uuidv7();

/**
 * The uuid of a resource being created: `requested` (the request's AIP-133 `<resource>_id`,
 * lower-cased) when not empty, else a new one. Errors: invalid naming `field` (not a UUID),
 * ALREADY_EXISTS (a row of `entity` has it).
 */
export async function chosenId(ctx: UseCaseContext, entity: EntityName<{ uuid: string }>, field: string, requested: string): Promise<string> {
  if (requested === '') return newId();
  const uuid = requireUuid(field, requested);
  if ((await ctx.em.count(entity, { uuid })) > 0) throw new DomainError('ALREADY_EXISTS', `${field} ${uuid} is taken`);
  return uuid;
}

/** Returns `value` lower-cased; INVALID_ARGUMENT naming `field` unless it is a UUID. */
export function requireUuid(field: string, value: string | undefined): string {
  if (!value || !validate(value)) throw invalid(field, 'must be a UUID');
  return value.toLowerCase();
}

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/** AIP-158 page size: 0 = 100, capped at 1000; negative is INVALID_ARGUMENT. */
export function pageSize(requested: number): number {
  if (requested < 0) throw invalid('page_size', 'must not be negative');
  return Math.min(requested || 100, 1000);
}

/** Opaque page tokens carry the last key of the previous page. */
export const encodePageToken = (lastKey: string): string => Buffer.from(lastKey, 'utf8').toString('base64url');

/** Decodes a page token made by encodePageToken; `check` validates the key. */
export function decodePageToken(token: string, check: (key: string) => boolean): string | undefined {
  if (!token) return undefined;
  const key = Buffer.from(token, 'base64url').toString('utf8');
  if (!check(key)) throw invalid('page_token', 'is not a token this list returned');
  return key;
}

/** Keyset pagination over rows sorted by `key`: fetch one more row than the page to know if more follow. */
export function toPage<T>(rows: T[], size: number, key: (row: T) => string): Page<T> {
  const items = rows.slice(0, size);
  const last = items[items.length - 1];
  return { items, nextPageToken: rows.length > size && last ? encodePageToken(key(last)) : '' };
}

/** Whether `s` is an RFC 9562 UUID (any case). */
export const isUuid = (s: string): boolean => validate(s);
