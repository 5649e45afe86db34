/**
 * A bound on response bytes handed to streams but not yet taken by them. Without it, a thousand proxies
 * connecting at once would each be answered at the speed the control plane can generate — megabytes of
 * clusters and endpoints per proxy — and the bytes would pile up in memory faster than the sockets drain
 * them. Streams wait for room before they answer or push (everything they send is then current); bytes count
 * until the stream takes them, or for at most `holdMs` (a proxy that stops reading must not hold everyone).
 */
export class SendBudget {
  readonly limit: number;
  readonly #holdMs: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(limitBytes: number, holdMs = 5000) {
    this.limit = limitBytes;
    this.#holdMs = holdMs;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get full(): boolean {
    return this.#inFlight >= this.limit;
  }

  /** Runs `resume` once there is room (in arrival order). */
  wait(resume: () => void): void {
    this.#waiting.push(resume);
  }

  /** Counts `bytes` until the returned function is called (or holdMs passes); returns that function. */
  take(bytes: number): () => void {
    this.#inFlight += bytes;
    let released = false;
    const timer = setTimeout(() => release(), this.#holdMs);
    timer.unref();
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      this.#inFlight -= bytes;
      this.#wake();
    };
    return release;
  }

  #wake(): void {
    while (!this.full && this.#waiting.length > 0) this.#waiting.shift()!();
  }
}
