import { WatchVersionRequest, type DaemonServiceClient, type WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { sleep } from '@titanbot/service-kit/backoff';
import { describeError, isAuthError, retryDelayMs } from './errors.js';
import type { SyncLogger } from './sync.js';
import type { TokenKeeper } from './token-keeper.js';

/**
 * Follows WatchVersion for one scope until `signal` aborts, calling `onVersion` for every
 * announced version. A stream that ends or fails is reopened, never giving up, after a jittered
 * wait of at most RETRY_CAP_MS (1 s, or longer when the server's RetryInfo asks), so a watch is
 * back within about 1 s of its replica serving again; it resumes from the version held at that
 * moment (`held()`). A refused token makes the keeper re-read its file first.
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
  while (!signal.aborted) {
    const error = await oneStream(client, token, request.logicalId, request.held(), signal, (version) => {
      failures = 0;
      onVersion(version);
    });
    if (signal.aborted) return;
    const retryInMs = retryDelayMs(failures++, error);
    log('watch-disconnected', { ...describeError(error), retryInMs: Math.round(retryInMs) });
    if (isAuthError(error)) await token.reload();
    await sleep(retryInMs, signal, true);
  }
}

/** One WatchVersion call; calls `onVersion` per message and resolves with what ended it (undefined: a clean end). */
async function oneStream(
  client: DaemonServiceClient,
  token: TokenKeeper,
  logicalId: number | undefined,
  knownVersion: string,
  signal: AbortSignal,
  onVersion: (version: string) => void,
): Promise<unknown> {
  const call = client.watchVersion(WatchVersionRequest.fromPartial({ logicalId, knownVersion }), token.metadata());
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
