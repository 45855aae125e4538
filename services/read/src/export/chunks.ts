import { open } from 'node:fs/promises';
import { ExportEncoding, type DownloadExportResponse, type ExportHeader } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DomainError } from '@titanbot/service-kit/errors';
import { EXPORT_FILE_NAME, EXPORT_MEDIA_TYPE, EXPORT_SCHEMA_VERSION } from '@titanbot/service-kit/daemon-database';
import type { ExportDelta, ExportFile } from './cache.js';
import type { HotExports } from './hot-exports.js';

/** FAILED_PRECONDITION EXPORT_VERSION_GONE: `version` is no longer kept here. */
export const versionGone = (version: string): DomainError =>
  new DomainError('EXPORT_VERSION_GONE', `version ${version} is no longer kept; download the latest (version empty, offset 0)`);

/** DownloadExport's header for `file`, or for `delta` to it (no public URL). */
export function exportHeader(file: ExportFile, delta: ExportDelta | undefined): ExportHeader {
  return {
    version: file.version,
    sizeBytes: file.sizeBytes,
    sha256: file.sha256,
    schemaVersion: EXPORT_SCHEMA_VERSION,
    fileName: EXPORT_FILE_NAME,
    mediaType: EXPORT_MEDIA_TYPE,
    revision: file.revision,
    encoding: delta ? ExportEncoding.EXPORT_ENCODING_FOSSIL_DELTA : ExportEncoding.EXPORT_ENCODING_UNSPECIFIED,
    payloadSizeBytes: (delta ?? file).sizeBytes,
    baseSha256: delta?.base.sha256 ?? '',
    publicUrl: '',
    publicUrlExpireTime: undefined,
  };
}

/**
 * The content-addressed path of what DownloadExport would stream, as the replica's HTTP origin
 * serves it: `/exports/<sha256>`, or `/deltas/<base sha256>/<sha256>` for a delta.
 */
export function payloadPath(file: ExportFile, delta: ExportDelta | undefined): string {
  return delta ? `/deltas/${delta.base.sha256}/${file.sha256}` : `/exports/${file.sha256}`;
}

/**
 * The DownloadExport messages for `file`, or for `delta` (which turns the daemon's held file into
 * `file`) when given, from byte `offset` of what is sent: the header, then chunks of `chunkBytes`.
 * A payload HotExports holds is yielded as its pre-encoded chunk messages (no read, no copy, no
 * encoding per download) when `offset` falls on a chunk boundary, as it does for every fresh
 * download; otherwise it is read one chunk at a time. The payload is read (or opened) before the
 * header is yielded, so one evicted since the lookup is EXPORT_VERSION_GONE, not a torn stream.
 * The consumer pulls one message at a time, so memory does not grow with slow readers.
 */
export async function* exportMessages(file: ExportFile, delta: ExportDelta | undefined, offset: number, chunkBytes: number, hot: HotExports): AsyncGenerator<DownloadExportResponse> {
  const payload = delta ?? file;
  const header: DownloadExportResponse = { kind: { $case: 'header', value: exportHeader(file, delta) } };
  const gone = (err: NodeJS.ErrnoException): never => {
    throw err.code === 'ENOENT' ? versionGone(file.version) : err;
  };
  const held = offset % chunkBytes === 0 ? hot.chunks(payload) : undefined;
  if (held) {
    const chunks = await held.catch(gone);
    yield header;
    for (let i = offset / chunkBytes; i < chunks.length; i++) yield chunks[i]!;
    return;
  }
  const handle = await open(payload.path, 'r').catch(gone);
  try {
    yield header;
    for (let position = offset; position < payload.sizeBytes; ) {
      const data = Buffer.allocUnsafe(Math.min(chunkBytes, payload.sizeBytes - position));
      const { bytesRead } = await handle.read(data, 0, data.length, position);
      if (bytesRead !== data.length) throw new Error(`export ${payload.path} is shorter than its ${payload.sizeBytes} bytes`);
      yield { kind: { $case: 'chunk', value: { offset: position, data } } };
      position += bytesRead;
    }
  } finally {
    await handle.close();
  }
}
