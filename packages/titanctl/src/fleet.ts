import * as fleet from '@titanbot/contracts/titanbot/admin/v1/fleet_service';
import { duration, flag, int, required, uuid, type Values } from './args.js';
import type { AdminApi } from './client.js';
import type { Command, Resource } from './command.js';
import { jsonWithDefaults, prettyJson, refreshUntil, renderTable } from './output.js';

const SCOPE = flag('logical-id', int, 'only daemons syncing this scope (default: every scope)');
const WORST = flag('worst', int, 'how many of the worst devices to show (default 10)');
const EVERY = flag('every', duration, 'between refreshes (default 2s)');
const DEVICE = required(flag('device', uuid, 'device id'));
const LIMIT = flag('limit', int, 'how many changes, newest first (default 20)');

/** Worst first: the states `fleet status` lists devices of. */
const WORST_STATES = [fleet.DeviceState.DEVICE_STATE_OFFLINE, fleet.DeviceState.DEVICE_STATE_FAILING, fleet.DeviceState.DEVICE_STATE_BEHIND];

/** The summary and up to `--worst` devices (offline, then failing, then behind). */
async function fleetStatus(api: AdminApi, values: Values, table: boolean): Promise<string> {
  const logicalId = values.get(SCOPE);
  const limit = values.get(WORST) ?? 10;
  const summary = await api.call(fleet.FleetServiceService.getFleetSummary, fleet.GetFleetSummaryRequest.fromPartial({ logicalId }));
  const worst: fleet.DeviceStatus[] = [];
  for (const state of WORST_STATES) {
    if (worst.length >= limit) break;
    const page = await api.call(fleet.FleetServiceService.listDeviceStatuses, fleet.ListDeviceStatusesRequest.fromPartial({ state, logicalId, pageSize: limit - worst.length }));
    worst.push(...page.deviceStatuses);
  }
  // A Duration reads as proto3 JSON writes one ("12s"); zero when nobody is behind.
  const waiting = `${summary.oldestBehind?.seconds ?? 0}s`;
  if (!table) {
    const worstJson = worst.map((d) => jsonWithDefaults(fleet.DeviceStatus, d));
    return prettyJson({ summary: { ...jsonWithDefaults(fleet.FleetSummary, summary, true), oldestBehind: waiting }, worst: worstJson });
  }
  return `${renderTable(fleet.FleetSummary, [summary])}\noldest behind: ${waiting}\n\n${worst.length ? renderTable(fleet.DeviceStatus, worst, { failure: (json, native) => (native ? String(json) : '') }) : 'no device is offline, failing or behind'}`;
}

const status: Command = {
  verb: 'status',
  summary: 'devices per state (current, behind, failing, offline) and the worst devices',
  flags: [SCOPE, WORST],
  async run(api, values, table) {
    return { out: await fleetStatus(api, values, table) };
  },
};

const watch: Command = {
  verb: 'watch',
  summary: 'fleet status, refreshed until Ctrl-C',
  flags: [SCOPE, WORST, EVERY],
  async run(api, values, table) {
    const every = values.get(EVERY);
    await refreshUntil(every ? every.seconds * 1000 + every.nanos / 1e6 : 2000, async () => ({ text: await fleetStatus(api, values, table), done: false }));
    return { out: '' };
  },
};

const history: Command = {
  verb: 'history',
  summary: "a device's status changes, newest first: each version it installed, each install failure",
  flags: [DEVICE, LIMIT],
  async run(api, values, table) {
    const page = await api.call(
      fleet.FleetServiceService.listDeviceStatusChanges,
      fleet.ListDeviceStatusChangesRequest.fromPartial({ deviceUuid: values.get(DEVICE), pageSize: values.get(LIMIT) ?? 20 }),
    );
    if (table) return { out: page.deviceStatusChanges.length ? renderTable(fleet.DeviceStatusChange, page.deviceStatusChanges, { failure: (json, native) => (native ? String(json) : '') }) : 'no status reported yet' };
    return { out: prettyJson(page.deviceStatusChanges.map((c) => jsonWithDefaults(fleet.DeviceStatusChange, c))) };
  },
};

/** `titanctl fleet status|watch|history`. */
export const FLEET: Resource = { name: 'fleet', summary: 'what every daemon holds: current, behind, failing, offline', commands: [status, watch, history] };
