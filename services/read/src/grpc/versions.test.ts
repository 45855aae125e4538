import { WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { describe, expect, it } from 'vitest';
import { watchVersionEncoder } from './versions.js';

describe('watchVersionEncoder', () => {
  it('encodes each message as the generated encoder does, once for repeated messages', () => {
    const encode = watchVersionEncoder();
    const a = encode({ version: 'v1', revision: 7 });
    expect(a.equals(Buffer.from(WatchVersionResponse.encode({ version: 'v1', revision: 7 }).finish()))).toBe(true);
    expect(encode({ version: 'v1', revision: 7 })).toBe(a);
    const b = encode({ version: 'v2', revision: 7 });
    expect(WatchVersionResponse.decode(b)).toEqual({ version: 'v2', revision: 7 });
    // The same version reported at another revision is another message.
    expect(WatchVersionResponse.decode(encode({ version: 'v2', revision: 9 }))).toEqual({ version: 'v2', revision: 9 });
  });
});
