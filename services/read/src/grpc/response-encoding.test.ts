import { randomBytes } from 'node:crypto';
import { DownloadExportResponse, WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { describe, expect, it } from 'vitest';
import { encodeDownloadExportResponse, watchVersionEncoder } from './response-encoding.js';

const generated = (m: DownloadExportResponse): Buffer => Buffer.from(DownloadExportResponse.encode(m).finish());

describe('encodeDownloadExportResponse', () => {
  it('writes exactly the bytes of the generated encoder, for chunks and headers', () => {
    const cases: DownloadExportResponse[] = [
      { kind: { $case: 'chunk', value: { offset: 0, data: randomBytes(131072) } } },
      { kind: { $case: 'chunk', value: { offset: 131072, data: randomBytes(1000) } } },
      { kind: { $case: 'chunk', value: { offset: 2 ** 40 + 7, data: randomBytes(127) } } },
      { kind: { $case: 'chunk', value: { offset: 300, data: Buffer.alloc(0) } } },
      { kind: { $case: 'chunk', value: { offset: 0, data: Buffer.alloc(0) } } },
      { kind: { $case: 'header', value: { version: 'e.1', sizeBytes: 5, sha256: 'ab', schemaVersion: 1, fileName: 'titanbotd.sqlite', mediaType: 'application/vnd.sqlite3' } } },
    ];
    for (const m of cases) {
      const ours = encodeDownloadExportResponse(m);
      expect(ours.equals(generated(m))).toBe(true);
      expect(DownloadExportResponse.decode(ours)).toEqual(DownloadExportResponse.decode(generated(m)));
    }
  });
});

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
