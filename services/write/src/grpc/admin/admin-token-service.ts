import { AdminTokenServiceService, type AdminTokenServiceServer } from '@titanbot/contracts/titanbot/admin/v1/admin_token_service';
import { DomainError } from '../../domain/errors.js';
import { CasConflictError } from '@titanbot/service-kit/secrets/secret-store';
import type { RotatingCredential } from '../../secrets/rotating-credential.js';
import { unary, type Runtime } from '../handler.js';

/** titanbot.admin.v1.AdminTokenService handlers over the admin credential. */
export function adminTokenService(rt: Runtime, admin: RotatingCredential): AdminTokenServiceServer {
  return {
    rotateAdminToken: unary(rt, AdminTokenServiceService.rotateAdminToken, { write: false }, async () => {
      try {
        const rotated = await admin.rotate();
        return { token: rotated.value, version: rotated.version, previousExpireTime: rotated.previousValidUntil };
      } catch (err) {
        if (err instanceof CasConflictError) {
          throw new DomainError('ROTATION_RACE', 'another replica rotated the admin token first; read it again');
        }
        throw err;
      }
    }),
  };
}
