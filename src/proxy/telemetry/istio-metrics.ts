/**
 * Istio's metric families (`istio_requests_total`, ...), one set per stats store, shared by every listener
 * of the proxy. A series is one label combination; whoever records keeps the series object, so recording is
 * a property increment (counters) or a short bucket search (histograms). Rendered in /stats/prometheus
 * after the Envoy stats, with Istio's names, label order and buckets.
 */
import { VERSION } from '../../core/version.ts';
import { bucketIndex, ENVOY_DEFAULT_BUCKETS } from '../stats/histogram.ts';
import { compareStrings, escapeLabelValue, formatSampleValue } from '../stats/prometheus.ts';
import type { RenderOptions, StatsStore } from '../stats/store.ts';

export type IstioMetricName =
  | 'requests_total'
  | 'request_duration_milliseconds'
  | 'request_bytes'
  | 'response_bytes'
  | 'request_messages_total'
  | 'response_messages_total'
  | 'tcp_sent_bytes_total'
  | 'tcp_received_bytes_total'
  | 'tcp_connections_opened_total'
  | 'tcp_connections_closed_total';

export const HTTP_METRICS: readonly IstioMetricName[] = [
  'requests_total',
  'request_duration_milliseconds',
  'request_bytes',
  'response_bytes',
  'request_messages_total',
  'response_messages_total',
];

export const TCP_METRICS: readonly IstioMetricName[] = [
  'tcp_sent_bytes_total',
  'tcp_received_bytes_total',
  'tcp_connections_opened_total',
  'tcp_connections_closed_total',
];

const HISTOGRAMS: ReadonlySet<IstioMetricName> = new Set([
  'request_duration_milliseconds',
  'request_bytes',
  'response_bytes',
]);

/**
 * Istio's histograms are Envoy histograms with Envoy's default bounds (unless the pod's
 * sidecar.istio.io/statsHistogramBuckets annotation changes them) — the same list for durations in ms and
 * for sizes in bytes.
 */
export const ISTIO_BUCKETS: readonly number[] = ENVOY_DEFAULT_BUCKETS;

export class CounterSeries {
  readonly labels: string;
  value = 0;
  constructor(labels: string) {
    this.labels = labels;
  }
}

export class HistogramSeries {
  readonly labels: string;
  /** Per bucket (not cumulative); the last slot is above the highest bound. */
  readonly counts = new Float64Array(ISTIO_BUCKETS.length + 1);
  sum = 0;
  count = 0;
  constructor(labels: string) {
    this.labels = labels;
  }

  record(v: number): void {
    if (!(v >= 0) || v === Infinity) v = v !== v || v === Infinity ? NaN : 0;
    if (v !== v) return;
    this.counts[bucketIndex(ISTIO_BUCKETS, v)]++;
    this.count++;
    this.sum += v;
  }
}

export type Series = CounterSeries | HistogramSeries;

class Family {
  readonly name: string;
  readonly type: 'counter' | 'histogram' | 'gauge';
  readonly series = new Map<string, Series>();
  constructor(name: string, type: 'counter' | 'histogram' | 'gauge') {
    this.name = name;
    this.type = type;
  }
}

/** `a="x",b="y"`: the label pairs of a series, rendered once when the series is created. */
export function renderLabels(names: readonly string[], values: readonly string[]): string {
  let out = '';
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += ',';
    out += `${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return out;
}

export class IstioMetrics {
  private readonly families = new Map<string, Family>();

  constructor() {
    const build = this.family('istio_build', 'gauge');
    const s = new CounterSeries(renderLabels(['component', 'tag'], ['proxy', VERSION]));
    s.value = 1;
    build.series.set(s.labels, s);
  }

  /** The series of a metric for a label set (rendered with renderLabels), created on first use. */
  series(metric: IstioMetricName, labels: string): Series {
    const name = `istio_${metric}`;
    const fam = this.family(name, HISTOGRAMS.has(metric) ? 'histogram' : 'counter');
    let s = fam.series.get(labels);
    if (s === undefined) {
      s = fam.type === 'histogram' ? new HistogramSeries(labels) : new CounterSeries(labels);
      fam.series.set(labels, s);
    }
    return s;
  }

  private family(name: string, type: Family['type']): Family {
    let fam = this.families.get(name);
    if (fam === undefined) {
      fam = new Family(name, type);
      this.families.set(name, fam);
    }
    return fam;
  }

  renderPrometheus(opts: RenderOptions): string {
    const out: string[] = [];
    const names = [...this.families.keys()].sort(compareStrings);
    for (const name of names) {
      if (opts.filter !== undefined) {
        opts.filter.lastIndex = 0;
        if (!opts.filter.test(name)) continue;
      }
      const fam = this.families.get(name)!;
      // Series are made for a whole label combination at once; one never incremented is shown as Envoy
      // would, which creates a stat on its first increment: not at all.
      const series = [...fam.series.values()]
        .filter((s) => fam.type === 'gauge' || (s instanceof HistogramSeries ? s.count > 0 : s.value > 0))
        .sort((a, b) => compareStrings(a.labels, b.labels));
      if (series.length === 0) continue;
      out.push(`# TYPE ${name} ${fam.type}\n`);
      for (const s of series) {
        if (s instanceof HistogramSeries) renderHistogram(out, name, s);
        else out.push(`${name}${braced(s.labels)} ${formatSampleValue(s.value)}\n`);
      }
    }
    return out.join('');
  }
}

function braced(labels: string): string {
  return labels === '' ? '' : `{${labels}}`;
}

function renderHistogram(out: string[], name: string, h: HistogramSeries): void {
  const pre = h.labels === '' ? '' : `${h.labels},`;
  let cumulative = 0;
  for (let i = 0; i < ISTIO_BUCKETS.length; i++) {
    cumulative += h.counts[i];
    out.push(`${name}_bucket{${pre}le="${formatSampleValue(ISTIO_BUCKETS[i])}"} ${cumulative}\n`);
  }
  out.push(`${name}_bucket{${pre}le="+Inf"} ${h.count}\n`);
  out.push(`${name}_sum${braced(h.labels)} ${formatSampleValue(h.sum)}\n`);
  out.push(`${name}_count${braced(h.labels)} ${h.count}\n`);
}

const byStore = new WeakMap<StatsStore, IstioMetrics>();

/** The proxy's Istio metrics (one per stats store), registered with the store's exposition on first use. */
export function istioMetricsOf(stats: StatsStore): IstioMetrics {
  let m = byStore.get(stats);
  if (m === undefined) {
    m = new IstioMetrics();
    byStore.set(stats, m);
    stats.addPrometheusSource(m);
  }
  return m;
}
