import { status, type Deadline, type ServiceError } from '@grpc/grpc-js';
import { DaemonServiceService as m, type DaemonServiceServer } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import { DomainError } from '@titanbot/service-kit/errors';
import { CallFailure } from '@titanbot/service-kit/pipeline';
import { errorReason } from '@titanbot/service-kit/status';
import { injectTraceparent } from '@titanbot/service-kit/tracing';
import { unaryCall, type UnaryMethod } from '@titanbot/service-kit/grpc-client';
import { chargeLogLines } from '../access/principal.js';
import { unary } from './pipeline.js';
import type { ReadRuntime } from '../access/runtime.js';

/** The RetryInfo delay sent with WRITE_SERVICE_UNAVAILABLE (ms): about one write-service restart's worth. */
const WRITE_SERVICE_RETRY_DELAY_MS = 1_000;

/** How long RotateToken waits for the new token to arrive on this replica's feed (ms). */
const TOKEN_ARRIVAL_WAIT_MS = 2_000;

/**
 * The calls a replica forwards to the write service on the daemon's behalf (reader credential):
 * WriteLogs (answered once the write service stored the lines, so an acknowledged line is never
 * lost; `request_id` makes a retry safe) and RotateToken (answered once the new token reached this
 * replica, at most 2 s, so the daemon can use it at once). WriteLogs charges its lines to the
 * device's log bucket first (`chargeLogLines`). Errors: UNAVAILABLE
 * WRITE_SERVICE_UNAVAILABLE (RetryInfo 1 s) when the write service is unreachable or too slow;
 * otherwise the write service's own status (DATABASE_UNAVAILABLE among them), passed on as it is.
 */
export function forwardedHandlers(rt: ReadRuntime): Pick<DaemonServiceServer, 'writeLogs' | 'rotateToken'> {
  /**
   * Forwards a call by the daemon's own deadline or FORWARD_TIMEOUT, whichever comes first (an
   * answer the daemon can no longer receive must not change state).
   */
  const forward = <Req, Res>(daemonDeadline: Deadline, method: UnaryMethod<Req, Res>, request: Req): Promise<Res> =>
    unaryCall(rt.feed, method, request, injectTraceparent(rt.readerMetadata()), {
      deadline: new Date(Math.min(Date.now() + rt.settings.forwardTimeoutMs, deadlineMs(daemonDeadline))),
    }).catch((err: ServiceError) => {
      // An UNAVAILABLE with a reason is the write service's own answer (DATABASE_UNAVAILABLE): passed on.
      if ((err.code === status.UNAVAILABLE && !errorReason(err)) || err.code === status.DEADLINE_EXCEEDED) {
        throw new DomainError('WRITE_SERVICE_UNAVAILABLE', 'the write service is unreachable; retry', [], WRITE_SERVICE_RETRY_DELAY_MS);
      }
      throw new CallFailure({ code: err.code, details: err.details, metadata: err.metadata });
    });

  return {
    writeLogs: unary(rt, m.writeLogs, async (req, ctx) => {
      chargeLogLines(rt, ctx.principal, req.lines.length, 'lines');
      const response = await forward(ctx.call.getDeadline(), rt.feed.ingestLogs, { deviceUuid: ctx.principal.token.deviceUuid, lines: req.lines, requestId: req.requestId });
      return { acceptedCount: response.acceptedCount };
    }),

    rotateToken: unary(rt, m.rotateToken, async (_req, ctx) => {
      const rotated = await forward(ctx.call.getDeadline(), rt.feed.rotateDaemonToken, { token: ctx.principal.plaintext });
      // The daemon will use the new token at once: let it reach this replica first.
      if (!(await rt.model.waitForToken(rotated.uuid, TOKEN_ARRIVAL_WAIT_MS))) {
        rt.logger.warn({ token: rotated.uuid }, "rotated token not yet on this replica's feed");
      }
      return {
        token: rotated.token,
        tokenInfo: {
          uuid: rotated.uuid,
          deviceUuid: rotated.deviceUuid,
          prefix: rotated.token.slice(0, SHOWN_PREFIX_CHARS),
          createTime: rotated.createTime,
          expireTime: rotated.expireTime,
        },
        previousExpireTime: rotated.previousExpireTime,
      };
    }),
  };
}

/** A grpc-js deadline (Date, ms since the epoch, or Infinity when the caller set none) in ms. */
const deadlineMs = (deadline: Deadline): number => (deadline instanceof Date ? deadline.getTime() : deadline);
