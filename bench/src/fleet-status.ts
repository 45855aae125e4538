import { credentials, Metadata } from '@grpc/grpc-js';
import { FleetServiceClient } from '@titanbot/contracts/titanbot/admin/v1/fleet_service';
import { ChangeFeedServiceClient, type DeviceStatus } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { unaryCall } from '@titanbot/service-kit/grpc-client';
import pg from 'pg';
import type { Benchmark } from './lib/context.js';
import { measureCpu } from './lib/proc.js';
import { printJson, printTable } from './lib/report.js';
import { round } from './lib/stats.js';

const DAEMONS = 10_000;
/** Batches per case. */
const ROUNDS = 10;
/**
 * The batches a replica sends every STATUS_REPORT_INTERVAL (2 s) for 10,000 daemons: every one
 * changed (after a global change, all install and report), and the steady state (each daemon's
 * contact refreshed every STATUS_CONTACT_REFRESH, 30 s: 10,000 / 15 per batch).
 */
const CASES = [
  { name: 'all 10,000 changed', size: DAEMONS },
  { name: 'steady (contact refresh)', size: Math.round(DAEMONS / 15) },
] as const;

/**
 * Benchmark: the write load of the fleet view. 10,000 devices (inserted directly), then
 * ReportDeviceStatuses batches as a replica sends them, timed and with the write service's and
 * PostgreSQL's CPU per batch; and GetFleetSummary over the 10,000 statuses, as a scrape of the
 * fleet gauges or `titanctl fleet status` costs.
 */
export const fleetStatus: Benchmark = {
  name: 'fleet-status',
  async run(ctx) {
    const db = new pg.Client({ connectionString: ctx.system.databaseUrl });
    await db.connect();
    const uuids: string[] = (
      await db.query(
        `insert into devices (uuid, physical_id) select gen_random_uuid(), 800000000 + g from generate_series(1, $1) g returning uuid`,
        [DAEMONS],
      )
    ).rows.map((r: { uuid: string }) => r.uuid);
    await db.end();
    const feed = new ChangeFeedServiceClient(ctx.system.write.address, credentials.createInsecure(), { 'grpc.max_send_message_length': 16 * 1024 * 1024 });
    const md = new Metadata();
    md.set('x-api-key', ctx.system.readerToken);
    const rows = [];
    const figures: Record<string, unknown>[] = [];
    try {
      let round_ = 0;
      for (const c of CASES) {
        const times: number[] = [];
        const { cpuSeconds } = await measureCpu([ctx.system.write.pid], true, async () => {
          for (let r = 0; r < ROUNDS; r++) {
            round_++;
            const statuses: DeviceStatus[] = uuids.slice(0, c.size).map((deviceUuid) => ({
              deviceUuid,
              logicalId: 1,
              heldVersion: `v${round_}`,
              heldSha256: 'ab'.repeat(32),
              failure: 0,
              failureMessage: '',
              lastContactTime: new Date(),
            }));
            const started = performance.now();
            await unaryCall(feed, feed.reportDeviceStatuses, { replica: 'bench', statuses, scopeVersions: [{ logicalId: 1, version: `v${round_}`, since: new Date() }], rolloutVersions: [] }, md, { deadline: Date.now() + 60_000 });
            times.push(performance.now() - started);
          }
        });
        const ms = times.reduce((a, b) => a + b, 0) / times.length;
        rows.push({ batch: c.name, statuses: c.size, 'ms/batch': round(ms, 1), 'CPU ms/batch (write + PostgreSQL)': round((cpuSeconds * 1000) / ROUNDS, 1), 'share of one core at one batch per 2 s': `${round((cpuSeconds / ROUNDS / 2) * 100, 1)} %` });
        figures.push({ batch: c.name, statuses: c.size, msPerBatch: round(ms, 1), cpuMsPerBatch: round((cpuSeconds * 1000) / ROUNDS, 1) });
      }
      printTable(`Fleet status batches for ${DAEMONS} daemons (ReportDeviceStatuses, ${ROUNDS} batches each)`, rows);
      const admin = new FleetServiceClient(ctx.system.write.address, credentials.createInsecure());
      const amd = new Metadata();
      amd.set('x-api-key', ctx.system.adminToken);
      // A few summaries: the first pays for cold caches.
      let summaryMs = Number.POSITIVE_INFINITY;
      let summary = { devices: 0 };
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        summary = await unaryCall(admin, admin.getFleetSummary, {}, amd);
        summaryMs = Math.min(summaryMs, performance.now() - started);
      }
      admin.close();
      printJson('fleet-status', { daemons: DAEMONS, batches: figures, summaryBestMs: round(summaryMs, 1), summaryDevices: summary.devices });
    } finally {
      feed.close();
    }
  },
};
