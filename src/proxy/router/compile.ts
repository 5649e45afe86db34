/**
 * Compiles a normalized envoy.config.route.v3.RouteConfiguration into the immutable RouteTable of
 * types.ts. All parsing, regex compilation and closure creation happens here; match() only walks
 * precomputed structures and returns a MatchedRoute cached per route.
 *
 * Header mutations: MatchedRoute lists them in the order the router applies them. By default that is
 * route, virtual host, route configuration (most specific first, so the route configuration's
 * overwrites win, as in Envoy); with most_specific_header_mutations_wins it is reversed (route
 * configuration first, so the route's win). A weighted cluster's own mutations (WeightedPick) are
 * applied before all of these, as Envoy does.
 */
import {
  compileRouteRetryFields,
  compileVirtualHostRetryFields,
  ROUTE_RETRY_FIELDS,
  VIRTUAL_HOST_RETRY_FIELDS,
} from './retry-route-fields.ts';
import type { RetryRouteFields } from './retry-route-fields.ts';
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import {
  asObject,
  objectItems,
  optBool,
  optNumber,
  optObject,
  optString,
  stringItems,
} from '../config-proto/fields.ts';
import { typeNameOfUrl } from '../../api/envoy/descriptor.ts';
import { compileHttpFault, FAULT_TYPE_NAME } from '../http/filters/fault-config.ts';
import { compileCorsPolicy, CORS_POLICY_TYPE_NAME } from '../http/filters/cors-config.ts';
import { compileLocalRateLimit, LOCAL_RATELIMIT_TYPE_NAME } from '../http/filters/local-ratelimit-config.ts';
import { fieldPath, indexPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { compileHeaderMutation } from './header-mutation.ts';
import { compileMirrorPolicies } from './mirror-policy.ts';
import type { MirrorPolicy } from './mirror-policy.ts';
import { compileRedirect } from './redirect.ts';
import {
  compileDirectResponse,
  compileRouteAction,
  DEFAULT_MAX_DIRECT_RESPONSE_BODY_BYTES,
} from './route-action.ts';
import { compileRouteMatch } from './route-matcher.ts';
import type { RouteMatcher } from './route-matcher.ts';
import { hasControlChar, pathEnd } from './strings.ts';
import type {
  CompiledRoute,
  HeaderMutation,
  MatchedRoute,
  PerFilterConfigUse,
  RouteAction,
  RouteRequest,
  RouteTable,
} from './types.ts';
import { VirtualHostIndex } from './vhost-matcher.ts';

const HEADER_FIELDS = [
  'request_headers_to_add',
  'request_headers_to_remove',
  'response_headers_to_add',
  'response_headers_to_remove',
];

const ROUTE_CONFIGURATION_FIELDS = {
  supported: [
    'name',
    'virtual_hosts',
    ...HEADER_FIELDS,
    'most_specific_header_mutations_wins',
    // Weft's bootstrap always checks that the clusters an inline route configuration names exist.
    'validate_clusters',
    'max_direct_response_body_size_bytes',
    'ignore_port_in_host_matching',
    'ignore_path_parameters_in_path_matching',
    // Opaque data for filters and logs; routing does not read it.
    'metadata',
    'typed_per_filter_config',
    'request_mirror_policies',
  ],
  refused: {
    vhds: null,
    internal_only_headers: null,
    cluster_specifier_plugins: null,
  },
};

const VIRTUAL_HOST_FIELDS = {
  supported: [
    'name',
    'domains',
    'routes',
    ...HEADER_FIELDS,
    'metadata',
    ...VIRTUAL_HOST_RETRY_FIELDS,
    'typed_per_filter_config',
    'request_mirror_policies',
  ],
  refused: {
    matcher: null,
    require_tls: 'NONE',
    virtual_clusters: null,
    rate_limits: null,
    cors: null,
    retry_policy: null,
    retry_policy_typed_config: null,
    hedge_policy: null,
    include_is_timeout_retry_header: null,
  },
};

const ROUTE_FIELDS = {
  supported: [
    'name',
    'match',
    'route',
    'redirect',
    'direct_response',
    ...HEADER_FIELDS,
    'metadata',
    ...ROUTE_RETRY_FIELDS,
    'typed_per_filter_config',
  ],
  refused: {
    filter_action: null,
    non_forwarding_action: null,
    decorator: null,
    tracing: null,
    stat_prefix: null,
  },
};

const ACTIONS = ['route', 'redirect', 'direct_response'] as const;

const ROUTER_TYPE_NAME = 'envoy.extensions.filters.http.router.v3.Router';
const FILTER_CONFIG_TYPE_NAME = 'envoy.config.route.v3.FilterConfig';

/** A level's typed_per_filter_config merged over the outer levels'. */
type PerFilter = ReadonlyMap<string, unknown> | undefined;

/**
 * typed_per_filter_config of one level: filter name → the filter's compiled per-route config. Only filters
 * with per-route settings Weft implements are accepted; `uses` collects every entry so that a connection
 * manager can check the names against its own http_filters.
 */
function compilePerFilterConfig(obj: JsonObject, path: string, uses: PerFilterConfigUse[]): PerFilter {
  const map = optObject(obj, 'typed_per_filter_config', path);
  if (map === undefined) return undefined;
  const mapPath = fieldPath(path, 'typed_per_filter_config');
  const out = new Map<string, unknown>();
  for (const [name, value] of Object.entries(map)) {
    const p = fieldPath(mapPath, name);
    const any = asObject(value, p);
    const typeUrl = optString(any, '@type', p) ?? '';
    const typeName = typeNameOfUrl(typeUrl);
    if (typeName === FAULT_TYPE_NAME) out.set(name, compileHttpFault(any, p));
    else if (typeName === CORS_POLICY_TYPE_NAME) out.set(name, compileCorsPolicy(any, p));
    else if (typeName === LOCAL_RATELIMIT_TYPE_NAME) out.set(name, compileLocalRateLimit(any, p));
    else if (typeName === FILTER_CONFIG_TYPE_NAME)
      throw new ConfigError(
        fieldPath(p, '@type'),
        `the ${FILTER_CONFIG_TYPE_NAME} wrapper is not supported by Weft: give the filter's own config`,
      );
    else if (typeName === ROUTER_TYPE_NAME)
      throw new ConfigError(p, 'envoy.filters.http.router takes no per-route configuration');
    else
      throw new ConfigError(
        fieldPath(p, '@type'),
        `per-route configuration of type ${JSON.stringify(typeUrl)} is not supported by Weft`,
      );
    uses.push({ filterName: name, typeName, path: p });
  }
  return out.size === 0 ? undefined : out;
}

/** The inner level's entries win, filter by filter. */
function mergePerFilter(outer: PerFilter, inner: PerFilter): PerFilter {
  if (inner === undefined) return outer;
  if (outer === undefined) return inner;
  return new Map([...outer, ...inner]);
}

interface RouteEntry {
  readonly matcher: RouteMatcher;
  readonly matched: MatchedRoute;
}

interface VirtualHostEntry {
  readonly name: string;
  readonly routes: readonly RouteEntry[];
}

interface Levels {
  readonly request: readonly (HeaderMutation | undefined)[];
  readonly response: readonly (HeaderMutation | undefined)[];
}

class CompiledRouteTable implements RouteTable {
  readonly name: string;
  readonly perFilterConfigUses: readonly PerFilterConfigUse[];
  private readonly hosts: VirtualHostIndex<VirtualHostEntry>;
  private readonly ignorePathParameters: boolean;

  constructor(
    name: string,
    hosts: VirtualHostIndex<VirtualHostEntry>,
    ignorePathParameters: boolean,
    perFilterConfigUses: readonly PerFilterConfigUse[],
  ) {
    this.name = name;
    this.hosts = hosts;
    this.ignorePathParameters = ignorePathParameters;
    this.perFilterConfigUses = perFilterConfigUses;
  }

  match(req: RouteRequest): MatchedRoute | null {
    const vhost = this.hosts.find(req.authority);
    if (vhost === undefined) return null;
    const path = req.path;
    let end = pathEnd(path);
    if (this.ignorePathParameters) {
      const semicolon = path.indexOf(';');
      if (semicolon >= 0 && semicolon < end) end = semicolon;
    }
    const routes = vhost.routes;
    for (let i = 0; i < routes.length; i++) {
      if (routes[i].matcher.matches(req, path, end)) return routes[i].matched;
    }
    return null;
  }
}

function present(obj: JsonObject, key: string): boolean {
  return obj[key] !== undefined && obj[key] !== null;
}

function compileAction(
  route: JsonObject,
  path: string,
  matcher: RouteMatcher,
  maxBodyBytes: number,
  inheritedMirrors: readonly MirrorPolicy[] | undefined,
): RouteAction {
  const set = ACTIONS.filter((k) => present(route, k));
  if (set.length === 0) throw new ConfigError(path, 'one of route, redirect or direct_response is required');
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one action may be set`);
  const kind = set[0];
  const actionPath = fieldPath(path, kind);
  switch (kind) {
    case 'route':
      return compileRouteAction(route.route, actionPath, matcher.matchedLength, inheritedMirrors);
    case 'redirect':
      return compileRedirect(route.redirect, actionPath, matcher.matchedLength);
    case 'direct_response':
      return compileDirectResponse(route.direct_response, actionPath, maxBodyBytes);
  }
}

/** Mutations in application order (see the file comment), without the levels that configure none. */
function ordered(
  levels: readonly (HeaderMutation | undefined)[],
  mostSpecificWins: boolean,
): readonly HeaderMutation[] {
  const list = levels.filter((m): m is HeaderMutation => m !== undefined);
  if (mostSpecificWins) list.reverse();
  return Object.freeze(list);
}

function compileRoute(
  json: Json,
  path: string,
  vhostName: string,
  outer: Levels,
  mostSpecificWins: boolean,
  maxBodyBytes: number,
  retryFields: RetryRouteFields,
  outerPerFilter: PerFilter,
  perFilterUses: PerFilterConfigUse[],
  inheritedMirrors: readonly MirrorPolicy[] | undefined,
): RouteEntry {
  const obj = asObject(json, path);
  checkFields(obj, path, ROUTE_FIELDS);
  const perFilter = mergePerFilter(outerPerFilter, compilePerFilterConfig(obj, path, perFilterUses));
  const matcher = compileRouteMatch(obj.match, fieldPath(path, 'match'));
  const action = compileAction(obj, path, matcher, maxBodyBytes, inheritedMirrors);
  const route: CompiledRoute = Object.freeze({ name: optString(obj, 'name', path) ?? '', action });
  const matched: MatchedRoute = Object.freeze({
    virtualHostName: vhostName,
    route,
    ...compileRouteRetryFields(obj, path, retryFields),
    ...(perFilter !== undefined ? { perFilterConfig: perFilter } : {}),
    requestHeaders: ordered(
      [compileHeaderMutation(obj, path, 'request'), ...outer.request],
      mostSpecificWins,
    ),
    responseHeaders: ordered(
      [compileHeaderMutation(obj, path, 'response'), ...outer.response],
      mostSpecificWins,
    ),
  });
  return { matcher, matched };
}

/** Compiles a normalized RouteConfiguration; `path` is where it sits in the config, for error messages. */
export function compileRouteConfiguration(json: Json, path: string): RouteTable {
  const config = asObject(json, path);
  checkFields(config, path, ROUTE_CONFIGURATION_FIELDS);
  const mostSpecificWins = optBool(config, 'most_specific_header_mutations_wins', path) ?? false;
  optBool(config, 'validate_clusters', path);
  const maxBodyBytes =
    optNumber(config, 'max_direct_response_body_size_bytes', path) ?? DEFAULT_MAX_DIRECT_RESPONSE_BODY_BYTES;
  const hosts = new VirtualHostIndex<VirtualHostEntry>(
    optBool(config, 'ignore_port_in_host_matching', path) ?? false,
  );
  const configLevel = {
    request: compileHeaderMutation(config, path, 'request'),
    response: compileHeaderMutation(config, path, 'response'),
  };
  const perFilterUses: PerFilterConfigUse[] = [];
  const configPerFilter = compilePerFilterConfig(config, path, perFilterUses);
  const configMirrors = compileMirrorPolicies(config, path);

  for (const { item: vhost, path: vhostPath } of objectItems(config, 'virtual_hosts', path)) {
    checkFields(vhost, vhostPath, VIRTUAL_HOST_FIELDS);
    const name = optString(vhost, 'name', vhostPath);
    if (!name) throw new ConfigError(fieldPath(vhostPath, 'name'), 'required');
    const levels: Levels = {
      request: [compileHeaderMutation(vhost, vhostPath, 'request'), configLevel.request],
      response: [compileHeaderMutation(vhost, vhostPath, 'response'), configLevel.response],
    };
    const retryFields = compileVirtualHostRetryFields(vhost, vhostPath);
    const vhostPerFilter = mergePerFilter(
      configPerFilter,
      compilePerFilterConfig(vhost, vhostPath, perFilterUses),
    );
    const vhostMirrors = compileMirrorPolicies(vhost, vhostPath) ?? configMirrors;
    const routes = Object.freeze(
      objectItems(vhost, 'routes', vhostPath).map(({ item, path: routePath }) =>
        compileRoute(
          item,
          routePath,
          name,
          levels,
          mostSpecificWins,
          maxBodyBytes,
          retryFields,
          vhostPerFilter,
          perFilterUses,
          vhostMirrors,
        ),
      ),
    );
    const entry: VirtualHostEntry = Object.freeze({ name, routes });
    const domains = stringItems(vhost, 'domains', vhostPath);
    if (domains.length === 0)
      throw new ConfigError(fieldPath(vhostPath, 'domains'), 'at least one domain is required');
    domains.forEach((domain, i) => {
      const domainPath = indexPath(fieldPath(vhostPath, 'domains'), i);
      if (hasControlChar(domain)) throw new ConfigError(domainPath, 'must not contain control characters');
      hosts.add(domain, entry, name, domainPath);
    });
  }
  return new CompiledRouteTable(
    optString(config, 'name', path) ?? '',
    hosts,
    optBool(config, 'ignore_path_parameters_in_path_matching', path) ?? false,
    Object.freeze(perFilterUses),
  );
}
