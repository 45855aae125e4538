import { randomBytes } from 'node:crypto';
import { DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { describe, expect, it } from 'vitest';
import { decodeDownloadExportResponse } from './decoding.js';

const encode = (m: DownloadExportResponse): Buffer => Buffer.from(DownloadExportResponse.encode(m).finish());

describe('decodeDownloadExportResponse', () => {
  it('decodes what the generated decoder decodes: chunks of any offset and size, and headers', () => {
    const cases: DownloadExportResponse[] = [
      { kind: { $case: 'chunk', value: { offset: 0, data: randomBytes(131072) } } },
      { kind: { $case: 'chunk', value: { offset: 2 ** 40 + 3, data: randomBytes(5) } } },
      { kind: { $case: 'chunk', value: { offset: 300, data: Buffer.alloc(0) } } },
      { kind: { $case: 'header', value: { version: 'e.1', sizeBytes: 9, sha256: 'ff', schemaVersion: 1, fileName: 'titanbotd.sqlite', mediaType: 'application/vnd.sqlite3', revision: 0, encoding: 1, payloadSizeBytes: 4, baseSha256: 'aa', publicUrl: 'https://cdn.example/deltas/aa/ff?expires=1&key=k&signature=s', publicUrlExpireTime: new Date(1_000) } } },
    ];
    for (const m of cases) expect(decodeDownloadExportResponse(encode(m))).toEqual(DownloadExportResponse.decode(encode(m)));
  });

  it('falls back to the generated decoder for fields it does not know', () => {
    const chunk = encode({ kind: { $case: 'chunk', value: { offset: 7, data: Buffer.from('abc') } } });
    // Append an unknown field 3 (varint 1) inside the chunk and fix both lengths.
    const inner = Buffer.concat([chunk.subarray(2), Buffer.from([0x18, 0x01])]);
    const withUnknown = Buffer.concat([Buffer.from([0x12, inner.length]), inner]);
    expect(decodeDownloadExportResponse(withUnknown)).toEqual(DownloadExportResponse.decode(withUnknown));
  });
});
