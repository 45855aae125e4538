import { DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * Decodes a DownloadExportResponse as the generated decoder does, but a chunk's data is a view of
 * the received message (grpc-js hands over a fresh buffer per message), not a copy: the
 * generated decoder copies every chunk, which the download benchmark measured as the client's
 * largest cost. Anything but a plain chunk (a header, unknown fields) takes the generated path.
 */
export function decodeDownloadExportResponse(bytes: Buffer): DownloadExportResponse {
  if (bytes[0] !== 0x12) return DownloadExportResponse.decode(bytes); // not field 2 (chunk)
  const [innerLength, start] = readVarint(bytes, 1);
  const end = start + innerLength;
  if (end !== bytes.length) return DownloadExportResponse.decode(bytes);
  let offset = 0;
  let data: Buffer = EMPTY;
  for (let at = start; at < end; ) {
    const tag = bytes[at++];
    if (tag === 0x08) {
      [offset, at] = readVarint(bytes, at); // field 1 (offset), varint
    } else if (tag === 0x12) {
      const [length, from] = readVarint(bytes, at); // field 2 (data), length-delimited
      data = bytes.subarray(from, from + length);
      at = from + length;
    } else {
      return DownloadExportResponse.decode(bytes);
    }
  }
  return { kind: { $case: 'chunk', value: { offset, data } } };
}

/** [value, next position] of the varint at `at`; values up to 2^53. */
function readVarint(bytes: Buffer, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[at++];
    if (byte === undefined) throw new RangeError('truncated varint');
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, at];
    scale *= 0x80;
  }
}
