import type { ServerWritableStream } from '@grpc/grpc-js';
import { DaemonServiceService as m, type DaemonServiceServer, type DownloadExportRequest, type DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DomainError, invalid } from '@titanbot/service-kit/errors';
import { isSha256Hex } from '@titanbot/service-kit/file-digest';
import { sendFlowControlled } from '@titanbot/service-kit/stream';
import { trace } from '@opentelemetry/api';
import { linkTo, tracingEnabled } from '@titanbot/service-kit/tracing';
import type { ExportDelta, ExportFile, HeldFile } from '../export/cache.js';
import { exportHeader, exportMessages, payloadPath, versionGone } from '../export/chunks.js';
import type { ExportUrlSigner } from '../access/export-urls.js';
import { serverStream } from './pipeline.js';
import type { DownloadKind, ReadRuntime } from '../access/runtime.js';
import { scopeFor } from './scope.js';

/**
 * DownloadExport: the scope's daemon database from `offset` (bytes of what is sent), pinned to
 * `version` when one is given (a resumed download) or the current one. When the request names the
 * file the daemon holds (held_version, held_sha256) and this replica keeps it, the chunks carry a
 * Fossil delta from it instead, if that is at most DELTA_MAX_RATIO of the file; a daemon several
 * versions behind gets one delta to the current version. Errors: INVALID_ARGUMENT (offset < 0;
 * held_version and held_sha256 not both set or both empty; held_sha256 not 64 lower-case hex
 * digits), PERMISSION_DENIED SCOPE_NOT_OF_DEVICE, FAILED_PRECONDITION EXPORT_VERSION_GONE (the
 * pinned version, or the base of a resumed delta, is no longer kept), OUT_OF_RANGE
 * OFFSET_OUT_OF_RANGE (offset past the end), RESOURCE_EXHAUSTED DOWNLOADS_BUSY (admission
 * control: the streams running hold DOWNLOADS_MEMORY_BUDGET, or DOWNLOADS_MAX_CONCURRENT of them
 * run; RetryInfo says when to come back, paced by RetryPacer and spread by jitter). Each chunk
 * waits until HTTP/2 has taken the one before (sendFlowControlled), so a stream holds one chunk,
 * not the file. With accept_public_url on a replica that has EXPORT_PUBLIC_BASE_URL (and has
 * loaded a data key to sign with), the answer is the header alone with a signed URL of the same
 * payload, outside admission control: it holds no chunks.
 */
export function downloadHandlers(rt: ReadRuntime): Pick<DaemonServiceServer, 'downloadExport'> {
  return {
    downloadExport: serverStream(rt, m.downloadExport, async (call, ctx) => {
      const { offset, heldVersion, heldSha256 } = call.request;
      if (offset < 0) throw invalid('offset', 'must be >= 0');
      if ((heldVersion === '') !== (heldSha256 === '')) throw invalid(heldVersion === '' ? 'held_version' : 'held_sha256', 'set held_version and held_sha256 together, or neither');
      if (heldSha256 !== '' && !isSha256Hex(heldSha256)) throw invalid('held_sha256', 'must be 64 lower-case hex digits');
      const scope = scopeFor(rt, call.request.logicalId, ctx.principal);
      rt.statuses.contact(ctx.principal.token.deviceUuid, scope);
      // What is sent is known before admission: a 94-byte delta must not wait behind whole files.
      const payload = await payloadFor(rt, call.request, scope, ctx.principal.token.deviceUuid);
      if (call.request.acceptPublicUrl && rt.exportUrls?.ready) return offerUrl(rt, call, payload, rt.exportUrls);
      const reserved = reservation(payloadBytes(payload) - offset, rt.settings.exportChunkBytes);
      const { downloads } = rt.gauges;
      // One download always runs, however small the budget: a budget below one stream must not stop them all.
      const overBudget = downloads.active > 0 && downloads.reservedBytes + reserved > rt.settings.downloadsMemoryBudget;
      if (downloads.active >= rt.settings.maxConcurrentDownloads || overBudget) {
        rt.counters.downloadsBusy++;
        const why = downloads.active >= rt.settings.maxConcurrentDownloads ? `${downloads.active} downloads are running here (DOWNLOADS_MAX_CONCURRENT)` : `the downloads running here hold ${downloads.reservedBytes} of ${rt.settings.downloadsMemoryBudget} bytes (DOWNLOADS_MEMORY_BUDGET)`;
        throw new DomainError('DOWNLOADS_BUSY', why, [], rt.downloadPacer.refused());
      }
      downloads.active++;
      downloads.reservedBytes += reserved;
      try {
        await download(rt, call, payload);
      } finally {
        downloads.active--;
        downloads.reservedBytes -= reserved;
      }
    }),
  };
}

/**
 * Bytes an admitted download of `remainingBytes` holds at most (for DOWNLOADS_MEMORY_BUDGET): the
 * chunks it may have in flight, DOWNLOAD_CHUNKS_HELD at most, and the stream's own STREAM_BYTES.
 * Measured: `npm run bench -- herd`, 330–390 KiB a whole-file stream with 128 KiB chunks;
 * `delta-fanout`, 10,000 delta streams of 0.1 to 46 KB at once raised the replica's peak RSS to
 * 447–629 MiB, 29–47 KiB a stream beside what it sends.
 */
const reservation = (remainingBytes: number, chunkBytes: number): number => Math.min(remainingBytes, DOWNLOAD_CHUNKS_HELD * chunkBytes) + STREAM_BYTES;
const DOWNLOAD_CHUNKS_HELD = 3;
const STREAM_BYTES = 48 * 1024;

/** What a download of `scope` carries: the file, and the delta from the held file when one is chosen, and which it is. */
interface Payload {
  file: ExportFile;
  delta: ExportDelta | undefined;
  kind: DownloadKind;
}

const payloadBytes = ({ file, delta }: Payload): number => (delta ?? file).sizeBytes;

/**
 * The payload the request asks for, after checking that its offset falls within it. Errors:
 * EXPORT_VERSION_GONE, OFFSET_OUT_OF_RANGE.
 */
async function payloadFor(rt: ReadRuntime, request: DownloadExportRequest, scope: number, device: string): Promise<Payload> {
  const { offset, version, heldVersion, heldSha256 } = request;
  // Traced: the download links to the change that made the scope's current version.
  if (tracingEnabled()) trace.getActiveSpan()?.addLinks(linkTo(rt.model.versions.changeTraceparent(scope)));
  const file = version === '' || version === rt.model.versions.contentFor(scope, device).version ? await rt.exports.latest(scope, device) : await rt.exports.pinned(scope, version);
  if (!file) throw versionGone(version);
  const { delta, kind } = heldVersion === '' ? { delta: undefined, kind: 'full' as const } : await chooseDelta(rt, file, { version: heldVersion, sha256: heldSha256 });
  // A resumed delta continues only as that delta: its bytes so far are no prefix of anything else.
  if (heldVersion !== '' && offset > 0 && !delta) throw versionGone(version);
  const sizeBytes = (delta ?? file).sizeBytes;
  if (offset > sizeBytes) {
    throw new DomainError('OFFSET_OUT_OF_RANGE', `offset ${offset} is past the end (${sizeBytes} bytes)`, [{ field: 'offset', description: `at most ${sizeBytes}` }]);
  }
  return { file, delta, kind };
}

/** One admitted download: its file, or a delta from the held one, from `offset`; counted by kind (export_downloads_total). */
async function download(rt: ReadRuntime, call: ServerWritableStream<DownloadExportRequest, DownloadExportResponse>, payload: Payload): Promise<void> {
  const { file, delta, kind } = payload;
  rt.counters.downloads[kind]++;
  rt.downloadPacer.admitted(payloadBytes(payload) - call.request.offset);
  for await (const message of exportMessages(file, delta, call.request.offset, rt.settings.exportChunkBytes, rt.hotExports)) {
    if (!(await sendFlowControlled(call, message))) return;
    if (message.kind?.$case === 'chunk') rt.downloadPacer.sent(message.kind.value.data.length);
  }
}

/** Answers with the header alone, carrying a signed URL of the payload; counted by kind. */
async function offerUrl(rt: ReadRuntime, call: ServerWritableStream<DownloadExportRequest, DownloadExportResponse>, payload: Payload, urls: ExportUrlSigner): Promise<void> {
  const { file, delta, kind } = payload;
  rt.counters.downloads[kind]++;
  const signed = urls.sign(payloadPath(file, delta));
  const header = { ...exportHeader(file, delta), publicUrl: signed.url, publicUrlExpireTime: new Date(signed.expireTimeMs) };
  await sendFlowControlled(call, { kind: { $case: 'header', value: header } });
}

/**
 * The delta from `held` to `file` when this replica can make one small enough, and what the
 * download then is. A delta that cannot be made (the disk refuses it) is logged and the file sent instead.
 */
async function chooseDelta(rt: ReadRuntime, file: ExportFile, held: HeldFile): Promise<{ delta: ExportDelta | undefined; kind: DownloadKind }> {
  const delta = await rt.exports.delta(file, held).catch((err: unknown) => {
    rt.logger.warn({ err, scope: file.scope, from: held.version, to: file.version }, 'export delta not built; sending the file');
    return undefined;
  });
  const kind = !delta ? (held.sha256 === file.sha256 ? 'full' : 'full_base_missing') : delta.sizeBytes > rt.settings.deltaMaxRatio * file.sizeBytes ? 'full_delta_larger' : 'delta';
  return { delta: kind === 'delta' ? delta : undefined, kind };
}
