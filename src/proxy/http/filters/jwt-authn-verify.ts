/**
 * One provider's token verification: signature against its JWKS, issuer, exp/nbf with clock skew (and exp
 * presence under require_expiration). Audiences are checked by the caller, because
 * provider_and_audiences can replace them per requirement while the verified token stays the same.
 *
 * Verified tokens are remembered until they expire (bounded, least recently used out first), so a client
 * that sends the same token on every request pays for the signature check once. Failures are not
 * remembered: a bad token is cheap to refuse again and must never evict good ones.
 */
import type * as Jose from 'jose';
import type { createLocalJWKSet, JWTPayload, JSONWebKeySet } from 'jose';

/**
 * jose is loaded on the first verification, not with the filter registry: it brings WebCrypto into the
 * process (~14 MB of RSS measured), which every sidecar would pay whether or not it checks tokens.
 */
let jose: Promise<typeof Jose> | undefined;
const loadJose = (): Promise<typeof Jose> => (jose ??= import('jose'));
import type { JwtProviderConfig } from './jwt-authn-config.ts';

/** Envoy's jwt_authn status names for the ways a token fails. */
export type JwtFailure =
  | 'missing'
  | 'bad_format'
  | 'verification_fails'
  | 'expired'
  | 'not_yet_valid'
  | 'audience_not_allowed'
  | 'unknown_issuer'
  | 'kid_alg_mismatch'
  | 'no_expiration';

/** Envoy's texts for each status, used as the 401 body. */
export const FAILURE_TEXT: Readonly<Record<JwtFailure, string>> = {
  missing: 'Jwt is missing',
  bad_format: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  verification_fails: 'Jwt verification fails',
  expired: 'Jwt is expired',
  not_yet_valid: 'Jwt not yet valid',
  audience_not_allowed: 'Audiences in Jwt are not allowed',
  unknown_issuer: 'Jwt issuer is not configured',
  kid_alg_mismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  no_expiration: 'Jwt verification fails',
};

export type VerifyOutcome =
  { readonly ok: true; readonly payload: JWTPayload } | { readonly ok: false; readonly failure: JwtFailure };

export type Clock = () => number;

interface CacheEntry {
  readonly outcome: VerifyOutcome;
  /** When the token stops being valid (exp plus skew), in ms; Infinity without exp. */
  readonly untilMs: number;
}

function failureOf(err: unknown): JwtFailure {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return 'not_yet_valid';
      if (e.claim === 'iss') return 'unknown_issuer';
      if (e.claim === 'exp') return 'no_expiration';
      return 'verification_fails';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'kid_alg_mismatch';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'bad_format';
    default:
      return 'verification_fails';
  }
}

/** Three non-empty dot-separated parts: anything else is refused without decoding. */
export function looksLikeJwt(token: string): boolean {
  const a = token.indexOf('.');
  const b = a < 0 ? -1 : token.indexOf('.', a + 1);
  return a > 0 && b > a + 1 && b < token.length - 1 && token.indexOf('.', b + 1) < 0;
}

export class ProviderVerifier {
  readonly config: JwtProviderConfig;
  private keys: ReturnType<typeof createLocalJWKSet> | undefined;
  private readonly clock: Clock;
  private readonly cache = new Map<string, CacheEntry>();

  constructor(config: JwtProviderConfig, clock: Clock) {
    this.config = config;
    this.clock = clock;
  }

  /** The remembered outcome for a token still within its validity, or undefined. */
  cached(token: string): VerifyOutcome | undefined {
    const entry = this.cache.get(token);
    if (entry === undefined) return undefined;
    this.cache.delete(token);
    if (this.clock() >= entry.untilMs) return undefined;
    // Re-inserted to mark it most recently used.
    this.cache.set(token, entry);
    return entry.outcome;
  }

  async verify(token: string): Promise<VerifyOutcome> {
    if (!looksLikeJwt(token)) return { ok: false, failure: 'bad_format' };
    const cfg = this.config;
    let outcome: VerifyOutcome;
    try {
      const { createLocalJWKSet, jwtVerify } = await loadJose();
      this.keys ??= createLocalJWKSet(cfg.jwks as JSONWebKeySet);
      const { payload } = await jwtVerify(token, this.keys, {
        issuer: cfg.issuer === '' ? undefined : cfg.issuer,
        clockTolerance: cfg.clockSkewSeconds,
        currentDate: new Date(this.clock()),
        requiredClaims: cfg.requireExpiration ? ['exp'] : undefined,
      });
      outcome = { ok: true, payload };
    } catch (err) {
      return { ok: false, failure: failureOf(err) };
    }
    const exp = outcome.payload.exp;
    const untilMs = typeof exp === 'number' ? (exp + cfg.clockSkewSeconds) * 1000 : Infinity;
    if (this.cache.size >= cfg.cacheSize) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(token, { outcome, untilMs });
    return outcome;
  }

  /** Whether the token's audience is one of `audiences` (empty: any). */
  static audienceAllowed(payload: JWTPayload, audiences: readonly string[]): boolean {
    if (audiences.length === 0) return true;
    const aud = payload.aud;
    if (typeof aud === 'string') return audiences.includes(aud);
    return Array.isArray(aud) && aud.some((a) => audiences.includes(a));
  }
}
