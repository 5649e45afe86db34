/**
 * The page's tables: calls and top failing edges (graph page, service and workload pages), proxies with
 * their sync state and NACK errors, and the configuration in force with its `analyze` diagnostics.
 */
import type {
  ConfigDiagnostic,
  ConfigResponse,
  EjectedEndpoint,
  GraphEdge,
  GraphNode,
  ProxiesResponse,
  RateLimitedClient,
} from '../types.ts';
import type { Element } from './dom.ts';
import { h, link, wrap } from './dom.ts';
import { duration, ms, percent, rate } from './format.ts';
import { nodeHash } from './routes.ts';

/** The columns of every table of edges (calls, top failing edges), on the graph page and the detail pages. */
export const EDGE_HEADERS = ['from', 'to', 'protocol', 'rps', 'errors', 'p50', 'p99', 'security'] as const;

/** A header row of `headers`. */
export function headerRow(headers: readonly string[]): Element {
  return wrap(
    'tr',
    headers.map((t) => h('th', t)),
  );
}

/** A node id as a link to its page when the node is known, else as text. */
function nodeCell(id: string, nodes: ReadonlyMap<string, GraphNode>): Element {
  const n = nodes.get(id);
  const text = id.replace(/^(workload|service):/, '');
  return wrap('td', [n ? link(text, nodeHash(n)) : h('span', text)]);
}

function edgeRow(e: GraphEdge, nodes: ReadonlyMap<string, GraphNode>): Element {
  const tr = h('tr');
  tr.setAttribute('data-edge', e.id);
  tr.appendChild(nodeCell(e.source, nodes));
  tr.appendChild(nodeCell(e.target, nodes));
  for (const text of [
    e.protocol,
    rate(e.rps),
    percent(e.errorPct),
    ms(e.p50Ms),
    ms(e.p99Ms),
    e.mtls === true ? 'mTLS' : e.mtls === false ? 'plaintext' : '?',
  ])
    tr.appendChild(h('td', text));
  if ((e.errorPct ?? 0) > 0) tr.className = (e.errorPct ?? 0) >= 5 ? 'failing' : 'warning';
  return tr;
}

const byErrorsThenRate = (a: GraphEdge, b: GraphEdge): number =>
  (b.errorPct ?? 0) - (a.errorPct ?? 0) || b.rps - a.rps;

/** Every edge, worst first. */
export function edgeRows(edges: readonly GraphEdge[], nodes: ReadonlyMap<string, GraphNode>): Element[] {
  return [...edges].sort(byErrorsThenRate).map((e) => edgeRow(e, nodes));
}

/** The calls with errors in the window, worst first, at most `limit`. */
export function topFailingRows(
  edges: readonly GraphEdge[],
  nodes: ReadonlyMap<string, GraphNode>,
  limit = 5,
): Element[] {
  return edges
    .filter((e) => e.kind === 'call' && (e.errorPct ?? 0) > 0)
    .sort(byErrorsThenRate)
    .slice(0, limit)
    .map((e) => edgeRow(e, nodes));
}

/** Ejected endpoints: endpoint, its workload, the clients ejecting it, since when. */
export function ejectedRows(
  ejected: readonly EjectedEndpoint[],
  nodes: ReadonlyMap<string, GraphNode>,
  now: number,
): Element[] {
  return ejected.map((e) => {
    const tr = h('tr', undefined, 'failing');
    tr.setAttribute('data-ejected', e.endpoint);
    tr.appendChild(h('td', e.endpoint));
    tr.appendChild(e.workload !== undefined ? nodeCell(e.workload, nodes) : h('td', '–'));
    tr.appendChild(h('td', e.ejectedBy.join(', ')));
    const since = h('td', `${duration(now - e.since)} (since ${new Date(e.since).toLocaleTimeString()})`);
    since.title = new Date(e.since).toISOString();
    tr.appendChild(since);
    return tr;
  });
}

/** Callers answered 429: who, per second over the window, how many in the retention. */
export function rateLimitedRows(
  limited: readonly RateLimitedClient[],
  nodes: ReadonlyMap<string, GraphNode>,
): Element[] {
  return limited.map((l) => {
    const tr = h('tr', undefined, l.rps > 0 ? 'warning' : '');
    tr.setAttribute('data-limited', l.source);
    tr.appendChild(nodeCell(l.source, nodes));
    tr.appendChild(h('td', rate(l.rps)));
    tr.appendChild(h('td', String(Math.round(l.total))));
    return tr;
  });
}

export function proxyRows(p: ProxiesResponse): Element[] {
  return p.proxies.map((x) => {
    const tr = h('tr');
    tr.setAttribute('data-proxy', `${x.name}.${x.namespace}`);
    tr.appendChild(h('td', `${x.name}.${x.namespace}`));
    tr.appendChild(h('td', x.type));
    tr.appendChild(h('td', x.state, `state ${x.state.toLowerCase()}`));
    tr.appendChild(h('td', new Date(x.connectedAt).toLocaleTimeString()));
    const types = h('td');
    for (const t of x.types) {
      const span = types.appendChild(
        h('span', `${t.type} ${t.state} ${t.sentVersion.slice(0, 8)}`, `chip ${t.state.toLowerCase()}`),
      );
      span.title = `sent ${t.sentVersion || '–'}; acked ${t.ackedVersion || '–'}`;
    }
    tr.appendChild(types);
    const errors = x.types.filter((t) => t.error !== undefined).map((t) => `${t.type}: ${t.error}`);
    if (x.scrapeError !== undefined) errors.push(`stats: ${x.scrapeError}`);
    tr.appendChild(h('td', errors.join('\n'), 'error'));
    return tr;
  });
}

function diagnosticItem(d: ConfigDiagnostic): Element {
  const where = [d.field, d.file !== undefined ? `${d.file}${d.line !== undefined ? `:${d.line}` : ''}` : '']
    .filter((x) => x)
    .join(' · ');
  return wrap(
    'li',
    [
      h('span', d.severity, `chip ${d.severity}`),
      h('code', d.code),
      h('span', ` ${d.message}`),
      ...(where ? [h('span', ` (${where})`, 'hint')] : []),
    ],
    `diagnostic ${d.severity}`,
  );
}

export function configRows(c: ConfigResponse): Element[] {
  return c.resources.map((r) => {
    const tr = h('tr');
    tr.setAttribute('data-resource', `${r.kind}/${r.namespace}/${r.name}`);
    tr.appendChild(h('td', r.kind));
    tr.appendChild(h('td', `${r.namespace}/${r.name}`));
    tr.appendChild(h('td', `${r.file}:${r.line}`, 'hint'));
    const spec = wrap('details', [h('summary', 'spec'), h('pre', JSON.stringify(r.spec, null, 2))]);
    tr.appendChild(wrap('td', [spec]));
    tr.appendChild(
      wrap('td', [
        r.diagnostics.length === 0
          ? h('span', 'ok', 'chip ok')
          : wrap('ul', r.diagnostics.map(diagnosticItem), 'diagnostics'),
      ]),
    );
    return tr;
  });
}

export function otherDiagnostics(c: ConfigResponse): Element[] {
  return c.other.map(diagnosticItem);
}
