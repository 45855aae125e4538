import { Violations, isInt32 } from './errors.js';

export const SHAPE_TYPES = ['rectangle', 'circle', 'triangle', 'irregular'] as const;
export type ShapeType = (typeof SHAPE_TYPES)[number];

/** Dot (x, y) plus Color (rgb_hex, deviation): a value object shared between habits in storage. */
export interface Pixel {
  x: number;
  y: number;
  /** Six upper-case hex digits. */
  rgbHex: string;
  deviation: number;
}

/** A colored screen area: a value object shared between habits in storage. */
export interface Shape {
  type: ShapeType;
  x: number;
  y: number;
  width: number;
  height: number;
  size: number;
  rgbHex: string;
}

/** A shape as a client gave it: its type is checked with its other fields, so an unknown type is one field violation among the rest. */
export type ShapeInput = Omit<Shape, 'type'> & { type: string };

export interface HabitFields {
  /** Null = global: exported to every daemon. A soft reference to an account's logical id. */
  accountLogicalId: number | null;
  priority: number | null;
  triggerShell: string | null;
  logTemplate: string | null;
  postTimeoutMs: number | null;
  comment: string | null;
  sequence: number | null;
  context: string | null;
  action: string | null;
  isInterruption: boolean;
  isActive: boolean;
}

export const HABIT_DEFAULTS: HabitFields = {
  accountLogicalId: null,
  priority: null,
  triggerShell: null,
  logTemplate: null,
  postTimeoutMs: null,
  comment: null,
  sequence: null,
  context: null,
  action: null,
  isInterruption: true,
  isActive: true,
};

/**
 * The habit aggregate root: scalar fields plus ordered pixel and shape lists (value objects).
 * Invariant: `updatedAt` strictly increases on every change, even within one millisecond, and only
 * on a change (the original's ORM wrote nothing for an update that changed nothing).
 */
export class Habit {
  readonly uuid!: string;
  readonly accountLogicalId!: number | null;
  readonly priority!: number | null;
  readonly triggerShell!: string | null;
  readonly logTemplate!: string | null;
  readonly postTimeoutMs!: number | null;
  readonly comment!: string | null;
  readonly sequence!: number | null;
  readonly context!: string | null;
  readonly action!: string | null;
  readonly isInterruption!: boolean;
  readonly isActive!: boolean;
  readonly updatedAt!: Date;
  readonly version!: number;
  /** Not mapped by the ORM: the habit repository loads and stores the lists. */
  pixels: readonly Pixel[] = [];
  shapes: readonly Shape[] = [];

  /** Creating with no fields at all is valid (docs/domain.md). Throws DomainError('invalid'). */
  static create(uuid: string, fields: Partial<HabitFields>, pixels: Pixel[], shapes: ShapeInput[], now: Date): Habit {
    const all = { ...HABIT_DEFAULTS, ...fields };
    const v = new Violations();
    validateFields(all, v);
    const normalized = validateLists(pixels, shapes, v);
    v.throwIfAny();
    return Object.assign(new Habit(), { uuid, ...all, ...normalized, updatedAt: now, version: 1 });
  }

  /**
   * Applies the given fields and, when given, replaces a whole list; moves `updatedAt` forward.
   * Returns false, changing nothing, when every field and list is already as given.
   */
  update(patch: Partial<HabitFields>, lists: { pixels?: Pixel[]; shapes?: ShapeInput[] }, now: Date): boolean {
    const current = this.fields();
    const next: HabitFields = { ...current, ...patch };
    const v = new Violations();
    validateFields(next, v);
    const normalized = validateLists(lists.pixels ?? [...this.pixels], lists.shapes ?? [...this.shapes], v);
    v.throwIfAny();
    const same =
      (Object.keys(current) as (keyof HabitFields)[]).every((key) => current[key] === next[key]) &&
      sameList(normalized.pixels, this.pixels) &&
      sameList(normalized.shapes, this.shapes);
    if (same) return false;
    const updatedAt = new Date(Math.max(now.getTime(), this.updatedAt.getTime() + 1));
    Object.assign(this, next, normalized, { updatedAt });
    return true;
  }

  private fields(): HabitFields {
    const f = {} as Record<keyof HabitFields, unknown>;
    for (const key of Object.keys(HABIT_DEFAULTS) as (keyof HabitFields)[]) f[key] = this[key];
    return f as HabitFields;
  }
}

const HEX = /^[0-9A-F]{6}$/;

function validateFields(f: HabitFields, v: Violations): void {
  for (const key of ['accountLogicalId', 'priority', 'sequence'] as const) {
    const n = f[key];
    v.check(n === null || isInt32(n), `habit.${snake(key)}`, 'must be an int32');
  }
  v.check(
    f.postTimeoutMs === null || (isInt32(f.postTimeoutMs) && f.postTimeoutMs >= 0),
    'habit.post_timeout_ms',
    'must be >= 0',
  );
}

/** Upper-cases hex colors; rejects out-of-range values and duplicates within one list. */
function validateLists(pixels: Pixel[], shapes: ShapeInput[], v: Violations): { pixels: Pixel[]; shapes: Shape[] } {
  const seenPixels = new Set<string>();
  const outPixels = pixels.map((p, i) => {
    const px = { ...p, rgbHex: p.rgbHex.toUpperCase() };
    const at = `habit.pixels[${i}]`;
    v.check(isInt32(px.x) && px.x >= 1, `${at}.x`, 'must be >= 1')
      .check(isInt32(px.y) && px.y >= 1, `${at}.y`, 'must be >= 1')
      .check(HEX.test(px.rgbHex), `${at}.rgb_hex`, 'must be six hex digits')
      .check(isInt32(px.deviation) && px.deviation >= 0, `${at}.deviation`, 'must be >= 0');
    const key = `${px.x},${px.y},${px.rgbHex},${px.deviation}`;
    v.check(!seenPixels.has(key), at, 'duplicates an earlier pixel');
    seenPixels.add(key);
    return px;
  });
  const seenShapes = new Set<string>();
  const outShapes = shapes.map((s, i) => {
    const sh = { ...s, rgbHex: s.rgbHex.toUpperCase() };
    const at = `habit.shapes[${i}]`;
    v.check((SHAPE_TYPES as readonly string[]).includes(sh.type), `${at}.type`, `must be one of ${SHAPE_TYPES.join(', ')}`)
      .check([sh.x, sh.y, sh.width, sh.height].every(isInt32), at, 'coordinates must be int32')
      .check(isInt32(sh.size) && sh.size >= 1, `${at}.size`, 'must be >= 1')
      .check(HEX.test(sh.rgbHex), `${at}.rgb_hex`, 'must be six hex digits');
    const key = [sh.type, sh.x, sh.y, sh.width, sh.height, sh.size, sh.rgbHex].join(',');
    v.check(!seenShapes.has(key), at, 'duplicates an earlier shape');
    seenShapes.add(key);
    // Checked above: the violations are thrown before a shape of another type is kept.
    return sh as Shape;
  });
  return { pixels: outPixels, shapes: outShapes };
}

/** Equal lists of value objects, in the same order (the order is stored). */
const sameList = <T extends object>(a: readonly T[], b: readonly T[]): boolean =>
  a.length === b.length && a.every((item, i) => canonical(item) === canonical(b[i]!));

/** A value object's fields in name order, whatever order they were built in. */
const canonical = (value: object): string => JSON.stringify(value, Object.keys(value).sort());

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
