import {
  DaemonTokenServiceService,
  type DaemonToken as DaemonTokenMessage,
  type DaemonTokenServiceServer,
} from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import * as tokens from '../../app/daemon-tokens.js';
import type { DaemonToken } from '../../domain/daemon-token.js';
import { unary, type Runtime } from '../handler.js';
import { durationToMs, orUndefined } from '../translate.js';

export const daemonTokenToProto = (t: DaemonToken): DaemonTokenMessage => ({
  uuid: t.uuid,
  deviceUuid: t.deviceUuid,
  prefix: t.prefix,
  createTime: t.createTime,
  expireTime: orUndefined(t.expireTime),
  revokeTime: orUndefined(t.revokeTime),
  rotateTime: orUndefined(t.rotateTime),
  rotatedFromUuid: t.rotatedFromUuid ?? '',
  legacy: t.kind === 'legacy',
});

/** titanbot.admin.v1.DaemonTokenService handlers. */
export function daemonTokenService(rt: Runtime): DaemonTokenServiceServer {
  const m = DaemonTokenServiceService;
  return {
    issueDaemonToken: unary(rt, m.issueDaemonToken, { write: true }, async (ctx, req) => {
      const issued = await tokens.issueDaemonToken(ctx, req.deviceUuid, durationToMs(req.ttl, 'ttl'));
      return { token: issued.plaintext, daemonToken: daemonTokenToProto(issued.token) };
    }),
    getDaemonToken: unary(rt, m.getDaemonToken, { write: false }, async (ctx, req) =>
      daemonTokenToProto(await tokens.getDaemonToken(ctx, req.uuid)),
    ),
    listDaemonTokens: unary(rt, m.listDaemonTokens, { write: false }, async (ctx, req) => {
      const page = await tokens.listDaemonTokens(ctx, req);
      return { daemonTokens: page.items.map(daemonTokenToProto), nextPageToken: page.nextPageToken };
    }),
    importLegacyDaemonToken: unary(rt, m.importLegacyDaemonToken, { write: true }, async (ctx, req) =>
      daemonTokenToProto(await tokens.importLegacyDaemonToken(ctx, req.deviceUuid, req.token, req.expireTime ?? null)),
    ),
    revokeDaemonToken: unary(rt, m.revokeDaemonToken, { write: true }, async (ctx, req) =>
      daemonTokenToProto(await tokens.revokeDaemonToken(ctx, req.uuid)),
    ),
  };
}
