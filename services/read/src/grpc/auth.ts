import { hashDaemonToken, isWellFormedDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import { DomainError } from '@titanbot/service-kit/errors';
import type { Step } from '@titanbot/service-kit/pipeline';
import { LRUCache } from 'lru-cache';
import type { AuthFailureReason, DaemonCall, DaemonPrincipal, ReadRuntime } from './runtime.js';

/**
 * Presented token -> its SHA-256 (hex), for tokens the read model knew when presented: a daemon
 * polls with the same token thousands of times, and the checksum and SHA-256 were the largest
 * part of a CheckVersion's own work. Caching the hash, not the TokenRecord, keeps the per-call
 * lookup in the read model, so a revoked, expired or deleted token is refused on its next call.
 * Only known tokens enter (a flood of well-formed made-up tokens cannot evict the fleet's). The
 * hash is a pure function of the token, so one cache serves every runtime in the process. It
 * holds plaintext tokens in memory, as a call does anyway.
 */
const knownTokenHashes = new LRUCache<string, string>({ max: 4096 });

/**
 * The step that identifies the daemon behind `x-api-key`, from memory (one lookup), and sets
 * `ctx.principal`. Errors: UNAUTHENTICATED for no key, a malformed one (rejected by its checksum
 * before any lookup), an unknown, expired or revoked token; an admin or reader credential is never
 * accepted here (docs/domain.md "Who may call what"). Each failure is counted in
 * `rt.counters.authFailures` and logged (throttled) with the reason and, for a well-formed token
 * only, its shown prefix: never the presented value.
 */
export const authenticate =
  (rt: ReadRuntime): Step<DaemonCall, unknown> =>
  (next, method) =>
  (req, ctx) => {
    ctx.principal = daemonPrincipal(rt, method.path, ctx.call.metadata.get('x-api-key')[0], 'grpc');
    return next(req, ctx);
  };

/**
 * The daemon a presented `x-api-key` value names, for `method` (a gRPC path or an HTTP route, for
 * the log line), on `surface`: the rules of `authenticate`, shared by every surface a daemon
 * reaches. The gRPC API takes daemon tokens only (a malformed one is refused by its checksum
 * before any lookup); the legacy HTTP API also takes imported legacy tokens, which have no form
 * of ours. Throws DomainError UNAUTHENTICATED (counted and logged as `authenticate` says; a legacy
 * token's characters are never logged).
 */
export function daemonPrincipal(rt: ReadRuntime, method: string, key: unknown, surface: 'grpc' | 'legacy'): DaemonPrincipal {
  if (typeof key !== 'string' || key === '') throw authFailure(rt, method, 'missing');
  let hash = knownTokenHashes.get(key);
  if (hash === undefined) {
    if (surface === 'grpc' && !isWellFormedDaemonToken(key)) throw authFailure(rt, method, 'malformed');
    hash = hashDaemonToken(key);
  }
  // Looked up on every call, so revocation, expiry and deletion take effect at once.
  const token = rt.model.tokenByHash(hash);
  if (!token || (token.legacy && surface === 'grpc')) throw authFailure(rt, method, 'unknown', key);
  knownTokenHashes.set(key, hash);
  if (token.revoked) throw authFailure(rt, method, 'revoked', key);
  if (rt.clock() >= token.expireTime) throw authFailure(rt, method, 'expired', key);
  return { token, plaintext: key, hash };
}

/**
 * Counts and (throttled) logs a refusal. The presented `key`'s shown prefix is logged only when it
 * is one of our tokens: a legacy token's characters are a secret someone else chose.
 */
function authFailure(rt: ReadRuntime, method: string, reason: AuthFailureReason, key?: string): DomainError {
  rt.counters.authFailures[reason]++;
  const suppressed = rt.refusalLog.admit(reason);
  if (suppressed >= 0) {
    const tokenPrefix = key !== undefined && isWellFormedDaemonToken(key) ? key.slice(0, SHOWN_PREFIX_CHARS) : undefined;
    rt.logger.warn({ method, reason, tokenPrefix, suppressed }, 'daemon authentication failed');
  }
  // One answer for every reason: the caller learns nothing about which tokens exist.
  return new DomainError('UNAUTHENTICATED', 'missing, malformed, unknown, expired or revoked daemon token');
}

/**
 * The step that takes one call from the token's rate-limit bucket (a stream costs one on open).
 * Errors: RESOURCE_EXHAUSTED RATE_LIMITED with a RetryInfo delay (the time until the bucket holds
 * one call again) when the token is over DAEMON_RPS / DAEMON_BURST. Allocates nothing when the
 * call is admitted.
 */
export const rateLimit =
  (rt: ReadRuntime): Step<DaemonCall, unknown> =>
  (next, method) =>
  (req, ctx) => {
    const waitMs = rt.limiter.take(ctx.principal.token.uuid);
    if (waitMs === 0) return next(req, ctx);
    rt.counters.rateLimited++;
    const suppressed = rt.refusalLog.admit('rate_limited');
    if (suppressed >= 0) rt.logger.warn({ method: method.path, token: ctx.principal.token.uuid, suppressed }, 'daemon token rate limited');
    throw new DomainError('RATE_LIMITED', `too many calls with this daemon token; retry in ${waitMs} ms`, [], waitMs);
  };
