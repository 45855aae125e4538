/**
 * OpenTelemetry tracing, off by default. With OTEL_EXPORTER_OTLP_ENDPOINT set (the standard
 * variable; OTLP over HTTP, e.g. http://collector:4318), a process exports its spans in batches;
 * trace context travels as W3C `traceparent` in gRPC metadata and, for a change's journey from an
 * admin call to the replicas, on the change feed (ChangeEvent.traceparent). Off, nothing is
 * registered: the pipeline has no tracing step, and the API calls left elsewhere are the
 * OpenTelemetry API's no-ops.
 */
import { context, propagation, trace, type Context, type Link, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Metadata } from '@grpc/grpc-js';

/** The process's tracing, once set up; undefined while tracing is off. */
let provider: NodeTracerProvider | undefined;

/**
 * Turns tracing on for this process: spans of `serviceName` go to `exporter` (tests: an in-memory
 * one), or to OTLP/HTTP at OTEL_EXPORTER_OTLP_ENDPOINT. Returns false, and changes nothing, when
 * neither is given. A second call adds nothing (one provider per process).
 */
export function setupTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env, exporter?: SpanExporter): boolean {
  if (provider) return true;
  if (!exporter && !env.OTEL_EXPORTER_OTLP_ENDPOINT) return false;
  const processor: SpanProcessor = new BatchSpanProcessor(exporter ?? new OTLPTraceExporter());
  provider = new NodeTracerProvider({ resource: resourceFromAttributes({ 'service.name': serviceName }), spanProcessors: [processor] });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return true;
}

/** Exports the spans buffered so far (before reading an in-memory exporter; before exit). */
export async function flushTracing(): Promise<void> {
  await provider?.forceFlush();
}

/** Exports what is buffered and turns tracing off again (shutdown; tests). */
export async function stopTracing(): Promise<void> {
  const p = provider;
  provider = undefined;
  await p?.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
}

/** Whether this process traces. */
export const tracingEnabled = (): boolean => provider !== undefined;

/** The tracer of one service (its instrumentation scope names the service in a shared process). */
export const tracerOf = (service: string): Tracer => trace.getTracer(`titanbot-${service}`);

/** The context a W3C `traceparent` names (the active one when it names none). */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  return traceparent ? propagation.extract(context.active(), { traceparent }) : context.active();
}

/** The W3C `traceparent` of the span in `ctx` (default: the active context), '' when there is none. */
export function traceparentOf(ctx: Context = context.active()): string {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent ?? '';
}

/** The context carried by gRPC metadata (`traceparent`). */
export function contextFromMetadata(metadata: Metadata): Context {
  const value = metadata.get('traceparent')[0];
  return contextFromTraceparent(typeof value === 'string' ? value : undefined);
}

/** Adds the active context's `traceparent` to outgoing gRPC `metadata` (nothing while tracing is off). */
export function injectTraceparent(metadata: Metadata): Metadata {
  const traceparent = traceparentOf();
  if (traceparent) metadata.set('traceparent', traceparent);
  return metadata;
}

/** A link to the span a `traceparent` names, for work caused by it but not part of it. */
export function linkTo(traceparent: string): Link[] {
  const spanContext: SpanContext | undefined = trace.getSpanContext(contextFromTraceparent(traceparent));
  return spanContext ? [{ context: spanContext }] : [];
}

/** Runs `fn` in a span `name` (a child of `parent`, default the active context), ending it when `fn` settles. */
export function inSpan<T>(tracer: Tracer, name: string, fn: (span: Span) => T, parent: Context = context.active(), links: Link[] = []): T {
  const span = tracer.startSpan(name, { links }, parent);
  const ended = (value: T): T => {
    span.end();
    return value;
  };
  try {
    const result = context.with(trace.setSpan(parent, span), () => fn(span));
    if (result instanceof Promise) {
      return result.then(ended, (err: unknown) => {
        span.recordException(err as Error);
        span.end();
        throw err;
      }) as T;
    }
    return ended(result);
  } catch (err) {
    span.recordException(err as Error);
    span.end();
    throw err;
  }
}
