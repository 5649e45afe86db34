/**
 * Fetches and caches the JSON Web Key Sets that RequestAuthentication rules name by jwksUri (or by issuer,
 * through OpenID discovery), so that generated jwt_authn filters carry their keys inline and proxies never
 * fetch keys themselves (istiod's jwksResolver).
 *
 * Lookups are synchronous, because generators are pure and synchronous: the first lookup of a URI starts
 * its fetch and answers with a JWKS that verifies no token; when the keys arrive, `onChange` asks the
 * control plane to push again. Keys are refreshed every `refreshMs` (istiod's 20 minutes); a failed
 * refresh keeps the last good keys, and a URI that never answered is retried every `retryMs`. Failing
 * closed is Istio's behaviour: a request carrying a token is refused while the keys are unknown, a request
 * without one still passes (RequestAuthentication alone never requires a token).
 */
import { createLogger } from '../../core/logger.ts';

const log = createLogger('jwks');

/**
 * A JWKS holding one public key whose private half was discarded when it was made: no token verifies
 * against it, yet it is a well-formed key set that every proxy accepts.
 */
export const FAIL_CLOSED_JWKS = JSON.stringify({
  keys: [
    {
      kty: 'EC',
      crv: 'P-256',
      x: 'NvXI0BbnVt20xg0o4kbvLxBTzpDu5qwgQd9ZadsCOBk',
      y: 'NwxI54c-D9ueNwqQnsnlpdKUluWmCiDrqHMBOK7hHDo',
      kid: 'weft-fail-closed',
      alg: 'ES256',
      use: 'sig',
    },
  ],
});

export interface JwksResolverOptions {
  /** Called after the keys of some URI changed (first fetch included). */
  onChange?: () => void;
  /** How often known URIs are fetched again. Default 20 minutes. */
  refreshMs?: number;
  /** How soon a URI without any good keys yet is tried again. Default 5 seconds. */
  retryMs?: number;
  /** Per fetch. Default 5 seconds. */
  timeoutMs?: number;
}

interface Entry {
  /** Canonical JSON of the last good keys; undefined until one fetch succeeded. */
  jwks: string | undefined;
  inFlight: boolean;
  retry: NodeJS.Timeout | undefined;
}

/** The text, re-serialized, when it is a JWKS with at least one key object; else undefined. */
function canonicalJwks(text: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    const keys = (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || keys.length === 0) return undefined;
    if (!keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))) return undefined;
    return JSON.stringify({ keys });
  } catch {
    return undefined;
  }
}

export class JwksResolver {
  private readonly onChange: () => void;
  private readonly retryMs: number;
  private readonly timeoutMs: number;
  /** By jwksUri, or by `issuer:<issuer>` for keys found through OpenID discovery. */
  private readonly entries = new Map<string, Entry>();
  private readonly refresh: NodeJS.Timeout;
  private closed = false;
  private changes = 0;

  constructor(options: JwksResolverOptions = {}) {
    this.onChange = options.onChange ?? (() => undefined);
    this.retryMs = options.retryMs ?? 5_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.refresh = setInterval(() => this.refreshAll(), options.refreshMs ?? 20 * 60_000);
    this.refresh.unref();
  }

  /** Counts key changes: part of any cache key for output built from lookups. */
  get version(): number {
    return this.changes;
  }

  /** The keys at `uri`, or FAIL_CLOSED_JWKS until they have been fetched once. */
  lookup(uri: string): string {
    return this.entry(uri).jwks ?? FAIL_CLOSED_JWKS;
  }

  /** The keys of an issuer, found at the jwks_uri of `<issuer>/.well-known/openid-configuration`. */
  lookupIssuer(issuer: string): string {
    return this.entry(`issuer:${issuer}`).jwks ?? FAIL_CLOSED_JWKS;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.refresh);
    for (const e of this.entries.values()) clearTimeout(e.retry);
  }

  private entry(key: string): Entry {
    let e = this.entries.get(key);
    if (e === undefined) {
      this.entries.set(key, (e = { jwks: undefined, inFlight: false, retry: undefined }));
      this.fetchInto(key, e);
    }
    return e;
  }

  private refreshAll(): void {
    for (const [key, e] of this.entries) this.fetchInto(key, e);
  }

  private fetchInto(key: string, e: Entry): void {
    if (this.closed || e.inFlight) return;
    e.inFlight = true;
    clearTimeout(e.retry);
    e.retry = undefined;
    void this.fetchKeys(key).then(
      (jwks) => {
        e.inFlight = false;
        if (this.closed) return;
        if (jwks === e.jwks) return;
        e.jwks = jwks;
        this.changes++;
        log.info('JWKS updated', { source: key });
        this.onChange();
      },
      (err: unknown) => {
        e.inFlight = false;
        if (this.closed) return;
        log.warn('JWKS fetch failed; keeping the last good keys', {
          source: key,
          error: (err as Error).message,
          haveKeys: e.jwks !== undefined,
        });
        if (e.jwks === undefined) {
          e.retry = setTimeout(() => this.fetchInto(key, e), this.retryMs);
          e.retry.unref();
        }
      },
    );
  }

  private async fetchKeys(key: string): Promise<string> {
    const uri = key.startsWith('issuer:') ? await this.discover(key.slice('issuer:'.length)) : key;
    const text = await this.get(uri);
    const jwks = canonicalJwks(text);
    if (jwks === undefined) throw new Error(`${uri} did not answer with a JSON Web Key Set`);
    return jwks;
  }

  /** OpenID Connect Discovery 1.0 §4: the configuration document names the issuer's jwks_uri. */
  private async discover(issuer: string): Promise<string> {
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let doc: unknown;
    try {
      doc = JSON.parse(await this.get(url));
    } catch (err) {
      throw new Error(`OpenID discovery at ${url}: ${(err as Error).message}`, { cause: err });
    }
    const jwksUri = (doc as { jwks_uri?: unknown } | null)?.jwks_uri;
    if (typeof jwksUri !== 'string' || jwksUri === '') throw new Error(`${url} names no jwks_uri`);
    return jwksUri;
  }

  private async get(url: string): Promise<string> {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(this.timeoutMs),
      headers: { accept: 'application/json' },
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    return body;
  }
}
