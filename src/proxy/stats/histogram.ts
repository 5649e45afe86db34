/**
 * A latency histogram with two views of the same samples:
 * - exact counts for Envoy's default bucket bounds (what /stats/prometheus exposes), and
 * - a log-linear sketch with two significant digits per bin (the resolution of Envoy's own
 *   circllhist), from which /stats estimates quantiles.
 * Recording is two short binary searches and a handful of array increments: no allocation after
 * the first sample (the sketch's bins are allocated lazily, so configured but unused histograms
 * stay small).
 */

/** Envoy's default histogram bucket bounds, in ms (stats_config.histogram_bucket_settings unset). */
export const ENVOY_DEFAULT_BUCKETS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

/** The quantiles Envoy prints in /stats (as fractions). */
export const SUPPORTED_QUANTILES: readonly number[] = [0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1];

export interface Histogram {
  record(v: number): void;
}

// Sketch range: 1 µs .. 1e8 ms (about 27 h) in decades, 90 bins per decade (mantissa 10..99).
const MIN_EXP = -3;
const MAX_EXP = 7;
const BINS_PER_DECADE = 90;
const MIN_SKETCH_VALUE = 10 ** MIN_EXP;
const MAX_SKETCH_VALUE = 10 ** (MAX_EXP + 1);
/** Bin 0 holds [0, 1 µs); the last bin holds everything from 1e8 ms up. */
const SKETCH_BINS = (MAX_EXP - MIN_EXP + 1) * BINS_PER_DECADE + 2;
const OVERFLOW_BIN = SKETCH_BINS - 1;

// Exact integer powers of ten, so the mantissa is computed with one correctly rounded operation.
const POW10: readonly number[] = Array.from({ length: 16 }, (_, i) => 10 ** i);

/** Lower bound of each decade in the sketch's range (1e-3 .. 1e7). */
const DECADE_LOWS: readonly number[] = Array.from(
  { length: MAX_EXP - MIN_EXP + 1 },
  (_, i) => 10 ** (MIN_EXP + i),
);

function sketchBin(v: number): number {
  if (v < MIN_SKETCH_VALUE) return 0;
  if (v >= MAX_SKETCH_VALUE) return OVERFLOW_BIN;
  // The decade by binary search: Math.log10 costs several times more than these few comparisons.
  let lo = 0;
  let hi = DECADE_LOWS.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (DECADE_LOWS[mid] <= v) lo = mid;
    else hi = mid - 1;
  }
  const e = MIN_EXP + lo;
  const shift = e - 1;
  // Scaling by an exact power of ten; rounding can still land one off at a bin edge, so clamp.
  let m = Math.floor(shift >= 0 ? v / POW10[shift] : v * POW10[-shift]);
  if (m < 10) m = 10;
  else if (m > 99) m = 99;
  return 1 + lo * BINS_PER_DECADE + (m - 10);
}

function binLow(bin: number): number {
  if (bin === 0) return 0;
  if (bin === OVERFLOW_BIN) return MAX_SKETCH_VALUE;
  const e = MIN_EXP + Math.floor((bin - 1) / BINS_PER_DECADE);
  const m = 10 + ((bin - 1) % BINS_PER_DECADE);
  return scale(m, e - 1);
}

function binHigh(bin: number): number {
  if (bin === 0) return MIN_SKETCH_VALUE;
  if (bin === OVERFLOW_BIN) return Infinity;
  const e = MIN_EXP + Math.floor((bin - 1) / BINS_PER_DECADE);
  const m = 11 + ((bin - 1) % BINS_PER_DECADE);
  return scale(m, e - 1);
}

function scale(m: number, shift: number): number {
  return shift >= 0 ? m * POW10[shift] : m / POW10[-shift];
}

/** Sample counts per sketch bin plus exact extremes, for one period (interval or cumulative). */
class Sketch {
  bins: Uint32Array | null = null;
  count = 0;
  min = Infinity;
  max = -Infinity;

  add(bin: number, v: number): void {
    if (this.bins === null) this.bins = new Uint32Array(SKETCH_BINS);
    this.bins[bin]++;
    this.count++;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  clear(): void {
    if (this.bins !== null) this.bins.fill(0);
    this.count = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }

  /** Linear interpolation inside the bin holding the q-th sample, clamped to the exact extremes; NaN when empty. */
  quantile(q: number): number {
    const bins = this.bins;
    if (this.count === 0 || bins === null) return NaN;
    if (q <= 0) return this.min;
    if (q >= 1) return this.max;
    const rank = q * this.count;
    let seen = 0;
    for (let b = 0; b < SKETCH_BINS; b++) {
      const c = bins[b];
      if (c === 0) continue;
      if (seen + c >= rank) {
        const lo = Math.max(binLow(b), this.min);
        const hi = Math.min(binHigh(b), this.max);
        return lo + (hi - lo) * ((rank - seen) / c);
      }
      seen += c;
    }
    return this.max;
  }
}

/** The bucket a value falls in: the first bound ≥ v, or bounds.length above the highest (Prometheus `le`). */
export function bucketIndex(bounds: readonly number[], v: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bounds[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class HistogramImpl implements Histogram {
  readonly name: string;
  readonly bounds: readonly number[];
  /** Samples per bucket (not cumulative); the last slot counts samples above the highest bound. */
  readonly bucketCounts: Float64Array;
  count = 0;
  sum = 0;
  readonly cumulative = new Sketch();
  /** Samples since the last mergeInterval(), Envoy's "interval" column. */
  readonly interval = new Sketch();

  constructor(name: string, bounds: readonly number[] = ENVOY_DEFAULT_BUCKETS) {
    this.name = name;
    this.bounds = bounds;
    this.bucketCounts = new Float64Array(bounds.length + 1);
  }

  record(v: number): void {
    // Negative durations (clock steps) count as 0; NaN and infinities carry no information.
    if (!(v >= 0)) {
      if (v !== v) return;
      v = 0;
    } else if (v === Infinity) return;
    this.bucketCounts[bucketIndex(this.bounds, v)]++;
    this.count++;
    this.sum += v;
    const bin = sketchBin(v);
    this.cumulative.add(bin, v);
    this.interval.add(bin, v);
  }

  get used(): boolean {
    return this.count > 0;
  }

  /** Closes the current interval (Envoy does this on each stats flush). */
  mergeInterval(): void {
    this.interval.clear();
  }
}
