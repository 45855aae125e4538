import { Account } from '../domain/account.js';
import { checkEtag, notFound } from '../domain/errors.js';
import { Legion, type LegionFields } from '../domain/legion.js';
import { chosenId, decodePageToken, isUuid, type Page, pageSize, requireUuid, toPage, type UseCaseContext } from './context.js';

/** CreateLegion, with the uuid `legionId` when not empty (AIP-133). Errors: invalid, already_exists (legion_id). */
export async function createLegion(ctx: UseCaseContext, fields: LegionFields, legionId = ''): Promise<Legion> {
  const legion = Legion.create(await chosenId(ctx, Legion, 'legion_id', legionId), fields);
  ctx.em.persist(legion);
  await ctx.em.flush();
  return legion;
}

/** GetLegion. Errors: invalid, not_found. */
export async function getLegion(ctx: UseCaseContext, uuid: string): Promise<Legion> {
  const legion = await ctx.em.findOne(Legion, { uuid: requireUuid('uuid', uuid) });
  if (!legion) throw notFound('legion', uuid);
  return legion;
}

/** ListLegions in uuid order. Errors: invalid. */
export async function listLegions(ctx: UseCaseContext, query: { pageSize: number; pageToken: string }): Promise<Page<Legion>> {
  const size = pageSize(query.pageSize);
  const after = decodePageToken(query.pageToken, isUuid);
  const legions = await ctx.em.find(Legion, after ? { uuid: { $gt: after } } : {}, { orderBy: { uuid: 'asc' }, limit: size + 1 });
  return toPage(legions, size, (l) => l.uuid);
}

/** UpdateLegion. Errors: invalid, not_found, conflict (etag). */
export async function updateLegion(ctx: UseCaseContext, uuid: string, etag: string | undefined, patch: Partial<LegionFields>): Promise<Legion> {
  const legion = await getLegion(ctx, uuid);
  checkEtag('legion', legion.version, etag);
  legion.update(patch);
  await ctx.em.flush();
  return legion;
}

/** DeleteLegion: clears it on its accounts first (docs/domain.md). Errors: invalid, not_found. */
export async function deleteLegion(ctx: UseCaseContext, uuid: string): Promise<void> {
  const legion = await getLegion(ctx, uuid);
  for (const account of await ctx.em.find(Account, { legionUuid: legion.uuid })) account.leaveLegion();
  await ctx.em.flush();
  ctx.em.remove(legion);
  await ctx.em.flush();
}
