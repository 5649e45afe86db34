/**
 * Earliest-deadline-first scheduling, as Envoy uses for weighted round robin and weighted least
 * request: each entry is due every 1/weight time units, so over time entries are picked in
 * proportion to their weights, interleaved smoothly. A binary heap over preallocated typed arrays:
 * picking allocates nothing.
 */
export class EdfScheduler {
  private readonly deadline: Float64Array;
  // deadline = base + count / weight, recomputed rather than accumulated: while an entry's weight
  // stays the same, equal rational deadlines (3/3 and 1/1) are then equal floats and ties stay ties.
  private readonly base: Float64Array;
  private readonly count: Float64Array;
  private readonly weight: Float64Array;
  // Ties on deadline go to the entry that was (re)scheduled first, so equal weights alternate.
  private readonly order: Float64Array;
  private readonly heap: Int32Array;
  private counter: number;

  /** `weights` must all be positive. */
  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    this.deadline = new Float64Array(n);
    this.base = new Float64Array(n);
    this.count = new Float64Array(n).fill(1);
    this.weight = Float64Array.from(weights);
    this.order = new Float64Array(n);
    this.heap = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.deadline[i] = 1 / weights[i];
      this.order[i] = i;
      this.heap[i] = i;
    }
    this.counter = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** The entry due next. */
  peek(): number {
    return this.heap[0];
  }

  /** Reschedules the entry due next to come due again after 1/weight; returns that entry. */
  pick(weight: number): number {
    const top = this.heap[0];
    if (weight === this.weight[top]) {
      this.count[top]++;
    } else {
      this.base[top] = this.deadline[top];
      this.count[top] = 1;
      this.weight[top] = weight;
    }
    this.deadline[top] = this.base[top] + this.count[top] / weight;
    this.order[top] = this.counter++;
    this.siftDown(0);
    return top;
  }

  private before(a: number, b: number): boolean {
    const da = this.deadline[a];
    const db = this.deadline[b];
    return da < db || (da === db && this.order[a] < this.order[b]);
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(heap[child + 1], heap[child])) child++;
      if (!this.before(heap[child], item)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = item;
  }
}
