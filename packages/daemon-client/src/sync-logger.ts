/**
 * Receives one structured event of a sync (e.g. `installed`, `download-interrupted`,
 * `token-rotated`, `watch-lost`) with its fields. Its own module: every part of the client logs
 * through it, and DaemonSync composes the parts.
 */
export type SyncLogger = (event: string, fields: Record<string, unknown>) => void;
