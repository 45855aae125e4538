import { CheckVersionResponse, WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { describe, expect, it } from 'vitest';
import { checkVersionEncoder, watchVersionEncoder } from './versions.js';

describe('watchVersionEncoder', () => {
  it('encodes each message as the generated encoder does, once for repeated messages', () => {
    const encode = watchVersionEncoder();
    const a = encode({ version: 'v1', revision: 7 });
    expect(a.equals(Buffer.from(WatchVersionResponse.encode({ version: 'v1', revision: 7 }).finish()))).toBe(true);
    expect(encode({ version: 'v1', revision: 7 })).toBe(a);
    const b = encode({ version: 'v2', revision: 7 });
    expect(WatchVersionResponse.decode(b)).toEqual({ version: 'v2', revision: 7 });
    // Interleaved (a rollout's stable and candidate versions), each is still encoded once.
    expect(encode({ version: 'v1', revision: 7 })).toBe(a);
    // The same version reported at another revision is another message.
    expect(WatchVersionResponse.decode(encode({ version: 'v2', revision: 9 }))).toEqual({ version: 'v2', revision: 9 });
  });
});

describe('checkVersionEncoder', () => {
  it('keeps a changed and an unchanged answer per version, each as the generated encoder makes it', () => {
    const encode = checkVersionEncoder();
    const changed = encode({ version: 'v1', changed: true, revision: 3 });
    const unchanged = encode({ version: 'v1', changed: false, revision: 3 });
    expect(CheckVersionResponse.decode(changed)).toEqual({ version: 'v1', changed: true, revision: 3 });
    expect(unchanged.equals(Buffer.from(CheckVersionResponse.encode({ version: 'v1', changed: false, revision: 3 }).finish()))).toBe(true);
    expect(encode({ version: 'v1', changed: true, revision: 3 })).toBe(changed);
    expect(encode({ version: 'v1', changed: false, revision: 3 })).toBe(unchanged);
  });

  it('holds at most 4,096 versions, then starts over', () => {
    const encode = checkVersionEncoder();
    const first = encode({ version: 'v0', changed: false, revision: 1 });
    for (let i = 1; i < 4096; i++) encode({ version: `v${i}`, changed: false, revision: 1 });
    expect(encode({ version: 'v0', changed: false, revision: 1 })).toBe(first);
    encode({ version: 'v4096', changed: false, revision: 1 });
    const again = encode({ version: 'v0', changed: false, revision: 1 });
    expect(again).not.toBe(first);
    expect(again.equals(first)).toBe(true);
  });
});
