/**
 * Tracing, with an in-memory exporter: one change's journey from an admin call through the feed to
 * a replica's apply, its watchers and the download that follows, and a daemon's forwarded call
 * from replica to write service. Both services run in this process, so their spans share one
 * exporter and are told apart by tracer (titanbot-write, titanbot-read).
 */
import { randomUUID } from 'node:crypto';
import { context, propagation, trace, type Span } from '@opentelemetry/api';
import { Metadata } from '@grpc/grpc-js';
import { CreateHabitRequest, HabitServiceClient } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { adminApi, provisionDevice, uniquePixel } from '@titanbot/read/test-support/admin';
import { download } from '@titanbot/read/test-support/daemon';
import { watch } from '@titanbot/read/test-support/more';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { flushTracing, setupTracing, stopTracing } from '@titanbot/service-kit/tracing';
import { unaryCall } from '@titanbot/service-kit/grpc-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const exporter = new InMemorySpanExporter();
let sys: System;
let replica: Replica;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;

/** Metadata with `x-api-key` and the `traceparent` of `span`, as a traced client sends. */
function tracedMetadata(key: string, span: Span): Metadata {
  const md = new Metadata();
  md.set('x-api-key', key);
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  md.set('traceparent', carrier.traceparent!);
  return md;
}

const spans = async (): Promise<ReadableSpan[]> => {
  await flushTracing();
  return exporter.getFinishedSpans();
};
const scopeOf = (s: ReadableSpan): string => s.instrumentationScope.name;
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

beforeAll(async () => {
  // Before the services start: their pipelines add the tracing step only when tracing is on.
  expect(setupTracing('titanbot-test', {}, exporter)).toBe(true);
  sys = await startSystem();
  replica = await sys.startReplica();
  fleet = await provisionDevice(adminApi(sys.write));
  await replica.synced();
});
afterAll(async () => {
  await sys?.stop();
  await stopTracing();
});

describe('tracing', () => {
  it('follows a change from the admin call through the feed to the replica\'s apply, its watchers and the download it causes', async () => {
    const operator = trace.getTracer('test').startSpan('operator edits a habit');
    const daemon = replica.daemon();
    const watcher = watch(daemon, fleet.token, fleet.logicalId, (await download(daemon, fleet.token, { logicalId: fleet.logicalId })).header.version);
    try {
      const habits = sys.write.client(HabitServiceClient);
      await unaryCall(habits, habits.createHabit, CreateHabitRequest.fromPartial({ habit: { accountLogicalId: fleet.logicalId, action: 'traced', pixels: [uniquePixel()] } }), tracedMetadata(sys.write.adminToken, operator));
      operator.end();
      await watcher.next(1);
      await download(daemon, fleet.token, { logicalId: fleet.logicalId });
    } finally {
      watcher.cancel();
    }
    const traceId = operator.spanContext().traceId;
    await vi.waitFor(async () => expect((await spans()).some((s) => s.name === '/titanbot.daemon.v1.DaemonService/DownloadExport' && s.links.length > 0)).toBe(true));
    const all = await spans();
    const inTrace = all.filter((s) => s.spanContext().traceId === traceId);

    const call = inTrace.find((s) => s.name === '/titanbot.admin.v1.HabitService/CreateHabit');
    expect(call && scopeOf(call)).toBe('titanbot-write');
    expect(parentOf(call!)).toBe(operator.spanContext().spanId);
    const commit = inTrace.find((s) => s.name === 'write.transaction');
    expect(commit && parentOf(commit)).toBe(call!.spanContext().spanId);
    const apply = inTrace.find((s) => s.name === 'feed.apply');
    expect(apply && scopeOf(apply)).toBe('titanbot-read');
    expect(parentOf(apply!)).toBe(commit!.spanContext().spanId);
    const notify = inTrace.find((s) => s.name === 'watchers.notify');
    expect(notify && parentOf(notify)).toBe(apply!.spanContext().spanId);
    expect(notify!.attributes['titanbot.watchers']).toBeGreaterThanOrEqual(1);

    // The download and the build it caused are their own traces, linked to the change.
    const linked = (s: ReadableSpan): boolean => s.links.some((l) => l.context.spanId === apply!.spanContext().spanId);
    const downloads = all.filter((s) => s.name === '/titanbot.daemon.v1.DaemonService/DownloadExport' && linked(s));
    expect(downloads).toHaveLength(1);
    const build = all.find((s) => s.name === 'export.build' && linked(s));
    expect(build && parentOf(build)).toBe(downloads[0]!.spanContext().spanId);
  });

  it('carries a daemon\'s trace context from the replica to the write service on a forwarded call', async () => {
    const daemonSpan = trace.getTracer('test').startSpan('daemon flushes its log');
    const client = replica.daemon();
    await unaryCall(client, client.writeLogs, { lines: [{ line: 'traced line' }], requestId: randomUUID() }, tracedMetadata(fleet.token, daemonSpan));
    daemonSpan.end();
    const traceId = daemonSpan.spanContext().traceId;
    const inTrace = (await spans()).filter((s) => s.spanContext().traceId === traceId);
    const atReplica = inTrace.find((s) => s.name === '/titanbot.daemon.v1.DaemonService/WriteLogs');
    const atWrite = inTrace.find((s) => s.name === '/titanbot.feed.v1.ChangeFeedService/IngestLogs');
    expect(atReplica && parentOf(atReplica)).toBe(daemonSpan.spanContext().spanId);
    expect(atWrite && parentOf(atWrite)).toBe(atReplica!.spanContext().spanId);
    expect(atWrite!.attributes['rpc.grpc.status_code']).toBe(0);
  });
});
