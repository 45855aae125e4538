import type { Em } from './orm.js';
import { pgArray } from './sql.js';

// The device_accounts link table and the other rows that hang off a device, written by SQL because
// aggregates refer to each other by id (no mapped relations; docs/decisions.md).

/** Deletes a device's bindings, daemon tokens and Ssh, children before their parent on the feed. */
export async function deleteDeviceChildren(em: Em, deviceUuid: string): Promise<void> {
  await em.execute('delete from device_accounts where device_uuid = ?', [deviceUuid]);
  await em.execute('delete from daemon_tokens where device_uuid = ?', [deviceUuid]);
  await em.execute('delete from sshes where device_uuid = ?', [deviceUuid]);
}

/** Adds the account to the device's accounts; a link that exists changes nothing (and puts nothing on the feed). */
export async function linkAccount(em: Em, deviceUuid: string, accountUuid: string): Promise<void> {
  await em.execute('insert into device_accounts (device_uuid, account_uuid) values (?, ?) on conflict do nothing', [deviceUuid, accountUuid]);
}

/** Unbinds the account from every device and clears it where it is current (bumping those devices' versions). */
export async function unlinkAccountEverywhere(em: Em, accountUuid: string): Promise<void> {
  await em.execute('delete from device_accounts where account_uuid = ?', [accountUuid]);
  await em.execute('update devices set current_account_uuid = null, version = version + 1 where current_account_uuid = ?', [accountUuid]);
}

/** Each device's accounts' logical ids (ascending), and the logical id of each account uuid in `currentAccountUuids`. */
export async function accountLogicalIds(
  em: Em,
  deviceUuids: string[],
  currentAccountUuids: string[],
): Promise<{ byDevice: Map<string, number[]>; ofAccount: Map<string, number> }> {
  const rows: { device_uuid: string; logical_id: number }[] = await em.execute(
    `select da.device_uuid, a.logical_id from device_accounts da join accounts a on a.uuid = da.account_uuid
      where da.device_uuid = any (?::uuid[]) order by a.logical_id`,
    [pgArray(deviceUuids)],
  );
  const current: { uuid: string; logical_id: number }[] = await em.execute('select uuid, logical_id from accounts where uuid = any (?::uuid[])', [
    pgArray(currentAccountUuids),
  ]);
  const byDevice = new Map<string, number[]>(deviceUuids.map((uuid) => [uuid, []]));
  for (const row of rows) byDevice.get(row.device_uuid)?.push(row.logical_id);
  return { byDevice, ofAccount: new Map(current.map((r) => [r.uuid, r.logical_id])) };
}

/**
 * The smallest SSH port in `start`..`end` no Ssh uses, or undefined. Race-free only inside a
 * write transaction (which holds the write lock).
 */
export async function smallestFreePort(em: Em, start: number, end: number): Promise<number | undefined> {
  const rows: { port: number }[] = await em.execute(
    `select p as port from generate_series(?::int, ?::int) p
      where not exists (select 1 from sshes s where s.server_device_internal_port = p)
      order by p limit 1`,
    [start, end],
  );
  return rows[0]?.port;
}
