/** What a daemon needs: the DaemonService stub and messages, DaemonSync, and its retry rule (which errors, how long to wait) for clients of their own. */
export * from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
export { createDaemonClient, DaemonClient } from './client.js';
export { DaemonSync, type DaemonSyncOptions, type SyncLogger, type SyncResult } from './sync.js';
export { isRetryable, retryDelayMs } from './errors.js';
