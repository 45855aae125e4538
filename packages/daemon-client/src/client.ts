import { makeGenericClientConstructor, type ChannelOptions, type ChannelCredentials } from '@grpc/grpc-js';
import { channelCredentials, type ClientTlsSettings } from '@titanbot/service-kit/tls';
import { DaemonServiceClient, DaemonServiceService } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { decodeDownloadExportResponse } from './decoding.js';

/**
 * The generated DaemonService stub with one change: DownloadExport chunks are decoded without
 * copying their data (decoding.ts). Same methods and types as DaemonServiceClient.
 */
export const DaemonClient = makeGenericClientConstructor(
  { ...DaemonServiceService, downloadExport: { ...DaemonServiceService.downloadExport, responseDeserialize: decodeDownloadExportResponse } },
  'titanbot.daemon.v1.DaemonService',
) as unknown as new (address: string, creds: ChannelCredentials, options?: Partial<ChannelOptions>) => DaemonServiceClient;

/**
 * A DaemonService stub for `server` (`host:port`): TLS when `tls` is given (the server verified
 * against `tls.caFile`, else the system's trust store), plaintext HTTP/2 otherwise.
 * The flow-control window is 16 MiB because the 64 KiB default caps one download near 330 MB/s;
 * messages up to 4 MiB are accepted (export chunks stay far below); keepalive pings every 30 s let
 * a long WatchVersion notice a dead connection. Reconnection attempts are at most 1 s apart
 * (grpc-js's default grows to 120 s), so a client is back soon after its replica. Connects
 * lazily: nothing fails until the first call.
 */
export function createDaemonClient(server: string, tls?: ClientTlsSettings): DaemonServiceClient {
  return new DaemonClient(server, channelCredentials(tls), {
    'grpc-node.flow_control_window': 16 * 1024 * 1024,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 1_000,
  });
}
