/**
 * The CORS filter (`envoy.filters.http.cors`), as Envoy's: the policy comes from the matched route or
 * virtual host (typed_per_filter_config under the filter's name); the filter-level config has none.
 *
 * - A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin is
 *   answered here, 200 with the policy's access-control-* headers; from another origin it goes upstream
 *   (forward_not_matching_preflights, the default) or is answered 200 without CORS headers.
 * - Any other request from an allowed origin gets access-control-allow-origin (the request's origin),
 *   -allow-credentials and -expose-headers on its response.
 *
 * Requests without an Origin header cost one header read in each direction; requests with one but no
 * policy also one (cached) route lookup. Nothing is allocated for them, and no per-stream state is kept:
 * the response side repeats the origin check rather than remembering it.
 */
import type { Counter, StatsStore } from '../../stats/store.ts';
import type { OutgoingHeaders } from '../../upstream/codec.ts';
import type { FilterStatus, HttpFilter } from '../filter.ts';
import type { HttpStream } from '../stream.ts';
import { originAllowed } from './cors-config.ts';
import type { CorsPolicyConfig } from './cors-config.ts';

export class CorsStats {
  readonly originValid: Counter;
  readonly originInvalid: Counter;

  constructor(store: StatsStore, statPrefix: string) {
    const p = `http.${statPrefix}.cors.`;
    this.originValid = store.counter(p + 'origin_valid');
    this.originInvalid = store.counter(p + 'origin_invalid');
  }
}

/** The request's Origin, or undefined when absent or empty. */
function originOf(stream: HttpStream): string | undefined {
  const o = stream.headers.origin;
  return o === undefined || o === '' ? undefined : o;
}

/** The response headers of an answered preflight. */
export function preflightHeaders(policy: CorsPolicyConfig, origin: string): OutgoingHeaders {
  const h: OutgoingHeaders = { 'access-control-allow-origin': origin };
  if (policy.allowCredentials) h['access-control-allow-credentials'] = 'true';
  if (policy.allowMethods !== '') h['access-control-allow-methods'] = policy.allowMethods;
  if (policy.allowHeaders !== '') h['access-control-allow-headers'] = policy.allowHeaders;
  if (policy.maxAge !== '') h['access-control-max-age'] = policy.maxAge;
  return h;
}

export class CorsFilter implements HttpFilter {
  readonly name: string;
  private readonly stats: CorsStats;

  constructor(name: string, stats: CorsStats) {
    this.name = name;
    this.stats = stats;
  }

  private policy(stream: HttpStream): CorsPolicyConfig | undefined {
    return stream.route()?.perFilterConfig?.get(this.name) as CorsPolicyConfig | undefined;
  }

  onRequest(stream: HttpStream): FilterStatus {
    const origin = originOf(stream);
    if (origin === undefined) return 'continue';
    const policy = this.policy(stream);
    if (policy === undefined) return 'continue';
    const allowed = originAllowed(policy, origin);
    if (allowed) this.stats.originValid.inc();
    else this.stats.originInvalid.inc();
    if (stream.method !== 'OPTIONS') return 'continue';
    const requestMethod = stream.headers['access-control-request-method'];
    if (requestMethod === undefined || requestMethod === '') return 'continue';
    if (!allowed) {
      if (policy.forwardNotMatchingPreflights) return 'continue';
      stream.sendLocalReply(200, null, '');
      return 'stop';
    }
    stream.sendLocalReply(200, null, '', preflightHeaders(policy, origin));
    return 'stop';
  }

  onResponseHeaders(stream: HttpStream, _status: number, headers: OutgoingHeaders): void {
    const origin = originOf(stream);
    if (origin === undefined) return;
    const policy = this.policy(stream);
    if (policy === undefined || !originAllowed(policy, origin)) return;
    headers['access-control-allow-origin'] = origin;
    if (policy.allowCredentials) headers['access-control-allow-credentials'] = 'true';
    if (policy.exposeHeaders !== '') headers['access-control-expose-headers'] = policy.exposeHeaders;
  }
}
