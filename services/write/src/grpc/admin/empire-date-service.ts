import {
  EmpireDateServiceService,
  type EmpireDate as EmpireDateMessage,
  type EmpireDateServiceServer,
} from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import * as empireDates from '../../app/empire-dates.js';
import type { EmpireDate } from '../../domain/empire-date.js';
import { unary, type Runtime } from '../handler.js';
import { dateToTimestamp, patchFromMask, required, timestampToDate } from '../translate.js';

const FIELDS: Record<string, (e: EmpireDateMessage) => { date?: string }> = {
  date: (e) => ({ date: timestampToDate(e.date, 'empire_date.date') }),
};

export const empireDateToProto = (e: EmpireDate): EmpireDateMessage => ({
  uuid: e.uuid,
  date: dateToTimestamp(e.date),
  etag: String(e.version),
});

/** titanbot.admin.v1.EmpireDateService handlers. */
export function empireDateService(rt: Runtime): EmpireDateServiceServer {
  const m = EmpireDateServiceService;
  return {
    createEmpireDate: unary(rt, m.createEmpireDate, { write: true, requestId: (r) => r.requestId, validateOnly: (r) => r.validateOnly }, async (ctx, req) => {
      const e = required(req.empireDate, 'empire_date');
      return empireDateToProto(await empireDates.createEmpireDate(ctx, timestampToDate(e.date, 'empire_date.date'), req.empireDateId));
    }),
    getEmpireDate: unary(rt, m.getEmpireDate, { write: false }, async (ctx, req) =>
      empireDateToProto(await empireDates.getEmpireDate(ctx, req.uuid)),
    ),
    listEmpireDates: unary(rt, m.listEmpireDates, { write: false }, async (ctx, req) => {
      const page = await empireDates.listEmpireDates(ctx, req);
      return { empireDates: page.items.map(empireDateToProto), nextPageToken: page.nextPageToken };
    }),
    updateEmpireDate: unary(rt, m.updateEmpireDate, { write: true }, async (ctx, req) => {
      const e = required(req.empireDate, 'empire_date');
      const { date } = patchFromMask(req.updateMask, e, FIELDS);
      return empireDateToProto(await empireDates.updateEmpireDate(ctx, e.uuid, e.etag, date));
    }),
    deleteEmpireDate: unary(rt, m.deleteEmpireDate, { write: true }, async (ctx, req) => {
      await empireDates.deleteEmpireDate(ctx, req.uuid);
      return {};
    }),
    getNextEmpireDate: unary(rt, m.getNextEmpireDate, { write: false }, async (ctx) => {
      const next = await empireDates.getNextEmpireDate(ctx);
      return next ? { nextTime: next } : {};
    }),
  };
}
