/**
 * The dashboard's JSON API: GET /api/graph, /api/services/:ns/:name, /api/workloads/:ns/:name,
 * /api/proxies, /api/config, /api/cost (cost-view.ts). Each handler answers from what the control plane already holds (the ADS
 * server's sync state, the collector's rings); nothing here blocks on a proxy.
 */
import type { ProxyStatus } from '../control/xds/ads-server.ts';
import { SHORT_TYPE_NAME } from '../control/xds/type-state.ts';
import type { CostView } from './cost-view.ts';
import { workloadNodeId } from './stats-collector.ts';
import type { ScrapeTarget, StatsCollector } from './stats-collector.ts';
import { collectorSignals } from './signal-source.ts';
import type { SignalSource } from './signal-source.ts';
import type {
  ConfigResponse,
  ProxiesResponse,
  ProxyInfo,
  ServiceResponse,
  SyncState,
  WorkloadResponse,
} from './types.ts';

export interface DashboardSources {
  /** The connected proxies (AdsServer.status()). */
  proxies: () => readonly ProxyStatus[];
  collector: StatsCollector;
  /** Where the golden signals come from; the collector when absent. */
  signals?: SignalSource;
  config: () => ConfigResponse;
  /** /api/cost; absent: 404. */
  cost?: CostView;
}

/** Node metadata naming the proxy's admin address, host:port (set by `weft up`). */
export const ADMIN_ADDRESS_KEY = 'WEFT_ADMIN_ADDRESS';

const LOOPBACK_PEER = /^(?:ipv4:)?127\.|^(?:ipv6:)?\[?::1\]?|^(?:ipv6:)?\[?::ffff:127\./;

/**
 * Where to scrape a proxy: its WEFT_ADMIN_ADDRESS; else, for a proxy connected over loopback, 127.0.0.1 and
 * its WEFT_ADMIN_PORT (the agent bootstrap binds admin on 127.0.0.1). Null when neither applies.
 */
export function adminAddress(status: ProxyStatus): string | null {
  const md = status.node.metadata;
  const explicit = md[ADMIN_ADDRESS_KEY];
  if (typeof explicit === 'string' && /^[^\s/]+:\d{1,5}$/.test(explicit)) return explicit;
  const port = md.WEFT_ADMIN_PORT;
  const n = typeof port === 'number' ? port : typeof port === 'string' ? Number(port) : NaN;
  if (Number.isInteger(n) && n > 0 && n < 65536 && LOOPBACK_PEER.test(status.peer)) return `127.0.0.1:${n}`;
  return null;
}

/** The collector's scrape targets: one per admin address (a proxy may have more than one stream). */
export function scrapeTargets(statuses: readonly ProxyStatus[]): ScrapeTarget[] {
  const out = new Map<string, ScrapeTarget>();
  for (const s of statuses) {
    const address = adminAddress(s);
    if (address === null || out.has(address)) continue;
    const n = s.node;
    const labels = n.labels;
    out.set(address, {
      address,
      proxyId: n.id,
      name: `${n.name}.${n.namespace}`,
      ips: n.ipAddresses ?? [],
      ...(n.type === 'sidecar' || n.type === 'router'
        ? {
            workload: {
              name: n.workloadName,
              namespace: n.namespace,
              app: labels['service.istio.io/canonical-name'] ?? labels.app,
              version: labels['service.istio.io/canonical-revision'] ?? labels.version,
            },
          }
        : {}),
    });
  }
  return [...out.values()];
}

const RANK: Record<SyncState, number> = { SYNCED: 0, STALE: 1, NACK: 2 };

export function proxiesView(statuses: readonly ProxyStatus[], collector?: StatsCollector): ProxiesResponse {
  return {
    proxies: statuses.map((s): ProxyInfo => {
      const types = s.types.map((t) => ({
        type: (SHORT_TYPE_NAME[t.typeUrl] ?? t.typeUrl).toUpperCase(),
        state: t.state,
        sentVersion: t.lastSentVersion,
        ackedVersion: t.lastAckedVersion,
        ...(t.error !== undefined ? { error: t.error } : {}),
      }));
      const state = types.reduce<SyncState>((w, t) => (RANK[t.state] > RANK[w] ? t.state : w), 'SYNCED');
      const address = adminAddress(s);
      const scrapeError = address === null ? undefined : collector?.scrapeError(address);
      return {
        id: s.node.id,
        name: s.node.name,
        namespace: s.node.namespace,
        type: s.node.type,
        stream: s.stream,
        connectedAt: s.connectedAt,
        adminAddress: address,
        ...(scrapeError !== undefined ? { scrapeError } : {}),
        state,
        types,
      };
    }),
  };
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

const notFound = (what: string): ApiAnswer => ({ status: 404, body: { error: `${what} not found` } });

/**
 * Answers one GET under /api/ (`pathname` already decoded by segment); undefined when no route matches.
 * Asynchronous only for a Prometheus source, which answers for itself when it cannot reach its server.
 */
export async function handleApi(
  sources: DashboardSources,
  pathname: string,
  query: URLSearchParams = new URLSearchParams(),
): Promise<ApiAnswer | undefined> {
  const signals = sources.signals ?? collectorSignals(sources.collector);
  const parts = pathname.split('/').slice(2).map(decodeURIComponent);
  const [what, ns, name, ...rest] = parts;
  if (rest.length > 0) return undefined;
  switch (what) {
    case 'graph':
      return ns === undefined ? { status: 200, body: await signals.graph() } : undefined;
    case 'proxies':
      return ns === undefined
        ? { status: 200, body: proxiesView(sources.proxies(), sources.collector) }
        : undefined;
    case 'config':
      return ns === undefined ? { status: 200, body: sources.config() } : undefined;
    case 'cost':
      return ns === undefined && sources.cost !== undefined ? sources.cost.answer(query) : undefined;
    case 'services': {
      if (!ns || !name) return undefined;
      const s = await signals.service(ns, name);
      if (!s) return notFound(`service ${ns}/${name}`);
      const body: ServiceResponse = {
        name,
        namespace: ns,
        ...s,
        ejected: sources.collector.ejections().filter((e) => e.service === s.host),
        rateLimited: sources.collector.rateLimited(s.host),
      };
      return { status: 200, body };
    }
    case 'workloads': {
      if (!ns || !name) return undefined;
      const w = await signals.workload(ns, name);
      if (!w) return notFound(`workload ${ns}/${name}`);
      const id = workloadNodeId({ name, namespace: ns });
      const body: WorkloadResponse = {
        name,
        namespace: ns,
        ...w,
        ejected: sources.collector.ejections().filter((e) => e.workload === id),
      };
      return { status: 200, body };
    }
    default:
      return undefined;
  }
}
