import { DaemonServiceService, DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';

/**
 * Wire encoding of DownloadExportResponse for the server, byte-for-byte what the generated
 * encoder writes, but a chunk costs one copy of its data instead of about four: the generated
 * writer grows and joins buffers for `bytes` fields (the download benchmark's profile put a third
 * of the replica's CPU there). Headers, rare, go through the generated encoder.
 *
 * DownloadExportResponse { oneof kind { ExportHeader header = 1; ExportChunk chunk = 2; } }
 * ExportChunk { int64 offset = 1; bytes data = 2; }
 */
export function encodeDownloadExportResponse(message: DownloadExportResponse): Buffer {
  const encoded = preEncoded.get(message);
  if (encoded) return encoded;
  if (message.kind?.$case !== 'chunk') return Buffer.from(DownloadExportResponse.encode(message).finish());
  const { offset, data } = message.kind.value;
  // Inner message: [0x08 offset] (omitted when 0, as proto3 does) [0x12 len data] (omitted when empty).
  const offsetBytes = offset === 0 ? 0 : 1 + varintSize(offset);
  const dataBytes = data.length === 0 ? 0 : 1 + varintSize(data.length) + data.length;
  const inner = offsetBytes + dataBytes;
  const prefix = 1 + varintSize(inner) + offsetBytes + (data.length === 0 ? 0 : 1 + varintSize(data.length));
  const out = Buffer.allocUnsafe(prefix + data.length);
  let at = 0;
  out[at++] = 0x12; // field 2 (chunk), length-delimited
  at = writeVarint(out, at, inner);
  if (offset !== 0) {
    out[at++] = 0x08; // field 1 (offset), varint
    at = writeVarint(out, at, offset);
  }
  if (data.length !== 0) {
    out[at++] = 0x12; // field 2 (data), length-delimited
    at = writeVarint(out, at, data.length);
    data.copy(out, at);
  }
  return out;
}

/** Chunk messages encoded once (preEncodeChunk), by message object. */
const preEncoded = new WeakMap<DownloadExportResponse, Buffer>();

/**
 * A chunk message whose encoding is computed now and reused every time it is sent (for export
 * files held in memory and sent to many daemons). Its `data` is a view into the encoding, so the
 * message and its bytes share one buffer.
 */
export function preEncodeChunk(offset: number, data: Buffer): DownloadExportResponse {
  const encoded = encodeDownloadExportResponse({ kind: { $case: 'chunk', value: { offset, data } } });
  const message: DownloadExportResponse = { kind: { $case: 'chunk', value: { offset, data: encoded.subarray(encoded.length - data.length) } } };
  preEncoded.set(message, encoded);
  return message;
}

/** Bytes of a non-negative integer (below 2^53) as a protobuf varint. */
function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

function writeVarint(out: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    out[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  out[at++] = value;
  return at;
}

/** The DownloadExport method definition with the one-copy encoder, for the server to register. */
export const downloadExportMethod = { ...DaemonServiceService.downloadExport, responseSerialize: encodeDownloadExportResponse };
