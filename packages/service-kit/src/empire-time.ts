/** The empire calendar rule both services answer GetNextEmpireDate with (docs/domain.md). */

const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` of the UTC calendar day containing `t`. */
export const utcDay = (t: Date): string => t.toISOString().slice(0, 10);

/**
 * GetNextEmpireDate (docs/domain.md): the first date strictly after today (UTC); the answer is
 * 03:00 UTC on that date if it is a Monday, else 03:00 UTC on the following Monday; null when
 * no date lies after today.
 */
export function nextEmpireTime(dates: Iterable<string>, now: Date): Date | null {
  const today = utcDay(now);
  let first: string | null = null;
  for (const d of dates) if (d > today && (first === null || d < first)) first = d;
  if (first === null) return null;
  const day = new Date(`${first}T00:00:00Z`);
  const daysToMonday = (8 - day.getUTCDay()) % 7; // getUTCDay: Sunday 0, Monday 1
  return new Date(day.getTime() + daysToMonday * DAY_MS + 3 * 3_600_000);
}
