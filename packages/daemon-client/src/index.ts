/** What a daemon needs: the DaemonService stub and messages, and DaemonSync. */
export * from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
export { createDaemonClient, DaemonClient } from './client.js';
export { DaemonSync, type DaemonSyncOptions, type SyncLogger, type SyncResult } from './sync.js';
