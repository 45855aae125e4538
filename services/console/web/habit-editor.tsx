/**
 * A habit's page and the new-habit page: the habit drawn on the daemons' screen and edited there
 * (placing, moving, deleting pixels and shapes) or by typing values; its fields; saving after a
 * preview of what the change does to which daemons. Validation is the write service's: its field
 * violations are shown at their inputs.
 */
import { Code } from '@connectrpc/connect';
import { ShapeType, type Habit } from '@titanbot/contracts/es/titanbot/admin/v1/habit_service_pb';
import { useLocation, useRoute } from 'preact-iso';
import { useRef, useState } from 'preact/hooks';
import { api } from './api';
import { Time } from './format';
import { changedPaths, fieldErrors, Fields, formValues, Input, messageFields, type FieldSpec, type FormValues } from './forms';
import { HabitCanvas, pixelText, SHAPE_NAMES, shapeText, type PixelValues, type ShapeValues } from './habits';
import { usePolled } from './poll';
import { Conflict } from './resource';
import { useMay, useOperator } from './session';
import { ConfirmButton, LoadState, useAction } from './ui';

/** The habit's fields as the form edits them (pixels and shapes are edited on the canvas and in the elements list). */
const HABIT_FIELDS: readonly FieldSpec[] = [
  { path: 'account_logical_id', label: 'Scope (account logical id)', kind: 'optional-int', hint: 'Empty: a global habit, in every daemon’s database.' },
  { path: 'action', label: 'Action', kind: 'optional-text' },
  { path: 'priority', label: 'Priority', kind: 'optional-int', hint: 'Higher first; daemons read habits in this order.' },
  { path: 'trigger_shell', label: 'Trigger (shell)', kind: 'optional-text' },
  { path: 'is_active', label: 'Active (exported to daemons)', kind: 'bool' },
  { path: 'is_interruption', label: 'Interruption', kind: 'bool' },
  { path: 'sequence', label: 'Sequence', kind: 'optional-int' },
  { path: 'post_timeout_ms', label: 'Post timeout (ms)', kind: 'optional-int' },
  { path: 'context', label: 'Context', kind: 'optional-text' },
  { path: 'log_template', label: 'Log template', kind: 'optional-text' },
  { path: 'comment', label: 'Comment', kind: 'optional-text' },
];

/** The lists as the conflict view names them. */
const LIST_FIELDS = [
  { path: 'pixels', label: 'Pixels', kind: 'text' },
  { path: 'shapes', label: 'Shapes', kind: 'text' },
] as const;

/** What a new element is: a shape is placed centred on the point, this size (px on the daemon's screen). */
const NEW_SHAPE_PX = 200;
const SHAPE_TYPES = [ShapeType.RECTANGLE, ShapeType.CIRCLE, ShapeType.TRIANGLE, ShapeType.IRREGULAR] as const;
type Tool = 'select' | 'pixel' | ShapeType;

/** An element's values as typed: text, so whatever is typed reaches the write service, which says what is wrong. */
type DraftPixel = Record<'x' | 'y' | 'rgbHex' | 'deviation', string>;
type DraftShape = Record<'type' | 'x' | 'y' | 'width' | 'height' | 'size' | 'rgbHex', string>;
interface Draft {
  values: FormValues;
  pixels: DraftPixel[];
  shapes: DraftShape[];
}

const INT32_MAX = 2 ** 31 - 1;
/** A typed integer as the API's int32 (empty or not a number: 0, which the write service refuses where it must not be). */
const int32 = (v: string): number => Math.max(-INT32_MAX - 1, Math.min(INT32_MAX, Math.round(Number(v)) || 0));
const pixelValues = (p: DraftPixel): PixelValues => ({ x: int32(p.x), y: int32(p.y), rgbHex: p.rgbHex, deviation: int32(p.deviation) });
const shapeValues = (s: DraftShape): ShapeValues => ({ type: int32(s.type) as ShapeType, x: int32(s.x), y: int32(s.y), width: int32(s.width), height: int32(s.height), size: int32(s.size), rgbHex: s.rgbHex });
const draftPixel = (p: PixelValues): DraftPixel => ({ x: String(p.x), y: String(p.y), rgbHex: p.rgbHex, deviation: String(p.deviation) });
const draftShape = (s: ShapeValues): DraftShape => ({ type: String(s.type), x: String(s.x), y: String(s.y), width: String(s.width), height: String(s.height), size: String(s.size), rgbHex: s.rgbHex });

function draftOf(h: Habit | undefined, scope: string | undefined): Draft {
  // A new habit is active and an interruption unless changed: the write service's defaults.
  const values = formValues(HABIT_FIELDS, (h as unknown as Record<string, unknown>) ?? { isActive: true, isInterruption: true, accountLogicalId: scope && scope !== 'global' ? Number(scope) : undefined });
  return { values, pixels: (h?.pixels ?? []).map(draftPixel), shapes: (h?.shapes ?? []).map(draftShape) };
}

/** The lists as one line each, for comparing and for the conflict view. */
const listTexts = (d: Draft): FormValues => ({
  pixels: d.pixels.map((p) => pixelText(pixelValues(p))).join('; '),
  shapes: d.shapes.map((s) => shapeText(shapeValues(s))).join('; '),
});

/** The daemon databases a habit is exported into: its scope while it is active (docs/domain.md). */
const exportedTo = (values: FormValues): string | undefined => (values.is_active === true ? (values.account_logical_id === '' ? 'global' : String(values.account_logical_id)) : undefined);

/** `/habits/new?scope=<global|logical id>`: a new habit in that scope. */
export function NewHabitPage() {
  const { query, route } = useLocation();
  return (
    <>
      <h1>New habit</h1>
      <HabitEditor scope={query.scope} onSaved={(h) => route(`/habits/${h.uuid}`)} />
    </>
  );
}

/** `/habits/<uuid>`: the habit drawn and, for the roles that may, edited and deleted. */
export function HabitPage() {
  const { params } = useRoute();
  const { route } = useLocation();
  const may = useMay();
  const uuid = params.uuid!;
  const loaded = usePolled(() => api.habits.getHabit({ uuid }), uuid);
  const [saved, setSaved] = useState<Habit>();
  const { run } = useAction();
  const h = saved?.uuid === uuid ? saved : loaded.data;
  if (!h) return <LoadState error={loaded.error} loading={loaded.loading} what="the habit" />;
  const scope = h.accountLogicalId === undefined ? 'global' : String(h.accountLogicalId);
  return (
    <>
      <nav aria-label="breadcrumb">
        <ul>
          <li>
            <a href={`/habits?scope=${scope}`}>Habits {scope === 'global' ? '(global)' : `of scope ${scope}`}</a>
          </li>
          <li>{h.action || h.uuid}</li>
        </ul>
      </nav>
      <h1>{h.action || '(no action)'}</h1>
      <p>
        Updated <Time value={h.updatedAt} />
      </p>
      <HabitEditor key={h.etag} habit={h} onSaved={setSaved} />
      {may('HabitService/DeleteHabit') && (
        <ConfirmButton
          label="Delete habit"
          question={`Delete habit “${h.action || h.uuid}” of ${scope === 'global' ? 'the global scope (every daemon)' : `scope ${scope}`}? ${h.isActive === false ? 'It is inactive: no daemon database changes.' : 'Daemons of that scope drop it on their next sync.'}`}
          onConfirm={async () => {
            const done = await run(() => api.habits.deleteHabit({ uuid }), () => `Deleted habit ${h.action || h.uuid}`);
            if (done.ok) route(`/habits?scope=${scope}`);
          }}
        />
      )}
    </>
  );
}

/**
 * The editor of one habit (`habit`) or of a new one (in `scope`). Read-only for roles that may
 * not save it. Saving first shows what the change does (the scopes whose daemon databases change
 * and how many devices hold them); an update carries the habit's etag, so a change someone else
 * made meanwhile is shown (with ours kept) instead of overwritten.
 */
function HabitEditor({ habit, scope, onSaved }: { habit?: Habit; scope?: string; onSaved: (h: Habit) => void }) {
  const may = useMay();
  const { screen } = useOperator();
  const editable = may(habit ? 'HabitService/UpdateHabit' : 'HabitService/CreateHabit');
  const [base, setBase] = useState<Habit | undefined>(habit);
  const [initial, setInitial] = useState<Draft>(() => draftOf(habit, scope));
  const [draft, setDraft] = useState<Draft>(initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [conflict, setConflict] = useState<Habit>();
  const [selected, setSelected] = useState<string>();
  const [tool, setTool] = useState<Tool>('select');
  const [colour, setColour] = useState('FF0000');
  const [requestId] = useState(() => crypto.randomUUID());
  const review = useRef<HTMLDialogElement>(null);
  /** The review dialog's preview: undefined while closed, 'counting' until the devices are counted. */
  const [impact, setImpact] = useState<string[] | 'counting'>();
  const { busy, run } = useAction();

  const fieldPaths = changedPaths(HABIT_FIELDS, initial.values, draft.values);
  const [before, after] = [listTexts(initial), listTexts(draft)];
  const listPaths = LIST_FIELDS.map((f) => f.path).filter((p) => before[p] !== after[p]);
  const mask = [...fieldPaths, ...listPaths];
  const pixels = draft.pixels.map(pixelValues);
  const shapes = draft.shapes.map(shapeValues);

  const update = (change: (d: Draft) => Draft) => setDraft((d) => change(d));
  const setPixel = (i: number, p: Partial<DraftPixel>) => update((d) => ({ ...d, pixels: d.pixels.map((q, j) => (j === i ? { ...q, ...p } : q)) }));
  const setShape = (i: number, s: Partial<DraftShape>) => update((d) => ({ ...d, shapes: d.shapes.map((q, j) => (j === i ? { ...q, ...s } : q)) }));
  const remove = (key: string) => {
    const [kind, index] = key.split('-') as ['pixel' | 'shape', string];
    update((d) => (kind === 'pixel' ? { ...d, pixels: d.pixels.filter((_, j) => j !== Number(index)) } : { ...d, shapes: d.shapes.filter((_, j) => j !== Number(index)) }));
    setSelected(undefined);
  };
  /** Moves element `key` to (x, y) on the screen: a pixel's point, a shape's top-left corner. */
  const moveTo = (key: string, x: number, y: number) => {
    const [kind, index] = key.split('-') as ['pixel' | 'shape', string];
    if (kind === 'pixel') setPixel(Number(index), { x: String(x), y: String(y) });
    else setShape(Number(index), { x: String(x), y: String(y) });
  };
  const place = (x: number, y: number) => {
    if (tool === 'pixel') {
      update((d) => ({ ...d, pixels: [...d.pixels, { x: String(x), y: String(y), rgbHex: colour, deviation: '0' }] }));
      setSelected(`pixel-${draft.pixels.length}`);
    } else if (tool !== 'select') {
      const half = NEW_SHAPE_PX / 2;
      update((d) => ({ ...d, shapes: [...d.shapes, { type: String(tool), x: String(x - half), y: String(y - half), width: String(NEW_SHAPE_PX), height: String(NEW_SHAPE_PX), size: '1', rgbHex: colour }] }));
      setSelected(`shape-${draft.shapes.length}`);
    }
  };

  // Dragging: the element and the pointer's offset from its anchor, in screen px.
  const drag = useRef<{ key: string; dx: number; dy: number } | undefined>(undefined);
  const screenPoint = (svg: SVGSVGElement, e: PointerEvent): [number, number] => {
    const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(svg.getScreenCTM()!.inverse());
    return [Math.round(p.x), Math.round(p.y)];
  };
  const anchor = (key: string): [number, number] => {
    const [kind, index] = key.split('-') as ['pixel' | 'shape', string];
    const e = kind === 'pixel' ? pixels[Number(index)]! : shapes[Number(index)]!;
    return [e.x, e.y];
  };
  const svg = editable
    ? {
        // Lower case: on an SVG element the attribute name is taken as written.
        tabindex: 0,
        class: `habit-canvas editing tool-${tool === 'select' ? 'select' : 'place'}`,
        'aria-describedby': 'canvas-help',
        onPointerDown: (e: PointerEvent) => {
          const target = (e.target as Element).closest('[data-element]')?.getAttribute('data-element');
          const [x, y] = screenPoint(e.currentTarget as SVGSVGElement, e);
          if (tool !== 'select') return place(x, y);
          setSelected(target ?? undefined);
          if (!target) return;
          const [ax, ay] = anchor(target);
          drag.current = { key: target, dx: x - ax, dy: y - ay };
          (e.currentTarget as SVGSVGElement).setPointerCapture(e.pointerId);
        },
        onPointerMove: (e: PointerEvent) => {
          if (!drag.current) return;
          const [x, y] = screenPoint(e.currentTarget as SVGSVGElement, e);
          moveTo(drag.current.key, x - drag.current.dx, y - drag.current.dy);
        },
        onPointerUp: () => (drag.current = undefined),
        onKeyDown: (e: KeyboardEvent) => {
          if (!selected) return;
          const step = e.shiftKey ? 10 : 1;
          const moves: Record<string, [number, number]> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
          if (e.key === 'Delete' || e.key === 'Backspace') remove(selected);
          else if (moves[e.key]) {
            const [ax, ay] = anchor(selected);
            moveTo(selected, ax + moves[e.key]![0], ay + moves[e.key]![1]);
          } else return;
          e.preventDefault();
        },
      }
    : undefined;

  /** Which daemon databases the change rewrites, and how many devices hold each (as replicas last reported). */
  const describeImpact = async (): Promise<string[]> => {
    const scopes = [...new Set([base?.isActive === false ? undefined : initialScope(base), exportedTo(draft.values)].filter((s): s is string => s !== undefined))];
    if (scopes.length === 0) return ['No daemon database changes: the habit is inactive before and after.'];
    if (scopes.includes('global')) {
      const all = await api.fleet.getFleetSummary({});
      return [`Every scope’s daemon database changes (a global habit is in all of them): ${all.devices} devices hold them.`];
    }
    return Promise.all(scopes.map(async (s) => `Scope ${s}’s daemon database changes: ${(await api.fleet.getFleetSummary({ logicalId: Number(s) })).devices} devices hold it.`));
  };

  const save = async () => {
    const habitFields = { ...messageFields(HABIT_FIELDS, draft.values), pixels, shapes };
    const done = base
      ? await run(() => api.habits.updateHabit({ habit: { ...habitFields, uuid: base.uuid, etag: base.etag }, updateMask: { paths: mask } }), (h) => `Saved habit ${h.action || h.uuid}`)
      : await run(() => api.habits.createHabit({ habit: habitFields, requestId }), (h) => `Created habit ${h.action || h.uuid}`);
    review.current?.close();
    setImpact(undefined);
    if (done.ok) return onSaved(done.value);
    setErrors(fieldErrors(done.error));
    // Deleted meanwhile: the failure's toast says so, and there is nothing to merge with.
    if (done.error.code === Code.Aborted && base) setConflict(await api.habits.getHabit({ uuid: base.uuid }).catch(() => undefined));
  };
  /** Their version with our changed fields and lists on top: saving it keeps both. */
  const keepBoth = (theirs: Habit) => {
    const next = draftOf(theirs, undefined);
    for (const path of fieldPaths) next.values[path] = draft.values[path]!;
    const rebased = { ...next, pixels: listPaths.includes('pixels') ? draft.pixels : next.pixels, shapes: listPaths.includes('shapes') ? draft.shapes : next.shapes };
    setBase(theirs);
    setInitial(draftOf(theirs, undefined));
    setDraft(rebased);
    setConflict(undefined);
    setErrors({});
  };

  const elements = [...pixels.map((p, i) => ({ key: `pixel-${i}`, rgbHex: p.rgbHex, text: pixelText(p) })), ...shapes.map((s, i) => ({ key: `shape-${i}`, rgbHex: s.rgbHex, text: shapeText(s) }))];
  const listError = (path: string) => errors[`habit.${path}`];

  return (
    <form
      class="habit-editor"
      onSubmit={async (e) => {
        e.preventDefault();
        setImpact('counting');
        review.current?.showModal();
        setImpact(await describeImpact());
      }}
    >
      {conflict && (
        <Conflict
          fields={[...HABIT_FIELDS, ...LIST_FIELDS]}
          theirs={{ ...draftOf(conflict, undefined).values, ...listTexts(draftOf(conflict, undefined)) }}
          base={{ ...initial.values, ...before }}
          mine={{ ...draft.values, ...after }}
          onKeepBoth={() => keepBoth(conflict)}
        />
      )}
      <div class="habit-view">
        <figure>
          {editable && (
            <fieldset class="tools">
              <legend>Canvas tool</legend>
              {(['select', 'pixel', ...SHAPE_TYPES] as Tool[]).map((t) => (
                <label key={String(t)}>
                  <input type="radio" name="tool" checked={tool === t} onChange={() => setTool(t)} />
                  {t === 'select' ? 'Select and move' : t === 'pixel' ? 'Place pixel' : `Place ${SHAPE_NAMES[t]}`}
                </label>
              ))}
              <label>
                Colour of new elements
                <input name="colour" value={colour} onInput={(e) => setColour(e.currentTarget.value.replace(/^#/, '').toUpperCase())} maxLength={7} />
              </label>
            </fieldset>
          )}
          <HabitCanvas habit={{ pixels, shapes }} width={360} label={`${pixels.length} pixels and ${shapes.length} shapes on the daemon's screen`} selected={selected} onSelect={editable ? undefined : setSelected} svg={svg} />
          <figcaption aria-live="polite">{elements.find((e) => e.key === selected)?.text ?? 'Select an element to see its values.'}</figcaption>
          {editable && (
            <small id="canvas-help">
              {screen.width} × {screen.height} px. Click to place with the chosen tool; with “Select and move”, drag an element, or focus the canvas and use the arrow keys (Shift: 10 px) and Delete.
            </small>
          )}
        </figure>
        <section aria-labelledby="fields-heading">
          <h2 id="fields-heading">Fields</h2>
          <fieldset disabled={!editable} class="fields">
            <Fields resource="habit" fields={HABIT_FIELDS} values={draft.values} errors={errors} creating={!base} onChange={(path, value) => update((d) => ({ ...d, values: { ...d.values, [path]: value } }))} />
          </fieldset>
        </section>
      </div>

      <section aria-labelledby="elements-heading">
        <h2 id="elements-heading">Pixels and shapes</h2>
        {elements.length === 0 && <p>No pixel or shape yet: {editable ? 'place them on the canvas, or add them here and type their values.' : 'this habit matches any screen.'}</p>}
        {listError('pixels') && <p role="alert">{listError('pixels')}</p>}
        {listError('shapes') && <p role="alert">{listError('shapes')}</p>}
        <ul class="elements">
          {draft.pixels.map((p, i) => (
            <li key={`pixel-${i}`}>
              <ElementHeader text={pixelText(pixels[i]!)} rgbHex={pixels[i]!.rgbHex} selected={selected === `pixel-${i}`} onSelect={() => setSelected(`pixel-${i}`)} onRemove={editable ? () => remove(`pixel-${i}`) : undefined} error={errors[`habit.pixels[${i}]`]} />
              {editable && (
                <div class="element-values">
                  {(['x', 'y', 'rgbHex', 'deviation'] as const).map((k) => (
                    <Input key={k} name={`habit.pixels[${i}].${k === 'rgbHex' ? 'rgb_hex' : k}`} label={`Pixel ${i + 1} ${k === 'rgbHex' ? 'colour' : k}`} value={p[k]} inputMode={k === 'rgbHex' ? 'text' : 'numeric'} error={errors[`habit.pixels[${i}].${k === 'rgbHex' ? 'rgb_hex' : k}`]} onInput={(e: Event) => setPixel(i, { [k]: (e.currentTarget as HTMLInputElement).value })} />
                  ))}
                </div>
              )}
            </li>
          ))}
          {draft.shapes.map((s, i) => (
            <li key={`shape-${i}`}>
              <ElementHeader text={shapeText(shapes[i]!)} rgbHex={shapes[i]!.rgbHex} selected={selected === `shape-${i}`} onSelect={() => setSelected(`shape-${i}`)} onRemove={editable ? () => remove(`shape-${i}`) : undefined} error={errors[`habit.shapes[${i}]`]} />
              {editable && (
                <div class="element-values">
                  <div class="field">
                    <label for={`f-habit-shapes-${i}--type`}>Shape {i + 1} type</label>
                    <select id={`f-habit-shapes-${i}--type`} name={`habit.shapes[${i}].type`} value={s.type} aria-invalid={errors[`habit.shapes[${i}].type`] ? true : undefined} aria-describedby={errors[`habit.shapes[${i}].type`] ? `f-habit-shapes-${i}--type-error` : undefined} onChange={(e) => setShape(i, { type: e.currentTarget.value })}>
                      <option value={String(ShapeType.UNSPECIFIED)}>— choose —</option>
                      {SHAPE_TYPES.map((t) => (
                        <option key={t} value={String(t)}>
                          {SHAPE_NAMES[t]}
                        </option>
                      ))}
                    </select>
                    {errors[`habit.shapes[${i}].type`] && <small id={`f-habit-shapes-${i}--type-error`}>{errors[`habit.shapes[${i}].type`]}</small>}
                  </div>
                  {(['x', 'y', 'width', 'height', 'size', 'rgbHex'] as const).map((k) => (
                    <Input key={k} name={`habit.shapes[${i}].${k === 'rgbHex' ? 'rgb_hex' : k}`} label={`Shape ${i + 1} ${k === 'rgbHex' ? 'colour' : k}`} value={s[k]} inputMode={k === 'rgbHex' ? 'text' : 'numeric'} error={errors[`habit.shapes[${i}].${k === 'rgbHex' ? 'rgb_hex' : k}`]} onInput={(e: Event) => setShape(i, { [k]: (e.currentTarget as HTMLInputElement).value })} />
                  ))}
                </div>
              )}
            </li>
          ))}
        </ul>
        {editable && (
          <div role="group" class="add-elements">
            <button type="button" class="secondary" onClick={() => update((d) => ({ ...d, pixels: [...d.pixels, { x: '1', y: '1', rgbHex: colour, deviation: '0' }] }))}>
              Add pixel
            </button>
            <button type="button" class="secondary" onClick={() => update((d) => ({ ...d, shapes: [...d.shapes, { type: String(ShapeType.UNSPECIFIED), x: '1', y: '1', width: String(NEW_SHAPE_PX), height: String(NEW_SHAPE_PX), size: '1', rgbHex: colour }] }))}>
              Add shape
            </button>
          </div>
        )}
      </section>

      {errors.habit && <p role="alert">{errors.habit}</p>}
      {editable && (
        <button type="submit" disabled={busy || conflict !== undefined || (base !== undefined && mask.length === 0)}>
          {base ? (mask.length ? `Review and save ${mask.length} change${mask.length > 1 ? 's' : ''}` : 'No change to save') : 'Review and create'}
        </button>
      )}
      <dialog ref={review} aria-labelledby="review-heading" onClose={() => setImpact(undefined)}>
        <article>
          <h2 id="review-heading">{base ? 'Save these changes?' : 'Create this habit?'}</h2>
          {base && <p>Changes: {mask.map((p) => [...HABIT_FIELDS, ...LIST_FIELDS].find((f) => f.path === p)!.label.toLowerCase()).join(', ')}.</p>}
          {impact === 'counting' && <p aria-busy="true">Counting the devices it reaches…</p>}
          {Array.isArray(impact) && (
            <ul data-testid="impact">
              {impact.map((line) => (
                <li key={line}>{line}</li>
              ))}
            </ul>
          )}
          <footer>
            <button type="button" class="secondary" onClick={() => review.current?.close()}>
              Cancel
            </button>
            <button type="button" aria-busy={busy} disabled={busy || !Array.isArray(impact)} onClick={() => void save()}>
              {base ? 'Save' : 'Create'}
            </button>
          </footer>
        </article>
      </dialog>
    </form>
  );
}

/** The scope a stored habit is in (`global` or its logical id). */
const initialScope = (h: Habit | undefined): string | undefined => (h ? (h.accountLogicalId === undefined ? 'global' : String(h.accountLogicalId)) : undefined);

/** An element's line in the list: its values (selecting it on the canvas too), and remove for editors. */
function ElementHeader({ text, rgbHex, selected, onSelect, onRemove, error }: { text: string; rgbHex: string; selected: boolean; onSelect: () => void; onRemove?: () => void; error: string | undefined }) {
  return (
    <div class="element-header">
      <button type="button" class={selected ? '' : 'outline'} aria-pressed={selected} onClick={onSelect}>
        <span class="swatch" style={{ background: /^[0-9A-Fa-f]{6}$/.test(rgbHex) ? `#${rgbHex}` : 'transparent' }} aria-hidden="true" /> {text}
      </button>
      {onRemove && (
        <button type="button" class="secondary outline" onClick={onRemove} aria-label={`Remove ${text}`}>
          Remove
        </button>
      )}
      {error && <small class="error">{error}</small>}
    </div>
  );
}
