import { describe, expect, it } from 'vitest';
import { SessionStore, type SessionTokens } from './sessions.js';

const tokens: SessionTokens = { accessToken: 'at', accessExpiresAt: 0, refreshToken: 'rt', idToken: 'it' };
const operator = { subject: 'ada', name: 'Ada', roles: ['admin' as const] };

describe('SessionStore', () => {
  const make = (maxCount = 10) => {
    let now = 1_000_000;
    const store = new SessionStore({ maxAgeMs: 10_000, idleTimeoutMs: 3_000, maxCount }, () => now);
    return { store, advance: (ms: number) => (now += ms) };
  };

  it('finds a session by its cookie, and nothing by an altered, foreign or missing one', async () => {
    const { store } = make();
    const { session, cookie } = await store.create(operator, tokens);
    expect((await store.find(cookie))?.id).toBe(session.id);
    // The cookie carries the id encrypted, never in the clear.
    expect(cookie).not.toContain(session.id);
    const altered = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA');
    expect(await store.find(altered)).toBeUndefined();
    expect(await store.find((await make().store.create(operator, tokens)).cookie)).toBeUndefined();
    expect(await store.find(undefined)).toBeUndefined();
    expect(await store.find('not a jwe')).toBeUndefined();
  });

  it('ends a session after the idle timeout, each request moving it, and at the maximum age whatever happens', async () => {
    const { store, advance } = make();
    const { cookie } = await store.create(operator, tokens);
    for (let i = 0; i < 3; i++) {
      advance(2_999);
      expect(await store.find(cookie)).toBeDefined();
    }
    advance(1_002); // 9,999 ms after sign-in, 1,002 ms after the last request
    expect(await store.find(cookie)).toBeDefined();
    advance(1);
    expect(await store.find(cookie)).toBeUndefined();

    const idle = await store.create(operator, tokens);
    advance(3_000);
    expect(await store.find(idle.cookie)).toBeUndefined();
  });

  it('ends a session at sign-out, and the least recently used beyond the count', async () => {
    const { store } = make(2);
    const a = await store.create(operator, tokens);
    const b = await store.create(operator, tokens);
    store.end(b.session);
    expect(await store.find(b.cookie)).toBeUndefined();
    const c = await store.create(operator, tokens);
    await store.find(a.cookie);
    await store.create(operator, tokens);
    expect(await store.find(c.cookie)).toBeUndefined();
    expect(await store.find(a.cookie)).toBeDefined();
  });
});
