import { WatchVersionRequest, type DaemonServiceClient, type WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { sleep } from '@titanbot/service-kit/backoff';
import { describeError, isAuthError, retryDelayMs } from './errors.js';
import type { SyncLogger } from './sync-logger.js';
import type { TokenKeeper } from './token-keeper.js';

/**
 * Follows WatchVersion for one scope until `signal` aborts, calling `onVersion` for every
 * announced version. A stream that ends or fails is reopened, never giving up, after a jittered
 * wait of at most RETRY_CAP_MS (1 s, or longer when the server's RetryInfo asks), so a watch is
 * back within about 1 s of its replica serving again; it resumes from the version held at that
 * moment (`held()`). A refused token makes the keeper re-read its file first. Events: `watching`
 * once the first stream is open; `watch-lost` (why, and the wait) when an open stream ends or the
 * first one cannot open; `watch-retry` for each later attempt that fails (why, attempt, wait);
 * `watch-restored` (how long it was lost, in how many attempts) once a stream is open again.
 */
export async function watchVersions(
  client: DaemonServiceClient,
  token: TokenKeeper,
  request: { logicalId: number | undefined; held: () => string },
  onVersion: (version: string) => void,
  log: SyncLogger,
  signal: AbortSignal,
): Promise<void> {
  let failures = 0;
  let everOpen = false;
  /** While lost: since when (ms since the epoch) and how many attempts failed. */
  let lost: { sinceMs: number; attempts: number } | undefined;
  const opened = (): void => {
    failures = 0;
    if (lost) log('watch-restored', { downMs: Date.now() - lost.sinceMs, attempts: lost.attempts });
    else if (!everOpen) log('watching', { logicalId: request.logicalId ?? null });
    everOpen = true;
    lost = undefined;
  };
  while (!signal.aborted) {
    const error = await oneStream(client, token, request.logicalId, request.held(), signal, opened, onVersion);
    if (signal.aborted) return;
    const retryInMs = retryDelayMs(failures++, error);
    if (lost) {
      lost.attempts++;
      log('watch-retry', { ...describeError(error), attempt: lost.attempts, retryInMs: Math.round(retryInMs) });
    } else {
      lost = { sinceMs: Date.now(), attempts: 1 };
      log('watch-lost', { ...describeError(error), retryInMs: Math.round(retryInMs) });
    }
    if (isAuthError(error)) await token.reload();
    await sleep(retryInMs, signal, true);
  }
}

/**
 * One WatchVersion call; calls `onOpen` when the server's headers arrive (it sends them at once),
 * `onVersion` per message, and resolves with what ended it (undefined: a clean end).
 */
async function oneStream(
  client: DaemonServiceClient,
  token: TokenKeeper,
  logicalId: number | undefined,
  knownVersion: string,
  signal: AbortSignal,
  onOpen: () => void,
  onVersion: (version: string) => void,
): Promise<unknown> {
  const call = client.watchVersion(WatchVersionRequest.fromPartial({ logicalId, knownVersion }), token.metadata());
  call.once('metadata', onOpen);
  const cancel = (): void => call.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  try {
    for await (const message of call) onVersion((message as WatchVersionResponse).version);
    return undefined;
  } catch (err) {
    return err;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}
