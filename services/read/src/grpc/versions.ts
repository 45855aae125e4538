import { Metadata } from '@grpc/grpc-js';
import { CheckVersionResponse, WatchVersionResponse, type DaemonServiceServer } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DaemonServiceService as m } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DomainError } from '@titanbot/service-kit/errors';
import { MAX_TIMER_MS } from '@titanbot/service-kit/timers';
import { serverStream, unary } from './pipeline.js';
import type { DaemonPrincipal, ReadRuntime } from '../access/runtime.js';
import { scopeFor } from './scope.js';

/** The RetryInfo delay of WATCH_LIMIT (ms): long enough that a daemon's closing watch is gone. */
const WATCH_LIMIT_RETRY_MS = 5_000;

/**
 * CheckVersion (answered from memory, in the same tick: no SQLite, no export build) and
 * WatchVersion (one message per change of the version the device gets of the watched scope: the
 * stable one, or a rollout's candidate while it is in the cohort; while the transport is
 * full, newer versions replace older ones, so a slow watcher gets only the latest). A device holds
 * at most DAEMON_MAX_WATCHES open watches here, whichever of its tokens opened them; one more is
 * RESOURCE_EXHAUSTED WATCH_LIMIT with a RetryInfo delay (5 s).
 */
export function versionHandlers(rt: ReadRuntime): Pick<DaemonServiceServer, 'checkVersion' | 'watchVersion'> {
  // What ends every open stream at shutdown: one listener on the process-wide signal rather
  // than one per stream (EventTarget removal is linear, so 10,000 streams closing would be quadratic).
  const stops = new Set<() => void>();
  rt.shutdown.addEventListener(
    'abort',
    () => {
      for (const stop of stops) stop();
    },
    { once: true },
  );
  return {
    checkVersion: unary(
      rt,
      m.checkVersion,
      (req, ctx) => {
        const scope = scopeFor(rt, req.logicalId, ctx.principal);
        const device = ctx.principal.token.deviceUuid;
        rt.statuses.contact(device, scope, req.knownVersion);
        const { version, revision } = rt.model.versions.contentFor(scope, device);
        return { version, changed: version !== req.knownVersion, revision };
      },
      { level: 'debug' },
    ),

    watchVersion: serverStream(rt, m.watchVersion, async (call, ctx) => {
      const scope = scopeFor(rt, call.request.logicalId, ctx.principal);
      const device = ctx.principal.token.deviceUuid;
      const open = rt.statuses.openWatches(device);
      if (open >= rt.settings.maxWatchesPerDevice) {
        throw new DomainError('WATCH_LIMIT', `this device already has ${open} open watches (DAEMON_MAX_WATCHES)`, [], WATCH_LIMIT_RETRY_MS);
      }
      rt.statuses.contact(device, scope, call.request.knownVersion);
      // Only the latest version matters: while the transport is full, newer ones replace older.
      let sent = call.request.knownVersion;
      let pending: WatchVersionResponse | undefined;
      let blocked = false;
      const push = (version: string, revision: number): void => {
        if (blocked) {
          pending = { version, revision };
          return;
        }
        if (version === sent) return;
        sent = version;
        if (!call.write({ version, revision })) {
          blocked = true;
          call.once('drain', () => {
            blocked = false;
            const next = pending;
            pending = undefined;
            if (next !== undefined) push(next.version, next.revision);
          });
        }
      };
      const unlisten = rt.model.versions.listen(scope, device, push);
      const tokenEnded = tokenEnd(rt, ctx.principal);
      rt.gauges.activeWatches++;
      rt.statuses.watching(device, 1);
      // Until cancelled or shut down; the listeners go with the stream (once() would leave its
      // 'abort' listener on the process-wide signal after every stream that ends first).
      let stopWaiting = (): void => undefined;
      const stopped = new Promise<void>((resolve) => (stopWaiting = resolve));
      call.once('cancelled', stopWaiting);
      stops.add(stopWaiting);
      try {
        const content = rt.model.versions.contentFor(scope, device);
        push(content.version, content.revision);
        // Headers now rather than with the first change, so a change costs each stream one message.
        if (sent === call.request.knownVersion && !call.cancelled) call.sendMetadata(new Metadata());
        if (!call.cancelled && !rt.shutdown.aborted) await Promise.race([stopped, tokenEnded.promise]);
      } finally {
        call.off('cancelled', stopWaiting);
        stops.delete(stopWaiting);
        tokenEnded.cancel();
        unlisten();
        rt.gauges.activeWatches--;
        rt.statuses.watching(device, -1);
      }
    }),
  };
}

/**
 * Rejects with UNAUTHENTICATED once the caller's token stops being usable (revoked, expired,
 * superseded past its grace, deleted), so a long-lived stream ends with it. Expiry is timed with
 * `rt.clock`, re-checked when the timer fires and whenever the token changes on the feed.
 */
function tokenEnd(rt: ReadRuntime, { token, hash }: DaemonPrincipal): { promise: Promise<never>; cancel: () => void } {
  let cancel = (): void => undefined;
  const promise = new Promise<never>((_resolve, reject) => {
    let expiry: NodeJS.Timeout | undefined;
    const arm = (expireTime: number): void => {
      clearTimeout(expiry);
      expiry = setTimeout(check, Math.min(expireTime - rt.clock() + 1, MAX_TIMER_MS));
    };
    const check = (): void => {
      const current = rt.model.tokenByHash(hash);
      if (current && !current.revoked && rt.clock() < current.expireTime) return arm(current.expireTime);
      cancel();
      reject(new DomainError('UNAUTHENTICATED', 'the daemon token is no longer valid'));
    };
    const off = rt.model.onTokenChange(token.uuid, check);
    cancel = () => {
      clearTimeout(expiry);
      off();
    };
    arm(token.expireTime);
  });
  // The race in WatchVersion may settle first; an unobserved rejection must not crash the process.
  promise.catch(() => undefined);
  return { promise, cancel };
}

/** At most this many versions' encoded answers are kept per encoder; when full, it starts over. */
const MAX_ENCODED_VERSIONS = 4096;

/**
 * A response serializer for answers that name a scope's version: one version goes to every daemon
 * of its scope (10,000 watchers told of one change; thousands of CheckVersion calls a second), so
 * each (version, revision, variant) is encoded once, not once per call or stream. `variant` tells
 * the forms one version is sent in apart (CheckVersion's `changed`). Returns a new function per server.
 */
function encodedByVersion<T extends { version: string; revision: number }>(encode: (message: T) => Uint8Array, variant: (message: T) => 0 | 1): (message: T) => Buffer {
  const encoded = new Map<string, { revision: number; bytes: [Buffer?, Buffer?] }>();
  return (message) => {
    let entry = encoded.get(message.version);
    if (entry?.revision !== message.revision) {
      if (encoded.size >= MAX_ENCODED_VERSIONS) encoded.clear();
      encoded.set(message.version, (entry = { revision: message.revision, bytes: [] }));
    }
    return (entry.bytes[variant(message)] ??= Buffer.from(encode(message)));
  };
}

/** WatchVersionResponse's serializer for the server (`encodedByVersion`). */
export const watchVersionEncoder = (): ((message: WatchVersionResponse) => Buffer) =>
  encodedByVersion((m) => WatchVersionResponse.encode(m).finish(), () => 0);

/** CheckVersionResponse's serializer for the server (`encodedByVersion`; changed or not). */
export const checkVersionEncoder = (): ((message: CheckVersionResponse) => Buffer) =>
  encodedByVersion((m) => CheckVersionResponse.encode(m).finish(), (m) => (m.changed ? 1 : 0));
