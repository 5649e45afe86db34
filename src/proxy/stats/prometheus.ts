/**
 * Prometheus text exposition (format 0.0.4) in the shape Envoy's /stats/prometheus produces:
 * `envoy_` + the tag-extracted name with every character outside [a-zA-Z0-9_] turned into `_`,
 * tags as labels, one `# TYPE` line per family, histograms as cumulative `_bucket`/`_sum`/`_count`.
 */
import type { ExtractedName } from './tags.ts';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A stat's Prometheus family name and pre-rendered label pairs, computed once per stat. */
export interface PrometheusIdentity {
  readonly family: string;
  /** `a="x",b="y"` (no braces), or '' when the stat has no tags. */
  readonly labels: string;
}

export function sanitizeMetricName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** Escapes a label value per the exposition format; lone surrogates become U+FFFD so output is valid UTF-8. */
export function escapeLabelValue(v: string): string {
  return v.toWellFormed().replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

export function prometheusIdentity(extracted: ExtractedName): PrometheusIdentity {
  const labels = extracted.tags
    .map(([k, v]) => `${sanitizeMetricName(k)}="${escapeLabelValue(v)}"`)
    .join(',');
  return { family: 'envoy_' + sanitizeMetricName(extracted.name), labels };
}

/** A float as the exposition format spells it. */
export function formatSampleValue(v: number): string {
  if (v !== v) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export interface ScalarSample {
  readonly id: PrometheusIdentity;
  readonly value: number;
}

export interface HistogramSample {
  readonly id: PrometheusIdentity;
  readonly bounds: readonly number[];
  /** Per-bucket counts (not cumulative); one more entry than bounds, for samples above the last. */
  readonly bucketCounts: ArrayLike<number>;
  readonly sum: number;
  readonly count: number;
}

type Family =
  | { readonly type: 'counter' | 'gauge'; readonly samples: ScalarSample[] }
  | { readonly type: 'histogram'; readonly samples: HistogramSample[] };

/**
 * Renders families sorted by name, series sorted by labels. Two stats can collapse to one series
 * (e.g. `http.a.x.y` and `http.a.x_y`), or a counter and a gauge to one family name; the format
 * forbids both, so the first kept wins (counters, then gauges, then histograms) and the rest are
 * dropped rather than making the whole scrape unparseable.
 */
export function renderExposition(
  counters: readonly ScalarSample[],
  gauges: readonly ScalarSample[],
  histograms: readonly HistogramSample[],
): string {
  const families = new Map<string, Family>();
  const seriesSeen = new Set<string>();
  const addScalar = (type: 'counter' | 'gauge', s: ScalarSample): void => {
    const fam = families.get(s.id.family);
    const key = s.id.family + '{' + s.id.labels;
    if (seriesSeen.has(key)) return;
    if (fam === undefined) families.set(s.id.family, { type, samples: [s] });
    else if (fam.type === type) fam.samples.push(s);
    else return;
    seriesSeen.add(key);
  };
  for (const c of counters) addScalar('counter', c);
  for (const g of gauges) addScalar('gauge', g);
  for (const h of histograms) {
    const fam = families.get(h.id.family);
    const key = h.id.family + '{' + h.id.labels;
    if (seriesSeen.has(key)) continue;
    if (fam === undefined) families.set(h.id.family, { type: 'histogram', samples: [h] });
    else if (fam.type === 'histogram') fam.samples.push(h);
    else continue;
    seriesSeen.add(key);
  }
  // A histogram family also owns the names <family>_bucket, _sum and _count.
  for (const [name, fam] of families) {
    if (fam.type !== 'histogram') continue;
    for (const suffix of ['_bucket', '_sum', '_count']) families.delete(name + suffix);
  }

  const names = [...families.keys()].sort(compareStrings);
  const out: string[] = [];
  for (const name of names) {
    const fam = families.get(name)!;
    out.push(`# TYPE ${name} ${fam.type}\n`);
    if (fam.type === 'histogram') {
      for (const h of [...fam.samples].sort(byLabels)) renderHistogram(out, name, h);
    } else {
      for (const s of [...fam.samples].sort(byLabels)) {
        out.push(`${name}${braced(s.id.labels)} ${formatSampleValue(s.value)}\n`);
      }
    }
  }
  return out.join('');
}

function renderHistogram(out: string[], name: string, h: HistogramSample): void {
  const sep = h.id.labels === '' ? '' : ',';
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.bucketCounts[i];
    out.push(`${name}_bucket{${h.id.labels}${sep}le="${formatSampleValue(h.bounds[i])}"} ${cumulative}\n`);
  }
  out.push(`${name}_bucket{${h.id.labels}${sep}le="+Inf"} ${h.count}\n`);
  out.push(`${name}_sum${braced(h.id.labels)} ${formatSampleValue(h.sum)}\n`);
  out.push(`${name}_count${braced(h.id.labels)} ${h.count}\n`);
}

function braced(labels: string): string {
  return labels === '' ? '' : `{${labels}}`;
}

function byLabels(a: { id: PrometheusIdentity }, b: { id: PrometheusIdentity }): number {
  return compareStrings(a.id.labels, b.id.labels);
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
