import ssh2 from 'ssh2';
import { accountLogicalIds, deleteDeviceChildren, linkAccount, smallestFreePort as findFreePort } from '../db/device-links.js';
import { Account } from '../domain/account.js';
import { Device, type DeviceSettings } from '../domain/device.js';
import { alreadyExists, checkEtag, DomainError, invalid, notFound } from '../domain/errors.js';
import { MAX_PORT, Ssh, sshComment, type SshKeyPair } from '../domain/ssh.js';
import { chosenId, decodePageToken, isUuid, type Page, pageSize, requireUuid, toPage, type UseCaseContext } from './context.js';
import { generateSshKeyPair } from './ssh-keys.js';

/** A device with what its responses show of its bindings. */
export interface DeviceView {
  device: Device;
  currentAccountLogicalId: number | null;
  /** Ascending. */
  accountLogicalIds: number[];
}

/**
 * CreateDevice: the device and its Ssh (a fresh ed25519 pair, or the `imported` one; given port or
 * the smallest free one at or above SSH_PORT_RANGE_START) in one transaction (docs/domain.md,
 * improved: never a device without keys), with the uuid `imported.deviceId` when given.
 * Errors: invalid (fields, port, device_id, a key pair that is not one), already_exists
 * (device_id, physical_id, port), precondition (no free port).
 */
export async function createDevice(
  ctx: UseCaseContext,
  settings: Partial<DeviceSettings> & { physicalId: number },
  port: number | undefined,
  imported: { deviceId: string; sshPublicKey: string; sshPrivateKey: string } = { deviceId: '', sshPublicKey: '', sshPrivateKey: '' },
): Promise<DeviceView> {
  const device = Device.create(await chosenId(ctx, Device, 'device_id', imported.deviceId), settings);
  await ensurePhysicalIdFree(ctx, device.physicalId);
  const keys = imported.sshPublicKey === '' && imported.sshPrivateKey === '' ? generateKeys(device.physicalId) : importedKeys(imported.sshPublicKey, imported.sshPrivateKey);
  const chosen = port ?? (await smallestFreePort(ctx));
  const ssh = Ssh.create(device.uuid, keys, chosen, 'server_device_internal_port');
  if (port !== undefined) await ensurePortFree(ctx, port);
  // Relations are not mapped (aggregates refer by id), so the parent row is flushed first.
  await ctx.em.persist(device).flush();
  await ctx.em.persist(ssh).flush();
  return { device, currentAccountLogicalId: null, accountLogicalIds: [] };
}

/** GetDevice. Errors: invalid (uuid), not_found. */
export async function getDevice(ctx: UseCaseContext, uuid: string): Promise<DeviceView> {
  const device = await findDevice(ctx, uuid);
  return (await deviceViews(ctx, [device]))[0]!;
}

/** ListDevices, in uuid (creation) order. Errors: invalid (page_token, page_size). */
export async function listDevices(
  ctx: UseCaseContext,
  query: { pageSize: number; pageToken: string; physicalId?: number },
): Promise<Page<DeviceView>> {
  const size = pageSize(query.pageSize);
  const after = decodePageToken(query.pageToken, isUuid);
  const devices = await ctx.em.find(
    Device,
    {
      ...(after ? { uuid: { $gt: after } } : {}),
      ...(query.physicalId !== undefined ? { physicalId: query.physicalId } : {}),
    },
    { orderBy: { uuid: 'asc' }, limit: size + 1 },
  );
  const page = toPage(devices, size, (d) => d.uuid);
  return { items: await deviceViews(ctx, page.items), nextPageToken: page.nextPageToken };
}

/** UpdateDevice. Errors: invalid, not_found, already_exists (physical_id), conflict (etag). */
export async function updateDevice(
  ctx: UseCaseContext,
  uuid: string,
  etag: string | undefined,
  patch: Partial<DeviceSettings>,
): Promise<DeviceView> {
  const device = await findDevice(ctx, uuid);
  checkEtag('device', device.version, etag);
  if (patch.physicalId !== undefined && patch.physicalId !== device.physicalId) {
    await ensurePhysicalIdFree(ctx, patch.physicalId);
  }
  device.update(patch);
  await ctx.em.flush();
  return (await deviceViews(ctx, [device]))[0]!;
}

/**
 * DeleteDevice: its bindings, daemon tokens and Ssh go first (so the feed shows children leaving
 * before their parent), which frees its port. Errors: invalid, not_found.
 */
export async function deleteDevice(ctx: UseCaseContext, uuid: string): Promise<void> {
  const device = await findDevice(ctx, uuid);
  await deleteDeviceChildren(ctx.em, device.uuid);
  ctx.em.remove(device);
  await ctx.em.flush();
}

/**
 * BindAccount: adds the account to the device's accounts and makes it current. Idempotent
 * (docs/domain.md, improved): binding the current account again changes nothing and emits no feed event.
 * Errors: invalid, not_found (device, or no account with that logical id).
 */
export async function bindAccount(ctx: UseCaseContext, deviceUuid: string, logicalId: number): Promise<DeviceView> {
  const device = await findDevice(ctx, deviceUuid);
  const account = await ctx.em.findOne(Account, { logicalId });
  if (!account) throw notFound('account with logical_id', logicalId);
  await linkAccount(ctx.em, device.uuid, account.uuid);
  device.makeCurrent(account.uuid);
  await ctx.em.flush();
  return (await deviceViews(ctx, [device]))[0]!;
}

/** GetDeviceSsh. Errors: invalid, not_found. */
export async function getDeviceSsh(ctx: UseCaseContext, deviceUuid: string): Promise<Ssh> {
  const device = await findDevice(ctx, deviceUuid);
  return findSsh(ctx, device);
}

/**
 * RotateDeviceSsh: a new key pair, and the given port (the old one becomes free).
 * Errors: invalid (port), not_found, already_exists (port taken by another device).
 */
export async function rotateDeviceSsh(ctx: UseCaseContext, deviceUuid: string, port: number | undefined): Promise<Ssh> {
  const device = await findDevice(ctx, deviceUuid);
  const ssh = await findSsh(ctx, device);
  if (port !== undefined && port !== ssh.serverDeviceInternalPort) await ensurePortFree(ctx, port);
  ssh.rotate(generateKeys(device.physicalId), port);
  await ctx.em.flush();
  return ssh;
}

/** Loads a device by uuid. Errors: invalid (not a UUID), not_found. */
export async function findDevice(ctx: UseCaseContext, uuid: string, field = 'uuid'): Promise<Device> {
  const device = await ctx.em.findOne(Device, { uuid: requireUuid(field, uuid) });
  if (!device) throw notFound('device', uuid);
  return device;
}

async function findSsh(ctx: UseCaseContext, device: Device): Promise<Ssh> {
  const ssh = await ctx.em.findOne(Ssh, { deviceUuid: device.uuid });
  // Created with the device in one transaction, so a device without one is a broken invariant.
  if (!ssh) throw new DomainError('SSH_MISSING', `device ${device.uuid} has no ssh`);
  return ssh;
}

/** The bindings of each device, in the order given. */
async function deviceViews(ctx: UseCaseContext, devices: Device[]): Promise<DeviceView[]> {
  if (devices.length === 0) return [];
  const ids = await accountLogicalIds(
    ctx.em,
    devices.map((d) => d.uuid),
    devices.map((d) => d.currentAccountUuid).filter((u): u is string => u !== null),
  );
  return devices.map((device) => ({
    device,
    currentAccountLogicalId: device.currentAccountUuid ? (ids.ofAccount.get(device.currentAccountUuid) ?? null) : null,
    accountLogicalIds: ids.byDevice.get(device.uuid) ?? [],
  }));
}

async function ensurePhysicalIdFree(ctx: UseCaseContext, physicalId: number): Promise<void> {
  if (await ctx.em.count(Device, { physicalId })) throw alreadyExists('device', 'physical_id', physicalId);
}

async function ensurePortFree(ctx: UseCaseContext, port: number): Promise<void> {
  if (await ctx.em.count(Ssh, { serverDeviceInternalPort: port })) {
    throw alreadyExists('ssh', 'server_device_internal_port', port);
  }
}

/** Race-free because write transactions hold the write lock (db/write-lock.ts). */
async function smallestFreePort(ctx: UseCaseContext): Promise<number> {
  const start = ctx.settings.sshPortRangeStart;
  const port = await findFreePort(ctx.em, start, MAX_PORT);
  if (port === undefined) throw new DomainError('NO_FREE_PORT', `no free port in ${start}..${MAX_PORT}`);
  return port;
}

/**
 * A key pair brought from elsewhere (the original system): the private key must parse (ssh2) as
 * an unencrypted private key and `publicKey` must be its public half. Errors: invalid naming
 * ssh_private_key or ssh_public_key.
 */
function importedKeys(publicKey: string, privateKey: string): SshKeyPair {
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey()) throw invalid('ssh_private_key', 'must be an unencrypted OpenSSH private key');
  const [type, blob] = publicKey.trim().split(/\s+/);
  if (!blob || parsed.type !== type || !parsed.getPublicSSH().equals(Buffer.from(blob, 'base64'))) {
    throw invalid('ssh_public_key', 'must be the public half of ssh_private_key');
  }
  return { publicKey: publicKey.trim(), privateKey };
}

/** ed25519 in OpenSSH text form, comment `titanbot<physical_id>` (generateSshKeyPair). */
function generateKeys(physicalId: number): SshKeyPair {
  const pair = generateSshKeyPair(sshComment(physicalId));
  return { publicKey: pair.public.trim(), privateKey: pair.private };
}
