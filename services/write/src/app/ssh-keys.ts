import ssh2 from 'ssh2';
import type { Logger } from 'pino';
import type { Em } from '../db/orm.js';

/**
 * A new ed25519 key pair in OpenSSH text form (ssh2), its public line ending in `comment`.
 * ssh2 1.17.0 drops the leading zero byte of a public key that begins with one
 * (mscdex/ssh2#1390, #1513, open): about 1 pair in 256 comes out with a 31-byte public key that
 * neither ssh2 nor OpenSSH (`ssh-keygen -y`) can read, so a device given it could never be
 * reached. Such a pair is made again; ssh2's own parser is the check, and it refuses exactly those.
 */
export function generateSshKeyPair(comment: string): { public: string; private: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error) && !(ssh2.utils.parseKey(pair.public) instanceof Error)) return pair;
  }
}

/** Most device uuids one warning names; the count says how many there are. */
const NAMED_AT_MOST = 100;

/**
 * Logs (warn, once) the devices whose stored ed25519 public key is not the 51-byte blob
 * (type string, 32-byte key) every SSH client expects: pairs ssh2 made short before
 * generateSshKeyPair checked them. PostgreSQL finds them in one scan of the public keys (the
 * private ones are sealed), so nothing is parsed here. RotateDeviceSsh (`titanctl devices
 * rotate-ssh`) gives each a good pair.
 */
export async function warnOfUnreadableKeyPairs(em: Em, logger: Logger): Promise<void> {
  const rows: { device_uuid: string }[] = await em.execute(
    `select device_uuid from sshes
      where public_key like 'ssh-ed25519 %' and length(decode(split_part(public_key, ' ', 2), 'base64')) <> 51
      order by device_uuid`,
  );
  const unreadable = rows.map((r) => r.device_uuid);
  if (unreadable.length > 0) {
    logger.warn(
      { count: unreadable.length, devices: unreadable.slice(0, NAMED_AT_MOST) },
      'devices whose SSH key pair no SSH client can read (made by ssh2 1.17.0 with a 31-byte public key): rotate each with titanctl devices rotate-ssh',
    );
  }
}
