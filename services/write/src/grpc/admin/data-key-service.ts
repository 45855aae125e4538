import { DataKeyServiceService, type DataKeyServiceServer } from '@titanbot/contracts/titanbot/admin/v1/data_key_service';
import { CasConflictError } from '@titanbot/service-kit/secrets/secret-store';
import { resealSecrets } from '../../app/data-keys.js';
import { DomainError } from '../../domain/errors.js';
import { unary, type Runtime } from '../handler.js';

/** Rows re-sealed per transaction by RotateDataKey. */
const RESEAL_BATCH = 500;

/** titanbot.admin.v1.DataKeyService handlers. */
export function dataKeyService(rt: Runtime): DataKeyServiceServer {
  return {
    // Not one write transaction: re-sealing runs in its own short batches.
    rotateDataKey: unary(rt, DataKeyServiceService.rotateDataKey, { write: false }, async () => {
      let keyId: string;
      try {
        keyId = await rt.keyring.rotate();
      } catch (err) {
        if (err instanceof CasConflictError) {
          throw new DomainError('ROTATION_RACE', 'another replica rotated the data key first; retry to re-seal under it');
        }
        throw err;
      }
      return { keyId, resealedCount: await resealSecrets(rt.orm, rt.keyring, RESEAL_BATCH) };
    }),
  };
}
