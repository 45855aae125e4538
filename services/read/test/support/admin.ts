import { CreateAccountRequest, AccountServiceClient, Gender } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { DaemonTokenServiceClient, IssueDaemonTokenRequest, RevokeDaemonTokenRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { BindAccountRequest, CreateDeviceRequest, DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import {
  CreateHabitRequest,
  DeleteHabitRequest,
  HabitServiceClient,
  ShapeType,
  UpdateHabitRequest,
  type Habit,
  type Pixel,
  type Shape,
} from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { call, uniqueInt, type Harness } from '@titanbot/write/test-support/harness';

/** Admin API helpers over a running write service (real gRPC calls with the admin token). */
export function adminApi(write: Pick<Harness, 'client' | 'adminToken'>) {
  const devices = write.client(DeviceServiceClient);
  const accounts = write.client(AccountServiceClient);
  const habits = write.client(HabitServiceClient);
  const tokens = write.client(DaemonTokenServiceClient);
  const key = write.adminToken;
  return {
    createAccount: (logicalId = uniqueInt(), googlePassword = 'pw-secret') =>
      call(
        accounts,
        accounts.createAccount,
        CreateAccountRequest.fromPartial({
          account: { logicalId, firstName: 'Ann', lastName: 'Lee', birthDate: new Date('1990-05-17T00:00:00Z'), gender: Gender.GENDER_FEMALE, googleLogin: `a${logicalId}@example.com`, googlePassword },
        }),
        key,
      ),
    createDevice: () => call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), key),
    bind: (deviceUuid: string, logicalId: number) => call(devices, devices.bindAccount, BindAccountRequest.fromPartial({ deviceUuid, logicalId }), key),
    issueToken: (deviceUuid: string, ttlSeconds = 3600) =>
      call(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid, ttl: { seconds: ttlSeconds } }), key),
    revokeToken: (uuid: string) => call(tokens, tokens.revokeDaemonToken, RevokeDaemonTokenRequest.fromPartial({ uuid }), key),
    createHabit: (habit: Partial<Habit>) => call(habits, habits.createHabit, CreateHabitRequest.fromPartial({ habit }), key),
    updateHabit: (habit: Partial<Habit>, updateMask: string[]) => call(habits, habits.updateHabit, UpdateHabitRequest.fromPartial({ habit, updateMask }), key),
    deleteHabit: (uuid: string) => call(habits, habits.deleteHabit, DeleteHabitRequest.fromPartial({ uuid }), key),
  };
}

/** A pixel no other test uses. */
export const uniquePixel = (): Pixel => ({ x: uniqueInt(), y: uniqueInt(), rgbHex: 'A1B2C3', deviation: 2 });

/** A shape no other test uses. */
export const uniqueShape = (): Shape => ({ type: ShapeType.SHAPE_TYPE_CIRCLE, x: uniqueInt(), y: 3, width: 4, height: 5, size: 6, rgbHex: '00FF00' });

/** A device with one bound account and a daemon token for it. */
export async function provisionDevice(api: ReturnType<typeof adminApi>) {
  const account = await api.createAccount();
  const device = await api.createDevice();
  await api.bind(device.uuid, account.logicalId);
  const issued = await api.issueToken(device.uuid);
  return { device, account, logicalId: account.logicalId, token: issued.token, tokenUuid: issued.daemonToken!.uuid };
}
