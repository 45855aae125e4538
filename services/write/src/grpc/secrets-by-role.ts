import { AccountServiceService, type Account, type ListAccountsResponse } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { DeviceServiceService, type Ssh } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import type { Principal } from './auth.js';

const withoutPassword = (a: Account): Account => ({ ...a, googlePassword: '' });

/**
 * The secrets in admin responses, by method: an account's Google password, a device's SSH private
 * key. Only the admin token and operators with the `admin` role receive them; every other
 * operator (a `viewer` browses everything but secrets) gets them empty. Methods that write them
 * are the admin role's alone (the policy table), so only reads are listed.
 */
const WITHHELD: Record<string, (response: never) => unknown> = {
  [AccountServiceService.getAccount.path]: withoutPassword,
  [AccountServiceService.listAccounts.path]: (r: ListAccountsResponse) => ({ ...r, accounts: r.accounts.map(withoutPassword) }),
  [DeviceServiceService.getDeviceSsh.path]: (s: Ssh) => ({ ...s, privateKey: '' }),
};

/** `response` of method `path` as `principal` may receive it (WITHHELD). */
export function withholdSecrets<Res>(principal: Principal | undefined, path: string, response: Res): Res {
  const withhold = WITHHELD[path];
  if (!withhold || principal?.kind !== 'operator' || principal.roles.includes('admin')) return response;
  return withhold(response as never) as Res;
}
