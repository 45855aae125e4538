import {
  HabitServiceService,
  ShapeType,
  type Habit as HabitMessage,
  type CreateHabitRequest,
  type HabitServiceServer,
  type UpdateHabitRequest,
  type Pixel as PixelMessage,
  type Shape as ShapeMessage,
} from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import * as habits from '../../app/habits.js';
import type { Habit, HabitFields, Pixel, ShapeInput } from '../../domain/habit.js';
import { invalid } from '../../domain/errors.js';
import { unary, type Runtime } from '../handler.js';
import { enumMap, orNull, orUndefined, patchFromMask, required } from '../translate.js';

const SHAPE_TYPE_PAIRS = [
  [ShapeType.SHAPE_TYPE_RECTANGLE, 'rectangle'],
  [ShapeType.SHAPE_TYPE_CIRCLE, 'circle'],
  [ShapeType.SHAPE_TYPE_TRIANGLE, 'triangle'],
  [ShapeType.SHAPE_TYPE_IRREGULAR, 'irregular'],
] as const;

type HabitPatch = Partial<HabitFields> & { pixels?: Pixel[]; shapes?: ShapeInput[] };

const HABIT_FIELDS: Record<string, (h: HabitMessage) => HabitPatch> = {
  account_logical_id: (h) => ({ accountLogicalId: orNull(h.accountLogicalId) }),
  priority: (h) => ({ priority: orNull(h.priority) }),
  trigger_shell: (h) => ({ triggerShell: orNull(h.triggerShell) }),
  log_template: (h) => ({ logTemplate: orNull(h.logTemplate) }),
  post_timeout_ms: (h) => ({ postTimeoutMs: orNull(h.postTimeoutMs) }),
  comment: (h) => ({ comment: orNull(h.comment) }),
  sequence: (h) => ({ sequence: orNull(h.sequence) }),
  context: (h) => ({ context: orNull(h.context) }),
  action: (h) => ({ action: orNull(h.action) }),
  is_interruption: (h) => ({ isInterruption: h.isInterruption ?? true }),
  is_active: (h) => ({ isActive: h.isActive ?? true }),
  pixels: (h) => ({ pixels: h.pixels.map(pixelFromProto) }),
  shapes: (h) => ({ shapes: h.shapes.map(shapeFromProto) }),
};

const pixelFromProto = (p: PixelMessage): Pixel => ({ x: p.x, y: p.y, rgbHex: p.rgbHex, deviation: p.deviation });

const SHAPE_TYPE_NAMES = new Map<number, string>(SHAPE_TYPE_PAIRS);

/** An unspecified or unknown type goes on as its number: the domain refuses it with the habit's other violations, so a client sees them all at once. */
function shapeFromProto(s: ShapeMessage): ShapeInput {
  const type = SHAPE_TYPE_NAMES.get(s.type) ?? String(s.type);
  return { type, x: s.x, y: s.y, width: s.width, height: s.height, size: s.size, rgbHex: s.rgbHex };
}

const shapeType = enumMap(SHAPE_TYPE_PAIRS, 'habit.shapes.type');

export function habitToProto(h: Habit): HabitMessage {
  return {
    uuid: h.uuid,
    accountLogicalId: orUndefined(h.accountLogicalId),
    priority: orUndefined(h.priority),
    triggerShell: orUndefined(h.triggerShell),
    logTemplate: orUndefined(h.logTemplate),
    postTimeoutMs: orUndefined(h.postTimeoutMs),
    comment: orUndefined(h.comment),
    sequence: orUndefined(h.sequence),
    context: orUndefined(h.context),
    action: orUndefined(h.action),
    isInterruption: h.isInterruption,
    isActive: h.isActive,
    pixels: h.pixels.map((p) => ({ ...p })),
    shapes: h.shapes.map((s) => ({ ...s, type: shapeType.proto(s.type) })),
    updatedAt: h.updatedAt,
    etag: String(h.version),
  };
}

/** Splits a patch into scalar fields and whole-list replacements. */
function split(patch: HabitPatch): [Partial<HabitFields>, { pixels?: Pixel[]; shapes?: ShapeInput[] }] {
  const { pixels, shapes, ...fields } = patch;
  return [fields, { ...(pixels ? { pixels } : {}), ...(shapes ? { shapes } : {}) }];
}

/** A CreateHabitRequest as the createHabit use case takes it. Errors: INVALID_ARGUMENT (habit missing). */
export function createHabitInput(req: CreateHabitRequest): { fields: Partial<HabitFields>; pixels: Pixel[]; shapes: ShapeInput[]; habitId: string } {
  const h = required(req.habit, 'habit');
  const [fields, lists] = split(Object.assign({}, ...Object.values(HABIT_FIELDS).map((pick) => pick(h))));
  return { fields, pixels: lists.pixels ?? [], shapes: lists.shapes ?? [], habitId: req.habitId };
}

/** An UpdateHabitRequest as the updateHabit use case takes it. Errors: INVALID_ARGUMENT (habit missing, update_mask). */
export function updateHabitInput(req: UpdateHabitRequest): { uuid: string; etag: string; fields: Partial<HabitFields>; lists: { pixels?: Pixel[]; shapes?: ShapeInput[] } } {
  const h = required(req.habit, 'habit');
  const [fields, lists] = split(patchFromMask(req.updateMask, h, HABIT_FIELDS));
  return { uuid: h.uuid, etag: h.etag, fields, lists };
}

/** titanbot.admin.v1.HabitService handlers. */
export function habitService(rt: Runtime): HabitServiceServer {
  const m = HabitServiceService;
  return {
    createHabit: unary(rt, m.createHabit, { write: true, requestId: (r) => r.requestId, validateOnly: (r) => r.validateOnly }, async (ctx, req) => {
      const { fields, pixels, shapes, habitId } = createHabitInput(req);
      return habitToProto(await habits.createHabit(ctx, fields, pixels, shapes, habitId));
    }),
    getHabit: unary(rt, m.getHabit, { write: false }, async (ctx, req) => habitToProto(await habits.getHabit(ctx, req.uuid))),
    listHabits: unary(rt, m.listHabits, { write: false }, async (ctx, req) => {
      if (req.globalOnly && req.accountLogicalId !== undefined) {
        throw invalid('global_only', 'cannot be combined with account_logical_id');
      }
      const page = await habits.listHabits(ctx, req);
      return { habits: page.items.map(habitToProto), nextPageToken: page.nextPageToken };
    }),
    updateHabit: unary(rt, m.updateHabit, { write: true }, async (ctx, req) => {
      const { uuid, etag, fields, lists } = updateHabitInput(req);
      return habitToProto(await habits.updateHabit(ctx, uuid, etag, fields, lists));
    }),
    deleteHabit: unary(rt, m.deleteHabit, { write: true }, async (ctx, req) => {
      await habits.deleteHabit(ctx, req.uuid);
      return {};
    }),
  };
}
