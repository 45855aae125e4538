import { hashDaemonToken, isWellFormedDaemonToken } from '@titanbot/service-kit/daemon-token';
import { rotationChain } from '../db/token-chains.js';
import { DaemonToken, legacyTokenWeakness } from '../domain/daemon-token.js';
import { DomainError, invalid, notFound } from '../domain/errors.js';
import { decodePageToken, isUuid, newId, pageSize, requireUuid, toPage, type Page, type UseCaseContext } from './context.js';
import { findDevice } from './devices.js';

/**
 * IssueDaemonToken: a new token for the device, plaintext returned once. `ttlMs` undefined =
 * the default (24 h); must be positive and at most TOKEN_MAX_TTL. Errors: invalid, not_found.
 */
export async function issueDaemonToken(
  ctx: UseCaseContext,
  deviceUuid: string,
  ttlMs: number | undefined,
): Promise<{ token: DaemonToken; plaintext: string }> {
  const ttl = ttlMs ?? ctx.settings.tokenDefaultTtlMs;
  if (!(ttl > 0 && ttl <= ctx.settings.tokenMaxTtlMs)) {
    throw invalid('ttl', `must be positive and at most ${ctx.settings.tokenMaxTtlMs / 1000} s`);
  }
  const device = await findDevice(ctx, deviceUuid, 'device_uuid');
  const issued = DaemonToken.issue(newId(), device.uuid, ttl, ctx.now);
  ctx.em.persist(issued.token);
  await ctx.em.flush();
  return issued;
}

/** GetDaemonToken. Errors: invalid, not_found. */
export async function getDaemonToken(ctx: UseCaseContext, uuid: string): Promise<DaemonToken> {
  const token = await ctx.em.findOne(DaemonToken, { uuid: requireUuid('uuid', uuid) });
  if (!token) throw notFound('daemon token', uuid);
  return token;
}

/** ListDaemonTokens in uuid order, optionally one device's, optionally legacy ones only or daemon ones only. Errors: invalid. */
export async function listDaemonTokens(
  ctx: UseCaseContext,
  query: { pageSize: number; pageToken: string; deviceUuid?: string; legacy?: boolean },
): Promise<Page<DaemonToken>> {
  const size = pageSize(query.pageSize);
  const after = decodePageToken(query.pageToken, isUuid);
  const tokens = await ctx.em.find(
    DaemonToken,
    {
      ...(after ? { uuid: { $gt: after } } : {}),
      ...(query.deviceUuid !== undefined ? { deviceUuid: requireUuid('device_uuid', query.deviceUuid) } : {}),
      ...(query.legacy !== undefined ? { kind: query.legacy ? ('legacy' as const) : ('daemon' as const) } : {}),
    },
    { orderBy: { uuid: 'asc' }, limit: size + 1 },
  );
  return toPage(tokens, size, (t) => t.uuid);
}

/**
 * ImportLegacyDaemonToken: a token of the original system (`plaintext` as its daemons send it)
 * bound to `deviceUuid`, accepted on the legacy HTTP API only, until `expireTime` (null = no
 * expiry) or revocation; only its SHA-256 is stored. Surrounding white space is dropped, as HTTP
 * drops it from the X-API-KEY header the daemon sends. Errors: invalid (empty token, a token
 * `legacyTokenWeakness` refuses, expiry not in the future), not_found (device), ALREADY_EXISTS
 * (this token is already imported).
 */
export async function importLegacyDaemonToken(ctx: UseCaseContext, deviceUuid: string, plaintext: string, expireTime: Date | null): Promise<DaemonToken> {
  const presented = plaintext.trim();
  if (presented === '') throw invalid('token', 'must not be empty');
  const weakness = legacyTokenWeakness(presented);
  if (weakness !== undefined) throw invalid('token', weakness);
  if (expireTime !== null && expireTime <= ctx.now) throw invalid('expire_time', 'must be in the future');
  const device = await findDevice(ctx, deviceUuid, 'device_uuid');
  if (await ctx.em.findOne(DaemonToken, { tokenHash: hashDaemonToken(presented) })) {
    throw new DomainError('ALREADY_EXISTS', 'this token is already imported');
  }
  const token = DaemonToken.importLegacy(newId(), device.uuid, presented, expireTime, ctx.now);
  ctx.em.persist(token);
  await ctx.em.flush();
  return token;
}

/**
 * RevokeDaemonToken: revokes the token and its whole rotation chain (the token it was rotated
 * from, back to the one first issued, and every token rotated from any of them), so a stolen
 * token that was rotated, or that an operator knows only by its first uuid, ends with it.
 * Effective at once, idempotent (a token revoked before keeps its revocation time); every
 * revocation travels on the feed. Returns the named token. Errors: invalid, not_found.
 */
export async function revokeDaemonToken(ctx: UseCaseContext, uuid: string): Promise<DaemonToken> {
  const token = await getDaemonToken(ctx, uuid);
  const chain = await ctx.em.find(DaemonToken, { uuid: { $in: await rotationChain(ctx.em, token.uuid) } });
  for (const link of chain) link.revoke(ctx.now);
  await ctx.em.flush();
  return token;
}

/**
 * The usable daemon token (not a legacy one) with this plaintext, or null (malformed, unknown, expired or revoked).
 * Malformed tokens are rejected by their checksum without a lookup.
 */
export async function findUsableDaemonToken(ctx: UseCaseContext, plaintext: string): Promise<DaemonToken | null> {
  if (!isWellFormedDaemonToken(plaintext)) return null;
  const token = await ctx.em.findOne(DaemonToken, { tokenHash: hashDaemonToken(plaintext), kind: 'daemon' });
  return token && token.isUsable(ctx.now) ? token : null;
}

/**
 * RotateDaemonToken (feed API): a successor with the old token's lifetime; the old one stays
 * valid for TOKEN_ROTATION_GRACE. A token can be rotated once.
 * Errors: unauthenticated (token malformed, unknown, expired, revoked or already rotated).
 */
export async function rotateDaemonToken(ctx: UseCaseContext, plaintext: string): Promise<{ successor: DaemonToken; plaintext: string; previous: DaemonToken }> {
  const previous = await findUsableDaemonToken(ctx, plaintext);
  if (!previous || previous.rotateTime !== null || previous.expireTime === null) {
    throw new DomainError('TOKEN_NOT_ROTATABLE', 'token is unknown, expired, revoked or already rotated');
  }
  const lifetime = previous.expireTime.getTime() - previous.createTime.getTime();
  const issued = DaemonToken.issue(newId(), previous.deviceUuid, lifetime, ctx.now, previous.uuid);
  previous.markRotated(ctx.now, ctx.settings.tokenRotationGraceMs);
  ctx.em.persist(issued.token);
  await ctx.em.flush();
  return { successor: issued.token, plaintext: issued.plaintext, previous };
}
