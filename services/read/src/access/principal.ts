import { hashDaemonToken, isWellFormedDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import { DomainError, invalid } from '@titanbot/service-kit/errors';
import { MAX_LOG_LINES_PER_CALL } from '@titanbot/service-kit/request-checks';
import { LRUCache } from 'lru-cache';
import type { AuthFailureReason, DaemonPrincipal, ReadRuntime } from './runtime.js';

// Who a daemon is and what it may spend, the same on every surface it reaches (the gRPC API's
// pipeline steps and the legacy HTTP routes call these; neither adapter decides it itself).

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
 * The daemon a presented `x-api-key` value names, for `method` (a gRPC path or an HTTP route, for
 * the log line), on `surface`, from the peer address `peerOf(source)` (asked for only where it is
 * needed; a function and its argument, so an admitted call allocates nothing). Every surface a
 * daemon reaches uses it: the gRPC API's `authenticate` step and the legacy routes. The gRPC API
 * takes daemon tokens only (a malformed one is refused by its checksum before any lookup); the
 * legacy HTTP API also takes imported legacy tokens, which have no form of ours. Every failure is charged to the peer's
 * bucket (AUTH_FAILURES_PER_SECOND, AUTH_FAILURES_BURST); while it is empty, a key this process
 * has not seen in use is not looked at. Throws DomainError UNAUTHENTICATED (counted, and logged
 * throttled with the reason and a token's shown prefix; a legacy token's characters never), or AUTH_THROTTLED with a
 * RetryInfo delay for an unchecked key.
 */
export function daemonPrincipal<S>(rt: ReadRuntime, method: string, key: unknown, surface: 'grpc' | 'legacy', peerOf: (source: S) => string, source: S): DaemonPrincipal {
  if (typeof key !== 'string' || key === '') throw authFailure(rt, method, 'missing', peerOf(source));
  let hash = knownTokenHashes.get(key);
  if (hash === undefined) {
    // Guessing is what the throttle stops: a key already seen in use is still checked, so the
    // fleet's daemons behind one address go on working while a guesser there is refused.
    const address = peerOf(source);
    const waitMs = rt.authFailureLimiter.wait(address);
    if (waitMs > 0) throw authThrottled(rt, method, address, waitMs);
    if (surface === 'grpc' && !isWellFormedDaemonToken(key)) throw authFailure(rt, method, 'malformed', address);
    hash = hashDaemonToken(key);
  }
  // Looked up on every call, so revocation, expiry and deletion take effect at once.
  const token = rt.model.tokenByHash(hash);
  if (!token || (token.legacy && surface === 'grpc')) throw authFailure(rt, method, 'unknown', peerOf(source), key);
  knownTokenHashes.set(key, hash);
  if (token.revoked) throw authFailure(rt, method, 'revoked', peerOf(source), key);
  if (rt.clock() >= token.expireTime) throw authFailure(rt, method, 'expired', peerOf(source), key);
  return { token, plaintext: key, hash };
}

/** Counts and (throttled) logs a call refused unchecked because its peer failed authentication too often. */
function authThrottled(rt: ReadRuntime, method: string, peer: string, waitMs: number): DomainError {
  rt.counters.authThrottled++;
  const suppressed = rt.refusalLog.admit('auth_throttled');
  if (suppressed >= 0) rt.logger.warn({ method, peer, suppressed }, 'daemon authentication throttled for this peer');
  return new DomainError('AUTH_THROTTLED', `too many failed authentications from this address; retry in ${waitMs} ms`, [], waitMs);
}

/**
 * Counts, charges to `peer`'s failure bucket and (throttled) logs a refusal. The presented `key`'s
 * shown prefix is logged only when it is one of our tokens: a legacy token's characters are a
 * secret someone else chose.
 */
function authFailure(rt: ReadRuntime, method: string, reason: AuthFailureReason, peer: string, key?: string): DomainError {
  rt.authFailureLimiter.take(peer);
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
 * Takes one call from the device's rate-limit bucket: every token of a device (a rotated one in
 * its grace, a second one issued) draws on the same budget. `method` names the call in the log
 * line. Errors: RESOURCE_EXHAUSTED RATE_LIMITED with a RetryInfo delay (the time until the bucket
 * holds one call again) when the device is over DAEMON_RPS / DAEMON_BURST; nothing is taken then.
 * Allocates nothing when the call is admitted.
 */
export function takeCall(rt: ReadRuntime, principal: DaemonPrincipal, method: string): void {
  const waitMs = rt.limiter.take(principal.token.deviceUuid);
  if (waitMs === 0) return;
  rt.counters.rateLimited++;
  const suppressed = rt.refusalLog.admit('rate_limited');
  if (suppressed >= 0) rt.logger.warn({ method, token: principal.token.uuid, device: principal.token.deviceUuid, suppressed }, 'daemon token rate limited');
  throw new DomainError('RATE_LIMITED', `too many calls for this device; retry in ${waitMs} ms`, [], waitMs);
}

/**
 * Charges `lines` log lines to the device's log bucket (DAEMON_LOG_LINES_PER_SECOND,
 * DAEMON_LOG_LINES_BURST), on every surface that takes logs, before anything is forwarded: one
 * request of many lines costs what many requests of one line do. Errors: INVALID_ARGUMENT `field`
 * (more than MAX_LOG_LINES_PER_CALL lines), RESOURCE_EXHAUSTED LOG_RATE_LIMITED with a RetryInfo
 * delay (nothing is charged then).
 */
export function chargeLogLines(rt: ReadRuntime, principal: DaemonPrincipal, lines: number, field: string): void {
  if (lines > MAX_LOG_LINES_PER_CALL) throw invalid(field, `at most ${MAX_LOG_LINES_PER_CALL} lines per call`);
  const waitMs = rt.logLimiter.take(principal.token.deviceUuid, lines);
  if (waitMs === 0) return;
  rt.counters.rateLimited++;
  const suppressed = rt.refusalLog.admit('log_rate_limited');
  if (suppressed >= 0) rt.logger.warn({ device: principal.token.deviceUuid, lines, suppressed }, 'daemon log lines rate limited');
  throw new DomainError('LOG_RATE_LIMITED', `too many log lines for this device; retry in ${waitMs} ms`, [], waitMs);
}
