import { alreadyExists, checkEtag, notFound } from '../domain/errors.js';
import { nextEmpireTime } from '@titanbot/service-kit/empire-time';
import { EmpireDate } from '../domain/empire-date.js';
import { chosenId, decodePageToken, type Page, pageSize, requireUuid, toPage, type UseCaseContext } from './context.js';

/** CreateEmpireDate (`date` YYYY-MM-DD), with the uuid `empireDateId` when not empty (AIP-133). Errors: invalid, already_exists (empire_date_id, date). */
export async function createEmpireDate(ctx: UseCaseContext, date: string, empireDateId = ''): Promise<EmpireDate> {
  const empireDate = EmpireDate.create(await chosenId(ctx, EmpireDate, 'empire_date_id', empireDateId), date);
  await ensureDateFree(ctx, date);
  ctx.em.persist(empireDate);
  await ctx.em.flush();
  return empireDate;
}

/** GetEmpireDate. Errors: invalid, not_found. */
export async function getEmpireDate(ctx: UseCaseContext, uuid: string): Promise<EmpireDate> {
  const empireDate = await ctx.em.findOne(EmpireDate, { uuid: requireUuid('uuid', uuid) });
  if (!empireDate) throw notFound('empire date', uuid);
  return empireDate;
}

/** ListEmpireDates in date order (dates are unique, so the date is the page key). */
export async function listEmpireDates(ctx: UseCaseContext, query: { pageSize: number; pageToken: string }): Promise<Page<EmpireDate>> {
  const size = pageSize(query.pageSize);
  const after = decodePageToken(query.pageToken, (k) => /^\d{4}-\d{2}-\d{2}$/.test(k));
  const dates = await ctx.em.find(EmpireDate, after ? { date: { $gt: after } } : {}, { orderBy: { date: 'asc' }, limit: size + 1 });
  return toPage(dates, size, (d) => d.date);
}

/** UpdateEmpireDate. Errors: invalid, not_found, already_exists, conflict (etag). */
export async function updateEmpireDate(ctx: UseCaseContext, uuid: string, etag: string | undefined, date: string | undefined): Promise<EmpireDate> {
  const empireDate = await getEmpireDate(ctx, uuid);
  checkEtag('empire date', empireDate.version, etag);
  if (date !== undefined && date !== empireDate.date) {
    await ensureDateFree(ctx, date);
    empireDate.moveTo(date);
  }
  await ctx.em.flush();
  return empireDate;
}

/** DeleteEmpireDate. Errors: invalid, not_found. */
export async function deleteEmpireDate(ctx: UseCaseContext, uuid: string): Promise<void> {
  ctx.em.remove(await getEmpireDate(ctx, uuid));
  await ctx.em.flush();
}

/** GetNextEmpireDate: see nextEmpireTime (docs/domain.md rule); null when none lies after today. */
export async function getNextEmpireDate(ctx: UseCaseContext): Promise<Date | null> {
  const tomorrowOrLater = await ctx.em.find(
    EmpireDate,
    { date: { $gt: ctx.now.toISOString().slice(0, 10) } },
    { orderBy: { date: 'asc' }, limit: 1 },
  );
  return nextEmpireTime(tomorrowOrLater.map((d) => d.date), ctx.now);
}

async function ensureDateFree(ctx: UseCaseContext, date: string): Promise<void> {
  if (await ctx.em.count(EmpireDate, { date })) throw alreadyExists('empire date', 'date', date);
}
