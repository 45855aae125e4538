import ssh2 from 'ssh2';

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
