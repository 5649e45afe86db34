/** HTTP filters by their Envoy type URL; each factory builds a filter once per connection manager config. */
import { ConfigError } from '../../core/errors.ts';
import type { HttpFilterConfig } from '../listener/types.ts';
import type { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { HttpFilter } from './filter.ts';
import { RouterFilter } from './filters/router.ts';

export interface FilterFactoryContext {
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
}

type Factory = (config: unknown, ctx: FilterFactoryContext) => HttpFilter;

export const ROUTER_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

const factories = new Map<string, Factory>([[ROUTER_TYPE_URL, (_c, ctx) => new RouterFilter(ctx.clusters)]]);

export function isKnownHttpFilter(typeUrl: string): boolean {
  return factories.has(typeUrl);
}

export function createHttpFilter(cfg: HttpFilterConfig, ctx: FilterFactoryContext): HttpFilter {
  const f = factories.get(cfg.typeUrl);
  if (f === undefined) throw new ConfigError(cfg.name, `unsupported HTTP filter "${cfg.typeUrl}"`);
  return f(cfg.config, ctx);
}
