import { DaemonServiceService as m, type DaemonServiceServer } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DomainError, invalid } from '@titanbot/service-kit/errors';
import { send } from '@titanbot/service-kit/stream';
import { trace } from '@opentelemetry/api';
import { linkTo, tracingEnabled } from '@titanbot/service-kit/tracing';
import { exportMessages, versionGone } from '../export/chunks.js';
import { serverStream } from './pipeline.js';
import type { ReadRuntime } from './runtime.js';
import { scopeFor } from './scope.js';

/**
 * DownloadExport: the scope's daemon database from `offset` (bytes), pinned to `version` when one
 * is given (a resumed download) or the current one. Errors: INVALID_ARGUMENT (offset < 0),
 * PERMISSION_DENIED SCOPE_NOT_OF_DEVICE, FAILED_PRECONDITION EXPORT_VERSION_GONE (the pinned
 * version is no longer kept), OUT_OF_RANGE OFFSET_OUT_OF_RANGE (offset past the end).
 */
export function downloadHandlers(rt: ReadRuntime): Pick<DaemonServiceServer, 'downloadExport'> {
  return {
    downloadExport: serverStream(rt, m.downloadExport, async (call, ctx) => {
      const { offset, version } = call.request;
      if (offset < 0) throw invalid('offset', 'must be >= 0');
      const scope = scopeFor(rt, call.request.logicalId, ctx.principal);
      rt.statuses.contact(ctx.principal.token.deviceUuid, scope);
      // Traced: the download links to the change that made the scope's current version.
      if (tracingEnabled()) trace.getActiveSpan()?.addLinks(linkTo(rt.model.versions.changeTraceparent(scope)));
      const file = version === '' || version === rt.model.versions.version(scope) ? await rt.exports.latest(scope) : await rt.exports.pinned(scope, version);
      if (!file) throw versionGone(version);
      if (offset > file.sizeBytes) {
        throw new DomainError('OFFSET_OUT_OF_RANGE', `offset ${offset} is past the end (${file.sizeBytes} bytes)`, [
          { field: 'offset', description: `at most ${file.sizeBytes}` },
        ]);
      }
      rt.gauges.activeDownloads++;
      try {
        for await (const message of exportMessages(file, offset, rt.settings.exportChunkBytes, rt.hotExports)) {
          if (!(await send(call, message))) return;
        }
      } finally {
        rt.gauges.activeDownloads--;
      }
    }),
  };
}
