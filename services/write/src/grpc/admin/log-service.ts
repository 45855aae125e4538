import { LogServiceService, type LogServiceServer } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import * as logs from '../../app/logs.js';
import { unary, type Runtime } from '../handler.js';

/** titanbot.admin.v1.LogService handlers. */
export function logService(rt: Runtime): LogServiceServer {
  const m = LogServiceService;
  return {
    listLogs: unary(rt, m.listLogs, { write: false }, async (ctx, req) => {
      const page = await logs.listLogs(ctx, req);
      return { logEntries: page.items, nextPageToken: page.nextPageToken };
    }),
    clearLogs: unary(rt, m.clearLogs, { write: true }, async (ctx, req) => ({ deletedCount: await logs.clearLogs(ctx, req) })),
  };
}
