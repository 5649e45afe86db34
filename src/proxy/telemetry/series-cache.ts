/**
 * From a request's label combination to the series it records into. The few parts that vary per request
 * (the peer objects, the destination service, status, flags, principals, ...) are looked up level by level
 * in nested Maps: objects by identity and strings whose hash V8 keeps on the string, so a combination seen
 * before costs a handful of Map lookups — no key string is built, flattened and hashed per request. The
 * label values are derived and rendered only for a new combination.
 */
import type { IstioMetrics, Series } from './istio-metrics.ts';
import { renderLabels } from './istio-metrics.ts';
import { standardLabelValues } from './labels.ts';
import type { LabelInputs } from './labels.ts';
import type { MetricsPlan } from './stats-config.ts';

const GRPC_ONLY: ReadonlySet<string> = new Set(['request_messages_total', 'response_messages_total']);

/** Beyond this many combinations the cache starts over (series stay in the families). */
const MAX_ENTRIES = 10_000;

export type SeriesList = (Series | null)[];

type Level = Map<unknown, unknown>;

export class SeriesCache {
  private readonly metrics: IstioMetrics;
  readonly plan: MetricsPlan;
  private root: Level = new Map();
  private size = 0;

  constructor(metrics: IstioMetrics, plan: MetricsPlan) {
    this.metrics = metrics;
    this.plan = plan;
  }

  /** The series cached for these key parts (always the same number of parts per cache). */
  get(parts: readonly unknown[]): SeriesList | undefined {
    let level: Level | undefined = this.root;
    const last = parts.length - 1;
    for (let i = 0; i < last; i++) {
      level = level.get(parts[i]) as Level | undefined;
      if (level === undefined) return undefined;
    }
    return level.get(parts[last]) as SeriesList | undefined;
  }

  /**
   * The series of every planned metric (in plan order) for this combination, created and cached; null for
   * the gRPC message counters of a request that is not gRPC (Istio has no such series).
   */
  create(parts: readonly unknown[], inputs: LabelInputs, expressionValues: readonly string[]): SeriesList {
    const standard = standardLabelValues(inputs);
    const out: SeriesList = [];
    for (const m of this.plan.metrics) {
      if (inputs.protocol !== 'grpc' && GRPC_ONLY.has(m.metric)) {
        out.push(null);
        continue;
      }
      const values = m.sources.map((s) => (s >= 0 ? standard[s] : expressionValues[-s - 1]));
      out.push(this.metrics.series(m.metric, renderLabels(m.labelNames, values)));
    }
    if (this.size >= MAX_ENTRIES) {
      this.root = new Map();
      this.size = 0;
    }
    let level = this.root;
    const last = parts.length - 1;
    for (let i = 0; i < last; i++) {
      let next = level.get(parts[i]) as Level | undefined;
      if (next === undefined) level.set(parts[i], (next = new Map()));
      level = next;
    }
    level.set(parts[last], out);
    this.size++;
    return out;
  }
}
