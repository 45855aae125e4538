import { unlinkAccountEverywhere } from '../db/device-links.js';
import { Account, type AccountFields } from '../domain/account.js';
import { alreadyExists, checkEtag, notFound } from '../domain/errors.js';
import { Legion } from '../domain/legion.js';
import { chosenId, decodePageToken, isUuid, type Page, pageSize, requireUuid, toPage, type UseCaseContext } from './context.js';

/** CreateAccount, with the uuid `accountId` when not empty (AIP-133). Errors: invalid, already_exists (account_id, logical_id), not_found (legion_uuid). */
export async function createAccount(ctx: UseCaseContext, logicalId: number, fields: AccountFields, accountId = ''): Promise<Account> {
  const account = Account.create(await chosenId(ctx, Account, 'account_id', accountId), logicalId, fields);
  if (await ctx.em.count(Account, { logicalId })) throw alreadyExists('account', 'logical_id', logicalId);
  await ensureLegion(ctx, account.legionUuid);
  ctx.em.persist(account);
  await ctx.em.flush();
  return account;
}

/** GetAccount. Errors: invalid, not_found. */
export async function getAccount(ctx: UseCaseContext, uuid: string): Promise<Account> {
  const account = await ctx.em.findOne(Account, { uuid: requireUuid('uuid', uuid) });
  if (!account) throw notFound('account', uuid);
  return account;
}

/** ListAccounts in uuid order, optionally by logical id or legion. Errors: invalid. */
export async function listAccounts(
  ctx: UseCaseContext,
  query: { pageSize: number; pageToken: string; logicalId?: number; legionUuid?: string },
): Promise<Page<Account>> {
  const size = pageSize(query.pageSize);
  const after = decodePageToken(query.pageToken, isUuid);
  const accounts = await ctx.em.find(
    Account,
    {
      ...(after ? { uuid: { $gt: after } } : {}),
      ...(query.logicalId !== undefined ? { logicalId: query.logicalId } : {}),
      ...(query.legionUuid !== undefined ? { legionUuid: requireUuid('legion_uuid', query.legionUuid) } : {}),
    },
    { orderBy: { uuid: 'asc' }, limit: size + 1 },
  );
  return toPage(accounts, size, (a) => a.uuid);
}

/** UpdateAccount; logical_id is immutable. Errors: invalid, not_found, conflict (etag). */
export async function updateAccount(
  ctx: UseCaseContext,
  uuid: string,
  etag: string | undefined,
  patch: Partial<AccountFields> & { logicalId?: number },
): Promise<Account> {
  const account = await getAccount(ctx, uuid);
  checkEtag('account', account.version, etag);
  account.update(patch);
  if (patch.legionUuid !== undefined) await ensureLegion(ctx, account.legionUuid);
  await ctx.em.flush();
  return account;
}

/**
 * DeleteAccount: unbinds it from every device and clears it where it is current (bumping those
 * devices' versions), then deletes it. Habits keep their soft reference (docs/domain.md).
 */
export async function deleteAccount(ctx: UseCaseContext, uuid: string): Promise<void> {
  const account = await getAccount(ctx, uuid);
  await unlinkAccountEverywhere(ctx.em, account.uuid);
  ctx.em.remove(account);
  await ctx.em.flush();
}

async function ensureLegion(ctx: UseCaseContext, legionUuid: string | null): Promise<void> {
  if (legionUuid === null) return;
  if (!(await ctx.em.count(Legion, { uuid: requireUuid('account.legion_uuid', legionUuid) }))) {
    throw notFound('legion', legionUuid);
  }
}
