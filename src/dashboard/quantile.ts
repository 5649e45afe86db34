/**
 * Quantiles from a histogram's bucket counts, as Prometheus's histogram_quantile computes them: find the
 * bucket holding the rank, interpolate linearly inside it (from 0 for the first bucket), and answer the
 * highest finite bound when the rank falls in +Inf.
 */

/** `cumulative` maps each upper bound (`le`, +Inf included) to the count at or below it. */
export function histogramQuantile(q: number, cumulative: ReadonlyMap<number, number>): number | null {
  const bounds = [...cumulative.keys()].sort((a, b) => a - b);
  if (bounds.length === 0 || bounds[bounds.length - 1] !== Infinity) return null;
  const total = cumulative.get(Infinity)!;
  if (!(total > 0)) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    const upper = bounds[i];
    // Counts are deltas of counters scraped at slightly different moments: keep them monotonic.
    const atOrBelow = Math.max(below, cumulative.get(upper)!);
    if (atOrBelow >= rank) {
      if (upper === Infinity) return i === 0 ? null : bounds[i - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      if (i === 0 && upper <= 0) return upper;
      const inBucket = atOrBelow - below;
      if (inBucket <= 0) return upper;
      return lower + (upper - lower) * ((rank - below) / inBucket);
    }
    below = atOrBelow;
  }
  return null;
}
