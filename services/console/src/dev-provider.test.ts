import { describe, expect, it } from 'vitest';
import { StartupError } from '@titanbot/service-kit/process';
import { startDevProvider } from './dev-provider.js';

describe('the development OpenID Provider', () => {
  it('refuses to listen anywhere but loopback, and over anything but http', async () => {
    for (const issuer of ['http://0.0.0.0:0', 'http://192.0.2.1:0', 'https://127.0.0.1:0']) {
      await expect(startDevProvider({ issuer, audience: 'urn:x', rolesClaim: 'roles', people: {}, clients: [] })).rejects.toBeInstanceOf(StartupError);
    }
  });

  it('publishes its discovery document with PKCE, refresh tokens, revocation and end_session', async () => {
    const provider = await startDevProvider({ issuer: 'http://127.0.0.1:0', audience: 'urn:x', rolesClaim: 'roles', people: {}, clients: [] });
    try {
      const discovery = (await (await fetch(`${provider.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      expect(discovery).toMatchObject({ issuer: provider.issuer, code_challenge_methods_supported: ['S256'] });
      expect(discovery.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
      expect(discovery.end_session_endpoint).toBe(`${provider.issuer}/session/end`);
      expect(discovery.revocation_endpoint).toBe(`${provider.issuer}/token/revocation`);
    } finally {
      await provider.stop();
    }
  });
});
