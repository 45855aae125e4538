import { AuditServiceService, type AuditServiceServer } from '@titanbot/contracts/titanbot/admin/v1/audit_service';
import * as audit from '../../app/audit.js';
import { unary, type Runtime } from '../handler.js';

/** titanbot.admin.v1.AuditService handlers: read-only. */
export function auditService(rt: Runtime): AuditServiceServer {
  const m = AuditServiceService;
  return {
    listAuditEvents: unary(rt, m.listAuditEvents, { write: false }, async (ctx, req) => {
      const page = await audit.listAuditEvents(ctx, req);
      return {
        auditEvents: page.items.map((e) => ({ ...e, eventTime: e.time })),
        nextPageToken: page.nextPageToken,
      };
    }),
  };
}
