/**
 * TLS for every listener and client. Certificates come from PEM files that grpc-js's
 * FileWatcherCertificateProvider re-reads every `refreshMs`, so a certificate renewed on disk
 * (cert-manager, a cron job) is served without a restart. A listener without certificates is
 * plaintext, which is allowed on loopback only unless ALLOW_PLAINTEXT says otherwise.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import { isIP } from 'node:net';
import { credentials, experimental, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { StartupError } from './process.js';

/** A listener's TLS settings (each service's TLS_* variables). */
export interface ServerTlsSettings {
  /** PEM certificate chain and key; both or neither. */
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /**
   * With it, clients may present a certificate (mutual TLS), which `clientCertificateCheck` then
   * verifies against this CA for the calls that require one (the write service's feed API).
   */
  clientCaFile?: string | undefined;
  /** Plaintext on an address other than loopback (a TLS-terminating proxy in front). */
  allowPlaintext: boolean;
  /** How often the files are re-read (ms). */
  refreshMs: number;
}

/** Whether `address` (host:port) listens on loopback only. */
export function isLoopback(address: string): boolean {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/**
 * The credentials a listener on `address` serves with: TLS from the files (mutual when a client
 * CA is given), or plaintext. Throws StartupError for a certificate without its key (or the other
 * way round), and for plaintext on a non-loopback address without `allowPlaintext`; warns when
 * that is allowed.
 */
export function serverCredentials(address: string, tls: ServerTlsSettings, logger: Logger): ServerCredentials {
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) throw new StartupError('invalid configuration: TLS_CERT_FILE and TLS_KEY_FILE go together');
  if (!tls.certFile || !tls.keyFile) {
    if (tls.clientCaFile) throw new StartupError('invalid configuration: TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE');
    if (!isLoopback(address)) {
      if (!tls.allowPlaintext) {
        throw new StartupError(`refusing to listen in plaintext on ${address}: set TLS_CERT_FILE and TLS_KEY_FILE, or ALLOW_PLAINTEXT=true behind a TLS-terminating proxy`);
      }
      logger.warn({ address }, 'ALLOW_PLAINTEXT: listening without TLS on a non-loopback address');
    }
    return ServerCredentials.createInsecure();
  }
  // Read once now, so a missing or unreadable file stops the start instead of failing handshakes.
  for (const file of [tls.certFile, tls.keyFile, tls.clientCaFile]) if (file) readPem(file);
  const identity = new experimental.FileWatcherCertificateProvider({ certificateFile: tls.certFile, privateKeyFile: tls.keyFile, refreshIntervalMs: tls.refreshMs });
  const clientCa = tls.clientCaFile ? new experimental.FileWatcherCertificateProvider({ caCertificateFile: tls.clientCaFile, refreshIntervalMs: tls.refreshMs }) : null;
  // Asked for, not required, at the handshake: operators' tools reach the same listener without one.
  return experimental.createCertificateProviderServerCredentials(identity, clientCa, false);
}

/**
 * Whether a caller's TLS peer certificate was issued by the CA in `caFile` (signature and issuer
 * checked with node:crypto, and valid at `now`); the CA file is re-read every `refreshMs`.
 */
export function clientCertificateCheck(caFile: string, refreshMs: number): (peer: PeerCertificate | undefined, now: Date) => boolean {
  let ca = new X509Certificate(readPem(caFile));
  let loadedAt = Date.now();
  return (peer, now) => {
    if (!peer?.raw) return false;
    if (Date.now() - loadedAt >= refreshMs) {
      ca = new X509Certificate(readFileSync(caFile));
      loadedAt = Date.now();
    }
    const cert = new X509Certificate(peer.raw);
    const t = now.getTime();
    return cert.checkIssued(ca) && cert.verify(ca.publicKey) && t >= Date.parse(cert.validFrom) && t <= Date.parse(cert.validTo);
  };
}

/** A client's TLS settings: the CA to trust (else the system's) and, for mutual TLS, its own identity. */
export interface ClientTlsSettings {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** How often the files are re-read (ms); 0 = read once. */
  refreshMs?: number;
}

/**
 * Channel credentials: plaintext when `tls` is undefined; else TLS verifying the server against
 * `caFile` (or the system's trust store), presenting `certFile`/`keyFile` when given (re-read
 * every `refreshMs` when set). Throws StartupError for a file that cannot be read.
 */
export function channelCredentials(tls: ClientTlsSettings | undefined): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  dropIpServerNameWarning();
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) throw new StartupError('a client certificate and its key go together');
  if (tls.refreshMs && tls.caFile) {
    const ca = new experimental.FileWatcherCertificateProvider({ caCertificateFile: tls.caFile, refreshIntervalMs: tls.refreshMs });
    const identity = tls.certFile ? new experimental.FileWatcherCertificateProvider({ certificateFile: tls.certFile, privateKeyFile: tls.keyFile, refreshIntervalMs: tls.refreshMs }) : null;
    for (const file of [tls.caFile, tls.certFile, tls.keyFile]) if (file) readPem(file);
    return experimental.createCertificateProviderChannelCredentials(ca, identity);
  }
  return credentials.createSsl(
    tls.caFile ? readPem(tls.caFile) : null,
    tls.keyFile ? readPem(tls.keyFile) : null,
    tls.certFile ? readPem(tls.certFile) : null,
  );
}

let ipServerNameWarningDropped = false;

/**
 * grpc-js gives TLS the target's host as its ServerName even when it is an IP address
 * (`--ca-file` against 127.0.0.1), and Node then prints DEP0123 once per process on stderr, in
 * the middle of a CLI's output or a service's JSON log. An IP address has no server name to send
 * (RFC 6066): nothing is lost, and Node already ignores it. Only that warning is dropped.
 */
/**
 * The same client TLS settings as Node's `tls.connect` options, for clients that are not grpc-js
 * (the console's Connect transport): the files read once. Throws StartupError for a file that
 * cannot be read, or a certificate without its key.
 */
export function clientTlsOptions(tls: ClientTlsSettings): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  dropIpServerNameWarning();
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) throw new StartupError('a client certificate and its key go together');
  return {
    ...(tls.caFile ? { ca: readPem(tls.caFile) } : {}),
    ...(tls.certFile ? { cert: readPem(tls.certFile), key: readPem(tls.keyFile!) } : {}),
  };
}

function dropIpServerNameWarning(): void {
  if (ipServerNameWarningDropped) return;
  ipServerNameWarningDropped = true;
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    (emit as (...args: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
}

/** The bytes of a PEM file. Throws StartupError naming the file when it cannot be read. */
export function readPem(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new StartupError(`cannot read ${file}: ${(err as Error).message}`);
  }
}
