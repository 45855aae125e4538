import { status, type handleServerStreamingCall, type handleUnaryCall, type MethodDefinition, type ServerWritableStream } from '@grpc/grpc-js';
import { checkInput, mapErrors, observe, traceCalls, pipelinePerRuntime, streamHandler, unaryHandler, type Next, type ObserveOptions, type Pipeline } from '@titanbot/service-kit/pipeline';
import { tracerOf } from '@titanbot/service-kit/tracing';
import { authenticate, rateLimit, type DaemonCall } from './auth.js';
import type { DaemonPrincipal, ReadRuntime } from '../access/runtime.js';

/**
 * The read service's pipeline: observe (metrics, one log line; refusals the auth and rate-limit
 * steps already logged, throttled, at debug), trace (when on), map errors, authenticate, rate-limit. Every step is
 * synchronous, so a synchronous handler (CheckVersion) is answered in the same tick.
 */
function readPipeline(rt: ReadRuntime): Pipeline<DaemonCall, ObserveOptions> {
  const quiet = (code: status): boolean => code === status.UNAUTHENTICATED || code === status.RESOURCE_EXHAUSTED;
  return {
    steps: [observe(rt.logger, rt.metrics, quiet), traceCalls(tracerOf('read')), mapErrors(), authenticate(rt), rateLimit(rt), checkInput()],
    // `authenticate` sets the principal before any handler runs.
    context: (method, call) => ({ method, call, principal: undefined as unknown as DaemonPrincipal }),
  };
}

const pipelineOf = pipelinePerRuntime(readPipeline);

/** A unary daemon RPC: `run` behind the read pipeline. `options.level`: debug for hot calls. */
export function unary<Req, Res>(rt: ReadRuntime, method: MethodDefinition<Req, Res>, run: Next<Req, Res, DaemonCall>, options: ObserveOptions = {}): handleUnaryCall<Req, Res> {
  return unaryHandler(pipelineOf(rt), method, options, run);
}

/** A server-streaming daemon RPC: `stream` behind the read pipeline (opening it costs one call of the token's budget). */
export function serverStream<Req, Res>(
  rt: ReadRuntime,
  method: MethodDefinition<Req, Res>,
  stream: Next<ServerWritableStream<Req, Res>, void, DaemonCall>,
): handleServerStreamingCall<Req, Res> {
  return streamHandler(pipelineOf(rt), method, {}, stream);
}
