/**
 * The dashboard page: hash routes (routes.ts) over one index.html — the live service graph with the calls
 * and the top failing edges, a service's or workload's golden signals, the proxies' sync state, the
 * configuration in force, the cost of cross-zone traffic. Only the open view polls the API, every 5 s. Bundled by esbuild into
 * dist/dashboard/public/main.js.
 */
import type {
  ConfigResponse,
  CostResponse,
  DataSourceInfo,
  GraphNode,
  GraphResponse,
  ProxiesResponse,
  ServiceResponse,
  WorkloadResponse,
} from '../types.ts';
import { charts } from './charts.ts';
import { DetailView } from './detail-view.ts';
import { byId, window } from './dom.ts';
import { GraphView } from './graph-view.ts';
import { nodeHash, parseRoute } from './routes.ts';
import type { Route } from './routes.ts';
import {
  configRows,
  EDGE_HEADERS,
  edgeRows,
  headerRow,
  otherDiagnostics,
  proxyRows,
  topFailingRows,
} from './tables.ts';
import { costRows, costSummary } from './cost-table.ts';

const POLL_MS = 5000;
const VIEWS = ['graph', 'detail', 'proxies', 'config', 'cost'] as const;

class NotFound extends Error {}

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (res.status === 404) throw new NotFound(`${path}: not found`);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

const graphView = new GraphView((n) => {
  window.location.hash = nodeHash(n);
});
const detail = new DetailView();
for (const id of ['edges-head', 'failing-head']) byId(id).replaceChildren(headerRow(EDGE_HEADERS));
/** Graph nodes by id, from the last /api/graph: the tables link to node pages with them. */
let nodes = new Map<string, GraphNode>();

function show(view: (typeof VIEWS)[number]): void {
  for (const v of VIEWS) byId(`view-${v}`).hidden = v !== view;
  for (const v of ['graph', 'proxies', 'config', 'cost'])
    byId(`nav-${v}`).className = v === view ? 'current' : '';
}

/** Where the numbers came from, when not the control plane's own collector. */
function sourceNote(s: DataSourceInfo | undefined): string {
  if (s?.kind !== 'prometheus') return '';
  return s.error === undefined
    ? ` · from Prometheus ${s.url ?? ''}`
    : ` · Prometheus ${s.url ?? ''} failed (${s.error}): the control plane's own numbers`;
}

async function loadGraph(): Promise<GraphResponse> {
  const g = await getJson<GraphResponse>('/api/graph');
  nodes = new Map(g.nodes.map((n) => [n.id, n]));
  return g;
}

async function refreshGraph(): Promise<string> {
  const g = await loadGraph();
  graphView.render(g);
  byId('edges-body').replaceChildren(
    ...edgeRows(
      g.edges.filter((e) => e.kind === 'call'),
      nodes,
    ),
  );
  const failing = topFailingRows(g.edges, nodes);
  byId('failing-body').replaceChildren(...failing);
  byId('failing-empty').textContent = failing.length === 0 ? 'No call failed in the window.' : '';
  return g.timestamp === 0
    ? 'waiting for the first collection…'
    : `updated ${new Date(g.timestamp).toLocaleTimeString()} · rates over the last ${g.windowSeconds} s` +
        sourceNote(g.source);
}

async function refreshDetail(route: Extract<Route, { view: 'service' | 'workload' }>): Promise<string> {
  detail.open(route);
  const path = `/api/${route.view}s/${encodeURIComponent(route.namespace)}/${encodeURIComponent(route.name)}`;
  let note = '';
  try {
    const [r] = await Promise.all([getJson<ServiceResponse | WorkloadResponse>(path), loadGraph()]);
    detail.render(r, nodes);
    note = sourceNote(r.source);
  } catch (err) {
    if (!(err instanceof NotFound)) throw err;
    detail.missing(`Nothing is known of ${route.view} ${route.name}.${route.namespace} yet.`);
  }
  return `updated ${new Date().toLocaleTimeString()} · the last 15 minutes${note}`;
}

async function refreshProxies(): Promise<string> {
  const p = await getJson<ProxiesResponse>('/api/proxies');
  byId('proxies-body').replaceChildren(...proxyRows(p));
  byId('proxies-count').textContent = String(p.proxies.length);
  const nack = p.proxies.filter((x) => x.state === 'NACK').length;
  return `updated ${new Date().toLocaleTimeString()}${nack ? ` · ${nack} NACK` : ''}`;
}

async function refreshConfig(): Promise<string> {
  const c = await getJson<ConfigResponse>('/api/config');
  byId('config-body').replaceChildren(...configRows(c));
  byId('config-other').replaceChildren(...otherDiagnostics(c));
  const s = c.summary;
  byId('config-summary').textContent =
    `${s.resources} resources · ${s.errors} errors · ${s.warnings} warnings · ${s.infos} infos`;
  return `updated ${new Date().toLocaleTimeString()}`;
}

async function refreshCost(): Promise<string> {
  // The page's own ?zone=&region=&window= go to the API as they are: the server checks them.
  const c = await getJson<CostResponse>(`/api/cost${window.location.search}`);
  byId('cost-body').replaceChildren(...costRows(c));
  byId('cost-summary').textContent = costSummary(c);
  byId('cost-prices').textContent =
    `Prices: $${c.prices.interZonePerGb}/GB charged to each side of a zone crossing, ` +
    `$${c.prices.interRegionPerGb}/GB for a region crossing.`;
  return `updated ${new Date(c.timestamp).toLocaleTimeString()} · over the last ${Math.round(c.windowSeconds)} s`;
}

let generation = 0;

async function refresh(): Promise<void> {
  const route = parseRoute(window.location.hash);
  const mine = ++generation;
  const status = byId('status');
  try {
    let text: string;
    switch (route.view) {
      case 'graph':
        show('graph');
        detail.close();
        graphView.shown();
        text = await refreshGraph();
        break;
      case 'service':
      case 'workload':
        show('detail');
        text = await refreshDetail(route);
        break;
      case 'proxies':
        show('proxies');
        detail.close();
        text = await refreshProxies();
        break;
      case 'config':
        show('config');
        detail.close();
        text = await refreshConfig();
        break;
      case 'cost':
        show('cost');
        detail.close();
        text = await refreshCost();
        break;
    }
    if (mine !== generation) return;
    status.textContent = text;
    status.className = 'status';
  } catch (err) {
    if (mine !== generation) return;
    status.textContent = `cannot reach the control plane: ${(err as Error).message}`;
    status.className = 'status down';
  }
}

// For the browser tests and for debugging from the console: the graph and the charts as the page drew them.
(globalThis as unknown as { weftDashboard: unknown }).weftDashboard = {
  get cy() {
    return graphView.cy;
  },
  charts,
};

window.addEventListener('hashchange', () => void refresh());
void refresh();
setInterval(() => void refresh(), POLL_MS);
