import { invalid } from './errors.js';

/** An ed25519 key pair in OpenSSH text form. */
export interface SshKeyPair {
  /** One line: `ssh-ed25519 AAAA... titanbot<physical_id>`. */
  publicKey: string;
  /** OpenSSH private key file text. */
  privateKey: string;
}

export const MAX_PORT = 65535;

/** The comment every device key carries (docs/domain.md). */
export const sshComment = (physicalId: number): string => `titanbot${physicalId}`;

/**
 * A device's SSH access: a key pair and the unique server port tunnelled to it. Part of the
 * device aggregate: created with the device in the same transaction, deleted with it.
 */
export class Ssh {
  readonly deviceUuid!: string;
  readonly publicKey!: string;
  readonly privateKey!: string;
  readonly serverDeviceInternalPort!: number;
  readonly version!: number;

  /** Throws DomainError('invalid') naming `field` for a port outside 1..65535. */
  static create(deviceUuid: string, keys: SshKeyPair, port: number, field: string): Ssh {
    checkPort(port, field);
    return Object.assign(new Ssh(), { deviceUuid, ...keys, serverDeviceInternalPort: port, version: 1 });
  }

  /** Replaces the key pair, and the port when given (its old port becomes free). */
  rotate(keys: SshKeyPair, port: number | undefined): void {
    if (port !== undefined) checkPort(port, 'port');
    Object.assign(this, { ...keys, serverDeviceInternalPort: port ?? this.serverDeviceInternalPort });
  }
}

function checkPort(port: number, field: string): void {
  if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) {
    throw invalid(field, `must be a port in 1..${MAX_PORT}`);
  }
}
