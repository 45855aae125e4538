import { createHash } from 'node:crypto';
import type { ServiceError } from '@grpc/grpc-js';
import {
  CheckVersionRequest,
  DownloadExportRequest,
  type DaemonServiceClient,
  type DownloadExportResponse,
  type ExportHeader,
} from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import Database from 'better-sqlite3';
import { withKey } from '@titanbot/write/test-support/harness';
import { unaryCall } from '@titanbot/service-kit/grpc-client';

/** CheckVersion as a promise: the version and whether it changed. */
export function checkVersion(client: DaemonServiceClient, token: string, logicalId: number | undefined, knownVersion = ''): Promise<{ version: string; changed: boolean }> {
  // The revision is observability, not part of what tests compare: replicas may report different ones.
  return unaryCall(client, client.checkVersion, CheckVersionRequest.fromPartial({ logicalId, knownVersion }), withKey(token)).then(({ version, changed }) => ({ version, changed }));
}

export interface Download {
  header: ExportHeader;
  bytes: Buffer;
  /** Offsets of the chunks, in arrival order. */
  chunkOffsets: number[];
}

/**
 * DownloadExport collected in memory. `stopAfterChunks` cancels the call after that many chunks
 * (a cut download); the bytes so far are returned.
 */
export function download(
  client: DaemonServiceClient,
  token: string,
  request: { logicalId?: number | undefined; version?: string; offset?: number; heldVersion?: string; heldSha256?: string; acceptPublicUrl?: boolean },
  stopAfterChunks?: number,
): Promise<Download> {
  return new Promise((resolve, reject) => {
    const call = client.downloadExport(DownloadExportRequest.fromPartial(request), withKey(token));
    let header: ExportHeader | undefined;
    const chunks: Buffer[] = [];
    const chunkOffsets: number[] = [];
    const finish = (): void => resolve({ header: header!, bytes: Buffer.concat(chunks), chunkOffsets });
    call.on('data', (m: DownloadExportResponse) => {
      if (m.kind?.$case === 'header') header = m.kind.value;
      if (m.kind?.$case === 'chunk') {
        chunks.push(m.kind.value.data);
        chunkOffsets.push(m.kind.value.offset);
        if (stopAfterChunks !== undefined && chunks.length === stopAfterChunks) {
          call.cancel();
          finish();
        }
      }
    });
    call.on('error', (err: ServiceError) => {
      if (stopAfterChunks !== undefined && chunks.length >= stopAfterChunks) return;
      reject(err);
    });
    call.on('end', finish);
  });
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Opens downloaded bytes as a SQLite database (read-only, in memory). */
export function openExport(bytes: Buffer): Database.Database {
  return new Database(bytes, { readonly: true });
}
