/**
 * GET /api/cost: the collector's locality flows priced by the cost model (src/cost/model.ts), with the
 * counterfactual spread over the endpoints each calling proxy is sent. Those come from the control plane's
 * model as the proxy sees it — the ClusterLoadAssignments the ADS server generates for it — read at most
 * once per ENDPOINTS_TTL_MS per proxy, and only for proxies that have flows.
 *
 * Query: `window=SECONDS` (default: the collector's whole retention), `zone=USD_PER_GB` (each side of a
 * zone crossing) and `region=USD_PER_GB` (a region crossing) to price at other rates than the defaults.
 */
import type { GeneratedConfig } from '../control/xds/ads-server.ts';
import { TYPE_URL } from '../control/xds/types.ts';
import { costReport, DEFAULT_PRICES } from '../cost/model.ts';
import type { CostPrices, ServiceEndpoints } from '../cost/model.ts';
import type { StatsCollector } from './stats-collector.ts';

const ENDPOINTS_TTL_MS = 10_000;

export interface CostApiAnswer {
  status: number;
  body: unknown;
}

/**
 * The endpoints per service host (clusters `outbound|PORT|SUBSET|HOST`, all ports and subsets together)
 * and locality in a proxy's generated EDS; an address counts once per locality, an UNHEALTHY one not at
 * all (it would get no traffic either way).
 */
interface LocalityAddresses {
  region: string;
  zone: string;
  addresses: Set<string>;
}

export function endpointsOfConfig(proxyId: string, config: GeneratedConfig): ServiceEndpoints[] {
  const byService = new Map<string, Map<string, LocalityAddresses>>();
  for (const { resource } of config.types.get(TYPE_URL.endpoint) ?? []) {
    const r = resource as {
      cluster_name?: string;
      endpoints?: {
        locality?: { region?: string; zone?: string };
        lb_endpoints?: {
          endpoint?: { address?: { socket_address?: { address?: string } } };
          health_status?: string;
        }[];
      }[];
    };
    const parts = (r.cluster_name ?? '').split('|');
    if (parts.length !== 4 || parts[0] !== 'outbound' || parts[3] === '') continue;
    let localities = byService.get(parts[3]);
    if (localities === undefined)
      byService.set(parts[3], (localities = new Map<string, LocalityAddresses>()));
    for (const group of r.endpoints ?? []) {
      const region = group.locality?.region || 'unknown';
      const zone = group.locality?.zone || 'unknown';
      const key = `${region}\u0000${zone}`;
      let l = localities.get(key);
      if (l === undefined) localities.set(key, (l = { region, zone, addresses: new Set() }));
      for (const e of group.lb_endpoints ?? []) {
        const address = e.endpoint?.address?.socket_address?.address;
        if (address !== undefined && e.health_status !== 'UNHEALTHY') l.addresses.add(address);
      }
    }
  }
  return [...byService].map(([service, localities]) => ({
    proxy: proxyId,
    service,
    localities: [...localities.values()].map((l) => ({
      region: l.region,
      zone: l.zone,
      endpoints: l.addresses.size,
    })),
  }));
}

function positive(v: string | null, what: string): number | undefined {
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${what}=${v}: expected a non-negative number`);
  return n;
}

export class CostView {
  readonly #collector: StatsCollector;
  readonly #generated: ((proxyId: string) => GeneratedConfig | null) | undefined;
  readonly #prices: CostPrices;
  readonly #cache = new Map<string, { at: number; endpoints: ServiceEndpoints[] }>();

  constructor(o: {
    collector: StatsCollector;
    /** The control plane's generated config of a connected proxy (AdsServer.generatedConfig). */
    generatedConfig?: (proxyId: string) => GeneratedConfig | null;
    prices?: CostPrices;
  }) {
    this.#collector = o.collector;
    this.#generated = o.generatedConfig;
    this.#prices = o.prices ?? DEFAULT_PRICES;
  }

  #endpoints(proxyId: string, now: number): ServiceEndpoints[] {
    const hit = this.#cache.get(proxyId);
    if (hit !== undefined && now - hit.at < ENDPOINTS_TTL_MS) return hit.endpoints;
    const config = this.#generated?.(proxyId) ?? null;
    const endpoints = config === null ? [] : endpointsOfConfig(proxyId, config);
    this.#cache.set(proxyId, { at: now, endpoints });
    return endpoints;
  }

  answer(query: URLSearchParams): CostApiAnswer {
    let window: number | undefined;
    const prices = { ...this.#prices };
    try {
      window = positive(query.get('window'), 'window');
      prices.interZonePerGb = positive(query.get('zone'), 'zone') ?? prices.interZonePerGb;
      prices.interRegionPerGb = positive(query.get('region'), 'region') ?? prices.interRegionPerGb;
    } catch (err) {
      return { status: 400, body: { error: (err as Error).message } };
    }
    const { flows, seconds } = this.#collector.costWindow(window);
    const now = Date.now();
    const proxies = new Set(flows.map((f) => f.proxy));
    for (const p of this.#cache.keys()) if (!proxies.has(p)) this.#cache.delete(p);
    const endpoints = [...proxies].flatMap((p) => this.#endpoints(p, now));
    return {
      status: 200,
      body: {
        ...costReport(flows, endpoints, seconds, prices),
        timestamp: now,
        ...(this.#collector.droppedFlows > 0 ? { droppedFlows: this.#collector.droppedFlows } : {}),
      },
    };
  }
}
