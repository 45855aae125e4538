import { invalid } from './errors.js';

/** A day of the empire calendar, `YYYY-MM-DD` (UTC). */
export class EmpireDate {
  readonly uuid!: string;
  readonly date!: string;
  readonly version!: number;

  static create(uuid: string, date: string): EmpireDate {
    checkDate(date);
    return Object.assign(new EmpireDate(), { uuid, date, version: 1 });
  }

  moveTo(date: string): void {
    checkDate(date);
    Object.assign(this, { date });
  }
}

function checkDate(date: string): void {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw invalid('empire_date.date', 'is required');
}
