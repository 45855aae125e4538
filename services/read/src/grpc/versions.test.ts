import { WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { describe, expect, it } from 'vitest';
import { watchVersionEncoder } from './versions.js';

describe('watchVersionEncoder', () => {
  it('encodes each version as the generated encoder does, once for repeated messages', () => {
    const encode = watchVersionEncoder();
    const a = encode({ version: 'e.1' });
    expect(a.equals(Buffer.from(WatchVersionResponse.encode({ version: 'e.1' }).finish()))).toBe(true);
    expect(encode({ version: 'e.1' })).toBe(a);
    const b = encode({ version: 'e.2' });
    expect(WatchVersionResponse.decode(b).version).toBe('e.2');
  });
});
