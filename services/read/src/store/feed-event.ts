/** One feed event as the consumer hands it over (row values as JSON: text, number, boolean, null). */
export interface FeedEvent {
  revision: number;
  table: string;
  operation: 'upsert' | 'delete';
  row: Record<string, unknown>;
  /** Whether the next revision belongs to the same write transaction (false from older write services). */
  transactionContinues: boolean;
}
