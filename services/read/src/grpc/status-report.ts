import { DaemonServiceService as m, type DaemonServiceServer } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { invalid } from '@titanbot/service-kit/errors';
import { isSha256Hex } from '@titanbot/service-kit/file-digest';
import { isInstallFailure } from '@titanbot/service-kit/request-checks';
import { unary } from './pipeline.js';
import type { ReadRuntime } from '../access/runtime.js';
import { scopeFor } from './scope.js';

/**
 * ReportStatus: the daemon says what it installed or why its install failed; kept in memory
 * (StatusTracker) and sent to the write service with the next status batch. Answered at once.
 * Errors: INVALID_ARGUMENT (an unknown failure, a SHA-256 that is not 64 lower-case hex
 * digits), PERMISSION_DENIED SCOPE_NOT_OF_DEVICE.
 */
export function statusReportHandlers(rt: ReadRuntime): Pick<DaemonServiceServer, 'reportStatus'> {
  return {
    reportStatus: unary(rt, m.reportStatus, (req, ctx) => {
      if (!isInstallFailure(req.failure)) throw invalid('failure', 'is not an InstallFailure');
      if (req.installedSha256 !== '' && !isSha256Hex(req.installedSha256)) throw invalid('installed_sha256', 'must be 64 lower-case hex digits, or empty');
      const scope = scopeFor(rt, req.logicalId, ctx.principal);
      rt.statuses.report(ctx.principal.token.deviceUuid, scope, req.installedVersion, req.installedSha256, req.failure, req.failureMessage);
      return {};
    }),
  };
}
