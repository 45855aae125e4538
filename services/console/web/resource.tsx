/**
 * The pages of a plain admin resource (accounts, legions, empire dates, devices' list): a list
 * filtered and paged on the server, a form to create one, and its page to edit or delete it.
 * What differs between resources is a `Resource` description (resources.tsx).
 */
import { Code } from '@connectrpc/connect';
import type { ComponentChild, ComponentType } from 'preact';
import { useLocation, useRoute } from 'preact-iso';
import { useState } from 'preact/hooks';
import { changedPaths, fieldErrors, Fields, formValues, messageFields, type FieldSpec, type FormValues } from './forms';
import { FilterForm, Pager, useQueryNavigation } from './paging';
import { usePolled } from './poll';
import { useMay } from './session';
import { ConfirmButton, LoadState, useAction, Scrolls } from './ui';

/** A resource as its pages show it: a uuid, and the etag its updates carry (AIP-154). */
export interface Item {
  uuid: string;
  etag: string;
}

export interface Resource<M extends Item> {
  /** The list page's path (`/accounts`); a resource's page is `<path>/<uuid>`. */
  path: string;
  singular: string;
  plural: string;
  /** The request field that holds it, as field violations name it (`account`, `empire_date`). */
  field: string;
  /** Its admin methods (`AccountService/CreateAccount`): controls are offered to roles that may call them. */
  methods: { create: string; update: string; delete: string };
  fields: readonly FieldSpec[];
  /** The list's filters: each is a query parameter of the list page, by field path. */
  filters: readonly FieldSpec[];
  columns: readonly (readonly [string, (m: M) => ComponentChild])[];
  /** How one is named on its page and in confirmations. */
  title: (m: M) => string;
  /** What the empty list says to do. */
  empty: string;
  list: (filters: Record<string, unknown>, pageToken: string) => Promise<{ items: M[]; nextPageToken: string }>;
  get: (uuid: string) => Promise<M>;
  /** Creates one from the form's fields, with an AIP-155 request id so a retry creates it once. */
  create: (fields: Record<string, unknown>, requestId: string) => Promise<M>;
  update: (fields: Record<string, unknown>, mask: string[]) => Promise<M>;
  remove: (uuid: string) => Promise<unknown>;
  /** What deleting it also does, for the confirmation. */
  deleteEffect: string;
  /** What its list page says first (the next empire date). */
  Intro?: ComponentType;
}

/** The list page of `r`: its filters are the URL's query, its rows link to their pages, and a form creates one. */
export function ResourceListPage<M extends Item>({ r }: { r: Resource<M> }) {
  const { query, route } = useLocation();
  const go = useQueryNavigation(r.path);
  const may = useMay();
  const filters = messageFields(r.filters, Object.fromEntries(r.filters.map((f) => [f.path, query[f.path] ?? ''])));
  const key = JSON.stringify(query);
  const list = usePolled(() => r.list(filters, query.page_token ?? ''), key);
  return (
    <>
      <h1>{r.plural[0]!.toUpperCase() + r.plural.slice(1)}</h1>
      {r.Intro && <r.Intro />}
      {r.filters.length > 0 && (
        <FilterForm fields={r.filters.map((f) => f.path)} go={go}>
          {r.filters.map((f) => (
            <label key={f.path}>
              {f.label}
              <input name={f.path} inputMode={f.kind.endsWith('int') ? 'numeric' : 'text'} value={query[f.path] ?? ''} />
            </label>
          ))}
        </FilterForm>
      )}
      {may(r.methods.create) && (
        <details>
          <summary role="button" class="secondary">
            New {r.singular}
          </summary>
          <ResourceForm r={r} onSaved={(m) => route(`${r.path}/${m.uuid}`)} />
        </details>
      )}
      <LoadState error={list.error} loading={list.loading} what={r.plural} />
      {list.data && list.data.items.length === 0 && <p>{query.page_token || r.filters.some((f) => query[f.path]) ? `No ${r.singular} matches these filters.` : r.empty}</p>}
      {list.data && list.data.items.length > 0 && (
        <Scrolls label={r.plural}>
          <table class="striped">
            <thead>
              <tr>
                {r.columns.map(([label]) => (
                  <th scope="col" key={label}>
                    {label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((m) => (
                <tr key={m.uuid}>
                  {r.columns.map(([label, cell], i) => (
                    <td key={label}>{i === 0 ? <a href={`${r.path}/${m.uuid}`}>{cell(m)}</a> : cell(m)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </Scrolls>
      )}
      <Pager pageToken={query.page_token} nextPageToken={list.data?.nextPageToken} go={go} />
    </>
  );
}

/** A resource's page (`<path>/<uuid>`): its fields as a form (read-only for roles that may not update it), delete, and more of `r`. */
export function ResourcePage<M extends Item>({ r }: { r: Resource<M> }) {
  const { params } = useRoute();
  const { route } = useLocation();
  const may = useMay();
  const uuid = params.uuid!;
  const item = usePolled(() => r.get(uuid), uuid);
  const { run } = useAction();
  if (!item.data) return <LoadState error={item.error} loading={item.loading} what={`the ${r.singular}`} />;
  const m = item.data;
  return (
    <>
      <nav aria-label="breadcrumb">
        <ul>
          <li>
            <a href={r.path}>{r.plural[0]!.toUpperCase() + r.plural.slice(1)}</a>
          </li>
          <li>{r.title(m)}</li>
        </ul>
      </nav>
      <h1>{r.title(m)}</h1>
      <ResourceForm key={m.etag} r={r} current={m} onSaved={() => item.reload()} />
      {may(r.methods.delete) && (
        <ConfirmButton
          label={`Delete ${r.singular}`}
          question={`Delete ${r.singular} ${r.title(m)}? ${r.deleteEffect}`}
          onConfirm={async () => {
            const done = await run(() => r.remove(m.uuid), () => `Deleted ${r.singular} ${r.title(m)}`);
            if (done.ok) route(r.path);
          }}
        />
      )}
    </>
  );
}

/**
 * The form of one resource: creating (no `current`) or updating `current` with the `update_mask`
 * of the fields changed and its etag. Field violations are shown at their fields. When someone
 * else changed it meanwhile (ABORTED, ETAG_MISMATCH), both changes are shown and neither is lost:
 * the operator's edits are kept and can be applied onto the newer version.
 */
export function ResourceForm<M extends Item>({ r, current, onSaved }: { r: Resource<M>; current?: M; onSaved: (m: M) => void }) {
  const may = useMay();
  const creating = !current;
  const editable = may(creating ? r.methods.create : r.methods.update);
  const [base, setBase] = useState(current);
  const [initial, setInitial] = useState<FormValues>(() => formValues(r.fields, current as Record<string, unknown> | undefined));
  const [values, setValues] = useState<FormValues>(initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [conflict, setConflict] = useState<M>();
  const [requestId] = useState(() => crypto.randomUUID());
  const { busy, run } = useAction();
  const changed = changedPaths(r.fields, initial, values);

  const save = async () => {
    const fields = messageFields(r.fields, values);
    const done = creating
      ? await run(() => r.create(fields, requestId), (m) => `Created ${r.singular} ${r.title(m)}`)
      : await run(() => r.update({ ...fields, uuid: base!.uuid, etag: base!.etag }, changed), (m) => `Saved ${r.singular} ${r.title(m)}`);
    if (done.ok) {
      setErrors({});
      onSaved(done.value);
      return;
    }
    setErrors(fieldErrors(done.error));
    // Deleted meanwhile: the failure's toast says so, and there is nothing to merge with.
    if (done.error.code === Code.Aborted && base) setConflict(await r.get(base.uuid).catch(() => undefined));
  };
  /** The newer version with the operator's changed fields on top: saving it keeps both. */
  const rebase = (theirs: M) => {
    const next = formValues(r.fields, theirs as unknown as Record<string, unknown>);
    for (const path of changed) next[path] = values[path]!;
    setBase(theirs);
    setInitial(formValues(r.fields, theirs as unknown as Record<string, unknown>));
    setValues(next);
    setConflict(undefined);
  };

  return (
    <form
      class="resource-form"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      {conflict && <Conflict fields={r.fields} theirs={formValues(r.fields, conflict as unknown as Record<string, unknown>)} base={initial} mine={values} onKeepBoth={() => rebase(conflict)} />}
      <fieldset disabled={!editable} class="fields">
        <Fields resource={r.field} fields={r.fields} values={values} errors={errors} creating={creating} onChange={(path, value) => setValues((v) => ({ ...v, [path]: value }))} />
      </fieldset>
      {errors[r.field] && <p role="alert">{errors[r.field]}</p>}
      {editable && (
        <button type="submit" aria-busy={busy} disabled={busy || conflict !== undefined || (!creating && changed.length === 0)}>
          {creating ? `Create ${r.singular}` : changed.length ? `Save ${changed.length} change${changed.length > 1 ? 's' : ''}` : 'No change to save'}
        </button>
      )}
    </form>
  );
}

/**
 * An edit conflict: what someone else changed since the form was loaded and what the operator
 * changed, field by field; keeping both puts the operator's changes onto the newer version.
 */
export function Conflict({ fields, theirs, base, mine, onKeepBoth }: { fields: readonly Pick<FieldSpec, 'path' | 'label' | 'kind'>[]; theirs: FormValues; base: FormValues; mine: FormValues; onKeepBoth: () => void }) {
  const show = (f: Pick<FieldSpec, 'kind'>, v: string | boolean | undefined) => (f.kind === 'secret' ? (v ? 'a new one' : 'unchanged') : typeof v === 'boolean' ? (v ? 'yes' : 'no') : v || '(empty)');
  const theirChanges = fields.filter((f) => theirs[f.path] !== base[f.path]);
  const myChanges = fields.filter((f) => mine[f.path] !== base[f.path]);
  return (
    <div class="conflict" role="alert" aria-labelledby="conflict-heading">
      <h2 id="conflict-heading">Changed by someone else while you edited</h2>
      <p>Nothing was saved. Their changes and yours:</p>
      <ul>
        {theirChanges.map((f) => (
          <li key={`t-${f.path}`}>
            They changed {f.label}: {show(f, base[f.path])} → {show(f, theirs[f.path])}
          </li>
        ))}
        {myChanges.map((f) => (
          <li key={`m-${f.path}`}>
            You changed {f.label}: {show(f, base[f.path])} → {show(f, mine[f.path])}
            {theirChanges.includes(f) ? ' (they changed it too: yours replaces theirs)' : ''}
          </li>
        ))}
      </ul>
      <button type="button" onClick={onKeepBoth}>
        Keep both: apply my changes to their version
      </button>
    </div>
  );
}
