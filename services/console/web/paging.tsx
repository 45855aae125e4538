import type { ComponentChildren } from 'preact';
import { useLocation } from 'preact-iso';

/**
 * Navigation by the URL's query, which is a list page's whole state (shareable): returns a
 * function that moves to `path` with `changes` applied to the current query. A change starts at
 * the first page unless it names `page_token`; empty values are left out.
 */
export function useQueryNavigation(path: string): (changes: Record<string, string>) => void {
  const { query, route } = useLocation();
  return (changes) => {
    const next = new URLSearchParams({ ...query, page_token: '', ...changes });
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    route(`${path}${next.size ? `?${next}` : ''}`);
  };
}

/** First and next page buttons for a list paged on the server (AIP-158 page tokens). */
export function Pager({ pageToken, nextPageToken, go }: { pageToken: string | undefined; nextPageToken: string | undefined; go: (changes: Record<string, string>) => void }) {
  return (
    <nav aria-label="Pages" class="pager">
      {pageToken && (
        <button class="secondary" onClick={() => go({})}>
          First page
        </button>
      )}
      {nextPageToken && <button onClick={() => go({ page_token: nextPageToken })}>Next page</button>}
    </nav>
  );
}

/**
 * A list page's filter form: on submit, its `fields` (trimmed, and through `encode` where it names
 * the field) become the URL's query through `go`.
 */
export function FilterForm({ fields, go, encode = {}, children }: { fields: readonly string[]; go: (changes: Record<string, string>) => void; encode?: Record<string, (value: string) => string>; children: ComponentChildren }) {
  return (
    <form
      class="filters"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        const form = new FormData(e.currentTarget);
        go(Object.fromEntries(fields.map((f) => [f, (encode[f] ?? String)(String(form.get(f) ?? '').trim())])));
      }}
    >
      {children}
      <button type="submit">Filter</button>
    </form>
  );
}
