/** setTimeout's longest delay (ms, 2^31 - 1); longer waits must re-arm. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
