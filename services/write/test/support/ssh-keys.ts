/** The write service's key pair generator, for fixtures that stand for keys made elsewhere (the original system's). */
export { generateSshKeyPair } from '../../src/app/ssh-keys.js';
