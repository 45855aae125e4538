import {
  ActivityType,
  DaemonServiceService as m,
  Gender,
  type Account,
  type DaemonServiceServer,
  type Token,
} from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { nextEmpireTime } from '@titanbot/service-kit/empire-time';
import { DomainError, invalid } from '@titanbot/service-kit/errors';
import { validate as isUuid } from 'uuid';
import type { AccountRecord } from '../store/device-queries.js';
import type { TokenRecord } from '../store/device-index.js';
import { unary } from './pipeline.js';
import type { ReadRuntime } from '../access/runtime.js';
import { unseal } from '../access/unseal.js';

/**
 * The calling device's own data, from the read model: GetDevice, GetSsh, ListAccounts, GetLegion,
 * GetNextEmpireDate, GetBackendPublicKey, GetToken. Account passwords and SSH private keys stay
 * sealed in the model and are opened here only for the owning daemon.
 */
export function deviceDataHandlers(
  rt: ReadRuntime,
): Pick<DaemonServiceServer, 'getDevice' | 'getSsh' | 'listAccounts' | 'getLegion' | 'getNextEmpireDate' | 'getBackendPublicKey' | 'getToken'> {
  const open = (sealed: string, context: string): Promise<string> => unseal(rt, sealed, context);

  return {
    getDevice: unary(rt, m.getDevice, (_req, ctx) => {
      const device = rt.queries.device(ctx.principal.token.deviceUuid);
      if (!device) throw new DomainError('NOT_FOUND', 'device not found');
      return { ...device, activityType: device.activityType === 'ajagplay' ? ActivityType.ACTIVITY_TYPE_AJAGPLAY : ActivityType.ACTIVITY_TYPE_ROWGPLAY };
    }),

    getSsh: unary(rt, m.getSsh, async (_req, ctx) => {
      const ssh = rt.queries.ssh(ctx.principal.token.deviceUuid);
      if (!ssh) throw new DomainError('NOT_FOUND', 'the device has no SSH key pair');
      return {
        publicKey: ssh.publicKey,
        privateKey: await open(ssh.sealedPrivateKey, 'sshes.private_key'),
        serverDeviceInternalPort: ssh.serverDeviceInternalPort,
        serverName: rt.settings.sshServerName,
        serverIp: rt.settings.sshServerIp,
        serverCommonPort: rt.settings.sshServerCommonPort,
      };
    }),

    listAccounts: unary(rt, m.listAccounts, async (_req, ctx) => ({
      accounts: await Promise.all(
        rt.queries.accounts(ctx.principal.token.deviceUuid).map(async (a) => toAccount(a, await open(a.sealedGooglePassword, 'accounts.google_password'))),
      ),
    })),

    getLegion: unary(rt, m.getLegion, (req, ctx) => {
      if (!isUuid(req.uuid)) throw invalid('uuid', 'must be a UUID');
      const legion = rt.queries.legion(req.uuid.toLowerCase());
      if (!legion) throw new DomainError('NOT_FOUND', 'legion not found');
      if (!rt.queries.legionIsOfDevice(ctx.principal.token.deviceUuid, legion.uuid)) {
        throw new DomainError('LEGION_NOT_OF_DEVICE', 'no account of this device is in that legion');
      }
      return legion;
    }),

    getNextEmpireDate: unary(rt, m.getNextEmpireDate, () => ({
      nextTime: nextEmpireTime(rt.queries.empireDates(), new Date(rt.clock())) ?? undefined,
    })),

    getBackendPublicKey: unary(rt, m.getBackendPublicKey, () => ({ publicKey: rt.settings.backendPublicKey })),

    getToken: unary(rt, m.getToken, (_req, ctx) => toToken(ctx.principal.token)),
  };
}

function toAccount(a: AccountRecord, googlePassword: string): Account {
  return {
    uuid: a.uuid,
    logicalId: a.logicalId,
    firstName: a.firstName,
    lastName: a.lastName,
    birthDate: new Date(`${a.birthDate}T00:00:00Z`),
    gender: a.gender === 'female' ? Gender.GENDER_FEMALE : Gender.GENDER_MALE,
    googleLogin: a.googleLogin,
    googlePassword,
    isEmpireSleeping: a.isEmpireSleeping,
    legionUuid: a.legionUuid,
  };
}

const toToken = (t: TokenRecord): Token => ({
  uuid: t.uuid,
  deviceUuid: t.deviceUuid,
  prefix: t.prefix,
  createTime: new Date(t.createTime),
  expireTime: new Date(t.expireTime),
});
