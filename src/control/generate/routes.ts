/**
 * VirtualService HTTP routes → Envoy routes, and the virtual hosts of a route configuration. Each
 * HTTPMatchRequest becomes one Envoy route with the same action (Istio's expansion); a service without a
 * VirtualService gets one default route to its cluster.
 */
import { GRPC_STATUS_NAMES } from '../../core/grpc-status.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import type {
  CorsPolicy,
  HTTPMatchRequest,
  HTTPMirrorPolicy,
  HTTPRetry,
  HTTPRoute,
  HTTPRouteDestination,
  StringMatch,
  VirtualService,
} from '../../api/istio/networking.ts';
import { istioDurationToProto, parseIstioDurationMs } from '../../config/duration.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { Service } from '../model/types.ts';
import type { ProxyNode } from '../xds/types.ts';
import { outboundClusterName, TYPES } from './names.ts';
import { destinationRuleFor, virtualServiceFor } from './scope.ts';

export interface RouteContext {
  proxy: ProxyNode;
  snap: MeshSnapshot;
  /** `mesh` for sidecars, `namespace/name` of the gateway otherwise. */
  gateway: string;
  /** The port the route configuration serves (filters `match.port`). */
  port: number;
  /**
   * For gRPC's proxyless clients: only what gRPC's xDS implements (no CORS — a browser concern, and gRPC
   * NACKs a filter config it does not know).
   */
  proxyless?: boolean;
}

/** Istio's default retry policy for routes that set none. */
const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

function stringMatcher(m: StringMatch): JsonObject | undefined {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { safe_regex: { regex: m.regex } };
  return undefined;
}

function headerMatcher(name: string, m: StringMatch, invert: boolean): JsonObject {
  const sm = stringMatcher(m);
  // An empty StringMatch means "header present", as in Istio.
  const base: JsonObject = sm ? { name, string_match: sm } : { name, present_match: true };
  return invert ? { ...base, invert_match: true } : base;
}

/** One Istio match → an Envoy RouteMatch, or null when it cannot apply to this proxy/port/gateway. */
function routeMatch(m: HTTPMatchRequest | undefined, ctx: RouteContext): JsonObject | null {
  if (m?.port !== undefined && m.port !== ctx.port) return null;
  if (m?.sourceLabels && !labelsMatch(m.sourceLabels, ctx.proxy.labels)) return null;
  if (m?.gateways && m.gateways.length > 0 && !m.gateways.includes(ctx.gateway)) return null;
  const out: JsonObject = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = uri?.prefix ?? '/';
  if (m?.ignoreUriCase) out.case_sensitive = false;
  const headers: JsonObject[] = [];
  for (const [name, sm] of Object.entries(m?.headers ?? {}))
    headers.push(headerMatcher(name.toLowerCase(), sm, false));
  for (const [name, sm] of Object.entries(m?.withoutHeaders ?? {}))
    headers.push(headerMatcher(name.toLowerCase(), sm, true));
  if (m?.method) headers.push(headerMatcher(':method', m.method, false));
  if (m?.authority) headers.push(headerMatcher(':authority', m.authority, false));
  if (m?.scheme) headers.push(headerMatcher(':scheme', m.scheme, false));
  if (headers.length > 0) out.headers = headers;
  const query = Object.entries(m?.queryParams ?? {}).map(([name, sm]): JsonObject => {
    const matcher = stringMatcher(sm);
    return matcher ? { name, string_match: matcher } : { name, present_match: true };
  });
  if (query.length > 0) out.query_parameters = query;
  return out;
}

/** The cluster a destination names: its subset, and its port (the only port, else the route's). */
function destinationCluster(d: HTTPRouteDestination['destination'], ctx: RouteContext): string {
  const service = ctx.snap.serviceByHost.get(d.host);
  const port = d.port?.number ?? (service?.ports.length === 1 ? service.ports[0].number : ctx.port);
  return outboundClusterName(port, d.subset ?? '', d.host);
}

function headerOptions(h: HTTPRoute['headers']): JsonObject {
  const out: JsonObject = {};
  const toAdd = (values: Record<string, string> | undefined, action: string): JsonObject[] =>
    Object.entries(values ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: action }));
  const req = [
    ...toAdd(h?.request?.set, 'OVERWRITE_IF_EXISTS_OR_ADD'),
    ...toAdd(h?.request?.add, 'APPEND_IF_EXISTS_OR_ADD'),
  ];
  const res = [
    ...toAdd(h?.response?.set, 'OVERWRITE_IF_EXISTS_OR_ADD'),
    ...toAdd(h?.response?.add, 'APPEND_IF_EXISTS_OR_ADD'),
  ];
  if (req.length > 0) out.request_headers_to_add = req;
  if (h?.request?.remove?.length) out.request_headers_to_remove = h.request.remove;
  if (res.length > 0) out.response_headers_to_add = res;
  if (h?.response?.remove?.length) out.response_headers_to_remove = h.response.remove;
  return out;
}

/** Route-level hash policy from the destination's DestinationRule consistentHash. */
function hashPolicy(host: string, ctx: RouteContext): JsonObject[] | undefined {
  const ch = destinationRuleFor(host, ctx.proxy.namespace, ctx.snap)?.spec.trafficPolicy?.loadBalancer
    ?.consistentHash;
  if (!ch) return undefined;
  if (ch.httpHeaderName) return [{ header: { header_name: ch.httpHeaderName } }];
  if (ch.httpCookie) {
    const cookie: JsonObject = { name: ch.httpCookie.name };
    const ttl = ch.httpCookie.ttl ? istioDurationToProto(ch.httpCookie.ttl) : undefined;
    if (ttl) cookie.ttl = ttl;
    if (ch.httpCookie.path) cookie.path = ch.httpCookie.path;
    return [{ cookie }];
  }
  if (ch.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (ch.httpQueryParameterName) return [{ query_parameter: { name: ch.httpQueryParameterName } }];
  return undefined;
}

/**
 * A VirtualService's `retries` (or Istio's default when absent) as Envoy's RetryPolicy, as Istio translates it:
 * numeric entries of `retryOn` become `retriable_status_codes` (503 unless any are given), previously tried
 * hosts are avoided unless `retryIgnorePreviousHosts: false`, `backoff` sets the base interval,
 * `retryRemoteLocalities` moves retries to other localities (Envoy's previous_priorities).
 */
export function retryPolicy(retries: HTTPRetry | undefined): JsonObject | undefined {
  if (retries && retries.attempts === 0) return undefined;
  const conditions: string[] = [];
  const codes: number[] = [];
  for (const entry of (retries?.retryOn ?? DEFAULT_RETRY_ON).split(',')) {
    const condition = entry.trim();
    if (condition === '') continue;
    if (/^\d+$/.test(condition)) codes.push(Number(condition));
    else if (!conditions.includes(condition)) conditions.push(condition);
  }
  if (codes.length > 0 && !conditions.includes('retriable-status-codes'))
    conditions.push('retriable-status-codes');
  const policy: JsonObject = {
    retry_on: conditions.join(','),
    num_retries: retries?.attempts ?? 2,
  };
  const perTry = retries?.perTryTimeout ? istioDurationToProto(retries.perTryTimeout) : undefined;
  if (perTry) policy.per_try_timeout = perTry;
  if (retries?.retryIgnorePreviousHosts !== false) {
    policy.retry_host_predicate = [
      {
        name: 'envoy.retry_host_predicates.previous_hosts',
        typed_config: { '@type': TYPES.previousHosts },
      },
    ];
    policy.host_selection_retry_max_attempts = 5;
  }
  if (conditions.includes('retriable-status-codes'))
    policy.retriable_status_codes = codes.length > 0 ? codes : [503];
  const backoff = retries?.backoff ? istioDurationToProto(retries.backoff) : undefined;
  if (backoff) policy.retry_back_off = { base_interval: backoff };
  if (retries?.retryRemoteLocalities === true) {
    // Every second try leaves the priorities (localities) already tried, as Istio configures it.
    policy.retry_priority = {
      name: 'envoy.retry_priorities.previous_priorities',
      typed_config: { '@type': TYPES.previousPriorities, update_frequency: 2 },
    };
  }
  return policy;
}

function percentage(value: number | undefined): JsonObject {
  // Istio's percentage is a double 0-100; Envoy's FractionalPercent uses parts per million.
  return { numerator: Math.round((value ?? 100) * 10_000), denominator: 'MILLION' };
}

/**
 * A VirtualService's `mirror` (with `mirrorPercentage`) and `mirrors` as Envoy's request_mirror_policies, one
 * per mirror, each cluster resolved as route destinations are; a mirror at 0% is left out, as Istio does.
 */
export function mirrorPolicies(http: HTTPRoute, ctx: RouteContext): JsonObject[] {
  const all: HTTPMirrorPolicy[] = [];
  if (http.mirror) all.push({ destination: http.mirror, percentage: http.mirrorPercentage });
  all.push(...(http.mirrors ?? []));
  const out: JsonObject[] = [];
  for (const m of all) {
    const fraction = percentage(m.percentage?.value);
    if (fraction.numerator === 0) continue;
    out.push({
      cluster: destinationCluster(m.destination, ctx),
      runtime_fraction: { default_value: fraction },
    });
  }
  return out;
}

function faultConfig(fault: HTTPRoute['fault']): JsonObject | undefined {
  if (!fault) return undefined;
  const out: JsonObject = { '@type': TYPES.fault };
  if (fault.delay) {
    out.delay = {
      fixed_delay: istioDurationToProto(fault.delay.fixedDelay ?? '0s') ?? '0s',
      percentage: percentage(fault.delay.percentage?.value ?? fault.delay.percent),
    };
  }
  if (fault.abort) {
    const abort: JsonObject = { percentage: percentage(fault.abort.percentage?.value) };
    if (fault.abort.grpcStatus !== undefined) abort.grpc_status = grpcStatusCode(fault.abort.grpcStatus);
    else abort.http_status = fault.abort.httpStatus ?? 500;
    out.abort = abort;
  }
  return out;
}

function grpcStatusCode(status: string | number): number {
  if (typeof status === 'number') return status;
  const i = GRPC_STATUS_NAMES.indexOf(status.toUpperCase());
  return i >= 0 ? i : 2;
}

function redirectCode(code: number | undefined): string {
  switch (code) {
    case 302:
      return 'FOUND';
    case 303:
      return 'SEE_OTHER';
    case 307:
      return 'TEMPORARY_REDIRECT';
    case 308:
      return 'PERMANENT_REDIRECT';
    default:
      return 'MOVED_PERMANENTLY';
  }
}

/** The action part of an Envoy route for one Istio HTTPRoute. */
function routeAction(http: HTTPRoute, match: JsonObject, ctx: RouteContext): JsonObject {
  const out: JsonObject = {};
  if (http.redirect) {
    const r = http.redirect;
    const redirect: JsonObject = {};
    if (r.scheme) redirect.scheme_redirect = r.scheme;
    if (r.authority) redirect.host_redirect = r.authority;
    if (r.port) redirect.port_redirect = r.port;
    if (r.uri) redirect.path_redirect = r.uri;
    redirect.response_code = redirectCode(r.redirectCode);
    out.redirect = redirect;
    return out;
  }
  if (http.directResponse) {
    const body = http.directResponse.body;
    const inline =
      body?.string ??
      (body?.bytes !== undefined ? Buffer.from(body.bytes, 'base64').toString('latin1') : undefined);
    out.direct_response = {
      status: http.directResponse.status,
      ...(inline !== undefined ? { body: { inline_string: inline } } : {}),
    };
    return out;
  }
  const destinations = http.route ?? [];
  const action: JsonObject = {};
  if (destinations.length === 1) {
    action.cluster = destinationCluster(destinations[0].destination, ctx);
    Object.assign(out, headerOptions(destinations[0].headers));
  } else if (destinations.length > 1) {
    action.weighted_clusters = {
      clusters: destinations
        .filter((d) => (d.weight ?? 0) > 0)
        .map((d) => ({
          name: destinationCluster(d.destination, ctx),
          weight: d.weight ?? 0,
          ...headerOptions(d.headers),
        })),
    };
  }
  if (http.rewrite?.uri !== undefined) {
    if (match.path !== undefined)
      action.regex_rewrite = { pattern: { regex: '^.*$' }, substitution: http.rewrite.uri };
    else action.prefix_rewrite = http.rewrite.uri;
  }
  const regexRewrite = http.rewrite?.uriRegexRewrite;
  if (regexRewrite?.match !== undefined) {
    action.regex_rewrite = {
      pattern: { regex: regexRewrite.match },
      substitution: regexRewrite.rewrite ?? '',
    };
  }
  if (http.rewrite?.authority) action.host_rewrite_literal = http.rewrite.authority;
  // Istio disables the route timeout unless the VirtualService sets one.
  action.timeout = (http.timeout ? istioDurationToProto(http.timeout) : undefined) ?? '0s';
  if (!ctx.proxyless) action.max_grpc_timeout = action.timeout;
  const first = destinations[0]?.destination.host;
  const hash = first ? hashPolicy(first, ctx) : undefined;
  if (hash) action.hash_policy = hash;
  const retry = retryPolicy(http.retries);
  if (retry) action.retry_policy = retry;
  const mirrors = mirrorPolicies(http, ctx);
  if (mirrors.length > 0) action.request_mirror_policies = mirrors;
  out.route = action;
  return out;
}

/**
 * A VirtualService's corsPolicy as Envoy's CorsPolicy, as Istio translates it: always enabled, lists joined
 * with ",", max age in whole seconds, non-matching preflights forwarded unless `unmatchedPreflights: IGNORE`;
 * the deprecated `allowOrigin` (exact origins) only when `allowOrigins` is absent.
 */
export function corsConfig(cors: CorsPolicy | undefined): JsonObject | undefined {
  if (!cors) return undefined;
  const out: JsonObject = { '@type': TYPES.corsPolicy };
  const origins = cors.allowOrigins
    ? cors.allowOrigins.map(stringMatcher).filter((m) => m !== undefined)
    : cors.allowOrigin?.map((o) => ({ exact: o }));
  if (origins && origins.length > 0) out.allow_origin_string_match = origins;
  if (cors.allowMethods?.length) out.allow_methods = cors.allowMethods.join(',');
  if (cors.allowHeaders?.length) out.allow_headers = cors.allowHeaders.join(',');
  if (cors.exposeHeaders?.length) out.expose_headers = cors.exposeHeaders.join(',');
  const maxAgeMs = cors.maxAge === undefined ? undefined : parseIstioDurationMs(cors.maxAge);
  if (maxAgeMs !== undefined) out.max_age = String(Math.floor(maxAgeMs / 1000));
  if (cors.allowCredentials !== undefined) out.allow_credentials = cors.allowCredentials;
  out.filter_enabled = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  out.forward_not_matching_preflights = cors.unmatchedPreflights !== 'IGNORE';
  return out;
}

/**
 * A route's own header operations next to those its single destination put there: Istio applies both, so
 * the lists are joined (the route's after the destination's), not replaced.
 */
function withHeaders(action: JsonObject, own: JsonObject): JsonObject {
  const out: JsonObject = { ...action };
  for (const [key, value] of Object.entries(own)) {
    const before = out[key];
    out[key] = Array.isArray(before) && Array.isArray(value) ? [...before, ...value] : value;
  }
  return out;
}

/** Envoy routes for one VirtualService on this port and gateway (a catch-all-less list: the caller adds the default). */
export function virtualServiceRoutes(vs: IstioResource<VirtualService>, ctx: RouteContext): JsonObject[] {
  const routes: JsonObject[] = [];
  (vs.spec.http ?? []).forEach((http, i) => {
    const matches = http.match && http.match.length > 0 ? http.match : [undefined];
    for (const m of matches) {
      const match = routeMatch(m, ctx);
      if (!match) continue;
      const route: JsonObject = {
        name: http.name ?? `${vs.metadata.namespace}/${vs.metadata.name}.http[${i}]`,
        match,
        ...withHeaders(routeAction(http, match, ctx), headerOptions(http.headers)),
      };
      const perFilter: JsonObject = {};
      const cors = ctx.proxyless ? undefined : corsConfig(http.corsPolicy);
      if (cors) perFilter['envoy.filters.http.cors'] = cors;
      const fault = faultConfig(http.fault);
      if (fault) perFilter['envoy.filters.http.fault'] = fault;
      if (cors || fault) route.typed_per_filter_config = perFilter;
      routes.push(route);
    }
  });
  return routes;
}

/** The routes for a service port: its VirtualService's, else one default route. */
export function serviceRoutes(service: Service, ctx: RouteContext): JsonObject[] {
  const vs = virtualServiceFor(service.hostname, ctx.gateway, ctx.snap, ctx.proxy.namespace);
  if (vs) return virtualServiceRoutes(vs, ctx);
  const action: JsonObject = {
    cluster: outboundClusterName(ctx.port, '', service.hostname),
    timeout: '0s',
    ...(ctx.proxyless ? {} : { max_grpc_timeout: '0s' }),
  };
  const hash = hashPolicy(service.hostname, ctx);
  if (hash) action.hash_policy = hash;
  action.retry_policy = retryPolicy(undefined) as Json;
  return [{ name: 'default', match: { prefix: '/' }, route: action }];
}

/**
 * The names a caller may use for a service on a port: the FQDN, and for `.svc.<suffix>` hosts the short
 * forms (`name`, `name.ns`, `name.ns.svc`) when the caller is in the same namespace (Istio's rule) — each
 * with `:port`, and without the port when `withBarePort` (a route configuration for one port).
 */
export function domainsFor(
  service: Service,
  port: number,
  proxyNamespace: string,
  suffix: string,
  withBarePort: boolean,
): string[] {
  const names = [service.hostname];
  const svcSuffix = `.${service.namespace}.svc.${suffix}`;
  if (service.hostname.endsWith(svcSuffix)) {
    const short = service.hostname.slice(0, -svcSuffix.length);
    names.push(`${short}.${service.namespace}`, `${short}.${service.namespace}.svc`);
    if (proxyNamespace === service.namespace) names.push(short);
  }
  names.push(...service.addresses);
  const out: string[] = [];
  for (const n of names) {
    out.push(`${n}:${port}`);
    if (withBarePort) out.push(n);
  }
  return out;
}
