/** The cost view's table and summary, from /api/cost. */
import type { CostFigures, CostResponse } from '../types.ts';
import type { Element } from './dom.ts';
import { h } from './dom.ts';
import { bytes, percent } from './format.ts';

const usd = (v: number): string => (v < 100 ? `$${v.toFixed(2)}` : `$${Math.round(v)}`);

function row(source: string, service: string, f: CostFigures, className?: string): Element {
  const tr = h('tr', undefined, className);
  tr.setAttribute('data-cost-edge', `${source}>${service}`);
  for (const text of [
    source,
    service,
    bytes(f.bytesPerSecond.inZone),
    bytes(f.bytesPerSecond.crossZone),
    bytes(f.bytesPerSecond.crossRegion),
    percent(f.bytesPct?.inZone ?? null),
    percent(f.requestsPct?.inZone ?? null),
    usd(f.monthlyCost),
    f.uniform === null ? '–' : `${usd(f.uniform.monthlyCost)}${f.uniform.partial ? ' (partial)' : ''}`,
  ])
    tr.appendChild(h('td', text));
  return tr;
}

/** One row per service edge, most expensive first, then the total. */
export function costRows(r: CostResponse): Element[] {
  if (r.edges.length === 0) {
    const tr = h('tr');
    tr.appendChild(h('td', 'No traffic between localities was seen in the window.'));
    return [tr];
  }
  return [...r.edges.map((e) => row(e.source, e.service, e)), row('total', '', r.total, 'total')];
}

export function costSummary(r: CostResponse): string {
  const t = r.total;
  if (t.bytesPct === null) return 'No traffic yet.';
  const uniform =
    t.uniform === null
      ? ''
      : ` Without locality-aware routing (uniform spread): ${percent(t.uniform.bytesPct?.crossZone ?? null)} ` +
        `across zones, ${usd(t.uniform.monthlyCost)}/month.`;
  return (
    `${percent(t.bytesPct.inZone)} of the bytes stayed in their zone, ${percent(t.bytesPct.crossZone)} ` +
    `crossed zones, ${percent(t.bytesPct.crossRegion)} crossed regions: about ${usd(t.monthlyCost)}/month.` +
    uniform
  );
}
