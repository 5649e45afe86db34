/**
 * The dashboard's first page: the live service graph (cytoscape; /api/graph every 5 s) and the proxies'
 * sync state (/api/proxies). Bundled by esbuild into dist/dashboard/public/main.js.
 */
import cytoscape from 'cytoscape';
import type { Core, ElementDefinition } from 'cytoscape';
import type { GraphResponse, ProxiesResponse } from '../types.ts';
import { byId, h } from './dom.ts';
import { edgeLabel, ms, percent, rate } from './format.ts';

const POLL_MS = 5000;

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

const STYLE = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'font-size': 11,
      'text-valign': 'bottom',
      'text-margin-y': 4,
      color: '#222',
      width: 28,
      height: 28,
    },
  },
  { selector: 'node[kind = "workload"]', style: { shape: 'ellipse', 'background-color': '#3b82f6' } },
  { selector: 'node[kind = "workload"][!proxied]', style: { 'background-color': '#9ca3af' } },
  { selector: 'node[kind = "service"]', style: { shape: 'triangle', 'background-color': '#8b5cf6' } },
  {
    selector: 'edge',
    style: {
      label: 'data(label)',
      'font-size': 9,
      'text-rotation': 'autorotate',
      'text-background-color': '#fff',
      'text-background-opacity': 0.85,
      'text-background-padding': '2px',
      width: 2,
      'line-color': '#16a34a',
      'target-arrow-color': '#16a34a',
      'target-arrow-shape': 'triangle',
      'curve-style': 'bezier',
    },
  },
  { selector: 'edge[idle]', style: { 'line-color': '#d1d5db', 'target-arrow-color': '#d1d5db' } },
  { selector: 'edge[warn]', style: { 'line-color': '#f59e0b', 'target-arrow-color': '#f59e0b' } },
  { selector: 'edge[fail]', style: { 'line-color': '#dc2626', 'target-arrow-color': '#dc2626' } },
  { selector: 'edge[?plaintext]', style: { 'line-style': 'dashed' } },
];

function elements(g: GraphResponse): ElementDefinition[] {
  const out: ElementDefinition[] = [];
  for (const n of g.nodes) {
    const label =
      n.kind === 'service'
        ? `${n.name}.${n.namespace}`
        : `${n.name}${n.version ? ` (${n.version})` : ''}\n${n.namespace}`;
    out.push({ group: 'nodes', data: { id: n.id, kind: n.kind, label, proxied: n.proxied === true } });
  }
  for (const e of g.edges) {
    const err = e.errorPct ?? 0;
    out.push({
      group: 'edges',
      data: {
        id: e.id,
        source: e.source,
        target: e.target,
        label: edgeLabel(e),
        ...(e.rps === 0 ? { idle: true } : {}),
        ...(err >= 5 ? { fail: true } : err > 0 ? { warn: true } : {}),
        plaintext: e.mtls === false,
      },
    });
  }
  return out;
}

class GraphView {
  #cy: Core | undefined;
  #shape = '';

  render(g: GraphResponse): void {
    const els = elements(g);
    // Layout again only when nodes or edges come or go; otherwise only the labels change.
    const shape = els
      .map((e) => String(e.data.id))
      .sort()
      .join('|');
    if (!this.#cy) {
      this.#cy = cytoscape({
        container: byId('graph'),
        elements: els,
        style: STYLE as unknown as cytoscape.StylesheetStyle[],
        wheelSensitivity: 0.3,
      });
    } else if (shape !== this.#shape) {
      this.#cy.elements().remove();
      this.#cy.add(els);
    } else {
      for (const e of els) this.#cy.getElementById(String(e.data.id)).data(e.data);
    }
    if (shape !== this.#shape) {
      this.#cy.layout({ name: 'breadthfirst', directed: true, spacingFactor: 1.4, padding: 20 }).run();
      this.#shape = shape;
    }
    byId('graph-empty').textContent =
      g.nodes.length === 0 ? 'No proxies and no traffic yet: start some workloads and send requests.' : '';
  }
}

function renderEdges(g: GraphResponse): void {
  const rows = g.edges
    .filter((e) => e.kind === 'call')
    .sort((a, b) => (b.errorPct ?? 0) - (a.errorPct ?? 0) || b.rps - a.rps)
    .map((e) => {
      const tr = h('tr');
      for (const text of [
        e.source.replace(/^workload:/, ''),
        e.target.replace(/^service:/, ''),
        e.protocol,
        rate(e.rps),
        percent(e.errorPct),
        ms(e.p50Ms),
        ms(e.p99Ms),
        e.mtls === true ? '🔒 mTLS' : e.mtls === false ? 'plaintext' : '?',
      ])
        tr.appendChild(h('td', text));
      return tr;
    });
  byId('edges-body').replaceChildren(...rows);
}

function renderProxies(p: ProxiesResponse): void {
  const rows = p.proxies.map((x) => {
    const tr = h('tr');
    tr.appendChild(h('td', `${x.name}.${x.namespace}`));
    tr.appendChild(h('td', x.type));
    tr.appendChild(h('td', x.state, `state ${x.state.toLowerCase()}`));
    const types = h('td');
    for (const t of x.types) {
      const span = types.appendChild(
        h('span', `${t.type} ${t.sentVersion.slice(0, 8)}`, `chip ${t.state.toLowerCase()}`),
      );
      span.title = t.error ?? `${t.state}; acked ${t.ackedVersion.slice(0, 8) || '–'}`;
    }
    tr.appendChild(types);
    const errors = x.types.filter((t) => t.error !== undefined).map((t) => `${t.type}: ${t.error}`);
    if (x.scrapeError !== undefined) errors.push(`stats: ${x.scrapeError}`);
    tr.appendChild(h('td', errors.join('\n'), 'error'));
    return tr;
  });
  byId('proxies-body').replaceChildren(...rows);
  byId('proxies-count').textContent = String(p.proxies.length);
}

async function refresh(view: GraphView): Promise<void> {
  const status = byId('status');
  try {
    const [g, p] = await Promise.all([
      getJson<GraphResponse>('/api/graph'),
      getJson<ProxiesResponse>('/api/proxies'),
    ]);
    view.render(g);
    renderEdges(g);
    renderProxies(p);
    status.textContent =
      g.timestamp === 0
        ? 'waiting for the first collection…'
        : `updated ${new Date(g.timestamp).toLocaleTimeString()} · rates over the last ${g.windowSeconds} s`;
    status.className = 'status';
  } catch (err) {
    status.textContent = `cannot reach the control plane: ${(err as Error).message}`;
    status.className = 'status down';
  }
}

const view = new GraphView();
void refresh(view);
setInterval(() => void refresh(view), POLL_MS);
