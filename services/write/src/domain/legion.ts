import { Violations } from './errors.js';

export interface LegionFields {
  title: string;
  extTitle: string | null;
  payDayOfMonth: number | null;
}

/** A legion. Invariants: title non-empty; pay day 1..31 when set (docs/domain.md, improved). */
export class Legion {
  readonly uuid!: string;
  readonly title!: string;
  readonly extTitle!: string | null;
  readonly payDayOfMonth!: number | null;
  readonly version!: number;

  /** Throws DomainError('invalid') naming `legion.<field>`. */
  static create(uuid: string, fields: LegionFields): Legion {
    validate(fields);
    return Object.assign(new Legion(), { uuid, version: 1, ...fields });
  }

  /** Applies the given fields; same validation as create. */
  update(patch: Partial<LegionFields>): void {
    const next = { title: this.title, extTitle: this.extTitle, payDayOfMonth: this.payDayOfMonth, ...patch };
    validate(next);
    Object.assign(this, next);
  }
}

function validate(f: LegionFields): void {
  new Violations()
    .check(f.title.trim() !== '', 'legion.title', 'must not be empty')
    .check(
      f.payDayOfMonth === null || (Number.isInteger(f.payDayOfMonth) && f.payDayOfMonth >= 1 && f.payDayOfMonth <= 31),
      'legion.pay_day_of_month',
      'must be a day of month, 1..31',
    )
    .throwIfAny();
}
