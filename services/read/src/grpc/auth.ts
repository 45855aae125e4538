import type { CallContext, Step } from '@titanbot/service-kit/pipeline';
import { daemonPrincipal, takeCall } from '../access/principal.js';
import type { DaemonPrincipal, ReadRuntime } from '../access/runtime.js';

/**
 * The step that identifies the daemon behind `x-api-key`, from memory (one lookup), and sets
 * `ctx.principal`. Errors: UNAUTHENTICATED for no key, a malformed one (rejected by its checksum
 * before any lookup), an unknown, expired or revoked token; an admin or reader credential is never
 * accepted here (docs/domain.md "Who may call what"). Each failure is counted in
 * `rt.counters.authFailures` and logged (throttled) with the reason and, for a well-formed token
 * only, its shown prefix: never the presented value.
 */
export const authenticate =
  (rt: ReadRuntime): Step<DaemonCall, unknown> =>
  (next, method) =>
  (req, ctx) => {
    ctx.principal = daemonPrincipal(rt, method.path, ctx.call.metadata.get('x-api-key')[0], 'grpc', grpcPeerAddress, ctx.call);
    return next(req, ctx);
  };

/** The address of a grpc-js call's peer (`getPeer()` is `host:port`, IPv6 without brackets), without its port. */
const grpcPeerAddress = (call: DaemonCall['call']): string => call.getPeer().replace(/:\d+$/, '');

/**
 * The step that takes one call from the device's rate-limit bucket (a stream costs one on open):
 * `takeCall`, whose RATE_LIMITED refusal it passes on.
 */
export const rateLimit =
  (rt: ReadRuntime): Step<DaemonCall, unknown> =>
  (next, method) =>
  (req, ctx) => {
    takeCall(rt, ctx.principal, method.path);
    return next(req, ctx);
  };

/** A daemon call as the read service's steps and handlers see it. */
export interface DaemonCall extends CallContext {
  /** Set by the `authenticate` step before any handler runs. */
  principal: DaemonPrincipal;
}
