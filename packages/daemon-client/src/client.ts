import { credentials } from '@grpc/grpc-js';
import { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';

/**
 * A DaemonService stub for `server` (`host:port`) over plaintext HTTP/2 (insecure credentials).
 * The flow-control window is 16 MiB because the 64 KiB default caps one download near 330 MB/s;
 * messages up to 4 MiB are accepted (export chunks stay far below); keepalive pings every 30 s let
 * a long WatchVersion notice a dead connection. Connects lazily: nothing fails until the first call.
 */
export function createDaemonClient(server: string): DaemonServiceClient {
  return new DaemonServiceClient(server, credentials.createInsecure(), {
    'grpc-node.flow_control_window': 16 * 1024 * 1024,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
}
