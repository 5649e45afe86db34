/**
 * A service's or a workload's page: golden-signal charts over the last 15 minutes (inbound; outbound too
 * for a workload) and its edges. Built when the route opens it, fed by each poll.
 */
import type { GraphNode, SeriesResponse, ServiceResponse, WorkloadResponse } from '../types.ts';
import type { Element } from './dom.ts';
import { byId, h, link, wrap } from './dom.ts';
import { destroyCharts, renderSignals } from './charts.ts';
import type { Route } from './routes.ts';
import { EDGE_HEADERS, edgeRows, ejectedRows, headerRow, rateLimitedRows } from './tables.ts';

type DetailRoute = Extract<Route, { view: 'service' | 'workload' }>;

function table(headers: readonly string[], body: Element): Element {
  return wrap('table', [wrap('thead', [headerRow(headers)]), body]);
}

/** A table's body and the line shown instead of rows when it has none. */
interface Listing {
  body: Element;
  empty: Element;
  emptyText: string;
}

function listing(
  id: string,
  title: string,
  headers: readonly string[],
  emptyText: string,
): [Element, Listing] {
  const body = h('tbody');
  body.setAttribute('id', `${id}-body`);
  const empty = h('p', '', 'hint');
  empty.setAttribute('id', `${id}-empty`);
  const section = wrap('section', [h('h3', title), table(headers, body), empty]);
  return [section, { body, empty, emptyText }];
}

function fill(l: Listing | undefined, rows: Element[]): void {
  if (!l) return;
  l.body.replaceChildren(...rows);
  l.empty.textContent = rows.length === 0 ? l.emptyText : '';
}

export class DetailView {
  #key = '';
  #directions = new Map<string, { charts: Element; empty: Element }>();
  #edges: Element | undefined;
  #ejected: Listing | undefined;
  #limited: Listing | undefined;

  /** Builds the page's frame for `route` unless it is already showing. */
  open(route: DetailRoute): void {
    const key = `${route.view}/${route.namespace}/${route.name}`;
    if (key === this.#key) return;
    this.#key = key;
    destroyCharts();
    this.#directions.clear();
    const root = byId('detail');
    const title = h('h2', `${route.view} ${route.name}.${route.namespace}`);
    const back = link('← service graph', '#/', 'back');
    const sections: Element[] = [back, title];
    const directions = route.view === 'workload' ? ['inbound', 'outbound'] : ['inbound'];
    for (const d of directions) {
      const charts = h('div', undefined, 'charts');
      charts.setAttribute('id', `charts-${d}`);
      const empty = h('p', '', 'hint');
      this.#directions.set(d, { charts, empty });
      sections.push(wrap('section', [h('h3', d), charts, empty]));
    }
    this.#edges = h('tbody');
    sections.push(
      wrap('section', [
        h('h3', route.view === 'service' ? 'callers and destinations' : 'calls'),
        table(EDGE_HEADERS, this.#edges),
      ]),
    );
    const [ejected, ejectedList] = listing(
      'ejected',
      route.view === 'service' ? 'ejected endpoints' : 'ejected by outlier detection',
      ['endpoint', 'workload', 'ejected by', 'for'],
      'no endpoint ejected',
    );
    this.#ejected = ejectedList;
    sections.push(ejected);
    this.#limited = undefined;
    if (route.view === 'service') {
      const [limited, limitedList] = listing(
        'limited',
        'rate-limited clients (429)',
        ['client', '429/s', 'total (15 min)'],
        'no client rate-limited',
      );
      this.#limited = limitedList;
      sections.push(limited);
    }
    const status = h('p', '', 'hint');
    status.setAttribute('id', 'detail-status');
    sections.push(status);
    root.replaceChildren(...sections);
  }

  close(): void {
    if (this.#key === '') return;
    this.#key = '';
    destroyCharts();
    byId('detail').replaceChildren();
  }

  render(r: ServiceResponse | WorkloadResponse, nodes: ReadonlyMap<string, GraphNode>): void {
    const series: [string, SeriesResponse][] = [['inbound', r.inbound]];
    if ('outbound' in r) series.push(['outbound', r.outbound]);
    for (const [d, s] of series) {
      const slot = this.#directions.get(d);
      if (!slot) continue;
      const any = renderSignals(slot.charts, d, s);
      slot.empty.textContent = any ? '' : `No ${d} traffic in the last 15 minutes.`;
    }
    this.#edges?.replaceChildren(...edgeRows(r.edges, nodes));
    fill(this.#ejected, ejectedRows(r.ejected, nodes, Date.now()));
    if ('rateLimited' in r) fill(this.#limited, rateLimitedRows(r.rateLimited, nodes));
    byId('detail-status').textContent = '';
  }

  /** The API said 404 (nothing known yet) or failed. */
  missing(message: string): void {
    byId('detail-status').textContent = message;
  }
}
