import {
  ActivityType,
  DeviceServiceService,
  type Device as DeviceMessage,
  type DeviceServiceServer,
  type Ssh as SshMessage,
} from '@titanbot/contracts/titanbot/admin/v1/device_service';
import * as devices from '../../app/devices.js';
import type { DomainSettings } from '../../app/context.js';
import { DEVICE_DEFAULTS, type DeviceSettings } from '../../domain/device.js';
import type { Ssh } from '../../domain/ssh.js';
import { unary, type Runtime } from '../handler.js';
import { enumMap, orUndefined, patchFromMask, required } from '../translate.js';

const activityType = enumMap(
  [
    [ActivityType.ACTIVITY_TYPE_ROWGPLAY, 'rowgplay'],
    [ActivityType.ACTIVITY_TYPE_AJAGPLAY, 'ajagplay'],
  ] as const,
  'device.activity_type',
);

/** Mutable Device fields by update_mask path; unset optional fields fall back to their defaults. */
const DEVICE_FIELDS: Record<string, (d: DeviceMessage) => Partial<DeviceSettings>> = {
  physical_id: (d) => ({ physicalId: d.physicalId }),
  is_active: (d) => ({ isActive: d.isActive }),
  is_ssh: (d) => ({ isSsh: d.isSsh }),
  is_need_to_update: (d) => ({ isNeedToUpdate: d.isNeedToUpdate }),
  activity_type: (d) => ({ activityType: activityType.domain(d.activityType, DEVICE_DEFAULTS.activityType) }),
  is_full_server_detection: (d) => ({ isFullServerDetection: d.isFullServerDetection }),
  is_able_to_clear_cache: (d) => ({ isAbleToClearCache: d.isAbleToClearCache }),
  go_time_limit_seconds: (d) => ({ goTimeLimitSeconds: d.goTimeLimitSeconds ?? DEVICE_DEFAULTS.goTimeLimitSeconds }),
};

export function deviceToProto(view: devices.DeviceView): DeviceMessage {
  const d = view.device;
  return {
    uuid: d.uuid,
    physicalId: d.physicalId,
    isActive: d.isActive,
    isSsh: d.isSsh,
    isNeedToUpdate: d.isNeedToUpdate,
    activityType: activityType.proto(d.activityType),
    isFullServerDetection: d.isFullServerDetection,
    isAbleToClearCache: d.isAbleToClearCache,
    goTimeLimitSeconds: d.goTimeLimitSeconds,
    currentAccountLogicalId: orUndefined(view.currentAccountLogicalId),
    accountLogicalIds: view.accountLogicalIds,
    etag: String(d.version),
  };
}

export function sshToProto(ssh: Ssh, settings: DomainSettings): SshMessage {
  return {
    deviceUuid: ssh.deviceUuid,
    publicKey: ssh.publicKey,
    privateKey: ssh.privateKey,
    serverDeviceInternalPort: ssh.serverDeviceInternalPort,
    serverName: settings.sshServerName,
    serverIp: settings.sshServerIp,
    serverCommonPort: settings.sshServerCommonPort,
  };
}

/** titanbot.admin.v1.DeviceService handlers. */
export function deviceService(rt: Runtime): DeviceServiceServer {
  const m = DeviceServiceService;
  return {
    createDevice: unary(rt, m.createDevice, { write: true, requestId: (r) => r.requestId, validateOnly: (r) => r.validateOnly }, async (ctx, req) => {
      const d = required(req.device, 'device');
      const settings = Object.assign({ physicalId: d.physicalId }, ...Object.values(DEVICE_FIELDS).map((pick) => pick(d)));
      return deviceToProto(await devices.createDevice(ctx, settings, req.serverDeviceInternalPort, { deviceId: req.deviceId, sshPublicKey: req.sshPublicKey, sshPrivateKey: req.sshPrivateKey }));
    }),
    getDevice: unary(rt, m.getDevice, { write: false }, async (ctx, req) => deviceToProto(await devices.getDevice(ctx, req.uuid))),
    listDevices: unary(rt, m.listDevices, { write: false }, async (ctx, req) => {
      const page = await devices.listDevices(ctx, req);
      return { devices: page.items.map(deviceToProto), nextPageToken: page.nextPageToken };
    }),
    updateDevice: unary(rt, m.updateDevice, { write: true }, async (ctx, req) => {
      const d = required(req.device, 'device');
      const patch = patchFromMask(req.updateMask, d, DEVICE_FIELDS);
      return deviceToProto(await devices.updateDevice(ctx, d.uuid, d.etag, patch));
    }),
    deleteDevice: unary(rt, m.deleteDevice, { write: true }, async (ctx, req) => {
      await devices.deleteDevice(ctx, req.uuid);
      return {};
    }),
    bindAccount: unary(rt, m.bindAccount, { write: true, validateOnly: (r) => r.validateOnly }, async (ctx, req) =>
      deviceToProto(await devices.bindAccount(ctx, req.deviceUuid, req.logicalId)),
    ),
    getDeviceSsh: unary(rt, m.getDeviceSsh, { write: false }, async (ctx, req) =>
      sshToProto(await devices.getDeviceSsh(ctx, req.deviceUuid), ctx.settings),
    ),
    rotateDeviceSsh: unary(rt, m.rotateDeviceSsh, { write: true }, async (ctx, req) =>
      sshToProto(await devices.rotateDeviceSsh(ctx, req.deviceUuid, req.port), ctx.settings),
    ),
  };
}
