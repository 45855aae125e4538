import { DaemonServiceService, type DaemonServiceServer } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { downloadExportMethod } from '../export/wire-encoding.js';
import { deviceDataHandlers } from './device-data.js';
import { downloadHandlers } from './downloads.js';
import { forwardedHandlers } from './forwarded.js';
import type { ReadRuntime } from '../access/runtime.js';
import { statusReportHandlers } from './status-report.js';
import { checkVersionEncoder, versionHandlers, watchVersionEncoder } from './versions.js';

/**
 * titanbot.daemon.v1.DaemonService: every call authenticated by a daemon token, rate-limited per
 * token and limited to the token's own device. One file per concern: versions, downloads, device
 * data, forwarded calls, status reports.
 */
export function daemonService(rt: ReadRuntime): DaemonServiceServer {
  return { ...versionHandlers(rt), ...downloadHandlers(rt), ...deviceDataHandlers(rt), ...forwardedHandlers(rt), ...statusReportHandlers(rt) };
}

/**
 * The service definition the server registers: the generated one, with export chunks serialised
 * by export/'s one-copy encoder, and CheckVersion's and WatchVersion's answers encoded once per version.
 */
export const daemonServiceDefinition = (): typeof DaemonServiceService => ({
  ...DaemonServiceService,
  downloadExport: downloadExportMethod,
  checkVersion: { ...DaemonServiceService.checkVersion, responseSerialize: checkVersionEncoder() },
  watchVersion: { ...DaemonServiceService.watchVersion, responseSerialize: watchVersionEncoder() },
});
