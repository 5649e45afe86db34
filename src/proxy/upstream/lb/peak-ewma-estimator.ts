/**
 * One host's peak-EWMA latency estimate, as Finagle and Linkerd (tower) define it: a new sample above
 * the estimate replaces it at once (the peak), otherwise it is blended in with weight 1 - e^(-Δt/τ),
 * so old information fades with the time since the last update rather than the number of samples.
 * Reads count as samples of 0, so a host that stops answering slowly (or stops being chosen) drifts
 * back towards being tried. Time is passed in, so the maths is exact under test.
 */
export class PeakEwmaEstimator {
  readonly decayMs: number;
  readonly defaultRttMs: number;
  private estimateMs: number;
  private stampMs: number;
  private sampled: boolean;

  constructor(decayMs: number, defaultRttMs: number, nowMs: number) {
    this.decayMs = decayMs;
    this.defaultRttMs = defaultRttMs;
    this.estimateMs = defaultRttMs;
    this.stampMs = nowMs;
    this.sampled = false;
  }

  /** Whether any response latency was recorded yet. */
  get hasSamples(): boolean {
    return this.sampled;
  }

  /** Records one response latency. */
  observe(rttMs: number, nowMs: number): void {
    if (!this.sampled) {
      // The first real sample replaces the default outright: the default is a guess, not history.
      this.sampled = true;
      this.estimateMs = rttMs;
      this.stampMs = nowMs;
      return;
    }
    this.blend(rttMs, nowMs);
  }

  /**
   * The estimate now. A host without samples stays at exactly the default RTT, so new hosts tie
   * with each other (and get tried) instead of being ordered by creation time.
   */
  estimate(nowMs: number): number {
    if (!this.sampled) return this.defaultRttMs;
    this.blend(0, nowMs);
    return this.estimateMs;
  }

  private blend(rttMs: number, nowMs: number): void {
    if (rttMs > this.estimateMs) {
      this.estimateMs = rttMs;
    } else {
      const elapsed = Math.max(0, nowMs - this.stampMs);
      const keep = Math.exp(-elapsed / this.decayMs);
      this.estimateMs = this.estimateMs * keep + rttMs * (1 - keep);
    }
    // A clock that went backwards (it should not) never moves the stamp back.
    if (nowMs > this.stampMs) this.stampMs = nowMs;
  }
}
