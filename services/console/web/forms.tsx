/**
 * Forms for admin resources, described by their fields: values in and out of protobuf-es messages,
 * the AIP-134 `update_mask` of what was changed, and the write service's field violations shown
 * at their fields. Validation is the write service's (one set of rules): the form only shows it.
 */
import { timestampDate, timestampFromDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import type { ConnectError } from '@connectrpc/connect';
import { BadRequestSchema } from '@titanbot/contracts/es/google/rpc/error_details_pb';
import type { InputHTMLAttributes } from 'preact';

/** How a field is typed and sent. `secret` is write-only: never filled from the resource, sent only when typed. */
export type FieldKind = 'text' | 'optional-text' | 'int' | 'optional-int' | 'bool' | 'enum' | 'date' | 'datetime' | 'secret';

export interface FieldSpec {
  /** The proto field name (snake_case): the `update_mask` path and the field violations' last part. */
  path: string;
  label: string;
  kind: FieldKind;
  /** `enum`: the values offered, with their labels. */
  options?: readonly (readonly [number, string])[];
  /** Set only when the resource is created (AIP-203 IMMUTABLE): shown read-only afterwards. */
  immutable?: boolean;
  hint?: string;
}

/** A form's values by field path: text as typed, checkboxes as booleans. */
export type FormValues = Record<string, string | boolean>;

const camel = (path: string): string => path.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const pad = (n: number): string => String(n).padStart(2, '0');

/** A resource's values as the form shows them (a secret starts empty: it is never shown back). */
export function formValues(fields: readonly FieldSpec[], message: Record<string, unknown> | undefined): FormValues {
  const values: FormValues = {};
  for (const f of fields) {
    const v = message?.[camel(f.path)];
    if (f.kind === 'bool') values[f.path] = Boolean(v);
    else if (f.kind === 'date' || f.kind === 'datetime') values[f.path] = v ? dateInput(timestampDate(v as Timestamp), f.kind) : '';
    else if (f.kind === 'secret') values[f.path] = '';
    else values[f.path] = v === undefined || v === null ? '' : String(v);
  }
  return values;
}

/** `YYYY-MM-DD` of a date in UTC (a date has no time zone), or `YYYY-MM-DDTHH:MM` in the operator's time zone. */
const dateInput = (d: Date, kind: 'date' | 'datetime'): string => (kind === 'date' ? d.toISOString().slice(0, 10) : localDateTime(d));

/** A `datetime-local` input's value for `d`: `YYYY-MM-DDTHH:MM` in the operator's time zone. */
export const localDateTime = (d: Date): string => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;

/** The message fields for `values` (by field local name); empty optional fields are left unset. */
export function messageFields(fields: readonly FieldSpec[], values: FormValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = values[f.path];
    const key = camel(f.path);
    if (f.kind === 'bool') out[key] = Boolean(v);
    else if (typeof v !== 'string') continue;
    else if (f.kind === 'int' || f.kind === 'enum') out[key] = v === '' ? 0 : Number(v);
    else if (f.kind === 'optional-int') out[key] = v === '' ? undefined : Number(v);
    else if (f.kind === 'optional-text') out[key] = v === '' ? undefined : v;
    else if (f.kind === 'date') out[key] = v ? timestampFromDate(new Date(`${v}T00:00:00Z`)) : undefined;
    else if (f.kind === 'datetime') out[key] = v ? timestampFromDate(new Date(v)) : undefined;
    else out[key] = v;
  }
  return out;
}

/** The `update_mask` paths of what differs from `initial`; a secret counts only when one was typed. */
export function changedPaths(fields: readonly FieldSpec[], initial: FormValues, values: FormValues): string[] {
  return fields.filter((f) => !f.immutable && (f.kind === 'secret' ? values[f.path] !== '' : values[f.path] !== initial[f.path])).map((f) => f.path);
}

/** The write service's field violations (google.rpc.BadRequest) by field path, e.g. `habit.pixels[0].x`. */
export function fieldErrors(err: ConnectError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const b of err.findDetails(BadRequestSchema)) for (const v of b.fieldViolations) out[v.field] = out[v.field] ? `${out[v.field]}; ${v.description}` : v.description;
  return out;
}

/** A DOM id for a field path (`habit.pixels[0].x` → `f-habit-pixels-0--x`). */
export const fieldId = (name: string): string => `f-${name.replace(/[^\w-]/g, '-')}`;

/**
 * One labelled input whose `name` is its field path; a violation of that path is shown under it
 * (Pico styles `aria-invalid`) and named by `aria-describedby`, outside the label so that the
 * input's accessible name stays its label.
 */
export function Input({ name, label, error, ...input }: { name: string; label: string; error: string | undefined } & InputHTMLAttributes<HTMLInputElement>) {
  const id = fieldId(name);
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} name={name} aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-error` : undefined} {...input} />
      {error && <small id={`${id}-error`}>{error}</small>}
    </div>
  );
}

/**
 * The inputs of `fields` for a resource named `resource` in requests (`account`): each input's
 * name is `<resource>.<path>`, as the write service names its violations.
 */
export function Fields({ resource, fields, values, errors, creating, onChange }: { resource: string; fields: readonly FieldSpec[]; values: FormValues; errors: Record<string, string>; creating: boolean; onChange: (path: string, value: string | boolean) => void }) {
  return (
    <>
      {fields.map((f) => {
        const name = `${resource}.${f.path}`;
        const id = fieldId(name);
        const error = errors[name];
        const readOnly = f.immutable && !creating;
        const described = { 'aria-invalid': error ? true : undefined, 'aria-describedby': error ? `${id}-error` : f.hint ? `${id}-hint` : undefined } as const;
        const text = (e: Event) => onChange(f.path, (e.currentTarget as HTMLInputElement).value);
        const control =
          f.kind === 'bool' ? (
            <input id={id} name={name} type="checkbox" role="switch" checked={values[f.path] === true} onChange={(e) => onChange(f.path, e.currentTarget.checked)} disabled={readOnly} {...described} />
          ) : f.kind === 'enum' ? (
            <select id={id} name={name} value={String(values[f.path])} onChange={text} disabled={readOnly} {...described}>
              {f.options!.map(([v, l]) => (
                <option key={v} value={String(v)}>
                  {l}
                </option>
              ))}
            </select>
          ) : (
            <input
              {...({
                id,
                name,
                type: f.kind === 'date' ? 'date' : f.kind === 'datetime' ? 'datetime-local' : f.kind === 'secret' ? 'password' : f.kind.endsWith('int') ? 'number' : 'text',
                autoComplete: f.kind === 'secret' ? 'new-password' : 'off',
                placeholder: f.kind === 'secret' && !creating ? 'unchanged (never shown)' : undefined,
                value: String(values[f.path]),
                onInput: text,
                readOnly,
                ...described,
              } as InputHTMLAttributes<HTMLInputElement>)}
            />
          );
        return (
          <div class="field" key={f.path}>
            {f.kind === 'bool' ? (
              <label for={id}>
                {control} {f.label}
              </label>
            ) : (
              <>
                <label for={id}>{f.label}</label>
                {control}
              </>
            )}
            {error ? <small id={`${id}-error`}>{error}</small> : f.hint && <small id={`${id}-hint`}>{f.hint}</small>}
          </div>
        );
      })}
    </>
  );
}
