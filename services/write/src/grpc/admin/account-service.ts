import {
  AccountServiceService,
  Gender,
  type Account as AccountMessage,
  type AccountServiceServer,
} from '@titanbot/contracts/titanbot/admin/v1/account_service';
import * as accounts from '../../app/accounts.js';
import type { Account, AccountFields } from '../../domain/account.js';
import { unary, type Runtime } from '../handler.js';
import { dateToTimestamp, enumMap, orNull, orUndefined, patchFromMask, required, timestampToDate } from '../translate.js';

const gender = enumMap(
  [
    [Gender.GENDER_MALE, 'male'],
    [Gender.GENDER_FEMALE, 'female'],
  ] as const,
  'account.gender',
);

type AccountPatch = Partial<AccountFields> & { logicalId?: number };

/**
 * An unset birth_date or an unset/unknown gender reaches the domain as '' (which it rejects), so
 * one INVALID_ARGUMENT names every bad field at once instead of only the first one translated.
 */
const INVALID_IN_DOMAIN = '' as AccountFields['gender'];

const ACCOUNT_FIELDS: Record<string, (a: AccountMessage) => AccountPatch> = {
  first_name: (a) => ({ firstName: a.firstName }),
  last_name: (a) => ({ lastName: a.lastName }),
  birth_date: (a) => ({ birthDate: a.birthDate ? timestampToDate(a.birthDate, 'account.birth_date') : '' }),
  gender: (a) => ({ gender: gender.domain(a.gender, INVALID_IN_DOMAIN) }),
  google_login: (a) => ({ googleLogin: a.googleLogin }),
  google_password: (a) => ({ googlePassword: a.googlePassword }),
  is_empire_sleeping: (a) => ({ isEmpireSleeping: a.isEmpireSleeping }),
  legion_uuid: (a) => ({ legionUuid: orNull(a.legionUuid) }),
};

/** In a mask, logical_id reaches the domain, which rejects it as immutable. */
const IMMUTABLE = { logical_id: (a: AccountMessage): AccountPatch => ({ logicalId: a.logicalId }) };

export function accountToProto(a: Account): AccountMessage {
  return {
    uuid: a.uuid,
    logicalId: a.logicalId,
    firstName: a.firstName,
    lastName: a.lastName,
    birthDate: dateToTimestamp(a.birthDate),
    gender: gender.proto(a.gender),
    googleLogin: a.googleLogin,
    googlePassword: a.googlePassword,
    isEmpireSleeping: a.isEmpireSleeping,
    legionUuid: orUndefined(a.legionUuid),
    etag: String(a.version),
  };
}

/** titanbot.admin.v1.AccountService handlers. */
export function accountService(rt: Runtime): AccountServiceServer {
  const m = AccountServiceService;
  return {
    createAccount: unary(rt, m.createAccount, { write: true, requestId: (r) => r.requestId, validateOnly: (r) => r.validateOnly }, async (ctx, req) => {
      const a = required(req.account, 'account');
      const fields = Object.assign({}, ...Object.values(ACCOUNT_FIELDS).map((pick) => pick(a))) as AccountFields;
      return accountToProto(await accounts.createAccount(ctx, a.logicalId, fields, req.accountId));
    }),
    getAccount: unary(rt, m.getAccount, { write: false }, async (ctx, req) => accountToProto(await accounts.getAccount(ctx, req.uuid))),
    listAccounts: unary(rt, m.listAccounts, { write: false }, async (ctx, req) => {
      const page = await accounts.listAccounts(ctx, req);
      return { accounts: page.items.map(accountToProto), nextPageToken: page.nextPageToken };
    }),
    updateAccount: unary(rt, m.updateAccount, { write: true }, async (ctx, req) => {
      const a = required(req.account, 'account');
      const patch = patchFromMask(req.updateMask, a, ACCOUNT_FIELDS, IMMUTABLE);
      return accountToProto(await accounts.updateAccount(ctx, a.uuid, a.etag, patch));
    }),
    deleteAccount: unary(rt, m.deleteAccount, { write: true }, async (ctx, req) => {
      await accounts.deleteAccount(ctx, req.uuid);
      return {};
    }),
  };
}
