/** What every page's actions share: their result as a toast, a busy state, confirmation and secrets shown once. */
import { ConnectError } from '@connectrpc/connect';
import { createContext, type ComponentChildren } from 'preact';
import { useCallback, useContext, useRef, useState } from 'preact/hooks';
import { explain } from './api';

/** How long a success toast stays (ms); an error stays until it is closed. */
const TOAST_MS = 8_000;

interface Toast {
  id: number;
  text: string;
  error: boolean;
}

const ToastContext = createContext<(text: string, error: boolean) => void>(() => undefined);

/** The frame's toasts: the result of each action, successes in a polite live region, errors as alerts that stay until closed. */
export function Toasts({ children }: { children: ComponentChildren }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(0);
  const close = (id: number) => setToasts((ts) => ts.filter((t) => t.id !== id));
  const push = useCallback((text: string, error: boolean) => {
    const id = next.current++;
    setToasts((ts) => [...ts, { id, text, error }]);
    if (!error) setTimeout(() => close(id), TOAST_MS);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {children}
      <section class="toasts" aria-label="Results" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} class={t.error ? 'toast error' : 'toast'} role={t.error ? 'alert' : 'status'}>
            <span>{t.text}</span>
            <button class="outline" aria-label="Close" onClick={() => close(t.id)}>
              ×
            </button>
          </div>
        ))}
      </section>
    </ToastContext.Provider>
  );
}

/** An action's outcome: its value, or the admin API's error (for its field violations). */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ConnectError };

/**
 * Runs admin actions: `busy` while one runs (for `aria-busy` on its control), and a toast with
 * the result of each: `done(value)` on success, the error explained on failure.
 */
export function useAction(): { busy: boolean; run: <T>(action: () => Promise<T>, done: (value: T) => string) => Promise<Outcome<T>> } {
  const toast = useContext(ToastContext);
  const [busy, setBusy] = useState(false);
  const run = async <T,>(action: () => Promise<T>, done: (value: T) => string): Promise<Outcome<T>> => {
    setBusy(true);
    try {
      const value = await action();
      toast(done(value), false);
      return { ok: true, value };
    } catch (err) {
      toast(explain(err), true);
      return { ok: false, error: ConnectError.from(err) };
    } finally {
      setBusy(false);
    }
  };
  return { busy, run };
}

/**
 * A destructive action behind a dialog that names what it does (`question`); focus returns to the
 * button. `onConfirm` runs with the dialog open and busy.
 */
export function ConfirmButton({ label, question, onConfirm }: { label: string; question: string; onConfirm: () => Promise<unknown> }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  return (
    <>
      <button class="secondary" onClick={() => dialog.current?.showModal()}>
        {label}
      </button>
      <dialog ref={dialog} aria-label={label}>
        <article>
          <p>{question}</p>
          <footer>
            <button class="secondary" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button
              aria-busy={busy}
              disabled={busy}
              onClick={async () => {
                setBusy(true);
                await onConfirm();
                setBusy(false);
                dialog.current?.close();
              }}
            >
              {label}
            </button>
          </footer>
        </article>
      </dialog>
    </>
  );
}

/** A secret just issued (a daemon token, the admin token), shown this once: nothing keeps it, and no later answer holds it. */
export function ShownOnce({ title, secret, onClose }: { title: string; secret: string; onClose: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <article aria-labelledby="shown-once-heading" class="shown-once">
      <h2 id="shown-once-heading">{title}</h2>
      <p>Copy it now: it is shown only this once.</p>
      <label>
        Token
        <input readOnly value={secret} onFocus={(e) => e.currentTarget.select()} />
      </label>
      <div role="group">
        <button onClick={() => void navigator.clipboard.writeText(secret).then(() => setCopied(true))}>{copied ? 'Copied' : 'Copy'}</button>
        <button class="secondary" onClick={onClose}>
          Done
        </button>
      </div>
    </article>
  );
}

/** A load's error or its progress; nothing once it has its data. */
export function LoadState({ error, loading, what }: { error: string | undefined; loading: boolean; what: string }) {
  if (error) return <p role="alert">{error}</p>;
  return loading ? <p aria-busy="true">Loading {what}…</p> : null;
}

/** A wide table's frame, a region named `label`: it scrolls sideways on a narrow screen, and takes focus so the keyboard can scroll it too. */
export const Scrolls = ({ label, children }: { label: string; children: ComponentChildren }) => (
  <div class="overflow-auto" tabIndex={0} role="region" aria-label={label}>
    {children}
  </div>
);
