/**
 * The JWT authentication filter (`envoy.filters.http.jwt_authn`). The first rule whose match fits the
 * request names a requirement; the request's tokens are found at every provider's locations, each paired
 * with the provider whose issuer it claims (a token whose issuer no provider of its location accepts is
 * an "unknown issuer"), verified, and the requirement tree decides:
 * - provider_name: that provider's token must verify (none → missing);
 * - allow_missing: no token anywhere passes; a token that is present must verify;
 * - allow_missing_or_failed: always passes (valid tokens still yield their payload);
 * - requires_any / requires_all: one / every child passes.
 * A refused request gets 401 (gRPC: UNAUTHENTICATED) with WWW-Authenticate, as Envoy answers.
 *
 * On success each verified token's provider adds its side effects: the payload in dynamic metadata, the
 * payload and claims as request headers, and the token header removed unless `forward`. Weft also writes
 * the `istio_authn` metadata Istio's authn filter would (request principal, audiences, presenter, claims)
 * for the RBAC filter.
 *
 * Request headers are changed in place on stream.headers, which the router copies to the upstream request
 * (as the connection manager's own header policy does).
 */
import type { JWTPayload } from 'jose';
import type { OutgoingHeaders } from '../../upstream/codec.ts';
import { pathEnd } from '../../router/strings.ts';
import type { Counter, StatsStore } from '../../stats/store.ts';
import type { FilterStatus, HttpFilter } from '../filter.ts';
import type { HttpStream } from '../stream.ts';
import type { JwtAuthnConfig, JwtProviderConfig, JwtRequirement, TokenLocation } from './jwt-authn-config.ts';
import { JWT_AUTHN_FILTER_NAME } from './jwt-authn-config.ts';
import { extractToken, locationKey } from './jwt-authn-extract.ts';
import { FAILURE_TEXT, looksLikeJwt, ProviderVerifier } from './jwt-authn-verify.ts';
import type { Clock, JwtFailure, VerifyOutcome } from './jwt-authn-verify.ts';

/** Metadata namespace of Weft's stand-in for Istio's istio_authn filter (read by RBAC). */
export const ISTIO_AUTHN_METADATA = 'istio_authn';
const GRPC_UNAUTHENTICATED = 16;

export class JwtAuthnStats {
  readonly allowed: Counter;
  readonly denied: Counter;
  readonly corsPreflightBypassed: Counter;
  readonly cacheHit: Counter;
  readonly cacheMiss: Counter;

  constructor(store: StatsStore, statPrefix: string) {
    const p = `http.${statPrefix}.jwt_authn.`;
    this.allowed = store.counter(p + 'allowed');
    this.denied = store.counter(p + 'denied');
    this.corsPreflightBypassed = store.counter(p + 'cors_preflight_bypassed');
    this.cacheHit = store.counter(p + 'jwt_cache_hit');
    this.cacheMiss = store.counter(p + 'jwt_cache_miss');
  }
}

/** One token found in the request, with the provider that verifies it (undefined: unknown issuer). */
interface Candidate {
  readonly location: TokenLocation;
  readonly token: string;
  readonly provider: ProviderVerifier | undefined;
  outcome: VerifyOutcome | undefined;
}

type Decision = { readonly ok: true } | { readonly ok: false; readonly failure: JwtFailure };

const PASS: Decision = { ok: true };
const MISSING: Decision = { ok: false, failure: 'missing' };

/** The `iss` claim of a token, read without verifying it, to pick its provider. */
function unverifiedIssuer(token: string): string | undefined {
  if (!looksLikeJwt(token)) return undefined;
  const a = token.indexOf('.');
  const b = token.indexOf('.', a + 1);
  try {
    const payload: unknown = JSON.parse(Buffer.from(token.slice(a + 1, b), 'base64url').toString('utf8'));
    const iss = (payload as { iss?: unknown } | null)?.iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

function isCorsPreflight(stream: HttpStream): boolean {
  const h = stream.headers;
  return stream.method === 'OPTIONS' && !!h.origin && !!h['access-control-request-method'];
}

/** A claim as a header value: strings as they are, numbers and booleans printed, string lists comma-joined. */
function claimHeaderValue(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string'))
    return value.join(',');
  return undefined;
}

function metadataPayload(payload: JWTPayload, spaceDelimited: readonly string[]): Record<string, unknown> {
  if (spaceDelimited.length === 0) return payload;
  const out: Record<string, unknown> = { ...payload };
  for (const claim of spaceDelimited) {
    const v = out[claim];
    if (typeof v === 'string') out[claim] = v.split(' ').filter((s) => s !== '');
  }
  return out;
}

export interface JwtAuthnOptions {
  /** Milliseconds since the epoch; injectable so expiry tests need no waiting. */
  clock?: Clock;
}

export class JwtAuthnFilter implements HttpFilter {
  readonly name: string;
  private readonly config: JwtAuthnConfig;
  private readonly stats: JwtAuthnStats;
  private readonly verifiers = new Map<JwtProviderConfig, ProviderVerifier>();
  /** Each distinct location once, with the verifiers that read it, in provider order. */
  private readonly locations: { location: TokenLocation; verifiers: ProviderVerifier[] }[] = [];
  /** Headers this filter writes: a client must not be able to send them itself. */
  private readonly ownedHeaders: readonly string[];

  constructor(
    name: string,
    config: JwtAuthnConfig,
    store: StatsStore,
    statPrefix: string,
    options: JwtAuthnOptions = {},
  ) {
    this.name = name;
    this.config = config;
    this.stats = new JwtAuthnStats(store, statPrefix);
    const clock = options.clock ?? Date.now;
    const byKey = new Map<string, { location: TokenLocation; verifiers: ProviderVerifier[] }>();
    const owned = new Set<string>();
    for (const provider of config.providers.values()) {
      const v = new ProviderVerifier(provider, clock);
      this.verifiers.set(provider, v);
      for (const loc of provider.locations) {
        const key = locationKey(loc);
        let entry = byKey.get(key);
        if (entry === undefined) {
          byKey.set(key, (entry = { location: loc, verifiers: [] }));
          this.locations.push(entry);
        }
        entry.verifiers.push(v);
      }
      if (provider.forwardPayloadHeader !== undefined) owned.add(provider.forwardPayloadHeader);
      for (const c of provider.claimToHeaders) owned.add(c.header);
    }
    this.ownedHeaders = [...owned];
  }

  onRequest(stream: HttpStream): FilterStatus {
    const headers = stream.headers;
    for (const h of this.ownedHeaders) delete headers[h];
    if (this.config.bypassCorsPreflight && isCorsPreflight(stream)) {
      this.stats.corsPreflightBypassed.inc();
      return 'continue';
    }
    const requirement = this.requirementFor(stream);
    if (requirement === undefined) return 'continue';
    const candidates = this.candidates(stream);
    let pending: Promise<void>[] | undefined;
    for (const c of candidates) {
      if (c.provider === undefined) continue;
      const hit = c.provider.cached(c.token);
      if (hit !== undefined) {
        this.stats.cacheHit.inc();
        c.outcome = hit;
        continue;
      }
      this.stats.cacheMiss.inc();
      const provider = c.provider;
      (pending ??= []).push(
        provider.verify(c.token).then(
          (o) => void (c.outcome = o),
          () => void (c.outcome = { ok: false, failure: 'verification_fails' }),
        ),
      );
    }
    if (pending === undefined) return this.decide(stream, requirement, candidates) ? 'continue' : 'stop';
    void Promise.all(pending)
      .then(() => {
        if (stream.done) return;
        if (this.decide(stream, requirement, candidates)) stream.continueDecoding();
      })
      // Whatever a later filter throws while resuming must not escape as an unhandled rejection.
      .catch(() => stream.resetDownstream());
    return 'stop';
  }

  /** The requirement of the first rule that matches, or undefined when none applies. */
  private requirementFor(stream: HttpStream): JwtRequirement | undefined {
    const path = stream.path;
    const end = pathEnd(path);
    for (const rule of this.config.rules) if (rule.match.matches(stream, path, end)) return rule.requires;
    return undefined;
  }

  private candidates(stream: HttpStream): Candidate[] {
    const out: Candidate[] = [];
    for (const { location, verifiers } of this.locations) {
      const token = extractToken(location, stream.headers, stream.path);
      if (token === undefined) continue;
      const iss = unverifiedIssuer(token);
      // A token that cannot be decoded goes to the location's first provider, whose verification reports its format.
      const provider =
        iss === undefined
          ? verifiers[0]
          : verifiers.find((v) => v.config.issuer === '' || v.config.issuer === iss);
      out.push({ location, token, provider, outcome: undefined });
    }
    return out;
  }

  /** Evaluates the requirement over verified candidates; answers 401 itself, or applies side effects. */
  private decide(stream: HttpStream, requirement: JwtRequirement, candidates: Candidate[]): boolean {
    const decision = this.evaluate(requirement, candidates);
    if (!decision.ok) {
      this.stats.denied.inc();
      this.reject(stream, decision.failure);
      return false;
    }
    this.stats.allowed.inc();
    this.applySuccesses(stream, candidates);
    return true;
  }

  private evaluate(req: JwtRequirement, candidates: Candidate[]): Decision {
    switch (req.kind) {
      case 'provider': {
        const mine = candidates.filter((c) => c.provider?.config === req.provider);
        if (mine.length === 0) return MISSING;
        const audiences = req.audiences ?? req.provider.audiences;
        for (const c of mine) {
          const d = this.checked(c, audiences);
          if (!d.ok) return d;
        }
        return PASS;
      }
      case 'allow_missing':
        for (const c of candidates) {
          const d = this.checked(c, c.provider?.config.audiences ?? []);
          if (!d.ok) return d;
        }
        return PASS;
      case 'allow_missing_or_failed':
        return PASS;
      case 'any': {
        let failure: Decision | undefined;
        for (const r of req.requirements) {
          const d = this.evaluate(r, candidates);
          if (d.ok) return d;
          // A real failure says more than "missing" about why nothing passed.
          if (failure === undefined || (failure.ok === false && failure.failure === 'missing')) failure = d;
        }
        return failure ?? MISSING;
      }
      case 'all':
        for (const r of req.requirements) {
          const d = this.evaluate(r, candidates);
          if (!d.ok) return d;
        }
        return PASS;
    }
  }

  private checked(c: Candidate, audiences: readonly string[]): Decision {
    if (c.provider === undefined) return { ok: false, failure: 'unknown_issuer' };
    const o = c.outcome;
    if (o === undefined) return { ok: false, failure: 'verification_fails' };
    if (!o.ok) return o;
    if (!ProviderVerifier.audienceAllowed(o.payload, audiences))
      return { ok: false, failure: 'audience_not_allowed' };
    return PASS;
  }

  private reject(stream: HttpStream, failure: JwtFailure): void {
    if (this.config.stripFailureResponse) {
      stream.sendLocalReply(401, null, '', undefined, GRPC_UNAUTHENTICATED);
      return;
    }
    const path = stream.path;
    const realm = `${stream.scheme}://${stream.authority}${path.slice(0, pathEnd(path))}`;
    const challenge =
      failure === 'missing' ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="invalid_token"`;
    const headers: OutgoingHeaders = { 'www-authenticate': challenge };
    stream.sendLocalReply(401, null, FAILURE_TEXT[failure], headers, GRPC_UNAUTHENTICATED);
  }

  private applySuccesses(stream: HttpStream, candidates: Candidate[]): void {
    const headers = stream.headers;
    let first: JWTPayload | undefined;
    for (const c of candidates) {
      const o = c.outcome;
      const v = c.provider;
      if (v === undefined || o === undefined || !o.ok) continue;
      const cfg = v.config;
      if (!ProviderVerifier.audienceAllowed(o.payload, cfg.audiences)) continue;
      const payload = o.payload;
      first ??= payload;
      if (!cfg.forward && c.location.kind === 'header') delete headers[c.location.name];
      if (cfg.payloadInMetadata !== undefined) {
        const md = stream.dynamicMetadata.get(JWT_AUTHN_FILTER_NAME) ?? {};
        md[cfg.payloadInMetadata] = metadataPayload(payload, cfg.spaceDelimitedClaims);
        stream.dynamicMetadata.set(JWT_AUTHN_FILTER_NAME, md);
      }
      if (cfg.forwardPayloadHeader !== undefined) {
        const a = c.token.indexOf('.');
        let b64 = c.token.slice(a + 1, c.token.indexOf('.', a + 1));
        if (cfg.padForwardPayloadHeader) b64 += '='.repeat((4 - (b64.length % 4)) % 4);
        headers[cfg.forwardPayloadHeader] = b64;
      }
      for (const { header, claim } of cfg.claimToHeaders) {
        const value = claimHeaderValue(payload[claim]);
        if (value !== undefined) headers[header] = value;
      }
    }
    if (first !== undefined) {
      const aud = first.aud;
      stream.dynamicMetadata.set(ISTIO_AUTHN_METADATA, {
        'request.auth.principal': `${first.iss ?? ''}/${first.sub ?? ''}`,
        'request.auth.audiences': Array.isArray(aud) ? aud[0] : aud,
        'request.auth.presenter': first.azp,
        'request.auth.claims': first,
      });
    }
  }
}
