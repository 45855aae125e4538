import { useEffect, useState } from 'preact/hooks';
import { explain } from './api';

/** How often a page's data is fetched again while it is open (ms). */
export const REFRESH_MS = 2_000;

/** What a polled load holds: the last data, the last error (shown; the data stays), and whether the first load is still running. */
export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  /** Loads again now (after an action changed what is shown). */
  reload: () => void;
}

/**
 * Runs `load` now, whenever `key` changes, and every `everyMs` while the page is open and
 * visible (none = once). An answer to an older key is dropped, so a fast filter change never
 * shows the previous filter's rows.
 */
export function usePolled<T>(load: () => Promise<T>, key: string, everyMs?: number): Polled<T> {
  const [state, setState] = useState<{ key: string; data?: T; error?: string }>({ key });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let current = true;
    const run = () =>
      load().then(
        (data) => current && setState({ key, data }),
        (err: unknown) => current && setState((s) => ({ ...s, key, error: explain(err) })),
      );
    void run();
    const timer = everyMs ? setInterval(() => document.visibilityState === 'visible' && void run(), everyMs) : undefined;
    return () => {
      current = false;
      if (timer) clearInterval(timer);
    };
  }, [key, tick]);
  const fresh = state.key === key;
  return { data: fresh ? state.data : undefined, error: fresh ? state.error : undefined, loading: !fresh || (state.data === undefined && state.error === undefined), reload: () => setTick((t) => t + 1) };
}
