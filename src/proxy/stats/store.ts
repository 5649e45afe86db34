/**
 * The proxy's stats store, in Envoy's model: flat dotted names (`cluster.<name>.upstream_rq_total`),
 * counters, gauges and histograms created once (at config time, or lazily the first time a response
 * code is seen) and then updated on the hot path with a plain property write — no lookups, strings or
 * allocation per request. Rendering (admin only) is where names, tags and sorting are paid for.
 */
import { ENVOY_DEFAULT_BUCKETS, HistogramImpl, SUPPORTED_QUANTILES } from './histogram.ts';
import type { Histogram } from './histogram.ts';
import { compareStrings, prometheusIdentity, renderExposition } from './prometheus.ts';
import type { PrometheusIdentity } from './prometheus.ts';
import { ENVOY_DEFAULT_TAG_SPECIFIERS, TagExtractor } from './tags.ts';
import type { TagSpecifier } from './tags.ts';

export type { Histogram } from './histogram.ts';
export type { TagSpecifier } from './tags.ts';

export interface Counter {
  inc(n?: number): void;
  readonly value: number;
}

export interface Gauge {
  set(v: number): void;
  inc(n?: number): void;
  dec(n?: number): void;
  readonly value: number;
}

export interface RenderOptions {
  /** Keeps only stats whose full name the regex matches (Envoy's ?filter=). */
  readonly filter?: RegExp;
  /** Keeps only stats that were ever updated (Envoy's ?usedonly). */
  readonly usedOnly?: boolean;
}

export interface StatsStoreOptions {
  /** Envoy's stats_config.use_all_default_tags (default true). */
  readonly useAllDefaultTags?: boolean;
  /** Envoy's stats_config.stats_tags, applied after the defaults. */
  readonly statsTags?: readonly TagSpecifier[];
}

class CounterImpl implements Counter {
  readonly name: string;
  value = 0;
  constructor(name: string) {
    this.name = name;
  }
  inc(n = 1): void {
    this.value += n;
  }
  get used(): boolean {
    return this.value !== 0;
  }
}

class GaugeImpl implements Gauge {
  readonly name: string;
  value = 0;
  used = false;
  constructor(name: string) {
    this.name = name;
  }
  set(v: number): void {
    this.value = v;
    this.used = true;
  }
  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }
  dec(n = 1): void {
    this.value -= n;
    this.used = true;
  }
}

/** Envoy's stat-name sanitising: `:` (from `ip:port`) and NUL become `_`. */
export function sanitizeStatName(name: string): string {
  return name.replace(/[:\0]/g, '_');
}

/**
 * Metrics kept outside the flat Envoy names (Istio's labelled `istio_*` families): rendered after the
 * Envoy-style stats in /stats/prometheus. `filter` is matched against the family name.
 */
export interface PrometheusSource {
  renderPrometheus(opts: RenderOptions): string;
}

export class StatsStore {
  private readonly extraSources: PrometheusSource[] = [];
  private readonly counters = new Map<string, CounterImpl>();
  private readonly gauges = new Map<string, GaugeImpl>();
  private readonly histograms = new Map<string, HistogramImpl>();
  private readonly tagExtractor: TagExtractor;
  private readonly promIds = new Map<string, PrometheusIdentity>();

  /** Throws if a stats tag regex does not compile (a config error for the caller to report). */
  constructor(opts: StatsStoreOptions = {}) {
    const specs = [
      ...(opts.useAllDefaultTags === false ? [] : ENVOY_DEFAULT_TAG_SPECIFIERS),
      ...(opts.statsTags ?? []),
    ];
    this.tagExtractor = new TagExtractor(specs);
  }

  counter(name: string): Counter {
    return getOrCreate(this.counters, name, (n) => new CounterImpl(n));
  }

  gauge(name: string): Gauge {
    return getOrCreate(this.gauges, name, (n) => new GaugeImpl(n));
  }

  /** Values in ms, bucketed with Envoy's default bounds. */
  histogram(name: string): Histogram {
    return getOrCreate(this.histograms, name, (n) => new HistogramImpl(n, ENVOY_DEFAULT_BUCKETS));
  }

  /**
   * Forgets the stats `remove` selects (by their sanitized name), as Envoy drops a removed cluster's scope.
   * Whoever still holds one of them keeps a detached stat that no longer renders. Returns how many went.
   */
  removeWhere(remove: (name: string) => boolean): number {
    let n = 0;
    for (const map of [this.counters, this.gauges, this.histograms] as Map<string, unknown>[]) {
      // Deleting the entry being visited is safe in a Map iteration.
      for (const name of map.keys()) {
        if (!remove(name)) continue;
        map.delete(name);
        this.promIds.delete(name);
        n++;
      }
    }
    return n;
  }

  /** Starts a new histogram interval, like Envoy's periodic stats flush. */
  mergeHistograms(): void {
    for (const h of this.histograms.values()) h.mergeInterval();
  }

  /**
   * Envoy's /stats text: `name: value` for counters and gauges sorted by name, then histograms as
   * `name: P0(interval,cumulative) P25(...) ... P100(...)`, or `name: No recorded values`.
   */
  renderText(opts: RenderOptions = {}): string {
    const out: string[] = [];
    const scalars = [...this.select(this.counters, opts), ...this.select(this.gauges, opts)];
    scalars.sort((a, b) => compareStrings(a.name, b.name));
    for (const s of scalars) out.push(`${s.name}: ${s.value}\n`);
    for (const h of this.select(this.histograms, opts).sort((a, b) => compareStrings(a.name, b.name))) {
      out.push(`${h.name}: ${quantileSummary(h)}\n`);
    }
    return out.join('');
  }

  /** Adds families rendered by their owner (see PrometheusSource). */
  addPrometheusSource(source: PrometheusSource): void {
    this.extraSources.push(source);
  }

  /** Envoy's /stats/prometheus. */
  renderPrometheus(opts: RenderOptions = {}): string {
    let extra = '';
    for (const s of this.extraSources) extra += s.renderPrometheus(opts);
    return this.renderEnvoyPrometheus(opts) + extra;
  }

  private renderEnvoyPrometheus(opts: RenderOptions): string {
    return renderExposition(
      this.select(this.counters, opts).map((c) => ({ id: this.promId(c.name), value: c.value })),
      this.select(this.gauges, opts).map((g) => ({ id: this.promId(g.name), value: g.value })),
      this.select(this.histograms, opts).map((h) => ({
        id: this.promId(h.name),
        bounds: h.bounds,
        bucketCounts: h.bucketCounts,
        sum: h.sum,
        count: h.count,
      })),
    );
  }

  /**
   * Envoy's /stats?format=json: `{stats: [{name, value}, ..., {histograms: {supported_quantiles,
   * computed_quantiles: [{name, values: [{interval, cumulative}]}]}}]}`; an empty quantile is null.
   */
  renderJson(opts: RenderOptions = {}): unknown {
    const scalars = [...this.select(this.counters, opts), ...this.select(this.gauges, opts)];
    scalars.sort((a, b) => compareStrings(a.name, b.name));
    const stats: unknown[] = scalars.map((s) => ({ name: s.name, value: s.value }));
    const hists = this.select(this.histograms, opts).sort((a, b) => compareStrings(a.name, b.name));
    if (hists.length > 0) {
      stats.push({
        histograms: {
          supported_quantiles: SUPPORTED_QUANTILES.map((q) => roundQuantile(q * 100)),
          computed_quantiles: hists.map((h) => ({
            name: h.name,
            values: SUPPORTED_QUANTILES.map((q) => ({
              interval: jsonNumber(h.interval.quantile(q)),
              cumulative: jsonNumber(h.cumulative.quantile(q)),
            })),
          })),
        },
      });
    }
    return { stats };
  }

  private select<T extends { readonly name: string; readonly used: boolean }>(
    stats: Map<string, T>,
    opts: RenderOptions,
  ): T[] {
    const out: T[] = [];
    const filter = opts.filter;
    for (const s of stats.values()) {
      if (opts.usedOnly === true && !s.used) continue;
      if (filter !== undefined) {
        // A /g or /y regex keeps state between test() calls; start each test from the beginning.
        filter.lastIndex = 0;
        if (!filter.test(s.name)) continue;
      }
      out.push(s);
    }
    return out;
  }

  private promId(name: string): PrometheusIdentity {
    let id = this.promIds.get(name);
    if (id === undefined) {
      id = prometheusIdentity(this.tagExtractor.extract(name));
      this.promIds.set(name, id);
    }
    return id;
  }
}

function getOrCreate<T>(map: Map<string, T>, name: string, make: (name: string) => T): T {
  let stat = map.get(name);
  if (stat !== undefined) return stat;
  const clean = sanitizeStatName(name);
  stat = map.get(clean);
  if (stat === undefined) {
    stat = make(clean);
    map.set(clean, stat);
  }
  return stat;
}

function quantileSummary(h: HistogramImpl): string {
  if (!h.used) return 'No recorded values';
  return SUPPORTED_QUANTILES.map(
    (q) =>
      `P${roundQuantile(q * 100)}(${formatQuantile(h.interval.quantile(q))},${formatQuantile(h.cumulative.quantile(q))})`,
  ).join(' ');
}

/** 99.9 rather than 99.90000000000001. */
function roundQuantile(p: number): number {
  return Math.round(p * 1000) / 1000;
}

/** Four significant digits: the sketch resolves two, interpolation adds a little; more is noise. */
function formatQuantile(v: number): string {
  return v !== v ? 'nan' : String(Number(v.toPrecision(4)));
}

function jsonNumber(v: number): number | null {
  return v !== v ? null : Number(v.toPrecision(4));
}
