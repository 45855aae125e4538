import { ShapeType, type Habit, type Pixel, type Shape } from '@titanbot/contracts/es/titanbot/admin/v1/habit_service_pb';
import { useLocation } from 'preact-iso';
import { observeWindowOffset, observeWindowRect, Virtualizer, windowScroll, type VirtualizerOptions } from '@tanstack/virtual-core';
import { memo } from 'preact/compat';
import type { RefObject, SVGAttributes } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from './api';
import { usePolled } from './poll';
import { useMay, useOperator } from './session';
import { FilterForm, useQueryNavigation } from './paging';

/** Habits fetched per ListHabits call when a scope's whole list is read (the API's largest page). */
const PAGE_SIZE = 1000;
/** A habit card's height (px; `.habit-list li` in style.css): the list renders only the rows in view. */
const ROW_PX = 112;

export const SHAPE_NAMES: Record<ShapeType, string> = {
  [ShapeType.UNSPECIFIED]: 'unknown',
  [ShapeType.RECTANGLE]: 'rectangle',
  [ShapeType.CIRCLE]: 'circle',
  [ShapeType.TRIANGLE]: 'triangle',
  [ShapeType.IRREGULAR]: 'irregular',
};

/** A pixel's and a shape's values, without their message's type. */
export type PixelValues = Omit<Pixel, '$typeName' | '$unknown'>;
export type ShapeValues = Omit<Shape, '$typeName' | '$unknown'>;

/** One drawn element's values, as the hover text and the selection panel name them. */
export const pixelText = (p: PixelValues): string => `pixel at ${p.x}, ${p.y}: #${p.rgbHex}, deviation ±${p.deviation}`;
export const shapeText = (s: ShapeValues): string => `${SHAPE_NAMES[s.type]} at ${s.x}, ${s.y}: ${s.width} × ${s.height}, size ${s.size}, #${s.rgbHex}`;

/** A scope's habits in the order a daemon reads them: higher priority first, no priority last, then by uuid. */
function byPriority(a: Habit, b: Habit): number {
  const pa = a.priority ?? Number.NEGATIVE_INFINITY;
  const pb = b.priority ?? Number.NEGATIVE_INFINITY;
  return pa === pb ? (a.uuid < b.uuid ? -1 : 1) : pb - pa;
}

/** Every habit of a scope (`global` or a logical id), all pages. */
async function scopeHabits(scope: string): Promise<Habit[]> {
  const all: Habit[] = [];
  let pageToken = '';
  do {
    const page = await api.habits.listHabits(scope === 'global' ? { globalOnly: true, pageSize: PAGE_SIZE, pageToken } : { accountLogicalId: Number(scope), pageSize: PAGE_SIZE, pageToken });
    all.push(...page.habits);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return all.sort(byPriority);
}

/**
 * A habit drawn to scale on the daemons' screen: each pixel a dot in its colour with a ring as
 * wide as its allowed deviation, each shape outlined in its colour in its box (x, y, width ×
 * height; a circle and a triangle inscribed, an irregular shape dashed). Each element names its
 * values on hover (`<title>`), and `selected` is outlined. A thumbnail is the same drawing, small
 * and without interaction; the editor passes `svg` (its ref and pointer and key handlers).
 */
export function HabitCanvas({ habit, width, label, selected, onSelect, svg }: { habit: { pixels: readonly PixelValues[]; shapes: readonly ShapeValues[] }; width: number; label: string; selected?: string; onSelect?: (key: string) => void; svg?: SVGAttributes<SVGSVGElement> }) {
  const { screen } = useOperator();
  // Marks are sized on the screen's scale so they stay visible when the drawing is small.
  const mark = Math.max(6, screen.width / 90);
  return (
    <svg class="habit-canvas" viewBox={`0 0 ${screen.width} ${screen.height}`} width={width} height={(width * screen.height) / screen.width} role="img" aria-label={label} {...svg}>
      <rect class="screen" x={0} y={0} width={screen.width} height={screen.height} />
      {habit.shapes.map((s, i) => {
        const key = `shape-${i}`;
        const stroke = { stroke: `#${s.rgbHex}`, 'stroke-width': mark / 2, fill: 'none', 'data-element': key, class: selected === key ? 'selected' : undefined, onClick: onSelect && (() => onSelect(key)) };
        const [x, y, w, h] = [s.x, s.y, Math.abs(s.width), Math.abs(s.height)];
        const shape =
          s.type === ShapeType.CIRCLE ? (
            <ellipse cx={x + w / 2} cy={y + h / 2} rx={w / 2} ry={h / 2} {...stroke} />
          ) : s.type === ShapeType.TRIANGLE ? (
            <polygon points={`${x + w / 2},${y} ${x + w},${y + h} ${x},${y + h}`} {...stroke} />
          ) : (
            <rect x={x} y={y} width={w} height={h} stroke-dasharray={s.type === ShapeType.IRREGULAR ? `${mark} ${mark}` : undefined} {...stroke} />
          );
        return (
          <g key={key}>
            <title>{shapeText(s)}</title>
            {shape}
          </g>
        );
      })}
      {habit.pixels.map((p, i) => {
        const key = `pixel-${i}`;
        return (
          <g key={key} data-element={key} class={selected === key ? 'selected' : undefined} onClick={onSelect && (() => onSelect(key))}>
            <title>{pixelText(p)}</title>
            {p.deviation > 0 && <circle class="deviation" cx={p.x} cy={p.y} r={mark + p.deviation} stroke={`#${p.rgbHex}`} />}
            <circle class="pixel" cx={p.x} cy={p.y} r={mark} fill={`#${p.rgbHex}`} />
          </g>
        );
      })}
    </svg>
  );
}

/**
 * The rows of a list of `count` rows of ROW_PX in the window's view (and a few around it), from
 * TanStack Virtual: a scope of thousands of habits is never drawn whole (`npm run bench --
 * console`: drawn whole, 2,000 took 881 ms to a first screen).
 */
function useWindowRows(count: number, list: RefObject<HTMLOListElement | null>): Virtualizer<Window, Element> {
  const [, redraw] = useState(0);
  const options = (): VirtualizerOptions<Window, Element> => ({
    count,
    estimateSize: () => ROW_PX,
    overscan: 4,
    getScrollElement: () => window,
    scrollToFn: windowScroll,
    observeElementRect: observeWindowRect,
    observeElementOffset: observeWindowOffset,
    // Where the list starts on the page: rows are placed from there.
    scrollMargin: list.current ? list.current.getBoundingClientRect().top + window.scrollY : 0,
    onChange: () => redraw((n) => n + 1),
  });
  const rows = useMemo(() => new Virtualizer(options()), []);
  rows.setOptions(options());
  useEffect(() => rows._didMount(), []);
  useEffect(() => rows._willUpdate());
  return rows;
}

/**
 * The habits of a scope (`/habits?scope=global|<logical id>&active=yes|no&action=<text>`), in the
 * order daemons read them (priority), each with its drawing, priority, action, trigger and active
 * flag; filtered by active and action text in the page (the API lists a scope whole).
 */
export function HabitsPage() {
  const { query } = useLocation();
  const go = useQueryNavigation('/habits');
  const scope = /^\d+$/.test(query.scope ?? '') ? query.scope! : 'global';
  const habits = usePolled(() => scopeHabits(scope), scope);
  const action = (query.action ?? '').toLowerCase();
  // User Timing: the frame after the list is on screen (read by `npm run bench -- console`).
  useEffect(() => {
    if (habits.data) requestAnimationFrame(() => performance.mark('habits-list-shown'));
  }, [habits.data]);
  const shown = useMemo(
    () => (habits.data ?? []).filter((h) => (query.active === 'yes' ? h.isActive !== false : query.active === 'no' ? h.isActive === false : true) && (!action || (h.action ?? '').toLowerCase().includes(action))),
    [habits.data, query.active, action],
  );
  const list = useRef<HTMLOListElement>(null);
  const rows = useWindowRows(shown.length, list);
  const may = useMay();

  return (
    <>
      <h1>Habits {scope === 'global' ? '(global)' : `of scope ${scope}`}</h1>
      <FilterForm fields={['scope', 'active', 'action']} go={go}>
        <label>
          Scope (logical id, empty = global)
          <input name="scope" inputMode="numeric" pattern="\d*" value={scope === 'global' ? '' : scope} />
        </label>
        <label>
          Active
          <select name="active" value={query.active ?? ''}>
            <option value="">All</option>
            <option value="yes">Active</option>
            <option value="no">Inactive</option>
          </select>
        </label>
        <label>
          Action contains
          <input name="action" value={query.action ?? ''} />
        </label>
      </FilterForm>
      {may('HabitService/CreateHabit') && (
        <p>
          <a href={`/habits/new?scope=${scope}`} role="button">
            New habit {scope === 'global' ? '(global)' : `in scope ${scope}`}
          </a>
        </p>
      )}
      {habits.error && <p role="alert">{habits.error}</p>}
      {habits.loading && !habits.error && <p aria-busy="true">Loading the habits…</p>}
      {habits.data && shown.length === 0 && <p>{habits.data.length ? 'No habit matches these filters.' : 'This scope has no habit yet: create one with “New habit”; its daemons then act on it.'}</p>}
      {shown.length > 0 && (
        <ol class="habit-list" ref={list} style={{ height: `${rows.getTotalSize()}px` }}>
          {rows.getVirtualItems().map((row) => (
            <HabitCard key={shown[row.index]!.uuid} habit={shown[row.index]!} top={row.start - rows.options.scrollMargin} />
          ))}
        </ol>
      )}
    </>
  );
}

/**
 * One habit in a scope's list, `top` px below the list's start: its drawing, action, priority,
 * active flag and trigger. Memoised: a row that stays in view is not drawn again while scrolling.
 */
const HabitCard = memo(({ habit: h, top }: { habit: Habit; top: number }) => (
  <li style={{ transform: `translateY(${top}px)` }}>
    <a href={`/habits/${h.uuid}`} class="habit-card">
      <HabitCanvas habit={h} width={54} label={`${h.pixels.length} pixels, ${h.shapes.length} shapes`} />
      <span>
        <strong>{h.action || '(no action)'}</strong>
        <small>
          priority {h.priority ?? '—'} · {h.isActive === false ? 'inactive' : 'active'}
          {h.triggerShell ? ` · trigger: ${h.triggerShell}` : ''}
        </small>
      </span>
    </a>
  </li>
));
