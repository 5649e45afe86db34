/**
 * Golden-signal charts (uPlot): for one direction of a service or workload, three charts over the last
 * 15 minutes — request rate, error %, latency p50/p90/p99 — from one SeriesResponse. Charts are kept by id
 * and fed new data on each poll, so the page does not flicker.
 */
import uPlot from 'uplot';
import type { SeriesResponse } from '../types.ts';
import type { Element } from './dom.ts';
import { h, wrap } from './dom.ts';
import { ms, percent, rate } from './format.ts';

/** The window the charts show, whatever the collector keeps. */
export const CHART_WINDOW_SECONDS = 15 * 60;

/** Below this many samples in a series, each sample is drawn as a dot. */
const SPARSE_POINTS = 40;

type Values = (number | null)[];

interface SeriesSpec {
  label: string;
  color: string;
  values: (s: SeriesResponse) => Values;
}

interface ChartSpec {
  key: 'rate' | 'errors' | 'latency';
  title: string;
  format: (v: number) => string;
  series: SeriesSpec[];
}

/** Series colours: distinct enough that a test can find a series' own pixels on the canvas. */
export const COLORS = {
  rps: '#2563eb',
  errorPct: '#dc2626',
  p50Ms: '#16a34a',
  p90Ms: '#d97706',
  p99Ms: '#7c3aed',
} as const;

const SPECS: ChartSpec[] = [
  {
    key: 'rate',
    title: 'requests / s',
    format: rate,
    series: [{ label: 'rps', color: COLORS.rps, values: (s) => s.rps }],
  },
  {
    key: 'errors',
    title: 'errors',
    format: percent,
    series: [{ label: 'error %', color: COLORS.errorPct, values: (s) => s.errorPct }],
  },
  {
    key: 'latency',
    title: 'latency',
    format: ms,
    series: [
      { label: 'p50', color: COLORS.p50Ms, values: (s) => s.p50Ms },
      { label: 'p90', color: COLORS.p90Ms, values: (s) => s.p90Ms },
      { label: 'p99', color: COLORS.p99Ms, values: (s) => s.p99Ms },
    ],
  },
];

function data(spec: ChartSpec, s: SeriesResponse): uPlot.AlignedData {
  return [s.timestamps.map((t) => t / 1000), ...spec.series.map((x) => x.values(s))];
}

function options(spec: ChartSpec, width: number): uPlot.Options {
  return {
    width,
    height: 160,
    series: [
      {},
      ...spec.series.map((x) => ({
        label: x.label,
        stroke: x.color,
        width: 2,
        spanGaps: false,
        // A few samples make a line too short to see on a 15-minute axis: mark each sample until the
        // series has enough of them to read as a line.
        points: {
          show: (u: uPlot, i: number): boolean =>
            (u.data[i] as Values).filter((v) => v !== null).length < SPARSE_POINTS,
          size: 6,
          stroke: x.color,
          fill: x.color,
        },
        value: (_u: uPlot, v: number | null) => (v === null ? '–' : spec.format(v)),
      })),
    ],
    scales: {
      x: {
        time: true,
        range: (): uPlot.Range.MinMax => {
          const now = Date.now() / 1000;
          return [now - CHART_WINDOW_SECONDS, now];
        },
      },
      y: { range: (_u, _min, max): uPlot.Range.MinMax => [0, max > 0 ? max * 1.15 : 1] },
    },
    axes: [{}, { size: 64, values: (_u, splits) => splits.map((v) => spec.format(v)) }],
    legend: { live: true },
  };
}

/** Every chart on the page by id (`DIRECTION-KEY`, e.g. `inbound-rate`): the page's tests read them. */
export const charts = new Map<string, uPlot>();

export function destroyCharts(): void {
  for (const c of charts.values()) c.destroy();
  charts.clear();
}

/**
 * The charts of one direction inside `container` (created on the first call, fed on later ones). Returns
 * whether any series has a value.
 */
export function renderSignals(container: Element, direction: string, s: SeriesResponse): boolean {
  // Room for each box's padding and border and the gaps between boxes, so the three sit in one row.
  const width = Math.max(260, Math.floor((container.clientWidth - 96) / SPECS.length));
  for (const spec of SPECS) {
    const id = `${direction}-${spec.key}`;
    const existing = charts.get(id);
    if (existing) {
      existing.setData(data(spec, s));
      continue;
    }
    const box = container.appendChild(wrap('div', [h('h3', spec.title)], 'chart'));
    box.setAttribute('data-chart', id);
    charts.set(id, new uPlot(options(spec, width), data(spec, s), box));
  }
  return SPECS.some((spec) => spec.series.some((x) => x.values(s).some((v) => v !== null)));
}
