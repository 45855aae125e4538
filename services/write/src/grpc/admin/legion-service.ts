import {
  LegionServiceService,
  type Legion as LegionMessage,
  type LegionServiceServer,
} from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import * as legions from '../../app/legions.js';
import type { Legion, LegionFields } from '../../domain/legion.js';
import { unary, type Runtime } from '../handler.js';
import { orNull, orUndefined, patchFromMask, required } from '../translate.js';

const LEGION_FIELDS: Record<string, (l: LegionMessage) => Partial<LegionFields>> = {
  title: (l) => ({ title: l.title }),
  ext_title: (l) => ({ extTitle: orNull(l.extTitle) }),
  pay_day_of_month: (l) => ({ payDayOfMonth: orNull(l.payDayOfMonth) }),
};

export const legionToProto = (l: Legion): LegionMessage => ({
  uuid: l.uuid,
  title: l.title,
  extTitle: orUndefined(l.extTitle),
  payDayOfMonth: orUndefined(l.payDayOfMonth),
  etag: String(l.version),
});

/** titanbot.admin.v1.LegionService handlers. */
export function legionService(rt: Runtime): LegionServiceServer {
  const m = LegionServiceService;
  return {
    createLegion: unary(rt, m.createLegion, { write: true, requestId: (r) => r.requestId, validateOnly: (r) => r.validateOnly }, async (ctx, req) => {
      const l = required(req.legion, 'legion');
      const fields = Object.assign({}, ...Object.values(LEGION_FIELDS).map((pick) => pick(l))) as LegionFields;
      return legionToProto(await legions.createLegion(ctx, fields, req.legionId));
    }),
    getLegion: unary(rt, m.getLegion, { write: false }, async (ctx, req) => legionToProto(await legions.getLegion(ctx, req.uuid))),
    listLegions: unary(rt, m.listLegions, { write: false }, async (ctx, req) => {
      const page = await legions.listLegions(ctx, req);
      return { legions: page.items.map(legionToProto), nextPageToken: page.nextPageToken };
    }),
    updateLegion: unary(rt, m.updateLegion, { write: true }, async (ctx, req) => {
      const l = required(req.legion, 'legion');
      return legionToProto(await legions.updateLegion(ctx, l.uuid, l.etag, patchFromMask(req.updateMask, l, LEGION_FIELDS)));
    }),
    deleteLegion: unary(rt, m.deleteLegion, { write: true }, async (ctx, req) => {
      await legions.deleteLegion(ctx, req.uuid);
      return {};
    }),
  };
}
