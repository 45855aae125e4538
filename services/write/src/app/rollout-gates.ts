import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { DomainSettings } from './context.js';
import { checkGates } from './rollouts.js';
import { inWriteTransaction } from './write-transaction.js';

/**
 * Runs the rollouts' gate checks (`checkGates`) every `everyMs` (ROLLOUT_GATE_INTERVAL), each round
 * in one write transaction holding the global write lock, so write replicas checking at once take
 * turns and the second sees what the first did. Every pause, abort and advance is logged; a round
 * that fails (database down) is logged and tried again at the next. Returns a function that stops it.
 */
export function startRolloutGates(orm: MikroORM, logger: Logger, options: { everyMs: number; clock: () => Date; settings: DomainSettings }): () => void {
  let running = false;
  const round = async (): Promise<void> => {
    const outcomes = await inWriteTransaction(orm.em.fork(), (tx) => checkGates({ em: tx, now: options.clock(), settings: options.settings }, options.everyMs));
    for (const o of outcomes) logger.info({ rollout: o.uuid, action: o.action, ...(o.reason ? { reason: o.reason } : {}) }, `rollout ${o.action} by its gates`);
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    round()
      .catch((err: unknown) => logger.warn({ err }, 'rollout gates: check failed'))
      .finally(() => (running = false));
  }, options.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
