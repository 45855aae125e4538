import { DeviceState as ProtoState, FleetServiceService, type FleetServiceServer } from '@titanbot/contracts/titanbot/admin/v1/fleet_service';
import * as fleet from '../../app/fleet.js';
import { unary, type Runtime } from '../handler.js';
import { enumMap } from '../translate.js';

const states = enumMap<ProtoState, fleet.DeviceState>(
  [
    [ProtoState.DEVICE_STATE_OFFLINE, 'offline'],
    [ProtoState.DEVICE_STATE_FAILING, 'failing'],
    [ProtoState.DEVICE_STATE_BEHIND, 'behind'],
    [ProtoState.DEVICE_STATE_CURRENT, 'current'],
  ],
  'state',
);

/** titanbot.admin.v1.FleetService handlers: read-only, no transaction. */
export function fleetService(rt: Runtime): FleetServiceServer {
  const m = FleetServiceService;
  return {
    getFleetSummary: unary(rt, m.getFleetSummary, { write: false }, async (ctx, req) => {
      const s = await fleet.getFleetSummary(ctx, ctx.settings.offlineAfterMs, req.logicalId);
      const { oldestBehindMs, ...counts } = s;
      return { ...counts, oldestBehind: { seconds: Math.floor(oldestBehindMs / 1000), nanos: (oldestBehindMs % 1000) * 1_000_000 } };
    }),
    listDeviceStatuses: unary(rt, m.listDeviceStatuses, { write: false }, async (ctx, req) => {
      const page = await fleet.listDeviceStatuses(ctx, ctx.settings.offlineAfterMs, {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        ...(req.state === ProtoState.DEVICE_STATE_UNSPECIFIED ? {} : { state: states.domain(req.state) }),
        ...(req.logicalId === undefined ? {} : { logicalId: req.logicalId }),
        replica: req.replica,
        deviceUuid: req.deviceUuid,
      });
      return {
        deviceStatuses: page.items.map((s) => ({
          deviceUuid: s.deviceUuid,
          state: states.proto(s.state),
          logicalId: fleet.logicalIdOf(s.scopeKey),
          heldVersion: s.heldVersion,
          currentVersion: s.currentVersion,
          heldSha256: s.heldSha256,
          failure: s.failure,
          failureMessage: s.failureMessage,
          lastContactTime: s.lastContactTime,
          replica: s.replica,
        })),
        nextPageToken: page.nextPageToken,
      };
    }),
    listDeviceStatusChanges: unary(rt, m.listDeviceStatusChanges, { write: false }, async (ctx, req) => {
      const page = await fleet.listDeviceStatusChanges(ctx, req);
      return {
        deviceStatusChanges: page.items.map((c) => ({
          id: c.id,
          deviceUuid: c.deviceUuid,
          logicalId: fleet.logicalIdOf(c.scopeKey),
          heldVersion: c.heldVersion,
          heldSha256: c.heldSha256,
          failure: c.failure,
          failureMessage: c.failureMessage,
          changeTime: c.changeTime,
          replica: c.replica,
        })),
        nextPageToken: page.nextPageToken,
      };
    }),
  };
}
