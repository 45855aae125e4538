import type Database from 'better-sqlite3';
import { LtHash } from './lt-hash.js';
import { GLOBAL_SCOPE } from '@titanbot/service-kit/daemon-database';

/** A habit's contribution to its part's digest. */
export interface HabitElement {
  /** GLOBAL_SCOPE for a global habit, else its account logical id. */
  part: number;
  lanes: Uint16Array;
}

/** The statements that read one habit's element: from the mirror, or (`candidate`) from a rollout's candidate rows, taking the rollout's uuid first. */
function elementStatements(db: Database.Database, candidate: boolean): { habit: Database.Statement; pixels: Database.Statement; shapes: Database.Statement } {
  const [prefix, key, rollout, live] = candidate ? ['rollout_', 'habit_uuid', 'rollout_uuid = ? and ', ' and deleted = 0'] : ['', 'uuid', '', ''];
  return {
    habit: db
      .prepare(
        `select ${key}, is_active, account_logical_id, priority, trigger_shell, log_template, post_timeout_ms, action, comment, sequence, context,
                is_interruption, strftime('%Y-%m-%d %H:%M:%S', updated_at)
           from ${prefix}habits where ${rollout}${key} = ?${live} and is_active = 1`,
      )
      .raw(),
    // Left joins: a link row is in the file whatever it points at.
    pixels: db
      .prepare(
        `select hp.pixel_uuid, p.dot_uuid, d.x, d.y, p.color_uuid, c.rgb_hex, c.deviation
           from ${prefix}habit_pixels hp left join pixels p on p.uuid = hp.pixel_uuid
           left join dots d on d.uuid = p.dot_uuid left join colors c on c.uuid = p.color_uuid
          where ${rollout.replace('rollout_uuid', 'hp.rollout_uuid')}hp.habit_uuid = ? order by hp.pixel_uuid`,
      )
      .raw(),
    shapes: db
      .prepare(
        `select hs.shape_uuid, s.type, s.x, s.y, s.width, s.height, s.rgb_hex, s.size
           from ${prefix}habit_shapes hs left join shapes s on s.uuid = hs.shape_uuid
          where ${rollout.replace('rollout_uuid', 'hs.rollout_uuid')}hs.habit_uuid = ? order by hs.shape_uuid`,
      )
      .raw(),
  };
}

/**
 * Each exported (active) habit as one LtHash element: everything a daemon database holds because
 * of it, in the form the export writes it: its habits row (with `updated_at` as the export renders
 * it), and its pixel (with dot and color) and shape rows, each sorted by uuid as the file's tables
 * are. The multiset of a scope's elements therefore determines its file, given the export format.
 * Read on the connection it is given, so inside an open feed transaction it sees that transaction.
 */
export class HabitElements {
  private readonly stable: ReturnType<typeof elementStatements>;
  /** The same rows from a rollout's candidate tables (a habit as the rollout will leave it). */
  private readonly candidate: ReturnType<typeof elementStatements>;
  private readonly active: Database.Statement;

  constructor(db: Database.Database) {
    this.stable = elementStatements(db, false);
    this.candidate = elementStatements(db, true);
    this.active = db.prepare('select uuid from habits where is_active = 1').pluck();
  }

  /** The element of habit `uuid` read by `statements` with `keys` (its uuid, after the rollout's for a candidate), or undefined when it exports nothing. */
  private read(statements: ReturnType<typeof elementStatements>, keys: string[]): HabitElement | undefined {
    const row = statements.habit.get(...keys) as unknown[] | undefined;
    if (!row) return undefined;
    const logicalId = row[2];
    const bytes = JSON.stringify([row, statements.pixels.all(...keys), statements.shapes.all(...keys)]);
    return { part: logicalId === null ? GLOBAL_SCOPE : Number(logicalId), lanes: LtHash.element(bytes) };
  }

  /** The element of habit `uuid`, or undefined when it is absent or inactive (then it exports nothing). */
  of(uuid: string): HabitElement | undefined {
    return this.read(this.stable, [uuid]);
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
      const next = this.read(this.candidate, [rollout, uuid]);
      if (next) delta.add(next.lanes);
    }
    return delta;
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
