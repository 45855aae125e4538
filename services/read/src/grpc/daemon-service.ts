import { open } from 'node:fs/promises';
import { Metadata, status, type Deadline, type ServerWritableStream, type ServiceError } from '@grpc/grpc-js';
import {
  ActivityType,
  DaemonServiceService,
  Gender,
  type Account,
  type DaemonServiceServer,
  type DownloadExportRequest,
  type DownloadExportResponse,
  type Token,
} from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import { nextEmpireTime } from '@titanbot/service-kit/empire-time';
import { UnknownDataKeyError, type DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import { SecretStoreUnavailableError } from '@titanbot/service-kit/secrets/secret-store';
import { ApiError } from '@titanbot/service-kit/status';
import { send } from '@titanbot/service-kit/stream';
import { EXPORT_FILE_NAME, EXPORT_MEDIA_TYPE, EXPORT_SCHEMA_VERSION } from '../export/build.js';
import type { ExportFile } from '../export/cache.js';
import type { HotExports } from '../export/hot-exports.js';
import type { TokenRecord } from '../store/read-model.js';
import { GLOBAL_SCOPE } from '../store/versions.js';
import { ForwardedError, serverStream, unary, type DaemonPrincipal, type ReadRuntime } from './handler.js';

type Row = Record<string, unknown>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** setTimeout's longest delay (ms); longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** How long RotateToken waits for the new token to arrive on this replica's feed (ms). */
const TOKEN_ARRIVAL_WAIT_MS = 2_000;

/**
 * titanbot.daemon.v1.DaemonService: every call limited to the token's own device. Account
 * passwords and SSH private keys stay sealed in the read model; `keyring` opens them only for
 * the owning daemon's GetSsh and ListAccounts.
 */
export function daemonService(rt: ReadRuntime, keyring: DataKeyring): DaemonServiceServer {
  const m = DaemonServiceService;
  const db = rt.model.reader;
  const q = {
    device: db.prepare('select * from devices where uuid = ?'),
    deviceLogicalIds: db
      .prepare('select a.logical_id from device_accounts da join accounts a on a.uuid = da.account_uuid where da.device_uuid = ? order by a.logical_id')
      .pluck(),
    logicalIdOf: db.prepare('select logical_id from accounts where uuid = ?').pluck(),
    ssh: db.prepare('select * from sshes where device_uuid = ?'),
    accounts: db.prepare('select a.* from device_accounts da join accounts a on a.uuid = da.account_uuid where da.device_uuid = ? order by a.logical_id'),
    legion: db.prepare('select * from legions where uuid = ?'),
    legionOfDevice: db.prepare(
      'select 1 from device_accounts da join accounts a on a.uuid = da.account_uuid where da.device_uuid = ? and a.legion_uuid = ? limit 1',
    ),
    empireDates: db.prepare('select date from empire_dates').pluck(),
  };

  /** The scope a request names, if the device may read it. Errors: PERMISSION_DENIED. */
  const scopeFor = (logicalId: number | undefined, principal: DaemonPrincipal): number => {
    if (logicalId === undefined) return GLOBAL_SCOPE;
    if (!rt.model.deviceHasAccount(principal.token.deviceUuid, logicalId)) {
      throw new ApiError(status.PERMISSION_DENIED, 'SCOPE_NOT_OF_DEVICE', `logical_id ${logicalId} is not an account of this device`);
    }
    return logicalId;
  };

  /** Opens a sealed value, learning keys rotated meanwhile. Errors: UNAVAILABLE DATA_KEY_UNAVAILABLE. */
  const unseal = async (sealed: unknown, context: string): Promise<string> => {
    try {
      return keyring.open(String(sealed), context);
    } catch (err) {
      if (!(err instanceof UnknownDataKeyError)) throw err;
    }
    try {
      await keyring.refresh();
      return keyring.open(String(sealed), context);
    } catch (err) {
      if (err instanceof UnknownDataKeyError || err instanceof SecretStoreUnavailableError) {
        throw new ApiError(status.UNAVAILABLE, 'DATA_KEY_UNAVAILABLE', 'the data key for this secret is not available yet; retry');
      }
      throw err;
    }
  };

  /**
   * Rejects with UNAUTHENTICATED once the caller's token stops being usable (revoked, expired,
   * superseded past its grace, deleted), so a long-lived stream ends with it.
   */
  const tokenEnd = ({ token, hash }: DaemonPrincipal): { promise: Promise<never>; cancel: () => void } => {
    let cancel = (): void => undefined;
    const promise = new Promise<never>((_resolve, reject) => {
      let expiry: NodeJS.Timeout | undefined;
      const arm = (expireTime: number): void => {
        clearTimeout(expiry);
        expiry = setTimeout(check, Math.min(expireTime - rt.clock() + 1, MAX_TIMER_MS));
      };
      const check = (): void => {
        const current = rt.model.tokenByHash(hash);
        if (current && !current.revoked && rt.clock() < current.expireTime) return arm(current.expireTime);
        cancel();
        reject(new ApiError(status.UNAUTHENTICATED, 'UNAUTHENTICATED', 'the daemon token is no longer valid'));
      };
      const off = rt.model.onTokenChange(token.uuid, check);
      cancel = () => {
        clearTimeout(expiry);
        off();
      };
      arm(token.expireTime);
    });
    // The race in WatchVersion may settle first; an unobserved rejection must not crash the process.
    promise.catch(() => undefined);
    return { promise, cancel };
  };

  /**
   * Forwards a call to the write service, by the daemon's own deadline or FORWARD_TIMEOUT,
   * whichever comes first (an answer the daemon can no longer receive must not change state).
   * Unreachable or too slow: UNAVAILABLE; otherwise the write service's own status.
   */
  const forward = <Res,>(daemonDeadline: Deadline, call: (deadline: Date, done: (err: ServiceError | null, res: Res) => void) => void): Promise<Res> =>
    new Promise((resolve, reject) =>
      call(new Date(Math.min(Date.now() + rt.settings.forwardTimeoutMs, deadlineMs(daemonDeadline))), (err, res) => {
        if (!err) return resolve(res);
        if (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED) {
          return reject(new ApiError(status.UNAVAILABLE, 'WRITE_SERVICE_UNAVAILABLE', 'the write service is unreachable; retry'));
        }
        reject(new ForwardedError({ code: err.code, details: err.details, metadata: err.metadata }));
      }),
    );

  return {
    getDevice: unary(rt, m.getDevice, (_req, principal) => {
      const row = q.device.get(principal.token.deviceUuid) as Row | undefined;
      if (!row) throw new ApiError(status.NOT_FOUND, 'NOT_FOUND', 'device not found');
      const current = row['current_account_uuid'] ? (q.logicalIdOf.get(row['current_account_uuid']) as number | undefined) : undefined;
      return {
        uuid: String(row['uuid']),
        physicalId: Number(row['physical_id']),
        isActive: row['is_active'] === 1,
        isSsh: row['is_ssh'] === 1,
        isNeedToUpdate: row['is_need_to_update'] === 1,
        activityType: row['activity_type'] === 'ajagplay' ? ActivityType.ACTIVITY_TYPE_AJAGPLAY : ActivityType.ACTIVITY_TYPE_ROWGPLAY,
        isFullServerDetection: row['is_full_server_detection'] === 1,
        isAbleToClearCache: row['is_able_to_clear_cache'] === 1,
        goTimeLimitSeconds: Number(row['go_time_limit_seconds']),
        currentAccountLogicalId: current,
        accountLogicalIds: q.deviceLogicalIds.all(row['uuid']) as number[],
      };
    }),

    getSsh: unary(rt, m.getSsh, async (_req, principal) => {
      const row = q.ssh.get(principal.token.deviceUuid) as Row | undefined;
      if (!row) throw new ApiError(status.NOT_FOUND, 'NOT_FOUND', 'the device has no SSH key pair');
      return {
        publicKey: String(row['public_key']),
        privateKey: await unseal(row['private_key'], 'sshes.private_key'),
        serverDeviceInternalPort: Number(row['server_device_internal_port']),
        serverName: rt.settings.sshServerName,
        serverIp: rt.settings.sshServerIp,
        serverCommonPort: rt.settings.sshServerCommonPort,
      };
    }),

    listAccounts: unary(rt, m.listAccounts, async (_req, principal) => ({
      accounts: await Promise.all(
        (q.accounts.all(principal.token.deviceUuid) as Row[]).map(async (row) => toAccount(row, await unseal(row['google_password'], 'accounts.google_password'))),
      ),
    })),

    getLegion: unary(rt, m.getLegion, (req, principal) => {
      if (!UUID.test(req.uuid)) throw new ApiError(status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'uuid must be a UUID', [{ field: 'uuid', description: 'must be a UUID' }]);
      const row = q.legion.get(req.uuid.toLowerCase()) as Row | undefined;
      if (!row) throw new ApiError(status.NOT_FOUND, 'NOT_FOUND', 'legion not found');
      if (!q.legionOfDevice.get(principal.token.deviceUuid, row['uuid'])) {
        throw new ApiError(status.PERMISSION_DENIED, 'LEGION_NOT_OF_DEVICE', 'no account of this device is in that legion');
      }
      return {
        uuid: String(row['uuid']),
        title: String(row['title']),
        extTitle: row['ext_title'] === null ? undefined : String(row['ext_title']),
        payDayOfMonth: row['pay_day_of_month'] === null ? undefined : Number(row['pay_day_of_month']),
      };
    }),

    getNextEmpireDate: unary(rt, m.getNextEmpireDate, () => ({
      nextTime: nextEmpireTime(q.empireDates.all() as string[], new Date(rt.clock())) ?? undefined,
    })),

    getBackendPublicKey: unary(rt, m.getBackendPublicKey, () => ({ publicKey: rt.settings.backendPublicKey })),

    checkVersion: unary(
      rt,
      m.checkVersion,
      (req, principal) => {
        const version = rt.model.versions.version(scopeFor(req.logicalId, principal));
        return { version, changed: version !== req.knownVersion };
      },
      'debug',
    ),

    watchVersion: ((): DaemonServiceServer['watchVersion'] => {
      // What ends every open stream at shutdown: one listener on the process-wide signal rather
      // than one per stream (EventTarget removal is linear, so 10,000 streams closing would be quadratic).
      const stops = new Set<() => void>();
      const stopAll = (): void => {
        for (const stop of stops) stop();
      };
      rt.shutdown.addEventListener('abort', stopAll, { once: true });
      return serverStream(rt, m.watchVersion, async (call, principal) => {
        const scope = scopeFor(call.request.logicalId, principal);
        // Only the latest version matters: while the transport is full, newer ones replace older.
        let sent = call.request.knownVersion;
        let pending: string | undefined;
        let blocked = false;
        const push = (version: string): void => {
          if (blocked) {
            pending = version;
            return;
          }
          if (version === sent) return;
          sent = version;
          if (!call.write({ version })) {
            blocked = true;
            call.once('drain', () => {
              blocked = false;
              const next = pending;
              pending = undefined;
              if (next !== undefined) push(next);
            });
          }
        };
        const unlisten = rt.model.versions.listen(scope, push);
        const tokenEnded = tokenEnd(principal);
        rt.gauges.activeWatches++;
        // Until cancelled or shut down; the listeners go with the stream (once() would leave its
        // 'abort' listener on the process-wide signal after every stream that ends first).
        let stopWaiting = (): void => undefined;
        const stopped = new Promise<void>((resolve) => (stopWaiting = resolve));
        call.once('cancelled', stopWaiting);
        stops.add(stopWaiting);
        try {
          push(rt.model.versions.version(scope));
          // Headers now rather than with the first change, so a change costs each stream one message.
          if (sent === call.request.knownVersion && !call.cancelled) call.sendMetadata(new Metadata());
          if (!call.cancelled && !rt.shutdown.aborted) await Promise.race([stopped, tokenEnded.promise]);
        } finally {
          call.off('cancelled', stopWaiting);
          stops.delete(stopWaiting);
          tokenEnded.cancel();
          unlisten();
          rt.gauges.activeWatches--;
        }
      });
    })(),

    downloadExport: serverStream(rt, m.downloadExport, async (call, principal) => {
      const { offset, version } = call.request;
      if (offset < 0) throw new ApiError(status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'offset must be >= 0', [{ field: 'offset', description: 'must be >= 0' }]);
      const scope = scopeFor(call.request.logicalId, principal);
      const file = version === '' || version === rt.model.versions.version(scope) ? await rt.exports.latest(scope) : await rt.exports.pinned(scope, version);
      if (!file) throw versionGone(version);
      if (offset > file.sizeBytes) {
        throw new ApiError(status.OUT_OF_RANGE, 'OFFSET_OUT_OF_RANGE', `offset ${offset} is past the end (${file.sizeBytes} bytes)`, [
          { field: 'offset', description: `at most ${file.sizeBytes}` },
        ]);
      }
      rt.gauges.activeDownloads++;
      try {
        await streamFile(call, file, offset, rt.settings.exportChunkBytes, rt.hotExports);
      } finally {
        rt.gauges.activeDownloads--;
      }
    }),

    writeLogs: unary(rt, m.writeLogs, async (req, principal, daemonDeadline) => {
      const response = await forward<{ acceptedCount: number }>(daemonDeadline, (deadline, done) =>
        rt.feed.ingestLogs({ deviceUuid: principal.token.deviceUuid, lines: req.lines, requestId: req.requestId }, rt.readerMetadata(), { deadline }, done),
      );
      return { acceptedCount: response.acceptedCount };
    }),

    getToken: unary(rt, m.getToken, (_req, principal) => toToken(principal.token)),

    rotateToken: unary(rt, m.rotateToken, async (_req, principal, daemonDeadline) => {
      const rotated = await forward<{ token: string; uuid: string; deviceUuid: string; createTime?: Date | undefined; expireTime?: Date | undefined; previousExpireTime?: Date | undefined }>(
        daemonDeadline,
        (deadline, done) => rt.feed.rotateDaemonToken({ token: principal.plaintext }, rt.readerMetadata(), { deadline }, done),
      );
      // The daemon will use the new token at once: let it reach this replica first.
      if (!(await rt.model.waitForToken(rotated.uuid, TOKEN_ARRIVAL_WAIT_MS))) {
        rt.logger.warn({ token: rotated.uuid }, 'rotated token not yet on this replica\'s feed');
      }
      return {
        token: rotated.token,
        tokenInfo: {
          uuid: rotated.uuid,
          deviceUuid: rotated.deviceUuid,
          prefix: rotated.token.slice(0, SHOWN_PREFIX_CHARS),
          createTime: rotated.createTime,
          expireTime: rotated.expireTime,
        },
        previousExpireTime: rotated.previousExpireTime,
      };
    }),
  };
}

/** A grpc-js deadline (Date, ms since the epoch, or Infinity when the caller set none) in ms. */
const deadlineMs = (deadline: Deadline): number => (deadline instanceof Date ? deadline.getTime() : deadline);

const versionGone = (version: string): ApiError =>
  new ApiError(status.FAILED_PRECONDITION, 'EXPORT_VERSION_GONE', `version ${version} is no longer kept; download the latest (version empty, offset 0)`);

/**
 * Sends the header, then the file from `offset` in chunks of `chunkBytes`, waiting for `drain`
 * when the transport is full; stops when the call is cancelled. A file HotExports holds is sent as
 * its pre-encoded chunk messages (no read, no copy, no encoding per download) when `offset` falls
 * on a chunk boundary, as it does for every fresh download; otherwise it is read one chunk at a time.
 */
async function streamFile(
  call: ServerWritableStream<DownloadExportRequest, DownloadExportResponse>,
  file: ExportFile,
  offset: number,
  chunkBytes: number,
  hot: HotExports,
): Promise<void> {
  const header = {
    version: file.version,
    sizeBytes: file.sizeBytes,
    sha256: file.sha256,
    schemaVersion: EXPORT_SCHEMA_VERSION,
    fileName: EXPORT_FILE_NAME,
    mediaType: EXPORT_MEDIA_TYPE,
  };
  // Read (or opened) before the header: a file evicted since the lookup is a gone version, not a torn stream.
  const gone = (err: NodeJS.ErrnoException): never => {
    throw err.code === 'ENOENT' ? versionGone(file.version) : err;
  };
  const held = offset % chunkBytes === 0 ? hot.chunks(file) : undefined;
  if (held) {
    const chunks = await held.catch(gone);
    if (!(await send(call, { kind: { $case: 'header', value: header } }))) return;
    for (let i = offset / chunkBytes; i < chunks.length; i++) {
      if (!(await send(call, chunks[i]!))) return;
    }
    return;
  }
  const handle = await open(file.path, 'r').catch(gone);
  try {
    if (!(await send(call, { kind: { $case: 'header', value: header } }))) return;
    for (let position = offset; position < file.sizeBytes; ) {
      const data = Buffer.allocUnsafe(Math.min(chunkBytes, file.sizeBytes - position));
      const { bytesRead } = await handle.read(data, 0, data.length, position);
      if (bytesRead !== data.length) throw new Error(`export ${file.path} is shorter than its ${file.sizeBytes} bytes`);
      if (!(await send(call, { kind: { $case: 'chunk', value: { offset: position, data } } }))) return;
      position += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

function toAccount(row: Row, googlePassword: string): Account {
  return {
    uuid: String(row['uuid']),
    logicalId: Number(row['logical_id']),
    firstName: String(row['first_name']),
    lastName: String(row['last_name']),
    birthDate: new Date(`${String(row['birth_date'])}T00:00:00Z`),
    gender: row['gender'] === 'female' ? Gender.GENDER_FEMALE : Gender.GENDER_MALE,
    googleLogin: String(row['google_login']),
    googlePassword,
    isEmpireSleeping: row['is_empire_sleeping'] === 1,
    legionUuid: row['legion_uuid'] === null ? undefined : String(row['legion_uuid']),
  };
}

const toToken = (t: TokenRecord): Token => ({
  uuid: t.uuid,
  deviceUuid: t.deviceUuid,
  prefix: t.prefix,
  createTime: new Date(t.createTime),
  expireTime: new Date(t.expireTime),
});
