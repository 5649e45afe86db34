/** Test helpers: signing keys made on the spot and tokens signed with them (never used outside tests). */
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWTPayload } from 'jose';

export interface TestSigner {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The public JWKS, as a JSON string (what local_jwks.inline_string and jwksUri serve). */
  readonly jwks: string;
  sign(claims: JWTPayload, opts?: { expiresInSec?: number; notBeforeSec?: number }): Promise<string>;
}

export async function testSigner(kid = 'k1'): Promise<TestSigner> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return {
    kid,
    privateKey,
    jwks: JSON.stringify({ keys: [jwk] }),
    sign: (claims, opts = {}) => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).setIssuedAt(now);
      jwt.setExpirationTime(now + (opts.expiresInSec ?? 3600));
      if (opts.notBeforeSec !== undefined) jwt.setNotBefore(now + opts.notBeforeSec);
      return jwt.sign(privateKey);
    },
  };
}

/** A token whose signature no longer matches its payload (one claim changed after signing). */
export function tampered(token: string, claims: JWTPayload): string {
  const [h, p, s] = token.split('.');
  const payload = { ...(JSON.parse(Buffer.from(p, 'base64url').toString()) as JWTPayload), ...claims };
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}
