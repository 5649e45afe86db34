/** HTTP filters by their Envoy type URL; each factory builds a filter once per connection manager config. */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import type { HttpFilterConfig } from '../listener/types.ts';
import type { RouteTable } from '../router/types.ts';
import type { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { HttpFilter } from './filter.ts';
import { CorsFilter, CorsStats } from './filters/cors.ts';
import { compileCors, CORS_POLICY_TYPE_NAME, CORS_TYPE_NAME } from './filters/cors-config.ts';
import { FaultFilter, FaultStats } from './filters/fault.ts';
import { compileHttpFault, FAULT_TYPE_NAME } from './filters/fault-config.ts';
import { LocalRateLimitFilter } from './filters/local-ratelimit.ts';
import { compileLocalRateLimit, LOCAL_RATELIMIT_TYPE_NAME } from './filters/local-ratelimit-config.ts';
import { RateLimitFilter } from './filters/ratelimit.ts';
import { compileRateLimit, RATELIMIT_TYPE_NAME } from './filters/ratelimit-config.ts';
import { RbacFilter, RbacStats } from './filters/rbac.ts';
import { compileRbac, RBAC_TYPE_NAME } from './filters/rbac-config.ts';
import { RouterFilter } from './filters/router.ts';
import { JwtAuthnFilter } from './filters/jwt-authn.ts';
import { compileJwtAuthn, JWT_AUTHN_TYPE_NAME } from './filters/jwt-authn-config.ts';
import { compileRouterConfig } from './filters/router-config.ts';
import type { TelemetryContext } from '../telemetry/context.ts';
import { istioMetricsOf } from '../telemetry/istio-metrics.ts';
import { MetadataExchangeFilter } from '../telemetry/metadata-exchange.ts';
import { compileMetadataExchange } from '../telemetry/metadata-exchange-config.ts';
import { compileIstioStats } from '../telemetry/stats-config.ts';
import { IstioStatsFilter } from '../telemetry/stats-filter.ts';
import { ISTIO_STATS_TYPE_URL, PEER_METADATA_TYPE_URL } from '../telemetry/typed-struct.ts';

export interface FilterFactoryContext {
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
  /** The connection manager's stat_prefix, for filters' `http.<stat_prefix>.*` stats. */
  readonly statPrefix: string;
  /** The proxy's telemetry (its node, for Istio's filters); absent in unit tests. */
  readonly telemetry?: TelemetryContext;
  /** The listener's traffic_direction (Istio's metrics reporter). */
  readonly trafficDirection?: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';
}

type Factory = (cfg: HttpFilterConfig, ctx: FilterFactoryContext) => HttpFilter;

export const ROUTER_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const FAULT_TYPE_URL = `type.googleapis.com/${FAULT_TYPE_NAME}`;
export const CORS_TYPE_URL = `type.googleapis.com/${CORS_TYPE_NAME}`;
export const LOCAL_RATELIMIT_TYPE_URL = `type.googleapis.com/${LOCAL_RATELIMIT_TYPE_NAME}`;
export const RATELIMIT_TYPE_URL = `type.googleapis.com/${RATELIMIT_TYPE_NAME}`;

/** Per-route config types that differ from their filter's own config type. */
const FILTER_TYPE_OF_PER_ROUTE_TYPE: ReadonlyMap<string, string> = new Map([
  [CORS_POLICY_TYPE_NAME, CORS_TYPE_NAME],
]);

const factories = new Map<string, Factory>([
  [
    ROUTER_TYPE_URL,
    (c, ctx) => new RouterFilter(ctx.clusters, compileRouterConfig(c.config as Json, c.name)),
  ],
  [
    FAULT_TYPE_URL,
    // The listener compile already checked this config; compiling it again here keeps HttpFilterConfig plain JSON.
    (c, ctx) =>
      new FaultFilter(
        c.name,
        compileHttpFault(c.config as Json, c.name),
        new FaultStats(ctx.stats, ctx.statPrefix),
      ),
  ],
  [
    CORS_TYPE_URL,
    (c, ctx) => {
      compileCors(c.config as Json, c.name);
      return new CorsFilter(c.name, new CorsStats(ctx.stats, ctx.statPrefix));
    },
  ],
  [
    LOCAL_RATELIMIT_TYPE_URL,
    (c, ctx) => new LocalRateLimitFilter(c.name, compileLocalRateLimit(c.config as Json, c.name), ctx.stats),
  ],
  [
    `type.googleapis.com/${RBAC_TYPE_NAME}`,
    (c, ctx) => {
      const config = compileRbac(c.config as Json, c.name);
      return new RbacFilter(c.name, config, new RbacStats(ctx.stats, ctx.statPrefix, config));
    },
  ],
  [
    `type.googleapis.com/${JWT_AUTHN_TYPE_NAME}`,
    (c, ctx) =>
      new JwtAuthnFilter(c.name, compileJwtAuthn(c.config as Json, c.name), ctx.stats, ctx.statPrefix),
  ],
  [
    // Istio's filters come as TypedStructs; the listener compile unwrapped them (typeUrl = the inner type).
    ISTIO_STATS_TYPE_URL,
    (c, ctx) =>
      new IstioStatsFilter(c.name, compileIstioStats(c.config as Json, c.name), {
        metrics: istioMetricsOf(ctx.stats),
        clusters: ctx.clusters,
        node: ctx.telemetry?.node,
        trafficDirection: ctx.trafficDirection ?? 'UNSPECIFIED',
        stats: ctx.stats,
      }),
  ],
  [
    PEER_METADATA_TYPE_URL,
    (c, ctx) =>
      new MetadataExchangeFilter(
        c.name,
        compileMetadataExchange(c.config as Json, c.name),
        ctx.telemetry?.node,
      ),
  ],
  [
    RATELIMIT_TYPE_URL,
    (c, ctx) =>
      new RateLimitFilter(c.name, compileRateLimit(c.config as Json, c.name), ctx.clusters, ctx.stats),
  ],
]);

export function isKnownHttpFilter(typeUrl: string): boolean {
  return factories.has(typeUrl);
}

export function createHttpFilter(cfg: HttpFilterConfig, ctx: FilterFactoryContext): HttpFilter {
  const f = factories.get(cfg.typeUrl);
  if (f === undefined) throw new ConfigError(cfg.name, `unsupported HTTP filter "${cfg.typeUrl}"`);
  return f(cfg, ctx);
}

/**
 * typed_per_filter_config entries of an inline route configuration must name a filter of this chain
 * whose type matches (Envoy would silently skip the others; Weft refuses them, never ignores).
 */
export function checkPerFilterConfigNames(table: RouteTable, filters: readonly HttpFilterConfig[]): void {
  for (const use of table.perFilterConfigUses ?? []) {
    const filter = filters.find((f) => f.name === use.filterName);
    if (filter === undefined)
      throw new ConfigError(
        use.path,
        `no HTTP filter named ${JSON.stringify(use.filterName)} in http_filters`,
      );
    const filterType = FILTER_TYPE_OF_PER_ROUTE_TYPE.get(use.typeName) ?? use.typeName;
    if (filter.typeUrl !== `type.googleapis.com/${filterType}`)
      throw new ConfigError(
        use.path,
        `${use.typeName} does not match the type of HTTP filter ${JSON.stringify(use.filterName)} (${filter.typeUrl})`,
      );
  }
}
