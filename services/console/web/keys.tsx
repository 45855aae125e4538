import { useState } from 'preact/hooks';
import { api } from './api';
import { Time } from './format';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { useMay } from './session';
import { ConfirmButton, ShownOnce, useAction } from './ui';

/**
 * Keys (`/keys`, the admin role's): rotating the data key that seals secrets at rest, and the
 * admin token (shown once; the previous one keeps working until its expiry, shown).
 */
export function KeysPage() {
  const may = useMay();
  const { run } = useAction();
  const [adminToken, setAdminToken] = useState<{ token: string; previousExpires: Timestamp | undefined }>();
  return (
    <>
      <h1>Keys</h1>
      <section aria-labelledby="data-key-heading">
        <h2 id="data-key-heading">Data key</h2>
        <p>Secrets at rest (Google passwords, SSH private keys) are sealed with the current data key. Rotating makes a new one current and re-seals every secret with it.</p>
        {may('DataKeyService/RotateDataKey') ? (
          <ConfirmButton
            label="Rotate the data key"
            question="Rotate the data key? A new key becomes current and every sealed secret is re-sealed with it; old keys stay in the secret store, so values not yet re-sealed keep opening."
            onConfirm={() => run(() => api.dataKeys.rotateDataKey({}), (r) => `Data key ${r.keyId} is current; ${r.resealedCount} secrets re-sealed`)}
          />
        ) : (
          <p>Only the admin role may rotate it.</p>
        )}
      </section>
      <section aria-labelledby="admin-token-heading">
        <h2 id="admin-token-heading">Admin token</h2>
        <p>The token tools such as titanctl use without signing in. Rotating issues a new one; the previous one keeps working for its grace period.</p>
        {adminToken && (
          <>
            <ShownOnce title="New admin token" secret={adminToken.token} onClose={() => setAdminToken(undefined)} />
            <p>
              The previous admin token stops working at <Time value={adminToken.previousExpires} />.
            </p>
          </>
        )}
        {may('AdminTokenService/RotateAdminToken') ? (
          <ConfirmButton
            label="Rotate the admin token"
            question="Rotate the admin token? A new one is shown once here; tools using the previous one must be given the new one before its grace period ends."
            onConfirm={async () => {
              const done = await run(() => api.adminTokens.rotateAdminToken({}), (r) => `Admin token version ${r.version} issued: copy it now`);
              if (done.ok) setAdminToken({ token: done.value.token, previousExpires: done.value.previousExpireTime });
            }}
          />
        ) : (
          <p>Only the admin role may rotate it.</p>
        )}
      </section>
    </>
  );
}
