import type Database from 'better-sqlite3';
import { LtHash } from './lt-hash.js';
import { GLOBAL_SCOPE } from './versions.js';

/** A habit's contribution to its part's digest. */
export interface HabitElement {
  /** GLOBAL_SCOPE for a global habit, else its account logical id. */
  part: number;
  lanes: Uint16Array;
}

/**
 * Each exported (active) habit as one LtHash element: everything a daemon database holds because
 * of it, in the form the export writes it: its habits row (with `updated_at` as the export renders
 * it), and its pixel (with dot and color) and shape rows, each sorted by uuid as the file's tables
 * are. The multiset of a scope's elements therefore determines its file, given the export format.
 * Read on the connection it is given, so inside an open feed transaction it sees that transaction.
 */
export class HabitElements {
  private readonly habit: Database.Statement;
  private readonly pixels: Database.Statement;
  private readonly shapes: Database.Statement;
  private readonly active: Database.Statement;
  private readonly candidateHabit: Database.Statement;
  private readonly candidatePixels: Database.Statement;
  private readonly candidateShapes: Database.Statement;

  constructor(db: Database.Database) {
    this.habit = db
      .prepare(
        `select uuid, is_active, account_logical_id, priority, trigger_shell, log_template, post_timeout_ms, action, comment, sequence, context,
                is_interruption, strftime('%Y-%m-%d %H:%M:%S', updated_at)
           from habits where uuid = ? and is_active = 1`,
      )
      .raw();
    // Left joins: a link row is in the file whatever it points at.
    this.pixels = db
      .prepare(
        `select hp.pixel_uuid, p.dot_uuid, d.x, d.y, p.color_uuid, c.rgb_hex, c.deviation
           from habit_pixels hp left join pixels p on p.uuid = hp.pixel_uuid
           left join dots d on d.uuid = p.dot_uuid left join colors c on c.uuid = p.color_uuid
          where hp.habit_uuid = ? order by hp.pixel_uuid`,
      )
      .raw();
    this.shapes = db
      .prepare(
        `select hs.shape_uuid, s.type, s.x, s.y, s.width, s.height, s.rgb_hex, s.size
           from habit_shapes hs left join shapes s on s.uuid = hs.shape_uuid where hs.habit_uuid = ? order by hs.shape_uuid`,
      )
      .raw();
    this.active = db.prepare('select uuid from habits where is_active = 1').pluck();
    // The same rows from a rollout's candidate tables (a habit as the rollout will leave it).
    this.candidateHabit = db
      .prepare(
        `select habit_uuid, is_active, account_logical_id, priority, trigger_shell, log_template, post_timeout_ms, action, comment, sequence, context,
                is_interruption, strftime('%Y-%m-%d %H:%M:%S', updated_at)
           from rollout_habits where rollout_uuid = ? and habit_uuid = ? and deleted = 0 and is_active = 1`,
      )
      .raw();
    this.candidatePixels = db
      .prepare(
        `select hp.pixel_uuid, p.dot_uuid, d.x, d.y, p.color_uuid, c.rgb_hex, c.deviation
           from rollout_habit_pixels hp left join pixels p on p.uuid = hp.pixel_uuid
           left join dots d on d.uuid = p.dot_uuid left join colors c on c.uuid = p.color_uuid
          where hp.rollout_uuid = ? and hp.habit_uuid = ? order by hp.pixel_uuid`,
      )
      .raw();
    this.candidateShapes = db
      .prepare(
        `select hs.shape_uuid, s.type, s.x, s.y, s.width, s.height, s.rgb_hex, s.size
           from rollout_habit_shapes hs left join shapes s on s.uuid = hs.shape_uuid
          where hs.rollout_uuid = ? and hs.habit_uuid = ? order by hs.shape_uuid`,
      )
      .raw();
  }

  /**
   * Rollout `rollout`'s candidate elements minus the current elements of the habits it changes
   * (`habits`): added to a scope's stable sum, it gives the candidate sum. A candidate habit that
   * is deleted or inactive contributes nothing, as it exports nothing.
   */
  rolloutDelta(rollout: string, habits: readonly string[]): LtHash {
    const delta = new LtHash();
    for (const uuid of habits) {
      const now = this.of(uuid);
      if (now) delta.add(now.lanes, -1);
      const row = this.candidateHabit.get(rollout, uuid) as unknown[] | undefined;
      if (row) delta.add(LtHash.element(JSON.stringify([row, this.candidatePixels.all(rollout, uuid), this.candidateShapes.all(rollout, uuid)])));
    }
    return delta;
  }

  /** The element of habit `uuid`, or undefined when it is absent or inactive (then it exports nothing). */
  of(uuid: string): HabitElement | undefined {
    const row = this.habit.get(uuid) as unknown[] | undefined;
    if (!row) return undefined;
    const logicalId = row[2];
    const bytes = JSON.stringify([row, this.pixels.all(uuid), this.shapes.all(uuid)]);
    return { part: logicalId === null ? GLOBAL_SCOPE : Number(logicalId), lanes: LtHash.element(bytes) };
  }

  /** Every part's sum, from scratch (start-up, after a snapshot). */
  sums(): { global: LtHash; parts: Map<number, LtHash> } {
    const global = new LtHash();
    const parts = new Map<number, LtHash>();
    for (const uuid of this.active.all() as string[]) {
      const element = this.of(uuid)!;
      if (element.part === GLOBAL_SCOPE) global.add(element.lanes);
      else {
        let sum = parts.get(element.part);
        if (!sum) parts.set(element.part, (sum = new LtHash()));
        sum.add(element.lanes);
      }
    }
    return { global, parts };
  }
}
