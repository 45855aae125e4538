import type { MikroORM } from '@mikro-orm/postgresql';
import { MAX_LOG_LINES_PER_CALL } from '@titanbot/service-kit/request-checks';
import { existingDevices, insertLogBatch, type LogSubmission } from '../db/log-store.js';
import { invalid, notFound } from '../domain/errors.js';
import { requireUuid } from './context.js';

/** Most lines written by one flush (one transaction, three statements). */
const MAX_LINES_PER_FLUSH = 20_000;

interface Pending extends LogSubmission {
  resolve: (accepted: number) => void;
  reject: (err: unknown) => void;
}

/**
 * IngestLogs off the domain's write path: daemon log lines need neither the global write lock nor
 * the change feed. Calls that arrive while a flush runs wait for the next one, which writes them
 * all in one transaction (group commit): under load, one transaction serves many calls, and admin
 * writes never queue behind logs. A call is answered once its lines are committed
 * ("acknowledged means stored"), at most once per request_id across replicas (log_requests).
 */
export class LogWriter {
  private queue: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly orm: MikroORM,
    /** Receive time of the lines of a flush. */
    private readonly clock: () => Date,
  ) {}

  /**
   * Stores `lines` for `deviceUuid` and resolves with how many were accepted (the first answer for
   * a repeated `requestId`). Errors: INVALID_ARGUMENT (more than MAX_LOG_LINES_PER_CALL lines, a
   * device_uuid that is no UUID), NOT_FOUND (no such device), and whatever the database answers
   * for the whole flush (UNAVAILABLE DATABASE_UNAVAILABLE when it is down).
   */
  submit(deviceUuid: string, lines: LogSubmission['lines'], requestId: string): Promise<number> {
    if (lines.length > MAX_LOG_LINES_PER_CALL) return Promise.reject(invalid('lines', `at most ${MAX_LOG_LINES_PER_CALL} per call`));
    let uuid: string;
    try {
      uuid = requireUuid('device_uuid', deviceUuid);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ deviceUuid: uuid, lines, requestId: requestId.toLowerCase(), resolve, reject });
      this.flushNext();
    });
  }

  private flushNext(): void {
    if (this.flushing || this.queue.length === 0) return;
    this.flushing = true;
    void this.flush().finally(() => {
      this.flushing = false;
      this.flushNext();
    });
  }

  /** Writes the calls queued so far (up to MAX_LINES_PER_FLUSH lines) and answers them. */
  private async flush(): Promise<void> {
    let lines = 0;
    let take = 0;
    while (take < this.queue.length && (take === 0 || lines + this.queue[take]!.lines.length <= MAX_LINES_PER_FLUSH)) lines += this.queue[take++]!.lines.length;
    const batch = this.queue.splice(0, take);
    try {
      const answers = await this.orm.em.fork().transactional(async (tx) => {
        const devices = await existingDevices(tx, [...new Set(batch.map((p) => p.deviceUuid))]);
        const known = batch.filter((p) => devices.has(p.deviceUuid));
        for (const p of batch) if (!devices.has(p.deviceUuid)) p.reject(notFound('device', p.deviceUuid));
        const counts = await insertLogBatch(tx, known, this.clock());
        return known.map((p, i) => [p, counts[i]!] as const);
      });
      for (const [p, accepted] of answers) p.resolve(accepted);
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
