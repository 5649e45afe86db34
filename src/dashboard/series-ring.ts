/**
 * Fixed-size time series for the dashboard: one shared ring of tick times, and per tracked thing one
 * Float64Array per signal, all written at the same slot each tick. Nothing grows while it runs: a ring of
 * `capacity` slots costs 8 bytes × capacity per signal, whatever the traffic.
 */

export const SIGNALS = ['rps', 'errorPct', 'p50Ms', 'p90Ms', 'p99Ms', 'tcpBytesPerSecond'] as const;
export type Signal = (typeof SIGNALS)[number];
export type Point = Record<Signal, number>;

/** The tick clock: which slot is current and when each slot was written. */
export class TickRing {
  readonly capacity: number;
  readonly times: Float64Array;
  /** The slot of the latest tick (-1 before the first). */
  head = -1;
  /** Ticks so far (not capped). */
  ticks = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    this.capacity = capacity;
    this.times = new Float64Array(capacity);
  }

  advance(now: number): number {
    this.head = (this.head + 1) % this.capacity;
    this.times[this.head] = now;
    this.ticks++;
    return this.head;
  }

  /** The filled slots, oldest first. */
  slots(): number[] {
    const n = Math.min(this.ticks, this.capacity);
    const out: number[] = [];
    for (let k = n - 1; k >= 0; k--) out.push((this.head - k + this.capacity) % this.capacity);
    return out;
  }
}

/** One thing's signals; a slot it has no value for holds NaN. */
export class SignalRing {
  readonly values: Record<Signal, Float64Array>;

  constructor(capacity: number) {
    const make = (): Float64Array => new Float64Array(capacity).fill(NaN);
    this.values = {
      rps: make(),
      errorPct: make(),
      p50Ms: make(),
      p90Ms: make(),
      p99Ms: make(),
      tcpBytesPerSecond: make(),
    };
  }

  write(slot: number, point: Point): void {
    for (const s of SIGNALS) this.values[s][slot] = point[s];
  }

  /** The values at `slots` (oldest first), NaN as null: JSON has no NaN. */
  read(signal: Signal, slots: readonly number[]): (number | null)[] {
    const a = this.values[signal];
    return slots.map((i) => (Number.isFinite(a[i]) ? a[i] : null));
  }
}
