/**
 * The live service graph (cytoscape): workloads and services as nodes, calls and canary shares as edges
 * labelled with their rate, errors and p99. Laid out again only when nodes or edges come or go. Tapping a
 * node opens its page.
 */
import cytoscape from 'cytoscape';
import type { Core, ElementDefinition } from 'cytoscape';
import type { GraphNode, GraphResponse } from '../types.ts';
import { byId } from './dom.ts';
import { edgeLabel } from './format.ts';

const STYLE = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'font-size': 11,
      'text-valign': 'bottom',
      'text-margin-y': 4,
      'text-wrap': 'wrap',
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
  { selector: 'edge[?idle]', style: { 'line-color': '#d1d5db', 'target-arrow-color': '#d1d5db' } },
  { selector: 'edge[?warn]', style: { 'line-color': '#f59e0b', 'target-arrow-color': '#f59e0b' } },
  { selector: 'edge[?fail]', style: { 'line-color': '#dc2626', 'target-arrow-color': '#dc2626' } },
  { selector: 'edge[?plaintext]', style: { 'line-style': 'dashed' } },
];

function nodeLabel(n: GraphNode): string {
  return n.kind === 'service'
    ? `${n.name}.${n.namespace}`
    : `${n.name}${n.version ? ` (${n.version})` : ''}\n${n.namespace}`;
}

function elements(g: GraphResponse): ElementDefinition[] {
  const out: ElementDefinition[] = [];
  for (const n of g.nodes) {
    out.push({
      group: 'nodes',
      data: {
        id: n.id,
        kind: n.kind,
        name: n.name,
        namespace: n.namespace,
        label: nodeLabel(n),
        proxied: n.proxied === true,
      },
    });
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
        idle: e.rps === 0,
        fail: err >= 5,
        warn: err > 0 && err < 5,
        plaintext: e.mtls === false,
      },
    });
  }
  return out;
}

export class GraphView {
  #cy: Core | undefined;
  #shape = '';
  readonly #onNode: (n: Pick<GraphNode, 'kind' | 'name' | 'namespace'>) => void;

  constructor(onNode: (n: Pick<GraphNode, 'kind' | 'name' | 'namespace'>) => void) {
    this.#onNode = onNode;
  }

  /** The cytoscape instance, once the first graph arrived (the tests read labels through it). */
  get cy(): Core | undefined {
    return this.#cy;
  }

  render(g: GraphResponse): void {
    const els = elements(g);
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
      this.#cy.on('tap', 'node', (evt) => {
        const d = (evt.target as cytoscape.NodeSingular).data() as {
          kind: GraphNode['kind'];
          name: string;
          namespace: string;
        };
        this.#onNode({ kind: d.kind, name: d.name, namespace: d.namespace });
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

  /** After the graph's section was hidden: its size may have changed while cytoscape could not see it. */
  shown(): void {
    if (!this.#cy) return;
    this.#cy.resize();
    this.#cy.fit(undefined, 20);
  }
}
