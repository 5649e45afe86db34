/**
 * Bootstrap credentials of local mode: a token per workload, saying which identity it may ask the CA for.
 * (Kubernetes service-account tokens come with the Kubernetes issue.)
 *
 * A token is `weft1.<payload>.<mac>`: the payload (namespace, service account, expiry) authenticated by an
 * HMAC-SHA256 under a key kept 0600 in the control plane's state dir. Whoever starts a workload (`weft up`,
 * or an operator with `weft ca token`) mints its token from that key; the control plane keeps no list, so
 * tokens survive its restarts. Revocation (until expiry) is per process.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { WorkloadIdentity } from './authority.ts';

export const TOKEN_KEY_FILE = 'token-key';
const PREFIX = 'weft1';
/** Long enough for a workload's life; the certificates it buys are what is short-lived. */
export const DEFAULT_TOKEN_TTL_MS = 365 * 24 * 3600 * 1000;

interface Claims {
  readonly ns: string;
  readonly sa: string;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
}

export class WorkloadTokens {
  readonly #key: Buffer;
  readonly #revoked = new Set<string>();
  readonly #now: () => number;

  constructor(key: Buffer = randomBytes(32), now: () => number = Date.now) {
    if (key.length < 32) throw new Error('a token key needs at least 32 bytes');
    this.#key = key;
    this.#now = now;
  }

  /** The state dir's key, created (0600) on first use. */
  static open(stateDir: string): WorkloadTokens {
    const file = path.join(stateDir, TOKEN_KEY_FILE);
    let key: Buffer;
    try {
      key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
      fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      key = randomBytes(32);
      fs.writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    }
    if (key.length < 32) throw new Error(`${file}: not a token key (expected 32 random bytes, base64)`);
    return new WorkloadTokens(key);
  }

  issue(identity: WorkloadIdentity, ttlMs = DEFAULT_TOKEN_TTL_MS): string {
    const claims: Claims = {
      ns: identity.namespace,
      sa: identity.serviceAccount,
      exp: Math.floor((this.#now() + ttlMs) / 1000),
    };
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${PREFIX}.${payload}.${this.#mac(payload)}`;
  }

  revoke(token: string): void {
    this.#revoked.add(token);
  }

  /** The identity a token grants, or undefined when it is forged, expired, revoked or malformed. */
  identityOf(token: string): WorkloadIdentity | undefined {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== PREFIX || this.#revoked.has(token)) return undefined;
    const [, payload, mac] = parts;
    const expected = Buffer.from(this.#mac(payload), 'base64url');
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: Partial<Claims>;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Partial<Claims>;
    } catch {
      return undefined;
    }
    if (typeof claims.ns !== 'string' || typeof claims.sa !== 'string' || typeof claims.exp !== 'number')
      return undefined;
    if (claims.exp * 1000 <= this.#now()) return undefined;
    return { namespace: claims.ns, serviceAccount: claims.sa };
  }

  #mac(payload: string): string {
    return createHmac('sha256', this.#key).update(`${PREFIX}.${payload}`).digest('base64url');
  }
}
