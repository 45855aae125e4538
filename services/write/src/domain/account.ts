import { Violations, invalid } from './errors.js';

export const GENDERS = ['male', 'female'] as const;
export type Gender = (typeof GENDERS)[number];

export interface AccountFields {
  firstName: string;
  lastName: string;
  /** A calendar date, `YYYY-MM-DD`. */
  birthDate: string;
  gender: Gender;
  googleLogin: string;
  /** A secret: never logged. */
  googlePassword: string;
  isEmpireSleeping: boolean;
  legionUuid: string | null;
}

/**
 * An account daemons play with. `logicalId` is the immutable business key habits refer to.
 */
export class Account {
  readonly uuid!: string;
  readonly logicalId!: number;
  readonly firstName!: string;
  readonly lastName!: string;
  readonly birthDate!: string;
  readonly gender!: Gender;
  readonly googleLogin!: string;
  readonly googlePassword!: string;
  readonly isEmpireSleeping!: boolean;
  readonly legionUuid!: string | null;
  readonly version!: number;

  /** Throws DomainError('invalid') naming `account.<field>`. */
  static create(uuid: string, logicalId: number, fields: AccountFields): Account {
    const v = new Violations().check(
      Number.isInteger(logicalId) && logicalId >= 1 && logicalId <= 2147483647,
      'account.logical_id',
      'must be a positive int32',
    );
    validate(fields, v);
    return Object.assign(new Account(), { uuid, logicalId, version: 1, ...fields });
  }

  /** Applies the given fields. The logical id is immutable (docs/domain.md): INVALID_ARGUMENT. */
  update(patch: Partial<AccountFields> & { logicalId?: number }): void {
    if (patch.logicalId !== undefined) throw invalid('account.logical_id', 'is immutable');
    const next: AccountFields = { ...this.fields(), ...patch };
    validate(next, new Violations());
    Object.assign(this, next);
  }

  /** Clears the legion (the legion was deleted). */
  leaveLegion(): void {
    Object.assign(this, { legionUuid: null });
  }

  private fields(): AccountFields {
    const { firstName, lastName, birthDate, gender, googleLogin, googlePassword, isEmpireSleeping, legionUuid } = this;
    return { firstName, lastName, birthDate, gender, googleLogin, googlePassword, isEmpireSleeping, legionUuid };
  }
}

function validate(f: AccountFields, v: Violations): void {
  v.check(f.firstName.trim() !== '', 'account.first_name', 'must not be empty')
    .check(f.lastName.trim() !== '', 'account.last_name', 'must not be empty')
    .check(/^\d{4}-\d{2}-\d{2}$/.test(f.birthDate), 'account.birth_date', 'is required')
    .check(GENDERS.includes(f.gender), 'account.gender', 'must be male or female')
    .check(f.googleLogin.trim() !== '', 'account.google_login', 'must not be empty')
    .check(f.googlePassword !== '', 'account.google_password', 'must not be empty')
    .throwIfAny();
}
