/**
 * Debounce and merge of push requests. A burst of changes (a config directory rewritten, endpoints
 * churning) becomes one push round: the round fires after `debounceMs` without a new push, but never
 * later than `debounceMaxMs` after the first push of the burst. Merging: a full push wins over an
 * endpoint-only one; the proxies affected are the union of every request's. While a round is being
 * dispatched, new pushes accumulate and fire as the next round.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../core/logger.ts';
import type { ProxyNode, PushRequest } from './types.ts';

export interface MergedPush {
  full: boolean;
  /** null: every proxy. */
  affects: ((proxy: ProxyNode) => boolean) | null;
  /** An endpoint-only push: the ClusterLoadAssignments that may have changed; null = any (or a full push). */
  endpointClusters: ReadonlySet<string> | null;
  reasons: string[];
  /** performance.now() of the first push() merged in. */
  startedAt: number;
  /** How many push() calls were merged. */
  merged: number;
}

export interface PushQueueOptions {
  debounceMs: number;
  debounceMaxMs: number;
  /** Sends a round; the next round waits until the returned promise settles. */
  onRound: (push: MergedPush) => Promise<void>;
  logger: Logger;
}

const MAX_REASONS = 16;

function orPredicates(predicates: readonly ((proxy: ProxyNode) => boolean)[]): (proxy: ProxyNode) => boolean {
  if (predicates.length === 1) return predicates[0];
  return (proxy) => predicates.some((p) => p(proxy));
}

export class PushQueue {
  readonly #options: PushQueueOptions;
  #full = false;
  #all = false;
  #predicates: ((proxy: ProxyNode) => boolean)[] = [];
  /** Union of the merged pushes' endpoint clusters; null once one of them did not say. */
  #endpointClusters: Set<string> | null = new Set();
  #reasons = new Set<string>();
  #startedAt = 0;
  #lastAt = 0;
  #merged = 0;
  #timer: NodeJS.Timeout | null = null;
  #busy = false;
  #closed = false;

  constructor(options: PushQueueOptions) {
    this.#options = options;
  }

  get pending(): boolean {
    return this.#merged > 0;
  }

  push(req: PushRequest): void {
    if (this.#closed) return;
    const now = performance.now();
    if (this.#merged === 0) this.#startedAt = now;
    this.#lastAt = now;
    this.#merged += 1;
    if (req.full) this.#full = true;
    if (!req.full && req.endpointClusters && this.#endpointClusters)
      for (const name of req.endpointClusters) this.#endpointClusters.add(name);
    else if (!req.full) this.#endpointClusters = null;
    if (req.affects) this.#predicates.push(req.affects);
    else this.#all = true;
    if (this.#reasons.size < MAX_REASONS) this.#reasons.add(req.reason);
    this.#arm();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(): void {
    if (this.#busy || this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    const { debounceMs, debounceMaxMs } = this.#options;
    const due = Math.min(this.#lastAt + debounceMs, this.#startedAt + debounceMaxMs);
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, due - performance.now()));
  }

  #take(): MergedPush {
    const push: MergedPush = {
      full: this.#full,
      affects: this.#all ? null : orPredicates(this.#predicates),
      endpointClusters: this.#full ? null : this.#endpointClusters,
      reasons: [...this.#reasons],
      startedAt: this.#startedAt,
      merged: this.#merged,
    };
    this.#full = false;
    this.#all = false;
    this.#predicates = [];
    this.#endpointClusters = new Set();
    this.#reasons = new Set();
    this.#merged = 0;
    return push;
  }

  #fire(): void {
    this.#timer = null;
    if (this.#busy || this.#closed || this.#merged === 0) return;
    this.#busy = true;
    this.#options
      .onRound(this.#take())
      .catch((err: unknown) => this.#options.logger.error('push round failed', { error: String(err) }))
      .finally(() => {
        this.#busy = false;
        if (this.#merged > 0) this.#arm();
      });
  }
}
