// The arithmetic of the control-plane benchmark: percentiles, endpoint-change latency, starvation.

/** Nearest-rank percentile (p in 0..100) of the finite values; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

export interface Distribution {
  readonly count: number;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

export function distribution(values: readonly number[]): Distribution {
  const finite = values.filter(Number.isFinite);
  return {
    count: finite.length,
    p50: percentile(finite, 50),
    p90: percentile(finite, 90),
    p99: percentile(finite, 99),
    max: finite.length > 0 ? Math.max(...finite) : null,
  };
}

export interface ChangeLatency {
  readonly id: number;
  /** From the file write to the last proxy receiving the new assignment; null if some proxy never did. */
  readonly toAllMs: number | null;
  /** Per proxy, from the file write to its receiving the new assignment; NaN = never. */
  readonly perProxyMs: readonly number[];
  readonly missing: number;
}

/** `arrivals` are absolute times per proxy (0 = never arrived). */
export function changeLatency(id: number, writtenAt: number, arrivals: readonly number[]): ChangeLatency {
  const perProxyMs = arrivals.map((a) => (a > 0 ? a - writtenAt : NaN));
  const missing = perProxyMs.filter((v) => Number.isNaN(v)).length;
  return {
    id,
    toAllMs: missing > 0 || perProxyMs.length === 0 ? null : Math.max(...perProxyMs),
    perProxyMs,
    missing,
  };
}

export interface StarvationProxy {
  /** Endpoint updates (responses carrying ClusterLoadAssignments) received during the window. */
  readonly updates: number;
  /** Longest time without an update during the window (window edges count as updates). */
  readonly maxGapMs: number;
  /** Longest time from a change's file write to this proxy receiving it; Infinity if one never arrived. */
  readonly maxStalenessMs: number;
  /** Changes that never reached this proxy. */
  readonly missing: number;
}

export interface StarvationSummary {
  readonly proxies: number;
  readonly changes: number;
  readonly windowMs: number;
  readonly gapLimitMs: number;
  readonly updatesPerProxy: Distribution;
  readonly maxGapMs: Distribution;
  readonly maxStalenessMs: Distribution;
  /** Proxies with a gap over the limit or a change that never arrived. */
  readonly starved: number;
  readonly starvedExamples: readonly string[];
}

/**
 * A proxy is starved when, while changes keep coming, it goes longer than `gapLimitMs` without an endpoint
 * update (the window runs from the first change's write to the last one's), or some change never reaches it.
 */
export function starvation(
  proxyIds: readonly string[],
  updates: readonly (readonly number[])[],
  changes: readonly { writtenAt: number; arrivals: readonly number[] }[],
  gapLimitMs: number,
): { perProxy: StarvationProxy[]; summary: StarvationSummary } {
  const start = changes.length > 0 ? Math.min(...changes.map((c) => c.writtenAt)) : 0;
  const end = changes.length > 0 ? Math.max(...changes.map((c) => c.writtenAt)) : 0;
  const perProxy: StarvationProxy[] = proxyIds.map((_, i) => {
    const inWindow = (updates[i] ?? []).filter((t) => t >= start && t <= end).sort((a, b) => a - b);
    const points = [start, ...inWindow, end];
    let maxGap = 0;
    for (let k = 1; k < points.length; k++) maxGap = Math.max(maxGap, points[k] - points[k - 1]);
    let maxStale = 0;
    let missing = 0;
    for (const c of changes) {
      const a = c.arrivals[i] ?? 0;
      if (a > 0) maxStale = Math.max(maxStale, a - c.writtenAt);
      else missing++;
    }
    return {
      updates: inWindow.length,
      maxGapMs: maxGap,
      maxStalenessMs: missing > 0 ? Infinity : maxStale,
      missing,
    };
  });
  const starvedIdx = perProxy
    .map((p, i) => (p.maxGapMs > gapLimitMs || p.missing > 0 ? i : -1))
    .filter((i) => i >= 0);
  return {
    perProxy,
    summary: {
      proxies: proxyIds.length,
      changes: changes.length,
      windowMs: end - start,
      gapLimitMs,
      updatesPerProxy: distribution(perProxy.map((p) => p.updates)),
      maxGapMs: distribution(perProxy.map((p) => p.maxGapMs)),
      maxStalenessMs: distribution(perProxy.map((p) => p.maxStalenessMs)),
      starved: starvedIdx.length,
      starvedExamples: starvedIdx.slice(0, 5).map((i) => {
        const p = perProxy[i];
        return `${proxyIds[i]}: gap ${p.maxGapMs.toFixed(0)} ms, ${p.missing} change(s) missing`;
      }),
    },
  };
}
